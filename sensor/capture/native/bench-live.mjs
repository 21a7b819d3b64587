// Benchmark (not a test): live capture rate of RingCapture vs LiveCapture (`cap`), counting only.
// Makes a veth pair, captures on one end, sends a pcap with `tcpreplay --topspeed` on the other,
// and prints frames received, drops and the capture process's CPU per frame. Root only.
// Usage: node sensor/capture/native/bench-live.mjs <dist dir> ring|cap <pcap> [blockBytes blocks | bufferBytes]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dist, impl, pcap, a1, a2] = process.argv.slice(2);
if (!dist || !['ring', 'cap'].includes(impl) || !pcap) {
  console.error('usage: bench-live.mjs <dist dir> ring|cap <pcap> [blockBytes blocks | bufferBytes]');
  process.exit(2);
}
const mod = (p) => import(pathToFileURL(resolve(dist, p)).href);
const A = `hkb${process.pid % 100000}a`;
const B = `hkb${process.pid % 100000}b`;
execFileSync('ip', ['link', 'add', A, 'mtu', '9000', 'type', 'veth', 'peer', 'name', B, 'mtu', '9000']);
try {
  for (const n of [A, B]) {
    try { writeFileSync(`/proc/sys/net/ipv6/conf/${n}/disable_ipv6`, '1'); } catch { /* no IPv6 */ }
    execFileSync('ip', ['link', 'set', n, 'up']);
  }
  let frames = 0;
  let bytes = 0;
  const onPacket = (_lt, _buf, _off, capLen) => { frames++; bytes += capLen; };
  let cap;
  if (impl === 'ring') {
    const { RingCapture } = await mod('sensor/capture/ring.js');
    cap = new RingCapture({ interfaces: [B], ...(a1 ? { blockBytes: Number(a1), blocks: Number(a2) } : {}) }, onPacket);
  } else {
    const { LiveCapture } = await mod('sensor/capture/live.js');
    cap = new LiveCapture({ interfaces: [B], ...(a1 ? { bufferBytes: Number(a1) } : {}) }, onPacket);
  }
  cap.start();
  const sentInfo = spawnSync('capinfos', ['-c', '-M', pcap], { encoding: 'utf8' }).stdout ?? '';
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const out = await new Promise((res) => {
    const child = spawn('tcpreplay', ['--topspeed', '-i', A, pcap], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d) => (text += d));
    child.stderr.on('data', (d) => (text += d));
    child.on('exit', () => res(text));
  });
  // Drain: wait until nothing new arrives for 500 ms.
  let last = -1;
  while (last !== frames) {
    last = frames;
    await new Promise((r) => setTimeout(r, 500));
  }
  const cpu = process.cpuUsage(cpu0);
  const wallS = (performance.now() - t0) / 1000 - 0.5;
  const sent = Number(/Actual: (\d+) packets/.exec(out)?.[1] ?? NaN);
  const rate = /Rated: [^\n]*/.exec(out)?.[0] ?? '';
  const st = impl === 'ring' ? cap.stats()[0] : undefined;
  cap.stop();
  const cpuUs = cpu.user + cpu.system;
  console.log(JSON.stringify({
    impl, sent, received: frames, lost: sent - frames, kernelDrops: st?.kernelDrops, kernelPackets: st?.kernelPackets,
    bytes, tcpreplay: rate.trim(), receivedPerSec: Math.round(frames / wallS),
    captureCpuUsPerFrame: +(cpuUs / frames).toFixed(3), file: sentInfo.trim().split('\n').pop(),
  }));
} finally {
  spawnSync('ip', ['link', 'del', A]);
}

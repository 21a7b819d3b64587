/**
 * Resource bounds under a SYN flood (issue 5). The million-SYN flood goes through the file path:
 * `hark scan` in a child process with its RSS sampled from /proc, because a million SYNs over a
 * veth into a live sensor sharing two cores takes longer than a test may. A smaller flood goes live:
 * tcpreplay onto a veth pair into `hark run`, RSS sampled, status.json must keep being rewritten
 * during the flood, and ordinary HTTP conversations replayed after it must still be captured. Root
 * only; removes its interfaces and files. Both run with `--flow-memcap 64` (MiB). The RSS bound
 * is the process's RSS without a flood, plus that memcap, plus RUNTIME_ALLOWANCE_BYTES: what V8
 * keeps as garbage between collections and the file reader's buffers while a million flows are
 * made and evicted (README "Memory limits" states the same bound).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { conversationPath, httpTrafficPackets, httpTrafficPcap } from '../helpers/http-traffic.js';
import { parkedMessagesPackets } from '../helpers/parked-messages.js';
import { writePcap } from '../helpers/pcap-writer.js';
import { synFloodPcap } from '../helpers/syn-flood.js';
import { makeVeth, removeVeth, replay, sleep, status, waitFor } from '../helpers/system.js';

/** The CLI compiled beside this test (dist-x/test/system -> dist-x/sensor/cli/hark.js). */
const HARK_JS = fileURLToPath(new URL('../../sensor/cli/hark.js', import.meta.url));
/** The file-path flood: many times the flows the memcap holds (64 MiB / 1200 B = 55,924). */
const FILE_FLOOD_SYNS = 1_000_000;
/** The live flood: what a busy two-core machine replays and processes in a few seconds. */
const LIVE_FLOOD_SYNS = 200_000;
const LIVE_FLOOD_PPS = 100_000;
const HTTP_CONVERSATIONS = 5;
/** Connections parked mid-body with a 7.5 MB brotli ring each: ~880 MB held if inspection state went uncounted. */
const PARKED_CONNECTIONS = 120;
const RSS_SAMPLE_MS = 50;
const FLOW_MEMCAP_MIB = 64;
const FLOW_MEMCAP_BYTES = FLOW_MEMCAP_MIB * 1048576;
/** Garbage V8 holds between collections and capture-file buffers (see the header). */
const RUNTIME_ALLOWANCE_BYTES = 256 * 1048576;

let dir = '';
let floodBig = '';
let floodSmall = '';
let http = '';
let parked = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hark-bounds-'));
  floodBig = join(dir, 'flood-1m.pcap');
  floodSmall = join(dir, 'flood-live.pcap');
  http = join(dir, 'http.pcap');
  writeFileSync(floodBig, synFloodPcap(FILE_FLOOD_SYNS));
  writeFileSync(floodSmall, synFloodPcap(LIVE_FLOOD_SYNS));
  writeFileSync(http, httpTrafficPcap({ conversations: HTTP_CONVERSATIONS }));
  parked = join(dir, 'parked.pcap');
  const held = parkedMessagesPackets({ connections: PARKED_CONNECTIONS, coding: 'br' });
  const later = held.at(-1)!.tsUs! + 1_000_000;
  const ordinary = httpTrafficPackets({ conversations: HTTP_CONVERSATIONS }).map((p) => ({ data: p.data, tsUs: p.tsUs! - 1_700_000_000_000_000 + later }));
  writeFileSync(parked, writePcap([...held, ...ordinary]));
});

after(() => rmSync(dir, { recursive: true, force: true }));

function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples a child's RSS until it exits; `peak` is the largest sample. */
class RssSampler {
  peak = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(child: ChildProcess) {
    this.timer = setInterval(() => {
      this.peak = Math.max(this.peak, rssBytes(child.pid!));
    }, RSS_SAMPLE_MS);
  }
  stop(): number {
    clearInterval(this.timer);
    return this.peak;
  }
}

/**
 * `hark scan FILE` with RSS sampled; the summary on stderr. --keep-duplicates: the flood has no
 * mirror copies, and the duplicate filter compares 32-bit hashes, so among a million SYNs 1 µs
 * apart a couple collide and would be dropped as copies.
 */
async function scan(file: string): Promise<{ code: number | null; err: string; peakRss: number; out: string }> {
  const out = join(dir, `scan-${Date.now()}.jsonl`);
  const child = spawn(process.execPath, [HARK_JS, 'scan', '--no-progress', '--keep-duplicates', '--flow-memcap', String(FLOW_MEMCAP_MIB), '--out', out, file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const rss = new RssSampler(child);
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, err, peakRss: rss.stop(), out };
}

const mib = (n: number): string => `${(n / 1048576).toFixed(0)} MiB`;

test('hark scan of a million-SYN flood evicts by flow memcap and stays under the RSS bound', async () => {
  const base = await scan(http);
  assert.equal(base.code, 0, base.err);
  const flood = await scan(floodBig);
  assert.equal(flood.code, 0, flood.err);
  const tcpFlows = Number(/flows: tcp (\d+)/.exec(flood.err)?.[1]);
  const evicted = Number(/memcap evictions (\d+)/.exec(flood.err)?.[1]);
  assert.equal(tcpFlows, FILE_FLOOD_SYNS, flood.err);
  // flows beyond what the memcap holds were evicted (counted), not kept
  assert.ok(evicted >= FILE_FLOOD_SYNS - Math.ceil(FLOW_MEMCAP_BYTES / 1000), `flow.memcap_evicted ${evicted}\n${flood.err}`);
  const bound = base.peakRss + FLOW_MEMCAP_BYTES + RUNTIME_ALLOWANCE_BYTES;
  process.stderr.write(`resource-bounds: scan peak RSS ${mib(flood.peakRss)} (no flood ${mib(base.peakRss)}, bound ${mib(bound)}), ${evicted} evicted\n`);
  assert.ok(flood.peakRss < bound, `peak RSS ${mib(flood.peakRss)} over the bound ${mib(bound)}`);
});

test('hark scan of connections parked mid-body counts their decoders against the flow memcap, stays under the RSS bound, and inspects what follows', async () => {
  const base = await scan(http);
  assert.equal(base.code, 0, base.err);
  const run = await scan(parked);
  assert.equal(run.code, 0, run.err);
  const evicted = Number(/memcap evictions (\d+)/.exec(run.err)?.[1]);
  // 64 MiB holds at most 8 of the 7.5 MB rings: the rest of the parked connections were evicted
  assert.ok(evicted >= PARKED_CONNECTIONS - 8, `flow.memcap_evicted ${evicted}\n${run.err}`);
  const bound = base.peakRss + FLOW_MEMCAP_BYTES + RUNTIME_ALLOWANCE_BYTES;
  process.stderr.write(`resource-bounds: parked messages peak RSS ${mib(run.peakRss)} (ordinary traffic ${mib(base.peakRss)}, bound ${mib(bound)}), ${evicted} evicted\n`);
  assert.ok(run.peakRss < bound, `peak RSS ${mib(run.peakRss)} over the bound ${mib(bound)}`);
  const urls = readFileSync(run.out, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { url: string }).url);
  for (let i = 0; i < HTTP_CONVERSATIONS; i++) assert.ok(urls.some((u) => u.endsWith(conversationPath(i))), `no capture for conversation ${i}: ${urls.join(', ')}`);
});

test('hark run keeps reporting through a live SYN flood, stays under the RSS bound and captures HTTP after it', async () => {
  assert.equal(process.getuid?.(), 0, 'the live flood test needs root (CI runs as root)');
  const data = mkdtempSync(join(dir, 'run-'));
  const v = makeVeth('rb');
  const child = spawn(process.execPath, [HARK_JS, 'run', '-i', v.recv, '--mode', 'standalone', '--data-dir', data, '--no-api', '--status-interval', '0.2', '--stats-interval', '0', '--flow-memcap', String(FLOW_MEMCAP_MIB)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = once(child, 'exit');
  try {
    await waitFor('hark run to listen', 60_000, () => {
      if (child.exitCode !== null) throw new Error(`hark run exited: ${err}`);
      return err.includes('listening on');
    });
    await waitFor('the first status file', 10_000, () => status(data) !== undefined);
    await sleep(500);
    const baseRss = rssBytes(child.pid!);
    const rss = new RssSampler(child);
    const updates = new Set<string>();
    const watch = setInterval(() => {
      const s = status(data);
      if (s !== undefined) updates.add(s.updated_at);
    }, 100);
    const sender = spawn('tcpreplay', ['-i', v.send, '--pps', String(LIVE_FLOOD_PPS), floodSmall], { stdio: 'ignore' });
    const [sent] = await once(sender, 'exit');
    assert.equal(sent, 0, 'tcpreplay failed');
    const duringFlood = updates.size;
    await sleep(1000);
    clearInterval(watch);
    const floodStatus = status(data);
    const peak = rss.stop();
    replay(v.send, http);
    await waitFor('the HTTP conversations to be processed', 20_000, () => (status(data)?.counters?.['http.requests'] ?? 0) >= HTTP_CONVERSATIONS);
    child.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, err);
    // the sensor kept reporting: the status file was rewritten several times while the flood ran
    assert.ok(duringFlood >= 3, `status.json rewritten ${duringFlood} times during the flood`);
    const tcp = floodStatus?.counters?.['flow.tcp'] ?? 0;
    const received = floodStatus?.interfaces?.[0]?.packets ?? 0;
    assert.ok(received > 0 && tcp > 0, `flood seen: ${received} packets, ${tcp} tcp flows`);
    const bound = baseRss + FLOW_MEMCAP_BYTES + RUNTIME_ALLOWANCE_BYTES;
    process.stderr.write(`resource-bounds: live flood ${received} packets received of ${LIVE_FLOOD_SYNS}, ${tcp} flows, kernel drops ${floodStatus?.interfaces?.[0]?.kernel_drops}; peak RSS ${mib(peak)} (before ${mib(baseRss)}, bound ${mib(bound)})\n`);
    // every conversation replayed after the flood is captured (starter dictionary: "ak47" in each query)
    const finalStatus = status(data);
    assert.equal(finalStatus.captures, HTTP_CONVERSATIONS, JSON.stringify(finalStatus.counters));
    assert.ok(peak < bound, `peak RSS ${mib(peak)} over the bound ${mib(bound)}`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    removeVeth(v);
  }
});

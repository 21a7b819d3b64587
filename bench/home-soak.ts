/**
 * Home soak: starts `hark home` in a child process on a temporary data directory, enrols N
 * simulated sensors by credentials, then has every sensor heartbeat and upload a small capture
 * batch in a loop over mutual TLS for the duration. Prints p50/p99 latency of heartbeat and
 * upload, requests/s, and the home process's CPU and peak RSS (from /proc, so client work in this
 * process is not counted). Asserts nothing about speed.
 *
 *   node dist/bench/home-soak.js [--sensors 200] [--seconds 60] [--batch 20] [--interval-ms 1000]
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import forge from 'node-forge';
import { Agent, request } from 'undici';
import { MAX_CAPTURES_PER_BATCH } from '../home/sensor-api.js';
import { parseStatCpuSeconds } from '../sensor/health/threads.js';
import { BenchCommandLine } from './command-line.js';

const HOME_MAIN = fileURLToPath(new URL('../home/main.js', import.meta.url));
const ADMIN_PASSWORD = 'soak benchmark password';

interface ProcSample { cpuS: number; rssKb: number; hwmKb: number }

function sampleProc(pid: number): ProcSample {
  const cpuS = parseStatCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'latin1')) ?? 0;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { cpuS, rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function json(url: string, dispatcher: Agent, method: string, body?: unknown, token?: string): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await request(url, { dispatcher, method: method as 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.body.text();
  return { status: res.statusCode, body: text === '' ? undefined : JSON.parse(text) };
}

async function startChild(dataDir: string): Promise<{ child: ChildProcess; port: number; caPem: string }> {
  const child = spawn(process.execPath, [HOME_MAIN, '--data-dir', dataDir, '--port', '0', '--listen', '127.0.0.1'], {
    env: { ...process.env, HARK_HOME_READY_FD: '1' }, stdio: ['ignore', 'pipe', 'ignore'],
  });
  const rl = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`hark home exited with ${code} before listening`)));
    rl.once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
  });
  return { child, port, caPem: readFileSync(join(dataDir, 'ca.pem'), 'utf8') };
}

async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

const cli: BenchCommandLine = new BenchCommandLine('bench/home-soak', 'Usage: node dist/bench/home-soak.js [--sensors 200] [--seconds 60] [--batch 20] [--interval-ms 1000]\n');

/** Runs the soak; a bad command line ends the process with the usage (exit 2). */
export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const { values } = cli.parse({
    args: argv,
    options: {
      sensors: { type: 'string', default: '200' },
      seconds: { type: 'string', default: '60' },
      batch: { type: 'string', default: '20' },
      'interval-ms': { type: 'string', default: '1000' },
    },
  });
  const sensors = cli.wholeNumber('--sensors', values.sensors, 'sensors', 1);
  const seconds = cli.wholeNumber('--seconds', values.seconds, 'seconds', 1);
  const batch = cli.wholeNumber('--batch', values.batch, 'captures', 1, MAX_CAPTURES_PER_BATCH);
  const intervalMs = cli.wholeNumber('--interval-ms', values['interval-ms'], 'milliseconds');
  const dir = mkdtempSync(join(tmpdir(), 'hark-home-soak-'));
  const dataDir = join(dir, 'data');
  const { child, port, caPem } = await startChild(dataDir);
  const base = `https://127.0.0.1:${port}`;
  const anon = new Agent({ connect: { ca: caPem } });
  const agents: Agent[] = [anon];
  try {
    const initial = readFileSync(join(dataDir, 'initial-admin-password'), 'utf8').trim();
    const first = await json(`${base}/v1/login`, anon, 'POST', { user: 'admin', password: initial });
    await json(`${base}/v1/password`, anon, 'POST', { current_password: initial, new_password: ADMIN_PASSWORD }, (first.body as { token: string }).token);
    const token = ((await json(`${base}/v1/login`, anon, 'POST', { user: 'admin', password: ADMIN_PASSWORD })).body as { token: string }).token;

    // One key and CSR for every simulated sensor: home names the certificate by the request's uuid.
    const keyPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
    const fkey = forge.pki.privateKeyFromPem(keyPem);
    const csr = forge.pki.createCertificationRequest();
    csr.publicKey = forge.pki.setRsaPublicKey(fkey.n, fkey.e);
    csr.setSubject([{ name: 'commonName', value: 'soak' }]);
    csr.sign(fkey, forge.md.sha256.create());
    const csrPem = forge.pki.certificationRequestToPem(csr);

    const enrolStart = performance.now();
    const sims: Array<{ id: number; uuid: string; agent: Agent }> = [];
    await pool(Array.from({ length: sensors }, (_, i) => i), 4, async (i) => {
      const made = await json(`${base}/v1/sensors`, anon, 'POST', { name: `soak-${i}`, site: 'Soak', interfaces: ['eth1'] }, token);
      const id = (made.body as { id: number }).id;
      const uuid = randomUUID();
      const enrolled = await json(`${base}/v1/enrol/credentials`, anon, 'POST', { user: 'admin', password: ADMIN_PASSWORD, sensor_id: id, uuid, hostname: `soak-${i}`, csr: csrPem });
      if (enrolled.status !== 200) throw new Error(`enrol ${i}: ${JSON.stringify(enrolled.body)}`);
      const agent = new Agent({ connect: { ca: caPem, cert: (enrolled.body as { certificate: string }).certificate, key: keyPem }, connections: 1 });
      agents.push(agent);
      sims.push({ id, uuid, agent });
    });
    const enrolS = (performance.now() - enrolStart) / 1000;

    const hbLat: number[] = [];
    const upLat: number[] = [];
    let errors = 0;
    let captures = 0;
    const start = sampleProc(child.pid!);
    // Peak RSS during the soak alone (VmHWM also covers enrolment's scrypt work).
    let soakPeakKb = start.rssKb;
    const sampler = setInterval(() => { soakPeakKb = Math.max(soakPeakKb, sampleProc(child.pid!).rssKb); }, 250);
    const clientCpu0 = process.cpuUsage();
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    await Promise.all(sims.map(async (s, si) => {
      // Spread the sensors over the first interval so they do not beat in lockstep.
      await new Promise((r) => setTimeout(r, (si / sims.length) * intervalMs));
      let seq = 0;
      while (performance.now() < end) {
        const loopStart = performance.now();
        let t = performance.now();
        const hb = await json(`${base}/v1/sensor/heartbeat`, s.agent, 'POST', {
          hark_version: 'soak', started_at: new Date().toISOString(), config_version: 1, config_source: 'home',
          counters: { 'capture.packets': seq * 1000, 'tcp.reassembly_gap': seq }, interfaces: [{ name: 'eth1', packets: seq * 1000, drops: 0 }], queue: 0, health: [],
        }).catch(() => ({ status: 0, body: undefined }));
        hbLat.push(performance.now() - t);
        if (hb.status !== 200) errors++;
        const list = Array.from({ length: batch }, (_, k) => {
          const ts = Date.now() * 1000 + k;
          return {
            event_type: 'capture', id: `${s.uuid}-${seq}-${k}`, timestamp: new Date().toISOString(), ts_us: ts, flow_id: seq, src_ip: '10.1.2.3', src_port: 50000 + k,
            dest_ip: '192.0.2.10', dest_port: 443, vlan: [], proto: 'TCP', app_proto: 'http', decrypted: true, direction: 'to_server', source: 'typed',
            field: 'search', host: 'search.example', url: `/search?q=soak+${k}`, phrase: 'our secret', category: 'grooming', severity: 1 + (k % 5), count: 1,
            context: 'we keep it as our secret until the weekend', device: { ip: '10.1.2.3', user: `pupil${k}` },
          };
        });
        t = performance.now();
        const up = await json(`${base}/v1/sensor/captures`, s.agent, 'POST', { captures: list }).catch(() => ({ status: 0, body: undefined }));
        upLat.push(performance.now() - t);
        if (up.status !== 200) errors++;
        else captures += (up.body as { accepted: number }).accepted;
        seq++;
        const wait = intervalMs - (performance.now() - loopStart);
        if (performance.now() + Math.max(0, wait) >= end) break;
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }));
    const elapsed = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    const stop = sampleProc(child.pid!);
    soakPeakKb = Math.max(soakPeakKb, stop.rssKb);
    hbLat.sort((a, b) => a - b);
    upLat.sort((a, b) => a - b);
    const requests = hbLat.length + upLat.length;
    const clientCpu = process.cpuUsage(clientCpu0);
    const clientCpuS = (clientCpu.user + clientCpu.system) / 1e6;
    const cpu = stop.cpuS - start.cpuS;
    const result = {
      sensors, seconds: Number(elapsed.toFixed(1)), batch, interval_ms: intervalMs, enrol_seconds: Number(enrolS.toFixed(1)),
      requests, requests_per_s: Number((requests / elapsed).toFixed(1)), captures_stored: captures, captures_per_s: Number((captures / elapsed).toFixed(1)), errors,
      heartbeat_ms: { p50: Number(percentile(hbLat, 50).toFixed(1)), p99: Number(percentile(hbLat, 99).toFixed(1)) },
      upload_ms: { p50: Number(percentile(upLat, 50).toFixed(1)), p99: Number(percentile(upLat, 99).toFixed(1)) },
      home_cpu_s: Number(cpu.toFixed(1)), home_cpu_pct_of_core: Number(((cpu / elapsed) * 100).toFixed(1)),
      client_cpu_pct_of_core: Number(((clientCpuS / elapsed) * 100).toFixed(1)),
      home_peak_rss_mib: Number((stop.hwmKb / 1024).toFixed(1)), home_soak_peak_rss_mib: Number((soakPeakKb / 1024).toFixed(1)), home_rss_end_mib: Number((stop.rssKb / 1024).toFixed(1)),
    };
    console.log(`home soak: ${sensors} sensors, ${result.seconds} s, batches of ${batch} every ${intervalMs} ms (enrolment took ${result.enrol_seconds} s)`);
    console.log(`  heartbeat  p50 ${result.heartbeat_ms.p50} ms  p99 ${result.heartbeat_ms.p99} ms`);
    console.log(`  upload     p50 ${result.upload_ms.p50} ms  p99 ${result.upload_ms.p99} ms`);
    console.log(`  ${result.requests_per_s} requests/s, ${result.captures_per_s} captures/s stored, ${errors} errors`);
    console.log(`  home process: ${result.home_cpu_s} s CPU (${result.home_cpu_pct_of_core}% of one core), peak RSS ${result.home_peak_rss_mib} MiB over its life (enrolment's scrypt included), ${result.home_soak_peak_rss_mib} MiB during the soak`);
    console.log(`  simulated sensors (this process): ${result.client_cpu_pct_of_core}% of one core`);
    console.log(JSON.stringify(result));
  } finally {
    await Promise.all(agents.map((a) => a.close().catch(() => {})));
    child.kill('SIGTERM');
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err) => { console.error(err); process.exitCode = 1; });
}

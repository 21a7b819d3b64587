/**
 * What the live benches (bench/live.ts, bench/soak.ts) share: a veth pair of their own, tcpreplay
 * onto one end with its own account of what it sent, `hark run` on the other end started with the
 * workload's phrases and waited for, and the sensor read back from outside (status.json, /proc,
 * captures.db). Root only: veth pairs and packet sockets. Test traffic never leaves the pair.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseStatCpuSeconds } from '../sensor/health/threads.js';
import { workloadPhrases } from './workload.js';

/** A sensor's log may hold what it saw: readable by its owner only. */
const PRIVATE_FILE_MODE = 0o600;

/** The compiled CLI beside this file (dist-x/bench/live-harness.js -> dist-x/sensor/cli/hark.js). */
export const HARK_JS = fileURLToPath(new URL('../sensor/cli/hark.js', import.meta.url));
/** Longest wait for a receiver to start listening (the 10k-phrase dictionary compiles first). */
const START_TIMEOUT_MS = 120_000;
/** Longest wait for hark to commit every capture and exit after SIGTERM. */
export const STOP_TIMEOUT_MS = 120_000;
/** The veth pair's MTU: the largest a veth takes, so no frame of a replayed capture is refused for its size. */
const VETH_MTU = 65535;

export interface Replay {
  sent: number;
  mbps: number;
  pps: number;
  failed: number;
}

export interface Veth {
  readonly send: string;
  readonly recv: string;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** What `exited` resolves to, or undefined after `ms`; the timer goes once it is decided (a pending
 * one would keep the bench's process alive for the rest of the `ms`). */
export async function exitWithin<T>(exited: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((r) => {
    timer = setTimeout(r, ms, undefined);
  });
  try {
    return await Promise.race([exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A veth pair named `<prefix><pid>a` (sender) and `...b` (receiver), up, IPv6 off. */
export function makeVeth(prefix: string): Veth {
  const base = `${prefix}${process.pid % 100000}`;
  const v = { send: `${base}a`, recv: `${base}b` };
  ip('link', 'add', v.send, 'type', 'veth', 'peer', 'name', v.recv);
  for (const n of [v.send, v.recv]) {
    // no IPv6 router/neighbour solicitations: only the replayed packets cross the pair
    try {
      writeFileSync(`/proc/sys/net/ipv6/conf/${n}/disable_ipv6`, '1');
    } catch {
      // no IPv6 on this kernel
    }
    // frames as large as a capture holds: one taken on a host with GRO on has TCP segments of up to 64 KiB
    ip('link', 'set', n, 'mtu', String(VETH_MTU));
    ip('link', 'set', n, 'up');
  }
  return v;
}

/** Deletes the pair (both ends go with either); quiet when it is already gone. */
export function removeVeth(v: Veth): void {
  try {
    ip('link', 'del', v.send);
  } catch {
    // already gone
  }
}

function sysfsCounter(dev: string, name: string): number {
  try {
    return Number(readFileSync(`/sys/class/net/${dev}/statistics/${name}`, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

/** Backlog drops of every CPU (/proc/net/softnet_stat, second column, hex). */
function softnetDrops(): number {
  try {
    return readFileSync('/proc/net/softnet_stat', 'utf8')
      .trim()
      .split('\n')
      .reduce((s, l) => s + parseInt(l.trim().split(/\s+/)[1] ?? '0', 16), 0);
  } catch {
    return 0;
  }
}

/** veth drops (receiver rx_dropped + sender tx_dropped) and softnet backlog drops so far. */
export function pathDrops(v: Veth): number {
  return sysfsCounter(v.recv, 'rx_dropped') + sysfsCounter(v.send, 'tx_dropped') + softnetDrops();
}

export interface ReplayOptions {
  /** Mbit/s, or 0 for --topspeed. */
  readonly mbps: number;
  /** Times the capture is sent, each with addresses of its own (--unique-ip); 0: until `seconds` run out. */
  readonly loops?: number;
  /** Stop sending after this long (--duration). */
  readonly seconds?: number;
  /** false: --no-flow-stats, so a long run with new addresses every pass does not grow tcpreplay's flow table. */
  readonly flowStats?: boolean;
  /** Stops the sender early (SIGINT: tcpreplay still reports what it sent). */
  readonly signal?: AbortSignal;
}

/** tcpreplay onto `iface` and its own account of what it sent. */
export async function tcpreplay(iface: string, pcap: string, o: ReplayOptions): Promise<Replay> {
  const loops = o.loops ?? 1;
  // unique addresses per pass, so every pass makes new flows
  const looping = loops !== 1 ? ['--loop', String(loops), '--unique-ip'] : [];
  const duration = o.seconds !== undefined ? ['--duration', String(Math.ceil(o.seconds))] : [];
  const flowStats = o.flowStats === false ? ['--no-flow-stats'] : [];
  const child = spawn('tcpreplay', ['-i', iface, ...(o.mbps > 0 ? ['--mbps', String(o.mbps)] : ['--topspeed']), ...looping, ...duration, ...flowStats, pcap], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (o.signal?.aborted === true) child.kill('SIGINT');
  else o.signal?.addEventListener('abort', () => child.kill('SIGINT'), { once: true });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const [code] = await once(child, 'exit');
  const sent = /Actual: (\d+) packets/.exec(out);
  const rated = /Rated: [\d.]+ Bps, ([\d.]+) Mbps, ([\d.]+) pps/.exec(out);
  if (code !== 0 || sent === null || rated === null) throw new Error(`tcpreplay on "${iface}" failed (exit ${code}): ${out.trim()}`);
  return { sent: Number(sent[1]), mbps: Number(rated[1]), pps: Number(rated[2]), failed: Number(/Failed packets:\s+(\d+)/.exec(out)?.[1] ?? 0) };
}

/** The sensor's status.json in `dir`, or undefined while it is missing or half written. */
export function readStatus(dir: string): any {
  try {
    return JSON.parse(readFileSync(join(dir, 'status.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds of a process so far. */
export function cpuSeconds(pid: number | undefined): number {
  try {
    return parseStatCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'latin1')) ?? 0;
  } catch {
    return 0;
  }
}

/** A size line of /proc/PID/status (`VmRSS`, `VmHWM`: every thread of the process) in bytes; 0 once the process is gone. */
export function procStatusBytes(pid: number | undefined, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Captures stored (rows) and the sum of their `count` (a merged capture is one row with its final count). */
export function storedCaptures(db: string): { rows: number; countSum: number } {
  const Sqlite = createRequire(import.meta.url)('better-sqlite3') as new (f: string, o?: object) => { prepare(s: string): { get(): { rows: number; n: number | null } }; close(): void };
  const conn = new Sqlite(db, { readonly: true });
  try {
    const r = conn.prepare('SELECT COUNT(*) AS rows, SUM(count) AS n FROM captures').get();
    return { rows: r.rows, countSum: r.n ?? 0 };
  } finally {
    conn.close();
  }
}

/** The workload's phrases as a `hark run --dictionary` CSV at `csv` (bench/workload.ts workloadPhrase: whole words, any case); returns how many. */
export function writeWorkloadDictionary(workloadDir: string, csv: string): number {
  const phrases = workloadPhrases(workloadDir);
  writeFileSync(csv, `phrase,category,severity,embedded\n${phrases.map((p) => `"${p}",bench,3,false`).join('\n')}\n`);
  return phrases.length;
}

/** `hark run` arguments both live benches use: standalone, no API, the status file every `statusIntervalS`. */
export function harkRunArgs(iface: string, capture: 'ring' | 'pcap', dictionaryCsv: string, dataDir: string, statusIntervalS: number, extra: readonly string[]): string[] {
  return [HARK_JS, 'run', '-i', iface, '--capture', capture, '--mode', 'standalone', '--dictionary', dictionaryCsv,
    '--data-dir', dataDir, '--no-api', '--status-interval', String(statusIntervalS), '--stats-interval', '0', '--watchdog-minutes', '60', ...extra];
}

/**
 * A receiver whose stderr is collected (both say "listening on" once their capture is open); its
 * stdout is dropped, or written to `stdoutFile` (V8's `--trace-gc` log, say: it prints there).
 */
export function spawnListener(cmd: string, args: string[], stdoutFile?: string): { child: ChildProcess; stderr: () => string; exited: Promise<unknown[]> } {
  const fd = stdoutFile === undefined ? undefined : openSync(stdoutFile, 'w', PRIVATE_FILE_MODE);
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, { stdio: ['ignore', fd ?? 'ignore', 'pipe'] });
  } finally {
    // the child has its own copy of the descriptor
    if (fd !== undefined) closeSync(fd);
  }
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return { child, stderr: () => err, exited: once(child, 'exit') };
}

/** Waits for the receiver's "listening on", polling every `pollMs`; throws with its stderr if it exits or times out. */
export async function listening(what: string, child: ChildProcess, stderr: () => string, pollMs: number): Promise<void> {
  const end = Date.now() + START_TIMEOUT_MS;
  while (!stderr().includes('listening on')) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`${what} did not start: ${stderr().trim()}`);
    await sleep(pollMs);
  }
}

/**
 * Live figure for `npm run bench`: the benchmark workload replayed with tcpreplay onto a veth pair
 * at stepped rates, into the real `hark run` (ring capture, then libpcap, with the workload's
 * 10,000 phrases) and into `tcpdump -w /dev/null` on the same path in the same run. A step passes
 * when nothing was lost (kernel drops 0, interface drops 0, every sent packet received) and, for
 * Hark, every planted phrase was found (match.hits and the stored captures' counts both equal the
 * generator's ground truth) and its worker threads trailed the link by at most MAX_LAG_S when the
 * sender stopped. Prints a table and the highest passing rate per tool. Root only.
 *
 *   node dist/bench/live.js [--capture ring,pcap] [--first MBPS] [--low MBPS] [--steps N] [--rates M1,M2 (0 = top speed)] [--workers N] [--group-frames N] [--skip-tcpdump]
 *                           [--pcap FILE [--loop N]] [--workload DIR] [--no-bypass] [--key-wait SECS] [--warm-up MS]
 *
 * --workers N, --group-frames N, --no-bypass, --key-wait SECS and --warm-up MS are handed to `hark run` (default:
 * hark's own choice). --workload DIR reads (or generates) the workload there, not in bench/.cache/wl.
 * --pcap FILE replays another capture (with the workload's phrases as the dictionary): it has no
 * ground truth, so a step then passes on drops, received packets and lag alone. --loop N replays
 * it N times, each with addresses of its own (tcpreplay --unique-ip), so every pass makes new flows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BenchCommandLine } from './command-line.js';
import { cpuSeconds, exitWithin, harkRunArgs, listening, makeVeth, pathDrops, procStatusBytes, readStatus, removeVeth, sleep, spawnListener, STOP_TIMEOUT_MS, storedCaptures, tcpreplay, writeWorkloadDictionary, type Veth } from './live-harness.js';
import { DEFAULT_WORKLOAD_DIR, ensureWorkload, plantedTotal, RUN_NODE_FLAGS } from './workload.js';
import type { ThreadsCpu } from '../sensor/health/threads.js';

/** tcpdump's capture buffer in KiB (-B): 256 MiB, what the issue names. */
const TCPDUMP_BUFFER_KIB = 262_144;
/** The sensor's status file period during a step: drain is judged from it. */
const STATUS_INTERVAL_S = 0.5;
/** After the sender ends, a receiver whose packet count has not moved for this long is done. */
const DRAIN_QUIET_MS = 2000;
/**
 * A step with worker threads passes only if, when the sender stops, the workers trail the link by
 * at most this long (the bytes waiting in their rings at the step's rate): a ring larger than the
 * lag could otherwise hide a sensor slower than the link for a replay that ends before it fills.
 */
const MAX_LAG_S = 1;
/** Rate steps are searched to within this fraction of the rate. */
const SEARCH_RESOLUTION = 0.08;

export type LiveTool = 'hark ring' | 'hark pcap' | 'tcpdump';

export interface LiveStep {
  readonly tool: LiveTool;
  /** Requested tcpreplay rate in Mbit/s, or 0 for --topspeed. */
  readonly requestedMbps: number;
  /** What tcpreplay reports it sent ("Rated:" line). */
  readonly mbps: number;
  readonly pps: number;
  readonly sent: number;
  /** Packets the receiver saw. */
  readonly received: number;
  /** Dropped by the capture socket (TPACKET ring tp_drops / pcap_stats ps_drop); undefined when not reported. */
  readonly kernelDrops: number | undefined;
  /** veth drops (receiver rx_dropped + sender tx_dropped) and softnet backlog drops during the step. */
  readonly interfaceDrops: number;
  /** Hark with worker threads: captured frames lost because the workers' rings were full. */
  readonly handoffDrops?: number;
  /** Hark only: match.hits and the sum of the stored captures' counts. */
  readonly hits?: number;
  readonly countSum?: number;
  /** Hark only: peak RSS of the sensor process in bytes (VmHWM). */
  readonly peakRss?: number;
  readonly ok: boolean;
  readonly note: string;
}

export interface LiveResult {
  readonly steps: readonly LiveStep[];
  /** The highest passing step per tool, when any passed. */
  readonly best: Partial<Record<LiveTool, LiveStep>>;
  /** Planted phrase occurrences (the generator's ground truth). */
  /** Planted phrase occurrences a step must find (undefined: a capture without ground truth). */
  readonly planted: number | undefined;
}

/** Times tcpreplay sends the capture (--loop). */
let replayLoops = 1;

/** Each thread role's share of a core between two status files' `threads` (capture, workers, other). */
function threadShares(before: ThreadsCpu | undefined, after: ThreadsCpu | undefined, seconds: number): string | undefined {
  if (before === undefined || after === undefined || seconds <= 0) return undefined;
  const pct = (a: number, b: number): string => `${Math.round((100 * (a - b)) / seconds)}%`;
  const workers = after.workers.map((w, k) => pct(w.cpu_seconds, before.workers[k]?.tid === w.tid ? before.workers[k].cpu_seconds : 0));
  return `capture thread ${pct(after.capture.cpu_seconds, before.capture.cpu_seconds)}${workers.length > 0 ? `, workers ${workers.join(' ')}` : ''}, other threads ${pct(after.other.cpu_seconds, before.other.cpu_seconds)}`;
}

/** One step of `hark run` on the receiving end: start, replay, drain, SIGTERM, read status and store. */
async function harkStep(tool: 'hark ring' | 'hark pcap', v: Veth, pcap: string, dictionaryCsv: string, planted: number | undefined, mbps: number, extra: readonly string[]): Promise<LiveStep> {
  const dir = mkdtempSync(join(tmpdir(), 'hark-live-'));
  const args = harkRunArgs(v.recv, tool === 'hark ring' ? 'ring' : 'pcap', dictionaryCsv, dir, STATUS_INTERVAL_S, extra);
  const { child, stderr, exited } = spawnListener(process.execPath, [...RUN_NODE_FLAGS, ...args]);
  try {
    await listening('hark run', child, stderr, 100);
    const drops0 = pathDrops(v);
    const cpu0 = cpuSeconds(child.pid);
    const threads0 = readStatus(dir)?.threads as ThreadsCpu | undefined;
    const t0 = Date.now();
    const r = await tcpreplay(v.send, pcap, { mbps, loops: replayLoops });
    // how far the workers trail the link as the sender stops (the status is at most one interval old)
    const backlogBytes = Number(readStatus(dir)?.handoff_backlog?.bytes ?? 0);
    const lagS = r.mbps > 0 ? backlogBytes / ((r.mbps * 1e6) / 8) : 0;
    // drain: the ring or libpcap buffer may still hold what the sensor has not processed yet
    let last = -1;
    let quietSince = Date.now();
    for (;;) {
      const n = readStatus(dir)?.interfaces?.[0]?.packets ?? 0;
      if (n !== last) {
        last = n;
        quietSince = Date.now();
      } else if (n >= r.sent || Date.now() - quietSince > DRAIN_QUIET_MS) break;
      await sleep(200);
    }
    const rss = procStatusBytes(child.pid, 'VmHWM');
    const cpuShare = (cpuSeconds(child.pid) - cpu0) / ((Date.now() - t0) / 1000);
    // the status file is at most one interval old at both ends: the split is over about the same window
    const split = threadShares(threads0, readStatus(dir)?.threads as ThreadsCpu | undefined, (Date.now() - t0) / 1000);
    child.kill('SIGTERM');
    const stopped = await exitWithin(exited, STOP_TIMEOUT_MS);
    if (stopped === undefined) throw new Error(`hark run did not stop within ${STOP_TIMEOUT_MS} ms`);
    const [code] = stopped;
    if (code !== 0) throw new Error(`hark run exited with ${code}: ${stderr().trim()}`);
    const st = readStatus(dir);
    const iface = st?.interfaces?.[0] ?? {};
    const counters = (st?.counters ?? {}) as Record<string, number>;
    const received = Number(iface.packets ?? 0);
    const kernelDrops = iface.kernel_drops !== undefined ? Number(iface.kernel_drops) : undefined;
    const interfaceDrops = pathDrops(v) - drops0;
    const handoffDrops = Number(iface.handoff_drops ?? 0);
    const hits = counters['match.hits'] ?? 0;
    const countSum = storedCaptures(join(dir, 'captures.db')).countSum;
    const lost = r.sent - received;
    const found = planted === undefined || (hits === planted && countSum === planted);
    const ok = (kernelDrops ?? 0) === 0 && interfaceDrops === 0 && handoffDrops === 0 && lost <= 0 && r.failed === 0 && found && lagS <= MAX_LAG_S;
    const notes: string[] = [];
    if (lost > 0) notes.push(`${lost} not received`);
    if (handoffDrops > 0) notes.push(`${handoffDrops} lost at the worker hand-off`);
    if (r.failed > 0) notes.push(`${r.failed} tcpreplay send failures`);
    if (!found) notes.push(`${planted! - hits} planted phrases missed`);
    if (counters['flow.bypassed']) notes.push(`${counters['flow.bypassed']} flows bypassed`);
    if (backlogBytes > 0) notes.push(`workers ${lagS.toFixed(1)} s behind when the sender stopped${lagS > MAX_LAG_S ? ` (over ${MAX_LAG_S} s: not sustained)` : ''}`);
    // a sensor far below one core while it dropped was starved by other processes, not too slow
    notes.push(`sensor CPU ${(cpuShare * 100).toFixed(0)}% of a core${split !== undefined ? ` (${split})` : ''}`);
    const engine = /engine (\w+)/.exec(stderr())?.[1];
    if (engine !== undefined) notes.push(`engine ${engine}`);
    const threads = /(\d+) worker threads/.exec(stderr())?.[1];
    if (threads !== undefined) notes.push(`${threads} worker thread${threads === '1' ? '' : 's'}`);
    if (counters['pipeline.exception']) notes.push(`${counters['pipeline.exception']} pipeline exceptions`);
    return { tool, requestedMbps: mbps, mbps: r.mbps, pps: r.pps, sent: r.sent, received, kernelDrops, interfaceDrops, handoffDrops, hits, countSum, peakRss: rss, ok, note: notes.join('; ') };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One step of `tcpdump -i IF -w /dev/null -B 262144`: its own "captured" and "dropped by kernel" lines. */
async function tcpdumpStep(v: Veth, pcap: string, mbps: number): Promise<LiveStep> {
  const { child, stderr, exited } = spawnListener('tcpdump', ['-i', v.recv, '-n', '-w', '/dev/null', '-B', String(TCPDUMP_BUFFER_KIB)]);
  try {
    await listening('tcpdump', child, stderr, 50);
    const drops0 = pathDrops(v);
    const r = await tcpreplay(v.send, pcap, { mbps, loops: replayLoops });
    await sleep(DRAIN_QUIET_MS);
    child.kill('SIGTERM');
    await exited;
    const captured = Number(/(\d+) packets? captured/.exec(stderr())?.[1] ?? 0);
    const kernelDrops = Number(/(\d+) packets? dropped by kernel/.exec(stderr())?.[1] ?? NaN);
    const interfaceDrops = pathDrops(v) - drops0;
    const lost = r.sent - captured;
    const ok = kernelDrops === 0 && interfaceDrops === 0 && lost <= 0 && r.failed === 0;
    const note = [lost > 0 ? `${lost} not captured` : '', r.failed > 0 ? `${r.failed} tcpreplay send failures` : ''].filter(Boolean).join('; ');
    return { tool: 'tcpdump', requestedMbps: mbps, mbps: r.mbps, pps: r.pps, sent: r.sent, received: captured, kernelDrops, interfaceDrops, ok, note };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  }
}

/**
 * The highest passing rate: top speed first (when it passes, that is the figure), then `first`,
 * then bisection between the best pass and the lowest failure, `steps` runs at most in all.
 */
async function search(run: (mbps: number) => Promise<LiveStep>, first: number, low: number, steps: number, log: (s: LiveStep) => void, fixed?: number[]): Promise<LiveStep | undefined> {
  if (fixed !== undefined) {
    let pass: LiveStep | undefined;
    for (const r of fixed) {
      const s = await run(r);
      log(s);
      if (s.ok && (pass === undefined || s.mbps > pass.mbps)) pass = s;
    }
    return pass;
  }
  const top = await run(0);
  log(top);
  if (top.ok) return top;
  let best: LiveStep | undefined;
  let failAt = top.mbps;
  let next = Math.min(first, top.mbps * 0.9);
  for (let i = 1; i < steps; i++) {
    const s = await run(Math.round(next));
    log(s);
    if (s.ok) {
      best = s;
    } else {
      failAt = Math.min(failAt, s.requestedMbps);
    }
    const lo = best?.requestedMbps ?? 0;
    if (best === undefined && s.requestedMbps <= low) break;
    if (failAt - lo <= failAt * SEARCH_RESOLUTION) break;
    next = best === undefined ? Math.max(low, s.requestedMbps / 2) : (lo + failAt) / 2;
  }
  return best;
}

function fmtStep(s: LiveStep): string[] {
  return [
    s.tool,
    s.requestedMbps === 0 ? 'top' : String(s.requestedMbps),
    s.mbps.toFixed(0),
    (s.pps / 1000).toFixed(0) + 'k',
    String(s.sent),
    String(s.received),
    s.kernelDrops === undefined ? 'n/a' : String(s.kernelDrops),
    String(s.interfaceDrops),
    s.hits === undefined ? '' : `${s.hits}/${s.countSum}`,
    s.peakRss === undefined ? '' : (s.peakRss / 1048576).toFixed(0),
    s.ok ? 'yes' : 'no',
    s.note,
  ];
}

function printTable(rows: string[][], out: (s: string) => void): void {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) out(`${r.map((c, i) => (i === 0 || i === r.length - 1 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ')}\n`);
}

const cli: BenchCommandLine = new BenchCommandLine(
  'bench/live',
  'Usage: node dist/bench/live.js [--capture ring,pcap] [--first MBPS] [--low MBPS] [--steps N] [--rates M1,M2 (0 = top speed)] [--workers N] [--group-frames N] [--skip-tcpdump]\n' +
    '                            [--pcap FILE [--loop N]] [--workload DIR] [--no-bypass] [--key-wait SECS] [--warm-up MS]\n',
);

/**
 * Runs the live figure; resolves with every step (and prints them). Throws when not root; a bad
 * command line ends the process with the usage (exit 2).
 */
export async function main(argv: string[] = process.argv.slice(2)): Promise<LiveResult> {
  const { values } = cli.parse({
    args: argv,
    options: {
      capture: { type: 'string', default: 'ring,pcap' },
      low: { type: 'string', default: '100' },
      first: { type: 'string', default: '1000' },
      steps: { type: 'string', default: '5' },
      rates: { type: 'string' },
      workload: { type: 'string', default: DEFAULT_WORKLOAD_DIR },
      'skip-tcpdump': { type: 'boolean', default: false },
      workers: { type: 'string' },
      'group-frames': { type: 'string' },
      pcap: { type: 'string' },
      loop: { type: 'string', default: '1' },
      'no-bypass': { type: 'boolean', default: false },
      'key-wait': { type: 'string' },
      'warm-up': { type: 'string' },
    },
  });
  const captures = values.capture.split(',').map((c) => cli.oneOf('--capture', c.trim(), ['ring', 'pcap']));
  const low = cli.positiveNumber('--low', values.low, 'Mbit/s');
  const first = cli.positiveNumber('--first', values.first, 'Mbit/s');
  const steps = cli.wholeNumber('--steps', values.steps, 'steps', 2);
  // --rates 0,500,1000: exactly these steps (0 = top speed) instead of the search
  const fixed = values.rates?.split(',').map((r) => (r.trim() === '0' ? 0 : cli.positiveNumber('--rates', r.trim(), 'Mbit/s')));
  const loops = cli.wholeNumber('--loop', values.loop, 'replays', 1);
  if (values.pcap !== undefined) cli.readableFile('capture file', values.pcap);
  if (process.getuid?.() !== 0) throw new Error('The live bench needs root (veth pairs, packet sockets)');
  const out = (s: string): void => void process.stdout.write(s);
  const wl = values.workload;
  ensureWorkload(wl);
  const pcap = values.pcap ?? join(wl, 'workload.pcap');
  const planted = values.pcap === undefined ? plantedTotal(wl) : undefined;
  replayLoops = loops;
  const extra = [
    ...(values.workers !== undefined ? ['--workers', values.workers] : []),
    ...(values['group-frames'] !== undefined ? ['--group-frames', values['group-frames']] : []),
    ...(values['no-bypass'] ? ['--no-bypass'] : []),
    ...(values['key-wait'] !== undefined ? ['--key-wait', values['key-wait']] : []),
    ...(values['warm-up'] !== undefined ? ['--warm-up', values['warm-up']] : []),
  ];
  const work = mkdtempSync(join(tmpdir(), 'hark-live-bench-'));
  const csv = join(work, 'phrases.csv');
  const phraseCount = writeWorkloadDictionary(wl, csv);
  const all: LiveStep[] = [];
  const best: Partial<Record<LiveTool, LiveStep>> = {};
  const log = (s: LiveStep): void => {
    all.push(s);
    process.stderr.write(`live: ${fmtStep(s).join(' ')}\n`);
  };
  const v = makeVeth('hkl');
  try {
    out(`live: ${pcap}${replayLoops > 1 ? ` x${replayLoops}` : ''} replayed onto veth ${v.send} -> ${v.recv}; ${phraseCount} phrases, ${planted ?? 'no'} planted occurrences${extra.length > 0 ? `; hark run ${extra.join(' ')}` : ''}; load average ${loadavg()[0].toFixed(1)} on ${cpus().length} cores\n`);
    if (!values['skip-tcpdump']) {
      const b = await search((r) => tcpdumpStep(v, pcap, r), first * 2, low, steps, log, fixed);
      if (b !== undefined) best.tcpdump = b;
    }
    for (const capture of captures) {
      const tool: LiveTool = capture === 'ring' ? 'hark ring' : 'hark pcap';
      const b = await search((r) => harkStep(tool, v, pcap, csv, planted, r, extra), first, low, steps, log, fixed);
      if (b !== undefined) best[tool] = b;
    }
  } finally {
    removeVeth(v);
    rmSync(work, { recursive: true, force: true });
  }
  out(`\nlive capture (tcpreplay onto a veth pair; pass = no kernel/interface drop, every packet received${planted !== undefined ? ', hark: every planted phrase found' : ''})\n`);
  printTable([['tool', 'asked Mbit/s', 'Mbit/s', 'pkt/s', 'sent', 'received', 'kernel drops', 'if drops', 'hits/count sum', 'peak RSS MB', 'pass', 'note'], ...all.map(fmtStep)], out);
  out(`\nhighest passing rate (load average at the end ${loadavg()[0].toFixed(1)}: other processes on the machine share its cores):\n`);
  for (const tool of ['tcpdump', 'hark ring', 'hark pcap'] as const) {
    const b = best[tool];
    if (all.some((s) => s.tool === tool)) out(`  ${tool.padEnd(9)}  ${b === undefined ? 'none passed' : `${b.mbps.toFixed(0)} Mbit/s, ${Math.round(b.pps)} packets/s${b.requestedMbps === 0 ? ' (tcpreplay top speed)' : ''}`}\n`);
  }
  const t = best.tcpdump;
  const h = best['hark ring'];
  if (t !== undefined && h !== undefined) {
    // tcpdump passing every step it was given (or tcpreplay's top speed) has not found its limit:
    // the ratio is then an upper bound of hark's share, not a measure of it.
    const capped = t.requestedMbps !== 0 && all.every((s) => s.tool !== 'tcpdump' || s.ok);
    out(`  hark ring / tcpdump: ${capped ? 'at most ' : ''}${(h.mbps / t.mbps).toFixed(2)}${capped ? ' (tcpdump passed every rate asked: its limit is higher)' : ''} (target: 1 Gbit/s, i.e. at least 0.5)\n`);
  }
  return { steps: all, best, planted };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (r) => {
      process.exitCode = r.best['hark ring'] !== undefined || r.best['hark pcap'] !== undefined ? 0 : 1;
    },
    (err: Error) => {
      process.stderr.write(`${cli.name}: ${err.message}\n`);
      process.exitCode = 2;
    },
  );
}

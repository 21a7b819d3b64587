/**
 * Soak: does `hark run` hold its memory steady when it runs all day? Starts `hark run` (ring
 * capture, its default workers, the workload's 10,000 phrases) on a veth pair of its own and has
 * tcpreplay send the benchmark workload at a fixed, modest rate, pass after pass, each pass with
 * addresses of its own (--unique-ip) so every pass makes new flows. Every few seconds it prints the
 * sensor process's RSS (/proc/PID/status VmRSS: every thread, workers included) beside the
 * sensor's own status (flows, inspection memory, captures, drops) and its memory breakdown (heap of
 * the capture thread, of the workers summed, their young generations summed, shared rings and
 * tables, other: native); at the end, the RSS at the start of the second half and at the end, the
 * least-squares slope of RSS over the second half in MB an hour, the peak, the breakdown at the
 * last sample, the captures stored and the drops. It never fails on speed or growth: it exits 1
 * only when the sensor dies or the setup fails (2 on a bad command line, 130 when interrupted).
 * Root only.
 *
 *   node dist/bench/soak.js [--minutes 10] [--every 10] [--rate 100] [--workers N] [--workload DIR] [--sensor-stdout FILE]
 *
 * --sensor-stdout keeps what the sensor prints on stdout, which is where V8 writes the log that
 * HARK_BENCH_NODE_FLAGS=--trace-gc asks for (every collection of every thread, with heap sizes).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { BenchCommandLine } from './command-line.js';
import { cpuSeconds, exitWithin, harkRunArgs, listening, makeVeth, procStatusBytes, readStatus, removeVeth, spawnListener, STOP_TIMEOUT_MS, storedCaptures, tcpreplay, writeWorkloadDictionary, type Replay } from './live-harness.js';
import { leastSquaresSlope } from './stats.js';
import { summarizeMemory, type MemorySummary } from '../sensor/health/memory.js';
import { DEFAULT_WORKLOAD_DIR, ensureWorkload, RUN_NODE_FLAGS } from './workload.js';

/** The sensor's status file period: a sample reads a status at most this old. */
const STATUS_INTERVAL_S = 1;
/** tcpreplay stops itself after --duration; past this much more, the bench stops it. */
const REPLAY_GRACE_MS = 30_000;
/** A sample this soon after the previous one (the sender ended on a grid point) would repeat it. */
const MIN_SAMPLE_GAP_MS = 1000;
const MB = 1024 * 1024;
const SECONDS_PER_HOUR = 3600;
/** What `process.exitCode` says when the run was interrupted (SIGINT/SIGTERM): 128 + SIGINT. */
const INTERRUPTED_EXIT_CODE = 130;

/** One sample of the sensor's resident memory, `seconds` after the sender started. */
export interface RssSample {
  readonly seconds: number;
  readonly rssBytes: number;
}

export interface RssTrend {
  /** The first sample at or after half the run. */
  readonly secondHalfStart: RssSample;
  readonly end: RssSample;
  /** Least-squares slope of RSS over the second half's samples, in MB (2^20 bytes) an hour; NaN with fewer than two. */
  readonly slopeMbPerHour: number;
  readonly secondHalfSamples: number;
  readonly peakBytes: number;
  /** The lowest RSS in each quarter of the run's span (fewer when a quarter has no sample): with a
   * collector that lets the heap swing between major collections, rising lows are the leak. */
  readonly quarterLowBytes: readonly number[];
}

/**
 * How RSS moved: the second half is every sample from half the run's span on (the run's span is
 * the last sample's time, so an interrupted run is halved where it stopped). The first half holds
 * the start-up and the filling of bounded structures; growth that goes on after that is the leak.
 * Undefined for no samples.
 */
export function rssTrend(samples: readonly RssSample[]): RssTrend | undefined {
  if (samples.length === 0) return undefined;
  const end = samples[samples.length - 1];
  const second = samples.filter((s) => s.seconds >= end.seconds / 2);
  return {
    secondHalfStart: second[0],
    end,
    slopeMbPerHour: leastSquaresSlope(second.map((s) => s.seconds / SECONDS_PER_HOUR), second.map((s) => s.rssBytes / MB)),
    secondHalfSamples: second.length,
    peakBytes: Math.max(...samples.map((s) => s.rssBytes)),
    quarterLowBytes: quarterLows(samples, end.seconds),
  };
}

/** The lowest RSS among the samples of each quarter of [0, span] (the last quarter includes span). */
function quarterLows(samples: readonly RssSample[], span: number): number[] {
  const lows: number[] = [Infinity, Infinity, Infinity, Infinity];
  for (const s of samples) {
    const q = span === 0 ? 0 : Math.min(3, Math.floor((4 * s.seconds) / span));
    lows[q] = Math.min(lows[q], s.rssBytes);
  }
  return lows.filter((b) => b !== Infinity);
}

export interface SoakOptions {
  readonly minutes: number;
  readonly everyS: number;
  readonly mbps: number;
  readonly workers: number | undefined;
  readonly workload: string;
  /** Where the sensor's stdout goes (V8's --trace-gc log, with HARK_BENCH_NODE_FLAGS=--trace-gc); undefined: dropped. */
  readonly sensorStdout: string | undefined;
}

const cli: BenchCommandLine = new BenchCommandLine('bench/soak', 'Usage: node dist/bench/soak.js [--minutes 10] [--every 10] [--rate 100] [--workers N] [--workload DIR] [--sensor-stdout FILE]\n');

/** The command line as options; a bad one ends the process with the problem and the usage (exit 2). */
export function parseSoakArgs(argv: readonly string[]): SoakOptions {
  const { values } = cli.parse({
    args: [...argv],
    options: {
      minutes: { type: 'string', default: '10' },
      every: { type: 'string', default: '10' },
      rate: { type: 'string', default: '100' },
      workers: { type: 'string' },
      workload: { type: 'string', default: DEFAULT_WORKLOAD_DIR },
      'sensor-stdout': { type: 'string' },
    },
  });
  const minutes = cli.positiveNumber('--minutes', values.minutes, 'minutes');
  const everyS = cli.positiveNumber('--every', values.every, 'seconds');
  if (everyS > minutes * 60) cli.fail(`--every ${values.every} is longer than the run (--minutes ${values.minutes})`);
  return {
    minutes,
    everyS,
    mbps: cli.positiveNumber('--rate', values.rate, 'Mbit/s'),
    workers: values.workers === undefined ? undefined : cli.wholeNumber('--workers', values.workers, 'worker threads'),
    workload: values.workload,
    sensorStdout: values['sensor-stdout'],
  };
}

/** What one sample line shows besides RSS, from the sensor's status file. */
interface StatusSample {
  flows: number;
  memuseBytes: number;
  storeHeld: number;
  captures: number;
  packets: number;
  kernelDrops: number;
  handoffDrops: number;
  interfaceDrops: number;
  /** The status file's memory breakdown (undefined from a sensor that does not write one). */
  memory: MemorySummary | undefined;
}

function statusSample(dir: string): StatusSample | undefined {
  const st = readStatus(dir);
  if (st === undefined) return undefined;
  const iface = st.interfaces?.[0] ?? {};
  const c = (st.counters ?? {}) as Record<string, number>;
  return {
    flows: Number(st.flows_active ?? 0),
    memuseBytes: c['app_layer.memuse'] ?? 0,
    storeHeld: c['store.held'] ?? 0,
    captures: Number(st.captures ?? 0),
    packets: Number(iface.packets ?? 0),
    kernelDrops: Number(iface.kernel_drops ?? 0),
    handoffDrops: Number(iface.handoff_drops ?? 0),
    interfaceDrops: Number(iface.interface_drops ?? 0),
    memory: summarizeMemory(st.memory),
  };
}

/** A sample's breakdown in MB (2^20 bytes), '?' where the status has none: capture heap, workers' heap, young gen, shared, other. */
export function memoryCells(m: MemorySummary | undefined): string[] {
  if (m === undefined) return ['?', '?', '?', '?', '?'];
  const cell = (b: number | undefined): string => (b === undefined ? '?' : mb(b));
  return [cell(m.captureHeapBytes), cell(m.workerHeapBytes.reduce((t, b) => t + b, 0)), cell(m.youngBytes), cell(m.sharedBytes), cell(m.otherBytes)];
}

/** The end summary's breakdown line: what RSS is made of at the last sample. */
export function memoryBreakdown(m: MemorySummary | undefined): string {
  if (m === undefined) return 'no memory section in the status file';
  const [capture, workers, young, shared, other] = memoryCells(m);
  return `capture heap ${capture}, workers' heap ${workers} (${m.workerHeapBytes.length} workers), young generation ${young} of those, external ${mb(m.externalBytes)}, shared ${shared}, other ${other} MB of RSS ${m.rssBytes === undefined ? '?' : mb(m.rssBytes)} MB`;
}

const COLUMNS = ['time', 'RSS MB', 'CPU %', 'flows', 'memuse MB', 'held', 'captures', 'packets', 'drops k/h/i', 'cap heap', 'wrk heap', 'young', 'shared', 'other'];

function row(cells: readonly string[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(6) : c.padStart(Math.max(COLUMNS[i].length, 9)))).join('  ');
}

function clock(seconds: number): string {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

const mb = (bytes: number): string => (bytes / MB).toFixed(1);

/** Runs the soak and prints it; resolves with the exit code. Throws when the setup fails or the sensor dies. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const o = parseSoakArgs(argv);
  if (process.getuid?.() !== 0) throw new Error('The soak bench must run as root: it creates a veth pair and opens packet sockets on it (sudo node dist/bench/soak.js)');
  const out = (s: string): void => void process.stdout.write(s);
  ensureWorkload(o.workload);
  const pcap = join(o.workload, 'workload.pcap');
  // one signal for every reason to stop sampling early: interrupted, the sensor gone, the sender done
  const stop = new AbortController();
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const v = makeVeth('hkx');
  let work: string | undefined;
  try {
    work = mkdtempSync(join(tmpdir(), 'hark-soak-'));
    const dataDir = join(work, 'data');
    mkdirSync(dataDir);
    const csv = join(work, 'phrases.csv');
    const phrases = writeWorkloadDictionary(o.workload, csv);
    const extra = o.workers !== undefined ? ['--workers', String(o.workers)] : [];
    const { child, stderr, exited } = spawnListener(process.execPath, [...RUN_NODE_FLAGS, ...harkRunArgs(v.recv, 'ring', csv, dataDir, STATUS_INTERVAL_S, extra)], o.sensorStdout);
    try {
      await listening('hark run', child, stderr, 100);
      const threads = /(\d+) worker threads/.exec(stderr())?.[1] ?? '0';
      void exited.then(() => stop.abort());
      out(`soak: ${pcap} at ${o.mbps} Mbit/s for ${o.minutes} min, every pass with addresses of its own, onto veth ${v.send} -> ${v.recv}; hark run --capture ring, ${threads} worker threads, ${phrases} phrases; load average ${loadavg()[0].toFixed(1)} on ${cpus().length} cores\n`);
      out(`${row(COLUMNS)}\n`);
      let replay: Replay | undefined;
      let replayError: Error | undefined;
      const replaying = tcpreplay(v.send, pcap, { mbps: o.mbps, loops: 0, seconds: o.minutes * 60, flowStats: false, signal: stop.signal }).then(
        (r) => void (replay = r),
        (err: Error) => void (replayError = err),
      );
      void replaying.then(() => stop.abort());
      const samples: RssSample[] = [];
      let lastMemory: MemorySummary | undefined;
      const t0 = Date.now();
      let cpu0 = cpuSeconds(child.pid);
      let tCpu = t0;
      for (let k = 0; ; k++) {
        // samples on a fixed grid from the start, whatever a sample took
        if (k > 0) await delay(Math.max(0, t0 + k * o.everyS * 1000 - Date.now()), undefined, { signal: stop.signal }).catch(() => undefined);
        if (child.exitCode !== null || child.signalCode !== null) break;
        const now = Date.now();
        // the sender ending on a grid point wakes the loop again at once: that sample is the last one
        if (samples.length > 0 && now - t0 - samples[samples.length - 1].seconds * 1000 < MIN_SAMPLE_GAP_MS) break;
        const rssBytes = procStatusBytes(child.pid, 'VmRSS');
        const cpu = cpuSeconds(child.pid);
        const cpuPct = now > tCpu ? (100 * (cpu - cpu0)) / ((now - tCpu) / 1000) : 0;
        [cpu0, tCpu] = [cpu, now];
        samples.push({ seconds: (now - t0) / 1000, rssBytes });
        const s = statusSample(dataDir);
        if (s?.memory !== undefined) lastMemory = s.memory;
        out(`${row([clock((now - t0) / 1000), mb(rssBytes), cpuPct.toFixed(0), String(s?.flows ?? '?'), s === undefined ? '?' : mb(s.memuseBytes), String(s?.storeHeld ?? '?'), String(s?.captures ?? '?'), String(s?.packets ?? '?'), s === undefined ? '?' : `${s.kernelDrops}/${s.handoffDrops}/${s.interfaceDrops}`, ...memoryCells(s?.memory)])}\n`);
        if (stop.signal.aborted) break;
        if (now - t0 > o.minutes * 60_000 + REPLAY_GRACE_MS) stop.abort();
      }
      stop.abort();
      await replaying;
      const peakBytes = procStatusBytes(child.pid, 'VmHWM');
      if (child.exitCode !== null || child.signalCode !== null) {
        if (!interrupted) throw new Error(`hark run died during the soak (exit ${child.exitCode ?? child.signalCode}): ${stderr().trim().split('\n').slice(-5).join(' | ')}`);
      } else {
        child.kill('SIGTERM');
        const stopped = await exitWithin(exited, STOP_TIMEOUT_MS);
        if (stopped === undefined) throw new Error(`hark run did not stop within ${STOP_TIMEOUT_MS} ms of SIGTERM`);
        if (stopped[0] !== 0 && !interrupted) throw new Error(`hark run exited with ${stopped[0] ?? stopped[1]} when stopped: ${stderr().trim().split('\n').slice(-5).join(' | ')}`);
      }
      if (replayError !== undefined && !interrupted) throw replayError;
      const last = statusSample(dataDir);
      const stored = storedCaptures(join(dataDir, 'captures.db'));
      const trend = rssTrend(samples);
      out(`\nsoak summary${interrupted ? ' (interrupted)' : ''}: ${clock(samples.at(-1)?.seconds ?? 0)} of ${o.minutes} min; tcpreplay ${replay === undefined ? 'did not report' : `sent ${replay.sent} packets at ${replay.mbps.toFixed(0)} Mbit/s`}\n`);
      if (trend !== undefined) {
        out(`  RSS at the start of the second half  ${mb(trend.secondHalfStart.rssBytes)} MB (at ${clock(trend.secondHalfStart.seconds)})\n`);
        out(`  RSS at the end                       ${mb(trend.end.rssBytes)} MB (at ${clock(trend.end.seconds)})\n`);
        out(`  lowest RSS in each quarter           ${trend.quarterLowBytes.map(mb).join(' / ')} MB\n`);
        out(`  RSS slope over the second half       ${Number.isNaN(trend.slopeMbPerHour) ? 'n/a (fewer than two samples)' : `${trend.slopeMbPerHour >= 0 ? '+' : ''}${trend.slopeMbPerHour.toFixed(1)} MB/hour (least squares, ${trend.secondHalfSamples} samples)`}\n`);
      }
      out(`  peak RSS                             ${mb(Math.max(peakBytes, trend?.peakBytes ?? 0))} MB (VmHWM)\n`);
      out(`  memory at the last sample            ${memoryBreakdown(lastMemory)}\n`);
      out(`  captures stored                      ${stored.rows} (count sum ${stored.countSum})\n`);
      out(`  drops                                ${last === undefined ? 'no status' : `kernel ${last.kernelDrops}, hand-off ${last.handoffDrops}, interface ${last.interfaceDrops} of ${last.packets} packets`}\n`);
      return interrupted ? INTERRUPTED_EXIT_CODE : 0;
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  } finally {
    removeVeth(v);
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: Error) => {
      process.stderr.write(`${cli.name}: ${err.message}\n`);
      process.exitCode = 1;
    },
  );
}

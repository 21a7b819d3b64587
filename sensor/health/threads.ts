/**
 * CPU time of the sensor's threads (health stage), from Linux /proc. Input: the process id, the
 * capture thread's id (the main thread: its id is the process id) and the worker threads' OS ids
 * (each worker reads its own from /proc/thread-self when it starts). Output: per thread role, the
 * CPU seconds used so far and the share of one core since the previous sample; `other` is the
 * process's remaining threads (V8's garbage-collector helpers, libuv's pool). This is what says
 * why a sensor drops: workers near 100% of a core (or a process using every core the machine
 * leaves it) are behind the link; a capture thread near 100% cannot hand frames off fast enough;
 * a large `other` is garbage collection.
 * Never throws: where /proc cannot be read (not Linux, a thread that just ended) the value is left out.
 */
import { readFileSync, readlinkSync } from 'node:fs';

/** /proc's utime and stime are in USER_HZ ticks, 100 a second on every Linux ABI Node runs on. */
const USER_HZ = 100;
/** A stat line is ~300 bytes; a longer one is not what this parser knows. */
const MAX_STAT_BYTES = 4096;
/** Fields after the command name's closing parenthesis: utime (field 14) and stime (15) of proc(5). */
const UTIME_AFTER_COMM = 11;
const STIME_AFTER_COMM = 12;

/** This thread's kernel thread id (the main thread's equals the process id), or undefined off Linux. */
export function osThreadId(): number | undefined {
  try {
    const m = /^\d+\/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** utime + stime in seconds from the text of a /proc stat file, or undefined when it is not one. */
export function parseStatCpuSeconds(text: string): number | undefined {
  if (text.length > MAX_STAT_BYTES) return undefined;
  // the command name may hold spaces and parentheses: the fields start after its last ')'
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text.slice(close + 2).trim().split(' ');
  const utime = Number(fields[UTIME_AFTER_COMM]);
  const stime = Number(fields[STIME_AFTER_COMM]);
  if (!Number.isInteger(utime) || !Number.isInteger(stime) || utime < 0 || stime < 0) return undefined;
  return (utime + stime) / USER_HZ;
}

function readCpuSeconds(path: string): number | undefined {
  try {
    return parseStatCpuSeconds(readFileSync(path, 'latin1'));
  } catch {
    return undefined;
  }
}

export interface ThreadCpu {
  /** CPU seconds since the thread (or process) started. */
  cpu_seconds: number;
  /** Percent of one core since the previous sample (0 on the first). */
  cpu_pct: number;
  /** Kernel thread id (workers). */
  tid?: number;
}

export interface ThreadsCpu {
  /** The whole process: every thread, those that ended included. */
  process: ThreadCpu;
  /** The capture thread: reads the interfaces, hands frames off, stores captures. */
  capture: ThreadCpu;
  /** One per worker thread, in worker order (empty when the sensor runs on one thread). */
  workers: ThreadCpu[];
  /** Everything else in the process: garbage-collector helpers, libuv's thread pool, ended threads. */
  other: ThreadCpu;
}

export interface ThreadCpuSamplerOptions {
  readonly pid?: number;
  /** The worker threads' kernel ids, in worker order (undefined: not known yet). */
  readonly workerTids?: () => readonly (number | undefined)[];
  /** Where /proc lives (tests point it at a fake tree). */
  readonly procRoot?: string;
}

/** Samples the threads' CPU; each sample's percentages cover the time since the one before. */
export class ThreadCpuSampler {
  private readonly pid: number;
  private readonly procRoot: string;
  private prevMs: number | undefined;
  private prev = new Map<string, number>();
  /** Each current worker thread's last CPU figure, for when it has ended. */
  private lastWorker = new Map<number, number>();

  constructor(private readonly opts: ThreadCpuSamplerOptions = {}) {
    this.pid = opts.pid ?? process.pid;
    this.procRoot = opts.procRoot ?? '/proc';
  }

  /** Undefined when the process's own CPU time cannot be read (not Linux). */
  sample(nowMs: number = Date.now()): ThreadsCpu | undefined {
    const base = `${this.procRoot}/${this.pid}`;
    const total = readCpuSeconds(`${base}/stat`);
    if (total === undefined) return undefined;
    const capture = readCpuSeconds(`${base}/task/${this.pid}/stat`) ?? 0;
    const tids = this.opts.workerTids?.() ?? [];
    // a worker that has ended (the sensor stopping) keeps its last figure rather than moving it to `other`
    const workers = tids.map((tid) => ({ tid, s: tid === undefined ? undefined : readCpuSeconds(`${base}/task/${tid}/stat`) ?? this.lastWorker.get(tid) }));
    this.lastWorker = new Map(workers.flatMap((w) => (w.tid !== undefined && w.s !== undefined ? [[w.tid, w.s] as [number, number]] : [])));
    const workerSum = workers.reduce((t, w) => t + (w.s ?? 0), 0);
    const dtMs = this.prevMs === undefined ? 0 : nowMs - this.prevMs;
    const next = new Map<string, number>();
    const entry = (key: string, seconds: number, tid?: number): ThreadCpu => {
      next.set(key, seconds);
      const before = this.prev.get(key);
      // a restarted worker is a new thread: its first sample has no rate
      const pct = before !== undefined && dtMs > 0 && seconds >= before ? (100_000 * (seconds - before)) / dtMs : 0;
      return { cpu_seconds: round(seconds), cpu_pct: round(pct), ...(tid !== undefined ? { tid } : {}) };
    };
    const out: ThreadsCpu = {
      process: entry('process', total),
      capture: entry('capture', capture),
      workers: workers.map((w, k) => entry(`worker:${k}:${w.tid ?? '-'}`, w.s ?? 0, w.tid)),
      other: entry('other', Math.max(0, total - capture - workerSum)),
    };
    this.prev = next;
    this.prevMs = nowMs;
    return out;
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/**
 * Where the sensor's memory is (health stage). Input: the process's /proc/self/status (VmRSS,
 * VmHWM), this thread's V8 heap, each worker thread's heap figures as the worker writes them into
 * a small shared slot (HeapSlot: no message per sample), and the shared memory the sensor
 * allocated itself (capture rings, hand-off rings, bypass tables) by name. Output: a
 * MemorySnapshot whose parts (every thread's heap committed and external memory, the shared
 * memory, `other`) add up to RSS. Never throws: a figure that cannot be read is left out.
 *
 * Which V8 figure is per thread (measured on Node 20): `external` (v8.getHeapStatistics()
 * external_memory, process.memoryUsage().external) is the isolate's own ArrayBuffers, Buffers and
 * external strings. It leaves SharedArrayBuffers out, in the thread that made them and in those it
 * was handed to (a 64 MiB one leaves it unchanged), so the hand-off rings and bypass tables are
 * not counted twice. process.memoryUsage().arrayBuffers is not used: it counts the
 * SharedArrayBuffers its isolate allocated. The capture ring's addon hands each TPACKET ring over
 * as an external ArrayBuffer, which V8 does count in the capture thread's external memory
 * (a 64 MiB ring adds 64 MiB): that part is taken out there and reported as shared.
 */
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';

/** One thread's V8 memory; a figure is left out when unknown (a worker that has not reported yet). */
export interface ThreadMemory {
  /** Bytes of live and not yet collected objects in the V8 heap. */
  heap_used_bytes?: number;
  /** Resident bytes of the V8 heap (total_physical_size): what the heap adds to RSS. */
  heap_committed_bytes?: number;
  /** Resident bytes of the young generation (new_space + new_large_object_space), part of heap_committed_bytes. */
  young_generation_bytes?: number;
  /**
   * Bytes V8 committed to the young generation (space_size of the same spaces), resident or not:
   * its size now, which young_generation_bytes approaches as the nursery fills. A worker's is at
   * least its full 64 MiB semi-space from the start; the capture thread's starts at 1 MiB and grows
   * only with what survives its scavenges (sensor/workers/pool.ts, bin/hark).
   */
  young_generation_size_bytes?: number;
  /** Off-heap memory this isolate holds (ArrayBuffers, Buffers, external strings), shared memory excluded. */
  external_bytes?: number;
}

/** Shared memory the sensor allocated and knows the size of, by part. */
export interface SharedMemory {
  /** The kernel TPACKET rings, one per interface (`--ring-mb`; ring capture only). */
  capture_rings?: number;
  /** The packet rings from the capture thread to each worker (with worker threads). */
  handoff_rings?: number;
  /** Each worker's table of bypassed connections, read by the capture thread (with worker threads and bypass). */
  bypass_tables?: number;
}

export interface MemorySnapshot {
  /** Resident set of the whole process (VmRSS). */
  rss_bytes?: number;
  /** The largest resident set so far (VmHWM). */
  peak_rss_bytes?: number;
  /** The capture (main) thread. */
  capture: ThreadMemory;
  /** One per worker thread, in worker order (empty when the sensor runs on one thread). */
  workers: ThreadMemory[];
  shared: SharedMemory;
  /**
   * RSS less every thread's heap committed and external memory and the shared memory: native
   * allocations (Hyperscan databases and scratch, zlib, SQLite), V8's code and thread stacks.
   * Never below 0 (a shared buffer whose pages were not touched yet is counted at its full size).
   */
  other_bytes?: number;
}

/** /proc/self/status is ~1.5 KB; a longer one is not what this parser knows. */
const MAX_PROC_STATUS_BYTES = 16 * 1024;
/** /proc/PID/status gives sizes in kB (KiB). */
const PROC_STATUS_UNIT_BYTES = 1024;
const YOUNG_GENERATION_SPACES: ReadonlySet<string> = new Set(['new_space', 'new_large_object_space']);

/** VmRSS and VmHWM from the text of a /proc status file; a missing or odd line leaves its field out. */
export function parseProcStatusMemory(text: string): { rss_bytes?: number; peak_rss_bytes?: number } {
  if (text.length > MAX_PROC_STATUS_BYTES) return {};
  const field = (name: string): number | undefined => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text);
    return m === null ? undefined : Number(m[1]) * PROC_STATUS_UNIT_BYTES;
  };
  const rss = field('VmRSS');
  const peak = field('VmHWM');
  return { ...(rss !== undefined ? { rss_bytes: rss } : {}), ...(peak !== undefined ? { peak_rss_bytes: peak } : {}) };
}

/** This thread's V8 heap figures (each isolate has its own heap: call it on the thread to measure). */
export function readThreadMemory(): ThreadMemory {
  try {
    const h = getHeapStatistics();
    let young = 0;
    let youngSize = 0;
    for (const s of getHeapSpaceStatistics()) {
      if (!YOUNG_GENERATION_SPACES.has(s.space_name)) continue;
      young += s.physical_space_size;
      youngSize += s.space_size;
    }
    return { heap_used_bytes: h.used_heap_size, heap_committed_bytes: h.total_physical_size, young_generation_bytes: young, young_generation_size_bytes: youngSize, external_bytes: h.external_memory };
  } catch {
    return {};
  }
}

/** The float64 fields of a heap slot, in this order. */
const SLOT_FIELDS = ['heap_used_bytes', 'heap_committed_bytes', 'young_generation_bytes', 'young_generation_size_bytes', 'external_bytes'] as const;

/** Shared memory for one worker's heap figures (NaN: not written yet). */
export function createHeapSlot(): SharedArrayBuffer {
  const buf = new SharedArrayBuffer(SLOT_FIELDS.length * Float64Array.BYTES_PER_ELEMENT);
  new Float64Array(buf).fill(NaN);
  return buf;
}

/**
 * One thread's heap figures in shared memory: the worker writes on its tick, the main thread reads
 * when it samples. Each double is an aligned 8-byte store (single-copy atomic on x86-64 and arm64);
 * a read during a write may mix two ticks' figures, a second apart.
 */
export class HeapSlot {
  private readonly values: Float64Array;

  /** `buffer`: from createHeapSlot(), shared with the other side (WorkerData.heap). */
  constructor(readonly buffer: SharedArrayBuffer) {
    this.values = new Float64Array(buffer, 0, SLOT_FIELDS.length);
  }

  write(m: ThreadMemory): void {
    SLOT_FIELDS.forEach((f, i) => {
      const v = m[f];
      this.values[i] = v !== undefined && Number.isFinite(v) && v >= 0 ? v : NaN;
    });
  }

  /** The figures last written; those never written are left out. */
  read(): ThreadMemory {
    const out: ThreadMemory = {};
    SLOT_FIELDS.forEach((f, i) => {
      const v = this.values[i];
      if (Number.isFinite(v) && v >= 0) out[f] = v;
    });
    return out;
  }
}

export interface MemorySamplerOptions {
  /** The worker threads' figures, in worker order (from their HeapSlots). */
  readonly workers?: () => readonly ThreadMemory[];
  /** The shared memory the sensor allocated, by part. */
  readonly shared?: () => SharedMemory;
  /** Bytes of the shared memory that this thread's V8 counts as its external memory (the TPACKET rings). */
  readonly sharedInCaptureExternal?: () => number;
  /** Where the process's status is read (tests point it at a file). Default /proc/self/status. */
  readonly procStatusPath?: string;
  /** The capture thread's own figures (tests). Default readThreadMemory(). */
  readonly capture?: () => ThreadMemory;
}

function readProcStatus(path: string): { rss_bytes?: number; peak_rss_bytes?: number } {
  try {
    return parseProcStatusMemory(readFileSync(path, 'latin1'));
  } catch {
    return {};
  }
}

function sumOf(values: readonly (number | undefined)[]): number {
  return values.reduce<number>((t, v) => t + (v ?? 0), 0);
}

function safely<T>(read: (() => T) | undefined, fallback: T): T {
  try {
    return read?.() ?? fallback;
  } catch {
    return fallback;
  }
}

/** Samples the process's memory by thread and part (call it on the capture thread). */
export function sampleMemory(opts: MemorySamplerOptions = {}): MemorySnapshot {
  const proc = readProcStatus(opts.procStatusPath ?? '/proc/self/status');
  const own = safely(opts.capture ?? readThreadMemory, {});
  const inExternal = safely(opts.sharedInCaptureExternal, 0);
  const capture: ThreadMemory = { ...own };
  if (own.external_bytes !== undefined) capture.external_bytes = Math.max(0, own.external_bytes - inExternal);
  const workers = safely(opts.workers, []).map((w) => ({ ...w }));
  const shared: SharedMemory = { ...safely(opts.shared, {}) };
  const out: MemorySnapshot = { ...proc, capture, workers, shared };
  if (proc.rss_bytes !== undefined) {
    const threads = [capture, ...workers];
    const accounted = sumOf(threads.map((t) => t.heap_committed_bytes)) + sumOf(threads.map((t) => t.external_bytes)) + sumOf(Object.values(shared));
    out.other_bytes = Math.max(0, proc.rss_bytes - accounted);
  }
  return out;
}

/** The totals `hark status` and bench/soak print, read tolerantly from a status file's `memory`. */
export interface MemorySummary {
  rssBytes?: number;
  peakRssBytes?: number;
  /** Heap committed of the capture thread, then of each worker. */
  captureHeapBytes?: number;
  workerHeapBytes: number[];
  /** Young generation of the capture thread and every worker. */
  youngBytes: number;
  externalBytes: number;
  sharedBytes: number;
  otherBytes?: number;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);
const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** The summary of a status file's `memory` (undefined when it has none); odd fields count as absent. */
export function summarizeMemory(raw: unknown): MemorySummary | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const m = obj(raw);
  const capture = obj(m.capture);
  const workers = Array.isArray(m.workers) ? m.workers.map(obj) : [];
  const threads = [capture, ...workers];
  return {
    rssBytes: num(m.rss_bytes),
    peakRssBytes: num(m.peak_rss_bytes),
    captureHeapBytes: num(capture.heap_committed_bytes),
    workerHeapBytes: workers.map((w) => num(w.heap_committed_bytes) ?? 0),
    youngBytes: sumOf(threads.map((t) => num(t.young_generation_bytes))),
    externalBytes: sumOf(threads.map((t) => num(t.external_bytes))),
    sharedBytes: sumOf(Object.values(obj(m.shared)).map(num)),
    otherBytes: num(m.other_bytes),
  };
}

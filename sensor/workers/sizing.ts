/**
 * How many worker threads a machine can carry (workers stage, called once at start by `hark run`).
 * Input: the cores available, the memory the process may use (the machine's, or a smaller cgroup
 * limit such as systemd's MemoryMax), and the count the operator asked for, if any. Output: the
 * count to run and, when memory rather than cores decided it or the operator asked for more than
 * the memory carries, a sentence saying so for the log.
 *
 * One per core by default: on the 2-core VM the live bench (10,000 phrases, tcpreplay taking part of
 * a core) held 75 Mbit/s with one thread, 100 with one worker and 125 with two; a single core runs
 * everything on one thread.
 *
 * Why memory bounds it too: every worker is a V8 isolate with its own young generation, its own heap of
 * capture merge windows, identity and flow state, its own Hyperscan scratch and a 32 MiB hand-off
 * ring. The soak bench (bench/soak.ts, 100 Mbit/s of the benchmark workload, 2 workers, status
 * file's `memory`) measured each worker's heap at 320-475 MB with its young generation, plus its
 * ring and native share, and the rest of the process (capture thread heap, the 64 MiB capture
 * ring, native memory) at about 400 MB. One worker per core on a many-core box with little memory
 * (8 cores, 4 GiB) would need more than the machine has.
 */
import { availableParallelism, totalmem } from 'node:os';
import { MAX_WORKERS } from './pool.js';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
/** Left for the kernel, the page cache the capture store writes through, the capture thread, its ring and the native libraries. */
export const BASE_MEMORY_BYTES = GIB;
/** What one worker thread may hold at a busy link (its heap as the soak measured it, its hand-off ring, its native share). */
export const WORKER_MEMORY_BYTES = 512 * MIB;

export interface WorkerPlan {
  /** Worker threads to start (0: everything on one thread). */
  readonly workers: number;
  /** For the log: why the count is not one per core, or why the operator's count may not fit. */
  readonly note?: string;
}

/**
 * The memory this process may use: the machine's, or the cgroup's limit when that is lower
 * (process.constrainedMemory(): undefined or 0 without a limit, a huge number for "max").
 */
export function usableMemoryBytes(): number {
  const total = totalmem();
  const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  return constrained !== undefined && constrained > 0 && constrained < total ? constrained : total;
}

/** Workers the memory carries beside the rest of the sensor. */
export function workersForMemory(memoryBytes: number): number {
  return Math.max(0, Math.floor((memoryBytes - BASE_MEMORY_BYTES) / WORKER_MEMORY_BYTES));
}

function gib(bytes: number): string {
  return `${(bytes / GIB).toFixed(1)} GiB`;
}

/**
 * The worker count for `cores` cores and `memoryBytes` of memory. Unasked: one per core on two or
 * more cores (none on one), and no more than the memory carries. Asked: the operator's count,
 * with a note when the memory looks too small for it (a warning, not a refusal: the figures are a
 * busy link's, and the operator may know the link is quiet).
 */
export function planWorkers(cores: number, memoryBytes: number, requested?: number): WorkerPlan {
  const byMemory = workersForMemory(memoryBytes);
  const perWorker = `${(WORKER_MEMORY_BYTES / GIB).toFixed(1)} GiB a worker thread beside ${gib(BASE_MEMORY_BYTES)} for the rest`;
  if (requested !== undefined) {
    if (requested <= byMemory || requested === 0) return { workers: requested };
    return {
      workers: requested,
      note: `hark: --workers ${requested} may need ${gib(BASE_MEMORY_BYTES + requested * WORKER_MEMORY_BYTES)} of memory at a busy link ` +
        `(${perWorker}); this machine has ${gib(memoryBytes)}: the kernel may kill the sensor when it runs short (--workers ${byMemory} fits)`,
    };
  }
  const byCores = cores >= 2 ? Math.min(MAX_WORKERS, cores) : 0;
  if (byMemory >= byCores) return { workers: byCores };
  return {
    workers: byMemory,
    note: `hark: ${byMemory === 0 ? 'no worker threads (everything on one thread)' : `${byMemory} worker thread${byMemory === 1 ? '' : 's'}`}, not ${byCores} (one per core): ` +
      `this machine has ${gib(memoryBytes)} of memory (${perWorker}); --workers N overrides`,
  };
}

/** planWorkers for this machine. */
export function planWorkersHere(requested?: number): WorkerPlan {
  return planWorkers(availableParallelism(), usableMemoryBytes(), requested);
}

/**
 * What the pool (main thread) and its workers say to each other: the serialisable sensor options
 * a worker builds its Sensor from, the messages both ways, and the counters and heap figures a
 * worker keeps in shared memory so the main thread reads them without messages. Types and two
 * small helpers only.
 */
import type { WarmUpResult } from '../warm-up.js';
import type { Dictionary } from '../../rules/dictionary.js';
import { Counters } from '../events/counters.js';
import type { DnsPolicyEvent } from '../events/dns.js';
import type { TlsEvent } from '../events/tls.js';
import type { IdentityObservation } from '../identity/observation.js';
import type { EngineChoice } from '../main.js';
import type { SitePolicyFiles } from '../site-policy.js';

/** The part of SensorOptions that crosses a thread boundary (structured clone: files and data, no objects with methods). */
export interface WorkerSensorOptions {
  readonly dictionary?: string | Dictionary;
  readonly engine?: EngineChoice;
  readonly dedupWindowUs?: number;
  readonly bodyLimitBytes?: number;
  readonly dropDuplicates?: boolean;
  readonly bypass?: boolean;
  /**
   * Frames per connection-grouped batch the worker takes from its ring; default 0, in ring order
   * (grouping showed no gain live on the 2-core VM and holds ring space while a batch is handed over).
   */
  readonly localityFrames?: number;
  /** Each worker reads (and with followKeyLogs, follows) these itself. */
  readonly keyLogs?: readonly string[];
  readonly followKeyLogs?: boolean;
  readonly rsaKeys?: readonly string[];
  readonly keyWaitUs?: number;
  readonly keyWaitAuto?: boolean;
  readonly site?: SitePolicyFiles;
  /** Keep the pages of viewed captures (they travel back with the captures). */
  readonly keepEvidence?: boolean;
  readonly flowLimits?: { readonly maxFlows?: number; readonly memcapBytes?: number };
}

/** A capture's page on its way to the main thread (a Buffer arrives as a Uint8Array). */
export interface EvidenceMessage {
  readonly id: string;
  readonly contentType: string;
  readonly charset?: string;
  readonly body: Uint8Array;
  readonly truncated: boolean;
}

export interface ReconfigureOptions {
  readonly dictionary?: string | Dictionary;
  readonly engine?: EngineChoice;
  readonly site?: SitePolicyFiles;
}

/** A TLS secret as it crosses threads (KeyLogEntry with the secret as plain bytes). */
export interface KeyMessageEntry {
  readonly label: string;
  readonly clientRandom: string;
  readonly secret: Uint8Array;
}

export interface WorkerData {
  readonly index: number;
  readonly ring: SharedArrayBuffer;
  readonly counters: SharedArrayBuffer;
  /** The worker's V8 heap figures, rewritten on its tick (health/memory.ts HeapSlot) for the status file. */
  readonly heap: SharedArrayBuffer;
  /** The worker's capture-thread bypass table (workers/bypass-table.ts); absent with bypass off. */
  readonly bypass?: SharedArrayBuffer;
  readonly sensor: WorkerSensorOptions;
  /** Run flow and merge-window expiry on the wall clock every this many ms (live capture); 0: never (files). */
  readonly tickMs: number;
  /** Warm up on synthetic traffic for this long before saying ready (sensor/warm-up.ts); 0: not. */
  readonly warmUpMs: number;
}

export interface ConfigError {
  readonly code: string;
  readonly message: string;
}

export type ToWorker =
  | { readonly t: 'prepare'; readonly id: number; readonly opts: ReconfigureOptions }
  | { readonly t: 'commit'; readonly id: number; readonly prepared: number }
  | { readonly t: 'abort'; readonly id: number; readonly prepared: number }
  | { readonly t: 'keys'; readonly entries: readonly KeyMessageEntry[] }
  | { readonly t: 'identity'; readonly observations: readonly IdentityObservation[] }
  | { readonly t: 'drain'; readonly id: number }
  | { readonly t: 'ping'; readonly id: number }
  | { readonly t: 'finish'; readonly id: number };

/**
 * Counter ids are given in module load order, which differs between threads: a worker names the
 * ids of its shared counters (from `first` on, as they get defined) and says which are anomalies.
 */
export interface CounterNames {
  readonly first: number;
  readonly names: readonly string[];
  readonly anomaly: readonly boolean[];
}

export type FromWorker =
  /** Built its Sensor (and warmed it up): `tid`, its kernel thread id, for the status file's
   * per-thread CPU; `warmUp`, what the start-up warm-up ran (sensor/warm-up.ts), when it ran. */
  | { readonly t: 'ready'; readonly tid?: number; readonly warmUp?: WarmUpResult }
  | { readonly t: 'names'; readonly counters: CounterNames }
  | { readonly t: 'failed'; readonly error: ConfigError }
  | {
    readonly t: 'out';
    /** Each capture as its JSON text (copied across threads for less than its object graph). */
    readonly captures: readonly string[];
    readonly events: readonly (TlsEvent | DnsPolicyEvent)[];
    readonly identity: readonly IdentityObservation[];
    readonly evidence: readonly EvidenceMessage[];
  }
  | { readonly t: 'prepared'; readonly id: number; readonly error?: ConfigError }
  | { readonly t: 'done'; readonly id: number };

/** Slots in a Counters store (its Float64Array length). */
export const COUNTER_SLOTS = new Counters().values.length;

/** Shared memory for one worker's counters. */
export function createCounterBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(COUNTER_SLOTS * Float64Array.BYTES_PER_ELEMENT);
}

/**
 * A Counters whose values live in `buffer` (the worker writes, the main thread reads). Counters
 * has no constructor parameter for its store, so the typed array is swapped in once here (the
 * field is readonly to TypeScript only); every method reads `this.values`, so all see the shared one.
 */
export function sharedCounters(buffer: SharedArrayBuffer): Counters {
  const c = new Counters();
  (c as { values: Float64Array }).values = new Float64Array(buffer);
  return c;
}

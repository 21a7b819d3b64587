/**
 * Packet work spread over worker threads (`hark run --workers N`). Input: frames from a capture
 * source through `packet` (the PacketHandler shape, given to RingCapture / LiveCapture exactly
 * like `sensor.pipeline.packet`). Each frame's inner flow is hashed (the same both directions,
 * dispatch.ts) to one of N workers and copied into that worker's shared ring; each worker runs a
 * whole Sensor and owns its flows end to end. Output: `onCapture` / `onEvent` on the main thread,
 * worker counters summed into the main thread's Counters (`syncCounters`), each worker's heap
 * figures and the shared memory the pool allocated (`workerMemory`, `sharedMemory`). A full ring
 * drops the frame (counted `workers.ring_full`) and never blocks a live capture. A worker that dies is
 * counted, logged and restarted; its flows are lost (`workers.flows_lost`).
 */
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { KeyLogEntry, KeyStore, SessionSecrets } from '../app-layer/tls/keylog.js';
import type { PacketHandler } from '../capture/file-reader.js';
import type { CaptureEvent, Evidence } from '../events/capture.js';
import { Counters, defineAnomaly, defineCounter } from '../events/counters.js';
import { fromJson } from '../events/json-text.js';
import { DEFAULT_FLOW_LIMITS } from '../flow/flow-table.js';
import type { DnsPolicyEvent } from '../events/dns.js';
import type { TlsEvent } from '../events/tls.js';
import type { IdentityObservation, IdentitySink } from '../identity/observation.js';
import { FlowHasher, HASH_FRAGMENT, HASH_NOT_IP, workerForHash, type Balance } from './dispatch.js';
import {
  COUNTER_SLOTS, createCounterBuffer, type ConfigError, type CounterNames, type FromWorker, type KeyMessageEntry,
  type ReconfigureOptions, type ToWorker, type WorkerData, type WorkerSensorOptions,
} from './protocol.js';
import { BypassTable, createBypassBuffer, dropBypassed } from './bypass-table.js';
import { createRingBuffer, RingProducer } from './shared-ring.js';
import { createHeapSlot, HeapSlot, type SharedMemory, type ThreadMemory } from '../health/memory.js';
import type { WarmUpResult } from '../warm-up.js';

/** Ring per worker: 32 MiB holds ~25k full-size frames, about 0.3 s of 1 Gbit/s while a worker is busy. */
export const DEFAULT_RING_BYTES = 32 << 20;
/** Workers at most: beyond the cores of any sensor box, and each holds a whole dictionary. */
export const MAX_WORKERS = 64;
/** Each worker's semi-spaces: packet work makes many short-lived objects, and 64 MiB (V8's default
 * is 16) cut the pipeline's time by 7-10% at the same peak RSS (bench/pipeline.ts). bin/hark gives
 * one-thread commands (`hark scan`) the same maximum (--max-semi-space-size=64), and `hark run`
 * none, so that the capture thread keeps V8's default: a process-wide maximum would override the
 * workers' resourceLimits, so theirs comes from there alone. */
const WORKER_SEMI_SPACE_MB = 64;
/** The same as a young generation: V8 11 counts three semi-spaces' worth (two, and the new large
 * object space), and derives the semi-space size from it. */
const WORKER_YOUNG_GENERATION_MB = 3 * WORKER_SEMI_SPACE_MB;
/** Unpublished bytes after which a ring is published mid-batch, so a long batch (a file) keeps workers busy. */
const PUBLISH_EVERY_BYTES = 256 << 10;
/** A file replay (`whenFull: 'wait'`) gives up on a frame after a worker made no room for this long. */
const WAIT_FOR_ROOM_MS = 120_000;
/** Worker counters are added into the main thread's this often (and on drain / finish / syncCounters()). */
const COUNTER_SYNC_MS = 1000;
/** First restart of a crashed worker after this long, doubling per consecutive crash up to the max. */
const RESTART_DELAY_MS = 200;
const MAX_RESTART_DELAY_MS = 30_000;
/** Keys and identity observations pushed from the main thread, kept to bring a restarted worker up to date. */
const MAX_REPLAY_KEYS = 20_000;
const MAX_REPLAY_OBSERVATIONS = 20_000;

/**
 * Makes every V8 isolate created from now on, the workers', start its young generation at its full
 * size (--min-semi-space-size): otherwise V8 starts it at 1 MiB and grows it scavenge by scavenge,
 * promoting young objects early while the first packets arrive (the live bench at 550 Mbit/s passed
 * 5 runs of 5 at full size, 3 of 5 without). Node's resourceLimits sets only the maximum. Not on
 * the command line (bin/hark): V8 flags are the process's, and there it also gave the capture
 * thread a ~107 MB young generation from the start. V8 reads the flag when it configures a new
 * isolate's heap (Heap::ConfigureHeap), which a worker does on its own thread after `new Worker`
 * returns, so it stays set; Node leaves flags writable after start (node.cc:
 * --no-freeze-flags-after-init, for v8.setFlagsFromString). The main isolate's heap, configured at
 * start, keeps V8's 1 MiB start and default maximum: with 64 MiB allowed, the captures it holds
 * until the store commits them had grown it to full size within ten minutes of a soak.
 */
function startYoungGenerationsFull(): void {
  setFlagsFromString(`--min-semi-space-size=${WORKER_SEMI_SPACE_MB}`);
}

const C_RING_FULL = defineCounter('workers.ring_full');
const C_FRAME_TOO_LARGE = defineCounter('workers.frame_too_large');
const C_NOT_IP = defineCounter('workers.dispatch_not_ip');
const C_FRAGMENTS = defineCounter('workers.dispatch_fragments');
const C_CRASHES = defineAnomaly('workers.crashes');
const C_RESTARTS = defineCounter('workers.restarts');
const C_FLOWS_LOST = defineCounter('workers.flows_lost');
const C_RECORDS_LOST = defineCounter('workers.records_lost');
const C_FLOW_ACTIVE = defineCounter('flow.active');
const C_DEFRAG_IN_PROGRESS = defineCounter('defrag.in_progress');
/** Gauges a dead worker's share of is taken back out of the sums (its flows and fragments are gone). */
const GAUGES: ReadonlySet<number> = new Set([C_FLOW_ACTIVE, C_DEFRAG_IN_PROGRESS]);

export interface WorkerPoolOptions {
  /** Worker threads, 1 to MAX_WORKERS (workers/sizing.ts chooses how many by default). */
  readonly workers: number;
  readonly sensorOptions: WorkerSensorOptions;
  readonly onCapture: (capture: CaptureEvent, evidence?: Evidence) => void;
  readonly onEvent?: (event: TlsEvent | DnsPolicyEvent) => void;
  /** The main thread's counters: workers' counters are added into them, plus the pool's own. */
  readonly counters?: Counters;
  /** Receives every identity observation a worker makes (the main thread's table, for the API and `hark identity`). */
  readonly identity?: IdentitySink;
  /** Ring bytes per worker (power of two; default DEFAULT_RING_BYTES). */
  readonly ringBytes?: number;
  /** `drop` (live capture, default): a full ring drops the frame. `wait`: block until there is room (file replay). */
  readonly whenFull?: 'drop' | 'wait';
  /** Wall-clock flow expiry tick in each worker, ms (live capture: 1000, the default); 0 for files (capture time only). */
  readonly tickMs?: number;
  /** `hosts` (default): a pair of hosts to one worker; `flows`: TCP connections spread too (dispatch.ts says what that costs). */
  readonly balance?: Balance;
  /**
   * Frames of flows a worker has bypassed are dropped here, before the hand-off (default: on
   * whenever sensorOptions.bypass is; workers/bypass-table.ts). Off: they cross the ring and the
   * worker skips them.
   */
  readonly captureBypass?: boolean;
  /**
   * Each worker first runs synthetic traffic for this long (sensor/warm-up.ts), so the pool starts
   * with V8's compiled code rather than compiling while packets wait (live capture); default 0.
   * A worker restarted after a crash does not.
   */
  readonly warmUpMs?: number;
  readonly log?: (line: string) => void;
}

/**
 * Each worker's share of the sensor's flow limits: every worker has its own flow table, so the
 * memcap and the flow count given for the sensor (or their defaults) are divided among them,
 * and the whole stays within what the operator set. A host pair always hashes to one worker, so
 * a flood from one host fills that worker's share and is evicted there.
 */
export function shareFlowLimits(limits: { readonly maxFlows?: number; readonly memcapBytes?: number } | undefined, workers: number): { maxFlows: number; memcapBytes: number } {
  const n = Math.max(1, Math.floor(workers));
  return {
    maxFlows: Math.max(1, Math.floor((limits?.maxFlows ?? DEFAULT_FLOW_LIMITS.maxFlows) / n)),
    memcapBytes: Math.max(1, Math.floor((limits?.memcapBytes ?? DEFAULT_FLOW_LIMITS.memcapBytes) / n)),
  };
}

export class WorkerPoolError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

interface Waiter {
  readonly waiting: Set<number>;
  readonly errors: ConfigError[];
  readonly resolve: () => void;
}

class Slot {
  worker: Worker | undefined;
  ready = false;
  /** The worker's kernel thread id, as it reported when ready (a restarted worker reports its new one). */
  tid: number | undefined = undefined;
  /** Main-thread counter id for each of this worker's ids (-1: not named yet). */
  readonly idMap = new Int32Array(COUNTER_SLOTS).fill(-1);
  /** Worker id of `flow.active`, once named. */
  flowActiveId = -1;
  counterBuf: SharedArrayBuffer;
  values: Float64Array;
  /** Values already added into the main counters. */
  readonly seen = new Float64Array(COUNTER_SLOTS);
  crashes = 0;
  restartTimer: NodeJS.Timeout | undefined;
  readonly producer: RingProducer;
  /** The worker's bypassed connections, whose frames stay here (undefined: capture bypass off). */
  readonly bypass: BypassTable | undefined;
  /** The worker's heap figures as it last wrote them (a fresh, empty slot for each worker started). */
  heap = new HeapSlot(createHeapSlot());

  constructor(readonly index: number, readonly ring: SharedArrayBuffer, readonly bypassBuf: SharedArrayBuffer | undefined) {
    this.producer = new RingProducer(ring);
    this.bypass = bypassBuf !== undefined ? new BypassTable(bypassBuf) : undefined;
    this.counterBuf = createCounterBuffer();
    this.values = new Float64Array(this.counterBuf);
  }

  /** A fresh counter store (a restarted worker starts from zero). */
  resetCounters(): void {
    this.counterBuf = createCounterBuffer();
    this.values = new Float64Array(this.counterBuf);
    this.seen.fill(0);
    this.idMap.fill(-1);
    this.flowActiveId = -1;
  }

  /** An empty heap slot: a worker that ended holds no heap, and its successor writes its own. */
  resetHeap(): void {
    this.heap = new HeapSlot(createHeapSlot());
  }
}

const KEY_LABEL_OF: ReadonlyArray<[keyof SessionSecrets, string]> = [
  ['masterSecret', 'CLIENT_RANDOM'],
  ['clientEarlyTrafficSecret', 'CLIENT_EARLY_TRAFFIC_SECRET'],
  ['clientHandshakeTrafficSecret', 'CLIENT_HANDSHAKE_TRAFFIC_SECRET'],
  ['serverHandshakeTrafficSecret', 'SERVER_HANDSHAKE_TRAFFIC_SECRET'],
  ['clientTrafficSecret0', 'CLIENT_TRAFFIC_SECRET_0'],
  ['serverTrafficSecret0', 'SERVER_TRAFFIC_SECRET_0'],
];

/** The key log lines of one session's secrets (to forward a main-thread KeyStore's sessions). */
export function sessionKeyEntries(clientRandomHex: string, s: Readonly<SessionSecrets>): KeyMessageEntry[] {
  const out: KeyMessageEntry[] = [];
  for (const [field, label] of KEY_LABEL_OF) {
    const v = s[field];
    if (v !== undefined) out.push({ label, clientRandom: clientRandomHex, secret: new Uint8Array(v) });
  }
  return out;
}

export class WorkerPool {
  readonly workers: number;
  /** Resolves when every worker has built its Sensor; rejects with the first one's configuration error. */
  readonly ready: Promise<void>;
  private readonly slots: Slot[];
  private readonly counters: Counters;
  private readonly hasher: FlowHasher;
  /** Frames handed to each worker (accepted into its ring). */
  private readonly frames: Float64Array;
  /** Frames lost at the hand-off, by capture interface index (handoffDrops). */
  private readonly dropped: number[] = [];
  private readonly wait: boolean;
  private readonly tickMs: number;
  private sensorOptions: WorkerSensorOptions;
  private readonly waiters = new Map<number, Waiter>();
  private nextId = 1;
  private publishQueued = false;
  private closed = false;
  private started = false;
  private readyResolve!: () => void;
  private readyReject!: (err: Error) => void;
  private readonly syncTimer: NodeJS.Timeout;
  private readonly replayKeys = new Map<string, KeyMessageEntry>();
  private readonly replayObservations: IdentityObservation[] = [];
  private reconfiguring: Promise<void> = Promise.resolve();
  /** What each worker's start-up warm-up ran (WorkerPoolOptions.warmUpMs). */
  readonly warmUps: WarmUpResult[] = [];

  constructor(private readonly opts: WorkerPoolOptions) {
    const n = opts.workers;
    if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) throw new WorkerPoolError('E_WORKERS', `Cannot start ${n} workers: give 1 to ${MAX_WORKERS}`);
    this.workers = n;
    this.counters = opts.counters ?? new Counters();
    this.wait = opts.whenFull === 'wait';
    this.tickMs = opts.tickMs ?? 1000;
    this.sensorOptions = opts.sensorOptions;
    this.hasher = new FlowHasher(opts.balance ?? 'hosts');
    this.frames = new Float64Array(n);
    const ringBytes = opts.ringBytes ?? DEFAULT_RING_BYTES;
    this.slots = [];
    const captureBypass = (opts.captureBypass ?? true) && opts.sensorOptions.bypass !== false;
    for (let i = 0; i < n; i++) this.slots.push(new Slot(i, createRingBuffer(ringBytes), captureBypass ? createBypassBuffer() : undefined));
    this.ready = new Promise<void>((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    // Nobody may be listening yet when a worker fails at start; close() or the caller's await sees it.
    this.ready.catch(() => undefined);
    for (const s of this.slots) this.spawn(s);
    this.syncTimer = setInterval(() => this.syncCounters(), COUNTER_SYNC_MS);
    this.syncTimer.unref();
  }

  /** Starts a pool and waits until every worker runs; a configuration error closes it and throws. */
  static async start(opts: WorkerPoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(opts);
    try {
      await pool.ready;
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /**
   * Frames of interface `ifIndex` (the capture's index) that could not be handed to a worker: its
   * ring was full (the workers are behind) or the frame is larger than a ring slot. A running
   * total; the watchdog's loss alarm and the status file count it beside the kernel's drops.
   */
  handoffDrops(ifIndex: number): number {
    return this.dropped[ifIndex] ?? 0;
  }

  /** Each worker's kernel thread id (undefined until it is ready; a stopped worker keeps its last), in worker order. */
  workerThreadIds(): (number | undefined)[] {
    return this.slots.map((s) => s.tid);
  }

  /** Each worker's V8 heap figures as it last wrote them (once a second), in worker order; none for a worker not started yet. */
  workerMemory(): ThreadMemory[] {
    return this.slots.map((s) => s.heap.read());
  }

  /** The shared memory the pool allocated: the hand-off rings and the bypass tables (when capture bypass is on). */
  sharedMemory(): SharedMemory {
    let rings = 0;
    let tables = 0;
    for (const s of this.slots) {
      rings += s.ring.byteLength;
      tables += s.bypassBuf?.byteLength ?? 0;
    }
    return { handoff_rings: rings, ...(tables > 0 ? { bypass_tables: tables } : {}) };
  }

  /** Frames handed off and not yet taken by the workers: bytes in all rings, and their capacity. */
  handoffBacklog(): { bytes: number; capacity: number } {
    let bytes = 0;
    let capacity = 0;
    for (const s of this.slots) {
      bytes += s.producer.usedBytes;
      capacity += s.producer.capacity;
    }
    return { bytes, capacity };
  }

  /** One captured frame: hashed to its worker and copied into that worker's ring. */
  readonly packet: PacketHandler = (linkType, buf, off, capLen, origLen, tsUs, ifIndex) => {
    const hash = this.hasher.hash(linkType, buf, off, capLen);
    const kind = this.hasher.kind;
    if (kind === HASH_NOT_IP) this.counters.inc(C_NOT_IP);
    else if (kind === HASH_FRAGMENT) this.counters.inc(C_FRAGMENTS);
    const k = this.workers === 1 ? 0 : workerForHash(hash, this.workers);
    const slot = this.slots[k];
    const bypass = slot.bypass;
    if (bypass !== undefined && dropBypassed(bypass, this.hasher, buf, capLen, origLen, tsUs, this.sensorOptions.dropDuplicates !== false, this.counters)) return;
    const p = slot.producer;
    const ok = this.wait
      ? p.writeWaiting(linkType, buf, off, capLen, origLen, tsUs, ifIndex, WAIT_FOR_ROOM_MS)
      : p.write(linkType, buf, off, capLen, origLen, tsUs, ifIndex);
    if (!ok) {
      this.counters.inc(capLen > p.maxFrame ? C_FRAME_TOO_LARGE : C_RING_FULL);
      while (this.dropped.length <= ifIndex) this.dropped.push(0);
      this.dropped[ifIndex]++;
      return;
    }
    this.frames[k]++;
    if (p.pendingBytes >= PUBLISH_EVERY_BYTES) p.publish();
    else if (!this.publishQueued) {
      // One publish (and at most one wake-up per worker) per capture batch: the capture source
      // hands a whole block over synchronously, and microtasks run when it returns.
      this.publishQueued = true;
      queueMicrotask(this.publishAll);
    }
  };

  /** Makes every frame handed to `packet` so far visible to the workers. */
  readonly publishAll = (): void => {
    this.publishQueued = false;
    for (const s of this.slots) s.producer.publish();
  };

  /**
   * Loads a new dictionary and/or site policy in every worker, then swaps it in everywhere; a
   * file that fails to load in any worker leaves every worker on the running configuration and
   * rejects with a WorkerPoolError carrying the Sensor's error code (E_DICTIONARY_READ, ...).
   */
  reconfigure(o: ReconfigureOptions): Promise<void> {
    // One reload at a time: a second waits for the first (each worker holds one prepared configuration).
    const run = this.reconfiguring.then(() => this.reconfigureNow(o));
    this.reconfiguring = run.catch(() => undefined);
    return run;
  }

  private async reconfigureNow(o: ReconfigureOptions): Promise<void> {
    let prepared = 0;
    const errors = await this.request((id) => ({ t: 'prepare', id: (prepared = id), opts: o }));
    const fail = errors[0];
    if (fail !== undefined) {
      await this.request((id) => ({ t: 'abort', id, prepared }));
      throw new WorkerPoolError(fail.code, fail.message);
    }
    await this.request((id) => ({ t: 'commit', id, prepared }));
    // A worker started from now on loads the new configuration.
    const s = this.sensorOptions;
    this.sensorOptions = {
      ...s,
      ...(o.dictionary !== undefined ? { dictionary: o.dictionary } : {}),
      ...(o.engine !== undefined ? { engine: o.engine } : {}),
      ...(o.site !== undefined ? { site: o.site } : {}),
    };
  }

  /**
   * TLS secrets (pushed over the local API, or read by the main thread) for every worker, in one
   * message each. Frames handed over before the call may be processed before the keys arrive
   * (as with keys that come late on one thread: keyWaitUs covers it).
   */
  addKeys(entries: readonly (KeyLogEntry | KeyMessageEntry)[]): void {
    const batch: KeyMessageEntry[] = [];
    for (const e of entries) {
      const m: KeyMessageEntry = { label: e.label, clientRandom: e.clientRandom, secret: new Uint8Array(e.secret) };
      batch.push(m);
      const k = `${m.label} ${m.clientRandom}`;
      this.replayKeys.delete(k);
      this.replayKeys.set(k, m);
      if (this.replayKeys.size > MAX_REPLAY_KEYS) this.replayKeys.delete(this.replayKeys.keys().next().value as string);
    }
    if (batch.length > 0) this.broadcast({ t: 'keys', entries: batch });
  }

  /**
   * An identity observation made on the main thread (local API, static map pushed at run time):
   * every worker applies it.
   */
  observeIdentity(obs: IdentityObservation): void {
    this.replayObservations.push(obs);
    if (this.replayObservations.length > MAX_REPLAY_OBSERVATIONS) this.replayObservations.splice(0, this.replayObservations.length - MAX_REPLAY_OBSERVATIONS);
    this.broadcast({ t: 'identity', observations: [obs] });
  }

  /**
   * Resolves when every worker has processed every frame handed over before the call, and every
   * identity observation they made has reached the others. Counters are synced.
   */
  async drain(): Promise<void> {
    this.publishAll();
    await this.request((id) => ({ t: 'drain', id }));
    // Observations sent on during the drain are queued ahead of this round trip.
    await this.request((id) => ({ t: 'ping', id }));
    this.syncCounters();
  }

  /** End of input: every worker processes what it holds, ends every flow and flushes every merge window; all captures are delivered. */
  async finish(): Promise<void> {
    await this.drain();
    await this.request((id) => ({ t: 'finish', id }));
    await this.request((id) => ({ t: 'ping', id }));
    this.syncCounters();
  }

  /** Stops every worker (frames still in the rings are not processed: call finish() first for that). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.syncTimer);
    this.syncCounters();
    for (const s of this.slots) {
      if (s.restartTimer !== undefined) clearTimeout(s.restartTimer);
    }
    await Promise.all(this.slots.map((s) => s.worker?.terminate()));
    for (const w of this.waiters.values()) w.resolve();
    this.waiters.clear();
  }

  /** Flows tracked by all workers now (from their shared counters: no messages). */
  flowsActive(): number {
    let n = 0;
    for (const s of this.slots) if (s.flowActiveId >= 0) n += s.values[s.flowActiveId];
    return n;
  }

  /** Frames handed to each worker so far (the balance of the hash). */
  framesPerWorker(): number[] {
    return [...this.frames];
  }

  /** Per-worker flows tracked now. */
  flowsPerWorker(): number[] {
    return this.slots.map((s) => (s.flowActiveId >= 0 ? s.values[s.flowActiveId] : 0));
  }

  /**
   * Adds what every worker counted since the last call into the main thread's counters (by name:
   * counter ids differ between threads). Gauges such as `flow.active` come out as the sum.
   * Doubles are read without a lock: aligned 8-byte loads are single-copy atomic on x86-64 and arm64.
   */
  syncCounters(): void {
    const main = this.counters.values;
    for (const s of this.slots) {
      const { values, seen, idMap } = s;
      for (let i = 0; i < COUNTER_SLOTS; i++) {
        const v = values[i];
        const d = v - seen[i];
        if (d === 0) continue;
        const to = idMap[i];
        if (to < 0) continue;
        main[to] += d;
        seen[i] = v;
      }
    }
  }

  /** Ends worker k as a crash would (a stuck worker; tests): it is counted and restarted. */
  async terminateWorker(k: number): Promise<void> {
    const w = this.slots[k]?.worker;
    if (w !== undefined) await w.terminate();
  }

  private spawn(slot: Slot): void {
    // a worker (re)starts with no flows: none of its connections is bypassed
    slot.bypass?.clear();
    // a worker restarted while capture runs takes packets at once: the warm-up is for the start only
    const warmUpMs = this.started ? 0 : this.opts.warmUpMs ?? 0;
    slot.resetHeap();
    const data: WorkerData = { index: slot.index, ring: slot.ring, counters: slot.counterBuf, heap: slot.heap.buffer, ...(slot.bypassBuf !== undefined ? { bypass: slot.bypassBuf } : {}), sensor: this.sensorOptions, tickMs: this.tickMs, warmUpMs };
    startYoungGenerationsFull();
    const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } });
    slot.worker = w;
    slot.tid = undefined;
    slot.ready = false;
    w.on('message', (m: FromWorker) => this.onMessage(slot, m));
    w.on('error', (err) => {
      this.opts.log?.(`hark: worker ${slot.index} failed: ${err?.stack ?? String(err)}`);
    });
    w.on('exit', (code) => {
      if (slot.worker !== w) return;
      slot.worker = undefined;
      if (!this.closed) this.crashed(slot, code);
    });
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    switch (m.t) {
      case 'out': {
        const pages = m.evidence.length > 0 ? new Map(m.evidence.map((e) => [e.id, e])) : undefined;
        for (const json of m.captures) {
          const c = fromJson(json) as CaptureEvent;
          const e = pages?.get(c.id);
          this.opts.onCapture(c, e === undefined ? undefined : { contentType: e.contentType, ...(e.charset !== undefined ? { charset: e.charset } : {}), body: Buffer.from(e.body.buffer, e.body.byteOffset, e.body.byteLength), truncated: e.truncated });
        }
        if (this.opts.onEvent !== undefined) for (const e of m.events) this.opts.onEvent(e);
        if (m.identity.length > 0) {
          for (const o of m.identity) this.opts.identity?.observe(o);
          // Another worker's packets may need this device's name: everyone else applies it.
          const msg: ToWorker = { t: 'identity', observations: m.identity };
          for (const s of this.slots) if (s !== slot) s.worker?.postMessage(msg);
        }
        break;
      }
      case 'names':
        this.learnNames(slot, m.counters);
        break;
      case 'ready':
        slot.ready = true;
        slot.tid = m.tid;
        slot.crashes = 0;
        if (m.warmUp !== undefined) this.warmUps.push(m.warmUp);
        if (!this.started && this.slots.every((s) => s.ready)) {
          this.started = true;
          this.readyResolve();
        }
        break;
      case 'failed': {
        const err = new WorkerPoolError(m.error.code, m.error.message);
        if (!this.started) {
          this.readyReject(err);
        } else {
          this.opts.log?.(`hark: worker ${slot.index} could not start again: ${m.error.message}`);
        }
        void slot.worker?.terminate();
        break;
      }
      case 'prepared':
        this.answered(slot, m.id, m.error);
        break;
      case 'done':
        this.answered(slot, m.id, undefined);
        break;
    }
  }

  private learnNames(slot: Slot, n: CounterNames): void {
    for (let i = 0; i < n.names.length; i++) {
      const id = n.first + i;
      if (id >= COUNTER_SLOTS) break;
      const name = n.names[i];
      slot.idMap[id] = n.anomaly[i] ? defineAnomaly(name) : defineCounter(name);
      if (slot.idMap[id] === C_FLOW_ACTIVE) slot.flowActiveId = id;
    }
  }

  /** Sends a request to every live worker; resolves with the errors they answered once all did (or died). */
  private request(make: (id: number) => ToWorker): Promise<ConfigError[]> {
    const id = this.nextId++;
    const msg = make(id);
    const live = this.slots.filter((s) => s.worker !== undefined && !this.closed);
    if (live.length === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      const w: Waiter = { waiting: new Set(live.map((s) => s.index)), errors: [], resolve: () => resolve(w.errors) };
      this.waiters.set(id, w);
      for (const s of live) s.worker!.postMessage(msg);
    });
  }

  private answered(slot: Slot, id: number, error: ConfigError | undefined): void {
    const w = this.waiters.get(id);
    if (w === undefined) return;
    if (error !== undefined) w.errors.push(error);
    w.waiting.delete(slot.index);
    if (w.waiting.size === 0) {
      this.waiters.delete(id);
      w.resolve();
    }
  }

  private broadcast(msg: ToWorker): void {
    for (const s of this.slots) s.worker?.postMessage(msg);
  }

  /**
   * A worker died: its counters are folded in (its flows and in-progress fragments leave the
   * gauges and are counted lost), what it had not read from its ring is thrown away and counted,
   * requests stop waiting for it, and a new worker takes its place after a back-off.
   */
  private crashed(slot: Slot, code: number): void {
    this.counters.inc(C_CRASHES);
    this.syncCounters();
    const main = this.counters.values;
    const lostFlows = slot.flowActiveId >= 0 ? slot.values[slot.flowActiveId] : 0;
    for (let i = 0; i < COUNTER_SLOTS; i++) {
      const to = slot.idMap[i];
      if (to >= 0 && GAUGES.has(to)) main[to] -= slot.values[i];
    }
    this.counters.inc(C_FLOWS_LOST, lostFlows);
    const lostRecords = slot.producer.discardUnconsumed();
    slot.resetHeap();
    // its connections are gone with it: their frames pass again (to its successor, once it runs)
    slot.bypass?.clear();
    this.counters.inc(C_RECORDS_LOST, lostRecords);
    this.opts.log?.(`hark: worker ${slot.index} exited (code ${code}): ${lostFlows} flows and ${lostRecords} queued frames lost; restarting it`);
    for (const [id, w] of this.waiters) {
      if (w.waiting.delete(slot.index) && w.waiting.size === 0) {
        this.waiters.delete(id);
        w.resolve();
      }
    }
    if (!this.started) {
      this.readyReject(new WorkerPoolError('E_WORKER_EXIT', `Worker ${slot.index} exited (code ${code}) while starting`));
      return;
    }
    const delay = Math.min(MAX_RESTART_DELAY_MS, RESTART_DELAY_MS * 2 ** slot.crashes);
    slot.crashes++;
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (this.closed) return;
      slot.resetCounters();
      this.counters.inc(C_RESTARTS);
      this.spawn(slot);
      // Bring it up to date with what the main thread pushed (the others' observations since are lost with it).
      if (this.replayKeys.size > 0) slot.worker!.postMessage({ t: 'keys', entries: [...this.replayKeys.values()] } satisfies ToWorker);
      if (this.replayObservations.length > 0) slot.worker!.postMessage({ t: 'identity', observations: this.replayObservations } satisfies ToWorker);
    }, delay);
  }
}

/**
 * Forwards every session a main-thread KeyStore learns (key logs it follows, the local API) to the
 * pool's workers. Returns the function that stops it.
 */
export function forwardKeyStore(store: KeyStore, pool: WorkerPool): () => void {
  return store.onKeys((hex) => {
    const s = store.get(hex);
    if (s !== undefined) pool.addKeys(sessionKeyEntries(hex, s));
  });
}

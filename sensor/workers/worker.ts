/**
 * Worker thread entry: one Sensor (the whole pipeline with every app layer) fed from its shared
 * packet ring. Input: workerData (WorkerData: ring, counter memory, serialisable sensor options)
 * and control messages (ToWorker). Output: captures, events and identity observations to the main
 * thread in batches (FromWorker 'out'), counters and heap figures in shared memory. The worker owns its flows end
 * to end: the dispatcher sends both directions of each flow here.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { counterName, Counters, defineCounter } from '../events/counters.js';
import type { DnsPolicyEvent } from '../events/dns.js';
import type { TlsEvent } from '../events/tls.js';
import { KeyStore } from '../app-layer/tls/keylog.js';
import { IdentityTable } from '../identity/table.js';
import type { IdentityObservation } from '../identity/observation.js';
import { loadMatching, Sensor, SensorConfigError, type Matching } from '../main.js';
import { loadSitePolicy, type SitePolicy } from '../site-policy.js';
import { type ConfigError, type EvidenceMessage, type FromWorker, type ReconfigureOptions, type ToWorker, type WorkerData, sharedCounters } from './protocol.js';
import { WorkerCaptureBypass } from './bypass-table.js';
import { RingConsumer } from './shared-ring.js';
import { HeapSlot, readThreadMemory } from '../health/memory.js';
import { osThreadId } from '../health/threads.js';
import { warmUp } from '../warm-up.js';

/** Records handed to the pipeline between two looks at the clock (without locality batches). */
const RECORDS_PER_BATCH = 256;
/** A worker with a backlog yields its event loop this often, so control messages and ticks run. */
const SLICE_MS = 20;
/** Wake up this often even without a notify (a lost wake-up costs at most this much latency). */
const IDLE_WAIT_MS = 500;
/** Outgoing captures / events / observations held before a batch is posted anyway. */
const MAX_OUT_BATCH = 512;

/** How often a quiet worker checks for counter names defined since it last said, and rewrites its heap figures. */
const HOUSEKEEPING_MS = 1000;

const C_IDENTITY_BROADCAST = defineCounter('workers.identity_sent');
const C_IDENTITY_RECEIVED = defineCounter('workers.identity_received');
const C_KEYS_RECEIVED = defineCounter('workers.keys_received');

/**
 * The identity table of one worker: what its own packets show is applied and also sent to the
 * main thread (which hands it to the other workers); what arrives from there is applied only.
 * Static-map facts are not sent: every worker loads the same map.
 */
export class BroadcastIdentityTable extends IdentityTable {
  private remote = false;
  constructor(counters: ConstructorParameters<typeof IdentityTable>[0], private readonly send: (obs: IdentityObservation) => void) {
    super(counters);
  }

  override observe(obs: IdentityObservation): void {
    super.observe(obs);
    if (!this.remote && obs.source !== 'static') this.send(obs);
  }

  /** Observations made elsewhere (another worker, the local API). */
  applyRemote(list: readonly IdentityObservation[]): void {
    this.remote = true;
    try {
      for (const o of list) super.observe(o);
    } finally {
      this.remote = false;
    }
  }
}

/** Counter names defined since `first`, with which are anomalies (counters.ts keeps kinds private: a probe snapshot tells). */
function namesFrom(first: number): { first: number; names: string[]; anomaly: boolean[] } | undefined {
  const names: string[] = [];
  for (let i = first; !counterName(i).startsWith('unknown.'); i++) names.push(counterName(i));
  if (names.length === 0) return undefined;
  const probe = new Counters();
  for (let i = 0; i < names.length; i++) probe.values[first + i] = 1;
  const anomalies = probe.snapshot('anomaly');
  return { first, names, anomaly: names.map((n) => anomalies[n] !== undefined) };
}

function configError(err: unknown): ConfigError {
  const e = err as Error & { code?: string };
  return { code: typeof e?.code === 'string' ? e.code : err instanceof SensorConfigError ? err.code : 'E_WORKER', message: e?.message ?? String(err) };
}

function run(port: NonNullable<typeof parentPort>, data: WorkerData): void {
  const counters = sharedCounters(data.counters);
  const ring = new RingConsumer(data.ring);
  let captures: string[] = [];
  let events: (TlsEvent | DnsPolicyEvent)[] = [];
  let observations: IdentityObservation[] = [];
  let evidence: EvidenceMessage[] = [];
  let outCount = 0;
  const post = (m: FromWorker): void => port.postMessage(m);
  let namesSent = 0;
  /** Names of counters defined since the last call (modules can define more as they load). */
  const sendNames = (): void => {
    const n = namesFrom(namesSent);
    if (n === undefined) return;
    namesSent = n.first + n.names.length;
    post({ t: 'names', counters: n });
  };
  const flushOut = (): void => {
    sendNames();
    if (outCount === 0) return;
    post({ t: 'out', captures, events, identity: observations, evidence });
    counters.inc(C_IDENTITY_BROADCAST, observations.length);
    captures = [];
    events = [];
    observations = [];
    evidence = [];
    outCount = 0;
  };
  const queued = (): void => {
    if (++outCount >= MAX_OUT_BATCH) flushOut();
  };
  const identity = new BroadcastIdentityTable(counters, (o) => {
    observations.push(o);
    queued();
  });
  const keyStore = new KeyStore(counters);
  let sensor: Sensor;
  try {
    const s = data.sensor;
    sensor = new Sensor({
      ...s,
      counters,
      keyStore,
      identity,
      captureBypass: data.bypass !== undefined ? new WorkerCaptureBypass(data.bypass, counters) : undefined,
      onCapture: (c, ev) => {
        captures.push(JSON.stringify(c));
        if (ev !== undefined) evidence.push({ id: c.id, contentType: ev.contentType, ...(ev.charset !== undefined ? { charset: ev.charset } : {}), body: ev.body, truncated: ev.truncated });
        queued();
      },
      onEvent: (e) => {
        events.push(e);
        queued();
      },
    });
  } catch (err) {
    post({ t: 'failed', error: configError(err) });
    return;
  }
  sendNames();
  const packet = sensor.pipeline.packet;
  // off unless asked for (WorkerSensorOptions.localityFrames): see README, "Using every core"
  const batcher = sensor.pipeline.localityBatcher(data.sensor.localityFrames ?? 0);
  const flushBatch = (): void => batcher?.flush();
  /**
   * A quarter of the ring at most is held by a batch (it is released when the whole batch has been
   * handed over): the capture thread keeps the rest to write in meanwhile.
   */
  const batchBytes = ring.capacity >>> 2;
  /**
   * The next records: 256 at a time, or as a connection-grouped batch of what the ring holds (up
   * to the batcher's frames and batchBytes). A worker that keeps up takes small batches; one that
   * falls behind takes bigger ones, which cost less per packet (workers/locality.ts).
   */
  const take = (): number =>
    batcher === undefined ? ring.consume(packet, RECORDS_PER_BATCH) : ring.consume(batcher.add, batcher.maxFrames, batchBytes, flushBatch);
  let prepared: { id: number; matching?: Matching; site?: SitePolicy } | undefined;

  /** Everything published so far through the pipeline (control messages wait meanwhile). */
  const drainAll = (): void => {
    while (take() > 0);
    flushOut();
  };

  const pump = (): void => {
    const deadline = performance.now() + SLICE_MS;
    let n = 0;
    do n = take();
    while (n > 0 && performance.now() < deadline);
    flushOut();
    if (n > 0 || ring.hasData()) setImmediate(pump);
    else void ring.waitForData(IDLE_WAIT_MS).then(pump);
  };

  port.on('message', (m: ToWorker) => {
    switch (m.t) {
      case 'keys': {
        for (const e of m.entries) keyStore.add(e.label, e.clientRandom, e.secret);
        counters.inc(C_KEYS_RECEIVED, m.entries.length);
        break;
      }
      case 'identity':
        identity.applyRemote(m.observations);
        counters.inc(C_IDENTITY_RECEIVED, m.observations.length);
        break;
      case 'prepare': {
        // Load and check everything first; the swap (commit) is a few assignments on every worker.
        try {
          const o: ReconfigureOptions = m.opts;
          const matching = o.dictionary !== undefined ? loadMatching(o.dictionary, o.engine ?? 'auto', counters) : undefined;
          const site = o.site !== undefined ? loadSitePolicy(o.site) : undefined;
          prepared = { id: m.id, matching, site };
          post({ t: 'prepared', id: m.id });
        } catch (err) {
          prepared = undefined;
          post({ t: 'prepared', id: m.id, error: configError(err) });
        }
        break;
      }
      case 'commit':
        if (prepared !== undefined && prepared.id === m.prepared) {
          // Packets already in the ring are matched with the new dictionary, as a reload on one thread would.
          if (prepared.matching !== undefined) sensor.matching = prepared.matching;
          sensor.reconfigure(prepared.site !== undefined ? { site: prepared.site } : {});
        }
        prepared = undefined;
        post({ t: 'done', id: m.id });
        break;
      case 'abort':
        prepared = undefined;
        post({ t: 'done', id: m.id });
        break;
      case 'drain':
        drainAll();
        post({ t: 'done', id: m.id });
        break;
      case 'ping':
        sendNames();
        post({ t: 'done', id: m.id });
        break;
      case 'finish':
        drainAll();
        sensor.finish();
        flushOut();
        post({ t: 'done', id: m.id });
        break;
    }
  });

  // Names defined later (a module loaded on first use) reach the main thread within a second; the
  // heap figures are at most a second old when the main thread samples them (files too: tickMs 0).
  const heap = new HeapSlot(data.heap);
  setInterval(() => {
    sendNames();
    heap.write(readThreadMemory());
  }, HOUSEKEEPING_MS).unref();
  if (data.tickMs > 0) {
    // Capture time is wall time on a live sensor: flows and merge windows expire when traffic stops.
    const timer = setInterval(() => {
      const now = Date.now() * 1000;
      sensor.pipeline.flows.expire(now);
      sensor.collector.expire(now);
      flushOut();
    }, data.tickMs);
    timer.unref();
  }
  // before 'ready': the pool opens the interfaces once every worker has said it
  const warm = data.warmUpMs > 0 ? warmUp({ sensorOptions: data.sensor, matching: sensor.matching, budgetMs: data.warmUpMs }) : undefined;
  heap.write(readThreadMemory());
  const tid = osThreadId();
  post({ t: 'ready', ...(tid !== undefined ? { tid } : {}), ...(warm !== undefined ? { warmUp: warm } : {}) });
  pump();
}

if (parentPort !== null && workerData !== undefined && workerData !== null) run(parentPort, workerData as WorkerData);

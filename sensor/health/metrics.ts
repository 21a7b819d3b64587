/**
 * The /metrics endpoint: the sensor's snapshot in Prometheus text format 0.0.4, plus prom-client's
 * default process metrics (which see the main thread's V8 heap only: the hark_thread_* memory
 * gauges cover every thread). Input: a listen address (`HOST:PORT`, loopback unless `allowRemote`:
 * the endpoint has no authentication) and a function returning the latest `SensorSnapshot`,
 * called once per scrape. Output: `GET /metrics` answers; anything else 404 (405 for another
 * method on /metrics). Listen failures are `MetricsListenError` (code E_METRICS_LISTEN) naming the address.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client';
import type { ThreadMemory } from './memory.js';
import type { SensorSnapshot } from './snapshot.js';

/** Next to Prometheus's exporter range; the OpenTelemetry Prometheus exporter uses the same port. */
export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9464';
export const METRICS_PATH = '/metrics';
/**
 * Counters the pipeline keeps as gauges (`Counters.set`): exported as `hark_<name>` gauges, not
 * `_total` counters. `flow.active` is already `hark_flows_active`.
 */
export const GAUGE_COUNTERS: ReadonlySet<string> = new Set(['app_layer.memuse', 'defrag.in_progress', 'quic.flows_tracked']);
const SKIPPED_COUNTERS: ReadonlySet<string> = new Set(['flow.active']);
/**
 * Counters issue 5 names that a snapshot lists only once non-zero: exported from the first scrape
 * (0 until the first event), since an alert on a series that does not exist yet never fires. Any
 * other counter gets its `hark_<name>_total` when first seen.
 */
export const ALWAYS_EXPORTED_COUNTERS: ReadonlyMap<string, string> = new Map([
  ['decoder.duplicates', 'Mirror-port duplicates dropped (identical copies of a packet within 1 ms)'],
  ['tcp.reassembly_gap', 'TCP reassembly gaps: stream bytes never seen, skipped so the stream goes on'],
  ['tcp.reassembly_gap_bytes', 'Stream bytes lost in TCP reassembly gaps'],
  ['flow.memcap_evicted', 'Flows ended early because the flow table was full (--max-flows or --flow-memcap)'],
  ['tcp.reassembly_memcap', 'Out-of-order holes made gaps early because the reassembly memory (half the flow memcap) was full'],
  ['defrag.memcap_evicted', 'IP datagrams dropped unreassembled because the fragment table was full'],
]);
/** One counter metric per distinct statistic: more than Counters can hold means something is wrong. */
const MAX_DYNAMIC_METRICS = 1024;

export class MetricsListenError extends Error {
  readonly code = 'E_METRICS_LISTEN';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
  readonly loopback: boolean;
}

function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^::ffff:127\./i.test(host);
  return false;
}

/**
 * Parses `127.0.0.1:9464`, `[::1]:9464`, `localhost:9464`, or a bare port (loopback 127.0.0.1).
 * Throws MetricsListenError for a malformed address, or a non-loopback host without allowRemote.
 */
export function parseMetricsListen(text: string, allowRemote = false): ListenAddress {
  let host: string | undefined;
  let portText: string | undefined;
  if (/^\d{1,5}$/.test(text)) {
    host = '127.0.0.1';
    portText = text;
  } else {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text);
    host = m?.[1] ?? m?.[2];
    portText = m?.[3];
    if (m?.[1] !== undefined && isIP(m[1]) !== 6) host = undefined;
  }
  const port = Number(portText);
  if (host === undefined || !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw new MetricsListenError(`Metrics address "${text}" is not HOST:PORT (e.g. 127.0.0.1:9464 or [::1]:9464)`);
  }
  const loopback = isLoopbackHost(host);
  if (!loopback && !allowRemote) {
    throw new MetricsListenError(`Metrics address "${text}" is not a loopback address: /metrics has no authentication, so it listens only on 127.0.0.0/8, ::1 or localhost`);
  }
  return { host, port, loopback };
}

/** `tcp.reassembly_gap` -> `tcp_reassembly_gap`: anything outside [a-zA-Z0-9_] becomes `_`. */
export function metricNamePart(dotted: string): string {
  return dotted.replace(/[^a-zA-Z0-9_]/g, '_');
}

function isoSeconds(iso: string | undefined): number | undefined {
  if (iso === undefined) return undefined;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms / 1000 : undefined;
}

/** A non-negative finite number, or 0: a counter must never make prom-client throw. */
function nonNegative(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
}

/**
 * A prom-client registry whose collect() callbacks read the snapshot set by `render()`.
 * Exposed for tests and for a caller that wants the text without HTTP.
 */
export class SensorMetrics {
  readonly registry = new Registry();
  private current: SensorSnapshot | undefined;
  private readonly fixedNames = new Set<string>();
  private readonly dynamic = new Map<string, string>();
  /** Scalars the snapshot may lack: unregistered for that scrape rather than printed as 0. */
  private readonly optional: Array<{ metric: Metric; name: string; present: (s: SensorSnapshot) => boolean }> = [];
  /** Statistic names not exported because their metric name collided or the table was full. */
  readonly skipped = new Set<string>();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const reg = this.registry;
    const snap = () => this.current;
    const fixed = (name: string): string => {
      this.fixedNames.add(name);
      return name;
    };
    new Gauge({
      name: fixed('hark_info'), help: 'Hark sensor version (value is always 1)', labelNames: ['version'], registers: [reg],
      collect() {
        this.reset();
        const s = snap();
        if (s) this.set({ version: s.version }, 1);
      },
    });
    const perInterface = (name: string, help: string, pick: (i: SensorSnapshot['interfaces'][number]) => number | undefined) =>
      new Counter({
        name: fixed(name), help, labelNames: ['interface'], registers: [reg],
        collect() {
          this.reset();
          for (const i of snap()?.interfaces ?? []) {
            const v = pick(i);
            if (v !== undefined) this.inc({ interface: i.name }, nonNegative(v));
          }
        },
      });
    perInterface('hark_interface_packets_total', 'Frames received on the capture interface', (i) => i.packets);
    perInterface('hark_interface_bytes_total', 'Bytes received on the capture interface', (i) => i.bytes);
    perInterface('hark_interface_kernel_drops_total', 'Frames the kernel dropped before libpcap read them (pcap_stats ps_drop)', (i) => i.kernel_drops);
    perInterface('hark_interface_interface_drops_total', 'Frames the NIC or driver dropped (sysfs rx_dropped + rx_missed_errors)', (i) => i.interface_drops);
    perInterface('hark_interface_handoff_drops_total', 'Captured frames lost because the worker threads were behind (their rings were full)', (i) => i.handoff_drops);
    new Gauge({
      name: fixed('hark_interface_last_packet_timestamp_seconds'), help: 'Unix time a packet was last seen on the interface (sample precision)', labelNames: ['interface'], registers: [reg],
      collect() {
        this.reset();
        for (const i of snap()?.interfaces ?? []) {
          const t = isoSeconds(i.last_packet_at);
          if (t !== undefined) this.set({ interface: i.name }, t);
        }
      },
    });
    this.optional.push({
      metric: new Gauge({
        name: fixed('hark_handoff_backlog_bytes'), help: 'Captured bytes waiting in the worker threads\' rings (growing: the workers are behind the link)', registers: [reg],
        collect() { this.set(nonNegative(snap()?.handoff_backlog?.bytes)); },
      }),
      name: 'hark_handoff_backlog_bytes',
      present: (s) => s.handoff_backlog !== undefined,
    });
    new Counter({
      name: fixed('hark_thread_cpu_seconds_total'),
      help: 'CPU time of the sensor\'s threads: capture (reads the interfaces, hands off, stores), worker-N (packet work), other (garbage collection helpers, libuv)',
      labelNames: ['thread'], registers: [reg],
      collect() {
        this.reset();
        const t = snap()?.threads;
        if (t === undefined) return;
        this.inc({ thread: 'capture' }, nonNegative(t.capture.cpu_seconds));
        t.workers.forEach((w, k) => this.inc({ thread: `worker-${k}` }, nonNegative(w.cpu_seconds)));
        this.inc({ thread: 'other' }, nonNegative(t.other.cpu_seconds));
      },
    });
    const perThreadMemory = (name: string, help: string, pick: (t: ThreadMemory) => number | undefined) =>
      new Gauge({
        name: fixed(name), help, labelNames: ['thread'], registers: [reg],
        collect() {
          this.reset();
          const m = snap()?.memory;
          if (m === undefined) return;
          const put = (thread: string, t: ThreadMemory): void => {
            const v = pick(t);
            if (v !== undefined) this.set({ thread }, nonNegative(v));
          };
          put('capture', m.capture);
          m.workers.forEach((w, k) => put(`worker-${k}`, w));
        },
      });
    perThreadMemory('hark_thread_heap_used_bytes', 'V8 heap in use by each thread: capture (main thread), worker-N', (t) => t.heap_used_bytes);
    perThreadMemory('hark_thread_heap_committed_bytes', 'Resident V8 heap of each thread (total physical size): what the heap adds to RSS', (t) => t.heap_committed_bytes);
    perThreadMemory('hark_thread_young_generation_bytes', 'Resident young generation of each thread (new space + new large object space), part of its heap committed', (t) => t.young_generation_bytes);
    perThreadMemory('hark_thread_external_bytes', 'Off-heap memory each thread\'s V8 isolate holds (ArrayBuffers, Buffers), shared memory excluded', (t) => t.external_bytes);
    new Gauge({
      name: fixed('hark_shared_memory_bytes'), help: 'Shared memory the sensor allocated, by part: capture_rings (kernel TPACKET rings), handoff_rings (to the workers), bypass_tables',
      labelNames: ['part'], registers: [reg],
      collect() {
        this.reset();
        for (const [part, v] of Object.entries(snap()?.memory?.shared ?? {})) if (v !== undefined) this.set({ part }, nonNegative(v));
      },
    });
    this.optional.push({
      metric: new Gauge({
        name: fixed('hark_memory_other_bytes'), help: 'RSS not in any thread\'s V8 heap or external memory nor in the shared memory: native allocations (Hyperscan, zlib, SQLite), code, stacks', registers: [reg],
        collect() { this.set(nonNegative(snap()?.memory?.other_bytes)); },
      }),
      name: 'hark_memory_other_bytes',
      present: (s) => s.memory?.other_bytes !== undefined,
    });
    new Gauge({
      name: fixed('hark_flows_active'), help: 'Flows in the flow table', registers: [reg],
      collect() { this.set(nonNegative(snap()?.flows_active)); },
    });
    new Counter({
      name: fixed('hark_captures_total'), help: 'Captures (dictionary matches) stored since the sensor started', registers: [reg],
      collect() { this.reset(); this.inc(nonNegative(snap()?.captures)); },
    });
    new Gauge({
      name: fixed('hark_upload_queue'), help: 'Captures waiting to be uploaded home', registers: [reg],
      collect() { this.set(nonNegative(snap()?.upload.queue)); },
    });
    this.optional.push({
      metric: new Gauge({
        name: fixed('hark_upload_last_success_timestamp_seconds'), help: 'Unix time of the last successful upload', registers: [reg],
        collect() { this.set(isoSeconds(snap()?.upload.last_success_at) ?? 0); },
      }),
      name: 'hark_upload_last_success_timestamp_seconds',
      present: (s) => isoSeconds(s.upload.last_success_at) !== undefined,
    });
    new Counter({
      name: fixed('hark_anomalies_total'), help: 'Decode and protocol anomalies by dotted code', labelNames: ['code'], registers: [reg],
      collect() {
        this.reset();
        for (const [code, v] of Object.entries(snap()?.anomalies ?? {})) this.inc({ code }, nonNegative(v));
      },
    });
    new Gauge({
      name: fixed('hark_health_active'), help: 'Active (raised, not cleared) health conditions by name', labelNames: ['name'], registers: [reg],
      collect() {
        this.reset();
        for (const e of snap()?.health ?? []) this.inc({ name: e.name }, 1);
      },
    });
    new Gauge({
      name: fixed('hark_config_info'), help: 'Where the running configuration came from (value is always 1)', labelNames: ['source', 'version'], registers: [reg],
      collect() {
        this.reset();
        const c = snap()?.config;
        if (c) this.set({ source: c.source, version: c.version ?? '' }, 1);
      },
    });
    this.optional.push({
      metric: new Gauge({
        name: fixed('hark_config_age_seconds'), help: 'Age of the running configuration', registers: [reg],
        collect() { this.set(nonNegative(snap()?.config.age_s)); },
      }),
      name: 'hark_config_age_seconds',
      present: (s) => typeof s.config.age_s === 'number' && Number.isFinite(s.config.age_s),
    });
    for (const [dotted, help] of ALWAYS_EXPORTED_COUNTERS) this.registerStatistic(dotted, `${help} (counter "${dotted}")`);
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: reg });
  }

  /** Registers a counter (or gauge) for each statistic seen for the first time. */
  private registerStatistics(s: SensorSnapshot): void {
    for (const dotted of Object.keys(s.counters)) this.registerStatistic(dotted);
  }

  /** Registers `hark_<name>_total` (a gauge `hark_<name>` for GAUGE_COUNTERS) reading the snapshot's `counters[dotted]`, 0 when absent. */
  private registerStatistic(dotted: string, help?: string): void {
    if (this.dynamic.has(dotted) || this.skipped.has(dotted) || SKIPPED_COUNTERS.has(dotted)) return;
    const gauge = GAUGE_COUNTERS.has(dotted);
    const name = `hark_${metricNamePart(dotted)}${gauge ? '' : '_total'}`;
    if (this.fixedNames.has(name) || this.registry.getSingleMetric(name) !== undefined || this.dynamic.size >= MAX_DYNAMIC_METRICS) {
      this.skipped.add(dotted);
      return;
    }
    const snap = () => this.current;
    help ??= `Hark ${gauge ? 'gauge' : 'counter'} "${dotted}"`;
    if (gauge) {
      new Gauge({ name, help, registers: [this.registry], collect() { this.set(nonNegative(snap()?.counters[dotted])); } });
    } else {
      new Counter({ name, help, registers: [this.registry], collect() { this.reset(); this.inc(nonNegative(snap()?.counters[dotted])); } });
    }
    this.dynamic.set(dotted, name);
  }

  /** The exposition text for one snapshot. */
  async render(s: SensorSnapshot): Promise<string> {
    this.registerStatistics(s);
    for (const o of this.optional) {
      if (o.present(s)) this.registry.registerMetric(o.metric);
      else this.registry.removeSingleMetric(o.name);
    }
    this.current = s;
    // Every collect() runs synchronously inside metrics() before its first await, so a second
    // scrape that sets `current` meanwhile cannot mix two snapshots into one answer.
    return this.registry.metrics();
  }
}

export interface MetricsServerOptions {
  /** `HOST:PORT`; port 0 picks a free one (see `address`). */
  readonly listen: string;
  /** The latest snapshot: called once per scrape, so it should not take a new sample. */
  readonly snapshot: () => SensorSnapshot;
  /** Listen on a non-loopback address: anyone who can reach it reads the sensor's counters. */
  readonly allowRemote?: boolean;
  /** prom-client's process metrics (CPU, memory, event loop lag, GC); default true. */
  readonly defaultMetrics?: boolean;
}

export interface MetricsServer {
  /** The bound address as HOST:PORT (IPv6 in brackets), with the real port when 0 was asked for. */
  readonly address: string;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, contentType: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...extra });
  res.end(body);
}

async function handle(metrics: SensorMetrics, snapshot: () => SensorSnapshot, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?', 1)[0];
  if (path !== METRICS_PATH) return send(res, 404, 'text/plain; charset=utf-8', 'Not found: Hark serves only GET /metrics\n');
  if (req.method !== 'GET') return send(res, 405, 'text/plain; charset=utf-8', 'Only GET is allowed on /metrics\n', { allow: 'GET' });
  let text: string;
  try {
    text = await metrics.render(snapshot());
  } catch (err) {
    return send(res, 500, 'text/plain; charset=utf-8', `Cannot collect metrics: ${(err as Error).message}\n`);
  }
  send(res, 200, metrics.registry.contentType, text);
}

function listenError(text: string, err: NodeJS.ErrnoException): MetricsListenError {
  const why = err.code === 'EADDRINUSE' ? 'the address is already in use (another hark, or another exporter?)'
    : err.code === 'EADDRNOTAVAIL' ? 'no interface on this host has that address'
    : err.code === 'EACCES' ? 'permission denied (ports below 1024 need root)'
    : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN' ? 'the host name does not resolve'
    : err.message;
  return new MetricsListenError(`Cannot serve metrics on "${text}": ${why}`, { cause: err });
}

function formatAddress(a: AddressInfo): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** Starts the endpoint; rejects with MetricsListenError for a bad, remote (without allowRemote) or busy address. */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const addr = parseMetricsListen(opts.listen, opts.allowRemote === true);
  const metrics = new SensorMetrics({ defaultMetrics: opts.defaultMetrics });
  const server: Server = createServer((req, res) => void handle(metrics, opts.snapshot, req, res));
  server.on('connection', (socket) => socket.on('error', () => socket.destroy()));
  server.on('clientError', (_err, socket) => socket.destroy());
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(listenError(opts.listen, err as NodeJS.ErrnoException)));
    server.listen(addr.port, addr.host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const close = () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  // `localhost` could resolve to something else on a broken host: check what was actually bound.
  if (!opts.allowRemote && !isLoopbackHost(bound.address)) {
    await close();
    throw new MetricsListenError(`Metrics address "${opts.listen}" resolved to ${bound.address}, which is not loopback: refusing to serve unauthenticated metrics there`);
  }
  return { address: formatAddress(bound), close };
}

/**
 * The long-running sensor (`hark run`): composition of everything around the pipeline. Input: the
 * command line and, for an enrolled sensor, the configuration bundle home signs (fetched on every
 * start, last-known-good when home is down). Output: captures committed to the store, then handed
 * to the outputs (EVE, syslog, e-mail) and the uploader; status file, /metrics, heartbeats. Reload
 * (SIGUSR2, home's reload action, a newer config_version, every 12 hours) swaps dictionary and
 * policy without dropping flows; home's changes to what is opened or built at start (interfaces,
 * filter, outputs, inspection settings) wait for a restart, and say so.
 * No packet logic here: it only chooses, wires and schedules.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LocalApi } from './api/local-api.js';
import { sensorApiRoutes } from './api/routes.js';
import { KeyStore } from './app-layer/tls/keylog.js';
import { defaultInterface, LiveCapture } from './capture/live.js';
import { describeOffloads, prepareReceiveOffloads, type OffloadPlan } from './capture/offloads.js';
import { DEFAULT_BLOCK_BYTES, missingInterfaceError, RingCapture, ringAvailable } from './capture/ring.js';
import type { CaptureEvent, Evidence } from './events/capture.js';
import type { DnsPolicyEvent } from './events/dns.js';
import type { TlsEvent } from './events/tls.js';
import type { PacketHandler } from './capture/file-reader.js';
import type { IdentitySink } from './identity/observation.js';
import { forwardKeyStore, shareFlowLimits, WorkerPool } from './workers/pool.js';
import { usableMemoryBytes } from './workers/sizing.js';
import { Counters, defineCounter } from './events/counters.js';
import { healthEvent, type HealthEvent } from './events/health.js';
import { ActiveHealth } from './health/active-health.js';
import { startMetricsServer, type MetricsServer } from './health/metrics.js';
import { SensorSampler, type SensorSnapshot } from './health/snapshot.js';
import { StatusFileWriter } from './health/status-file.js';
import { sampleMemory, type SharedMemory, type ThreadMemory } from './health/memory.js';
import { MemoryAlarm, readMachineMemory } from './health/memory-alarm.js';
import { ThreadCpuSampler } from './health/threads.js';
import { InterfaceWatchdog } from './health/watchdog.js';
import { writeFileAtomic } from './home-client/atomic-file.js';
import { loadStartupConfig, fetchBundle, materialise, type MaterialisedConfig } from './home-client/config.js';
import { SensorCredentials } from './home-client/credentials.js';
import { Heartbeat, type HomeAction } from './home-client/heartbeat.js';
import { HomeLink } from './home-client/link.js';
import { IdentityTable } from './identity/table.js';
import { inspectionInForce, type InspectionInForce } from './inspect/inspection-settings.js';
import { DEFAULT_DICTIONARY, Sensor, type EngineChoice, type SensorOptions } from './main.js';
import { EmailAlerter } from './output/email.js';
import { JsonLinesWriter, MAX_HELD_BYTES } from './output/eve-writer.js';
import { OutputFanout, type EventOutput, type OutputEvent } from './output/output.js';
import { SyslogOutput } from './output/syslog.js';
import type { SitePolicyFiles } from './site-policy.js';
import { C_STORE_WRITE_ERROR, CaptureStore } from './store/capture-store.js';
import { actAs, lookupUser, runningAsRoot, type UserIds } from './store/acting-user.js';
import { chownTreeNoFollow, ensurePrivateDir } from './store/private-dir.js';
import { Uploader } from './upload/uploader.js';
import { DEFAULT_WARM_UP_MS, describeWarmUps, warmUp } from './warm-up.js';

const C_RELOADS = defineCounter('sensor.reloads');
const C_RELOAD_FAILED = defineCounter('sensor.reload_failed');
/** An event file (eve.json, --out) cannot be written. */
const HEALTH_OUTPUT = 'output.failing';
/** Home changed a setting a reload cannot apply (capture, outputs, inspection): it applies from the next start. */
const HEALTH_RESTART_NEEDED = 'config.restart_needed';
/** A failing store is logged at most this often (it is retried every tick). */
const STORE_ERROR_LOG_MS = 60_000;

/** Flows and merge windows expire, and the store commits, on this wall-clock tick. */
const TICK_MS = 1000;
/** Home pushes dictionary and policy changes through heartbeats; this catches anything missed. */
export const PERIODIC_RELOAD_MS = 12 * 3600_000;
/** Retention runs this often (it deletes in batches, so a run is short). */
const RETENTION_INTERVAL_MS = 3600_000;
/** How long a clean stop waits for the uploader to empty the outbox before leaving it for next start. */
const STOP_UPLOAD_WAIT_MS = 5000;
/** Entries named in the log line about what --user did not take over: enough to spot a planted link. */
const MAX_SKIPPED_SHOWN = 10;

export type SensorMode = 'standalone' | 'home';

export interface ServiceOptions {
  readonly dataDir: string;
  readonly mode: SensorMode;
  /** Interfaces from the command line or environment: they override the bundle's. */
  readonly interfaces?: readonly string[];
  readonly filter?: string;
  readonly dictionary?: string;
  readonly engine: EngineChoice;
  /** `--dedup-window`: repeats of a phrase by a device on a URL within it merge into one capture (default: home's, else the Sensor's, 60 s). */
  readonly dedupWindowUs?: number;
  /** `--body-limit`: decoded body bytes inspected per message (default: home's, else the Sensor's, 8 MiB). */
  readonly bodyLimitBytes?: number;
  /** Worker threads for the packet work (0: one thread, the Sensor on this one). */
  readonly workers: number;
  /** ring (Hark's TPACKET_V3 addon), pcap (libpcap through cap) or auto (ring when built). */
  readonly capture?: 'auto' | 'ring' | 'pcap';
  readonly keyLogs?: readonly string[];
  readonly rsaKeys?: readonly string[];
  readonly keyWaitUs: number;
  /** --key-wait not given: without key logs, records wait only once a key has come (SensorOptions.keyWaitAuto). */
  readonly keyWaitAuto?: boolean;
  /** Site policy from the command line (standalone), or added to the bundle's (local allow list). */
  readonly site: SitePolicyFiles;
  readonly api: { readonly enabled: boolean; readonly socket?: string; readonly listen?: string };
  readonly metricsListen?: string;
  readonly statusIntervalMs: number;
  readonly statsIntervalMs: number;
  readonly storeMaxBytes?: number;
  readonly flowLimits?: SensorOptions['flowLimits'];
  /** Frames per connection-grouped batch in each worker (default 0: in ring order). */
  readonly localityFrames?: number;
  /** Stop reassembling flows nothing more can be learned from (default true; `--no-bypass`). */
  readonly bypass?: boolean;
  readonly eve: { readonly maxBytes: number; readonly keep: number };
  /** `--out`: captures, tls and dns events also go to this JSON lines file ('-': standard output), as `hark scan` writes them. */
  readonly out?: string;
  readonly syslog: readonly string[];
  /** E-mail alerts from the command line (standalone); an enrolled sensor takes home's. */
  readonly email?: { readonly smtp: string; readonly from: string; readonly to: readonly string[]; readonly minSeverity: number; readonly batchSeconds: number; readonly site: string; readonly ca?: string };
  readonly proxy?: string;
  /** Drop to this user after the capture handles are open. */
  readonly user?: string;
  readonly watchdogSilentMs?: number;
  /** A capture.drops alarm clears after this long without a new drop. */
  readonly dropWindowMs?: number;
  /** Ring capture: kernel buffer per interface in MiB (1 MiB blocks; default 64). */
  readonly ringMb?: number;
  /** Synthetic traffic run before the interfaces open, in ms per packet thread (sensor/warm-up.ts; default DEFAULT_WARM_UP_MS, 0: none). */
  readonly warmUpMs?: number;
  /** Leave GRO / LRO on where they are on (a warning says what that costs); default: turn them off. */
  readonly keepOffloads?: boolean;
  readonly heartbeatMs?: number;
  /** Damping of the switch back to the preferred home: probe period and minimum hold-down. */
  readonly homeRecheckMs?: number;
  readonly homeHoldDownMs?: number;
  /** Plain HTTP to home: tests only. */
  readonly homeInsecure?: boolean;
  readonly log: (line: string) => void;
}

/** Why the service stopped: the exit code follows (a restart or reset exits for the supervisor to start it again). */
export type StopReason = 'signal' | 'restart' | 'reset';

export class ServiceError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

interface ActiveConfig {
  readonly source: 'command line' | 'home' | 'last-known-good';
  readonly version?: number;
  readonly fetchedAtMs?: number;
  readonly settings?: MaterialisedConfig;
}

/** The packet work: one Sensor on this thread, or a pool of worker threads each owning its flows. */
interface PacketEngine {
  readonly packet: PacketHandler;
  readonly description: string;
  flowsActive(): number;
  /** Frames of capture interface `ifIndex` lost between capture and the packet work (workers only). */
  handoffDrops?(ifIndex: number): number;
  /** Bytes handed to the workers and not yet taken, and the rings' size (workers only). */
  handoffBacklog?(): { bytes: number; capacity: number };
  /** The worker threads' kernel ids, for per-thread CPU in the status file (workers only). */
  workerThreadIds?(): (number | undefined)[];
  /** Each worker's V8 heap figures, in worker order (workers only). */
  workerMemory?(): ThreadMemory[];
  /** Shared memory the engine allocated: hand-off rings, bypass tables (workers only). */
  sharedMemory?(): SharedMemory;
  /** Every second: flows and merge windows expire by wall time (workers tick themselves). */
  tick(nowUs: number): void;
  reconfigure(o: { dictionary: string; engine: EngineChoice; site: SitePolicyFiles }): Promise<void>;
  /** End of capture: every flow ends, every capture is emitted. */
  finish(): Promise<void>;
  close(): Promise<void>;
}

function singleEngine(sensor: Sensor): PacketEngine {
  return {
    packet: sensor.pipeline.packet,
    get description() {
      return `${sensor.matching.matcher.phrases.length} phrases, engine ${sensor.matching.engine}, one thread`;
    },
    flowsActive: () => sensor.pipeline.flows.active,
    tick(nowUs) {
      sensor.pipeline.flows.expire(nowUs);
      sensor.collector.expire(nowUs);
    },
    reconfigure: async (o) => sensor.reconfigure(o),
    finish: async () => sensor.finish(),
    close: async () => sensor.close(),
  };
}

function poolEngine(pool: WorkerPool): PacketEngine {
  return {
    packet: pool.packet,
    description: `${pool.workers} worker threads`,
    flowsActive: () => pool.flowsActive(),
    handoffDrops: (ifIndex) => pool.handoffDrops(ifIndex),
    handoffBacklog: () => pool.handoffBacklog(),
    workerThreadIds: () => pool.workerThreadIds(),
    workerMemory: () => pool.workerMemory(),
    sharedMemory: () => pool.sharedMemory(),
    tick: () => pool.syncCounters(),
    reconfigure: (o) => pool.reconfigure(o),
    async finish() {
      await pool.finish();
      pool.syncCounters();
    },
    close: () => pool.close(),
  };
}

export class SensorService {
  readonly counters = new Counters();
  private readonly health = new ActiveHealth();
  private engine!: PacketEngine;
  /** Hark's TPACKET_V3 ring when its addon is built (kernel drop counters, batches), else libpcap via cap. */
  private live!: LiveCapture | RingCapture;
  private store!: CaptureStore;
  private outputs!: OutputFanout;
  private eve!: JsonLinesWriter;
  private credentials: SensorCredentials | undefined;
  private link: HomeLink | undefined;
  private uploader: Uploader | undefined;
  private heartbeat: Heartbeat | undefined;
  private api: LocalApi | undefined;
  private metrics: MetricsServer | undefined;
  private status!: StatusFileWriter;
  private sampler!: SensorSampler;
  private threadCpu!: ThreadCpuSampler;
  private readonly memoryAlarm = new MemoryAlarm(usableMemoryBytes, (e) => this.onHealth(e));
  private config: ActiveConfig = { source: 'command line' };
  /** The inspection settings the pipeline was built with: kept until the next start. */
  private inspection!: InspectionInForce;
  /** The settings a reload cannot change, as this process started with them. */
  private startedWith: readonly StartOnlySetting[] = [];
  /** What home has changed of them since, as last said ('' none; HEALTH_RESTART_NEEDED raised while not). */
  private restartNeeded = '';
  private interfaces: string[] = [];
  private timers: NodeJS.Timeout[] = [];
  private stopping: ((reason: StopReason) => void) | undefined;
  private reloading: Promise<void> | undefined;
  private lastUploadAtMs: number | undefined;
  private unforwardKeys: (() => void) | undefined;
  private uploadBatchesSeen = 0;
  /** When a store error was last logged (storeSafely). */
  private storeErrorLoggedAtMs = -Infinity;
  private offloads: OffloadPlan | undefined;

  constructor(private readonly opts: ServiceOptions) {}

  private onHealth = (e: HealthEvent): void => {
    this.health.sink(e);
    this.eve?.write(e);
    this.opts.log(`hark: health ${e.state} ${e.name}: ${e.message}`);
  };

  /** Starts everything; resolves when the sensor stops (signal, restart or reset action). */
  async run(): Promise<StopReason> {
    const o = this.opts;
    ensurePrivateDir(o.dataDir);
    // --user as root: the data directory is the user's before anything is written in it, and the
    // identity and configuration are written as that user: root writes nothing there (a link an
    // earlier, unprivileged run planted cannot redirect it), and the dropped sensor can rewrite all of it.
    const user = this.takeOverDataDir();
    const site = await actAs(user, () => this.resolveConfig());
    const settings = this.config.settings;
    this.interfaces = [...(o.interfaces ?? settings?.interfaces ?? [])];
    if (this.interfaces.length === 0) this.interfaces = [defaultInterface()];
    const missing = missingInterfaceError(this.interfaces);
    if (missing !== undefined) throw missing;
    const keyStore = new KeyStore(this.counters);
    const identity = new IdentityTable(this.counters);
    let apiIdentity: IdentitySink = identity;
    const dictionary = settings?.dictionary ?? o.dictionary ?? DEFAULT_DICTIONARY;
    const inspection = (this.inspection = inspectionInForce(o, settings?.inspection));
    this.startedWith = this.startOnly(settings);
    // an enrolled sensor keeps the pages of viewed captures: home renders them as evidence
    const keepEvidence = o.mode === 'home';
    const onCapture = (c: CaptureEvent, evidence?: Evidence): void => this.store.add(c, evidence);
    const onEvent = (e: TlsEvent | DnsPolicyEvent): void => this.outputs.write(e as OutputEvent);
    const warmUpMs = o.warmUpMs ?? DEFAULT_WARM_UP_MS;
    if (o.workers > 0) {
      const pool = await WorkerPool.start({
        workers: o.workers,
        sensorOptions: { dictionary, engine: o.engine, dedupWindowUs: inspection.dedupWindowUs, bodyLimitBytes: inspection.bodyLimitBytes, keyLogs: o.keyLogs, followKeyLogs: true, rsaKeys: o.rsaKeys, keyWaitUs: o.keyWaitUs, keyWaitAuto: o.keyWaitAuto, site, keepEvidence, flowLimits: shareFlowLimits(o.flowLimits, o.workers), localityFrames: o.localityFrames, bypass: o.bypass },
        onCapture,
        onEvent,
        counters: this.counters,
        identity,
        log: o.log,
        warmUpMs,
      });
      if (pool.warmUps.length > 0) o.log(`hark: warmed up: ${describeWarmUps(pool.warmUps)}`);
      this.unforwardKeys = forwardKeyStore(keyStore, pool);
      apiIdentity = { observe: (obs) => { identity.observe(obs); pool.observeIdentity(obs); } };
      this.engine = poolEngine(pool);
    } else {
      const options: SensorOptions = {
        counters: this.counters,
        dictionary,
        engine: o.engine,
        dedupWindowUs: inspection.dedupWindowUs,
        bodyLimitBytes: inspection.bodyLimitBytes,
        keyStore,
        keyLogs: o.keyLogs,
        followKeyLogs: true,
        rsaKeys: o.rsaKeys,
        site,
        identity,
        keyWaitUs: o.keyWaitUs,
        keyWaitAuto: o.keyWaitAuto,
        flowLimits: o.flowLimits,
        bypass: o.bypass,
        keepEvidence,
        onCapture,
        onEvent,
      };
      const sensor = new Sensor(options);
      // warmUp reads only the pipeline's settings of `options`: its callbacks, counters, keys and identity are its own
      if (warmUpMs > 0) o.log(`hark: warmed up: ${describeWarmUps([warmUp({ sensorOptions: options, matching: sensor.matching, budgetMs: warmUpMs })])}`);
      this.engine = singleEngine(sensor);
    }
    const filter = o.filter ?? (settings?.bpf !== undefined && settings.bpf !== '' ? settings.bpf : undefined);
    const ring = o.capture !== 'pcap' ? ringAvailable() : { ok: false, reason: 'libpcap chosen with --capture pcap' };
    if (o.capture === 'ring' && !ring.ok) throw new ServiceError('E_CAPTURE_RING', `Cannot use the ring capture: ${ring.reason}`);
    this.live = ring.ok
      ? new RingCapture({ interfaces: this.interfaces, filter, ...(o.ringMb !== undefined ? { blockBytes: DEFAULT_BLOCK_BYTES, blocks: o.ringMb } : {}) }, this.engine.packet, this.counters)
      : new LiveCapture({ interfaces: this.interfaces, filter }, this.engine.packet);
    try {
      this.offloads = prepareReceiveOffloads(this.interfaces, { keep: o.keepOffloads === true });
      this.live.start();
      // Before the store and EVE file are opened: root never opens files in a data directory that
      // a previous, unprivileged run could have filled with links.
      if (user !== undefined) dropPrivileges(user);
      this.openStorage(settings);
      this.reportOffloads(this.offloads);
      if (o.api.enabled) {
        this.api = await LocalApi.start({
          socketPath: o.api.socket ?? join(o.dataDir, 'api.sock'),
          listen: o.api.listen,
          tokenFile: join(o.dataDir, 'api.token'),
          routes: sensorApiRoutes(keyStore, this.counters, () => this.interfaces.map((name, i) => ({ name, packets: this.live.packets[i] })), apiIdentity),
        });
      }
      this.startMonitoring();
    } catch (err) {
      await this.shutdown();
      throw err;
    }
    if (this.link !== undefined) this.startHome(this.link);
    o.log(`hark: listening on ${this.interfaces.join(', ')} (${this.live.linkTypes.join(', ')}, ${this.live instanceof RingCapture ? 'ring' : 'libpcap'})${filter !== undefined ? ` filter "${filter}"` : ''}; ${this.engine.description}; configuration from ${this.describeConfig()}; data in ${o.dataDir}`);
    this.schedule();
    const reason = await new Promise<StopReason>((resolve) => {
      this.stopping = resolve;
    });
    await this.shutdown();
    if (reason === 'reset') {
      // home asked: forget the enrolment; the next start is unconfigured and enrols again
      this.credentials?.reset();
      removeOldConfigDirs(join(o.dataDir, 'config'), '');
      rmSync(join(o.dataDir, 'config', 'last-good.json'), { force: true });
    }
    return reason;
  }

  /**
   * With --user when started as root: looks the user up and hands it the data directory and
   * everything in it (what root made earlier, such as `hark enrol` run from the console), never
   * following a link: the directory may hold what an earlier run as that user planted there (a
   * link to /etc would otherwise make root give /etc away). What was left alone is logged by name.
   * Undefined without --user or when not root (there is nothing to drop).
   */
  private takeOverDataDir(): UserIds | undefined {
    const { user: name, dataDir, log } = this.opts;
    if (name === undefined || !runningAsRoot()) return undefined;
    let user: UserIds;
    try {
      user = lookupUser(name);
    } catch (err) {
      throw new ServiceError('E_USER', `Cannot drop privileges to user "${name}": ${(err as Error).message}`);
    }
    let handed;
    try {
      handed = chownTreeNoFollow(dataDir, user.uid, user.gid);
    } catch (err) {
      throw new ServiceError('E_USER', `Cannot hand data directory "${dataDir}" to user "${name}": ${(err as Error).message}`, { cause: err });
    }
    if (handed.skipped.length > 0) {
      const shown = handed.skipped.slice(0, MAX_SKIPPED_SHOWN).map((p) => `"${p}"`).join(', ');
      const more = handed.skipped.length > MAX_SKIPPED_SHOWN ? ` and ${handed.skipped.length - MAX_SKIPPED_SHOWN} more` : '';
      log(`hark: left ${handed.skipped.length} ${handed.skipped.length === 1 ? 'entry' : 'entries'} in ${dataDir} as they were (links, hard-linked files and special files are never handed to "${name}"): ${shown}${more}`);
    }
    return user;
  }

  /** Asks the running service to stop (SIGTERM / SIGINT). */
  stop(reason: StopReason = 'signal'): void {
    this.stopping?.(reason);
  }

  /** SIGHUP: reopen log files after logrotate moved them. */
  reopenLogs(): void {
    this.outputs?.reopen();
  }

  /** Turned-off offloads go to the log; offloads left on raise a `capture.offloads` warning per device (a bond's members too). */
  private reportOffloads(plan: OffloadPlan): void {
    if (plan.unchecked !== undefined) this.opts.log(`hark: receive offloads not checked: ${plan.unchecked}`);
    for (const note of plan.notes) this.opts.log(`hark: ${note}`);
    for (const r of plan.reports) {
      const said = describeOffloads(r);
      if (said === undefined) continue;
      if (said.level === 'info') this.opts.log(`hark: ${said.message}`);
      else this.onHealth(healthEvent('capture.offloads', 'warning', said.message, { interface: r.interface, ...(r.under !== undefined ? { under: r.under } : {}), offloads: r.stillOn.join(',') }));
    }
  }

  private describeConfig(): string {
    const c = this.config;
    if (c.source === 'command line') return 'the command line (standalone)';
    return `${c.source === 'home' ? 'home' : 'the last-known-good copy (home unreachable)'}, version ${c.version}`;
  }

  /** Standalone: the command line. Home: the signed bundle, or the last good one; never nothing. */
  private async resolveConfig(): Promise<SitePolicyFiles> {
    const o = this.opts;
    if (o.mode === 'standalone') {
      // the sensor's key pair and certificate exist from the first start, enrolled or not
      this.credentials = SensorCredentials.loadOrCreate(join(o.dataDir, 'identity'));
      return o.site;
    }
    const creds = (this.credentials = SensorCredentials.loadOrCreate(join(o.dataDir, 'identity')));
    if (!creds.enrolled || creds.caPem === undefined) {
      throw new ServiceError('E_NOT_ENROLLED', 'This sensor is not enrolled with a home server: run "hark enrol" (or option 4 of the console menu), or start it with --mode standalone');
    }
    this.link = new HomeLink({
      homes: [...creds.homes],
      ca: creds.caPem,
      cert: creds.certPem,
      key: creds.keyPem,
      proxy: o.proxy ?? creds.proxy,
      allowPlaintext: o.homeInsecure === true,
      recheckMs: o.homeRecheckMs,
      holdDownMs: o.homeHoldDownMs,
      counters: this.counters,
      onSwitch: (from, to, why) => o.log(`hark: home ${from ?? '-'} -> ${to} (${why})`),
    });
    await this.link.start();
    const startup = await loadStartupConfig(this.link, creds, join(o.dataDir, 'config'));
    if (startup.source === 'last-known-good') {
      this.onHealth(healthEvent('config.last_known_good', 'warning', `Home was not reachable at start (${startup.reason ?? 'no answer'}): running the last-known-good configuration, version ${startup.version}`));
    }
    const dir = join(o.dataDir, 'config', `active-${startup.version}`);
    const settings = materialise(startup.config, dir);
    this.adoptHomes(settings);
    this.config = { source: startup.source, version: startup.version, fetchedAtMs: startup.fetchedAt, settings };
    return this.siteFrom(settings, dir);
  }

  /** Home's list of its addresses (when it has one) is where the next start phones. */
  private adoptHomes(settings: MaterialisedConfig): void {
    const creds = this.credentials;
    if (creds === undefined || settings.homes.length === 0) return;
    if (settings.homes.join(' ') === creds.homes.join(' ')) return;
    creds.setLinkSettings([...settings.homes], creds.proxy);
    this.opts.log(`hark: home addresses are now ${settings.homes.join(', ')} (used from the next start)`);
  }

  /** The bundle's site policy plus the local allow list (the console menu edits it): both lists apply. */
  private siteFrom(settings: MaterialisedConfig, dir: string): SitePolicyFiles {
    const local = this.opts.site.allowList;
    const fromHome = settings.site.allowList;
    if (local === undefined || !existsSync(local)) return settings.site;
    if (fromHome === undefined) return { ...settings.site, allowList: local };
    const combined = join(dir, 'allow-list-combined.txt');
    // a new file renamed into place: a link left at this name is replaced, never written through
    writeFileAtomic(combined, `${readFileSync(fromHome, 'utf8')}\n${readFileSync(local, 'utf8')}\n`);
    return { ...settings.site, allowList: combined };
  }

  private openStorage(settings: MaterialisedConfig | undefined): void {
    const o = this.opts;
    this.store = new CaptureStore(join(o.dataDir, 'captures.db'), { maxBytes: o.storeMaxBytes, onHealth: this.onHealth, counters: this.counters });
    const eveSettings = settings?.outputs?.eve;
    const evePath = join(o.dataDir, 'eve.json');
    this.eve = new JsonLinesWriter(evePath, { maxBytes: eveSettings?.max_bytes ?? o.eve.maxBytes, keep: eveSettings?.keep ?? o.eve.keep, counters: this.counters, onWriteState: this.fileHealth(evePath) });
    const files: EventOutput[] = [this.eve];
    if (o.out !== undefined) files.push(new JsonLinesWriter(o.out, { counters: this.counters, onWriteState: this.fileHealth(o.out === '-' ? 'standard output' : o.out) }));
    this.outputs = new OutputFanout([...files, ...this.networkOutputs(settings)], this.counters);
    // Outputs and the uploader only ever see committed captures.
    this.store.onCommitted((rows) => {
      for (const c of rows) this.outputs.write(c);
      this.uploader?.kick();
    });
  }

  /**
   * An event file that cannot be written (disk full, I/O error, closed pipe) raises `output.failing`
   * for it, cleared once it is written again; the sensor and its store go on meanwhile.
   */
  private fileHealth(name: string): (err: (Error & { code?: string }) | undefined) => void {
    return (err) => {
      if (err !== undefined) {
        const heldMiB = MAX_HELD_BYTES / (1024 * 1024);
        this.onHealth(healthEvent(HEALTH_OUTPUT, 'warning', `Cannot write ${name}: ${err.message}; its newest ${heldMiB} MiB of events wait for a retry, older ones are dropped (counted); the capture store is not affected`, { subject: name, ...(err.code !== undefined ? { code: err.code } : {}) }));
      } else {
        this.onHealth(healthEvent(HEALTH_OUTPUT, 'info', `${name} is written again`, { subject: name }, 'cleared'));
      }
    };
  }

  private networkOutputs(settings: MaterialisedConfig | undefined): EventOutput[] {
    const out: EventOutput[] = [];
    for (const url of [...this.opts.syslog, ...(settings?.outputs?.syslog ?? []).map((s) => s.url)]) {
      out.push(new SyslogOutput({ url, counters: this.counters }));
    }
    const local = this.opts.email;
    if (local !== undefined && settings?.outputs?.email === undefined) {
      out.push(new EmailAlerter({ smtp: local.smtp, from: local.from, to: local.to, minSeverity: local.minSeverity, batchSeconds: local.batchSeconds, site: local.site, ...(local.ca !== undefined ? { ca: local.ca } : {}), counters: this.counters, onError: (e) => this.opts.log(`hark: e-mail alert: ${e.message}`) }));
    }
    const email = settings?.outputs?.email;
    if (email !== undefined && email.to.length > 0) {
      out.push(new EmailAlerter({ smtp: email.smtp, from: email.from, to: email.to, minSeverity: email.min_severity, batchSeconds: email.batch_seconds, site: settings?.site_name ?? 'Hark', counters: this.counters }));
    }
    return out;
  }

  private snapshotExtra(): Partial<SensorSnapshot> {
    const c = this.config;
    const backlog = this.engine.handoffBacklog?.();
    const threads = this.threadCpu.sample();
    const live = this.live;
    const captureRings = live instanceof RingCapture ? live.ringBytes() : 0;
    const memory = sampleMemory({
      workers: () => this.engine.workerMemory?.() ?? [],
      shared: () => ({ ...(captureRings > 0 ? { capture_rings: captureRings } : {}), ...this.engine.sharedMemory?.() }),
      // the addon's rings are external ArrayBuffers of this thread: reported as shared, not as its external memory
      sharedInCaptureExternal: () => captureRings,
    });
    this.memoryAlarm.check(memory.rss_bytes, readMachineMemory());
    return {
      ...(backlog !== undefined ? { handoff_backlog: backlog } : {}),
      ...(threads !== undefined ? { threads } : {}),
      memory,
      flows_active: this.engine.flowsActive(),
      captures: this.counters.get('capture.emitted'),
      upload: {
        queue: this.store.pendingCount(),
        ...(this.lastUploadAtMs !== undefined ? { last_success_at: new Date(this.lastUploadAtMs).toISOString() } : {}),
        ...(this.link?.current !== undefined ? { home: this.link.current } : {}),
      },
      config: {
        source: c.source,
        ...(c.version !== undefined ? { version: String(c.version) } : {}),
        ...(c.fetchedAtMs !== undefined ? { age_s: Math.round((Date.now() - c.fetchedAtMs) / 1000) } : {}),
        inspection: {
          dedup_window_s: this.inspection.dedupWindowUs / 1e6, dedup_window_from: this.inspection.dedupWindowFrom,
          body_limit_bytes: this.inspection.bodyLimitBytes, body_limit_from: this.inspection.bodyLimitFrom,
        },
      },
      health: this.health.list(),
    };
  }

  private startMonitoring(): void {
    const o = this.opts;
    const watchdog = new InterfaceWatchdog({ silentMs: o.watchdogSilentMs, dropWindowMs: o.dropWindowMs, onHealth: this.onHealth });
    this.threadCpu = new ThreadCpuSampler({ workerTids: () => this.engine.workerThreadIds?.() ?? [] });
    this.sampler = new SensorSampler({
      counters: this.counters,
      interfaces: () => {
        const kernel = this.live instanceof RingCapture ? this.live.stats() : undefined;
        const engine = this.engine;
        return this.interfaces.map((name, i) => ({
          name, packets: this.live.packets[i], bytes: this.live.bytes[i],
          ...(kernel !== undefined ? { kernelDrops: kernel[i].kernelDrops } : {}),
          ...(engine.handoffDrops !== undefined ? { handoffDrops: engine.handoffDrops(i) } : {}),
        }));
      },
      extra: () => this.snapshotExtra(),
      watchdog,
    });
    this.status = new StatusFileWriter(join(o.dataDir, 'status.json'), { intervalMs: o.statusIntervalMs, snapshot: () => this.sampler.sample() });
    this.status.start();
    if (o.metricsListen !== undefined) {
      void startMetricsServer({ listen: o.metricsListen, snapshot: () => this.sampler.latest() }).then(
        (m) => (this.metrics = m),
        (err: Error) => o.log(`hark: metrics endpoint not started: ${err.message}`),
      );
    }
  }

  private startHome(link: HomeLink): void {
    const store = this.store;
    this.uploader = new Uploader(store, link, {
      counters: this.counters,
      onHealth: this.onHealth,
    });
    this.uploader.start();
    this.heartbeat = new Heartbeat({
      link,
      intervalMs: this.opts.heartbeatMs,
      counters: this.counters,
      onHealth: this.onHealth,
      collect: () => {
        const s = this.sampler.latest();
        return {
          hark_version: s.version,
          started_at: s.started_at,
          config_version: this.config.version ?? 0,
          config_source: this.config.source,
          counters: { ...s.counters, ...s.anomalies },
          interfaces: s.interfaces.map((i) => ({ name: i.name, packets: i.packets, drops: (i.kernel_drops ?? 0) + (i.interface_drops ?? 0) })),
          queue: store.pendingCount(),
          health: this.health.list(),
        };
      },
      onAction: (a: HomeAction) => this.action(a),
      onConfigVersion: (v: number) => {
        if (v > (this.config.version ?? 0)) void this.reload(`home has configuration version ${v}`);
      },
      onAnswered: () => {
        if (this.config.source === 'last-known-good') void this.reload('home answers again');
      },
    });
    this.heartbeat.start();
  }

  private async action(a: HomeAction): Promise<{ ok: boolean; message?: string }> {
    this.opts.log(`hark: home asks to ${a.kind} (action ${a.id})`);
    if (a.kind === 'reload') {
      const err = await this.reload('home asked');
      return err === undefined ? { ok: true } : { ok: false, message: err };
    }
    if (a.kind === 'restart' || a.kind === 'reset') {
      // acknowledge first: the answer must reach home before this process goes
      setTimeout(() => this.stop(a.kind as StopReason), 100);
      return { ok: true };
    }
    return { ok: false, message: `unknown action "${a.kind}"` };
  }

  /**
   * Rebuilds dictionary and policy from their source (home's bundle, or the command line's files)
   * and swaps them in; flows go on. Concurrent requests share one reload. Resolves with an error
   * message when the reload failed (the running configuration stays).
   */
  reload(why: string): Promise<string | undefined> {
    if (this.reloading !== undefined) return this.reloading.then(() => undefined);
    const run = async (): Promise<string | undefined> => {
      try {
        if (this.link !== undefined && this.credentials !== undefined) {
          const b = await fetchBundle(this.link, this.credentials, join(this.opts.dataDir, 'config'));
          const dir = join(this.opts.dataDir, 'config', `active-${b.version}`);
          const settings = materialise(b.config, dir);
          this.adoptHomes(settings);
          await this.engine.reconfigure({ dictionary: settings.dictionary, engine: this.opts.engine, site: this.siteFrom(settings, dir) });
          this.noteRestartOnlyChanges(settings);
          const old = this.config;
          this.config = { source: 'home', version: b.version, fetchedAtMs: Date.now(), settings };
          if (old.settings !== undefined && old.version !== b.version) removeOldConfigDirs(join(this.opts.dataDir, 'config'), dir);
          if (old.source === 'last-known-good') this.onHealth(healthEvent('config.last_known_good', 'info', 'Configuration from home again', undefined, 'cleared'));
        } else {
          await this.engine.reconfigure({ dictionary: this.opts.dictionary ?? DEFAULT_DICTIONARY, engine: this.opts.engine, site: this.opts.site });
        }
        this.counters.inc(C_RELOADS);
        this.opts.log(`hark: reloaded (${why}): ${this.engine.description}; configuration from ${this.describeConfig()}`);
        return undefined;
      } catch (err) {
        this.counters.inc(C_RELOAD_FAILED);
        const msg = (err as Error).message;
        this.opts.log(`hark: reload (${why}) failed, the running configuration stays: ${msg}`);
        return msg;
      } finally {
        this.reloading = undefined;
      }
    };
    const p = run();
    this.reloading = p.then(() => undefined);
    return p;
  }

  /**
   * What a reload cannot change, with the command line's precedence over home applied: the capture
   * (interfaces, filter) and the outputs are opened at start, and the merge window and body limit
   * are built into every worker's pipeline. `key` is compared, `text` is shown.
   */
  private startOnly(settings: MaterialisedConfig | undefined): StartOnlySetting[] {
    const o = this.opts;
    const interfaces = o.interfaces ?? settings?.interfaces ?? [];
    const filter = o.filter ?? (settings?.bpf !== undefined && settings.bpf !== '' ? settings.bpf : undefined);
    const outputs = settings?.outputs;
    const email = outputs?.email;
    const inspection = describeInspection(inspectionInForce(o, settings?.inspection));
    return [
      { name: 'interfaces', key: interfaces.join(','), text: interfaces.length > 0 ? interfaces.join(', ') : 'the default interface' },
      { name: 'capture filter', key: filter ?? '', text: filter !== undefined ? `"${filter}"` : 'none' },
      {
        name: 'outputs',
        // the site's name is in the e-mail alerts' subject
        key: JSON.stringify({ eve: outputs?.eve ?? null, syslog: outputs?.syslog ?? [], email: email ?? null, site: email !== undefined ? settings?.site_name : null }),
        text: `eve.json ${outputs?.eve?.enabled === false ? 'off' : 'on'}, ${outputs?.syslog.length ?? 0} syslog, e-mail ${email !== undefined ? `to ${email.to.join(', ')}` : 'off'}`,
      },
      { name: 'inspection settings', key: inspection, text: inspection },
    ];
  }

  /**
   * After a reload from home: a start-only setting home changed keeps its running value until the
   * next start. A log line and the `config.restart_needed` warning (in status and at home) say which
   * and how; the warning clears when home goes back to the values in force.
   */
  private noteRestartOnlyChanges(settings: MaterialisedConfig): void {
    const next = this.startOnly(settings);
    const changed = next.filter((n, i) => n.key !== this.startedWith[i].key);
    const what = changed.map((c) => `${c.name} ${c.text} instead of ${this.startedWith[next.indexOf(c)].text}`).join('; ');
    if (what !== '' && what !== this.restartNeeded) {
      const message = `Home changed settings that apply from the next start (home's restart action, or hark.sh restart): ${what}`;
      this.opts.log(`hark: ${message}`);
      this.onHealth(healthEvent(HEALTH_RESTART_NEEDED, 'warning', message, { settings: changed.map((c) => c.name).join(', ') }));
    } else if (what === '' && this.restartNeeded !== '') {
      this.onHealth(healthEvent(HEALTH_RESTART_NEEDED, 'info', 'Home\'s settings are those in force again', undefined, 'cleared'));
    }
    this.restartNeeded = what;
  }

  private schedule(): void {
    const o = this.opts;
    this.timers.push(setInterval(() => {
      // capture time is wall time on a live sensor: flows and merge windows expire when traffic stops
      this.engine.tick(Date.now() * 1000);
      this.storeSafely('commit', () => this.store.flush());
      this.outputs.flush();
      const batches = this.counters.get('upload.batches');
      if (batches !== this.uploadBatchesSeen) {
        this.uploadBatchesSeen = batches;
        this.lastUploadAtMs = Date.now();
      }
    }, TICK_MS));
    const retention = (): void => {
      const r = this.config.settings?.retention;
      this.storeSafely('retention', () => this.store.purge({ days: r?.days ?? 30, byCategory: r?.by_category, includeNotUploaded: o.mode === 'standalone' }, Date.now()));
    };
    this.timers.push(setInterval(retention, RETENTION_INTERVAL_MS));
    if (o.mode === 'home') this.timers.push(setInterval(() => void this.reload('periodic, every 12 hours'), PERIODIC_RELOAD_MS));
    if (o.statsIntervalMs > 0) {
      this.timers.push(setInterval(() => {
        const c = this.counters;
        const per = this.interfaces.map((n, i) => `${n} ${this.live.packets[i]} pkts`).join(', ');
        o.log(`hark: ${per}; flows active ${this.engine.flowsActive()}; http ${c.get('http.requests')} requests; captures ${c.get('capture.emitted')}; upload queue ${this.store.pendingCount()}; anomalies ${c.anomalyTotal()}`);
      }, o.statsIntervalMs));
    }
  }

  /**
   * Runs a store operation from a timer. A write error other than a full disk (which the store
   * handles itself) must not end the process: the captures it holds would go with it. It is
   * counted (store.write_error), logged at most once a minute, and retried at the next tick.
   */
  private storeSafely(what: string, op: () => void): void {
    try {
      op();
    } catch (err) {
      this.counters.inc(C_STORE_WRITE_ERROR);
      const now = Date.now();
      if (now - this.storeErrorLoggedAtMs >= STORE_ERROR_LOG_MS) {
        this.storeErrorLoggedAtMs = now;
        this.opts.log(`hark: capture store ${what} failed (counted as store.write_error, retried every second): ${(err as Error).message}`);
      }
    }
  }

  /** Stops capture, finishes every flow, commits every capture, gives the uploader a moment, closes. */
  private async shutdown(): Promise<void> {
    for (const t of this.timers.splice(0)) clearInterval(t);
    this.live?.stop();
    for (const failure of this.offloads?.restore() ?? []) this.opts.log(`hark: ${failure}`);
    await this.api?.close();
    this.unforwardKeys?.();
    if (this.engine !== undefined) {
      await this.engine.finish();
      await this.engine.close();
      this.store?.flush();
    }
    this.heartbeat?.stop();
    if (this.uploader !== undefined) {
      await this.uploader.drain(STOP_UPLOAD_WAIT_MS).catch(() => undefined);
      await this.uploader.stop();
    }
    await this.outputs?.close();
    await this.metrics?.close();
    this.status?.stop();
    this.store?.close();
    await this.link?.close();
  }
}

/** A setting a reload cannot change (SensorService.startOnly). */
interface StartOnlySetting {
  readonly name: string;
  readonly key: string;
  readonly text: string;
}

/** `merge window 60 s (default), body limit 16 bytes (home)`. */
function describeInspection(i: InspectionInForce): string {
  return `merge window ${i.dedupWindowUs / 1e6} s (${i.dedupWindowFrom}), body limit ${i.bodyLimitBytes} bytes (${i.bodyLimitFrom})`;
}

/** Deletes materialised configuration folders other than the active one. */
function removeOldConfigDirs(configDir: string, keep: string): void {
  for (const name of readdirSync(configDir)) {
    const p = join(configDir, name);
    if (name.startsWith('active-') && p !== keep) rmSync(p, { recursive: true, force: true });
  }
}

/**
 * Becomes `user` (and its group) for good once the capture handles are open: real, effective and
 * saved ids, so root cannot be taken back. The data directory is already the user's (takeOverDataDir).
 */
function dropPrivileges(user: UserIds): void {
  process.setgroups?.([user.gid]);
  process.setgid!(user.gid);
  process.setuid!(user.uid);
}

/**
 * `hark run`: the live sensor. Parses the command line and environment into `ServiceOptions` and
 * runs `SensorService` (sensor/service.ts) until a signal: SIGINT/SIGTERM stop after committing
 * every capture, SIGHUP reopens the log files (logrotate), SIGUSR2 reloads dictionary and policy
 * (from home, or the files given here) without dropping flows.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TLS_KEY_WAIT_US } from '../app-layer/tls/index.js';
import { MetricsListenError, parseMetricsListen } from '../health/metrics.js';
import type { EngineChoice } from '../main.js';
import { SensorService, type SensorMode } from '../service.js';
import { planWorkersHere } from '../workers/sizing.js';
import { DEFAULT_WARM_UP_MS } from '../warm-up.js';
import { CliError, cliErrorOf, type Command } from './command.js';
import { FLOW_OPTIONS, FLOW_USAGE, flowLimitsFrom, groupFramesFrom } from './flow-options.js';
import { INSPECT_OPTIONS, INSPECT_USAGE, inspectLimitsFrom } from './inspect-options.js';
import { SITE_OPTIONS, SITE_USAGE, siteFilesFrom } from './site-options.js';

/** Where a checkout keeps its data when nothing else is configured (gitignored). */
export const CHECKOUT_DATA_DIR = fileURLToPath(new URL('../../../var', import.meta.url));

/** The data directory: --data-dir, else $HARK_DATA_DIR, else ./var in a checkout. */
export function dataDirFrom(option: string | undefined): string {
  return option ?? process.env.HARK_DATA_DIR ?? CHECKOUT_DATA_DIR;
}

/** --warm-up: a minute is far more than V8 needs; more only delays the start. */
const MAX_WARM_UP_MS = 60_000;

function wholeNumber(name: string, text: string, max: number): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 0 || v > max) throw new CliError(`--${name} must be a whole number from 0 to ${max}, not "${text}"`);
  return v;
}

/** Ring capture buffer per interface: two 1 MiB blocks at least, 1 GiB at most (the addon's limit). */
const MIN_RING_MB = 2;
const MAX_RING_MB = 1024;

function number(name: string, text: string, min = 0): number {
  const v = Number(text);
  if (!Number.isFinite(v) || v < min) throw new CliError(`--${name} must be a number${min > 0 ? ` of at least ${min}` : ''}, not "${text}"`);
  return v;
}

const SECOND_MS = 1000;
const MINUTE_MS = 60_000;
/** Longest delay Node's timers take (2^31 - 1 ms, ~24.8 days): a longer one fires after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A duration option given in units of `unitMs` (1000: seconds, 60,000: minutes), in milliseconds. */
function duration(name: string, text: string, unitMs: number, min = 0): number {
  const max = Math.floor(MAX_TIMER_MS / unitMs);
  const v = Number(text);
  if (!Number.isFinite(v) || v < min || v > max) throw new CliError(`--${name} must be a number from ${min} to ${max}, not "${text}"`);
  return v * unitMs;
}

/** --metrics-listen, checked before anything starts: a malformed or remote address is a bad option, not a warning. */
function metricsListenFrom(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  try {
    parseMetricsListen(text);
  } catch (err) {
    if (err instanceof MetricsListenError) throw new CliError(err.message);
    throw err;
  }
  return text;
}

/** --ring-mb: whole MiB (1 MiB blocks), within what the ring addon accepts. */
function ringMb(text: string, capture: string): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < MIN_RING_MB || v > MAX_RING_MB) throw new CliError(`--ring-mb must be a whole number of MiB from ${MIN_RING_MB} to ${MAX_RING_MB}, not "${text}"`);
  if (capture === 'pcap') throw new CliError('--ring-mb sizes the ring capture: it does not apply with --capture pcap');
  return v;
}

function emailFrom(v: { smtp?: string; 'smtp-ca'?: string; 'alert-to'?: string[]; 'alert-from'?: string; 'alert-min-severity': string; 'alert-batch': string; site?: string }) {
  if (v.smtp === undefined) {
    if (v['alert-to'] !== undefined) throw new CliError('--alert-to needs --smtp (the mail server to send through)');
    return undefined;
  }
  if (v['alert-to'] === undefined || v['alert-to'].length === 0) throw new CliError('--smtp needs at least one --alert-to address');
  const minSeverity = number('alert-min-severity', v['alert-min-severity'], 1);
  if (minSeverity > 5 || !Number.isInteger(minSeverity)) throw new CliError(`--alert-min-severity must be 1 to 5, not "${v['alert-min-severity']}"`);
  return {
    smtp: v.smtp,
    from: v['alert-from'] ?? `hark@${hostname()}`,
    to: v['alert-to'],
    minSeverity,
    batchSeconds: duration('alert-batch', v['alert-batch'], SECOND_MS, 1) / SECOND_MS,
    site: v.site ?? hostname(),
    ...(v['smtp-ca'] !== undefined ? { ca: readText(v['smtp-ca'], '--smtp-ca') } : {}),
  };
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`Cannot read ${what} "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Enrolled (identity/sensor.json with a sensor id) -> home; otherwise standalone. */
function defaultMode(dataDir: string): SensorMode {
  const env = process.env.HARK_MODE;
  if (env === 'home' || env === 'standalone') return env;
  try {
    const rec = JSON.parse(readFileSync(join(dataDir, 'identity', 'sensor.json'), 'utf8')) as { sensor_id?: number };
    return typeof rec.sensor_id === 'number' && rec.sensor_id > 0 ? 'home' : 'standalone';
  } catch {
    return 'standalone';
  }
}

export const runCommand: Command = {
  name: 'run',
  summary: 'run the live sensor on mirror-port interfaces (what npm start does)',
  usage: `Usage: hark run [options]

Captures promiscuously on the given interfaces (all feed one flow table, so a TAP that sends each
direction to its own port gives whole conversations), reassembles, decodes HTTP, matches the
phrase dictionary and stores every capture. An enrolled sensor (hark enrol) phones home on every
start, builds its whole configuration from home's signed bundle (or the last good copy when home
is unreachable), uploads captures and heartbeats; a standalone one takes everything from here.
Needs root or cap_net_raw,cap_net_admin. Signals: TERM/INT stop, HUP reopens log files, USR2 reloads.

Options:
  -i, --interface IF     interface to listen on; repeat for several (default: the bundle's, else
                         $HARK_INTERFACE (comma-separated), else the first non-loopback interface)
  -f, --filter BPF       capture filter (default: the bundle's, else none)
  --mode MODE            home or standalone (default: $HARK_MODE, else home when enrolled)
  --data-dir DIR         captures.db, eve.json, status.json, identity/ and config/ go here
                         (default: $HARK_DATA_DIR, else ./var in a checkout); created mode 0700
  --dictionary FILE      standalone: phrase dictionary, CSV, JSON pack or compiled .hdict
                         (default: the starter dictionary in rules/)
  --engine NAME          auto, hyperscan or js (default: auto)
${INSPECT_USAGE}
  --capture NAME         ring (Hark's TPACKET_V3 addon: batches, kernel drop counters), pcap
                         (libpcap) or auto (ring when built, default)
  --ring-mb N            ring capture: kernel buffer per interface in MiB, 2 to 1024 (default 64);
                         a larger one rides out longer bursts
  --keep-offloads        leave GRO / LRO on where they are on (by default Hark turns them off on
                         its interfaces while it runs, as they merge TCP segments before capture,
                         and puts them back when it stops; a health warning says when they stay on)
  --workers N            worker threads for the packet work, each owning its flows (same hash
                         both directions); 0 runs everything on one thread (default: the number
                         of cores, 0 on a single core, and no more than the memory carries: 1 GiB
                         + 0.5 GiB a worker); --flow-memcap and --max-flows are shared among them
  --warm-up MS           before opening the interfaces, run synthetic traffic through each packet
                         thread for this long so V8 has compiled the packet path (default ${DEFAULT_WARM_UP_MS};
                         0: none, the first seconds of traffic then run at about half speed)
  --keylog FILE          TLS key log (SSLKEYLOGFILE format) to follow as it grows; repeatable
  --rsa-key FILE         RSA server private key (PEM) for TLS <= 1.2 RSA key exchange; repeatable
  --key-wait SECS        how long encrypted records wait for keys that arrive late (default 10;
                         without --keylog, only once a first key has been pushed over the API:
                         until then nothing is held and TLS is bypassed after its handshake)
  --api-socket PATH      the local API's Unix socket (default: DATA_DIR/api.sock); bearer token
                         in DATA_DIR/api.token (made on first start, mode 0600)
  --api-listen ADDR      also serve the local API on a loopback address, e.g. 127.0.0.1:8439
  --no-api               no local API
${SITE_USAGE}
                        (an enrolled sensor takes these from home; --allow-list, or
                        $HARK_ALLOW_LIST, is added to home's allow list)
${FLOW_USAGE}
  --store-max-bytes N    capture store quota; when full the oldest uploaded captures go first
                         (default: none, the disk is the limit)
  --eve-max-bytes N      rotate eve.json at this size (default 100 MiB; 0 never)
  --eve-keep N           rotated eve.json files kept (default 5)
  --out FILE             also write captures, tls and dns events to FILE as JSON lines, as hark
                         scan writes them (created mode 0600, opened as --user; - for standard
                         output; SIGHUP reopens it)
  --syslog URL           also send events to syslog: udp://, tcp:// or tls://HOST:PORT (RFC 5424);
                         repeatable
  --smtp URL             standalone e-mail alerts: smtp://HOST[:587] (STARTTLS required) or
                         smtps://HOST[:465]; with --alert-to (repeatable) and --alert-from
  --smtp-ca FILE         trust only this CA (PEM) for the mail server (default: the system's CAs)
  --alert-to ADDR        who receives alerts; repeatable
  --alert-from ADDR      the alerts' sender (default hark@HOSTNAME)
  --alert-min-severity N alert on captures of this severity or more (default 4)
  --alert-batch SECS     captures within this window go in one message (default 60)
  --site NAME            the site name alerts give (default: this machine's hostname)
  --metrics-listen ADDR  Prometheus /metrics on this local address, e.g. 127.0.0.1:9469
  --status-interval SECS how often DATA_DIR/status.json (read by hark status) is written (default 5)
  --watchdog-minutes N   raise a health event when an interface receives nothing for N minutes
                         (default 5)
  --drop-alarm-minutes N a packet-loss health event (capture.drops) clears after N minutes
                         without a new drop (default 5)
  --proxy URL            upstream HTTP proxy to reach home (default: $HARK_PROXY, else the one
                         given at enrolment)
  --heartbeat-interval SECS  how often an enrolled sensor reports to home (default 60)
  --home-recheck SECS    while on a fail-over home, how often the preferred one is probed (default 60)
  --home-hold-down SECS  the preferred home must answer 3 probes over at least this long before the
                         sensor switches back to it (default 300): a flapping link causes no flapping
  --home-insecure        allow plain http:// home addresses: for tests only, never in production
  --user NAME            drop to this user once the capture handles are open (when started as root);
                         the data directory is handed to it first (no link followed) and the
                         identity and configuration are written as it, so it owns all of them
  --stats-interval SECS  status line period on stderr, 0 for none (default: 10)
  -h, --help             this help`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        interface: { type: 'string', short: 'i', multiple: true },
        filter: { type: 'string', short: 'f' },
        mode: { type: 'string' },
        'data-dir': { type: 'string' },
        dictionary: { type: 'string' },
        engine: { type: 'string', default: 'auto' },
        ...INSPECT_OPTIONS,
        capture: { type: 'string', default: 'auto' },
        workers: { type: 'string' },
        keylog: { type: 'string', multiple: true },
        ...SITE_OPTIONS,
        'rsa-key': { type: 'string', multiple: true },
        'key-wait': { type: 'string' },
        'api-socket': { type: 'string' },
        'api-listen': { type: 'string' },
        'no-api': { type: 'boolean', default: false },
        'store-max-bytes': { type: 'string' },
        ...FLOW_OPTIONS,
        'eve-max-bytes': { type: 'string', default: String(100 * 1024 * 1024) },
        'eve-keep': { type: 'string', default: '5' },
        out: { type: 'string' },
        syslog: { type: 'string', multiple: true },
        smtp: { type: 'string' },
        'smtp-ca': { type: 'string' },
        'alert-to': { type: 'string', multiple: true },
        'alert-from': { type: 'string' },
        'alert-min-severity': { type: 'string', default: '4' },
        'alert-batch': { type: 'string', default: '60' },
        site: { type: 'string' },
        'metrics-listen': { type: 'string' },
        'status-interval': { type: 'string', default: '5' },
        'watchdog-minutes': { type: 'string', default: '5' },
        'drop-alarm-minutes': { type: 'string', default: '5' },
        'ring-mb': { type: 'string' },
        'warm-up': { type: 'string' },
        'keep-offloads': { type: 'boolean' },
        'heartbeat-interval': { type: 'string' },
        'home-insecure': { type: 'boolean', default: false },
        'home-recheck': { type: 'string' },
        'home-hold-down': { type: 'string' },
        proxy: { type: 'string' },
        user: { type: 'string' },
        'stats-interval': { type: 'string', default: '10' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      process.stdout.write(`${this.usage}\n`);
      return 0;
    }
    if (values.out === '') throw new CliError('--out needs a file name (- for standard output)');
    const dataDir = dataDirFrom(values['data-dir']);
    const mode = (values.mode ?? defaultMode(dataDir)) as SensorMode;
    if (mode !== 'home' && mode !== 'standalone') throw new CliError(`--mode must be home or standalone, not "${values.mode}"`);
    if (!['auto', 'ring', 'pcap'].includes(values.capture)) throw new CliError(`--capture must be auto, ring or pcap, not "${values.capture}"`);
    if (!['auto', 'hyperscan', 'js'].includes(values.engine)) throw new CliError(`--engine must be auto, hyperscan or js, not "${values.engine}"`);
    const envInterfaces = process.env.HARK_INTERFACE?.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    const site = siteFilesFrom(values);
    const allowList = site.allowList ?? (process.env.HARK_ALLOW_LIST !== undefined && existsSync(process.env.HARK_ALLOW_LIST) ? process.env.HARK_ALLOW_LIST : undefined);
    const plan = planWorkersHere(values.workers !== undefined ? wholeNumber('workers', values.workers, 64) : undefined);
    if (plan.note !== undefined) process.stderr.write(`${plan.note}\n`);
    const service = new SensorService({
      dataDir,
      mode,
      interfaces: values.interface ?? (envInterfaces !== undefined && envInterfaces.length > 0 ? envInterfaces : undefined),
      filter: values.filter,
      dictionary: values.dictionary,
      engine: values.engine as EngineChoice,
      ...inspectLimitsFrom(values),
      capture: values.capture as 'auto' | 'ring' | 'pcap',
      workers: plan.workers,
      keyLogs: values.keylog,
      rsaKeys: values['rsa-key'],
      keyWaitUs: values['key-wait'] !== undefined ? number('key-wait', values['key-wait']) * 1e6 : TLS_KEY_WAIT_US,
      keyWaitAuto: values['key-wait'] === undefined,
      site: { ...site, allowList },
      api: { enabled: !values['no-api'], socket: values['api-socket'], listen: values['api-listen'] },
      metricsListen: metricsListenFrom(values['metrics-listen']),
      statusIntervalMs: duration('status-interval', values['status-interval'], SECOND_MS, 0.1),
      statsIntervalMs: duration('stats-interval', values['stats-interval'], SECOND_MS),
      flowLimits: flowLimitsFrom(values),
      localityFrames: groupFramesFrom(values),
      bypass: !values['no-bypass'],
      storeMaxBytes: values['store-max-bytes'] !== undefined ? number('store-max-bytes', values['store-max-bytes'], 65536) : undefined,
      eve: { maxBytes: number('eve-max-bytes', values['eve-max-bytes']), keep: number('eve-keep', values['eve-keep']) },
      out: values.out,
      syslog: values.syslog ?? [],
      email: emailFrom(values),
      proxy: values.proxy ?? process.env.HARK_PROXY,
      user: values.user,
      watchdogSilentMs: duration('watchdog-minutes', values['watchdog-minutes'], MINUTE_MS, 0.01),
      dropWindowMs: duration('drop-alarm-minutes', values['drop-alarm-minutes'], MINUTE_MS, 0.01),
      ringMb: values['ring-mb'] !== undefined ? ringMb(values['ring-mb'], values.capture) : undefined,
      warmUpMs: values['warm-up'] !== undefined ? wholeNumber('warm-up', values['warm-up'], MAX_WARM_UP_MS) : undefined,
      keepOffloads: values['keep-offloads'] === true,
      heartbeatMs: values['heartbeat-interval'] !== undefined ? duration('heartbeat-interval', values['heartbeat-interval'], SECOND_MS, 0.1) : undefined,
      homeInsecure: values['home-insecure'],
      homeRecheckMs: values['home-recheck'] !== undefined ? duration('home-recheck', values['home-recheck'], SECOND_MS, 0.1) : undefined,
      homeHoldDownMs: values['home-hold-down'] !== undefined ? duration('home-hold-down', values['home-hold-down'], SECOND_MS) : undefined,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    const stop = (): void => service.stop('signal');
    const hup = (): void => service.reopenLogs();
    const usr2 = (): void => void service.reload('SIGUSR2');
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    process.on('SIGHUP', hup);
    process.on('SIGUSR2', usr2);
    try {
      const reason = await service.run();
      process.stderr.write(`hark: stopped (${reason}); ${service.counters.get('capture.emitted')} captures stored in ${join(dataDir, 'captures.db')}\n`);
      return 0;
    } catch (err) {
      throw cliErrorOf(err);
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.off('SIGHUP', hup);
      process.off('SIGUSR2', usr2);
    }
  },
};

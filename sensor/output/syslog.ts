/**
 * Syslog output: every event as one RFC 5424 message (`<PRI>1 TIMESTAMP HOST hark PROCID
 * event_type [hark@32473 ...] BOM+JSON`) sent over UDP (RFC 5426, one message per datagram), TCP
 * (RFC 6587 octet counting) or TLS (RFC 5425, certificate verified). `write` only encodes and
 * queues: a bounded queue, reconnect with backoff, drops counted; it never blocks or throws on
 * a network problem.
 */
import { readFileSync } from 'node:fs';
import { lookup } from 'node:dns';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { hostname as osHostname } from 'node:os';
import * as tls from 'node:tls';
import { Counters, defineCounter } from '../events/counters.js';
import { jsonOf } from '../events/json-text.js';
import { backoffDelayMs, OutputConfigError, type EventOutput, type OutputEvent } from './output.js';

/** SD-ID of Hark's structured data: name@PEN. 32473 is the documentation PEN (RFC 5612). */
export const SD_ID = 'hark@32473';
export const APP_NAME = 'hark';
/** Largest datagram sent by default: rsyslog's default maxMessageSize; RFC 5426 3.2 asks receivers for at least 2048. */
export const DEFAULT_MAX_DATAGRAM_BYTES = 8192;
/** Largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP). */
const MAX_UDP_PAYLOAD = 65507;
/** Messages waiting for a stream connection: about a minute of a busy school at peak. */
export const DEFAULT_MAX_QUEUE_MESSAGES = 10_000;
/** Bytes waiting for a stream connection: bounds memory while the collector is down. */
export const DEFAULT_MAX_QUEUE_BYTES = 16 * 1024 * 1024;
/** An SD-PARAM value longer than this is cut: the full value is in the JSON MSG anyway. */
export const MAX_SD_VALUE_CHARS = 256;
/** RFC 5424 6.2: header field lengths. */
const MAX_HOSTNAME = 255;
const MAX_PROCID = 128;
const MAX_MSGID = 32;
const RECONNECT_BASE_MS = 500;
const RECONNECT_MAX_MS = 30_000;
const CONNECT_TIMEOUT_MS = 10_000;
/** How long close() waits for the queue to drain before dropping the rest. */
const CLOSE_TIMEOUT_MS = 5_000;
const KEEPALIVE_MS = 60_000;
/** RFC 5425 section 4.1 / RFC 6587: the registered syslog-over-TLS port; 514 for plain streams and UDP. */
const DEFAULT_PORTS = { udp: 514, tcp: 514, tls: 6514 } as const;

const C_SENT = defineCounter('output.syslog.sent');
const C_DROPPED = defineCounter('output.syslog.dropped');
/** Connection attempts after the first (after a failure or a lost connection). */
const C_RECONNECTS = defineCounter('output.syslog.reconnects');
const C_TRUNCATED = defineCounter('output.syslog.truncated');
const C_SD_TRUNCATED = defineCounter('output.syslog.sd_value_truncated');
const C_ERRORS = defineCounter('output.syslog.errors');

export const FACILITIES = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9,
  authpriv: 10, ftp: 11, ntp: 12, security: 13, console: 14, 'solaris-cron': 15,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
} as const;
export type SyslogFacilityName = keyof typeof FACILITIES;

/** RFC 5424 6.2.1 severities. */
export const SEVERITY = { emerg: 0, alert: 1, crit: 2, err: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const;

export type SyslogTransport = 'udp' | 'tcp' | 'tls';

export interface SyslogTarget {
  transport: SyslogTransport;
  host: string;
  port: number;
}

/** `udp://host:port`, `tcp://host:port`, `tls://host:port`; IPv6 hosts in brackets. */
export function parseSyslogUrl(url: string): SyslogTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new OutputConfigError('E_SYSLOG_URL', `Cannot use syslog URL "${url}": not a URL (expected udp://, tcp:// or tls://host:port)`);
  }
  const transport = u.protocol.slice(0, -1);
  if (transport !== 'udp' && transport !== 'tcp' && transport !== 'tls') {
    throw new OutputConfigError('E_SYSLOG_URL', `Cannot use syslog URL "${url}": scheme must be udp, tcp or tls`);
  }
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  if (host === '') throw new OutputConfigError('E_SYSLOG_URL', `Cannot use syslog URL "${url}": no host`);
  if (u.pathname !== '' && u.pathname !== '/') throw new OutputConfigError('E_SYSLOG_URL', `Cannot use syslog URL "${url}": unexpected path "${u.pathname}"`);
  return { transport, host, port: u.port === '' ? DEFAULT_PORTS[transport] : Number(u.port) };
}

/**
 * The RFC 5424 severity of an event: a capture's 1-5 (5 crit, 4 err, 3 warning, 2 notice, 1 info),
 * health by its own severity (a condition that cleared is notice), a dns policy match notice,
 * everything else (flow, tls records) info.
 */
export function syslogSeverity(event: OutputEvent): number {
  const e = event as Record<string, unknown>;
  switch (event.event_type) {
    case 'capture': {
      const s = typeof e.severity === 'number' ? e.severity : 0;
      if (s >= 5) return SEVERITY.crit;
      if (s >= 4) return SEVERITY.err;
      if (s >= 3) return SEVERITY.warning;
      if (s >= 2) return SEVERITY.notice;
      return SEVERITY.info;
    }
    case 'health':
      if (e.state === 'cleared') return SEVERITY.notice;
      if (e.severity === 'critical') return SEVERITY.crit;
      if (e.severity === 'warning') return SEVERITY.warning;
      return SEVERITY.info;
    case 'dns':
      return SEVERITY.notice;
    default:
      return SEVERITY.info;
  }
}

/** RFC 5424 6.3.3: inside PARAM-VALUE, '"', '\' and ']' are escaped with a backslash. */
export function escapeSdValue(value: string): string {
  return value.replace(/["\\\]]/g, '\\$&');
}

type Getter = (e: Record<string, any>) => unknown;
const FLOW_PARAMS: Array<[string, Getter]> = [
  ['src_ip', (e) => e.src_ip], ['src_port', (e) => e.src_port], ['dest_ip', (e) => e.dest_ip], ['dest_port', (e) => e.dest_port],
];
/** The key fields per event type, as SD-PARAMs (names: printable ASCII, no '=', ' ', ']', '"'; at most 32). */
const SD_PARAMS: Record<string, Array<[string, Getter]>> = {
  capture: [
    ['severity', (e) => e.severity], ['category', (e) => e.category], ['phrase', (e) => e.phrase], ...FLOW_PARAMS,
    ['user', (e) => e.device?.user], ['device', (e) => e.device?.hostname], ['host', (e) => e.host], ['id', (e) => e.id],
  ],
  health: [['name', (e) => e.name], ['severity', (e) => e.severity], ['state', (e) => e.state]],
  dns: [
    ['name', (e) => e.policy?.name], ['category', (e) => e.policy?.category], ['threat_level', (e) => e.policy?.threat_level], ...FLOW_PARAMS,
    ['user', (e) => e.device?.user],
  ],
  tls: [['sni', (e) => e.tls?.sni], ...FLOW_PARAMS],
};

export interface SyslogFormatOptions {
  facility: number;
  hostname: string;
  procId: string;
  /** Used when the event has no RFC 3339 timestamp of its own. */
  now?: Date;
  counters?: Counters;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;

/** The header fields allow PRINTUSASCII (33-126) only; anything else becomes '_', empty becomes NILVALUE. */
function headerField(value: string, max: number): string {
  const v = value.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return v === '' ? '-' : v;
}

/** The structured-data element for an event, or NILVALUE when it has no key fields. */
function structuredData(event: OutputEvent, counters: Counters | undefined): string {
  const params = SD_PARAMS[event.event_type] ?? FLOW_PARAMS;
  let sd = '';
  for (const [name, get] of params) {
    const v = get(event as Record<string, any>);
    if (v === undefined || v === null || (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')) continue;
    let s = String(v);
    if (s.length > MAX_SD_VALUE_CHARS) {
      s = s.slice(0, MAX_SD_VALUE_CHARS);
      counters?.inc(C_SD_TRUNCATED);
    }
    sd += ` ${name}="${escapeSdValue(s)}"`;
  }
  return sd === '' ? '-' : `[${SD_ID}${sd}]`;
}

/** One RFC 5424 message (without transport framing): header, structured data, BOM + event JSON. */
export function formatSyslogMessage(event: OutputEvent, opts: SyslogFormatOptions): Buffer {
  const pri = opts.facility * 8 + syslogSeverity(event);
  const ts = (event as { timestamp?: unknown }).timestamp;
  const time = typeof ts === 'string' && RFC3339.test(ts) ? ts : (opts.now ?? new Date()).toISOString();
  const header = `<${pri}>1 ${time} ${headerField(opts.hostname, MAX_HOSTNAME)} ${APP_NAME} ${headerField(opts.procId, MAX_PROCID)} ${headerField(event.event_type, MAX_MSGID)}`;
  // RFC 5424 6.4: a UTF-8 MSG starts with the BOM.
  return Buffer.from(`${header} ${structuredData(event, opts.counters)} \uFEFF${jsonOf(event)}`, 'utf8');
}

/** Cuts a message to `max` bytes without splitting a UTF-8 sequence. */
export function truncateUtf8(buf: Buffer, max: number): Buffer {
  if (buf.length <= max) return buf;
  let end = max;
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--;
  return buf.subarray(0, end);
}

/** RFC 6587 3.4.1 octet counting: `MSG-LEN SP SYSLOG-MSG`. */
export function frameOctetCounted(msg: Buffer): Buffer {
  const prefix = Buffer.from(`${msg.length} `, 'latin1');
  return Buffer.concat([prefix, msg], prefix.length + msg.length);
}

export interface SyslogOptions {
  url: string;
  counters: Counters;
  facility?: SyslogFacilityName | number;
  /** HOSTNAME field; default the machine's host name. */
  hostname?: string;
  procId?: string | number;
  /** Only these event types are sent; default all. */
  eventTypes?: readonly string[];
  /** tls: a CA certificate (PEM) the collector's certificate must chain to, as text or a file. */
  ca?: string | Buffer;
  caFile?: string;
  /** tls: trust only `ca`/`caFile` (pinned), not also Node's bundled public roots. Default true when a CA is given. */
  pinCa?: boolean;
  /** tls: name the certificate must carry, when it differs from the URL host. */
  servername?: string;
  /** udp: longer messages are cut to this many bytes (counted in output.syslog.truncated). */
  maxDatagramBytes?: number;
  maxQueueMessages?: number;
  maxQueueBytes?: number;
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  closeTimeoutMs?: number;
}

type State = 'idle' | 'connecting' | 'connected' | 'backoff' | 'closed';

export class SyslogOutput implements EventOutput {
  readonly target: SyslogTarget;
  /** The last network error, for status and logs. */
  lastError: Error | undefined;
  private readonly counters: Counters;
  private readonly format: SyslogFormatOptions;
  private readonly types: ReadonlySet<string> | undefined;
  private readonly tlsOptions: tls.ConnectionOptions | undefined;
  private readonly maxDatagram: number;
  private readonly maxQueueMessages: number;
  private readonly maxQueueBytes: number;
  private readonly reconnectBaseMs: number;
  private readonly reconnectMaxMs: number;
  private readonly closeTimeoutMs: number;
  private state: State = 'idle';
  private closing = false;
  /** Queue of framed messages (stream) or raw datagrams (udp); `head` is the next to send. */
  private queue: Buffer[] = [];
  private head = 0;
  private queuedBytes = 0;
  private socket: net.Socket | undefined;
  private udp: dgram.Socket | undefined;
  private udpAddress = '';
  private udpInFlight = 0;
  private blocked = false;
  private attempt = 0;
  private everConnected = false;
  private timer: NodeJS.Timeout | undefined;
  private drained: (() => void) | undefined;

  constructor(opts: SyslogOptions) {
    this.target = parseSyslogUrl(opts.url);
    this.counters = opts.counters;
    const facility = typeof opts.facility === 'number' ? opts.facility : FACILITIES[opts.facility ?? 'local0'];
    if (!Number.isInteger(facility) || facility < 0 || facility > 23) throw new OutputConfigError('E_SYSLOG_CONFIG', `Cannot use syslog facility "${opts.facility}": expected a name such as local0 or a number 0-23`);
    this.format = { facility, hostname: opts.hostname ?? osHostname(), procId: String(opts.procId ?? process.pid), counters: opts.counters };
    this.types = opts.eventTypes ? new Set(opts.eventTypes) : undefined;
    this.maxDatagram = opts.maxDatagramBytes ?? DEFAULT_MAX_DATAGRAM_BYTES;
    if (!Number.isInteger(this.maxDatagram) || this.maxDatagram < 480 || this.maxDatagram > MAX_UDP_PAYLOAD) {
      // RFC 5426 3.2: every receiver takes 480 bytes; a datagram cannot exceed 65507.
      throw new OutputConfigError('E_SYSLOG_CONFIG', `Cannot use syslog maxDatagramBytes "${opts.maxDatagramBytes}": expected 480-${MAX_UDP_PAYLOAD}`);
    }
    this.maxQueueMessages = opts.maxQueueMessages ?? DEFAULT_MAX_QUEUE_MESSAGES;
    this.maxQueueBytes = opts.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES;
    this.reconnectBaseMs = opts.reconnectBaseMs ?? RECONNECT_BASE_MS;
    this.reconnectMaxMs = opts.reconnectMaxMs ?? RECONNECT_MAX_MS;
    this.closeTimeoutMs = opts.closeTimeoutMs ?? CLOSE_TIMEOUT_MS;
    if (this.target.transport === 'tls') {
      let ca: Array<string | Buffer> | undefined;
      try {
        const given = opts.ca ?? (opts.caFile !== undefined ? readFileSync(opts.caFile) : undefined);
        if (given !== undefined) ca = opts.pinCa === false ? [...tls.rootCertificates, given] : [given];
      } catch (err) {
        throw new OutputConfigError('E_SYSLOG_CONFIG', `Cannot read syslog CA file "${opts.caFile}": ${(err as Error).message}`);
      }
      this.tlsOptions = {
        host: this.target.host,
        port: this.target.port,
        ...(ca !== undefined ? { ca } : {}),
        ...(opts.servername !== undefined ? { servername: opts.servername } : {}),
        // Verification always on: RFC 5425 5.1; there is deliberately no option to turn it off.
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
      };
    }
    this.connect();
  }

  /** Messages waiting to be sent. */
  get queued(): number {
    return this.queue.length - this.head;
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  write(event: OutputEvent): void {
    if (this.types !== undefined && !this.types.has(event.event_type)) return;
    if (this.state === 'closed' || this.closing) {
      this.counters.inc(C_DROPPED);
      return;
    }
    let msg: Buffer;
    try {
      msg = formatSyslogMessage(event, this.format);
    } catch (err) {
      // A cyclic or BigInt-bearing object is a caller bug; it must not stop the packet path.
      this.lastError = err as Error;
      this.counters.inc(C_ERRORS);
      this.counters.inc(C_DROPPED);
      return;
    }
    if (this.target.transport === 'udp') {
      if (msg.length > this.maxDatagram) {
        msg = truncateUtf8(msg, this.maxDatagram);
        this.counters.inc(C_TRUNCATED);
      }
      this.enqueue(msg);
    } else {
      this.enqueue(frameOctetCounted(msg));
    }
    this.pump();
  }

  flush(): void {
    this.pump();
  }

  /** Sends what it can within closeTimeoutMs, drops (and counts) the rest, closes the connection. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.closing = true;
    this.pump();
    if (this.queued > 0 || this.blocked || this.udpInFlight > 0) {
      await new Promise<void>((resolve) => {
        const deadline = setTimeout(resolve, this.closeTimeoutMs);
        this.drained = () => {
          clearTimeout(deadline);
          resolve();
        };
      });
      this.drained = undefined;
    }
    this.state = 'closed';
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const left = this.queued;
    if (left > 0) this.counters.inc(C_DROPPED, left);
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    const socket = this.socket;
    this.socket = undefined;
    if (socket !== undefined) {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => socket.destroy(), this.closeTimeoutMs);
        socket.once('close', () => {
          clearTimeout(force);
          resolve();
        });
        socket.end();
      });
    }
    const udp = this.udp;
    this.udp = undefined;
    if (udp !== undefined) await new Promise<void>((resolve) => udp.close(() => resolve()));
  }

  private enqueue(buf: Buffer): void {
    // Full: the oldest message goes, a collector wants the recent ones.
    while (this.queued > 0 && (this.queued >= this.maxQueueMessages || this.queuedBytes + buf.length > this.maxQueueBytes)) {
      this.queuedBytes -= this.queue[this.head].length;
      this.head++;
      this.counters.inc(C_DROPPED);
    }
    if (buf.length > this.maxQueueBytes) {
      this.counters.inc(C_DROPPED);
      return;
    }
    this.queue.push(buf);
    this.queuedBytes += buf.length;
  }

  private shift(): Buffer {
    const b = this.queue[this.head++];
    this.queuedBytes -= b.length;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return b;
  }

  private pump(): void {
    if (this.state !== 'connected') return;
    if (this.udp !== undefined) {
      while (this.queued > 0 && this.udpInFlight < this.maxQueueMessages) {
        const msg = this.shift();
        this.udpInFlight++;
        this.udp.send(msg, this.target.port, this.udpAddress, (err) => {
          this.udpInFlight--;
          if (err) {
            this.lastError = err;
            this.counters.inc(C_DROPPED);
          } else {
            this.counters.inc(C_SENT);
          }
          this.checkDrained();
        });
      }
      return;
    }
    const socket = this.socket;
    if (socket === undefined) return;
    while (this.queued > 0 && !this.blocked) {
      const msg = this.shift();
      this.counters.inc(C_SENT);
      if (!socket.write(msg)) this.blocked = true;
    }
    this.checkDrained();
  }

  private checkDrained(): void {
    if (this.drained !== undefined && this.queued === 0 && !this.blocked && this.udpInFlight === 0) this.drained();
  }

  private connect(): void {
    if (this.state === 'closed') return;
    this.timer = undefined;
    this.state = 'connecting';
    if (this.attempt > 0 || this.everConnected) this.counters.inc(C_RECONNECTS);
    if (this.target.transport === 'udp') {
      this.connectUdp();
      return;
    }
    const socket = this.target.transport === 'tls'
      ? tls.connect(this.tlsOptions as tls.ConnectionOptions)
      : net.connect({ host: this.target.host, port: this.target.port });
    this.socket = socket;
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(new Error(`connect timed out after ${CONNECT_TIMEOUT_MS} ms`)));
    socket.once(this.target.transport === 'tls' ? 'secureConnect' : 'connect', () => {
      if (this.socket !== socket) return;
      socket.setTimeout(0);
      socket.setKeepAlive(true, KEEPALIVE_MS);
      this.state = 'connected';
      this.attempt = 0;
      this.everConnected = true;
      this.blocked = false;
      this.pump();
    });
    socket.on('drain', () => {
      this.blocked = false;
      this.pump();
    });
    // A collector sends nothing; read and discard so a chatty one cannot fill our buffers.
    socket.on('data', () => {});
    socket.on('error', (err) => {
      this.lastError = new Error(`Cannot send syslog to ${this.target.transport}://${this.target.host}:${this.target.port}: ${err.message}`, { cause: err });
      this.counters.inc(C_ERRORS);
    });
    socket.once('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.blocked = false;
      this.scheduleReconnect();
    });
  }

  private connectUdp(): void {
    lookup(this.target.host, (err, address, family) => {
      if (this.state === 'closed') return;
      if (err) {
        this.lastError = new Error(`Cannot resolve syslog host "${this.target.host}": ${err.message}`, { cause: err });
        this.counters.inc(C_ERRORS);
        this.scheduleReconnect();
        return;
      }
      const udp = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
      udp.on('error', (e) => {
        this.lastError = e;
        this.counters.inc(C_ERRORS);
        if (this.udp !== udp) return;
        this.udp = undefined;
        udp.close();
        this.scheduleReconnect();
      });
      udp.unref();
      this.udp = udp;
      this.udpAddress = address;
      this.state = 'connected';
      this.attempt = 0;
      this.everConnected = true;
      this.pump();
    });
  }

  private scheduleReconnect(): void {
    if (this.state === 'closed') return;
    this.state = 'backoff';
    const delay = backoffDelayMs(this.attempt++, this.reconnectBaseMs, this.reconnectMaxMs);
    this.timer = setTimeout(() => this.connect(), delay);
    this.timer.unref();
  }
}

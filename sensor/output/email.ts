/**
 * E-mail alerts: captures at or above a severity threshold are batched (the first one opens a
 * window of `batch_seconds`) and sent as ONE plain-text message per window listing them, over
 * SMTP with STARTTLS required (smtp://) or implicit TLS (smtps://); plaintext only with the
 * explicit `insecure` test option. The subject carries no capture content. Failed sends are
 * retried with backoff a bounded number of times; `close()` sends what is pending.
 */
import nodemailer from 'nodemailer';
import type { Transporter } from 'nodemailer';
import { Counters, defineCounter } from '../events/counters.js';
import { backoffDelayMs, OutputConfigError, type EventOutput, type OutputEvent } from './output.js';

export const DEFAULT_MIN_SEVERITY = 4;
export const DEFAULT_BATCH_SECONDS = 60;
/** Captures listed in one message; beyond it the message says how many more (a flood stays readable). */
export const MAX_CAPTURES_PER_EMAIL = 50;
/** Characters of one listed field (phrase, URL, context): enough to judge, short enough to scan. */
export const MAX_FIELD_CHARS = 300;
/** Messages waiting while the server is unreachable: 20 windows, the oldest dropped beyond that. */
export const MAX_OUTBOX_MESSAGES = 20;
/** Attempts per message before it is given up (counted in output.email.failed). */
export const MAX_SEND_ATTEMPTS = 5;
const RETRY_BASE_MS = 5_000;
const RETRY_MAX_MS = 120_000;
/** How long close() keeps trying to send what is pending. */
const CLOSE_TIMEOUT_MS = 30_000;
const SMTP_TIMEOUT_MS = 30_000;

const C_SENT = defineCounter('output.email.sent');
const C_FAILED = defineCounter('output.email.failed');
const C_RETRIES = defineCounter('output.email.retries');
const C_UNLISTED = defineCounter('output.email.captures_unlisted');

export interface EmailAlerterOptions {
  /** smtp://host[:port] (default 587, STARTTLS required) or smtps://host[:port] (default 465, implicit TLS). */
  smtp: string;
  from: string;
  to: readonly string[];
  /** Site name for the subject and body ("St Mary's, main building"). */
  site: string;
  counters: Counters;
  /** Captures of this severity (1-5) or more are mailed; default 4. */
  minSeverity?: number;
  /** Seconds from the first capture of a window to the message; default 60. */
  batchSeconds?: number;
  /** PEM CA the server certificate must chain to; when given it is the only CA trusted (pinned). */
  ca?: string | Buffer;
  auth?: { user: string; pass: string };
  /** Tests only: plain SMTP without any TLS. Never set this for a real server. */
  insecure?: boolean;
  maxAttempts?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  closeTimeoutMs?: number;
  /** Told about each failed attempt (for a health event or a log line). */
  onError?: (err: EmailAlertError) => void;
}

/** A send that failed, with a message that says what and why; `cause` is nodemailer's error. */
export class EmailAlertError extends Error {
  readonly code = 'E_EMAIL_SEND';
  constructor(message: string, options: { cause: unknown }, readonly permanent: boolean) {
    super(message, options);
    this.name = 'EmailAlertError';
  }
}

/** What one listed capture shows: copied out of the event, so the event itself is not kept. */
interface ListedCapture {
  order: number;
  timestamp: string;
  severity: number;
  category: string;
  phrase: string;
  count: number;
  source: string;
  field: string;
  host: string;
  url: string;
  context: string;
  user: string;
  ip: string;
  hostname: string;
  mac: string;
}

interface Window {
  listed: ListedCapture[];
  total: number;
  highest: number;
}

interface Outgoing {
  subject: string;
  text: string;
  attempts: number;
}

export interface AlertMessage {
  subject: string;
  text: string;
}

/** Control characters out (the text came off the network), runs of space collapsed, length capped. */
function clean(value: unknown, max = MAX_FIELD_CHARS): string {
  if (value === undefined || value === null) return '';
  const s = String(value).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').replace(/ {2,}/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function listedFrom(e: Record<string, any>, order: number): ListedCapture {
  const d = (e.device ?? {}) as Record<string, unknown>;
  return {
    order,
    timestamp: clean(e.timestamp, 40),
    severity: e.severity as number,
    category: clean(e.category, 80),
    phrase: clean(e.phrase),
    count: typeof e.count === 'number' ? e.count : 1,
    source: clean(e.source, 20),
    field: clean(e.field, 20),
    host: clean(e.host),
    url: clean(e.url),
    context: clean(e.context),
    user: clean(d.user, 120),
    ip: clean(d.ip ?? e.src_ip, 45),
    hostname: clean(d.hostname, 120),
    mac: clean(d.mac, 20),
  };
}

/** The subject: counts and severity only, never capture content (it shows in notification previews). */
export function alertSubject(total: number, highest: number, site: string): string {
  return `Hark: ${total} safeguarding capture${total === 1 ? '' : 's'}, highest severity ${highest}, at ${clean(site, 120)}`;
}

/** Builds the message for one window (exported for tests and previews). */
export function composeAlert(captures: readonly object[], site: string, maxListed = MAX_CAPTURES_PER_EMAIL): AlertMessage {
  const w: Window = { listed: [], total: 0, highest: 0 };
  captures.forEach((c, i) => addToWindow(w, c as Record<string, any>, i, maxListed));
  return renderWindow(w, site);
}

/** Adds a capture; when the list is full a higher-severity capture replaces the lowest listed one. */
function addToWindow(w: Window, e: Record<string, any>, order: number, maxListed: number): boolean {
  w.total++;
  const severity = e.severity as number;
  if (severity > w.highest) w.highest = severity;
  if (w.listed.length < maxListed) {
    w.listed.push(listedFrom(e, order));
    return true;
  }
  let low = 0;
  for (let i = 1; i < w.listed.length; i++) if (w.listed[i].severity < w.listed[low].severity) low = i;
  if (w.listed[low].severity < severity) w.listed[low] = listedFrom(e, order);
  return false;
}

function renderWindow(w: Window, site: string): AlertMessage {
  const listed = [...w.listed].sort((a, b) => a.order - b.order);
  const lines: string[] = [];
  lines.push(`Hark at ${clean(site, 120)} recorded ${w.total} safeguarding capture${w.total === 1 ? '' : 's'} at or above the alert threshold; the highest severity is ${w.highest}.`);
  lines.push('The full records, with their context, are in the sensor\'s capture store.', '');
  listed.forEach((c, i) => {
    lines.push(`${i + 1}. ${c.timestamp || '(no time)'}  severity ${c.severity}  category ${c.category || '(none)'}`);
    const who = c.user !== '' ? c.user : '(unknown user)';
    const device = [c.hostname, c.ip, c.mac].filter((s) => s !== '').join(', ');
    lines.push(`   User/device: ${who}${device !== '' ? ` on ${device}` : ''}`);
    const how = [c.source, c.field].filter((s) => s !== '').join(' in ');
    lines.push(`   Phrase: "${c.phrase}"${how !== '' ? ` (${how}${c.count > 1 ? `, ${c.count} times` : ''})` : ''}`);
    if (c.host !== '' || c.url !== '') lines.push(`   Where: ${[c.host, c.url].filter((s) => s !== '').join('  ')}`);
    if (c.context !== '') lines.push(`   Context: ${c.context}`);
    lines.push('');
  });
  const more = w.total - listed.length;
  if (more > 0) lines.push(`... and ${more} more capture${more === 1 ? '' : 's'} not listed (a message lists at most ${listed.length}).`, '');
  return { subject: alertSubject(w.total, w.highest, site), text: lines.join('\n') };
}

/** What the URL says about where and how to connect. */
interface SmtpTarget {
  secure: boolean;
  host: string;
  port: number;
  display: string;
}

function parseSmtpUrl(url: string): SmtpTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new OutputConfigError('E_EMAIL_CONFIG', `Cannot use SMTP URL "${url}": not a URL (expected smtp:// or smtps://host:port)`);
  }
  if (u.protocol !== 'smtp:' && u.protocol !== 'smtps:') throw new OutputConfigError('E_EMAIL_CONFIG', `Cannot use SMTP URL "${u.protocol}//${u.host}": scheme must be smtp (STARTTLS) or smtps (TLS)`);
  if (u.username !== '' || u.password !== '') throw new OutputConfigError('E_EMAIL_CONFIG', `Cannot use SMTP URL "${u.protocol}//${u.host}": put credentials in the auth option, not the URL`);
  const secure = u.protocol === 'smtps:';
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  if (host === '') throw new OutputConfigError('E_EMAIL_CONFIG', `Cannot use SMTP URL "${url}": no host`);
  // 587: message submission (RFC 6409) with STARTTLS; 465: submissions, implicit TLS (RFC 8314).
  const port = u.port === '' ? (secure ? 465 : 587) : Number(u.port);
  return { secure, host, port, display: `${u.protocol}//${u.hostname}:${port}` };
}

export class EmailAlerter implements EventOutput {
  lastError: EmailAlertError | undefined;
  private readonly counters: Counters;
  private readonly target: SmtpTarget;
  private readonly transport: Transporter;
  private readonly from: string;
  private readonly to: string[];
  private readonly site: string;
  private readonly minSeverity: number;
  private readonly batchMs: number;
  private readonly maxAttempts: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly closeTimeoutMs: number;
  private readonly onError: ((err: EmailAlertError) => void) | undefined;
  private window: Window | undefined;
  private windowTimer: NodeJS.Timeout | undefined;
  private order = 0;
  private readonly outbox: Outgoing[] = [];
  private sending: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private wakeRetry: (() => void) | undefined;
  private closing = false;
  private closed = false;

  constructor(opts: EmailAlerterOptions) {
    this.target = parseSmtpUrl(opts.smtp);
    if (opts.to.length === 0) throw new OutputConfigError('E_EMAIL_CONFIG', 'Cannot send alert e-mail: no recipients (to)');
    const minSeverity = opts.minSeverity ?? DEFAULT_MIN_SEVERITY;
    if (!(Number.isInteger(minSeverity) && minSeverity >= 1 && minSeverity <= 5)) throw new OutputConfigError('E_EMAIL_CONFIG', `Cannot use min_severity "${opts.minSeverity}": expected 1-5`);
    const batchSeconds = opts.batchSeconds ?? DEFAULT_BATCH_SECONDS;
    if (!(Number.isFinite(batchSeconds) && batchSeconds >= 0)) throw new OutputConfigError('E_EMAIL_CONFIG', `Cannot use batch_seconds "${opts.batchSeconds}": expected a number of seconds`);
    this.counters = opts.counters;
    this.from = opts.from;
    this.to = [...opts.to];
    this.site = opts.site;
    this.minSeverity = minSeverity;
    this.batchMs = batchSeconds * 1000;
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? MAX_SEND_ATTEMPTS);
    this.retryBaseMs = opts.retryBaseMs ?? RETRY_BASE_MS;
    this.retryMaxMs = opts.retryMaxMs ?? RETRY_MAX_MS;
    this.closeTimeoutMs = opts.closeTimeoutMs ?? CLOSE_TIMEOUT_MS;
    this.onError = opts.onError;
    const insecure = opts.insecure === true && !this.target.secure;
    this.transport = nodemailer.createTransport({
      host: this.target.host,
      port: this.target.port,
      secure: this.target.secure,
      // STARTTLS or nothing: nodemailer fails the session when the server cannot upgrade.
      requireTLS: !this.target.secure && !insecure,
      ignoreTLS: insecure,
      tls: { rejectUnauthorized: true, minVersion: 'TLSv1.2', ...(opts.ca !== undefined ? { ca: opts.ca } : {}) },
      ...(opts.auth !== undefined ? { auth: { user: opts.auth.user, pass: opts.auth.pass } } : {}),
      connectionTimeout: SMTP_TIMEOUT_MS,
      greetingTimeout: SMTP_TIMEOUT_MS,
      socketTimeout: SMTP_TIMEOUT_MS,
    });
  }

  /** Captures in the open window (0 when none is open). */
  get pending(): number {
    return this.window?.total ?? 0;
  }

  /** Messages composed and not yet sent or given up. */
  get outboxSize(): number {
    return this.outbox.length;
  }

  write(event: OutputEvent): void {
    if (event.event_type !== 'capture' || this.closing) return;
    const e = event as Record<string, any>;
    const severity = e.severity;
    if (typeof severity !== 'number' || !(severity >= this.minSeverity)) return;
    if (this.window === undefined) {
      this.window = { listed: [], total: 0, highest: 0 };
      this.windowTimer = setTimeout(() => this.closeWindow(), this.batchMs);
      this.windowTimer.unref();
    }
    if (!addToWindow(this.window, e, this.order++, MAX_CAPTURES_PER_EMAIL)) this.counters.inc(C_UNLISTED);
  }

  /** Batching is the point: a flush does not cut the window short. */
  flush(): void {}

  /** Connects and says hello (and STARTTLS, and AUTH) without sending: a start-up check. */
  async verify(): Promise<void> {
    try {
      await this.transport.verify();
    } catch (err) {
      throw this.describe(err);
    }
  }

  /** Sends the open window now and waits (at most closeTimeoutMs) for everything pending to go. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    this.closeWindow();
    // Retry waits become ref'd timers, so the process stays up while close() is still trying.
    this.wakeRetry?.();
    let timedOut = false;
    let deadline: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => {
      deadline = setTimeout(() => { timedOut = true; resolve(); }, this.closeTimeoutMs);
    });
    while (this.sending !== undefined && !timedOut) await Promise.race([this.sending, expired]);
    clearTimeout(deadline);
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wakeRetry?.();
    if (this.outbox.length > 0) this.counters.inc(C_FAILED, this.outbox.length);
    this.outbox.length = 0;
    this.transport.close();
  }

  private closeWindow(): void {
    if (this.windowTimer) clearTimeout(this.windowTimer);
    this.windowTimer = undefined;
    const w = this.window;
    this.window = undefined;
    if (w === undefined || w.total === 0) return;
    const { subject, text } = renderWindow(w, this.site);
    if (this.outbox.length >= MAX_OUTBOX_MESSAGES) {
      this.outbox.shift();
      this.counters.inc(C_FAILED);
    }
    this.outbox.push({ subject, text, attempts: 0 });
    this.kick();
  }

  /** Starts the send loop unless it runs; restarts it if a message arrived as it was ending. */
  private kick(): void {
    if (this.sending !== undefined || this.closed) return;
    this.sending = this.drain().finally(() => {
      this.sending = undefined;
      if (this.outbox.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.outbox.length > 0 && !this.closed) {
      const msg = this.outbox[0];
      msg.attempts++;
      try {
        await this.transport.sendMail({ from: this.from, to: this.to, subject: msg.subject, text: msg.text });
        if (this.outbox[0] === msg) this.outbox.shift();
        this.counters.inc(C_SENT);
        continue;
      } catch (err) {
        const e = this.describe(err);
        this.lastError = e;
        this.onError?.(e);
        if (e.permanent || msg.attempts >= this.maxAttempts) {
          if (this.outbox[0] === msg) this.outbox.shift();
          this.counters.inc(C_FAILED);
          continue;
        }
        this.counters.inc(C_RETRIES);
      }
      await this.sleep(backoffDelayMs(msg.attempts - 1, this.retryBaseMs, this.retryMaxMs));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        if (this.retryTimer) clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        this.wakeRetry = undefined;
        resolve();
      };
      this.retryTimer = setTimeout(done, ms);
      if (!this.closing) this.retryTimer.unref();
      // close() wakes an unref'd wait so it can be re-armed as a ref'd one (or end at once when closed).
      this.wakeRetry = () => {
        if (this.closed) return done();
        if (this.retryTimer) this.retryTimer.ref();
      };
    });
  }

  /** nodemailer's error as a sentence naming the server and the reason; permanent when retrying cannot help. */
  private describe(err: unknown): EmailAlertError {
    const e = err as { message?: string; code?: string; responseCode?: number };
    const msg = e.message ?? String(err);
    const where = `Cannot send alert e-mail via ${this.target.display}`;
    if (!this.target.secure && (e.code === 'ETLS' || /STARTTLS/i.test(msg))) {
      return new EmailAlertError(`${where}: the server did not complete STARTTLS (${msg}); refusing to send in plaintext`, { cause: err }, true);
    }
    if (e.code === 'EAUTH') return new EmailAlertError(`${where}: authentication failed (${msg})`, { cause: err }, true);
    if (/certificate|self[- ]signed|unable to verify|CERT_|ERR_TLS/i.test(msg)) {
      return new EmailAlertError(`${where}: the server's TLS certificate was not accepted (${msg})`, { cause: err }, false);
    }
    const permanent = typeof e.responseCode === 'number' && e.responseCode >= 500 && e.responseCode < 600;
    return new EmailAlertError(`${where}: ${msg}`, { cause: err }, permanent);
  }
}

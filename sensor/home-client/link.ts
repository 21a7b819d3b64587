/**
 * HomeLink: the sensor's HTTPS connection to home (PROTOCOL.md), over undici keep-alive agents.
 * Input: home base URLs in preference order, home's CA (the pin: the only trust anchor), the
 * sensor's certificate and key (mutual TLS), an optional upstream proxy (CONNECT). Output: JSON
 * requests to the home in use, with fail-over to the next home on a transport failure and a damped
 * switch back to the preferred (lowest-latency) home. Never falls back to unverified TLS.
 */
import { X509Certificate } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';
import { defineCounter, type Counters } from '../events/counters.js';
import { fingerprint, normaliseFingerprint } from './credentials.js';
import { HomeTransportError, type HomeRequestOptions, type HomeResponse, type HomeTransport } from './transport.js';

/** TCP + TLS set-up budget per connection. */
export const LINK_CONNECT_TIMEOUT_MS = 10_000;
/** Whole-request budget (a bundle with a large dictionary may take a while on a slow line). */
export const LINK_REQUEST_TIMEOUT_MS = 30_000;
/** A latency probe slower than this counts as no answer. */
export const LINK_PROBE_TIMEOUT_MS = 5_000;
/** How often the preferred home is re-probed while another one is in use. */
export const LINK_RECHECK_MS = 60_000;
/** The preferred home must answer for at least this long before the link switches back (damping). */
export const LINK_HOLD_DOWN_MS = 5 * 60_000;
/** Latency differences below this are noise (a TLS handshake on a busy host): list order decides. */
export const LINK_LATENCY_TIE_MS = 10;
/** Consecutive answered probes needed before switching back (M86 MSC-style damping). */
export const LINK_SWITCH_BACK_PROBES = 3;
/** Largest answer read from home: a bundle carries the whole dictionary; more is refused. */
export const MAX_HOME_RESPONSE_BYTES = 64 * 1024 * 1024;

const C_REQUESTS = defineCounter('home.requests');
const C_FAILOVERS = defineCounter('home.failovers');
const C_SWITCH_BACKS = defineCounter('home.switch_backs');
const C_TRANSPORT_ERRORS = defineCounter('home.transport_errors');
const C_TLS_REFUSED = defineCounter('home.tls_refused');
const C_PROBES = defineCounter('home.probes');
const C_PROBES_FAILED = defineCounter('home.probes_failed');
const C_RESPONSE_TOO_LARGE = defineCounter('home.response_too_large');

/** Bad link settings (not a transport failure): an http:// home without allowPlaintext, a bad URL. */
export class LinkConfigError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export interface HomeLinkOptions {
  /** Base URLs (`https://home.example:8443`), in preference order for ties. */
  readonly homes: readonly string[];
  /** Home's CA certificate (PEM): the only trust anchor for home's server certificate. */
  readonly ca: string;
  /** The sensor's certificate and key (PEM) for mutual TLS; without them only unauthenticated calls work. */
  readonly cert?: string;
  readonly key?: string;
  /** Upstream HTTP proxy `http://host:port`; home is reached through CONNECT, TLS end to end. */
  readonly proxy?: string;
  /** Allows http:// homes (tests only): no TLS, no pin. */
  readonly allowPlaintext?: boolean;
  readonly connectTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  readonly probeTimeoutMs?: number;
  readonly recheckMs?: number;
  readonly holdDownMs?: number;
  /** Called on every change of the home in use, after it happened. */
  readonly onSwitch?: (from: string, to: string, reason: string) => void;
  readonly counters?: Counters;
}

export interface ProbeResult {
  readonly home: string;
  /** Round trip of GET /v1/ping in ms, or undefined when it did not answer. */
  readonly latencyMs: number | undefined;
  readonly error?: string;
}

/** TLS error codes (OpenSSL verify results and Node's TLS errors) that mean "not home's certificate". */
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE', 'CERT_REVOKED', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH', 'EPROTO',
]);

function errCode(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

function isTlsError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = errCode(e);
    if (code !== undefined && (TLS_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'))) return true;
    if (/certificate|SSL routines|alert/i.test((e as Error).message ?? '')) return true;
  }
  return false;
}

function describe(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 3; e = (e as { cause?: unknown }).cause, depth++) {
    const code = errCode(e);
    const msg = (e as Error).message ?? String(e);
    parts.push(code !== undefined && !msg.includes(code) ? `${code} ${msg}` : msg);
  }
  return parts.join(': ');
}

function baseUrl(home: string, allowPlaintext: boolean): string {
  let url: URL;
  try {
    url = new URL(home);
  } catch {
    throw new LinkConfigError('E_HOME_URL', `Cannot use home "${home}": not a URL (expected https://host:port)`);
  }
  if (url.protocol === 'http:') {
    if (!allowPlaintext) throw new LinkConfigError('E_HOME_PLAINTEXT', `Refusing home "${home}": plain http:// has no TLS and no pin; use https://`);
  } else if (url.protocol !== 'https:') {
    throw new LinkConfigError('E_HOME_URL', `Cannot use home "${home}": scheme "${url.protocol}" (expected https://)`);
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '') throw new LinkConfigError('E_HOME_URL', `Cannot use home "${home}": a base URL has no query, fragment or user`);
  return url.href.replace(/\/+$/, '');
}

/**
 * Throws LinkConfigError (E_HOME_URL, E_HOME_PLAINTEXT) unless `home` is a base URL the link can
 * use: for checking a command line before anything is sent.
 */
export function checkHomeUrl(home: string, allowPlaintext: boolean): void {
  baseUrl(home, allowPlaintext);
}

/** Throws LinkConfigError (E_PROXY_URL) unless `proxy` is an http(s)://host:port URL. */
export function checkProxy(proxy: string): void {
  let url: URL;
  try {
    url = new URL(proxy);
  } catch {
    throw new LinkConfigError('E_PROXY_URL', `Cannot use proxy "${proxy}": not a URL (expected http://host:port)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new LinkConfigError('E_PROXY_URL', `Cannot use proxy "${proxy}": scheme "${url.protocol}" (expected http://host:port)`);
}

interface TlsSettings {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly rejectUnauthorized: boolean;
}

function makeDispatcher(tls: TlsSettings, proxy: string | undefined, connectTimeoutMs: number): Dispatcher {
  const connect = { ...tls, timeout: connectTimeoutMs };
  if (proxy !== undefined) return new ProxyAgent({ uri: proxy, requestTls: connect, proxyTls: { timeout: connectTimeoutMs } });
  return new Agent({ connect });
}

/** Reads at most MAX_HOME_RESPONSE_BYTES of an answer. */
async function readBody(body: Dispatcher.ResponseData['body'], limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    total += b.length;
    if (total > limit) {
      body.destroy();
      return undefined;
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks, total);
}

function decodeBody(bytes: Buffer, contentType: string | undefined): unknown {
  if (bytes.length === 0) return undefined;
  const text = bytes.toString('utf8');
  if (contentType === undefined || contentType.includes('json')) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

interface AttemptSettings {
  readonly dispatcher: Dispatcher;
  readonly proxy: string | undefined;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  readonly counters: Counters | undefined;
}

/** One request to one home; transport failures become HomeTransportError, HTTP statuses resolve. */
async function attempt(home: string, method: string, path: string, body: unknown, s: AttemptSettings): Promise<HomeResponse> {
  const timer = new AbortController();
  const timeout = setTimeout(() => timer.abort(), s.timeoutMs);
  const signal = s.signal === undefined ? timer.signal : AbortSignal.any([timer.signal, s.signal]);
  s.counters?.inc(C_REQUESTS);
  try {
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'hark-sensor' };
    let payload: string | undefined;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    const res = await request(`${home}${path}`, { method: method as Dispatcher.HttpMethod, headers, body: payload, dispatcher: s.dispatcher, signal });
    const bytes = await readBody(res.body, MAX_HOME_RESPONSE_BYTES);
    if (bytes === undefined) {
      s.counters?.inc(C_RESPONSE_TOO_LARGE);
      throw new HomeTransportError('E_HOME_RESPONSE', `Home "${home}" answered ${method} ${path} with more than ${MAX_HOME_RESPONSE_BYTES} bytes`, home);
    }
    const ct = res.headers['content-type'];
    return { status: res.statusCode, body: decodeBody(bytes, Array.isArray(ct) ? ct[0] : ct), home, headers: res.headers };
  } catch (err) {
    if (err instanceof HomeTransportError) throw err;
    if (s.signal?.aborted === true) throw s.signal.reason ?? err;
    s.counters?.inc(C_TRANSPORT_ERRORS);
    const code = errCode(err);
    if (timer.signal.aborted || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      throw new HomeTransportError('E_HOME_TIMEOUT', `Home "${home}" did not answer ${method} ${path} within ${s.timeoutMs} ms`, home, { cause: err });
    }
    if (isTlsError(err)) {
      s.counters?.inc(C_TLS_REFUSED);
      throw new HomeTransportError('E_HOME_TLS', `TLS with home "${home}" refused (certificate not signed by home's pinned CA, wrong name, or our certificate refused): ${describe(err)}`, home, { cause: err });
    }
    if (s.proxy !== undefined) {
      const msg = (err as Error).message ?? '';
      const proxyPort = new URL(s.proxy).port || '80';
      const refusedByProxy = /Proxy response/.test(msg) || (code === 'ECONNREFUSED' && String((err as { port?: unknown }).port) === proxyPort);
      if (refusedByProxy) throw new HomeTransportError('E_HOME_PROXY', `Cannot reach home "${home}" through proxy "${s.proxy}": ${describe(err)}`, home, { cause: err });
    }
    throw new HomeTransportError('E_HOME_UNREACHABLE', `Cannot reach home "${home}": ${describe(err)}`, home, { cause: err });
  } finally {
    clearTimeout(timeout);
  }
}

export class HomeLink implements HomeTransport {
  readonly homes: readonly string[];
  private readonly dispatcher: Dispatcher;
  private readonly opts: HomeLinkOptions;
  private readonly counters: Counters | undefined;
  private cur = 0;
  private preferred = 0;
  private recheck: NodeJS.Timeout | undefined;
  private probing = false;
  private streak = 0;
  private streakStartMs = 0;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(opts: HomeLinkOptions) {
    if (opts.homes.length === 0) throw new LinkConfigError('E_HOME_URL', 'No home given: at least one https:// URL is needed');
    this.homes = opts.homes.map((h) => baseUrl(h, opts.allowPlaintext === true));
    if (opts.proxy !== undefined) checkProxy(opts.proxy);
    try {
      new X509Certificate(opts.ca);
    } catch (err) {
      throw new LinkConfigError('E_HOME_CA', `Cannot use home's CA certificate: ${(err as Error).message}`);
    }
    if ((opts.cert === undefined) !== (opts.key === undefined)) throw new LinkConfigError('E_HOME_CLIENT_CERT', 'A client certificate needs its key and a key its certificate');
    this.opts = opts;
    this.counters = opts.counters;
    this.dispatcher = makeDispatcher({ ca: opts.ca, cert: opts.cert, key: opts.key, rejectUnauthorized: true }, opts.proxy, opts.connectTimeoutMs ?? LINK_CONNECT_TIMEOUT_MS);
  }

  /** The home requests go to now. */
  get current(): string { return this.homes[this.cur]; }
  /** The home chosen by latency at start, which the link returns to after a fail-over. */
  get preferredHome(): string { return this.homes[this.preferred]; }

  /** Probes every home, chooses the fastest that answered (within LINK_LATENCY_TIE_MS: list order) as preferred and current. */
  async start(): Promise<ProbeResult[]> {
    const results = await Promise.all(this.homes.map((_, i) => this.probe(i)));
    let best = -1;
    for (let i = 0; i < results.length; i++) {
      const l = results[i].latencyMs;
      if (l !== undefined && (best < 0 || l < (results[best].latencyMs as number) - LINK_LATENCY_TIE_MS)) best = i;
    }
    const chosen = best < 0 ? 0 : best;
    const from = this.cur;
    this.preferred = chosen;
    this.cur = chosen;
    this.stopRecheck();
    if (from !== chosen) this.opts.onSwitch?.(this.homes[from], this.homes[chosen], `start: lowest latency (${(results[chosen].latencyMs as number).toFixed(1)} ms)`);
    return results;
  }

  /** GET /v1/ping on one home: round trip in ms, or undefined with the reason. */
  async probe(index: number): Promise<ProbeResult> {
    const home = this.homes[index];
    this.counters?.inc(C_PROBES);
    const t0 = performance.now();
    try {
      const res = await attempt(home, 'GET', '/v1/ping', undefined, this.settings(this.opts.probeTimeoutMs ?? LINK_PROBE_TIMEOUT_MS, undefined));
      if (res.status < 200 || res.status > 299) {
        this.counters?.inc(C_PROBES_FAILED);
        return { home, latencyMs: undefined, error: `answered ${res.status}` };
      }
      return { home, latencyMs: performance.now() - t0 };
    } catch (err) {
      this.counters?.inc(C_PROBES_FAILED);
      return { home, latencyMs: undefined, error: (err as Error).message };
    }
  }

  async request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, opts?: HomeRequestOptions): Promise<HomeResponse> {
    if (this.closed) throw new HomeTransportError('E_HOME_UNREACHABLE', 'The link to home is closed');
    const s = this.settings(opts?.timeoutMs ?? this.opts.requestTimeoutMs ?? LINK_REQUEST_TIMEOUT_MS, opts?.signal);
    const first = this.cur;
    try {
      return await attempt(this.homes[first], method, path, body, s);
    } catch (err) {
      if (!(err instanceof HomeTransportError) || err.code === 'E_HOME_RESPONSE' || this.homes.length < 2) throw err;
      // Another request may already have moved on; otherwise move to the next home ourselves.
      if (this.cur === first) this.switchTo((first + 1) % this.homes.length, `${err.code}: ${err.message}`, false);
      const second = this.cur;
      try {
        return await attempt(this.homes[second], method, path, body, s);
      } catch (err2) {
        if (err2 instanceof HomeTransportError && err2.code !== 'E_HOME_RESPONSE' && this.cur === second && this.homes.length > 2) {
          this.switchTo((second + 1) % this.homes.length, `${err2.code}: ${err2.message}`, false);
        }
        throw err2;
      }
    }
  }

  /** Ends the re-probe timer and closes the agents (in-flight requests finish first). */
  close(): Promise<void> {
    if (this.closing === undefined) {
      this.closed = true;
      this.stopRecheck();
      this.closing = this.dispatcher.close();
    }
    return this.closing;
  }

  private settings(timeoutMs: number, signal: AbortSignal | undefined): AttemptSettings {
    return { dispatcher: this.dispatcher, proxy: this.opts.proxy, timeoutMs, signal, counters: this.counters };
  }

  private switchTo(index: number, reason: string, back: boolean): void {
    const from = this.cur;
    if (from === index) return;
    this.cur = index;
    this.counters?.inc(back ? C_SWITCH_BACKS : C_FAILOVERS);
    if (index === this.preferred) this.stopRecheck();
    else this.startRecheck();
    this.opts.onSwitch?.(this.homes[from], this.homes[index], reason);
  }

  private startRecheck(): void {
    if (this.recheck !== undefined || this.closed) return;
    this.streak = 0;
    this.recheck = setInterval(() => void this.recheckPreferred(), this.opts.recheckMs ?? LINK_RECHECK_MS);
    this.recheck.unref();
  }

  private stopRecheck(): void {
    if (this.recheck !== undefined) clearInterval(this.recheck);
    this.recheck = undefined;
    this.streak = 0;
  }

  /** One damping probe: N consecutive answers spanning the hold-down switch back; any failure starts over. */
  private async recheckPreferred(): Promise<void> {
    if (this.probing || this.cur === this.preferred || this.closed) return;
    this.probing = true;
    try {
      const r = await this.probe(this.preferred);
      if (this.closed || this.cur === this.preferred) return;
      const now = performance.now();
      if (r.latencyMs === undefined) {
        this.streak = 0;
        return;
      }
      if (this.streak === 0) this.streakStartMs = now;
      this.streak++;
      const span = now - this.streakStartMs;
      const holdDown = this.opts.holdDownMs ?? LINK_HOLD_DOWN_MS;
      if (this.streak >= LINK_SWITCH_BACK_PROBES && span >= holdDown) {
        this.switchTo(this.preferred, `preferred home answered ${this.streak} consecutive probes over ${Math.round(span)} ms`, true);
      }
    } finally {
      this.probing = false;
    }
  }
}

export class CaFetchError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface FetchCaOptions {
  /** The fingerprint the operator read from home's console; refused when the CA differs. */
  readonly expectFingerprint?: string;
  readonly proxy?: string;
  readonly timeoutMs?: number;
}

/**
 * First enrolment: fetches home's CA once WITHOUT verification (nothing is pinned yet), then
 * proves home's server certificate chains to it with a second, pinned connection, and compares the
 * fingerprint the operator gave. Returns the PEM and its fingerprint for the operator to confirm.
 */
export async function fetchCa(url: string, opts: FetchCaOptions = {}): Promise<{ pem: string; fingerprint: string }> {
  const home = baseUrl(url, false);
  if (opts.proxy !== undefined) checkProxy(opts.proxy);
  const timeoutMs = opts.timeoutMs ?? LINK_REQUEST_TIMEOUT_MS;
  const insecure = makeDispatcher({ rejectUnauthorized: false }, opts.proxy, LINK_CONNECT_TIMEOUT_MS);
  let res: HomeResponse;
  try {
    res = await attempt(home, 'GET', '/v1/ca', undefined, { dispatcher: insecure, proxy: opts.proxy, timeoutMs, signal: undefined, counters: undefined });
  } finally {
    await insecure.close();
  }
  if (res.status !== 200 || typeof res.body !== 'string') throw new CaFetchError('E_HOME_CA', `Home "${home}" answered GET /v1/ca with ${res.status}, not a certificate`);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(res.body);
  } catch (err) {
    throw new CaFetchError('E_HOME_CA', `Home "${home}" sent a CA that cannot be read: ${(err as Error).message}`, { cause: err });
  }
  if (!cert.ca) throw new CaFetchError('E_HOME_CA', `Home "${home}" sent a certificate that is not a CA (${cert.subject.replace(/\n/g, ', ')})`);
  const pem = cert.toString();
  const fp = fingerprint(pem);
  if (opts.expectFingerprint !== undefined && normaliseFingerprint(opts.expectFingerprint) !== fp) {
    throw new CaFetchError('E_HOME_CA_FINGERPRINT', `Home "${home}" sent a CA with fingerprint ${fp}, not the expected ${normaliseFingerprint(opts.expectFingerprint)}: do not enrol (wrong server or interception)`);
  }
  const pinned = new HomeLink({ homes: [home], ca: pem, proxy: opts.proxy, requestTimeoutMs: timeoutMs });
  try {
    await pinned.request('GET', '/v1/ping');
  } catch (err) {
    if (err instanceof HomeTransportError && err.code === 'E_HOME_TLS') {
      throw new CaFetchError('E_HOME_TLS', `Home "${home}"'s server certificate does not chain to the CA it sent (fingerprint ${fp}): do not enrol`, { cause: err });
    }
    throw err;
  } finally {
    await pinned.close();
  }
  return { pem, fingerprint: fp };
}

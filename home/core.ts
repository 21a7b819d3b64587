/**
 * Home's shared state and the checks every API uses: site keys, operator credentials (rate
 * limited), bearer sessions with role checks, mutual-TLS sensor authentication, certificate
 * issuing on enrolment, and sensor presence (connect / disconnect). Input: request contexts.
 * Output: the authenticated operator or sensor, or HttpError after logging the refusal with the
 * peer address.
 */

import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import type { PeerCertificate } from 'node:tls';
import { Counters, defineCounter } from '../sensor/events/counters.js';
import { FailureWindow, hashPassword, LOGIN_WINDOW_MS, LoginLimiter, passwordProblem, siteKeyMatches, sha256Hex, verifyPassword } from './auth.js';
import { HttpError, type RequestContext } from './http.js';
import type { HomeLog } from './log.js';
import { issueSensorCertificate, normalSerial, PkiError, type CaMaterial } from './pki.js';
import type { HomeStore, OperatorRow, Role, SensorRow } from './store.js';

/** Operator sessions last a school day; a new login is needed after. */
export const SESSION_TTL_MS = 12 * 3600 * 1000;
/** Pending code enrolments are forgotten after a day. */
export const ENROLMENT_TTL_MS = 24 * 3600 * 1000;
/** Unanswered code requests kept at most (a flood of requests must not fill the disk). */
export const MAX_PENDING_ENROLMENTS = 1000;
/** Who a failed login's audit row names when the user name given is no operator's. */
export const UNKNOWN_USER = '(unknown user)';
/** Code requests per peer address per hour. */
export const ENROL_REQUESTS_PER_PEER_PER_HOUR = 30;
/** Wrong site keys per address in the login window before 429: a key must not be guessable by retrying. */
export const SITE_KEY_FAILURES_PER_PEER = 20;
/** The file in home's data directory holding the first admin's password until it is changed. */
export const INITIAL_PASSWORD_FILE = 'initial-admin-password';
/** Default: three missed 60-second heartbeats. */
export const DEFAULT_HEARTBEAT_TIMEOUT_S = 180;

/**
 * Deletes the initial-password file `file` when the password it holds opens `replacedHash`, the
 * hash an operator had until their password was changed (by themselves, by another admin, or by
 * `hark home admin passwd`) or until they were deleted: the file must not keep a secret that no
 * longer opens anything yet reads as if it did. Any other operator's change leaves it alone.
 * Every path that replaces or removes an operator's hash calls this. True when deleted.
 */
export async function retireInitialPassword(file: string, replacedHash: string): Promise<boolean> {
  let held: string;
  try {
    held = readFileSync(file, 'utf8').trim();
  } catch {
    return false;
  }
  if (held === '' || !(await verifyPassword(held, replacedHash))) return false;
  rmSync(file, { force: true });
  return true;
}

export const C_CERT_REFUSED = defineCounter('home.tls.client_cert_refused');
export const C_SITE_KEY_REFUSED = defineCounter('home.enrol.site_key_refused');
export const C_LOGIN_FAILED = defineCounter('home.login.failed');
export const C_LOGIN_LIMITED = defineCounter('home.login.rate_limited');
export const C_PASSWORD_CHANGE_FAILED = defineCounter('home.password_change.failed');
export const C_CAPTURES_ACCEPTED = defineCounter('home.ingest.accepted');
export const C_CAPTURES_DUPLICATE = defineCounter('home.ingest.duplicates');
export const C_CAPTURES_UPDATED = defineCounter('home.ingest.updated');
export const C_CAPTURES_REJECTED = defineCounter('home.ingest.rejected');
export const C_HEARTBEATS = defineCounter('home.heartbeats');
export const C_HANDLER_ERRORS = defineCounter('home.http.handler_errors');
export const C_LOG_LIMIT = defineCounter('home.enrol.request_rate_limited');

const ROLE_RANK: Record<Role, number> = { readonly: 0, lead: 1, admin: 2 };

export interface AuthedOperator {
  readonly op: OperatorRow;
  readonly tokenHash: string;
}

export class HomeCore {
  readonly limiter = new LoginLimiter();
  readonly counters = new Counters();
  /** Sensors seen since their last disconnect: id -> time of last heartbeat (or of connect). */
  readonly online = new Map<number, number>();
  private readonly enrolRequests = new Map<string, number[]>();
  private readonly siteKeyFailures = new FailureWindow(SITE_KEY_FAILURES_PER_PEER, LOGIN_WINDOW_MS);

  constructor(
    readonly store: HomeStore,
    readonly ca: CaMaterial,
    readonly log: HomeLog,
    readonly heartbeatTimeoutMs: number,
    /** Path of INITIAL_PASSWORD_FILE: deleted once the password it holds is changed. */
    readonly initialPasswordFile: string,
  ) {}

  // ---- site keys ----
  /** Throws 403 E_SITE_KEY (logged) when any key is active and `key` matches none. */
  checkSiteKey(key: unknown, ctx: RequestContext, call: string): void {
    const active = this.store.activeSiteKeys();
    if (active.length === 0) return;
    const wait = this.siteKeyFailures.retryAfter(ctx.peerKey);
    if (wait > 0) {
      this.counters.inc(C_LOGIN_LIMITED);
      this.log.write('security.rate_limit', { peer: ctx.peer, call, reason: 'site key failures', retry_after: wait });
      throw new HttpError(429, 'E_RATE_LIMIT', `Too many wrong site keys from this address; try again in ${wait} seconds`, { 'retry-after': String(wait) });
    }
    const given = typeof key === 'string' ? key : '';
    if (given !== '' && given.length <= 256 && active.some((k) => siteKeyMatches(given, k.salt, k.key_hash))) return;
    this.siteKeyFailures.fail(ctx.peerKey);
    this.counters.inc(C_SITE_KEY_REFUSED);
    const reason = given === '' ? 'missing' : 'wrong';
    this.log.write('security.site_key', { peer: ctx.peer, call, reason });
    throw new HttpError(403, 'E_SITE_KEY', `This home requires a site key for enrolment; the one given is ${reason}`);
  }

  // ---- operators ----
  /**
   * Checks a user name and password with the login rate limit; returns the operator.
   * 429 E_RATE_LIMIT (retry-after) when limited, 401 E_LOGIN when wrong. Logs failures.
   * The attempt is counted before the password hash runs and uncounted when it succeeds, so
   * concurrent guesses beyond the limit are refused instead of all being checked.
   */
  async checkCredentials(user: unknown, password: unknown, ctx: RequestContext, call: string): Promise<OperatorRow> {
    const name = typeof user === 'string' ? user.slice(0, 64) : '';
    const attempt = this.limiter.begin(name, ctx.peerKey);
    if (typeof attempt === 'number') {
      this.counters.inc(C_LOGIN_LIMITED);
      this.log.write('security.rate_limit', { peer: ctx.peer, call, user: name, retry_after: attempt });
      throw new HttpError(429, 'E_RATE_LIMIT', `Too many failed logins; try again in ${attempt} seconds`, { 'retry-after': String(attempt) });
    }
    let op: OperatorRow | undefined;
    let ok = false;
    try {
      op = name === '' ? undefined : this.store.operatorByName(name);
      ok = await verifyPassword(typeof password === 'string' ? password : '', op?.hash);
    } finally {
      // A check that threw counts as failed: an error must not be a way around the limit.
      if (ok && op !== undefined) attempt.succeeded();
      else attempt.failed();
    }
    if (!ok || op === undefined) {
      this.counters.inc(C_LOGIN_FAILED);
      this.log.write('security.login_failed', { peer: ctx.peer, call, user: name });
      // The audit log is readable by every operator (readonly included): a name that is no operator's
      // is often a password typed into the wrong box, so only home.log (0600, the host's admins) keeps it.
      this.store.audit(op !== undefined ? op.name : name === '' ? '-' : UNKNOWN_USER, 'login.failed', null, { call }, ctx.peer);
      throw new HttpError(401, 'E_LOGIN', 'Wrong user name or password');
    }
    return op;
  }

  /**
   * Changes the signed-in operator's own password; the operator API (`via` 'api') and the portal
   * ('portal') both come here. Checks `current` under the login rate limit (a session must not be
   * a way to guess the password), the rules for `next`, stores the new hash, ends the operator's
   * other sessions, deletes the initial-password file when it holds the password being replaced
   * (retireInitialPassword),
   * and writes the audit row and `config.password_changed`. 429 E_RATE_LIMIT, 403 E_LOGIN (current
   * password wrong, logged), 400 E_PASSWORD.
   */
  async changeOwnPassword(who: AuthedOperator, current: unknown, next: unknown, ctx: RequestContext, via: 'api' | 'portal'): Promise<void> {
    const { op, tokenHash } = who;
    const call = via === 'portal' ? 'portal.password' : 'password';
    const attempt = this.limiter.begin(op.name, ctx.peerKey);
    if (typeof attempt === 'number') {
      this.counters.inc(C_LOGIN_LIMITED);
      this.log.write('security.rate_limit', { peer: ctx.peer, call, user: op.name, retry_after: attempt });
      throw new HttpError(429, 'E_RATE_LIMIT', `Too many wrong passwords; try again in ${attempt} seconds`, { 'retry-after': String(attempt) });
    }
    let ok = false;
    try {
      ok = typeof current === 'string' && (await verifyPassword(current, op.hash));
    } finally {
      if (ok) attempt.succeeded();
      else attempt.failed();
    }
    if (!ok || typeof current !== 'string') {
      this.counters.inc(C_PASSWORD_CHANGE_FAILED);
      this.log.write('security.password_change_failed', { peer: ctx.peer, call, user: op.name });
      throw new HttpError(403, 'E_LOGIN', 'The current password is wrong');
    }
    const problem = passwordProblem(next) ?? (next === current ? 'it must differ from the current one' : undefined);
    if (problem !== undefined) throw new HttpError(400, 'E_PASSWORD', `Cannot set the password: ${problem}`);
    this.store.updateOperator(op.id, { hash: await hashPassword(next as string), must_change_password: false });
    this.store.deleteSessionsOf(op.id, tokenHash);
    const retired = await retireInitialPassword(this.initialPasswordFile, op.hash);
    this.store.audit(op.name, 'password.change', `operator:${op.name}`, via === 'portal' ? { portal: true } : undefined, ctx.peer);
    this.log.write('config.password_changed', { user: op.name, peer: ctx.peer, via, initial_password_file: retired ? 'deleted' : undefined });
  }

  /** The operator behind `authorization: Bearer`, checked for `need` role; 401 / 403 otherwise. */
  operator(ctx: RequestContext, need: Role, allowMustChange = false): AuthedOperator {
    const auth = ctx.req.headers.authorization ?? '';
    const m = /^Bearer ([A-Za-z0-9_-]{20,100})$/.exec(auth);
    if (m === null) throw new HttpError(401, 'E_AUTH', 'Log in first (POST /v1/login) and send authorization: Bearer TOKEN');
    const tokenHash = sha256Hex(m[1]);
    const op = this.store.sessionOperator(tokenHash, Date.now());
    if (op === undefined) throw new HttpError(401, 'E_AUTH', 'The session has expired or was ended; log in again');
    if (op.must_change_password === 1 && !allowMustChange) {
      throw new HttpError(403, 'E_PASSWORD_CHANGE', 'This account must change its password first (POST /v1/password)');
    }
    if (ROLE_RANK[op.role] < ROLE_RANK[need]) {
      this.log.write('security.forbidden', { peer: ctx.peer, user: op.name, role: op.role, need, call: `${ctx.req.method} ${ctx.url.pathname}` });
      throw new HttpError(403, 'E_ROLE', `Role "${op.role}" cannot do this; it needs "${need}"`);
    }
    return { op, tokenHash };
  }

  // ---- enrolment ----
  /** Counts a code request from `peer`; 429 when over the hourly allowance. */
  limitEnrolRequest(ctx: RequestContext, now = Date.now()): void {
    const list = (this.enrolRequests.get(ctx.peerKey) ?? []).filter((t) => now - t < 3600_000);
    if (list.length >= ENROL_REQUESTS_PER_PEER_PER_HOUR) {
      const wait = Math.max(1, Math.ceil((list[0] + 3600_000 - now) / 1000));
      this.counters.inc(C_LOG_LIMIT);
      this.log.write('security.rate_limit', { peer: ctx.peer, call: 'enrol.request', retry_after: wait });
      throw new HttpError(429, 'E_RATE_LIMIT', `Too many enrolment requests from this address; try again in ${wait} seconds`, { 'retry-after': String(wait) });
    }
    list.push(now);
    this.enrolRequests.set(ctx.peerKey, list);
    if (this.enrolRequests.size > 10_000) this.enrolRequests.delete(this.enrolRequests.keys().next().value as string);
  }

  /**
   * Signs `csr` for sensor `sensorId` (CN = uuid) and records it as that sensor's only valid
   * certificate (earlier ones revoked). Logged. Returns the certificate PEM.
   */
  enrolSensor(sensorId: number, uuid: string, hostname: string, csr: string, by: string, peer: string): string {
    let issued;
    try {
      issued = issueSensorCertificate(this.ca, csr, uuid);
    } catch (err) {
      if (err instanceof PkiError) throw new HttpError(400, err.code, err.message);
      throw err;
    }
    const revoked = this.store.recordEnrolment(sensorId, uuid, hostname, issued);
    this.log.write('enrol.approved', { sensor: sensorId, uuid, hostname, serial: issued.serial, revoked: revoked.length > 0 ? revoked.join(',') : undefined, by, peer });
    return issued.pem;
  }

  newEnrolmentCode(): string {
    // 32 symbols without 0/O/1/I: 8 symbols = 40 bits, with the expiry and rate limit plenty.
    const alphabet = '23456789ABCDEFGHJKLMNPQRSTUVWXYZ';
    for (;;) {
      const b = randomBytes(8);
      let code = '';
      for (let i = 0; i < 8; i++) code += (i === 4 ? '-' : '') + alphabet[b[i] & 31];
      if (this.store.enrolmentByCode(code) === undefined) return code;
    }
  }

  // ---- sensors over mutual TLS ----
  /** The sensor a request's client certificate proves, or 401 E_CERT after logging why not. */
  sensor(ctx: RequestContext): SensorRow {
    const sock = ctx.socket;
    const cert = sock.getPeerCertificate() as PeerCertificate | Record<string, never> | null;
    const refuse = (reason: string, detail: Record<string, unknown> = {}): never => {
      this.counters.inc(C_CERT_REFUSED);
      this.log.write('security.client_cert', { peer: ctx.peer, call: `${ctx.req.method} ${ctx.url.pathname}`, reason, ...detail });
      throw new HttpError(401, 'E_CERT', `Client certificate refused: ${reason}`);
    };
    if (cert === null || !('serialNumber' in cert) || cert.serialNumber === undefined) return refuse('no client certificate');
    const serial = normalSerial(cert.serialNumber);
    const cn = typeof cert.subject?.CN === 'string' ? cert.subject.CN : String(cert.subject?.CN ?? '');
    if (!sock.authorized) {
      const err = String(sock.authorizationError ?? 'unknown');
      if (err === 'CERT_HAS_EXPIRED') return refuse('expired certificate', { serial, cn, not_after: cert.valid_to });
      if (err === 'CERT_NOT_YET_VALID') return refuse('certificate not yet valid', { serial, cn });
      return refuse(`certificate not issued by this home's CA (${err})`, { serial, cn, issuer: cert.issuer?.CN });
    }
    const row = this.store.certificate(serial);
    if (row === undefined) return refuse('serial not on record', { serial, cn });
    if (row.revoked_at !== null) return refuse('revoked certificate', { serial, cn, sensor: row.sensor_id, revoked_at: row.revoked_at });
    if (Date.parse(row.not_after) <= Date.now()) return refuse('expired certificate', { serial, cn, sensor: row.sensor_id });
    const sensor = this.store.sensor(row.sensor_id);
    if (sensor === undefined) return refuse('sensor deleted', { serial, cn, sensor: row.sensor_id });
    if (sensor.cert_serial !== serial) return refuse('serial is not the one on record for the sensor', { serial, cn, sensor: sensor.id });
    if (cn !== sensor.uuid) return refuse('subject does not name the sensor', { serial, cn, sensor: sensor.id });
    this.seen(sensor, ctx, false);
    return sensor;
  }

  /** Marks a sensor present; logs `sensor.connect` on the first request after being offline. */
  seen(sensor: SensorRow, ctx: RequestContext, heartbeat: boolean, now = Date.now()): void {
    if (!this.online.has(sensor.id)) {
      this.log.write('sensor.connect', { sensor: sensor.id, name: sensor.name, peer: ctx.peer });
      this.online.set(sensor.id, now);
    } else if (heartbeat) {
      this.online.set(sensor.id, now);
    }
  }

  /** Logs `sensor.disconnect` for sensors silent longer than the heartbeat timeout. */
  sweep(now = Date.now()): void {
    for (const [id, last] of this.online) {
      if (now - last < this.heartbeatTimeoutMs) continue;
      this.online.delete(id);
      const s = this.store.sensor(id);
      this.log.write('sensor.disconnect', { sensor: id, name: s?.name, silent_s: Math.round((now - last) / 1000) });
    }
  }
}

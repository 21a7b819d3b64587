/**
 * Enrolment with home (PROTOCOL.md "Unauthenticated"): by a code the operator approves at home's
 * console (requestCode, then waitForApproval), or by an admin's user ID and password (listSensors,
 * enrolWithCredentials), with the site key when home requires one. Output: the grant (sensor id,
 * certificate, CA) checked against the CA the operator confirmed; home's error codes become typed
 * EnrolErrors with plain messages ("Home refused the site key", "Wrong user ID or password").
 */
import { hostname as osHostname } from 'node:os';
import { fingerprint, type EnrolmentGrant, type SensorCredentials } from './credentials.js';
import { HomeTransportError, type HomeResponse, type HomeTransport } from './transport.js';

/** How often a pending code is polled: quick enough for an operator waiting at both screens. */
export const ENROL_POLL_INTERVAL_MS = 5_000;
/** Transport failures in a row while polling before giving up (a brief outage is ridden out). */
export const ENROL_POLL_MAX_FAILURES = 10;

export class EnrolError extends Error {
  /** Home's code (`E_SITE_KEY`, `E_LOGIN`, ...) or ours: `E_ENROL_REJECTED`, `E_ENROL_EXPIRED`, `E_ENROL_ANSWER`, `E_ENROL_CA`. */
  constructor(readonly code: string, message: string, readonly status?: number, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface EnrolContext {
  /** A link pinned to home's CA (no client certificate is needed for enrolment). */
  readonly link: HomeTransport;
  readonly creds: SensorCredentials;
  readonly hostname?: string;
  readonly siteKey?: string;
}

export interface SensorListing {
  readonly id: number;
  readonly name: string;
  readonly site: string;
  readonly enrolled: boolean;
}

function errorOf(res: HomeResponse, ctx: EnrolContext): EnrolError {
  const b = (res.body !== null && typeof res.body === 'object' ? res.body : {}) as { error?: unknown; message?: unknown };
  const code = typeof b.error === 'string' ? b.error : `HTTP_${res.status}`;
  const said = typeof b.message === 'string' ? b.message : '';
  const says = said !== '' ? ` (home says: ${said})` : '';
  let msg: string;
  switch (code) {
    case 'E_SITE_KEY': msg = ctx.siteKey === undefined ? 'Home refused the site key: this home needs one (--site-key-file PATH)' : 'Home refused the site key'; break;
    case 'E_LOGIN': msg = 'Wrong user ID or password'; break;
    case 'E_RATE_LIMIT': msg = `Too many attempts: wait a while and try again${says}`; break;
    case 'E_ROLE': msg = 'That user may not enrol sensors: an admin account is needed'; break;
    case 'E_PASSWORD_CHANGE': msg = 'That user must change their password in home\'s portal first'; break;
    case 'E_NOT_FOUND': msg = `Home does not know that enrolment request or sensor${says}`; break;
    case 'E_CSR': case 'E_CSR_KEY': msg = `Home refused this sensor's certificate request${says}`; break;
    default: msg = `Home answered ${res.status} ${code}${said !== '' ? `: ${said}` : ''}`;
  }
  return new EnrolError(code, msg, res.status);
}

function identity(ctx: EnrolContext): Record<string, unknown> {
  const hostname = ctx.hostname ?? osHostname();
  return { uuid: ctx.creds.uuid, hostname, csr: ctx.creds.csr(hostname), ...(ctx.siteKey !== undefined ? { site_key: ctx.siteKey } : {}) };
}

function grantOf(body: unknown): EnrolmentGrant {
  const g = (body !== null && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  if (!Number.isSafeInteger(g.sensor_id) || typeof g.certificate !== 'string' || typeof g.ca !== 'string') {
    throw new EnrolError('E_ENROL_ANSWER', 'Home\'s enrolment answer lacks sensor_id, certificate or ca');
  }
  return { sensor_id: g.sensor_id as number, certificate: g.certificate, ca: g.ca };
}

/** Asks for an enrolment code; the operator approves it at home's console. */
export async function requestCode(ctx: EnrolContext): Promise<{ code: string; poll: string }> {
  const res = await ctx.link.request('POST', '/v1/enrol/request', identity(ctx));
  if (res.status !== 202 && res.status !== 200) throw errorOf(res, ctx);
  const b = (res.body ?? {}) as { code?: unknown; poll?: unknown };
  if (typeof b.code !== 'string' || typeof b.poll !== 'string') throw new EnrolError('E_ENROL_ANSWER', 'Home\'s answer to the enrolment request lacks code or poll');
  return { code: b.code, poll: b.poll };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason);
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Polls until the code is approved (the grant), rejected or expired (EnrolError), or `signal` aborts. */
export async function waitForApproval(ctx: EnrolContext, poll: string, opts: { intervalMs?: number; signal?: AbortSignal } = {}): Promise<EnrolmentGrant> {
  let failures = 0;
  for (;;) {
    let res: HomeResponse | undefined;
    try {
      res = await ctx.link.request('GET', `/v1/enrol/request/${encodeURIComponent(poll)}`, undefined, { signal: opts.signal });
      failures = 0;
    } catch (err) {
      if (!(err instanceof HomeTransportError)) throw err;
      if (++failures >= ENROL_POLL_MAX_FAILURES) throw new EnrolError(err.code, `Lost home while waiting for approval: ${err.message}`, undefined, { cause: err });
    }
    if (res !== undefined) {
      if (res.status !== 200) throw errorOf(res, ctx);
      const status = (res.body as { status?: unknown } | undefined)?.status;
      if (status === 'approved') return grantOf(res.body);
      if (status === 'rejected') throw new EnrolError('E_ENROL_REJECTED', 'The enrolment request was rejected at home\'s console');
      if (status === 'expired') throw new EnrolError('E_ENROL_EXPIRED', 'The enrolment code expired before it was approved: ask for a new one');
      if (status !== 'pending') throw new EnrolError('E_ENROL_ANSWER', `Home answered the poll with status ${JSON.stringify(status)}`);
    }
    await sleep(opts.intervalMs ?? ENROL_POLL_INTERVAL_MS, opts.signal);
  }
}

/** The sensors an admin may enrol this machine as. */
export async function listSensors(ctx: EnrolContext, user: string, password: string): Promise<SensorListing[]> {
  const res = await ctx.link.request('POST', '/v1/enrol/sensors', { user, password, ...(ctx.siteKey !== undefined ? { site_key: ctx.siteKey } : {}) });
  if (res.status !== 200) throw errorOf(res, ctx);
  const list = (res.body as { sensors?: unknown } | undefined)?.sensors;
  if (!Array.isArray(list)) throw new EnrolError('E_ENROL_ANSWER', 'Home\'s sensor list answer lacks "sensors"');
  return list.filter((s): s is Record<string, unknown> => s !== null && typeof s === 'object' && Number.isSafeInteger((s as { id?: unknown }).id)).map((s) => ({
    id: s.id as number,
    name: typeof s.name === 'string' ? s.name : '',
    site: typeof s.site === 'string' ? s.site : '',
    enrolled: s.enrolled === true,
  }));
}

/** Enrols as sensor `sensorId` with an admin's user ID and password. */
export async function enrolWithCredentials(ctx: EnrolContext, user: string, password: string, sensorId: number): Promise<EnrolmentGrant> {
  const res = await ctx.link.request('POST', '/v1/enrol/credentials', { user, password, sensor_id: sensorId, ...identity(ctx) });
  if (res.status !== 200) throw errorOf(res, ctx);
  return grantOf(res.body);
}

/**
 * Installs a grant after checking its CA is the one the operator confirmed (the pin used for the
 * enrolment itself): a grant naming another CA is refused, never silently re-pinned.
 */
export function completeEnrolment(creds: SensorCredentials, grant: EnrolmentGrant, homes: readonly string[], pinnedCaPem: string): void {
  const want = fingerprint(pinnedCaPem);
  const got = fingerprint(grant.ca);
  if (got !== want) throw new EnrolError('E_ENROL_CA', `Home's enrolment answer names CA ${got}, not the confirmed ${want}`);
  creds.installEnrolment(grant, homes);
}

/**
 * Identity, push API: a small authenticated HTTP endpoint through which identity products (NAC, SSO,
 * MDM exports) push mappings. Input: `POST /v1/identity` with `Authorization: Bearer <token>` and a JSON
 * body, an array of { ip | mac, hostname?, user?, domain?, ttlSeconds?, release? } (or { mappings: [...] }).
 * Output: observations with source `api` to a sink, and a JSON reply { accepted, rejected: [{ index, error }] }.
 * Listens on loopback unless told otherwise; the token is compared in constant time; bodies are bounded.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { normaliseIp, normaliseMac } from './address.js';
import { MAX_IDENTITY_TEXT_LEN, type IdentityObservation, type IdentitySink } from './observation.js';

/** Largest request body: 10,000 mappings of ~100 bytes. */
export const MAX_API_BODY_BYTES = 1024 * 1024;
/** Mappings accepted per request. */
export const MAX_API_MAPPINGS_PER_REQUEST = 10_000;
/** Shortest token accepted at start: a guessable token would open the table to anyone on the host. */
export const MIN_API_TOKEN_LENGTH = 16;
export const IDENTITY_API_PATH = '/v1/identity';

export interface IdentityApiOptions {
  readonly sink: IdentitySink;
  readonly token: string;
  /** Microseconds since the epoch; the observation time of pushed mappings. */
  readonly nowUs?: () => number;
}

export interface IdentityApiReply {
  readonly accepted: number;
  readonly rejected: readonly { readonly index: number; readonly error: string }[];
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

/** Checks one pushed mapping; returns the observation or an error text. */
export function mappingToObservation(m: unknown, tsUs: number): IdentityObservation | string {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return 'not an object';
  const o = m as Record<string, unknown>;
  for (const k of ['ip', 'mac', 'hostname', 'user', 'domain']) {
    if (o[k] !== undefined && (typeof o[k] !== 'string' || (o[k] as string).length > MAX_IDENTITY_TEXT_LEN)) return `"${k}" must be a string of at most ${MAX_IDENTITY_TEXT_LEN} characters`;
  }
  const ip = o.ip === undefined ? undefined : normaliseIp(o.ip as string);
  const mac = o.mac === undefined ? undefined : normaliseMac(o.mac as string);
  if (o.ip !== undefined && ip === undefined) return `"ip" ${JSON.stringify(o.ip)} is not an IPv4 or IPv6 address`;
  if (o.mac !== undefined && mac === undefined) return `"mac" ${JSON.stringify(o.mac)} is not a MAC address`;
  if (ip === undefined && mac === undefined) return 'needs "ip" or "mac"';
  const release = o.release === true;
  if (!release && o.hostname === undefined && o.user === undefined && o.domain === undefined) return 'needs "hostname", "user" or "domain"';
  let expiresUs: number | undefined;
  if (o.ttlSeconds !== undefined) {
    if (typeof o.ttlSeconds !== 'number' || !Number.isFinite(o.ttlSeconds) || o.ttlSeconds <= 0) return '"ttlSeconds" must be a positive number';
    expiresUs = tsUs + Math.round(o.ttlSeconds * 1_000_000);
  }
  return {
    ...(ip !== undefined ? { ip } : {}),
    ...(mac !== undefined ? { mac } : {}),
    ...(typeof o.hostname === 'string' ? { hostname: o.hostname } : {}),
    ...(typeof o.user === 'string' ? { user: o.user } : {}),
    ...(typeof o.domain === 'string' ? { domain: o.domain } : {}),
    source: 'api',
    tsUs,
    ...(expiresUs !== undefined ? { expiresUs } : {}),
    ...(release ? { release: true } : {}),
  };
}

/** The request listener (exported so a caller can mount it on its own server). */
export function createIdentityApiHandler(opts: IdentityApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  if (opts.token.length < MIN_API_TOKEN_LENGTH) {
    throw new Error(`Cannot start the identity API: the token has ${opts.token.length} characters, at least ${MIN_API_TOKEN_LENGTH} are needed`);
  }
  const want = digest(`Bearer ${opts.token}`);
  const nowUs = opts.nowUs ?? (() => Date.now() * 1000);
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== IDENTITY_API_PATH) return send(res, 404, { error: 'not found' });
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return send(res, 405, { error: 'method not allowed' });
    }
    const auth = req.headers.authorization ?? '';
    if (!timingSafeEqual(digest(auth), want)) {
      req.resume();
      res.setHeader('WWW-Authenticate', 'Bearer');
      return send(res, 401, { error: 'unauthorized' });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_API_BODY_BYTES) {
        tooBig = true;
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (tooBig) return send(res, 413, { error: `body larger than ${MAX_API_BODY_BYTES} bytes` });
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (e) {
        return send(res, 400, { error: `body is not JSON: ${(e as Error).message}` });
      }
      const list = Array.isArray(body) ? body : (body as { mappings?: unknown } | null)?.mappings;
      if (!Array.isArray(list)) return send(res, 400, { error: 'body must be an array of mappings or { "mappings": [...] }' });
      if (list.length > MAX_API_MAPPINGS_PER_REQUEST) return send(res, 413, { error: `more than ${MAX_API_MAPPINGS_PER_REQUEST} mappings` });
      const ts = nowUs();
      const rejected: { index: number; error: string }[] = [];
      let accepted = 0;
      list.forEach((m, index) => {
        const r = mappingToObservation(m, ts);
        if (typeof r === 'string') rejected.push({ index, error: r });
        else {
          opts.sink.observe(r);
          accepted++;
        }
      });
      const reply: IdentityApiReply = { accepted, rejected };
      send(res, rejected.length > 0 && accepted === 0 ? 400 : 200, reply);
    });
    req.on('error', () => res.destroy());
  };
}

/** Starts the API on `host` (default 127.0.0.1) and `port` (0: any free port). */
export function startIdentityApi(opts: IdentityApiOptions & { host?: string; port?: number }): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer(createIdentityApiHandler(opts));
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`Cannot start the identity API on ${opts.host ?? '127.0.0.1'}:${opts.port ?? 0}: ${e.message}`, { cause: e })));
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      resolve({ server, port, close: () => new Promise<void>((r) => server.close(() => r())) });
    });
  });
}

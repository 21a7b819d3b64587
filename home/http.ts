/**
 * HTTP plumbing shared by home's APIs: a small method + path router, JSON bodies read with a byte
 * limit (413 past it), JSON answers, and `HttpError` carrying PROTOCOL.md's `{error, message}`.
 * Input: node:http requests. Output: one answer per request; a handler's unexpected exception is
 * caught here, counted and answered 500 (never a crash, never a stack trace to the client).
 */

import { isIP } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { parseIpv6 } from '../sensor/policy/networks.js';

/** Default body limit for JSON calls: definitions, logins, heartbeats are far smaller. */
export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export interface Reply {
  status: number;
  body?: unknown;
  /** Sent as is (PEM, HTML, PNG, CSV, PDF), with this content type. */
  raw?: { contentType: string; text: string | Buffer };
  headers?: Record<string, string>;
}

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly params: readonly string[];
  /** Peer address as `ip:port` for logs and audit. */
  readonly peer: string;
  /** Who the per-address rate limits count: the peer's IPv4 address, or its IPv6 /64 (rateLimitKey). */
  readonly peerKey: string;
  readonly socket: TLSSocket;
  body(limit?: number): Promise<unknown>;
  /** An `application/x-www-form-urlencoded` body (portal forms): first value of each field. */
  form(limit?: number): Promise<Map<string, string>>;
}

export type Handler = (ctx: RequestContext) => Promise<Reply> | Reply;

interface Route { method: string; pattern: RegExp; handler: Handler }

export class Router {
  private readonly routes: Route[] = [];

  add(method: string, path: string, handler: Handler): void {
    // `:name` segments capture one path segment.
    const pattern = new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[a-z_]+/g, '([^/]+)')}$`);
    this.routes.push({ method, pattern, handler });
  }

  /** The handler and captured segments for a request, a 405 marker, or undefined for 404. */
  match(method: string, path: string): { handler: Handler; params: string[] } | 'method' | undefined {
    let pathMatched = false;
    for (const r of this.routes) {
      const m = r.pattern.exec(path);
      if (m === null) continue;
      pathMatched = true;
      if (r.method === method) return { handler: r.handler, params: m.slice(1).map((s) => safeDecode(s)) };
    }
    return pathMatched ? 'method' : undefined;
  }
}

function safeDecode(s: string): string {
  try { return decodeURIComponent(s); } catch { return s; }
}

/** Reads the whole body up to `limit` bytes and parses it as JSON; HttpError 413 / 400 otherwise. */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new HttpError(413, 'E_TOO_LARGE', `The request body of ${declared} bytes is over the ${limit}-byte limit for this call`);
  }
  const body = await readRawBody(req, limit);
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'E_JSON', `The request body is not JSON: ${(err as Error).message}`);
  }
}

/** Reads a urlencoded form body up to `limit` bytes; 413 past it, 415 for another content type. */
export function readFormBody(req: IncomingMessage, limit: number): Promise<Map<string, string>> {
  const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    req.resume();
    return Promise.reject(new HttpError(415, 'E_CONTENT_TYPE', 'This form must be sent as application/x-www-form-urlencoded'));
  }
  return readRawBody(req, limit).then((buf) => {
    const out = new Map<string, string>();
    for (const [k, v] of new URLSearchParams(buf.toString('utf8'))) if (!out.has(k)) out.set(k, v);
    return out;
  });
}

function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        chunks.length = 0;
        reject(new HttpError(413, 'E_TOO_LARGE', `The request body is over the ${limit}-byte limit for this call`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', (err) => { if (!failed) { failed = true; reject(new HttpError(400, 'E_BODY', `Cannot read the request body: ${err.message}`)); } });
    req.on('end', () => { if (!failed) resolve(Buffer.concat(chunks, size)); });
  });
}

export function sendReply(res: ServerResponse, reply: Reply): void {
  if (res.headersSent) return;
  const headers: Record<string, string> = { 'cache-control': 'no-store', ...(reply.headers ?? {}) };
  if (reply.raw !== undefined) {
    res.writeHead(reply.status, { ...headers, 'content-type': reply.raw.contentType, 'content-length': String(Buffer.byteLength(reply.raw.text)) });
    res.end(reply.raw.text);
  } else if (reply.body === undefined) {
    res.writeHead(reply.status, headers);
    res.end();
  } else {
    const text = JSON.stringify(reply.body);
    res.writeHead(reply.status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) });
    res.end(text);
  }
}

export function errorReply(err: HttpError): Reply {
  return { status: err.status, body: { error: err.code, message: err.message }, headers: err.headers };
}

// ---- small validators for untrusted JSON ----

export function asObject(v: unknown, what = 'the request body'): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, 'E_BODY', `${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

export function str(o: Record<string, unknown>, key: string, opts: { max?: number; optional?: boolean; min?: number } = {}): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) {
    if (opts.optional === true) return undefined;
    throw new HttpError(400, 'E_FIELD', `"${key}" is required`);
  }
  if (typeof v !== 'string') throw new HttpError(400, 'E_FIELD', `"${key}" must be a string`);
  if (opts.max !== undefined && v.length > opts.max) throw new HttpError(400, 'E_FIELD', `"${key}" is longer than ${opts.max} characters`);
  if (opts.min !== undefined && v.length < opts.min) throw new HttpError(400, 'E_FIELD', `"${key}" is shorter than ${opts.min} characters`);
  return v;
}

export function reqStr(o: Record<string, unknown>, key: string, max = 256): string {
  return str(o, key, { max }) as string;
}

export function intParam(text: string | null | undefined, name: string, min: number, max: number): number | undefined {
  if (text === null || text === undefined || text === '') return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new HttpError(400, 'E_QUERY', `"${name}" must be an integer from ${min} to ${max}, not "${text.slice(0, 40)}"`);
  return n;
}

/**
 * The key per-address rate limits count a peer under. An IPv6 host is usually given a whole /64
 * (SLAAC, privacy addresses) and can pick any address in it, so counting per address would let it
 * rotate past every limit (and fill the pending enrolments or the audit log): IPv6 peers count per
 * /64, written as its four groups. IPv4 (also when mapped into IPv6 by a dual-stack socket) counts
 * per address.
 */
export function rateLimitKey(address: string | undefined): string {
  if (address === undefined || address === '') return '?';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  const w = [0, 0, 0, 0];
  if (isIP(address.replace(/%.*$/, '')) !== 6 || !parseIpv6(address, w)) return address;
  const group = (x: number): string => x.toString(16);
  return `${group(w[0] >>> 16)}:${group(w[0] & 0xffff)}:${group(w[1] >>> 16)}:${group(w[1] & 0xffff)}::/64`;
}

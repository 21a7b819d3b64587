/**
 * The sensor's authenticated local API: agents and gateways push data into the running sensor
 * (TLS session keys in NSS key log format, identity mappings) and tools read its status.
 * Input: HTTP requests on a Unix socket (mode 0600: only the sensor's user and root) and,
 * optionally, on a loopback TCP address; every request must carry `Authorization: Bearer <token>`,
 * the token kept in a 0600 file made on first start. Output: JSON answers; the routes' handlers.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import { ensurePrivateDir } from '../store/private-dir.js';

/** Largest request body accepted: a key log of some thousands of sessions, a site's identity export. */
export const API_MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Token length in random bytes (hex-encoded in the file and the header). */
const TOKEN_BYTES = 32;

export interface ApiReply {
  readonly status: number;
  readonly body: unknown;
}

/** A route handler: the request body as text; returns the JSON reply. Throwing gives a 500. */
export type ApiHandler = (body: string) => ApiReply | Promise<ApiReply>;

export interface ApiRoute {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly handler: ApiHandler;
}

export interface LocalApiOptions {
  /** Unix socket path (its directory is created private). */
  readonly socketPath?: string;
  /** `127.0.0.1:PORT` or `[::1]:PORT`: a loopback TCP address as well. */
  readonly listen?: string;
  /** File holding the bearer token; created (0600) with a random token when missing. */
  readonly tokenFile: string;
  readonly routes: readonly ApiRoute[];
}

export class LocalApiError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Reads the API token, making one (0600) when the file does not exist. */
export function loadOrCreateToken(tokenFile: string): string {
  if (!existsSync(tokenFile)) {
    ensurePrivateDir(dirname(tokenFile));
    writeFileSync(tokenFile, `${randomBytes(TOKEN_BYTES).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  }
  const token = readFileSync(tokenFile, 'utf8').trim();
  if (token.length < 32) throw new LocalApiError('E_API_TOKEN', `API token file "${tokenFile}" holds no usable token (at least 32 characters)`);
  return token;
}

/** Parses `127.0.0.1:8080` / `[::1]:8080`; only loopback addresses: the API has no transport encryption. */
export function parseLoopbackAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([0-9.]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (host === undefined || isIP(host) === 0 || !(port >= 0 && port < 65536)) {
    throw new LocalApiError('E_API_LISTEN', `API address "${text}" is not HOST:PORT (e.g. 127.0.0.1:8439)`);
  }
  if (!(host.startsWith('127.') || host === '::1')) {
    throw new LocalApiError('E_API_LISTEN', `API address "${text}" is not a loopback address: the local API is plain HTTP, so it only listens on 127.0.0.0/8 or ::1`);
  }
  return { host, port };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function authorised(req: IncomingMessage, token: Buffer): boolean {
  const h = req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  if (m === null) return false;
  const given = Buffer.from(m[1]);
  return given.length === token.length && timingSafeEqual(given, token);
}

export class LocalApi {
  private readonly servers: Server[] = [];
  private readonly token: Buffer;
  private readonly routes: Map<string, ApiRoute>;

  private constructor(private readonly opts: LocalApiOptions, token: string) {
    this.token = Buffer.from(token);
    this.routes = new Map(opts.routes.map((r) => [`${r.method} ${r.path}`, r]));
  }

  /** Starts listening; rejects with a LocalApiError naming the socket or address on failure. */
  static async start(opts: LocalApiOptions): Promise<LocalApi> {
    const api = new LocalApi(opts, loadOrCreateToken(opts.tokenFile));
    try {
      if (opts.socketPath !== undefined) await api.listenUnix(opts.socketPath);
      if (opts.listen !== undefined) await api.listenTcp(opts.listen);
    } catch (err) {
      await api.close();
      throw err;
    }
    return api;
  }

  private makeServer(): Server {
    const server = createServer((req, res) => void this.handle(req, res));
    // A client that hangs up mid-request or mid-answer (EPIPE, ECONNRESET) ends its connection,
    // never the sensor.
    server.on('connection', (socket) => socket.on('error', () => socket.destroy()));
    server.on('clientError', (_err, socket) => socket.destroy());
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    this.servers.push(server);
    return server;
  }

  private async listenUnix(path: string): Promise<void> {
    ensurePrivateDir(dirname(path));
    // A socket left by a killed sensor would make listen fail with EADDRINUSE.
    if (existsSync(path)) rmSync(path, { force: true });
    const server = this.makeServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new LocalApiError('E_API_LISTEN', `Cannot listen on API socket "${path}": ${(err as Error).message}`, { cause: err })));
      server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600);
  }

  private async listenTcp(address: string): Promise<void> {
    const { host, port } = parseLoopbackAddress(address);
    const server = this.makeServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new LocalApiError('E_API_LISTEN', `Cannot listen on API address "${address}": ${(err as Error).message}`, { cause: err })));
      server.listen(port, host, () => resolve());
    });
  }

  /** The TCP port actually bound (for `:0` in tests). */
  tcpPort(): number | undefined {
    for (const s of this.servers) {
      const a = s.address();
      if (a !== null && typeof a === 'object') return a.port;
    }
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!authorised(req, this.token)) {
      req.resume();
      reply(res, 401, { error: 'missing or wrong bearer token' });
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    const route = this.routes.get(`${req.method} ${path}`);
    if (route === undefined) {
      req.resume();
      reply(res, 404, { error: `no route ${req.method} ${path}` });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    try {
      for await (const c of req as AsyncIterable<Buffer>) {
        size += c.length;
        if (size > API_MAX_BODY_BYTES) {
          tooBig = true;
          break;
        }
        chunks.push(c);
      }
    } catch {
      // The client hung up mid-body (ECONNRESET "aborted"): no one is left to answer. Thrown on,
      // this rejection would reach the event loop (the server's callback cannot await it) and end the sensor.
      req.destroy();
      return;
    }
    if (tooBig) {
      reply(res, 413, { error: `body larger than ${API_MAX_BODY_BYTES} bytes` });
      req.destroy();
      return;
    }
    try {
      const r = await route.handler(Buffer.concat(chunks).toString('utf8'));
      reply(res, r.status, r.body);
    } catch (err) {
      reply(res, 500, { error: (err as Error).message });
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    if (this.opts.socketPath !== undefined) rmSync(this.opts.socketPath, { force: true });
  }
}

/**
 * Test helper: a fake home ingest (node:http on 127.0.0.1, port chosen by the OS) for
 * POST /v1/sensor/captures, and a plain-HTTP HomeTransport over undici for it. The home stores ids
 * in a Set (a repeat is a duplicate, as home/PROTOCOL.md says) with each one's count (a larger count
 * sent again replaces it, as home does), records every batch it receives, and can be scripted to
 * answer a status, hang, or drop the connection after storing the batch.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { HomeTransportError, type HomeRequestOptions, type HomeResponse, type HomeTransport } from '../../sensor/home-client/transport.js';

export type Scripted =
  | { status: number; headers?: Record<string, string>; body?: unknown }
  /** Never answers (until the server closes). */
  | 'hang'
  /** Stores the batch, then drops the connection unanswered: the sensor cannot know it arrived. */
  | 'die';

export class FakeHome {
  readonly stored = new Set<string>();
  /** The count home holds for each stored id. */
  readonly counts = new Map<string, number>();
  /** Ids of every batch received, in order (answered or not). */
  readonly batches: string[][] = [];
  /** Answers for the next requests, in order; then normal service. */
  readonly script: Scripted[] = [];
  /** Answers every request with this status while set. */
  failWith: number | undefined;
  /** Ids home refuses with 400 (a batch holding any of them is refused whole). */
  readonly refuse = new Set<string>();
  /** Ids home drops from a batch it otherwise takes (200), with the code it gives (as home does for
   * a capture it cannot index, e.g. E_CAPTURE_TOO_LARGE). */
  readonly reject = new Map<string, string>();
  /** False: answer as a home older than `rejects` does, counting the dropped ones without naming them. */
  namesRejects = true;
  /** More captures than this in one request: 413. */
  maxBatch = Number.POSITIVE_INFINITY;
  onBatch: ((ids: string[]) => void) | undefined;
  /** Pages received on /v1/sensor/evidence by capture id (decoded), and whether home keeps any. */
  readonly evidence = new Map<string, { contentType: string; body: Buffer }>();
  keepsEvidence = true;
  private server: Server | undefined;
  port = 0;

  async start(port = 0): Promise<this> {
    const server = createServer((req, res) => this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Stops listening and cuts every open connection (a home that dies). */
  async close(): Promise<void> {
    const s = this.server;
    if (s === undefined) return;
    this.server = undefined;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/sensor/evidence') return this.handleEvidence(res, Buffer.concat(chunks));
      if (req.method !== 'POST' || req.url !== '/v1/sensor/captures') return this.answer(res, 404, { error: 'E_NOT_FOUND', message: 'no such call' });
      let ids: string[];
      let captures: { id: string; count: number }[];
      try {
        captures = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { captures: { id: string; count: number }[] }).captures;
        ids = captures.map((c) => c.id);
      } catch {
        return this.answer(res, 400, { error: 'E_JSON', message: 'not JSON' });
      }
      this.batches.push(ids);
      this.onBatch?.(ids);
      const next = this.script.shift();
      if (next === 'hang') return;
      if (next === 'die') {
        for (const { id, count } of captures) {
          this.stored.add(id);
          this.counts.set(id, Math.max(count, this.counts.get(id) ?? 0));
        }
        res.socket?.destroy();
        return;
      }
      if (next !== undefined) return this.answer(res, next.status, next.body ?? { error: 'E_SCRIPTED', message: 'scripted' }, next.headers);
      if (this.failWith !== undefined) return this.answer(res, this.failWith, { error: 'E_FAIL', message: 'failing' });
      if (ids.length > this.maxBatch) return this.answer(res, 413, { error: 'E_TOO_LARGE', message: 'too many captures' });
      if (ids.some((id) => this.refuse.has(id))) return this.answer(res, 400, { error: 'E_BAD_CAPTURE', message: 'capture does not match the schema' });
      let accepted = 0;
      let updated = 0;
      let duplicates = 0;
      const rejects: Array<{ index: number; id: string; error: string; message: string }> = [];
      for (const [index, { id, count }] of captures.entries()) {
        const error = this.reject.get(id);
        if (error !== undefined) rejects.push({ index, id, error, message: `Capture "${id}" refused: ${error}` });
        else if (!this.stored.has(id)) {
          this.stored.add(id);
          this.counts.set(id, count);
          accepted++;
        } else if (count > (this.counts.get(id) ?? 0)) {
          this.counts.set(id, count);
          updated++;
        } else duplicates++;
      }
      const rejected = rejects.length;
      this.answer(res, 200, this.namesRejects ? { accepted, updated, duplicates, rejected, rejects } : { accepted, updated, duplicates, rejected });
    });
  }

  private handleEvidence(res: ServerResponse, raw: Buffer): void {
    if (!this.keepsEvidence) return this.answer(res, 404, { error: 'E_NOT_FOUND', message: 'This home keeps no evidence' });
    const body = JSON.parse(raw.toString('utf8')) as { evidence: Array<{ capture_id: string; content_type: string; body_base64: string }> };
    for (const e of body.evidence) {
      // home keeps a page only for a capture it has
      if (!this.stored.has(e.capture_id)) return this.answer(res, 409, { error: 'E_NO_CAPTURE', message: 'unknown capture' });
      this.evidence.set(e.capture_id, { contentType: e.content_type, body: Buffer.from(e.body_base64, 'base64') });
    }
    this.answer(res, 200, { accepted: body.evidence.length });
  }

  private answer(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }
}

/** HomeTransport over plain HTTP, for loopback tests (the real one is mutual TLS). Adds `headers`. */
export class PlainHttpTransport implements HomeTransport {
  constructor(private readonly base: string) {}

  async request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, opts: HomeRequestOptions = {}): Promise<HomeResponse & { headers: Record<string, string | string[] | undefined> }> {
    try {
      const res = await request(this.base + path, {
        method,
        headers: body !== undefined ? { 'content-type': 'application/json' } : {},
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: opts.signal,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
      });
      const text = await res.body.text();
      let parsed: unknown = text.length > 0 ? text : undefined;
      try {
        if (text.length > 0) parsed = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: res.statusCode, body: parsed, home: this.base, headers: res.headers };
    } catch (err) {
      throw new HomeTransportError('E_HOME_UNREACHABLE', `Cannot reach home "${this.base}": ${(err as Error).message}`, this.base, { cause: err });
    }
  }
}

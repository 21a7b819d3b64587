/**
 * Test support (no tests here): real HTTP/2 exchanges made by Node itself. A node:http2 h2c server and
 * client talk on loopback through the recording proxy of h2-helpers.ts; the result is the bytes of both
 * directions in arrival order plus what the client itself received (to check the server did what we think).
 * `fullExchange`: gzip and br responses, a large body over many DATA frames, concurrent streams, a gzip
 * POST body, server push, 103 Early Hints and trailers. `smallExchange`: one GET (gzip) and one POST.
 */

import http2 from 'node:http2';
import zlib from 'node:zlib';
import { recordThroughProxy, type Recording } from './h2-helpers.js';

export const GZIP_TEXT = 'Safeguarding text served gzip-encoded over HTTP/2.\n'.repeat(40);
export const BR_TEXT = 'Brotli-encoded text that a matcher must see in the clear.\n'.repeat(30);
export const UPLOAD_TEXT = 'name=alice&message=' + 'a message posted by the client, '.repeat(20);
export const PUSHED_CSS = 'body { color: #123456; }\n'.repeat(10);
export const PUSH_PAGE = '<html><link rel="stylesheet" href="/pushed.css"></html>';
export const TRAILER_BODY = 'body followed by trailers';
/** ~311 KB of varied, deterministic text: many DATA frames at the default 16 KiB frame size. */
export const LARGE_BODY = Array.from({ length: 18000 }, (_, i) => `line ${i} ${(i * 2654435761) % 1000003}\n`).join('');

export interface ClientResult {
  path: string;
  status: number;
  body: string;
}

interface Listening {
  port: number;
  close: () => Promise<void>;
}

function listen(onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void): () => Promise<Listening> {
  return async () => {
    const server = http2.createServer();
    server.on('stream', onStream);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  };
}

function readAll(stream: http2.Http2Stream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on('data', (b: Buffer) => parts.push(b));
    stream.on('end', () => resolve(Buffer.concat(parts)));
    stream.on('error', reject);
  });
}

function request(client: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const req = client.request(headers, { endStream: body === undefined });
    let status = 0;
    req.on('response', (h) => { status = Number(h[':status']); });
    readAll(req).then((b) => resolve({ path: String(headers[':path']), status, body: b.toString('latin1') }), reject);
    if (body !== undefined) req.end(body);
  });
}

function serve(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  const path = headers[':path'];
  stream.on('error', () => {});
  switch (path) {
    case '/gzip':
      stream.respond({ ':status': 200, 'content-type': 'text/plain; charset=utf-8', 'content-encoding': 'gzip' });
      stream.end(zlib.gzipSync(GZIP_TEXT));
      return;
    case '/br':
      stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-encoding': 'br' });
      stream.end(zlib.brotliCompressSync(BR_TEXT));
      return;
    case '/large': {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      const all = Buffer.from(LARGE_BODY, 'latin1');
      const step = 50000;
      for (let i = 0; i < all.length; i += step) stream.write(all.subarray(i, i + step));
      stream.end();
      return;
    }
    case '/upload':
      readAll(stream).then((b) => {
        const text = (headers['content-encoding'] === 'gzip' ? zlib.gunzipSync(b) : b).toString('latin1');
        stream.respond({ ':status': 201, 'content-type': 'text/plain' });
        stream.end(`received ${text.length} bytes`);
      }, () => {});
      return;
    case '/push':
      stream.pushStream({ ':path': '/pushed.css' }, (err, push) => {
        if (err) return;
        push.on('error', () => {});
        push.respond({ ':status': 200, 'content-type': 'text/css' });
        push.end(PUSHED_CSS);
      });
      stream.respond({ ':status': 200, 'content-type': 'text/html' });
      stream.end(PUSH_PAGE);
      return;
    case '/trailers':
      stream.additionalHeaders({ ':status': 103, link: '</style.css>; rel=preload' });
      stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc123' }));
      stream.end(TRAILER_BODY);
      return;
    default:
      stream.respond({ ':status': 404 });
      stream.end();
  }
}

export interface Exchange {
  recording: Recording;
  client: ClientResult[];
  pushed: ClientResult[];
}

/** The full scenario: six concurrent streams and one pushed stream. */
export async function fullExchange(): Promise<Exchange> {
  const client: ClientResult[] = [];
  const pushed: ClientResult[] = [];
  const recording = await recordThroughProxy(listen(serve), async (url) => {
    const session = http2.connect(url);
    const pushDone = new Promise<void>((resolve) => {
      session.on('stream', (stream, headers) => {
        readAll(stream).then((b) => {
          pushed.push({ path: String(headers[':path']), status: 200, body: b.toString('latin1') });
          resolve();
        }, () => resolve());
      });
    });
    const results = await Promise.all([
      request(session, { ':path': '/gzip', 'user-agent': 'hark-test/1', 'x-test': 'gzip', cookie: ['a=1', 'b=2'] }),
      request(session, { ':path': '/br', 'accept-encoding': 'br' }),
      request(session, { ':path': '/large' }),
      request(session, { ':method': 'POST', ':path': '/upload', 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' },
        zlib.gzipSync(UPLOAD_TEXT)),
      request(session, { ':path': '/push' }),
      request(session, { ':path': '/trailers' }),
    ]);
    await pushDone;
    client.push(...results);
    await new Promise<void>((resolve) => session.close(() => resolve()));
  });
  return { recording, client, pushed };
}

/** The small scenario for cut-at-every-offset: one GET with a gzip response, then one POST. */
export async function smallExchange(): Promise<Exchange> {
  const client: ClientResult[] = [];
  const recording = await recordThroughProxy(listen(serve), async (url) => {
    const session = http2.connect(url);
    client.push(await request(session, { ':path': '/gzip', 'x-test': 'small' }));
    client.push(await request(session, { ':method': 'POST', ':path': '/upload' }, Buffer.from('q=hello', 'latin1')));
    await new Promise<void>((resolve) => session.close(() => resolve()));
  });
  return { recording, client, pushed: [] };
}

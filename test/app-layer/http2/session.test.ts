import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { Setting } from '../../../sensor/app-layer/http2/frame.js';
import { Counters } from '../../../sensor/events/counters.js';
import { BYPASS } from '../../../sensor/flow/stream.js';
import { MAX_HEADER_LINE_BYTES, MAX_START_LINE_BYTES } from '../../../sensor/app-layer/http/parser.js';
import { Http2Session, MAX_DECODING_STREAMS, MAX_HEADER_BLOCK_BYTES, MAX_OPEN_STREAMS } from '../../../sensor/app-layer/http2/session.js';
import { HPACK_ENTRY_OVERHEAD, MAX_HEADER_LIST_BYTES } from '../../../sensor/app-layer/http2/hpack.js';
import { PARTIAL_BUFFER_MIN_BYTES } from '../../../sensor/app-layer/partial-buffer.js';
import { memoryInUse } from '../../../sensor/events/memuse.js';
import { bytewise, everySplit, FLOW, type Step, type Summary } from '../../helpers/http-recorder.js';
import {
  block, continuation, data, goaway, H2Recorder, headers, hpackInt, opening, PREFACE, pushPromise, requestBlock,
  responseBlock, rstStream, runH2, settings,
} from './h2-helpers.js';

const TEXT = 'Safeguarding text that a matcher must see, whatever the encoding.\n'.repeat(20);

function req(path: string, o: { method?: string; extra?: [string, string][]; id: number; endStream?: boolean; huffman?: boolean }): Buffer {
  return headers(o.id, requestBlock(path, o.extra ?? [], o.method ?? 'GET', { huffman: o.huffman }), { endStream: o.endStream ?? true });
}

function res(id: number, status: number, extra: [string, string][] = [], endStream = false): Buffer {
  return headers(id, responseBlock(status, extra), { endStream });
}

/** Request records without the fields every test would repeat. */
function brief(s: Summary): unknown[] {
  return s.requests.map((r) => [r.index, r.method, r.uri, r.host]);
}

function messageOf(s: Summary, dir: 0 | 1, kind: 'request' | 'response', index: number) {
  const m = s.messages.find((x) => x.dir === dir && x.kind === kind && x.index === index);
  assert.ok(m, `no end notice for ${kind} ${index} in direction ${dir}`);
  return m;
}

test('Http2Session emits a GET, its response paired by stream, the body and both ends', () => {
  const { summary: s, counters, session } = runH2([
    ...opening(),
    [0, req('/index.html?q=1', { id: 1, extra: [['user-agent', 't/1'], ['accept', '*/*']] })],
    [1, Buffer.concat([res(1, 200, [['content-type', 'text/plain'], ['content-length', '5']]), data(1, 'hello', { endStream: true })])],
  ], {}, null);
  assert.equal(s.requests.length, 1);
  const r = s.requests[0] as unknown as Record<string, unknown>;
  assert.deepEqual([r.index, r.method, r.uri, r.version, r.host, r.streamId, r.pushed, r.uriTruncated],
    [0, 'GET', '/index.html?q=1', 'HTTP/2', 'example.com', 1, false, false]);
  assert.deepEqual(r.headers, [['user-agent', 't/1'], ['accept', '*/*']]);
  assert.deepEqual(r.pseudoHeaders, [[':method', 'GET'], [':scheme', 'http'], [':authority', 'example.com'], [':path', '/index.html?q=1']]);
  assert.deepEqual(r.anomalies, []);
  const p = s.responses[0] as unknown as Record<string, unknown>;
  assert.deepEqual([p.index, p.requestIndex, p.status, p.reason, p.version, p.interim, p.streamId], [0, 0, 200, '', 'HTTP/2', false, 1]);
  assert.deepEqual(p.headers, [['content-type', 'text/plain'], ['content-length', '5']]);
  assert.deepEqual(s.order, ['req0', 'end0:0', 'res0', 'end1:0']);
  const body = messageOf(s, 1, 'response', 0);
  assert.equal(body.body, 'hello');
  assert.deepEqual(body.info, {
    bodyBytesWire: 5, bodyBytesDecoded: 5, truncated: false, incomplete: false, gapBytes: 0, encodings: [], decode: 'ok',
    anomalies: [], trailers: undefined,
  });
  assert.equal(session.openStreams, 0);
  assert.equal(counters.get('http2.requests'), 1);
  assert.equal(counters.get('http2.responses'), 1);
  assert.deepEqual(s.events, []);
});

test('Http2Session delivers a POST body across DATA frames (padding removed) before the response', () => {
  const { summary: s } = runH2([
    ...opening(),
    [0, Buffer.concat([
      req('/form', { id: 1, method: 'POST', endStream: false, extra: [['content-type', 'application/x-www-form-urlencoded']] }),
      data(1, 'a=1&b=2', { pad: 10 }),
      data(1, '&c=3'),
      data(1, '', { endStream: true }),
    ])],
    [1, res(1, 201, [], true)],
  ]);
  const m = messageOf(s, 0, 'request', 0);
  assert.equal(m.body, 'a=1&b=2&c=3');
  assert.equal(m.info.bodyBytesWire, 11);
  assert.equal(m.info.incomplete, false);
  assert.deepEqual(s.responses.map((x) => [x.status, x.requestIndex]), [[201, 0]]);
  assert.equal(messageOf(s, 1, 'response', 0).info.bodyBytesWire, 0);
});

test('Http2Session decodes gzip, br and deflate bodies per stream, interleaved', () => {
  const gz = zlib.gzipSync(TEXT);
  const br = zlib.brotliCompressSync(TEXT.toUpperCase());
  const df = zlib.deflateSync(TEXT.slice(0, 300));
  const { summary: s } = runH2([
    ...opening(),
    [0, Buffer.concat([req('/g', { id: 1 }), req('/b', { id: 3 }), req('/d', { id: 5 })])],
    [1, Buffer.concat([
      res(3, 200, [['content-encoding', 'br']]),
      res(1, 200, [['content-encoding', 'gzip']]),
      res(5, 200, [['content-encoding', 'deflate']]),
      data(1, gz.subarray(0, 20)), data(3, br.subarray(0, 7)), data(5, df.subarray(0, 3)),
      data(3, br.subarray(7), { endStream: true }), data(1, gz.subarray(20)),
      data(5, df.subarray(3), { endStream: true }), data(1, '', { endStream: true }),
    ])],
  ]);
  assert.deepEqual(s.responses.map((x) => [x.index, x.requestIndex]), [[0, 1], [1, 0], [2, 2]]);
  const g = messageOf(s, 1, 'response', 1);
  assert.equal(g.body, TEXT);
  assert.deepEqual([g.info.bodyBytesWire, g.info.encodings, g.info.decode], [gz.length, ['gzip'], 'ok']);
  const b = messageOf(s, 1, 'response', 0);
  assert.equal(b.body, TEXT.toUpperCase());
  assert.deepEqual(b.info.encodings, ['br']);
  assert.equal(messageOf(s, 1, 'response', 2).body, TEXT.slice(0, 300));
  assert.deepEqual(s.order.filter((x) => x.startsWith('end1')), ['end1:0', 'end1:2', 'end1:1']);
});

test('Http2Session passes wire bytes when decompression is off, and flags unknown codings', () => {
  const gz = zlib.gzipSync('abc');
  const steps: Step[] = [
    ...opening(),
    [0, Buffer.concat([req('/a', { id: 1 }), req('/b', { id: 3 })])],
    [1, Buffer.concat([
      res(1, 200, [['content-encoding', 'gzip']]), data(1, gz, { endStream: true }),
      res(3, 200, [['content-encoding', 'utf-8']]), data(3, 'plain', { endStream: true }),
    ])],
  ];
  const off = runH2(steps, { decompress: false }).summary;
  assert.equal(messageOf(off, 1, 'response', 0).body, gz.toString('latin1'));
  const on = runH2(steps).summary;
  assert.equal(messageOf(on, 1, 'response', 0).body, 'abc');
  const unknown = messageOf(on, 1, 'response', 1);
  assert.equal(unknown.body, 'plain');
  assert.deepEqual(unknown.info.anomalies, ['http2.content_encoding.unknown']);
});

test('Http2Session joins a header block from HEADERS and CONTINUATION frames', () => {
  const many: [string, string][] = Array.from({ length: 40 }, (_, i) => [`x-h${i}`, `value ${i}`]);
  const blk = requestBlock('/long', many, 'GET', { huffman: true, index: true });
  const a = blk.subarray(0, 50);
  const b = blk.subarray(50, 400);
  const c = blk.subarray(400);
  const { summary: s } = runH2([
    ...opening(),
    [0, Buffer.concat([headers(1, a, { endStream: true, endHeaders: false }), continuation(1, b, false), continuation(1, c, true)])],
    [1, res(1, 204, [], true)],
  ]);
  assert.equal(s.requests[0].uri, '/long');
  assert.deepEqual(s.requests[0].headers, many);
  assert.deepEqual(s.responses.map((x) => x.status), [204]);
  assert.deepEqual(s.events, []);
});

test('Http2Session reports trailers on requests and responses', () => {
  const { summary: s } = runH2([
    ...opening(),
    [0, Buffer.concat([
      req('/up', { id: 1, method: 'POST', endStream: false, extra: [['te', 'trailers']] }),
      data(1, 'payload'),
      headers(1, block([['x-sum', '42']]), { endStream: true }),
    ])],
    [1, Buffer.concat([res(1, 200), data(1, 'ok'), headers(1, block([['grpc-status', '0'], ['grpc-message', '']]), { endStream: true })])],
  ]);
  assert.deepEqual(messageOf(s, 0, 'request', 0).info.trailers, [['x-sum', '42']]);
  const r = messageOf(s, 1, 'response', 0);
  assert.equal(r.body, 'ok');
  assert.deepEqual(r.info.trailers, [['grpc-status', '0'], ['grpc-message', '']]);
  assert.deepEqual(r.info.anomalies, []);
  assert.deepEqual(s.requests[0].anomalies, []); // te: trailers is the one TE allowed
});

test('Http2Session flags trailers without END_STREAM and pseudo-headers in trailers', () => {
  const { summary: s, counters } = runH2([
    ...opening(),
    [0, req('/', { id: 1 })],
    [1, Buffer.concat([res(1, 200), data(1, 'x'), headers(1, block([[':status', '200'], ['x-t', '1']])), data(1, '', { endStream: true })])],
  ]);
  const r = messageOf(s, 1, 'response', 0);
  assert.deepEqual(r.info.anomalies, ['http2.trailers.pseudo_header', 'http2.trailers.no_end_stream']);
  assert.deepEqual(r.info.trailers, [['x-t', '1']]);
  assert.equal(r.info.incomplete, false);
  assert.equal(counters.get('http2.trailers.no_end_stream'), 1);
});

test('Http2Session keeps at most MAX_HEADER_LIST_BYTES of trailers from blocks that never end the stream', () => {
  // A peer may repeat trailer blocks without END_STREAM for as long as the stream is open: each used to be
  // appended (by copying the whole list) without bound.
  const field: [string, string] = ['x-pad', 'v'.repeat(1000)];
  const fieldBytes = field[0].length + field[1].length + HPACK_ENTRY_OVERHEAD;
  const blocks = Math.ceil(MAX_HEADER_LIST_BYTES / fieldBytes) + 50;
  const trailerFrames: Buffer[] = [];
  for (let k = 0; k < blocks; k++) trailerFrames.push(headers(1, block([field])));
  const { summary: s, counters } = runH2([
    ...opening(),
    [0, req('/', { id: 1 })],
    [1, Buffer.concat([res(1, 200), data(1, 'x'), ...trailerFrames, headers(1, block([['x-last', '1']]), { endStream: true })])],
  ], {}, null);
  const r = messageOf(s, 1, 'response', 0);
  const kept = Math.floor(MAX_HEADER_LIST_BYTES / fieldBytes);
  assert.equal(r.info.trailers?.length, kept);
  assert.ok(r.info.trailers?.every((f) => f[0] === 'x-pad'));
  // Each anomaly is named once on the message, counted at every block.
  assert.deepEqual(r.info.anomalies, ['http2.trailers.no_end_stream', 'http2.trailers.too_large']);
  assert.equal(counters.get('http2.trailers.no_end_stream'), blocks);
  assert.equal(counters.get('http2.trailers.too_large'), blocks - kept + 1);
  assert.equal(r.info.incomplete, false);
});

test('Http2Session cuts cookie crumbs joined past MAX_HEADER_LINE_BYTES', () => {
  // One 4,000-byte crumb in the dynamic table, then named again by one-byte indexed fields: the join made a
  // new string of every reference, kept with the head while the stream is open.
  const crumb = `k=${'v'.repeat(3998)}`;
  const first = block([['cookie', crumb]], { index: true });
  const again = Buffer.alloc(63, 0x80 | 62); // dynamic index 62: the crumb just added
  const { summary: s, counters } = runH2([
    ...opening(),
    [0, headers(1, Buffer.concat([requestBlock('/', []), first, again]), { endStream: true })],
    [1, res(1, 204, [], true)],
  ], {}, null);
  const cookie = s.requests[0].headers.filter((f) => f[0] === 'cookie');
  assert.equal(cookie.length, 1);
  assert.equal(cookie[0][1].length, MAX_HEADER_LINE_BYTES);
  assert.ok(cookie[0][1].startsWith(`${crumb}; ${crumb}; `));
  assert.deepEqual(s.requests[0].anomalies, ['http2.header.cookie_too_long']);
  assert.equal(counters.get('http2.header.cookie_too_long'), 1);
});

test('Http2Session emits interim 1xx responses and then the final one, all paired with the request', () => {
  const { summary: s } = runH2([
    ...opening(),
    [0, req('/upload', { id: 1, method: 'PUT', endStream: false, extra: [['expect', '100-continue']] })],
    [1, res(1, 100)],
    [0, data(1, 'body', { endStream: true })],
    [1, Buffer.concat([res(1, 103, [['link', '</a.css>; rel=preload']]), res(1, 200), data(1, 'done', { endStream: true })])],
  ]);
  assert.deepEqual(s.responses.map((x) => [x.index, x.requestIndex, x.status, x.interim]), [[0, 0, 100, true], [1, 0, 103, true], [2, 0, 200, false]]);
  assert.deepEqual(s.order, ['req0', 'res0', 'end1:0', 'end0:0', 'res1', 'end1:1', 'res2', 'end1:2']);
  assert.equal(messageOf(s, 1, 'response', 2).body, 'done');
  assert.equal(messageOf(s, 0, 'request', 0).body, 'body');
});

test('Http2Session ends a reset stream incomplete and ignores its frames in flight', () => {
  const { summary: s, counters, session } = runH2([
    ...opening(),
    [0, Buffer.concat([req('/big', { id: 1 }), req('/small', { id: 3 })])],
    [1, Buffer.concat([res(1, 200), data(1, 'part one,')])],
    [0, rstStream(1, 8)],
    [1, Buffer.concat([data(1, 'part two', { endStream: true }), res(3, 200), data(3, 'fine', { endStream: true })])],
  ], {}, null);
  const cut = messageOf(s, 1, 'response', 0);
  assert.equal(cut.body, 'part one,');
  assert.equal(cut.info.incomplete, true);
  assert.equal(messageOf(s, 1, 'response', 1).body, 'fine');
  assert.equal(counters.get('http2.stream_reset'), 1);
  assert.equal(counters.get('http2.message_incomplete'), 1);
  assert.equal(counters.get('http2.frame.closed_stream'), 1);
  assert.equal(session.openStreams, 0);
});

test('Http2Session ends every open message incomplete at the end of the flow', () => {
  const gz = zlib.gzipSync(TEXT);
  const { summary: s, counters } = runH2([
    ...opening(),
    [0, Buffer.concat([req('/done', { id: 1 }), req('/cut', { id: 3 }), req('/upload', { id: 5, method: 'POST', endStream: false }), data(5, 'half')])],
    [1, Buffer.concat([res(1, 200, [], true), res(3, 200, [['content-encoding', 'gzip']]), data(3, gz.subarray(0, gz.length - 10))])],
  ], {}, 'fin');
  assert.equal(messageOf(s, 1, 'response', 0).info.incomplete, false);
  const cut = messageOf(s, 1, 'response', 1);
  assert.equal(cut.info.incomplete, true);
  assert.equal(cut.body, TEXT.slice(0, cut.body.length));
  assert.ok(cut.body.length > 0);
  const up = messageOf(s, 0, 'request', 2);
  assert.deepEqual([up.body, up.info.incomplete], ['half', true]);
  assert.equal(counters.get('http2.message_incomplete'), 2);
  // Every record that started has exactly one end notice.
  assert.equal(s.messages.length, s.requests.length + s.responses.length);
});

test('Http2Session pairs a pushed response with its PUSH_PROMISE request', () => {
  const { summary: s, counters } = runH2([
    ...opening(),
    [0, req('/page', { id: 1 })],
    [1, Buffer.concat([
      pushPromise(1, 2, requestBlock('/style.css')),
      res(1, 200), data(1, '<html/>', { endStream: true }),
      res(2, 200, [['content-type', 'text/css']]), data(2, 'body{}', { endStream: true }),
    ])],
  ]);
  const pushed = s.requests[1] as unknown as Record<string, unknown>;
  assert.deepEqual([pushed.index, pushed.uri, pushed.pushed, pushed.streamId, pushed.host], [1, '/style.css', true, 2, 'example.com']);
  assert.deepEqual(s.responses.map((x) => [x.index, x.requestIndex]), [[0, 0], [1, 1]]);
  assert.deepEqual(s.order, ['req0', 'end0:0', 'req1', 'end1:1', 'res0', 'end1:0', 'res1', 'end1:1']);
  assert.equal(messageOf(s, 1, 'response', 1).body, 'body{}');
  assert.equal(counters.get('http2.pushed_requests'), 1);
});

test('Http2Session refuses a push from the client and a push of an odd stream', () => {
  const { summary: s, counters } = runH2([
    ...opening(),
    [0, Buffer.concat([req('/', { id: 1 }), pushPromise(1, 2, requestBlock('/x'))])],
    [1, pushPromise(1, 3, requestBlock('/y'))],
  ]);
  assert.deepEqual(brief(s), [[0, 'GET', '/', 'example.com']]);
  assert.equal(counters.get('http2.push_promise.invalid'), 2);
});

test('Http2Session keeps many interleaved streams apart', () => {
  const n = 20;
  const reqs: Buffer[] = [];
  const heads: Buffer[] = [];
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const id = 2 * i + 1;
    reqs.push(req(`/r${i}`, { id, huffman: i % 2 === 0 }));
    heads.push(res(id, 200, [['x-i', String(i)]]));
  }
  for (let round = 0; round < 3; round++) {
    for (let i = n - 1; i >= 0; i--) parts.push(data(2 * i + 1, `[${i}.${round}]`, { endStream: round === 2 }));
  }
  const { summary: s, session } = runH2([...opening(), [0, Buffer.concat(reqs)], [1, Buffer.concat([...heads, ...parts])]], {}, null);
  assert.equal(s.requests.length, n);
  for (let i = 0; i < n; i++) {
    assert.equal(s.requests[i].uri, `/r${i}`);
    const response = s.responses[i];
    assert.equal(response.requestIndex, i);
    assert.deepEqual(response.headers, [['x-i', String(i)]]);
    assert.equal(messageOf(s, 1, 'response', i).body, `[${i}.0][${i}.1][${i}.2]`);
  }
  assert.equal(session.openStreams, 0);
});

test('Http2Session joins cookie crumbs and flags malformed heads', () => {
  const { summary: s, counters } = runH2([
    ...opening(),
    [0, Buffer.concat([
      headers(1, block([[':method', 'GET'], [':scheme', 'https'], [':authority', 'a.example'], [':path', '/'], ['cookie', 'a=1'], ['x', 'y'], ['cookie', 'b=2']]), { endStream: true }),
      headers(3, block([[':method', 'GET'], ['x-early', '1'], [':path', '/p'], [':scheme', 'https'], [':path', '/q'], [':bogus', 'z'], ['Upper', 'v'], ['connection', 'close'], ['host', 'b.example'], [':authority', 'a.example']]), { endStream: true }),
      headers(5, block([[':method', 'GET'], [':authority', 'x']]), { endStream: true }),
    ])],
  ]);
  assert.deepEqual(s.requests[0].headers, [['cookie', 'a=1; b=2'], ['x', 'y']]);
  assert.deepEqual(s.requests[0].anomalies, []);
  const bad = s.requests[1];
  assert.equal(bad.uri, '/p');
  assert.equal(bad.host, 'a.example');
  assert.deepEqual(bad.anomalies, [
    'http2.header.pseudo_after_regular', 'http2.header.pseudo_duplicate', 'http2.header.pseudo_unknown',
    'http2.header.uppercase_name', 'http2.header.connection_specific', 'http2.authority_host_mismatch',
  ]);
  assert.deepEqual(s.requests[2].anomalies, ['http2.header.pseudo_missing']);
  assert.equal(s.requests[2].uri, '');
  assert.equal(counters.get('http2.header.pseudo_missing'), 1);
});

test('Http2Session takes the host from the Host header without :authority, and CONNECT from :authority', () => {
  const { summary: s } = runH2([
    ...opening(),
    [0, Buffer.concat([
      headers(1, block([[':method', 'GET'], [':scheme', 'http'], [':path', '/'], ['host', 'h.example:8080']]), { endStream: true }),
      headers(3, block([[':method', 'CONNECT'], [':authority', 'proxy.example:443']]), { endStream: false }),
    ])],
    [1, Buffer.concat([res(3, 200), data(3, 'tunnelled bytes')])],
  ]);
  assert.deepEqual(brief(s), [[0, 'GET', '/', 'h.example:8080'], [1, 'CONNECT', 'proxy.example:443', 'proxy.example:443']]);
  assert.deepEqual(s.requests[1].anomalies, []);
  assert.equal(messageOf(s, 1, 'response', 0).body, 'tunnelled bytes');
});

test('Http2Session flags a missing or invalid :status', () => {
  const { summary: s } = runH2([
    ...opening(),
    [0, Buffer.concat([req('/a', { id: 1 }), req('/b', { id: 3 })])],
    [1, Buffer.concat([headers(1, block([['x', '1']]), { endStream: true }), headers(3, block([[':status', '2000']]), { endStream: true })])],
  ]);
  assert.deepEqual(s.responses.map((x) => [x.status, x.anomalies]), [
    [0, ['http2.header.pseudo_missing']], [0, ['http2.response.invalid_status']],
  ]);
});

test('Http2Session refuses a reused or even client stream id and DATA before HEADERS', () => {
  const { summary: s, counters } = runH2([
    ...opening(),
    [0, Buffer.concat([req('/5', { id: 5 }), req('/3', { id: 3 }), req('/2', { id: 2 }), req('/7', { id: 7 })])],
    [1, Buffer.concat([data(5, 'early'), res(5, 200, [], true)])],
  ]);
  assert.deepEqual(s.requests.map((r) => r.uri), ['/5', '/7']);
  assert.equal(counters.get('http2.stream_id_reuse'), 1);
  assert.equal(counters.get('http2.frame.stream_id_invalid'), 1);
  assert.equal(counters.get('http2.data.before_headers'), 1);
  assert.equal(messageOf(s, 1, 'response', 0).body, '');
});

test('Http2Session follows the HPACK table size and frame size each side announces to the other', () => {
  const bigBlock = Buffer.concat([hpackInt(8192, 5, 0x20), requestBlock('/', [['x', 'y'.repeat(5000)]], 'GET', { index: true })]);
  const client: Step = [0, Buffer.concat([PREFACE, settings(), headers(1, bigBlock, { endStream: true })])];
  // The server allows an 8 KiB table and 64 KiB frames for what the client sends.
  const allowed = runH2([[1, settings([[Setting.HEADER_TABLE_SIZE, 8192], [Setting.MAX_FRAME_SIZE, 65536]])], client]);
  assert.deepEqual(allowed.summary.events, []);
  assert.equal(allowed.summary.requests[0].headers[0][1].length, 5000);
  // Without it the size update exceeds the limit: a compression error.
  const refused = runH2([[1, settings()], client]);
  assert.deepEqual(refused.summary.events, [{ dir: 0, kind: 'invalid', reason: 'not_http' }]);
  assert.equal(refused.counters.get('http2.hpack.size_update_too_large'), 1);
  // A 20000-byte frame only passes once the peer raised SETTINGS_MAX_FRAME_SIZE.
  const big = headers(1, requestBlock('/', [['x', 'z'.repeat(20000)]]), { endStream: true });
  assert.equal(runH2([[1, settings([[Setting.MAX_FRAME_SIZE, 65536]])], [0, Buffer.concat([PREFACE, settings(), big])]]).summary.requests.length, 1);
  assert.equal(runH2([[1, settings()], [0, Buffer.concat([PREFACE, settings(), big])]]).counters.get('http2.frame.too_large'), 1);
});

test('Http2Session stops on a bad client preface (HTTP/1 bytes) with an invalid event', () => {
  const { summary: s, counters, rec } = runH2([[0, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], [1, Buffer.from('HTTP/1.1 200 OK\r\n\r\n')]]);
  assert.deepEqual(s.events, [{ dir: 0, kind: 'invalid', reason: 'not_http' }]);
  assert.deepEqual(rec.details, ['bad_preface']);
  assert.deepEqual(s.requests, []);
  assert.equal(counters.get('http2.invalid_client_magic'), 1);
  assert.equal(counters.get('http2.parser_invalid'), 1);
});

/** An exchange with one finished stream and one open stream (request sent, response body under way). */
function halfway(): Step[] {
  return [
    ...opening(),
    [0, Buffer.concat([req('/done', { id: 1 }), req('/open', { id: 3 })])],
    [1, Buffer.concat([res(1, 200), data(1, 'complete', { endStream: true }), res(3, 200), data(3, 'first part;')])],
  ];
}

/** After the connection stops: everything open ended incomplete, nothing later is parsed, in either direction. */
function assertStopped(steps: Step[], detail: string, dir: 0 | 1): void {
  const after: Step[] = [
    [1, Buffer.concat([data(3, 'never seen', { endStream: true })])],
    [0, req('/later', { id: 5 })],
  ];
  const { summary: s, counters, rec, session } = runH2([...steps, ...after]);
  assert.deepEqual(rec.details, [detail]);
  assert.deepEqual(s.events, [{ dir, kind: 'invalid', reason: detail === 'gap' ? 'gap' : 'not_http' }]);
  assert.deepEqual(s.requests.map((r) => r.uri), ['/done', '/open']);
  const done = messageOf(s, 1, 'response', 0);
  assert.deepEqual([done.body, done.info.incomplete], ['complete', false]);
  const open = messageOf(s, 1, 'response', 1);
  assert.deepEqual([open.body, open.info.incomplete], ['first part;', true]);
  assert.equal(s.messages.length, s.requests.length + s.responses.length);
  assert.equal(session.isStopped, true);
  assert.equal(session.openStreams, 0);
  assert.equal(counters.get('http2.parser_invalid'), 1);
}

test('Http2Session stops both directions on a reassembly gap', () => {
  assertStopped([...halfway(), ['gap', 1, 100]], 'gap', 1);
  const { counters } = runH2([...halfway(), ['gap', 0, 5]]);
  assert.equal(counters.get('http2.gap'), 1);
});

test('Http2Session stops on a frame larger than the peer allows', () => {
  assertStopped([...halfway(), [1, data(3, 'x'.repeat(16385))]], 'frame_too_large', 1);
});

test('Http2Session stops on an HPACK index out of range (the table cannot resync)', () => {
  assertStopped([...halfway(), [0, headers(5, Buffer.from([0x82, 0xff, 0x7f]), { endStream: true })]], 'hpack', 0);
  const { counters } = runH2([...halfway(), [0, headers(5, Buffer.from([0x82, 0xff, 0x7f]))]]);
  assert.equal(counters.get('http2.hpack.index_out_of_range'), 1);
});

test('Http2Session stops on CONTINUATION without HEADERS', () => {
  assertStopped([...halfway(), [1, continuation(3, Buffer.from([0x88]))]], 'continuation_unexpected', 1);
});

test('Http2Session stops on a header block above MAX_HEADER_BLOCK_BYTES', () => {
  const chunk = Buffer.alloc(16000, 0x82);
  const frames: Buffer[] = [headers(5, chunk, { endHeaders: false })];
  for (let n = chunk.length; n <= MAX_HEADER_BLOCK_BYTES; n += chunk.length) frames.push(continuation(5, chunk, false));
  assertStopped([...halfway(), [0, Buffer.concat(frames)]], 'header_block_too_large', 0);
});

test('Http2Session drops the oldest stream beyond MAX_OPEN_STREAMS, counted', () => {
  const total = MAX_OPEN_STREAMS + 5;
  const reqs: Buffer[] = [];
  for (let i = 0; i < total; i++) reqs.push(req(`/s${i}`, { id: 2 * i + 1, endStream: false }));
  const { summary: s, counters, session } = runH2([...opening(), [0, Buffer.concat(reqs)], [0, data(2 * (total - 1) + 1, 'last', { endStream: true })]], {}, null);
  assert.equal(s.requests.length, total);
  assert.equal(counters.get('http2.too_many_streams'), 5);
  assert.equal(session.openStreams, MAX_OPEN_STREAMS);
  // The five oldest ended incomplete when dropped; the newest completed normally.
  assert.deepEqual(s.messages.slice(0, 5).map((m) => [m.index, m.info.incomplete]), [[0, true], [1, true], [2, true], [3, true], [4, true]]);
  assert.deepEqual(s.messages.slice(5).map((m) => [m.index, m.body, m.info.incomplete]), [[total - 1, 'last', false]]);
});

test('Http2Session stops a decompression bomb through the DecoderChain limits', () => {
  const bomb = zlib.brotliCompressSync(Buffer.alloc(16 * 1024 * 1024), { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } });
  const { summary: s, counters } = runH2([
    ...opening(),
    [0, req('/bomb', { id: 1 })],
    [1, Buffer.concat([res(1, 200, [['content-encoding', 'br']]), data(1, bomb, { endStream: true })])],
  ]);
  const m = messageOf(s, 1, 'response', 0);
  assert.equal(m.info.decode, 'ratio_limit');
  assert.equal(m.info.truncated, true);
  assert.ok(m.info.bodyBytesDecoded < 16 * 1024 * 1024);
  assert.equal(m.info.bodyBytesWire, bomb.length);
  assert.equal(counters.get('decompress.ratio_limit'), 1);
  assert.equal(counters.get('http2.body_truncated'), 1);
});

test('Http2Session truncates a body at bodyLimitBytes', () => {
  const { summary: s, counters } = runH2([
    ...opening(),
    [0, req('/a', { id: 1 })],
    [1, Buffer.concat([res(1, 200), data(1, 'abcdef'), data(1, 'ghij', { endStream: true })])],
  ], { bodyLimitBytes: 8 });
  const m = messageOf(s, 1, 'response', 0);
  assert.deepEqual([m.body, m.info.truncated, m.info.bodyBytesWire, m.info.incomplete], ['abcdefgh', true, 10, false]);
  assert.equal(counters.get('http2.body_truncated'), 1);
});

/** A small exchange using most features: CONTINUATION, padding, push, trailers, 1xx, reset, GOAWAY. */
const SMALL: Step[] = [
  [0, Buffer.concat([PREFACE, settings([[Setting.ENABLE_PUSH, 1]])])],
  [1, settings([[Setting.MAX_CONCURRENT_STREAMS, 100]])],
  [0, Buffer.concat([
    headers(1, requestBlock('/a', [['x-long', 'v'.repeat(30)]], 'GET', { huffman: true, index: true }).subarray(0, 20), { endHeaders: false, priority: true, endStream: true }),
    continuation(1, requestBlock('/a', [['x-long', 'v'.repeat(30)]], 'GET', { huffman: true, index: true }).subarray(20)),
    req('/b', { id: 3, method: 'POST', endStream: false }),
    data(3, 'q=1', { pad: 2, endStream: true }),
    req('/c', { id: 5 }),
  ])],
  [1, Buffer.concat([
    res(1, 103),
    pushPromise(1, 2, requestBlock('/p.js')),
    res(1, 200, [['content-encoding', 'gzip']]),
    data(1, zlib.gzipSync('zipped')),
    headers(1, block([['x-trailer', 't']]), { endStream: true }),
    res(2, 200), data(2, 'pushed', { endStream: true }),
    res(3, 200), data(3, 'posted', { endStream: true }),
    res(5, 200), data(5, 'reset me'), rstStream(5, 2),
    goaway(5),
  ])],
];

test('Http2Session gives the same records however a small exchange is cut', () => {
  const base = runH2(SMALL).summary;
  assert.deepEqual(base.requests.map((r) => r.uri), ['/a', '/b', '/c', '/p.js']);
  assert.equal(messageOf(base, 1, 'response', 1).body, 'zipped');
  assert.deepEqual(messageOf(base, 1, 'response', 1).info.trailers, [['x-trailer', 't']]);
  assert.equal(messageOf(base, 0, 'request', 1).body, 'q=1');
  assert.equal(messageOf(base, 1, 'response', 4).info.incomplete, true);
  assert.deepEqual(base.events, []);
  for (const { label, steps } of everySplit(SMALL)) assert.deepEqual(runH2(steps).summary, base, label);
  assert.deepEqual(runH2(bytewise(SMALL)).summary, base);
});

test('Http2Session.adoptUpgradedRequest pairs the h2c upgrade response on stream 1 and continues the numbering', () => {
  const counters = new Counters();
  const rec = new H2Recorder();
  const session = new Http2Session(FLOW, rec, counters);
  session.adoptUpgradedRequest(4, 3);
  session.data(1, Buffer.concat([settings(), res(1, 200), data(1, 'upgraded answer', { endStream: true })]), 1);
  session.data(0, Buffer.concat([PREFACE, settings(), req('/next', { id: 3 })]), 2);
  session.end('fin', 3);
  const s = rec.summary;
  assert.deepEqual(s.responses.map((r) => [r.index, r.requestIndex, r.status]), [[3, 4, 200]]);
  assert.deepEqual(s.requests.map((r) => [r.index, r.uri]), [[5, '/next']]);
  assert.equal(rec.body(1, 'response', 3), 'upgraded answer');
  assert.deepEqual(s.events, []);
});

test('Http2Session cuts a :path longer than the HTTP/1 start-line bound, flagged', () => {
  const long = '/' + 'p'.repeat(MAX_START_LINE_BYTES + 10);
  const { summary: s, counters } = runH2([...opening(), [1, settings([[Setting.MAX_FRAME_SIZE, 65536]])], [0, req(long, { id: 1 })]]);
  assert.equal(s.requests[0].uri, long.slice(0, MAX_START_LINE_BYTES));
  assert.equal(s.requests[0].uriTruncated, true);
  assert.deepEqual(s.requests[0].anomalies, ['http2.path.too_long']);
  assert.equal(counters.get('http2.path.too_long'), 1);
});

test('Http2Session decodes with the buffered fallback as well (forceBufferedDecode)', () => {
  const gz = zlib.gzipSync(TEXT);
  const { summary: s } = runH2([
    ...opening(),
    [0, req('/g', { id: 1 })],
    [1, Buffer.concat([res(1, 200, [['content-encoding', 'gzip']]), data(1, gz.subarray(0, 9)), data(1, gz.subarray(9), { endStream: true })])],
  ], { forceBufferedDecode: true });
  assert.equal(messageOf(s, 1, 'response', 0).body, TEXT);
});

test('Http2Session survives seeded random mutations of an exchange: no throw, every message ended once', () => {
  let seed = 0x2545f491;
  const rand = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const flat = SMALL.map((s) => [s[0], Buffer.from(s[1] as Uint8Array)] as [0 | 1, Buffer]);
  let invalid = 0;
  for (let round = 0; round < 500; round++) {
    const steps: Step[] = flat.map(([dir, b]) => {
      const copy = Buffer.from(b);
      const edits = rand(4);
      for (let e = 0; e < edits; e++) copy[rand(copy.length)] = rand(256);
      return [dir, copy];
    });
    const { summary: s, session } = runH2(steps);
    assert.equal(s.messages.length, s.requests.length + s.responses.length, `round ${round}`);
    assert.equal(session.openStreams, 0);
    if (session.isStopped) invalid++;
  }
  // Mutations must have reached the parsers (some connections became unparseable), not all of them.
  assert.ok(invalid > 0 && invalid < 500, `invalid ${invalid}`);
});

/** The two openings with SETTINGS_MAX_FRAME_SIZE at its largest: each side may send frames of up to 16 MiB. */
function largeFrameOpening(): Step[] {
  const s = settings([[Setting.MAX_FRAME_SIZE, 16777215]]);
  return [[0, Buffer.concat([PREFACE, s])], [1, s]];
}

test('Http2Session holds buffers in proportion to the bytes received, not to the frame lengths announced', () => {
  // Each flow: both sides announce a 256.5 KiB HEADERS frame and send one byte of it; the client also
  // leaves a header block open and announces a large CONTINUATION. That used to hold 525 KiB a flow.
  const announce = (type: number, id: number) => {
    const h = Buffer.alloc(10);
    h.writeUIntBE(256 * 1024 + 512, 0, 3);
    h[3] = type;
    h.writeUInt32BE(id, 5);
    return h;
  };
  const flows = 300;
  let held = 0;
  let received = 0;
  for (let i = 0; i < flows; i++) {
    const steps: Step[] = [...largeFrameOpening(), [1, announce(1, 1)]];
    if (i % 2 === 0) steps.push([0, announce(1, 1)]);
    else steps.push([0, Buffer.concat([headers(1, requestBlock('/open'), { endHeaders: false }), announce(9, 1)])]);
    const { session } = runH2(steps, {}, null);
    assert.equal(session.isStopped, false);
    held += session.heldBytes;
    received += 2;
  }
  assert.ok(held <= flows * 3 * PARTIAL_BUFFER_MIN_BYTES, `${held} bytes held for ${received} payload bytes in ${flows} flows`);
});

test('Http2Session gives the same records for large header blocks whole or cut every few bytes', () => {
  const big = 'v'.repeat(150_000);
  const resBlock = responseBlock(200, [['x-large', big], ['content-type', 'text/plain']]);
  const steps: Step[] = [
    ...largeFrameOpening(),
    [0, req('/large', { id: 1, extra: [['x-large', big]] })],
    [1, Buffer.concat([
      headers(1, resBlock.subarray(0, 70_000), { endHeaders: false }), continuation(1, resBlock.subarray(70_000, 71_000), false),
      continuation(1, resBlock.subarray(71_000)), data(1, 'body', { endStream: true }),
    ])],
  ];
  const whole = runH2(steps);
  assert.deepEqual(whole.summary.events, []);
  assert.equal(whole.summary.requests[0].headers[0][1], big);
  assert.deepEqual(whole.summary.responses[0].headers, [['x-large', big], ['content-type', 'text/plain']]);
  assert.equal(messageOf(whole.summary, 1, 'response', 0).body, 'body');
  for (const every of [3, 1448]) {
    const cut: Step[] = [];
    for (const step of steps) {
      if (step[0] === 'gap') continue;
      for (let at = 0; at < step[1].length; at += every) cut.push([step[0], step[1].subarray(at, at + every)]);
    }
    const r = runH2(cut, {}, null);
    assert.ok(r.session.heldBytes <= 2 * 16384, `cut every ${every}: ${r.session.heldBytes} bytes still held`);
    r.session.end('fin', 1e9);
    assert.deepEqual(r.summary, whole.summary, `cut every ${every}`);
  }
});

test(`Http2Session decodes at most MAX_DECODING_STREAMS (${MAX_DECODING_STREAMS}) bodies at once; others end truncated, counted`, () => {
  const br = zlib.brotliCompressSync(TEXT);
  const extra = 4;
  const n = MAX_DECODING_STREAMS + extra;
  const reqs: Buffer[] = [];
  const starts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    reqs.push(req(`/z${i}`, { id: 2 * i + 1 }));
    starts.push(res(2 * i + 1, 200, [['content-encoding', 'br']]), data(2 * i + 1, br.subarray(0, 10)));
  }
  const steps: Step[] = [...opening(), [0, Buffer.concat(reqs)], [1, Buffer.concat(starts)]];
  const open = runH2(steps, {}, null);
  assert.equal(open.session.decodingStreams, MAX_DECODING_STREAMS);
  assert.equal(open.counters.get('http2.too_many_decoding_streams'), extra);
  // The first to start decode to the end; the later ones end truncated, 'aborted', their wire bytes counted.
  // A slot freed by a body that ended is taken by the next body to start.
  const late = n;
  const { summary: s, session, counters } = runH2([
    ...steps,
    [1, data(1, br.subarray(10), { endStream: true })],
    [1, data(2 * (n - 1) + 1, br.subarray(10), { endStream: true })],
    [0, req('/late', { id: 2 * late + 1 })],
    [1, Buffer.concat([res(2 * late + 1, 200, [['content-encoding', 'br']]), data(2 * late + 1, br, { endStream: true })])],
  ], {}, null);
  const first = messageOf(s, 1, 'response', 0);
  assert.deepEqual([first.body, first.info.truncated, first.info.decode], [TEXT, false, 'ok']);
  const refused = messageOf(s, 1, 'response', n - 1);
  assert.deepEqual([refused.body, refused.info.truncated, refused.info.decode, refused.info.bodyBytesWire], ['', true, 'aborted', br.length]);
  const lateOne = messageOf(s, 1, 'response', n);
  assert.deepEqual([lateOne.body, lateOne.info.truncated, lateOne.info.decode], [TEXT, false, 'ok']);
  assert.equal(counters.get('http2.too_many_decoding_streams'), extra);
  assert.equal(session.decodingStreams, MAX_DECODING_STREAMS - 1);
  session.end('fin', 1e9);
  assert.equal(session.decodingStreams, 0);
});

test('Http2Session holds decoder memory for MAX_DECODING_STREAMS bodies a connection, not for every open stream', () => {
  // Many flows of MAX_OPEN_STREAMS streams whose responses send the first bytes of a brotli body and stall:
  // each chain holds a 16 KiB output buffer (counted in `external`) and native state (not counted), so the
  // 256 streams of a flow used to hold 4 MB of output buffers alone.
  const br = zlib.brotliCompressSync(TEXT);
  const reqs: Buffer[] = [];
  const starts: Buffer[] = [];
  for (let i = 0; i < MAX_OPEN_STREAMS; i++) {
    reqs.push(req(`/z${i}`, { id: 2 * i + 1 }));
    starts.push(res(2 * i + 1, 200, [['content-encoding', 'br']]), data(2 * i + 1, br.subarray(0, 10)));
  }
  const steps: Step[] = [...opening(), [0, Buffer.concat(reqs)], [1, Buffer.concat(starts)]];
  const flows = 20;
  const before = process.memoryUsage().external;
  const sessions: Http2Session[] = [];
  for (let i = 0; i < flows; i++) sessions.push(runH2(steps, {}, null).session);
  const grown = process.memoryUsage().external - before;
  // 20 x 16 x 16 KiB = 5 MiB now; 20 x 256 x 16 KiB = 80 MiB before.
  assert.ok(grown < 30 * 1024 * 1024, `external memory grew ${(grown / 1048576).toFixed(1)} MiB for ${flows} flows`);
  for (const s of sessions) assert.equal(s.decodingStreams, MAX_DECODING_STREAMS);
  for (const s of sessions) s.end('fin', 1e9);
});

test('Http2Session asks for bypass once the connection is no longer parsed (invalid or gap), not before', () => {
  const counters = new Counters();
  const s = new Http2Session(FLOW, new H2Recorder(), counters);
  assert.equal(s.data(0, Buffer.concat([PREFACE, settings()]), 1), undefined);
  assert.equal(s.data(1, settings(), 2), undefined);
  assert.equal(s.data(0, req('/a', { id: 1 }), 3), undefined);
  // A frame larger than the peer allows: the connection cannot be followed any more.
  assert.equal(s.data(1, data(1, 'x'.repeat(16385)), 4), BYPASS);
  assert.equal(s.data(0, req('/b', { id: 3 }), 5), BYPASS);
  assert.equal(s.gap(0, 10, 6), BYPASS);
  const g = new Http2Session(FLOW, new H2Recorder(), counters);
  assert.equal(g.data(0, Buffer.concat([PREFACE, settings()]), 1), undefined);
  assert.equal(g.gap(1, 100, 2), BYPASS);
  assert.equal(g.data(0, req('/a', { id: 1 }), 3), BYPASS);
});

test('Http2Session charges a frame and a header block parked half-way to app_layer.memuse, and gives them back at the end or a gap', () => {
  // the server parks half of a 200 KB HEADERS frame; the client leaves a 50 KB header block open and
  // parks 20 KB of a CONTINUATION
  const frameHead = (length: number, type: number, flags: number, id: number): Buffer => {
    const h = Buffer.alloc(9);
    h.writeUIntBE(length, 0, 3);
    h[3] = type;
    h[4] = flags;
    h.writeUInt32BE(id, 5);
    return h;
  };
  const open = Buffer.concat([frameHead(50_000, 1, 0, 1), Buffer.alloc(50_000, 0x41)]);
  const steps: Step[] = [
    ...largeFrameOpening(),
    [1, Buffer.concat([frameHead(200_000, 1, 4, 1), Buffer.alloc(100_000, 0x41)])],
    [0, Buffer.concat([open, frameHead(60_000, 9, 4, 1), Buffer.alloc(20_000, 0x41)])],
  ];
  for (const close of ['end', 'gap'] as const) {
    const { session, counters } = runH2(steps, {}, null);
    assert.equal(session.isStopped, false);
    assert.ok(session.heldBytes >= 170_000, `${session.heldBytes} held`);
    assert.equal(memoryInUse(counters), session.heldBytes, `${close}: parked, the gauge shows what is held`);
    if (close === 'end') session.end('timeout', 9);
    else session.gap(1, 10, 9);
    assert.equal(session.heldBytes, 0);
    assert.equal(memoryInUse(counters), 0, `${close}: all of it given back`);
  }
});

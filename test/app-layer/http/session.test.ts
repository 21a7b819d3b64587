import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { MAX_HEADERS, MAX_START_LINE_BYTES } from '../../../sensor/app-layer/http/parser.js';
import { HttpSession, MAX_PENDING_REQUESTS, headerValue, type HttpSink } from '../../../sensor/app-layer/http/session.js';
import { Counters } from '../../../sensor/events/counters.js';
import { DEFAULT_DECODED_LIMIT_BYTES } from '../../../sensor/normalize/decompress.js';
import { retainedBytes } from '../../helpers/heap.js';
import { FLOW, bytewise, everySplit, latin1, run, type Step, type Summary } from '../../helpers/http-recorder.js';

const TEXT = 'Safeguarding text that a matcher must see, whatever the encoding.\n'.repeat(20);
const gz = (s: string | Buffer): Buffer => zlib.gzipSync(typeof s === 'string' ? latin1(s) : s);
const br = (s: string | Buffer): Buffer => zlib.brotliCompressSync(typeof s === 'string' ? latin1(s) : s);
const cat = (...parts: (string | Buffer)[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? latin1(p) : p)));

/** `body` as chunked transfer coding with the given chunk sizes (the rest in one last chunk). */
function chunked(body: Buffer, sizes: number[], ext = ''): Buffer {
  const parts: Buffer[] = [];
  let pos = 0;
  for (const n of [...sizes, body.length]) {
    const piece = body.subarray(pos, Math.min(body.length, pos + n));
    if (piece.length === 0) continue;
    parts.push(latin1(piece.length.toString(16) + ext + '\r\n'), piece, latin1('\r\n'));
    pos += piece.length;
    if (pos >= body.length) break;
  }
  parts.push(latin1('0\r\n\r\n'));
  return Buffer.concat(parts);
}

interface Scenario {
  name: string;
  steps: Step[];
  check(s: Summary): void;
}

const gzipped = gz(TEXT);

const SCENARIOS: Scenario[] = [
  {
    name: 'GET without body, response with Content-Length',
    steps: [
      [0, latin1('GET /index.html?q=1 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: t/1\r\n\r\n')],
      [1, latin1('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello')],
    ],
    check(s) {
      assert.equal(s.requests.length, 1);
      const r = s.requests[0];
      assert.deepEqual([r.method, r.uri, r.version, r.host, r.index], ['GET', '/index.html?q=1', 'HTTP/1.1', 'www.example.com', 0]);
      assert.deepEqual(r.headers, [['Host', 'www.example.com'], ['User-Agent', 't/1']]);
      assert.deepEqual(s.responses.map((x) => [x.status, x.reason, x.requestIndex, x.interim]), [[200, 'OK', 0, false]]);
      assert.equal(s.messages.length, 2);
      assert.equal(s.messages[1].body, 'hello');
      assert.equal(s.messages[1].info.incomplete, false);
      assert.equal(s.messages[0].info.bodyBytesWire, 0);
    },
  },
  {
    name: 'POST with Content-Length body',
    steps: [
      [0, latin1('POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\na=1&b=2&c=3')],
      [1, latin1('HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n')],
    ],
    check(s) {
      assert.equal(s.messages[0].body, 'a=1&b=2&c=3');
      assert.equal(s.messages[0].info.bodyBytesWire, 11);
      assert.equal(s.responses[0].status, 201);
    },
  },
  {
    name: 'chunked request with chunk extensions and trailers',
    steps: [
      [0, latin1('POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;name=val\r\nhello\r\n6 ; ext="a;b"\r\n world\r\n0\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n')],
      [1, latin1('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')],
    ],
    check(s) {
      assert.equal(s.messages[0].body, 'hello world');
      assert.deepEqual(s.messages[0].info.trailers, [['X-Trailer', 'yes'], ['X-Other', '2']]);
      assert.equal(s.messages[0].info.incomplete, false);
      assert.equal(s.messages[1].body, 'ok');
    },
  },
  {
    name: 'chunked gzip response (cuts fall inside chunk-size lines and compressed data)',
    steps: [
      [0, latin1('GET /g HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n')],
      [1, cat('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n', chunked(gzipped, [10, 1, 40]))],
    ],
    check(s) {
      const m = s.messages[1];
      assert.equal(m.body, TEXT);
      assert.deepEqual(m.info.encodings, ['gzip']);
      assert.equal(m.info.bodyBytesWire, gzipped.length);
      assert.equal(m.info.bodyBytesDecoded, TEXT.length);
      assert.equal(m.info.truncated, false);
      assert.equal(m.info.decode, 'ok');
    },
  },
  {
    name: 'close-delimited response ends at FIN',
    steps: [
      [0, latin1('GET /old HTTP/1.0\r\n\r\n')],
      [1, latin1('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this, ')],
      [1, latin1('until the server closes\r\nHTTP/1.1 200 OK\r\n')],
    ],
    check(s) {
      assert.equal(s.messages[1].body, 'all of this, until the server closes\r\nHTTP/1.1 200 OK\r\n');
      assert.equal(s.messages[1].info.incomplete, false);
      assert.equal(s.responses.length, 1);
    },
  },
  {
    name: '100 Continue, then the final response to the same request',
    steps: [
      [0, latin1('POST /p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n')],
      [1, latin1('HTTP/1.1 100 Continue\r\n\r\n')],
      [0, latin1('data')],
      [1, latin1('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')],
    ],
    check(s) {
      assert.deepEqual(s.responses.map((r) => [r.index, r.status, r.requestIndex, r.interim]), [[0, 100, 0, true], [1, 200, 0, false]]);
      assert.equal(s.messages.find((m) => m.dir === 0)?.body, 'data');
      assert.equal(s.messages.find((m) => m.dir === 1 && m.index === 1)?.body, 'ok');
    },
  },
  {
    name: 'pipelined HEAD, 204 and 304 carry no body; the next response is parsed',
    steps: [
      [0, latin1('HEAD /h HTTP/1.1\r\nHost: h\r\n\r\nGET /n HTTP/1.1\r\nHost: h\r\n\r\nGET /m HTTP/1.1\r\nIf-None-Match: "x"\r\n\r\nGET /last HTTP/1.1\r\n\r\n')],
      [1, latin1('HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Encoding: gzip\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast')],
    ],
    check(s) {
      assert.deepEqual(s.requests.map((r) => [r.method, r.uri]), [['HEAD', '/h'], ['GET', '/n'], ['GET', '/m'], ['GET', '/last']]);
      assert.deepEqual(s.responses.map((r) => [r.status, r.requestIndex]), [[200, 0], [204, 1], [304, 2], [200, 3]]);
      const res = s.messages.filter((m) => m.dir === 1);
      assert.deepEqual(res.map((m) => m.body), ['', '', '', 'last']);
      assert.equal(res[0].info.bodyBytesWire, 0);
      assert.ok(res.every((m) => !m.info.incomplete));
    },
  },
  {
    name: 'header quirks: bare LF, obsolete folding, no space after colon, case-insensitive names, empty value',
    steps: [
      [0, latin1('GET /q HTTP/1.1\nHost: example.com\nX-Folded: first\r\n  second\r\n\tthird\r\ncontent-length:3\r\nX-Empty:\r\n\r\nabc')],
      [1, cat(`HTTP/1.1 200 OK\r\nCONTENT-ENCODING:gzip\r\ncontent-LENGTH:${gzipped.length}\r\n\r\n`, gzipped)],
    ],
    check(s) {
      const r = s.requests[0];
      assert.deepEqual(r.headers, [['Host', 'example.com'], ['X-Folded', 'first second third'], ['content-length', '3'], ['X-Empty', '']]);
      assert.equal(headerValue(r.headers, 'x-folded'), 'first second third');
      assert.deepEqual(r.anomalies, ['http.header.obsolete_folding', 'http.header.obsolete_folding', 'http.line.bare_lf']);
      assert.equal(s.messages[0].body, 'abc');
      assert.equal(s.messages[1].body, TEXT);
      assert.deepEqual(s.responses[0].anomalies, []);
    },
  },
  {
    name: 'conflicting Content-Length uses the first; Transfer-Encoding beats Content-Length',
    steps: [
      [0, latin1('POST /a HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n')],
      [0, latin1('POST /c HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\nGET /d HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nhi')],
    ],
    check(s) {
      assert.deepEqual(s.requests.map((r) => r.uri), ['/a', '/b', '/c', '/d']);
      assert.deepEqual(s.requests[0].anomalies, ['http.content_length.conflict']);
      assert.deepEqual(s.requests[2].anomalies, ['http.transfer_encoding.with_content_length']);
      assert.deepEqual(s.requests[3].anomalies, []);
      assert.deepEqual(s.messages.map((m) => m.body), ['abc', '', 'xyz', 'hi']);
    },
  },
  {
    name: 'deflate raw, deflate zlib-wrapped, br and x-gzip responses on one connection',
    steps: [
      [0, latin1('GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\nGET /4 HTTP/1.1\r\n\r\n')],
      [1, cat(`HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: ${zlib.deflateRawSync(latin1(TEXT)).length}\r\n\r\n`, zlib.deflateRawSync(latin1(TEXT)))],
      [1, cat(`HTTP/1.1 200 OK\r\nContent-Encoding: Deflate\r\nContent-Length: ${zlib.deflateSync(latin1(TEXT)).length}\r\n\r\n`, zlib.deflateSync(latin1(TEXT)))],
      [1, cat(`HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: ${br(TEXT).length}\r\n\r\n`, br(TEXT))],
      [1, cat(`HTTP/1.1 200 OK\r\nContent-Encoding: x-gzip\r\nContent-Length: ${gzipped.length}\r\n\r\n`, gzipped)],
    ],
    check(s) {
      const res = s.messages.filter((m) => m.dir === 1);
      assert.equal(res.length, 4);
      for (const m of res) {
        assert.equal(m.body, TEXT);
        assert.equal(m.info.decode, 'ok');
      }
      assert.deepEqual(res.map((m) => m.info.encodings), [['deflate'], ['deflate'], ['br'], ['x-gzip']]);
    },
  },
  {
    name: 'stacked Content-Encoding "gzip, br" decodes br then gzip',
    steps: [
      [0, latin1('GET /s HTTP/1.1\r\n\r\n')],
      [1, cat(`HTTP/1.1 200 OK\r\nContent-Encoding: gzip, br\r\nContent-Length: ${br(gzipped).length}\r\n\r\n`, br(gzipped))],
    ],
    check(s) {
      assert.equal(s.messages[1].body, TEXT);
      assert.deepEqual(s.messages[1].info.encodings, ['gzip', 'br']);
    },
  },
  {
    name: 'CONNECT 200 opens a tunnel: nothing after it is parsed',
    steps: [
      [0, cat('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', Buffer.from([0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5]))],
      [1, cat('HTTP/1.1 200 Connection established\r\n\r\n', Buffer.from([0x16, 3, 3, 0, 2, 9, 9]))],
      [0, latin1('GET /not-http-any-more HTTP/1.1\r\n\r\n')],
      [1, latin1('HTTP/1.1 200 OK\r\n\r\n')],
    ],
    check(s) {
      assert.deepEqual(s.requests.map((r) => [r.method, r.uri, r.host]), [['CONNECT', 'example.com:443', 'example.com:443']]);
      assert.equal(s.responses.length, 1);
      assert.deepEqual(s.events, [{ dir: 1, kind: 'tunnel', reason: 'connect' }]);
      assert.equal(s.messages.length, 2);
    },
  },
  {
    name: 'CONNECT answered 407: the held client bytes are parsed, then a second CONNECT tunnels',
    steps: [
      [0, latin1('CONNECT a.example:443 HTTP/1.1\r\n\r\nGET http://b.example/x HTTP/1.1\r\nHost: ignored\r\n\r\n')],
      [1, latin1('HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\nno!')],
      [1, latin1('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx')],
      [0, latin1('CONNECT a.example:443 HTTP/1.1\r\nProxy-Authorization: Basic eDp5\r\n\r\n')],
      [1, latin1('HTTP/1.1 200 OK\r\n\r\n\x16\x03\x03')],
    ],
    check(s) {
      assert.deepEqual(s.requests.map((r) => [r.method, r.host]), [['CONNECT', 'a.example:443'], ['GET', 'b.example'], ['CONNECT', 'a.example:443']]);
      assert.deepEqual(s.responses.map((r) => [r.status, r.requestIndex]), [[407, 0], [200, 1], [200, 2]]);
      assert.deepEqual(s.events, [{ dir: 1, kind: 'tunnel', reason: 'connect' }]);
    },
  },
  {
    name: '101 Switching Protocols stops both directions',
    steps: [
      [0, latin1('GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')],
      [1, cat('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', Buffer.from([0x81, 5, 104, 101, 108, 108, 111]))],
      [0, Buffer.from([0x81, 0x85, 1, 2, 3, 4, 105, 103, 111, 104, 110])],
    ],
    check(s) {
      assert.equal(s.requests.length, 1);
      assert.deepEqual(s.responses.map((r) => [r.status, r.interim]), [[101, false]]);
      assert.deepEqual(s.events, [{ dir: 1, kind: 'tunnel', reason: 'upgrade' }]);
    },
  },
];

for (const sc of SCENARIOS) {
  test(`HttpSession: ${sc.name}`, () => {
    const { summary, counters } = run(sc.steps);
    sc.check(summary);
    assert.equal(counters.get('http.body_truncated'), 0);
  });

  test(`HttpSession gives the same records cut at every byte offset: ${sc.name}`, () => {
    const expected = run(sc.steps).summary;
    for (const { label, steps } of everySplit(sc.steps)) {
      assert.deepEqual(run(steps).summary, expected, label);
    }
    assert.deepEqual(run(bytewise(sc.steps)).summary, expected, 'byte by byte');
  });
}

test('HttpSession pairs pipelined responses in order and stamps each request with its first byte', () => {
  const { summary, rec } = run([
    [0, latin1('GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGE')],
    [0, latin1('T /c HTTP/1.1\r\n\r\n')],
    [1, latin1('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb')],
    [1, latin1('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc')],
  ]);
  assert.deepEqual(summary.responses.map((r) => r.requestIndex), [0, 1, 2]);
  assert.deepEqual(summary.messages.filter((m) => m.dir === 1).map((m) => m.body), ['a', 'b', 'c']);
  const ts = [...rec.tsOf.values()];
  assert.deepEqual(ts.slice(0, 3), [1001, 1001, 1001]); // /c began in the first packet
  assert.equal(ts[3], 1003);
});

test('HttpSession resyncs at the next request line after a gap in a request head, counting http.gap_resync', () => {
  const { summary, counters } = run([
    [0, latin1('GET /1 HTTP/1.1\r\nHost: a\r\n')],
    ['gap', 0, 50],
    [0, latin1('X-Rest: 1\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok')],
  ]);
  assert.deepEqual(summary.requests.map((r) => r.uri), ['/2']);
  assert.equal(summary.messages[0].body, 'ok');
  assert.equal(counters.get('http.gap_resync'), 1);
  assert.equal(counters.get('http.head.incomplete'), 1);
  assert.deepEqual(summary.events, [{ dir: 0, kind: 'resync', reason: 'gap' }]);
});

test('HttpSession resyncs at a status line after a gap in a chunked body; the cut message is incomplete', () => {
  const { summary, counters } = run([
    [0, latin1('GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n')],
    [1, latin1('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n')],
    ['gap', 1, 300],
    [1, latin1('ld\r\n0\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope')],
  ]);
  const res = summary.messages.filter((m) => m.dir === 1);
  assert.equal(res[0].body, 'hello');
  assert.equal(res[0].info.incomplete, true);
  assert.deepEqual(summary.responses.map((r) => [r.status, r.requestIndex]), [[200, 0], [404, 1]]);
  assert.equal(res[1].body, 'nope');
  assert.equal(counters.get('http.gap_resync'), 1);
});

test('HttpSession keeps Content-Length framing across a gap inside an identity body and reports the hole', () => {
  const { summary, counters } = run([
    [0, latin1('GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n')],
    [1, latin1('HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n01234')],
    ['gap', 1, 10],
    [1, latin1('fghijHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')],
  ]);
  const res = summary.messages.filter((m) => m.dir === 1);
  assert.equal(res[0].body, '01234fghij');
  assert.equal(res[0].gapCalls, 1);
  assert.equal(res[0].info.gapBytes, 10);
  assert.equal(res[0].info.incomplete, true);
  assert.equal(res[0].info.truncated, false);
  assert.equal(res[1].body, 'ok');
  assert.equal(counters.get('http.gap_resync'), 0);
});

test('HttpSession stops decoding at a gap inside a compressed body (truncated) and parses the next response', () => {
  let seed = 12345;
  const noise = Buffer.from(Array.from({ length: 5000 }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24)));
  const wire = gz(noise);
  assert.ok(wire.length > 4000);
  const { summary, counters } = run([
    [0, latin1('GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n')],
    [1, cat(`HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${wire.length}\r\n\r\n`, wire.subarray(0, 1000))],
    ['gap', 1, 1000],
    [1, cat(wire.subarray(2000), 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')],
  ]);
  const res = summary.messages.filter((m) => m.dir === 1);
  assert.equal(res[0].info.truncated, true);
  assert.equal(res[0].info.decode, 'aborted');
  assert.equal(res[0].info.bodyBytesWire, wire.length - 1000);
  assert.equal(res[1].body, 'ok');
  assert.equal(counters.get('http.body_truncated'), 1);
});

test('HttpSession picks up a server stream that starts mid-body (gap first) at the next status line', () => {
  const { summary, counters } = run([
    [0, latin1('GET /1 HTTP/1.1\r\n\r\n')],
    ['gap', 1, 1000],
    [1, latin1('tail of an earlier body\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')],
  ]);
  assert.deepEqual(summary.responses.map((r) => r.status), [200]);
  assert.equal(summary.messages[1].body, 'ok');
  assert.equal(counters.get('http.gap_resync'), 1);
});

test('HttpSession resync ignores body lines that are not start lines, also when a candidate is cut', () => {
  const steps: Step[] = [
    [0, latin1('GET /1 HTTP/1.1\r\n\r\n')],
    ['gap', 1, 10],
    [1, latin1('HTTP is great\r\nHTTP/1.1 20x\r\nGET / HTTP/1.1\r\nHTTP/1.')],
    [1, latin1('1 206 Partial Content\r\nContent-Length: 1\r\n\r\nz')],
  ];
  const { summary } = run(steps);
  assert.deepEqual(summary.responses.map((r) => [r.status, r.reason]), [[206, 'Partial Content']]);
  for (const { label, steps: cut } of everySplit(steps)) assert.deepEqual(run(cut).summary, summary, label);
});

test('HttpSession resyncs after a garbage status line between responses (not the first message)', () => {
  const { summary, counters } = run([
    [0, latin1('GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n')],
    [1, latin1('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nXextra garbage\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nY')],
  ]);
  assert.deepEqual(summary.messages.filter((m) => m.dir === 1).map((m) => m.body), ['X', 'Y']);
  assert.equal(counters.get('http.response.invalid_line'), 1);
  assert.equal(counters.get('http.resync'), 1);
  assert.deepEqual(summary.events, [{ dir: 1, kind: 'resync', reason: 'invalid_line' }]);
});

test('HttpSession stops a 100 MiB gzip bomb at the body limit, counts http.body_truncated, keeps the framing', () => {
  const block = zlib.deflateRawSync(Buffer.alloc(1 << 20), { level: 9, finishFlush: zlib.constants.Z_FULL_FLUSH });
  const bomb = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), ...Array<Buffer>(100).fill(block), Buffer.from([3, 0, 0, 0, 0, 0, 0, 0, 0, 0])]);
  const steps: Step[] = [[0, latin1('GET /bomb HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n')]];
  const response = cat(`HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${bomb.length}\r\n\r\n`, bomb, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  for (let i = 0; i < response.length; i += 1448) steps.push([1, response.subarray(i, i + 1448)]);
  let delivered = 0;
  const { summary, counters } = run(steps);
  const res = summary.messages.filter((m) => m.dir === 1);
  delivered = res[0].body.length;
  assert.equal(delivered, DEFAULT_DECODED_LIMIT_BYTES);
  assert.equal(res[0].info.bodyBytesDecoded, DEFAULT_DECODED_LIMIT_BYTES);
  assert.equal(res[0].info.truncated, true);
  assert.equal(res[0].info.decode, 'output_limit');
  assert.equal(res[0].info.bodyBytesWire, bomb.length);
  assert.equal(counters.get('http.body_truncated'), 1);
  assert.equal(counters.get('decompress.output_limit'), 1);
  assert.equal(res[1].body, 'ok');
});

/** br of a gzip member of "hello" then 64 MiB of zeros: labelled `gzip, br`, the zeros are the gzip layer's trailing data. */
async function stackedBomb(): Promise<Buffer> {
  const enc = zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5, [zlib.constants.BROTLI_PARAM_LGWIN]: 24 } });
  const parts: Buffer[] = [];
  enc.on('data', (d: Buffer) => parts.push(d));
  const done = new Promise((resolve) => enc.on('end', resolve));
  enc.write(gz('hello'));
  const zeros = Buffer.alloc(1 << 20);
  for (let i = 0; i < 64; i++) enc.write(zeros);
  enc.end();
  await done;
  return Buffer.concat(parts);
}

test('HttpSession stops a "gzip, br" bomb whose br layer feeds trailing data at the ratio limit, then decodes the next response', async () => {
  const bomb = await stackedBomb();
  const honest = br(gz(TEXT));
  for (const framing of ['content-length', 'chunked'] as const) {
    const frame = (body: Buffer): Buffer => framing === 'chunked'
      ? cat('Transfer-Encoding: chunked\r\n\r\n', chunked(body, [1000]))
      : cat(`Content-Length: ${body.length}\r\n\r\n`, body);
    const response = cat(
      'HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip, br\r\n', frame(bomb),
      'HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip, br\r\n', frame(honest),
    );
    const steps: Step[] = [[0, latin1('GET /bomb HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n')]];
    for (let i = 0; i < response.length; i += 1448) steps.push([1, response.subarray(i, i + 1448)]);
    const { summary, counters } = run(steps);
    const res = summary.messages.filter((m) => m.dir === 1);
    assert.equal(res.length, 2, framing);
    assert.equal(res[0].body, 'hello', framing);
    assert.equal(res[0].info.decode, 'ratio_limit', framing);
    assert.equal(res[0].info.truncated, true, framing);
    assert.equal(res[0].info.incomplete, false, framing);
    assert.equal(res[0].info.bodyBytesWire, bomb.length, framing);
    assert.equal(counters.get('decompress.ratio_limit'), 1, framing);
    assert.equal(counters.get('http.body_truncated'), 1, framing);
    assert.equal(res[1].body, TEXT, framing);
    assert.equal(res[1].info.decode, 'ok', framing);
    assert.deepEqual(summary.responses.map((r) => [r.status, r.requestIndex]), [[200, 0], [200, 1]], framing);
  }
});

test('HttpSession bodyLimitBytes truncates identity bodies, counted once per message', () => {
  const { summary, counters } = run([
    [0, latin1('POST /big HTTP/1.1\r\nContent-Length: 100\r\n\r\n')],
    [0, latin1('x'.repeat(60))],
    [0, latin1('y'.repeat(40) + 'GET /next HTTP/1.1\r\n\r\n')],
  ], { bodyLimitBytes: 10 });
  assert.equal(summary.messages[0].body, 'xxxxxxxxxx');
  assert.equal(summary.messages[0].info.truncated, true);
  assert.equal(summary.messages[0].info.bodyBytesWire, 100);
  assert.equal(counters.get('http.body_truncated'), 1);
  assert.deepEqual(summary.requests.map((r) => r.uri), ['/big', '/next']);
});

test('HttpSession flags corrupt compressed bodies, stops decoding them and parses on', () => {
  const { summary, counters } = run([
    [0, latin1('GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n')],
    [1, latin1('HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 12\r\n\r\nnot gzip!!!!HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')],
  ]);
  const res = summary.messages.filter((m) => m.dir === 1);
  assert.equal(res[0].body, '');
  assert.equal(res[0].info.decode, 'corrupt');
  assert.equal(res[0].info.truncated, true);
  assert.deepEqual(res[0].info.anomalies, ['http.content_encoding.decode_failed']);
  assert.equal(counters.get('decompress.corrupt'), 1);
  assert.equal(res[1].body, 'ok');
});

test('HttpSession passes bodies with unknown or mislabelled encodings through as they are, with an anomaly', () => {
  const { summary, counters } = run([
    [0, latin1('GET /1 HTTP/1.1\r\n\r\n')],
    [1, latin1('HTTP/1.1 200 OK\r\nContent-Encoding: utf-8\r\nContent-Length: 5\r\n\r\nplain')],
  ]);
  assert.equal(summary.messages[1].body, 'plain');
  assert.equal(counters.get('http.content_encoding.unknown'), 1);
  assert.deepEqual(summary.messages[1].info.encodings, ['utf-8']);
});

test('HttpSession with decompress: false delivers de-chunked wire bytes', () => {
  const { summary } = run([
    [0, latin1('GET /1 HTTP/1.1\r\n\r\n')],
    [1, cat('HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n', chunked(gzipped, [7]))],
  ], { decompress: false });
  assert.ok(latin1(summary.messages[1].body).equals(gzipped));
});

test('HttpSession decodes a request body sent with Content-Encoding: gzip', () => {
  const body = gz('name=john dauny mladshiy\n');
  const { summary } = run([[0, cat(`POST /hi.php HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: ${body.length}\r\n\r\n`, body)]]);
  assert.equal(summary.messages[0].body, 'name=john dauny mladshiy\n');
});

test('HttpSession decodes "Transfer-Encoding: gzip, chunked" after de-chunking', () => {
  const { summary } = run([
    [0, latin1('GET /1 HTTP/1.1\r\n\r\n')],
    [1, cat('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', chunked(gzipped, [33]))],
  ]);
  assert.equal(summary.messages[1].body, TEXT);
  assert.deepEqual(summary.messages[1].info.encodings, ['gzip']);
});

test('HttpSession marks a close-delimited body incomplete when the flow ends by RST', () => {
  const steps: Step[] = [[0, latin1('GET / HTTP/1.1\r\n\r\n')], [1, latin1('HTTP/1.1 200 OK\r\n\r\npartial')]];
  assert.equal(run(steps, {}, 'rst').summary.messages[1].info.incomplete, true);
  assert.equal(run(steps, {}, 'fin').summary.messages[1].info.incomplete, false);
});

test('HttpSession ends a Content-Length body cut by the flow end as incomplete, and counts a cut head', () => {
  const { summary, counters } = run([
    [0, latin1('GET / HTTP/1.1\r\n\r\nGET /cut HTTP/1.1\r\nHo')],
    [1, latin1('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')],
  ]);
  assert.equal(summary.messages[1].body, 'abc');
  assert.equal(summary.messages[1].info.incomplete, true);
  assert.equal(counters.get('http.head.incomplete'), 1);
  assert.equal(summary.requests.length, 1);
});

test('HttpSession gives up on a flow whose client does not speak HTTP, with one event', () => {
  const { summary, counters } = run([
    [0, Buffer.from([0x16, 3, 1, 0, 0x50, 1, 0, 0, 0x4c, 3, 3, 10, 13, 10])],
    [0, latin1('GET / HTTP/1.1\r\n\r\n')],
    [1, latin1('HTTP/1.1 200 OK\r\n\r\n')],
  ]);
  assert.equal(summary.requests.length, 0);
  assert.equal(summary.responses.length, 0);
  assert.deepEqual(summary.events, [{ dir: 0, kind: 'invalid', reason: 'not_http' }]);
  assert.equal(counters.get('http.parser_invalid'), 1);
});

test('HttpSession answers a response with no request pending with requestIndex -1 and an anomaly', () => {
  const { summary, counters } = run([[1, latin1('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')]]);
  assert.equal(summary.responses[0].requestIndex, -1);
  assert.deepEqual(summary.responses[0].anomalies, ['http.response.unmatched']);
  assert.equal(counters.get('http.response.unmatched'), 1);
});

test('HttpSession drops the oldest pending request past MAX_PENDING_REQUESTS, counted', () => {
  const reqs = 'GET /x HTTP/1.1\r\n\r\n'.repeat(MAX_PENDING_REQUESTS + 6);
  const { summary, counters } = run([[0, latin1(reqs)], [1, latin1('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')]]);
  assert.equal(counters.get('http.pending_requests_overflow'), 6);
  assert.equal(summary.responses[0].requestIndex, 6);
});

test('HttpSession treats the HTTP/2 prior-knowledge preface as a tunnel', () => {
  const { summary } = run([[0, cat('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', Buffer.from([0, 0, 18, 4, 0, 0, 0, 0, 0]))]]);
  assert.deepEqual(summary.requests.map((r) => [r.method, r.version]), [['PRI', 'HTTP/2.0']]);
  assert.deepEqual(summary.events, [{ dir: 0, kind: 'tunnel', reason: 'http2' }]);
});

test('HttpSession takes the host of an absolute-form target over the Host header', () => {
  const { summary } = run([[0, latin1('GET http://user@proxy.example:8080/p?q HTTP/1.1\r\nHost: other\r\n\r\nGET /rel HTTP/1.1\r\nHost: h2\r\n\r\n')]]);
  assert.deepEqual(summary.requests.map((r) => r.host), ['proxy.example:8080', 'h2']);
});

test('HttpSession cuts an over-long request line, keeps its version and counts it', () => {
  const uri = '/' + 'a'.repeat(MAX_START_LINE_BYTES + 5000);
  const steps: Step[] = [[0, latin1(`GET ${uri} HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\n\r\n`)]];
  for (const s of [steps, bytewise(steps)]) {
    const { summary, counters } = run(s);
    const r = summary.requests[0];
    assert.equal(r.version, 'HTTP/1.1');
    assert.equal(r.uriTruncated, true);
    assert.ok(r.uri.length < MAX_START_LINE_BYTES && r.uri.length > MAX_START_LINE_BYTES - 10, `${r.uri.length}`);
    assert.deepEqual(r.headers, [['Host', 'h']]);
    assert.equal(counters.get('http.start_line.too_long'), 1);
    assert.equal(summary.requests[1].uri, '/next');
  }
});

test('HttpSession keeps at most MAX_HEADERS headers and cuts over-long header lines, counted', () => {
  let head = 'GET / HTTP/1.1\r\n';
  for (let i = 0; i < MAX_HEADERS + 10; i++) head += `X-H${i}: ${i}\r\n`;
  const { summary, counters } = run([[0, latin1(head + '\r\nGET /2 HTTP/1.1\r\nX-Long: ' + 'v'.repeat(40000) + '\r\n\r\n')]]);
  assert.equal(summary.requests[0].headers.length, MAX_HEADERS);
  assert.equal(counters.get('http.header.too_many'), 1);
  assert.equal(counters.get('http.header.too_long'), 1);
  assert.ok(summary.requests[1].headers[0][1].length < 16384);
});

test('HttpSession copies what it keeps: a reused input buffer does not corrupt partial lines', () => {
  // run() scribbles over its one scratch buffer after every call; cut the head everywhere to prove it.
  const steps: Step[] = [[0, latin1('GET /abc HTTP/1.1\r\nHost: h\r\nX-A: b\r\n\r\n')]];
  const expected = run(steps).summary;
  assert.equal(expected.requests[0].uri, '/abc');
  assert.deepEqual(run(bytewise(steps)).summary, expected);
});

test('HttpSession survives seeded mutations, random cuts and gaps without throwing', () => {
  let seed = 0x5eed;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const bases = SCENARIOS.map((sc) => sc.steps);
  const junk = [latin1('\r\n'), latin1('\n'), latin1(' '), latin1(':'), latin1('0\r\n'), latin1('HTTP/1.1 200 OK\r\n'), latin1('GET / HTTP/1.1\r\n'), latin1('Content-Length: 99999999\r\n'), latin1('Transfer-Encoding: chunked\r\n'), latin1('Content-Encoding: gzip, br, deflate\r\n')];
  for (let iter = 0; iter < 400; iter++) {
    const base = bases[rnd(bases.length)];
    const steps: Step[] = [];
    for (const step of base) {
      if (step[0] === 'gap') continue;
      let bytes = Buffer.from(step[1]);
      for (let m = rnd(4); m > 0; m--) {
        const at = rnd(bytes.length + 1);
        switch (rnd(4)) {
          case 0: if (at < bytes.length) bytes[at] = rnd(256); break;
          case 1: bytes = Buffer.concat([bytes.subarray(0, at), junk[rnd(junk.length)], bytes.subarray(at)]); break;
          case 2: bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(Math.min(bytes.length, at + rnd(20)))]); break;
          default: break;
        }
      }
      let pos = 0;
      while (pos < bytes.length) {
        const n = 1 + rnd(Math.max(1, bytes.length - pos));
        steps.push([step[0], bytes.subarray(pos, pos + n)]);
        pos += n;
        if (rnd(10) === 0) steps.push(['gap', step[0], 1 + rnd(50)]);
      }
    }
    const reasons = ['fin', 'rst', 'timeout'] as const;
    const { summary } = run(steps, { bodyLimitBytes: 1 + rnd(4096) }, reasons[rnd(3)]);
    // Every record gets exactly one end notice once the flow is over.
    assert.equal(summary.messages.length, summary.requests.length + summary.responses.length);
  }
});

test('HttpSession ends a response cleanly when bytes released by its own head switch the flow to a tunnel', () => {
  // 403 to a CONNECT releases the held client bytes; they hold an HTTP/2 preface, which stops the server side
  // while its 403 head is still being handled.
  const { summary } = run([
    [0, latin1('CONNECT a.example:443 HTTP/1.1\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')],
    [1, latin1('HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!')],
  ]);
  assert.deepEqual(summary.requests.map((r) => r.method), ['CONNECT', 'PRI']);
  assert.deepEqual(summary.responses.map((r) => r.status), [403]);
  assert.deepEqual(summary.events, [{ dir: 0, kind: 'tunnel', reason: 'http2' }]);
  assert.equal(summary.messages.length, 3);
  assert.deepEqual(summary.order, ['req0', 'end0:0', 'res0', 'req1', 'end1:0', 'end0:1']);
  assert.equal(summary.messages[1].info.incomplete, true); // the 403 body never came in
});

test('HttpSession pending requests keep none of the start lines their method was sliced from', () => {
  const sink: HttpSink = { onRequest() {}, onResponse() {}, onBody() {}, onMessageEnd() {} };
  const sessions = 32;
  const perSession = MAX_PENDING_REQUESTS - 1; // all still waiting for their response
  const methodUnits = 15 * 1024;
  const { bytes, held } = retainedBytes(() => {
    const out: HttpSession[] = [];
    for (let s = 0; s < sessions; s++) {
      const session = new HttpSession(FLOW, sink, new Counters());
      for (let i = 0; i < perSession; i++) {
        // a method as long as a start line may be, each distinct (so no string is shared)
        const method = `${s.toString(36)}${i.toString(36)}`.padEnd(methodUnits, 'M');
        session.data(0, latin1(`${method} /${i} HTTP/1.1\r\n\r\n`), 1000 + i);
      }
      out.push(session);
    }
    return out;
  });
  assert.equal((held as HttpSession[]).length, sessions);
  const n = sessions * perSession;
  assert.ok(bytes < 0.2 * n * methodUnits, `${Math.round(bytes / n)} bytes per pending request`);
});

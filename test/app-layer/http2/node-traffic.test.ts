/**
 * Http2Session on real HTTP/2 bytes made by Node itself: a live node:http2 h2c exchange recorded on
 * loopback (node-exchange.ts), and a frozen small recording (test/fixtures/http2/node-h2c-small.json).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import zlib from 'node:zlib';
import { DEFAULT_MAX_FRAME_SIZE } from '../../../sensor/app-layer/http2/frame.js';
import { fixture } from '../../helpers/replay.js';
import { bytewise, everySplit, type MessageRecord, type Step, type Summary } from '../../helpers/http-recorder.js';
import { runH2 } from './h2-helpers.js';
import {
  BR_TEXT, fullExchange, GZIP_TEXT, LARGE_BODY, PUSH_PAGE, PUSHED_CSS, TRAILER_BODY, UPLOAD_TEXT,
} from './node-exchange.js';

function ended(s: Summary, dir: 0 | 1, kind: 'request' | 'response', index: number): MessageRecord {
  const m = s.messages.find((x) => x.dir === dir && x.kind === kind && x.index === index);
  assert.ok(m, `no end notice for ${kind} ${index}`);
  return m;
}

function assertClean(m: MessageRecord, label: string): void {
  assert.deepEqual([m.info.incomplete, m.info.truncated, m.info.decode, m.info.anomalies, m.info.gapBytes], [false, false, 'ok', [], 0], label);
}

/** Re-cuts a recording into pieces of `size` bytes per direction run, keeping the direction order. */
function recut(steps: readonly Step[], size: number): Step[] {
  const out: Step[] = [];
  for (const step of steps) {
    if (step[0] === 'gap') continue;
    for (let i = 0; i < step[1].length; i += size) out.push([step[0], step[1].subarray(i, i + size)]);
  }
  return out;
}

test('Http2Session reads a live node:http2 exchange: gzip, br, a large body, a gzip POST, push, 103 and trailers', async () => {
  const ex = await fullExchange();
  // The real client got what the server meant to send (so the expectations below are about our parser).
  const got = new Map(ex.client.map((c) => [c.path, c]));
  assert.equal(zlib.gunzipSync(Buffer.from(got.get('/gzip')!.body, 'latin1')).toString('latin1'), GZIP_TEXT);
  assert.equal(got.get('/large')!.body, LARGE_BODY);
  assert.deepEqual(ex.pushed.map((p) => [p.path, p.body]), [['/pushed.css', PUSHED_CSS]]);

  const { summary: s, session, counters } = runH2(ex.recording, {}, null);
  assert.deepEqual(s.events, []);
  assert.equal(session.openStreams, 0);
  const reqs = new Map(s.requests.map((r) => [r.uri, r as typeof r & { streamId: number; pushed: boolean }]));
  assert.deepEqual([...reqs.keys()].sort(), ['/br', '/gzip', '/large', '/push', '/pushed.css', '/trailers', '/upload']);
  const authority = reqs.get('/gzip')!.host;
  assert.match(authority ?? '', /^127\.0\.0\.1:\d+$/);
  for (const r of s.requests) {
    assert.deepEqual([r.version, r.host, r.anomalies], ['HTTP/2', authority, []], r.uri);
    assert.equal(r.method, r.uri === '/upload' ? 'POST' : 'GET');
  }
  // Client streams are odd and follow the request order; the pushed one is even and came from the server.
  const clientIds = s.requests.filter((r) => !reqs.get(r.uri)!.pushed).map((r) => reqs.get(r.uri)!.streamId);
  assert.deepEqual(clientIds, [1, 3, 5, 7, 9, 11]);
  assert.equal(reqs.get('/pushed.css')!.pushed, true);
  assert.equal(reqs.get('/pushed.css')!.streamId % 2, 0);
  assert.deepEqual(reqs.get('/gzip')!.headers, [['user-agent', 'hark-test/1'], ['x-test', 'gzip'], ['cookie', 'a=1; b=2']]);
  // Several requests were in flight before the first response (concurrent streams).
  assert.ok(s.order.indexOf('res0') > s.order.indexOf('req1'));

  // Every request has one final response on its stream; /trailers also had a 103.
  const finals = s.responses.filter((r) => !r.interim);
  assert.equal(finals.length, s.requests.length);
  for (const r of s.requests) {
    const matching = finals.filter((x) => x.requestIndex === r.index);
    assert.equal(matching.length, 1, r.uri);
    assert.equal(matching[0].status, r.uri === '/upload' ? 201 : 200, r.uri);
  }
  const interim = s.responses.filter((r) => r.interim);
  assert.deepEqual(interim.map((r) => [r.status, r.requestIndex, r.headers]), [[103, reqs.get('/trailers')!.index, [['link', '</style.css>; rel=preload']]]]);

  const bodyOf = (uri: string) => {
    const final = finals.find((x) => x.requestIndex === reqs.get(uri)!.index)!;
    return ended(s, 1, 'response', final.index);
  };
  const gz = bodyOf('/gzip');
  assert.equal(gz.body, GZIP_TEXT);
  assert.deepEqual([gz.info.encodings, gz.info.bodyBytesWire], [['gzip'], zlib.gzipSync(GZIP_TEXT).length]);
  assertClean(gz, '/gzip');
  const br = bodyOf('/br');
  assert.equal(br.body, BR_TEXT);
  assert.deepEqual([br.info.encodings, br.info.bodyBytesWire], [['br'], zlib.brotliCompressSync(BR_TEXT).length]);
  assertClean(br, '/br');
  const large = bodyOf('/large');
  assert.ok(LARGE_BODY.length > 10 * DEFAULT_MAX_FRAME_SIZE); // at least 11 DATA frames
  assert.equal(large.body, LARGE_BODY);
  assert.equal(large.info.bodyBytesWire, LARGE_BODY.length);
  assertClean(large, '/large');
  const upload = ended(s, 0, 'request', reqs.get('/upload')!.index);
  assert.equal(upload.body, UPLOAD_TEXT);
  assert.deepEqual(upload.info.encodings, ['gzip']);
  assertClean(upload, 'POST /upload');
  assert.equal(bodyOf('/upload').body, `received ${UPLOAD_TEXT.length} bytes`);
  assert.equal(bodyOf('/push').body, PUSH_PAGE);
  assert.equal(bodyOf('/pushed.css').body, PUSHED_CSS);
  const pushedReq = ended(s, 1, 'request', reqs.get('/pushed.css')!.index);
  assert.deepEqual([pushedReq.info.bodyBytesWire, pushedReq.info.incomplete], [0, false]);
  const trailers = bodyOf('/trailers');
  assert.equal(trailers.body, TRAILER_BODY);
  assert.deepEqual(trailers.info.trailers, [['x-checksum', 'abc123']]);
  assertClean(trailers, '/trailers');
  for (const r of s.requests) if (r.uri !== '/upload' && !reqs.get(r.uri)!.pushed) assertClean(ended(s, 0, 'request', r.index), r.uri);

  assert.equal(s.messages.length, s.requests.length + s.responses.length);
  assert.equal(counters.get('http2.requests'), 7);
  assert.equal(counters.get('http2.pushed_requests'), 1);
  assert.equal(counters.anomalyTotal(), 0);

  // The same records whatever the cut (byte-by-byte runs on the small recording below).
  for (const size of [7, 4096]) assert.deepEqual(runH2(recut(ex.recording, size), {}, null).summary, s, `pieces of ${size}`);
});

interface Fixture {
  source: string;
  client: { path: string; status: number; bodyHex: string }[];
  segments: [0 | 1, string][];
}

const small: Fixture = JSON.parse(readFileSync(fixture('http2', 'node-h2c-small.json'), 'utf8'));
const SMALL_STEPS: Step[] = small.segments.map(([dir, h]) => [dir, Buffer.from(h, 'hex')]);

test('Http2Session reads the recorded node-h2c-small exchange exactly', () => {
  const { summary: s, counters } = runH2(SMALL_STEPS);
  assert.deepEqual(s.events, []);
  assert.deepEqual(s.requests.map((r) => [r.index, r.method, r.uri, r.version, r.headers, r.anomalies]), [
    [0, 'GET', '/gzip', 'HTTP/2', [['x-test', 'small']], []],
    [1, 'POST', '/upload', 'HTTP/2', [], []],
  ]);
  assert.deepEqual(s.responses.map((r) => [r.index, r.requestIndex, r.status, r.headers.map((h) => h[0])]), [
    [0, 0, 200, ['content-type', 'content-encoding', 'date']],
    [1, 1, 201, ['content-type', 'date']],
  ]);
  assert.deepEqual(s.order, ['req0', 'end0:0', 'res0', 'end1:0', 'req1', 'end0:1', 'res1', 'end1:1']);
  const gz = ended(s, 1, 'response', 0);
  assert.equal(gz.body, GZIP_TEXT);
  assert.equal(gz.info.bodyBytesWire, small.client[0].bodyHex.length / 2);
  assert.deepEqual(gz.info.encodings, ['gzip']);
  assert.equal(ended(s, 0, 'request', 1).body, 'q=hello');
  assert.equal(ended(s, 1, 'response', 1).body, Buffer.from(small.client[1].bodyHex, 'hex').toString('latin1'));
  for (const m of s.messages) assertClean(m, `${m.kind} ${m.index}`);
  assert.equal(counters.get('http2.goaway'), 4); // Node sends two GOAWAY frames each way on close
});

test('Http2Session gives the same records however node-h2c-small is cut (every offset, and byte by byte)', () => {
  const base = runH2(SMALL_STEPS).summary;
  let runs = 0;
  for (const { label, steps } of everySplit(SMALL_STEPS)) {
    assert.deepEqual(runH2(steps).summary, base, label);
    runs++;
  }
  assert.ok(runs > 300);
  assert.deepEqual(runH2(bytewise(SMALL_STEPS)).summary, base);
});

test('Http2Session on node-h2c-small: a gap or an early end at any offset never throws and ends every message', () => {
  for (let i = 0; i < SMALL_STEPS.length; i++) {
    const step = SMALL_STEPS[i];
    const dir = step[0] as 0 | 1;
    const bytes = step[1] as Uint8Array;
    for (let k = 0; k <= bytes.length; k += 5) {
      const head: Step[] = [...SMALL_STEPS.slice(0, i), [dir, bytes.subarray(0, k)]];
      for (const tail of [[['gap', dir, 10] as Step, ...SMALL_STEPS.slice(i + 1)], []]) {
        const { summary: s } = runH2([...head, ...tail]);
        assert.equal(s.messages.length, s.requests.length + s.responses.length, `step ${i} at ${k}`);
      }
    }
  }
});

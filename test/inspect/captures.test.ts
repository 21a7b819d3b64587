/**
 * CaptureCollector: a capture is emitted at once (so it is stored at once); repeats within the
 * window raise its count and it is re-emitted with the same id and the final count when the
 * window closes; a repeat after the window is a new capture; other devices, URLs and sources are
 * separate captures; a URL, Host or method too long for home is cut, with a marker, in the event only.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CAPTURE_TEXT_CUT, cutCaptureText, MAX_CAPTURE_HOST_CHARS, MAX_CAPTURE_METHOD_CHARS, MAX_CAPTURE_URL_CHARS, type CaptureEvent } from '../../sensor/events/capture.js';
import { Counters } from '../../sensor/events/counters.js';
import { CaptureCollector, holdCaptureText, MAX_PENDING_CAPTURES, type CaptureCandidate } from '../../sensor/inspect/captures.js';
import type { FlowInfo } from '../../sensor/flow/stream.js';
import { retainedBytes, uniqueSource } from '../helpers/heap.js';
import { assertCapture } from '../helpers/schema.js';

const flow = (srcIp: string, flowId = 1): FlowInfo => ({ flowId, proto: 6, srcIp, srcPort: 50000, dstIp: '192.0.2.1', dstPort: 80, vlan: [], startUs: 0 });
const phrase = { phrase: 'AK47', category: 'weapons', severity: 4 as const, embedded: false, exclusions: [], languages: [] };

function candidate(over: Partial<CaptureCandidate>): CaptureCandidate {
  return { flow: flow('10.0.0.2'), dir: 1, messageIndex: 0, source: 'viewed', field: 'response_body', host: 'h', url: '/a', status: 200, phraseIndex: 0, phrase, count: 1, context: '[[ak47]]', tsUs: 1_000_000, ...over };
}

test('CaptureCollector emits at once and re-emits the merged count when the window closes', () => {
  const out: CaptureEvent[] = [];
  const counters = new Counters();
  const col = new CaptureCollector((c) => out.push(c), counters, 60_000_000);
  col.add(candidate({ count: 2, messageIndex: 0 }));
  assert.equal(out.length, 1, 'stored without waiting for the window');
  assert.equal(out[0].count, 2);
  col.add(candidate({ count: 3, messageIndex: 1, tsUs: 5_000_000 }));
  assert.equal(out.length, 1);
  col.expire(62_000_000);
  assert.equal(out.length, 2);
  assert.equal(out[1].id, out[0].id);
  assert.equal(out[1].count, 5);
  assert.equal(out[0].count, 2, 'the first emission is not changed afterwards');
  for (const c of out) assertCapture(c);
  assert.equal(counters.get('capture.emitted'), 1);
  assert.equal(counters.get('capture.count_updates'), 1);
});

test('CaptureCollector keeps devices, URLs and sources apart, and starts anew after the window', () => {
  const out: CaptureEvent[] = [];
  const col = new CaptureCollector((c) => out.push(c), new Counters(), 60_000_000);
  col.add(candidate({}));
  col.add(candidate({ flow: flow('10.0.0.3', 2) }));
  col.add(candidate({ url: '/b', messageIndex: 1 }));
  col.add(candidate({ source: 'typed', field: 'search', dir: 0, messageIndex: 2 }));
  col.add(candidate({ messageIndex: 3, tsUs: 90_000_000 }));
  col.flush();
  assert.equal(out.length, 5);
  assert.equal(new Set(out.map((c) => c.id)).size, 5);
  assert.ok(out.every((c) => c.count === 1), 'no window merged anything, so no count updates');
});

test('CaptureCollector closes thousands of windows in first-seen order as capture time passes', () => {
  const out: CaptureEvent[] = [];
  const counters = new Counters();
  const col = new CaptureCollector((c) => out.push(c), counters, 10_000_000);
  const n = 5000;
  // every window gets a repeat, so each is emitted again when it closes
  for (let k = 0; k < n; k++) col.add(candidate({ url: `/p${k}`, messageIndex: k, tsUs: k * 1000 }));
  for (let k = 0; k < n; k++) col.add(candidate({ url: `/p${k}`, messageIndex: n + k, count: 2, tsUs: n * 1000 + k }));
  assert.equal(col.held, n);
  col.expire(n * 1000 + 10_000_000); // closes the windows first seen before tsUs n * 1000
  const updates = out.slice(n);
  assert.equal(updates.length, n);
  assert.deepEqual(updates.map((c) => c.url), Array.from({ length: n }, (_, k) => `/p${k}`), 'in first-seen order');
  assert.ok(updates.every((c) => c.count === 3));
  assert.equal(col.held, 0);
  assert.equal(counters.get('capture.merged'), n);
});

test('CaptureCollector emits a merged capture again exactly as first emitted, with the final count', () => {
  const out: CaptureEvent[] = [];
  const col = new CaptureCollector((c) => out.push(c), new Counters(), 60_000_000);
  col.add(candidate({ host: 'h.test', url: '/a?q=1', method: 'GET', status: 200, context: '  the [[ak47]] here  ', tsUs: 1_000_123 }));
  col.add(candidate({ host: 'h.test', url: '/a?q=1', method: 'GET', status: 200, messageIndex: 4, count: 4, tsUs: 2_000_000 }));
  col.flush();
  assert.equal(out.length, 2);
  assert.deepEqual({ ...out[1], count: 1 }, out[0]);
  assert.equal(out[1].count, 5);
  assert.equal(out[0].context, 'the [[ak47]] here');
  assert.deepEqual(Object.keys(out[0]).slice(0, 4), ['event_type', 'id', 'timestamp', 'ts_us']);
  for (const c of out) assertCapture(c);
});

test('CaptureCollector gives every window of a message its own candidate\'s fields, and emits each again exactly so', () => {
  const out: CaptureEvent[] = [];
  const u0 = { hostname: 'pc', user: 'u0', sources: { user: 'radius', hostname: 'dhcp' } };
  let identity = u0;
  const col = new CaptureCollector((c) => out.push(c), new Counters(), 60_000_000, { identify: () => identity });
  // one message's candidates, one after another, each with a phrase of its own and one more field
  // unlike the one before's
  const one = flow('10.0.0.2');
  const b = { host: 'i.test', url: '/b', method: 'POST', status: 404, appProto: 'http2', decrypted: true } as const;
  const steps: Array<[Partial<CaptureCandidate>, typeof u0]> = [
    [{ host: 'h.test', url: '/a', method: 'GET' }, u0],
    [{ host: 'h.test', url: '/a', method: 'GET' }, u0],
    [{ host: 'h.test', url: '/a', method: 'GET', field: 'url' }, u0],
    [{ host: 'i.test', url: '/a', method: 'GET' }, u0],
    [{ host: 'i.test', url: '/b', method: 'GET' }, u0],
    [{ host: 'i.test', url: '/b', method: 'POST' }, u0],
    [{ host: 'i.test', url: '/b', method: 'POST', status: 404 }, u0],
    [{ host: 'i.test', url: '/b', method: 'POST', status: 404, appProto: 'http2' }, u0],
    [b, u0],
    [{ ...b, flow: flow('10.0.0.2', 2) }, u0],
    [b, u0],
    [{ ...b, dir: 0 }, u0],
    [b, u0],
    [{ ...b, messageIndex: 3 }, u0],
    [b, u0],
    [{ ...b, tsUs: 1_000_001 }, u0],
    [b, u0],
    [b, { ...u0, user: 'u1' }],
    // the same sources, in another order: the JSON keeps key order
    [b, { ...u0, user: 'u1', sources: { hostname: 'dhcp', user: 'radius' } }],
    [{ ...b, flow: flow('10.0.0.9', 9) }, u0],
  ];
  const message = steps.map(([f], k) => candidate({ flow: one, ...f, phraseIndex: k, phrase: { ...phrase, phrase: `p${k}` } }));
  const add = (c: CaptureCandidate, k: number): void => {
    identity = steps[k][1];
    col.add(c);
  };
  message.forEach(add);
  // the last phrase again with another context: merged into its window
  add({ ...message.at(-1)!, context: `other [[p${steps.length - 1}]]` }, steps.length - 1);
  const first = out.splice(0);
  assert.equal(first.length, message.length);
  message.forEach((c, k) => add({ ...c, messageIndex: 1, tsUs: 2_000_000 }, k));
  col.flush();
  assert.equal(out.length, first.length, 'every window emitted again with its repeat');
  for (let k = 0; k < first.length; k++) {
    const again = out.find((e) => e.id === first[k].id);
    assert.ok(again);
    assert.equal(JSON.stringify({ ...again, count: 0 }), JSON.stringify({ ...first[k], count: 0 }), `capture ${k} emitted again as first emitted`);
    assert.equal(again.count, k === first.length - 1 ? 3 : 2);
    assertCapture(again);
  }
  // each as it would be alone in a collector of its own
  message.forEach((c, k) => {
    const alone: CaptureEvent[] = [];
    new CaptureCollector((e) => alone.push(e), new Counters(), 60_000_000, { identify: () => steps[k][1] }).add(c);
    assert.equal(JSON.stringify(first[k]), JSON.stringify(alone[0]), `capture ${k}`);
  });
});

test('CaptureCollector at MAX_PENDING_CAPTURES emits the oldest early, still merges into every open window, and flushes the rest in first-seen order', () => {
  const latest = new Map<string, CaptureEvent>();
  const order: string[] = [];
  const counters = new Counters();
  const col = new CaptureCollector((c) => (latest.has(c.id) || order.push(c.id), latest.set(c.id, c)), counters, 60_000_000);
  const n = MAX_PENDING_CAPTURES;
  for (let k = 0; k < n; k++) col.add(candidate({ url: `/p${k}`, messageIndex: k, tsUs: 1_000_000 + k }));
  assert.equal(col.held, n);
  for (let k = 0; k < n; k++) col.add(candidate({ url: `/p${k}`, messageIndex: n + k, count: 2, tsUs: 2_000_000 + k }));
  assert.equal(counters.get('capture.merged'), n, 'every open window found, however many');
  col.add(candidate({ url: '/new', messageIndex: 2 * n, tsUs: 3_000_000 }));
  assert.equal(counters.get('capture.pending_overflow'), 1);
  assert.equal(col.held, n);
  assert.equal(latest.get(order[0])?.count, 3, 'the oldest window, emitted early with its count');
  assert.equal(latest.get(order[1])?.count, 1, 'the next one still open');
  col.flush();
  assert.equal(col.held, 0);
  assert.equal(counters.get('capture.count_updates'), n);
  assert.equal(latest.size, n + 1);
  assert.ok(order.slice(0, n).every((id, k) => latest.get(id)?.url === `/p${k}` && latest.get(id)?.count === 3));
  assert.equal(latest.get(order[n])?.count, 1);
});

test('CaptureCollector keeps nothing of the windows it has closed', () => {
  const n = 1000;
  const length = 8 * 1024;
  const { bytes, held } = retainedBytes(() => {
    const col = new CaptureCollector(() => undefined, new Counters(), 60_000_000);
    for (let i = 0; i < n; i++) col.add(candidate({ url: `/p${i}`, context: uniqueSource(length), messageIndex: i, tsUs: 1_000_000 + i }));
    col.expire(1_000_000 + n + 60_000_000);
    return col;
  });
  assert.equal((held as CaptureCollector).held, 0);
  assert.ok(bytes < 0.05 * n * length, `${bytes} bytes held for ${n} closed windows`);
});

test('CaptureCollector cuts a URL, Host and method too long for home, with a marker, and still merges repeats by the whole URL', () => {
  const out: CaptureEvent[] = [];
  const counters = new Counters();
  const col = new CaptureCollector((c) => out.push(c), counters, 60_000_000);
  // A 16 KiB request line of control bytes: JSON writes each as \u0001, six bytes.
  const url = `/search?q=ak47&pad=${'\u0001'.repeat(16 * 1024 - 19)}`;
  const host = `${'\u00e9'.repeat(16 * 1024)}.example`;
  const method = 'M'.repeat(16 * 1024);
  const ctx = `${'\u0002'.repeat(200)}[[ak47]]${'\u0002'.repeat(200)}`;
  const device = { user: '\u0003'.repeat(256), hostname: '\u0003'.repeat(256) };
  const attribution = { identify: () => ({ ...device, sources: { user: 'radius', hostname: 'dhcp', domain: '\u0003'.repeat(256) } }) };
  const big = new CaptureCollector((c) => out.push(c), counters, 60_000_000, attribution);
  big.add(candidate({ url, host, method, context: ctx }));
  big.add(candidate({ url, host, method, context: ctx, messageIndex: 1, count: 2, tsUs: 2_000_000 }));
  big.add(candidate({ url: `${url}x`, host, method, context: ctx, messageIndex: 2, tsUs: 3_000_000 }));
  big.flush();
  assert.equal(out.length, 3, 'the repeat merged (emitted again with its count), the longer URL is its own capture');
  assert.notEqual(out[1].id, out[0].id);
  assert.equal(out[2].id, out[0].id);
  assert.equal(out[2].count, 3);
  for (const c of out) {
    assert.equal(c.url?.length, MAX_CAPTURE_URL_CHARS);
    assert.ok(c.url?.startsWith('/search?q=ak47&pad=\u0001'));
    assert.ok(c.url?.endsWith(CAPTURE_TEXT_CUT));
    assert.equal(c.host?.length, MAX_CAPTURE_HOST_CHARS);
    assert.ok(c.host?.endsWith(CAPTURE_TEXT_CUT));
    assert.equal(c.method?.length, MAX_CAPTURE_METHOD_CHARS);
    assertCapture(c);
    const bytes = Buffer.byteLength(JSON.stringify(c));
    assert.ok(bytes < 64 * 1024, `${bytes} bytes of JSON: home takes up to 64 KiB`);
  }
  assert.equal(counters.get('capture.url_truncated'), 2, 'counted once per capture, not per emission');
  assert.equal(counters.get('capture.host_truncated'), 2);
  assert.equal(counters.get('capture.method_truncated'), 2);
  // a short URL is left as it is
  col.add(candidate({ url: '/a', method: 'GET' }));
  assert.equal(out.at(-1)?.url, '/a');
  assert.equal(out.at(-1)?.method, 'GET');
  assert.equal(counters.get('capture.url_truncated'), 2);
});

test('CaptureCollector tells long URLs apart past the cut, and merges a held (cut) URL with the same whole URL', () => {
  const out: CaptureEvent[] = [];
  const counters = new Counters();
  const col = new CaptureCollector((c) => out.push(c), counters, 60_000_000);
  const url = `/p?${'a'.repeat(MAX_CAPTURE_URL_CHARS + 100)}`;
  const other = `${url.slice(0, -1)}b`;
  col.add(candidate({ url }));
  col.add(candidate({ url: other, messageIndex: 1, tsUs: 2_000_000 }));
  assert.equal(out.length, 2, 'same length and shown text, another tail: another capture');
  col.add(candidate({ url: holdCaptureText(url, MAX_CAPTURE_URL_CHARS), messageIndex: 2, tsUs: 3_000_000 }));
  col.add(candidate({ url: holdCaptureText(other, MAX_CAPTURE_URL_CHARS), messageIndex: 3, tsUs: 3_000_000, count: 5 }));
  col.flush();
  assert.equal(out.length, 4, 'both merged into their windows');
  assert.deepEqual(out.slice(2).map((c) => [c.id, c.count]), [[out[0].id, 2], [out[1].id, 6]]);
  for (const c of out) assert.equal(c.url, cutCaptureText(url, MAX_CAPTURE_URL_CHARS));
  assert.equal(counters.get('capture.url_truncated'), 2);
  assert.equal(counters.get('capture.merged'), 2);
});

test('CaptureCollector windows keep none of the 64 KB header blocks their host and URL were sliced from', () => {
  const n = 2000;
  const source = 64 * 1024;
  const { bytes, held } = retainedBytes(() => {
    const col = new CaptureCollector(() => undefined, new Counters(), 60_000_000);
    for (let i = 0; i < n; i++) {
      const block = uniqueSource(source);
      const host = block.slice(20, 50);
      const url = uniqueSource(source).slice(0, 200);
      col.add(candidate({ host, url, method: block.slice(0, 13), messageIndex: i, tsUs: 1_000_000 + i }));
    }
    return col;
  });
  assert.equal((held as CaptureCollector).held, n);
  assert.ok(bytes < 0.2 * n * source, `${Math.round(bytes / n)} bytes per window`);
});

test('CaptureCollector windows hold a URL past MAX_CAPTURE_URL_CHARS only as far as the capture shows it', () => {
  const n = 2000;
  const length = 16 * 1024;
  const { bytes, held } = retainedBytes(() => {
    const col = new CaptureCollector(() => undefined, new Counters(), 60_000_000);
    for (let i = 0; i < n; i++) col.add(candidate({ url: uniqueSource(length), messageIndex: i, tsUs: 1_000_000 + i }));
    return col;
  });
  assert.equal((held as CaptureCollector).held, n);
  assert.ok(bytes < 0.4 * n * length, `${Math.round(bytes / n)} bytes per window`);
});

test('cutCaptureText keeps text at the limit, cuts past it to exactly the limit, and never splits a surrogate pair', () => {
  assert.equal(cutCaptureText('abc', 3), 'abc');
  assert.equal(cutCaptureText('x'.repeat(20), 10), `xxxx${CAPTURE_TEXT_CUT}`);
  // the cut falls between the halves of U+1F600: the whole pair goes
  const emoji = `${'x'.repeat(3)}\u{1F600}${'y'.repeat(10)}`;
  const cut = cutCaptureText(emoji, 10);
  assert.equal(cut, `xxx${CAPTURE_TEXT_CUT}`);
  assert.equal(JSON.stringify(cut).includes('\\ud'), false);
});

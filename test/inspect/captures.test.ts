/**
 * CaptureCollector: a capture is emitted at once (so it is stored at once); repeats within the
 * window raise its count and it is re-emitted with the same id and the final count when the
 * window closes; a repeat after the window is a new capture; other devices, URLs and sources are
 * separate captures.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CaptureEvent } from '../../sensor/events/capture.js';
import { Counters } from '../../sensor/events/counters.js';
import { CaptureCollector, type CaptureCandidate } from '../../sensor/inspect/captures.js';
import type { FlowInfo } from '../../sensor/flow/stream.js';
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

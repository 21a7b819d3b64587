/**
 * The start-up warm-up (sensor/warm-up.ts): its synthetic traffic is well-formed (every message
 * parsed, no anomaly, phrases found), at least one round runs whatever the
 * budget, and the real sensor whose dictionary it shares sees nothing of it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counters } from '../../sensor/events/counters.js';
import type { CaptureEvent } from '../../sensor/events/capture.js';
import { DEFAULT_DICTIONARY, loadMatching, Sensor } from '../../sensor/main.js';
import { describeWarmUps, warmUp } from '../../sensor/warm-up.js';

const matching = loadMatching(DEFAULT_DICTIONARY, 'auto', new Counters());

test('warm-up traffic is whole HTTP and DNS that every layer decodes without an anomaly, with phrases found', () => {
  const counters = new Counters();
  const r = warmUp({ sensorOptions: {}, matching, budgetMs: 0, counters });
  assert.equal(r.rounds, 1, 'a zero budget still runs one round');
  // 24 conversations: a search, a page, a JSON post and answer, a form post and a text answer
  assert.equal(counters.get('http.requests'), 72);
  assert.equal(counters.get('http.responses'), 72);
  assert.equal(counters.get('flow.tcp'), 24);
  assert.equal(counters.get('dns.queries'), 1);
  assert.equal(counters.get('tcp.reassembly_gap_bytes'), 0);
  assert.equal(counters.get('tcp.retransmission') + counters.get('tcp.segments_out_of_order') + counters.get('tcp.overlap'), 0);
  assert.deepEqual(counters.snapshot('anomaly'), {}, 'no anomaly: the frames are what a mirror port carries');
  assert.ok(counters.get('decoder.pkts') === r.frames && r.frames > 24 * 10, `${r.frames} frames`);
  assert.ok(counters.get('tcp.reassembled_bytes') > 24 * 3000, `${counters.get('tcp.reassembled_bytes')} bytes reassembled`);
  const emitted = counters.get('capture.emitted');
  assert.ok(emitted >= 24 * 6, `${emitted} captures: phrases found in URLs, pages, JSON, forms and text`);
  // a capture merged in its window is handed over again with its final count
  assert.ok(r.captures >= emitted);
});

test('warm-up runs rounds until its budget is spent, and says so in one line', () => {
  const r = warmUp({ sensorOptions: {}, matching, budgetMs: 150 });
  assert.ok(r.rounds > 1, `${r.rounds} rounds`);
  assert.ok(r.ms >= 150, `${r.ms} ms`);
  assert.match(describeWarmUps([r, r]), new RegExp(`^2 threads, ${2 * r.rounds} rounds, [0-9.]+ MB of frames in [0-9,]+ ms$`));
});

test('the sensor whose dictionary a warm-up shares gets none of its captures, events or counts', () => {
  const counters = new Counters();
  const caps: CaptureEvent[] = [];
  const events: unknown[] = [];
  const sensor = new Sensor({ matching, counters, onCapture: (c) => caps.push(c), onEvent: (e) => events.push(e) });
  const r = warmUp({ sensorOptions: {}, matching: sensor.matching, budgetMs: 50 });
  assert.ok(r.captures > 0);
  sensor.finish();
  assert.equal(caps.length, 0);
  assert.equal(events.length, 0);
  assert.deepEqual(Object.entries(counters.snapshot()).filter(([, v]) => v !== 0), []);
  assert.equal(sensor.pipeline.flows.active, 0);
  sensor.close();
});

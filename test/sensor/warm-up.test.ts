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
import { describeWarmUps, warmUp, warmUpTraffic } from '../../sensor/warm-up.js';

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
  // the text answers of 8 conversations have their two segments swapped, 8 more their first sent twice
  assert.equal(counters.get('tcp.retransmission'), 8);
  assert.equal(counters.get('tcp.overlap'), 8, 'the resent segments overlap with the same bytes');
  assert.equal(counters.get('tcp.segments_out_of_order'), 16);
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
  // how many rounds fit depends on the machine's load (one took over 150 ms with 7 other jobs on
  // 2 cores): what is certain is at least one, and that it stopped only once the budget was spent
  assert.ok(r.rounds >= 1, `${r.rounds} rounds`);
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

test('warm-up frames look like a capture source\'s: plain Uint8Array views, sequence numbers over the whole 32-bit space', () => {
  const seqs: number[] = [];
  let buffers = 0;
  let wraps = 0;
  /** Last sequence number of each sender (address and port). */
  const last = new Map<string, number>();
  const traffic = warmUpTraffic(matching, (_link, buf, off, capLen) => {
    if (Buffer.isBuffer(buf)) buffers++;
    // Ethernet (14) + IPv4 (20) + TCP: the sender's address at 26, its port at 34, the sequence number at 38
    if (capLen < 54 || buf[off + 23] !== 6) return;
    const view = new DataView(buf.buffer, buf.byteOffset + off, capLen);
    const seq = view.getUint32(38);
    const sender = `${view.getUint32(26)}:${view.getUint16(34)}`;
    const before = last.get(sender);
    if (before !== undefined && before >= 2 ** 32 - 1500 && seq < 1500) wraps++;
    last.set(sender, seq);
    seqs.push(seq);
  });
  traffic.round(0);
  assert.equal(buffers, 0, "code compiled for a Buffer's map would be thrown away at the first real frame");
  assert.equal(traffic.frames(), seqs.length + 2, 'every frame but the DNS query and answer is TCP');
  const high = seqs.filter((s) => s >= 2 ** 30).length;
  assert.ok(high > seqs.length / 2, `${high} of ${seqs.length} sequence numbers above the small-integer range`);
  assert.equal(wraps, 6, 'every fourth conversation\'s client numbers wrap past 2^32');
});

/**
 * Inspection memory (sensor/events/memuse.ts): what parsers, decoders and scanners hold for flows in
 * progress is charged to the `app_layer.memuse` gauge, which the flow memcap counts. The gauge must
 * come back to exactly 0 when every flow has ended, whatever the traffic (a charge never given back
 * would slowly turn into evictions of everything), and must be what bounds a crowd of connections
 * parked mid-message.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Dictionary } from '../../rules/dictionary.js';
import { HELD_RECORD_OVERHEAD_BYTES, TLS_PENDING_MAX_BYTES_PER_FLOW, TLS_PENDING_MAX_BYTES_TOTAL } from '../../sensor/app-layer/tls/session.js';
import { memoryInUse } from '../../sensor/events/memuse.js';
import { Sensor } from '../../sensor/main.js';
import { clientHello } from '../fixtures/quic/quic-encoder.js';
import { ethTcp, TCP_FLAGS } from '../helpers/packets.js';
import { parkedMessagesPackets } from '../helpers/parked-messages.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));
const DICTIONARY: Dictionary = { name: 'memuse', phrases: ['ak47', 'our secret', 'kill', 'password', 'the'].map((phrase) => ({ phrase, category: 'test', severity: 3 as const, embedded: false, exclusions: [], languages: [] })) };

function captures(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...captures(p));
    else if (/\.pcap(ng)?$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

test('every capture in test/fixtures ends with no inspection memory held (with its TLS keys where it has them)', () => {
  const files = captures(FIXTURES);
  assert.ok(files.length >= 50, `only ${files.length} captures found under ${FIXTURES}`);
  let charged = 0;
  for (const file of files) {
    const keys = file.replace(/\.pcap(ng)?$/, '.keys');
    const sensor = new Sensor({ dictionary: DICTIONARY, keyLogs: existsSync(keys) ? [keys] : undefined, onCapture: () => {} });
    // a damaged capture is not an exception: runFile returns its problem after what came before it was processed
    sensor.pipeline.runFile(file);
    assert.equal(memoryInUse(sensor.counters), 0, `${file}: ${memoryInUse(sensor.counters)} bytes still charged after every flow ended`);
    charged += sensor.counters.get('http.requests') > 0 ? 1 : 0;
  }
  assert.ok(charged >= 10, `only ${charged} captures carried HTTP: the walk did not exercise the charging code`);
});

test('connections parked mid-body hold inspection memory until evicted; the memcap bounds it; all of it comes back', () => {
  const memcap = 64 << 20;
  const sensor = new Sensor({ dictionary: DICTIONARY, flowLimits: { memcapBytes: memcap }, onCapture: () => {} });
  let peak = 0;
  for (const p of parkedMessagesPackets({ connections: 30, coding: 'br' })) {
    sensor.pipeline.packet(1, p.data, 0, p.data.length, p.data.length, p.tsUs!, 0);
    peak = Math.max(peak, memoryInUse(sensor.counters));
  }
  // one message holds an 8 MiB ring (7.5 MB in one meta-block) and its text state
  assert.ok(peak > 32 << 20, `peak ${peak}: the parked decoders were not charged`);
  assert.ok(peak <= memcap + (9 << 20), `peak ${peak} over the memcap and one more message`);
  assert.ok(sensor.counters.get('flow.memcap_evicted') >= 20, `${sensor.counters.get('flow.memcap_evicted')} evicted`);
  sensor.pipeline.finish();
  assert.equal(memoryInUse(sensor.counters), 0);
});

/**
 * TLS connections whose client sends its ClientHello and then `records[i]` zero-length application-data
 * records (5 bytes of wire each, 280 to a 1,400-byte segment); no server ever answers, so every record
 * is held for keys that could still come with a ServerHello. Segments go round-robin across the
 * connections, so that they all hold at once.
 */
function emptyRecordFrames(records: readonly number[]): Array<{ data: Buffer; tsUs: number }> {
  const empty = Buffer.from([23, 3, 3, 0, 0]);
  const hello = Buffer.from(clientHello({ sni: 'held.example' }));
  const helloRecord = Buffer.concat([Buffer.from([22, 3, 1, hello.length >> 8, hello.length & 0xff]), hello]);
  const perSegment = 280;
  const frames: Array<{ data: Buffer; tsUs: number }> = [];
  let ts = 1_700_000_000_000_000;
  const seq = records.map(() => 1);
  const left = [...records];
  const send = (i: number, flags: number, payload: Buffer): void => {
    const o = { src: `10.78.0.${i + 1}`, dst: '192.0.2.44', sport: 41000 + i, dport: 443 };
    frames.push({ data: ethTcp({ ...o, seq: seq[i], flags }, payload), tsUs: (ts += 10) });
    seq[i] += payload.length + (flags & TCP_FLAGS.SYN ? 1 : 0);
  };
  records.forEach((_, i) => {
    send(i, TCP_FLAGS.SYN, Buffer.alloc(0));
    send(i, TCP_FLAGS.ACK | TCP_FLAGS.PSH, helloRecord);
  });
  while (left.some((n) => n > 0)) {
    left.forEach((n, i) => {
      if (n === 0) return;
      const k = Math.min(n, perSegment);
      send(i, TCP_FLAGS.ACK, Buffer.concat(Array<Buffer>(k).fill(empty)));
      left[i] = n - k;
    });
  }
  return frames;
}

test('TLS records held for keys are charged with their overhead: floods of empty records stay within the pending budgets, and all of it comes back', () => {
  // 20 connections of 10,000 empty records would hold 108 MB at ~0.5 KB each; two of 500 are still held at the end
  const records = [500, 500, ...Array<number>(20).fill(10_000)];
  const sensor = new Sensor({ dictionary: DICTIONARY, onCapture: () => {} });
  let peak = 0;
  for (const f of emptyRecordFrames(records)) {
    sensor.pipeline.packet(1, f.data, 0, f.data.length, f.data.length, f.tsUs, 0);
    peak = Math.max(peak, memoryInUse(sensor.counters));
  }
  assert.ok(peak > TLS_PENDING_MAX_BYTES_TOTAL / 2, `peak ${peak}: the held records were not charged`);
  assert.ok(peak <= TLS_PENDING_MAX_BYTES_TOTAL, `peak ${peak} over the total pending budget`);
  assert.equal(sensor.counters.get('tls.pending_overflow'), 20, 'every large flow gave up');
  const perFlow = Math.floor(TLS_PENDING_MAX_BYTES_PER_FLOW / HELD_RECORD_OVERHEAD_BYTES);
  assert.ok(sensor.counters.get('tls.pending_records') <= 2 * 500 + 20 * perFlow, `${sensor.counters.get('tls.pending_records')} held`);
  assert.equal(memoryInUse(sensor.counters), 2 * 500 * HELD_RECORD_OVERHEAD_BYTES, 'the two small flows still hold theirs');
  sensor.pipeline.finish();
  assert.equal(sensor.counters.get('tls.keys_never_arrived'), 22);
  assert.equal(memoryInUse(sensor.counters), 0);
});

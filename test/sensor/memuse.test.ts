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
import { memoryInUse } from '../../sensor/events/memuse.js';
import { Sensor } from '../../sensor/main.js';
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
    try {
      sensor.pipeline.runFile(file);
    } catch {
      // a damaged capture ends in an error after what came before it was processed
      sensor.pipeline.finish();
    }
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

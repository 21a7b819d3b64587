/**
 * Robustness: a seeded loop of a million mutated packets through decode, defragmentation, the
 * flow table and reassembly. Seeds are the real packets of the fixture captures; mutations flip,
 * zero and saturate bytes, truncate, extend, and change the link type. No exception may escape
 * (the pipeline counts any it catches as `pipeline.exception`, so that counter must stay 0), and
 * memory stays bounded by the configured limits.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { getHeapStatistics } from 'node:v8';
import { readCaptureFile } from '../sensor/capture/file-reader.js';
import { DEFAULT_FLOW_LIMITS } from '../sensor/flow/flow-table.js';
import { Sensor } from '../sensor/main.js';
import { Pipeline } from '../sensor/pipeline.js';
import { fixture } from './helpers/replay.js';

const PACKETS = 1_000_000;
const SEED = 0x5eed1234;
const LINK_TYPES = [0, 1, 12, 101, 108, 113, 228, 229, 276, 147];

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

test('a million mutated packets: no exception escapes, memory stays bounded', () => {
  const seeds: Array<{ linkType: number; bytes: Uint8Array }> = [];
  const dir = fixture('tcp');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.pcap'))) {
    readCaptureFile(`${dir}/${f}`, (linkType, buf, off, len) => {
      if (seeds.length < 20000) seeds.push({ linkType, bytes: buf.slice(off, off + len) });
    });
  }
  assert.ok(seeds.length > 1000, `enough seed packets (${seeds.length})`);

  const limits = { ...DEFAULT_FLOW_LIMITS, maxFlows: 20_000, memcapBytes: 32 << 20 };
  let touched = 0;
  const pipeline = new Pipeline({
    flowLimits: limits,
    streams: {
      open: () => ({
        data: (_d, bytes) => {
          touched += bytes.length > 0 ? bytes[0] + bytes[bytes.length - 1] : 0;
        },
        gap: () => {},
        end: () => {},
      }),
    },
    datagrams: { datagram: (_i, _d, p) => (touched += p.length) },
  });
  const rnd = xorshift(SEED);
  const scratch = new Uint8Array(70000);
  let ts = 1_700_000_000_000_000;
  const heapBefore = getHeapStatistics().used_heap_size;
  let maxActive = 0;
  for (let i = 0; i < PACKETS; i++) {
    const s = seeds[rnd() % seeds.length];
    let len = s.bytes.length;
    scratch.set(s.bytes);
    const mutations = 1 + (rnd() % 4);
    for (let m = 0; m < mutations; m++) {
      const kind = rnd() % 8;
      const at = len > 0 ? rnd() % len : 0;
      if (kind <= 2) scratch[at] ^= 1 << (rnd() % 8);
      else if (kind === 3) scratch[at] = 0;
      else if (kind === 4) scratch[at] = 0xff;
      else if (kind === 5) len = rnd() % (len + 1);
      else if (kind === 6) {
        const extra = rnd() % 64;
        for (let k = 0; k < extra && len < scratch.length; k++) scratch[len++] = rnd() & 0xff;
      } else {
        // Shift sequence numbers and ports around: stresses reassembly and the flow table.
        for (let k = 0; k < 4 && at + k < len; k++) scratch[at + k] = rnd() & 0xff;
      }
    }
    const linkType = rnd() % 50 === 0 ? LINK_TYPES[rnd() % LINK_TYPES.length] : s.linkType;
    ts += rnd() % 2000;
    if (rnd() % 1000 === 0) ts -= 5_000_000; // clocks step backwards on real sensors
    pipeline.packet(linkType, scratch, 0, len, len, ts, 0);
    if ((i & 0xffff) === 0) maxActive = Math.max(maxActive, pipeline.flows.active);
  }
  pipeline.finish();
  const c = pipeline.counters;
  assert.equal(c.get('pipeline.exception'), 0, 'no exception escaped a stage');
  assert.equal(c.get('flow.consumer_error'), 0);
  assert.equal(c.get('decoder.pkts'), PACKETS);
  assert.ok(c.anomalyTotal() > 10_000, `mutations were noticed (${c.anomalyTotal()} anomalies)`);
  assert.ok(maxActive <= limits.maxFlows, `flow table bounded (${maxActive})`);
  assert.equal(pipeline.flows.active, 0);
  assert.ok(pipeline.decoder.defrag.bytesHeld <= 32 << 20);
  const heapGrowth = getHeapStatistics().used_heap_size - heapBefore;
  assert.ok(heapGrowth < 256 << 20, `heap growth ${heapGrowth} bytes`);
  assert.ok(touched > 0);
});

test('200,000 mutated HTTP packets through the whole sensor (connection-grouped batches, HTTP, extraction, matching): no exception escapes', () => {
  const seeds: Array<{ linkType: number; bytes: Uint8Array }> = [];
  for (const f of ['school-search/school-search.pcap', 'tcp/zeek-http-pipelined-requests.pcap', 'tcp/sv-http-brotli-ce.pcap', 'tcp/ws-http-ooo.pcap', 'tcp/sv-http-post-data-decompression.pcap', 'tcp/ndpi-WebattackXSS.pcap']) {
    readCaptureFile(fixture(...f.split('/')), (linkType, buf, off, len) => {
      if (seeds.length < 8000) seeds.push({ linkType, bytes: buf.slice(off, off + len) });
    });
  }
  let captures = 0;
  const sensor = new Sensor({ engine: 'js', onCapture: () => captures++ });
  const rnd = xorshift(SEED ^ 0xabcdef);
  // As the sensor reads: frames stay in place in a window until the batcher has handed them over.
  const batcher = sensor.pipeline.localityBatcher()!;
  const window = new Uint8Array(8 << 20);
  let at0 = 0;
  let ts = 1_700_000_000_000_000;
  for (let i = 0; i < 200_000; i++) {
    const s = seeds[rnd() % seeds.length];
    let len = s.bytes.length;
    if (at0 + len + 16 > window.length) {
      batcher.overwrite(window, 0, window.length);
      at0 = 0;
    }
    const scratch = window.subarray(at0);
    scratch.set(s.bytes);
    // Mostly payload mutations (past the headers), so HTTP and the text layers see damaged bytes.
    const mutations = rnd() % 3;
    for (let m = 0; m < mutations; m++) {
      const at = len > 54 ? 54 + (rnd() % (len - 54)) : 0;
      const kind = rnd() % 4;
      if (kind === 0) scratch[at] ^= 1 << (rnd() % 8);
      else if (kind === 1) scratch[at] = [0x0d, 0x0a, 0x3c, 0x26, 0x25, 0x22, 0x5c, 0x00][rnd() % 8];
      else if (kind === 2) len = Math.max(0, len - (rnd() % 16));
      else scratch[at] = rnd() & 0xff;
    }
    ts += rnd() % 5000;
    if (rnd() % 5000 === 0) ts -= 3_000_000; // a clock stepping back ends a batch
    batcher.add(s.linkType, window, at0, len, len, ts, 0);
    at0 += len;
  }
  batcher.flush();
  sensor.finish();
  const c = sensor.counters;
  assert.equal(c.get('pipeline.exception'), 0, 'no exception escaped a stage');
  assert.equal(c.get('flow.consumer_error'), 0, 'no app-layer or inspection exception');
  assert.equal(c.get('decoder.pkts'), 200_000, 'every frame was handed over once');
  assert.ok(c.get('http.requests') > 1000, `HTTP was parsed (${c.get('http.requests')} requests)`);
  assert.ok(captures > 0, 'phrases were still found in the surviving text');
});

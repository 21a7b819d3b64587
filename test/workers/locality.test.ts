/**
 * Connection-grouped batches (sensor/workers/locality.ts): the order frames are handed over in,
 * where a batch ends, expiry held while a batch is handed over, the ring consumer's hand-off, and
 * end to end that a grouped run finds exactly what a run in capture order finds (the generated
 * benchmark workload: 200 interleaved connections with gzip, chunked bodies, retransmissions and
 * out-of-order segments, and its planted ground truth).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pipeline } from '../../sensor/pipeline.js';
import { Sensor } from '../../sensor/main.js';
import { DEFAULT_FLOW_LIMITS, type FlowRecord } from '../../sensor/flow/flow-table.js';
import { LocalityBatcher, MAX_BATCH_SPAN_US } from '../../sensor/workers/locality.js';
import { createRingBuffer, RingConsumer, RingProducer } from '../../sensor/workers/shared-ring.js';
import { generateWorkload, plantedTotal, workloadPhrase, workloadPhrases } from '../../bench/workload.js';
import { ethTcp, ethUdp, ethernet, ETHERTYPE, TCP_FLAGS } from '../helpers/packets.js';
import { withTempFile, writePcap, type PcapPacket } from '../helpers/pcap-writer.js';

interface Seen {
  tag: number;
  ts: number;
}

/** A batcher that records what it hands over: each frame's tag travels as its origLen. */
function recorder(frames = 1024): { batcher: LocalityBatcher; seen: Seen[]; holds: boolean[] } {
  const seen: Seen[] = [];
  const holds: boolean[] = [];
  const batcher = new LocalityBatcher(
    (_link, _buf, _off, _cap, origLen, tsUs) => seen.push({ tag: origLen, ts: tsUs }),
    { batchStart: () => holds.push(true), batchEnd: () => holds.push(false) },
    frames,
  );
  return { batcher, seen, holds };
}

const A = (seq: number) => ethTcp({ src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80, seq }, Buffer.from('a'));
const A_BACK = (seq: number) => ethTcp({ src: '10.0.0.2', dst: '10.0.0.1', sport: 80, dport: 40000, seq }, Buffer.from('A'));
const B = (seq: number) => ethTcp({ src: '10.0.0.3', dst: '10.0.0.2', sport: 40001, dport: 80, seq }, Buffer.from('b'));
const DNS = () => ethUdp({ src: '10.0.0.1', dst: '10.0.0.53', sport: 5353, dport: 53 }, Buffer.from('q'));
const ARP = () => ethernet({ type: ETHERTYPE.ARP }, Buffer.alloc(28));

/** Adds frames tagged 0, 1, 2... (the tag travels as origLen) one millisecond apart. */
function feed(batcher: LocalityBatcher, frames: Buffer[], t0 = 1_000_000, stepUs = 1000): void {
  frames.forEach((f, i) => batcher.add(1, f, 0, f.length, i, t0 + i * stepUs, 0));
}

test('a batch hands each TCP connection over at its first frame, both directions together, everything else in place', () => {
  const { batcher, seen, holds } = recorder();
  //           0     1       2      3     4         5      6      7
  feed(batcher, [A(1), B(1), DNS(), A(2), A_BACK(9), ARP(), B(2), A(3)]);
  assert.equal(seen.length, 0, 'nothing is handed over before flush');
  assert.equal(batcher.pending, 8);
  batcher.flush();
  assert.deepEqual(seen.map((s) => s.tag), [0, 3, 4, 7, 1, 6, 2, 5]);
  assert.deepEqual(holds, [true, false], 'expiry is held exactly while the batch is handed over');
  assert.equal(batcher.pending, 0);
  batcher.flush();
  assert.equal(seen.length, 8, 'an empty flush hands nothing over');
});

test('a batch ends at its frame limit, at a frame beyond the time span, and before a frame earlier than its first', () => {
  // frame limit 3: [A B A] then [B A]: grouping never reaches across the limit
  let r = recorder(3);
  feed(r.batcher, [A(1), B(1), A(2), B(2), A(3)]);
  r.batcher.flush();
  assert.deepEqual(r.seen.map((s) => s.tag), [0, 2, 1, 3, 4]);

  // time span: the third frame is more than MAX_BATCH_SPAN_US after the first
  r = recorder();
  const t0 = 5_000_000;
  const frames = [A(1), B(1), A(2), B(2)];
  const times = [t0, t0 + 10, t0 + MAX_BATCH_SPAN_US + 11, t0 + MAX_BATCH_SPAN_US + 12];
  frames.forEach((f, i) => r.batcher.add(1, f, 0, f.length, i, times[i], 0));
  r.batcher.flush();
  assert.deepEqual(r.seen.map((s) => s.tag), [0, 1, 2, 3], 'A(2) is not pulled back across the span');

  // time going back (a merged source, a clock step): the batch ends first
  r = recorder();
  [A(1), B(1), A(2)].forEach((f, i) => r.batcher.add(1, f, 0, f.length, i, [t0, t0 + 5, t0 - 1][i], 0));
  r.batcher.flush();
  assert.deepEqual(r.seen.map((s) => s.tag), [0, 1, 2]);
});

test('frames in a source range about to be overwritten are handed over first', () => {
  const { batcher, seen } = recorder();
  const window = new Uint8Array(4096);
  const a = A(1);
  const b = B(1);
  window.set(a, 100);
  window.set(b, 200);
  batcher.add(1, window, 100, a.length, 0, 1, 0);
  batcher.add(1, window, 200, b.length, 1, 2, 0);
  batcher.overwrite(window, 0, 100);
  batcher.overwrite(new Uint8Array(4096), 0, 4096);
  batcher.overwrite(window, 200 + b.length, 4096);
  assert.equal(seen.length, 0, 'ranges that miss the pending frames, or another buffer, change nothing');
  batcher.overwrite(window, 150, 210);
  assert.deepEqual(seen.map((s) => s.tag), [0, 1]);
  // the range is tracked in the first frame's buffer: with a frame in another, any overwrite flushes
  batcher.add(1, window, 100, a.length, 2, 3, 0);
  batcher.add(1, Buffer.from(b), 0, b.length, 3, 4, 0);
  assert.equal(seen.length, 2);
  batcher.overwrite(window, 3000, 4096);
  assert.deepEqual(seen.map((s) => s.tag), [0, 1, 2, 3]);
});

/** One TCP connection's frames (handshake, a request, FIN) from `port`, starting at tsUs. */
function connection(port: number, tsUs: number, stepUs: number, label: string): PcapPacket[] {
  const c = { src: '192.0.2.10', dst: '198.51.100.1', sport: port, dport: 80 };
  const s = { src: c.dst, dst: c.src, sport: 80, dport: port };
  const body = Buffer.from(`GET /${label} HTTP/1.1\r\nHost: example.test\r\n\r\n`);
  return [
    ethTcp({ ...c, seq: 100, flags: TCP_FLAGS.SYN }),
    ethTcp({ ...s, seq: 500, ack: 101, flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK }),
    ethTcp({ ...c, seq: 101, ack: 501 }),
    ethTcp({ ...c, seq: 101, ack: 501, flags: TCP_FLAGS.ACK | TCP_FLAGS.PSH }, body),
  ].map((data, i) => ({ data, tsUs: tsUs + i * stepUs }));
}

function flowRecords(file: string, localityFrames: number, idleUs: number): string[] {
  const out: string[] = [];
  const pipeline = new Pipeline({
    localityFrames,
    flowLimits: { ...DEFAULT_FLOW_LIMITS, tcpEstablishedTimeoutUs: idleUs },
    flowEnded: { flowEnded: (r: FlowRecord) => out.push(JSON.stringify([r.srcPort, r.dstPort, r.pkts, r.bytes, r.dataBytes, r.gaps, r.closeReason, r.midstream])) },
  });
  pipeline.runFile(file);
  return out.sort();
}

test('a frame handed over later than another connection\'s later frames does not find its flow timed out', () => {
  // Flow B goes quiet for just under the idle timeout; its next frame comes between frames of
  // flow A, the last of which is past B's deadline. With 4-frame batches the second batch is
  // [A, A, B, A], handed over as [A, A, A, B]: A's last frame runs first.
  const idleUs = 1_000_000;
  const t0 = 1_700_000_000_000_000;
  const b = connection(41000, t0, 1000, 'b');
  const bLate = ethTcp({ src: '192.0.2.10', dst: '198.51.100.1', sport: 41000, dport: 80, seq: 101 + 44, ack: 501, flags: TCP_FLAGS.ACK | TCP_FLAGS.FIN });
  const a = connection(42000, t0 + 500_000, 1000, 'a');
  const packets: PcapPacket[] = [
    ...b,
    ...a.slice(0, 2),
    { data: bLate, tsUs: t0 + 3000 + idleUs - 100 },
    ...a.slice(2).map((p, i) => ({ ...p, tsUs: t0 + 1_200_000 + i })),
  ];
  withTempFile(writePcap(packets), (file) => {
    const inOrder = flowRecords(file, 0, idleUs);
    assert.equal(inOrder.length, 2, `two connections, none split by a timeout: ${inOrder.join(' ')}`);
    assert.deepEqual(flowRecords(file, 4, idleUs), inOrder);
  });
});

test('a source that wraps hands the batch over first: bytes kept by reference are copied before they are overwritten', () => {
  // A read window W that the pipeline keeps delivered bytes in by reference (as runFile's). A
  // batch is pending when the source wraps to W's start; its frames must be delivered as part of
  // the pass they were read in, or reassembly copies them too late: here the bytes of D1 are then
  // overwritten, and an exact retransmission of D1 looks altered (an overlap mismatch).
  const W = new Uint8Array(4096);
  const p = new Pipeline({});
  const batcher = p.localityBatcher(64)!;
  const overwrite = (from: number, to: number): void => {
    batcher.overwrite(W, from, to);
    p.flows.sourceOverwrite(W, from, to);
  };
  const put = (frame: Buffer, at: number, tsUs: number): void => {
    W.set(frame, at);
    batcher.add(1, W, at, frame.length, frame.length, tsUs, 0);
  };
  const c = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80 };
  const sv = { src: c.dst, dst: c.src, sport: 80, dport: 40000 };
  const d1 = Buffer.from('GET /secret HTTP/1.1\r\nHost: a\r\n\r\n');
  const D1 = ethTcp({ ...c, seq: 101, ack: 501, flags: TCP_FLAGS.ACK | TCP_FLAGS.PSH }, d1);
  // the first pass, read in two pieces as the file reader does
  overwrite(0, 2048);
  overwrite(2048, W.length);
  put(ethTcp({ ...c, seq: 100, flags: TCP_FLAGS.SYN }), 1000, 1);
  put(ethTcp({ ...sv, seq: 500, ack: 101, flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK }), 1200, 2);
  put(ethTcp({ ...c, seq: 101, ack: 501 }), 1400, 3);
  put(D1, 3000, 4);
  overwrite(0, 100); // wraps: nothing pending lies in [0, 100)
  batcher.flush();
  overwrite(100, W.length); // the rest of the new pass, D1's bytes included
  W.fill(0x5a, 3000, 3000 + D1.length);
  put(ethTcp({ ...c, seq: 101, ack: 501, flags: TCP_FLAGS.ACK | TCP_FLAGS.PSH, id: 0x777 }, d1), 200, 5);
  batcher.flush();
  p.finish();
  assert.equal(p.counters.get('tcp.retransmission'), 1);
  assert.equal(p.counters.get('stream.tcp.overlap_mismatch'), 0, 'the retained copy of D1 is what was on the wire');
});

test('a ring consumer calls beforeRelease with the records still held, stops at maxBytes, then releases', () => {
  const sab = createRingBuffer(1 << 16);
  const producer = new RingProducer(sab);
  const consumer = new RingConsumer(sab);
  const frame = Buffer.alloc(100, 7);
  for (let i = 0; i < 10; i++) assert.ok(producer.write(1, frame, 0, frame.length, frame.length, i, 0));
  producer.publish();
  assert.equal(consumer.capacity, 1 << 16);
  const views: Uint8Array[] = [];
  let backlogInHook = -1;
  const n = consumer.consume(
    (_l, buf, off, cap) => views.push(buf.subarray(off, off + cap)),
    100,
    300,
    () => {
      backlogInHook = consumer.backlog;
      assert.ok(views.every((v) => v.every((x) => x === 7)), 'the records are intact in beforeRelease');
    },
  );
  // 100-byte frames take 128 bytes with their header: the third record crosses 300 bytes
  assert.equal(n, 3);
  assert.equal(backlogInHook, 10, 'nothing was released before the hook ran');
  assert.equal(consumer.backlog, 7);
  assert.equal(consumer.consume(() => {}, 100), 7);
});

test('grouped and in-order runs of a generated workload find the same captures, and the planted total', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hark-locality-'));
  try {
    generateWorkload(dir, { flows: 400, concurrency: 200, seed: 11 }, true);
    const planted = plantedTotal(dir);
    const dictionary = { name: 'workload', phrases: workloadPhrases(dir).map(workloadPhrase) };
    const run = (localityFrames: number) => {
      // a capture whose merge window took in repeats is emitted again with its final count
      const latest = new Map<string, string>();
      const sensor = new Sensor({ dictionary, localityFrames, onCapture: (c) => latest.set(c.id, JSON.stringify(c)) });
      // a 1 MiB read window comes round every few batches: frames are handed over before it does
      sensor.pipeline.runFile(join(dir, 'workload.pcap'), { windowBytes: 1 << 20 });
      sensor.finish();
      let hits = 0;
      for (const c of latest.values()) hits += (JSON.parse(c) as { count: number }).count;
      return { captures: [...latest.values()].sort(), hits, counters: sensor.pipeline.counters.snapshot() };
    };
    const inOrder = run(0);
    assert.equal(inOrder.hits, planted);
    for (const frames of [97, 4096]) {
      const grouped = run(frames);
      assert.equal(grouped.hits, planted, `${frames}-frame batches`);
      assert.equal(grouped.captures.length, inOrder.captures.length);
      assert.deepEqual(grouped.captures, inOrder.captures, `${frames}-frame batches: the same captures, field for field`);
      assert.deepEqual(grouped.counters, inOrder.counters, `${frames}-frame batches: the same counters`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

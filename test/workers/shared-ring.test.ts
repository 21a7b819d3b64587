/**
 * The shared packet ring: records come out byte for byte with their header fields, in order,
 * across wrap-around; a full ring refuses (and the caller counts) rather than blocking; nothing
 * is visible before publish(); and a producer thread and a consumer thread hammering one ring
 * lose or corrupt no record.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { createRingBuffer, maxFrameBytes, MIN_RING_BYTES, RECORD_HEADER_BYTES, RingConsumer, RingProducer } from '../../sensor/workers/shared-ring.js';

interface Rec {
  linkType: number;
  frame: Buffer;
  origLen: number;
  tsUs: number;
  ifIndex: number;
}

/** Deterministic frame bytes for record `i` of length `len`. */
function frameFor(i: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  let x = (i * 2654435761) >>> 0;
  for (let k = 0; k < len; k++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[k] = x >>> 24;
  }
  return b;
}

function drainAll(c: RingConsumer): Rec[] {
  const out: Rec[] = [];
  while (c.consume((linkType, buf, off, capLen, origLen, tsUs, ifIndex) => {
    out.push({ linkType, frame: Buffer.from(buf.subarray(off, off + capLen)), origLen, tsUs, ifIndex });
  }, 1000) > 0);
  return out;
}

test('RingProducer / RingConsumer hand over records byte for byte with every header field', () => {
  const sab = createRingBuffer(1 << 16);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  const sent: Rec[] = [];
  for (let i = 0; i < 20; i++) {
    const frame = frameFor(i, [0, 1, 7, 8, 9, 60, 1514][i % 7] + i);
    const r: Rec = { linkType: [1, 113, 276, 101][i % 4], frame, origLen: frame.length + i * 3, tsUs: 1_700_000_000_123_456 + i * 1_000_001, ifIndex: i % 5 };
    // The frame sits inside a bigger buffer, as a capture block's view does.
    const host = Buffer.concat([Buffer.alloc(13, 0xee), frame, Buffer.alloc(5, 0xdd)]);
    assert.equal(p.write(r.linkType, host, 13, frame.length, r.origLen, r.tsUs, r.ifIndex), true);
    sent.push(r);
  }
  p.publish();
  assert.deepEqual(drainAll(c), sent);
});

test('RingConsumer sees nothing until publish()', () => {
  const sab = createRingBuffer(MIN_RING_BYTES);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  p.write(1, frameFor(1, 100), 0, 100, 100, 1, 0);
  assert.equal(c.hasData(), false);
  assert.equal(drainAll(c).length, 0);
  p.publish();
  assert.equal(c.hasData(), true);
  assert.equal(drainAll(c).length, 1);
});

test('RingProducer wraps records around the end of the buffer many times, in order', () => {
  const sab = createRingBuffer(MIN_RING_BYTES);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  let sent = 0;
  const got: Rec[] = [];
  // Lengths that do not divide the ring, so records straddle the end and need the wrap marker.
  for (let round = 0; round < 200; round++) {
    for (let k = 0; k < 3; k++) {
      const len = 100 + ((sent * 37) % 500);
      assert.equal(p.write(1, frameFor(sent, len), 0, len, len, sent, 0), true, `record ${sent} fits`);
      sent++;
    }
    p.publish();
    got.push(...drainAll(c));
  }
  assert.equal(got.length, sent);
  got.forEach((r, i) => {
    assert.equal(r.tsUs, i);
    assert.ok(r.frame.equals(frameFor(i, 100 + ((i * 37) % 500))), `record ${i} intact`);
  });
  // 600 records of ~370 bytes through 4 KiB: the ring went round about 50 times.
  assert.ok(sent * 370 > 40 * MIN_RING_BYTES);
});

test('RingProducer.write refuses when the ring is full (never blocks) and takes frames again once consumed', () => {
  const sab = createRingBuffer(MIN_RING_BYTES);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  const len = 200;
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < 100; i++) {
    if (p.write(1, frameFor(i, len), 0, len, len, i, 0)) accepted++;
    else refused++;
  }
  const recordBytes = RECORD_HEADER_BYTES + len; // 224, already 8-aligned
  assert.equal(accepted, Math.floor(MIN_RING_BYTES / recordBytes));
  assert.equal(refused, 100 - accepted);
  p.publish();
  const got = drainAll(c);
  assert.equal(got.length, accepted);
  assert.deepEqual(got.map((r) => r.tsUs), [...Array(accepted).keys()]);
  assert.equal(p.write(1, frameFor(999, len), 0, len, len, 999, 0), true);
});

test('RingProducer.write refuses a frame longer than a quarter of the ring, and 16-bit overflows', () => {
  const sab = createRingBuffer(MIN_RING_BYTES);
  const p = new RingProducer(sab);
  const max = maxFrameBytes(MIN_RING_BYTES);
  assert.equal(p.write(1, Buffer.alloc(max + 1), 0, max + 1, max + 1, 0, 0), false);
  assert.equal(p.write(1, Buffer.alloc(max), 0, max, max, 0, 0), true);
  assert.equal(p.write(70000, Buffer.alloc(10), 0, 10, 10, 0, 0), false);
  assert.equal(p.write(1, Buffer.alloc(10), 0, 10, 10, 0, 70000), false);
});

test('createRingBuffer rejects a size that is not a power of two', () => {
  assert.throws(() => createRingBuffer(5000), RangeError);
  assert.throws(() => createRingBuffer(1024), RangeError);
});

test('RingProducer.discardUnconsumed drops what a dead consumer left and says how many', () => {
  const sab = createRingBuffer(1 << 14);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  for (let i = 0; i < 10; i++) p.write(1, frameFor(i, 50), 0, 50, 50, i, 0);
  p.publish();
  c.consume(() => undefined, 4);
  p.write(1, frameFor(10, 50), 0, 50, 50, 10, 0); // written, never published
  assert.equal(p.discardUnconsumed(), 7);
  const next = new RingConsumer(sab);
  assert.equal(next.backlog, 0);
  assert.equal(drainAll(next).length, 0);
  p.write(1, frameFor(11, 50), 0, 50, 50, 11, 0);
  p.publish();
  assert.deepEqual(drainAll(next).map((r) => r.tsUs), [11]);
});

test('RingConsumer.consume releases records even when the handler throws', () => {
  const sab = createRingBuffer(MIN_RING_BYTES);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  for (let i = 0; i < 3; i++) p.write(1, frameFor(i, 10), 0, 10, 10, i, 0);
  p.publish();
  assert.throws(() => c.consume((_l, _b, _o, _c, _g, ts) => {
    if (ts === 1) throw new Error('boom');
  }, 10), /boom/);
  assert.deepEqual(drainAll(c).map((r) => r.tsUs), [2]);
});

/**
 * The consumer thread: reads `count` records (or until told the producer is done), checks every
 * byte against frameFor(seq) and posts what it found.
 */
const CONSUMER = `
const { workerData, parentPort } = require('node:worker_threads');
import(workerData.ringModule).then(({ RingConsumer }) => {
  const c = new RingConsumer(workerData.sab);
  const done = new Int32Array(workerData.done);
  let received = 0, corrupt = 0, outOfOrder = 0, last = -1;
  const check = (linkType, buf, off, capLen, origLen, tsUs, ifIndex) => {
    const seq = tsUs;
    if (seq <= last) outOfOrder++;
    last = seq;
    let x = (seq * 2654435761) >>> 0;
    let ok = capLen === (seq % 1500) + 1 && origLen === capLen + 4 && linkType === 1 && ifIndex === seq % 3;
    for (let k = 0; ok && k < capLen; k++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      if (buf[off + k] !== (x >>> 24)) ok = false;
    }
    if (!ok) corrupt++;
    received++;
  };
  for (;;) {
    const n = c.consume(check, 64);
    if (n === 0) {
      if (Atomics.load(done, 0) === 1 && !c.hasData()) break;
      c.waitForDataSync(50);
    }
  }
  parentPort.postMessage({ received, corrupt, outOfOrder });
});
`;

async function hammer(count: number, waitForRoom: boolean): Promise<{ received: number; corrupt: number; outOfOrder: number; refused: number }> {
  const sab = createRingBuffer(1 << 16);
  const done = new SharedArrayBuffer(4);
  const w = new Worker(CONSUMER, { eval: true, workerData: { sab, done, ringModule: new URL('../../sensor/workers/shared-ring.js', import.meta.url).href } });
  const result = new Promise<{ received: number; corrupt: number; outOfOrder: number }>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  const p = new RingProducer(sab);
  let refused = 0;
  for (let seq = 0; seq < count; seq++) {
    const len = (seq % 1500) + 1;
    const frame = frameFor(seq, len);
    const ok = waitForRoom ? p.writeWaiting(1, frame, 0, len, len + 4, seq, seq % 3, 10_000) : p.write(1, frame, 0, len, len + 4, seq, seq % 3);
    if (!ok) refused++;
    if (seq % 16 === 15) p.publish();
  }
  p.publish();
  Atomics.store(new Int32Array(done), 0, 1);
  const r = await result;
  await w.terminate();
  return { ...r, refused };
}

test('a producer thread and a consumer thread hammering one ring: every record arrives intact and in order (producer waits for room)', async () => {
  const r = await hammer(20_000, true);
  assert.deepEqual(r, { received: 20_000, corrupt: 0, outOfOrder: 0, refused: 0 });
});

test('a producer that never waits: refused frames are exactly the ones missing, the rest intact and in order', async () => {
  const r = await hammer(20_000, false);
  assert.equal(r.corrupt, 0);
  assert.equal(r.outOfOrder, 0);
  assert.equal(r.received + r.refused, 20_000);
});

test('a frame lands at the same address modulo 8 as its source (a word-wise copy), intact, across wraps', () => {
  const sab = createRingBuffer(MIN_RING_BYTES);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  // sources at every alignment, as a TPACKET_V3 block holds them (Ethernet frames start 2 past a boundary)
  const block = Buffer.alloc(4096);
  let seen = 0;
  for (let i = 0; i < 400; i++) {
    const len = 60 + ((i * 37) % 700);
    const srcOff = 8 * (i % 16) + (i % 8);
    const frame = frameFor(i, len);
    frame.copy(block, srcOff);
    assert.equal(p.write(1, block, srcOff, len, len + 4, i, 3), true, `frame ${i}`);
    p.publish();
    c.consume((linkType, buf, off, capLen, origLen, tsUs, ifIndex) => {
      assert.equal((buf.byteOffset + off) % 8, (block.byteOffset + srcOff) % 8, `frame ${i}: alignment kept`);
      assert.deepEqual(Buffer.from(buf.subarray(off, off + capLen)), frame);
      assert.deepEqual([linkType, origLen, tsUs, ifIndex], [1, len + 4, i, 3]);
      seen++;
    }, 10);
  }
  assert.equal(seen, 400);
});

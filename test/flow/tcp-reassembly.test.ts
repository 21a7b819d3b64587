/**
 * Table-driven reassembly tests: segments (sequence number, bytes) in arrival order -> the exact
 * stream the consumer sees (gaps shown as [n missing]) and the counters that must move.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Counters } from '../../sensor/events/counters.js';
import { DEFAULT_REASSEMBLY_LIMITS, HalfStore, ReassemblyBudget, TcpHalf, type ReassemblyLimits } from '../../sensor/flow/tcp-reassembly.js';

interface Seg {
  seq: number;
  data: string;
  ts?: number;
}

function run(opts: { isn?: number; start?: number; segs: Seg[]; acks?: Array<{ after: number; ack: number; ts: number }>; limits?: Partial<ReassemblyLimits>; budget?: number; flush?: boolean }) {
  const counters = new Counters();
  let out = '';
  const gaps: number[] = [];
  const half = new TcpHalf(
    {
      data: (b) => {
        out += Buffer.from(b).toString('latin1');
      },
      gap: (n) => {
        out += `[${n} missing]`;
        gaps.push(n);
      },
    },
    counters,
    new ReassemblyBudget(opts.budget ?? 1 << 30),
    { ...DEFAULT_REASSEMBLY_LIMITS, ...opts.limits },
  );
  if (opts.isn !== undefined) half.startFromSyn(opts.isn);
  if (opts.start !== undefined) half.startAt(opts.start);
  opts.segs.forEach((s, i) => {
    const b = Buffer.from(s.data, 'latin1');
    half.segment(s.seq >>> 0, b, 0, b.length, s.ts ?? i);
    for (const a of opts.acks ?? []) if (a.after === i) half.acked(a.ack >>> 0, a.ts);
  });
  if (opts.flush !== false) half.flush(1e9);
  return { out, gaps, counters, half };
}

describe('TcpHalf', () => {
  test('delivers in-order segments after a SYN', () => {
    const r = run({ isn: 999, segs: [{ seq: 1000, data: 'GET ' }, { seq: 1004, data: '/ HTTP/1.1' }] });
    assert.equal(r.out, 'GET / HTTP/1.1');
    assert.equal(r.counters.get('tcp.segments_out_of_order'), 0);
  });

  test('reorders out-of-order segments', () => {
    const r = run({ isn: 0, segs: [{ seq: 5, data: 'world' }, { seq: 11, data: '!' }, { seq: 1, data: 'hell' }, { seq: 10, data: ' ' }] });
    assert.equal(r.out, 'hellworld !');
    assert.equal(r.counters.get('tcp.reassembly_gap'), 0);
    assert.ok(r.counters.get('tcp.segments_out_of_order') >= 2);
  });

  test('drops an exact retransmission and verifies it matches', () => {
    const r = run({ isn: 0, segs: [{ seq: 1, data: 'abcd' }, { seq: 1, data: 'abcd' }, { seq: 5, data: 'ef' }] });
    assert.equal(r.out, 'abcdef');
    assert.equal(r.counters.get('tcp.retransmission'), 1);
    assert.equal(r.counters.get('stream.tcp.overlap_mismatch'), 0);
  });

  test('keeps the first bytes when a retransmission differs, and raises an anomaly', () => {
    const r = run({ isn: 0, segs: [{ seq: 1, data: 'GOOD' }, { seq: 1, data: 'EVIL' }] });
    assert.equal(r.out, 'GOOD');
    assert.equal(r.counters.get('stream.tcp.overlap_mismatch'), 1);
  });

  test('takes only the new tail of a retransmission that extends the data', () => {
    const r = run({ isn: 0, segs: [{ seq: 1, data: 'abcd' }, { seq: 3, data: 'cdEFG' }] });
    assert.equal(r.out, 'abcdEFG');
    assert.equal(r.counters.get('stream.tcp.overlap_mismatch'), 0);
  });

  test('resolves overlapping out-of-order segments first-wins', () => {
    const r = run({ isn: 0, segs: [{ seq: 5, data: 'XXXX' }, { seq: 3, data: 'cdYYYYgh' }, { seq: 1, data: 'ab' }] });
    assert.equal(r.out, 'abcdXXXXgh');
    assert.equal(r.counters.get('stream.tcp.overlap_mismatch'), 1);
  });

  test('an in-order segment overlapping held data does not overwrite it', () => {
    const r = run({ isn: 0, segs: [{ seq: 3, data: 'CD' }, { seq: 1, data: 'abcdef' }] });
    assert.equal(r.out, 'abCDef');
    assert.equal(r.counters.get('stream.tcp.overlap_mismatch'), 1);
  });

  test('reports a gap at the end of the stream for a hole never filled', () => {
    const r = run({ isn: 1, segs: [{ seq: 2, data: 'VERY' }, { seq: 10, data: 'DATA' }] });
    assert.equal(r.out, 'VERY[4 missing]DATA');
    assert.deepEqual(r.gaps, [4]);
    assert.equal(r.half.gapBytes, 4);
  });

  test('declares an acknowledged hole lost after the grace time, without waiting for the end', () => {
    const r = run({
      isn: 0,
      flush: false,
      segs: [{ seq: 1, data: 'ab' }, { seq: 6, data: 'fg', ts: 10 }],
      acks: [{ after: 1, ack: 8, ts: 10 }, { after: 1, ack: 8, ts: 10 + DEFAULT_REASSEMBLY_LIMITS.ackedHoleGraceUs }],
    });
    assert.equal(r.out, 'ab[3 missing]fg');
  });

  test('an acknowledged hole filled within the grace time is not a gap', () => {
    const counters = new Counters();
    let out = '';
    const half = new TcpHalf({ data: (b) => (out += Buffer.from(b).toString()), gap: (n) => (out += `[${n}]`) }, counters, new ReassemblyBudget(1 << 20));
    half.startFromSyn(0);
    half.segment(4, Buffer.from('d'), 0, 1, 0);
    half.acked(5, 1); // the ACK was mirrored before the data it acknowledges
    half.segment(1, Buffer.from('abc'), 0, 3, 2);
    assert.equal(out, 'abcd');
    assert.equal(counters.get('tcp.reassembly_gap'), 0);
  });

  test('handles 32-bit sequence wrap-around', () => {
    const r = run({ isn: 0xfffffffd, segs: [{ seq: 0xfffffffe, data: 'ab' }, { seq: 2, data: 'ef' }, { seq: 0, data: 'cd' }] });
    assert.equal(r.out, 'abcdef');
    assert.equal(r.counters.get('tcp.reassembly_gap'), 0);
  });

  test('midstream pickup starts at the first segment seen', () => {
    const r = run({ segs: [{ seq: 5000, data: 'middle' }, { seq: 5006, data: ' end' }] });
    assert.equal(r.out, 'middle end');
    assert.equal(r.half.fromSyn, false);
  });

  test('startAt from a SYN-ACK acknowledgement places out-of-order first bytes correctly', () => {
    const r = run({ start: 100, segs: [{ seq: 101, data: 'ello' }, { seq: 100, data: 'h' }] });
    assert.equal(r.out, 'hello');
  });

  test('turns the oldest hole into a gap when the per-stream out-of-order limit bites', () => {
    const r = run({ isn: 0, limits: { maxOooBytesPerStream: 8 }, segs: [{ seq: 3, data: 'cdef' }, { seq: 7, data: 'ghij' }, { seq: 11, data: 'k' }] });
    assert.equal(r.out, '[2 missing]cdefghijk');
    assert.equal(r.counters.get('tcp.ooo_depth_reached'), 1);
  });

  test('turns the oldest hole into a gap when the global budget is exhausted', () => {
    const r = run({ isn: 0, budget: 4, segs: [{ seq: 3, data: 'cdef' }, { seq: 8, data: 'h' }] });
    assert.equal(r.counters.get('tcp.reassembly_memcap'), 1);
    assert.equal(r.out, '[2 missing]cdef[1 missing]h');
  });

  test('limits the number of held segments', () => {
    const segs: Seg[] = [];
    for (let i = 0; i < 5; i++) segs.push({ seq: 10 + 2 * i, data: 'x' });
    const r = run({ isn: 0, limits: { maxOooSegmentsPerStream: 3 }, segs });
    assert.ok(r.counters.get('tcp.ooo_depth_reached') >= 1);
    assert.ok(r.out.startsWith('[9 missing]x'));
  });

  test('checks a retransmission against the retained copy even after the source buffer was reused', () => {
    const counters = new Counters();
    let out = '';
    const half = new TcpHalf({ data: (b) => (out += Buffer.from(b).toString()), gap: () => {} }, counters, new ReassemblyBudget(1 << 20));
    half.startFromSyn(0);
    const buf = Buffer.from('GOOD');
    half.segment(1, buf, 0, 4, 0);
    buf.write('EVIL'); // the reader refills its buffer: only the copy still holds GOOD
    half.segment(1, buf, 0, 4, 1);
    assert.equal(out, 'GOOD');
    assert.equal(counters.get('stream.tcp.overlap_mismatch'), 1);
    assert.equal(counters.get('tcp.retransmission_unverified'), 0);
  });

  test('counts a retransmission older than the retained bytes as unverified', () => {
    const r = run({ isn: 0, limits: { retainBytes: 4 }, segs: [{ seq: 1, data: 'abcd' }, { seq: 5, data: 'efgh' }, { seq: 1, data: 'abcd' }] });
    assert.equal(r.out, 'abcdefgh');
    assert.equal(r.counters.get('tcp.retransmission_unverified'), 1);
  });

  test('fin marks the stream finished once every byte before it is delivered', () => {
    const counters = new Counters();
    const half = new TcpHalf({ data: () => {}, gap: () => {} }, counters, new ReassemblyBudget(1 << 20));
    half.startFromSyn(0);
    half.fin(4);
    assert.equal(half.finished, false);
    half.segment(1, Buffer.from('abc'), 0, 3, 0);
    assert.equal(half.finished, true);
  });

  test('gives the same stream whatever the arrival order (every permutation of 5 segments)', () => {
    const parts = ['GET /', ' HTTP', '/1.1\r', '\nHost', ': x\r\n'];
    const segs: Seg[] = [];
    let seq = 1;
    for (const p of parts) {
      segs.push({ seq, data: p });
      seq += p.length;
    }
    const perms = (a: Seg[]): Seg[][] => (a.length <= 1 ? [a] : a.flatMap((x, i) => perms([...a.slice(0, i), ...a.slice(i + 1)]).map((r) => [x, ...r])));
    for (const order of perms(segs)) {
      const r = run({ isn: 0, segs: order });
      assert.equal(r.out, parts.join(''), `order ${order.map((s) => s.seq).join(',')}`);
    }
  });
});

describe('HalfStore retention by reference', () => {
  /**
   * Two stores get the same segments: one copies every delivery into its rings, the other is told
   * the segments sit in a capture source's buffer and keeps references until the source says it
   * will overwrite them (the test then really overwrites them). Retransmissions of old bytes, some
   * altered, must be judged the same way by both, whatever the segment sizes and buffer wraps.
   */
  function compare(seed: number, retainBytes: number, sourceBytes: number) {
    let s = seed >>> 0 || 1;
    const rnd = () => {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      return s;
    };
    const HALVES = 3;
    const limits = { ...DEFAULT_REASSEMBLY_LIMITS, retainBytes };
    const make = () => {
      const counters = new Counters();
      const out: string[] = [];
      const store = new HalfStore(
        {
          halfData: (h, b) => out.push(`${h}:${Buffer.from(b).toString('latin1')}`),
          halfGap: (h, n) => out.push(`${h}:[${n}]`),
        },
        counters,
        new ReassemblyBudget(1 << 30),
        limits,
        HALVES,
      );
      return { counters, out, store };
    };
    const eager = make();
    const byRef = make();
    let source = new Uint8Array(sourceBytes);
    let at = 0; // where the source writes next
    byRef.store.overwrite(source, 0, 0);
    // What each half has sent so far (for retransmissions), and its next sequence number.
    const sent = Array.from({ length: HALVES }, () => [] as number[]);
    for (let h = 0; h < HALVES; h++) {
      eager.store.startFromSyn(h, 999);
      byRef.store.startFromSyn(h, 999);
    }
    let mismatches = 0;
    for (let i = 0; i < 6000; i++) {
      const h = rnd() % HALVES;
      const k = rnd() % 100;
      const history = sent[h];
      if (k < 12 && history.length > 0) {
        // A retransmission of earlier bytes (maybe altered, maybe running past the end), from another buffer.
        const len = 1 + (rnd() % Math.min(history.length, 3000));
        const from = rnd() % (history.length - len + 1);
        const extra = rnd() % 4 === 0 ? rnd() % 50 : 0;
        const seg = Buffer.alloc(len + extra);
        for (let j = 0; j < len; j++) seg[j] = history[from + j];
        for (let j = 0; j < extra; j++) seg[len + j] = rnd() & 0xff;
        if (rnd() % 3 === 0) {
          seg[rnd() % len] ^= 0x20;
          mismatches++;
        }
        for (let j = 0; j < extra; j++) history.push(seg[len + j]);
        eager.store.segment(h, 1000 + from, seg, 0, seg.length, i);
        byRef.store.segment(h, 1000 + from, seg, 0, seg.length, i);
        continue;
      }
      if (k < 14) {
        // The stream ends (its rings and references go) and another starts on the same half.
        eager.store.reset(h);
        byRef.store.reset(h);
        eager.store.startFromSyn(h, 999);
        byRef.store.startFromSyn(h, 999);
        history.length = 0;
        continue;
      }
      if (k < 15) {
        // The source moves to a new buffer: everything referenced in the old one must be copied.
        source = new Uint8Array(sourceBytes);
        at = 0;
        byRef.store.overwrite(source, 0, 0);
        continue;
      }
      // New in-order data, written by the source into its buffer first (wrapping when it does not fit).
      const len = 1 + (k < 60 ? rnd() % 200 : rnd() % 1600);
      if (at + len > source.length) at = 0;
      byRef.store.overwrite(source, at, at + len);
      for (let j = 0; j < len; j++) {
        const v = rnd() & 0xff;
        source[at + j] = v;
        history.push(v);
      }
      const seq = 1000 + history.length - len;
      eager.store.segment(h, seq, source.slice(at, at + len), 0, len, i);
      byRef.store.segment(h, seq, source, at, len, i);
      at += len;
    }
    assert.deepEqual(byRef.out, eager.out);
    assert.deepEqual(byRef.counters.snapshot(), eager.counters.snapshot());
    for (let h = 0; h < HALVES; h++) assert.equal(byRef.store.mismatches(h), eager.store.mismatches(h));
    return { counters: eager.counters, mismatches };
  }

  test('judges retransmissions exactly as copying everything does (4 KiB retained, small source buffer)', () => {
    const r = compare(0x51ed, 4096, 20_000);
    assert.ok(r.counters.get('stream.tcp.overlap_mismatch') > 20, 'altered retransmissions were caught');
    assert.ok(r.counters.get('tcp.overlap') > 100);
    assert.ok(r.counters.get('tcp.retransmission_unverified') > 0, 'some retransmissions were older than what is retained');
  });

  test('judges retransmissions exactly as copying everything does (tiny retention, large source buffer)', () => {
    const r = compare(0xbeef, 300, 1 << 20);
    assert.ok(r.counters.get('stream.tcp.overlap_mismatch') > 0);
  });
});

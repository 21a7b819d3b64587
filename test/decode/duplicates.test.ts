/**
 * Mirror-port duplicates: an identical copy within the window is dropped and counted; a copy after
 * the window, a retransmission (new IPv4 id) or different data passes. A capture with every frame
 * doubled reassembles to exactly the same streams as the original.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counters } from '../../sensor/events/counters.js';
import { DEFAULT_DUPLICATE_WINDOW_US, DUPLICATE_SLOTS, DuplicateFilter, duplicateHash } from '../../sensor/decode/duplicates.js';
import { Decoder } from '../../sensor/decode/decoder.js';
import { readCaptureFile } from '../../sensor/capture/file-reader.js';
import { Pipeline } from '../../sensor/pipeline.js';
import { ethTcp, TCP_FLAGS } from '../helpers/packets.js';
import { fixture } from '../helpers/replay.js';
import { synFloodPcap } from '../helpers/syn-flood.js';

const C = { src: '10.1.0.5', dst: '192.0.2.80', sport: 40000, dport: 80 };

function check(filter: DuplicateFilter, decoder: Decoder, frame: Uint8Array, tsUs: number): boolean {
  assert.ok(decoder.decodeFrame(1, frame, 0, frame.length, tsUs));
  return filter.isDuplicate(decoder.packet);
}

test('DuplicateFilter drops an identical copy within the window and counts it', () => {
  const counters = new Counters();
  const f = new DuplicateFilter(counters);
  const d = new Decoder(counters);
  const frame = ethTcp({ ...C, seq: 7, flags: TCP_FLAGS.ACK | TCP_FLAGS.PSH, id: 42 }, Buffer.from('hello'));
  assert.equal(check(f, d, frame, 1000), false);
  assert.equal(check(f, d, frame, 1003), true);
  assert.equal(counters.get('decoder.duplicates'), 1);
  assert.equal(check(f, d, frame, 1003 + DEFAULT_DUPLICATE_WINDOW_US + 1), false, 'after the window it is new traffic');
});

test('DuplicateFilter lets a retransmission (new IPv4 id) and different data through', () => {
  const counters = new Counters();
  const f = new DuplicateFilter(counters);
  const d = new Decoder(counters);
  assert.equal(check(f, d, ethTcp({ ...C, seq: 7, id: 42 }, Buffer.from('hello')), 10), false);
  assert.equal(check(f, d, ethTcp({ ...C, seq: 7, id: 43 }, Buffer.from('hello')), 11), false);
  assert.equal(check(f, d, ethTcp({ ...C, seq: 7, id: 42 }, Buffer.from('jello')), 12), false);
  assert.equal(counters.get('decoder.duplicates'), 0);
});

test('a capture with every frame doubled (SPAN ingress + egress) reassembles exactly like the original', () => {
  const frames: Array<{ lt: number; b: Uint8Array; ts: number }> = [];
  readCaptureFile(fixture('tcp', 'zeek-http-pipelined-requests.pcap'), (lt, buf, off, len, _o, ts) => frames.push({ lt, b: buf.slice(off, off + len), ts }));
  const run = (double: boolean) => {
    const out: string[] = [];
    const p = new Pipeline({ streams: { open: () => ({ data: (dir, b) => void out.push(`${dir}:${Buffer.from(b).toString('latin1')}`), gap: (dir, n) => void out.push(`${dir}:[${n}]`), end: () => {} }) } });
    for (const fr of frames) {
      p.packet(fr.lt, fr.b, 0, fr.b.length, fr.b.length, fr.ts, 0);
      if (double) p.packet(fr.lt, fr.b, 0, fr.b.length, fr.b.length, fr.ts + 2, 1);
    }
    p.finish();
    return { text: out.join(''), counters: p.counters };
  };
  const once = run(false);
  const twice = run(true);
  assert.equal(twice.text, once.text);
  assert.equal(twice.counters.get('decoder.duplicates'), frames.length);
  assert.equal(twice.counters.get('tcp.retransmission'), once.counters.get('tcp.retransmission'));
});

test('DuplicateFilter decides exactly like a plain direct-mapped table (collisions, repeats, clock steps)', () => {
  // The model: the last packet of each slot, its hash and time; a packet is a duplicate when its
  // slot's last packet has the same hash and is at most the window older (not newer).
  const counters = new Counters();
  const f = new DuplicateFilter(counters);
  const d = new Decoder(counters);
  const model = new Map<number, { h: number; t: number }>();
  let s = 0x1234567;
  const rnd = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  // Enough distinct packets that slots (and the filter's cache of recent slots) collide often.
  const frames = Array.from({ length: 5000 }, (_, i) => ethTcp({ ...C, sport: 1024 + (i % 60000), seq: i * 7, id: i & 0xffff }, Buffer.from(`p${i}`)));
  let ts = 1_000_000;
  let drops = 0;
  let steps = 0;
  for (let i = 0; i < 200_000; i++) {
    const k = rnd() % 100;
    if (k < 2) {
      ts -= rnd() % 3000; // the clock steps back
      steps++;
    } else ts += rnd() % (k < 50 ? 3 : 400);
    const frame = frames[rnd() % (k < 30 ? 50 : frames.length)];
    assert.ok(d.decodeFrame(1, frame, 0, frame.length, ts));
    const h = duplicateHash(d.packet);
    const slot = h & (DUPLICATE_SLOTS - 1);
    const last = model.get(slot);
    const expected = last !== undefined && last.h === h && ts - last.t <= DEFAULT_DUPLICATE_WINDOW_US && ts >= last.t;
    if (!expected) model.set(slot, { h, t: ts });
    else drops++;
    assert.equal(f.isDuplicate(d.packet), expected, `packet ${i}`);
  }
  assert.ok(drops > 1000 && steps > 1000, `the stream had duplicates (${drops}) and clock steps (${steps})`);
});

test('DuplicateFilter takes none of a million distinct SYNs 1 µs apart for a copy (53-bit comparison)', () => {
  const counters = new Counters();
  const f = new DuplicateFilter(counters);
  const d = new Decoder(counters);
  const flood = synFloodPcap(1_000_000);
  let n = 0;
  readCaptureFileFromBuffer(flood, (linkType, buf, off, capLen, _orig, tsUs) => {
    assert.ok(d.decodeFrame(linkType, buf, off, capLen, tsUs));
    if (f.isDuplicate(d.packet)) n++;
  });
  assert.equal(n, 0);
  assert.equal(counters.get('decoder.duplicates'), 0);
});

/** Walks a classic little-endian microsecond pcap held in memory (what synFloodPcap writes). */
function readCaptureFileFromBuffer(b: Buffer, onPacket: (linkType: number, buf: Uint8Array, off: number, capLen: number, origLen: number, tsUs: number) => void): void {
  const linkType = b.readUInt32LE(20);
  for (let o = 24; o + 16 <= b.length;) {
    const ts = b.readUInt32LE(o) * 1e6 + b.readUInt32LE(o + 4);
    const cap = b.readUInt32LE(o + 8);
    onPacket(linkType, b, o + 16, cap, b.readUInt32LE(o + 12), ts);
    o += 16 + cap;
  }
}

test('IPv6: an identical copy is dropped; a packet differing in any one address word passes', () => {
  const counters = new Counters();
  const f = new DuplicateFilter(counters);
  const d = new Decoder(counters);
  const v6 = { src: '2001:db8:1:2:3:4:5:6', dst: '2001:db8:a:b:c:d:e:f', sport: 40000, dport: 443 };
  const frame = (src: string, dst: string) => ethTcp({ ...v6, src, dst, seq: 99, flags: TCP_FLAGS.ACK | TCP_FLAGS.PSH }, Buffer.from('same bytes'));
  let ts = 1000;
  assert.equal(check(f, d, frame(v6.src, v6.dst), ts++), false);
  assert.equal(check(f, d, frame(v6.src, v6.dst), ts++), true, 'the copy');
  // one 32-bit word of one address changed at a time (IPv6 has no id: only the addresses tell these apart)
  const groups = (a: string) => a.split(':');
  for (const side of ['src', 'dst'] as const) {
    for (let word = 0; word < 4; word++) {
      const g = groups(v6[side]);
      g[2 * word + 1] = (parseInt(g[2 * word + 1], 16) ^ 0x100).toString(16);
      const changed = g.join(':');
      const fr = side === 'src' ? frame(changed, v6.dst) : frame(v6.src, changed);
      assert.equal(check(f, d, fr, ts++), false, `${side} word ${word} differs: not a copy`);
      assert.equal(check(f, d, fr, ts++), true, `${side} word ${word}: its own copy is`);
    }
  }
  assert.equal(check(f, d, frame(v6.dst, v6.src), ts++), false, 'addresses swapped: not a copy');
  assert.equal(counters.get('decoder.duplicates'), 9);
});

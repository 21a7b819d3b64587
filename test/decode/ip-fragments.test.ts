/**
 * Tests for sensor/decode/ip-fragments.ts through the Decoder: IPv4 and IPv6 reassembly in any
 * arrival order, overlap policy (first received wins; differing bytes raise
 * defrag.overlap_mismatch), and every bound: timeout, memcap eviction, fragments per datagram,
 * inconsistent last fragment, datagram size. Plus the suricata-verify IPv6 capture read from disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { readCaptureFile } from '../../sensor/capture/file-reader.js';
import { DEFAULT_DEFRAG_LIMITS, DEFRAG_TIMEOUT_US, type DefragLimits } from '../../sensor/decode/ip-fragments.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../sensor/decode/packet.js';
import { decodeOne, dstAddr, newDecoder, payloadOf, srcAddr, type DecodeResult } from '../helpers/decode.js';
import {
  counting, ETHERTYPE, ethernet, fragmentIpv4, fragmentIpv6, IPPROTO, ipv4, tcp, TCP_FLAGS, udp, type Ipv4Options,
} from '../helpers/packets.js';
import type { Decoder } from '../../sensor/decode/decoder.js';

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/decode/sv-defrag-eth-vlan-ipv6-tcp.pcap', import.meta.url));

/** Deterministic PRNG (mulberry32) so shuffled orders are reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled<T>(items: T[], seed: number): T[] {
  const out = items.slice();
  const r = rng(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Feeds frames in order with one decoder; returns the result of every frame. */
function feed(frames: Buffer[], decoder: Decoder = newDecoder(), tsUs = (i: number) => i): DecodeResult[] {
  return frames.map((f, i) => decodeOne(f, 1, { decoder, tsUs: tsUs(i) }));
}

const IP4: Ipv4Options = { proto: IPPROTO.UDP, src: '198.51.100.1', dst: '198.51.100.2', id: 0x4242 };

/** One IPv4 fragment in an Ethernet frame: `data` at byte `offset` of the datagram payload. */
function frag4(offset: number, more: boolean, data: Uint8Array, ip: Partial<Ipv4Options> = {}): Buffer {
  return ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ ...IP4, ...ip, fragOffset: offset, mf: more }, data));
}

function eth4(packets: Buffer[]): Buffer[] {
  return packets.map((p) => ethernet({ type: ETHERTYPE.IPV4 }, p));
}

// ---------------------------------------------------------------------------------------------
// IPv4 reassembly

const UDP_DATA = counting(3000, 7);
const UDP_FRAGS = eth4(fragmentIpv4(IP4, udp({ sport: 5000, dport: 6000 }, UDP_DATA), 512));
const UDP_FRAGS_WIRE_BYTES = UDP_FRAGS.reduce((n, f) => n + f.length, 0);

function assertUdpReassembled(results: DecodeResult[]): void {
  const last = results[results.length - 1];
  results.slice(0, -1).forEach((r, i) => assert.equal(r.ok, false, `fragment ${i} alone is not a datagram`));
  assert.deepEqual(last.anomalies, {});
  assert.equal(last.ok, true);
  assert.equal(last.p.transport, IPPROTO_UDP);
  assert.equal(last.p.srcPort, 5000);
  assert.equal(last.p.dstPort, 6000);
  assert.equal(srcAddr(last.p), '198.51.100.1');
  assert.equal(dstAddr(last.p), '198.51.100.2');
  assert.equal(last.p.l4Len, 8 + UDP_DATA.length);
  assert.ok(payloadOf(last.p).equals(UDP_DATA), 'payload is exactly the original bytes');
  assert.equal(last.p.frames, results.length, 'the datagram stands for every fragment frame');
  assert.equal(last.p.wireLen, UDP_FRAGS_WIRE_BYTES, 'and for their wire lengths');
  assert.equal(last.counters.get('defrag.fragments'), results.length);
  assert.equal(last.counters.get('defrag.reassembled'), 1);
  assert.equal(last.decoder.defrag.inProgress, 0);
  assert.equal(last.decoder.defrag.bytesHeld, 0);
}

test('Defragmenter: IPv4 fragments in order reassemble to the exact UDP payload', () => {
  assert.equal(UDP_FRAGS.length, 6);
  assertUdpReassembled(feed(UDP_FRAGS));
});

test('Defragmenter: IPv4 fragments in reverse order reassemble', () => {
  assertUdpReassembled(feed(UDP_FRAGS.slice().reverse()));
});

test('Defragmenter: IPv4 fragments in shuffled orders reassemble', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const order = shuffled(UDP_FRAGS, seed);
    assertUdpReassembled(feed(order));
  }
});

test('Defragmenter: a fragmented TCP segment decodes with its header fields', () => {
  const data = counting(2000, 1);
  const seg = tcp({ sport: 33000, dport: 80, seq: 0xfffffff0, ack: 77, flags: TCP_FLAGS.PSH | TCP_FLAGS.ACK }, data);
  const frames = eth4(fragmentIpv4({ ...IP4, proto: IPPROTO.TCP }, seg, 600));
  for (const order of [frames, frames.slice().reverse(), shuffled(frames, 42)]) {
    const last = feed(order).pop() as DecodeResult;
    assert.deepEqual(last.anomalies, {});
    assert.equal(last.ok, true);
    assert.equal(last.p.transport, IPPROTO_TCP);
    assert.equal(last.p.seq, 0xfffffff0);
    assert.equal(last.p.ack, 77);
    assert.equal(last.p.tcpFlags, TCP_FLAGS.PSH | TCP_FLAGS.ACK);
    assert.ok(payloadOf(last.p).equals(data));
  }
});

test('Defragmenter: the same id from different VLANs or sources is two datagrams', () => {
  const seg = udp({ sport: 1, dport: 2 }, counting(16));
  const [a, b] = fragmentIpv4(IP4, seg, 16);
  const vlan = (vid: number, ip: Buffer) => ethernet({ type: ETHERTYPE.IPV4, vlans: [{ vid }] }, ip);
  const otherSrc = fragmentIpv4({ ...IP4, src: '198.51.100.99' }, seg, 16)[1];
  const rs = feed([vlan(1, a), vlan(2, b), ethernet({ type: ETHERTYPE.IPV4 }, otherSrc)]);
  assert.deepEqual(rs.map((r) => r.ok), [false, false, false]);
  assert.equal(rs[2].decoder.defrag.inProgress, 3);
  assert.equal(rs[2].counters.get('defrag.reassembled'), 0);
});

// ---------------------------------------------------------------------------------------------
// Overlaps

test('Defragmenter: an identical overlap is counted as defrag.overlap but not as a mismatch', () => {
  const data = udp({ sport: 1, dport: 2 }, counting(24));
  const rs = feed([frag4(0, true, data.subarray(0, 16)), frag4(8, true, data.subarray(8, 24)), frag4(24, false, data.subarray(24, 32))]);
  const last = rs[2];
  assert.deepEqual(last.anomalies, {});
  assert.equal(last.counters.get('defrag.overlap'), 1);
  assert.equal(last.ok, true);
  assert.equal(last.counters.get('defrag.reassembled'), 1);
  assert.ok(payloadOf(last.p).equals(counting(24)));
});

test('Defragmenter: a differing overlap raises defrag.overlap_mismatch and the FIRST received bytes win', () => {
  const good = udp({ sport: 1, dport: 2 }, Buffer.from('GOODGOODGOODGOOD'));
  const evil = Buffer.from(good);
  evil.fill('E'.charCodeAt(0), 16, 24);
  // Middle fragment [8, 24) arrives first carrying GOOD; [0, 24) then re-sends it as EVIL.
  const rs = feed([frag4(8, true, good.subarray(8, 24)), frag4(0, true, evil.subarray(0, 24)), frag4(24, false, good.subarray(24))]);
  const last = rs[2];
  assert.deepEqual(last.anomalies, { 'defrag.overlap_mismatch': 1 });
  assert.equal(last.counters.get('defrag.overlap'), 1);
  assert.equal(last.ok, true);
  assert.equal(payloadOf(last.p).toString(), 'GOODGOODGOODGOOD');
});

test('Defragmenter: first wins also when the later fragment covers the end of an earlier one', () => {
  const good = udp({ sport: 1, dport: 2 }, Buffer.from('GOODGOODGOODGOOD'));
  const evil = Buffer.from(good);
  evil.fill('E'.charCodeAt(0), 8, 24);
  const rs = feed([frag4(0, true, good.subarray(0, 16)), frag4(8, false, evil.subarray(8))]);
  const last = rs[1];
  assert.deepEqual(last.anomalies, { 'defrag.overlap_mismatch': 1 });
  assert.equal(last.ok, true);
  // [8, 16) was GOOD first; only [16, 24) is new, so it comes from the later fragment.
  assert.equal(payloadOf(last.p).toString(), 'GOODGOODEEEEEEEE');
});

test('Defragmenter: a retransmitted fragment (exact duplicate) is harmless', () => {
  const rs = feed([UDP_FRAGS[0], UDP_FRAGS[1], UDP_FRAGS[1], ...UDP_FRAGS.slice(2)]);
  const last = rs[rs.length - 1];
  assert.deepEqual(last.anomalies, {});
  assert.equal(last.ok, true);
  assert.equal(last.counters.get('defrag.overlap'), 1);
  assert.ok(payloadOf(last.p).equals(UDP_DATA));
});

test('Defragmenter flags a non-last fragment whose length is not a multiple of 8', () => {
  const data = udp({ sport: 1, dport: 2 }, counting(8));
  const rs = feed([frag4(0, true, data.subarray(0, 10)), frag4(8, false, data.subarray(8))]);
  assert.deepEqual(rs[0].anomalies, { 'defrag.fragment_not_multiple_of_8': 1 });
  assert.equal(rs[1].ok, true);
  assert.ok(payloadOf(rs[1].p).equals(counting(8)));
});

// ---------------------------------------------------------------------------------------------
// IPv6 reassembly

test('Defragmenter: IPv6 fragments (after a hop-by-hop header) reassemble in any order', () => {
  const data = counting(1500, 3);
  const frames = fragmentIpv6({ proto: IPPROTO.UDP, src: '2001:db8::1', dst: '2001:db8::2', ext: [{ type: IPPROTO.HOPOPTS }] }, udp({ sport: 53, dport: 5353 }, data), 400, 0xa5d33a2d)
    .map((p) => ethernet({ type: ETHERTYPE.IPV6, vlans: [{ vid: 6 }] }, p));
  assert.equal(frames.length, 4);
  for (const order of [frames, frames.slice().reverse(), shuffled(frames, 9)]) {
    const rs = feed(order);
    const last = rs[3];
    assert.deepEqual(last.anomalies, {});
    assert.equal(last.ok, true);
    assert.equal(last.p.ipVersion, 6);
    assert.equal(last.p.transport, IPPROTO_UDP);
    assert.equal(srcAddr(last.p), '2001:db8::1');
    assert.equal(last.p.vlan0, 6);
    assert.ok(payloadOf(last.p).equals(data));
    assert.equal(last.counters.get('defrag.reassembled'), 1);
  }
});

test('Defragmenter: sv-defrag-eth-vlan-ipv6-tcp.pcap reassembles to a TCP payload of exactly 1000 "A"', () => {
  const d = newDecoder();
  const results: Array<{ ok: boolean; payload?: Buffer; vlan0: number; sport: number; dport: number; l4Len: number; src: string; frames: number; wireLen: number }> = [];
  const summary = readCaptureFile(FIXTURE, (linkType, buf, off, capLen, origLen, tsUs) => {
    const ok = d.decodeFrame(linkType, buf, off, capLen, tsUs, 0, origLen);
    const p = d.packet;
    results.push({ ok, payload: ok ? payloadOf(p) : undefined, vlan0: p.vlan0, sport: p.srcPort, dport: p.dstPort, l4Len: p.l4Len, src: srcAddr(p), frames: p.frames, wireLen: p.wireLen });
  });
  assert.equal(summary.problem, undefined);
  assert.equal(summary.packets, 3);
  assert.deepEqual(results.map((r) => r.ok), [false, false, true]);
  const r = results[2];
  assert.equal(r.vlan0, 6);
  assert.equal(r.src, '::1');
  assert.equal(r.sport, 12345);
  assert.equal(r.dport, 8080);
  assert.equal(r.l4Len, 1020, 'reassembled IPv6 payload length');
  assert.ok(r.payload?.equals(Buffer.alloc(1000, 'A')), 'TCP payload is 1000 x "A"');
  assert.deepEqual([r.frames, r.wireLen], [3, 506 + 506 + 206], 'the segment came as three frames of 506, 506 and 206 bytes');
  assert.deepEqual(d.counters.snapshot('anomaly'), {});
  assert.equal(d.counters.get('defrag.fragments'), 3);
  assert.equal(d.counters.get('defrag.reassembled'), 1);
});

test('Defragmenter: IPv6 fragments with the same id from sources differing in the last word are kept apart', () => {
  const seg = udp({ sport: 1, dport: 2 }, counting(24));
  const from = (src: string) => fragmentIpv6({ proto: IPPROTO.UDP, src, dst: '2001:db8::ffff' }, seg, 16, 7).map((p) => ethernet({ type: ETHERTYPE.IPV6 }, p));
  const a = from('2001:db8::1');
  const b = from('2001:db8::2');
  const rs = feed([a[0], b[1]]);
  assert.equal(rs[1].ok, false);
  assert.equal(rs[1].decoder.defrag.inProgress, 2);
  assert.equal(decodeOne(a[1], 1, { decoder: rs[1].decoder }).ok, true);
});

// ---------------------------------------------------------------------------------------------
// Bounds

test('Defragmenter: a datagram still completes one microsecond before DEFRAG_TIMEOUT_US', () => {
  const rs = feed(UDP_FRAGS, newDecoder(), (i) => (i === 0 ? 1000 : 1000 + DEFRAG_TIMEOUT_US - 1));
  assertUdpReassembled(rs);
  assert.equal(rs[rs.length - 1].counters.get('defrag.timeout'), 0);
});

test('Defragmenter drops a datagram whose first fragment is DEFRAG_TIMEOUT_US old (defrag.timeout)', () => {
  const rs = feed(UDP_FRAGS, newDecoder(), (i) => (i < 5 ? 1000 + i : 1000 + DEFRAG_TIMEOUT_US));
  const last = rs[5];
  assert.equal(last.ok, false, 'the last fragment arrives after the timeout and starts a new datagram');
  assert.equal(last.counters.get('defrag.timeout'), 1);
  assert.equal(last.counters.get('defrag.reassembled'), 0);
  assert.equal(last.decoder.defrag.inProgress, 1);
  assert.equal(last.decoder.defrag.bytesHeld, UDP_DATA.length + 8 - 5 * 512);
  assert.deepEqual(last.anomalies, {});
});

test('Defragmenter: memcap on datagrams evicts the oldest (maxDatagrams 2)', () => {
  const limits: DefragLimits = { ...DEFAULT_DEFRAG_LIMITS, maxDatagrams: 2 };
  const d = newDecoder(limits);
  const seg = udp({ sport: 1, dport: 2 }, counting(24));
  const dgram = (id: number) => eth4(fragmentIpv4({ ...IP4, id }, seg, 16));
  const [a1, a2] = dgram(1);
  const [b1] = dgram(2);
  const [c1, c2] = dgram(3);
  const rs = feed([a1, b1, c1], d);
  assert.equal(d.counters.get('defrag.memcap_evicted'), 1);
  assert.equal(d.defrag.inProgress, 2);
  // C (newest) still completes; A's first half was evicted, so its second half cannot.
  assert.equal(decodeOne(c2, 1, { decoder: d, tsUs: 10 }).ok, true);
  assert.equal(decodeOne(a2, 1, { decoder: d, tsUs: 11 }).ok, false);
  assert.equal(d.counters.get('defrag.reassembled'), 1);
  assert.equal(d.counters.get('defrag.memcap_evicted'), 1);
  assert.equal(d.defrag.inProgress, 2, 'B and the orphaned second half of A');
  assert.deepEqual(rs[2].anomalies, {});
});

test('Defragmenter: memcap on bytes evicts the oldest (maxBytes)', () => {
  const d = newDecoder({ ...DEFAULT_DEFRAG_LIMITS, maxBytes: 100 });
  const big = (id: number) => frag4(0, true, counting(64), { id });
  feed([big(1), big(2)], d);
  assert.equal(d.counters.get('defrag.memcap_evicted'), 1);
  assert.equal(d.defrag.inProgress, 1);
  assert.equal(d.defrag.bytesHeld, 64);
});

test('Defragmenter drops a datagram with more than maxFragments fragments', () => {
  const d = newDecoder({ ...DEFAULT_DEFRAG_LIMITS, maxFragments: 4 });
  const data = counting(48);
  const frames = [0, 8, 16, 24, 32].map((o) => frag4(o, true, data.subarray(o, o + 8)));
  const rs = feed(frames, d);
  assert.deepEqual(rs[3].anomalies, {});
  assert.deepEqual(rs[4].anomalies, { 'defrag.too_many_fragments': 1 });
  assert.equal(d.defrag.inProgress, 0);
  assert.equal(d.defrag.bytesHeld, 0);
});

test('Defragmenter: the default limit is 128 fragments per datagram', () => {
  const d = newDecoder();
  const data = counting(129 * 8);
  const frames = Array.from({ length: 129 }, (_, i) => frag4(i * 8, true, data.subarray(i * 8, i * 8 + 8)));
  const rs = feed(frames, d);
  assert.deepEqual(rs[127].anomalies, {});
  assert.deepEqual(rs[128].anomalies, { 'defrag.too_many_fragments': 1 });
});

test('Defragmenter flags two last fragments with different ends (inconsistent_last_fragment)', () => {
  const data = counting(40);
  const rs = feed([frag4(0, true, data.subarray(0, 8)), frag4(16, false, data.subarray(16, 24)), frag4(24, false, data.subarray(24, 40))]);
  assert.deepEqual(rs[2].anomalies, { 'defrag.inconsistent_last_fragment': 1 });
  assert.equal(rs[2].decoder.defrag.inProgress, 0);
});

test('Defragmenter flags a last fragment that ends before data already held', () => {
  const data = counting(40);
  const rs = feed([frag4(16, true, data.subarray(16, 40)), frag4(8, false, data.subarray(8, 16))]);
  assert.deepEqual(rs[1].anomalies, { 'defrag.inconsistent_last_fragment': 1 });
  assert.equal(rs[1].decoder.defrag.inProgress, 0);
});

test('Defragmenter flags a middle fragment that extends past the known end', () => {
  const data = counting(40);
  const rs = feed([frag4(16, false, data.subarray(16, 24)), frag4(8, true, data.subarray(8, 32))]);
  assert.deepEqual(rs[1].anomalies, { 'defrag.inconsistent_last_fragment': 1 });
});

test('Defragmenter flags a fragment that would end beyond 65535 bytes (datagram_too_large)', () => {
  const rs = feed([frag4(0, true, counting(8)), frag4(8191 * 8, false, counting(16))]);
  assert.deepEqual(rs[1].anomalies, { 'defrag.datagram_too_large': 1 });
  assert.equal(rs[1].decoder.defrag.inProgress, 0, 'the whole datagram is dropped');
});

test('Defragmenter: a datagram ending exactly at 65535 bytes is accepted', () => {
  const d = newDecoder();
  const r = decodeOne(frag4(8191 * 8, false, counting(65535 - 8191 * 8)), 1, { decoder: d });
  assert.deepEqual(r.anomalies, {});
  assert.equal(d.defrag.inProgress, 1);
});

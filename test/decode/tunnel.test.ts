/**
 * Tests for sensor/decode/tunnel.ts through the Decoder: GRE (with C/K/S flags), ERSPAN I/II/III,
 * VXLAN and Geneve. A remote-mirrored frame must decode exactly like the local one: inner
 * addresses and ports, the inner frame's VLANs replacing the transport network's, and
 * `tunnelDepth` counting the encapsulations. Each failure mode asserts the exact anomaly snapshot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_TUNNEL_DEPTH } from '../../sensor/decode/ip.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../sensor/decode/packet.js';
import { GENEVE_PORT, VXLAN_PORT } from '../../sensor/decode/transport.js';
import { decodeOne, dstAddr, payloadOf, srcAddr, type DecodeResult } from '../helpers/decode.js';
import {
  ascii, bytes, concat, erspan2, erspan3, ETHERTYPE, ethernet, ethTcp, geneve, geneveOption, gre, IPPROTO, ipv4, ipv6,
  tcp, TCP_FLAGS, udp, vxlan, type VlanTag,
} from '../helpers/packets.js';

/** The mirrored session: 10.1.1.1:40000 -> 10.2.2.2:80, carrying 'GET /'. */
function innerFrame(vlans?: VlanTag[]): Buffer {
  return ethTcp({ src: '10.1.1.1', dst: '10.2.2.2', sport: 40000, dport: 80, seq: 5000, ack: 6000, flags: TCP_FLAGS.PSH | TCP_FLAGS.ACK, vlans }, ascii('GET /'));
}

/** Outer transport: Ethernet (tagged VLAN 999) + IPv4 192.0.2.1 -> 192.0.2.2 + `proto` payload. */
function outer(proto: number, payload: Uint8Array): Buffer {
  return ethernet({ type: ETHERTYPE.IPV4, vlans: [{ vid: 999 }] }, ipv4({ proto, src: '192.0.2.1', dst: '192.0.2.2' }, payload));
}

function assertInner(r: DecodeResult, depth = 1): void {
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.ok, true);
  assert.equal(r.p.transport, IPPROTO_TCP);
  assert.equal(srcAddr(r.p), '10.1.1.1');
  assert.equal(dstAddr(r.p), '10.2.2.2');
  assert.equal(r.p.srcPort, 40000);
  assert.equal(r.p.dstPort, 80);
  assert.equal(r.p.seq, 5000);
  assert.equal(r.p.ack, 6000);
  assert.equal(r.p.tcpFlags, TCP_FLAGS.PSH | TCP_FLAGS.ACK);
  assert.equal(payloadOf(r.p).toString(), 'GET /');
  assert.equal(r.p.tunnelDepth, depth);
}

// ---------------------------------------------------------------------------------------------
// GRE

test('decodeGre: GRE carrying IPv4 keeps the outer VLAN (no inner Ethernet to replace it)', () => {
  const inner = ipv4({ proto: IPPROTO.TCP, src: '10.1.1.1', dst: '10.2.2.2' }, tcp({ sport: 40000, dport: 80, seq: 5000, ack: 6000, flags: 0x18 }, ascii('GET /')));
  const r = decodeOne(outer(IPPROTO.GRE, gre({ proto: ETHERTYPE.IPV4 }, inner)));
  assertInner(r);
  assert.deepEqual([r.p.vlanCount, r.p.vlan0], [1, 999]);
  assert.equal(r.counters.get('decoder.gre'), 1);
});

test('decodeGre: C, K and S flags each add 4 bytes before the payload', () => {
  const inner = ipv6({ proto: IPPROTO.UDP, src: '2001:db8::1', dst: '2001:db8::2' }, udp({ sport: 7, dport: 8 }, ascii('six')));
  for (const flags of [{ checksum: true }, { key: 0xdeadbeef }, { seq: 77 }, { checksum: true, key: 1, seq: 2 }, { routing: true }]) {
    const r = decodeOne(outer(IPPROTO.GRE, gre({ proto: ETHERTYPE.IPV6, ...flags }, inner)));
    assert.deepEqual(r.anomalies, {}, JSON.stringify(flags));
    assert.equal(r.ok, true, JSON.stringify(flags));
    assert.equal(r.p.transport, IPPROTO_UDP);
    assert.equal(srcAddr(r.p), '2001:db8::1');
    assert.equal(payloadOf(r.p).toString(), 'six');
  }
});

test('decodeGre: transparent Ethernet bridging (0x6558) replaces the outer VLAN with the inner one', () => {
  const r = decodeOne(outer(IPPROTO.GRE, gre({ proto: ETHERTYPE.TEB, key: 5 }, innerFrame([{ vid: 42 }]))));
  assertInner(r);
  assert.deepEqual([r.p.vlanCount, r.p.vlan0, r.p.vlan1], [1, 42, 0]);
});

test('decodeGre: an untagged inner Ethernet frame clears the outer VLAN', () => {
  const r = decodeOne(outer(IPPROTO.GRE, gre({ proto: ETHERTYPE.TEB }, innerFrame())));
  assertInner(r);
  assert.deepEqual([r.p.vlanCount, r.p.vlan0, r.p.vlan1], [0, 0, 0]);
});

test('decodeGre: ERSPAN type I (0x88be without the S bit) is a bare Ethernet frame', () => {
  const r = decodeOne(outer(IPPROTO.GRE, gre({ proto: ETHERTYPE.ERSPAN2 }, innerFrame([{ vid: 7 }]))));
  assertInner(r);
  assert.deepEqual([r.p.vlanCount, r.p.vlan0], [1, 7]);
  assert.equal(r.counters.get('decoder.erspan'), 0);
});

test('decodeGre counts a protocol it does not follow (PPP) without an anomaly', () => {
  const r = decodeOne(outer(IPPROTO.GRE, gre({ proto: 0x880b }, bytes(0xff, 0x03, 0, 0x21))));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.counters.get('decoder.gre.other_protocol'), 1);
  assert.equal(r.p.tunnelDepth, 0);
});

test('decodeGre flags fewer than 4 bytes', () => {
  const r = decodeOne(outer(IPPROTO.GRE, bytes(0, 0, 0x08)));
  assert.deepEqual(r.anomalies, { 'decoder.gre.pkt_too_small': 1 });
});

test('decodeGre flags optional fields cut short by the packet end', () => {
  const r = decodeOne(outer(IPPROTO.GRE, gre({ proto: ETHERTYPE.IPV4, checksum: true, key: 1, seq: 2 }).subarray(0, 12)));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.gre.pkt_too_small': 1 });
});

test('decodeGre flags version 1 (PPTP enhanced GRE)', () => {
  const r = decodeOne(outer(IPPROTO.GRE, gre({ proto: 0x880b, version: 1, key: 0x00040001 }, bytes(0xff, 0x03))));
  assert.deepEqual(r.anomalies, { 'decoder.gre.version_unsupported': 1 });
});

// ---------------------------------------------------------------------------------------------
// ERSPAN

test('decodeErspan2: GRE S bit + 0x88be + type II header, inner VLAN wins', () => {
  const frame = outer(IPPROTO.GRE, gre({ proto: ETHERTYPE.ERSPAN2, seq: 9 }, erspan2({ vlan: 5, session: 3, index: 77 }, innerFrame([{ vid: 300 }]))));
  const r = decodeOne(frame);
  assertInner(r);
  assert.deepEqual([r.p.vlanCount, r.p.vlan0], [1, 300]);
  assert.equal(r.counters.get('decoder.erspan'), 1);
});

test('decodeErspan2 flags a version nibble other than 1', () => {
  const r = decodeOne(outer(IPPROTO.GRE, gre({ proto: ETHERTYPE.ERSPAN2, seq: 9 }, erspan2({ version: 2 }, innerFrame()))));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.erspan.unsupported_version': 1 });
});

test('decodeErspan2 flags a header shorter than 8 bytes', () => {
  const r = decodeOne(outer(IPPROTO.GRE, gre({ proto: ETHERTYPE.ERSPAN2, seq: 9 }, bytes(0x10, 0, 0, 1, 0, 0))));
  assert.deepEqual(r.anomalies, { 'decoder.erspan.pkt_too_small': 1 });
});

test('decodeErspan3: type III header without the platform sub-header', () => {
  const r = decodeOne(outer(IPPROTO.GRE, gre({ proto: ETHERTYPE.ERSPAN3, seq: 1 }, erspan3({ session: 9, timestamp: 123456, hwId: 5 }, innerFrame([{ vid: 11 }])))));
  assertInner(r);
  assert.deepEqual([r.p.vlanCount, r.p.vlan0], [1, 11]);
  assert.equal(r.counters.get('decoder.erspan'), 1);
});

test('decodeErspan3: the O bit adds an 8-byte platform sub-header', () => {
  const sub = bytes(0x0c, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef);
  const r = decodeOne(outer(IPPROTO.GRE, gre({ proto: ETHERTYPE.ERSPAN3, seq: 1 }, erspan3({ subHeader: sub }, innerFrame()))));
  assertInner(r);
  assert.equal(r.p.vlanCount, 0);
});

test('decodeErspan3 flags a version nibble other than 2', () => {
  const r = decodeOne(outer(IPPROTO.GRE, gre({ proto: ETHERTYPE.ERSPAN3, seq: 1 }, erspan3({ version: 1 }, innerFrame()))));
  assert.deepEqual(r.anomalies, { 'decoder.erspan.unsupported_version': 1 });
});

test('decodeErspan3 flags a frame type other than Ethernet (2 = IP)', () => {
  const r = decodeOne(outer(IPPROTO.GRE, gre({ proto: ETHERTYPE.ERSPAN3, seq: 1 }, erspan3({ frameType: 2 }, innerFrame()))));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.erspan.unsupported_version': 1 });
});

test('decodeErspan3 flags a header shorter than 12 bytes', () => {
  const r = decodeOne(outer(IPPROTO.GRE, gre({ proto: ETHERTYPE.ERSPAN3, seq: 1 }, erspan3({}, Buffer.alloc(0)).subarray(0, 11))));
  assert.deepEqual(r.anomalies, { 'decoder.erspan.pkt_too_small': 1 });
});

test('decodeErspan3 flags an O bit whose sub-header is cut short', () => {
  const r = decodeOne(outer(IPPROTO.GRE, gre({ proto: ETHERTYPE.ERSPAN3, seq: 1 }, erspan3({ oBit: true }, bytes(1, 2, 3, 4)))));
  assert.deepEqual(r.anomalies, { 'decoder.erspan.pkt_too_small': 1 });
});

// ---------------------------------------------------------------------------------------------
// VXLAN

// tcpdump -nn -e -X of the frame below:
//   00:00:5e:00:53:01 > 00:00:5e:00:53:02, ethertype 802.1Q (0x8100), length 117: vlan 999, p 0, ethertype IPv4 (0x0800),
//   192.0.2.1.51000 > 192.0.2.2.4789: VXLAN, flags [I] (0x08), vni 1193046
//   00:00:5e:00:53:01 > 00:00:5e:00:53:02, ethertype 802.1Q (0x8100), length 63: vlan 20, p 0, ethertype IPv4 (0x0800),
//   10.1.1.1.40000 > 10.2.2.2.80: Flags [P.], seq 5000:5005, ack 6000, win 65535, length 5: HTTP: GET / [|http]
//   0x0000:  4500 0063 1234 0000 4011 e452 c000 0201  E..c.4..@..R....
//   0x0010:  c000 0202 c738 12b5 004f 0000 0800 0000  .....8...O......
//   0x0020:  1234 5600 0000 5e00 5302 0000 5e00 5301  .4V...^.S...^.S.
//   0x0030:  8100 0014 0800 4500 002d 1234 0000 4006  ......E..-.4..@.
//   0x0040:  5192 0a01 0101 0a02 0202 9c40 0050 0000  Q..........@.P..
//   0x0050:  1388 0000 1770 5018 ffff 0000 0000 4745  .....pP.......GE
//   0x0060:  5420 2f                                  T./
test('decodeVxlan: I flag set; the inner frame\'s VLAN replaces the outer one', () => {
  assert.equal(VXLAN_PORT, 4789);
  const frame = outer(IPPROTO.UDP, udp({ sport: 51000, dport: VXLAN_PORT }, vxlan({ vni: 0x123456 }, innerFrame([{ vid: 20 }]))));
  const r = decodeOne(frame);
  assertInner(r);
  assert.deepEqual([r.p.vlanCount, r.p.vlan0, r.p.vlan1], [1, 20, 0]);
  assert.equal(r.counters.get('decoder.vxlan'), 1);
});

test('decodeVxlan: an untagged inner frame leaves no VLAN (the outer 999 is forgotten)', () => {
  const r = decodeOne(outer(IPPROTO.UDP, udp({ sport: 51000, dport: VXLAN_PORT }, vxlan({ vni: 1 }, innerFrame()))));
  assertInner(r);
  assert.deepEqual([r.p.vlanCount, r.p.vlan0, r.p.vlan1], [0, 0, 0]);
});

test('decodeVxlan: inner QinQ fills both VLAN slots', () => {
  const r = decodeOne(outer(IPPROTO.UDP, udp({ sport: 51000, dport: VXLAN_PORT }, vxlan({ vni: 1 }, innerFrame([{ tpid: ETHERTYPE.QINQ, vid: 30 }, { vid: 31 }])))));
  assertInner(r);
  assert.deepEqual([r.p.vlanCount, r.p.vlan0, r.p.vlan1], [2, 30, 31]);
});

// A datagram to port 4789 or 6081 that is not a valid tunnel header is ordinary UDP (an ephemeral
// port can be either): counted under decoder.vxlan.not_vxlan_* / decoder.geneve.not_geneve_*,
// never an anomaly, and handed to the flow stage as the outer UDP datagram.
function assertPlainUdp(r: DecodeResult, counter: string, dport: number): void {
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.counters.get(counter), 1, counter);
  assert.equal(r.ok, true);
  assert.equal(r.p.transport, IPPROTO_UDP);
  assert.equal(srcAddr(r.p), '192.0.2.1');
  assert.equal(r.p.srcPort, 51000);
  assert.equal(r.p.dstPort, dport);
  assert.equal(r.p.tunnelDepth, 0);
  assert.deepEqual([r.p.vlanCount, r.p.vlan0], [1, 999]);
}

test('decodeVxlan: an unset I flag makes the datagram plain UDP (not_vxlan_flags)', () => {
  const r = decodeOne(outer(IPPROTO.UDP, udp({ sport: 51000, dport: VXLAN_PORT }, vxlan({ vni: 1, flags: 0x00 }, innerFrame()))));
  assertPlainUdp(r, 'decoder.vxlan.not_vxlan_flags', VXLAN_PORT);
  assert.equal(r.counters.get('decoder.vxlan'), 0);
});

test('decodeVxlan: reserved flag bits set beside I make the datagram plain UDP (RFC 7348 section 5)', () => {
  const r = decodeOne(outer(IPPROTO.UDP, udp({ sport: 51000, dport: VXLAN_PORT }, vxlan({ vni: 1, flags: 0x0c }, innerFrame()))));
  assertPlainUdp(r, 'decoder.vxlan.not_vxlan_flags', VXLAN_PORT);
});

test('decodeVxlan: fewer than 8 bytes make the datagram plain UDP (not_vxlan_short)', () => {
  const r = decodeOne(outer(IPPROTO.UDP, udp({ sport: 51000, dport: VXLAN_PORT }, bytes(8, 0, 0, 0, 0, 0, 1))));
  assertPlainUdp(r, 'decoder.vxlan.not_vxlan_short', VXLAN_PORT);
  assert.equal(payloadOf(r.p).length, 7);
});

test('decodeVxlan: a too-short inner frame is an Ethernet anomaly and not a flow', () => {
  const r = decodeOne(outer(IPPROTO.UDP, udp({ sport: 51000, dport: VXLAN_PORT }, vxlan({ vni: 1 }, Buffer.alloc(10)))));
  assert.deepEqual(r.anomalies, { 'decoder.ethernet.pkt_too_small': 1 });
  assert.equal(r.ok, false);
  assert.equal(r.p.transport, 0);
});

// ---------------------------------------------------------------------------------------------
// Geneve

test('decodeGeneve: options are skipped by the 6-bit length; inner frame decoded', () => {
  assert.equal(GENEVE_PORT, 6081);
  const options = concat(geneveOption(0x0102, 0x80, bytes(1, 2, 3, 4, 5)), geneveOption(0xffff, 1, bytes()));
  assert.equal(options.length, 16);
  const r = decodeOne(outer(IPPROTO.UDP, udp({ sport: 51000, dport: GENEVE_PORT }, geneve({ vni: 7, options }, innerFrame([{ vid: 8 }])))));
  assertInner(r);
  assert.deepEqual([r.p.vlanCount, r.p.vlan0], [1, 8]);
  assert.equal(r.counters.get('decoder.geneve'), 1);
});

test('decodeGeneve: no options', () => {
  const r = decodeOne(outer(IPPROTO.UDP, udp({ sport: 51000, dport: GENEVE_PORT }, geneve({ vni: 7 }, innerFrame()))));
  assertInner(r);
});

test('decodeGeneve: a protocol other than Ethernet makes the datagram plain UDP (not_geneve_protocol)', () => {
  const inner = ipv4({ proto: IPPROTO.TCP }, tcp({ sport: 1, dport: 2 }));
  const r = decodeOne(outer(IPPROTO.UDP, udp({ sport: 51000, dport: GENEVE_PORT }, geneve({ vni: 7, protocol: ETHERTYPE.IPV4 }, inner))));
  assertPlainUdp(r, 'decoder.geneve.not_geneve_protocol', GENEVE_PORT);
  assert.equal(r.counters.get('decoder.geneve'), 0);
});

test('decodeGeneve: a version other than 0 makes the datagram plain UDP (not_geneve_protocol)', () => {
  const r = decodeOne(outer(IPPROTO.UDP, udp({ sport: 51000, dport: GENEVE_PORT }, geneve({ vni: 7, version: 1 }, innerFrame()))));
  assertPlainUdp(r, 'decoder.geneve.not_geneve_protocol', GENEVE_PORT);
});

test('decodeGeneve: fewer than 8 bytes make the datagram plain UDP (not_geneve_short)', () => {
  const r = decodeOne(outer(IPPROTO.UDP, udp({ sport: 51000, dport: GENEVE_PORT }, bytes(0, 0, 0x65, 0x58))));
  assertPlainUdp(r, 'decoder.geneve.not_geneve_short', GENEVE_PORT);
});

test('decodeGeneve: options longer than the packet make the datagram plain UDP (not_geneve_short)', () => {
  const r = decodeOne(outer(IPPROTO.UDP, udp({ sport: 51000, dport: GENEVE_PORT }, geneve({ vni: 7, optLenWords: 63 }, bytes(1, 2, 3, 4)))));
  assertPlainUdp(r, 'decoder.geneve.not_geneve_short', GENEVE_PORT);
});

// ---------------------------------------------------------------------------------------------
// Nesting

test('innerFrame: GRE/TEB inside VXLAN counts two tunnel levels and keeps the innermost VLAN', () => {
  const greFrame = ethernet({ type: ETHERTYPE.IPV4, vlans: [{ vid: 50 }] }, ipv4({ proto: IPPROTO.GRE }, gre({ proto: ETHERTYPE.TEB }, innerFrame([{ vid: 60 }]))));
  const r = decodeOne(outer(IPPROTO.UDP, udp({ sport: 1, dport: VXLAN_PORT }, vxlan({ vni: 1 }, greFrame))));
  assertInner(r, 2);
  assert.deepEqual([r.p.vlanCount, r.p.vlan0], [1, 60]);
});

function nestVxlan(levels: number): Buffer {
  let frame = innerFrame();
  for (let i = 0; i < levels; i++) {
    frame = ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ proto: IPPROTO.UDP, src: `192.0.2.${i + 10}`, dst: '192.0.2.1' }, udp({ sport: 1000 + i, dport: VXLAN_PORT }, vxlan({ vni: i }, frame))));
  }
  return frame;
}

test(`innerFrame decodes MAX_TUNNEL_DEPTH (${MAX_TUNNEL_DEPTH}) nested VXLAN levels`, () => {
  assertInner(decodeOne(nestVxlan(MAX_TUNNEL_DEPTH)), MAX_TUNNEL_DEPTH);
});

test('innerFrame flags VXLAN nesting beyond MAX_TUNNEL_DEPTH with decoder.tunnel.too_deep', () => {
  const r = decodeOne(nestVxlan(MAX_TUNNEL_DEPTH + 1));
  assert.deepEqual(r.anomalies, { 'decoder.tunnel.too_deep': 1 });
  assert.equal(r.p.tunnelDepth, MAX_TUNNEL_DEPTH);
  // The deepest UDP datagram that could not be entered is what the flow stage sees.
  assert.equal(r.p.transport, IPPROTO_UDP);
  assert.equal(srcAddr(r.p), '192.0.2.10');
});

test('decodeGre flags GRE nesting beyond MAX_TUNNEL_DEPTH', () => {
  let ip = ipv4({ proto: IPPROTO.TCP }, tcp({ sport: 1, dport: 2 }));
  for (let i = 0; i <= MAX_TUNNEL_DEPTH; i++) ip = ipv4({ proto: IPPROTO.GRE }, gre({ proto: ETHERTYPE.IPV4 }, ip));
  const r = decodeOne(ethernet({ type: ETHERTYPE.IPV4 }, ip));
  assert.deepEqual(r.anomalies, { 'decoder.tunnel.too_deep': 1 });
  assert.equal(r.ok, false);
});

test('decodeErspan2 flags nesting beyond MAX_TUNNEL_DEPTH', () => {
  let frame = innerFrame();
  for (let i = 0; i <= MAX_TUNNEL_DEPTH; i++) {
    frame = ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ proto: IPPROTO.GRE }, gre({ proto: ETHERTYPE.ERSPAN2, seq: i }, erspan2({}, frame))));
  }
  const r = decodeOne(frame);
  assert.deepEqual(r.anomalies, { 'decoder.tunnel.too_deep': 1 });
  assert.equal(r.ok, false);
});

/**
 * Tests for sensor/decode/link.ts through the Decoder: Ethernet, 802.1Q / 802.1ad tags, MPLS,
 * PPPoE session, Linux cooked v1/v2, BSD NULL/LOOP and raw IP. Happy paths check the fields that
 * reach the flow stage; each failure mode asserts the exact anomaly snapshot (nothing else fired).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeOne, dstAddr, newDecoder, payloadOf, srcAddr } from '../helpers/decode.js';
import {
  ascii, bsdLoopback, bytes, concat, ETHERTYPE, ethernet, ethTcp, hex, IPPROTO, ipv4, ipv6, LINKTYPE, mpls, PPP,
  pppoeSession, pwControlWord, sll, sll2, tcp, TCP_FLAGS, udp,
} from '../helpers/packets.js';

const TCP_SEG = tcp({ sport: 40000, dport: 443, seq: 1000, ack: 2000, flags: TCP_FLAGS.ACK | TCP_FLAGS.PSH }, ascii('data'));
const V4_TCP = ipv4({ proto: IPPROTO.TCP, src: '198.51.100.7', dst: '203.0.113.9' }, TCP_SEG);
const V6_TCP = ipv6({ proto: IPPROTO.TCP, src: '2001:db8::7', dst: '2001:db8::9' }, TCP_SEG);

function assertV4Tcp(r: ReturnType<typeof decodeOne>): void {
  assert.equal(r.ok, true);
  assert.equal(r.p.ipVersion, 4);
  assert.equal(srcAddr(r.p), '198.51.100.7');
  assert.equal(dstAddr(r.p), '203.0.113.9');
  assert.equal(r.p.srcPort, 40000);
  assert.equal(r.p.dstPort, 443);
  assert.equal(payloadOf(r.p).toString(), 'data');
}

function assertV6Tcp(r: ReturnType<typeof decodeOne>): void {
  assert.equal(r.ok, true);
  assert.equal(r.p.ipVersion, 6);
  assert.equal(srcAddr(r.p), '2001:db8::7');
  assert.equal(dstAddr(r.p), '2001:db8::9');
  assert.equal(r.p.dstPort, 443);
  assert.equal(payloadOf(r.p).toString(), 'data');
}

// ---------------------------------------------------------------------------------------------
// Ethernet

// tcpdump -nn -e -X of the padded frame below (the 3 zero bytes after "GET" are padding):
//   00:00:5e:00:53:01 > 00:00:5e:00:53:02, ethertype IPv4 (0x0800), length 60: 10.0.0.1.1234 > 10.0.0.2.80:
//   Flags [P.], seq 100:103, ack 200, win 65535, length 3: HTTP: GET [|http]
//   0x0000:  4500 002b 1234 0000 4006 5497 0a00 0001  E..+.4..@.T.....
//   0x0010:  0a00 0002 04d2 0050 0000 0064 0000 00c8  .......P...d....
//   0x0020:  5018 ffff 0000 0000 4745 5400 0000       P.......GET...
test('decodeEthernet: padding to 60 bytes is trimmed by the IPv4 total length', () => {
  const frame = ethTcp({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1234, dport: 80, seq: 100, ack: 200, flags: 0x18 }, ascii('GET'));
  assert.equal(frame.length, 57);
  const padded = concat(frame, bytes(0, 0, 0));
  assert.equal(padded.length, 60);
  assert.ok(padded.subarray(14).equals(hex(`
    4500 002b 1234 0000 4006 5497 0a00 0001
    0a00 0002 04d2 0050 0000 0064 0000 00c8
    5018 ffff 0000 0000 4745 5400 0000`)), 'the builder matches the dump');
  const r = decodeOne(padded);
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.ok, true);
  assert.equal(r.p.end, 57, 'end trimmed to 14 + IPv4 total length');
  assert.equal(r.p.payloadOff, 54);
  assert.equal(r.p.payloadLen, 3);
  assert.equal(payloadOf(r.p).toString(), 'GET');
  assert.equal(r.p.l4Off, 34);
  assert.equal(r.p.l4Len, 23);
  assert.equal(r.p.vlanCount, 0);
  assert.equal(r.p.tunnelDepth, 0);
});

test('decodeEthernet: non-zero trailer bytes (an FCS) are not taken as payload', () => {
  const frame = ethernet({ type: ETHERTYPE.IPV4, trailer: hex('de ad be ef') }, V4_TCP);
  const r = decodeOne(frame);
  assert.deepEqual(r.anomalies, {});
  assertV4Tcp(r);
});

test('decodeEthernet flags a frame shorter than the 14-byte header', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.IPV4 }).subarray(0, 13));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.ethernet.pkt_too_small': 1 });
});

test('decodeEthernet counts ARP and other ethertypes without an anomaly', () => {
  const arp = decodeOne(ethernet({ type: ETHERTYPE.ARP, padTo: 60 }));
  assert.equal(arp.ok, false);
  assert.deepEqual(arp.anomalies, {});
  assert.equal(arp.counters.get('decoder.arp'), 1);
  assert.equal(arp.p.nextType, ETHERTYPE.ARP);
  const lldp = decodeOne(ethernet({ type: 0x88cc, padTo: 60 }));
  assert.equal(lldp.ok, false);
  assert.deepEqual(lldp.anomalies, {});
  assert.equal(lldp.counters.get('decoder.ethertype_other'), 1);
  assert.equal(lldp.counters.get('decoder.arp'), 0);
});

// ---------------------------------------------------------------------------------------------
// VLAN

test('decodeVlan: one 802.1Q tag sets vlan0 and masks off PCP and DEI', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.IPV4, vlans: [{ vid: 100, pcp: 7, dei: true }] }, V4_TCP));
  assert.deepEqual(r.anomalies, {});
  assertV4Tcp(r);
  assert.equal(r.p.vlanCount, 1);
  assert.equal(r.p.vlan0, 100);
  assert.equal(r.p.vlan1, 0);
  assert.equal(r.counters.get('decoder.vlan'), 1);
});

// tcpdump -nn -e -X of the QinQ frame below:
//   00:00:5e:00:53:01 > 00:00:5e:00:53:02, ethertype 802.1Q-QinQ (0x88a8), length 66: vlan 100, p 0,
//   ethertype 802.1Q (0x8100), vlan 2000, p 3, ethertype IPv4 (0x0800), 198.51.100.7.40000 > 203.0.113.9.443:
//   Flags [P.], seq 1000:1004, ack 2000, win 65535, length 4
//   0x0000:  4500 002c 1234 0000 4006 0254 c633 6407  E..,.4..@..T.3d.
//   0x0010:  cb00 7109 9c40 01bb 0000 03e8 0000 07d0  ..q..@..........
//   0x0020:  5018 ffff 0000 0000 6461 7461            P.......data
test('decodeVlan: QinQ 0x88a8 + 0x8100 gives vlan0 = outer S-tag, vlan1 = inner C-tag', () => {
  const frame = ethernet({ type: ETHERTYPE.IPV4, vlans: [{ tpid: ETHERTYPE.QINQ, vid: 100 }, { vid: 2000, pcp: 3 }] }, V4_TCP);
  assert.ok(frame.subarray(12, 22).equals(hex('88a8 0064 8100 67d0 0800')), 'TPIDs and TCIs as in the dump');
  assert.ok(frame.subarray(22).equals(hex(`
    4500 002c 1234 0000 4006 0254 c633 6407
    cb00 7109 9c40 01bb 0000 03e8 0000 07d0
    5018 ffff 0000 0000 6461 7461`)));
  const r = decodeOne(frame);
  assert.deepEqual(r.anomalies, {});
  assertV4Tcp(r);
  assert.equal(r.p.vlanCount, 2);
  assert.equal(r.p.vlan0, 100);
  assert.equal(r.p.vlan1, 2000);
});

test('decodeVlan: the pre-standard 0x9100 outer TPID is a tag too', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.IPV6, vlans: [{ tpid: ETHERTYPE.QINQ_9100, vid: 4094 }, { vid: 4093 }] }, V6_TCP));
  assert.deepEqual(r.anomalies, {});
  assertV6Tcp(r);
  assert.deepEqual([r.p.vlanCount, r.p.vlan0, r.p.vlan1], [2, 4094, 4093]);
});

test('decodeVlan: a third tag raises decoder.vlan.too_many_layers and keeps the first two', () => {
  const frame = ethernet({ type: ETHERTYPE.IPV4, vlans: [{ tpid: ETHERTYPE.QINQ, vid: 10 }, { vid: 20 }, { vid: 30 }] }, V4_TCP);
  const r = decodeOne(frame);
  assert.deepEqual(r.anomalies, { 'decoder.vlan.too_many_layers': 1 });
  assert.deepEqual([r.p.vlanCount, r.p.vlan0, r.p.vlan1], [3, 10, 20]);
  // The packet still decodes: the anomaly is counted once per packet, not per extra tag.
  assertV4Tcp(r);
});

test('decodeVlan: four tags count too_many_layers once', () => {
  const frame = ethernet({ type: ETHERTYPE.IPV4, vlans: [{ vid: 1 }, { vid: 2 }, { vid: 3 }, { vid: 4 }] }, V4_TCP);
  const r = decodeOne(frame);
  assert.deepEqual(r.anomalies, { 'decoder.vlan.too_many_layers': 1 });
  assert.equal(r.p.vlanCount, 4);
});

test('decodeVlan flags a tag cut short', () => {
  const frame = ethernet({ type: ETHERTYPE.VLAN }, bytes(0x00, 0x64, 0x08));
  const r = decodeOne(frame);
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.vlan.pkt_too_small': 1 });
});

// ---------------------------------------------------------------------------------------------
// MPLS

test('decodeMpls: two labels then IPv4 (first nibble 4)', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.MPLS }, mpls({ labels: [16, 1000] }, V4_TCP)));
  assert.deepEqual(r.anomalies, {});
  assertV4Tcp(r);
  assert.equal(r.counters.get('decoder.mpls'), 1);
  assert.equal(r.p.l4Off, 14 + 8 + 20);
});

test('decodeMpls: two labels then IPv6 (first nibble 6)', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.MPLS }, mpls({ labels: [16, 1000] }, V6_TCP)));
  assert.deepEqual(r.anomalies, {});
  assertV6Tcp(r);
});

test('decodeMpls: pseudowire control word then an Ethernet frame with its own VLAN', () => {
  const inner = ethernet({ type: ETHERTYPE.IPV4, vlans: [{ vid: 300 }] }, V4_TCP);
  const r = decodeOne(ethernet({ type: ETHERTYPE.MPLS_MC }, mpls({ labels: [16, 17] }, pwControlWord(inner, 5))));
  assert.deepEqual(r.anomalies, {});
  assertV4Tcp(r);
  assert.deepEqual([r.p.vlanCount, r.p.vlan0], [1, 300]);
});

test('decodeMpls: eight labels is the limit, a ninth raises too_many_labels', () => {
  const eight = decodeOne(ethernet({ type: ETHERTYPE.MPLS }, mpls({ labels: [1, 2, 3, 4, 5, 6, 7, 8] }, V4_TCP)));
  assert.deepEqual(eight.anomalies, {});
  assertV4Tcp(eight);
  const nine = decodeOne(ethernet({ type: ETHERTYPE.MPLS }, mpls({ labels: [1, 2, 3, 4, 5, 6, 7, 8, 9] }, V4_TCP)));
  assert.equal(nine.ok, false);
  assert.deepEqual(nine.anomalies, { 'decoder.mpls.too_many_labels': 1 });
});

test('decodeMpls flags a stack that ends without the bottom-of-stack bit', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.MPLS }, mpls({ labels: [16, 17], bos: false })));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.mpls.pkt_too_small': 1 });
});

test('decodeMpls flags a bottom label with nothing after it', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.MPLS }, mpls({ labels: [16] })));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.mpls.pkt_too_small': 1 });
});

test('decodeMpls flags a payload whose first nibble is neither 4, 6 nor 0', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.MPLS }, mpls({ labels: [16] }, bytes(0x50, 0, 0, 0))));
  assert.deepEqual(r.anomalies, { 'decoder.mpls.unknown_payload': 1 });
});

test('decodeMpls flags a control word followed by less than an Ethernet header', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.MPLS }, mpls({ labels: [16] }, pwControlWord(Buffer.alloc(13)))));
  assert.deepEqual(r.anomalies, { 'decoder.mpls.unknown_payload': 1 });
});

// ---------------------------------------------------------------------------------------------
// PPPoE

test('decodePppoe: session carrying IPv4, Ethernet padding trimmed by the PPPoE length', () => {
  const frame = ethernet({ type: ETHERTYPE.PPPOE_SESS, padTo: 60 }, pppoeSession({ proto: PPP.IPV4 }, ipv4({ proto: IPPROTO.UDP }, udp({ sport: 5, dport: 6 }, ascii('ab')))));
  assert.equal(frame.length, 60);
  const r = decodeOne(frame);
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.ok, true);
  assert.equal(r.p.end, 14 + 8 + 30);
  assert.equal(payloadOf(r.p).toString(), 'ab');
  assert.equal(r.counters.get('decoder.pppoe'), 1);
});

test('decodePppoe: the PPPoE length bounds the IP packet (bytes after it are padding)', () => {
  // IPv4 claims 4 bytes more than PPPoE carries; the frame has 4 padding bytes that must not count.
  const ip = ipv4({ proto: IPPROTO.TCP, totalLength: V4_TCP.length + 4 }, TCP_SEG);
  const frame = ethernet({ type: ETHERTYPE.PPPOE_SESS, trailer: bytes(0, 0, 0, 0) }, pppoeSession({ proto: PPP.IPV4 }, ip));
  const r = decodeOne(frame);
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.ipv4.trunc_pkt': 1 });
});

test('decodePppoe: session carrying IPv6', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.PPPOE_SESS }, pppoeSession({ proto: PPP.IPV6 }, V6_TCP)));
  assert.deepEqual(r.anomalies, {});
  assertV6Tcp(r);
});

test('decodePppoe: a non-IP PPP protocol (LCP) is counted, not an anomaly', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.PPPOE_SESS }, pppoeSession({ proto: PPP.LCP }, hex('09 01 00 08 00 00 00 00'))));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.counters.get('decoder.pppoe.non_ip'), 1);
});

test('decodePppoe flags a header shorter than 6 + 2 bytes', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.PPPOE_SESS }, pppoeSession({ proto: PPP.IPV4 }).subarray(0, 7)));
  assert.deepEqual(r.anomalies, { 'decoder.pppoe.pkt_too_small': 1 });
});

test('decodePppoe flags a wrong version/type byte', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.PPPOE_SESS }, pppoeSession({ proto: PPP.IPV4, verType: 0x12 }, V4_TCP)));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.pppoe.malformed': 1 });
});

test('decodePppoe flags a non-zero code in a session frame', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.PPPOE_SESS }, pppoeSession({ proto: PPP.IPV4, code: 0x09 }, V4_TCP)));
  assert.deepEqual(r.anomalies, { 'decoder.pppoe.malformed': 1 });
});

test('decodePppoe flags a length shorter than the PPP protocol field', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.PPPOE_SESS }, pppoeSession({ proto: PPP.IPV4, length: 1 }, V4_TCP)));
  assert.deepEqual(r.anomalies, { 'decoder.pppoe.malformed': 1 });
});

test('decodePppoe flags a length beyond the captured bytes', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.PPPOE_SESS }, pppoeSession({ proto: PPP.IPV4, length: 2 + V4_TCP.length + 1 }, V4_TCP)));
  assert.deepEqual(r.anomalies, { 'decoder.pppoe.malformed': 1 });
});

// ---------------------------------------------------------------------------------------------
// Linux cooked capture

test('decodeSll: SLL v1 carrying IPv4 and IPv6', () => {
  const r4 = decodeOne(sll({ protocol: ETHERTYPE.IPV4, pktType: 4 }, V4_TCP), LINKTYPE.LINUX_SLL);
  assert.deepEqual(r4.anomalies, {});
  assertV4Tcp(r4);
  assert.equal(r4.p.l4Off, 16 + 20);
  const r6 = decodeOne(sll({ protocol: ETHERTYPE.IPV6 }, V6_TCP), LINKTYPE.LINUX_SLL);
  assert.deepEqual(r6.anomalies, {});
  assertV6Tcp(r6);
});

test('decodeSll2: SLL v2 carrying IPv4', () => {
  const r = decodeOne(sll2({ protocol: ETHERTYPE.IPV4, ifIndex: 3 }, V4_TCP), LINKTYPE.LINUX_SLL2);
  assert.deepEqual(r.anomalies, {});
  assertV4Tcp(r);
  assert.equal(r.p.l4Off, 20 + 20);
});

test('decodeSll flags a header shorter than 16 bytes', () => {
  const r = decodeOne(sll({ protocol: ETHERTYPE.IPV4 }).subarray(0, 15), LINKTYPE.LINUX_SLL);
  assert.deepEqual(r.anomalies, { 'decoder.sll.pkt_too_small': 1 });
});

test('decodeSll2 flags a header shorter than 20 bytes', () => {
  const r = decodeOne(sll2({ protocol: ETHERTYPE.IPV4 }).subarray(0, 19), LINKTYPE.LINUX_SLL2);
  assert.deepEqual(r.anomalies, { 'decoder.sll.pkt_too_small': 1 });
});

test('decodeSll counts an ARP protocol field like Ethernet does', () => {
  const r = decodeOne(sll({ protocol: ETHERTYPE.ARP }, Buffer.alloc(28)), LINKTYPE.LINUX_SLL);
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.counters.get('decoder.arp'), 1);
});

// ---------------------------------------------------------------------------------------------
// BSD loopback

test('decodeNull: AF_INET (2) and AF_INET6 (24, 28, 30) in host order, either byte order', () => {
  for (const order of ['le', 'be'] as const) {
    const r4 = decodeOne(bsdLoopback(2, order, V4_TCP), LINKTYPE.NULL);
    assert.deepEqual(r4.anomalies, {}, `AF_INET ${order}`);
    assertV4Tcp(r4);
    for (const af of [24, 28, 30]) {
      const r6 = decodeOne(bsdLoopback(af, order, V6_TCP), LINKTYPE.NULL);
      assert.deepEqual(r6.anomalies, {}, `AF_INET6=${af} ${order}`);
      assertV6Tcp(r6);
    }
  }
});

test('decodeNull flags an unknown address family', () => {
  const r = decodeOne(bsdLoopback(7, 'le', V4_TCP), LINKTYPE.NULL);
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.null.unsupported_family': 1 });
});

test('decodeNull flags a header shorter than 4 bytes', () => {
  const r = decodeOne(bytes(2, 0, 0), LINKTYPE.NULL);
  assert.deepEqual(r.anomalies, { 'decoder.null.pkt_too_small': 1 });
});

test('decodeLoop: the family is always network byte order', () => {
  const r4 = decodeOne(bsdLoopback(2, 'be', V4_TCP), LINKTYPE.LOOP);
  assert.deepEqual(r4.anomalies, {});
  assertV4Tcp(r4);
  const r6 = decodeOne(bsdLoopback(24, 'be', V6_TCP), LINKTYPE.LOOP);
  assert.deepEqual(r6.anomalies, {});
  assertV6Tcp(r6);
  // Little-endian 2 read in network order is 0x02000000: not a family.
  const le = decodeOne(bsdLoopback(2, 'le', V4_TCP), LINKTYPE.LOOP);
  assert.deepEqual(le.anomalies, { 'decoder.null.unsupported_family': 1 });
});

test('decodeLoop flags a header shorter than 4 bytes', () => {
  const r = decodeOne(bytes(0, 0), LINKTYPE.LOOP);
  assert.deepEqual(r.anomalies, { 'decoder.null.pkt_too_small': 1 });
});

// ---------------------------------------------------------------------------------------------
// Raw IP

test('decodeRaw: raw IPv4 and IPv6 on every raw link type', () => {
  for (const lt of [LINKTYPE.RAW, LINKTYPE.RAW_BSD, LINKTYPE.RAW_OPENBSD]) {
    const r4 = decodeOne(V4_TCP, lt);
    assert.deepEqual(r4.anomalies, {}, `link type ${lt}`);
    assertV4Tcp(r4);
    assert.equal(r4.p.l4Off, 20);
    const r6 = decodeOne(V6_TCP, lt);
    assert.deepEqual(r6.anomalies, {}, `link type ${lt}`);
    assertV6Tcp(r6);
  }
  assertV4Tcp(decodeOne(V4_TCP, LINKTYPE.IPV4));
  assertV6Tcp(decodeOne(V6_TCP, LINKTYPE.IPV6));
});

test('decodeRaw flags a version nibble that is neither 4 nor 6', () => {
  const r = decodeOne(concat(bytes(0x55), V4_TCP.subarray(1)), LINKTYPE.RAW);
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.raw.invalid_ip_version': 1 });
});

test('decodeRaw flags an empty frame', () => {
  const r = decodeOne(Buffer.alloc(0), LINKTYPE.RAW);
  assert.deepEqual(r.anomalies, { 'decoder.raw.invalid_ip_version': 1 });
});

test('Decoder.decodeFrame decodes a frame at a non-zero offset in a larger buffer', () => {
  // The reader hands views into a shared buffer: every offset must be relative to `off`.
  const frame = ethernet({ type: ETHERTYPE.IPV4, vlans: [{ vid: 9 }] }, V4_TCP);
  const big = concat(Buffer.alloc(37, 0xee), frame, Buffer.alloc(11, 0xee));
  const d = newDecoder();
  const ok = d.decodeFrame(LINKTYPE.ETHERNET, big, 37, frame.length, 5, 0);
  assert.equal(ok, true);
  assert.deepEqual(d.counters.snapshot('anomaly'), {});
  assert.equal(d.packet.vlan0, 9);
  assert.equal(payloadOf(d.packet).toString(), 'data');
  assert.equal(d.packet.payloadOff, 37 + frame.length - 4);
});

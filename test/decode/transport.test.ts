/**
 * Tests for sensor/decode/transport.ts through the Decoder: TCP header fields and options, UDP
 * length rules, ICMP / ICMPv6 counting. `p.transport` must be set exactly when a TCP or UDP header
 * decoded, since that is what hands the packet to the flow stage.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../sensor/decode/packet.js';
import { TH_ACK, TH_FIN, TH_PSH, TH_RST, TH_SYN, TH_URG } from '../../sensor/decode/transport.js';
import { decodeOne, dstAddr, payloadOf, srcAddr } from '../helpers/decode.js';
import {
  ascii, bytes, concat, ETHERTYPE, ethernet, ethTcp, ethUdp, icmp, IPPROTO, ipv4, ipv6, tcp, TCP_FLAGS, tcpOption, udp,
} from '../helpers/packets.js';

function v4(proto: number, l4: Uint8Array): Buffer {
  return ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ proto, src: '192.0.2.10', dst: '192.0.2.20' }, l4));
}

// ---------------------------------------------------------------------------------------------
// TCP

test('TH_* flag constants match RFC 9293 bit positions', () => {
  assert.deepEqual([TH_FIN, TH_SYN, TH_RST, TH_PSH, TH_ACK, TH_URG], [1, 2, 4, 8, 16, 32]);
  assert.deepEqual([TH_FIN, TH_SYN, TH_RST, TH_PSH, TH_ACK, TH_URG], Object.values(TCP_FLAGS));
});

test('decodeTcp: ports, seq/ack above 2^31 (unsigned), flags, window and payload window', () => {
  const frame = ethTcp(
    { src: '10.0.0.1', dst: '10.0.0.2', sport: 65535, dport: 1, seq: 0xfffffff0, ack: 0x80000001, flags: TCP_FLAGS.PSH | TCP_FLAGS.ACK | TCP_FLAGS.URG, window: 513 },
    ascii('hello world'),
  );
  const r = decodeOne(frame);
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.ok, true);
  assert.equal(r.p.transport, IPPROTO_TCP);
  assert.equal(srcAddr(r.p), '10.0.0.1');
  assert.equal(dstAddr(r.p), '10.0.0.2');
  assert.equal(r.p.srcPort, 65535);
  assert.equal(r.p.dstPort, 1);
  assert.equal(r.p.seq, 0xfffffff0);
  assert.equal(r.p.ack, 0x80000001);
  assert.equal(r.p.tcpFlags, TH_PSH | TH_ACK | TH_URG);
  assert.equal(r.p.window, 513);
  assert.equal(r.p.payloadOff, 54);
  assert.equal(r.p.payloadLen, 11);
  assert.equal(payloadOf(r.p).toString(), 'hello world');
  assert.equal(r.counters.get('decoder.tcp'), 1);
});

test('decodeTcp: SYN with MSS, SACK-permitted, timestamps, NOP and window scale', () => {
  const options = concat(tcpOption.mss(1460), tcpOption.sackPermitted(), tcpOption.timestamps(12345, 0), tcpOption.nop(), tcpOption.wscale(7));
  assert.equal(options.length, 20);
  const r = decodeOne(ethTcp({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1025, dport: 80, seq: 42, ack: 0, flags: TCP_FLAGS.SYN, options }));
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.p.tcpFlags, TH_SYN);
  assert.equal(r.p.seq, 42);
  assert.equal(r.p.payloadOff, 14 + 20 + 40);
  assert.equal(r.p.payloadLen, 0);
});

test('decodeTcp: EOL ends option parsing, the bytes after it are not checked', () => {
  const r = decodeOne(v4(IPPROTO.TCP, tcp({ sport: 1, dport: 2, options: bytes(1, 0, 0xff, 0xff) }, ascii('x'))));
  assert.deepEqual(r.anomalies, {});
  assert.equal(payloadOf(r.p).toString(), 'x');
});

test('decodeTcp over IPv6', () => {
  const r = decodeOne(ethTcp({ src: '2001:db8::1', dst: '2001:db8::2', sport: 5, dport: 6, flags: TCP_FLAGS.FIN | TCP_FLAGS.ACK }, ascii('bye')));
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.ok, true);
  assert.equal(r.p.tcpFlags, TH_FIN | TH_ACK);
  assert.equal(r.p.payloadOff, 14 + 40 + 20);
  assert.equal(payloadOf(r.p).toString(), 'bye');
});

test('decodeTcp flags fewer than 20 bytes', () => {
  const r = decodeOne(v4(IPPROTO.TCP, tcp({ sport: 1, dport: 2 }).subarray(0, 19)));
  assert.equal(r.ok, false);
  assert.equal(r.p.transport, 0);
  assert.deepEqual(r.anomalies, { 'decoder.tcp.pkt_too_small': 1 });
});

test('decodeTcp flags a data offset below 5 words', () => {
  const r = decodeOne(v4(IPPROTO.TCP, tcp({ sport: 1, dport: 2, dataOffset: 4 }, ascii('abcd'))));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.tcp.hlen_too_small': 1 });
});

test('decodeTcp flags a data offset beyond the segment', () => {
  const r = decodeOne(v4(IPPROTO.TCP, tcp({ sport: 1, dport: 2, dataOffset: 15 }, ascii('abcd'))));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.tcp.hlen_exceeds_packet': 1 });
  // One word more than the 20 bytes present.
  const edge = decodeOne(v4(IPPROTO.TCP, tcp({ sport: 1, dport: 2, dataOffset: 6 })));
  assert.deepEqual(edge.anomalies, { 'decoder.tcp.hlen_exceeds_packet': 1 });
});

test('decodeTcp flags an option length below 2 and still hands the segment on', () => {
  const r = decodeOne(v4(IPPROTO.TCP, tcp({ sport: 1, dport: 2, options: bytes(2, 1, 5, 0xb4) }, ascii('x'))));
  assert.deepEqual(r.anomalies, { 'decoder.tcp.invalid_optlen': 1 });
  assert.equal(r.ok, true);
  assert.equal(payloadOf(r.p).toString(), 'x');
});

test('decodeTcp flags an option that runs past the header', () => {
  const r = decodeOne(v4(IPPROTO.TCP, tcp({ sport: 1, dport: 2, options: bytes(1, 1, 8, 10) })));
  assert.deepEqual(r.anomalies, { 'decoder.tcp.invalid_optlen': 1 });
});

test('decodeTcp flags an option kind in the last byte with no length', () => {
  const r = decodeOne(v4(IPPROTO.TCP, tcp({ sport: 1, dport: 2, options: bytes(1, 1, 1, 4) })));
  assert.deepEqual(r.anomalies, { 'decoder.tcp.invalid_optlen': 1 });
});

// ---------------------------------------------------------------------------------------------
// UDP

test('decodeUdp: ports and payload window; tcpFlags cleared', () => {
  const r = decodeOne(ethUdp({ src: '192.0.2.1', dst: '192.0.2.2', sport: 5353, dport: 53 }, ascii('query')));
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.ok, true);
  assert.equal(r.p.transport, IPPROTO_UDP);
  assert.equal(r.p.srcPort, 5353);
  assert.equal(r.p.dstPort, 53);
  assert.equal(r.p.tcpFlags, 0);
  assert.equal(r.p.payloadOff, 42);
  assert.equal(payloadOf(r.p).toString(), 'query');
  assert.equal(r.counters.get('decoder.udp'), 1);
});

test('decodeUdp: a UDP length shorter than the IP payload bounds the payload', () => {
  const r = decodeOne(v4(IPPROTO.UDP, concat(udp({ sport: 1, dport: 2 }, ascii('ab')), ascii('trailing'))));
  assert.deepEqual(r.anomalies, {});
  assert.equal(payloadOf(r.p).toString(), 'ab');
});

test('decodeUdp: length 0 (IPv6 jumbogram, RFC 2675) takes the rest of the packet', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.IPV6 }, ipv6({ proto: IPPROTO.UDP }, udp({ sport: 1, dport: 2, length: 0 }, ascii('jumbo')))));
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.ok, true);
  assert.equal(payloadOf(r.p).toString(), 'jumbo');
});

test('decodeUdp flags fewer than 8 bytes', () => {
  const r = decodeOne(v4(IPPROTO.UDP, udp({ sport: 1, dport: 2 }).subarray(0, 7)));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.udp.pkt_too_small': 1 });
});

test('decodeUdp flags a length field below the header size', () => {
  const r = decodeOne(v4(IPPROTO.UDP, udp({ sport: 1, dport: 2, length: 7 }, ascii('abc'))));
  assert.equal(r.ok, false);
  assert.equal(r.p.transport, 0);
  assert.deepEqual(r.anomalies, { 'decoder.udp.len_invalid': 1 });
});

test('decodeUdp flags a length field beyond the IP payload', () => {
  const r = decodeOne(v4(IPPROTO.UDP, udp({ sport: 1, dport: 2, length: 12 }, ascii('abc'))));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.udp.len_invalid': 1 });
});

// ---------------------------------------------------------------------------------------------
// ICMP

test('decodeIcmp and decodeIcmpv6 count messages and never hand them to the flow stage', () => {
  const r4 = decodeOne(v4(IPPROTO.ICMP, icmp(0, 0)));
  assert.equal(r4.ok, false);
  assert.deepEqual(r4.anomalies, {});
  assert.equal(r4.counters.get('decoder.icmpv4'), 1);
  const r6 = decodeOne(ethernet({ type: ETHERTYPE.IPV6 }, ipv6({ proto: IPPROTO.ICMPV6 }, icmp(128, 0))));
  assert.equal(r6.ok, false);
  assert.deepEqual(r6.anomalies, {});
  assert.equal(r6.counters.get('decoder.icmpv6'), 1);
});

test('decodeIcmp flags fewer than 4 bytes', () => {
  const r = decodeOne(v4(IPPROTO.ICMP, bytes(8, 0, 0)));
  assert.deepEqual(r.anomalies, { 'decoder.icmp.pkt_too_small': 1 });
  assert.equal(r.counters.get('decoder.icmpv4'), 0);
});

test('decodeIcmpv6 flags fewer than 4 bytes', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.IPV6 }, ipv6({ proto: IPPROTO.ICMPV6 }, bytes(128))));
  assert.deepEqual(r.anomalies, { 'decoder.icmp.pkt_too_small': 1 });
  assert.equal(r.counters.get('decoder.icmpv6'), 0);
});

/**
 * Tests for sensor/decode/ip.ts through the Decoder: IPv4 header and options, IPv6 extension
 * headers, atomic fragments, ESP, IP-in-IP / 6in4 tunnels and the tunnel depth limit. Each failure
 * mode asserts the exact anomaly snapshot. Fragment reassembly is in ip-fragments.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_TUNNEL_DEPTH } from '../../sensor/decode/ip.js';
import { IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_TCP, IPPROTO_UDP } from '../../sensor/decode/packet.js';
import { decodeOne, dstAddr, payloadOf, srcAddr } from '../helpers/decode.js';
import {
  ascii, bytes, concat, ETHERTYPE, ethernet, icmp, IPPROTO, ipv4, ipv4Word, ipv6, LINKTYPE, tcp, udp,
} from '../helpers/packets.js';

const SEG = tcp({ sport: 1111, dport: 2222, seq: 7 }, ascii('payload'));

function eth4(ip: Buffer): Buffer {
  return ethernet({ type: ETHERTYPE.IPV4 }, ip);
}
function eth6(ip: Buffer): Buffer {
  return ethernet({ type: ETHERTYPE.IPV6 }, ip);
}

// ---------------------------------------------------------------------------------------------
// IPv4

test('decodeIpv4: addresses, protocol and the L4 window', () => {
  const r = decodeOne(eth4(ipv4({ proto: IPPROTO.TCP, src: '10.1.2.3', dst: '172.16.254.1', ttl: 1, df: true }, SEG)));
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.ok, true);
  assert.equal(r.p.ipVersion, 4);
  assert.equal(r.p.ipProto, IPPROTO_TCP);
  assert.equal(r.p.addr[0], ipv4Word('10.1.2.3'));
  assert.equal(r.p.addr[4], ipv4Word('172.16.254.1'));
  assert.deepEqual([...r.p.addr.subarray(1, 4), ...r.p.addr.subarray(5, 8)], [0, 0, 0, 0, 0, 0]);
  assert.equal(r.p.l4Off, 34);
  assert.equal(r.p.l4Len, SEG.length);
  assert.equal(r.counters.get('decoder.ipv4'), 1);
});

test('decodeIpv4 clears the upper address words left by an earlier IPv6 packet', () => {
  const first = decodeOne(eth6(ipv6({ proto: IPPROTO.TCP, src: '2001:db8:1:2:3:4:5:6', dst: '2001:db8:7:8:9:a:b:c' }, SEG)));
  const r = decodeOne(eth4(ipv4({ proto: IPPROTO.TCP, src: '10.0.0.1', dst: '10.0.0.2' }, SEG)), 1, { decoder: first.decoder });
  assert.deepEqual([...r.p.addr], [ipv4Word('10.0.0.1'), 0, 0, 0, ipv4Word('10.0.0.2'), 0, 0, 0]);
  assert.equal(srcAddr(r.p), '10.0.0.1');
});

test('decodeIpv4: valid options (NOP, NOP, record route, EOL) are skipped without an anomaly', () => {
  // Record route: type 7, length 7, pointer 4, one empty slot.
  const options = bytes(1, 1, 7, 7, 4, 0, 0, 0, 0, 0, 0, 0);
  const r = decodeOne(eth4(ipv4({ proto: IPPROTO.TCP, options }, SEG)));
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.ok, true);
  assert.equal(r.p.l4Off, 14 + 32);
  assert.equal(payloadOf(r.p).toString(), 'payload');
});

test('decodeIpv4: options ending without EOL exactly at the header end are valid', () => {
  // Router alert (type 148, length 4) fills the 4 option bytes exactly.
  const r = decodeOne(eth4(ipv4({ proto: IPPROTO.TCP, options: bytes(148, 4, 0, 0) }, SEG)));
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.ok, true);
});

test('decodeIpv4 flags an option whose length is below 2, and still decodes the packet', () => {
  const r = decodeOne(eth4(ipv4({ proto: IPPROTO.TCP, options: bytes(7, 1, 0, 0) }, SEG)));
  assert.deepEqual(r.anomalies, { 'decoder.ipv4.opt_malformed': 1 });
  assert.equal(r.ok, true);
  assert.equal(payloadOf(r.p).toString(), 'payload');
});

test('decodeIpv4 flags an option that runs past the header', () => {
  const r = decodeOne(eth4(ipv4({ proto: IPPROTO.TCP, options: bytes(1, 7, 11, 4, 0, 0, 0, 0) }, SEG)));
  assert.deepEqual(r.anomalies, { 'decoder.ipv4.opt_malformed': 1 });
  assert.equal(r.p.l4Off, 14 + 28);
});

test('decodeIpv4 flags an option type byte with no room for its length', () => {
  const r = decodeOne(eth4(ipv4({ proto: IPPROTO.TCP, options: bytes(1, 1, 1, 68) }, SEG)));
  assert.deepEqual(r.anomalies, { 'decoder.ipv4.opt_malformed': 1 });
});

test('decodeIpv4 flags fewer than 20 bytes', () => {
  const r = decodeOne(eth4(ipv4({ proto: IPPROTO.TCP }).subarray(0, 19)));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.ipv4.pkt_too_small': 1 });
});

test('decodeIpv4 flags a version nibble other than 4 behind ethertype 0x0800', () => {
  const r = decodeOne(eth4(ipv4({ proto: IPPROTO.TCP, version: 6 }, SEG)));
  assert.deepEqual(r.anomalies, { 'decoder.ipv4.wrong_ip_version': 1 });
});

test('decodeIpv4 flags an IHL below 5 words', () => {
  const r = decodeOne(eth4(ipv4({ proto: IPPROTO.TCP, ihl: 4 }, SEG)));
  assert.deepEqual(r.anomalies, { 'decoder.ipv4.hlen_too_small': 1 });
});

test('decodeIpv4 flags a total length smaller than the header length', () => {
  const r = decodeOne(eth4(ipv4({ proto: IPPROTO.TCP, options: bytes(1, 1, 1, 1), totalLength: 20 }, SEG)));
  assert.deepEqual(r.anomalies, { 'decoder.ipv4.iplen_smaller_than_hlen': 1 });
});

test('decodeIpv4 flags a total length beyond the captured bytes', () => {
  const ip = ipv4({ proto: IPPROTO.TCP }, SEG);
  const r = decodeOne(eth4(ip.subarray(0, ip.length - 1)));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.ipv4.trunc_pkt': 1 });
});

// ---------------------------------------------------------------------------------------------
// IPv6

test('decodeIpv6: addresses, next header and the L4 window', () => {
  const r = decodeOne(eth6(ipv6({ proto: IPPROTO.TCP, src: '2001:db8:0:1::10', dst: 'fe80::abcd:1' }, SEG)));
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.ok, true);
  assert.equal(r.p.ipVersion, 6);
  assert.equal(srcAddr(r.p), '2001:db8:0:1::10');
  assert.equal(dstAddr(r.p), 'fe80::abcd:1');
  assert.equal(r.p.ipProto, IPPROTO_TCP);
  assert.equal(r.p.l4Off, 54);
  assert.equal(r.counters.get('decoder.ipv6'), 1);
});

test('decodeIpv6: Ethernet padding is trimmed by the payload length', () => {
  const r = decodeOne(ethernet({ type: ETHERTYPE.IPV6, padTo: 100 }, ipv6({ proto: IPPROTO.UDP }, udp({ sport: 1, dport: 2 }, ascii('x')))));
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.p.end, 14 + 40 + 9);
  assert.equal(payloadOf(r.p).toString(), 'x');
});

test('decodeIpv6: hop-by-hop + routing + destination options before TCP', () => {
  const ext = [{ type: IPPROTO.HOPOPTS }, { type: IPPROTO.ROUTING }, { type: IPPROTO.DSTOPTS, body: new Uint8Array(14) }];
  const r = decodeOne(eth6(ipv6({ proto: IPPROTO.TCP, ext }, SEG)));
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.ok, true);
  assert.equal(r.p.ipProto, IPPROTO_TCP);
  assert.equal(r.p.l4Off, 14 + 40 + 8 + 8 + 16);
  assert.equal(r.p.srcPort, 1111);
  assert.equal(payloadOf(r.p).toString(), 'payload');
});

test('decodeIpv6: an authentication header is skipped by its 4-octet length', () => {
  const r = decodeOne(eth6(ipv6({ proto: IPPROTO.TCP, ext: [{ type: IPPROTO.AH }] }, SEG)));
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.p.l4Off, 14 + 40 + 24);
  assert.equal(payloadOf(r.p).toString(), 'payload');
});

test('decodeIpv6: an atomic fragment (offset 0, M = 0) is decoded in place (RFC 6946)', () => {
  const r = decodeOne(eth6(ipv6({ proto: IPPROTO.TCP, ext: [{ type: 44, fragOffset: 0, more: false, id: 99 }] }, SEG)));
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.ok, true);
  assert.equal(r.p.l4Off, 14 + 48);
  assert.equal(r.counters.get('defrag.fragments'), 0);
  assert.equal(r.decoder.defrag.inProgress, 0);
});

test('decodeIpv6 stops at ESP and counts it', () => {
  const r = decodeOne(eth6(ipv6({ proto: IPPROTO.ESP }, Buffer.alloc(32, 0x11))));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.counters.get('decoder.ipv6.esp'), 1);
  assert.equal(r.p.transport, 0);
});

test('decodeIpv6 stops at ESP after a destination options header', () => {
  const r = decodeOne(eth6(ipv6({ proto: IPPROTO.ESP, ext: [{ type: IPPROTO.DSTOPTS }] }, Buffer.alloc(32, 0x11))));
  assert.equal(r.ok, false);
  assert.equal(r.counters.get('decoder.ipv6.esp'), 1);
});

test('decodeIpv6 stops quietly at No Next Header (59)', () => {
  const r = decodeOne(eth6(ipv6({ proto: IPPROTO.NONE }, Buffer.alloc(8))));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, {});
});

test('decodeIpv6 flags fewer than 40 bytes', () => {
  const r = decodeOne(eth6(ipv6({ proto: IPPROTO.TCP }).subarray(0, 39)));
  assert.deepEqual(r.anomalies, { 'decoder.ipv6.pkt_too_small': 1 });
});

test('decodeIpv6 flags a version nibble other than 6', () => {
  const r = decodeOne(eth6(ipv6({ proto: IPPROTO.TCP, version: 4 }, SEG)));
  assert.deepEqual(r.anomalies, { 'decoder.ipv6.wrong_ip_version': 1 });
});

test('decodeIpv6 flags a payload length beyond the captured bytes', () => {
  const r = decodeOne(eth6(ipv6({ proto: IPPROTO.TCP, payloadLength: SEG.length + 1 }, SEG)));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.ipv6.trunc_pkt': 1 });
});

test('decodeIpv6 flags a zero payload length and decodes what was captured', () => {
  const r = decodeOne(eth6(ipv6({ proto: IPPROTO.TCP, payloadLength: 0 }, SEG)));
  assert.deepEqual(r.anomalies, { 'decoder.ipv6.zero_len_pl': 1 });
  assert.equal(r.ok, true);
  assert.equal(payloadOf(r.p).toString(), 'payload');
});

test('decodeIpv6 flags an extension header shorter than 8 bytes', () => {
  const r = decodeOne(eth6(ipv6({ proto: IPPROTO.HOPOPTS }, bytes(6, 0, 1, 2))));
  assert.deepEqual(r.anomalies, { 'decoder.ipv6.exthdr_trunc': 1 });
});

test('decodeIpv6 flags an extension header whose length runs past the packet', () => {
  const r = decodeOne(eth6(ipv6({ proto: IPPROTO.TCP, ext: [{ type: IPPROTO.DSTOPTS, lengthByte: 3 }] }, bytes(1, 2, 3, 4))));
  assert.deepEqual(r.anomalies, { 'decoder.ipv6.exthdr_trunc': 1 });
});

test('decodeIpv6 flags an authentication header shorter than 8 bytes', () => {
  const r = decodeOne(eth6(ipv6({ proto: IPPROTO.AH }, bytes(6, 4, 0, 0))));
  assert.deepEqual(r.anomalies, { 'decoder.ipv6.exthdr_trunc': 1 });
});

test('decodeIpv6 flags an authentication header whose length runs past the packet', () => {
  const r = decodeOne(eth6(ipv6({ proto: IPPROTO.TCP, ext: [{ type: IPPROTO.AH, lengthByte: 200 }] })));
  assert.deepEqual(r.anomalies, { 'decoder.ipv6.exthdr_trunc': 1 });
});

test('decodeIpv6 flags a fragment header shorter than 8 bytes', () => {
  const r = decodeOne(eth6(ipv6({ proto: IPPROTO.FRAGMENT }, bytes(6, 0, 0, 1))));
  assert.deepEqual(r.anomalies, { 'decoder.ipv6.exthdr_trunc': 1 });
});

// MAX_IPV6_EXT_HEADERS (16) bounds the headers walked, the transport header included in the count.
test('decodeIpv6 walks 15 extension headers to TCP, and raises exthdr_too_many at 16', () => {
  const ext = (n: number) => Array.from({ length: n }, () => ({ type: IPPROTO.DSTOPTS }));
  const ok = decodeOne(eth6(ipv6({ proto: IPPROTO.TCP, ext: ext(15) }, SEG)));
  assert.deepEqual(ok.anomalies, {});
  assert.equal(ok.ok, true);
  const bad = decodeOne(eth6(ipv6({ proto: IPPROTO.TCP, ext: ext(16) }, SEG)));
  assert.equal(bad.ok, false);
  assert.deepEqual(bad.anomalies, { 'decoder.ipv6.exthdr_too_many': 1 });
});

// ---------------------------------------------------------------------------------------------
// IP-in-IP

test('decodeIpv4: IP-in-IP decodes the inner header and counts one tunnel level', () => {
  const inner = ipv4({ proto: IPPROTO.TCP, src: '10.9.9.1', dst: '10.9.9.2' }, SEG);
  const r = decodeOne(eth4(ipv4({ proto: IPPROTO.IPIP, src: '192.0.2.1', dst: '192.0.2.2' }, inner)));
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.ok, true);
  assert.equal(r.p.tunnelDepth, 1);
  assert.equal(srcAddr(r.p), '10.9.9.1');
  assert.equal(dstAddr(r.p), '10.9.9.2');
  assert.equal(r.p.l4Off, 14 + 40);
  assert.equal(r.counters.get('decoder.ipip'), 1);
});

test('decodeIpv4: 6in4 (protocol 41) decodes the inner IPv6 packet', () => {
  const inner = ipv6({ proto: IPPROTO.UDP, src: '2001:db8::a', dst: '2001:db8::b' }, udp({ sport: 53, dport: 53 }, ascii('q')));
  const r = decodeOne(eth4(ipv4({ proto: IPPROTO.IPV6 }, inner)));
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.ok, true);
  assert.equal(r.p.ipVersion, 6);
  assert.equal(r.p.transport, IPPROTO_UDP);
  assert.equal(srcAddr(r.p), '2001:db8::a');
  assert.equal(r.p.tunnelDepth, 1);
});

test('decodeIpv6: IPv4-in-IPv6 (next header 4) decodes the inner IPv4 packet', () => {
  const r = decodeOne(eth6(ipv6({ proto: IPPROTO.IPIP }, ipv4({ proto: IPPROTO.TCP, src: '10.0.0.5', dst: '10.0.0.6' }, SEG))));
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.ok, true);
  assert.equal(r.p.ipVersion, 4);
  assert.equal(dstAddr(r.p), '10.0.0.6');
  assert.equal(r.p.tunnelDepth, 1);
});

function nestIpip(levels: number): Buffer {
  let ip = ipv4({ proto: IPPROTO.TCP, src: '10.0.0.1', dst: '10.0.0.2' }, SEG);
  for (let i = 0; i < levels; i++) ip = ipv4({ proto: IPPROTO_IPIP, src: `192.0.2.${i + 10}`, dst: '192.0.2.1' }, ip);
  return ip;
}

test(`enterTunnel: ${MAX_TUNNEL_DEPTH} nested IP-in-IP levels decode`, () => {
  const r = decodeOne(nestIpip(MAX_TUNNEL_DEPTH), LINKTYPE.RAW);
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.ok, true);
  assert.equal(r.p.tunnelDepth, MAX_TUNNEL_DEPTH);
  assert.equal(srcAddr(r.p), '10.0.0.1');
});

test('enterTunnel flags nesting beyond MAX_TUNNEL_DEPTH with decoder.tunnel.too_deep', () => {
  const r = decodeOne(nestIpip(MAX_TUNNEL_DEPTH + 1), LINKTYPE.RAW);
  assert.deepEqual(r.anomalies, { 'decoder.tunnel.too_deep': 1 });
  assert.equal(r.ok, false);
  assert.equal(r.p.tunnelDepth, MAX_TUNNEL_DEPTH);
  assert.equal(r.p.ipProto, IPPROTO_IPIP);
});

test('enterTunnel: the depth limit also applies to 6in6', () => {
  let ip = ipv6({ proto: IPPROTO.TCP }, SEG);
  for (let i = 0; i <= MAX_TUNNEL_DEPTH; i++) ip = ipv6({ proto: IPPROTO_IPV6 }, ip);
  const r = decodeOne(ip, LINKTYPE.IPV6);
  assert.deepEqual(r.anomalies, { 'decoder.tunnel.too_deep': 1 });
});

// ---------------------------------------------------------------------------------------------
// ICMP goes through IP too

test('decodeIpv4 hands ICMP to the ICMP decoder (counted, not a flow)', () => {
  const r = decodeOne(eth4(ipv4({ proto: IPPROTO.ICMP }, icmp(8, 0, ascii('ping')))));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.counters.get('decoder.icmpv4'), 1);
});

test('decodeIpv4 stops at an unknown protocol without an anomaly', () => {
  const r = decodeOne(eth4(ipv4({ proto: 132 }, concat(Buffer.alloc(12)))));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, {});
  assert.equal(r.p.ipProto, 132);
});

/**
 * Transport decoders: TCP (header and options validated), UDP (length checked; VXLAN and Geneve
 * ports handed to the tunnel decoders), ICMP and ICMPv6 (counted only).
 * Input: `p.buf[p.off..p.end)` = the IP payload. Output: ports, TCP sequence fields, flags and the
 * payload window on `p`, and `p.transport` set once a header decoded cleanly (only then does the
 * packet reach the flow stage). Malformed: anomaly counted.
 */
import { Counters, defineAnomaly, defineCounter } from '../events/counters.js';
import { IPPROTO_TCP, IPPROTO_UDP, L_DONE, L_GENEVE, L_VXLAN, Packet } from './packet.js';

const A_TCP_SHORT = defineAnomaly('decoder.tcp.pkt_too_small');
const A_TCP_HLEN = defineAnomaly('decoder.tcp.hlen_too_small');
const A_TCP_OPTLEN = defineAnomaly('decoder.tcp.invalid_optlen');
const A_TCP_HLEN_BIG = defineAnomaly('decoder.tcp.hlen_exceeds_packet');
const A_UDP_SHORT = defineAnomaly('decoder.udp.pkt_too_small');
const A_UDP_LEN = defineAnomaly('decoder.udp.len_invalid');
const A_ICMP_SHORT = defineAnomaly('decoder.icmp.pkt_too_small');
export const C_TCP = defineCounter('decoder.tcp');
export const C_UDP = defineCounter('decoder.udp');
const C_ICMP = defineCounter('decoder.icmpv4');
const C_ICMPV6 = defineCounter('decoder.icmpv6');

const TCP_MIN_HEADER = 20;
const TCP_OFF_SEQ = 4;
const TCP_OFF_ACK = 8;
const TCP_OFF_DOFF = 12;
const TCP_OFF_FLAGS = 13;
const TCP_OFF_WIN = 14;
const TCPOPT_EOL = 0;
const TCPOPT_NOP = 1;
const UDP_HEADER = 8;
const UDP_OFF_LEN = 4;
const ICMP_MIN_HEADER = 4;
/** IANA-assigned tunnel ports (RFC 7348, RFC 8926). */
export const VXLAN_PORT = 4789;
export const GENEVE_PORT = 6081;

export const TH_FIN = 0x01;
export const TH_SYN = 0x02;
export const TH_RST = 0x04;
export const TH_PSH = 0x08;
export const TH_ACK = 0x10;
export const TH_URG = 0x20;

export function decodeTcp(p: Packet, c: Counters): number {
  const b = p.buf;
  const o = p.off;
  const avail = p.end - o;
  if (avail < TCP_MIN_HEADER) {
    c.inc(A_TCP_SHORT);
    return L_DONE;
  }
  const hl = (b[o + TCP_OFF_DOFF] >> 4) << 2;
  if (hl < TCP_MIN_HEADER) {
    c.inc(A_TCP_HLEN);
    return L_DONE;
  }
  if (hl > avail) {
    c.inc(A_TCP_HLEN_BIG);
    return L_DONE;
  }
  if (hl > TCP_MIN_HEADER && !tcpOptionsValid(b, o + TCP_MIN_HEADER, o + hl)) c.inc(A_TCP_OPTLEN);
  c.inc(C_TCP);
  p.srcPort = (b[o] << 8) | b[o + 1];
  p.dstPort = (b[o + 2] << 8) | b[o + 3];
  p.seq = ((b[o + TCP_OFF_SEQ] << 24) | (b[o + TCP_OFF_SEQ + 1] << 16) | (b[o + TCP_OFF_SEQ + 2] << 8) | b[o + TCP_OFF_SEQ + 3]) >>> 0;
  p.ack = ((b[o + TCP_OFF_ACK] << 24) | (b[o + TCP_OFF_ACK + 1] << 16) | (b[o + TCP_OFF_ACK + 2] << 8) | b[o + TCP_OFF_ACK + 3]) >>> 0;
  p.tcpFlags = b[o + TCP_OFF_FLAGS];
  p.window = (b[o + TCP_OFF_WIN] << 8) | b[o + TCP_OFF_WIN + 1];
  p.payloadOff = o + hl;
  p.payloadLen = avail - hl;
  p.transport = IPPROTO_TCP;
  return L_DONE;
}

/** kind(1) len(1) value, except EOL and NOP (RFC 9293 section 3.2). */
export function tcpOptionsValid(b: Uint8Array, o: number, end: number): boolean {
  while (o < end) {
    const kind = b[o];
    if (kind === TCPOPT_EOL) return true;
    if (kind === TCPOPT_NOP) {
      o++;
      continue;
    }
    if (o + 1 >= end) return false;
    const len = b[o + 1];
    if (len < 2 || o + len > end) return false;
    o += len;
  }
  return true;
}

export function decodeUdp(p: Packet, c: Counters): number {
  const b = p.buf;
  const o = p.off;
  const avail = p.end - o;
  if (avail < UDP_HEADER) {
    c.inc(A_UDP_SHORT);
    return L_DONE;
  }
  const len = (b[o + UDP_OFF_LEN] << 8) | b[o + UDP_OFF_LEN + 1];
  // Length 0 is legal for IPv6 jumbograms (RFC 2675); otherwise it must fit in the IP payload.
  if ((len !== 0 && len < UDP_HEADER) || len > avail) {
    c.inc(A_UDP_LEN);
    return L_DONE;
  }
  c.inc(C_UDP);
  p.srcPort = (b[o] << 8) | b[o + 1];
  p.dstPort = (b[o + 2] << 8) | b[o + 3];
  p.payloadOff = o + UDP_HEADER;
  p.payloadLen = (len === 0 ? avail : len) - UDP_HEADER;
  p.tcpFlags = 0;
  p.transport = IPPROTO_UDP;
  if (p.dstPort === VXLAN_PORT) return L_VXLAN;
  if (p.dstPort === GENEVE_PORT) return L_GENEVE;
  return L_DONE;
}

export function decodeIcmp(p: Packet, c: Counters): number {
  if (p.end - p.off < ICMP_MIN_HEADER) c.inc(A_ICMP_SHORT);
  else c.inc(C_ICMP);
  return L_DONE;
}

export function decodeIcmpv6(p: Packet, c: Counters): number {
  if (p.end - p.off < ICMP_MIN_HEADER) c.inc(A_ICMP_SHORT);
  else c.inc(C_ICMPV6);
  return L_DONE;
}

/**
 * Remote-mirroring decapsulation: GRE (RFC 2784/2890), ERSPAN type I, II and III (Cisco ERSPAN,
 * draft-foschiano-erspan), VXLAN (RFC 7348) and Geneve (RFC 8926). A remote SPAN session then
 * looks exactly like a local one: the inner Ethernet frame is decoded from the start, with the
 * transport network's VLAN tags forgotten. Input: `p.buf[p.off..p.end)` = the tunnel header.
 * Output: `p.off` at the inner frame and the next layer id; malformed headers are counted.
 */
import { Counters, defineAnomaly, defineCounter } from '../events/counters.js';
import { layerForEthertype, ETHERTYPE_ERSPAN2, ETHERTYPE_ERSPAN3 } from './dispatch.js';
import { enterTunnel } from './ip.js';
import { L_DONE, L_ETHERNET, Packet } from './packet.js';

const A_GRE_SHORT = defineAnomaly('decoder.gre.pkt_too_small');
const A_GRE_VERSION = defineAnomaly('decoder.gre.version_unsupported');
const A_ERSPAN_SHORT = defineAnomaly('decoder.erspan.pkt_too_small');
const A_ERSPAN_VERSION = defineAnomaly('decoder.erspan.unsupported_version');
// A datagram to the VXLAN or Geneve port that is not a valid tunnel header is ordinary UDP
// (an ephemeral port can be 4789 or 6081): counted, not an anomaly, and decoded as UDP.
const A_VXLAN_SHORT = defineCounter('decoder.vxlan.not_vxlan_short');
const A_VXLAN_FLAGS = defineCounter('decoder.vxlan.not_vxlan_flags');
const A_GENEVE_SHORT = defineCounter('decoder.geneve.not_geneve_short');
const A_GENEVE_PROTO = defineCounter('decoder.geneve.not_geneve_protocol');
const C_GRE = defineCounter('decoder.gre');
const C_GRE_OTHER = defineCounter('decoder.gre.other_protocol');
const C_ERSPAN = defineCounter('decoder.erspan');
const C_VXLAN = defineCounter('decoder.vxlan');
const C_GENEVE = defineCounter('decoder.geneve');

const GRE_MIN_HEADER = 4;
const GRE_FLAG_CSUM = 0x8000;
const GRE_FLAG_ROUTING = 0x4000;
const GRE_FLAG_KEY = 0x2000;
const GRE_FLAG_SEQ = 0x1000;
const GRE_VERSION_MASK = 0x0007;
const ERSPAN2_HEADER = 8;
const ERSPAN3_HEADER = 12;
const ERSPAN3_SUBHEADER = 8;
const ERSPAN2_VERSION = 1;
const ERSPAN3_VERSION = 2;
const VXLAN_HEADER = 8;
const VXLAN_FLAG_I = 0x08;
const GENEVE_HEADER = 8;
const GENEVE_PROTO_TEB = 0x6558;
const GENEVE_VERSION = 0;

function innerFrame(p: Packet, c: Counters, off: number): number {
  if (!enterTunnel(p, c)) return L_DONE;
  p.off = off;
  p.transport = 0;
  // The inner frame's VLAN tags are the ones that matter (a local SPAN would show those).
  p.vlanCount = 0;
  p.vlan0 = 0;
  p.vlan1 = 0;
  return L_ETHERNET;
}

export function decodeGre(p: Packet, c: Counters): number {
  const b = p.buf;
  const o = p.off;
  if (p.end - o < GRE_MIN_HEADER) {
    c.inc(A_GRE_SHORT);
    return L_DONE;
  }
  const flags = (b[o] << 8) | b[o + 1];
  if ((flags & GRE_VERSION_MASK) !== 0) {
    // Version 1 is PPTP's enhanced GRE carrying PPP: not a mirroring transport.
    c.inc(A_GRE_VERSION);
    return L_DONE;
  }
  c.inc(C_GRE);
  const proto = (b[o + 2] << 8) | b[o + 3];
  let hl = GRE_MIN_HEADER;
  if (flags & (GRE_FLAG_CSUM | GRE_FLAG_ROUTING)) hl += 4;
  if (flags & GRE_FLAG_KEY) hl += 4;
  if (flags & GRE_FLAG_SEQ) hl += 4;
  if (p.end - o < hl) {
    c.inc(A_GRE_SHORT);
    return L_DONE;
  }
  const inner = o + hl;
  if (proto === ETHERTYPE_ERSPAN2) {
    // ERSPAN type I has no sequence number and no ERSPAN header: Ethernet follows directly.
    if ((flags & GRE_FLAG_SEQ) === 0) return innerFrame(p, c, inner);
    p.off = inner;
    return decodeErspan2(p, c);
  }
  if (proto === ETHERTYPE_ERSPAN3) {
    p.off = inner;
    return decodeErspan3(p, c);
  }
  const next = layerForEthertype(proto);
  if (next === L_DONE) {
    c.inc(C_GRE_OTHER);
    return L_DONE;
  }
  if (!enterTunnel(p, c)) return L_DONE;
  p.off = inner;
  p.nextType = proto;
  if (next === L_ETHERNET) {
    p.vlanCount = 0;
    p.vlan0 = 0;
    p.vlan1 = 0;
  }
  return next;
}

/** ERSPAN II header: ver(4) vlan(12) | cos(3) en(2) t(1) session(10) | reserved(12) index(20). */
export function decodeErspan2(p: Packet, c: Counters): number {
  const b = p.buf;
  const o = p.off;
  if (p.end - o < ERSPAN2_HEADER) {
    c.inc(A_ERSPAN_SHORT);
    return L_DONE;
  }
  if (b[o] >> 4 !== ERSPAN2_VERSION) {
    c.inc(A_ERSPAN_VERSION);
    return L_DONE;
  }
  c.inc(C_ERSPAN);
  return innerFrame(p, c, o + ERSPAN2_HEADER);
}

/**
 * ERSPAN III header: ver(4) vlan(12) | cos(3) bso(2) t(1) session(10) | timestamp(32) |
 * sgt(16) p(1) ft(5) hwid(6) d(1) gra(2) o(1); the O bit adds an 8-byte platform sub-header.
 */
export function decodeErspan3(p: Packet, c: Counters): number {
  const b = p.buf;
  const o = p.off;
  if (p.end - o < ERSPAN3_HEADER) {
    c.inc(A_ERSPAN_SHORT);
    return L_DONE;
  }
  if (b[o] >> 4 !== ERSPAN3_VERSION) {
    c.inc(A_ERSPAN_VERSION);
    return L_DONE;
  }
  const frameType = (b[o + 10] >> 2) & 0x1f;
  if (frameType !== 0) {
    // Frame type 0 is Ethernet; 2 (IP) is not used for port mirroring.
    c.inc(A_ERSPAN_VERSION);
    return L_DONE;
  }
  let hl = ERSPAN3_HEADER;
  if (b[o + 11] & 0x01) hl += ERSPAN3_SUBHEADER;
  if (p.end - o < hl) {
    c.inc(A_ERSPAN_SHORT);
    return L_DONE;
  }
  c.inc(C_ERSPAN);
  return innerFrame(p, c, o + hl);
}

/** VXLAN: flags(8) reserved(24) vni(24) reserved(8); the I flag must be set (RFC 7348 section 5). */
export function decodeVxlan(p: Packet, c: Counters): number {
  const b = p.buf;
  const o = p.payloadOff;
  if (p.end - o < VXLAN_HEADER) {
    c.inc(A_VXLAN_SHORT);
    return L_DONE;
  }
  // Flags must be exactly I (RFC 7348 section 5: other bits reserved, sent as zero).
  if (b[o] !== VXLAN_FLAG_I) {
    c.inc(A_VXLAN_FLAGS);
    return L_DONE;
  }
  c.inc(C_VXLAN);
  return innerFrame(p, c, o + VXLAN_HEADER);
}

/** Geneve: ver(2) optlen(6) | flags(8) | protocol(16) | vni(24) reserved(8) | options. */
export function decodeGeneve(p: Packet, c: Counters): number {
  const b = p.buf;
  const o = p.payloadOff;
  if (p.end - o < GENEVE_HEADER) {
    c.inc(A_GENEVE_SHORT);
    return L_DONE;
  }
  if (b[o] >> 6 !== GENEVE_VERSION) {
    c.inc(A_GENEVE_PROTO);
    return L_DONE;
  }
  const hl = GENEVE_HEADER + ((b[o] & 0x3f) << 2);
  const proto = (b[o + 2] << 8) | b[o + 3];
  if (p.end - o < hl) {
    c.inc(A_GENEVE_SHORT);
    return L_DONE;
  }
  if (proto !== GENEVE_PROTO_TEB) {
    c.inc(A_GENEVE_PROTO);
    return L_DONE;
  }
  c.inc(C_GENEVE);
  return innerFrame(p, c, o + hl);
}

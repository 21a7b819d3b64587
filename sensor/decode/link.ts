/**
 * Link-layer decoders: Ethernet II, 802.1Q / 802.1ad VLAN tags, MPLS label stacks, PPPoE session,
 * Linux cooked capture (SLL, SLL2), BSD loopback (NULL, LOOP) and raw IP.
 * Input: `p.buf[p.off..p.end)`. Output: header fields on `p`, `p.off` advanced past the header,
 * and the next layer id (decoder.ts dispatches). Malformed bytes: anomaly counted, L_DONE.
 */
import { Counters, defineAnomaly, defineCounter } from '../events/counters.js';
import { layerForEthertype } from './dispatch.js';
import { L_DONE, L_ETHERNET, L_IPV4, L_IPV6, MAX_VLAN_TAGS, Packet } from './packet.js';

const A_ETH_SHORT = defineAnomaly('decoder.ethernet.pkt_too_small');
const A_VLAN_SHORT = defineAnomaly('decoder.vlan.pkt_too_small');
const A_VLAN_TOO_MANY = defineAnomaly('decoder.vlan.too_many_layers');
const A_MPLS_SHORT = defineAnomaly('decoder.mpls.pkt_too_small');
const A_MPLS_TOO_MANY = defineAnomaly('decoder.mpls.too_many_labels');
const A_MPLS_UNKNOWN = defineAnomaly('decoder.mpls.unknown_payload');
const A_PPPOE_SHORT = defineAnomaly('decoder.pppoe.pkt_too_small');
const A_PPPOE_BAD = defineAnomaly('decoder.pppoe.malformed');
const A_SLL_SHORT = defineAnomaly('decoder.sll.pkt_too_small');
const A_NULL_SHORT = defineAnomaly('decoder.null.pkt_too_small');
const A_NULL_FAMILY = defineAnomaly('decoder.null.unsupported_family');
const A_RAW_VERSION = defineAnomaly('decoder.raw.invalid_ip_version');
const C_ETHERTYPE_OTHER = defineCounter('decoder.ethertype_other');
const C_ARP = defineCounter('decoder.arp');
const C_PPP_OTHER = defineCounter('decoder.pppoe.non_ip');
const C_VLAN = defineCounter('decoder.vlan');
const C_MPLS = defineCounter('decoder.mpls');
const C_PPPOE = defineCounter('decoder.pppoe');

// Ethernet II: dst(6) src(6) type(2).
const ETH_HEADER = 14;
const ETH_OFF_SRC = 6;
const ETH_OFF_TYPE = 12;
// 802.1Q tag after the TPID: TCI(2) type(2).
const VLAN_TAG = 4;
const VLAN_VID_MASK = 0x0fff;
/** Label stack entries accepted; real networks use 2-4 (VPN + transport + entropy). */
const MAX_MPLS_LABELS = 8;
const MPLS_ENTRY = 4;
const MPLS_BOS = 0x100; // bottom-of-stack bit in byte 2
// PPPoE session: ver/type(1) code(1) session(2) length(2) then PPP protocol(2).
const PPPOE_HEADER = 6;
const PPP_PROTO_IPV4 = 0x0021;
const PPP_PROTO_IPV6 = 0x0057;
const PPPOE_VERTYPE = 0x11;
// Linux cooked v1: pkttype(2) hatype(2) halen(2) addr(8) protocol(2).
const SLL_HEADER = 16;
const SLL_OFF_PROTO = 14;
// Linux cooked v2: protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8).
const SLL2_HEADER = 20;
const SLL2_OFF_PROTO = 0;
// BSD loopback: 4-byte address family, host order (NULL) or network order (LOOP).
const NULL_HEADER = 4;
const AF_INET = 2;
const AF_INET6_VALUES = [10, 24, 28, 30]; // Linux, NetBSD/OpenBSD, FreeBSD, Darwin

function ethertypeAt(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

export function decodeEthernet(p: Packet, c: Counters): number {
  if (p.end - p.off < ETH_HEADER) {
    c.inc(A_ETH_SHORT);
    return L_DONE;
  }
  const t = ethertypeAt(p.buf, p.off + ETH_OFF_TYPE);
  p.macBuf = p.buf;
  p.macOff = p.off + ETH_OFF_SRC;
  p.off += ETH_HEADER;
  return nextForEthertype(p, t, c);
}

function nextForEthertype(p: Packet, t: number, c: Counters): number {
  p.nextType = t;
  const next = layerForEthertype(t);
  if (next === L_DONE) c.inc(t === 0x0806 ? C_ARP : C_ETHERTYPE_OTHER);
  return next;
}

export function decodeVlan(p: Packet, c: Counters): number {
  if (p.end - p.off < VLAN_TAG) {
    c.inc(A_VLAN_SHORT);
    return L_DONE;
  }
  c.inc(C_VLAN);
  const b = p.buf;
  const vid = ((b[p.off] << 8) | b[p.off + 1]) & VLAN_VID_MASK;
  if (p.vlanCount === 0) p.vlan0 = vid;
  else if (p.vlanCount === 1) p.vlan1 = vid;
  else if (p.vlanCount === MAX_VLAN_TAGS) c.inc(A_VLAN_TOO_MANY);
  p.vlanCount++;
  const t = ethertypeAt(b, p.off + 2);
  p.off += VLAN_TAG;
  return nextForEthertype(p, t, c);
}

export function decodeMpls(p: Packet, c: Counters): number {
  const b = p.buf;
  c.inc(C_MPLS);
  for (let i = 0; ; i++) {
    if (i === MAX_MPLS_LABELS) {
      c.inc(A_MPLS_TOO_MANY);
      return L_DONE;
    }
    if (p.end - p.off < MPLS_ENTRY) {
      c.inc(A_MPLS_SHORT);
      return L_DONE;
    }
    const bos = ((b[p.off + 2] << 8) | b[p.off + 3]) & MPLS_BOS;
    p.off += MPLS_ENTRY;
    if (bos !== 0) break;
  }
  if (p.end - p.off < 1) {
    c.inc(A_MPLS_SHORT);
    return L_DONE;
  }
  // MPLS does not say what it carries: guess from the first nibble (RFC 4385 section 2).
  const nibble = b[p.off] >> 4;
  if (nibble === 4) return L_IPV4;
  if (nibble === 6) return L_IPV6;
  if (nibble === 0 && p.end - p.off >= 4 + ETH_HEADER) {
    // Pseudowire control word (0000 + flags + sequence) followed by an Ethernet frame.
    p.off += 4;
    return L_ETHERNET;
  }
  c.inc(A_MPLS_UNKNOWN);
  return L_DONE;
}

export function decodePppoe(p: Packet, c: Counters): number {
  if (p.end - p.off < PPPOE_HEADER + 2) {
    c.inc(A_PPPOE_SHORT);
    return L_DONE;
  }
  c.inc(C_PPPOE);
  const b = p.buf;
  const o = p.off;
  if (b[o] !== PPPOE_VERTYPE || b[o + 1] !== 0) {
    c.inc(A_PPPOE_BAD);
    return L_DONE;
  }
  const len = (b[o + 4] << 8) | b[o + 5];
  if (len < 2 || PPPOE_HEADER + len > p.end - o) {
    c.inc(A_PPPOE_BAD);
    return L_DONE;
  }
  const proto = (b[o + 6] << 8) | b[o + 7];
  p.end = o + PPPOE_HEADER + len; // trim Ethernet padding
  p.off = o + PPPOE_HEADER + 2;
  if (proto === PPP_PROTO_IPV4) return L_IPV4;
  if (proto === PPP_PROTO_IPV6) return L_IPV6;
  c.inc(C_PPP_OTHER);
  return L_DONE;
}

export function decodeSll(p: Packet, c: Counters): number {
  if (p.end - p.off < SLL_HEADER) {
    c.inc(A_SLL_SHORT);
    return L_DONE;
  }
  const t = ethertypeAt(p.buf, p.off + SLL_OFF_PROTO);
  p.off += SLL_HEADER;
  return nextForEthertype(p, t, c);
}

export function decodeSll2(p: Packet, c: Counters): number {
  if (p.end - p.off < SLL2_HEADER) {
    c.inc(A_SLL_SHORT);
    return L_DONE;
  }
  const t = ethertypeAt(p.buf, p.off + SLL2_OFF_PROTO);
  p.off += SLL2_HEADER;
  return nextForEthertype(p, t, c);
}

function familyLayer(af: number, c: Counters): number {
  if (af === AF_INET) return L_IPV4;
  if (AF_INET6_VALUES.includes(af)) return L_IPV6;
  c.inc(A_NULL_FAMILY);
  return L_DONE;
}

/** DLT_NULL: the family is in the capturing host's byte order; accept either. */
export function decodeNull(p: Packet, c: Counters): number {
  if (p.end - p.off < NULL_HEADER) {
    c.inc(A_NULL_SHORT);
    return L_DONE;
  }
  const b = p.buf;
  const o = p.off;
  const le = b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
  const af = (le & 0xffff0000) !== 0 ? ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) : le;
  p.off += NULL_HEADER;
  return familyLayer(af, c);
}

/** DLT_LOOP: the family in network byte order. */
export function decodeLoop(p: Packet, c: Counters): number {
  if (p.end - p.off < NULL_HEADER) {
    c.inc(A_NULL_SHORT);
    return L_DONE;
  }
  const b = p.buf;
  const o = p.off;
  const af = (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
  p.off += NULL_HEADER;
  return familyLayer(af, c);
}

/** Raw IP: the version nibble says which. */
export function decodeRaw(p: Packet, c: Counters): number {
  if (p.end - p.off < 1) {
    c.inc(A_RAW_VERSION);
    return L_DONE;
  }
  const v = p.buf[p.off] >> 4;
  if (v === 4) return L_IPV4;
  if (v === 6) return L_IPV6;
  c.inc(A_RAW_VERSION);
  return L_DONE;
}

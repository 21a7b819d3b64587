/**
 * Network-layer decoders: IPv4 (with options) and IPv6 (with extension headers), handing fragments
 * to the defragmenter and tunnelled IP (IP-in-IP, 6in4) back to the dispatcher.
 * Input: `p.buf[p.off..p.end)`. Output: addresses, protocol and the L4 window on `p`; `p.end`
 * trimmed to the IP length (dropping Ethernet padding). Malformed: anomaly counted, L_DONE.
 */
import { Counters, defineAnomaly, defineCounter } from '../events/counters.js';
import { layerForIpProto } from './dispatch.js';
import { Defragmenter } from './ip-fragments.js';
import { IPPROTO_IPIP, IPPROTO_IPV6, L_DONE, Packet } from './packet.js';

const A_V4_SHORT = defineAnomaly('decoder.ipv4.pkt_too_small');
const A_V4_VERSION = defineAnomaly('decoder.ipv4.wrong_ip_version');
const A_V4_HLEN = defineAnomaly('decoder.ipv4.hlen_too_small');
const A_V4_IPLEN_HLEN = defineAnomaly('decoder.ipv4.iplen_smaller_than_hlen');
const A_V4_TRUNC = defineAnomaly('decoder.ipv4.trunc_pkt');
const A_V4_OPT = defineAnomaly('decoder.ipv4.opt_malformed');
const A_V6_SHORT = defineAnomaly('decoder.ipv6.pkt_too_small');
const A_V6_VERSION = defineAnomaly('decoder.ipv6.wrong_ip_version');
const A_V6_TRUNC = defineAnomaly('decoder.ipv6.trunc_pkt');
const A_V6_EXTHDR = defineAnomaly('decoder.ipv6.exthdr_trunc');
const A_V6_TOO_MANY = defineAnomaly('decoder.ipv6.exthdr_too_many');
const A_V6_ZERO_LEN = defineAnomaly('decoder.ipv6.zero_len_pl');
const A_TUNNEL_DEPTH = defineAnomaly('decoder.tunnel.too_deep');
export const C_IPV4 = defineCounter('decoder.ipv4');
const C_IPV6 = defineCounter('decoder.ipv6');
const C_ESP = defineCounter('decoder.ipv6.esp');
const C_IPIP = defineCounter('decoder.ipip');

const IPV4_MIN_HEADER = 20;
const IPV4_OFF_TOTLEN = 2;
const IPV4_OFF_ID = 4;
const IPV4_OFF_FRAG = 6;
const IPV4_OFF_PROTO = 9;
const IPV4_OFF_SRC = 12;
const IPV4_OFF_DST = 16;
const IPV4_FLAG_MF = 0x2000;
const IPV4_FRAG_OFFSET_MASK = 0x1fff;
const IPV4_OPT_EOL = 0;
const IPV4_OPT_NOP = 1;

const IPV6_HEADER = 40;
const IPV6_OFF_PLEN = 4;
const IPV6_OFF_NH = 6;
const IPV6_OFF_SRC = 8;
const IPV6_OFF_DST = 24;
const NH_HOPOPTS = 0;
const NH_ROUTING = 43;
const NH_FRAGMENT = 44;
const NH_ESP = 50;
const NH_AH = 51;
const NH_NONE = 59;
const NH_DSTOPTS = 60;
const NH_MOBILITY = 135;
const NH_HIP = 139;
const NH_SHIM6 = 140;
const IPV6_FRAG_HEADER = 8;
/** Extension headers walked before giving up; RFC 8200 allows each at most once or twice. */
const MAX_IPV6_EXT_HEADERS = 16;
/** Encapsulations (GRE, VXLAN, IP-in-IP...) followed per packet; deeper nesting is an attack. */
export const MAX_TUNNEL_DEPTH = 4;

function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}
function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** Tunnelled IP inside IP: one more level of encapsulation, or stop when too deep. */
export function enterTunnel(p: Packet, c: Counters): boolean {
  if (p.tunnelDepth >= MAX_TUNNEL_DEPTH) {
    c.inc(A_TUNNEL_DEPTH);
    return false;
  }
  p.tunnelDepth++;
  return true;
}

function nextAfterIp(p: Packet, proto: number, c: Counters): number {
  if (proto === IPPROTO_IPIP || proto === IPPROTO_IPV6) {
    c.inc(C_IPIP);
    if (!enterTunnel(p, c)) return L_DONE;
  }
  return layerForIpProto(proto);
}

export function decodeIpv4(p: Packet, c: Counters, defrag: Defragmenter): number {
  const b = p.buf;
  const o = p.off;
  const avail = p.end - o;
  if (avail < IPV4_MIN_HEADER) {
    c.inc(A_V4_SHORT);
    return L_DONE;
  }
  if (b[o] >> 4 !== 4) {
    c.inc(A_V4_VERSION);
    return L_DONE;
  }
  const hl = (b[o] & 0x0f) << 2;
  if (hl < IPV4_MIN_HEADER) {
    c.inc(A_V4_HLEN);
    return L_DONE;
  }
  const totalLen = u16(b, o + IPV4_OFF_TOTLEN);
  if (totalLen < hl) {
    c.inc(A_V4_IPLEN_HLEN);
    return L_DONE;
  }
  if (totalLen > avail) {
    c.inc(A_V4_TRUNC);
    return L_DONE;
  }
  c.inc(C_IPV4);
  p.end = o + totalLen;
  if (hl > IPV4_MIN_HEADER && !ipv4OptionsValid(b, o + IPV4_MIN_HEADER, o + hl)) c.inc(A_V4_OPT);
  p.ipVersion = 4;
  const a = p.addr;
  a[0] = u32(b, o + IPV4_OFF_SRC);
  a[1] = 0;
  a[2] = 0;
  a[3] = 0;
  a[4] = u32(b, o + IPV4_OFF_DST);
  a[5] = 0;
  a[6] = 0;
  a[7] = 0;
  const proto = b[o + IPV4_OFF_PROTO];
  p.ipProto = proto;
  p.ipId = u16(b, o + IPV4_OFF_ID);
  const frag = u16(b, o + IPV4_OFF_FRAG);
  p.off = o + hl;
  if ((frag & (IPV4_FLAG_MF | IPV4_FRAG_OFFSET_MASK)) !== 0) {
    const fragOffset = (frag & IPV4_FRAG_OFFSET_MASK) << 3;
    if (!defrag.addIpv4(p, u16(b, o + IPV4_OFF_ID), fragOffset, (frag & IPV4_FLAG_MF) !== 0)) return L_DONE;
  }
  p.l4Off = p.off;
  p.l4Len = p.end - p.off;
  return nextAfterIp(p, proto, c);
}

/** Options are type(1) len(1) value, except EOL and NOP (RFC 791 section 3.1). */
function ipv4OptionsValid(b: Uint8Array, o: number, end: number): boolean {
  while (o < end) {
    const t = b[o];
    if (t === IPV4_OPT_EOL) return true;
    if (t === IPV4_OPT_NOP) {
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

export function decodeIpv6(p: Packet, c: Counters, defrag: Defragmenter): number {
  let b = p.buf;
  const o = p.off;
  const avail = p.end - o;
  if (avail < IPV6_HEADER) {
    c.inc(A_V6_SHORT);
    return L_DONE;
  }
  if (b[o] >> 4 !== 6) {
    c.inc(A_V6_VERSION);
    return L_DONE;
  }
  const plen = u16(b, o + IPV6_OFF_PLEN);
  if (plen === 0) {
    // Jumbogram (RFC 2675) or an empty packet: use what was captured.
    c.inc(A_V6_ZERO_LEN);
  } else if (IPV6_HEADER + plen > avail) {
    c.inc(A_V6_TRUNC);
    return L_DONE;
  } else {
    p.end = o + IPV6_HEADER + plen;
  }
  c.inc(C_IPV6);
  p.ipVersion = 6;
  const a = p.addr;
  for (let i = 0; i < 4; i++) {
    a[i] = u32(b, o + IPV6_OFF_SRC + 4 * i);
    a[4 + i] = u32(b, o + IPV6_OFF_DST + 4 * i);
  }
  let nh = b[o + IPV6_OFF_NH];
  let off = o + IPV6_HEADER;
  for (let n = 0; ; n++) {
    if (n === MAX_IPV6_EXT_HEADERS) {
      c.inc(A_V6_TOO_MANY);
      return L_DONE;
    }
    const left = p.end - off;
    switch (nh) {
      case NH_HOPOPTS:
      case NH_ROUTING:
      case NH_DSTOPTS:
      case NH_MOBILITY:
      case NH_HIP:
      case NH_SHIM6: {
        if (left < 8) {
          c.inc(A_V6_EXTHDR);
          return L_DONE;
        }
        const len = (b[off + 1] + 1) << 3;
        if (len > left) {
          c.inc(A_V6_EXTHDR);
          return L_DONE;
        }
        nh = b[off];
        off += len;
        continue;
      }
      case NH_AH: {
        if (left < 8) {
          c.inc(A_V6_EXTHDR);
          return L_DONE;
        }
        const len = (b[off + 1] + 2) << 2;
        if (len > left) {
          c.inc(A_V6_EXTHDR);
          return L_DONE;
        }
        nh = b[off];
        off += len;
        continue;
      }
      case NH_FRAGMENT: {
        if (left < IPV6_FRAG_HEADER) {
          c.inc(A_V6_EXTHDR);
          return L_DONE;
        }
        const inner = b[off];
        const fo = u16(b, off + 2);
        const fragOffset = fo & 0xfff8;
        const more = (fo & 1) !== 0;
        const id = u32(b, off + 4);
        off += IPV6_FRAG_HEADER;
        nh = inner;
        if (fragOffset === 0 && !more) continue; // atomic fragment (RFC 6946)
        p.off = off;
        if (!defrag.addIpv6(p, id, fragOffset, more, inner)) return L_DONE;
        // Reassembled: the fragmentable part now fills p.buf[p.off..p.end).
        b = p.buf;
        off = p.off;
        continue;
      }
      case NH_ESP:
        c.inc(C_ESP);
        return L_DONE;
      case NH_NONE:
        return L_DONE;
      default:
        p.ipProto = nh;
        p.off = off;
        p.l4Off = off;
        p.l4Len = p.end - off;
        return nextAfterIp(p, nh, c);
    }
  }
}

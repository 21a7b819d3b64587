/**
 * Capture-thread side of the worker pool: which worker owns a frame. Input: one frame as the
 * capture sources hand it (PacketHandler shape). Output: a worker index from a hash of the INNER
 * flow's endpoints that is the same for both directions, looking through VLAN / QinQ, MPLS,
 * PPPoE, GRE, ERSPAN I/II/III, VXLAN and Geneve as the decoder does (a lean header walk: no
 * state, no allocation, no counters). Never throws on frame bytes.
 *
 * What is hashed (commutative mixing of the two endpoints, so the order does not matter):
 *  - `hosts` balance (the default): both inner addresses, whatever the protocol. Everything
 *    between two hosts meets in one worker: fragments with their flow, a DNS query with its
 *    fragmented answer, and a page reloaded over a new connection with the capture it merges
 *    into (the collector's merge window is per worker: flows of one device and server split over
 *    workers would give one capture per worker instead of one with the summed count).
 *  - `flows` balance: TCP adds both ports (finer spread when few host pairs carry the traffic, at
 *    the price above); UDP stays on addresses (fragmented UDP answers are common: DNS, Kerberos,
 *    RADIUS). A fragmented TCP segment then may reach another worker than its flow (rare: TCP
 *    sets DF and uses path MTU discovery).
 *  - IP fragments (v4 MF / offset, v6 fragment header): both addresses only, so every fragment
 *    of a datagram lands on one worker. Other IP protocols: both addresses. Not IP (ARP, LLDP,
 *    malformed before an IP header): hash 0, worker 0.
 */
import {
  DLT_EN10MB, DLT_IPV4, DLT_IPV6, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_LOOP, DLT_NULL, DLT_RAW, DLT_RAW_BSD, DLT_RAW_OPENBSD,
  ETHERTYPE_ERSPAN2, ETHERTYPE_ERSPAN3, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_MPLS_MC, ETHERTYPE_MPLS_UC, ETHERTYPE_PPPOE_SESS,
  ETHERTYPE_QINQ, ETHERTYPE_QINQ_OLD1, ETHERTYPE_QINQ_OLD2, ETHERTYPE_TEB, ETHERTYPE_VLAN,
} from '../decode/dispatch.js';
import { IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_TCP, IPPROTO_UDP } from '../decode/packet.js';
import { GENEVE_PORT, VXLAN_PORT } from '../decode/transport.js';

/** Headers walked per frame at most (as the decoder's MAX_LAYERS_PER_PACKET): a crafted loop stops. */
const MAX_LAYERS = 32;
/** Encapsulations followed (the decoder's MAX_TUNNEL_DEPTH): deeper frames hash on what was reached. */
const MAX_TUNNEL_DEPTH = 4;
/** IPv6 extension headers walked (the decoder's MAX_IPV6_EXT_HEADERS). */
const MAX_IPV6_EXT_HEADERS = 16;
/** MPLS labels followed (the decoder's MAX_MPLS_LABELS). */
const MAX_MPLS_LABELS = 8;

// Header layouts (the offsets the decode stage names).
const ETH_HEADER = 14;
const ETH_OFF_TYPE = 12;
const VLAN_TAG = 4;
const MPLS_ENTRY = 4;
const MPLS_BOS_BYTE = 2;
const MPLS_BOS_BIT = 0x01;
const PW_CONTROL_WORD = 4;
const PPPOE_HEADER = 6;
const PPPOE_VERTYPE = 0x11;
const PPP_PROTO_IPV4 = 0x0021;
const PPP_PROTO_IPV6 = 0x0057;
const SLL_HEADER = 16;
const SLL_OFF_PROTO = 14;
const SLL2_HEADER = 20;
const NULL_HEADER = 4;
const AF_INET = 2;
const IPV4_MIN_HEADER = 20;
const IPV4_OFF_TOTLEN = 2;
const IPV4_OFF_ID = 4;
const IPV4_OFF_FRAG = 6;
const IPV4_OFF_PROTO = 9;
const IPV4_OFF_SRC = 12;
const IPV4_MF_OR_OFFSET = 0x3fff;
const IPV6_HEADER = 40;
const IPV6_OFF_PLEN = 4;
const IPV6_OFF_NH = 6;
const IPV6_OFF_SRC = 8;
const NH_HOPOPTS = 0;
const NH_ROUTING = 43;
const NH_FRAGMENT = 44;
const NH_AH = 51;
const NH_DSTOPTS = 60;
const NH_MOBILITY = 135;
const NH_HIP = 139;
const NH_SHIM6 = 140;
const IPV6_FRAG_HEADER = 8;
const L4_PORTS = 4;
const TCP_MIN_HEADER = 20;
const TCP_OFF_SEQ = 4;
const TCP_OFF_ACK = 8;
const TCP_OFF_DOFF = 12;
const TCP_OFF_FLAGS = 13;
const UDP_HEADER = 8;
const GRE_MIN_HEADER = 4;
const GRE_FLAG_CSUM = 0x8000;
const GRE_FLAG_ROUTING = 0x4000;
const GRE_FLAG_KEY = 0x2000;
const GRE_FLAG_SEQ = 0x1000;
const GRE_VERSION_MASK = 0x0007;
const ERSPAN2_HEADER = 8;
const ERSPAN2_VERSION = 1;
const ERSPAN3_HEADER = 12;
const ERSPAN3_SUBHEADER = 8;
const ERSPAN3_VERSION = 2;
const VXLAN_HEADER = 8;
const VXLAN_FLAG_I = 0x08;
const GENEVE_HEADER = 8;
const GENEVE_VERSION = 0;

// Walk states.
const S_DONE = 0;
const S_ETHERNET = 1;
const S_ETHERTYPE = 2; // `type` holds an ethertype, `o` the payload
const S_IPV4 = 3;
const S_IPV6 = 4;
const S_GRE = 5;

function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}
function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) | 0;
}

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** What the last walk found: for tests and the dispatcher's counters. */
export const HASH_NOT_IP = 0;
export const HASH_ADDRESSES = 1;
export const HASH_FRAGMENT = 2;
export const HASH_PORTS = 3;

/**
 * The flow hash walker. One per capture thread (it keeps the result of the last walk in fields,
 * so a frame costs no allocation).
 */
export type Balance = 'hosts' | 'flows';

export class FlowHasher {
  /** HASH_NOT_IP, HASH_ADDRESSES, HASH_FRAGMENT or HASH_PORTS: how the last `hash()` was made. */
  kind = HASH_NOT_IP;
  // Out-values of afterIp (fields, not an object per frame).
  private result = 0;
  private nextOff = 0;
  private readonly ports: boolean;
  // Where the last walk found its innermost TCP header (-1: it ended elsewhere), for bypassKey.
  private tcpAt = -1;
  private tcpEnd = 0;
  private ipAt = 0;
  private ipV6 = false;
  /** The VLAN ids met on the way, mixed (every tag, outer and inner). */
  private vlans = 0;
  /** Out-values of bypassKey: the flow's two 32-bit key lanes, the same both directions. */
  key1 = 0;
  key2 = 0;
  /** Out-values of bypassKey: the sender's and the receiver's endpoint tags (address and port). */
  srcTag = 0;
  dstTag = 0;
  /** Out-values of bypassKey: the TCP flags, the payload's length and the sequence number after it. */
  tcpFlags = 0;
  payloadLen = 0;
  seqEnd = 0;

  constructor(readonly balance: Balance = 'hosts') {
    this.ports = balance === 'flows';
  }

  /** A uint32 hash of the frame's innermost flow, equal for both directions; 0 for non-IP frames. */
  hash(linkType: number, b: Uint8Array, off: number, len: number): number {
    this.kind = HASH_NOT_IP;
    this.tcpAt = -1;
    this.vlans = 0;
    const end = Math.min(off + len, b.length);
    let o = off;
    let state: number;
    let type = 0;
    switch (linkType) {
      case DLT_EN10MB:
        state = S_ETHERNET;
        break;
      case DLT_LINUX_SLL:
        if (end - o < SLL_HEADER) return 0;
        type = u16(b, o + SLL_OFF_PROTO);
        o += SLL_HEADER;
        state = S_ETHERTYPE;
        break;
      case DLT_LINUX_SLL2:
        if (end - o < SLL2_HEADER) return 0;
        type = u16(b, o);
        o += SLL2_HEADER;
        state = S_ETHERTYPE;
        break;
      case DLT_NULL:
      case DLT_LOOP: {
        if (end - o < NULL_HEADER) return 0;
        // Either byte order (DLT_NULL is the capturing host's): AF_INET is 2 both ways round.
        const le = b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
        const af = linkType === DLT_LOOP || (le & 0xffff0000) !== 0 ? u32(b, o) : le;
        o += NULL_HEADER;
        state = af === AF_INET ? S_IPV4 : S_IPV6;
        break;
      }
      case DLT_RAW:
      case DLT_RAW_OPENBSD:
      case DLT_RAW_BSD:
        if (end - o < 1) return 0;
        state = b[o] >> 4 === 4 ? S_IPV4 : S_IPV6;
        break;
      case DLT_IPV4:
        state = S_IPV4;
        break;
      case DLT_IPV6:
        state = S_IPV6;
        break;
      default:
        return 0;
    }
    let depth = 0;
    // Set once an IP header is read: the hash of the most recent (innermost so far) endpoints.
    let h = 0;
    for (let n = 0; n < MAX_LAYERS && state !== S_DONE; n++) {
      switch (state) {
        case S_ETHERNET:
          if (end - o < ETH_HEADER) return h;
          type = u16(b, o + ETH_OFF_TYPE);
          o += ETH_HEADER;
          state = S_ETHERTYPE;
          break;
        case S_ETHERTYPE:
          switch (type) {
            case ETHERTYPE_IPV4:
              state = S_IPV4;
              break;
            case ETHERTYPE_IPV6:
              state = S_IPV6;
              break;
            case ETHERTYPE_VLAN:
            case ETHERTYPE_QINQ:
            case ETHERTYPE_QINQ_OLD1:
            case ETHERTYPE_QINQ_OLD2:
              if (end - o < VLAN_TAG) return h;
              this.vlans = mix(this.vlans, u16(b, o) & 0x0fff);
              type = u16(b, o + 2);
              o += VLAN_TAG;
              break;
            case ETHERTYPE_MPLS_UC:
            case ETHERTYPE_MPLS_MC: {
              let i = 0;
              for (; i < MAX_MPLS_LABELS; i++) {
                if (end - o < MPLS_ENTRY) return h;
                const bos = b[o + MPLS_BOS_BYTE] & MPLS_BOS_BIT;
                o += MPLS_ENTRY;
                if (bos !== 0) break;
              }
              if (i === MAX_MPLS_LABELS || end - o < 1) return h;
              const nibble = b[o] >> 4;
              if (nibble === 4) state = S_IPV4;
              else if (nibble === 6) state = S_IPV6;
              else if (nibble === 0 && end - o >= PW_CONTROL_WORD + ETH_HEADER) {
                o += PW_CONTROL_WORD;
                state = S_ETHERNET;
              } else return h;
              break;
            }
            case ETHERTYPE_PPPOE_SESS: {
              if (end - o < PPPOE_HEADER + 2 || b[o] !== PPPOE_VERTYPE || b[o + 1] !== 0) return h;
              const proto = u16(b, o + PPPOE_HEADER);
              o += PPPOE_HEADER + 2;
              if (proto === PPP_PROTO_IPV4) state = S_IPV4;
              else if (proto === PPP_PROTO_IPV6) state = S_IPV6;
              else return h;
              break;
            }
            case ETHERTYPE_TEB:
              state = S_ETHERNET;
              break;
            default:
              return h;
          }
          break;
        case S_IPV4: {
          if (end - o < IPV4_MIN_HEADER || b[o] >> 4 !== 4) return h;
          const hl = (b[o] & 0x0f) << 2;
          const total = u16(b, o + IPV4_OFF_TOTLEN);
          if (hl < IPV4_MIN_HEADER || total < hl || total > end - o) return h;
          const ipEnd = o + total;
          const x = u32(b, o + IPV4_OFF_SRC);
          const y = u32(b, o + IPV4_OFF_SRC + 4);
          h = mix(mix(0x2f6b1a3d, x ^ y), (x + y) | 0);
          const proto = b[o + IPV4_OFF_PROTO];
          if ((u16(b, o + IPV4_OFF_FRAG) & IPV4_MF_OR_OFFSET) !== 0) {
            this.kind = HASH_FRAGMENT;
            return fmix(h);
          }
          this.kind = HASH_ADDRESSES;
          this.ipAt = o;
          this.ipV6 = false;
          const l4 = o + hl;
          const next = this.afterIp(b, proto, l4, ipEnd, h);
          if (next === S_DONE) return this.result;
          if (++depth > MAX_TUNNEL_DEPTH) return fmix(h);
          h = fmix(h);
          state = next;
          o = this.nextOff;
          break;
        }
        case S_IPV6: {
          if (end - o < IPV6_HEADER || b[o] >> 4 !== 6) return h;
          const plen = u16(b, o + IPV6_OFF_PLEN);
          if (plen !== 0 && IPV6_HEADER + plen > end - o) return h;
          const ipEnd = plen === 0 ? end : o + IPV6_HEADER + plen;
          let hh = 0x5bd1e995;
          for (let i = 0; i < 16; i += 4) {
            const x = u32(b, o + IPV6_OFF_SRC + i);
            const y = u32(b, o + IPV6_OFF_SRC + 16 + i);
            hh = mix(mix(hh, x ^ y), (x + y) | 0);
          }
          h = hh;
          this.kind = HASH_ADDRESSES;
          let nh = b[o + IPV6_OFF_NH];
          let p = o + IPV6_HEADER;
          let walked = 0;
          for (; walked < MAX_IPV6_EXT_HEADERS; walked++) {
            if (nh === NH_HOPOPTS || nh === NH_ROUTING || nh === NH_DSTOPTS || nh === NH_MOBILITY || nh === NH_HIP || nh === NH_SHIM6) {
              if (ipEnd - p < 8) return fmix(h);
              const l = (b[p + 1] + 1) << 3;
              if (l > ipEnd - p) return fmix(h);
              nh = b[p];
              p += l;
            } else if (nh === NH_AH) {
              if (ipEnd - p < 8) return fmix(h);
              const l = (b[p + 1] + 2) << 2;
              if (l > ipEnd - p) return fmix(h);
              nh = b[p];
              p += l;
            } else if (nh === NH_FRAGMENT) {
              if (ipEnd - p < IPV6_FRAG_HEADER) return fmix(h);
              const fo = u16(b, p + 2);
              const inner = b[p];
              p += IPV6_FRAG_HEADER;
              nh = inner;
              if ((fo & 0xfff8) === 0 && (fo & 1) === 0) continue; // atomic fragment (RFC 6946)
              this.kind = HASH_FRAGMENT;
              return fmix(h);
            } else break;
          }
          if (walked === MAX_IPV6_EXT_HEADERS) return fmix(h);
          this.ipAt = o;
          this.ipV6 = true;
          const next = this.afterIp(b, nh, p, ipEnd, h);
          if (next === S_DONE) return this.result;
          if (++depth > MAX_TUNNEL_DEPTH) return fmix(h);
          h = fmix(h);
          state = next;
          o = this.nextOff;
          break;
        }
        case S_GRE: {
          // Only reached through afterIp with the GRE header at o.
          if (end - o < GRE_MIN_HEADER) return h;
          const flags = u16(b, o);
          if ((flags & GRE_VERSION_MASK) !== 0) return h;
          const proto = u16(b, o + 2);
          let gl = GRE_MIN_HEADER;
          if (flags & (GRE_FLAG_CSUM | GRE_FLAG_ROUTING)) gl += 4;
          if (flags & GRE_FLAG_KEY) gl += 4;
          if (flags & GRE_FLAG_SEQ) gl += 4;
          if (end - o < gl) return h;
          o += gl;
          if (proto === ETHERTYPE_ERSPAN2) {
            // ERSPAN type I: no sequence number and no ERSPAN header.
            if ((flags & GRE_FLAG_SEQ) === 0) {
              state = S_ETHERNET;
              break;
            }
            if (end - o < ERSPAN2_HEADER || b[o] >> 4 !== ERSPAN2_VERSION) return h;
            o += ERSPAN2_HEADER;
            state = S_ETHERNET;
          } else if (proto === ETHERTYPE_ERSPAN3) {
            if (end - o < ERSPAN3_HEADER || b[o] >> 4 !== ERSPAN3_VERSION || ((b[o + 10] >> 2) & 0x1f) !== 0) return h;
            const el = ERSPAN3_HEADER + ((b[o + 11] & 0x01) !== 0 ? ERSPAN3_SUBHEADER : 0);
            if (end - o < el) return h;
            o += el;
            state = S_ETHERNET;
          } else {
            type = proto;
            state = S_ETHERTYPE;
          }
          break;
        }
        default:
          return h;
      }
    }
    return h;
  }

  /**
   * The TCP connection of the frame `hash` last walked, as a 64-bit key (`key1`, `key2`) equal for
   * both directions, with `srcTag` / `dstTag` telling the directions apart, and the segment's
   * `tcpFlags` and `seqEnd`. False when the walk did not end at a whole TCP header that is not a
   * fragment. The key covers what the flow table keys a flow on and more (every VLAN tag on the
   * way, not only the first two), so two frames the flow table holds apart never share a key; the
   * capture thread's bypass (workers/bypass-table.ts) relies on that. `seed` (the table's, random)
   * keys the endpoints' hashes, so nobody can make a connection of theirs share the key of a
   * bypassed one and have its frames dropped unread.
   */
  bypassKey(b: Uint8Array, seed = 0): boolean {
    const t = this.tcpAt;
    if (t < 0 || this.kind === HASH_FRAGMENT || this.tcpEnd - t < TCP_MIN_HEADER) return false;
    const doff = (b[t + TCP_OFF_DOFF] >> 4) << 2;
    if (doff < TCP_MIN_HEADER || doff > this.tcpEnd - t) return false;
    const sp = u16(b, t);
    const dp = u16(b, t + 2);
    const ip = this.ipAt;
    let s1: number;
    let s2: number;
    let d1: number;
    let d2: number;
    const seed1 = 0x1b873593 ^ seed;
    const seed2 = 0x7feb352d ^ Math.imul(seed, 0x9e3779b1);
    if (this.ipV6) {
      s1 = d1 = seed1;
      s2 = d2 = seed2;
      for (let i = 0; i < 16; i += 4) {
        const x = u32(b, ip + IPV6_OFF_SRC + i);
        const y = u32(b, ip + IPV6_OFF_SRC + 16 + i);
        s1 = mix(s1, x);
        s2 = mix(s2, x ^ 0x5bd1e995);
        d1 = mix(d1, y);
        d2 = mix(d2, y ^ 0x5bd1e995);
      }
    } else {
      const x = u32(b, ip + IPV4_OFF_SRC);
      const y = u32(b, ip + IPV4_OFF_SRC + 4);
      s1 = mix(seed1, x);
      s2 = mix(seed2, x ^ 0x5bd1e995);
      d1 = mix(seed1, y);
      d2 = mix(seed2, y ^ 0x5bd1e995);
    }
    s1 = fmix(mix(s1, sp));
    d1 = fmix(mix(d1, dp));
    s2 = fmix(mix(s2, sp ^ 0x68e31da4));
    d2 = fmix(mix(d2, dp ^ 0x68e31da4));
    const v = this.vlans;
    this.key1 = fmix(mix(mix(mix(0x3c6ef372 ^ IPPROTO_TCP, v), s1 ^ d1), (s1 + d1) | 0)) | 0;
    this.key2 = fmix(mix(mix(mix(0x510e527f ^ IPPROTO_TCP, v ^ 0x2545f491), s2 ^ d2), (s2 + d2) | 0)) | 0;
    this.srcTag = s1 | 0;
    this.dstTag = d1 | 0;
    this.tcpFlags = b[t + TCP_OFF_FLAGS];
    this.payloadLen = this.tcpEnd - t - doff;
    this.seqEnd = (u32(b, t + TCP_OFF_SEQ) + this.payloadLen) >>> 0;
    return true;
  }

  /**
   * After a `bypassKey` that returned true, for the same frame `b`: a 32-bit digest of what the
   * duplicate filter (decode/duplicates.ts) compares besides the connection, that is the direction,
   * IPv4 id, TCP flags, sequence and ack numbers, payload length and four payload bytes. Two copies
   * of one frame from a mirror port have the same digest; a retransmission has a new IPv4 id.
   */
  duplicateSig(b: Uint8Array): number {
    const t = this.tcpAt;
    const n = this.payloadLen;
    let h = mix(mix(0x2545f491 ^ this.srcTag, u32(b, t + TCP_OFF_SEQ)), u32(b, t + TCP_OFF_ACK));
    h = mix(h, this.tcpFlags | (n << 8));
    if (!this.ipV6) h = mix(h, u16(b, this.ipAt + IPV4_OFF_ID));
    if (n > 0) {
      const o = t + ((b[t + TCP_OFF_DOFF] >> 4) << 2);
      h = mix(h, (b[o] << 24) | (b[o + (n >> 1)] << 16) | (b[o + n - 1] << 8) | b[o + (n >> 2)]);
    }
    return fmix(h) | 0;
  }

  /**
   * After an IP header: the flow's final hash (S_DONE, in `result`) or the tunnel to follow
   * (its state, with the offset in `nextOff`). `h` is the address hash.
   */
  private afterIp(b: Uint8Array, proto: number, l4: number, ipEnd: number, h: number): number {
    if (proto === IPPROTO_TCP) {
      this.tcpAt = l4;
      this.tcpEnd = ipEnd;
      if (this.ports && ipEnd - l4 >= L4_PORTS) {
        const sp = u16(b, l4);
        const dp = u16(b, l4 + 2);
        this.kind = HASH_PORTS;
        this.result = fmix(mix(mix(h, IPPROTO_TCP), (sp ^ dp) | ((sp + dp) << 16)));
      } else {
        this.result = fmix(h);
      }
      return S_DONE;
    }
    if (proto === IPPROTO_UDP) {
      if (ipEnd - l4 >= UDP_HEADER) {
        const dp = u16(b, l4 + 2);
        const payload = l4 + UDP_HEADER;
        // The decoder's rule: the VXLAN / Geneve port with a valid header is a tunnel, else plain UDP.
        if (dp === VXLAN_PORT && ipEnd - payload >= VXLAN_HEADER && b[payload] === VXLAN_FLAG_I) {
          this.nextOff = payload + VXLAN_HEADER;
          return S_ETHERNET;
        }
        if (dp === GENEVE_PORT && ipEnd - payload >= GENEVE_HEADER && b[payload] >> 6 === GENEVE_VERSION && u16(b, payload + 2) === ETHERTYPE_TEB) {
          const gl = GENEVE_HEADER + ((b[payload] & 0x3f) << 2);
          if (ipEnd - payload >= gl) {
            this.nextOff = payload + gl;
            return S_ETHERNET;
          }
        }
      }
      // Addresses only, as for fragments: a fragmented datagram meets the rest of its flow.
      this.result = fmix(h);
      return S_DONE;
    }
    if (proto === IPPROTO_IPIP) {
      this.nextOff = l4;
      return S_IPV4;
    }
    if (proto === IPPROTO_IPV6) {
      this.nextOff = l4;
      return S_IPV6;
    }
    if (proto === IPPROTO_GRE) {
      this.nextOff = l4;
      return S_GRE;
    }
    this.result = fmix(h);
    return S_DONE;
  }
}

/** The worker for a hash: a multiply-shift of the uint32 hash onto [0, workers). Non-IP (hash 0) goes to 0. */
export function workerForHash(hash: number, workers: number): number {
  return Math.floor((hash / 4294967296) * workers);
}

/**
 * The decode stage: runs layer decoders from the capture link type down to the transport header,
 * choosing each successor from a dispatch table. Input: one frame. Output: the filled `Packet`;
 * `decodeFrame` returns true when it reached TCP or UDP (the flow stage takes over). Every
 * malformed case is an anomaly counter; packet bytes never throw (a bug that does is caught by
 * the pipeline, counted and rate-limited).
 */
import { Counters, defineAnomaly, defineCounter } from '../events/counters.js';
import { DLT_EN10MB, ETHERTYPE_IPV4, layerForLinkType } from './dispatch.js';
import { Defragmenter } from './ip-fragments.js';
import { C_IPV4, decodeIpv4, decodeIpv6 } from './ip.js';
import { decodeEthernet, decodeLoop, decodeMpls, decodeNull, decodePppoe, decodeRaw, decodeSll, decodeSll2, decodeVlan } from './link.js';
import {
  L_COUNT, L_DONE, L_ERSPAN2, L_ERSPAN3, L_ETHERNET, L_GENEVE, L_GRE, L_ICMP,
  L_ICMPV6, L_IPV4, L_IPV6, L_LOOP, L_MPLS, L_NULL, L_PPPOE, L_RAW, L_SLL, L_SLL2, L_TCP, L_UDP, L_VLAN,
  L_VXLAN, IPPROTO_TCP, IPPROTO_UDP, Packet,
} from './packet.js';
import { C_TCP, C_UDP, decodeIcmp, decodeIcmpv6, decodeTcp, decodeUdp, GENEVE_PORT, tcpOptionsValid, VXLAN_PORT } from './transport.js';
import { decodeErspan2, decodeErspan3, decodeGeneve, decodeGre, decodeVxlan } from './tunnel.js';

const A_LINKTYPE = defineAnomaly('decoder.unsupported_linktype');
const A_LAYERS = defineAnomaly('decoder.too_many_layers');
const C_PKTS = defineCounter('decoder.pkts');
const C_BYTES = defineCounter('decoder.bytes');

/** Layers decoded per frame at most: a guard against tunnel/tag loops crafted to spin. */
const MAX_LAYERS_PER_PACKET = 32;

// Header layouts read by the common-shape path (the layer decoders name the same offsets).
const ETH_HEADER = 14;
const ETH_OFF_SRC = 6;
const ETH_OFF_TYPE = 12;
const IPV4_HEADER_NO_OPTIONS = 20;
const IPV4_VERSION_IHL_5 = 0x45;
const IPV4_OFF_TOTLEN = 2;
const IPV4_OFF_ID = 4;
const IPV4_OFF_FRAG = 6;
const IPV4_OFF_PROTO = 9;
const IPV4_OFF_SRC = 12;
const IPV4_OFF_DST = 16;
const IPV4_MF_OR_OFFSET = 0x3fff;
const TCP_MIN_HEADER = 20;
const TCP_OFF_SEQ = 4;
const TCP_OFF_ACK = 8;
const TCP_OFF_DOFF = 12;
const TCP_OFF_FLAGS = 13;
const TCP_OFF_WIN = 14;
const UDP_HEADER = 8;
const UDP_OFF_LEN = 4;

function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}
function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/**
 * Ethernet + IPv4 without options, not a fragment + TCP, or UDP not on a tunnel port: the shape of
 * nearly every packet, decoded in one pass instead of three dispatched layers. It applies the same
 * checks and sets the same fields and counters as decodeEthernet, decodeIpv4 and decodeTcp /
 * decodeUdp; a frame of any other shape, or one those decoders would flag, returns false before
 * anything is written, and the layer decoders take it from the start.
 */
function decodeCommonShape(p: Packet, c: Counters): boolean {
  const b = p.buf;
  const e = p.off;
  const o = e + ETH_HEADER;
  if (p.end - o < IPV4_HEADER_NO_OPTIONS || u16(b, e + ETH_OFF_TYPE) !== ETHERTYPE_IPV4 || b[o] !== IPV4_VERSION_IHL_5) return false;
  const totalLen = u16(b, o + IPV4_OFF_TOTLEN);
  if (totalLen < IPV4_HEADER_NO_OPTIONS || totalLen > p.end - o || (u16(b, o + IPV4_OFF_FRAG) & IPV4_MF_OR_OFFSET) !== 0) return false;
  const proto = b[o + IPV4_OFF_PROTO];
  const l4 = o + IPV4_HEADER_NO_OPTIONS;
  const l4End = o + totalLen;
  const avail = l4End - l4;
  let hl = 0;
  let udpLen = 0;
  if (proto === IPPROTO_TCP) {
    if (avail < TCP_MIN_HEADER) return false;
    hl = (b[l4 + TCP_OFF_DOFF] >> 4) << 2;
    if (hl < TCP_MIN_HEADER || hl > avail || (hl > TCP_MIN_HEADER && !tcpOptionsValid(b, l4 + TCP_MIN_HEADER, l4 + hl))) return false;
  } else if (proto === IPPROTO_UDP) {
    if (avail < UDP_HEADER) return false;
    udpLen = u16(b, l4 + UDP_OFF_LEN);
    if ((udpLen !== 0 && udpLen < UDP_HEADER) || udpLen > avail) return false;
    const dport = u16(b, l4 + 2);
    if (dport === VXLAN_PORT || dport === GENEVE_PORT) return false;
  } else {
    return false;
  }
  // Ethernet
  p.macBuf = b;
  p.macOff = e + ETH_OFF_SRC;
  p.nextType = ETHERTYPE_IPV4;
  // IPv4
  c.inc(C_IPV4);
  p.end = l4End;
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
  p.ipProto = proto;
  p.ipId = u16(b, o + IPV4_OFF_ID);
  p.off = l4;
  p.l4Off = l4;
  p.l4Len = avail;
  p.srcPort = u16(b, l4);
  p.dstPort = u16(b, l4 + 2);
  if (proto === IPPROTO_TCP) {
    c.inc(C_TCP);
    p.seq = u32(b, l4 + TCP_OFF_SEQ);
    p.ack = u32(b, l4 + TCP_OFF_ACK);
    p.tcpFlags = b[l4 + TCP_OFF_FLAGS];
    p.window = u16(b, l4 + TCP_OFF_WIN);
    p.payloadOff = l4 + hl;
    p.payloadLen = avail - hl;
    p.transport = IPPROTO_TCP;
  } else {
    c.inc(C_UDP);
    p.payloadOff = l4 + UDP_HEADER;
    p.payloadLen = (udpLen === 0 ? avail : udpLen) - UDP_HEADER;
    p.tcpFlags = 0;
    p.transport = IPPROTO_UDP;
  }
  return true;
}

type LayerDecoder = (p: Packet, c: Counters, defrag: Defragmenter) => number;

const NOOP: LayerDecoder = () => L_DONE;
const TABLE: LayerDecoder[] = new Array<LayerDecoder>(L_COUNT).fill(NOOP);
TABLE[L_ETHERNET] = decodeEthernet;
TABLE[L_VLAN] = decodeVlan;
TABLE[L_MPLS] = decodeMpls;
TABLE[L_PPPOE] = decodePppoe;
TABLE[L_IPV4] = decodeIpv4;
TABLE[L_IPV6] = decodeIpv6;
TABLE[L_TCP] = decodeTcp;
TABLE[L_UDP] = decodeUdp;
TABLE[L_ICMP] = decodeIcmp;
TABLE[L_ICMPV6] = decodeIcmpv6;
TABLE[L_GRE] = decodeGre;
TABLE[L_ERSPAN2] = decodeErspan2;
TABLE[L_ERSPAN3] = decodeErspan3;
TABLE[L_VXLAN] = decodeVxlan;
TABLE[L_GENEVE] = decodeGeneve;
TABLE[L_SLL] = decodeSll;
TABLE[L_SLL2] = decodeSll2;
TABLE[L_NULL] = decodeNull;
TABLE[L_LOOP] = decodeLoop;
TABLE[L_RAW] = decodeRaw;

export class Decoder {
  readonly packet = new Packet();
  readonly defrag: Defragmenter;

  constructor(readonly counters: Counters, defrag?: Defragmenter) {
    this.defrag = defrag ?? new Defragmenter(counters);
  }

  /**
   * Decodes one frame into `this.packet`; true when it carries TCP or UDP for the flow stage.
   * `wireLen` is the frame's length on the wire (the capture's original length; the captured `len`
   * when not given): what `packet.wireLen` counts, summed over the fragments of a datagram.
   */
  decodeFrame(linkType: number, buf: Uint8Array, off: number, len: number, tsUs: number, ifIndex = 0, wireLen = len): boolean {
    const c = this.counters;
    const p = this.packet;
    c.inc(C_PKTS);
    c.inc(C_BYTES, len);
    p.reset(buf, off, off + len, tsUs, ifIndex, wireLen);
    if (linkType === DLT_EN10MB && decodeCommonShape(p, c)) return true;
    let layer = layerForLinkType(linkType);
    if (layer === L_DONE) {
      c.inc(A_LINKTYPE);
      return false;
    }
    const defrag = this.defrag;
    for (let n = 0; layer !== L_DONE; n++) {
      if (n === MAX_LAYERS_PER_PACKET) {
        c.inc(A_LAYERS);
        return false;
      }
      layer = TABLE[layer](p, c, defrag);
    }
    return p.transport !== 0;
  }
}

/**
 * The decoded packet: one mutable record per pipeline, refilled for every packet.
 * Input: layer decoders write their fields as they validate each header. Output: the flow stage
 * reads addresses, ports, TCP fields and the payload window. A fresh object per packet would cost
 * an allocation per packet on a path budgeted at under a microsecond, so this is the one place
 * where Hark trades smoltcp's readonly structs for a reused one; nothing keeps a reference to it.
 */
import { formatIpv6Words } from '../net/ipv6-text.js';

/** Next-layer identifiers used by the dispatch table in decoder.ts. */
export const L_DONE = 0;
export const L_ETHERNET = 1;
export const L_VLAN = 2;
export const L_MPLS = 3;
export const L_PPPOE = 4;
export const L_IPV4 = 5;
export const L_IPV6 = 6;
export const L_TCP = 7;
export const L_UDP = 8;
export const L_ICMP = 9;
export const L_GRE = 10;
export const L_ERSPAN2 = 11;
export const L_ERSPAN3 = 12;
export const L_VXLAN = 13;
export const L_SLL = 14;
export const L_SLL2 = 15;
export const L_NULL = 16;
export const L_LOOP = 17;
export const L_RAW = 18;
export const L_GENEVE = 19;
export const L_ICMPV6 = 20;
export const L_COUNT = 21;

/** VLAN tags kept per packet (802.1ad outer + 802.1Q inner); deeper stacks are counted. */
export const MAX_VLAN_TAGS = 2;

export const IPPROTO_ICMP = 1;
export const IPPROTO_IPIP = 4;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_GRE = 47;
export const IPPROTO_ICMPV6 = 58;

/**
 * Initial value for a number field that will hold timestamps or unsigned 32-bit values. V8 gives a
 * field the representation of the first value stored in it: a small integer would be changed to a
 * double at the first large value, and that change deoptimises every function compiled against the
 * object's layout (on a warm pipeline, a dozen recompilations of its largest functions). A fraction
 * makes the field a double from the start; constructors then store the real initial value.
 */
const DOUBLE_FIELD = 0.5;

export class Packet {
  tsUs = DOUBLE_FIELD;
  ifIndex = 0;
  /**
   * Frames on the wire this packet stands for and their wire (original) length: the frame itself,
   * or, once the defragmenter completes a datagram, every fragment frame that carried it. The flow
   * table counts these, as Suricata, Zeek and tcpdump count packets and bytes.
   */
  frames = 1;
  wireLen = 0;
  /** Buffer holding the layers being decoded (switches to the reassembled datagram after defrag). */
  buf: Uint8Array = new Uint8Array(0);
  /** Start of the next layer to decode and end of valid bytes in `buf`. */
  off = 0;
  end = 0;
  /** Ethertype / protocol selector carried between layers. */
  nextType = 0;

  /** Where the innermost Ethernet source address is (`macBuf` undefined when there was none). */
  macBuf: Uint8Array | undefined = undefined;
  macOff = 0;

  vlanCount = 0;
  vlan0 = 0;
  vlan1 = 0;
  tunnelDepth = 0;

  ipVersion = 0;
  /** Source address words [0..3], destination [4..7]; IPv4 uses words 0 and 4 only. */
  readonly addr = new Uint32Array(8);
  ipProto = 0;
  /** IPv4 identification (0 for IPv6): tells a retransmission from a mirror port's duplicate copy. */
  ipId = 0;
  /** IPPROTO_TCP or IPPROTO_UDP once that header decoded cleanly, else 0: what the flow stage takes. */
  transport = 0;
  /** Offset and length of the L4 header + payload within `buf`. */
  l4Off = 0;
  l4Len = 0;

  srcPort = 0;
  dstPort = 0;
  tcpFlags = 0;
  seq = DOUBLE_FIELD;
  ack = DOUBLE_FIELD;
  window = 0;
  payloadOff = 0;
  payloadLen = 0;

  constructor() {
    this.tsUs = 0;
    this.seq = 0;
    this.ack = 0;
  }

  reset(buf: Uint8Array, off: number, end: number, tsUs: number, ifIndex: number, wireLen: number): void {
    this.buf = buf;
    this.off = off;
    this.end = end;
    this.tsUs = tsUs;
    this.ifIndex = ifIndex;
    this.frames = 1;
    this.wireLen = wireLen;
    this.nextType = 0;
    this.macBuf = undefined;
    this.vlanCount = 0;
    this.vlan0 = 0;
    this.vlan1 = 0;
    this.tunnelDepth = 0;
    this.ipVersion = 0;
    this.ipProto = 0;
    this.ipId = 0;
    this.transport = 0;
    this.srcPort = 0;
    this.dstPort = 0;
    this.tcpFlags = 0;
    this.payloadOff = 0;
    this.payloadLen = 0;
  }
}

/** Printable forms of every byte value: formatting an address once per flow is then a few concatenations. */
const HEX_BYTE: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const DEC_BYTE: readonly string[] = Array.from({ length: 256 }, (_, i) => String(i));

/** `aa:bb:cc:dd:ee:ff` from six bytes. */
export function formatMac(b: Uint8Array, o: number): string {
  return `${HEX_BYTE[b[o]]}:${HEX_BYTE[b[o + 1]]}:${HEX_BYTE[b[o + 2]]}:${HEX_BYTE[b[o + 3]]}:${HEX_BYTE[b[o + 4]]}:${HEX_BYTE[b[o + 5]]}`;
}

export function formatIpv4(a: number): string {
  return `${DEC_BYTE[a >>> 24]}.${DEC_BYTE[(a >>> 16) & 255]}.${DEC_BYTE[(a >>> 8) & 255]}.${DEC_BYTE[a & 255]}`;
}

/** RFC 5952 text form: lower case, longest zero run compressed (see net/ipv6-text.ts). */
export function formatIpv6(w: ArrayLike<number>, base: number): string {
  return formatIpv6Words(w, base);
}

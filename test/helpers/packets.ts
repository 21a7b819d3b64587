/**
 * Test frame builder: each function prepends one header to a payload, so frames read inside-out:
 * `ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ proto: IPPROTO.IPIP }, ipv4({ proto: IPPROTO.TCP }, tcp({ sport: 1, dport: 80 }))))`.
 * Lengths and the IPv4 checksum are computed, and every computed field can be overridden for malformed
 * packets; `ethTcp` / `ethUdp` build a whole frame. Constants are written out, not imported from sensor/.
 */

/** Ethertypes (IEEE registry). */
export const ETHERTYPE = {
  IPV4: 0x0800,
  ARP: 0x0806,
  TEB: 0x6558,
  VLAN: 0x8100,
  QINQ: 0x88a8,
  QINQ_9100: 0x9100,
  IPV6: 0x86dd,
  MPLS: 0x8847,
  MPLS_MC: 0x8848,
  PPPOE_DISC: 0x8863,
  PPPOE_SESS: 0x8864,
  ERSPAN2: 0x88be,
  ERSPAN3: 0x22eb,
} as const;

/** IP protocol numbers (IANA). */
export const IPPROTO = {
  HOPOPTS: 0,
  ICMP: 1,
  IPIP: 4,
  TCP: 6,
  UDP: 17,
  IPV6: 41,
  ROUTING: 43,
  FRAGMENT: 44,
  GRE: 47,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  NONE: 59,
  DSTOPTS: 60,
} as const;

/** Capture link types (https://www.tcpdump.org/linktypes.html). */
export const LINKTYPE = {
  NULL: 0,
  ETHERNET: 1,
  RAW_OPENBSD: 12,
  RAW_BSD: 14,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

/** PPP protocol numbers carried in PPPoE session frames. */
export const PPP = { IPV4: 0x0021, IPV6: 0x0057, LCP: 0xc021 } as const;

/** TCP flag bits (byte 13). */
export const TCP_FLAGS = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20 } as const;

// ---------------------------------------------------------------------------------------------
// Bytes

/** Concatenates byte arrays into one Buffer. */
export function concat(...parts: Uint8Array[]): Buffer {
  return Buffer.concat(parts);
}

/** Bytes from numbers: `bytes(1, 2, 0xff)`. */
export function bytes(...values: number[]): Buffer {
  return Buffer.from(values);
}

/** Bytes from a hex string; spaces, newlines and colons are ignored: `hex('45 00 00 28')`. */
export function hex(text: string): Buffer {
  const clean = text.replace(/[\s:]/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new Error(`Cannot parse hex "${text}"`);
  return Buffer.from(clean, 'hex');
}

/** Latin-1 bytes of a string: `ascii('A'.repeat(1000))`. */
export function ascii(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

/** `n` bytes counting up from `start` (mod 256): payloads whose every offset is distinguishable. */
export function counting(n: number, start = 0): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (start + i) & 0xff;
  return b;
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v & 0xffff);
  return b;
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

function padTo(b: Uint8Array, multiple: number): Buffer {
  const rem = b.length % multiple;
  return rem === 0 ? Buffer.from(b) : concat(b, Buffer.alloc(multiple - rem));
}

// ---------------------------------------------------------------------------------------------
// Addresses

/** `'00:11:22:33:44:55'` -> 6 bytes. */
export function macBytes(text: string): Buffer {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6) throw new Error(`Cannot parse MAC address "${text}"`);
  return Buffer.from(parts.map((x) => parseInt(x, 16)));
}

/** `'10.0.0.1'` -> 4 bytes. */
export function ipv4Bytes(text: string): Buffer {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) {
    throw new Error(`Cannot parse IPv4 address "${text}"`);
  }
  return Buffer.from(parts);
}

/** `'10.0.0.1'` -> the unsigned 32-bit word the decoder stores in `Packet.addr`. */
export function ipv4Word(text: string): number {
  return ipv4Bytes(text).readUInt32BE(0);
}

/** `'2001:db8::1'` -> 16 bytes (no embedded IPv4 form). */
export function ipv6Bytes(text: string): Buffer {
  const halves = text.split('::');
  if (halves.length > 2) throw new Error(`Cannot parse IPv6 address "${text}"`);
  const head = halves[0] === '' ? [] : halves[0].split(':');
  const tail = halves.length === 2 && halves[1] !== '' ? halves[1].split(':') : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...new Array<string>(fill).fill('0'), ...tail];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) {
    throw new Error(`Cannot parse IPv6 address "${text}"`);
  }
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), 2 * i));
  return b;
}

// ---------------------------------------------------------------------------------------------
// Link layer

export interface VlanTag {
  vid: number;
  /** Tag protocol identifier written before this tag; default 0x8100 (use 0x88a8 for an S-tag). */
  tpid?: number;
  /** Priority code point (3 bits) and drop-eligible bit, to check they are masked off. */
  pcp?: number;
  dei?: boolean;
}

export interface EthernetOptions {
  /** Ethertype of the payload (after the tags). */
  type: number;
  dst?: string;
  src?: string;
  /** 802.1Q / 802.1ad tags, outermost first. */
  vlans?: VlanTag[];
  /** Zero-pad the frame to this length (60 = minimum Ethernet frame without FCS). */
  padTo?: number;
  /** Bytes appended after the payload (an FCS, or trailing garbage). */
  trailer?: Uint8Array;
}

/** Ethernet II header (+ VLAN tags) + payload [+ padding + trailer]. */
export function ethernet(o: EthernetOptions, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const parts: Uint8Array[] = [macBytes(o.dst ?? '00:00:5e:00:53:02'), macBytes(o.src ?? '00:00:5e:00:53:01')];
  for (const t of o.vlans ?? []) {
    parts.push(u16(t.tpid ?? ETHERTYPE.VLAN), u16(((t.pcp ?? 0) << 13) | (t.dei === true ? 0x1000 : 0) | (t.vid & 0x0fff)));
  }
  parts.push(u16(o.type), payload);
  let frame = concat(...parts);
  if (o.padTo !== undefined && frame.length < o.padTo) frame = concat(frame, Buffer.alloc(o.padTo - frame.length));
  return o.trailer === undefined ? frame : concat(frame, o.trailer);
}

export interface MplsOptions {
  labels: number[];
  tc?: number;
  ttl?: number;
  /** Set the bottom-of-stack bit on the last label (default true); false builds a stack with no end. */
  bos?: boolean;
}

/** MPLS label stack entries (RFC 3032) + payload. */
export function mpls(o: MplsOptions, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const entries = o.labels.map((label, i) => {
    const bos = i === o.labels.length - 1 && o.bos !== false ? 1 : 0;
    return u32(((label & 0xfffff) << 12) | (((o.tc ?? 0) & 7) << 9) | (bos << 8) | ((o.ttl ?? 64) & 0xff));
  });
  return concat(...entries, payload);
}

/** Pseudowire control word (RFC 4385: first nibble 0, flags 0, 16-bit sequence) + payload. */
export function pwControlWord(payload: Uint8Array, seq = 0): Buffer {
  return concat(u16(0), u16(seq), payload);
}

export interface PppoeOptions {
  /** PPP protocol of the payload (PPP.IPV4, PPP.IPV6, PPP.LCP...). */
  proto: number;
  sessionId?: number;
  /** PPPoE length field; default = 2 (PPP protocol) + payload length. */
  length?: number;
  /** Version/type byte (0x11) and code (0 = session data), overridable. */
  verType?: number;
  code?: number;
}

/** PPPoE session header (RFC 2516) + PPP protocol + payload. */
export function pppoeSession(o: PppoeOptions, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const len = o.length ?? 2 + payload.length;
  return concat(bytes(o.verType ?? 0x11, o.code ?? 0), u16(o.sessionId ?? 0x1234), u16(len), u16(o.proto), payload);
}

export interface SllOptions {
  /** Ethertype of the payload. */
  protocol: number;
  /** 0 = to us, 4 = outgoing... */
  pktType?: number;
  haType?: number;
  addr?: string;
}

/** Linux cooked capture v1 header (16 bytes) + payload. */
export function sll(o: SllOptions, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const addr = concat(macBytes(o.addr ?? '00:00:5e:00:53:01'), Buffer.alloc(2));
  return concat(u16(o.pktType ?? 0), u16(o.haType ?? 1), u16(6), addr, u16(o.protocol), payload);
}

/** Linux cooked capture v2 header (20 bytes) + payload. */
export function sll2(o: SllOptions & { ifIndex?: number }, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const addr = concat(macBytes(o.addr ?? '00:00:5e:00:53:01'), Buffer.alloc(2));
  return concat(u16(o.protocol), u16(0), u32(o.ifIndex ?? 2), u16(o.haType ?? 1), bytes(o.pktType ?? 0, 6), addr, payload);
}

/**
 * BSD loopback header: the 4-byte address family (2 = AF_INET; AF_INET6 is 24, 28 or 30 depending
 * on the BSD) in little-endian (DLT_NULL written on x86) or big-endian (DLT_NULL on a BE host, and
 * always for DLT_LOOP) byte order.
 */
export function bsdLoopback(family: number, byteOrder: 'le' | 'be', payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(4);
  if (byteOrder === 'le') h.writeUInt32LE(family);
  else h.writeUInt32BE(family);
  return concat(h, payload);
}

// ---------------------------------------------------------------------------------------------
// Network layer

export interface Ipv4Options {
  proto: number;
  src?: string;
  dst?: string;
  id?: number;
  ttl?: number;
  tos?: number;
  df?: boolean;
  /** More-fragments flag. */
  mf?: boolean;
  /** Fragment offset in bytes (a multiple of 8; written as offset / 8). */
  fragOffset?: number;
  /** Raw option bytes, zero-padded (EOL) to a multiple of 4. */
  options?: Uint8Array;
  /** Overrides: version nibble, IHL in 32-bit words, total length, checksum. */
  version?: number;
  ihl?: number;
  totalLength?: number;
  checksum?: number;
}

/** One's-complement sum over 16-bit words (RFC 1071). */
export function internetChecksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i] << 8) | b[i + 1];
  if (b.length % 2 === 1) sum += b[b.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** IPv4 header (RFC 791) + payload, with a correct header checksum unless overridden. */
export function ipv4(o: Ipv4Options, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const opts = padTo(o.options ?? Buffer.alloc(0), 4);
  const hl = 20 + opts.length;
  const h = Buffer.alloc(20);
  h[0] = ((o.version ?? 4) << 4) | ((o.ihl ?? hl / 4) & 0x0f);
  h[1] = o.tos ?? 0;
  h.writeUInt16BE(o.totalLength ?? hl + payload.length, 2);
  h.writeUInt16BE(o.id ?? 0x1234, 4);
  const frag = (o.df === true ? 0x4000 : 0) | (o.mf === true ? 0x2000 : 0) | (((o.fragOffset ?? 0) >> 3) & 0x1fff);
  h.writeUInt16BE(frag, 6);
  h[8] = o.ttl ?? 64;
  h[9] = o.proto;
  ipv4Bytes(o.src ?? '192.0.2.1').copy(h, 12);
  ipv4Bytes(o.dst ?? '192.0.2.2').copy(h, 16);
  const header = concat(h, opts);
  header.writeUInt16BE(o.checksum ?? internetChecksum(header), 10);
  return concat(header, payload);
}

/**
 * Splits `payload` (the IPv4 payload: transport header + data) into fragments of at most
 * `fragSize` bytes (rounded down to a multiple of 8) and returns one IPv4 packet per fragment,
 * in order. `ip.id` should be set so tests can tell datagrams apart.
 */
export function fragmentIpv4(ip: Ipv4Options, payload: Uint8Array, fragSize: number): Buffer[] {
  const step = fragSize & ~7;
  if (step <= 0) throw new Error(`Cannot fragment with fragment size ${fragSize}`);
  const out: Buffer[] = [];
  for (let at = 0; at < payload.length; at += step) {
    const end = Math.min(at + step, payload.length);
    out.push(ipv4({ ...ip, fragOffset: at, mf: end < payload.length }, payload.subarray(at, end)));
  }
  return out;
}

/** Generic IPv6 extension header: hop-by-hop (0), routing (43), destination options (60)... */
export interface Ipv6ExtHeader {
  type: number;
  /** Header bytes after next-header and length; padded to make the header a multiple of 8
   * (AH: a multiple of 4 with its own length rule). Default: a PadN option / an empty body. */
  body?: Uint8Array;
  /** Override the header's length byte. */
  lengthByte?: number;
}

/** IPv6 fragment header (RFC 8200 section 4.5). */
export interface Ipv6FragmentHeader {
  type: 44;
  /** Offset in bytes (multiple of 8). */
  fragOffset: number;
  more: boolean;
  id: number;
}

export interface Ipv6Options {
  /** Protocol after the last extension header. */
  proto: number;
  src?: string;
  dst?: string;
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
  /** Extension headers in order; next-header fields are chained automatically. */
  ext?: Array<Ipv6ExtHeader | Ipv6FragmentHeader>;
  /** Overrides: version nibble and payload length. */
  version?: number;
  payloadLength?: number;
}

/** Extension header chain for `ext` ending in `proto`. */
export function ipv6ExtHeaders(ext: Array<Ipv6ExtHeader | Ipv6FragmentHeader>, proto: number): Buffer {
  const parts: Uint8Array[] = [];
  ext.forEach((e, i) => {
    const next = i + 1 < ext.length ? ext[i + 1].type : proto;
    if (e.type === IPPROTO.FRAGMENT && 'fragOffset' in e) {
      parts.push(bytes(next, 0), u16((e.fragOffset & 0xfff8) | (e.more ? 1 : 0)), u32(e.id));
      return;
    }
    const g = e as Ipv6ExtHeader;
    if (g.type === IPPROTO.AH) {
      // AH (RFC 4302): length in 4-octet units minus 2; default body = reserved, SPI, seq, 12-byte ICV.
      const body = padTo(concat(bytes(next, 0), g.body ?? concat(u16(0), u32(0x100), u32(1), Buffer.alloc(12))), 8);
      body[1] = g.lengthByte ?? body.length / 4 - 2;
      parts.push(body);
      return;
    }
    // Hop-by-hop / destination options default to one PadN option; routing to type 0, 0 segments left.
    const dflt = g.type === IPPROTO.ROUTING ? Buffer.alloc(6) : bytes(1, 4, 0, 0, 0, 0);
    const body = padTo(concat(bytes(next, 0), g.body ?? dflt), 8);
    body[1] = g.lengthByte ?? body.length / 8 - 1;
    parts.push(body);
  });
  return concat(...parts);
}

/** IPv6 header (RFC 8200) + extension headers + payload. */
export function ipv6(o: Ipv6Options, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const ext = o.ext ?? [];
  const chain = ipv6ExtHeaders(ext, o.proto);
  const h = Buffer.alloc(40);
  h.writeUInt32BE((((o.version ?? 6) & 0xf) << 28 | ((o.trafficClass ?? 0) & 0xff) << 20 | ((o.flowLabel ?? 0) & 0xfffff)) >>> 0, 0);
  h.writeUInt16BE(o.payloadLength ?? chain.length + payload.length, 4);
  h[6] = ext.length > 0 ? ext[0].type : o.proto;
  h[7] = o.hopLimit ?? 64;
  ipv6Bytes(o.src ?? '2001:db8::1').copy(h, 8);
  ipv6Bytes(o.dst ?? '2001:db8::2').copy(h, 24);
  return concat(h, chain, payload);
}

/**
 * Splits `payload` (the fragmentable part: transport header + data) into IPv6 fragments of at most
 * `fragSize` bytes (rounded down to a multiple of 8), each a full IPv6 packet with `ip.ext`
 * (the unfragmentable part) followed by a fragment header with identification `id`.
 */
export function fragmentIpv6(ip: Ipv6Options, payload: Uint8Array, fragSize: number, id: number): Buffer[] {
  const step = fragSize & ~7;
  if (step <= 0) throw new Error(`Cannot fragment with fragment size ${fragSize}`);
  const out: Buffer[] = [];
  for (let at = 0; at < payload.length; at += step) {
    const end = Math.min(at + step, payload.length);
    const frag: Ipv6FragmentHeader = { type: 44, fragOffset: at, more: end < payload.length, id };
    out.push(ipv6({ ...ip, ext: [...(ip.ext ?? []), frag] }, payload.subarray(at, end)));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Transport

export interface TcpOptions {
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  /** TCP_FLAGS bits; default ACK. */
  flags?: number;
  window?: number;
  urgent?: number;
  /** Raw option bytes, zero-padded (EOL) to a multiple of 4. */
  options?: Uint8Array;
  /** Override the data offset (header length in 32-bit words). */
  dataOffset?: number;
}

/** TCP header (RFC 9293) + payload; the checksum is left 0 (Hark does not verify it). */
export function tcp(o: TcpOptions, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const opts = padTo(o.options ?? Buffer.alloc(0), 4);
  const h = Buffer.alloc(20);
  h.writeUInt16BE(o.sport, 0);
  h.writeUInt16BE(o.dport, 2);
  h.writeUInt32BE((o.seq ?? 1) >>> 0, 4);
  h.writeUInt32BE((o.ack ?? 0) >>> 0, 8);
  h[12] = ((o.dataOffset ?? (20 + opts.length) / 4) & 0xf) << 4;
  h[13] = o.flags ?? TCP_FLAGS.ACK;
  h.writeUInt16BE(o.window ?? 65535, 14);
  h.writeUInt16BE(o.urgent ?? 0, 18);
  return concat(h, opts, payload);
}

/** Common TCP options, to compose into `TcpOptions.options`. */
export const tcpOption = {
  mss: (v: number) => concat(bytes(2, 4), u16(v)),
  wscale: (shift: number) => bytes(3, 3, shift),
  sackPermitted: () => bytes(4, 2),
  timestamps: (val: number, echo: number) => concat(bytes(8, 10), u32(val), u32(echo)),
  nop: () => bytes(1),
  eol: () => bytes(0),
};

export interface UdpOptions {
  sport: number;
  dport: number;
  /** Override the UDP length field (default 8 + payload length). */
  length?: number;
}

/** UDP header (RFC 768) + payload; checksum 0 (none). */
export function udp(o: UdpOptions, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  return concat(u16(o.sport), u16(o.dport), u16(o.length ?? 8 + payload.length), u16(0), payload);
}

/** ICMP / ICMPv6 header: type, code, checksum 0, 4-byte rest-of-header + payload. */
export function icmp(type: number, code: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  return concat(bytes(type, code, 0, 0), u32(0), payload);
}

// ---------------------------------------------------------------------------------------------
// Tunnels

export interface GreOptions {
  /** Protocol type (an ethertype). */
  proto: number;
  /** C bit: adds checksum(2) + reserved(2). */
  checksum?: boolean;
  /** R bit (deprecated by RFC 2784): the decoder treats it like C. */
  routing?: boolean;
  /** K bit with this key. */
  key?: number;
  /** S bit with this sequence number. */
  seq?: number;
  /** Version (0; 1 is PPTP's enhanced GRE). */
  version?: number;
}

/** GRE header (RFC 2784 / 2890) + payload. */
export function gre(o: GreOptions, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  let flags = (o.version ?? 0) & 7;
  const extra: Uint8Array[] = [];
  if (o.checksum === true || o.routing === true) {
    flags |= (o.checksum === true ? 0x8000 : 0) | (o.routing === true ? 0x4000 : 0);
    extra.push(u16(0), u16(0));
  }
  if (o.key !== undefined) {
    flags |= 0x2000;
    extra.push(u32(o.key));
  }
  if (o.seq !== undefined) {
    flags |= 0x1000;
    extra.push(u32(o.seq));
  }
  return concat(u16(flags), u16(o.proto), ...extra, payload);
}

export interface Erspan2Options {
  /** Version nibble: 1 for type II. */
  version?: number;
  vlan?: number;
  cos?: number;
  session?: number;
  index?: number;
}

/** ERSPAN type II header (8 bytes) + mirrored frame. Carry it in `gre({ proto: ETHERTYPE.ERSPAN2, seq })`. */
export function erspan2(o: Erspan2Options, frame: Uint8Array): Buffer {
  const w0 = (((o.version ?? 1) & 0xf) << 12) | ((o.vlan ?? 0) & 0xfff);
  const w1 = (((o.cos ?? 0) & 7) << 13) | ((o.session ?? 1) & 0x3ff);
  return concat(u16(w0), u16(w1), u32((o.index ?? 0) & 0xfffff), frame);
}

export interface Erspan3Options {
  /** Version nibble: 2 for type III. */
  version?: number;
  vlan?: number;
  session?: number;
  timestamp?: number;
  sgt?: number;
  /** Frame type (5 bits): 0 = Ethernet, 2 = IP. */
  frameType?: number;
  hwId?: number;
  /** Optional 8-byte platform-specific sub-header; sets the O bit. */
  subHeader?: Uint8Array;
  /** Override the O bit (e.g. set without a sub-header, to build a truncated packet). */
  oBit?: boolean;
}

/** ERSPAN type III header (12 bytes [+ 8-byte sub-header]) + mirrored frame. Carry it in `gre({ proto: ETHERTYPE.ERSPAN3, seq })`. */
export function erspan3(o: Erspan3Options, frame: Uint8Array): Buffer {
  const w0 = (((o.version ?? 2) & 0xf) << 12) | ((o.vlan ?? 0) & 0xfff);
  const w1 = (o.session ?? 1) & 0x3ff;
  const oBit = o.oBit ?? o.subHeader !== undefined;
  // sgt(16) | p(1) ft(5) hwid(6) d(1) gra(2) o(1)
  const w3lo = (((o.frameType ?? 0) & 0x1f) << 10) | (((o.hwId ?? 0) & 0x3f) << 4) | (oBit ? 1 : 0);
  return concat(u16(w0), u16(w1), u32(o.timestamp ?? 0), u16(o.sgt ?? 0), u16(w3lo), o.subHeader ?? Buffer.alloc(0), frame);
}

export interface VxlanOptions {
  vni: number;
  /** Flags byte; default 0x08 (I flag: VNI valid). */
  flags?: number;
}

/** VXLAN header (RFC 7348) + inner Ethernet frame. Carry it in `udp({ dport: 4789 })`. */
export function vxlan(o: VxlanOptions, frame: Uint8Array): Buffer {
  return concat(bytes(o.flags ?? 0x08, 0, 0, 0), u32(((o.vni & 0xffffff) << 8) >>> 0), frame);
}

export interface GeneveOptions {
  vni: number;
  /** Protocol type of the payload; default 0x6558 (Ethernet). */
  protocol?: number;
  /** Option TLVs (see `geneveOption`), a multiple of 4 bytes. */
  options?: Uint8Array;
  /** Override the 6-bit option length (in 4-byte words). */
  optLenWords?: number;
  version?: number;
}

/** One Geneve option TLV: class(16) type(8) length(5 bits, in 4-byte words) + data padded to 4. */
export function geneveOption(optClass: number, type: number, data: Uint8Array): Buffer {
  const body = padTo(data, 4);
  return concat(u16(optClass), bytes(type, (body.length / 4) & 0x1f), body);
}

/** Geneve header (RFC 8926) + options + payload. Carry it in `udp({ dport: 6081 })`. */
export function geneve(o: GeneveOptions, payload: Uint8Array): Buffer {
  const opts = o.options ?? Buffer.alloc(0);
  const optLen = o.optLenWords ?? opts.length / 4;
  return concat(
    bytes((((o.version ?? 0) & 3) << 6) | (optLen & 0x3f), 0),
    u16(o.protocol ?? ETHERTYPE.TEB),
    u32(((o.vni & 0xffffff) << 8) >>> 0),
    opts,
    payload,
  );
}

// ---------------------------------------------------------------------------------------------
// Whole frames

export interface FlowFrameOptions {
  /** IPv4 or IPv6 text addresses (a ':' selects IPv6). */
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** Outer VLAN tags, outermost first. */
  vlans?: VlanTag[];
  /** IPv4 identification (default 0x1234). */
  id?: number;
}

function ipLayer(o: FlowFrameOptions, proto: number, l4: Uint8Array): { type: number; ip: Buffer } {
  if (o.src.includes(':')) return { type: ETHERTYPE.IPV6, ip: ipv6({ proto, src: o.src, dst: o.dst }, l4) };
  return { type: ETHERTYPE.IPV4, ip: ipv4({ proto, src: o.src, dst: o.dst, id: o.id }, l4) };
}

/** Ethernet [+ VLANs] + IPv4/IPv6 + TCP + payload: the frame a flow test usually wants. */
export function ethTcp(o: FlowFrameOptions & Omit<TcpOptions, 'sport' | 'dport'>, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const { type, ip } = ipLayer(o, IPPROTO.TCP, tcp(o, payload));
  return ethernet({ type, vlans: o.vlans }, ip);
}

/** Ethernet [+ VLANs] + IPv4/IPv6 + UDP + payload. */
export function ethUdp(o: FlowFrameOptions, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const { type, ip } = ipLayer(o, IPPROTO.UDP, udp(o, payload));
  return ethernet({ type, vlans: o.vlans }, ip);
}

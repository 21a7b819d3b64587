/**
 * App layer, QUIC: pure parsing of packet headers (RFC 8999 invariants, RFC 9000 §17, RFC 9369 §3).
 * Input: one UDP datagram's bytes. Output: small readonly structs (version, connection ids, token,
 * packet number offset, packet end for coalesced packets) or a dotted-anomaly-ready error code.
 * Knows QUIC v1, v2, draft-29 (and other drafts, mvfst, Google QUIC by version only). Never throws.
 */

/** RFC 9000 §17.2: a v1/v2 connection id is at most 20 bytes. */
export const MAX_CID_LEN = 20;

export const QUIC_V1 = 0x00000001;
export const QUIC_V2 = 0x6b3343cf;
export const QUIC_DRAFT_29 = 0xff00001d;
/** RFC 9000 §17.2.1: Version Negotiation packets carry version 0. */
export const QUIC_VERSION_NEGOTIATION = 0;

export type PacketType = 'initial' | '0rtt' | 'handshake' | 'retry';
export type QuicFamily = 'ietf' | 'gquic';

export interface QuicVersionInfo {
  readonly number: number;
  /** `v1`, `v2`, `draft-29`, `mvfst-2`, `Q046`, `T051`... */
  readonly name: string;
  readonly family: QuicFamily;
  /** Long-header packet type by the 2 type bits, when the long header follows RFC 9000 §17.2. */
  readonly types: readonly PacketType[] | undefined;
}

/** RFC 9000 §17.2 Table 5. */
const TYPES_V1: readonly PacketType[] = ['initial', '0rtt', 'handshake', 'retry'];
/** RFC 9369 §3.2: v2 rotates the type bits. */
const TYPES_V2: readonly PacketType[] = ['retry', 'initial', '0rtt', 'handshake'];

const V1_INFO: QuicVersionInfo = { number: QUIC_V1, name: 'v1', family: 'ietf', types: TYPES_V1 };
const V2_INFO: QuicVersionInfo = { number: QUIC_V2, name: 'v2', family: 'ietf', types: TYPES_V2 };

/** IETF drafts recognised by their 0xff0000NN version: 27-34 share the v1 long-header layout. */
const FIRST_DRAFT = 27;
const LAST_DRAFT = 34;
/** Facebook mvfst versions 0xfaceb0NN (draft-22/27 based); recognised, never decrypted. */
const MVFST_PREFIX = 0xfaceb000;
const MVFST_MAX_MINOR = 0xff;

const derived = new Map<number, QuicVersionInfo>();

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * The version a long header (or Google QUIC public header) names, or undefined when it is not one
 * Hark knows (reserved `0x?a?a?a?a` versions, RFC 9000 §15, included). Version 0 is not a version.
 */
export function lookupVersion(v: number): QuicVersionInfo | undefined {
  if (v === QUIC_V1) return V1_INFO;
  if (v === QUIC_V2) return V2_INFO;
  const known = derived.get(v);
  if (known !== undefined) return known;
  let info: QuicVersionInfo | undefined;
  const hi = v >>> 24;
  if (v >>> 8 === 0xff0000 && (v & 0xff) >= FIRST_DRAFT && (v & 0xff) <= LAST_DRAFT) {
    info = { number: v, name: `draft-${v & 0xff}`, family: 'ietf', types: TYPES_V1 };
  } else if ((v & ~MVFST_MAX_MINOR) >>> 0 === MVFST_PREFIX) {
    info = { number: v, name: `mvfst-${v & 0xff}`, family: 'ietf', types: TYPES_V1 };
  } else if ((hi === 0x51 || hi === 0x54) && isDigit((v >>> 16) & 0xff) && isDigit((v >>> 8) & 0xff) && isDigit(v & 0xff)) {
    // Google QUIC: 'Q' + 3 digits (Q0xx, QUIC crypto) or 'T' + 3 digits (T0xx, TLS inside gQUIC framing).
    info = {
      number: v,
      name: String.fromCharCode(hi, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff),
      family: 'gquic',
      types: undefined,
    };
  }
  if (info !== undefined) derived.set(v, info); // bounded: a few hundred possible keys
  return info;
}

export function readU32(buf: Uint8Array, off: number): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
}

/** Bytes of the variable-length integer starting with `first` (RFC 9000 §16). */
export function varintSize(first: number): number {
  return 1 << (first >> 6);
}

/**
 * RFC 9000 §16 variable-length integer at `off`, or -1 when it runs past `end`. 8-byte values above
 * 2^53 lose precision; every field Hark reads that large is invalid anyway and fails a bound check.
 */
export function readVarint(buf: Uint8Array, off: number, end: number): number {
  if (off >= end) return -1;
  const first = buf[off];
  const n = varintSize(first);
  if (off + n > end) return -1;
  let v = first & 0x3f;
  for (let i = 1; i < n; i++) v = v * 256 + buf[off + i];
  return v;
}

/** Anomaly-ready reasons a long header is refused; the index maps each to `quic.header.<code>`. */
export type HeaderError =
  | 'truncated'
  | 'cid_too_long'
  | 'token_beyond_datagram'
  | 'length_beyond_datagram'
  | 'unknown_version'
  | 'not_long_header';

export interface LongHeader {
  /** Offset of the first byte (a datagram may coalesce several packets, RFC 9000 §12.2). */
  readonly off: number;
  /** First byte as sent (type-specific bits still header-protected). */
  readonly firstByte: number;
  readonly version: QuicVersionInfo;
  readonly type: PacketType;
  readonly dcidOff: number;
  readonly dcidLen: number;
  readonly scidOff: number;
  readonly scidLen: number;
  /** Initial only (else 0 / 0). */
  readonly tokenOff: number;
  readonly tokenLen: number;
  /** Offset of the (protected) packet number; -1 for Retry. */
  readonly pnOff: number;
  /** Offset just after this packet: the next coalesced packet starts here. */
  readonly end: number;
}

/** Long-header field offsets (RFC 9000 §17.2). */
const LH_VERSION = 1;
const LH_DCID_LEN = 5;
const LH_MIN_LEN = 7; // first byte, version, DCID length, SCID length with empty ids

/**
 * Parses the long header at `buf[off]` within `buf[.., end)`, for a version with the RFC 9000 layout
 * (v1, v2, drafts, mvfst). Google QUIC and unknown versions give `unknown_version`; version 0 is a
 * Version Negotiation packet (`parseVersionNegotiation`).
 */
export function parseLongHeader(buf: Uint8Array, off = 0, end = buf.length): LongHeader | HeaderError {
  if (off + LH_MIN_LEN > end) return 'truncated';
  const firstByte = buf[off];
  if ((firstByte & 0x80) === 0) return 'not_long_header';
  const version = lookupVersion(readU32(buf, off + LH_VERSION));
  if (version === undefined || version.types === undefined) return 'unknown_version';
  const dcidLen = buf[off + LH_DCID_LEN];
  if (dcidLen > MAX_CID_LEN) return 'cid_too_long';
  const dcidOff = off + LH_DCID_LEN + 1;
  if (dcidOff + dcidLen + 1 > end) return 'truncated';
  const scidLen = buf[dcidOff + dcidLen];
  if (scidLen > MAX_CID_LEN) return 'cid_too_long';
  const scidOff = dcidOff + dcidLen + 1;
  let p = scidOff + scidLen;
  if (p > end) return 'truncated';
  const type = version.types[(firstByte >> 4) & 0x03];
  if (type === 'retry') {
    // RFC 9000 §17.2.5: token then a 16-byte integrity tag fill the rest of the datagram.
    if (p + 16 > end) return 'truncated';
    return { off, firstByte, version, type, dcidOff, dcidLen, scidOff, scidLen, tokenOff: p, tokenLen: end - p - 16, pnOff: -1, end };
  }
  let tokenOff = 0;
  let tokenLen = 0;
  if (type === 'initial') {
    const t = readVarint(buf, p, end);
    if (t < 0) return 'truncated';
    p += varintSize(buf[p]);
    if (t > end - p) return 'token_beyond_datagram';
    tokenOff = p;
    tokenLen = t;
    p += t;
  }
  const length = readVarint(buf, p, end);
  if (length < 0) return 'truncated';
  p += varintSize(buf[p]);
  if (length > end - p) return 'length_beyond_datagram';
  return { off, firstByte, version, type, dcidOff, dcidLen, scidOff, scidLen, tokenOff, tokenLen, pnOff: p, end: p + length };
}

export interface VersionNegotiation {
  readonly dcid: Uint8Array;
  readonly scid: Uint8Array;
  readonly versions: readonly number[];
}

/** Most versions a Version Negotiation packet may list before Hark stops reading (a 1500-byte MTU holds ~370). */
export const MAX_NEGOTIATED_VERSIONS = 64;

/**
 * RFC 9000 §17.2.1 Version Negotiation: version 0, connection ids (any length up to 255, RFC 8999 §6), then a
 * non-empty list of 32-bit versions filling the datagram. `undefined` when the bytes are not that shape.
 */
export function parseVersionNegotiation(buf: Uint8Array): VersionNegotiation | undefined {
  if (buf.length < LH_MIN_LEN || (buf[0] & 0x80) === 0 || readU32(buf, LH_VERSION) !== QUIC_VERSION_NEGOTIATION) return undefined;
  const dcidLen = buf[LH_DCID_LEN];
  const dcidOff = LH_DCID_LEN + 1;
  if (dcidOff + dcidLen + 1 > buf.length) return undefined;
  const scidLen = buf[dcidOff + dcidLen];
  const scidOff = dcidOff + dcidLen + 1;
  const listOff = scidOff + scidLen;
  const listLen = buf.length - listOff;
  if (listLen < 4 || listLen % 4 !== 0) return undefined;
  const versions: number[] = [];
  for (let p = listOff; p < buf.length && versions.length < MAX_NEGOTIATED_VERSIONS; p += 4) versions.push(readU32(buf, p));
  return { dcid: buf.slice(dcidOff, dcidOff + dcidLen), scid: buf.slice(scidOff, scidOff + scidLen), versions };
}

/** Public header: flags (1), connection id (8), version (4). */
export const GQUIC_PUBLIC_CID_OFF = 1;
export const GQUIC_PUBLIC_VERSION_OFF = 9;

/**
 * Google QUIC public header (Q043 and older): flags byte, 8-byte connection id (flag 0x08), then the
 * version when flag 0x01 is set. Returns the version (e.g. Q025) or undefined.
 */
export function gquicPublicHeaderVersion(buf: Uint8Array): QuicVersionInfo | undefined {
  const flags = buf[0];
  // 0x80 is reserved (always 0 in public headers); 0x01 version present; 0x08 8-byte connection id.
  if (buf.length < GQUIC_PUBLIC_VERSION_OFF + 4 || (flags & 0x80) !== 0 || (flags & 0x09) !== 0x09) return undefined;
  const v = lookupVersion(readU32(buf, GQUIC_PUBLIC_VERSION_OFF));
  return v !== undefined && v.family === 'gquic' ? v : undefined;
}

/**
 * The connection id a Google QUIC client packet names, as [offset, length]: public header (8 bytes
 * after the flags), Q046 long header (one byte of two length nibbles, each +3 when non-zero) or
 * Q050+/T05x long header (RFC 9000 layout). [0, 0] when there is none or it does not fit.
 */
export function gquicConnectionId(buf: Uint8Array, version: QuicVersionInfo): [number, number] {
  if ((buf[0] & 0x80) === 0) return buf.length >= GQUIC_PUBLIC_CID_OFF + 8 && (buf[0] & 0x08) !== 0 ? [GQUIC_PUBLIC_CID_OFF, 8] : [0, 0];
  if (buf.length < LH_MIN_LEN) return [0, 0];
  // Q046 and older use one byte of two length nibbles; Q050+ and T0xx use RFC 9000 length bytes.
  const nibbles = version.name.charCodeAt(0) === 0x51 && Number(version.name.slice(1)) <= 46;
  if (nibbles) {
    const nib = buf[LH_DCID_LEN] >> 4;
    const len = nib === 0 ? 0 : nib + 3;
    return LH_DCID_LEN + 1 + len <= buf.length ? [LH_DCID_LEN + 1, len] : [0, 0];
  }
  const len = buf[LH_DCID_LEN];
  return len <= MAX_CID_LEN && LH_DCID_LEN + 1 + len <= buf.length ? [LH_DCID_LEN + 1, len] : [0, 0];
}

/**
 * Is this datagram QUIC? A long header with a known version and a well-formed header up to its Length
 * (fixed bit set for IETF versions, RFC 9000 §17.2), a Version Negotiation packet, a Google QUIC public header
 * carrying its version, or, when `flowKnownQuic`, a short header with the fixed bit set (§17.3).
 * A short header alone says nothing (any byte with 0x40 set would pass), so it needs the flow's history.
 */
export function probeQuic(payload: Uint8Array, flowKnownQuic = false): boolean {
  if (payload.length === 0) return false;
  const b0 = payload[0];
  if ((b0 & 0x80) !== 0) {
    if (payload.length < LH_MIN_LEN) return false;
    const v = readU32(payload, LH_VERSION);
    if (v === QUIC_VERSION_NEGOTIATION) return parseVersionNegotiation(payload) !== undefined;
    const info = lookupVersion(v);
    if (info === undefined) return false;
    if (info.family === 'gquic') return true;
    if ((b0 & 0x40) === 0) return false;
    // A Length past the end still counts: the version already matched, and a capture's snap length
    // may have cut the datagram (the tracker then reports the anomaly).
    const h = parseLongHeader(payload);
    return typeof h !== 'string' || h === 'length_beyond_datagram';
  }
  if (gquicPublicHeaderVersion(payload) !== undefined) return true;
  return flowKnownQuic && (b0 & 0x40) !== 0;
}

/**
 * RFC 9000 §17.1 / Appendix A.3: the full packet number from its truncated `bits`-bit encoding and the
 * largest packet number received so far in that packet number space (-1 before any).
 */
export function decodePacketNumber(largest: number, truncated: number, bits: number): number {
  const expected = largest + 1;
  const win = 2 ** bits;
  const hwin = win / 2;
  const candidate = expected - (expected % win) + truncated;
  if (candidate <= expected - hwin && candidate < 2 ** 62 - win) return candidate + win;
  if (candidate > expected + hwin && candidate >= win) return candidate - win;
  return candidate;
}

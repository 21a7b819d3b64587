/**
 * App layer, Kerberos: a minimal bounded ASN.1 DER reader (X.690 §8.1, definite lengths only).
 * Input: bytes and a window. Output: one TLV header at a time (`readTlv`) and small helpers to find a
 * context-tagged child, read an INTEGER and a string. Every read is checked against its window;
 * nothing recurses, every loop is bounded; returns undefined instead of throwing.
 */

export const DER_CLASS = { UNIVERSAL: 0, APPLICATION: 1, CONTEXT: 2, PRIVATE: 3 } as const;
export const DER_TAG = { INTEGER: 2, OCTET_STRING: 4, UTF8_STRING: 12, SEQUENCE: 16, PRINTABLE_STRING: 19, IA5_STRING: 22, GENERAL_STRING: 27 } as const;

/** Length-of-length bytes accepted: 4 covers 4 GiB, far above any message this reader is given. */
const MAX_LENGTH_BYTES = 4;
/** High-tag-number continuation bytes accepted (tag numbers up to 2^21). */
const MAX_TAG_BYTES = 3;
/** Children scanned when looking for one field of a SEQUENCE (Kerberos structures have at most 13). */
export const MAX_DER_CHILDREN = 64;
/** INTEGER bytes decoded: Kerberos Int32 / UInt32 (RFC 4120 §5.2.4) take at most 5 with the sign byte. */
const MAX_INTEGER_BYTES = 5;

export interface Tlv {
  readonly cls: number;
  readonly constructed: boolean;
  readonly tag: number;
  /** Offset of the identifier byte. */
  readonly start: number;
  readonly valueStart: number;
  /** Offset just past the value. */
  readonly end: number;
}

/** The TLV starting at `pos`, which must end by `limit`. */
export function readTlv(b: Uint8Array, pos: number, limit: number): Tlv | undefined {
  if (limit > b.length) limit = b.length;
  if (pos + 2 > limit) return undefined;
  const id = b[pos];
  const cls = id >> 6;
  const constructed = (id & 0x20) !== 0;
  let tag = id & 0x1f;
  let p = pos + 1;
  if (tag === 0x1f) {
    tag = 0;
    for (let i = 0; ; i++) {
      if (i >= MAX_TAG_BYTES || p >= limit) return undefined;
      const c = b[p++];
      tag = (tag << 7) | (c & 0x7f);
      if ((c & 0x80) === 0) break;
    }
  }
  if (p >= limit) return undefined;
  let len = b[p++];
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > MAX_LENGTH_BYTES || p + n > limit) return undefined; // 0: indefinite, not DER
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[p++];
  }
  if (p + len > limit) return undefined;
  return { cls, constructed, tag, start: pos, valueStart: p, end: p + len };
}

/** The child of a constructed `parent` with context tag [n], or undefined. */
export function contextChild(b: Uint8Array, parent: Tlv, n: number): Tlv | undefined {
  let p = parent.valueStart;
  for (let i = 0; i < MAX_DER_CHILDREN && p < parent.end; i++) {
    const t = readTlv(b, p, parent.end);
    if (t === undefined) return undefined;
    if (t.cls === DER_CLASS.CONTEXT && t.tag === n) return t;
    p = t.end;
  }
  return undefined;
}

/** The single element inside an explicit tag ([n] EXPLICIT X), or undefined. */
export function explicitInner(b: Uint8Array, tagged: Tlv | undefined): Tlv | undefined {
  if (tagged === undefined || !tagged.constructed) return undefined;
  return readTlv(b, tagged.valueStart, tagged.end);
}

/** The elements of a constructed TLV, at most `max`. */
export function children(b: Uint8Array, parent: Tlv, max: number): Tlv[] {
  const out: Tlv[] = [];
  let p = parent.valueStart;
  while (p < parent.end && out.length < max) {
    const t = readTlv(b, p, parent.end);
    if (t === undefined) break;
    out.push(t);
    p = t.end;
  }
  return out;
}

/** A (small, signed) INTEGER's value, or undefined. */
export function readInteger(b: Uint8Array, t: Tlv | undefined): number | undefined {
  if (t === undefined || t.cls !== DER_CLASS.UNIVERSAL || t.tag !== DER_TAG.INTEGER) return undefined;
  const len = t.end - t.valueStart;
  if (len < 1 || len > MAX_INTEGER_BYTES) return undefined;
  let u = 0;
  for (let i = t.valueStart; i < t.end; i++) u = u * 256 + b[i];
  return b[t.valueStart] & 0x80 ? u - 2 ** (8 * len) : u; // two's complement
}

/** A character string (GeneralString, UTF8String, IA5String, PrintableString) as UTF-8, or undefined. */
export function readString(b: Uint8Array, t: Tlv | undefined): string | undefined {
  if (t === undefined || t.cls !== DER_CLASS.UNIVERSAL) return undefined;
  if (t.tag !== DER_TAG.GENERAL_STRING && t.tag !== DER_TAG.UTF8_STRING && t.tag !== DER_TAG.IA5_STRING && t.tag !== DER_TAG.PRINTABLE_STRING) return undefined;
  return Buffer.from(b.buffer, b.byteOffset + t.valueStart, t.end - t.valueStart).toString('utf8');
}

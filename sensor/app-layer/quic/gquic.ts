/**
 * App layer, Google QUIC (Q043 and older public header, Q046 long header): the client's plaintext
 * CHLO handshake message. Input: one client datagram. Output: the CHLO's SNI, user agent (UAID) and
 * version (VER) tags when a well-formed CHLO is found in it. Q050+ and T05x encrypt their handshake
 * and are only recognised (packet.ts), never read. Never throws.
 */

/** Tags a CHLO may carry before Hark stops reading it (Chrome sends ~20-30). */
export const MAX_CHLO_TAGS = 128;
/** Longest SNI / user agent kept (a DNS name is at most 253 characters). */
const MAX_TAG_TEXT = 512;

/** 'CHLO', 'SNI\0', 'UAID', 'VER\0' as they appear on the wire (QUIC crypto tags are 4 ASCII bytes). */
const TAG_CHLO = [0x43, 0x48, 0x4c, 0x4f];
const TAG_SNI = 0x534e4900;
const TAG_UAID = 0x55414944;
const TAG_VER = 0x56455200;

/** Message layout: tag (4), number of entries (u16 LE), padding (2), entries of tag (4) + end offset (u32 LE). */
const MSG_COUNT_OFF = 4;
const MSG_ENTRIES_OFF = 8;
const ENTRY_LEN = 8;

export interface GquicClientHello {
  readonly sni?: string;
  readonly userAgent?: string;
  /** VER tag: the version the client asked for, e.g. Q025. */
  readonly version?: string;
  readonly tagCount: number;
}

function u32le(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

function u32be(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** Printable ASCII only (a hostname or a user-agent string); anything else is not taken as text. */
function asciiText(b: Uint8Array, from: number, to: number): string | undefined {
  if (to - from <= 0 || to - from > MAX_TAG_TEXT) return undefined;
  for (let i = from; i < to; i++) if (b[i] < 0x20 || b[i] > 0x7e) return undefined;
  return Buffer.from(b.buffer, b.byteOffset + from, to - from).toString('latin1');
}

/**
 * Finds a CHLO message in `datagram` (searching from `from`) and reads its tags. The frame layout
 * in front of the message changed across gQUIC versions (message hash, private flags, stream frame
 * field sizes and byte order), so the message is located by its tag and then validated: end offsets
 * must not decrease and values past the datagram's end are not read. Undefined when none is found.
 */
export function findGquicClientHello(datagram: Uint8Array, from = 0): GquicClientHello | undefined {
  const n = datagram.length;
  for (let at = datagram.indexOf(TAG_CHLO[0], from); at >= 0 && at + MSG_ENTRIES_OFF <= n; at = datagram.indexOf(TAG_CHLO[0], at + 1)) {
    if (datagram[at + 1] !== TAG_CHLO[1] || datagram[at + 2] !== TAG_CHLO[2] || datagram[at + 3] !== TAG_CHLO[3]) continue;
    const hello = readChlo(datagram, at);
    if (hello !== undefined) return hello;
  }
  return undefined;
}

function readChlo(b: Uint8Array, at: number): GquicClientHello | undefined {
  const count = b[at + MSG_COUNT_OFF] | (b[at + MSG_COUNT_OFF + 1] << 8);
  if (count === 0 || count > MAX_CHLO_TAGS) return undefined;
  const valuesOff = at + MSG_ENTRIES_OFF + count * ENTRY_LEN;
  if (valuesOff > b.length) return undefined;
  let sni: string | undefined;
  let userAgent: string | undefined;
  let version: string | undefined;
  let prevEnd = 0;
  for (let i = 0; i < count; i++) {
    const e = at + MSG_ENTRIES_OFF + i * ENTRY_LEN;
    const tag = u32be(b, e);
    const endOff = u32le(b, e + 4);
    if (endOff < prevEnd) return undefined; // not a CHLO after all, or corrupt
    const from = valuesOff + prevEnd;
    const to = valuesOff + endOff;
    prevEnd = endOff;
    if (to > b.length) break; // the rest of the message is in a later packet
    if (tag === TAG_SNI) sni = asciiText(b, from, to);
    else if (tag === TAG_UAID) userAgent = asciiText(b, from, to);
    else if (tag === TAG_VER) version = asciiText(b, from, to);
  }
  const out: { sni?: string; userAgent?: string; version?: string; tagCount: number } = { tagCount: count };
  if (sni !== undefined) out.sni = sni;
  if (userAgent !== undefined) out.userAgent = userAgent;
  if (version !== undefined) out.version = version;
  return out;
}

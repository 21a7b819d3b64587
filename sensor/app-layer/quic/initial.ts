/**
 * App layer, QUIC: Initial packet protection removal (RFC 9001 §5, RFC 9369 §3.3) and Initial frames.
 * Input: a datagram and a parsed long header. Output: the unprotected header, packet number and
 * plaintext frames (PADDING, PING, ACK, CRYPTO, CONNECTION_CLOSE), and `CryptoStream`, which
 * reassembles CRYPTO data from several packets and datagrams, in any order, up to a fixed bound.
 * Keys come from the client's Destination Connection ID and a per-version salt. Never throws.
 */
import { createCipheriv, createDecipheriv, createHmac, type Cipher } from 'node:crypto';
import { decodePacketNumber, QUIC_DRAFT_29, QUIC_V1, QUIC_V2, readVarint, varintSize, type LongHeader } from './packet.js';

interface InitialParams {
  readonly salt: Buffer;
  readonly keyLabel: string;
  readonly ivLabel: string;
  readonly hpLabel: string;
}

/** RFC 9001 §5.2. */
const V1_PARAMS: InitialParams = {
  salt: Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex'),
  keyLabel: 'quic key',
  ivLabel: 'quic iv',
  hpLabel: 'quic hp',
};
/** RFC 9369 §3.3.1 (salt) and §3.3.2 (labels). */
const V2_PARAMS: InitialParams = {
  salt: Buffer.from('0dede3def700a6db819381be6e269dcbf9bd2ed9', 'hex'),
  keyLabel: 'quicv2 key',
  ivLabel: 'quicv2 iv',
  hpLabel: 'quicv2 hp',
};
/** draft-ietf-quic-tls-29 §5.2. */
const DRAFT29_PARAMS: InitialParams = { ...V1_PARAMS, salt: Buffer.from('afbfec289993d24c9e9786f19c6111e04390a899', 'hex') };

function initialParams(version: number): InitialParams | undefined {
  if (version === QUIC_V1) return V1_PARAMS;
  if (version === QUIC_V2) return V2_PARAMS;
  if (version === QUIC_DRAFT_29) return DRAFT29_PARAMS;
  return undefined;
}

/** Can Hark remove this version's Initial protection? */
export function isDecryptableVersion(version: number): boolean {
  return initialParams(version) !== undefined;
}

/** AEAD_AES_128_GCM (RFC 9001 §5.3): 16-byte key, 12-byte nonce, 16-byte tag; header protection samples 16 bytes. */
const KEY_LEN = 16;
const IV_LEN = 12;
const HP_LEN = 16;
export const AEAD_TAG_LEN = 16;
const HP_SAMPLE_LEN = 16;
/** RFC 9001 §5.4.2: the sample starts 4 bytes after the packet number's first byte. */
const HP_SAMPLE_OFFSET = 4;
const SHA256_LEN = 32;

/** RFC 5869 HKDF-Extract with SHA-256. */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Buffer {
  return createHmac('sha256', salt).update(ikm).digest();
}

/** RFC 8446 §7.1 HKDF-Expand-Label with an empty context, SHA-256 (RFC 9001 §5.1). */
export function hkdfExpandLabel(secret: Uint8Array, label: string, length: number): Buffer {
  const full = Buffer.from('tls13 ' + label, 'latin1');
  const info = Buffer.alloc(2 + 1 + full.length + 1);
  info.writeUInt16BE(length, 0);
  info[2] = full.length;
  full.copy(info, 3);
  info[3 + full.length] = 0; // context length
  const out = Buffer.alloc(length);
  let prev: Buffer = Buffer.alloc(0);
  for (let i = 0, done = 0; done < length; i++) {
    prev = createHmac('sha256', secret).update(prev).update(info).update(Buffer.from([i + 1])).digest();
    done += prev.copy(out, done);
  }
  return out;
}

export interface InitialSecrets {
  readonly initialSecret: Buffer;
  readonly client: Buffer;
  readonly server: Buffer;
}

/** RFC 9001 §5.2: initial_secret = HKDF-Extract(salt, client DCID), then "client in" / "server in". */
export function deriveInitialSecrets(version: number, dcid: Uint8Array): InitialSecrets | undefined {
  const params = initialParams(version);
  if (params === undefined) return undefined;
  const initialSecret = hkdfExtract(params.salt, dcid);
  return {
    initialSecret,
    client: hkdfExpandLabel(initialSecret, 'client in', SHA256_LEN),
    server: hkdfExpandLabel(initialSecret, 'server in', SHA256_LEN),
  };
}

export interface PacketKeys {
  readonly key: Buffer;
  readonly iv: Buffer;
  readonly hp: Buffer;
  /** AES-128-ECB with `hp`, kept for the header-protection mask (ECB is stateless per block). */
  readonly hpCipher: Cipher;
}

/** Packet protection keys from a traffic secret (RFC 9001 §5.1), with the version's labels. */
export function derivePacketKeys(version: number, secret: Uint8Array): PacketKeys | undefined {
  const params = initialParams(version);
  if (params === undefined) return undefined;
  const hp = hkdfExpandLabel(secret, params.hpLabel, HP_LEN);
  const hpCipher = createCipheriv('aes-128-ecb', hp, null);
  hpCipher.setAutoPadding(false);
  return { key: hkdfExpandLabel(secret, params.keyLabel, KEY_LEN), iv: hkdfExpandLabel(secret, params.ivLabel, IV_LEN), hp, hpCipher };
}

/** The Initial keys of one side, from the Destination Connection ID of the client's first Initial. */
export function initialKeys(version: number, dcid: Uint8Array, side: 'client' | 'server' = 'client'): PacketKeys | undefined {
  const params = initialParams(version);
  if (params === undefined) return undefined;
  const secret = hkdfExpandLabel(hkdfExtract(params.salt, dcid), side === 'client' ? 'client in' : 'server in', SHA256_LEN);
  return derivePacketKeys(version, secret);
}

/** RFC 9001 §5.4.1: mask = AES-ECB(hp, sample); five bytes are used. */
export function headerProtectionMask(keys: PacketKeys, sample: Uint8Array): Buffer {
  return keys.hpCipher.update(sample);
}

export type UnprotectError = 'too_short' | 'decrypt_failed' | 'reserved_bits';

export interface UnprotectedPacket {
  /** The header with protection removed: first byte and packet number in clear (a copy). */
  readonly header: Buffer;
  readonly pn: number;
  readonly pnLen: number;
  /** Decrypted frames. */
  readonly payload: Buffer;
}

/**
 * Removes header protection and decrypts one long-header packet (RFC 9001 §5.3, §5.4) without
 * touching `buf`. `largestPn`: largest packet number already decrypted in this space (-1 if none).
 * `reserved_bits` (RFC 9000 §17.2: must be zero after removal) is only reported after the AEAD
 * accepted the packet, so it is a real protocol violation and not noise from a wrong key.
 */
export function unprotectLongPacket(buf: Uint8Array, hdr: LongHeader, keys: PacketKeys, largestPn = -1): UnprotectedPacket | UnprotectError {
  const pnOff = hdr.pnOff;
  if (pnOff < 0 || pnOff + HP_SAMPLE_OFFSET + HP_SAMPLE_LEN > hdr.end) return 'too_short';
  const mask = headerProtectionMask(keys, buf.subarray(pnOff + HP_SAMPLE_OFFSET, pnOff + HP_SAMPLE_OFFSET + HP_SAMPLE_LEN));
  const first = buf[hdr.off] ^ (mask[0] & 0x0f); // long header: 4 protected bits
  const pnLen = (first & 0x03) + 1;
  const header = Buffer.from(buf.subarray(hdr.off, pnOff + pnLen));
  header[0] = first;
  let truncated = 0;
  for (let i = 0; i < pnLen; i++) {
    const b = buf[pnOff + i] ^ mask[1 + i];
    header[pnOff - hdr.off + i] = b;
    truncated = truncated * 256 + b;
  }
  const pn = decodePacketNumber(largestPn, truncated, pnLen * 8);
  const nonce = Buffer.from(keys.iv);
  // RFC 9001 §5.3: the packet number, left-padded to the IV length, XORed into the IV.
  let rest = pn;
  for (let i = IV_LEN - 1; i >= 0 && rest > 0; i--) {
    nonce[i] ^= rest % 256;
    rest = Math.floor(rest / 256);
  }
  const ctEnd = hdr.end - AEAD_TAG_LEN;
  try {
    const d = createDecipheriv('aes-128-gcm', keys.key, nonce);
    d.setAAD(header);
    d.setAuthTag(buf.subarray(ctEnd, hdr.end));
    const head = d.update(buf.subarray(pnOff + pnLen, ctEnd));
    const tail = d.final(); // throws when authentication fails
    const payload = tail.length === 0 ? head : Buffer.concat([head, tail]);
    if ((first & 0x0c) !== 0) return 'reserved_bits';
    return { header, pn, pnLen, payload };
  } catch {
    return 'decrypt_failed';
  }
}

// ---------------------------------------------------------------------------------------------
// Frames (RFC 9000 §19) allowed in Initial packets (§12.4 Table 3)

export const FRAME_PADDING = 0x00;
export const FRAME_PING = 0x01;
export const FRAME_ACK = 0x02;
export const FRAME_ACK_ECN = 0x03;
export const FRAME_CRYPTO = 0x06;
export const FRAME_CONNECTION_CLOSE = 0x1c;

/** ACK ranges read per frame; the rest are skipped over (a valid ACK frame may carry many). */
export const MAX_ACK_RANGES_KEPT = 32;
/** CONNECTION_CLOSE reason bytes kept. */
export const MAX_CLOSE_REASON_BYTES = 256;

export interface CryptoFrame {
  readonly offset: number;
  /** View into the decrypted payload. */
  readonly data: Uint8Array;
}

export interface AckFrame {
  readonly largest: number;
  readonly delay: number;
  readonly firstRange: number;
  /** [gap, length] pairs, at most MAX_ACK_RANGES_KEPT. */
  readonly ranges: readonly (readonly [number, number])[];
  readonly ecn?: readonly [number, number, number];
}

export interface CloseFrame {
  readonly errorCode: number;
  readonly frameType: number;
  readonly reason: string;
}

export interface InitialFrames {
  readonly crypto: CryptoFrame[];
  readonly acks: AckFrame[];
  readonly closes: CloseFrame[];
  readonly pings: number;
  readonly paddingBytes: number;
}

export type FrameError = 'frame_truncated' | 'frame_not_allowed';

/**
 * Parses the frames of a decrypted Initial payload. Any frame type not allowed in Initial packets
 * (RFC 9000 §12.4) or a frame cut short is an error: the whole packet is then unreliable.
 */
export function parseInitialFrames(payload: Uint8Array): InitialFrames | FrameError {
  const crypto: CryptoFrame[] = [];
  const acks: AckFrame[] = [];
  const closes: CloseFrame[] = [];
  const end = payload.length;
  let p = 0;
  let padding = 0;
  let pings = 0;
  while (p < end) {
    const type = readVarint(payload, p, end);
    if (type < 0) return 'frame_truncated';
    p += varintSize(payload[p]);
    switch (type) {
      case FRAME_PADDING: {
        const start = p - 1;
        while (p < end && payload[p] === 0) p++;
        padding += p - start;
        break;
      }
      case FRAME_PING:
        pings++;
        break;
      case FRAME_ACK:
      case FRAME_ACK_ECN: {
        const largest = readVarint(payload, p, end);
        if (largest < 0) return 'frame_truncated';
        p += varintSize(payload[p]);
        const delay = readVarint(payload, p, end);
        if (delay < 0) return 'frame_truncated';
        p += varintSize(payload[p]);
        const count = readVarint(payload, p, end);
        if (count < 0) return 'frame_truncated';
        p += varintSize(payload[p]);
        const firstRange = readVarint(payload, p, end);
        if (firstRange < 0) return 'frame_truncated';
        p += varintSize(payload[p]);
        const ranges: [number, number][] = [];
        // Each range is two varints of at least a byte: a count beyond the bytes left is a truncation.
        if (count > (end - p) / 2) return 'frame_truncated';
        for (let i = 0; i < count; i++) {
          const gap = readVarint(payload, p, end);
          if (gap < 0) return 'frame_truncated';
          p += varintSize(payload[p]);
          const len = readVarint(payload, p, end);
          if (len < 0) return 'frame_truncated';
          p += varintSize(payload[p]);
          if (ranges.length < MAX_ACK_RANGES_KEPT) ranges.push([gap, len]);
        }
        let ecn: [number, number, number] | undefined;
        if (type === FRAME_ACK_ECN) {
          const e: number[] = [];
          for (let i = 0; i < 3; i++) {
            const v = readVarint(payload, p, end);
            if (v < 0) return 'frame_truncated';
            p += varintSize(payload[p]);
            e.push(v);
          }
          ecn = [e[0], e[1], e[2]];
        }
        acks.push(ecn === undefined ? { largest, delay, firstRange, ranges } : { largest, delay, firstRange, ranges, ecn });
        break;
      }
      case FRAME_CRYPTO: {
        const offset = readVarint(payload, p, end);
        if (offset < 0) return 'frame_truncated';
        p += varintSize(payload[p]);
        const len = readVarint(payload, p, end);
        if (len < 0) return 'frame_truncated';
        p += varintSize(payload[p]);
        if (len > end - p) return 'frame_truncated';
        crypto.push({ offset, data: payload.subarray(p, p + len) });
        p += len;
        break;
      }
      case FRAME_CONNECTION_CLOSE: {
        const errorCode = readVarint(payload, p, end);
        if (errorCode < 0) return 'frame_truncated';
        p += varintSize(payload[p]);
        const frameType = readVarint(payload, p, end);
        if (frameType < 0) return 'frame_truncated';
        p += varintSize(payload[p]);
        const len = readVarint(payload, p, end);
        if (len < 0) return 'frame_truncated';
        p += varintSize(payload[p]);
        if (len > end - p) return 'frame_truncated';
        const keep = Math.min(len, MAX_CLOSE_REASON_BYTES);
        closes.push({ errorCode, frameType, reason: Buffer.from(payload.buffer, payload.byteOffset + p, keep).toString('utf8') });
        p += len;
        break;
      }
      default:
        return 'frame_not_allowed';
    }
  }
  return { crypto, acks, closes, pings, paddingBytes: padding };
}

// ---------------------------------------------------------------------------------------------
// CRYPTO stream reassembly

/**
 * CRYPTO bytes kept per connection: a ClientHello is ~300 B to ~2 KiB (Chrome with an ML-KEM key
 * share ~1.8 KiB, large PSK tickets and ECH a few KiB more); 64 KiB holds any real one while bounding
 * what a peer can make Hark buffer (TLS allows 2^24-byte messages).
 */
export const MAX_CRYPTO_STREAM_BYTES = 64 * 1024;
/** Disjoint received ranges kept per stream: Chrome's CRYPTO-frame shuffling makes a handful. */
export const MAX_CRYPTO_RANGES = 64;
/** First buffer size: most ClientHellos fit without regrowing. */
const INITIAL_CRYPTO_BUFFER = 2048;

/** Shared byte budget across streams (the tracker's memcap); `used` is what buffers hold now. */
export class CryptoBudget {
  used = 0;
  constructor(readonly limit: number) {}
}

export type CryptoAddResult = 'ok' | 'beyond_limit' | 'too_fragmented' | 'memcap';

/** TLS HandshakeType client_hello (RFC 8446 §4). */
const HS_CLIENT_HELLO = 1;
const HS_HEADER_LEN = 4;

/**
 * One direction's CRYPTO stream at one encryption level, from offset 0. Overlapping data keeps what
 * arrived first (RFC 9000 §19.6 requires retransmissions to be identical). Bounded by
 * MAX_CRYPTO_STREAM_BYTES and MAX_CRYPTO_RANGES, and by the shared budget.
 */
export class CryptoStream {
  private buf = new Uint8Array(0);
  /** Sorted, disjoint, non-adjacent [start, end) pairs, flattened. */
  private readonly ranges: number[] = [];

  constructor(private readonly budget?: CryptoBudget) {}

  /** Bytes available from offset 0 without a hole. */
  get contiguous(): number {
    return this.ranges.length > 0 && this.ranges[0] === 0 ? this.ranges[1] : 0;
  }

  /** Bytes of buffer held (counted against the budget). */
  get allocated(): number {
    return this.buf.length;
  }

  add(offset: number, data: Uint8Array): CryptoAddResult {
    const end = offset + data.length;
    if (end > MAX_CRYPTO_STREAM_BYTES) return 'beyond_limit';
    if (data.length === 0) return 'ok';
    // Ranges [i, j) touch or overlap [offset, end) and merge with it into one.
    const r = this.ranges;
    let i = 0;
    while (i < r.length && r[i + 1] < offset) i += 2;
    let j = i;
    while (j < r.length && r[j] <= end) j += 2;
    if (j === i && r.length >= 2 * MAX_CRYPTO_RANGES) return 'too_fragmented';
    if (end > this.buf.length) {
      const size = Math.min(MAX_CRYPTO_STREAM_BYTES, Math.max(end, this.buf.length * 2, INITIAL_CRYPTO_BUFFER));
      if (this.budget !== undefined && this.budget.used + size - this.buf.length > this.budget.limit) return 'memcap';
      const next = new Uint8Array(size);
      next.set(this.buf);
      if (this.budget !== undefined) this.budget.used += size - this.buf.length;
      this.buf = next;
    }
    // Copy only the parts no earlier range covers.
    let at = offset;
    for (let k = i; k < j && at < end; k += 2) {
      if (r[k] > at) this.buf.set(data.subarray(at - offset, Math.min(r[k], end) - offset), at);
      at = Math.max(at, r[k + 1]);
    }
    if (at < end) this.buf.set(data.subarray(at - offset), at);
    const s = j > i ? Math.min(offset, r[i]) : offset;
    const e = j > i ? Math.max(end, r[j - 1]) : end;
    r.splice(i, j - i, s, e);
    return 'ok';
  }

  /** The contiguous bytes from offset 0 (a view). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.contiguous);
  }

  /**
   * The first handshake message when complete: `undefined` while incomplete, `not_client_hello` when
   * it is another message, `beyond_limit` when its declared length cannot fit the bound. The body is
   * a view (after the 4-byte handshake header).
   */
  clientHelloBody(): Uint8Array | undefined | 'not_client_hello' | 'beyond_limit' {
    const have = this.contiguous;
    if (have < 1) return undefined;
    if (this.buf[0] !== HS_CLIENT_HELLO) return 'not_client_hello';
    if (have < HS_HEADER_LEN) return undefined;
    const len = (this.buf[1] << 16) | (this.buf[2] << 8) | this.buf[3];
    if (HS_HEADER_LEN + len > MAX_CRYPTO_STREAM_BYTES) return 'beyond_limit';
    if (have < HS_HEADER_LEN + len) return undefined;
    return this.buf.subarray(HS_HEADER_LEN, HS_HEADER_LEN + len);
  }

  /** Frees the buffer and returns its bytes to the budget. */
  release(): void {
    if (this.budget !== undefined) this.budget.used -= this.buf.length;
    this.buf = new Uint8Array(0);
    this.ranges.length = 0;
  }
}

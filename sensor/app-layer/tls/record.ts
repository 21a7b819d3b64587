/**
 * App layer, TLS: record layer over ONE direction of a reassembled TCP stream, and the TLS protocol probe.
 * Input: in-order stream bytes cut anywhere (`push`). Output: one `TlsRecord` per complete record, in stream
 * order, through a callback; `push` says ok / invalid (STYLE §4). A record inside one push is handed out as a
 * view (no copy); only a record spanning pushes is copied, into a buffer held just while it is incomplete and
 * grown with the bytes received (not allocated at the length the header announces).
 * Unknown content type, bad version or an oversize length disables the reader ('invalid' + anomaly).
 */

import { Counters, defineAnomaly, defineCounter } from '../../events/counters.js';
import { PartialMessage } from '../partial-buffer.js';

export type ProbeResult = 'match' | 'no-match' | 'need-more';

/** ContentType (RFC 8446 §5.1, RFC 5246 §6.2.1, heartbeat RFC 6520 §3). */
export const CONTENT_TYPE_CHANGE_CIPHER_SPEC = 20;
export const CONTENT_TYPE_ALERT = 21;
export const CONTENT_TYPE_HANDSHAKE = 22;
export const CONTENT_TYPE_APPLICATION_DATA = 23;
export const CONTENT_TYPE_HEARTBEAT = 24;
/**
 * Not a wire value: the type given to an SSLv2-compatible ClientHello (RFC 5246 Appendix E.2), which has a
 * 2-byte header instead of a record header. Its `fragment` starts at msg_type (1); parse it with
 * `parseSsl2ClientHello` (handshake.ts). Outside the byte range so it never collides with a real type.
 */
export const CONTENT_TYPE_SSL2_CLIENT_HELLO = 0x100;

/** TLSPlaintext / TLSCiphertext header: type(1) version(2) length(2). */
export const RECORD_HEADER_BYTES = 5;
/** RFC 5246 §6.2.1 / RFC 8446 §5.1: a plaintext fragment holds at most 2^14 bytes. */
export const MAX_PLAINTEXT_BYTES = 1 << 14;
/**
 * Longest record length accepted: RFC 5246 §6.2.3 allows TLSCiphertext up to 2^14 + 2048 (RFC 8446 §5.2
 * lowers it to 2^14 + 256 for TLS 1.3); the larger bound admits every version. Longer is not TLS.
 */
export const MAX_RECORD_PAYLOAD_BYTES = (1 << 14) + 2048;
/** SSLv2-compatible ClientHello: 2-byte header with the high bit set; its length is 15 bits (RFC 5246 E.2). */
const SSL2_HEADER_BYTES = 2;
/** msg_type(1) version(2) cipher_spec_length(2) session_id_length(2) challenge_length(2). */
const SSL2_FIXED_BYTES = 9;
/** SSLv2 challenge: 16..32 bytes (RFC 5246 E.2; it becomes the right end of the 32-byte client random). */
const SSL2_MIN_CHALLENGE = 16;
const SSL2_MAX_CHALLENGE = 32;
/** Shortest ClientHello body: version(2) random(32) session_id<0>(1) one suite(2+2) one compression(1+1). */
export const MIN_CLIENT_HELLO_BODY_BYTES = 41;
/** Shortest ServerHello body: version(2) random(32) session_id<0>(1) suite(2) compression(1). Drafts of TLS 1.3
 * before -22 dropped session_id and compression: version(2) random(32) suite(2) extensions(2). */
export const MIN_SERVER_HELLO_BODY_BYTES = 38;
/** The probe rejects a hello longer than this: ClientHello fields are bounded by their u8/u16 length prefixes
 * (2 + 32 + 33 + 2^16 + 256 + 2^16 < 2^17 + 512). */
const PROBE_MAX_HELLO_BYTES = (1 << 17) + 512;
/** Bytes the probe needs: record header(5) + handshake header(4) + hello version(2). */
const PROBE_DECISION_BYTES = 11;

export const A_INVALID_RECORD_TYPE = defineAnomaly('tls.invalid_record_type');
export const A_INVALID_RECORD_VERSION = defineAnomaly('tls.invalid_record_version');
export const A_INVALID_RECORD_LENGTH = defineAnomaly('tls.invalid_record_length');
export const A_INVALID_SSLV2_HEADER = defineAnomaly('tls.invalid_sslv2_header');
const C_RECORDS = defineCounter('tls.records');
const C_RECORDS_SPANNING = defineCounter('tls.records_spanning_pushes');
const C_SSL2_HELLO = defineCounter('tls.sslv2_client_hello');

/**
 * One TLS record. LIFETIME: `header` and `fragment` are valid only during the `out` callback that receives
 * the record: they are views into the pushed bytes (themselves a reused buffer upstream) or arrays the
 * reader reuses for the next record. Copy (`.slice()`; both are plain Uint8Arrays) anything kept.
 */
export interface TlsRecord {
  /** ContentType byte, or CONTENT_TYPE_SSL2_CLIENT_HELLO. */
  readonly type: number;
  /** legacy_record_version (e.g. 0x0303); for the SSLv2 hello, the version inside the hello. */
  readonly version: number;
  /** The 5 header bytes as on the wire (additional data for AEAD); the 2-byte header for the SSLv2 hello. */
  readonly header: Uint8Array;
  /** The record's payload (ciphertext once encryption is on). */
  readonly fragment: Uint8Array;
  /** Time of the packet that completed the record. */
  readonly tsUs: number;
}

/** Reader states: at a record boundary or inside a header; header read, payload incomplete; given up. */
const ST_HEADER = 0;
const ST_BODY = 1;
const ST_INVALID = 2;

function validType(t: number): boolean {
  return t >= CONTENT_TYPE_CHANGE_CIPHER_SPEC && t <= CONTENT_TYPE_HEARTBEAT;
}

/** SSL 3.0 (0x0300) .. TLS 1.3 (0x0304). Every TLS 1.3 record says 0x0303 or 0x0301 (RFC 8446 §5.1). */
function validVersion(major: number, minor: number): boolean {
  return major === 3 && minor <= 4;
}

/**
 * Splits one direction's byte stream into TLS records: the caller pushes bytes in stream order and receives
 * the records they complete synchronously, from inside `push`. Holds at most one incomplete record.
 */
export class TlsRecordReader {
  private state: number = ST_HEADER;
  /** Header bytes of a record whose header spans pushes (also the SSLv2 header). */
  private readonly head = new Uint8Array(RECORD_HEADER_BYTES);
  /** The header handed out with a record that sat inside one push. */
  private readonly outHead = new Uint8Array(RECORD_HEADER_BYTES);
  private headFill = 0;
  /** Payload of a record spanning pushes, grown as it arrives (charged to app_layer.memuse); dropped when no
   * record is pending at the end of a push. */
  private readonly body: PartialMessage;
  private type = 0;
  private version = 0;
  /** No byte seen yet: only here may an SSLv2-compatible ClientHello start. */
  private atStart = true;
  private sslv2 = false;

  constructor(private readonly counters: Counters) {
    this.body = new PartialMessage(counters);
  }

  /**
   * Feeds the next stream bytes; calls `out` for every record they complete. 'invalid' once the stream is
   * not TLS records (counted once); every later push then returns 'invalid' without looking at bytes.
   */
  push(bytes: Uint8Array, tsUs: number, out: (rec: TlsRecord) => void): 'ok' | 'invalid' {
    if (this.state === ST_INVALID) return 'invalid';
    const n = bytes.length;
    let off = 0;
    if (this.atStart && n > 0) {
      this.atStart = false;
      if ((bytes[0] & 0x80) !== 0) this.sslv2 = true;
    }
    while (off < n) {
      if (this.state === ST_BODY) {
        // Grown with what arrives, not to the length the header announces.
        off += this.body.append(bytes, off, n);
        if (!this.body.complete) break;
        this.state = ST_HEADER;
        if (!this.emitHeld(tsUs, out)) return this.fail(A_INVALID_SSLV2_HEADER);
        continue;
      }
      if (this.headFill === 0 && !this.sslv2 && n - off >= RECORD_HEADER_BYTES) {
        // Fast path: the header is in this push.
        const type = bytes[off];
        const len = (bytes[off + 3] << 8) | bytes[off + 4];
        const bad = this.checkHeader(type, bytes[off + 1], bytes[off + 2], len);
        if (bad >= 0) return this.fail(bad);
        const end = off + RECORD_HEADER_BYTES + len;
        if (end <= n) {
          this.counters.inc(C_RECORDS);
          // The header is copied into a reused 5-byte array (cheaper than a second view); the fragment is a
          // plain Uint8Array view whatever the input's class: cheaper than `subarray` (no species lookup),
          // and `.slice()` on it copies (Buffer#slice would not).
          const h = this.outHead;
          h[0] = type;
          h[1] = bytes[off + 1];
          h[2] = bytes[off + 2];
          h[3] = bytes[off + 3];
          h[4] = bytes[off + 4];
          out({
            type, version: (h[1] << 8) | h[2], header: h,
            fragment: new Uint8Array(bytes.buffer, bytes.byteOffset + off + RECORD_HEADER_BYTES, len),
            tsUs,
          });
          off = end;
          continue;
        }
        this.head.set(bytes.subarray(off, off + RECORD_HEADER_BYTES));
        this.headFill = RECORD_HEADER_BYTES;
        this.beginBody(type, (bytes[off + 1] << 8) | bytes[off + 2], len);
        off += RECORD_HEADER_BYTES;
        continue;
      }
      // Slow path: the header spans pushes (or it is the 2-byte SSLv2 header).
      const want = this.sslv2 ? SSL2_HEADER_BYTES : RECORD_HEADER_BYTES;
      const take = Math.min(want - this.headFill, n - off);
      this.head.set(bytes.subarray(off, off + take), this.headFill);
      this.headFill += take;
      off += take;
      if (this.headFill < want) {
        // Judge what is there already: a bad type or version should not wait for the rest of the header.
        const bad = this.sslv2 ? -1 : this.checkPartialHeader();
        if (bad >= 0) return this.fail(bad);
        break;
      }
      if (this.sslv2) {
        const len = ((this.head[0] & 0x7f) << 8) | this.head[1];
        if (len < SSL2_FIXED_BYTES + 3 + SSL2_MIN_CHALLENGE || len > MAX_RECORD_PAYLOAD_BYTES) {
          return this.fail(A_INVALID_SSLV2_HEADER);
        }
        this.beginBody(CONTENT_TYPE_SSL2_CLIENT_HELLO, 0, len);
        continue;
      }
      const type = this.head[0];
      const len = (this.head[3] << 8) | this.head[4];
      const bad = this.checkHeader(type, this.head[1], this.head[2], len);
      if (bad >= 0) return this.fail(bad);
      this.beginBody(type, (this.head[1] << 8) | this.head[2], len);
      if (len === 0) {
        this.state = ST_HEADER;
        this.emitHeld(tsUs, out);
      }
    }
    if (this.state === ST_HEADER && this.headFill === 0) this.body.reset();
    return 'ok';
  }

  /** Bytes held for a record not yet complete (header and payload). */
  pendingBytes(): number {
    return this.state === ST_BODY ? this.headFill + this.body.length : this.headFill;
  }

  /** Bytes of buffer held for the payload of a record spanning pushes (at most twice what arrived of it). */
  heldBytes(): number {
    return this.body.heldBytes;
  }

  /** Forgets any partial record and the invalid state (e.g. a session restarting after a gap at a known
   * record boundary; or the flow ended): the buffer is let go. An SSLv2 hello is only recognised at the
   * very start, never after a reset. */
  reset(): void {
    this.state = ST_HEADER;
    this.headFill = 0;
    this.body.reset();
    this.sslv2 = false;
    this.atStart = false;
  }

  /** -1 when the header is acceptable, else the anomaly id that rejects it. */
  private checkHeader(type: number, major: number, minor: number, len: number): number {
    if (!validType(type)) return A_INVALID_RECORD_TYPE;
    if (!validVersion(major, minor)) return A_INVALID_RECORD_VERSION;
    if (len > MAX_RECORD_PAYLOAD_BYTES) return A_INVALID_RECORD_LENGTH;
    return -1;
  }

  /** checkHeader on the first `headFill` (< 5) header bytes. */
  private checkPartialHeader(): number {
    const h = this.head;
    if (!validType(h[0])) return A_INVALID_RECORD_TYPE;
    if (this.headFill > 1 && h[1] !== 3) return A_INVALID_RECORD_VERSION;
    if (this.headFill > 2 && !validVersion(h[1], h[2])) return A_INVALID_RECORD_VERSION;
    return -1;
  }

  /** The payload buffer is grown as the bytes arrive (a record spanning pushes reuses the one held). */
  private beginBody(type: number, version: number, len: number): void {
    this.type = type;
    this.version = version;
    this.body.begin(len);
    this.state = ST_BODY;
  }

  /** Emits the record held in `head` + `body`; false when it is an SSLv2 hello that is not a ClientHello. */
  private emitHeld(tsUs: number, out: (rec: TlsRecord) => void): boolean {
    // kept (and charged) for a next record spanning pushes; let go at the end of the push if none comes
    const fragment = this.body.finish(Infinity);
    const headerLen = this.headFill;
    this.headFill = 0;
    let version = this.version;
    if (this.type === CONTENT_TYPE_SSL2_CLIENT_HELLO) {
      this.sslv2 = false;
      // msg_type CLIENT-HELLO (1), then a 3.x version: SSL 2.0 itself (0x0002) is not decoded.
      if (fragment[0] !== 1 || !validVersion(fragment[1], fragment[2]) || fragment[2] > 3) return false;
      version = (fragment[1] << 8) | fragment[2];
      this.counters.inc(C_SSL2_HELLO);
    } else if (headerLen === RECORD_HEADER_BYTES) {
      this.counters.inc(C_RECORDS_SPANNING);
    }
    this.counters.inc(C_RECORDS);
    const header = headerLen === RECORD_HEADER_BYTES ? this.head : this.head.subarray(0, headerLen);
    out({ type: this.type, version, header, fragment, tsUs });
    return true;
  }

  private fail(anomaly: number): 'invalid' {
    this.counters.inc(anomaly);
    this.state = ST_INVALID;
    this.body.reset();
    this.headFill = 0;
    return 'invalid';
  }
}

/**
 * Does this direction start with a TLS hello? Direction 0: a handshake record (0x16 0x03 0x00..0x04, length
 * 4..2^14) whose first message is a ClientHello of plausible length with a 3.x version, or an
 * SSLv2-compatible ClientHello. Direction 1: the same with a ServerHello (version 3.x, or 0x7fNN of a TLS 1.3
 * draft). Decides after at most 11 bytes; 'need-more' only while every byte so far fits.
 */
export function probeTls(dir: 0 | 1, bytes: Uint8Array): ProbeResult {
  const n = bytes.length;
  if (n === 0) return 'need-more';
  if (bytes[0] === CONTENT_TYPE_HANDSHAKE) return probeHandshakeRecord(dir, bytes);
  if (dir === 0 && (bytes[0] & 0x80) !== 0) return probeSsl2ClientHello(bytes);
  return 'no-match';
}

function probeHandshakeRecord(dir: 0 | 1, bytes: Uint8Array): ProbeResult {
  const n = Math.min(bytes.length, PROBE_DECISION_BYTES);
  if (n > 1 && bytes[1] !== 3) return 'no-match';
  if (n > 2 && bytes[2] > 4) return 'no-match';
  if (n > 4) {
    const recLen = (bytes[3] << 8) | bytes[4];
    if (recLen < 4 || recLen > MAX_PLAINTEXT_BYTES) return 'no-match';
  }
  if (n > 5 && bytes[5] !== (dir === 0 ? 1 : 2)) return 'no-match';
  if (n > 8) {
    const hsLen = (bytes[6] << 16) | (bytes[7] << 8) | bytes[8];
    const min = dir === 0 ? MIN_CLIENT_HELLO_BODY_BYTES : MIN_SERVER_HELLO_BODY_BYTES;
    if (hsLen < min || hsLen > PROBE_MAX_HELLO_BYTES) return 'no-match';
  }
  if (n > 9) {
    const draft = dir === 1 && bytes[9] === 0x7f; // TLS 1.3 drafts put 0x7fNN in ServerHello.version
    if (bytes[9] !== 3 && !draft) return 'no-match';
    if (n > 10 && !draft && bytes[10] > 4) return 'no-match';
  }
  return n >= PROBE_DECISION_BYTES ? 'match' : 'need-more';
}

/** RFC 5246 E.2 layout: length(2, high bit set) msg_type(1)=1 version(2)=3.x cipher_spec_length(2, a multiple
 * of 3) session_id_length(2)=0|16 challenge_length(2)=16..32, and the lengths add up to the record length. */
function probeSsl2ClientHello(bytes: Uint8Array): ProbeResult {
  const n = Math.min(bytes.length, PROBE_DECISION_BYTES);
  if (n > 2 && bytes[2] !== 1) return 'no-match';
  if (n > 3 && bytes[3] !== 3) return 'no-match';
  if (n > 4 && bytes[4] > 3) return 'no-match';
  if (n > 6) {
    const cs = (bytes[5] << 8) | bytes[6];
    if (cs === 0 || cs % 3 !== 0) return 'no-match';
  }
  if (n > 8) {
    const sid = (bytes[7] << 8) | bytes[8];
    if (sid !== 0 && sid !== 16) return 'no-match';
  }
  if (n < PROBE_DECISION_BYTES) return 'need-more';
  const chal = (bytes[9] << 8) | bytes[10];
  if (chal < SSL2_MIN_CHALLENGE || chal > SSL2_MAX_CHALLENGE) return 'no-match';
  const len = ((bytes[0] & 0x7f) << 8) | bytes[1];
  const need = SSL2_FIXED_BYTES + ((bytes[5] << 8) | bytes[6]) + ((bytes[7] << 8) | bytes[8]) + chal;
  return len === need ? 'match' : 'no-match';
}

/** Record headers in a row that a stream picked up midstream must show before it is taken for TLS. */
export const RESYNC_RECORDS = 3;

/**
 * Where TLS records start in a stream picked up midstream (the sensor started on a busy link, or
 * the capture lost the connection's first packets): ciphertext has no marker to look for, but its
 * record headers (content type 20-24, version 3.0-3.4, a length up to 2^14 + 2048) follow one
 * another at the lengths they give. A header-shaped run of five bytes starts a chain, followed
 * from header to header; RESYNC_RECORDS headers in a row, all with the same version, make the
 * stream TLS from the next header on. A broken chain starts the search again where it broke.
 * In random bytes a header shape occurs about once in 2.4 million positions, so a false chain of
 * three needs about 2^-68 luck. Shown the stream's bytes in order (`next`), cut anywhere.
 */
export class TlsStartTracker {
  /** Bytes of the current record's body still to go by (following a chain). */
  private skip = 0;
  /** Headers in the chain so far (0: searching). */
  private chain = 0;
  private minor = -1;
  /** Searching: the last bytes of the previous chunk (fewer than a header). Following: a header cut between chunks. */
  private readonly head = new Uint8Array(2 * RECORD_HEADER_BYTES);
  private headLen = 0;

  /** The offset in `bytes` where a record starts that RESYNC_RECORDS records before it vouch for, or -1. */
  next(bytes: Uint8Array): number {
    const n = bytes.length;
    let i = 0;
    while (i < n) {
      if (this.skip > 0) {
        const k = Math.min(this.skip, n - i);
        this.skip -= k;
        i += k;
      } else if (this.chain >= RESYNC_RECORDS) {
        return i;
      } else if (this.chain === 0) {
        i = this.search(bytes, i);
        if (i < 0) return -1;
      } else {
        const head = this.head;
        while (this.headLen < RECORD_HEADER_BYTES && i < n) head[this.headLen++] = bytes[i++];
        if (this.headLen < RECORD_HEADER_BYTES) return -1;
        this.headLen = 0;
        const len = headerShape(head, 0, this.minor);
        if (len >= 0) {
          this.chain++;
          this.skip = len;
        } else {
          // not the header the chain promised: search again from here
          this.chain = 0;
          this.minor = -1;
        }
      }
    }
    return -1;
  }

  /**
   * Searching from bytes[i] (after the bytes kept from the last chunk): starts a chain at the first
   * header shape and returns the offset just past it, or returns -1 and keeps the last bytes.
   */
  private search(bytes: Uint8Array, i: number): number {
    const n = bytes.length;
    const head = this.head;
    const carried = this.headLen;
    if (carried > 0) {
      // shapes that begin in the kept bytes, completed by this chunk's first ones
      const m = Math.min(n - i, RECORD_HEADER_BYTES - 1);
      for (let k = 0; k < m; k++) head[carried + k] = bytes[i + k];
      const have = carried + m;
      this.headLen = 0;
      for (let p = 0; p < carried; p++) {
        if (p + RECORD_HEADER_BYTES > have) {
          head.copyWithin(0, p, have);
          this.headLen = have - p;
          return -1;
        }
        const len = headerShape(head, p, -1);
        if (len >= 0) return this.started(head[p + 2], len, i + p + RECORD_HEADER_BYTES - carried);
      }
    }
    for (let j = i; j + RECORD_HEADER_BYTES <= n; j++) {
      if (bytes[j + 1] !== 3) continue; // the major version, first: most positions stop here
      const len = headerShape(bytes, j, -1);
      if (len >= 0) return this.started(bytes[j + 2], len, j + RECORD_HEADER_BYTES);
    }
    const keep = Math.min(RECORD_HEADER_BYTES - 1, n - i);
    head.set(bytes.subarray(n - keep, n), 0);
    this.headLen = keep;
    return -1;
  }

  private started(minor: number, len: number, after: number): number {
    this.chain = 1;
    this.minor = minor;
    this.skip = len;
    return after;
  }
}

/**
 * The length a record header at b[o] gives when its five bytes are one TlsRecordReader would take
 * (and its version is 3.`minor` unless minor < 0), else -1.
 */
function headerShape(b: Uint8Array, o: number, minor: number): number {
  if (!validType(b[o]) || !validVersion(b[o + 1], b[o + 2])) return -1;
  if (minor >= 0 && b[o + 2] !== minor) return -1;
  const len = (b[o + 3] << 8) | b[o + 4];
  return len <= MAX_RECORD_PAYLOAD_BYTES ? len : -1;
}

/** An alert record's payload (RFC 8446 §6): level 1 warning / 2 fatal, and the description code. */
export interface TlsAlert {
  readonly level: number;
  readonly description: number;
}

/** A plaintext alert, or undefined when the payload is not exactly two bytes (e.g. an encrypted alert). */
export function parseAlert(fragment: Uint8Array): TlsAlert | undefined {
  if (fragment.length !== 2) return undefined;
  return { level: fragment[0], description: fragment[1] };
}

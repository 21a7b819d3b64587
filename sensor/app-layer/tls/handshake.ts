/**
 * App layer, TLS: handshake messages, without keys. `HandshakeReassembler` turns the plaintext payloads of
 * one direction's handshake records (cut anywhere) into whole messages, each an owned copy with its 4-byte
 * header (for transcript hashes). Pure parsers turn message bodies into small readonly structs, or undefined
 * plus a dotted anomaly; they never throw on bytes. Byte arrays inside a parsed struct are views into the body.
 */

import { Counters, defineAnomaly, defineCounter } from '../../events/counters.js';
import { PartialMessage } from '../partial-buffer.js';

/** HandshakeType (RFC 8446 §4, RFC 5246 §7.4, RFC 6066, RFC 4680, RFC 8879; next_protocol from NPN). */
export const HS_HELLO_REQUEST = 0;
export const HS_CLIENT_HELLO = 1;
export const HS_SERVER_HELLO = 2;
export const HS_HELLO_VERIFY_REQUEST = 3;
export const HS_NEW_SESSION_TICKET = 4;
export const HS_END_OF_EARLY_DATA = 5;
export const HS_HELLO_RETRY_REQUEST = 6; // TLS 1.3 drafts only; RFC 8446 uses a ServerHello
export const HS_ENCRYPTED_EXTENSIONS = 8;
export const HS_CERTIFICATE = 11;
export const HS_SERVER_KEY_EXCHANGE = 12;
export const HS_CERTIFICATE_REQUEST = 13;
export const HS_SERVER_HELLO_DONE = 14;
export const HS_CERTIFICATE_VERIFY = 15;
export const HS_CLIENT_KEY_EXCHANGE = 16;
export const HS_FINISHED = 20;
export const HS_CERTIFICATE_URL = 21;
export const HS_CERTIFICATE_STATUS = 22;
export const HS_SUPPLEMENTAL_DATA = 23;
export const HS_KEY_UPDATE = 24;
export const HS_COMPRESSED_CERTIFICATE = 25;
export const HS_EKT_KEY = 26;
export const HS_NEXT_PROTOCOL = 67;
export const HS_MESSAGE_HASH = 254;

const KNOWN_HANDSHAKE_TYPES: readonly number[] = [
  HS_HELLO_REQUEST, HS_CLIENT_HELLO, HS_SERVER_HELLO, HS_HELLO_VERIFY_REQUEST, HS_NEW_SESSION_TICKET,
  HS_END_OF_EARLY_DATA, HS_HELLO_RETRY_REQUEST, HS_ENCRYPTED_EXTENSIONS, HS_CERTIFICATE, HS_SERVER_KEY_EXCHANGE,
  HS_CERTIFICATE_REQUEST, HS_SERVER_HELLO_DONE, HS_CERTIFICATE_VERIFY, HS_CLIENT_KEY_EXCHANGE, HS_FINISHED,
  HS_CERTIFICATE_URL, HS_CERTIFICATE_STATUS, HS_SUPPLEMENTAL_DATA, HS_KEY_UPDATE, HS_COMPRESSED_CERTIFICATE,
  HS_EKT_KEY, HS_NEXT_PROTOCOL, HS_MESSAGE_HASH,
];
const knownHandshakeType = new Uint8Array(256);
for (const t of KNOWN_HANDSHAKE_TYPES) knownHandshakeType[t] = 1;

/** ExtensionType (IANA TLS ExtensionType Values registry). */
export const EXT_SERVER_NAME = 0;
export const EXT_MAX_FRAGMENT_LENGTH = 1;
export const EXT_STATUS_REQUEST = 5;
export const EXT_SUPPORTED_GROUPS = 10;
export const EXT_EC_POINT_FORMATS = 11;
export const EXT_SIGNATURE_ALGORITHMS = 13;
export const EXT_USE_SRTP = 14;
export const EXT_HEARTBEAT = 15;
export const EXT_ALPN = 16;
export const EXT_SIGNED_CERTIFICATE_TIMESTAMP = 18;
export const EXT_PADDING = 21;
export const EXT_ENCRYPT_THEN_MAC = 22;
export const EXT_EXTENDED_MASTER_SECRET = 23;
export const EXT_COMPRESS_CERTIFICATE = 27;
export const EXT_RECORD_SIZE_LIMIT = 28;
export const EXT_SESSION_TICKET = 35;
export const EXT_PRE_SHARED_KEY = 41;
export const EXT_EARLY_DATA = 42;
export const EXT_SUPPORTED_VERSIONS = 43;
export const EXT_COOKIE = 44;
export const EXT_PSK_KEY_EXCHANGE_MODES = 45;
export const EXT_CERTIFICATE_AUTHORITIES = 47;
export const EXT_POST_HANDSHAKE_AUTH = 49;
export const EXT_SIGNATURE_ALGORITHMS_CERT = 50;
export const EXT_KEY_SHARE = 51;
export const EXT_APPLICATION_SETTINGS = 0x4469;
export const EXT_ECH_OUTER_EXTENSIONS = 0xfd00;
export const EXT_ENCRYPTED_CLIENT_HELLO = 0xfe0d;
export const EXT_RENEGOTIATION_INFO = 0xff01;

/** msg_type(1) length(3). */
export const HANDSHAKE_HEADER_BYTES = 4;
/**
 * Largest handshake message reassembled. Certificate chains are the big ones (a few KB to tens of KB;
 * OpenSSL's default max_cert_list is 100 KiB); 256 KiB leaves room without letting a 3-byte length
 * (up to 16 MiB) pin memory. Larger messages are skipped and counted (`tls.handshake_message_too_large`).
 */
export const MAX_HANDSHAKE_MESSAGE_BYTES = 256 * 1024;
/** Random (RFC 8446 §4.1.2). */
export const RANDOM_BYTES = 32;
/** legacy_session_id<0..32> (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2). */
export const MAX_SESSION_ID_BYTES = 32;
/** HelloRetryRequest is a ServerHello whose random is SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3). */
export const HELLO_RETRY_REQUEST_RANDOM = Uint8Array.from(Buffer.from(
  'cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex'));

export const A_INVALID_HANDSHAKE_MESSAGE = defineAnomaly('tls.invalid_handshake_message');
export const A_HANDSHAKE_TOO_LARGE = defineAnomaly('tls.handshake_message_too_large');
export const A_EMPTY_HANDSHAKE_FRAGMENT = defineAnomaly('tls.handshake_empty_fragment');
export const A_HELLO_TRUNCATED = defineAnomaly('tls.hello.truncated');
export const A_SESSION_ID_TOO_LONG = defineAnomaly('tls.hello.session_id_too_long');
export const A_CIPHER_SUITES_INVALID = defineAnomaly('tls.client_hello.cipher_suites_invalid');
export const A_COMPRESSION_METHODS_INVALID = defineAnomaly('tls.client_hello.compression_methods_invalid');
export const A_EXTENSIONS_OVERFLOW = defineAnomaly('tls.extensions.block_overflow');
export const A_EXTENSION_TRUNCATED = defineAnomaly('tls.extensions.header_truncated');
export const A_EXTENSION_OVERFLOW = defineAnomaly('tls.extensions.length_overflow');
export const A_EXTENSIONS_TRAILING = defineAnomaly('tls.extensions.trailing_bytes');
export const A_DUPLICATE_EXTENSION = defineAnomaly('tls.extensions.duplicate');
export const A_INVALID_SNI_LENGTH = defineAnomaly('tls.invalid_sni_length');
export const A_INVALID_SNI_TYPE = defineAnomaly('tls.invalid_sni_type');
export const A_MULTIPLE_SNI = defineAnomaly('tls.multiple_sni');
export const A_SNI_NOT_PRINTABLE = defineAnomaly('tls.sni_not_printable');
export const A_ALPN_INVALID = defineAnomaly('tls.extension.alpn_invalid');
export const A_SUPPORTED_VERSIONS_INVALID = defineAnomaly('tls.extension.supported_versions_invalid');
export const A_SIGNATURE_ALGORITHMS_INVALID = defineAnomaly('tls.extension.signature_algorithms_invalid');
export const A_SUPPORTED_GROUPS_INVALID = defineAnomaly('tls.extension.supported_groups_invalid');
export const A_EC_POINT_FORMATS_INVALID = defineAnomaly('tls.extension.ec_point_formats_invalid');
export const A_KEY_SHARE_INVALID = defineAnomaly('tls.extension.key_share_invalid');
export const A_PRE_SHARED_KEY_INVALID = defineAnomaly('tls.extension.pre_shared_key_invalid');
export const A_PRE_SHARED_KEY_NOT_LAST = defineAnomaly('tls.extension.pre_shared_key_not_last');
export const A_CERTIFICATE_INVALID_LENGTH = defineAnomaly('tls.certificate_invalid_length');
export const A_CLIENT_KEY_EXCHANGE_INVALID = defineAnomaly('tls.client_key_exchange_invalid');
export const A_NEW_SESSION_TICKET_INVALID = defineAnomaly('tls.new_session_ticket_invalid');
export const A_KEY_UPDATE_INVALID = defineAnomaly('tls.key_update_invalid');
export const A_SSLV2_CLIENT_HELLO_INVALID = defineAnomaly('tls.sslv2_client_hello_invalid');
const C_HANDSHAKE_MESSAGES = defineCounter('tls.handshake_messages');

/** One handshake message; `raw` is an owned copy (header + body), `body` a view of it. */
export interface HandshakeMessage {
  readonly type: number;
  readonly body: Uint8Array;
  /** The 4-byte header and the body, as hashed into the transcript (RFC 8446 §4.4.1, RFC 5246 §7.4.9). */
  readonly raw: Uint8Array;
}

/**
 * Reassembles one direction's handshake messages from the plaintext payloads of its handshake records
 * (messages split across records, several per record). Feed it only plaintext: encrypted handshake
 * records (TLS 1.2 Finished, everything after ServerHello in TLS 1.3) must be decrypted first or left out.
 * An unknown message type means the stream is not (or no longer) plaintext handshake: 'invalid', sticky.
 */
export class HandshakeReassembler {
  private readonly head = new Uint8Array(HANDSHAKE_HEADER_BYTES);
  private headFill = 0;
  /** Message spanning fragments, header included: grown as its bytes arrive, never beyond its length, so a
   * header announcing a huge message does not allocate it up front; charged to app_layer.memuse. Its
   * announced length is 0 between messages. */
  private readonly msg: PartialMessage;
  /** Bytes of an oversize message still to discard. */
  private skip = 0;
  private invalid = false;
  private broken = false;

  constructor(private readonly counters: Counters) {
    this.msg = new PartialMessage(counters);
  }

  /** Calls `out` for every message the fragment completes, in order. */
  push(fragment: Uint8Array, out: (msg: HandshakeMessage) => void): 'ok' | 'invalid' {
    if (this.invalid) return 'invalid';
    const n = fragment.length;
    // RFC 8446 §5.1 / RFC 5246 §6.2.1: zero-length handshake fragments MUST NOT be sent.
    if (n === 0) this.counters.inc(A_EMPTY_HANDSHAKE_FRAGMENT);
    let off = 0;
    // `invalid` is checked each message: `dispose` from inside `out` ends the push there
    while (off < n && !this.invalid) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, n - off);
        this.skip -= take;
        off += take;
        continue;
      }
      if (this.msg.announced > 0) {
        off += this.msg.append(fragment, off, n);
        if (this.msg.complete) this.emitHeld(out);
        continue;
      }
      if (this.headFill === 0 && n - off >= HANDSHAKE_HEADER_BYTES) {
        const type = fragment[off];
        const len = (fragment[off + 1] << 16) | (fragment[off + 2] << 8) | fragment[off + 3];
        if (!this.acceptHeader(type, len)) return 'invalid';
        off += HANDSHAKE_HEADER_BYTES;
        if (len > MAX_HANDSHAKE_MESSAGE_BYTES) continue;
        const total = HANDSHAKE_HEADER_BYTES + len;
        if (off + len <= n) {
          const raw = new Uint8Array(total); // a copy even when the fragment is a Buffer (its slice is a view)
          raw.set(fragment.subarray(off - HANDSHAKE_HEADER_BYTES, off + len));
          this.emit(raw, out);
          off += len;
          continue;
        }
        this.beginSpan(fragment.subarray(off - HANDSHAKE_HEADER_BYTES, off), total);
        continue;
      }
      const take = Math.min(HANDSHAKE_HEADER_BYTES - this.headFill, n - off);
      this.head.set(fragment.subarray(off, off + take), this.headFill);
      this.headFill += take;
      off += take;
      if (this.headFill < HANDSHAKE_HEADER_BYTES) break;
      this.headFill = 0;
      const len = (this.head[1] << 16) | (this.head[2] << 8) | this.head[3];
      if (!this.acceptHeader(this.head[0], len)) return 'invalid';
      if (len > MAX_HANDSHAKE_MESSAGE_BYTES) continue;
      this.beginSpan(this.head, HANDSHAKE_HEADER_BYTES + len);
      if (len === 0) this.emitHeld(out);
    }
    return 'ok';
  }

  /** Bytes held for a message not yet complete. */
  pendingBytes(): number {
    return this.headFill + this.msg.length;
  }

  /** Bytes of buffer held (and charged) for a message spanning records. */
  heldBytes(): number {
    return this.msg.heldBytes;
  }

  /** Nothing more is reassembled (the direction stopped, or the flow ended): a partial message is let go. */
  dispose(): void {
    this.invalid = true;
    this.headFill = 0;
    this.msg.reset();
  }

  /** True once a message was skipped (over MAX_HANDSHAKE_MESSAGE_BYTES): a transcript hash over the
   * messages seen would be wrong from there on. */
  get transcriptBroken(): boolean {
    return this.broken;
  }

  private acceptHeader(type: number, len: number): boolean {
    if (knownHandshakeType[type] === 0) {
      this.counters.inc(A_INVALID_HANDSHAKE_MESSAGE);
      this.invalid = true;
      this.msg.reset();
      return false;
    }
    if (len > MAX_HANDSHAKE_MESSAGE_BYTES) {
      this.counters.inc(A_HANDSHAKE_TOO_LARGE);
      this.broken = true;
      this.skip = len;
    }
    return true;
  }

  private beginSpan(header: Uint8Array, total: number): void {
    this.msg.begin(total);
    this.msg.append(header, 0, HANDSHAKE_HEADER_BYTES);
  }

  /** The message is handed out as an owned copy: the buffer is let go with its charge. */
  private emitHeld(out: (msg: HandshakeMessage) => void): void {
    this.emit(this.msg.finish(), out);
  }

  private emit(raw: Uint8Array, out: (msg: HandshakeMessage) => void): void {
    this.counters.inc(C_HANDSHAKE_MESSAGES);
    out({ type: raw[0], body: raw.subarray(HANDSHAKE_HEADER_BYTES), raw });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Small bounds-checked reader for length-prefixed TLS structures (RFC 8446 §3.4 vectors).

class Cursor {
  /** Set once any read ran past `end`; every later read also fails. */
  bad = false;
  constructor(readonly b: Uint8Array, public off: number, readonly end: number) {}

  left(): number {
    return this.end - this.off;
  }

  private need(n: number): boolean {
    if (this.bad || this.end - this.off < n) {
      this.bad = true;
      return false;
    }
    return true;
  }

  u8(): number {
    if (!this.need(1)) return -1;
    return this.b[this.off++];
  }

  u16(): number {
    if (!this.need(2)) return -1;
    const v = (this.b[this.off] << 8) | this.b[this.off + 1];
    this.off += 2;
    return v;
  }

  u24(): number {
    if (!this.need(3)) return -1;
    const v = (this.b[this.off] << 16) | (this.b[this.off + 1] << 8) | this.b[this.off + 2];
    this.off += 3;
    return v;
  }

  u32(): number {
    if (!this.need(4)) return -1;
    const v = ((this.b[this.off] << 24) >>> 0) + ((this.b[this.off + 1] << 16) | (this.b[this.off + 2] << 8) | this.b[this.off + 3]);
    this.off += 4;
    return v;
  }

  bytes(n: number): Uint8Array | undefined {
    if (n < 0 || !this.need(n)) return undefined;
    const v = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }

  vec8(): Uint8Array | undefined {
    return this.bytes(this.u8());
  }

  vec16(): Uint8Array | undefined {
    return this.bytes(this.u16());
  }

  vec24(): Uint8Array | undefined {
    return this.bytes(this.u24());
  }
}

function inc(counters: Counters | undefined, id: number): undefined {
  counters?.inc(id);
  return undefined;
}

/** Big-endian u16 list of a whole vector; undefined when its length is odd. */
function u16List(v: Uint8Array): number[] | undefined {
  if ((v.length & 1) !== 0) return undefined;
  const out = new Array<number>(v.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = (v[2 * i] << 8) | v[2 * i + 1];
  return out;
}

/** `vector<2..2^16-2>` of u16 filling `data` exactly (supported_groups, signature_algorithms). */
function u16Vec16(data: Uint8Array): number[] | undefined {
  const c = new Cursor(data, 0, data.length);
  const v = c.vec16();
  if (v === undefined || c.left() !== 0 || v.length === 0) return undefined;
  return u16List(v);
}

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');

// ---------------------------------------------------------------------------------------------------------
// Versions and GREASE

/** GREASE values (RFC 8701 §2): 0x0a0a, 0x1a1a, ... 0xfafa, in cipher suites, extensions, groups, versions,
 * signature algorithms. */
export function isGrease(v: number): boolean {
  return (v & 0x0f0f) === 0x0a0a && (v >> 8) === (v & 0xff);
}

/** 'SSL 3.0', 'TLS 1.0' .. 'TLS 1.3', 'TLS 1.3 draft-NN', 'DTLS 1.x'; anything else (GREASE included) as hex. */
export function tlsVersionName(v: number): string {
  switch (v) {
    case 0x0002: return 'SSL 2.0';
    case 0x0300: return 'SSL 3.0';
    case 0x0301: return 'TLS 1.0';
    case 0x0302: return 'TLS 1.1';
    case 0x0303: return 'TLS 1.2';
    case 0x0304: return 'TLS 1.3';
    case 0xfeff: return 'DTLS 1.0';
    case 0xfefd: return 'DTLS 1.2';
    case 0xfefc: return 'DTLS 1.3';
    default:
      // draft-ietf-tls-tls13-NN used 0x7f00 | NN (RFC 8446 §4.2.1 note).
      if ((v & 0xff00) === 0x7f00 && (v & 0xff) !== 0) return `TLS 1.3 draft-${v & 0xff}`;
      return `0x${v.toString(16).padStart(4, '0')}`;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Extensions

export interface TlsExtension {
  readonly type: number;
  /** extension_data, a view into the message body. */
  readonly data: Uint8Array;
}

/**
 * Parses `extensions<..2^16-1>` starting at `off` (the length prefix) up to the end of the body. No bytes at
 * all means no extensions (allowed before TLS 1.3). undefined when a length overruns; a duplicate type or
 * bytes after the block are counted but tolerated.
 */
function parseExtensionBlock(body: Uint8Array, off: number, counters: Counters | undefined): TlsExtension[] | undefined {
  const exts: TlsExtension[] = [];
  if (off === body.length) return exts;
  const c = new Cursor(body, off, body.length);
  const blockLen = c.u16();
  if (blockLen < 0 || blockLen > c.left()) return inc(counters, A_EXTENSIONS_OVERFLOW);
  const end = c.off + blockLen;
  if (end !== body.length) counters?.inc(A_EXTENSIONS_TRAILING);
  const block = new Cursor(body, c.off, end);
  const seen = new Set<number>();
  while (block.left() > 0) {
    if (block.left() < 4) return inc(counters, A_EXTENSION_TRUNCATED);
    const type = block.u16();
    const len = block.u16();
    if (len > block.left()) return inc(counters, A_EXTENSION_OVERFLOW);
    exts.push({ type, data: block.bytes(len) as Uint8Array });
    // RFC 8446 §4.2: no more than one extension of the same type.
    if (seen.has(type)) counters?.inc(A_DUPLICATE_EXTENSION);
    else seen.add(type);
  }
  return exts;
}

/** The first extension of a type, or undefined. */
export function findExtension(exts: readonly TlsExtension[], type: number): TlsExtension | undefined {
  for (const e of exts) if (e.type === type) return e;
  return undefined;
}

/**
 * server_name (RFC 6066 §3): `ServerNameList server_name_list<1..2^16-1>` of {name_type, HostName<1..2^16-1>}.
 * Returns the first host_name (latin1, one char per byte), or undefined (counted) when malformed.
 */
function parseSni(data: Uint8Array, counters: Counters | undefined): string | undefined {
  const c = new Cursor(data, 0, data.length);
  const list = c.vec16();
  if (list === undefined || c.left() !== 0 || list.length === 0) return inc(counters, A_INVALID_SNI_LENGTH);
  const l = new Cursor(list, 0, list.length);
  let name: string | undefined;
  while (l.left() > 0) {
    const type = l.u8();
    const host = l.vec16();
    if (host === undefined || host.length === 0) return inc(counters, A_INVALID_SNI_LENGTH);
    // Only host_name (0) is defined; an unknown type is skipped by its length (RFC 6066 §3 ties the
    // entry layout to the type, so we cannot do better) and counted.
    if (type !== 0) {
      counters?.inc(A_INVALID_SNI_TYPE);
      continue;
    }
    if (name !== undefined) {
      counters?.inc(A_MULTIPLE_SNI);
      continue;
    }
    for (let i = 0; i < host.length; i++) {
      if (host[i] < 0x21 || host[i] > 0x7e) {
        counters?.inc(A_SNI_NOT_PRINTABLE);
        break;
      }
    }
    name = latin1(host);
  }
  return name;
}

/** ALPN (RFC 7301 §3.1): `ProtocolName protocol_name_list<2..2^16-1>`, each `opaque ProtocolName<1..2^8-1>`.
 * Names as latin1 strings (one char per byte, so the raw bytes stay recoverable); undefined when malformed. */
function parseAlpnList(data: Uint8Array, counters: Counters | undefined): string[] | undefined {
  const c = new Cursor(data, 0, data.length);
  const list = c.vec16();
  if (list === undefined || c.left() !== 0 || list.length === 0) return inc(counters, A_ALPN_INVALID);
  const l = new Cursor(list, 0, list.length);
  const out: string[] = [];
  while (l.left() > 0) {
    const name = l.vec8();
    if (name === undefined) return inc(counters, A_ALPN_INVALID);
    out.push(latin1(name));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// ClientHello

export interface ClientHello {
  readonly legacyVersion: number;
  readonly random: Uint8Array;
  readonly sessionId: Uint8Array;
  /** In order, GREASE included (fingerprints drop it). */
  readonly cipherSuites: readonly number[];
  readonly compressionMethods: readonly number[];
  /** In order, GREASE included. */
  readonly extensions: readonly TlsExtension[];
  /** First host_name of server_name; with ECH this is the OUTER (public) name. */
  readonly sni: string | undefined;
  /** ALPN protocol names in order, latin1 (one char per byte). */
  readonly alpn: readonly string[];
  readonly supportedVersions: readonly number[];
  readonly signatureAlgorithms: readonly number[];
  readonly supportedGroups: readonly number[];
  readonly ecPointFormats: readonly number[];
  /** early_data (42): the client sends 0-RTT data after the hello. */
  readonly earlyData: boolean;
  readonly extendedMasterSecret: boolean;
  readonly encryptThenMac: boolean;
  /** encrypted_client_hello (0xfe0d) present: the real hello (and SNI) is encrypted inside it. */
  readonly echOuter: boolean;
  /** pre_shared_key (41) present: TLS 1.3 resumption or external PSK. */
  readonly pskOffered: boolean;
  /** A non-empty session_ticket (35): TLS 1.2 ticket resumption attempt (RFC 5077). */
  readonly sessionTicketOffered: boolean;
  /** Came as an SSLv2-compatible hello (RFC 5246 E.2): no extensions, challenge as the random. */
  readonly sslv2: boolean;
}

interface HelloExtensionFields {
  sni: string | undefined;
  alpn: string[];
  supportedVersions: number[];
  signatureAlgorithms: number[];
  supportedGroups: number[];
  ecPointFormats: number[];
}

function decodeClientExtensions(exts: readonly TlsExtension[], counters: Counters | undefined): HelloExtensionFields {
  const f: HelloExtensionFields = {
    sni: undefined, alpn: [], supportedVersions: [], signatureAlgorithms: [], supportedGroups: [], ecPointFormats: [],
  };
  const done = new Set<number>();
  for (let i = 0; i < exts.length; i++) {
    const { type, data } = exts[i];
    if (done.has(type)) continue; // a duplicate never overrides the first
    done.add(type);
    switch (type) {
      case EXT_SERVER_NAME:
        f.sni = parseSni(data, counters);
        break;
      case EXT_ALPN:
        f.alpn = parseAlpnList(data, counters) ?? [];
        break;
      case EXT_SUPPORTED_VERSIONS: {
        // ClientHello form: `ProtocolVersion versions<2..254>` (RFC 8446 §4.2.1).
        const c = new Cursor(data, 0, data.length);
        const v = c.vec8();
        const list = v !== undefined && c.left() === 0 && v.length > 0 ? u16List(v) : undefined;
        if (list === undefined) counters?.inc(A_SUPPORTED_VERSIONS_INVALID);
        else f.supportedVersions = list;
        break;
      }
      case EXT_SIGNATURE_ALGORITHMS: {
        const list = u16Vec16(data);
        if (list === undefined) counters?.inc(A_SIGNATURE_ALGORITHMS_INVALID);
        else f.signatureAlgorithms = list;
        break;
      }
      case EXT_SUPPORTED_GROUPS: {
        const list = u16Vec16(data);
        if (list === undefined) counters?.inc(A_SUPPORTED_GROUPS_INVALID);
        else f.supportedGroups = list;
        break;
      }
      case EXT_EC_POINT_FORMATS: {
        // `ECPointFormat ec_point_format_list<1..2^8-1>` (RFC 8422 §5.1.2).
        const c = new Cursor(data, 0, data.length);
        const v = c.vec8();
        if (v === undefined || c.left() !== 0 || v.length === 0) counters?.inc(A_EC_POINT_FORMATS_INVALID);
        else f.ecPointFormats = Array.from(v);
        break;
      }
      case EXT_PRE_SHARED_KEY:
        // RFC 8446 §4.2.11: pre_shared_key MUST be the last extension of the ClientHello.
        if (i !== exts.length - 1) counters?.inc(A_PRE_SHARED_KEY_NOT_LAST);
        break;
      default:
        break;
    }
  }
  return f;
}

/**
 * ClientHello body (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2): legacy_version, random, legacy_session_id<0..32>,
 * cipher_suites<2..2^16-2>, legacy_compression_methods<1..2^8-1>, extensions (optional before TLS 1.3).
 * undefined (counted) when a fixed field or the extension framing is broken; a malformed single extension
 * only loses that extension's decoded field (counted).
 */
export function parseClientHello(body: Uint8Array, counters?: Counters): ClientHello | undefined {
  const c = new Cursor(body, 0, body.length);
  const legacyVersion = c.u16();
  const random = c.bytes(RANDOM_BYTES);
  const sessionId = c.vec8();
  if (random === undefined || sessionId === undefined) return inc(counters, A_HELLO_TRUNCATED);
  if (sessionId.length > MAX_SESSION_ID_BYTES) return inc(counters, A_SESSION_ID_TOO_LONG);
  const suites = c.vec16();
  if (suites === undefined) return inc(counters, A_HELLO_TRUNCATED);
  const cipherSuites = suites.length > 0 ? u16List(suites) : undefined;
  if (cipherSuites === undefined) return inc(counters, A_CIPHER_SUITES_INVALID);
  const compression = c.vec8();
  if (compression === undefined) return inc(counters, A_HELLO_TRUNCATED);
  if (compression.length === 0) return inc(counters, A_COMPRESSION_METHODS_INVALID);
  const extensions = parseExtensionBlock(body, c.off, counters);
  if (extensions === undefined) return undefined;
  const f = decodeClientExtensions(extensions, counters);
  const ticket = findExtension(extensions, EXT_SESSION_TICKET);
  return {
    legacyVersion, random, sessionId, cipherSuites, compressionMethods: Array.from(compression), extensions,
    ...f,
    earlyData: findExtension(extensions, EXT_EARLY_DATA) !== undefined,
    extendedMasterSecret: findExtension(extensions, EXT_EXTENDED_MASTER_SECRET) !== undefined,
    encryptThenMac: findExtension(extensions, EXT_ENCRYPT_THEN_MAC) !== undefined,
    echOuter: findExtension(extensions, EXT_ENCRYPTED_CLIENT_HELLO) !== undefined,
    pskOffered: findExtension(extensions, EXT_PRE_SHARED_KEY) !== undefined,
    sessionTicketOffered: ticket !== undefined && ticket.data.length > 0,
    sslv2: false,
  };
}

/**
 * SSLv2-compatible ClientHello (RFC 5246 Appendix E.2), as the record reader hands it out (fragment from
 * msg_type on): msg_type(1)=1, version(2), cipher_spec_length(2), session_id_length(2), challenge_length(2),
 * cipher_specs (3 bytes each), session_id, challenge. Only specs with a zero first byte are TLS suites and are
 * kept; the challenge is right-aligned into a 32-byte random with leading zeros. This whole fragment is what
 * goes into the TLS handshake transcript.
 */
export function parseSsl2ClientHello(fragment: Uint8Array, counters?: Counters): ClientHello | undefined {
  const c = new Cursor(fragment, 0, fragment.length);
  const type = c.u8();
  const legacyVersion = c.u16();
  const csLen = c.u16();
  const sidLen = c.u16();
  const chalLen = c.u16();
  if (c.bad || type !== 1 || csLen === 0 || csLen % 3 !== 0 || (sidLen !== 0 && sidLen !== 16)
    || chalLen < 16 || chalLen > RANDOM_BYTES || c.left() !== csLen + sidLen + chalLen) {
    return inc(counters, A_SSLV2_CLIENT_HELLO_INVALID);
  }
  const specs = c.bytes(csLen) as Uint8Array;
  const sessionId = c.bytes(sidLen) as Uint8Array;
  const challenge = c.bytes(chalLen) as Uint8Array;
  const cipherSuites: number[] = [];
  for (let i = 0; i < csLen; i += 3) if (specs[i] === 0) cipherSuites.push((specs[i + 1] << 8) | specs[i + 2]);
  const random = new Uint8Array(RANDOM_BYTES);
  random.set(challenge, RANDOM_BYTES - chalLen);
  return {
    legacyVersion, random, sessionId, cipherSuites, compressionMethods: [0], extensions: [],
    sni: undefined, alpn: [], supportedVersions: [], signatureAlgorithms: [], supportedGroups: [], ecPointFormats: [],
    earlyData: false, extendedMasterSecret: false, encryptThenMac: false, echOuter: false, pskOffered: false,
    sessionTicketOffered: false, sslv2: true,
  };
}

// ---------------------------------------------------------------------------------------------------------
// ServerHello, EncryptedExtensions

export interface ServerHello {
  readonly legacyVersion: number;
  readonly random: Uint8Array;
  readonly sessionId: Uint8Array;
  readonly cipherSuite: number;
  readonly compression: number;
  readonly extensions: readonly TlsExtension[];
  /** Negotiated version: supported_versions' selected_version, else legacy_version. */
  readonly version: number;
  /** The protocol the server selected (TLS <= 1.2; TLS 1.3 says it in EncryptedExtensions). */
  readonly alpn: string | undefined;
  readonly extendedMasterSecret: boolean;
  readonly encryptThenMac: boolean;
  /** The RFC 8446 §4.1.3 special random: this is a HelloRetryRequest; a second ClientHello follows. */
  readonly helloRetryRequest: boolean;
  /** key_share's group (the server's share, or the group an HRR asks for). */
  readonly keyShareGroup: number | undefined;
  /** pre_shared_key (41) present: the server accepted a PSK (TLS 1.3 resumption). */
  readonly pskSelected: boolean;
  /** An empty session_ticket (35): the server will send a NewSessionTicket (RFC 5077 §3.2). */
  readonly sessionTicketAck: boolean;
}

/** TLS 1.3 drafts before -22 had a ServerHello without legacy_session_id and compression. */
function isEarlyDraft13(v: number): boolean {
  return (v & 0xff00) === 0x7f00 && (v & 0xff) > 0 && (v & 0xff) < 22;
}

/** A single protocol name selected by the server (RFC 7301 §3.1: exactly one name). */
function parseSelectedAlpn(data: Uint8Array, counters: Counters | undefined): string | undefined {
  const list = parseAlpnList(data, counters);
  if (list === undefined) return undefined;
  if (list.length !== 1) return inc(counters, A_ALPN_INVALID);
  return list[0];
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** ServerHello body (RFC 8446 §4.1.3, RFC 5246 §7.4.1.3); undefined (counted) when fixed fields or the
 * extension framing are broken. */
export function parseServerHello(body: Uint8Array, counters?: Counters): ServerHello | undefined {
  const c = new Cursor(body, 0, body.length);
  const legacyVersion = c.u16();
  const random = c.bytes(RANDOM_BYTES);
  const draft = isEarlyDraft13(legacyVersion);
  const sessionId = draft ? new Uint8Array(0) : c.vec8();
  if (random === undefined || sessionId === undefined) return inc(counters, A_HELLO_TRUNCATED);
  if (sessionId.length > MAX_SESSION_ID_BYTES) return inc(counters, A_SESSION_ID_TOO_LONG);
  const cipherSuite = c.u16();
  const compression = draft ? 0 : c.u8();
  if (c.bad) return inc(counters, A_HELLO_TRUNCATED);
  const extensions = parseExtensionBlock(body, c.off, counters);
  if (extensions === undefined) return undefined;
  let version = legacyVersion;
  const sv = findExtension(extensions, EXT_SUPPORTED_VERSIONS);
  if (sv !== undefined) {
    // ServerHello form: `ProtocolVersion selected_version` (RFC 8446 §4.2.1).
    if (sv.data.length === 2) version = (sv.data[0] << 8) | sv.data[1];
    else counters?.inc(A_SUPPORTED_VERSIONS_INVALID);
  }
  const alpnExt = findExtension(extensions, EXT_ALPN);
  const alpn = alpnExt === undefined ? undefined : parseSelectedAlpn(alpnExt.data, counters);
  let keyShareGroup: number | undefined;
  const ks = findExtension(extensions, EXT_KEY_SHARE);
  if (ks !== undefined) {
    // ServerHello: KeyShareEntry {group, key_exchange<1..2^16-1>}; HelloRetryRequest: just the group.
    if (ks.data.length >= 2) keyShareGroup = (ks.data[0] << 8) | ks.data[1];
    else counters?.inc(A_KEY_SHARE_INVALID);
  }
  const psk = findExtension(extensions, EXT_PRE_SHARED_KEY);
  if (psk !== undefined && psk.data.length !== 2) counters?.inc(A_PRE_SHARED_KEY_INVALID);
  const ticket = findExtension(extensions, EXT_SESSION_TICKET);
  return {
    legacyVersion, random, sessionId, cipherSuite, compression, extensions, version, alpn,
    extendedMasterSecret: findExtension(extensions, EXT_EXTENDED_MASTER_SECRET) !== undefined,
    encryptThenMac: findExtension(extensions, EXT_ENCRYPT_THEN_MAC) !== undefined,
    helloRetryRequest: equalBytes(random, HELLO_RETRY_REQUEST_RANDOM),
    keyShareGroup,
    pskSelected: psk !== undefined,
    sessionTicketAck: ticket !== undefined && ticket.data.length === 0,
  };
}

export interface EncryptedExtensions {
  readonly extensions: readonly TlsExtension[];
  readonly alpn: string | undefined;
  /** early_data (42) present: the server accepted the client's 0-RTT data (RFC 8446 §4.2.10). */
  readonly earlyData: boolean;
}

/** TLS 1.3 EncryptedExtensions body (RFC 8446 §4.3.1): `Extension extensions<0..2^16-1>`. */
export function parseEncryptedExtensions(body: Uint8Array, counters?: Counters): EncryptedExtensions | undefined {
  if (body.length < 2) return inc(counters, A_EXTENSIONS_OVERFLOW);
  const extensions = parseExtensionBlock(body, 0, counters);
  if (extensions === undefined) return undefined;
  const alpnExt = findExtension(extensions, EXT_ALPN);
  return {
    extensions,
    alpn: alpnExt === undefined ? undefined : parseSelectedAlpn(alpnExt.data, counters),
    earlyData: findExtension(extensions, EXT_EARLY_DATA) !== undefined,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Certificate, ClientKeyExchange, NewSessionTicket, KeyUpdate

/**
 * Certificate body -> the DER certificates in order (end-entity first). TLS <= 1.2 (RFC 5246 §7.4.2):
 * `ASN.1Cert certificate_list<0..2^24-1>`, each `opaque ASN.1Cert<1..2^24-1>`. TLS 1.3 (RFC 8446 §4.4.2):
 * `certificate_request_context<0..255>`, then entries of `cert_data<1..2^24-1>` + `extensions<0..2^16-1>`.
 * Views into the body; undefined (counted) when a length does not fit. Raw-public-key certificates
 * (RFC 7250) come out as their SubjectPublicKeyInfo.
 */
export function parseCertificateChain(body: Uint8Array, tls13: boolean, counters?: Counters): Uint8Array[] | undefined {
  const c = new Cursor(body, 0, body.length);
  if (tls13 && c.vec8() === undefined) return inc(counters, A_CERTIFICATE_INVALID_LENGTH);
  const list = c.vec24();
  if (list === undefined || c.left() !== 0) return inc(counters, A_CERTIFICATE_INVALID_LENGTH);
  const l = new Cursor(list, 0, list.length);
  const certs: Uint8Array[] = [];
  while (l.left() > 0) {
    const der = l.vec24();
    if (der === undefined || der.length === 0) return inc(counters, A_CERTIFICATE_INVALID_LENGTH);
    if (tls13 && l.vec16() === undefined) return inc(counters, A_CERTIFICATE_INVALID_LENGTH);
    certs.push(der);
  }
  return certs;
}

/**
 * RSA ClientKeyExchange body -> the encrypted premaster secret. TLS 1.0+ (RFC 5246 §7.4.7.1):
 * `opaque encrypted_pre_master_secret<0..2^16-1>`, a 2-byte length that must fill the body; SSL 3.0
 * (RFC 6101 §5.6.7.1) sends the bare ciphertext. A view into the body.
 */
export function parseRsaClientKeyExchange(body: Uint8Array, sslv3: boolean, counters?: Counters): Uint8Array | undefined {
  if (sslv3) return body.length > 0 ? body : inc(counters, A_CLIENT_KEY_EXCHANGE_INVALID);
  const c = new Cursor(body, 0, body.length);
  const v = c.vec16();
  if (v === undefined || c.left() !== 0 || v.length === 0) return inc(counters, A_CLIENT_KEY_EXCHANGE_INVALID);
  return v;
}

export interface NewSessionTicket {
  /** ticket_lifetime (TLS 1.3) or ticket_lifetime_hint (RFC 5077), seconds. */
  readonly lifetimeSeconds: number;
  /** TLS 1.3 ticket_age_add; 0 for TLS <= 1.2. */
  readonly ageAdd: number;
  /** TLS 1.3 ticket_nonce (input to the resumption PSK); empty for TLS <= 1.2. */
  readonly nonce: Uint8Array;
  readonly ticket: Uint8Array;
  /** TLS 1.3 early_data extension's max_early_data_size, when the ticket allows 0-RTT. */
  readonly maxEarlyDataSize: number | undefined;
}

/** NewSessionTicket body: RFC 5077 §3.3 (TLS <= 1.2) or RFC 8446 §4.6.1 (TLS 1.3). */
export function parseNewSessionTicket(body: Uint8Array, tls13: boolean, counters?: Counters): NewSessionTicket | undefined {
  const c = new Cursor(body, 0, body.length);
  const lifetimeSeconds = c.u32();
  if (!tls13) {
    const ticket = c.vec16();
    if (ticket === undefined || c.left() !== 0) return inc(counters, A_NEW_SESSION_TICKET_INVALID);
    return { lifetimeSeconds, ageAdd: 0, nonce: new Uint8Array(0), ticket, maxEarlyDataSize: undefined };
  }
  const ageAdd = c.u32();
  const nonce = c.vec8();
  const ticket = c.vec16();
  if (nonce === undefined || ticket === undefined || ticket.length === 0) return inc(counters, A_NEW_SESSION_TICKET_INVALID);
  const extensions = parseExtensionBlock(body, c.off, counters);
  if (extensions === undefined || c.off === body.length) return inc(counters, A_NEW_SESSION_TICKET_INVALID);
  const ed = findExtension(extensions, EXT_EARLY_DATA);
  let maxEarlyDataSize: number | undefined;
  if (ed !== undefined && ed.data.length === 4) maxEarlyDataSize = new Cursor(ed.data, 0, 4).u32();
  return { lifetimeSeconds, ageAdd, nonce, ticket, maxEarlyDataSize };
}

/** KeyUpdate body (RFC 8446 §4.6.3): one byte, update_not_requested (0) or update_requested (1). */
export function parseKeyUpdate(body: Uint8Array, counters?: Counters): { readonly requestUpdate: boolean } | undefined {
  if (body.length !== 1 || body[0] > 1) return inc(counters, A_KEY_UPDATE_INVALID);
  return { requestUpdate: body[0] === 1 };
}

/**
 * App layer, TLS: per-flow state for both directions (a `StreamConsumer`).
 * Input: reassembled stream bytes. Output: one `tls` event per connection (SNI, version, suite,
 * ALPN, JA3/JA4, server certificate, decrypted or why not) and, when the session's keys are known
 * (NSS key log, keys pushed over the local API, an RSA server key, or a resumed RSA session's cached
 * master secret), the decrypted application data handed to an inner consumer (HTTP/1.x or HTTP/2,
 * chosen by probing), as if it were cleartext; TLS <= 1.2 renegotiations are followed to their keys.
 * Keys that arrive after the traffic are waited for: protected records are held, bounded in bytes
 * per flow, in bytes overall and in capture time, then decrypted or given up (counted). A held record
 * costs its fragment plus HELD_RECORD_OVERHEAD_BYTES, charged to both the pending budget and the flow
 * memcap's inspection memory (`app_layer.memuse`), and given back whenever it is let go.
 */
import type { Counters } from '../../events/counters.js';
import { defineAnomaly, defineCounter } from '../../events/counters.js';
import { chargeMemory } from '../../events/memuse.js';
import type { NotDecryptedReason, TlsFields } from '../../events/tls.js';
import { BYPASS, type BypassedBytes, type CloseReason, type Direction, type FlowInfo, type StreamConsumer } from '../../flow/stream.js';
import { describeCertificate } from './certificate.js';
import { ja3, ja4 } from './fingerprint.js';
import {
  HandshakeReassembler, parseCertificateChain, parseClientHello, parseEncryptedExtensions, parseKeyUpdate,
  parseRsaClientKeyExchange, parseServerHello, parseSsl2ClientHello, tlsVersionName,
  type ClientHello, type HandshakeMessage, type ServerHello,
} from './handshake.js';
import type { KeyStore } from './keylog.js';
import { CONTENT_TYPE_SSL2_CLIENT_HELLO, TlsRecordReader, type TlsRecord } from './record.js';
import type { RsaKeyRing } from './rsa.js';
import {
  createTlsDecryption, keyLogComplete, resumesSession, TlsSessionCache, type DecryptionSetup, type DirectionCipher, type TlsDecryption,
} from './decryption.js';
import { suiteById, suiteName } from './suites.js';

/** Content types (RFC 8446 §5.1). */
const CT_CHANGE_CIPHER_SPEC = 20;
const CT_ALERT = 21;
const CT_HANDSHAKE = 22;
const CT_APPLICATION_DATA = 23;

/** Handshake types (RFC 8446 §4, RFC 5246 §7.4). */
const HT_CLIENT_HELLO = 1;
const HT_SERVER_HELLO = 2;
const HT_END_OF_EARLY_DATA = 5;
const HT_ENCRYPTED_EXTENSIONS = 8;
const HT_CERTIFICATE = 11;
const HT_CLIENT_KEY_EXCHANGE = 16;
const HT_FINISHED = 20;
const HT_KEY_UPDATE = 24;

const SSL3 = 0x0300;
const TLS13 = 0x0304;

/** Protected bytes held per flow while its keys are awaited: a browser's first requests and a page or two
 * (each record counted as its fragment plus HELD_RECORD_OVERHEAD_BYTES). */
export const TLS_PENDING_MAX_BYTES_PER_FLOW = 4 * 1024 * 1024;
/** Protected bytes held across all flows awaiting keys (counted the same way). */
export const TLS_PENDING_MAX_BYTES_TOTAL = 64 * 1024 * 1024;
/**
 * What holding one record costs beyond its fragment: its copied 5-byte header and the objects around
 * both copies (520-550 B of V8 heap per record on Node 20 x64, measured with zero- and 1-byte
 * fragments). Charged to the pending budget with the fragment, so that a flood of empty records
 * reaches the per-flow and total bounds as surely as a few large ones (a zero-length record would
 * otherwise cost nothing while taking half a kilobyte).
 */
export const HELD_RECORD_OVERHEAD_BYTES = 544;
/** How long (capture time) a flow's records wait for late keys by default: key loggers write at once,
 * agents pushing keys over the local API within seconds. */
export const TLS_KEY_WAIT_US = 10_000_000;
/** Records wait at least this long (capture time) for the rest of the handshake to bring their keys
 * (a ClientKeyExchange, a ServerHello after 0-RTT data), even when late keys are not awaited. */
export const TLS_HANDSHAKE_WAIT_US = 5_000_000;
/** Handshake messages kept for the RSA extended-master-secret session hash (RFC 7627): ClientHello to
 * ClientKeyExchange, certificate chains included. */
const MAX_TRANSCRIPT_BYTES = 512 * 1024;
/**
 * Renegotiations followed per connection. Real ones are one or two (a client certificate asked for late,
 * a key refresh); each can cost an RSA decryption (~2 ms), and a renegotiation storm is a known DoS
 * (CVE-2011-1473). Past this, the connection's later keys are not followed (counted).
 */
export const MAX_RENEGOTIATIONS_PER_FLOW = 16;

const C_FLOWS = defineCounter('tls.flows');
const C_DECRYPTED_FLOWS = defineCounter('tls.decrypted_flows');
const C_DECRYPTED_BYTES = defineCounter('tls.decrypted_bytes');
const C_OPAQUE_BYTES = defineCounter('tls.undecrypted_bytes');
const C_HELD = defineCounter('tls.pending_records');
const C_HELD_OVERFLOW = defineCounter('tls.pending_overflow');
const C_KEYS_LATE = defineCounter('tls.keys_arrived_late');
const C_NEVER_KEYS = defineCounter('tls.keys_never_arrived');
const C_EARLY_SKIPPED = defineCounter('tls.early_data_undecryptable');
const C_KEY_UPDATE = defineCounter('tls.key_update');
const C_RENEGOTIATION = defineCounter('tls.renegotiations');
const C_RENEGOTIATION_FOLLOWED = defineCounter('tls.renegotiations_decrypted');
const C_RENEGOTIATION_NO_KEYS = defineCounter('tls.renegotiation_undecryptable');
const C_RENEGOTIATION_LIMIT = defineCounter('tls.renegotiation_limit');
const C_COMPRESSED = defineCounter('tls.compression_unsupported');
const C_DIRECTION_LOST = defineCounter('tls.direction_lost');
const C_TRANSCRIPT_OVERFLOW = defineCounter('tls.transcript_overflow');
/** A gap cut a record or handshake message in progress: it can never complete, and its buffer was let go. */
const C_GAP_PARTIAL_DROPPED = defineCounter('tls.gap_partial_dropped');
const A_INVALID = defineAnomaly('tls.stream_invalid');
const A_HANDSHAKE_INVALID = defineAnomaly('tls.handshake_invalid');
const notDecryptedCounters = new Map<NotDecryptedReason, number>();
function notDecryptedCounter(reason: NotDecryptedReason): number {
  let id = notDecryptedCounters.get(reason);
  if (id === undefined) {
    id = defineCounter(`tls.not_decrypted.${reason}`);
    notDecryptedCounters.set(reason, id);
  }
  return id;
}

/** Where keys come from, and the shared budget for held records. */
export interface TlsKeySources {
  /** Key log entries (files and the local API feed the same store). */
  readonly keyStore?: KeyStore;
  readonly rsaKeys?: RsaKeyRing;
  /** Capture-time wait for keys that arrive after the traffic; 0 decides at once. */
  readonly keyWaitUs: number;
  /**
   * Wait only once the key store has had a key (`hark run` without --keylog or --key-wait): a
   * sensor nobody gives keys then holds no records for keys that will not come, and bypasses each
   * connection as soon as its handshake has been read.
   */
  readonly waitOnlyOnceKeys?: boolean;
  /**
   * Master secrets of RSA-keyed sessions by session id, for connections that resume them. When absent,
   * every session sharing this `TlsKeySources` object shares one cache of TLS_SESSION_CACHE_MAX_ENTRIES.
   */
  readonly sessionCache?: TlsSessionCache;
}

/** Bytes held by all sessions awaiting keys (fragments plus HELD_RECORD_OVERHEAD_BYTES a record), and the bound for one flow. */
export class PendingBudget {
  used = 0;
  constructor(readonly maxBytes: number = TLS_PENDING_MAX_BYTES_TOTAL, readonly maxBytesPerFlow: number = TLS_PENDING_MAX_BYTES_PER_FLOW) {}
}

export interface TlsSessionContext {
  readonly counters: Counters;
  readonly keys: TlsKeySources;
  readonly pending: PendingBudget;
  /** Consumer of decrypted application data (probes HTTP/1.x and HTTP/2); `sni` names the server. */
  readonly inner: (flow: FlowInfo, sni: string | undefined) => StreamConsumer | undefined;
  readonly onEvent: (flow: FlowInfo, tsUs: number, tls: TlsFields) => void;
}

/** The session cache shared by every flow of one key-source object (the sensor builds that object once). */
const sharedSessionCaches = new WeakMap<TlsKeySources, TlsSessionCache>();

function sessionCacheFor(keys: TlsKeySources, counters: Counters): TlsSessionCache | undefined {
  if (keys.rsaKeys === undefined) return undefined;
  if (keys.sessionCache !== undefined) return keys.sessionCache;
  let cache = sharedSessionCaches.get(keys);
  if (cache === undefined) {
    cache = new TlsSessionCache(counters);
    sharedSessionCaches.set(keys, cache);
  }
  return cache;
}

interface Held {
  readonly dir: Direction;
  readonly rec: TlsRecord;
}

/**
 * clear: plaintext handshake; protected: records need keys; lost: decryption of this direction broke off
 * after it had begun (the inner consumer hears of a gap at the next bytes); stopped: ignored from here on.
 */
type DirState = 'clear' | 'protected' | 'lost' | 'stopped';

/** Handshake messages for the RSA extended-master-secret session hash (RFC 7627 §3), in the order seen. */
class Transcript {
  private parts: Uint8Array[] | undefined = [];
  private bytes = 0;

  /** `raw` must be owned (HandshakeMessage.raw is). Past MAX_TRANSCRIPT_BYTES the transcript is dropped. */
  add(raw: Uint8Array, counters: Counters): void {
    if (this.parts === undefined) return;
    if (this.bytes + raw.length > MAX_TRANSCRIPT_BYTES) {
      counters.inc(C_TRANSCRIPT_OVERFLOW);
      this.parts = undefined;
      return;
    }
    this.parts.push(raw);
    this.bytes += raw.length;
  }

  get messages(): readonly Uint8Array[] | undefined {
    return this.parts;
  }
}

/** What key setup needs from one handshake: the first in the clear, or a renegotiation inside the protected stream. */
interface Handshake {
  clientHello: ClientHello | undefined;
  serverHello: ServerHello | undefined;
  encryptedPremaster: Uint8Array | undefined;
  /** Kept only while an RSA key may need it. */
  transcript: Transcript | undefined;
}

/** A TLS <= 1.2 renegotiation (RFC 5246 §7.4.1): each direction moves to its keys at its next ChangeCipherSpec. */
interface Renegotiation extends Handshake {
  clientHello: ClientHello;
  decryption: TlsDecryption | undefined;
  /** Keys will not come (unsupported suite, compression). */
  failed: boolean;
  readonly switched: [boolean, boolean];
}

export class TlsSession implements StreamConsumer {
  private readonly readers: [TlsRecordReader, TlsRecordReader];
  private readonly handshakes: [HandshakeReassembler, HandshakeReassembler];
  /** Handshake messages inside protected records (TLS 1.3 flights, Finished, KeyUpdate, renegotiations). */
  private readonly protectedHandshakes: [HandshakeReassembler, HandshakeReassembler];
  private readonly dirState: [DirState, DirState] = ['clear', 'clear'];
  private readonly hs: Handshake = { clientHello: undefined, serverHello: undefined, encryptedPremaster: undefined, transcript: undefined };
  private reneg: Renegotiation | undefined;
  private renegotiations = 0;
  private readonly sessionCache: TlsSessionCache | undefined;
  private serverModulusHex: string | undefined;
  private decryption: TlsDecryption | undefined;
  private readonly ciphers: [DirectionCipher | undefined, DirectionCipher | undefined] = [undefined, undefined];
  private readonly held: Held[] = [];
  /** Fragment bytes held (what becomes `tls.undecrypted_bytes` if the keys never come). */
  private heldBytes = 0;
  private heldSinceUs = 0;
  private unsubscribe: (() => void) | undefined;
  private outcome: 'pending' | 'decrypting' | 'opaque' = 'pending';
  private reason: NotDecryptedReason | undefined;
  private inner: StreamConsumer | undefined;
  private emitted = false;
  /** What a direction's reader held of partial records when it let them go: bytes that went by, for `end`. */
  private readonly pendingAtStop: [number, number] = [0, 0];
  private sawBytes = false;
  private lastTsUs = 0;
  private readonly fields: TlsFields = {
    client_alpns: [], ech: false, resumed: false, decrypted: false, app_bytes: 0, decrypted_bytes: 0,
  };

  constructor(private readonly flow: FlowInfo, private readonly ctx: TlsSessionContext) {
    const c = ctx.counters;
    this.readers = [new TlsRecordReader(c), new TlsRecordReader(c)];
    this.handshakes = [new HandshakeReassembler(c), new HandshakeReassembler(c)];
    this.protectedHandshakes = [new HandshakeReassembler(c), new HandshakeReassembler(c)];
    c.inc(C_FLOWS);
    if (ctx.keys.rsaKeys !== undefined) this.hs.transcript = new Transcript();
    this.sessionCache = sessionCacheFor(ctx.keys, c);
  }

  data(dir: Direction, bytes: Uint8Array, tsUs: number): boolean | void {
    this.lastTsUs = tsUs;
    if (bytes.length > 0) this.sawBytes = true;
    const state = this.dirState[dir];
    if (state === 'stopped') return this.finished();
    if (state === 'lost') {
      this.inner?.gap(dir, bytes.length, tsUs);
      this.stop(dir);
      return;
    }
    if (this.held.length > 0) this.expireHeld(tsUs);
    const r = this.readers[dir].push(bytes, tsUs, (rec) => this.record(dir, rec));
    if (r === 'invalid') {
      this.ctx.counters.inc(A_INVALID);
      this.stop(dir);
    } else if (this.dirState[dir] !== 'clear' && this.dirState[dir] !== 'protected') {
      // stopped or lost by one of this push's records: the reader went on through the push's other
      // bytes (records nobody reads now) and may have begun a partial one again
      this.letGo(dir);
    }
    return this.finished();
  }

  gap(dir: Direction, len: number, tsUs: number): boolean | void {
    this.lastTsUs = tsUs;
    this.sawBytes = true;
    // Records have no resync marker and AEAD nonces count records: this direction is lost.
    if (this.dirState[dir] === 'stopped') return this.finished();
    if (this.outcome === 'pending') this.decide(this.hs.clientHello === undefined ? 'missing_client_hello' : 'gap', tsUs);
    this.inner?.gap(dir, len, tsUs);
    // the record or handshake message in progress lost bytes: it can never complete
    if (this.readers[dir].pendingBytes() + this.handshakes[dir].pendingBytes() + this.protectedHandshakes[dir].pendingBytes() > 0) {
      this.ctx.counters.inc(C_GAP_PARTIAL_DROPPED);
    }
    this.stop(dir);
    return this.finished();
  }

  /**
   * BYPASS once nothing more can be learned: the connection will not be decrypted, and the server
   * has stopped sending handshake messages in the clear (TLS 1.3 after its ServerHello, older
   * versions after its ChangeCipherSpec, so that a TLS 1.2 certificate is still read). What goes
   * by afterwards reaches `app_bytes` through `end`, record headers included.
   */
  private finished(): boolean | undefined {
    return this.outcome === 'opaque' && this.dirState[1] !== 'clear' ? BYPASS : undefined;
  }

  end(reason: CloseReason, tsUs: number, bypassed?: BypassedBytes): void {
    this.lastTsUs = tsUs;
    if (bypassed !== undefined) {
      // from where the last whole record ended: the partial record each reader holds, and the rest
      const bytes = bypassed[0] + bypassed[1] + this.pendingAtStop[0] + this.pendingAtStop[1]
        + this.readers[0].pendingBytes() + this.readers[1].pendingBytes();
      this.fields.app_bytes += bytes;
      this.ctx.counters.inc(C_OPAQUE_BYTES, bytes);
    }
    // a partial record or handshake message gives its buffer back (app_layer.memuse) before anything
    // below can throw (the event sink, the inner consumer) and keep the charge for good
    this.letGo(0);
    this.letGo(1);
    if (this.outcome === 'pending') {
      if (this.held.length > 0) {
        this.ctx.counters.inc(C_NEVER_KEYS);
        this.decide(this.pendingReason(), tsUs);
      } else if (this.hs.clientHello === undefined && this.sawBytes) this.decide('missing_client_hello', tsUs);
      else this.decide('no_application_data', tsUs);
    }
    this.emit(tsUs);
    this.release();
    this.inner?.end(reason, tsUs);
  }

  // --- records -------------------------------------------------------------------------------------

  private record(dir: Direction, rec: TlsRecord): void {
    const state = this.dirState[dir];
    if (state === 'stopped' || state === 'lost') return;
    if (rec.type === CONTENT_TYPE_SSL2_CLIENT_HELLO) {
      const ch = dir === 0 && this.hs.clientHello === undefined ? parseSsl2ClientHello(rec.fragment, this.ctx.counters) : undefined;
      if (ch !== undefined) {
        this.hs.clientHello = ch;
        this.describeClient(ch);
        // RFC 5246 E.2: the SSLv2 hello's bytes after the 2-byte header are its transcript entry.
        this.hs.transcript?.add(rec.fragment.slice(), this.ctx.counters);
      }
      return;
    }
    if (rec.type === CT_CHANGE_CIPHER_SPEC) {
      // TLS 1.3 sends it only for middlebox compatibility. Before 1.3 it switches a clear direction to
      // protected; on a protected one it is itself protected and ends a renegotiation (the next keys follow).
      if (this.hs.serverHello === undefined || this.hs.serverHello.version === TLS13) return;
      if (state === 'clear') this.dirState[dir] = 'protected';
      else this.protectedRecord(dir, rec);
      return;
    }
    if (state === 'clear' && (rec.type === CT_HANDSHAKE || rec.type === CT_ALERT)) {
      if (rec.type === CT_HANDSHAKE && this.handshakes[dir].push(rec.fragment, (m) => this.handshake(dir, m, rec.tsUs)) === 'invalid') {
        this.ctx.counters.inc(A_HANDSHAKE_INVALID);
        this.stop(dir);
      }
      return;
    }
    if (rec.type === CT_APPLICATION_DATA || state === 'protected') this.protectedRecord(dir, rec);
  }

  private protectedRecord(dir: Direction, rec: TlsRecord): void {
    const size = rec.fragment.length;
    if (rec.type === CT_APPLICATION_DATA) this.fields.app_bytes += size;
    if (this.outcome === 'opaque') {
      this.ctx.counters.inc(C_OPAQUE_BYTES, size);
      return;
    }
    if (this.hs.clientHello === undefined) {
      // The ClientHello opens a connection: protected records without one were joined mid-stream.
      this.ctx.counters.inc(C_OPAQUE_BYTES, size);
      this.decide('missing_client_hello', rec.tsUs);
      return;
    }
    const cipher = this.ciphers[dir];
    if (cipher === undefined && this.outcome === 'decrypting') {
      // Keys for the other direction only (a key log without this direction's secret).
      this.ctx.counters.inc(C_OPAQUE_BYTES, size);
      this.lose(dir, size, rec.tsUs);
      return;
    }
    if (cipher === undefined || this.held.length > 0) {
      this.hold(dir, rec);
      return;
    }
    this.decryptRecord(dir, cipher, rec);
  }

  private decryptRecord(dir: Direction, cipher: DirectionCipher, rec: TlsRecord): void {
    const r = cipher.decrypt(rec);
    if (r.ok === 'skip') {
      this.ctx.counters.inc(C_EARLY_SKIPPED);
      return;
    }
    if (r.ok === false) {
      this.ctx.counters.inc(C_OPAQUE_BYTES, rec.fragment.length);
      if (this.outcome === 'pending') this.decide(r.reason, rec.tsUs);
      else this.lose(dir, rec.fragment.length, rec.tsUs);
      return;
    }
    if (r.type === CT_CHANGE_CIPHER_SPEC) {
      this.renegotiatedCipherSpec(dir);
      return;
    }
    if (r.type === CT_HANDSHAKE) {
      if (this.protectedHandshakes[dir].push(r.plaintext, (m) => this.protectedHandshake(dir, m, rec.tsUs)) === 'invalid') {
        this.ctx.counters.inc(A_HANDSHAKE_INVALID);
        this.stop(dir);
      }
      return;
    }
    if (r.type !== CT_APPLICATION_DATA) return; // alerts, heartbeats
    if (this.outcome === 'pending') this.decide(undefined, rec.tsUs);
    this.fields.decrypted_bytes += r.plaintext.length;
    this.ctx.counters.inc(C_DECRYPTED_BYTES, r.plaintext.length);
    if (this.inner === undefined) this.inner = this.ctx.inner(this.flow, this.fields.sni);
    this.inner?.data(dir, r.plaintext, rec.tsUs);
  }

  // --- handshake -----------------------------------------------------------------------------------

  private handshake(dir: Direction, m: HandshakeMessage, tsUs: number): void {
    const hs = this.hs;
    const c = this.ctx.counters;
    if (hs.encryptedPremaster === undefined) hs.transcript?.add(m.raw, c);
    if (dir === 0 && m.type === HT_CLIENT_HELLO) {
      // A second ClientHello answers a HelloRetryRequest: same client random, same connection.
      const ch = parseClientHello(m.body, c);
      if (ch === undefined) {
        c.inc(A_HANDSHAKE_INVALID);
        return;
      }
      const first = hs.clientHello === undefined;
      hs.clientHello = ch;
      if (first) this.describeClient(ch);
      return;
    }
    if (dir === 1 && m.type === HT_SERVER_HELLO) {
      const sh = parseServerHello(m.body, c);
      if (sh === undefined) {
        c.inc(A_HANDSHAKE_INVALID);
        return;
      }
      if (sh.helloRetryRequest) return;
      hs.serverHello = sh;
      this.fields.version = tlsVersionName(sh.version);
      this.fields.cipher_suite = suiteName(sh.cipherSuite);
      if (sh.alpn !== undefined) this.fields.server_alpn = sh.alpn;
      if (hs.clientHello !== undefined) this.fields.resumed = resumesSession(hs.clientHello, sh);
      if (sh.version === TLS13) {
        this.dirState[1] = 'protected';
        hs.transcript = undefined;
      }
      this.setUpKeys(tsUs);
      return;
    }
    if (dir === 1 && m.type === HT_CERTIFICATE) {
      this.serverCertificate(parseCertificateChain(m.body, false, c));
      return;
    }
    const sh = hs.serverHello;
    if (dir === 0 && m.type === HT_CLIENT_KEY_EXCHANGE && this.ctx.keys.rsaKeys !== undefined && sh !== undefined && isRsaKeyExchange(sh.cipherSuite)) {
      hs.encryptedPremaster = parseRsaClientKeyExchange(m.body, sh.version === SSL3, c);
      this.setUpKeys(tsUs);
    }
  }

  /** Handshake messages that arrived protected: TLS 1.3 flights and post-handshake messages, Finished, renegotiations. */
  private protectedHandshake(dir: Direction, m: HandshakeMessage, tsUs: number): void {
    const d = this.decryption;
    if (d === undefined) return;
    if (!d.tls13) {
      this.renegotiationMessage(dir, m);
      return;
    }
    if (m.type === HT_ENCRYPTED_EXTENSIONS && dir === 1) {
      const ee = parseEncryptedExtensions(m.body, this.ctx.counters);
      if (ee?.alpn !== undefined) this.fields.server_alpn = ee.alpn;
    } else if (m.type === HT_CERTIFICATE && dir === 1) {
      this.serverCertificate(parseCertificateChain(m.body, true, this.ctx.counters));
    } else if (m.type === HT_FINISHED || m.type === HT_END_OF_EARLY_DATA) {
      const next = d.afterHandshakeMessage(dir, m.type);
      if (next !== undefined) this.ciphers[dir] = next;
    } else if (m.type === HT_KEY_UPDATE) {
      this.ctx.counters.inc(C_KEY_UPDATE);
      if (parseKeyUpdate(m.body, this.ctx.counters) !== undefined) {
        const next = d.keyUpdate(dir);
        if (next !== undefined) this.ciphers[dir] = next;
      }
    }
    void tsUs;
  }

  /**
   * A TLS <= 1.2 handshake message inside the protected stream: a renegotiation (RFC 5246 §7.4.1.1-2; also
   * SSL 3.0). Its ClientHello starts a new handshake whose keys are set up like the first one's (key log,
   * RSA key, or the session cache when it resumes a session); Finished and HelloRequest change nothing here.
   */
  private renegotiationMessage(dir: Direction, m: HandshakeMessage): void {
    const c = this.ctx.counters;
    if (dir === 0 && m.type === HT_CLIENT_HELLO) {
      c.inc(C_RENEGOTIATION);
      if (++this.renegotiations > MAX_RENEGOTIATIONS_PER_FLOW) {
        c.inc(C_RENEGOTIATION_LIMIT);
        this.reneg = undefined;
        return;
      }
      const ch = parseClientHello(m.body, c);
      if (ch === undefined) {
        c.inc(A_HANDSHAKE_INVALID);
        this.reneg = undefined;
        return;
      }
      const transcript = this.ctx.keys.rsaKeys !== undefined ? new Transcript() : undefined;
      transcript?.add(m.raw, c);
      this.reneg = {
        clientHello: ch, serverHello: undefined, encryptedPremaster: undefined, transcript,
        decryption: undefined, failed: false, switched: [false, false],
      };
      return;
    }
    const r = this.reneg;
    if (r === undefined) return;
    if (r.encryptedPremaster === undefined && r.decryption === undefined) r.transcript?.add(m.raw, c);
    if (dir === 1 && m.type === HT_SERVER_HELLO && r.serverHello === undefined) {
      const sh = parseServerHello(m.body, c);
      if (sh === undefined) {
        c.inc(A_HANDSHAKE_INVALID);
        return;
      }
      r.serverHello = sh;
      this.renegotiationKeys(r);
    } else if (dir === 1 && m.type === HT_CERTIFICATE) {
      const modulus = certificateModulus(parseCertificateChain(m.body, false, c));
      if (modulus !== undefined) this.serverModulusHex = modulus;
    } else if (dir === 0 && m.type === HT_CLIENT_KEY_EXCHANGE && r.serverHello !== undefined
      && this.ctx.keys.rsaKeys !== undefined && isRsaKeyExchange(r.serverHello.cipherSuite)) {
      r.encryptedPremaster = parseRsaClientKeyExchange(m.body, r.serverHello.version === SSL3, c);
      this.renegotiationKeys(r);
    }
  }

  private renegotiationKeys(r: Renegotiation): void {
    if (r.decryption !== undefined || r.failed || r.serverHello === undefined) return;
    const made = this.createDecryption(r);
    if (made.ok) {
      r.decryption = made.decryption;
      r.transcript = undefined;
      return;
    }
    if (made.reason !== 'no_keys') {
      if (made.reason === 'compressed') this.ctx.counters.inc(C_COMPRESSED);
      r.failed = true;
    }
  }

  /** A protected ChangeCipherSpec: this direction moves to the renegotiated keys, or is lost without them. */
  private renegotiatedCipherSpec(dir: Direction): void {
    const r = this.reneg;
    if (r === undefined || r.serverHello === undefined) return; // no handshake under way: the keys stay
    const next = r.decryption?.initial(dir);
    if (next === undefined) {
      this.ctx.counters.inc(C_RENEGOTIATION_NO_KEYS);
      this.ctx.counters.inc(C_DIRECTION_LOST);
      this.dirState[dir] = this.inner !== undefined ? 'lost' : 'stopped';
      return;
    }
    this.ciphers[dir] = next;
    r.switched[dir] = true;
    if (r.switched[0] && r.switched[1]) {
      this.ctx.counters.inc(C_RENEGOTIATION_FOLLOWED);
      this.decryption = r.decryption;
      this.reneg = undefined;
    }
  }

  private describeClient(ch: ClientHello): void {
    if (ch.sni !== undefined) this.fields.sni = ch.sni;
    this.fields.client_alpns = [...ch.alpn];
    this.fields.ech = ch.echOuter;
    const j3 = ja3(ch);
    this.fields.ja3 = { hash: j3.hash, string: j3.text };
    this.fields.ja4 = ja4(ch, 'tcp');
  }

  /** The first server certificate names the server in the event; its modulus picks the RSA key. */
  private serverCertificate(chain: Uint8Array[] | undefined): void {
    if (chain === undefined || chain.length === 0 || this.fields.subject !== undefined) return;
    const cert = describeCertificate(chain[0]);
    if (cert === undefined) return;
    this.fields.subject = cert.subject;
    this.fields.issuerdn = cert.issuer;
    this.fields.serial = cert.serial;
    this.fields.fingerprint = cert.sha256;
    this.fields.notbefore = cert.notBefore;
    this.fields.notafter = cert.notAfter;
    if (cert.publicKeyModulusHex !== undefined) this.serverModulusHex = cert.publicKeyModulusHex;
  }

  // --- keys ----------------------------------------------------------------------------------------

  private createDecryption(h: Handshake): DecryptionSetup {
    const keys = this.ctx.keys;
    return createTlsDecryption({
      clientHello: h.clientHello as ClientHello,
      serverHello: h.serverHello as ServerHello,
      keyStore: keys.keyStore,
      rsaKeys: keys.rsaKeys,
      serverModulusHex: this.serverModulusHex,
      encryptedPremaster: h.encryptedPremaster,
      transcript: h.transcript?.messages,
      sessionCache: this.sessionCache,
    });
  }

  /** Builds the decryption state once the hellos (and, for RSA, the ClientKeyExchange) are known. */
  private setUpKeys(tsUs: number): void {
    if (this.decryption !== undefined || this.outcome === 'opaque') return;
    const ch = this.hs.clientHello;
    const sh = this.hs.serverHello;
    if (sh === undefined) return;
    if (ch === undefined) {
      this.decide('missing_client_hello', tsUs);
      return;
    }
    const keys = this.ctx.keys;
    const made = this.createDecryption(this.hs);
    if (made.ok) {
      this.decryption = made.decryption;
      this.ciphers[0] = made.decryption.initial(0);
      this.ciphers[1] = made.decryption.initial(1);
      this.hs.transcript = undefined;
      this.unsubscribe?.();
      this.unsubscribe = undefined;
      if (this.held.length > 0) this.replayHeld();
      return;
    }
    if (made.reason === 'compressed') {
      // RFC 3749 DEFLATE keeps one zlib stream per direction across records; its output is not undone here.
      this.ctx.counters.inc(C_COMPRESSED);
      this.decide('unsupported_suite', tsUs);
      return;
    }
    if (made.reason === 'unsupported_suite' || made.reason === 'non_rsa_key_exchange') {
      this.decide(made.reason, tsUs);
      return;
    }
    // No keys yet: wait for the key store when late keys can come, else give up now.
    if (keys.keyWaitUs > 0 && keys.keyStore !== undefined && (keys.waitOnlyOnceKeys !== true || keys.keyStore.hasHadKeys)) {
      if (this.unsubscribe === undefined && keys.keyStore !== undefined) {
        const crHex = Buffer.from(ch.random).toString('hex');
        this.unsubscribe = keys.keyStore.onKeys((hex) => {
          if (hex === crHex) this.keysArrived();
        });
      }
      return;
    }
    const rsaToCome = keys.rsaKeys !== undefined && sh.version !== TLS13 && this.hs.encryptedPremaster === undefined
      && isRsaKeyExchange(sh.cipherSuite) && !resumesSession(ch, sh);
    if (!rsaToCome) this.decide('no_keys', tsUs);
  }

  private keysArrived(): void {
    if (this.decryption !== undefined || this.outcome !== 'pending') return;
    const ch = this.hs.clientHello;
    const sh = this.hs.serverHello;
    if (ch === undefined || sh === undefined || !keyLogComplete(this.ctx.keys.keyStore, ch.random, sh.version)) return;
    this.ctx.counters.inc(C_KEYS_LATE);
    this.setUpKeys(this.lastTsUs);
  }

  private pendingReason(): NotDecryptedReason {
    if (this.hs.clientHello === undefined) return 'missing_client_hello';
    return 'no_keys';
  }

  private hold(dir: Direction, rec: TlsRecord): void {
    const size = rec.fragment.length;
    const cost = size + HELD_RECORD_OVERHEAD_BYTES;
    const budget = this.ctx.pending;
    if (this.heldCost() + cost > budget.maxBytesPerFlow || budget.used + cost > budget.maxBytes) {
      this.ctx.counters.inc(C_HELD_OVERFLOW);
      this.ctx.counters.inc(C_NEVER_KEYS);
      this.decide(this.pendingReason(), rec.tsUs);
      this.ctx.counters.inc(C_OPAQUE_BYTES, size);
      return;
    }
    if (this.held.length === 0) this.heldSinceUs = rec.tsUs;
    // a record of its own (the reader's views are reused); built field by field, not by spreading
    // rec and overriding two fields: V8 makes that spread-then-add pattern take microseconds
    const copy: TlsRecord = { type: rec.type, version: rec.version, header: rec.header.slice(), fragment: rec.fragment.slice(), tsUs: rec.tsUs };
    this.held.push({ dir, rec: copy });
    this.heldBytes += size;
    budget.used += cost;
    chargeMemory(this.ctx.counters, cost);
    this.ctx.counters.inc(C_HELD);
  }

  /** Lets go of every held record: the pending budget and the inspection memory get their cost back. */
  private dropHeld(): Held[] {
    const cost = this.heldCost();
    this.ctx.pending.used -= cost;
    chargeMemory(this.ctx.counters, -cost);
    this.heldBytes = 0;
    return this.held.splice(0);
  }

  /** What the held records cost the pending budget and the inspection memory gauge. */
  private heldCost(): number {
    return this.heldBytes + this.held.length * HELD_RECORD_OVERHEAD_BYTES;
  }

  private expireHeld(tsUs: number): void {
    if (this.outcome !== 'pending' || tsUs - this.heldSinceUs <= Math.max(this.ctx.keys.keyWaitUs, TLS_HANDSHAKE_WAIT_US)) return;
    this.ctx.counters.inc(C_NEVER_KEYS);
    this.decide(this.pendingReason(), tsUs);
  }

  private replayHeld(): void {
    const held = this.dropHeld();
    for (const h of held) {
      const state = this.dirState[h.dir];
      if (state === 'stopped' || state === 'lost' || this.outcome === 'opaque') continue;
      const cipher = this.ciphers[h.dir];
      if (cipher === undefined) {
        this.hold(h.dir, h.rec);
        continue;
      }
      this.decryptRecord(h.dir, cipher, h.rec);
    }
  }

  private release(): void {
    if (this.held.length > 0) {
      this.ctx.counters.inc(C_OPAQUE_BYTES, this.heldBytes);
      this.dropHeld();
    }
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  // --- outcome -------------------------------------------------------------------------------------

  /** Decrypting (reason undefined) or not, and why; emits the event. */
  private decide(reason: NotDecryptedReason | undefined, tsUs: number): void {
    if (this.outcome !== 'pending') return;
    if (reason === undefined) {
      this.outcome = 'decrypting';
      this.fields.decrypted = true;
      this.ctx.counters.inc(C_DECRYPTED_FLOWS);
    } else {
      this.outcome = 'opaque';
      this.reason = reason;
      this.ctx.counters.inc(notDecryptedCounter(reason));
      this.hs.transcript = undefined;
      this.reneg = undefined;
      this.release();
    }
    // The event waits for the end when decrypting, so it can say what was inside.
    // The event is written when the connection ends, so it can tell what was inside and how many
    // bytes went by; its time is when the outcome was decided.
    this.decidedAtUs = tsUs;
  }

  private decidedAtUs: number | undefined;

  private emit(endUs: number): void {
    if (this.emitted) return;
    this.emitted = true;
    const tsUs = this.decidedAtUs ?? endUs;
    if (this.reason !== undefined) this.fields.not_decrypted_reason = this.reason;
    const innerProto = this.inner !== undefined ? innerProtocolOf(this.inner) : undefined;
    if (innerProto !== undefined) this.fields.inner_app_proto = innerProto;
    this.ctx.onEvent(this.flow, tsUs, this.fields);
  }

  /** Decryption of `dir` broke off after it had begun: the inner consumer hears of the lost bytes. */
  private lose(dir: Direction, len: number, tsUs: number): void {
    this.ctx.counters.inc(C_DIRECTION_LOST);
    if (this.inner !== undefined && len > 0) this.inner.gap(dir, len, tsUs);
    this.stop(dir);
  }

  /**
   * Nothing more is read in `dir`: the partial record and handshake messages it holds can never complete,
   * so their buffers go now (app_layer.memuse), not at the flow's end. Safe from inside the reader's or a
   * reassembler's own push callback (they are then at a record or message boundary).
   */
  private stop(dir: Direction): void {
    this.dirState[dir] = 'stopped';
    this.letGo(dir);
  }

  /** The reader and reassemblers of `dir` let their buffers go; what the reader held still counts as gone by. */
  private letGo(dir: Direction): void {
    this.pendingAtStop[dir] += this.readers[dir].pendingBytes();
    this.readers[dir].reset();
    this.handshakes[dir].dispose();
    this.protectedHandshakes[dir].dispose();
  }
}

/** The protocol an inner probing consumer chose, when it exposes one. */
function innerProtocolOf(c: StreamConsumer): string | undefined {
  const p = (c as { protocol?: unknown }).protocol;
  return typeof p === 'string' ? p : undefined;
}

function isRsaKeyExchange(id: number): boolean {
  return suiteById(id)?.keyExchange === 'rsa';
}

/** Modulus of the end-entity certificate of a chain, when it has an RSA key. */
function certificateModulus(chain: Uint8Array[] | undefined): string | undefined {
  if (chain === undefined || chain.length === 0) return undefined;
  return describeCertificate(chain[0])?.publicKeyModulusHex;
}

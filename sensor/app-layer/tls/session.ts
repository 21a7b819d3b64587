/**
 * App layer, TLS: per-flow state for both directions (a `StreamConsumer`).
 * Input: reassembled stream bytes. Output: one `tls` event per connection (SNI, version, suite,
 * ALPN, JA3/JA4, server certificate, decrypted or why not) and, when the session's keys are known
 * (NSS key log, keys pushed over the local API, or an RSA server key), the decrypted application
 * data handed to an inner consumer (HTTP/1.x or HTTP/2, chosen by probing), as if it were cleartext.
 * Keys that arrive after the traffic are waited for: protected records are held, bounded in bytes
 * per flow, in bytes overall and in capture time, then decrypted or given up (counted).
 */
import type { Counters } from '../../events/counters.js';
import { defineAnomaly, defineCounter } from '../../events/counters.js';
import type { NotDecryptedReason, TlsFields } from '../../events/tls.js';
import type { CloseReason, Direction, FlowInfo, StreamConsumer } from '../../flow/stream.js';
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
import { createTlsDecryption, type DirectionCipher, type TlsDecryption } from './decryption.js';

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

const TLS13 = 0x0304;

/** Protected bytes held per flow while its keys are awaited: a browser's first requests and a page or two. */
export const TLS_PENDING_MAX_BYTES_PER_FLOW = 4 * 1024 * 1024;
/** Protected bytes held across all flows awaiting keys. */
export const TLS_PENDING_MAX_BYTES_TOTAL = 64 * 1024 * 1024;
/** How long (capture time) a flow's records wait for late keys by default: key loggers write at once,
 * agents pushing keys over the local API within seconds. */
export const TLS_KEY_WAIT_US = 10_000_000;
/** Records wait at least this long (capture time) for the rest of the handshake to bring their keys
 * (a ClientKeyExchange, a ServerHello after 0-RTT data), even when late keys are not awaited. */
export const TLS_HANDSHAKE_WAIT_US = 5_000_000;
/** Handshake messages kept for the RSA extended-master-secret session hash (RFC 7627): ClientHello to
 * ClientKeyExchange, certificate chains included. */
const MAX_TRANSCRIPT_BYTES = 512 * 1024;

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
const C_RENEGOTIATION = defineCounter('tls.encrypted_handshake_ignored');
const C_TRANSCRIPT_OVERFLOW = defineCounter('tls.transcript_overflow');
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
}

/** Bytes held by all sessions awaiting keys. */
export class PendingBudget {
  used = 0;
  constructor(readonly maxBytes: number = TLS_PENDING_MAX_BYTES_TOTAL) {}
}

export interface TlsSessionContext {
  readonly counters: Counters;
  readonly keys: TlsKeySources;
  readonly pending: PendingBudget;
  /** Consumer of decrypted application data (probes HTTP/1.x and HTTP/2); `sni` names the server. */
  readonly inner: (flow: FlowInfo, sni: string | undefined) => StreamConsumer | undefined;
  readonly onEvent: (flow: FlowInfo, tsUs: number, tls: TlsFields) => void;
}

interface Held {
  readonly dir: Direction;
  readonly rec: TlsRecord;
}

type DirState = 'clear' | 'protected' | 'stopped';

export class TlsSession implements StreamConsumer {
  private readonly readers: [TlsRecordReader, TlsRecordReader];
  private readonly handshakes: [HandshakeReassembler, HandshakeReassembler];
  /** Handshake messages inside protected records (TLS 1.3 server flight, Finished, KeyUpdate). */
  private readonly protectedHandshakes: [HandshakeReassembler, HandshakeReassembler];
  private readonly dirState: [DirState, DirState] = ['clear', 'clear'];
  private clientHello: ClientHello | undefined;
  private serverHello: ServerHello | undefined;
  private encryptedPremaster: Uint8Array | undefined;
  private transcript: Uint8Array[] | undefined = [];
  private transcriptBytes = 0;
  private decryption: TlsDecryption | undefined;
  private readonly ciphers: [DirectionCipher | undefined, DirectionCipher | undefined] = [undefined, undefined];
  private readonly held: Held[] = [];
  private heldBytes = 0;
  private heldSinceUs = 0;
  private unsubscribe: (() => void) | undefined;
  private outcome: 'pending' | 'decrypting' | 'opaque' = 'pending';
  private reason: NotDecryptedReason | undefined;
  private inner: StreamConsumer | undefined;
  private innerProto: string | undefined;
  private emitted = false;
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
    if (ctx.keys.rsaKeys === undefined) this.transcript = undefined;
  }

  data(dir: Direction, bytes: Uint8Array, tsUs: number): void {
    this.lastTsUs = tsUs;
    if (this.dirState[dir] === 'stopped') return;
    if (this.held.length > 0) this.expireHeld(tsUs);
    const r = this.readers[dir].push(bytes, tsUs, (rec) => this.record(dir, rec));
    if (r === 'invalid') {
      this.ctx.counters.inc(A_INVALID);
      this.stop(dir, tsUs);
    }
  }

  gap(dir: Direction, len: number, tsUs: number): void {
    this.lastTsUs = tsUs;
    // Records have no resync marker and AEAD nonces count records: this direction is lost.
    if (this.dirState[dir] === 'stopped') return;
    if (this.outcome === 'pending' && this.clientHello === undefined) this.decide('missing_client_hello', tsUs);
    else if (this.outcome === 'pending') this.decide('gap', tsUs);
    this.inner?.gap(dir, len, tsUs);
    this.stop(dir, tsUs);
  }

  end(reason: CloseReason, tsUs: number): void {
    this.lastTsUs = tsUs;
    if (this.outcome === 'pending') {
      if (this.held.length > 0) {
        this.ctx.counters.inc(C_NEVER_KEYS);
        this.decide(this.pendingReason(), tsUs);
      } else if (this.clientHello === undefined && this.fields.app_bytes > 0) this.decide('missing_client_hello', tsUs);
      else this.decide('no_application_data', tsUs);
    }
    this.emit(tsUs);
    this.release();
    this.inner?.end(reason, tsUs);
  }

  // --- records -------------------------------------------------------------------------------------

  private record(dir: Direction, rec: TlsRecord): void {
    if (this.dirState[dir] === 'stopped') return;
    const tls13 = this.serverHello?.version === TLS13;
    if (rec.type === CONTENT_TYPE_SSL2_CLIENT_HELLO) {
      const ch = dir === 0 && this.clientHello === undefined ? parseSsl2ClientHello(rec.fragment, this.ctx.counters) : undefined;
      if (ch !== undefined) {
        this.clientHello = ch;
        this.describeClient(ch);
        if (this.transcript !== undefined) this.transcript.push(rec.fragment.slice());
      }
      return;
    }
    if (rec.type === CT_CHANGE_CIPHER_SPEC) {
      // TLS 1.3 sends it only for middlebox compatibility; before 1.3 it switches this direction to protected.
      if (!tls13 && this.serverHello !== undefined) this.dirState[dir] = 'protected';
      return;
    }
    if (this.dirState[dir] === 'clear' && (rec.type === CT_HANDSHAKE || rec.type === CT_ALERT)) {
      if (rec.type === CT_HANDSHAKE && this.handshakes[dir].push(rec.fragment, (m) => this.handshake(dir, m, rec.tsUs)) === 'invalid') {
        this.ctx.counters.inc(A_HANDSHAKE_INVALID);
        this.stop(dir, rec.tsUs);
      }
      return;
    }
    if (rec.type === CT_APPLICATION_DATA || this.dirState[dir] === 'protected') this.protectedRecord(dir, rec);
  }

  private protectedRecord(dir: Direction, rec: TlsRecord): void {
    this.fields.app_bytes += rec.fragment.length;
    if (this.outcome === 'opaque') {
      this.ctx.counters.inc(C_OPAQUE_BYTES, rec.fragment.length);
      return;
    }
    const cipher = this.ciphers[dir];
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
      else this.stop(dir, rec.tsUs);
      return;
    }
    if (r.type === CT_HANDSHAKE) {
      if (this.protectedHandshakes[dir].push(r.plaintext, (m) => this.protectedHandshake(dir, m, rec.tsUs)) === 'invalid') {
        this.ctx.counters.inc(A_HANDSHAKE_INVALID);
        this.stop(dir, rec.tsUs);
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

  private keepTranscript(m: HandshakeMessage): void {
    if (this.transcript === undefined) return;
    if (this.transcriptBytes + m.raw.length > MAX_TRANSCRIPT_BYTES) {
      this.ctx.counters.inc(C_TRANSCRIPT_OVERFLOW);
      this.transcript = undefined;
      return;
    }
    this.transcript.push(m.raw.slice());
    this.transcriptBytes += m.raw.length;
  }

  private handshake(dir: Direction, m: HandshakeMessage, tsUs: number): void {
    if (this.encryptedPremaster === undefined) this.keepTranscript(m);
    if (dir === 0 && m.type === HT_CLIENT_HELLO) {
      // A second ClientHello answers a HelloRetryRequest: same client random, same connection.
      const ch = parseClientHello(m.body, this.ctx.counters);
      if (ch === undefined) {
        this.ctx.counters.inc(A_HANDSHAKE_INVALID);
        return;
      }
      const first = this.clientHello === undefined;
      this.clientHello = ch;
      if (first) this.describeClient(ch);
      return;
    }
    if (dir === 1 && m.type === HT_SERVER_HELLO) {
      const sh = parseServerHello(m.body, this.ctx.counters);
      if (sh === undefined) {
        this.ctx.counters.inc(A_HANDSHAKE_INVALID);
        return;
      }
      if (sh.helloRetryRequest) return;
      this.serverHello = sh;
      this.fields.version = tlsVersionName(sh.version);
      this.fields.cipher_suite = suiteLabel(sh.cipherSuite);
      if (sh.alpn !== undefined) this.fields.server_alpn = sh.alpn;
      const ch = this.clientHello;
      this.fields.resumed = sh.version !== TLS13 && ch !== undefined && ch.sessionId.length > 0 && equalBytes(ch.sessionId, sh.sessionId);
      if (sh.version === TLS13) {
        this.dirState[1] = 'protected';
        this.transcript = undefined;
      }
      this.setUpKeys(tsUs);
      return;
    }
    if (dir === 1 && m.type === HT_CERTIFICATE && this.fields.subject === undefined) {
      this.describeServerCertificate(parseCertificateChain(m.body, false, this.ctx.counters));
      return;
    }
    if (dir === 0 && m.type === HT_CLIENT_KEY_EXCHANGE && this.ctx.keys.rsaKeys !== undefined) {
      this.encryptedPremaster = parseRsaClientKeyExchange(m.body, this.serverHello?.version === 0x0300, this.ctx.counters);
      this.setUpKeys(tsUs);
    }
  }

  /** Handshake messages that arrived protected: TLS 1.3 flights and post-handshake messages, Finished. */
  private protectedHandshake(dir: Direction, m: HandshakeMessage, tsUs: number): void {
    const d = this.decryption;
    if (d === undefined) return;
    if (m.type === HT_ENCRYPTED_EXTENSIONS && dir === 1) {
      const ee = parseEncryptedExtensions(m.body, this.ctx.counters);
      if (ee?.alpn !== undefined) this.fields.server_alpn = ee.alpn;
    } else if (m.type === HT_CERTIFICATE && dir === 1 && this.fields.subject === undefined) {
      this.describeServerCertificate(parseCertificateChain(m.body, d.tls13, this.ctx.counters));
    } else if (m.type === HT_FINISHED || m.type === HT_END_OF_EARLY_DATA) {
      const next = d.afterHandshakeMessage(dir, m.type);
      if (next !== undefined) this.ciphers[dir] = next;
    } else if (m.type === HT_KEY_UPDATE && d.tls13) {
      this.ctx.counters.inc(C_KEY_UPDATE);
      if (parseKeyUpdate(m.body, this.ctx.counters) !== undefined) {
        const next = d.keyUpdate(dir);
        if (next !== undefined) this.ciphers[dir] = next;
      }
    } else if (!d.tls13 && m.type !== HT_FINISHED) {
      this.ctx.counters.inc(C_RENEGOTIATION);
    }
    void tsUs;
  }

  private describeClient(ch: ClientHello): void {
    if (ch.sni !== undefined) this.fields.sni = ch.sni;
    this.fields.client_alpns = [...ch.alpn];
    this.fields.ech = ch.echOuter;
    const j3 = ja3(ch);
    this.fields.ja3 = { hash: j3.hash, string: j3.text };
    this.fields.ja4 = ja4(ch, 'tcp');
  }

  private describeServerCertificate(chain: Uint8Array[] | undefined): void {
    if (chain === undefined || chain.length === 0) return;
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

  private serverModulusHex: string | undefined;

  // --- keys ----------------------------------------------------------------------------------------

  /** Builds the decryption state once the hellos (and, for RSA, the ClientKeyExchange) are known. */
  private setUpKeys(tsUs: number): void {
    if (this.decryption !== undefined || this.outcome === 'opaque') return;
    const ch = this.clientHello;
    const sh = this.serverHello;
    if (sh === undefined) return;
    if (ch === undefined) {
      this.decide('missing_client_hello', tsUs);
      return;
    }
    const made = createTlsDecryption({
      clientHello: ch,
      serverHello: sh,
      keyStore: this.ctx.keys.keyStore,
      rsaKeys: this.ctx.keys.rsaKeys,
      serverModulusHex: this.serverModulusHex,
      encryptedPremaster: this.encryptedPremaster,
      transcript: this.transcript,
    });
    if (made.ok) {
      this.decryption = made.decryption;
      this.ciphers[0] = made.decryption.initial(0);
      this.ciphers[1] = made.decryption.initial(1);
      this.transcript = undefined;
      if (this.held.length > 0) this.replayHeld();
      return;
    }
    if (made.reason === 'unsupported_suite' || made.reason === 'non_rsa_key_exchange') {
      this.decide(made.reason, tsUs);
      return;
    }
    // No keys yet: wait for the key store when late keys can come, else give up now.
    if (this.ctx.keys.keyWaitUs > 0 && this.ctx.keys.keyStore !== undefined) {
      if (this.unsubscribe === undefined) {
        const crHex = Buffer.from(ch.random).toString('hex');
        this.unsubscribe = this.ctx.keys.keyStore.onKeys((hex) => {
          if (hex === crHex) this.keysArrived();
        });
      }
      return;
    }
    if (!(this.ctx.keys.rsaKeys !== undefined && sh.version !== TLS13 && this.encryptedPremaster === undefined && isRsaKeyExchange(sh.cipherSuite))) {
      this.decide('no_keys', tsUs);
    }
  }

  private keysArrived(): void {
    if (this.decryption !== undefined || this.outcome !== 'pending') return;
    this.ctx.counters.inc(C_KEYS_LATE);
    this.setUpKeys(this.lastTsUs);
  }

  private pendingReason(): NotDecryptedReason {
    if (this.clientHello === undefined) return 'missing_client_hello';
    return 'no_keys';
  }

  private hold(dir: Direction, rec: TlsRecord): void {
    const size = rec.fragment.length;
    const budget = this.ctx.pending;
    if (this.heldBytes + size > TLS_PENDING_MAX_BYTES_PER_FLOW || budget.used + size > budget.maxBytes) {
      this.ctx.counters.inc(C_HELD_OVERFLOW);
      this.ctx.counters.inc(C_NEVER_KEYS);
      this.decide(this.pendingReason(), rec.tsUs);
      this.ctx.counters.inc(C_OPAQUE_BYTES, size);
      return;
    }
    if (this.held.length === 0) this.heldSinceUs = rec.tsUs;
    this.held.push({ dir, rec: { ...rec, fragment: rec.fragment.slice(), header: rec.header.slice() } });
    this.heldBytes += size;
    budget.used += size;
    this.ctx.counters.inc(C_HELD);
  }

  private expireHeld(tsUs: number): void {
    if (this.outcome !== 'pending' || tsUs - this.heldSinceUs <= Math.max(this.ctx.keys.keyWaitUs, TLS_HANDSHAKE_WAIT_US)) return;
    this.ctx.counters.inc(C_NEVER_KEYS);
    this.decide(this.pendingReason(), tsUs);
  }

  private replayHeld(): void {
    const held = this.held.splice(0);
    this.ctx.pending.used -= this.heldBytes;
    this.heldBytes = 0;
    for (const h of held) {
      if (this.dirState[h.dir] === 'stopped' || this.outcome === 'opaque') continue;
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
      this.ctx.pending.used -= this.heldBytes;
      this.held.length = 0;
      this.heldBytes = 0;
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
      this.release();
    }
    // The event waits for the end when decrypting, so it can say what was inside.
    if (reason !== undefined) this.emit(tsUs);
  }

  private emit(tsUs: number): void {
    if (this.emitted) return;
    this.emitted = true;
    if (this.reason !== undefined) this.fields.not_decrypted_reason = this.reason;
    this.innerProto = this.inner !== undefined ? innerProtocolOf(this.inner) : undefined;
    if (this.innerProto !== undefined) this.fields.inner_app_proto = this.innerProto;
    this.ctx.onEvent(this.flow, tsUs, this.fields);
  }

  private stop(dir: Direction, tsUs: number): void {
    this.dirState[dir] = 'stopped';
    void tsUs;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The protocol an inner probing consumer chose, when it exposes one. */
function innerProtocolOf(c: StreamConsumer): string | undefined {
  const p = (c as { protocol?: unknown }).protocol;
  return typeof p === 'string' ? p : undefined;
}

import { suiteById, suiteName } from './suites.js';

function suiteLabel(id: number): string {
  return suiteName(id);
}

function isRsaKeyExchange(id: number): boolean {
  return suiteById(id)?.keyExchange === 'rsa';
}

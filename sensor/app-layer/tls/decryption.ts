/**
 * TLS decryption state of one handshake: from the hellos and a key source (NSS key log secrets, an
 * RSA server key and the ClientKeyExchange, or the cached master secret of a resumed RSA session) to
 * one record decryptor per direction, and how each direction moves on: TLS 1.3 early data ->
 * handshake -> application keys, KeyUpdate; TLS <= 1.2 one key block per handshake (a renegotiation
 * is a new handshake). Input: parsed hellos and secrets. Output: per-direction ciphers that decrypt
 * records in order, or the reason decryption cannot start.
 */
import type { Counters } from '../../events/counters.js';
import { defineCounter } from '../../events/counters.js';
import type { NotDecryptedReason } from '../../events/tls.js';
import type { ClientHello, ServerHello } from './handshake.js';
import { extendedMasterSecret, keyBlock, masterSecret, sessionHash, tls13NextTrafficSecret } from './key-schedule.js';
import type { KeyStore, SessionSecrets } from './keylog.js';
import { RecordDecryptor, tls12Decryptors, tls13Decryptor } from './record-cipher.js';
import type { RsaKeyRing } from './rsa.js';
import { suiteById, type CipherSuite } from './suites.js';
import type { TlsRecord } from './record.js';

const TLS13 = 0x0304;
const HT_END_OF_EARLY_DATA = 5;
const HT_FINISHED = 20;
/** CompressionMethod null (RFC 5246 §7.4.1.2); anything else (DEFLATE, RFC 3749) is not decompressed. */
const COMPRESSION_NULL = 0;

/**
 * Master secrets of TLS <= 1.2 sessions keyed by an RSA server key, by session id, for the abbreviated
 * handshakes that resume them on later connections (RFC 5246 §7.3): no ClientKeyExchange there, so the RSA
 * key alone cannot open them. 16 Ki entries of ~150 bytes (2.4 MiB measured) are as many sessions as a
 * 4 MB nginx ssl_session_cache holds (its docs: 1 MB ~ 4000 sessions), for the minutes clients resume
 * within. With a key log, CLIENT_RANDOM lines already cover resumed sessions: those are not cached.
 */
export const TLS_SESSION_CACHE_MAX_ENTRIES = 16 * 1024;

const C_CACHE_STORED = defineCounter('tls.session_cache.stored');
const C_CACHE_HITS = defineCounter('tls.session_cache.hits');
const C_CACHE_MISSES = defineCounter('tls.session_cache.misses');
const C_CACHE_EVICTED = defineCounter('tls.session_cache.evicted');

/** Session id -> master secret, bounded (the least recently stored or used is evicted, counted). Shared by
 * every flow of a sensor. */
export class TlsSessionCache {
  private readonly masters = new Map<string, Uint8Array>();
  private evictedCount = 0;

  constructor(private readonly counters?: Counters, readonly maxEntries: number = TLS_SESSION_CACHE_MAX_ENTRIES) {}

  set(sessionId: Uint8Array, master: Uint8Array): void {
    if (sessionId.length === 0 || this.maxEntries <= 0) return;
    const id = Buffer.from(sessionId.buffer, sessionId.byteOffset, sessionId.byteLength).toString('hex');
    this.masters.delete(id);
    this.masters.set(id, Uint8Array.from(master));
    this.counters?.inc(C_CACHE_STORED);
    while (this.masters.size > this.maxEntries) {
      const oldest = this.masters.keys().next();
      if (oldest.done) break;
      this.masters.delete(oldest.value);
      this.evictedCount++;
      this.counters?.inc(C_CACHE_EVICTED);
    }
  }

  get(sessionId: Uint8Array): Uint8Array | undefined {
    const id = Buffer.from(sessionId.buffer, sessionId.byteOffset, sessionId.byteLength).toString('hex');
    const m = this.masters.get(id);
    if (m === undefined) {
      this.counters?.inc(C_CACHE_MISSES);
      return undefined;
    }
    this.counters?.inc(C_CACHE_HITS);
    // Refresh: a session still being resumed is worth keeping.
    this.masters.delete(id);
    this.masters.set(id, m);
    return m;
  }

  get size(): number {
    return this.masters.size;
  }

  /** Entries dropped by the size bound since creation. */
  get evicted(): number {
    return this.evictedCount;
  }
}

export type DecryptResult =
  | { ok: true; type: number; plaintext: Uint8Array }
  | { ok: false; reason: NotDecryptedReason }
  /** A record nobody can decrypt by design (0-RTT data the server rejected): skip it. */
  | { ok: 'skip' };

export interface DirectionCipher {
  decrypt(rec: TlsRecord): DecryptResult;
}

export interface TlsDecryption {
  readonly tls13: boolean;
  /** The cipher for the first protected record of a direction. */
  initial(dir: 0 | 1): DirectionCipher | undefined;
  /** After a protected Finished / EndOfEarlyData of `dir`: the cipher that follows, if it changes. */
  afterHandshakeMessage(dir: 0 | 1, type: number): DirectionCipher | undefined;
  /** After a KeyUpdate sent by `dir`: its next cipher. */
  keyUpdate(dir: 0 | 1): DirectionCipher | undefined;
}

export interface DecryptionInputs {
  readonly clientHello: ClientHello;
  readonly serverHello: ServerHello;
  readonly keyStore?: KeyStore;
  readonly rsaKeys?: RsaKeyRing;
  readonly serverModulusHex?: string;
  readonly encryptedPremaster?: Uint8Array;
  /** Raw handshake messages ClientHello..ClientKeyExchange, for the extended master secret. */
  readonly transcript?: readonly Uint8Array[];
  /** Master secrets of earlier RSA-keyed sessions, for resumption; RSA-keyed full handshakes are stored in it. */
  readonly sessionCache?: TlsSessionCache;
}

export type DecryptionSetup =
  | { ok: true; decryption: TlsDecryption }
  /** `compressed`: the session negotiated record compression (RFC 3749), which is not undone. */
  | { ok: false; reason: 'no_keys' | 'unsupported_suite' | 'non_rsa_key_exchange' | 'compressed' };

/** The ServerHello resumes the session the ClientHello offered (RFC 5246 §7.4.1.3: same non-empty id). */
export function resumesSession(ch: ClientHello, sh: ServerHello): boolean {
  if (sh.version === TLS13) return sh.pskSelected;
  const a = ch.sessionId;
  const b = sh.sessionId;
  if (a.length === 0 || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The key log holds everything a connection of this version needs (what `createTlsDecryption` asks of it):
 * TLS 1.3 both handshake and both application traffic secrets, TLS <= 1.2 the master secret. Keys that
 * arrive line by line are acted on once this holds.
 */
export function keyLogComplete(keyStore: KeyStore | undefined, clientRandom: Uint8Array, version: number): boolean {
  const s = keyStore?.get(clientRandom);
  if (s === undefined) return false;
  if (version !== TLS13) return s.masterSecret !== undefined;
  return s.clientHandshakeTrafficSecret !== undefined && s.serverHandshakeTrafficSecret !== undefined
    && s.clientTrafficSecret0 !== undefined && s.serverTrafficSecret0 !== undefined;
}

/** One direction's AEAD or CBC state. */
class SimpleCipher implements DirectionCipher {
  constructor(private readonly dec: RecordDecryptor) {}

  decrypt(rec: TlsRecord): DecryptResult {
    const r = this.dec.decrypt(rec.type, rec.header, rec.fragment);
    if (r.ok) return { ok: true, type: r.type, plaintext: r.plaintext };
    return { ok: false, reason: r.reason === 'unsupported' ? 'unsupported_suite' : 'bad_key' };
  }
}

/**
 * The client direction of TLS 1.3 with 0-RTT offered: records are tried with the early keys, and
 * once one fails (the server rejected early data, or early data is over) with the handshake keys.
 * Records that neither opens before the handshake keys first succeed are rejected 0-RTT: skipped.
 */
class EarlyDataCipher implements DirectionCipher {
  private phase: 'early' | 'handshake' = 'early';
  private handshakeOpened = false;

  constructor(private readonly early: RecordDecryptor | undefined, private readonly handshake: RecordDecryptor) {}

  decrypt(rec: TlsRecord): DecryptResult {
    if (this.phase === 'early' && this.early !== undefined) {
      const r = this.early.tryDecrypt(rec.type, rec.header, rec.fragment);
      if (r.ok) return { ok: true, type: r.type, plaintext: r.plaintext };
    }
    const r = this.handshake.tryDecrypt(rec.type, rec.header, rec.fragment);
    if (r.ok) {
      this.phase = 'handshake';
      this.handshakeOpened = true;
      return { ok: true, type: r.type, plaintext: r.plaintext };
    }
    if (!this.handshakeOpened) return { ok: 'skip' };
    return { ok: false, reason: 'bad_key' };
  }

  /** EndOfEarlyData seen: the next records use the handshake keys. */
  endEarly(): void {
    this.phase = 'handshake';
  }
}


class Tls13Decryption implements TlsDecryption {
  readonly tls13 = true;
  private readonly trafficSecret: [Uint8Array | undefined, Uint8Array | undefined];
  private readonly clientInitial: DirectionCipher | undefined;
  private readonly serverInitial: DirectionCipher | undefined;

  constructor(private readonly suite: CipherSuite, s: Readonly<SessionSecrets>, earlyOffered: boolean) {
    this.trafficSecret = [s.clientTrafficSecret0, s.serverTrafficSecret0];
    const chs = s.clientHandshakeTrafficSecret;
    const shs = s.serverHandshakeTrafficSecret;
    if (chs !== undefined) {
      const hs = tls13Decryptor(suite, chs);
      const early = earlyOffered && s.clientEarlyTrafficSecret !== undefined ? tls13Decryptor(suite, s.clientEarlyTrafficSecret) : undefined;
      this.clientInitial = earlyOffered ? new EarlyDataCipher(early, hs) : new SimpleCipher(hs);
    }
    if (shs !== undefined) this.serverInitial = new SimpleCipher(tls13Decryptor(suite, shs));
  }

  initial(dir: 0 | 1): DirectionCipher | undefined {
    return dir === 0 ? this.clientInitial : this.serverInitial;
  }

  afterHandshakeMessage(dir: 0 | 1, type: number): DirectionCipher | undefined {
    if (type === HT_END_OF_EARLY_DATA && dir === 0) {
      if (this.clientInitial instanceof EarlyDataCipher) this.clientInitial.endEarly();
      return undefined;
    }
    if (type !== HT_FINISHED) return undefined;
    const secret = this.trafficSecret[dir];
    return secret === undefined ? undefined : new SimpleCipher(tls13Decryptor(this.suite, secret));
  }

  keyUpdate(dir: 0 | 1): DirectionCipher | undefined {
    const secret = this.trafficSecret[dir];
    if (secret === undefined) return undefined;
    const next = tls13NextTrafficSecret(this.suite.prfHash, secret);
    this.trafficSecret[dir] = next;
    return new SimpleCipher(tls13Decryptor(this.suite, next));
  }
}

class Tls12Decryption implements TlsDecryption {
  readonly tls13 = false;
  private readonly ciphers: [DirectionCipher, DirectionCipher];

  constructor(suite: CipherSuite, version: number, master: Uint8Array, ch: ClientHello, sh: ServerHello) {
    const d = tls12Decryptors(suite, version, keyBlock(version, suite, master, ch.random, sh.random), sh.encryptThenMac);
    this.ciphers = [new SimpleCipher(d.client), new SimpleCipher(d.server)];
  }

  initial(dir: 0 | 1): DirectionCipher {
    return this.ciphers[dir];
  }

  afterHandshakeMessage(): undefined {
    return undefined;
  }

  keyUpdate(): undefined {
    return undefined;
  }
}

/** Master secret of a TLS <= 1.2 session from its RSA-encrypted premaster, when an RSA key opens it. */
function masterFromRsa(suite: CipherSuite, version: number, inp: DecryptionInputs): Uint8Array | undefined {
  const ring = inp.rsaKeys;
  const enc = inp.encryptedPremaster;
  if (ring === undefined || enc === undefined) return undefined;
  const byModulus = inp.serverModulusHex !== undefined ? ring.forModulus(inp.serverModulusHex) : undefined;
  const keys = byModulus !== undefined ? [byModulus] : ring.all();
  for (const key of keys) {
    const pre = ring.decryptPremaster(key, enc);
    if (pre === undefined || pre.length !== 48) continue;
    if (inp.serverHello.extendedMasterSecret) {
      if (inp.transcript === undefined) return undefined;
      return extendedMasterSecret(version, suite.prfHash, pre, sessionHash(version, suite.prfHash, inp.transcript));
    }
    return masterSecret(version, suite.prfHash, pre, inp.clientHello.random, inp.serverHello.random);
  }
  return undefined;
}

/** The decryption state for a handshake, or why there is none (yet). */
export function createTlsDecryption(inp: DecryptionInputs): DecryptionSetup {
  const sh = inp.serverHello;
  const suite = suiteById(sh.cipherSuite);
  if (suite === undefined) return { ok: false, reason: 'unsupported_suite' };
  if (sh.compression !== COMPRESSION_NULL) return { ok: false, reason: 'compressed' };
  const secrets = inp.keyStore?.get(Buffer.from(inp.clientHello.random).toString('hex'));
  if (sh.version === TLS13) {
    // All four secrets, or none yet: key log lines arrive one at a time, and starting with some of them
    // would consume records with keys that cannot follow the handshake into application data.
    if (secrets === undefined || secrets.clientHandshakeTrafficSecret === undefined || secrets.serverHandshakeTrafficSecret === undefined
      || secrets.clientTrafficSecret0 === undefined || secrets.serverTrafficSecret0 === undefined) {
      return { ok: false, reason: inp.keyStore === undefined && inp.rsaKeys !== undefined ? 'non_rsa_key_exchange' : 'no_keys' };
    }
    return { ok: true, decryption: new Tls13Decryption(suite, secrets, inp.clientHello.earlyData) };
  }
  if (sh.version < 0x0300 || sh.version > 0x0303) return { ok: false, reason: 'unsupported_suite' };
  let master: Uint8Array | undefined = secrets?.masterSecret;
  if (master === undefined && inp.sessionCache !== undefined && resumesSession(inp.clientHello, sh)) {
    master = inp.sessionCache.get(sh.sessionId);
  } else if (master === undefined) {
    master = masterFromRsa(suite, sh.version, inp);
    if (master !== undefined) inp.sessionCache?.set(sh.sessionId, master);
  }
  if (master === undefined) {
    if (inp.keyStore === undefined && inp.rsaKeys !== undefined && suite.keyExchange !== 'rsa') return { ok: false, reason: 'non_rsa_key_exchange' };
    return { ok: false, reason: 'no_keys' };
  }
  return { ok: true, decryption: new Tls12Decryption(suite, sh.version, master, inp.clientHello, sh) };
}

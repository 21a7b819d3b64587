/**
 * TLS decryption state of one connection: from the hellos and a key source (NSS key log secrets,
 * or an RSA server key and the ClientKeyExchange) to one record decryptor per direction, and how
 * each direction moves on: TLS 1.3 early data -> handshake -> application keys, KeyUpdate; TLS 1.2
 * one key block for the whole connection. Input: parsed hellos and secrets. Output: per-direction
 * ciphers that decrypt records in order, or the reason decryption cannot start.
 */
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
}

export type DecryptionSetup =
  | { ok: true; decryption: TlsDecryption }
  | { ok: false; reason: 'no_keys' | 'unsupported_suite' | 'non_rsa_key_exchange' };

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

/** The decryption state for a connection, or why there is none (yet). */
export function createTlsDecryption(inp: DecryptionInputs): DecryptionSetup {
  const sh = inp.serverHello;
  const suite = suiteById(sh.cipherSuite);
  if (suite === undefined) return { ok: false, reason: 'unsupported_suite' };
  const secrets = inp.keyStore?.get(Buffer.from(inp.clientHello.random).toString('hex'));
  if (sh.version === TLS13) {
    if (secrets === undefined || (secrets.clientHandshakeTrafficSecret === undefined && secrets.serverHandshakeTrafficSecret === undefined)) {
      return { ok: false, reason: inp.keyStore === undefined && inp.rsaKeys !== undefined ? 'non_rsa_key_exchange' : 'no_keys' };
    }
    return { ok: true, decryption: new Tls13Decryption(suite, secrets, inp.clientHello.earlyData) };
  }
  if (sh.version < 0x0300 || sh.version > 0x0303) return { ok: false, reason: 'unsupported_suite' };
  const master = secrets?.masterSecret ?? masterFromRsa(suite, sh.version, inp);
  if (master === undefined) {
    if (inp.keyStore === undefined && inp.rsaKeys !== undefined && suite.keyExchange !== 'rsa') return { ok: false, reason: 'non_rsa_key_exchange' };
    return { ok: false, reason: 'no_keys' };
  }
  return { ok: true, decryption: new Tls12Decryption(suite, sh.version, master, inp.clientHello, sh) };
}

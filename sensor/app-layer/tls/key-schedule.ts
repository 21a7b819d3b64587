/**
 * App layer, TLS: key derivation. Input: secrets from a key log or an RSA-decrypted premaster, the
 * hello randoms, the negotiated version and suite. Output: record keys.
 * SSL 3.0 (RFC 6101 §6.1-6.2.2), the TLS 1.0/1.1 PRF (RFC 2246 §5, MD5 xor SHA-1), the TLS 1.2 PRF
 * (RFC 5246 §5), master and extended master secret (RFC 5246 §8.1, RFC 7627 §4), the key block
 * (RFC 5246 §6.3), and for TLS 1.3 HKDF-Expand-Label, traffic keys and KeyUpdate (RFC 8446 §7.1-7.3).
 * Pure functions over node:crypto; they run once per session, never per record.
 */

import { createHash, createHmac } from 'node:crypto';
import type { CipherSuite, PrfHash } from './suites.js';

export const SSL3_VERSION = 0x0300;
export const TLS10_VERSION = 0x0301;
export const TLS11_VERSION = 0x0302;
export const TLS12_VERSION = 0x0303;
export const TLS13_VERSION = 0x0304;

/** RFC 5246 §8.1: the master secret is always 48 bytes. */
export const MASTER_SECRET_LEN = 48;
/** Hello randoms are 32 bytes (RFC 5246 §7.4.1.2). */
export const RANDOM_LEN = 32;

const HASH_LEN: Readonly<Record<PrfHash, number>> = { sha256: 32, sha384: 48 };

export function hashLen(hash: PrfHash): number {
  return HASH_LEN[hash];
}

function bytesOf(label: string | Uint8Array): Uint8Array {
  return typeof label === 'string' ? Buffer.from(label, 'latin1') : label;
}

/** RFC 5246 §5 P_hash: HMAC chaining A(i) = HMAC(secret, A(i-1)), output HMAC(secret, A(i) + seed). */
function pHash(hash: string, secret: Uint8Array, seed: Uint8Array, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let a: Buffer = createHmac(hash, secret).update(seed).digest();
  let off = 0;
  while (off < length) {
    const block = createHmac(hash, secret).update(a).update(seed).digest();
    off += block.copy(out, off, 0, Math.min(block.length, length - off));
    if (off < length) a = createHmac(hash, secret).update(a).digest();
  }
  return out;
}

/** TLS 1.0 / 1.1 PRF (RFC 2246 §5): P_MD5(S1, label + seed) xor P_SHA-1(S2, label + seed), halves overlapping on odd lengths. */
export function prfTls10(secret: Uint8Array, label: string | Uint8Array, seed: Uint8Array, length: number): Buffer {
  const half = Math.ceil(secret.length / 2);
  const s1 = secret.subarray(0, half);
  const s2 = secret.subarray(secret.length - half);
  const fullSeed = Buffer.concat([bytesOf(label), seed]);
  const md5 = pHash('md5', s1, fullSeed, length);
  const sha = pHash('sha1', s2, fullSeed, length);
  for (let i = 0; i < length; i++) md5[i] ^= sha[i];
  return md5;
}

/** TLS 1.2 PRF (RFC 5246 §5): P_<hash>(secret, label + seed). */
export function prfTls12(hash: PrfHash, secret: Uint8Array, label: string | Uint8Array, seed: Uint8Array, length: number): Buffer {
  return pHash(hash, secret, Buffer.concat([bytesOf(label), seed]), length);
}

/** The PRF of `version` (TLS 1.0-1.2). SSL 3.0 has no PRF: use `masterSecret` / `keyBlock`, which handle it. */
export function prf(version: number, prfHash: PrfHash, secret: Uint8Array, label: string | Uint8Array, seed: Uint8Array, length: number): Buffer {
  return version >= TLS12_VERSION ? prfTls12(prfHash, secret, label, seed, length) : prfTls10(secret, label, seed, length);
}

/**
 * SSL 3.0 key expansion (RFC 6101 §6.1, §6.2.2): blocks MD5(secret + SHA-1(salt_i + secret + seed)) with
 * salt_i = 'A', 'BB', 'CCC', ... At most 26 blocks (416 bytes), more than any key block needs.
 */
function ssl3Expand(secret: Uint8Array, seed: Uint8Array, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let off = 0;
  for (let i = 1; off < length && i <= 26; i++) {
    const salt = Buffer.alloc(i, 0x40 + i);
    const inner = createHash('sha1').update(salt).update(secret).update(seed).digest();
    const block = createHash('md5').update(secret).update(inner).digest();
    off += block.copy(out, off, 0, Math.min(block.length, length - off));
  }
  return out;
}

/** Master secret from the premaster (RFC 5246 §8.1; SSL 3.0: RFC 6101 §8.1). */
export function masterSecret(version: number, prfHash: PrfHash, premaster: Uint8Array, clientRandom: Uint8Array, serverRandom: Uint8Array): Buffer {
  const seed = Buffer.concat([clientRandom, serverRandom]);
  if (version === SSL3_VERSION) return ssl3Expand(premaster, seed, MASTER_SECRET_LEN);
  return prf(version, prfHash, premaster, 'master secret', seed, MASTER_SECRET_LEN);
}

/** Extended master secret (RFC 7627 §4): PRF(premaster, "extended master secret", session_hash). */
export function extendedMasterSecret(version: number, prfHash: PrfHash, premaster: Uint8Array, sessionHash: Uint8Array): Buffer {
  return prf(version, prfHash, premaster, 'extended master secret', sessionHash, MASTER_SECRET_LEN);
}

/**
 * RFC 7627 §3 session_hash over the handshake messages (headers included) from ClientHello up to and
 * including ClientKeyExchange: the PRF hash in TLS 1.2, MD5 || SHA-1 (36 bytes) in TLS 1.0/1.1.
 */
export function sessionHash(version: number, prfHash: PrfHash, handshakeMessages: readonly Uint8Array[]): Buffer {
  if (version >= TLS12_VERSION) {
    const h = createHash(prfHash);
    for (const m of handshakeMessages) h.update(m);
    return h.digest();
  }
  const md5 = createHash('md5');
  const sha1 = createHash('sha1');
  for (const m of handshakeMessages) {
    md5.update(m);
    sha1.update(m);
  }
  return Buffer.concat([md5.digest(), sha1.digest()]);
}

/** One session's TLS <= 1.2 record keys. Lengths follow the suite; empty arrays where a suite has none. */
export interface Tls12Keys {
  readonly clientMacKey: Buffer;
  readonly serverMacKey: Buffer;
  readonly clientWriteKey: Buffer;
  readonly serverWriteKey: Buffer;
  readonly clientWriteIv: Buffer;
  readonly serverWriteIv: Buffer;
}

/**
 * Length of the IV taken from the key block: the AEAD fixed part, or for CBC the first IV of SSL 3.0 /
 * TLS 1.0, whose later IVs chain from the previous record (RFC 2246 §6.2.3.2); TLS 1.1+ send each IV.
 */
export function keyBlockIvLen(version: number, suite: CipherSuite): number {
  if (suite.kind === 'aead') return suite.ivLen;
  if (suite.kind === 'cbc' && version <= TLS10_VERSION) return suite.blockLen;
  return 0;
}

/** Key block (RFC 5246 §6.3: PRF(master, "key expansion", server_random + client_random)) split into keys. */
export function keyBlock(version: number, suite: CipherSuite, master: Uint8Array, clientRandom: Uint8Array, serverRandom: Uint8Array): Tls12Keys {
  const macLen = suite.macLen;
  const keyLen = suite.keyLen;
  const ivLen = keyBlockIvLen(version, suite);
  const total = 2 * (macLen + keyLen + ivLen);
  const seed = Buffer.concat([serverRandom, clientRandom]);
  const block = version === SSL3_VERSION
    ? ssl3Expand(master, seed, total)
    : prf(version, suite.prfHash, master, 'key expansion', seed, total);
  let off = 0;
  const take = (n: number): Buffer => {
    const b = block.subarray(off, off + n);
    off += n;
    return b;
  };
  return {
    clientMacKey: take(macLen),
    serverMacKey: take(macLen),
    clientWriteKey: take(keyLen),
    serverWriteKey: take(keyLen),
    clientWriteIv: take(ivLen),
    serverWriteIv: take(ivLen),
  };
}

/** HKDF-Extract (RFC 5869 §2.2): HMAC(salt, IKM). */
export function hkdfExtract(hash: PrfHash, salt: Uint8Array, ikm: Uint8Array): Buffer {
  return createHmac(hash, salt).update(ikm).digest();
}

/** HKDF-Expand (RFC 5869 §2.3). node:crypto's hkdf always extracts first, so expand is done here. */
export function hkdfExpand(hash: PrfHash, prk: Uint8Array, info: Uint8Array, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let t: Buffer = Buffer.alloc(0);
  const counter = Buffer.alloc(1);
  let off = 0;
  for (let i = 1; off < length; i++) {
    counter[0] = i;
    t = createHmac(hash, prk).update(t).update(info).update(counter).digest();
    off += t.copy(out, off, 0, Math.min(t.length, length - off));
  }
  return out;
}

/** RFC 8446 §7.1 HkdfLabel = uint16 length || opaque label<7..255> ("tls13 " + label) || opaque context<0..255>. */
export function hkdfLabel(label: string, context: Uint8Array, length: number): Buffer {
  const full = Buffer.from('tls13 ' + label, 'latin1');
  const info = Buffer.allocUnsafe(2 + 1 + full.length + 1 + context.length);
  info.writeUInt16BE(length, 0);
  info[2] = full.length;
  full.copy(info, 3);
  info[3 + full.length] = context.length;
  info.set(context, 4 + full.length);
  return info;
}

/** HKDF-Expand-Label(secret, label, context, length) (RFC 8446 §7.1). */
export function hkdfExpandLabel(hash: PrfHash, secret: Uint8Array, label: string, context: Uint8Array, length: number): Buffer {
  return hkdfExpand(hash, secret, hkdfLabel(label, context, length), length);
}

const EMPTY = new Uint8Array(0);

/** Traffic key and IV from a TLS 1.3 traffic secret (RFC 8446 §7.3). */
export function tls13TrafficKeys(suite: CipherSuite, trafficSecret: Uint8Array): { key: Buffer; iv: Buffer } {
  return {
    key: hkdfExpandLabel(suite.prfHash, trafficSecret, 'key', EMPTY, suite.keyLen),
    iv: hkdfExpandLabel(suite.prfHash, trafficSecret, 'iv', EMPTY, suite.ivLen),
  };
}

/** The next application traffic secret after a KeyUpdate (RFC 8446 §7.2): Expand-Label(secret, "traffic upd", "", Hash.length). */
export function tls13NextTrafficSecret(hash: PrfHash, trafficSecret: Uint8Array): Buffer {
  return hkdfExpandLabel(hash, trafficSecret, 'traffic upd', EMPTY, HASH_LEN[hash]);
}

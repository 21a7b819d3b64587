/**
 * App layer, TLS: decryption of one direction's protected records.
 * Input: records in order (content type, the 5 header bytes as on the wire, the fragment). Output: the
 * plaintext and its true content type, or a failure reason. Covers TLS 1.2 AEAD (GCM, CCM, RFC 5288/6655;
 * ChaCha20-Poly1305, RFC 7905), CBC + HMAC for SSL 3.0 / TLS 1.0 (chained IV) and TLS 1.1+ (explicit IV),
 * MAC-then-encrypt or encrypt-then-MAC (RFC 7366), NULL ciphers, and TLS 1.3 (RFC 8446 §5.2-5.4).
 * Never throws on record bytes. One copy per record: the decipher's output, returned as a view into that
 * fresh buffer (NULL ciphers: a view into `fragment` itself, copy it to keep it past the caller's buffer).
 *
 * Sequence numbers: `decrypt` consumes one number per record whatever the outcome (a record on the wire
 * took a number even if it is garbled). `tryDecrypt` commits the number (and the TLS 1.0 IV chain) only on
 * success, so a caller can offer a record to a candidate decryptor without spending it: e.g. client records
 * after a TLS 1.3 ClientHello with early data are tried with the handshake decryptor; 0-RTT records that the
 * server rejected fail and leave it ready for the client's Finished at sequence 0.
 */

import { createDecipheriv, createHash, createHmac, createSecretKey, getCiphers, type KeyObject } from 'node:crypto';
import type { CipherSuite } from './suites.js';
import { SSL3_VERSION, TLS10_VERSION, TLS12_VERSION, TLS13_VERSION, tls13TrafficKeys, type Tls12Keys } from './key-schedule.js';

export type DecryptFailure = 'bad_record_mac' | 'bad_padding' | 'too_short' | 'unsupported';
export type DecryptResult =
  | { readonly ok: true; readonly type: number; readonly plaintext: Uint8Array }
  | { readonly ok: false; readonly reason: DecryptFailure };

export interface RecordDecryptorOptions {
  suite: CipherSuite;
  /** Negotiated version: 0x0300 (SSL 3.0) .. 0x0304 (TLS 1.3). Decides the record protection. */
  version: number;
  /** Write key of the sending side. */
  key: Uint8Array;
  /** AEAD fixed IV / TLS 1.3 IV / the first CBC IV of SSL 3.0 and TLS 1.0; ignored otherwise. */
  iv: Uint8Array;
  /** MAC key of the sending side (CBC and NULL suites). */
  macKey?: Uint8Array;
  /** Encrypt-then-MAC was negotiated (RFC 7366); only changes CBC suites. */
  encryptThenMac?: boolean;
  /** First sequence number (default 0). */
  seq?: number;
}

type Mode = 'tls13' | 'aead12' | 'cbc' | 'null' | 'unsupported';

const RECORD_HEADER_LEN = 5;
/** RFC 6101 §5.2.3.1: pad_1 / pad_2 repeat 48 times for MD5 and 40 times for SHA-1. */
const SSL3_PAD1 = 0x36;
const SSL3_PAD2 = 0x5c;

const FAIL_MAC: DecryptResult = Object.freeze({ ok: false, reason: 'bad_record_mac' });
const FAIL_PADDING: DecryptResult = Object.freeze({ ok: false, reason: 'bad_padding' });
const FAIL_SHORT: DecryptResult = Object.freeze({ ok: false, reason: 'too_short' });
const FAIL_UNSUPPORTED: DecryptResult = Object.freeze({ ok: false, reason: 'unsupported' });

const NODE_CIPHERS = new Set(getCiphers());

function modeFor(suite: CipherSuite, version: number): Mode {
  if (suite.kind !== 'null' && !NODE_CIPHERS.has(suite.nodeCipher)) return 'unsupported';
  if (version === TLS13_VERSION) return suite.tls13 ? 'tls13' : 'unsupported';
  if (suite.tls13 || version < SSL3_VERSION || version > TLS12_VERSION) return 'unsupported';
  if (suite.kind === 'aead') return version === TLS12_VERSION ? 'aead12' : 'unsupported';
  return suite.kind;
}

export class RecordDecryptor {
  readonly suite: CipherSuite;
  readonly version: number;
  readonly encryptThenMac: boolean;
  private readonly mode: Mode;
  private seqNo: number;
  private readonly key: KeyObject | undefined;
  private readonly macKey: KeyObject | undefined;
  /** Raw MAC key for SSL 3.0, whose MAC is not an HMAC. */
  private readonly ssl3MacSecret: Buffer | undefined;
  /** AEAD: IV from the key schedule; CBC SSL 3.0 / TLS 1.0: the running IV chain. */
  private readonly iv: Buffer;
  private readonly nonce: Buffer;
  /** seq_num(8) || type(1) || version(2) || length(2): the TLS <= 1.2 AEAD additional data and MAC header. */
  private readonly aad = Buffer.alloc(13);
  private readonly chainedIv: boolean;
  /** CCM wants the tag and the plaintext length before the AAD (node:crypto docs, CCM mode). */
  private readonly ccm: boolean;

  constructor(opts: RecordDecryptorOptions) {
    const { suite, version } = opts;
    this.suite = suite;
    this.version = version;
    this.encryptThenMac = opts.encryptThenMac === true && suite.kind === 'cbc' && version !== SSL3_VERSION;
    this.seqNo = opts.seq ?? 0;
    let mode = modeFor(suite, version);
    if (opts.key.length !== suite.keyLen) mode = 'unsupported';
    if ((suite.kind === 'cbc' || suite.kind === 'null') && (opts.macKey?.length ?? 0) !== suite.macLen) mode = 'unsupported';
    this.chainedIv = suite.kind === 'cbc' && version <= TLS10_VERSION;
    this.ccm = suite.cipher.includes('ccm');
    const ivLen = mode === 'tls13' || mode === 'aead12' ? suite.ivLen : this.chainedIv ? suite.blockLen : 0;
    if (opts.iv.length < ivLen) mode = 'unsupported';
    this.mode = mode;
    this.iv = Buffer.from(opts.iv.subarray(0, ivLen));
    this.nonce = Buffer.alloc(12);
    if (mode === 'aead12' || mode === 'tls13') this.iv.copy(this.nonce, 0, 0, Math.min(ivLen, 12));
    this.key = mode !== 'unsupported' && suite.keyLen > 0 ? createSecretKey(Buffer.from(opts.key)) : undefined;
    const mk = opts.macKey && opts.macKey.length > 0 ? Buffer.from(opts.macKey) : undefined;
    this.ssl3MacSecret = version === SSL3_VERSION ? mk : undefined;
    this.macKey = mk && version !== SSL3_VERSION ? createSecretKey(mk) : undefined;
  }

  /** Sequence number the next record will be decrypted with. */
  get seq(): number {
    return this.seqNo;
  }

  /** True when this suite/version pair cannot be decrypted here (every record then fails `unsupported`). */
  get unsupported(): boolean {
    return this.mode === 'unsupported';
  }

  /** Advances the sequence number over records the caller knows were lost (e.g. counted across a gap). */
  skipRecords(records = 1): void {
    this.seqNo += records;
  }

  /** Decrypts the next record and consumes its sequence number, whether or not it authenticates. */
  decrypt(type: number, header: Uint8Array, fragment: Uint8Array): DecryptResult {
    const r = this.open(type, header, fragment);
    this.commit(fragment);
    return r;
  }

  /** Decrypts the next record; the sequence number (and CBC IV chain) advance only if it authenticates. */
  tryDecrypt(type: number, header: Uint8Array, fragment: Uint8Array): DecryptResult {
    const r = this.open(type, header, fragment);
    if (r.ok) this.commit(fragment);
    return r;
  }

  private commit(fragment: Uint8Array): void {
    this.seqNo++;
    if (!this.chainedIv || this.mode !== 'cbc') return;
    // RFC 2246 §6.2.3.2: the next IV is the last ciphertext block of this record (before an EtM MAC).
    const bl = this.suite.blockLen;
    const end = this.encryptThenMac ? fragment.length - this.suite.macLen : fragment.length;
    if (end >= bl) this.iv.set(fragment.subarray(end - bl, end));
  }

  private open(type: number, header: Uint8Array, fragment: Uint8Array): DecryptResult {
    switch (this.mode) {
      case 'tls13': return this.openTls13(header, fragment);
      case 'aead12': return this.openAead12(type, header, fragment);
      case 'cbc': return this.encryptThenMac ? this.openCbcEtm(type, header, fragment) : this.openCbc(type, header, fragment);
      case 'null': return this.openNull(type, header, fragment);
      default: return FAIL_UNSUPPORTED;
    }
  }

  /** nonce = iv xor (0...0 || seq_num) (RFC 8446 §5.3, RFC 7905 §2). */
  private seqNonce(): void {
    const n = this.nonce;
    const iv = this.iv;
    const hi = Math.floor(this.seqNo / 0x100000000);
    const lo = this.seqNo >>> 0;
    n[4] = iv[4] ^ (hi >>> 24); n[5] = iv[5] ^ ((hi >>> 16) & 0xff); n[6] = iv[6] ^ ((hi >>> 8) & 0xff); n[7] = iv[7] ^ (hi & 0xff);
    n[8] = iv[8] ^ (lo >>> 24); n[9] = iv[9] ^ ((lo >>> 16) & 0xff); n[10] = iv[10] ^ ((lo >>> 8) & 0xff); n[11] = iv[11] ^ (lo & 0xff);
  }

  /** Fills seq_num || type || version || length (SSL 3.0: without the version) and returns its length. */
  private macHeader(type: number, header: Uint8Array, length: number): number {
    const a = this.aad;
    a.writeUInt32BE(Math.floor(this.seqNo / 0x100000000), 0);
    a.writeUInt32BE(this.seqNo >>> 0, 4);
    a[8] = type;
    if (this.version === SSL3_VERSION) {
      a.writeUInt16BE(length, 9);
      return 11;
    }
    a[9] = header.length >= 3 ? header[1] : this.version >> 8;
    a[10] = header.length >= 3 ? header[2] : this.version & 0xff;
    a.writeUInt16BE(length, 11);
    return 13;
  }

  /** Runs an AEAD open; undefined when the tag does not verify. */
  private aeadOpen(aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array): Buffer | undefined {
    const suite = this.suite;
    try {
      const d = createDecipheriv(suite.nodeCipher as 'aes-128-gcm', this.key as KeyObject, this.nonce, { authTagLength: suite.tagLen });
      if (this.ccm) {
        d.setAuthTag(tag);
        d.setAAD(aad, { plaintextLength: ciphertext.length });
      } else {
        d.setAAD(aad);
        d.setAuthTag(tag);
      }
      const out = d.update(ciphertext);
      d.final();
      return out;
    } catch {
      return undefined;
    }
  }

  private openTls13(header: Uint8Array, fragment: Uint8Array): DecryptResult {
    const tagLen = this.suite.tagLen;
    // RFC 8446 §5.2: at least the inner content type plus the tag.
    if (fragment.length < tagLen + 1 || header.length < RECORD_HEADER_LEN) return FAIL_SHORT;
    this.seqNonce();
    const ctEnd = fragment.length - tagLen;
    const pt = this.aeadOpen(header.subarray(0, RECORD_HEADER_LEN), fragment.subarray(0, ctEnd), fragment.subarray(ctEnd));
    if (!pt) return FAIL_MAC;
    // RFC 8446 §5.4: strip zero padding; the last non-zero byte is the real content type.
    let i = pt.length - 1;
    while (i >= 0 && pt[i] === 0) i--;
    if (i < 0) return FAIL_PADDING;
    return { ok: true, type: pt[i], plaintext: pt.subarray(0, i) };
  }

  private openAead12(type: number, header: Uint8Array, fragment: Uint8Array): DecryptResult {
    const { explicitNonceLen, tagLen } = this.suite;
    if (fragment.length < explicitNonceLen + tagLen) return FAIL_SHORT;
    if (explicitNonceLen > 0) {
      // RFC 5288 §3: nonce = salt (4 bytes from the key block) || nonce_explicit (first 8 fragment bytes).
      this.nonce.set(fragment.subarray(0, explicitNonceLen), 4);
    } else {
      this.seqNonce();
    }
    const ctEnd = fragment.length - tagLen;
    const n = this.macHeader(type, header, ctEnd - explicitNonceLen);
    const pt = this.aeadOpen(this.aad.subarray(0, n), fragment.subarray(explicitNonceLen, ctEnd), fragment.subarray(ctEnd));
    return pt ? { ok: true, type, plaintext: pt } : FAIL_MAC;
  }

  /** MAC over header || content; SSL 3.0 uses its pre-HMAC construction (RFC 6101 §5.2.3.1). */
  private computeMac(type: number, header: Uint8Array, content: Uint8Array): Buffer {
    const n = this.macHeader(type, header, content.length);
    const hash = this.suite.mac as string;
    if (this.ssl3MacSecret) {
      const padLen = hash === 'md5' ? 48 : 40;
      const inner = createHash(hash).update(this.ssl3MacSecret).update(Buffer.alloc(padLen, SSL3_PAD1))
        .update(this.aad.subarray(0, n)).update(content).digest();
      return createHash(hash).update(this.ssl3MacSecret).update(Buffer.alloc(padLen, SSL3_PAD2)).update(inner).digest();
    }
    return createHmac(hash, this.macKey as KeyObject).update(this.aad.subarray(0, n)).update(content).digest();
  }

  private cbcDecrypt(iv: Uint8Array, ciphertext: Uint8Array): Buffer | undefined {
    try {
      const d = createDecipheriv(this.suite.nodeCipher, this.key as KeyObject, iv);
      d.setAutoPadding(false);
      return d.update(ciphertext);
    } catch {
      return undefined;
    }
  }

  /** Length of valid CBC padding at the end of `pt` incl. the length byte, or -1 (RFC 5246 §6.2.3.2; RFC 6101 §5.2.3.2). */
  private paddingLen(pt: Buffer, room: number): number {
    const pad = pt[pt.length - 1];
    if (pad + 1 > room) return -1;
    if (this.version === SSL3_VERSION) return pad < this.suite.blockLen ? pad + 1 : -1;
    for (let i = pt.length - 1 - pad; i < pt.length - 1; i++) if (pt[i] !== pad) return -1;
    return pad + 1;
  }

  /** MAC-then-encrypt CBC: [IV (TLS 1.1+)] || E(content || MAC || padding). */
  private openCbc(type: number, header: Uint8Array, fragment: Uint8Array): DecryptResult {
    const { blockLen: bl, macLen } = this.suite;
    const ivLen = this.chainedIv ? 0 : bl;
    const ctLen = fragment.length - ivLen;
    if (ctLen < bl || ctLen < macLen + 1) return FAIL_SHORT;
    if (ctLen % bl !== 0) return FAIL_PADDING;
    const pt = this.cbcDecrypt(this.chainedIv ? this.iv : fragment.subarray(0, ivLen), fragment.subarray(ivLen));
    if (!pt || pt.length !== ctLen) return FAIL_PADDING;
    const padLen = this.paddingLen(pt, ctLen - macLen);
    if (padLen < 0) return FAIL_PADDING;
    const contentLen = ctLen - padLen - macLen;
    const content = pt.subarray(0, contentLen);
    const mac = this.computeMac(type, header, content);
    if (!mac.equals(pt.subarray(contentLen, contentLen + macLen))) return FAIL_MAC;
    return { ok: true, type, plaintext: content };
  }

  /** Encrypt-then-MAC CBC (RFC 7366 §3): [IV] || E(content || padding) || MAC(header || IV || ciphertext). */
  private openCbcEtm(type: number, header: Uint8Array, fragment: Uint8Array): DecryptResult {
    const { blockLen: bl, macLen } = this.suite;
    const ivLen = this.chainedIv ? 0 : bl;
    const ctLen = fragment.length - ivLen - macLen;
    if (ctLen < bl) return FAIL_SHORT;
    const macStart = fragment.length - macLen;
    const mac = this.computeMac(type, header, fragment.subarray(0, macStart));
    if (!mac.equals(fragment.subarray(macStart))) return FAIL_MAC;
    if (ctLen % bl !== 0) return FAIL_PADDING;
    const pt = this.cbcDecrypt(this.chainedIv ? this.iv : fragment.subarray(0, ivLen), fragment.subarray(ivLen, macStart));
    if (!pt || pt.length !== ctLen) return FAIL_PADDING;
    const padLen = this.paddingLen(pt, ctLen);
    if (padLen < 0) return FAIL_PADDING;
    return { ok: true, type, plaintext: pt.subarray(0, ctLen - padLen) };
  }

  /** NULL cipher: content || MAC. */
  private openNull(type: number, header: Uint8Array, fragment: Uint8Array): DecryptResult {
    const macLen = this.suite.macLen;
    if (fragment.length < macLen) return FAIL_SHORT;
    const content = fragment.subarray(0, fragment.length - macLen);
    const mac = this.computeMac(type, header, content);
    if (!mac.equals(fragment.subarray(fragment.length - macLen))) return FAIL_MAC;
    return { ok: true, type, plaintext: content };
  }
}

/** Both directions of a TLS <= 1.2 session from its key block. */
export function tls12Decryptors(suite: CipherSuite, version: number, keys: Tls12Keys, encryptThenMac = false): { client: RecordDecryptor; server: RecordDecryptor } {
  return {
    client: new RecordDecryptor({ suite, version, key: keys.clientWriteKey, iv: keys.clientWriteIv, macKey: keys.clientMacKey, encryptThenMac }),
    server: new RecordDecryptor({ suite, version, key: keys.serverWriteKey, iv: keys.serverWriteIv, macKey: keys.serverMacKey, encryptThenMac }),
  };
}

/** A TLS 1.3 decryptor for one traffic secret (handshake, early or application; after KeyUpdate the next one). */
export function tls13Decryptor(suite: CipherSuite, trafficSecret: Uint8Array): RecordDecryptor {
  const { key, iv } = tls13TrafficKeys(suite, trafficSecret);
  return new RecordDecryptor({ suite, version: TLS13_VERSION, key, iv });
}

/**
 * App layer, TLS: the cipher suites Hark can decrypt, by IANA id.
 * Input: a 16-bit suite id from a ServerHello. Output: a frozen `CipherSuite` (key exchange, record
 * cipher, MAC, PRF/HKDF hash and the key-block lengths of RFC 5246 §6.3 / RFC 8446 §7.3), or
 * `undefined` for suites that cannot be decrypted (RC4, export, DES, SEED, Camellia-GCM, anonymous);
 * `suiteName` names those too. Every entry is derived from its IANA name, so the name is the spec.
 */

export type KeyExchange =
  | 'rsa' | 'dhe' | 'ecdhe' | 'dh' | 'ecdh'
  | 'psk' | 'dhe-psk' | 'ecdhe-psk' | 'rsa-psk'
  | 'tls13';

export type CipherName =
  | 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305'
  | 'aes-128-ccm' | 'aes-256-ccm' | 'aes-128-ccm-8' | 'aes-256-ccm-8'
  | 'aria-128-gcm' | 'aria-256-gcm'
  | 'aes-128-cbc' | 'aes-256-cbc' | 'camellia-128-cbc' | 'camellia-256-cbc' | 'aria-128-cbc' | 'aria-256-cbc'
  | 'des-ede3-cbc'
  | 'null';

/** How a record is protected: AEAD (RFC 5246 §6.2.3.3), CBC + HMAC (§6.2.3.2), or MAC only (NULL cipher). */
export type CipherKind = 'aead' | 'cbc' | 'null';

export type MacHash = 'md5' | 'sha1' | 'sha256' | 'sha384';
export type PrfHash = 'sha256' | 'sha384';

export interface CipherSuite {
  readonly id: number;
  /** IANA name, e.g. `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`. */
  readonly name: string;
  readonly keyExchange: KeyExchange;
  readonly cipher: CipherName;
  readonly kind: CipherKind;
  /** HMAC hash of CBC / NULL suites; null for AEAD. */
  readonly mac: MacHash | null;
  /** TLS 1.2 PRF hash (RFC 5246 §5) or TLS 1.3 HKDF hash. TLS 1.0/1.1 always use MD5 xor SHA-1. */
  readonly prfHash: PrfHash;
  /** Encryption key length in bytes. */
  readonly keyLen: number;
  /**
   * Fixed IV from the key block: AEAD implicit part (4 for GCM/CCM, 12 for ChaCha20 and TLS 1.3);
   * for CBC the block size, which only SSL 3.0 / TLS 1.0 take from the key block (TLS 1.1+ send it).
   */
  readonly ivLen: number;
  /** HMAC length in bytes (0 for AEAD). */
  readonly macLen: number;
  /** CBC block size (0 otherwise). */
  readonly blockLen: number;
  /** TLS 1.2 AEAD explicit nonce carried in each record: 8 for GCM/CCM (RFC 5288 §3), 0 for ChaCha20 (RFC 7905 §2). */
  readonly explicitNonceLen: number;
  /** AEAD tag length: 16, or 8 for the CCM_8 suites (RFC 6655 §4). */
  readonly tagLen: number;
  /** A TLS 1.3 suite (RFC 8446 §B.4): only valid with version 0x0304. */
  readonly tls13: boolean;
  /** The node:crypto algorithm name. */
  readonly nodeCipher: string;
}

interface CipherSpec {
  cipher: CipherName;
  kind: CipherKind;
  keyLen: number;
  ivLen: number;
  blockLen: number;
  explicitNonceLen: number;
  tagLen: number;
  nodeCipher: string;
}

const aead = (cipher: CipherName, keyLen: number, ivLen: number, explicitNonceLen: number, tagLen: number, nodeCipher: string): CipherSpec =>
  ({ cipher, kind: 'aead', keyLen, ivLen, blockLen: 0, explicitNonceLen, tagLen, nodeCipher });
const cbc = (cipher: CipherName, keyLen: number, blockLen: number): CipherSpec =>
  ({ cipher, kind: 'cbc', keyLen, ivLen: blockLen, blockLen, explicitNonceLen: 0, tagLen: 0, nodeCipher: cipher });

/** Bulk ciphers by the token in the IANA name (the part between `_WITH_` and the MAC/PRF hash). */
const CIPHERS: Readonly<Record<string, CipherSpec>> = {
  AES_128_GCM: aead('aes-128-gcm', 16, 4, 8, 16, 'aes-128-gcm'),
  AES_256_GCM: aead('aes-256-gcm', 32, 4, 8, 16, 'aes-256-gcm'),
  ARIA_128_GCM: aead('aria-128-gcm', 16, 4, 8, 16, 'aria-128-gcm'),
  ARIA_256_GCM: aead('aria-256-gcm', 32, 4, 8, 16, 'aria-256-gcm'),
  AES_128_CCM: aead('aes-128-ccm', 16, 4, 8, 16, 'aes-128-ccm'),
  AES_256_CCM: aead('aes-256-ccm', 32, 4, 8, 16, 'aes-256-ccm'),
  AES_128_CCM_8: aead('aes-128-ccm-8', 16, 4, 8, 8, 'aes-128-ccm'),
  AES_256_CCM_8: aead('aes-256-ccm-8', 32, 4, 8, 8, 'aes-256-ccm'),
  CHACHA20_POLY1305: aead('chacha20-poly1305', 32, 12, 0, 16, 'chacha20-poly1305'),
  AES_128_CBC: cbc('aes-128-cbc', 16, 16),
  AES_256_CBC: cbc('aes-256-cbc', 32, 16),
  CAMELLIA_128_CBC: cbc('camellia-128-cbc', 16, 16),
  CAMELLIA_256_CBC: cbc('camellia-256-cbc', 32, 16),
  ARIA_128_CBC: cbc('aria-128-cbc', 16, 16),
  ARIA_256_CBC: cbc('aria-256-cbc', 32, 16),
  '3DES_EDE_CBC': cbc('des-ede3-cbc', 24, 8),
  NULL: { cipher: 'null', kind: 'null', keyLen: 0, ivLen: 0, blockLen: 0, explicitNonceLen: 0, tagLen: 0, nodeCipher: '' },
};

/** TLS 1.3 AEADs (RFC 8446 §5.3): the nonce is the whole 12-byte IV xor the sequence number. */
const TLS13_CIPHERS: Readonly<Record<string, CipherSpec>> = {
  AES_128_GCM: aead('aes-128-gcm', 16, 12, 0, 16, 'aes-128-gcm'),
  AES_256_GCM: aead('aes-256-gcm', 32, 12, 0, 16, 'aes-256-gcm'),
  CHACHA20_POLY1305: aead('chacha20-poly1305', 32, 12, 0, 16, 'chacha20-poly1305'),
  AES_128_CCM: aead('aes-128-ccm', 16, 12, 0, 16, 'aes-128-ccm'),
  AES_128_CCM_8: aead('aes-128-ccm-8', 16, 12, 0, 8, 'aes-128-ccm'),
};

const MAC_LEN: Readonly<Record<MacHash, number>> = { md5: 16, sha1: 20, sha256: 32, sha384: 48 };

const KEY_EXCHANGES: Readonly<Record<string, KeyExchange>> = {
  RSA: 'rsa', DHE_RSA: 'dhe', DHE_DSS: 'dhe', ECDHE_RSA: 'ecdhe', ECDHE_ECDSA: 'ecdhe',
  DH_RSA: 'dh', DH_DSS: 'dh', ECDH_RSA: 'ecdh', ECDH_ECDSA: 'ecdh',
  PSK: 'psk', DHE_PSK: 'dhe-psk', PSK_DHE: 'dhe-psk', ECDHE_PSK: 'ecdhe-psk', RSA_PSK: 'rsa-psk',
};

/** Decryptable suites by IANA id (values from the IANA TLS Cipher Suites registry). */
const DECRYPTABLE: ReadonlyArray<readonly [number, string]> = [
  // TLS 1.3, RFC 8446 §B.4
  [0x1301, 'TLS_AES_128_GCM_SHA256'],
  [0x1302, 'TLS_AES_256_GCM_SHA384'],
  [0x1303, 'TLS_CHACHA20_POLY1305_SHA256'],
  [0x1304, 'TLS_AES_128_CCM_SHA256'],
  [0x1305, 'TLS_AES_128_CCM_8_SHA256'],
  // NULL ciphers (integrity only), RFC 5246, RFC 4492, RFC 5487
  [0x0001, 'TLS_RSA_WITH_NULL_MD5'],
  [0x0002, 'TLS_RSA_WITH_NULL_SHA'],
  [0x003b, 'TLS_RSA_WITH_NULL_SHA256'],
  [0xc006, 'TLS_ECDHE_ECDSA_WITH_NULL_SHA'],
  [0xc010, 'TLS_ECDHE_RSA_WITH_NULL_SHA'],
  [0x002c, 'TLS_PSK_WITH_NULL_SHA'],
  [0x00b0, 'TLS_PSK_WITH_NULL_SHA256'],
  [0x00b1, 'TLS_PSK_WITH_NULL_SHA384'],
  [0x002d, 'TLS_DHE_PSK_WITH_NULL_SHA'],
  [0x002e, 'TLS_RSA_PSK_WITH_NULL_SHA'],
  [0x00b4, 'TLS_DHE_PSK_WITH_NULL_SHA256'],
  [0x00b5, 'TLS_DHE_PSK_WITH_NULL_SHA384'],
  [0x00b8, 'TLS_RSA_PSK_WITH_NULL_SHA256'],
  [0x00b9, 'TLS_RSA_PSK_WITH_NULL_SHA384'],
  [0xc039, 'TLS_ECDHE_PSK_WITH_NULL_SHA'],
  [0xc03a, 'TLS_ECDHE_PSK_WITH_NULL_SHA256'],
  [0xc03b, 'TLS_ECDHE_PSK_WITH_NULL_SHA384'],
  // 3DES-EDE-CBC
  [0x000a, 'TLS_RSA_WITH_3DES_EDE_CBC_SHA'],
  [0x000d, 'TLS_DH_DSS_WITH_3DES_EDE_CBC_SHA'],
  [0x0010, 'TLS_DH_RSA_WITH_3DES_EDE_CBC_SHA'],
  [0x0013, 'TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA'],
  [0x0016, 'TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA'],
  [0xc003, 'TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA'],
  [0xc008, 'TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA'],
  [0xc00d, 'TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA'],
  [0xc012, 'TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA'],
  [0x008b, 'TLS_PSK_WITH_3DES_EDE_CBC_SHA'],
  [0x008f, 'TLS_DHE_PSK_WITH_3DES_EDE_CBC_SHA'],
  [0x0093, 'TLS_RSA_PSK_WITH_3DES_EDE_CBC_SHA'],
  [0xc034, 'TLS_ECDHE_PSK_WITH_3DES_EDE_CBC_SHA'],
  // AES-CBC with HMAC-SHA1, RFC 5246, RFC 4492, RFC 4279, RFC 5489
  [0x002f, 'TLS_RSA_WITH_AES_128_CBC_SHA'],
  [0x0030, 'TLS_DH_DSS_WITH_AES_128_CBC_SHA'],
  [0x0031, 'TLS_DH_RSA_WITH_AES_128_CBC_SHA'],
  [0x0032, 'TLS_DHE_DSS_WITH_AES_128_CBC_SHA'],
  [0x0033, 'TLS_DHE_RSA_WITH_AES_128_CBC_SHA'],
  [0x0035, 'TLS_RSA_WITH_AES_256_CBC_SHA'],
  [0x0036, 'TLS_DH_DSS_WITH_AES_256_CBC_SHA'],
  [0x0037, 'TLS_DH_RSA_WITH_AES_256_CBC_SHA'],
  [0x0038, 'TLS_DHE_DSS_WITH_AES_256_CBC_SHA'],
  [0x0039, 'TLS_DHE_RSA_WITH_AES_256_CBC_SHA'],
  [0xc004, 'TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA'],
  [0xc005, 'TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA'],
  [0xc009, 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA'],
  [0xc00a, 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA'],
  [0xc00e, 'TLS_ECDH_RSA_WITH_AES_128_CBC_SHA'],
  [0xc00f, 'TLS_ECDH_RSA_WITH_AES_256_CBC_SHA'],
  [0xc013, 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA'],
  [0xc014, 'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA'],
  [0x008c, 'TLS_PSK_WITH_AES_128_CBC_SHA'],
  [0x008d, 'TLS_PSK_WITH_AES_256_CBC_SHA'],
  [0x0090, 'TLS_DHE_PSK_WITH_AES_128_CBC_SHA'],
  [0x0091, 'TLS_DHE_PSK_WITH_AES_256_CBC_SHA'],
  [0x0094, 'TLS_RSA_PSK_WITH_AES_128_CBC_SHA'],
  [0x0095, 'TLS_RSA_PSK_WITH_AES_256_CBC_SHA'],
  [0xc035, 'TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA'],
  [0xc036, 'TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA'],
  // AES-CBC with HMAC-SHA256/384, RFC 5246, RFC 5289, RFC 5487, RFC 5489
  [0x003c, 'TLS_RSA_WITH_AES_128_CBC_SHA256'],
  [0x003d, 'TLS_RSA_WITH_AES_256_CBC_SHA256'],
  [0x003e, 'TLS_DH_DSS_WITH_AES_128_CBC_SHA256'],
  [0x003f, 'TLS_DH_RSA_WITH_AES_128_CBC_SHA256'],
  [0x0040, 'TLS_DHE_DSS_WITH_AES_128_CBC_SHA256'],
  [0x0067, 'TLS_DHE_RSA_WITH_AES_128_CBC_SHA256'],
  [0x0068, 'TLS_DH_DSS_WITH_AES_256_CBC_SHA256'],
  [0x0069, 'TLS_DH_RSA_WITH_AES_256_CBC_SHA256'],
  [0x006a, 'TLS_DHE_DSS_WITH_AES_256_CBC_SHA256'],
  [0x006b, 'TLS_DHE_RSA_WITH_AES_256_CBC_SHA256'],
  [0xc023, 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256'],
  [0xc024, 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384'],
  [0xc025, 'TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256'],
  [0xc026, 'TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384'],
  [0xc027, 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256'],
  [0xc028, 'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384'],
  [0xc029, 'TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256'],
  [0xc02a, 'TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384'],
  [0x00ae, 'TLS_PSK_WITH_AES_128_CBC_SHA256'],
  [0x00af, 'TLS_PSK_WITH_AES_256_CBC_SHA384'],
  [0x00b2, 'TLS_DHE_PSK_WITH_AES_128_CBC_SHA256'],
  [0x00b3, 'TLS_DHE_PSK_WITH_AES_256_CBC_SHA384'],
  [0x00b6, 'TLS_RSA_PSK_WITH_AES_128_CBC_SHA256'],
  [0x00b7, 'TLS_RSA_PSK_WITH_AES_256_CBC_SHA384'],
  [0xc037, 'TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256'],
  [0xc038, 'TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA384'],
  // Camellia-CBC, RFC 5932, RFC 6367
  [0x0041, 'TLS_RSA_WITH_CAMELLIA_128_CBC_SHA'],
  [0x0044, 'TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA'],
  [0x0045, 'TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA'],
  [0x0084, 'TLS_RSA_WITH_CAMELLIA_256_CBC_SHA'],
  [0x0087, 'TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA'],
  [0x0088, 'TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA'],
  [0x00ba, 'TLS_RSA_WITH_CAMELLIA_128_CBC_SHA256'],
  [0x00bd, 'TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA256'],
  [0x00be, 'TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA256'],
  [0x00c0, 'TLS_RSA_WITH_CAMELLIA_256_CBC_SHA256'],
  [0x00c3, 'TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA256'],
  [0x00c4, 'TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA256'],
  [0xc072, 'TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_CBC_SHA256'],
  [0xc073, 'TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_CBC_SHA384'],
  [0xc076, 'TLS_ECDHE_RSA_WITH_CAMELLIA_128_CBC_SHA256'],
  [0xc077, 'TLS_ECDHE_RSA_WITH_CAMELLIA_256_CBC_SHA384'],
  [0xc094, 'TLS_PSK_WITH_CAMELLIA_128_CBC_SHA256'],
  [0xc095, 'TLS_PSK_WITH_CAMELLIA_256_CBC_SHA384'],
  [0xc096, 'TLS_DHE_PSK_WITH_CAMELLIA_128_CBC_SHA256'],
  [0xc097, 'TLS_DHE_PSK_WITH_CAMELLIA_256_CBC_SHA384'],
  [0xc098, 'TLS_RSA_PSK_WITH_CAMELLIA_128_CBC_SHA256'],
  [0xc099, 'TLS_RSA_PSK_WITH_CAMELLIA_256_CBC_SHA384'],
  [0xc09a, 'TLS_ECDHE_PSK_WITH_CAMELLIA_128_CBC_SHA256'],
  [0xc09b, 'TLS_ECDHE_PSK_WITH_CAMELLIA_256_CBC_SHA384'],
  // AES-GCM, RFC 5288, RFC 5289, RFC 5487, RFC 8442
  [0x009c, 'TLS_RSA_WITH_AES_128_GCM_SHA256'],
  [0x009d, 'TLS_RSA_WITH_AES_256_GCM_SHA384'],
  [0x009e, 'TLS_DHE_RSA_WITH_AES_128_GCM_SHA256'],
  [0x009f, 'TLS_DHE_RSA_WITH_AES_256_GCM_SHA384'],
  [0x00a0, 'TLS_DH_RSA_WITH_AES_128_GCM_SHA256'],
  [0x00a1, 'TLS_DH_RSA_WITH_AES_256_GCM_SHA384'],
  [0x00a2, 'TLS_DHE_DSS_WITH_AES_128_GCM_SHA256'],
  [0x00a3, 'TLS_DHE_DSS_WITH_AES_256_GCM_SHA384'],
  [0x00a4, 'TLS_DH_DSS_WITH_AES_128_GCM_SHA256'],
  [0x00a5, 'TLS_DH_DSS_WITH_AES_256_GCM_SHA384'],
  [0x00a8, 'TLS_PSK_WITH_AES_128_GCM_SHA256'],
  [0x00a9, 'TLS_PSK_WITH_AES_256_GCM_SHA384'],
  [0x00aa, 'TLS_DHE_PSK_WITH_AES_128_GCM_SHA256'],
  [0x00ab, 'TLS_DHE_PSK_WITH_AES_256_GCM_SHA384'],
  [0x00ac, 'TLS_RSA_PSK_WITH_AES_128_GCM_SHA256'],
  [0x00ad, 'TLS_RSA_PSK_WITH_AES_256_GCM_SHA384'],
  [0xc02b, 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'],
  [0xc02c, 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'],
  [0xc02d, 'TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256'],
  [0xc02e, 'TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384'],
  [0xc02f, 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'],
  [0xc030, 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384'],
  [0xc031, 'TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256'],
  [0xc032, 'TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384'],
  [0xd001, 'TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256'],
  [0xd002, 'TLS_ECDHE_PSK_WITH_AES_256_GCM_SHA384'],
  // ARIA-GCM, RFC 6209
  [0xc050, 'TLS_RSA_WITH_ARIA_128_GCM_SHA256'],
  [0xc051, 'TLS_RSA_WITH_ARIA_256_GCM_SHA384'],
  [0xc052, 'TLS_DHE_RSA_WITH_ARIA_128_GCM_SHA256'],
  [0xc053, 'TLS_DHE_RSA_WITH_ARIA_256_GCM_SHA384'],
  [0xc056, 'TLS_DHE_DSS_WITH_ARIA_128_GCM_SHA256'],
  [0xc057, 'TLS_DHE_DSS_WITH_ARIA_256_GCM_SHA384'],
  [0xc05c, 'TLS_ECDHE_ECDSA_WITH_ARIA_128_GCM_SHA256'],
  [0xc05d, 'TLS_ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384'],
  [0xc060, 'TLS_ECDHE_RSA_WITH_ARIA_128_GCM_SHA256'],
  [0xc061, 'TLS_ECDHE_RSA_WITH_ARIA_256_GCM_SHA384'],
  [0xc06a, 'TLS_PSK_WITH_ARIA_128_GCM_SHA256'],
  [0xc06b, 'TLS_PSK_WITH_ARIA_256_GCM_SHA384'],
  [0xc06c, 'TLS_DHE_PSK_WITH_ARIA_128_GCM_SHA256'],
  [0xc06d, 'TLS_DHE_PSK_WITH_ARIA_256_GCM_SHA384'],
  [0xc06e, 'TLS_RSA_PSK_WITH_ARIA_128_GCM_SHA256'],
  [0xc06f, 'TLS_RSA_PSK_WITH_ARIA_256_GCM_SHA384'],
  // AES-CCM, RFC 6655, RFC 7251, RFC 8442
  [0xc09c, 'TLS_RSA_WITH_AES_128_CCM'],
  [0xc09d, 'TLS_RSA_WITH_AES_256_CCM'],
  [0xc09e, 'TLS_DHE_RSA_WITH_AES_128_CCM'],
  [0xc09f, 'TLS_DHE_RSA_WITH_AES_256_CCM'],
  [0xc0a0, 'TLS_RSA_WITH_AES_128_CCM_8'],
  [0xc0a1, 'TLS_RSA_WITH_AES_256_CCM_8'],
  [0xc0a2, 'TLS_DHE_RSA_WITH_AES_128_CCM_8'],
  [0xc0a3, 'TLS_DHE_RSA_WITH_AES_256_CCM_8'],
  [0xc0a4, 'TLS_PSK_WITH_AES_128_CCM'],
  [0xc0a5, 'TLS_PSK_WITH_AES_256_CCM'],
  [0xc0a6, 'TLS_DHE_PSK_WITH_AES_128_CCM'],
  [0xc0a7, 'TLS_DHE_PSK_WITH_AES_256_CCM'],
  [0xc0a8, 'TLS_PSK_WITH_AES_128_CCM_8'],
  [0xc0a9, 'TLS_PSK_WITH_AES_256_CCM_8'],
  [0xc0aa, 'TLS_PSK_DHE_WITH_AES_128_CCM_8'],
  [0xc0ab, 'TLS_PSK_DHE_WITH_AES_256_CCM_8'],
  [0xc0ac, 'TLS_ECDHE_ECDSA_WITH_AES_128_CCM'],
  [0xc0ad, 'TLS_ECDHE_ECDSA_WITH_AES_256_CCM'],
  [0xc0ae, 'TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8'],
  [0xc0af, 'TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8'],
  [0xd003, 'TLS_ECDHE_PSK_WITH_AES_128_CCM_8_SHA256'],
  [0xd005, 'TLS_ECDHE_PSK_WITH_AES_128_CCM_SHA256'],
  // ChaCha20-Poly1305, RFC 7905
  [0xcca8, 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256'],
  [0xcca9, 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256'],
  [0xccaa, 'TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256'],
  [0xccab, 'TLS_PSK_WITH_CHACHA20_POLY1305_SHA256'],
  [0xccac, 'TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256'],
  [0xccad, 'TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256'],
  [0xccae, 'TLS_RSA_PSK_WITH_CHACHA20_POLY1305_SHA256'],
];

/**
 * Suites Hark names but does not decrypt: no cipher in node:crypto (RC4, DES, IDEA, SEED, Camellia-GCM), export
 * grades, signalling values, and the anonymous and SRP key exchanges (unauthenticated or password-based; not seen
 * in the traffic a sensor is pointed at).
 */
const NAME_ONLY: ReadonlyArray<readonly [number, string]> = [
  [0x0000, 'TLS_NULL_WITH_NULL_NULL'],
  [0x0003, 'TLS_RSA_EXPORT_WITH_RC4_40_MD5'],
  [0x0004, 'TLS_RSA_WITH_RC4_128_MD5'],
  [0x0005, 'TLS_RSA_WITH_RC4_128_SHA'],
  [0x0006, 'TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5'],
  [0x0007, 'TLS_RSA_WITH_IDEA_CBC_SHA'],
  [0x0008, 'TLS_RSA_EXPORT_WITH_DES40_CBC_SHA'],
  [0x0009, 'TLS_RSA_WITH_DES_CBC_SHA'],
  [0x0011, 'TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA'],
  [0x0012, 'TLS_DHE_DSS_WITH_DES_CBC_SHA'],
  [0x0014, 'TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA'],
  [0x0015, 'TLS_DHE_RSA_WITH_DES_CBC_SHA'],
  [0x0018, 'TLS_DH_anon_WITH_RC4_128_MD5'],
  [0x001b, 'TLS_DH_anon_WITH_3DES_EDE_CBC_SHA'],
  [0x0034, 'TLS_DH_anon_WITH_AES_128_CBC_SHA'],
  [0x003a, 'TLS_DH_anon_WITH_AES_256_CBC_SHA'],
  [0x0046, 'TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA'],
  [0x006c, 'TLS_DH_anon_WITH_AES_128_CBC_SHA256'],
  [0x006d, 'TLS_DH_anon_WITH_AES_256_CBC_SHA256'],
  [0x0089, 'TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA'],
  [0x0096, 'TLS_RSA_WITH_SEED_CBC_SHA'],
  [0x009a, 'TLS_DHE_RSA_WITH_SEED_CBC_SHA'],
  [0x00a6, 'TLS_DH_anon_WITH_AES_128_GCM_SHA256'],
  [0x00a7, 'TLS_DH_anon_WITH_AES_256_GCM_SHA384'],
  [0x00bf, 'TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA256'],
  [0x00c5, 'TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA256'],
  [0x00ff, 'TLS_EMPTY_RENEGOTIATION_INFO_SCSV'],
  [0x5600, 'TLS_FALLBACK_SCSV'],
  [0xc007, 'TLS_ECDHE_ECDSA_WITH_RC4_128_SHA'],
  [0xc011, 'TLS_ECDHE_RSA_WITH_RC4_128_SHA'],
  [0xc015, 'TLS_ECDH_anon_WITH_NULL_SHA'],
  [0xc018, 'TLS_ECDH_anon_WITH_AES_128_CBC_SHA'],
  [0xc019, 'TLS_ECDH_anon_WITH_AES_256_CBC_SHA'],
  [0xc01d, 'TLS_SRP_SHA_WITH_AES_128_CBC_SHA'],
  [0xc01e, 'TLS_SRP_SHA_RSA_WITH_AES_128_CBC_SHA'],
  [0xc01f, 'TLS_SRP_SHA_DSS_WITH_AES_128_CBC_SHA'],
  [0xc020, 'TLS_SRP_SHA_WITH_AES_256_CBC_SHA'],
  [0xc021, 'TLS_SRP_SHA_RSA_WITH_AES_256_CBC_SHA'],
  [0xc022, 'TLS_SRP_SHA_DSS_WITH_AES_256_CBC_SHA'],
  [0xc07a, 'TLS_RSA_WITH_CAMELLIA_128_GCM_SHA256'],
  [0xc07b, 'TLS_RSA_WITH_CAMELLIA_256_GCM_SHA384'],
  [0xc086, 'TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_GCM_SHA256'],
  [0xc087, 'TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_GCM_SHA384'],
  [0xc08a, 'TLS_ECDHE_RSA_WITH_CAMELLIA_128_GCM_SHA256'],
  [0xc08b, 'TLS_ECDHE_RSA_WITH_CAMELLIA_256_GCM_SHA384'],
  [0xcc13, 'OLD_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256'],
  [0xcc14, 'OLD_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256'],
  [0xcc15, 'OLD_TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256'],
];

const TLS13_NAME = /^TLS_([A-Z0-9_]+?)_(SHA256|SHA384)$/;
const TLS12_NAME = /^TLS_([A-Z0-9]+(?:_[A-Z0-9]+)?)_WITH_([A-Z0-9_]+?)(?:_(MD5|SHA|SHA256|SHA384))?$/;

/** Builds a suite from its IANA name; throws at module load on a name the table cannot describe. */
function describe(id: number, name: string): CipherSuite {
  const t13 = id >= 0x1301 && id <= 0x1305 ? TLS13_NAME.exec(name) : null;
  if (t13) {
    const spec = TLS13_CIPHERS[t13[1]];
    if (!spec) throw new Error(`Cannot describe TLS 1.3 suite ${name}`);
    return Object.freeze({ id, name, keyExchange: 'tls13', ...spec, mac: null, macLen: 0, prfHash: t13[2] === 'SHA384' ? 'sha384' : 'sha256', tls13: true });
  }
  const m = TLS12_NAME.exec(name);
  const kx = m ? KEY_EXCHANGES[m[1]] : undefined;
  const spec = m ? CIPHERS[m[2]] : undefined;
  if (!m || !kx || !spec) throw new Error(`Cannot describe cipher suite ${name}`);
  const hashToken = m[3];
  let mac: MacHash | null = null;
  if (spec.kind !== 'aead') {
    if (hashToken === undefined) throw new Error(`Cipher suite ${name} names no MAC`);
    mac = hashToken === 'MD5' ? 'md5' : hashToken === 'SHA' ? 'sha1' : hashToken === 'SHA256' ? 'sha256' : 'sha384';
  }
  // RFC 5246 §5 / RFC 5288 §3: SHA-384 suites use the SHA-384 PRF in TLS 1.2; every other suite
  // (SHA-1 MAC suites, the CCM suites that name no hash, RFC 6655 §3) uses the SHA-256 PRF.
  const prfHash: PrfHash = hashToken === 'SHA384' ? 'sha384' : 'sha256';
  return Object.freeze({ id, name, keyExchange: kx, ...spec, mac, macLen: mac ? MAC_LEN[mac] : 0, prfHash, tls13: false });
}

const BY_ID = new Map<number, CipherSuite>();
const NAMES = new Map<number, string>();
for (const [id, name] of DECRYPTABLE) {
  BY_ID.set(id, describe(id, name));
  NAMES.set(id, name);
}
for (const [id, name] of NAME_ONLY) NAMES.set(id, name);

/** The suite with this id if Hark can decrypt it. */
export function suiteById(id: number): CipherSuite | undefined {
  return BY_ID.get(id);
}

/** IANA name for any suite id; GREASE values (RFC 8701) as `GREASE_0x0a0a`; unknown ids as `0x1234`. */
export function suiteName(id: number): string {
  const name = NAMES.get(id);
  if (name !== undefined) return name;
  const hex = '0x' + (id & 0xffff).toString(16).padStart(4, '0');
  return (id & 0x0f0f) === 0x0a0a && (id >> 12) === ((id >> 4) & 0xf) ? `GREASE_${hex}` : hex;
}

/** Every decryptable suite, in id order (for tests and `--list-suites` style output). */
export function allSuites(): CipherSuite[] {
  return [...BY_ID.values()].sort((a, b) => a.id - b.id);
}

/**
 * The suite table against OpenSSL's own (test/fixtures/tls-crypto/openssl-ciphers.txt, generator beside it):
 * ids, IANA names, key exchange, cipher, key size and MAC; plus the lengths RFC 5246 / 5288 / 6655 / 7905 /
 * 8446 fix, and names for suites that cannot be decrypted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getCiphers } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { allSuites, suiteById, suiteName, type CipherSuite } from '../../../sensor/app-layer/tls/suites.js';
import { fixture } from '../../helpers/replay.js';

interface OpenSslRow { id: number; name: string; kx: string; enc: string; mac: string }

const rows: OpenSslRow[] = readFileSync(fixture('tls-crypto', 'openssl-ciphers.txt'), 'utf8').split('\n')
  .filter((l) => l.startsWith('0x'))
  .map((l) => {
    const f = l.split(/\s+/);
    const field = (k: string) => f.find((x) => x.startsWith(k + '='))?.slice(k.length + 1) ?? '';
    return { id: parseInt(f[0].replace(/0x|,/g, ''), 16), name: f[2], kx: field('Kx'), enc: field('Enc'), mac: field('Mac') };
  });

const ENC: Record<string, (bits: string) => string> = {
  AESGCM: (b) => `aes-${b}-gcm`, AESCCM: (b) => `aes-${b}-ccm`, AESCCM8: (b) => `aes-${b}-ccm-8`, AES: (b) => `aes-${b}-cbc`,
  Camellia: (b) => `camellia-${b}-cbc`, ARIAGCM: (b) => `aria-${b}-gcm`, 'CHACHA20/POLY1305': () => 'chacha20-poly1305',
  '3DES': () => 'des-ede3-cbc', None: () => 'null',
};
const KX: Record<string, string> = {
  RSA: 'rsa', DH: 'dhe', ECDH: 'ecdhe', PSK: 'psk', DHEPSK: 'dhe-psk', ECDHEPSK: 'ecdhe-psk', RSAPSK: 'rsa-psk', any: 'tls13',
};
const MAC: Record<string, string | null> = { AEAD: null, SHA1: 'sha1', SHA256: 'sha256', SHA384: 'sha384', MD5: 'md5' };

test('suiteById agrees with OpenSSL on id, name, key exchange, cipher, key size and MAC of every suite both know', () => {
  assert.ok(rows.length > 100, `OpenSSL table read (${rows.length} rows)`);
  let compared = 0;
  for (const row of rows) {
    const s = suiteById(row.id);
    if (!s) {
      // Left out on purpose: anonymous and SRP key exchanges (named only).
      assert.match(row.name, /_anon_|_SRP_/, `OpenSSL suite ${row.name} missing from the table`);
      assert.equal(suiteName(row.id), row.name);
      continue;
    }
    compared++;
    assert.equal(s.name, row.name);
    const m = /^([A-Za-z0-9/]+)\((\d+)\)$/.exec(row.enc);
    const cipher = m ? ENC[m[1]]?.(m[2] === '168' ? '' : m[2]) : ENC[row.enc]?.('');
    assert.equal(s.cipher, cipher, `${row.name} cipher (${row.enc})`);
    if (m && m[2] !== '168') assert.equal(s.keyLen * 8, Number(m[2]), `${row.name} key size`);
    assert.equal(s.mac, MAC[row.mac], `${row.name} MAC`);
    assert.equal(s.keyExchange, KX[row.kx], `${row.name} key exchange (${row.kx})`);
  }
  assert.ok(compared > 100);
});

test('suiteById covers every suite of issue 4: TLS 1.3, AES-GCM, ChaCha20-Poly1305, AES-CBC with SHA-1/256/384, 3DES', () => {
  const required = [
    0x1301, 0x1302, 0x1303, 0x1304, 0x1305,
    0x009c, 0x009d, 0x009e, 0x009f, 0xc02b, 0xc02c, 0xc02f, 0xc030, 0x00a8, 0x00a9, 0x00aa, 0x00ab, 0x00ac, 0x00ad, 0xd001, 0xd002,
    0xcca8, 0xcca9, 0xccaa, 0xccab, 0xccac, 0xccad, 0xccae,
    0x002f, 0x0035, 0x003c, 0x003d, 0x0033, 0x0039, 0x0067, 0x006b, 0xc009, 0xc00a, 0xc013, 0xc014, 0xc023, 0xc024, 0xc027, 0xc028,
    0x000a, 0x0016, 0xc012,
  ];
  for (const id of required) assert.ok(suiteById(id), `0x${id.toString(16)}`);
});

test('every decryptable suite has a node:crypto cipher and the lengths its RFC fixes', () => {
  const have = new Set(getCiphers());
  for (const s of allSuites()) {
    if (s.kind !== 'null') assert.ok(have.has(s.nodeCipher), `${s.name}: ${s.nodeCipher}`);
    assert.equal(s.prfHash, s.name.endsWith('SHA384') ? 'sha384' : 'sha256', `${s.name} PRF hash`);
    if (s.tls13) {
      assert.deepEqual([s.ivLen, s.explicitNonceLen, s.macLen, s.keyExchange], [12, 0, 0, 'tls13'], s.name);
    } else if (s.cipher === 'chacha20-poly1305') {
      assert.deepEqual([s.ivLen, s.explicitNonceLen, s.tagLen], [12, 0, 16], s.name); // RFC 7905 §2
    } else if (s.kind === 'aead') {
      assert.deepEqual([s.ivLen, s.explicitNonceLen, s.tagLen], [4, 8, s.cipher.endsWith('-8') ? 8 : 16], s.name); // RFC 5288 §3, RFC 6655 §3
    } else if (s.kind === 'cbc') {
      assert.equal(s.ivLen, s.blockLen);
      assert.equal(s.blockLen, s.cipher === 'des-ede3-cbc' ? 8 : 16);
      assert.equal(s.macLen, { md5: 16, sha1: 20, sha256: 32, sha384: 48 }[s.mac as string]);
    }
  }
});

test('suiteById gives frozen entries and nothing for unsupported or unknown ids', () => {
  const s = suiteById(0xc030) as CipherSuite;
  assert.ok(Object.isFrozen(s));
  assert.deepEqual([s.name, s.keyExchange, s.cipher, s.mac, s.prfHash, s.keyLen, s.ivLen, s.macLen],
    ['TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', 'ecdhe', 'aes-256-gcm', null, 'sha384', 32, 4, 0]);
  assert.equal(suiteById(0x0005), undefined, 'RC4');
  assert.equal(suiteById(0x00ff), undefined, 'SCSV');
  assert.equal(suiteById(0x1234), undefined);
});

test('suiteName names undecryptable suites, GREASE and unknown ids', () => {
  assert.equal(suiteName(0x1301), 'TLS_AES_128_GCM_SHA256');
  assert.equal(suiteName(0x0005), 'TLS_RSA_WITH_RC4_128_SHA');
  assert.equal(suiteName(0x5600), 'TLS_FALLBACK_SCSV');
  assert.equal(suiteName(0x1234), '0x1234');
  assert.equal(suiteName(0x0a0a), 'GREASE_0x0a0a');
  assert.equal(suiteName(0xfafa), 'GREASE_0xfafa');
  assert.equal(suiteName(0x0a1a), '0x0a1a');
});

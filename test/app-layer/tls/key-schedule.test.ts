/**
 * Key schedule against published vectors (the TLS WG PRF test vectors, RFC 8448 §3), vectors computed by the
 * openssl CLI (test/fixtures/tls-crypto/kdf-vectors.json, generator beside it), and Finished messages that real
 * peers sent (the PRF over the handshake transcript must reproduce their verify_data).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  extendedMasterSecret, hkdfExpandLabel, hkdfExtract, keyBlock, keyBlockIvLen, masterSecret, prf, prfTls10, prfTls12,
  sessionHash, tls13NextTrafficSecret, tls13TrafficKeys,
} from '../../../sensor/app-layer/tls/key-schedule.js';
import { suiteById, type CipherSuite, type PrfHash } from '../../../sensor/app-layer/tls/suites.js';
import { KeyStore, parseKeyLog } from '../../../sensor/app-layer/tls/keylog.js';
import { fixture } from '../../helpers/replay.js';
import { decryptTls12, hex, HS_FINISHED, HS_SERVER_HELLO_DONE, readConversation, splitHandshake, type HandshakeMessage } from '../../helpers/tls-records.js';

const suite = (id: number): CipherSuite => {
  const s = suiteById(id);
  assert.ok(s);
  return s;
};

// Vectors posted to the IETF TLS WG list (www.ietf.org/mail-archive/web/tls/current/msg03416.html for TLS 1.2,
// the imc.org ietf-tls archive msg01589 for TLS 1.0), as reproduced in BearSSL's test_crypto.c.
test('prfTls12 matches the published SHA-256 PRF test vector', () => {
  const out = prfTls12('sha256', hex('9bbe436ba940f017b17652849a71db35'), 'test label', hex('a0ba9f936cda311827a6f796ffd5198c'), 100);
  assert.equal(out.toString('hex'),
    'e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab'
    + '4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66');
});

test('prfTls12 matches the published SHA-384 PRF test vector', () => {
  const out = prfTls12('sha384', hex('b80b733d6ceefcdc71566ea48e5567df'), 'test label', hex('cd665cf6a8447dd6ff8b27555edb7465'), 148);
  assert.equal(out.toString('hex'),
    '7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cde9ca0faa60be9fe34f82b1233c9146a0e534cb400fed2700884f9dc236f80edd'
    + '8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d9184259b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee6'
    + '91c8f3a26854308d5eaa3be85e0990703d73e56f');
});

test('prfTls10 matches the published TLS 1.0 (MD5 xor SHA-1) PRF test vector', () => {
  const out = prfTls10(Buffer.alloc(48, 0xab), 'PRF Testvector', Buffer.alloc(64, 0xcd), 104);
  assert.equal(out.toString('hex'),
    'd3d4d1e349b5d515044666d51de32bab258cb521b6b053463e354832fd976754443bcf9a296519bc289abcbc1187e4ebd31e602353776c408aafb74cbc85eff6'
    + '9255f9788faa184cbb957a9819d84a5d7eb006eb459d3ae8de9810454b8b2d8f1afbc655a8c9a013');
});

interface KdfVector { fn: string; hash: string; secret: string; label: string; seed: string; length: number; output: string }
const kdf = JSON.parse(readFileSync(fixture('tls-crypto', 'kdf-vectors.json'), 'utf8')) as { vectors: KdfVector[] };

for (const v of kdf.vectors) {
  test(`${v.fn} (${v.hash}, "${v.label}", ${v.length} bytes) matches openssl kdf`, () => {
    const secret = hex(v.secret);
    const seed = hex(v.seed);
    const out = v.fn === 'prfTls12' ? prfTls12(v.hash as PrfHash, secret, v.label, seed, v.length)
      : v.fn === 'prfTls10' ? prfTls10(secret, v.label, seed, v.length)
        : hkdfExpandLabel(v.hash as PrfHash, secret, v.label, seed, v.length);
    assert.equal(out.toString('hex'), v.output);
  });
}

test('prf dispatches on the version: MD5/SHA-1 below TLS 1.2, the suite hash from TLS 1.2', () => {
  const s = Buffer.alloc(48, 1);
  const seed = Buffer.alloc(64, 2);
  assert.deepEqual(prf(0x0301, 'sha384', s, 'x', seed, 20), prfTls10(s, 'x', seed, 20));
  assert.deepEqual(prf(0x0302, 'sha256', s, 'x', seed, 20), prfTls10(s, 'x', seed, 20));
  assert.deepEqual(prf(0x0303, 'sha384', s, 'x', seed, 20), prfTls12('sha384', s, 'x', seed, 20));
  assert.notDeepEqual(prf(0x0303, 'sha256', s, 'x', seed, 20), prf(0x0303, 'sha384', s, 'x', seed, 20));
});

test('extendedMasterSecret and masterSecret are the PRF with their RFC labels and seeds', () => {
  const pre = Buffer.alloc(48, 0x77);
  const v = kdf.vectors.find((x) => x.label === 'extended master secret' && x.hash === 'sha256');
  assert.ok(v);
  assert.equal(extendedMasterSecret(0x0303, 'sha256', pre, hex(v.seed)).toString('hex'), v.output);
  const cr = Buffer.alloc(32, 0x11);
  const sr = Buffer.alloc(32, 0x22);
  assert.deepEqual(masterSecret(0x0303, 'sha256', pre, cr, sr), prfTls12('sha256', pre, 'master secret', Buffer.concat([cr, sr]), 48));
  assert.equal(masterSecret(0x0300, 'sha256', pre, cr, sr).length, 48);
});

test('sessionHash is the PRF hash in TLS 1.2 and MD5 || SHA-1 before', () => {
  const msgs = [Buffer.from('hello'), Buffer.from(' world')];
  assert.deepEqual(sessionHash(0x0303, 'sha384', msgs), createHash('sha384').update('hello world').digest());
  const old = sessionHash(0x0301, 'sha256', msgs);
  assert.equal(old.length, 36);
  assert.deepEqual(old.subarray(0, 16), createHash('md5').update('hello world').digest());
});

test('keyBlock sizes follow the suite and version (IVs only for AEAD and SSL 3.0 / TLS 1.0 CBC)', () => {
  const ms = Buffer.alloc(48, 9);
  const r = Buffer.alloc(32, 1);
  const gcm = keyBlock(0x0303, suite(0xc02f), ms, r, r);
  assert.deepEqual([gcm.clientMacKey.length, gcm.clientWriteKey.length, gcm.clientWriteIv.length], [0, 16, 4]);
  const chacha = keyBlock(0x0303, suite(0xcca8), ms, r, r);
  assert.deepEqual([chacha.serverWriteKey.length, chacha.serverWriteIv.length], [32, 12]);
  const cbc12 = keyBlock(0x0303, suite(0xc028), ms, r, r);
  assert.deepEqual([cbc12.clientMacKey.length, cbc12.clientWriteKey.length, cbc12.clientWriteIv.length], [48, 32, 0]);
  const cbc10 = keyBlock(0x0301, suite(0x000a), ms, r, r);
  assert.deepEqual([cbc10.clientMacKey.length, cbc10.clientWriteKey.length, cbc10.clientWriteIv.length], [20, 24, 8]);
  assert.equal(keyBlockIvLen(0x0302, suite(0x002f)), 0);
  assert.equal(keyBlockIvLen(0x0300, suite(0x002f)), 16);
});

// RFC 8448 §3 (values in test/fixtures/tls-crypto/rfc8448-simple-1rtt.json and quoted here from the RFC).
const rfc = JSON.parse(readFileSync(fixture('tls-crypto', 'rfc8448-simple-1rtt.json'), 'utf8')) as Record<string, string>;

test('tls13TrafficKeys derives the RFC 8448 §3 keys and IVs from each traffic secret', () => {
  const s = suite(0x1301);
  for (const [secret, key, iv] of [
    ['serverHandshakeTrafficSecret', 'serverHandshakeKey', 'serverHandshakeIv'],
    ['clientHandshakeTrafficSecret', 'clientHandshakeKey', 'clientHandshakeIv'],
    ['serverApplicationTrafficSecret', 'serverApplicationKey', 'serverApplicationIv'],
    ['clientApplicationTrafficSecret', 'clientApplicationKey', 'clientApplicationIv'],
  ]) {
    const k = tls13TrafficKeys(s, hex(rfc[secret]));
    assert.equal(k.key.toString('hex'), rfc[key], key);
    assert.equal(k.iv.toString('hex'), rfc[iv], iv);
  }
});

test('hkdfExtract and hkdfExpandLabel reproduce the RFC 8448 §3 early secret and its "derived" secret', () => {
  const early = hkdfExtract('sha256', Buffer.alloc(32), Buffer.alloc(32));
  assert.equal(early.toString('hex'), '33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a');
  const emptyHash = createHash('sha256').digest();
  assert.equal(hkdfExpandLabel('sha256', early, 'derived', emptyHash, 32).toString('hex'),
    '6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba');
});

test('tls13NextTrafficSecret is Expand-Label(secret, "traffic upd", "", Hash.length)', () => {
  const v = kdf.vectors.find((x) => x.label === 'traffic upd' && x.hash === 'sha384');
  assert.ok(v);
  assert.equal(tls13NextTrafficSecret('sha384', hex(v.secret)).toString('hex'), v.output);
});

// ---- Finished verify_data of real sessions: PRF(master, "client finished", Hash(transcript))[0..12] (RFC 5246 §7.4.9)

interface LoopbackCase { name: string; keylog: string; client: string; server: string }
const loopback = JSON.parse(readFileSync(fixture('tls-crypto', 'loopback.json'), 'utf8')) as { cases: LoopbackCase[] };

function transcriptHash(version: number, prfHash: PrfHash, msgs: HandshakeMessage[]): Buffer {
  return sessionHash(version, prfHash, msgs.map((m) => m.bytes));
}

for (const name of ['tls10-rsa-aes256-cbc-sha-mte', 'tls11-ecdhe-rsa-aes128-cbc-sha-mte', 'tls12-ecdhe-rsa-aes256-cbc-sha384-etm', 'tls12-rsa-aes128-gcm-sha256']) {
  test(`prf reproduces both Finished verify_data of loopback session ${name}`, () => {
    const c = loopback.cases.find((x) => x.name === name);
    assert.ok(c);
    const store = new KeyStore();
    store.addEntries(parseKeyLog(c.keylog).entries);
    const conv = readConversation(Buffer.from(c.client, 'base64'), Buffer.from(c.server, 'base64'));
    const s = suite(conv.suiteId);
    const master = store.get(conv.clientHello.random)?.masterSecret;
    assert.ok(master);
    const { client, server } = decryptTls12(conv, master);
    const clientFinished = splitHandshake(client.handshake)[0];
    const serverFinished = splitHandshake(server.handshake)[0];
    assert.equal(clientFinished.type, HS_FINISHED);
    assert.equal(serverFinished.type, HS_FINISHED);
    // Full handshake: client hello, server flight to ServerHelloDone, client flight; NewSessionTicket comes
    // after the client's Finished and only enters the server's transcript.
    const done = conv.serverHandshake.findIndex((m) => m.type === HS_SERVER_HELLO_DONE);
    assert.ok(done > 0);
    const clientTranscript = [conv.clientHandshake[0], ...conv.serverHandshake.slice(0, done + 1), ...conv.clientHandshake.slice(1)];
    const cv = prf(conv.version, s.prfHash, master, 'client finished', transcriptHash(conv.version, s.prfHash, clientTranscript), 12);
    assert.deepEqual(clientFinished.body, cv);
    const sv = prf(conv.version, s.prfHash, master, 'server finished', transcriptHash(conv.version, s.prfHash, [...clientTranscript, clientFinished, ...conv.serverHandshake.slice(done + 1)]), 12);
    assert.deepEqual(serverFinished.body, sv);
  });
}

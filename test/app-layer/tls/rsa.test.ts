/**
 * RsaKeyRing and decryptPremaster against real RSA key-exchange sessions: ws-rsa-p-lt-q (TLS 1.2, AES256-SHA,
 * key with p < q), ws-rsasnakeoil2 (SSL 3.0, AES256-SHA and DES-CBC3-SHA; MANIFEST ground truth), and loopback
 * OpenSSL sessions whose key log holds the master secret the premaster must lead to (extended master secret).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, publicEncrypt, constants, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decryptPremaster, normalizeModulusHex, RsaKeyError, RsaKeyRing } from '../../../sensor/app-layer/tls/rsa.js';
import { extendedMasterSecret, masterSecret, sessionHash } from '../../../sensor/app-layer/tls/key-schedule.js';
import { suiteById } from '../../../sensor/app-layer/tls/suites.js';
import { KeyStore, parseKeyLog } from '../../../sensor/app-layer/tls/keylog.js';
import { fixture, replay } from '../../helpers/replay.js';
import {
  conversations, decryptTls12, HS_CERTIFICATE, HS_CLIENT_KEY_EXCHANGE, readConversation, type HandshakeMessage, type Hello, type TlsConversation,
} from '../../helpers/tls-records.js';

const EXT_EXTENDED_MASTER_SECRET = 0x0017;

/** Modulus (hex) of the first certificate of the server's Certificate message. */
function serverModulus(serverHandshake: HandshakeMessage[]): string {
  const cert = serverHandshake.find((m) => m.type === HS_CERTIFICATE);
  assert.ok(cert, 'Certificate message');
  const len = cert.body.readUIntBE(3, 3);
  const der = cert.body.subarray(6, 6 + len);
  return Buffer.from(new X509Certificate(der).publicKey.export({ format: 'jwk' }).n as string, 'base64url').toString('hex');
}

function encryptedPremaster(clientHandshake: HandshakeMessage[]): Buffer {
  const cke = clientHandshake.find((m) => m.type === HS_CLIENT_KEY_EXCHANGE);
  assert.ok(cke, 'ClientKeyExchange');
  return cke.body;
}

interface FullHandshake {
  clientHello: Hello;
  serverHello: Hello;
  clientHandshake: HandshakeMessage[];
  serverHandshake: HandshakeMessage[];
}

/** Master secret of a full RSA handshake, from the server key (extended master secret when negotiated). */
function rsaMaster(h: FullHandshake, version: number, ring: RsaKeyRing): Buffer {
  const key = ring.forModulus(serverModulus(h.serverHandshake));
  assert.ok(key, 'key for the certificate modulus');
  const pre = ring.decryptPremaster(key, encryptedPremaster(h.clientHandshake));
  assert.ok(pre, 'premaster decrypts');
  assert.equal(pre.length, 48);
  const suite = suiteById(h.serverHello.cipherSuite as number);
  assert.ok(suite);
  if (!h.serverHello.extensions.has(EXT_EXTENDED_MASTER_SECRET)) {
    return masterSecret(version, suite.prfHash, pre, h.clientHello.random, h.serverHello.random);
  }
  const cke = h.clientHandshake.findIndex((m) => m.type === HS_CLIENT_KEY_EXCHANGE);
  const transcript = [h.clientHandshake[0], ...h.serverHandshake.filter((m) => m.type !== 4), ...h.clientHandshake.slice(1, cke + 1)];
  return extendedMasterSecret(version, suite.prfHash, pre, sessionHash(version, suite.prfHash, transcript.map((m) => m.bytes)));
}

/**
 * Decrypts a conversation keyed by the RSA key, following renegotiations (handshakes inside the session) and
 * resumptions (no ClientKeyExchange: the master secret of the session id the ServerHello resumes).
 */
function decryptWithRsa(conv: TlsConversation, ring: RsaKeyRing, sessions: Map<string, Buffer>) {
  const master = (h: FullHandshake): Buffer => {
    const id = h.serverHello.sessionId.toString('hex');
    if (!h.clientHandshake.some((m) => m.type === HS_CLIENT_KEY_EXCHANGE)) {
      const known = sessions.get(id);
      assert.ok(known, `resumed session ${id} was seen before`);
      return known;
    }
    const m = rsaMaster(h, conv.version, ring);
    if (id.length > 0) sessions.set(id, m);
    return m;
  };
  return decryptTls12(conv, master(conv), master);
}

test('RsaKeyRing decrypts ws-rsa-p-lt-q (TLS 1.2 RSA key exchange, AES256-SHA, key with p < q)', () => {
  const ring = RsaKeyRing.load([fixture('tls-crypto', 'ws-rsa-p-lt-q.key')]);
  assert.equal(ring.size, 1);
  const convs = conversations(replay(fixture('tls-crypto', 'ws-rsa-p-lt-q.pcap'))).map((c) => readConversation(c.client, c.server));
  assert.equal(convs.length, 1);
  const conv = convs[0];
  assert.equal(conv.version, 0x0303);
  assert.equal(conv.suiteId, 0x0035);
  const { client, server } = decryptWithRsa(conv, ring, new Map());
  assert.deepEqual([...client.failures, ...server.failures], []);
  const req = client.app.toString('latin1');
  assert.match(req, /^GET \/ HTTP\/1\.1\r\n/);
  assert.match(req, /\r\nHost: 10\.9\.0\.2\r\n/);
  assert.match(req, /\r\nUser-Agent: curl\/7\.43\.0\r\n/);
  const resp = server.app.toString('latin1');
  assert.match(resp, /^HTTP\/1\.0 200 ok/);
  assert.ok(resp.includes("Error opening ''"));
});

test('RsaKeyRing decrypts ws-rsasnakeoil2 (SSL 3.0, AES256-SHA and DES-CBC3-SHA): the 11 requests of the MANIFEST', () => {
  const ring = RsaKeyRing.load([fixture('tls-crypto', 'ws-rsasnakeoil2.key')]);
  const convs = conversations(replay(fixture('tls-crypto', 'ws-rsasnakeoil2.pcap'))).map((c) => readConversation(c.client, c.server));
  const uris: string[] = [];
  const statuses: string[] = [];
  const suites = new Set<number>();
  let page = '';
  const sessions = new Map<string, Buffer>();
  for (const conv of convs) {
    assert.equal(conv.version, 0x0300);
    suites.add(conv.suiteId);
    const { client, server } = decryptWithRsa(conv, ring, sessions);
    assert.deepEqual([...client.failures, ...server.failures], []);
    uris.push(...[...client.app.toString('latin1').matchAll(/^GET (\S+) HTTP/gm)].map((m) => m[1]));
    const resp = server.app.toString('latin1');
    statuses.push(...[...resp.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]));
    page += resp;
  }
  assert.deepEqual([...suites].sort(), [0x000a, 0x0035]);
  assert.deepEqual(uris.sort(), ['/', '/favicon.ico', '/icons/apache_pb.png', '/icons/back.gif', '/icons/blank.gif', '/icons/debian/openlogo-25.jpg',
    '/icons/jhe061.png', '/test', '/test/', '/test2/', '/test3/'].sort());
  assert.deepEqual(statuses.sort(), ['200', '200', '200', '200', '200', '200', '301', '404', '404', '404', '404']);
  assert.ok(page.includes('<TITLE>Placeholder page</TITLE>'));
  assert.ok(page.includes('Server: Apache/2.0.55 (Debian) mod_ssl/2.0.55 OpenSSL/0.9.8a'));
});

interface LoopbackCase { name: string; keylog: string; client: string; server: string }
const loopback = JSON.parse(readFileSync(fixture('tls-crypto', 'loopback.json'), 'utf8')) as { cases: LoopbackCase[] };

for (const name of ['tls10-rsa-aes128-cbc-sha-etm', 'tls12-rsa-aes128-cbc-sha256-mte', 'tls12-rsa-aes128-gcm-sha256', 'tls12-rsa-aes128-ccm']) {
  test(`decryptPremaster + extended master secret give the key-logged master secret of loopback ${name}`, () => {
    const c = loopback.cases.find((x) => x.name === name);
    assert.ok(c);
    const conv = readConversation(Buffer.from(c.client, 'base64'), Buffer.from(c.server, 'base64'));
    assert.equal(conv.extendedMasterSecret, true, 'OpenSSL negotiates RFC 7627 by default');
    const store = new KeyStore();
    store.addEntries(parseKeyLog(c.keylog).entries);
    const ring = RsaKeyRing.load([fixture('tls-crypto', 'loopback-server.key')]);
    assert.deepEqual(rsaMaster(conv, conv.version, ring), store.get(conv.clientHello.random)?.masterSecret);
  });
}

test('RsaKeyRing loads PKCS#8 and several keys per file, and finds them by modulus in any notation', () => {
  const a = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const b = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const pem = a.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
    + 'junk between blocks\n' + (b.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string);
  const ring = RsaKeyRing.fromPem(pem, 'two.pem');
  assert.equal(ring.size, 2);
  const n = Buffer.from(b.publicKey.export({ format: 'jwk' }).n as string, 'base64url').toString('hex');
  const withZero = '00' + n;
  const colons = withZero.toUpperCase().match(/../g)?.join(':') ?? '';
  assert.equal(ring.forModulus(colons)?.modulusHex, n);
  assert.equal(ring.forModulus(n)?.bits, 1024);
  assert.equal(ring.forModulus('00ff'), undefined);
  assert.equal(normalizeModulusHex('00:00:AB cd'), 'abcd');
});

test('decryptPremaster accepts the bare and the length-prefixed ciphertext and refuses bad bytes without throwing', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const key = RsaKeyRing.fromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }) as string).all()[0];
  const premaster = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(46, 0x5a)]);
  const enc = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, premaster);
  assert.deepEqual(decryptPremaster(key, enc), premaster);
  const prefixed = Buffer.concat([Buffer.from([0, enc.length]), enc]);
  assert.deepEqual(decryptPremaster(key, prefixed), premaster);
  const enc47 = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, premaster.subarray(0, 47));
  assert.equal(decryptPremaster(key, enc47), undefined, '47-byte message');
  const notVersion = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.alloc(48, 0x42));
  assert.equal(decryptPremaster(key, notVersion), undefined, 'no 0x03 major version');
  const oaep = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING }, premaster);
  assert.equal(decryptPremaster(key, oaep), undefined, 'OAEP block');
  assert.equal(decryptPremaster(key, Buffer.alloc(0)), undefined);
  assert.equal(decryptPremaster(key, Buffer.alloc(200, 1)), undefined, 'longer than the modulus');
  assert.equal(decryptPremaster(key, Buffer.alloc(128, 0xff)), undefined, 'not below the modulus');
  for (let i = 0; i < 20; i++) {
    const junk = Buffer.alloc(128);
    for (let j = 0; j < junk.length; j++) junk[j] = (i * 97 + j * 31) & 0x7f;
    assert.equal(decryptPremaster(key, junk), undefined);
  }
});

test('RsaKeyRing.load throws typed errors naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hark-rsa-'));
  try {
    const missing = join(dir, 'missing.key');
    assert.throws(() => RsaKeyRing.load([missing]), (e: unknown) => e instanceof RsaKeyError && e.code === 'E_RSA_KEY_NOT_FOUND'
      && e.message === `Cannot read RSA key "${missing}": no such file`);
    const garbage = join(dir, 'garbage.key');
    writeFileSync(garbage, 'not a key\n');
    assert.throws(() => RsaKeyRing.load([garbage]), (e: unknown) => e instanceof RsaKeyError && e.code === 'E_RSA_KEY_INVALID' && e.message.includes(garbage));
    const broken = join(dir, 'broken.key');
    writeFileSync(broken, '-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n');
    assert.throws(() => RsaKeyRing.load([broken]), (e: unknown) => e instanceof RsaKeyError && e.code === 'E_RSA_KEY_INVALID');
    const ec = join(dir, 'ec.key');
    writeFileSync(ec, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    assert.throws(() => RsaKeyRing.load([ec]), (e: unknown) => e instanceof RsaKeyError && e.code === 'E_RSA_KEY_NOT_RSA' && e.message.includes(ec));
    const encrypted = join(dir, 'enc.key');
    writeFileSync(encrypted, generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey
      .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-128-cbc', passphrase: 'x' }));
    assert.throws(() => RsaKeyRing.load([encrypted]), (e: unknown) => e instanceof RsaKeyError && e.code === 'E_RSA_KEY_ENCRYPTED');
    assert.throws(() => RsaKeyRing.load([dir]), (e: unknown) => e instanceof RsaKeyError && e.code === 'E_RSA_KEY_READ' && e.message.includes('is a directory'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

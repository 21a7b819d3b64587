/**
 * RecordDecryptor against ground truth made elsewhere: the protected records of RFC 8448 §3, real captures
 * with their key logs (MANIFEST ground truth), and loopback sessions between OpenSSL peers
 * (test/fixtures/tls-crypto/loopback.json, generator beside it). Failure modes use those real records, altered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { RecordDecryptor, tls13Decryptor } from '../../../sensor/app-layer/tls/record-cipher.js';
import { suiteById, type CipherSuite } from '../../../sensor/app-layer/tls/suites.js';
import { keyBlock } from '../../../sensor/app-layer/tls/key-schedule.js';
import { KeyStore, parseKeyLog } from '../../../sensor/app-layer/tls/keylog.js';
import { fixture, replay } from '../../helpers/replay.js';
import {
  afterChangeCipherSpec, conversations, CT_ALERT, CT_APPLICATION_DATA, CT_HANDSHAKE, decryptTls12, decryptTls13, hex,
  readConversation, splitHandshake, splitRecords, type TlsConversation, type TlsRecord,
} from '../../helpers/tls-records.js';

const TLS13 = 0x0304;
const suite = (id: number): CipherSuite => {
  const s = suiteById(id);
  assert.ok(s, `suite 0x${id.toString(16)}`);
  return s;
};

interface Rfc8448 {
  [k: string]: unknown;
  records: Record<string, string>;
}
const rfc = JSON.parse(readFileSync(fixture('tls-crypto', 'rfc8448-simple-1rtt.json'), 'utf8')) as Rfc8448;
const rfcHex = (k: string): Buffer => hex(rfc[k] as string);
const rfcRecord = (k: string): TlsRecord => splitRecords(hex(rfc.records[k]))[0];
const rfcDecryptor = (key: string, iv: string): RecordDecryptor =>
  new RecordDecryptor({ suite: suite(0x1301), version: TLS13, key: rfcHex(key), iv: rfcHex(iv) });
const open = (d: RecordDecryptor, r: TlsRecord) => d.decrypt(r.type, r.header, r.fragment);
const range50 = Buffer.from(Array.from({ length: 50 }, (_, i) => i));

test('RecordDecryptor (TLS 1.3) opens the RFC 8448 §3 server handshake flight', () => {
  const r = open(rfcDecryptor('serverHandshakeKey', 'serverHandshakeIv'), rfcRecord('serverHandshake'));
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.type, CT_HANDSHAKE);
  assert.equal(r.plaintext.length, rfc.serverHandshakePayloadLength);
  const msgs = splitHandshake(Buffer.from(r.plaintext));
  assert.deepEqual(msgs.map((m) => m.type), [8, 11, 15, 20]);
  assert.deepEqual(msgs[0].bytes, rfcHex('encryptedExtensions'));
  assert.deepEqual(msgs[2].bytes.subarray(0, 32), rfcHex('certificateVerifyPrefix'));
  assert.deepEqual(msgs[3].bytes, rfcHex('serverFinished'));
});

test('RecordDecryptor (TLS 1.3) opens the RFC 8448 §3 client Finished', () => {
  const r = open(rfcDecryptor('clientHandshakeKey', 'clientHandshakeIv'), rfcRecord('clientFinished'));
  assert.ok(r.ok);
  assert.equal(r.type, CT_HANDSHAKE);
  assert.deepEqual(Buffer.from(r.plaintext), rfcHex('clientFinished'));
});

test('RecordDecryptor (TLS 1.3) opens RFC 8448 §3 application records with per-record nonces (seq 0, 1, 2)', () => {
  const server = rfcDecryptor('serverApplicationKey', 'serverApplicationIv');
  const nst = open(server, rfcRecord('serverNewSessionTicket'));
  assert.ok(nst.ok);
  assert.equal(nst.type, CT_HANDSHAKE);
  assert.equal(nst.plaintext[0], 4, 'NewSessionTicket');
  const sApp = open(server, rfcRecord('serverApplicationData'));
  assert.ok(sApp.ok);
  assert.equal(sApp.type, CT_APPLICATION_DATA);
  assert.deepEqual(Buffer.from(sApp.plaintext), range50);
  const sAlert = open(server, rfcRecord('serverAlert'));
  assert.ok(sAlert.ok);
  assert.equal(sAlert.type, CT_ALERT);
  assert.deepEqual(Buffer.from(sAlert.plaintext), rfcHex('alertPayload'));
  assert.equal(server.seq, 3);

  const client = rfcDecryptor('clientApplicationKey', 'clientApplicationIv');
  const cApp = open(client, rfcRecord('clientApplicationData'));
  assert.ok(cApp.ok);
  assert.deepEqual(Buffer.from(cApp.plaintext), range50);
  const cAlert = open(client, rfcRecord('clientAlert'));
  assert.ok(cAlert.ok);
  assert.equal(cAlert.type, CT_ALERT);
});

test('tls13Decryptor derives the RFC 8448 keys from the traffic secret and opens the record', () => {
  const r = open(tls13Decryptor(suite(0x1301), rfcHex('clientHandshakeTrafficSecret')), rfcRecord('clientFinished'));
  assert.ok(r.ok);
  assert.deepEqual(Buffer.from(r.plaintext), rfcHex('clientFinished'));
});

test('RecordDecryptor.decrypt flags a changed tag as bad_record_mac and consumes the sequence number', () => {
  const rec = rfcRecord('clientApplicationData');
  const bad = Buffer.from(rec.fragment);
  bad[bad.length - 1] ^= 0x01;
  const d = rfcDecryptor('clientApplicationKey', 'clientApplicationIv');
  assert.deepEqual(d.decrypt(rec.type, rec.header, bad), { ok: false, reason: 'bad_record_mac' });
  assert.equal(d.seq, 1);
  assert.equal(open(d, rec).ok, false, 'the genuine record now meets sequence number 1');
});

test('RecordDecryptor.tryDecrypt leaves the sequence number on failure so the next candidate record still opens', () => {
  const rec = rfcRecord('clientApplicationData');
  const d = rfcDecryptor('clientApplicationKey', 'clientApplicationIv');
  const foreign = rfcRecord('clientFinished'); // protected with another key: a rejected 0-RTT record looks like this
  assert.deepEqual(d.tryDecrypt(foreign.type, foreign.header, foreign.fragment), { ok: false, reason: 'bad_record_mac' });
  assert.equal(d.seq, 0);
  const r = d.tryDecrypt(rec.type, rec.header, rec.fragment);
  assert.ok(r.ok);
  assert.equal(d.seq, 1);
});

test('RecordDecryptor (TLS 1.3) uses the record header as additional data', () => {
  const rec = rfcRecord('clientApplicationData');
  const header = Buffer.from(rec.header);
  header[2] = 0x01; // legacy_record_version 0x0301 instead of 0x0303
  const d = rfcDecryptor('clientApplicationKey', 'clientApplicationIv');
  assert.deepEqual(d.decrypt(rec.type, header, rec.fragment), { ok: false, reason: 'bad_record_mac' });
});

test('RecordDecryptor (TLS 1.3) rejects an inner plaintext of only zeros as bad_padding', () => {
  // RFC 8446 §5.4: no non-zero byte means no content type. Sealed here with the RFC's client key, seq 0.
  const key = rfcHex('clientApplicationKey');
  const iv = rfcHex('clientApplicationIv');
  const header = Buffer.from([23, 3, 3, 0, 16 + 16]);
  const c = createCipheriv('aes-128-gcm', key, iv);
  c.setAAD(header);
  const ct = Buffer.concat([c.update(Buffer.alloc(16)), c.final(), c.getAuthTag()]);
  assert.deepEqual(rfcDecryptor('clientApplicationKey', 'clientApplicationIv').decrypt(23, header, ct), { ok: false, reason: 'bad_padding' });
});

test('RecordDecryptor reports too_short for a fragment smaller than the tag', () => {
  const d = rfcDecryptor('clientApplicationKey', 'clientApplicationIv');
  assert.deepEqual(d.decrypt(23, Buffer.from([23, 3, 3, 0, 10]), Buffer.alloc(10)), { ok: false, reason: 'too_short' });
  const gcm12 = new RecordDecryptor({ suite: suite(0xc02f), version: 0x0303, key: Buffer.alloc(16), iv: Buffer.alloc(4) });
  assert.deepEqual(gcm12.decrypt(23, Buffer.from([23, 3, 3, 0, 23]), Buffer.alloc(23)), { ok: false, reason: 'too_short' });
  const cbc = new RecordDecryptor({ suite: suite(0x002f), version: 0x0303, key: Buffer.alloc(16), iv: Buffer.alloc(0), macKey: Buffer.alloc(20) });
  assert.deepEqual(cbc.decrypt(23, Buffer.from([23, 3, 3, 0, 16]), Buffer.alloc(16)), { ok: false, reason: 'too_short' });
});

test('RecordDecryptor marks impossible suite/version pairs and wrong key sizes unsupported', () => {
  const cases: RecordDecryptor[] = [
    new RecordDecryptor({ suite: suite(0x1301), version: 0x0303, key: Buffer.alloc(16), iv: Buffer.alloc(12) }),
    new RecordDecryptor({ suite: suite(0xc02f), version: 0x0301, key: Buffer.alloc(16), iv: Buffer.alloc(4) }),
    new RecordDecryptor({ suite: suite(0xc02f), version: TLS13, key: Buffer.alloc(16), iv: Buffer.alloc(4) }),
    new RecordDecryptor({ suite: suite(0xc02f), version: 0x0303, key: Buffer.alloc(15), iv: Buffer.alloc(4) }),
    new RecordDecryptor({ suite: suite(0x002f), version: 0x0303, key: Buffer.alloc(16), iv: Buffer.alloc(0) }),
  ];
  for (const d of cases) {
    assert.equal(d.unsupported, true);
    assert.deepEqual(d.decrypt(23, Buffer.from([23, 3, 3, 0, 64]), Buffer.alloc(64)), { ok: false, reason: 'unsupported' });
  }
});

// ---- real captures with key logs (ground truth: /work/shared/corpus/MANIFEST.md, quoted in the fixture README)

function keyStore(...files: string[]): KeyStore {
  const store = new KeyStore();
  for (const f of files) {
    const parsed = parseKeyLog(readFileSync(fixture('tls-crypto', f), 'latin1'));
    assert.deepEqual(parsed.bad, []);
    store.addEntries(parsed.entries);
  }
  return store;
}

function tls12FromKeyLog(conv: TlsConversation, store: KeyStore) {
  const master = store.get(conv.clientHello.random)?.masterSecret;
  assert.ok(master, `no CLIENT_RANDOM for ${conv.clientHello.random.toString('hex')}`);
  return decryptTls12(conv, master);
}

test('RecordDecryptor decrypts zeek-tls12-decryption (Firefox -> heise.de, 0xc030 AES-256-GCM)', () => {
  const store = keyStore('zeek-tls12-decryption.keys');
  const convs = conversations(replay(fixture('tls-crypto', 'zeek-tls12-decryption.pcap'))).map((c) => readConversation(c.client, c.server));
  const conv = convs.find((c) => store.get(c.clientHello.random));
  assert.ok(conv);
  assert.equal(conv.suiteId, 0xc030);
  const { client, server } = tls12FromKeyLog(conv, store);
  assert.deepEqual(client.failures, []);
  assert.deepEqual(server.failures, []);
  assert.equal(client.types[0], CT_HANDSHAKE, 'first protected record is Finished');
  const req = client.app.toString('latin1');
  assert.match(req, /^GET \/ HTTP\/1\.1\r\n/);
  assert.match(req, /\r\nHost: heise\.de\r\n/);
  assert.match(req, /User-Agent: Mozilla\/5\.0 \(X11; Linux x86_64; rv:78\.0\) Gecko\/20100101 Firefox\/78\.0/);
  const resp = server.app.toString('latin1');
  assert.match(resp, /^HTTP\/1\.1 301 /);
  assert.match(resp, /\r\nLocation: https:\/\/www\.heise\.de\/\r\n/i);
});

test('RecordDecryptor decrypts ws-tls12-dsb (two 0xc02f sessions, HEAD example.com / example.net)', () => {
  const store = keyStore('ws-tls12-dsb-1.keys', 'ws-tls12-dsb-2.keys');
  const convs = conversations(replay(fixture('tls-crypto', 'ws-tls12-dsb.pcapng'))).map((c) => readConversation(c.client, c.server));
  const hosts: string[] = [];
  for (const conv of convs) {
    assert.equal(conv.suiteId, 0xc02f);
    const { client, server } = tls12FromKeyLog(conv, store);
    assert.deepEqual([...client.failures, ...server.failures], []);
    const req = client.app.toString('latin1');
    assert.match(req, /^HEAD /);
    hosts.push(/\r\nHost: ([^\r]+)\r\n/.exec(req)?.[1] ?? '');
    assert.match(server.app.toString('latin1'), /^HTTP\/1\.1 200 /);
    assert.match(server.app.toString('latin1'), /\r\nContent-Encoding: gzip\r\n/i);
  }
  assert.deepEqual(hosts.sort(), ['example.com', 'example.net']);
});

test('RecordDecryptor decrypts all seven ChaCha20-Poly1305 suites of ws-tls12-chacha20poly1305 (incl. PSK)', () => {
  const store = keyStore('ws-tls12-chacha20poly1305.keys');
  const convs = conversations(replay(fixture('tls-crypto', 'ws-tls12-chacha20poly1305.pcap'))).map((c) => readConversation(c.client, c.server));
  const seen: Array<[number, string]> = [];
  for (const conv of convs) {
    const { client, server } = tls12FromKeyLog(conv, store);
    assert.deepEqual([...client.failures, ...server.failures], []);
    assert.match(client.app.toString('latin1'), /^GET \/ HTTP\/1\.1\r\nHost: localhost/);
    const page = server.app.toString('latin1');
    assert.match(page, /^HTTP\/1\.0 200 ok/);
    assert.match(page, /s_server -www -accept 443 -dcert serverd\.pem -dkey serverd\.pem -psk 0102030405060708091011121314151617181920/);
    seen.push([conv.suiteId, /New, TLSv1\.2, Cipher is ([A-Z0-9-]+)/.exec(page)?.[1] ?? '']);
  }
  assert.deepEqual(seen, [
    [0xcca9, 'ECDHE-ECDSA-CHACHA20-POLY1305'], [0xcca8, 'ECDHE-RSA-CHACHA20-POLY1305'], [0xccaa, 'DHE-RSA-CHACHA20-POLY1305'],
    [0xccae, 'RSA-PSK-CHACHA20-POLY1305'], [0xccad, 'DHE-PSK-CHACHA20-POLY1305'], [0xccac, 'ECDHE-PSK-CHACHA20-POLY1305'],
    [0xccab, 'PSK-CHACHA20-POLY1305'],
  ]);
});

function tls13Secrets(store: KeyStore, conv: TlsConversation) {
  const s = store.get(conv.clientHello.random);
  assert.ok(s, 'secrets for the session');
  return s;
}

test('RecordDecryptor decrypts ws-tls13-rfc8446 (0x1301) incl. the accepted 0-RTT request', () => {
  const store = keyStore('ws-tls13-rfc8446.keys');
  const convs = conversations(replay(fixture('tls-crypto', 'ws-tls13-rfc8446.pcap'))).map((c) => readConversation(c.client, c.server));
  assert.equal(convs.length, 2);
  const requests: string[] = [];
  const bodies: string[] = [];
  for (const conv of convs) {
    assert.equal(conv.version, TLS13);
    assert.equal(conv.suiteId, 0x1301);
    const { client, server } = decryptTls13(conv, tls13Secrets(store, conv));
    assert.deepEqual([...client.failures, ...server.failures], []);
    requests.push(...[...client.app.toString('latin1').matchAll(/GET (\S+) HTTP/g)].map((m) => m[1]));
    bodies.push(...[...server.app.toString('latin1').matchAll(/Request for [^\n]*\n/g)].map((m) => m[0]));
  }
  assert.deepEqual(requests, ['/first', '/early', '/second']);
  assert.deepEqual(bodies, [
    'Request for /first, version TLSv1.3, Early data: no\n',
    'Request for /early, version TLSv1.3, Early data: yes\n',
    'Request for /second, version TLSv1.3, Early data: yes\n',
  ]);
});

test('RecordDecryptor.tryDecrypt skips 0-RTT records for a server that rejected them and opens the client Finished at seq 0', () => {
  const store = keyStore('ws-tls13-rfc8446.keys');
  const convs = conversations(replay(fixture('tls-crypto', 'ws-tls13-rfc8446.pcap'))).map((c) => readConversation(c.client, c.server));
  const conv = convs.find((c) => store.get(c.clientHello.random)?.clientEarlyTrafficSecret);
  assert.ok(conv);
  const s = tls13Secrets(store, conv);
  // As if the server had rejected early data: offer every client record to the handshake decryptor.
  const hs = tls13Decryptor(suite(0x1301), s.clientHandshakeTrafficSecret as Buffer);
  let skipped = 0;
  let finished = -1;
  for (const r of conv.clientRecords.filter((x) => x.type === CT_APPLICATION_DATA)) {
    const res = hs.tryDecrypt(r.type, r.header, r.fragment);
    if (!res.ok) {
      skipped++;
      continue;
    }
    assert.equal(res.type, CT_HANDSHAKE);
    finished = splitHandshake(Buffer.from(res.plaintext))[0].type;
    break;
  }
  assert.ok(skipped >= 2, `early data and EndOfEarlyData skipped (${skipped})`);
  assert.equal(finished, 20);
  assert.equal(hs.seq, 1);
});

// ---- loopback sessions between OpenSSL peers (generator: test/fixtures/tls-crypto/gen-loopback.mjs)

interface LoopbackCase {
  name: string;
  protocol: string;
  suite: string;
  clientSizes?: number[];
  serverSizes?: number[];
  clientText?: string[];
  serverText?: string[];
  keylog: string;
  client: string;
  server: string;
}
const loopback = JSON.parse(readFileSync(fixture('tls-crypto', 'loopback.json'), 'utf8')) as { cases: LoopbackCase[] };

/** The generator's payload pattern (gen-loopback.mjs `pattern`). */
function pattern(seed: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (seed * 131 + i * 7 + (i >> 8)) & 0xff;
  return b;
}

function expected(c: LoopbackCase, dir: 'client' | 'server'): Buffer {
  const text = dir === 'client' ? c.clientText : c.serverText;
  if (text) return Buffer.from(text.join(''), 'latin1');
  const sizes = (dir === 'client' ? c.clientSizes : c.serverSizes) ?? [];
  return Buffer.concat(sizes.map((n, i) => pattern(i + (dir === 'client' ? 1 : 101), n)));
}

function loopbackConversation(c: LoopbackCase): { conv: TlsConversation; store: KeyStore } {
  const store = new KeyStore();
  const parsed = parseKeyLog(c.keylog);
  assert.deepEqual(parsed.bad, []);
  store.addEntries(parsed.entries);
  return { conv: readConversation(Buffer.from(c.client, 'base64'), Buffer.from(c.server, 'base64')), store };
}

for (const c of loopback.cases) {
  test(`RecordDecryptor decrypts loopback session ${c.name} (${c.protocol}, ${c.suite})`, () => {
    const { conv, store } = loopbackConversation(c);
    const s = suite(conv.suiteId);
    assert.equal(s.name, c.suite);
    if (c.name.endsWith('-etm')) assert.equal(conv.encryptThenMac, true, 'encrypt_then_mac negotiated');
    if (c.name.endsWith('-mte')) assert.equal(conv.encryptThenMac, false, 'encrypt_then_mac refused');
    const result = conv.version === TLS13
      ? decryptTls13(conv, tls13Secrets(store, conv))
      : tls12FromKeyLog(conv, store);
    assert.deepEqual(result.client.failures, []);
    assert.deepEqual(result.server.failures, []);
    assert.deepEqual(result.client.app, expected(c, 'client'));
    assert.deepEqual(result.server.app, expected(c, 'server'));
    assert.equal(result.client.types.at(-1), CT_ALERT, 'close_notify decrypts too');
    if (c.name.includes('keyupdate')) {
      const updates = splitHandshake(result.client.handshake).filter((m) => m.type === 24);
      assert.equal(updates.length, 1, 'one client KeyUpdate');
      assert.equal(updates[0].body[0], 1, 'update_requested');
      assert.ok(splitHandshake(result.server.handshake).some((m) => m.type === 24), 'server KeyUpdate');
    }
  });
}

function loopbackCase(name: string): LoopbackCase {
  const c = loopback.cases.find((x) => x.name === name);
  assert.ok(c, name);
  return c;
}

/** The decryptors of a loopback TLS <= 1.2 session and its protected client records. */
function tls12Setup(name: string) {
  const { conv, store } = loopbackConversation(loopbackCase(name));
  const s = suite(conv.suiteId);
  const keys = keyBlock(conv.version, s, store.get(conv.clientHello.random)?.masterSecret as Buffer, conv.clientHello.random, conv.serverHello.random);
  const make = (encryptThenMac = conv.encryptThenMac) =>
    new RecordDecryptor({ suite: s, version: conv.version, key: keys.clientWriteKey, iv: keys.clientWriteIv, macKey: keys.clientMacKey, encryptThenMac });
  return { conv, make, records: afterChangeCipherSpec(conv.clientRecords) };
}

test('RecordDecryptor (CBC, MAC-then-encrypt) reports a changed last block as bad_padding or bad_record_mac, a changed IV as bad_record_mac', () => {
  const { conv, make, records } = tls12Setup('tls12-rsa-aes128-cbc-sha256-mte');
  assert.equal(conv.encryptThenMac, false);
  const d = make();
  assert.ok(open(d, records[0]).ok);
  const app = records[1];
  const ivChanged = Buffer.from(app.fragment);
  ivChanged[0] ^= 0x80;
  assert.deepEqual(make().tryDecrypt(app.type, app.header, ivChanged), { ok: false, reason: 'bad_record_mac' });
  const padChanged = Buffer.from(app.fragment);
  padChanged[padChanged.length - 17] ^= 0x01; // previous block: flips the padding length byte of the last block
  const r = d.tryDecrypt(app.type, app.header, padChanged);
  assert.equal(r.ok, false);
  assert.ok(!r.ok && (r.reason === 'bad_padding' || r.reason === 'bad_record_mac'), JSON.stringify(r));
  assert.ok(d.tryDecrypt(app.type, app.header, app.fragment).ok);
});

test('RecordDecryptor (CBC, encrypt-then-MAC) checks the MAC before decrypting', () => {
  const { conv, make, records } = tls12Setup('tls12-ecdhe-rsa-aes256-cbc-sha384-etm');
  assert.equal(conv.encryptThenMac, true);
  const d = make();
  assert.ok(open(d, records[0]).ok);
  const app = records[1];
  const macChanged = Buffer.from(app.fragment);
  macChanged[macChanged.length - 1] ^= 0x01;
  assert.deepEqual(d.tryDecrypt(app.type, app.header, macChanged), { ok: false, reason: 'bad_record_mac' });
  assert.ok(d.tryDecrypt(app.type, app.header, app.fragment).ok);
  assert.equal(open(make(false), records[0]).ok, false, 'the same keys without encrypt-then-MAC fail');
});

test('RecordDecryptor (TLS 1.0 CBC) chains the IV from the previous record, and tryDecrypt does not move the chain on failure', () => {
  const { make, records } = tls12Setup('tls10-rsa-aes256-cbc-sha-mte');
  assert.ok(records.length >= 4);
  const d = make();
  assert.ok(open(d, records[0]).ok);
  const bad = Buffer.from(records[1].fragment);
  bad[bad.length - 1] ^= 0x01;
  assert.equal(d.tryDecrypt(records[1].type, records[1].header, bad).ok, false);
  for (const r of records.slice(1)) assert.ok(d.tryDecrypt(r.type, r.header, r.fragment).ok);
  // Skipping a record breaks the chain: the record after it no longer opens.
  const e = make();
  assert.ok(open(e, records[0]).ok);
  e.skipRecords();
  assert.equal(open(e, records[2]).ok, false);
});

test('RecordDecryptor never throws on arbitrary fragments, in every mode (seeded)', () => {
  let x = 12345;
  const rnd = () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x >>> 8;
  };
  const modes: Array<[number, number, boolean?]> = [
    [0x1301, TLS13], [0x1303, TLS13], [0x1305, TLS13], [0xc02f, 0x0303], [0xc0a0, 0x0303], [0xcca8, 0x0303],
    [0x002f, 0x0303], [0x002f, 0x0303, true], [0x002f, 0x0301], [0x002f, 0x0301, true], [0x000a, 0x0300], [0x003b, 0x0303], [0xc028, 0x0302],
  ];
  for (const [id, version, etm] of modes) {
    const s = suite(id);
    const d = new RecordDecryptor({
      suite: s, version, key: Buffer.alloc(s.keyLen, 1), iv: Buffer.alloc(version === TLS13 ? 12 : Math.max(s.ivLen, s.blockLen), 2),
      macKey: Buffer.alloc(s.macLen, 3), encryptThenMac: etm,
    });
    assert.equal(d.unsupported, false, s.name);
    for (let i = 0; i < 300; i++) {
      const len = rnd() % 400;
      const frag = Buffer.alloc(len);
      for (let j = 0; j < len; j++) frag[j] = rnd() & 0xff;
      const header = Buffer.from([23, 3, version & 0xff, len >> 8, len & 0xff]);
      const r = i % 2 === 0 ? d.decrypt(23, header.subarray(0, rnd() % 6), frag) : d.tryDecrypt(23, header, frag);
      assert.equal(r.ok, false);
    }
  }
});

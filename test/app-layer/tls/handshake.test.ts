import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counters } from '../../../sensor/events/counters.js';
import {
  EXT_ALPN, EXT_EARLY_DATA, EXT_EXTENDED_MASTER_SECRET, EXT_KEY_SHARE, EXT_PRE_SHARED_KEY,
  EXT_SERVER_NAME, EXT_SESSION_TICKET, EXT_SUPPORTED_VERSIONS, HandshakeReassembler, HELLO_RETRY_REQUEST_RANDOM,
  HS_CERTIFICATE, HS_CLIENT_HELLO, HS_CLIENT_KEY_EXCHANGE, HS_NEW_SESSION_TICKET, HS_SERVER_HELLO,
  HS_SERVER_HELLO_DONE, HS_SERVER_KEY_EXCHANGE, isGrease, MAX_HANDSHAKE_MESSAGE_BYTES, parseCertificateChain,
  parseClientHello, parseEncryptedExtensions, parseKeyUpdate, parseNewSessionTicket, parseRsaClientKeyExchange,
  parseServerHello, parseSsl2ClientHello, tlsVersionName, type HandshakeMessage,
} from '../../../sensor/app-layer/tls/handshake.js';
import { messagesOfType, tlsFlows } from './corpus.js';

// ---- byte builders for synthetic messages (RFC 8446 §3 presentation language) -------------------------
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const u8 = (n: number): Buffer => Buffer.from([n]);
const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const u24 = (n: number): Buffer => Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff]);
const vec8 = (b: Buffer): Buffer => Buffer.concat([u8(b.length), b]);
const vec16 = (b: Buffer): Buffer => Buffer.concat([u16(b.length), b]);
const vec24 = (b: Buffer): Buffer => Buffer.concat([u24(b.length), b]);
const u16s = (vs: number[]): Buffer => Buffer.concat(vs.map(u16));
const ext = (type: number, data: Buffer): Buffer => Buffer.concat([u16(type), vec16(data)]);
const sniExt = (name: string): Buffer => ext(EXT_SERVER_NAME, vec16(Buffer.concat([u8(0), vec16(Buffer.from(name, 'latin1'))])));
const alpnData = (names: string[]): Buffer => vec16(Buffer.concat(names.map((n) => vec8(Buffer.from(n, 'latin1')))));
const RANDOM = Buffer.alloc(32, 0x11);

interface HelloParts {
  version?: number;
  sessionId?: Buffer;
  suites?: Buffer;
  compression?: Buffer;
  /** Extension bytes (already framed), wrapped in the 2-byte block length; undefined: no block at all. */
  exts?: Buffer[];
  tail?: Buffer;
}

function clientHello(p: HelloParts = {}): Buffer {
  return Buffer.concat([
    u16(p.version ?? 0x0303), RANDOM, vec8(p.sessionId ?? Buffer.alloc(0)), p.suites ?? vec16(u16s([0x1301, 0xc02f])),
    p.compression ?? vec8(u8(0)), p.exts === undefined ? Buffer.alloc(0) : vec16(Buffer.concat(p.exts)), p.tail ?? Buffer.alloc(0),
  ]);
}

function serverHello(exts: Buffer[] | undefined, random: Buffer = RANDOM, suite = 0x1301): Buffer {
  return Buffer.concat([u16(0x0303), random, vec8(Buffer.alloc(32, 0x22)), u16(suite), u8(0),
    exts === undefined ? Buffer.alloc(0) : vec16(Buffer.concat(exts))]);
}

const handshake = (type: number, body: Buffer): Buffer => Buffer.concat([u8(type), u24(body.length), body]);

function reassemble(fragments: readonly Uint8Array[], counters = new Counters()): { msgs: HandshakeMessage[]; results: string[]; r: HandshakeReassembler } {
  const r = new HandshakeReassembler(counters);
  const msgs: HandshakeMessage[] = [];
  const results = fragments.map((f) => r.push(f, (m) => msgs.push(m)));
  return { msgs, results, r };
}

const summary = (msgs: HandshakeMessage[]): string[] => msgs.map((m) => `${m.type}:${Buffer.from(m.raw).toString('hex')}`);

// ---- HandshakeReassembler ----------------------------------------------------------------------------

// zeek-tls12-decryption.pcap handshake types per direction (before ChangeCipherSpec), as tshark shows them:
//   tshark -r zeek-tls12-decryption.pcap -Y tls.handshake -T fields -e tcp.srcport -e tls.handshake.type
// client: 1, 16; server: 2, 11, 12, 14, 4 (NewSessionTicket, sent before its ChangeCipherSpec).
test('HandshakeReassembler yields the handshake messages tshark shows for a real TLS 1.2 session', () => {
  const [flow] = tlsFlows('zeek-tls12-decryption.pcap');
  assert.deepEqual(flow.messages[0].map((m) => m.type), [HS_CLIENT_HELLO, HS_CLIENT_KEY_EXCHANGE]);
  assert.deepEqual(flow.messages[1].map((m) => m.type),
    [HS_SERVER_HELLO, HS_CERTIFICATE, HS_SERVER_KEY_EXCHANGE, HS_SERVER_HELLO_DONE, HS_NEW_SESSION_TICKET]);
  for (const m of [...flow.messages[0], ...flow.messages[1]]) {
    assert.equal(m.raw.length, m.body.length + 4);
    assert.equal((m.raw[1] << 16) | (m.raw[2] << 8) | m.raw[3], m.body.length);
  }
});

test('HandshakeReassembler gives the same messages however the handshake bytes are cut into records', () => {
  const [flow] = tlsFlows('zeek-tls12-decryption.pcap');
  for (const dir of [0, 1] as const) {
    const bytes = Buffer.concat(flow.messages[dir].map((m) => m.raw));
    const whole = summary(reassemble([bytes]).msgs);
    assert.equal(whole.length, flow.messages[dir].length);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const { msgs, results } = reassemble([bytes.subarray(0, cut), bytes.subarray(cut)]);
      assert.deepEqual(summary(msgs), whole, `dir ${dir} cut ${cut}`);
      assert.deepEqual(results, ['ok', 'ok']);
    }
    // Three pieces around the certificate and the message boundaries after it.
    for (let a = 0; a < bytes.length; a += 97) {
      for (let b = a; b <= bytes.length; b += 131) {
        assert.deepEqual(summary(reassemble([bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)]).msgs), whole, `cuts ${a} ${b}`);
      }
    }
  }
});

test('HandshakeReassembler copies: the messages survive the caller reusing its buffer', () => {
  const spanning = handshake(HS_CLIENT_KEY_EXCHANGE, hex('0002abcd'));
  const first = Buffer.concat([handshake(HS_SERVER_HELLO_DONE, Buffer.alloc(0)), spanning.subarray(0, 5)]);
  const { msgs } = reassemble([first, spanning.subarray(5)]);
  first.fill(0xee);
  spanning.fill(0xee);
  assert.deepEqual(summary(msgs), ['14:0e000000', '16:100000040002abcd']);
});

test('HandshakeReassembler rebuilds a 100 KB message split into 16 KB records', () => {
  const body = Buffer.alloc(100_000);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
  const msg = handshake(HS_CERTIFICATE, body);
  const pieces: Buffer[] = [];
  for (let off = 0; off < msg.length; off += 16384) pieces.push(msg.subarray(off, off + 16384));
  const counters = new Counters();
  const { msgs, r } = reassemble(pieces.slice(0, -1), counters);
  assert.equal(msgs.length, 0);
  assert.equal(r.pendingBytes(), 6 * 16384);
  r.push(pieces[pieces.length - 1], (m) => msgs.push(m));
  assert.equal(msgs.length, 1);
  assert.ok(Buffer.from(msgs[0].body).equals(body));
  assert.equal(r.pendingBytes(), 0);
  assert.equal(counters.get('tls.handshake_messages'), 1);
});

test('HandshakeReassembler skips a message longer than MAX_HANDSHAKE_MESSAGE_BYTES, counts it, and goes on', () => {
  const counters = new Counters();
  const len = MAX_HANDSHAKE_MESSAGE_BYTES + 1;
  const huge = Buffer.concat([u8(HS_CERTIFICATE), u24(len), Buffer.alloc(len, 0x30)]);
  const after = handshake(HS_SERVER_HELLO_DONE, Buffer.alloc(0));
  const stream = Buffer.concat([huge, after]);
  const pieces: Buffer[] = [];
  for (let off = 0; off < stream.length; off += 16384) pieces.push(stream.subarray(off, off + 16384));
  const { msgs, results, r } = reassemble(pieces, counters);
  assert.ok(results.every((x) => x === 'ok'));
  assert.deepEqual(msgs.map((m) => m.type), [HS_SERVER_HELLO_DONE]);
  assert.equal(counters.get('tls.handshake_message_too_large'), 1);
  assert.equal(r.transcriptBroken, true);
  assert.equal(reassemble([after]).r.transcriptBroken, false);
});

test('HandshakeReassembler rejects an unknown message type (ciphertext or not TLS) and stays invalid', () => {
  const counters = new Counters();
  const { msgs, results } = reassemble([Buffer.concat([handshake(HS_SERVER_HELLO_DONE, Buffer.alloc(0)), hex('63000001ff')]),
    handshake(HS_SERVER_HELLO_DONE, Buffer.alloc(0))], counters);
  assert.deepEqual(results, ['invalid', 'invalid']);
  assert.equal(msgs.length, 1);
  assert.equal(counters.get('tls.invalid_handshake_message'), 1);
  const split = new Counters();
  assert.deepEqual(reassemble([hex('63'), hex('00'), hex('0001')], split).results, ['ok', 'ok', 'invalid']);
  assert.equal(split.get('tls.invalid_handshake_message'), 1);
});

test('HandshakeReassembler counts an empty handshake fragment (RFC 8446 §5.1 forbids them)', () => {
  const counters = new Counters();
  assert.deepEqual(reassemble([Buffer.alloc(0)], counters).results, ['ok']);
  assert.equal(counters.get('tls.handshake_empty_fragment'), 1);
});

// ---- ClientHello on real captures ----------------------------------------------------------------------

// Ground truth: /work/shared/corpus/MANIFEST.md rows 45-48, 5 and 8 (SNIs), tshark 4.0.17 for the other fields:
//   tshark -r <pcap> -Y tls.handshake.type==1 -T fields -e tls.handshake.extensions_server_name
//     -e tls.handshake.extensions_alpn_str -e tls.handshake.extensions.supported_version -e tls.handshake.extension.type
test('parseClientHello reads the SNI of every corpus ClientHello (MANIFEST ground truth)', () => {
  const sni = (name: string): (string | undefined)[] => messagesOfType(tlsFlows(name), 0, HS_CLIENT_HELLO).map((m) => {
    const counters = new Counters();
    const ch = parseClientHello(m.body, counters);
    assert.ok(ch, name);
    assert.equal(counters.anomalyTotal(), 0, name);
    return ch.sni;
  });
  assert.deepEqual(sni('arkime-tls-split-client-hello.pcap'), ['clients2.google.com']);
  assert.deepEqual(sni('arkime-tls13.pcap'), ['blog.cloudflare.com']);
  assert.deepEqual(sni('zeek-tls13-ech.pcap'), ['cloudflare-ech.com', 'cloudflare-ech.com']);
  assert.deepEqual(sni('ndpi-http_ipv6.pcap').sort(),
    ['s-static.ak.facebook.com', 's-static.ak.facebook.com', 'www.ntop.org', 'www.ntop.org', 'www.ntop.org', 'www.ntop.org']);
  assert.deepEqual(sni('zeek-tls12-decryption.pcap'), ['heise.de']);
  assert.deepEqual(sni('ws-tls12-dsb.pcapng'), ['example.com', 'example.net']);
});

test('parseClientHello reads versions, ALPN, ECH and flags of real ClientHellos', () => {
  const first = (name: string) => parseClientHello(messagesOfType(tlsFlows(name), 0, HS_CLIENT_HELLO)[0].body)!;
  const split = first('arkime-tls-split-client-hello.pcap');
  assert.equal(split.legacyVersion, 0x0303);
  assert.equal(split.random.length, 32);
  assert.equal(split.sessionId.length, 32);
  assert.deepEqual(split.supportedVersions, [0x9a9a, 0x0304, 0x0303]); // MANIFEST row 45
  assert.deepEqual(split.alpn, ['h2', 'http/1.1']);
  assert.equal(split.echOuter, true); // extension 65037; Arkime tags the session tls:has_ech
  assert.equal(isGrease(split.cipherSuites[0]), true);
  const ech = first('zeek-tls13-ech.pcap');
  assert.equal(ech.echOuter, true); // MANIFEST row 48: outer SNI only, the inner one is encrypted
  const firefox = first('zeek-tls12-decryption.pcap');
  assert.deepEqual(firefox.cipherSuites, [0xc030]);
  assert.deepEqual(firefox.supportedVersions, [0x0304, 0x0303]);
  assert.deepEqual(firefox.supportedGroups, [0x001d, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101]);
  assert.deepEqual(firefox.signatureAlgorithms,
    [0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0203, 0x0201]);
  assert.equal(firefox.extendedMasterSecret, true);
  assert.equal(firefox.echOuter, false);
  const dsb = first('ws-tls12-dsb.pcapng');
  assert.equal(dsb.encryptThenMac, true); // extension 22 in 0-11-10-13172-16-22-23-13
  assert.equal(dsb.extendedMasterSecret, true);
  assert.deepEqual(dsb.ecPointFormats, [0, 1, 2]);
  assert.deepEqual(dsb.alpn, ['http/1.1']);
  assert.deepEqual(dsb.extensions.map((e) => e.type), [0, 11, 10, 13172, 16, 22, 23, 13]);
  const ntop = first('ndpi-http_ipv6.pcap');
  assert.deepEqual(ntop.alpn, ['http/1.1', 'spdy/3.1', 'h2-14', 'h2']); // nDPI: (Advertised) ALPNs
  assert.equal(ntop.supportedVersions.length, 0);
});

// ---- ClientHello failure modes ------------------------------------------------------------------------

test('parseClientHello decodes a minimal synthetic hello with and without an extension block', () => {
  const bare = parseClientHello(clientHello());
  assert.ok(bare);
  assert.deepEqual([bare.cipherSuites, bare.compressionMethods, bare.extensions, bare.sni, bare.alpn], [[0x1301, 0xc02f], [0], [], undefined, []]);
  const full = parseClientHello(clientHello({
    exts: [sniExt('a.example'), ext(EXT_ALPN, alpnData(['h2', 'http/1.1'])), ext(EXT_SUPPORTED_VERSIONS, vec8(u16s([0x0304, 0x0303]))),
      ext(EXT_EARLY_DATA, Buffer.alloc(0)), ext(EXT_SESSION_TICKET, hex('abcd')), ext(EXT_PRE_SHARED_KEY, hex('0000'))],
  }));
  assert.ok(full);
  assert.deepEqual([full.sni, full.alpn, full.supportedVersions, full.earlyData, full.pskOffered, full.sessionTicketOffered, full.echOuter],
    ['a.example', ['h2', 'http/1.1'], [0x0304, 0x0303], true, true, true, false]);
});

test('parseClientHello rejects every truncation of the fixed fields and of the extension block', () => {
  const body = clientHello({ exts: [sniExt('a.example'), ext(EXT_EXTENDED_MASTER_SECRET, Buffer.alloc(0))] });
  const endOfCompression = 2 + 32 + 1 + 2 + 4 + 2;
  for (let n = 0; n < body.length; n++) {
    const counters = new Counters();
    const ch = parseClientHello(body.subarray(0, n), counters);
    if (n === endOfCompression) {
      assert.ok(ch, 'a hello ending after compression_methods has no extensions: valid');
      continue;
    }
    assert.equal(ch, undefined, `prefix ${n}`);
    // Inside the fixed fields the hello is cut short; past them, the extension block's length cannot fit.
    const expected = n < endOfCompression ? 'tls.hello.truncated' : 'tls.extensions.block_overflow';
    assert.equal(counters.get(expected), 1, `prefix ${n}: ${JSON.stringify(counters.snapshot())}`);
  }
});

test('parseClientHello rejects a session id longer than 32 bytes', () => {
  const counters = new Counters();
  assert.equal(parseClientHello(clientHello({ sessionId: Buffer.alloc(33) }), counters), undefined);
  assert.equal(counters.get('tls.hello.session_id_too_long'), 1);
});

test('parseClientHello rejects an odd or empty cipher suite list', () => {
  const counters = new Counters();
  assert.equal(parseClientHello(clientHello({ suites: vec16(hex('130113')) }), counters), undefined);
  assert.equal(parseClientHello(clientHello({ suites: vec16(Buffer.alloc(0)) }), counters), undefined);
  assert.equal(counters.get('tls.client_hello.cipher_suites_invalid'), 2);
});

test('parseClientHello rejects an empty compression method list', () => {
  const counters = new Counters();
  assert.equal(parseClientHello(clientHello({ compression: vec8(Buffer.alloc(0)) }), counters), undefined);
  assert.equal(counters.get('tls.client_hello.compression_methods_invalid'), 1);
});

test('parseClientHello rejects an extension block longer than the message', () => {
  const counters = new Counters();
  const body = Buffer.concat([clientHello(), u16(10), ext(EXT_EXTENDED_MASTER_SECRET, Buffer.alloc(0))]);
  assert.equal(parseClientHello(body, counters), undefined);
  assert.equal(counters.get('tls.extensions.block_overflow'), 1);
});

test('parseClientHello rejects a truncated extension header inside the block', () => {
  const counters = new Counters();
  const body = Buffer.concat([clientHello(), vec16(Buffer.concat([ext(EXT_EXTENDED_MASTER_SECRET, Buffer.alloc(0)), hex('0017 00')]))]);
  assert.equal(parseClientHello(body, counters), undefined);
  assert.equal(counters.get('tls.extensions.header_truncated'), 1);
});

test('parseClientHello rejects an extension whose length overflows the block', () => {
  const counters = new Counters();
  const body = Buffer.concat([clientHello(), vec16(hex('0000 0010 000e00000b'))]);
  assert.equal(parseClientHello(body, counters), undefined);
  assert.equal(counters.get('tls.extensions.length_overflow'), 1);
});

test('parseClientHello tolerates, and counts, bytes after the extension block', () => {
  const counters = new Counters();
  const ch = parseClientHello(clientHello({ exts: [sniExt('a.example')], tail: hex('00') }), counters);
  assert.equal(ch?.sni, 'a.example');
  assert.equal(counters.get('tls.extensions.trailing_bytes'), 1);
});

test('parseClientHello counts a duplicate extension and keeps the first', () => {
  const counters = new Counters();
  const ch = parseClientHello(clientHello({ exts: [sniExt('first.example'), sniExt('second.example')] }), counters);
  assert.equal(ch?.sni, 'first.example');
  assert.equal(ch?.extensions.length, 2);
  assert.equal(counters.get('tls.extensions.duplicate'), 1);
});

test('parseClientHello drops an SNI whose list length disagrees with the extension, and counts it', () => {
  for (const data of [hex('000d 00 0009 612e6578616d706c65'), hex('000c 00 000a 612e6578616d706c65'), hex('00'), hex('0000')]) {
    const counters = new Counters();
    const ch = parseClientHello(clientHello({ exts: [ext(EXT_SERVER_NAME, data), ext(EXT_EXTENDED_MASTER_SECRET, Buffer.alloc(0))] }), counters);
    assert.ok(ch, data.toString('hex'));
    assert.equal(ch.sni, undefined);
    assert.equal(ch.extendedMasterSecret, true);
    assert.equal(counters.get('tls.invalid_sni_length'), 1, data.toString('hex'));
  }
});

test('parseClientHello rejects an empty host name', () => {
  const counters = new Counters();
  const ch = parseClientHello(clientHello({ exts: [ext(EXT_SERVER_NAME, hex('0003 00 0000'))] }), counters);
  assert.equal(ch?.sni, undefined);
  assert.equal(counters.get('tls.invalid_sni_length'), 1);
});

test('parseClientHello skips an SNI entry of unknown type, and counts a second host_name', () => {
  const counters = new Counters();
  const list = Buffer.concat([u8(7), vec16(Buffer.from('x')), u8(0), vec16(Buffer.from('a.example')), u8(0), vec16(Buffer.from('b.example'))]);
  const ch = parseClientHello(clientHello({ exts: [ext(EXT_SERVER_NAME, vec16(list))] }), counters);
  assert.equal(ch?.sni, 'a.example');
  assert.equal(counters.get('tls.invalid_sni_type'), 1);
  assert.equal(counters.get('tls.multiple_sni'), 1);
});

test('parseClientHello keeps a non-printable SNI byte for byte and flags it', () => {
  const counters = new Counters();
  const ch = parseClientHello(clientHello({ exts: [sniExt('a.exa\nmple')] }), counters);
  assert.equal(ch?.sni, 'a.exa\nmple');
  assert.equal(counters.get('tls.sni_not_printable'), 1);
});

test('parseClientHello drops a malformed ALPN list, and counts it', () => {
  for (const data of [hex('0003 03 6832'), hex('0000'), hex('0004 02 6832')]) {
    const counters = new Counters();
    const ch = parseClientHello(clientHello({ exts: [ext(EXT_ALPN, data)] }), counters);
    assert.deepEqual(ch?.alpn, [], data.toString('hex'));
    assert.equal(counters.get('tls.extension.alpn_invalid'), 1, data.toString('hex'));
  }
});

test('parseClientHello drops malformed version, group, signature and point-format lists', () => {
  const counters = new Counters();
  const ch = parseClientHello(clientHello({
    exts: [ext(EXT_SUPPORTED_VERSIONS, hex('03 030403')), ext(10, hex('0003 001d00')), ext(13, hex('0002 0403 00')), ext(11, hex('00'))],
  }), counters);
  assert.ok(ch);
  assert.deepEqual([ch.supportedVersions, ch.supportedGroups, ch.signatureAlgorithms, ch.ecPointFormats], [[], [], [], []]);
  assert.deepEqual(counters.snapshot('anomaly'), {
    'tls.extension.ec_point_formats_invalid': 1, 'tls.extension.signature_algorithms_invalid': 1,
    'tls.extension.supported_groups_invalid': 1, 'tls.extension.supported_versions_invalid': 1,
  });
});

test('parseClientHello counts a pre_shared_key that is not the last extension (RFC 8446 §4.2.11)', () => {
  const counters = new Counters();
  const ch = parseClientHello(clientHello({ exts: [ext(EXT_PRE_SHARED_KEY, hex('00')), sniExt('a.example')] }), counters);
  assert.equal(ch?.pskOffered, true);
  assert.equal(counters.get('tls.extension.pre_shared_key_not_last'), 1);
});

test('parseSsl2ClientHello keeps the TLS suites and right-aligns the challenge into the random', () => {
  // Same hand-written hello as in record.test.ts, without its 2-byte header.
  const frag = hex('01 0301 0009 0000 0010 00002f 010080 0000ff 000102030405060708090a0b0c0d0e0f');
  const ch = parseSsl2ClientHello(frag);
  assert.ok(ch);
  assert.equal(ch.legacyVersion, 0x0301);
  assert.deepEqual(ch.cipherSuites, [0x002f, 0x00ff]);
  assert.equal(Buffer.from(ch.random).toString('hex'), '00'.repeat(16) + '000102030405060708090a0b0c0d0e0f');
  assert.equal(ch.sslv2, true);
  const counters = new Counters();
  assert.equal(parseSsl2ClientHello(frag.subarray(0, frag.length - 1), counters), undefined);
  assert.equal(counters.get('tls.sslv2_client_hello_invalid'), 1);
});

// ---- ServerHello, EncryptedExtensions ------------------------------------------------------------------

// tshark -r <pcap> -Y tls.handshake.type==2 -T fields -e tls.handshake.ciphersuite -e tls.handshake.extensions.supported_version
//   -e tls.handshake.extensions_key_share_group -e tls.handshake.extensions_alpn_str -e tls.handshake.extension.type
test('parseServerHello reads the negotiated version, suite, ALPN and key share of real ServerHellos', () => {
  const first = (name: string, i = 0) => parseServerHello(messagesOfType(tlsFlows(name), 1, HS_SERVER_HELLO)[i].body)!;
  const heise = first('zeek-tls12-decryption.pcap'); // MANIFEST row 8: TLS 1.2, 0xc030
  assert.deepEqual([heise.version, heise.cipherSuite, heise.alpn, heise.extendedMasterSecret, heise.sessionTicketAck, heise.helloRetryRequest],
    [0x0303, 0xc030, 'http/1.1', true, true, false]);
  assert.equal(tlsVersionName(heise.version), 'TLS 1.2');
  const dsb = first('ws-tls12-dsb.pcapng'); // MANIFEST row 5: 0xc02f
  assert.deepEqual([dsb.version, dsb.cipherSuite, dsb.alpn], [0x0303, 0xc02f, 'http/1.1']);
  const split = first('arkime-tls-split-client-hello.pcap'); // Arkime: TLSv1.3, TLS_AES_128_GCM_SHA256
  assert.deepEqual([split.legacyVersion, split.version, split.cipherSuite, split.keyShareGroup, split.alpn], [0x0303, 0x0304, 0x1301, 4588, undefined]);
  const ech = first('zeek-tls13-ech.pcap');
  assert.deepEqual([ech.version, ech.cipherSuite, ech.keyShareGroup], [0x0304, 0x1301, 29]);
  const draft = first('arkime-tls13.pcap'); // Arkime: TLSv1.3-draft-18; draft ServerHello has no session id
  assert.deepEqual([draft.version, draft.cipherSuite, draft.sessionId.length], [0x7f12, 0x1301, 0]);
  assert.equal(tlsVersionName(draft.version), 'TLS 1.3 draft-18');
  const fb = messagesOfType(tlsFlows('ndpi-http_ipv6.pcap'), 1, HS_SERVER_HELLO).map((m) => parseServerHello(m.body)!);
  assert.deepEqual(fb.map((s) => s.alpn).sort(), [undefined, undefined, undefined, undefined, 'http/1.1', 'http/1.1'].sort());
});

test('parseServerHello recognises a HelloRetryRequest by its special random', () => {
  const hrr = parseServerHello(serverHello([ext(EXT_SUPPORTED_VERSIONS, u16(0x0304)), ext(EXT_KEY_SHARE, u16(0x001d))], Buffer.from(HELLO_RETRY_REQUEST_RANDOM)));
  assert.deepEqual([hrr?.helloRetryRequest, hrr?.version, hrr?.keyShareGroup], [true, 0x0304, 0x001d]);
  assert.equal(parseServerHello(serverHello([]))?.helloRetryRequest, false);
});

test('parseServerHello falls back to legacy_version without supported_versions, and accepts no extensions', () => {
  const sh = parseServerHello(serverHello(undefined, RANDOM, 0x002f));
  assert.deepEqual([sh?.version, sh?.cipherSuite, sh?.extensions.length], [0x0303, 0x002f, 0]);
});

test('parseServerHello rejects truncations and counts a malformed supported_versions or ALPN', () => {
  const body = serverHello([ext(EXT_SUPPORTED_VERSIONS, u16(0x0304))]);
  for (let n = 0; n < 2 + 32 + 1 + 32 + 2 + 1; n++) {
    const counters = new Counters();
    assert.equal(parseServerHello(body.subarray(0, n), counters), undefined, `prefix ${n}`);
    assert.equal(counters.get('tls.hello.truncated'), 1, `prefix ${n}`);
  }
  const counters = new Counters();
  const sh = parseServerHello(serverHello([ext(EXT_SUPPORTED_VERSIONS, hex('030304')), ext(EXT_ALPN, alpnData(['h2', 'http/1.1']))]), counters);
  assert.deepEqual([sh?.version, sh?.alpn], [0x0303, undefined]);
  assert.equal(counters.get('tls.extension.supported_versions_invalid'), 1);
  assert.equal(counters.get('tls.extension.alpn_invalid'), 1);
});

test('parseEncryptedExtensions reads the selected ALPN and accepted early data', () => {
  const ee = parseEncryptedExtensions(vec16(Buffer.concat([ext(EXT_ALPN, alpnData(['h2'])), ext(EXT_EARLY_DATA, Buffer.alloc(0))])));
  assert.deepEqual([ee?.alpn, ee?.earlyData, ee?.extensions.length], ['h2', true, 2]);
  assert.deepEqual(parseEncryptedExtensions(hex('0000')), { extensions: [], alpn: undefined, earlyData: false });
  const counters = new Counters();
  assert.equal(parseEncryptedExtensions(hex('00'), counters), undefined);
  assert.equal(parseEncryptedExtensions(hex('0005 0010'), counters), undefined);
  assert.equal(counters.get('tls.extensions.block_overflow'), 2);
});

// ---- Certificate, ClientKeyExchange, NewSessionTicket, KeyUpdate ---------------------------------------

// tshark -r <pcap> -Y tls.handshake.type==11 -T fields -e tls.handshake.certificate_length
test('parseCertificateChain returns the DER certificates of real TLS 1.2 Certificate messages', () => {
  const lengths = (name: string): number[][] => messagesOfType(tlsFlows(name), 1, HS_CERTIFICATE)
    .map((m) => parseCertificateChain(m.body, false)!.map((c) => c.length));
  assert.deepEqual(lengths('zeek-tls12-decryption.pcap'), [[1306, 1129]]);
  assert.deepEqual(lengths('ws-tls12-dsb.pcapng'), [[1526, 1205], [1526, 1205]]);
  assert.deepEqual(lengths('ndpi-http_ipv6.pcap').map((l) => l.join()).sort(), ['1359,1548,1400', '1359,1548,1400', '1359,1548,1400', '1359,1548,1400', '1469,1628', '1469,1628'].sort());
  const [chain] = messagesOfType(tlsFlows('zeek-tls12-decryption.pcap'), 1, HS_CERTIFICATE).map((m) => parseCertificateChain(m.body, false)!);
  assert.equal(chain[0][0], 0x30); // DER SEQUENCE
});

test('parseCertificateChain reads the TLS 1.3 form: request context and per-entry extensions', () => {
  const a = hex('3003020101');
  const b = hex('30020500');
  const body = Buffer.concat([vec8(hex('aa')), vec24(Buffer.concat([vec24(a), vec16(hex('0005 0000')), vec24(b), vec16(Buffer.alloc(0))]))]);
  const certs = parseCertificateChain(body, true);
  assert.deepEqual(certs?.map((c) => Buffer.from(c).toString('hex')), ['3003020101', '30020500']);
  assert.deepEqual(parseCertificateChain(Buffer.concat([vec8(Buffer.alloc(0)), vec24(Buffer.alloc(0))]), true), []);
});

test('parseCertificateChain rejects lengths that do not fit', () => {
  const counters = new Counters();
  const der = hex('3003020101');
  assert.equal(parseCertificateChain(Buffer.concat([u24(9), vec24(der)]), false, counters), undefined); // list longer than body
  assert.equal(parseCertificateChain(Buffer.concat([vec24(Buffer.concat([u24(6), der]))]), false, counters), undefined); // entry overflows list
  assert.equal(parseCertificateChain(Buffer.concat([vec24(vec24(Buffer.alloc(0)))]), false, counters), undefined); // empty certificate
  assert.equal(parseCertificateChain(Buffer.concat([vec24(vec24(der)), hex('00')]), false, counters), undefined); // trailing byte
  assert.equal(parseCertificateChain(Buffer.concat([vec8(Buffer.alloc(0)), vec24(vec24(der))]), true, counters), undefined); // 1.3 entry without extensions
  assert.equal(counters.get('tls.certificate_invalid_length'), 5);
});

test('parseRsaClientKeyExchange reads the length-prefixed TLS form and the bare SSL 3.0 form', () => {
  assert.equal(Buffer.from(parseRsaClientKeyExchange(hex('0003 a1a2a3'), false)!).toString('hex'), 'a1a2a3');
  assert.equal(Buffer.from(parseRsaClientKeyExchange(hex('a1a2a3'), true)!).toString('hex'), 'a1a2a3');
  const counters = new Counters();
  assert.equal(parseRsaClientKeyExchange(hex('0004 a1a2a3'), false, counters), undefined);
  assert.equal(parseRsaClientKeyExchange(hex('0002 a1a2a3'), false, counters), undefined);
  assert.equal(parseRsaClientKeyExchange(hex(''), true, counters), undefined);
  assert.equal(counters.get('tls.client_key_exchange_invalid'), 3);
});

// tshark -r zeek-tls12-decryption.pcap -Y tls.handshake.type==4 -T fields
//   -e tls.handshake.session_ticket_lifetime_hint -e tls.handshake.session_ticket_length   ->   300  208
test('parseNewSessionTicket reads a real TLS 1.2 ticket (RFC 5077) and a synthetic TLS 1.3 one', () => {
  const [nst] = messagesOfType(tlsFlows('zeek-tls12-decryption.pcap'), 1, HS_NEW_SESSION_TICKET);
  const t12 = parseNewSessionTicket(nst.body, false);
  assert.deepEqual([t12?.lifetimeSeconds, t12?.ticket.length], [300, 208]);
  const body13 = Buffer.concat([hex('00001c20'), hex('deadbeef'), vec8(hex('0102')), vec16(hex('aabbcc')), vec16(ext(EXT_EARLY_DATA, hex('00004000')))]);
  const t13 = parseNewSessionTicket(body13, true);
  assert.deepEqual([t13?.lifetimeSeconds, t13?.ageAdd, Buffer.from(t13!.nonce).toString('hex'), t13?.maxEarlyDataSize], [7200, 0xdeadbeef, '0102', 16384]);
  const counters = new Counters();
  assert.equal(parseNewSessionTicket(body13.subarray(0, body13.length - 10), true, counters), undefined);
  assert.equal(parseNewSessionTicket(Buffer.concat([nst.body, hex('00')]), false, counters), undefined);
  assert.equal(counters.get('tls.new_session_ticket_invalid'), 2);
});

test('parseKeyUpdate reads update_requested and rejects anything but one byte of 0 or 1', () => {
  assert.deepEqual(parseKeyUpdate(hex('00')), { requestUpdate: false });
  assert.deepEqual(parseKeyUpdate(hex('01')), { requestUpdate: true });
  const counters = new Counters();
  assert.equal(parseKeyUpdate(hex('02'), counters), undefined);
  assert.equal(parseKeyUpdate(hex('0100'), counters), undefined);
  assert.equal(parseKeyUpdate(hex(''), counters), undefined);
  assert.equal(counters.get('tls.key_update_invalid'), 3);
});

// ---- names and GREASE ---------------------------------------------------------------------------------

test('isGrease recognises exactly the 16 RFC 8701 values', () => {
  const grease: number[] = [];
  for (let v = 0; v <= 0xffff; v++) if (isGrease(v)) grease.push(v);
  assert.deepEqual(grease, [0x0a0a, 0x1a1a, 0x2a2a, 0x3a3a, 0x4a4a, 0x5a5a, 0x6a6a, 0x7a7a, 0x8a8a, 0x9a9a, 0xaaaa, 0xbaba, 0xcaca, 0xdada, 0xeaea, 0xfafa]);
});

test('tlsVersionName names SSL 3.0 .. TLS 1.3 and drafts, and prints anything else as hex', () => {
  assert.deepEqual([0x0300, 0x0301, 0x0302, 0x0303, 0x0304].map(tlsVersionName), ['SSL 3.0', 'TLS 1.0', 'TLS 1.1', 'TLS 1.2', 'TLS 1.3']);
  assert.equal(tlsVersionName(0x7f17), 'TLS 1.3 draft-23');
  assert.equal(tlsVersionName(0x9a9a), '0x9a9a');
  assert.equal(tlsVersionName(0x0305), '0x0305');
  assert.equal(tlsVersionName(0x00ff), '0x00ff');
});

// ---- robustness ---------------------------------------------------------------------------------------

/** xorshift32: a seeded generator, so a failure names its iteration and replays. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
}

test('every parser survives seeded mutations of real handshake messages without throwing', () => {
  const flows = [...tlsFlows('zeek-tls12-decryption.pcap'), ...tlsFlows('arkime-tls-split-client-hello.pcap'), ...tlsFlows('ws-tls12-dsb.pcapng')];
  const bodies = flows.flatMap((f) => [...f.messages[0], ...f.messages[1]]).map((m) => Buffer.from(m.body));
  const next = rng(0x7153);
  const counters = new Counters();
  for (let i = 0; i < 3000; i++) {
    const body = Buffer.from(bodies[i % bodies.length]);
    const flips = 1 + (next() % 8);
    for (let k = 0; k < flips; k++) body[next() % body.length] = next() & 0xff;
    const cut = next() % 4 === 0 ? body.subarray(0, next() % (body.length + 1)) : body;
    try {
      parseClientHello(cut, counters);
      parseServerHello(cut, counters);
      parseEncryptedExtensions(cut, counters);
      parseCertificateChain(cut, i % 2 === 0, counters);
      parseRsaClientKeyExchange(cut, i % 2 === 0, counters);
      parseNewSessionTicket(cut, i % 2 === 0, counters);
      parseKeyUpdate(cut, counters);
      parseSsl2ClientHello(cut, counters);
      const r = new HandshakeReassembler(counters);
      r.push(cut, () => undefined);
      assert.ok(r.pendingBytes() <= MAX_HANDSHAKE_MESSAGE_BYTES + 4);
    } catch (e) {
      assert.fail(`iteration ${i}: ${(e as Error).stack}`);
    }
  }
  assert.ok(counters.anomalyTotal() > 0);
});

/**
 * JA3 / JA3S / JA4 against values published or computed by independent implementations. Sources:
 *  [arkime]  arkime/arkime tests/pcap/<name>.test @ 2d2f3678796bcedc6655a276f476b7ddd457f3f2 (the corpus
 *            snapshot): fields tls.ja3, ja3string, ja4, ja4_r, ja3s, ja3sstring.
 *  [ndpi]    ntop/nDPI tests/cfgs/default/result/http_ipv6.pcap.out @ 0110623b4ed94e49f2821073146d705856ed149f:
 *            JA3C, JA3S, JA4 (nDPI prints `ht` for the ALPN part: see the test below).
 *  [foxio]   FoxIO-LLC/ja4 python/ja4.py @ 0e54bc8 (FoxIO's reference implementation) run on the fixture:
 *            `python3 ja4.py <pcap> -J` with tshark 4.0.17; fields JA4.1, JA4_r.1.
 *  [tshark]  tshark 4.0.17: `tshark -r <pcap> -Y tls.handshake.type==1 -T fields -e tls.handshake.ja3 -e tls.handshake.ja3_full`
 *            (and ja3s / ja3s_full on type 2).
 *  [spec]    FoxIO-LLC/ja4 technical_details/JA4.md @ 0e54bc8 (the worked example and the ALPN rules).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  EXT_ALPN, EXT_SERVER_NAME, EXT_SUPPORTED_VERSIONS, HS_CLIENT_HELLO, HS_SERVER_HELLO, parseClientHello, parseServerHello,
  type ClientHello,
} from '../../../sensor/app-layer/tls/handshake.js';
import { ja3, ja3s, ja4, ja4Raw } from '../../../sensor/app-layer/tls/fingerprint.js';
import { messagesOfType, tlsFlows } from './corpus.js';

function clientHellos(name: string): ClientHello[] {
  return messagesOfType(tlsFlows(name), 0, HS_CLIENT_HELLO).map((m) => {
    const ch = parseClientHello(m.body);
    assert.ok(ch, name);
    return ch;
  });
}

interface Expected {
  sni: string;
  ja3: string;
  ja3Text?: string;
  ja4: string;
  ja4r?: string;
}

const CORPUS: Record<string, Expected[]> = {
  'arkime-tls-split-client-hello.pcap': [{
    sni: 'clients2.google.com',
    ja3: '35708a08e7be9f7aa5bce7f2d5c1cecb', // [arkime] [tshark]
    ja3Text: '771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,13-18-45-27-65037-43-51-0-11-35-5-23-16-10-65281-17513,4588-29-23-24,0',
    ja4: 't13d1516h2_8daaf6152771_02713d6af862', // [arkime] [foxio]
    ja4r: 't13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,4469,fe0d,ff01_0403,0804,0401,0503,0805,0501,0806,0601',
  }],
  'arkime-tls13.pcap': [{
    sni: 'blog.cloudflare.com',
    ja3: '4826a90ec2daf4f7b4b64cc1c8bd343b', // [arkime] [tshark]
    ja3Text: '771,4865-4866-4867-49195-49199-49196-49200-52393-52392-52244-52243-49171-49172-156-157-47-53-10,65281-0-23-35-13-5-18-16-30032-11-40-45-43-10-21,29-23-24,0',
    // [arkime] [foxio]: the highest supported version is draft-18 (0x7f12), which JA4 prints as '00'.
    ja4: 't00d1815h2_a30347de7a75_2a77702ff8e0',
    ja4r: 't00d1815h2_000a,002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cc13,cc14,cca8,cca9_0005,000a,000b,000d,0012,0015,0017,0023,0028,002b,002d,7550,ff01_0403,0804,0401,0503,0805,0501,0806,0601,0201',
  }],
  'zeek-tls13-ech.pcap': [
    { sni: 'cloudflare-ech.com', ja3: '2fcbf8655473005933c5869b2b5d8044', ja4: 't13d1517h2_8daaf6152771_b1ff8ab2d16f' }, // [tshark] [foxio]
    { sni: 'cloudflare-ech.com', ja3: 'fa58f5ffd45a2d590a1677134966dc64', ja4: 't13d1517h2_8daaf6152771_b1ff8ab2d16f' }, // [tshark] [foxio]
  ],
  'zeek-tls12-decryption.pcap': [{
    sni: 'heise.de',
    ja3: '7850fef8eca29f3f885216d7b8929cb5', // [tshark]
    ja3Text: '771,49200,0-23-65281-10-11-35-16-5-51-43-13-45-28-21,29-23-24-25-256-257,0',
    ja4: 't13d0114h2_a17193ba21fd_d267a5f792d4', // [foxio]
    ja4r: 't13d0114h2_c030_0005,000a,000b,000d,0015,0017,001c,0023,002b,002d,0033,ff01_0403,0503,0603,0804,0805,0806,0401,0501,0601,0203,0201',
  }],
  'ws-tls12-dsb.pcapng': ['example.com', 'example.net'].map((sni) => ({
    sni,
    ja3: '00bcd759cb8ad485fdbf1e7a0c5b94b4', // [tshark]
    ja3Text: '771,49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192-107-49187-49191-103-49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,0-11-10-13172-16-22-23-13,29-23-30-25-24,0-1-2',
    ja4: 't12d2808h1_d943125447b4_9c532f40afb6', // [foxio]
  })),
};

test('ja3 and ja4 of every corpus ClientHello equal the published / reference values', () => {
  for (const [name, expected] of Object.entries(CORPUS)) {
    const hellos = clientHellos(name);
    assert.equal(hellos.length, expected.length, name);
    hellos.forEach((ch, i) => {
      const e = expected[i];
      assert.equal(ch.sni, e.sni, name);
      const j3 = ja3(ch);
      assert.equal(j3.hash, e.ja3, `${name} ja3`);
      if (e.ja3Text !== undefined) assert.equal(j3.text, e.ja3Text, `${name} ja3 text`);
      assert.equal(createHash('md5').update(j3.text).digest('hex'), j3.hash);
      assert.equal(ja4(ch, 'tcp'), e.ja4, `${name} ja4`);
      if (e.ja4r !== undefined) assert.equal(ja4Raw(ch, 'tcp'), e.ja4r, `${name} ja4_r`);
    });
  }
});

test('ja4 of the nDPI capture: hashes equal nDPI\'s, the ALPN part follows the spec (h1, not nDPI\'s ht)', () => {
  const hellos = clientHellos('ndpi-http_ipv6.pcap');
  assert.equal(hellos.length, 6);
  for (const ch of hellos) {
    assert.equal(ja3(ch).hash, 'd3e627f423a33ea41841c19b8af79293'); // [ndpi] JA3C, [tshark]
    // [ndpi] prints t12d1612ht_94fc43e2fc61_c9eaec7dbab4; the first ALPN is "http/1.1", whose first and last
    // characters are "h1" [spec], which is also what [foxio] prints: t12d1612h1_94fc43e2fc61_c9eaec7dbab4.
    assert.equal(ja4(ch, 'tcp'), 't12d1612h1_94fc43e2fc61_c9eaec7dbab4');
  }
});

test('ja3s of corpus ServerHellos equals the published / tshark values', () => {
  const expected: Record<string, [string, string][]> = {
    'arkime-tls-split-client-hello.pcap': [['eb1d94daa7e0344597e756a1fb6e7054', '771,4865,51-43']], // [arkime] [tshark]
    'arkime-tls13.pcap': [['b8a8031b301aef7618403061e9f33065', '32530,4865,40']], // [arkime]
    'zeek-tls12-decryption.pcap': [['d154fcfa5bb4f0748e1dd1992c681104', '771,49200,65281-0-11-35-16-23']], // [tshark]
    'zeek-tls13-ech.pcap': [['f4febc55ea12b31ae17cfb7e614afda8', '771,4865,43-51'], ['f4febc55ea12b31ae17cfb7e614afda8', '771,4865,43-51']],
  };
  for (const [name, values] of Object.entries(expected)) {
    const got = messagesOfType(tlsFlows(name), 1, HS_SERVER_HELLO).map((m) => ja3s(parseServerHello(m.body)!));
    assert.deepEqual(got.map((j) => [j.hash, j.text]), values, name);
  }
  // [ndpi] JA3S: 389ed42c... for www.ntop.org (4 sessions), b898351e... for s-static.ak.facebook.com (2).
  const ndpi = messagesOfType(tlsFlows('ndpi-http_ipv6.pcap'), 1, HS_SERVER_HELLO).map((m) => ja3s(parseServerHello(m.body)!).hash).sort();
  assert.deepEqual(ndpi, ['389ed42c02ebecc32e73aa31def07e14', '389ed42c02ebecc32e73aa31def07e14', '389ed42c02ebecc32e73aa31def07e14',
    '389ed42c02ebecc32e73aa31def07e14', 'b898351eb5e266aefd3723d466935494', 'b898351eb5e266aefd3723d466935494']);
});

// ---- synthetic hellos for the spec's rules ---------------------------------------------------------------
const u8 = (n: number): Buffer => Buffer.from([n]);
const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const vec8 = (b: Buffer): Buffer => Buffer.concat([u8(b.length), b]);
const vec16 = (b: Buffer): Buffer => Buffer.concat([u16(b.length), b]);
const u16s = (vs: number[]): Buffer => Buffer.concat(vs.map(u16));
const ext = (type: number, data: Buffer): Buffer => Buffer.concat([u16(type), vec16(data)]);

interface Spec {
  version?: number;
  ciphers: number[];
  /** Extension types in wire order; these get valid contents where JA4 reads them. */
  exts: number[];
  alpn?: Buffer[];
  sigAlgs?: number[];
  versions?: number[];
  groups?: number[];
}

function hello(s: Spec): ClientHello {
  const data = (t: number): Buffer => {
    switch (t) {
      case EXT_SERVER_NAME: return vec16(Buffer.concat([u8(0), vec16(Buffer.from('a.example'))]));
      case EXT_ALPN: return vec16(Buffer.concat((s.alpn ?? [Buffer.from('h2')]).map(vec8)));
      case 13: return vec16(u16s(s.sigAlgs ?? []));
      case EXT_SUPPORTED_VERSIONS: return vec8(u16s(s.versions ?? [0x0304, 0x0303]));
      case 10: return vec16(u16s(s.groups ?? [0x001d]));
      case 11: return vec8(u8(0));
      default: return Buffer.alloc(0);
    }
  };
  const body = Buffer.concat([u16(s.version ?? 0x0303), Buffer.alloc(32, 1), vec8(Buffer.alloc(0)), vec16(u16s(s.ciphers)),
    vec8(u8(0)), vec16(Buffer.concat(s.exts.map((t) => ext(t, data(t)))))]);
  const ch = parseClientHello(body);
  assert.ok(ch);
  return ch;
}

// [spec] "Example" and "Raw Output": the ciphers, extensions and signature algorithms in original order (JA4_ro).
const SPEC_CIPHERS = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035];
const SPEC_EXTS = [0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015];
const SPEC_SIGALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601];

test('ja4 reproduces the worked example of the JA4 specification', () => {
  const ch = hello({ ciphers: SPEC_CIPHERS, exts: SPEC_EXTS, sigAlgs: SPEC_SIGALGS });
  assert.equal(ja4(ch, 'tcp'), 't13d1516h2_8daaf6152771_e5627efa2ab1');
  assert.equal(ja4Raw(ch, 'tcp'), 't13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601');
  assert.equal(ja4(ch, 'quic'), 'q13d1516h2_8daaf6152771_e5627efa2ab1');
});

test('ja4 and ja3 ignore GREASE in ciphers, extensions, groups, versions and signature algorithms', () => {
  const plain = hello({ ciphers: SPEC_CIPHERS, exts: SPEC_EXTS, sigAlgs: SPEC_SIGALGS });
  const greased = hello({
    ciphers: [0x3a3a, ...SPEC_CIPHERS], exts: [0x8a8a, ...SPEC_EXTS, 0xdada], sigAlgs: [0x1a1a, ...SPEC_SIGALGS],
    versions: [0x7a7a, 0x0304, 0x0303], groups: [0x4a4a, 0x001d],
  });
  assert.equal(ja4(greased, 'tcp'), ja4(plain, 'tcp'));
  assert.equal(ja3(greased).text, ja3(plain).text);
  assert.equal(ja3(plain).text.split(',')[3], '29');
});

test('ja4 hashes only the extension list when there are no signature algorithms (spec: 6d807ffa2a79)', () => {
  const ch = hello({ ciphers: SPEC_CIPHERS, exts: SPEC_EXTS, sigAlgs: [] });
  assert.equal(ch.signatureAlgorithms.length, 0); // an empty list is malformed: the field stays empty
  assert.equal(ja4(ch, 'tcp'), 't13d1516h2_8daaf6152771_6d807ffa2a79');
  assert.equal(ja4Raw(ch, 'tcp').split('_').length, 3);
});

test('ja4 prints 000000000000 for an empty cipher list and for an extension list holding only SNI and ALPN', () => {
  const onlyGrease = hello({ ciphers: [0x0a0a], exts: [0x0000, 0x0010] });
  assert.equal(ja4(onlyGrease, 'tcp'), 't12d0002h2_000000000000_000000000000');
});

test('ja4 version: highest supported_versions entry, else legacy_version; unknown is 00', () => {
  const v = (s: Partial<Spec>): string => ja4(hello({ ciphers: [0x002f], exts: [], ...s }), 'tcp').slice(1, 3);
  assert.equal(v({ version: 0x0301 }), '10');
  assert.equal(v({ version: 0x0302 }), '11');
  assert.equal(v({ version: 0x0300 }), 's3');
  assert.equal(v({ version: 0x0303, exts: [EXT_SUPPORTED_VERSIONS], versions: [0x0303, 0x0304] }), '13');
  assert.equal(v({ version: 0x0303, exts: [EXT_SUPPORTED_VERSIONS], versions: [0x0303, 0x0302] }), '12');
  assert.equal(v({ version: 0x0305 }), '00');
  assert.equal(ja4(hello({ ciphers: [0x002f], exts: [] }), 'tcp').slice(3, 4), 'i');
});

test('ja4 counts cap at 99', () => {
  const ciphers = Array.from({ length: 120 }, (_, i) => 0x0100 + i);
  const exts = Array.from({ length: 105 }, (_, i) => 0x7000 + i);
  assert.equal(ja4(hello({ ciphers, exts }), 'tcp').slice(0, 10), 't12i999900');
});

// [spec] "ALPN Extension Value": first and last characters when both are ASCII alphanumerics, else the first
// and last characters of the value's hex; 00 without a value; a single character counts as first and last.
test('ja4 ALPN characters follow the specification, including its non-alphanumeric examples', () => {
  const alpn = (value: Buffer | undefined): string => {
    const ch = hello({ ciphers: [0x002f], exts: value === undefined ? [] : [EXT_ALPN], alpn: value === undefined ? [] : [value, Buffer.from('h2')] });
    return ja4(ch, 'tcp').slice(8, 10);
  };
  const x = (s: string): Buffer => Buffer.from(s, 'hex');
  assert.equal(alpn(Buffer.from('h2')), 'h2');
  assert.equal(alpn(Buffer.from('http/1.1')), 'h1');
  assert.equal(alpn(Buffer.from('h')), 'hh');
  assert.equal(alpn(undefined), '00');
  assert.equal(alpn(x('ab')), 'ab');
  assert.equal(alpn(x('20')), '20');
  assert.equal(alpn(x('abcd')), 'ad');
  assert.equal(alpn(x('2061')), '21');
  assert.equal(alpn(x('30ab')), '3b');
  assert.equal(alpn(x('6120')), '60');
  assert.equal(alpn(x('3031abcd')), '3d');
  assert.equal(alpn(x('30abcd31')), '01');
  // An empty first value (malformed per RFC 7301) is also 00.
  assert.equal(alpn(Buffer.alloc(0)), '00');
});

test('ja3 leaves absent lists empty and keeps wire order', () => {
  const ch = hello({ version: 0x0301, ciphers: [0x0035, 0x002f], exts: [] });
  assert.equal(ja3(ch).text, '769,53-47,,,');
  const ordered = hello({ ciphers: [0xc02f, 0x002f], exts: [11, 10, 0], groups: [0x0018, 0x0017] });
  assert.equal(ja3(ordered).text, '771,49199-47,11-10-0,24-23,0');
  assert.equal(ja3(ordered).hash, createHash('md5').update('771,49199-47,11-10-0,24-23,0').digest('hex'));
});

test('ja3 and ja4 never throw on any hello the parser accepts (seeded mutations of a real one)', () => {
  const [body] = messagesOfType(tlsFlows('arkime-tls-split-client-hello.pcap'), 0, HS_CLIENT_HELLO).map((m) => m.body);
  let s = 0x9e3779b9;
  const next = (): number => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s;
  };
  let parsed = 0;
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(body);
    for (let k = 0; k < 1 + (next() % 3); k++) b[next() % b.length] = next() & 0xff;
    const ch = parseClientHello(b);
    if (ch === undefined) continue;
    parsed++;
    assert.match(ja4(ch, 'tcp'), /^t[0-9a-z]{2}[di]\d{4}[0-9a-zA-Z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$/, `iteration ${i}`);
    assert.match(ja3(ch).hash, /^[0-9a-f]{32}$/);
  }
  assert.ok(parsed > 100);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CryptoBudget, CryptoStream, deriveInitialSecrets, initialKeys, MAX_CRYPTO_RANGES, MAX_CRYPTO_STREAM_BYTES, parseInitialFrames,
  unprotectLongPacket, type PacketKeys, type UnprotectedPacket,
} from '../../../sensor/app-layer/quic/initial.js';
import { parseLongHeader, QUIC_DRAFT_29, QUIC_V1, QUIC_V2, type LongHeader } from '../../../sensor/app-layer/quic/packet.js';
import { hex } from '../../helpers/packets.js';
import {
  ackFrame, connectionCloseFrame, cryptoFrame, keysFor, paddingFrame, pingFrame, protectLong, seededBytes, DRAFT_29,
} from '../../fixtures/quic/quic-encoder.js';
import { RFC_CLIENT_CRYPTO_FRAME, RFC_CLIENT_PAYLOAD_LEN, RFC_DCID, RFC_SERVER_PAYLOAD, vector } from '../../fixtures/quic/vectors.js';

function keyHex(k: PacketKeys | undefined): { key: string; iv: string; hp: string } | undefined {
  return k && { key: k.key.toString('hex'), iv: k.iv.toString('hex'), hp: k.hp.toString('hex') };
}

function parsed(b: Uint8Array): LongHeader {
  const h = parseLongHeader(b);
  if (typeof h === 'string') assert.fail(`header: ${h}`);
  return h;
}

function opened(r: UnprotectedPacket | string): UnprotectedPacket {
  if (typeof r === 'string') assert.fail(`unprotect: ${r}`);
  return r;
}

test('deriveInitialSecrets and initialKeys give the RFC 9001 A.1 secrets and keys (v1)', () => {
  const s = deriveInitialSecrets(QUIC_V1, RFC_DCID);
  assert.deepEqual(s && { i: s.initialSecret.toString('hex'), c: s.client.toString('hex'), s: s.server.toString('hex') }, {
    i: '7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44',
    c: 'c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea',
    s: '3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b',
  });
  assert.deepEqual(keyHex(initialKeys(QUIC_V1, RFC_DCID, 'client')), {
    key: '1f369613dd76d5467730efcbe3b1a22d', iv: 'fa044b2f42a3fd3b46fb255c', hp: '9f50449e04a0e810283a1e9933adedd2',
  });
  assert.deepEqual(keyHex(initialKeys(QUIC_V1, RFC_DCID, 'server')), {
    key: 'cf3a5331653c364c88f0f379b6067e37', iv: '0ac1493ca1905853b0bba03e', hp: 'c206b8d9b9f0f37644430b490eeaa314',
  });
});

test('deriveInitialSecrets and initialKeys give the RFC 9369 A.1 secrets and keys (v2 salt and labels)', () => {
  const s = deriveInitialSecrets(QUIC_V2, RFC_DCID);
  assert.deepEqual(s && { i: s.initialSecret.toString('hex'), c: s.client.toString('hex'), s: s.server.toString('hex') }, {
    i: '2062e8b3cd8d52092614b8071d0aa1fb7c2e3ac193f78b280e72d8f5751f6aba',
    c: '14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b',
    s: '0263db1782731bf4588e7e4d93b7463907cb8cd8200b5da55a8bd488eafc37c1',
  });
  assert.deepEqual(keyHex(initialKeys(QUIC_V2, RFC_DCID, 'client')), {
    key: '8b1a0bc121284290a29e0971b5cd045d', iv: '91f73e2351d8fa91660e909f', hp: '45b95e15235d6f45a6b19cbcb0294ba9',
  });
  assert.deepEqual(keyHex(initialKeys(QUIC_V2, RFC_DCID, 'server')), {
    key: '82db637861d55e1d011f19ea71d5d2a7', iv: 'dd13c276499c0249d3310652', hp: 'edf6d05c83121201b436e16877593c3a',
  });
});

test('initialKeys has no keys for versions it cannot decrypt', () => {
  assert.equal(initialKeys(0xff00001b, RFC_DCID), undefined);
  assert.equal(initialKeys(0x51303436, RFC_DCID), undefined);
});

for (const [name, version, unprotectedHeader] of [
  ['rfc9001-a2-client-initial', 'v1', 'c300000001088394c8f03e5157080000449e00000002'],
  ['rfc9369-a2-client-initial', 'v2', 'd36b3343cf088394c8f03e5157080000449e00000002'],
] as const) {
  test(`unprotectLongPacket turns the ${name} bytes into the RFC's header and CRYPTO payload (${version})`, () => {
    const b = vector(name);
    const before = Buffer.from(b);
    const h = parsed(b);
    const p = opened(unprotectLongPacket(b, h, initialKeys(h.version.number, RFC_DCID) as PacketKeys));
    assert.equal(p.header.toString('hex'), unprotectedHeader);
    assert.equal(p.pn, 2);
    assert.equal(p.pnLen, 4);
    assert.equal(p.payload.length, RFC_CLIENT_PAYLOAD_LEN);
    assert.deepEqual(p.payload, Buffer.concat([RFC_CLIENT_CRYPTO_FRAME, Buffer.alloc(RFC_CLIENT_PAYLOAD_LEN - RFC_CLIENT_CRYPTO_FRAME.length)]));
    assert.deepEqual(b, before, 'the datagram is not modified');
  });
}

for (const [name, unprotectedHeader] of [
  ['rfc9001-a3-server-initial', 'c1000000010008f067a5502a4262b50040750001'],
  ['rfc9369-a3-server-initial', 'd16b3343cf0008f067a5502a4262b50040750001'],
] as const) {
  test(`unprotectLongPacket opens the ${name} packet with the server keys (2-byte packet number)`, () => {
    const b = vector(name);
    const h = parsed(b);
    const p = opened(unprotectLongPacket(b, h, initialKeys(h.version.number, RFC_DCID, 'server') as PacketKeys));
    assert.equal(p.header.toString('hex'), unprotectedHeader);
    assert.equal(p.pn, 1);
    assert.deepEqual(p.payload, RFC_SERVER_PAYLOAD);
  });
}

test('the test encoder reproduces the RFC 9001 and RFC 9369 A.2 packets byte for byte', () => {
  const frames = Buffer.concat([RFC_CLIENT_CRYPTO_FRAME, Buffer.alloc(RFC_CLIENT_PAYLOAD_LEN - RFC_CLIENT_CRYPTO_FRAME.length)]);
  assert.deepEqual(protectLong({ version: QUIC_V1, dcid: RFC_DCID, pn: 2, frames }), vector('rfc9001-a2-client-initial'));
  assert.deepEqual(protectLong({ version: QUIC_V2, dcid: RFC_DCID, pn: 2, frames }), vector('rfc9369-a2-client-initial'));
  const server = protectLong({ version: QUIC_V1, side: 'server', dcid: Buffer.alloc(0), scid: hex('f067a5502a4262b5'), pn: 1, pnLen: 2, frames: RFC_SERVER_PAYLOAD, keys: keysFor(QUIC_V1, RFC_DCID, 'server') });
  assert.deepEqual(server, vector('rfc9001-a3-server-initial'));
});

test('unprotectLongPacket opens draft-29 packets (draft salt) and packets with 1-3 byte packet numbers', () => {
  const dcid = seededBytes(8, 3);
  for (const pnLen of [1, 2, 3, 4]) {
    const frames = Buffer.concat([cryptoFrame(0, seededBytes(100, pnLen)), paddingFrame(10)]);
    const b = protectLong({ version: DRAFT_29, dcid, pn: 7, pnLen, frames });
    const p = opened(unprotectLongPacket(b, parsed(b), initialKeys(QUIC_DRAFT_29, dcid) as PacketKeys));
    assert.equal(p.pn, 7);
    assert.equal(p.pnLen, pnLen);
    assert.deepEqual(p.payload, frames);
  }
  // A v1 key does not open a draft-29 packet: the salts differ.
  const b = protectLong({ version: DRAFT_29, dcid, pn: 0, frames: pingFrame(), padTo: 100 });
  assert.equal(unprotectLongPacket(b, parsed(b), initialKeys(QUIC_V1, dcid) as PacketKeys), 'decrypt_failed');
});

test('unprotectLongPacket decodes the packet number against the largest one seen', () => {
  const dcid = seededBytes(8, 4);
  const b = protectLong({ version: QUIC_V1, dcid, pn: 300, pnLen: 1, frames: pingFrame(), padTo: 60 });
  assert.equal(opened(unprotectLongPacket(b, parsed(b), initialKeys(QUIC_V1, dcid) as PacketKeys, 290)).pn, 300);
  // Without history, the 1-byte value 0x2c (300 mod 256) is read as 44; the nonce then differs.
  assert.equal(unprotectLongPacket(b, parsed(b), initialKeys(QUIC_V1, dcid) as PacketKeys, -1), 'decrypt_failed');
});

test('unprotectLongPacket fails authentication on a flipped bit, a wrong DCID and a changed header byte', () => {
  const b = vector('rfc9001-a2-client-initial');
  const keys = initialKeys(QUIC_V1, RFC_DCID) as PacketKeys;
  const flipped = Buffer.from(b);
  flipped[600] ^= 0x01;
  assert.equal(unprotectLongPacket(flipped, parsed(flipped), keys), 'decrypt_failed');
  const wrongDcid = hex('8394c8f03e515709');
  assert.equal(unprotectLongPacket(b, parsed(b), initialKeys(QUIC_V1, wrongDcid) as PacketKeys), 'decrypt_failed');
  const hdrByte = Buffer.from(b);
  hdrByte[7] ^= 0x01; // inside the DCID: only the AEAD's associated data catches it
  assert.equal(unprotectLongPacket(hdrByte, parsed(hdrByte), keys), 'decrypt_failed');
});

test('unprotectLongPacket refuses a packet too short for the header-protection sample', () => {
  const b = hex('c0 00000001 04 01020304 00 00 10 0102030405060708090a0b0c0d0e0f10');
  assert.equal(unprotectLongPacket(b, parsed(b), initialKeys(QUIC_V1, hex('01020304')) as PacketKeys), 'too_short');
});

test('unprotectLongPacket reports non-zero reserved bits only on an authenticated packet', () => {
  const dcid = seededBytes(8, 5);
  const b = protectLong({ version: QUIC_V1, dcid, pn: 0, frames: pingFrame(), padTo: 80, reserved: 2 });
  assert.equal(unprotectLongPacket(b, parsed(b), initialKeys(QUIC_V1, dcid) as PacketKeys), 'reserved_bits');
});

test('parseInitialFrames reads PADDING, PING, ACK (with ranges and ECN), CRYPTO and CONNECTION_CLOSE', () => {
  const payload = Buffer.concat([
    pingFrame(), ackFrame(10, 3, 2, [[1, 2]]), hex('03 05 00 00 00 01 02 03'), cryptoFrame(5, Buffer.from('hello')), paddingFrame(7),
    connectionCloseFrame(0x0a, 0x06, 'bad crypto'), cryptoFrame(0, Buffer.from('12345')),
  ]);
  const f = parseInitialFrames(payload);
  if (typeof f === 'string') return assert.fail(f);
  assert.equal(f.pings, 1);
  assert.equal(f.paddingBytes, 7);
  assert.deepEqual(f.acks, [
    { largest: 10, delay: 3, firstRange: 2, ranges: [[1, 2]] },
    { largest: 5, delay: 0, firstRange: 0, ranges: [], ecn: [1, 2, 3] },
  ]);
  assert.deepEqual(f.crypto.map((c) => [c.offset, Buffer.from(c.data).toString()]), [[5, 'hello'], [0, '12345']]);
  assert.deepEqual(f.closes, [{ errorCode: 0x0a, frameType: 0x06, reason: 'bad crypto' }]);
});

test('parseInitialFrames refuses frames not allowed in Initial packets and frames cut short', () => {
  assert.equal(parseInitialFrames(hex('08 00 01 41')), 'frame_not_allowed'); // STREAM
  assert.equal(parseInitialFrames(hex('1d 00 00 00')), 'frame_not_allowed'); // application CONNECTION_CLOSE
  assert.equal(parseInitialFrames(hex('06 00 10 41 42')), 'frame_truncated'); // CRYPTO says 16 bytes, has 2
  assert.equal(parseInitialFrames(hex('06 00')), 'frame_truncated');
  assert.equal(parseInitialFrames(hex('02 0a 00 05 00')), 'frame_truncated'); // 5 ranges, none there
  assert.equal(parseInitialFrames(hex('1c 0a 06 20 41')), 'frame_truncated');
  assert.equal(parseInitialFrames(hex('40')), 'frame_truncated'); // frame type varint cut
});

test('parseInitialFrames gives every cut of the RFC payload either frames or frame_truncated, never a throw', () => {
  const payload = Buffer.concat([RFC_CLIENT_CRYPTO_FRAME, Buffer.alloc(20)]);
  for (let n = 0; n <= payload.length; n++) {
    const f = parseInitialFrames(payload.subarray(0, n));
    if (n === 0 || n >= RFC_CLIENT_CRYPTO_FRAME.length) assert.equal(typeof f, 'object', `cut ${n}`);
    else assert.equal(f, 'frame_truncated', `cut ${n}`);
  }
});

/** Feeds [offset, text] segments and returns the contiguous text and the last result. */
function feed(segments: [number, string][], budget?: CryptoBudget): { text: string; results: string[] } {
  const s = new CryptoStream(budget);
  const results = segments.map(([o, t]) => s.add(o, Buffer.from(t, 'latin1')));
  return { text: Buffer.from(s.bytes()).toString('latin1'), results };
}

test('CryptoStream reassembles in order, out of order, with overlaps (first data wins) and holes', () => {
  const cases: [string, [number, string][], string][] = [
    ['in order', [[0, 'abc'], [3, 'def']], 'abcdef'],
    ['reversed', [[3, 'def'], [0, 'abc']], 'abcdef'],
    ['shuffled', [[4, 'ef'], [0, 'ab'], [6, 'gh'], [2, 'cd']], 'abcdefgh'],
    ['overlap keeps first', [[0, 'abcd'], [2, 'XXef']], 'abcdef'],
    ['overlap extends', [[0, 'abcd'], [2, 'XXef'], [5, 'YZ']], 'abcdefZ'],
    ['overlap inside a hole', [[0, 'ab'], [4, 'ef'], [1, 'XcdX']], 'abcdef'],
    ['duplicate', [[0, 'abc'], [0, 'abc']], 'abc'],
    ['hole at start', [[2, 'cd']], ''],
    ['hole in middle', [[0, 'ab'], [4, 'ef']], 'ab'],
    ['empty data', [[0, ''], [0, 'a']], 'a'],
  ];
  for (const [name, segs, expected] of cases) assert.equal(feed(segs).text, expected, name);
});

test('CryptoStream refuses data beyond MAX_CRYPTO_STREAM_BYTES and too many holes', () => {
  const s = new CryptoStream();
  assert.equal(s.add(MAX_CRYPTO_STREAM_BYTES - 1, hex('01 02')), 'beyond_limit');
  assert.equal(s.add(MAX_CRYPTO_STREAM_BYTES - 2, hex('01 02')), 'ok');
  const f = new CryptoStream();
  for (let i = 0; i < MAX_CRYPTO_RANGES; i++) assert.equal(f.add(1 + i * 2, hex('aa')), 'ok');
  assert.equal(f.add(1 + MAX_CRYPTO_RANGES * 2, hex('aa')), 'too_fragmented');
  assert.equal(f.add(2, hex('bb')), 'ok'); // filling a hole merges ranges: always allowed
});

test('CryptoStream charges a shared budget and gives the bytes back on release', () => {
  const budget = new CryptoBudget(5000);
  const a = new CryptoStream(budget);
  assert.equal(a.add(0, Buffer.alloc(100)), 'ok');
  assert.equal(budget.used, a.allocated);
  const b = new CryptoStream(budget);
  assert.equal(b.add(0, Buffer.alloc(4000)), 'memcap');
  a.release();
  assert.equal(budget.used, 0);
  assert.equal(b.add(0, Buffer.alloc(4000)), 'ok');
});

test('CryptoStream.clientHelloBody waits for the whole message and refuses other messages', () => {
  const hello = Buffer.concat([hex('01 000005'), Buffer.from('HELLO')]);
  const s = new CryptoStream();
  s.add(4, hello.subarray(4));
  assert.equal(s.clientHelloBody(), undefined);
  s.add(0, hello.subarray(0, 3));
  assert.equal(s.clientHelloBody(), undefined);
  s.add(3, hello.subarray(3, 4));
  assert.equal(Buffer.from(s.clientHelloBody() as Uint8Array).toString(), 'HELLO');
  const server = new CryptoStream();
  server.add(0, hex('02 000005'));
  assert.equal(server.clientHelloBody(), 'not_client_hello');
  const huge = new CryptoStream();
  huge.add(0, hex('01 ffffff'));
  assert.equal(huge.clientHelloBody(), 'beyond_limit');
});

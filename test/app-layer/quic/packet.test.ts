import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodePacketNumber, gquicConnectionId, gquicPublicHeaderVersion, lookupVersion, parseLongHeader, parseVersionNegotiation, probeQuic,
  readVarint, QUIC_DRAFT_29, QUIC_V1, QUIC_V2, type LongHeader,
} from '../../../sensor/app-layer/quic/packet.js';
import { hex } from '../../helpers/packets.js';
import { RFC9001_RETRY, RFC9369_RETRY, vector } from '../../fixtures/quic/vectors.js';
import { DRAFT_29, protectLong, cryptoFrame, seededBytes, shortHeader, varint } from '../../fixtures/quic/quic-encoder.js';

function header(h: LongHeader | string): Omit<LongHeader, 'version'> & { version: string } {
  assert.notEqual(typeof h, 'string', `expected a header, got ${String(h)}`);
  const l = h as LongHeader;
  return { ...l, version: l.version.name };
}

test('readVarint decodes the RFC 9000 Appendix A.1 examples', () => {
  // 0x9d7f3e7d -> 494,878,333; 0x7bbd -> 15,293; 0x25 -> 37; 0x4025 -> 37.
  assert.equal(readVarint(hex('9d7f3e7d'), 0, 4), 494878333);
  assert.equal(readVarint(hex('7bbd'), 0, 2), 15293);
  assert.equal(readVarint(hex('25'), 0, 1), 37);
  assert.equal(readVarint(hex('4025'), 0, 2), 37);
  assert.equal(readVarint(hex('c000000000000400'), 0, 8), 1024);
});

test('readVarint returns -1 when the integer runs past the end', () => {
  assert.equal(readVarint(hex('9d7f3e'), 0, 3), -1);
  assert.equal(readVarint(hex('40'), 0, 1), -1);
  assert.equal(readVarint(hex(''), 0, 0), -1);
  assert.equal(readVarint(hex('7bbd'), 0, 1), -1); // end before the buffer's end
});

test('decodePacketNumber follows the RFC 9000 Appendix A.3 example and window edges', () => {
  assert.equal(decodePacketNumber(0xa82f30ea, 0x9b32, 16), 0xa82f9b32);
  assert.equal(decodePacketNumber(-1, 2, 32), 2); // first packet (RFC 9001 A.2 uses pn 2)
  assert.equal(decodePacketNumber(254, 0x01, 8), 257); // wraps forward past 255
  assert.equal(decodePacketNumber(300, 0xff, 8), 255); // a late packet just below the window
});

test('lookupVersion names IETF, draft, mvfst and Google QUIC versions and refuses others', () => {
  const names = [QUIC_V1, QUIC_V2, QUIC_DRAFT_29, 0xff00001b, 0xfaceb002, 0x51303235, 0x51303436, 0x54303531].map((v) => {
    const i = lookupVersion(v);
    return i === undefined ? undefined : `${i.name}/${i.family}`;
  });
  assert.deepEqual(names, ['v1/ietf', 'v2/ietf', 'draft-29/ietf', 'draft-27/ietf', 'mvfst-2/ietf', 'Q025/gquic', 'Q046/gquic', 'T051/gquic']);
  // Reserved (greased) 0x?a?a?a?a, unassigned, old drafts, 'Q' without digits.
  for (const v of [0x1a2a3a4a, 0x00000002, 0xff000010, 0x51414243, 0]) assert.equal(lookupVersion(v), undefined, v.toString(16));
});

test('parseLongHeader reads the RFC 9001 A.2 client Initial header', () => {
  const h = header(parseLongHeader(vector('rfc9001-a2-client-initial')));
  assert.deepEqual(h, {
    off: 0, firstByte: 0xc0, version: 'v1', type: 'initial', dcidOff: 6, dcidLen: 8, scidOff: 15, scidLen: 0,
    tokenOff: 16, tokenLen: 0, pnOff: 18, end: 1200,
  });
});

test('parseLongHeader reads v2 type bits: the RFC 9369 A.2 packet is an Initial with type bits 01', () => {
  const b = vector('rfc9369-a2-client-initial');
  assert.equal((b[0] >> 4) & 3, 1);
  const h = header(parseLongHeader(b));
  assert.equal(h.type, 'initial');
  assert.equal(h.version, 'v2');
  assert.equal(h.end, 1200);
  // The same type bits under v1 mean 0-RTT (no token field, so the length is read at another offset).
  const asV1 = Buffer.from(b);
  asV1.writeUInt32BE(QUIC_V1, 1);
  const h1 = parseLongHeader(asV1);
  assert.equal(typeof h1 === 'string' ? h1 : h1.type, '0rtt');
});

test('parseLongHeader reads the RFC 9001 A.3 server Initial (empty DCID, 8-byte SCID)', () => {
  const h = header(parseLongHeader(vector('rfc9001-a3-server-initial')));
  assert.equal(h.dcidLen, 0);
  assert.equal(h.scidLen, 8);
  assert.equal(vector('rfc9001-a3-server-initial').subarray(h.scidOff, h.scidOff + 8).toString('hex'), 'f067a5502a4262b5');
  assert.equal(h.pnOff, 18);
  assert.equal(h.end, 135);
});

test('parseLongHeader reads Retry packets of v1 and v2 (RFC 9001 A.4, RFC 9369 A.4)', () => {
  for (const [b, v] of [[RFC9001_RETRY, 'v1'], [RFC9369_RETRY, 'v2']] as const) {
    const h = header(parseLongHeader(b));
    assert.equal(h.type, 'retry');
    assert.equal(h.version, v);
    assert.equal(b.subarray(h.tokenOff, h.tokenOff + h.tokenLen).toString('latin1'), 'token');
    assert.equal(h.end, b.length);
    assert.equal(h.pnOff, -1);
  }
});

test('parseLongHeader finds coalesced packets by their Length fields', () => {
  const dcid = seededBytes(8, 1);
  const one = protectLong({ version: QUIC_V1, dcid, pn: 0, frames: cryptoFrame(0, seededBytes(50, 2)) });
  const two = protectLong({ version: QUIC_V1, type: 'handshake', dcid, pn: 0, frames: seededBytes(60, 3) });
  const dgram = Buffer.concat([one, two, shortHeader(dcid, seededBytes(30, 4))]);
  const h1 = header(parseLongHeader(dgram));
  assert.equal(h1.end, one.length);
  const h2 = header(parseLongHeader(dgram, h1.end));
  assert.equal(h2.type, 'handshake');
  assert.equal(h2.end, one.length + two.length);
  assert.equal(parseLongHeader(dgram, h2.end), 'not_long_header');
});

test('parseLongHeader says truncated for every cut inside the header and length_beyond_datagram after it', () => {
  const b = vector('rfc9001-a2-client-initial');
  for (let n = 0; n < b.length; n++) {
    const r = parseLongHeader(b.subarray(0, n));
    assert.equal(r, n < 18 ? 'truncated' : 'length_beyond_datagram', `cut at ${n}`);
  }
});

test('parseLongHeader refuses a DCID or SCID longer than 20 bytes', () => {
  const dcid21 = Buffer.concat([hex('c0 00000001 15'), seededBytes(21, 5), hex('00 00 4010'), Buffer.alloc(16)]);
  assert.equal(parseLongHeader(dcid21), 'cid_too_long');
  const scid21 = Buffer.concat([hex('c0 00000001 00 15'), seededBytes(21, 5), hex('00 4010'), Buffer.alloc(16)]);
  assert.equal(parseLongHeader(scid21), 'cid_too_long');
  const dcid20 = Buffer.concat([hex('c0 00000001 14'), seededBytes(20, 5), hex('00 00 10'), Buffer.alloc(16)]);
  assert.equal(typeof parseLongHeader(dcid20), 'object');
});

test('parseLongHeader flags a Length varint past the datagram, cut short, and a token past the datagram', () => {
  const base = hex('c0 00000001 04 01020304 00 00');
  assert.equal(parseLongHeader(Buffer.concat([base, varint(2 ** 40, 8), Buffer.alloc(30)])), 'length_beyond_datagram');
  assert.equal(parseLongHeader(Buffer.concat([base, hex('80 00')])), 'truncated'); // 4-byte varint, 2 bytes there
  const tokenLong = Buffer.concat([hex('c0 00000001 04 01020304 00'), varint(1024), Buffer.alloc(40)]);
  assert.equal(parseLongHeader(tokenLong), 'token_beyond_datagram');
  assert.equal(parseLongHeader(hex('c0 1a2a3a4a 04 01020304 00 00 10')), 'unknown_version');
  assert.equal(parseLongHeader(hex('40 00000001 04 01020304 00 00 10')), 'not_long_header');
});

test('parseVersionNegotiation lists the offered versions and refuses malformed lists', () => {
  const vn = hex('80 00000000 04 0a0b0c0d 04 01020304 00000001 6b3343cf 1a2a3a4a');
  const r = parseVersionNegotiation(vn);
  assert.deepEqual(r && { dcid: Buffer.from(r.dcid).toString('hex'), scid: Buffer.from(r.scid).toString('hex'), versions: r.versions }, {
    dcid: '0a0b0c0d', scid: '01020304', versions: [1, 0x6b3343cf, 0x1a2a3a4a],
  });
  assert.equal(parseVersionNegotiation(vn.subarray(0, vn.length - 1)), undefined); // not a multiple of 4
  assert.equal(parseVersionNegotiation(hex('80 00000000 04 0a0b0c0d 04 01020304')), undefined); // empty list
  assert.equal(parseVersionNegotiation(hex('80 00000000 30 0a0b')), undefined); // DCID past the end
  assert.equal(parseVersionNegotiation(hex('80 00000001 00 00 00000001')), undefined); // not version 0
});

test('probeQuic accepts long headers of known versions, VN and gQUIC public headers', () => {
  assert.equal(probeQuic(vector('rfc9001-a2-client-initial')), true);
  assert.equal(probeQuic(vector('rfc9369-a2-client-initial')), true);
  assert.equal(probeQuic(vector('rfc9001-a3-server-initial')), true);
  assert.equal(probeQuic(RFC9001_RETRY), true);
  assert.equal(probeQuic(protectLong({ version: DRAFT_29, dcid: seededBytes(8, 9), pn: 0, frames: cryptoFrame(0, seededBytes(20, 1)), padTo: 1200 })), true);
  assert.equal(probeQuic(hex('80 00000000 04 0a0b0c0d 04 01020304 00000001')), true);
  // Q025 public header: flags 0x0d (version, 8-byte cid), cid, "Q025".
  assert.equal(probeQuic(Buffer.concat([hex('0d 49bee2d3f0edccd6'), Buffer.from('Q025'), hex('01 d8697e21ab650d33f17a3cf3')])), true);
  // Q046 long header: 0xc3, "Q046", cid-length nibbles 0x50 (DCID 8 bytes).
  assert.equal(probeQuic(Buffer.concat([hex('c3'), Buffer.from('Q046'), hex('50 0102030405060708 00000001'), Buffer.alloc(40)])), true);
});

test('probeQuic refuses non-QUIC UDP and short headers on unknown flows', () => {
  const dnsQuery = hex('12 34 01 00 00 01 00 00 00 00 00 00 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00 01');
  const dtls = hex('16 fefd 0000 000000000000 0040 01 000034 0000 000000 000034 fefd');
  const stun = hex('0001 0000 2112a442 000000000000000000000000');
  const short = shortHeader(seededBytes(8, 1), seededBytes(40, 2));
  for (const b of [dnsQuery, dtls, stun, short, hex(''), hex('c0 00 00'), seededBytes(1200, 77)]) assert.equal(probeQuic(b), false, b.subarray(0, 8).toString('hex'));
  assert.equal(probeQuic(short, true), true);
  assert.equal(probeQuic(hex('00 01 02 03'), true), false); // fixed bit clear
  // Known version but fixed bit clear, or a DCID over 20 bytes: not taken for QUIC.
  const noFixed = Buffer.from(vector('rfc9001-a2-client-initial'));
  noFixed[0] &= ~0x40;
  assert.equal(probeQuic(noFixed), false);
  assert.equal(probeQuic(Buffer.concat([hex('c0 00000001 15'), seededBytes(21, 5), hex('00 00 4010'), Buffer.alloc(16)])), false);
});

test('gquicPublicHeaderVersion and gquicConnectionId read Q025 public headers and Q046 long headers', () => {
  const q025 = Buffer.concat([hex('0d 49bee2d3f0edccd6'), Buffer.from('Q025'), hex('01')]);
  const v = gquicPublicHeaderVersion(q025);
  assert.equal(v?.name, 'Q025');
  if (v === undefined) return;
  const [o, l] = gquicConnectionId(q025, v);
  assert.equal(q025.subarray(o, o + l).toString('hex'), '49bee2d3f0edccd6');
  assert.equal(gquicPublicHeaderVersion(Buffer.concat([hex('0c 49bee2d3f0edccd6'), Buffer.from('Q025')])), undefined); // no version flag
  const q046 = Buffer.concat([hex('c3'), Buffer.from('Q046'), hex('50 0102030405060708 00000001')]);
  const v46 = lookupVersion(q046.readUInt32BE(1));
  if (v46 === undefined) return assert.fail('Q046 unknown');
  const [o46, l46] = gquicConnectionId(q046, v46);
  assert.equal(q046.subarray(o46, o46 + l46).toString('hex'), '0102030405060708');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { counterName } from '../../../sensor/events/counters.js';
import { isRadiusError, parseRadius, type RadiusPacket } from '../../../sensor/app-layer/radius/parser.js';
import { fixture, replay } from '../../helpers/replay.js';

const attr = (type: number, v: Buffer | string): Buffer => {
  const b = typeof v === 'string' ? Buffer.from(v) : v;
  return Buffer.concat([Buffer.from([type, b.length + 2]), b]);
};
function radius(code: number, attrs: Buffer[], lengthOverride?: number, trailing = 0): Buffer {
  const body = Buffer.concat(attrs);
  const h = Buffer.alloc(20);
  h[0] = code;
  h[1] = 42;
  h.writeUInt16BE(lengthOverride ?? 20 + body.length, 2);
  return Buffer.concat([h, body, Buffer.alloc(trailing)]);
}
function ok(b: Uint8Array): RadiusPacket {
  const r = parseRadius(b);
  if (isRadiusError(r)) assert.fail(`unexpected anomaly ${counterName(r.anomaly)}`);
  return r;
}

test('parseRadius reads arkime-radius.pcap\'s Accounting-Request as the MANIFEST states', () => {
  const d = replay(fixture('identity', 'arkime-radius.pcap')).datagrams;
  const m = ok(d[0].payload);
  assert.equal(m.code, 4);
  assert.equal(m.identifier, 227);
  assert.equal(m.userName, 'xxxxxxxxx');
  assert.equal(m.acctStatusType, 3);
  assert.equal(m.acctSessionId, 'xxxxxxxx985AEB898000-57361300');
  assert.equal(m.framedIp, '10.0.0.3');
  assert.equal(m.callingStationId, '985AEB898000');
  assert.equal(m.callingStationMac, '98:5a:eb:89:80:00');
  assert.equal(m.nasIp, '10.0.0.1');
  assert.equal(m.calledStationId, '001A1E000000');
  assert.equal(m.vendorSpecific, 6, 'six Aruba VSAs skipped');
  assert.deepEqual(m.anomalies, []);
  assert.equal(ok(d[1].payload).code, 5);
});

test('parseRadius reads IPv6 addresses, Session-Timeout and NAS-Identifier; bytes past Length are padding', () => {
  const v6 = Buffer.from('20010db8000000000000000000000042', 'hex');
  const m = ok(radius(2, [attr(168, v6), attr(95, v6), attr(27, Buffer.from([0, 0, 0x0e, 0x10])), attr(32, 'ap-hall-2')], undefined, 7));
  assert.equal(m.framedIpv6, '2001:db8::42');
  assert.equal(m.nasIpv6, '2001:db8::42');
  assert.equal(m.sessionTimeoutSeconds, 3600);
  assert.equal(m.nasIdentifier, 'ap-hall-2');
});

test('parseRadius keeps a Calling-Station-Id that is not a MAC without inventing one', () => {
  const m = ok(radius(4, [attr(31, '+441234567890')]));
  assert.equal(m.callingStationId, '+441234567890');
  assert.equal(m.callingStationMac, undefined);
});

test('parseRadius refuses short packets, unknown codes and a Length beyond the datagram', () => {
  const cases: [Buffer, string][] = [
    [Buffer.alloc(10), 'radius.too_short'],
    [radius(99, []), 'radius.unknown_code'],
    [radius(1, [attr(1, 'x')], 200), 'radius.bad_length'],
    [radius(1, [], 19), 'radius.bad_length'],
  ];
  for (const [b, code] of cases) {
    const r = parseRadius(b);
    assert.ok(isRadiusError(r) && counterName(r.anomaly) === code, code);
  }
});

test('parseRadius flags an attribute of length < 2, one past Length and a wrong-size address', () => {
  assert.deepEqual(ok(radius(1, [attr(1, 'bob'), Buffer.from([1, 1])])).anomalies.map(counterName), ['radius.attribute.bad_length']);
  assert.deepEqual(ok(radius(1, [Buffer.from([1, 9, 65])])).anomalies.map(counterName), ['radius.attribute.truncated']);
  const m = ok(radius(4, [attr(8, Buffer.from([10, 0, 0]))]));
  assert.deepEqual(m.anomalies.map(counterName), ['radius.attribute.bad_length']);
  assert.equal(m.framedIp, undefined);
});

test('parseRadius never throws on any truncation or on seeded byte mutations', () => {
  const base = radius(4, [attr(1, 'jsmith'), attr(8, Buffer.from([10, 0, 0, 3])), attr(31, '98-5A-EB-89-80-00'), attr(26, Buffer.alloc(10)), attr(40, Buffer.from([0, 0, 0, 1]))]);
  for (let n = 0; n <= base.length; n++) parseRadius(base.subarray(0, n));
  let seed = 99;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xffff;
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(base);
    for (let k = 0; k < 3; k++) b[rnd() % b.length] = rnd() & 255;
    parseRadius(b);
  }
});

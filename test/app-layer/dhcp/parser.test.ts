import assert from 'node:assert/strict';
import { test } from 'node:test';
import { counterName } from '../../../sensor/events/counters.js';
import { isDhcpV4Error, parseDhcpV4, type DhcpV4Message } from '../../../sensor/app-layer/dhcp/parser.js';

/** A BOOTP message: fixed header (RFC 2131 §2), magic cookie, then `options` as given. */
function dhcp(o: { op?: number; ciaddr?: string; yiaddr?: string; chaddr?: string; htype?: number; hlen?: number; file?: Buffer; sname?: Buffer; cookie?: number }, options: Buffer): Buffer {
  const b = Buffer.alloc(240);
  b[0] = o.op ?? 1;
  b[1] = o.htype ?? 1;
  b[2] = o.hlen ?? 6;
  b.writeUInt32BE(0x3903f326, 4);
  const ip = (s: string, at: number): void => s.split('.').forEach((x, i) => { b[at + i] = Number(x); });
  ip(o.ciaddr ?? '0.0.0.0', 12);
  ip(o.yiaddr ?? '0.0.0.0', 16);
  Buffer.from((o.chaddr ?? '00:0b:82:01:fc:42').split(':').map((x) => parseInt(x, 16))).copy(b, 28);
  if (o.sname) o.sname.copy(b, 44);
  if (o.file) o.file.copy(b, 108);
  b.writeUInt32BE(o.cookie ?? 0x63825363, 236);
  return Buffer.concat([b, options]);
}
const opt = (code: number, ...data: (number | string | Buffer)[]): Buffer => {
  const v = Buffer.concat(data.map((d) => (typeof d === 'number' ? Buffer.from([d]) : typeof d === 'string' ? Buffer.from(d, 'latin1') : d)));
  return Buffer.concat([Buffer.from([code, v.length]), v]);
};
const END = Buffer.from([255]);

function ok(b: Uint8Array): DhcpV4Message {
  const r = parseDhcpV4(b);
  if (isDhcpV4Error(r)) assert.fail(`unexpected anomaly ${counterName(r.anomaly)}`);
  return r;
}

test('parseDhcpV4 reads a REQUEST: type, chaddr, host name without trailing NULs, requested IP, vendor class, client id', () => {
  const m = ok(dhcp({}, Buffer.concat([
    opt(53, 3), opt(61, 1, Buffer.from('000b8201fc42', 'hex')), opt(50, 192, 168, 0, 10), opt(54, 192, 168, 0, 1),
    opt(12, 'nas1\0'), opt(60, 'MSFT 5.0'), END,
  ])));
  assert.equal(m.op, 1);
  assert.equal(m.xid, 0x3903f326);
  assert.equal(m.messageType, 3);
  assert.equal(m.clientMac, '00:0b:82:01:fc:42');
  assert.equal(m.clientIdMac, '00:0b:82:01:fc:42');
  assert.equal(m.clientId, '01000b8201fc42');
  assert.equal(m.hostname, 'nas1');
  assert.equal(m.requestedIp, '192.168.0.10');
  assert.equal(m.serverId, '192.168.0.1');
  assert.equal(m.vendorClass, 'MSFT 5.0');
  assert.deepEqual(m.anomalies, []);
});

test('parseDhcpV4 reads an ACK: yiaddr, lease time, domain name', () => {
  const m = ok(dhcp({ op: 2, yiaddr: '10.16.1.4', ciaddr: '10.16.1.4' }, Buffer.concat([opt(53, 5), opt(51, 0, 0, 0x0e, 0x10), opt(15, 'unx.ca'), END])));
  assert.equal(m.yiaddr, '10.16.1.4');
  assert.equal(m.ciaddr, '10.16.1.4');
  assert.equal(m.leaseSeconds, 3600);
  assert.equal(m.domainName, 'unx.ca');
});

test('parseDhcpV4 decodes option 81 in wire encoding (E flag) and in the deprecated ASCII form', () => {
  const wire = Buffer.from('\x0alaptop-7f3\x06school\x07example\x00', 'latin1');
  const a = ok(dhcp({}, Buffer.concat([opt(53, 3), opt(81, 0x05, 0, 0, wire), END])));
  assert.deepEqual(a.fqdn, { flags: 0x05, name: 'laptop-7f3.school.example' });
  const b = ok(dhcp({}, Buffer.concat([opt(53, 3), opt(81, 0x01, 0, 0, 'pc12.school.example.'), END])));
  assert.deepEqual(b.fqdn, { flags: 0x01, name: 'pc12.school.example' });
  const bad = ok(dhcp({}, Buffer.concat([opt(53, 3), opt(81, 0x04, 0, 0, Buffer.from([40, 65])), END])));
  assert.equal(bad.fqdn?.name, '');
  assert.deepEqual(bad.anomalies.map(counterName), ['dhcp.fqdn.malformed']);
});

test('parseDhcpV4 reads relay agent sub-options 1 and 2 (option 82)', () => {
  const m = ok(dhcp({}, Buffer.concat([opt(53, 1), opt(82, 1, 4, Buffer.from('00010203', 'hex'), 2, 2, Buffer.from('abcd', 'hex')), END])));
  assert.deepEqual(m.relayAgent, { circuitId: '00010203', remoteId: 'abcd' });
});

test('parseDhcpV4 follows option overload into the file field (RFC 2132 §9.3)', () => {
  const file = Buffer.concat([opt(12, 'from-file'), END]);
  const m = ok(dhcp({ file }, Buffer.concat([opt(53, 1), opt(52, 1), END])));
  assert.equal(m.hostname, 'from-file');
});

test('parseDhcpV4 keeps a non-Ethernet chaddr as hex only', () => {
  const m = ok(dhcp({ htype: 6, hlen: 6 }, Buffer.concat([opt(53, 1), END])));
  assert.equal(m.clientMac, undefined);
  assert.equal(m.chaddrHex, '000b8201fc42');
});

test('parseDhcpV4 refuses a short packet, a wrong cookie and a bad op', () => {
  const short = parseDhcpV4(Buffer.alloc(100));
  assert.ok(isDhcpV4Error(short) && counterName(short.anomaly) === 'dhcp.too_short');
  const cookie = parseDhcpV4(dhcp({ cookie: 0x12345678 }, END));
  assert.ok(isDhcpV4Error(cookie) && counterName(cookie.anomaly) === 'dhcp.bad_magic_cookie');
  const op = parseDhcpV4(dhcp({ op: 3 }, END));
  assert.ok(isDhcpV4Error(op) && counterName(op.anomaly) === 'dhcp.bad_op');
});

test('parseDhcpV4 flags a truncated option, a bad length and a missing message type', () => {
  const m = ok(dhcp({}, Buffer.concat([opt(50, 1, 2, 3), Buffer.from([12, 10, 65])])));
  assert.deepEqual(m.anomalies.map(counterName), ['dhcp.option.bad_length', 'dhcp.option.truncated', 'dhcp.message_type.missing']);
  assert.equal(m.requestedIp, undefined);
});

test('parseDhcpV4 never throws on any truncation or on seeded byte mutations', () => {
  const base = dhcp({}, Buffer.concat([opt(53, 3), opt(12, 'host'), opt(81, 4, 0, 0, Buffer.from('\x04host\x00', 'latin1')), opt(82, 1, 1, 0), opt(52, 3), END]));
  for (let n = 0; n <= base.length; n++) parseDhcpV4(base.subarray(0, n));
  let seed = 12345;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xffff;
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(base);
    for (let k = 0; k < 4; k++) b[240 + (rnd() % (b.length - 240))] = rnd() & 255;
    parseDhcpV4(b);
  }
});

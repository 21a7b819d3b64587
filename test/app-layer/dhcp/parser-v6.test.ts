import assert from 'node:assert/strict';
import { test } from 'node:test';
import { counterName } from '../../../sensor/events/counters.js';
import { MAX_DHCPV6_RELAY_DEPTH, isDhcpV6Error, macFromDuid, parseDhcpV6, type DhcpV6Message } from '../../../sensor/app-layer/dhcp/parser-v6.js';

const u16 = (v: number): Buffer => Buffer.from([v >> 8, v & 255]);
const u32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(v); return b; };
const opt = (code: number, data: Buffer): Buffer => Buffer.concat([u16(code), u16(data.length), data]);
const MAC = Buffer.from('001c42aabbcc', 'hex');
const duidLlt = Buffer.concat([u16(1), u16(1), u32(0x2cd5a123), MAC]);
const duidLl = Buffer.concat([u16(3), u16(1), MAC]);
const addr = Buffer.from('20010db8001000000000000000000023', 'hex');
const iaNa = opt(3, Buffer.concat([u32(1), u32(0), u32(0), opt(5, Buffer.concat([addr, u32(3600), u32(7200)]))]));
const msg = (type: number, opts: Buffer[]): Buffer => Buffer.concat([Buffer.from([type, 0xab, 0xcd, 0xef]), ...opts]);

function ok(b: Uint8Array): DhcpV6Message {
  const r = parseDhcpV6(b);
  if (isDhcpV6Error(r)) assert.fail(`unexpected anomaly ${counterName(r.anomaly)}`);
  return r;
}

test('macFromDuid finds the MAC in DUID-LLT and DUID-LL, not in DUID-EN or another hardware type', () => {
  assert.equal(macFromDuid(duidLlt, 0, duidLlt.length), '00:1c:42:aa:bb:cc');
  assert.equal(macFromDuid(duidLl, 0, duidLl.length), '00:1c:42:aa:bb:cc');
  const en = Buffer.concat([u16(2), u32(311), Buffer.from('0102', 'hex')]);
  assert.equal(macFromDuid(en, 0, en.length), undefined);
  const tokenRing = Buffer.concat([u16(3), u16(6), MAC]);
  assert.equal(macFromDuid(tokenRing, 0, tokenRing.length), undefined);
});

test('parseDhcpV6 reads a REPLY: client DUID, IA_NA address with lifetimes, FQDN, vendor class', () => {
  const fqdn = opt(39, Buffer.concat([Buffer.from([1]), Buffer.from('\x0alaptop-7f3\x06school\x00', 'latin1')]));
  const vc = opt(16, Buffer.concat([u32(311), u16(8), Buffer.from('MSFT 5.0')]));
  const m = ok(msg(7, [opt(1, duidLlt), opt(2, duidLl), iaNa, fqdn, vc]));
  assert.equal(m.messageType, 7);
  assert.equal(m.transactionId, 0xabcdef);
  assert.equal(m.clientMac, '00:1c:42:aa:bb:cc');
  assert.equal(m.clientDuid, duidLlt.toString('hex'));
  assert.equal(m.serverDuid, duidLl.toString('hex'));
  assert.deepEqual(m.addresses, [{ address: '2001:db8:10::23', preferredSeconds: 3600, validSeconds: 7200, ia: 'na' }]);
  assert.deepEqual(m.fqdn, { flags: 1, name: 'laptop-7f3.school' });
  assert.deepEqual(m.vendorClass, { enterprise: 311, data: 'MSFT 5.0' });
});

test('parseDhcpV6 unwraps nested relays and keeps the RFC 6939 client link-layer address', () => {
  const inner = msg(3, [opt(1, duidLlt)]);
  const relay = (payload: Buffer, extra: Buffer[] = []): Buffer => Buffer.concat([Buffer.from([12, 0]), Buffer.alloc(32), ...extra, opt(9, payload)]);
  const m = ok(relay(relay(inner, [opt(79, Buffer.concat([u16(1), Buffer.from('001c42ddeeff', 'hex')]))])));
  assert.equal(m.messageType, 3);
  assert.equal(m.relayDepth, 2);
  assert.equal(m.relayClientMac, '00:1c:42:dd:ee:ff');
  let deep = inner;
  for (let i = 0; i <= MAX_DHCPV6_RELAY_DEPTH; i++) deep = relay(deep);
  const r = parseDhcpV6(deep);
  assert.ok(isDhcpV6Error(r) && counterName(r.anomaly) === 'dhcpv6.relay.too_deep');
});

test('parseDhcpV6 refuses a short packet, message type 0 and a relay without a message', () => {
  for (const [b, code] of [[Buffer.from([1, 2]), 'dhcpv6.too_short'], [msg(0, []), 'dhcpv6.bad_message_type'], [Buffer.concat([Buffer.from([12, 0]), Buffer.alloc(32)]), 'dhcpv6.relay.no_message']] as const) {
    const r = parseDhcpV6(b);
    assert.ok(isDhcpV6Error(r) && counterName(r.anomaly) === code, code);
  }
});

test('parseDhcpV6 flags a truncated option and a short IA_NA', () => {
  const m = ok(msg(7, [opt(3, Buffer.alloc(8)), Buffer.from([0, 1, 0, 40, 1])]));
  assert.deepEqual(m.anomalies.map(counterName), ['dhcpv6.option.bad_length', 'dhcpv6.option.truncated']);
});

test('parseDhcpV6 never throws on any truncation or on seeded byte mutations', () => {
  const base = Buffer.concat([Buffer.from([12, 0]), Buffer.alloc(32), opt(9, msg(7, [opt(1, duidLlt), iaNa, opt(39, Buffer.from('\x01\x03abc\x00', 'latin1'))]))]);
  for (let n = 0; n <= base.length; n++) parseDhcpV6(base.subarray(0, n));
  let seed = 777;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xffff;
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(base);
    for (let k = 0; k < 3; k++) b[rnd() % b.length] = rnd() & 255;
    parseDhcpV6(b);
  }
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dhcpV4Observations, dhcpV6Observations, type DhcpV4Message, type DhcpV6Message } from '../../../sensor/app-layer/dhcp/index.js';

const T = 1_700_000_000_000_000;
const base: DhcpV4Message = {
  op: 1, xid: 1, chaddrHex: '001c42aabbcc', clientMac: '00:1c:42:aa:bb:cc', ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', anomalies: [],
};

test('dhcpV4Observations: a DISCOVER names the MAC; a REQUEST with ciaddr also binds the address', () => {
  assert.deepEqual(dhcpV4Observations({ ...base, messageType: 1, hostname: 'pc1' }, T), [{ mac: '00:1c:42:aa:bb:cc', hostname: 'pc1', source: 'dhcp', tsUs: T }]);
  assert.deepEqual(dhcpV4Observations({ ...base, messageType: 3, ciaddr: '10.0.0.5' }, T), [{ ip: '10.0.0.5', mac: '00:1c:42:aa:bb:cc', source: 'dhcp', tsUs: T }]);
  assert.deepEqual(dhcpV4Observations({ ...base, messageType: 1 }, T), [], 'no name, no address: nothing to say');
});

test('dhcpV4Observations: an ACK binds yiaddr until the lease ends; the FQDN stands in for option 12', () => {
  assert.deepEqual(dhcpV4Observations({ ...base, op: 2, messageType: 5, yiaddr: '10.0.0.9', leaseSeconds: 600, fqdn: { flags: 5, name: 'pc.example' } }, T), [
    { ip: '10.0.0.9', mac: '00:1c:42:aa:bb:cc', hostname: 'pc.example', source: 'dhcp', tsUs: T, expiresUs: T + 600_000_000 },
  ]);
  assert.equal(dhcpV4Observations({ ...base, op: 2, messageType: 5, yiaddr: '10.0.0.9', leaseSeconds: 0xffffffff }, T)[0].expiresUs, Infinity);
  assert.equal(dhcpV4Observations({ ...base, op: 2, messageType: 5, ciaddr: '10.0.0.7' }, T)[0].ip, '10.0.0.7', 'ACK to an INFORM');
});

test('dhcpV4Observations: RELEASE releases ciaddr; OFFER, DECLINE and NAK bind nothing', () => {
  assert.deepEqual(dhcpV4Observations({ ...base, messageType: 7, ciaddr: '10.0.0.9' }, T), [{ ip: '10.0.0.9', mac: '00:1c:42:aa:bb:cc', source: 'dhcp', tsUs: T, release: true }]);
  for (const t of [2, 4, 6]) assert.deepEqual(dhcpV4Observations({ ...base, messageType: t, yiaddr: '10.0.0.9', requestedIp: '10.0.0.9', hostname: 'x' }, T), [], String(t));
});

test('dhcpV6Observations: a REPLY with valid lifetime 0 releases the address', () => {
  const m: DhcpV6Message = { messageType: 7, transactionId: 1, relayDepth: 0, clientMac: '00:1c:42:aa:bb:cc', addresses: [{ address: '2001:db8::5', preferredSeconds: 0, validSeconds: 0, ia: 'na' }], anomalies: [] };
  assert.deepEqual(dhcpV6Observations(m, T), [{ ip: '2001:db8::5', mac: '00:1c:42:aa:bb:cc', source: 'dhcpv6', tsUs: T, release: true }]);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counters } from '../../../sensor/events/counters.js';
import type { FlowInfo } from '../../../sensor/flow/stream.js';
import type { IdentityObservation } from '../../../sensor/identity/observation.js';
import { PENDING_ACCESS_REQUEST_TIMEOUT_US, RadiusIdentity, interpretUserName } from '../../../sensor/app-layer/radius/index.js';

const flow: FlowInfo = { flowId: 7, proto: 17, srcIp: '10.0.0.1', srcPort: 40000, dstIp: '10.0.0.2', dstPort: 1812, vlan: [], startUs: 0 };
const attr = (type: number, v: Buffer | string): Buffer => {
  const b = typeof v === 'string' ? Buffer.from(v) : v;
  return Buffer.concat([Buffer.from([type, b.length + 2]), b]);
};
function radius(code: number, id: number, attrs: Buffer[]): Buffer {
  const body = Buffer.concat(attrs);
  const h = Buffer.alloc(20);
  h[0] = code;
  h[1] = id;
  h.writeUInt16BE(20 + body.length, 2);
  return Buffer.concat([h, body]);
}
const ip = (s: string): Buffer => Buffer.from(s.split('.').map(Number));
const status = (v: number): Buffer => attr(40, Buffer.from([0, 0, 0, v]));
const T = 1_700_000_000_000_000;

function handler(): { h: RadiusIdentity; obs: IdentityObservation[]; c: Counters } {
  const obs: IdentityObservation[] = [];
  const c = new Counters();
  return { h: new RadiusIdentity({ observe: (o) => obs.push(o) }, c), obs, c };
}

test('interpretUserName splits DOMAIN\\user, treats host/ as a machine and MAB / anonymous names as nobody', () => {
  assert.deepEqual(interpretUserName('SCHOOL\\jsmith'), { domain: 'SCHOOL', user: 'jsmith' });
  assert.deepEqual(interpretUserName('jsmith@school.example'), { user: 'jsmith@school.example' });
  assert.deepEqual(interpretUserName('host/laptop-7f3.school.example'), { hostname: 'laptop-7f3.school.example' });
  assert.deepEqual(interpretUserName('985aeb898000'), {});
  assert.deepEqual(interpretUserName('anonymous@school.example'), {});
});

test('RadiusIdentity pairs an Access-Request\'s user and MAC with its Accept\'s Framed-IP and Session-Timeout', () => {
  const { h, obs } = handler();
  h.datagram(flow, 0, radius(1, 9, [attr(1, 'SCHOOL\\jsmith'), attr(31, '98:5A:EB:89:80:00')]), T);
  assert.equal(obs.length, 0, 'a Request alone binds nothing');
  h.datagram(flow, 1, radius(2, 9, [attr(8, ip('10.4.7.23')), attr(27, Buffer.from([0, 0, 0, 60]))]), T + 1000);
  assert.deepEqual(obs, [{ ip: '10.4.7.23', mac: '98:5a:eb:89:80:00', user: 'jsmith', domain: 'SCHOOL', source: 'radius', tsUs: T + 1000, expiresUs: T + 1000 + 60_000_000 }]);
});

test('RadiusIdentity binds an accepted user to the MAC when the Accept has no Framed-IP', () => {
  const { h, obs } = handler();
  h.datagram(flow, 0, radius(1, 3, [attr(1, 'alice'), attr(31, '985aeb898000')]), T);
  h.datagram(flow, 1, radius(2, 3, []), T + 1);
  assert.deepEqual(obs, [{ mac: '98:5a:eb:89:80:00', user: 'alice', source: 'radius', tsUs: T + 1 }]);
});

test('RadiusIdentity binds nothing after a Reject, a late Accept or an Accept for another identifier', () => {
  const { h, obs, c } = handler();
  h.datagram(flow, 0, radius(1, 1, [attr(1, 'eve'), attr(31, '985aeb898000')]), T);
  h.datagram(flow, 1, radius(3, 1, []), T + 1);
  h.datagram(flow, 1, radius(2, 1, [attr(8, ip('10.0.0.9'))]), T + 2);
  h.datagram(flow, 0, radius(1, 2, [attr(1, 'eve')]), T);
  h.datagram(flow, 1, radius(2, 2, [attr(8, ip('10.0.0.9'))]), T + PENDING_ACCESS_REQUEST_TIMEOUT_US + 1);
  assert.equal(obs.length, 0);
  assert.equal(c.get('radius.access_reject'), 1);
  assert.equal(c.get('radius.accept_unpaired'), 2);
});

test('RadiusIdentity: Accounting Start binds, Stop releases, Accounting-On is counted', () => {
  const { h, obs, c } = handler();
  const acct = { ...flow, dstPort: 1813 };
  h.datagram(acct, 0, radius(4, 1, [status(1), attr(1, 'jsmith'), attr(8, ip('10.0.0.3')), attr(31, '98-5A-EB-89-80-00')]), T);
  h.datagram(acct, 0, radius(4, 2, [status(2), attr(1, 'jsmith'), attr(8, ip('10.0.0.3')), attr(31, '98-5A-EB-89-80-00')]), T + 5);
  h.datagram(acct, 0, radius(4, 3, [status(7)]), T + 6);
  assert.deepEqual(obs, [
    { ip: '10.0.0.3', mac: '98:5a:eb:89:80:00', user: 'jsmith', source: 'radius', tsUs: T },
    { ip: '10.0.0.3', mac: '98:5a:eb:89:80:00', source: 'radius', tsUs: T + 5, release: true },
  ]);
  assert.equal(c.get('radius.accounting_on_off'), 1);
});

test('RadiusIdentity: a MAC-authentication user name binds the MAC to the address but names no user', () => {
  const { h, obs, c } = handler();
  h.datagram(flow, 0, radius(4, 1, [status(3), attr(1, '985aeb898000'), attr(8, ip('10.0.0.4')), attr(31, '985aeb898000')]), T);
  assert.deepEqual(obs, [{ ip: '10.0.0.4', mac: '98:5a:eb:89:80:00', source: 'radius', tsUs: T }]);
  assert.equal(c.get('radius.user_name_not_a_person'), 1);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { counterName } from '../../../sensor/events/counters.js';
import { formatPrincipal, isKerberosError, parseKerberosMessage, type KerberosMessage } from '../../../sensor/app-layer/kerberos/parser.js';
import { fixture, replay } from '../../helpers/replay.js';

/** DER TLV with a definite length (X.690 §8.1.3). */
function t(tag: number, ...parts: (Buffer | string)[]): Buffer {
  const v = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p.replace(/\s+/g, ''), 'hex') : p)));
  const len = v.length < 0x80 ? Buffer.from([v.length]) : v.length < 0x100 ? Buffer.from([0x81, v.length]) : Buffer.from([0x82, v.length >> 8, v.length & 255]);
  return Buffer.concat([Buffer.from([tag]), len, v]);
}
const int = (n: number): Buffer => t(0x02, Buffer.from(n < 0x80 ? [n] : [n >> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255]));
const gstr = (s: string): Buffer => t(0x1b, Buffer.from(s));
const principal = (type: number, ...names: string[]): Buffer => t(0x30, t(0xa0, int(type)), t(0xa1, t(0x30, ...names.map(gstr))));

/**
 * AS-REQ per RFC 4120 §5.4.1:
 *   AS-REQ ::= [APPLICATION 10] KDC-REQ
 *   KDC-REQ ::= SEQUENCE { pvno [1] INTEGER (5), msg-type [2] INTEGER (10), padata [3] SEQUENCE OF PA-DATA OPTIONAL,
 *                          req-body [4] KDC-REQ-BODY }
 *   KDC-REQ-BODY ::= SEQUENCE { kdc-options [0] KDCOptions, cname [1] PrincipalName OPTIONAL, realm [2] Realm,
 *                   sname [3] PrincipalName OPTIONAL, from [4] OPTIONAL, till [5] KerberosTime, rtime [6] OPTIONAL,
 *                   nonce [7] UInt32, etype [8] SEQUENCE OF Int32, addresses [9] HostAddresses OPTIONAL, ... }
 *   HostAddress ::= SEQUENCE { addr-type [0] Int32, address [1] OCTET STRING }   -- addr-type 20: NetBIOS (§7.5.3)
 */
function asReq(cname: Buffer | undefined, realm: string, addresses?: Buffer): Buffer {
  const body = t(0x30,
    t(0xa0, t(0x03, '0040810010')),
    ...(cname ? [t(0xa1, cname)] : []),
    t(0xa2, gstr(realm)),
    t(0xa3, principal(2, 'krbtgt', realm)),
    t(0xa5, t(0x18, Buffer.from('20370913024805Z'))),
    t(0xa7, int(0x12345678)),
    t(0xa8, t(0x30, int(18), int(23))),
    ...(addresses ? [t(0xa9, addresses)] : []));
  const padata = t(0x30, t(0x30, t(0xa1, int(128)), t(0xa2, t(0x04, '3005a0030101ff'))));
  return t(0x6a, t(0x30, t(0xa1, int(5)), t(0xa2, int(10)), t(0xa3, padata), t(0xa4, body)));
}

function ok(b: Uint8Array): KerberosMessage {
  const r = parseKerberosMessage(b);
  if (isKerberosError(r)) assert.fail(`unexpected anomaly ${counterName(r.anomaly)}`);
  return r;
}

test('parseKerberosMessage reads cname, realm and a NetBIOS address from an RFC 4120 AS-REQ', () => {
  const netbios = t(0x30, t(0x30, t(0xa0, int(20)), t(0xa1, t(0x04, Buffer.from('LAPTOP-7F3      ')))));
  const m = ok(asReq(principal(1, 'jsmith'), 'SCHOOL.EXAMPLE', netbios));
  assert.equal(m.msgType, 10);
  assert.deepEqual(m.cname, { nameType: 1, parts: ['jsmith'] });
  assert.equal(m.realm, 'SCHOOL.EXAMPLE');
  assert.deepEqual(m.netbiosNames, ['LAPTOP-7F3']);
  assert.equal(formatPrincipal(m.cname!, m.realm), 'jsmith@SCHOOL.EXAMPLE');
});

test('parseKerberosMessage accepts an AS-REQ without cname and refuses a malformed cname', () => {
  const m = ok(asReq(undefined, 'SCHOOL.EXAMPLE'));
  assert.equal(m.cname, undefined);
  const bad = parseKerberosMessage(asReq(t(0x30, t(0xa0, int(1))), 'X'));
  assert.ok(isKerberosError(bad) && counterName(bad.anomaly) === 'kerberos.malformed');
});

test('parseKerberosMessage reads the real MIT AS-REQ, KRB-ERROR and AS-REP of kerberos-as-req.pcap', () => {
  const d = replay(fixture('identity', 'kerberos-as-req.pcap')).datagrams;
  // tshark: frame 1 AS-REQ CNameString jsmith realm HARK.TEST; frame 2 KRB-ERROR error_code 25; frame 4 AS-REP.
  const req = ok(d[0].payload);
  assert.equal(req.msgType, 10);
  assert.deepEqual(req.cname, { nameType: 1, parts: ['jsmith'] });
  assert.equal(req.realm, 'HARK.TEST');
  const err = ok(d[1].payload);
  assert.equal(err.msgType, 30);
  assert.equal(err.errorCode, 25, 'KDC_ERR_PREAUTH_REQUIRED');
  assert.equal(err.realm, 'HARK.TEST');
  const rep = ok(d[3].payload);
  assert.equal(rep.msgType, 11);
  assert.deepEqual(rep.cname?.parts, ['jsmith']);
  assert.equal(rep.realm, 'HARK.TEST');
});

test('parseKerberosMessage refuses non-DER and unknown APPLICATION tags', () => {
  const a = parseKerberosMessage(Buffer.from('GET / HTTP/1.1\r\n'));
  assert.ok(isKerberosError(a) && counterName(a.anomaly) === 'kerberos.not_der');
  const b = parseKerberosMessage(t(0x63, t(0x30, int(1))));
  assert.ok(isKerberosError(b) && counterName(b.anomaly) === 'kerberos.unknown_message');
});

test('parseKerberosMessage never throws on any truncation or on seeded byte mutations', () => {
  const base = asReq(principal(1, 'jsmith'), 'SCHOOL.EXAMPLE', t(0x30, t(0x30, t(0xa0, int(20)), t(0xa1, t(0x04, Buffer.from('PC'))))));
  for (let n = 0; n <= base.length; n++) {
    const r = parseKerberosMessage(base.subarray(0, n));
    if (n < base.length) assert.ok(isKerberosError(r), `a cut at ${n} is not a message`);
  }
  let seed = 4120;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xffff;
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(base);
    for (let k = 0; k < 3; k++) b[rnd() % b.length] = rnd() & 255;
    parseKerberosMessage(b);
  }
});

/**
 * The three messages of the worked HTTP example in Eric Glass, "The NTLM Authentication Protocol and
 * Security Support Provider" (davenport.sourceforge.net/ntlm.html, section "NTLM HTTP Authentication"):
 *   Type 1: Authorization: NTLM TlRMTVNTUAABAAAABzIAAAYABgArAAAACwALACAAAABXT1JLU1RBVElPTkRPTUFJTg==
 *           flags 0x00003207, supplied domain "DOMAIN", workstation "WORKSTATION" (OEM)
 *   Type 2: WWW-Authenticate: NTLM TlRMTVNTUAACAAAADAAMADAAAAABAoEAASNFZ4mrze8AAAAAAAAAAGIAYgA8AAAARABPAE0AQQBJAE4AAgAMAEQA
 *           TwBNAEEASQBOAAEADABTAEUAUgBWAEUAUgAEABQAZABvAG0AYQBpAG4ALgBjAG8AbQADACIAcwBlAHIAdgBlAHIALgBkAG8AbQBhAGkAbgAuAGMAbwBtAAAAAAA=
 *           target "DOMAIN", flags 0x00810201, challenge 0x0123456789abcdef, target info: NetBIOS domain DOMAIN,
 *           server SERVER, DNS domain domain.com, DNS server server.domain.com
 *   Type 3: Authorization: NTLM TlRMTVNTUAADAAAAGAAYAGoAAAAYABgAggAAAAwADABAAAAACAAIAEwAAAAWABYAVAAAAAAAAACaAAAAAQIAAEQATwBN
 *           AEEASQBOAHUAcwBlAHIAVwBPAFIASwBTAFQAQQBUAEkATwBOAMM3zVy9RPyXgqZnr21CfG3mfCDC0+d8ViWpjBwx6BhHRmspst9GgPOZWPuMITqcxg==
 *           domain "DOMAIN", user "user", workstation "WORKSTATION" (Unicode), flags 0x00000201, 24-byte LM and NT responses
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { counterName } from '../../../sensor/events/counters.js';
import {
  isNtlmError, ntlmFromAuthorizationHeader, parseNtlmMessage, type NtlmAuthenticate, type NtlmChallenge, type NtlmNegotiate, type NtlmMessage,
} from '../../../sensor/app-layer/ntlm/parser.js';

const TYPE1 = 'NTLM TlRMTVNTUAABAAAABzIAAAYABgArAAAACwALACAAAABXT1JLU1RBVElPTkRPTUFJTg==';
const TYPE2 = 'NTLM TlRMTVNTUAACAAAADAAMADAAAAABAoEAASNFZ4mrze8AAAAAAAAAAGIAYgA8AAAARABPAE0AQQBJAE4AAgAMAEQATwBNAEEASQBOAAEADABTAEUAUgBWAEUAUgAEABQAZABvAG0AYQBpAG4ALgBjAG8AbQADACIAcwBlAHIAdgBlAHIALgBkAG8AbQBhAGkAbgAuAGMAbwBtAAAAAAA=';
const TYPE3 = 'NTLM TlRMTVNTUAADAAAAGAAYAGoAAAAYABgAggAAAAwADABAAAAACAAIAEwAAAAWABYAVAAAAAAAAACaAAAAAQIAAEQATwBNAEEASQBOAHUAcwBlAHIAVwBPAFIASwBTAFQAQQBUAEkATwBOAMM3zVy9RPyXgqZnr21CfG3mfCDC0+d8ViWpjBwx6BhHRmspst9GgPOZWPuMITqcxg==';

function parse(header: string): NtlmMessage {
  const bytes = ntlmFromAuthorizationHeader(header);
  assert.ok(bytes, 'NTLMSSP found');
  const r = parseNtlmMessage(bytes);
  if (isNtlmError(r)) assert.fail(`unexpected anomaly ${counterName(r.anomaly)}`);
  return r;
}

test('parseNtlmMessage decodes the davenport type 1: OEM domain and workstation', () => {
  const m = parse(TYPE1) as NtlmNegotiate;
  assert.equal(m.type, 1);
  assert.equal(m.flags, 0x00003207);
  assert.equal(m.domain, 'DOMAIN');
  assert.equal(m.workstation, 'WORKSTATION');
});

test('parseNtlmMessage decodes the davenport type 2: target, challenge and target info', () => {
  const m = parse(TYPE2) as NtlmChallenge;
  assert.equal(m.type, 2);
  assert.equal(m.flags, 0x00810201);
  assert.equal(m.targetName, 'DOMAIN');
  assert.equal(m.challenge, '0123456789abcdef');
  assert.equal(m.nbDomainName, 'DOMAIN');
  assert.equal(m.nbComputerName, 'SERVER');
  assert.equal(m.dnsDomainName, 'domain.com');
  assert.equal(m.dnsComputerName, 'server.domain.com');
});

test('parseNtlmMessage decodes the davenport type 3: user, domain and workstation in UTF-16LE', () => {
  const m = parse(TYPE3) as NtlmAuthenticate;
  assert.deepEqual({ ...m, anomalies: [...m.anomalies] }, {
    type: 3, flags: 0x00000201, unicode: true, user: 'user', domain: 'DOMAIN', workstation: 'WORKSTATION',
    anonymous: false, lmResponseLength: 24, ntResponseLength: 24, anomalies: [],
  });
});

/** A type 3 with OEM names and the given flags field (or none: the old 52-byte header). */
function oemType3(flags: number | undefined, user: string, domain: string, ws: string): Buffer {
  const headerLen = flags === undefined ? 52 : 64;
  const names = [domain, user, ws].map((s) => Buffer.from(s, 'latin1'));
  const h = Buffer.alloc(headerLen);
  Buffer.from('NTLMSSP\0', 'latin1').copy(h, 0);
  h.writeUInt32LE(3, 8);
  let off = headerLen;
  for (const [i, n] of names.entries()) {
    const at = 28 + 8 * i;
    h.writeUInt16LE(n.length, at);
    h.writeUInt16LE(n.length, at + 2);
    h.writeUInt32LE(off, at + 4);
    off += n.length;
  }
  for (const at of [12, 20]) h.writeUInt32LE(off, at + 4);
  if (flags !== undefined) h.writeUInt32LE(flags, 60);
  return Buffer.concat([h, ...names]);
}

test('parseNtlmMessage decodes OEM names when the Unicode flag is clear, and the short form without flags', () => {
  const a = parseNtlmMessage(oemType3(0x00000202, 'j\xf8rgen', 'SKOLE', 'PC-12'));
  assert.ok(!isNtlmError(a) && a.type === 3);
  assert.deepEqual([a.unicode, a.user, a.domain, a.workstation], [false, 'j\xf8rgen', 'SKOLE', 'PC-12']);
  const b = parseNtlmMessage(oemType3(undefined, 'bob', 'D', 'W'));
  assert.ok(!isNtlmError(b) && b.type === 3);
  assert.equal(b.flags, undefined);
  assert.equal(b.user, 'bob');
});

test('parseNtlmMessage marks an anonymous type 3 and flags a field outside the message', () => {
  const anon = parseNtlmMessage(oemType3(0x00000a01, '', '', ''));
  assert.ok(!isNtlmError(anon) && anon.type === 3 && anon.anonymous);
  const bad = oemType3(0x00000001, 'user', 'D', 'W');
  bad.writeUInt32LE(5000, 36 + 4);
  const r = parseNtlmMessage(bad);
  assert.ok(!isNtlmError(r) && r.type === 3);
  assert.equal(r.user, '');
  assert.deepEqual(r.anomalies.map(counterName), ['ntlm.field_out_of_bounds']);
});

test('parseNtlmMessage refuses a wrong signature, a short message and an unknown type', () => {
  const cases: [Buffer, string][] = [
    [Buffer.from('NTLMSSQ\0\x03\0\0\0', 'latin1'), 'ntlm.bad_signature'],
    [Buffer.from('NTLMSSP\0\x03\0\0\0', 'latin1'), 'ntlm.too_short'],
    [Buffer.concat([Buffer.from('NTLMSSP\0\x04\0\0\0', 'latin1'), Buffer.alloc(60)]), 'ntlm.unknown_type'],
  ];
  for (const [b, code] of cases) {
    const r = parseNtlmMessage(b);
    assert.ok(isNtlmError(r) && counterName(r.anomaly) === code, code);
  }
});

test('ntlmFromAuthorizationHeader finds NTLMSSP inside a SPNEGO Negotiate token; Kerberos and Basic give nothing', () => {
  const ntlm = Buffer.from(TYPE3.slice(5), 'base64');
  const der = (tag: number, v: Buffer): Buffer => Buffer.concat([Buffer.from([tag, 0x81, v.length]), v]);
  // NegTokenResp ::= [1] SEQUENCE { responseToken [2] OCTET STRING } (RFC 4178 §4.2.2)
  const spnego = der(0xa1, der(0x30, der(0xa2, der(0x04, ntlm))));
  const inner = ntlmFromAuthorizationHeader(`Negotiate ${spnego.toString('base64')}`);
  assert.ok(inner);
  const m = parseNtlmMessage(inner);
  assert.ok(!isNtlmError(m) && m.type === 3 && m.user === 'user');
  assert.equal(ntlmFromAuthorizationHeader('Negotiate YIIGhgYJKoZIhvcSAQICAQBuggZ1MIIGcaADAgEF'), undefined, 'Kerberos AP-REQ');
  assert.equal(ntlmFromAuthorizationHeader('Basic dXNlcjpwYXNz'), undefined);
  assert.equal(ntlmFromAuthorizationHeader('NTLM not*base64'), undefined);
  assert.equal(ntlmFromAuthorizationHeader('NTLM'), undefined);
  assert.ok(ntlmFromAuthorizationHeader(`ntlm   ${TYPE3.slice(5)}  `), 'scheme case-insensitive, spaces trimmed');
});

test('parseNtlmMessage never throws on any truncation or on seeded byte mutations', () => {
  for (const h of [TYPE1, TYPE2, TYPE3]) {
    const base = Buffer.from(h.slice(5), 'base64');
    for (let n = 0; n <= base.length; n++) parseNtlmMessage(base.subarray(0, n));
    let seed = base.length;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xffff;
    for (let i = 0; i < 1500; i++) {
      const b = Buffer.from(base);
      for (let k = 0; k < 3; k++) b[8 + (rnd() % (b.length - 8))] = rnd() & 255;
      parseNtlmMessage(b);
    }
  }
});

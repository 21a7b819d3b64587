import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DNS_ANOMALY, DNS_ANOMALY_CODES, MAX_DNS_POINTER_JUMPS, MAX_DNS_RAW_RDATA_BYTES, MAX_DNS_RECORDS, checkDnsName, dnsRcodeName, dnsTypeName,
  formatIpv6Bytes, isDnsParseError, parseDnsMessage, reverseNameToAddress, type DnsMessage, type DnsParseError, type DnsParseResult,
} from '../../../sensor/app-layer/dns/parser.js';
import {
  alpnValue, header, ipv4, ipv6Full, labelsThenPtr, message, name, ptr, question, rr, svcParam, u16, u32,
} from './dns-bytes.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function ok(r: DnsParseResult): DnsMessage {
  if (isDnsParseError(r)) assert.fail(`expected a message, got ${r.error} at ${r.offset}`);
  return r;
}

function err(r: DnsParseResult): DnsParseError {
  if (!isDnsParseError(r)) assert.fail('expected an error, got a message');
  return r;
}

// arkime-dns-udp.pcap frame 2 (tcpdump -X, UDP payload from 0x001c):
// 10.2.95.39.domain > 10.180.156.141.62563: 57401 2/4/4 CNAME github.com., A 192.30.252.128 (212)
//   0x0010:  ....  ....  ....  ....  ....  ....  e039 8180  .....5.c.....9..
//   0x0020:  0001 0002 0004 0004 0377 7777 0667 6974  .........www.git
//   0x0030:  6875 6203 636f 6d00 0001 0001 c00c 0005  hub.com.........
//   0x0040:  0001 0000 07bc 0002 c010 c010 0001 0001  ................
//   0x0050:  0000 0004 0004 c01e fc80 c010 0002 0001  ................
//   0x0060:  0000 0148 0014 036e 7333 0370 3136 0664  ...H...ns3.p16.d
//   0x0070:  796e 6563 7403 6e65 7400 c010 0002 0001  ynect.net.......
//   0x0080:  0000 0148 0006 036e 7332 c04e c010 0002  ...H...ns2.N....
//   0x0090:  0001 0000 0148 0006 036e 7334 c04e c010  .....H...ns4.N..
//   0x00a0:  0002 0001 0000 0148 0006 036e 7331 c04e  .......H...ns1.N
//   0x00b0:  c06a 0001 0001 0000 0e10 0004 0a02 5f0c  .j............_.
//   0x00c0:  c04a 0001 0001 0000 0e10 0004 0a02 5f0c  .J............_.
//   0x00d0:  c08e 0001 0001 0000 0e10 0004 0a02 5f0c  .............._.
//   0x00e0:  c07c 0001 0001 0000 0e10 0004 0a02 5f0c  .|............_.
const GITHUB_RESPONSE = hex(`
  e03981800001000200040004037777770667697468756203636f6d0000010001c00c00050001000007bc0002c010c010000100010000
  00040004c01efc80c01000020001000001480014036e7333037031360664796e656374036e657400c01000020001000001480006036e
  7332c04ec01000020001000001480006036e7334c04ec01000020001000001480006036e7331c04ec06a0001000100000e1000040a02
  5f0cc04a0001000100000e1000040a025f0cc08e0001000100000e1000040a025f0cc07c0001000100000e1000040a025f0c`);

test('parseDnsMessage decodes a real response: header, question, CNAME and A answers, NS authority, glue', () => {
  const m = ok(parseDnsMessage(GITHUB_RESPONSE));
  assert.equal(m.id, 0xe039);
  assert.equal(m.response, true);
  assert.equal(m.opcode, 0);
  assert.deepEqual([m.aa, m.tc, m.rd, m.ra, m.ad, m.cd], [false, false, true, true, false, false]);
  assert.equal(m.rcode, 0);
  assert.deepEqual(m.questions, [{ name: 'www.github.com', lname: 'www.github.com', type: 1, class: 1 }]);
  assert.equal(m.answers.length, 2);
  assert.deepEqual(m.answers[0], { name: 'www.github.com', lname: 'www.github.com', type: 5, class: 1, ttl: 1980, rdata: { kind: 'name', target: 'github.com', ltarget: 'github.com' } });
  assert.deepEqual(m.answers[1], { name: 'github.com', lname: 'github.com', type: 1, class: 1, ttl: 4, rdata: { kind: 'a', address: '192.30.252.128' } });
  assert.deepEqual(m.authority.map((r) => (r.rdata.kind === 'name' ? r.rdata.target : '?')), ['ns3.p16.dynect.net', 'ns2.p16.dynect.net', 'ns4.p16.dynect.net', 'ns1.p16.dynect.net']);
  assert.deepEqual(m.additional.map((r) => [r.name, r.rdata.kind === 'a' ? r.rdata.address : '?']), [
    // tshark -V agrees: ns2, ns3, ns1, ns4.
    ['ns2.p16.dynect.net', '10.2.95.12'], ['ns3.p16.dynect.net', '10.2.95.12'], ['ns1.p16.dynect.net', '10.2.95.12'], ['ns4.p16.dynect.net', '10.2.95.12'],
  ]);
  assert.deepEqual(m.anomalies, []);
  assert.equal(m.length, 212);
  assert.equal(m.edns, undefined);
});

// arkime-dns-udp.pcap frame 5: 51878 [1au] ANY? 10.100.10.10.in-addr.arpa. with the CD bit and an OPT record
test('parseDnsMessage reads the EDNS OPT record of a query', () => {
  const m = ok(parseDnsMessage(hex('caa6001000010000000000010231300331303002313002313007696e2d6164647204617270610000ff00010000290200000080000000')));
  assert.equal(m.cd, true);
  assert.equal(m.rd, false);
  assert.deepEqual(m.questions, [{ name: '10.100.10.10.in-addr.arpa', lname: '10.100.10.10.in-addr.arpa', type: 255, class: 1 }]);
  assert.deepEqual(m.edns, { udpPayloadSize: 512, version: 0, dnssecOk: true, options: [] });
  assert.equal(m.additional[0].rdata.kind, 'opt');
});

test('parseDnsMessage keeps the name as sent and lower-cases a copy for matching', () => {
  const m = ok(parseDnsMessage(message({}, { qd: [question('WwW.GitHub.COM', 1)] })));
  assert.equal(m.questions[0].name, 'WwW.GitHub.COM');
  assert.equal(m.questions[0].lname, 'www.github.com');
});

test('parseDnsMessage escapes dots, backslashes and unprintable bytes inside labels (RFC 1035 §5.1)', () => {
  const label = Buffer.from([1, 0x41, 0x2e, 0x20, 0x5c, 0xff]); // "A. \<ff>"
  const qname = Buffer.concat([Buffer.from([label.length]), label, name('example')]);
  const m = ok(parseDnsMessage(message({}, { qd: [question(qname, 1)] })));
  assert.equal(m.questions[0].name, '\\001A\\.\\032\\\\\\255.example');
  assert.equal(m.questions[0].lname, '\\001a\\.\\032\\\\\\255.example');
});

test('parseDnsMessage decodes repeated pointer names per message (nothing carried over between messages)', () => {
  const a = message({ flags: 0x8180 }, { qd: [question('a.example', 1)], an: [rr(ptr(12), 1, ipv4('192.0.2.1')), rr(ptr(12), 1, ipv4('192.0.2.2'))] });
  const b = message({ flags: 0x8180 }, { qd: [question('B.example', 1)], an: [rr(ptr(12), 1, ipv4('192.0.2.3')), rr(ptr(14), 1, ipv4('192.0.2.4'))] });
  assert.deepEqual(ok(parseDnsMessage(a)).answers.map((r) => r.name), ['a.example', 'a.example']);
  const mb = ok(parseDnsMessage(b));
  assert.deepEqual(mb.answers.map((r) => [r.name, r.lname]), [['B.example', 'b.example'], ['example', 'example']]);
});

test('parseDnsMessage gives the root name as "."', () => {
  const m = ok(parseDnsMessage(message({}, { qd: [question('.', 2)] })));
  assert.equal(m.questions[0].name, '.');
});

test('parseDnsMessage decodes AAAA, PTR, NS, MX, TXT, SOA and SRV rdata', () => {
  const q = question('example.com', 255);
  const soa = Buffer.concat([name('ns1.example.com'), name('hostmaster.example.com'), u32(2024010101), u32(7200), u32(3600), u32(1209600), u32(300)]);
  const m = ok(parseDnsMessage(message({ flags: 0x8180 }, {
    qd: [q],
    an: [
      rr(ptr(12), 28, ipv6Full('2001:0db8:0000:0000:0000:ff00:0042:8329')),
      rr('34.216.184.93.in-addr.arpa', 12, name('Host.Example.com')),
      rr(ptr(12), 2, labelsThenPtr('ns1', 12)),
      rr(ptr(12), 15, Buffer.concat([u16(10), labelsThenPtr('mail', 12)])),
      rr(ptr(12), 16, Buffer.from('\x05hello\x00\x0bv=spf1 -all', 'latin1')),
      rr(ptr(12), 6, soa),
      rr('_sip._tcp.example.com', 33, Buffer.concat([u16(10), u16(60), u16(5060), name('sip.example.com')])),
    ],
  })));
  assert.deepEqual(m.answers.map((r) => r.rdata), [
    { kind: 'aaaa', address: '2001:db8::ff00:42:8329' },
    { kind: 'name', target: 'Host.Example.com', ltarget: 'host.example.com' },
    { kind: 'name', target: 'ns1.example.com', ltarget: 'ns1.example.com' },
    { kind: 'mx', preference: 10, exchange: 'mail.example.com', lexchange: 'mail.example.com' },
    { kind: 'txt', strings: ['hello', '', 'v=spf1 -all'] },
    { kind: 'soa', mname: 'ns1.example.com', rname: 'hostmaster.example.com', serial: 2024010101, refresh: 7200, retry: 3600, expire: 1209600, minimum: 300 },
    { kind: 'srv', priority: 10, weight: 60, port: 5060, target: 'sip.example.com', ltarget: 'sip.example.com' },
  ]);
  assert.equal(m.answers[2].name, 'example.com');
  assert.deepEqual(m.anomalies, []);
});

test('parseDnsMessage decodes HTTPS and SVCB parameters: alpn, port, ipv4hint, ech, ipv6hint, mandatory', () => {
  const params = Buffer.concat([
    svcParam(0, u16(1)), // mandatory: alpn
    svcParam(1, alpnValue('h3', 'h2')),
    svcParam(2, Buffer.alloc(0)), // no-default-alpn
    svcParam(3, u16(8443)),
    svcParam(4, Buffer.concat([ipv4('162.159.135.79'), ipv4('162.159.136.79')])),
    svcParam(5, Buffer.from('0045fe0d0041', 'hex')), // an ECHConfigList (opaque here)
    svcParam(6, ipv6Full('2606:4700:0007:0000:0000:0000:a29f:874f')),
    svcParam(65000, Buffer.from('x')), // unknown key: listed, not decoded
  ]);
  const https = rr('crypto.cloudflare.com', 65, Buffer.concat([u16(1), name('.'), params]));
  const svcb = rr('_dns.resolver.arpa', 64, Buffer.concat([u16(1), name('dns.google'), svcParam(1, alpnValue('dot'))]));
  const alias = rr('example.com', 65, Buffer.concat([u16(0), name('cdn.example.net')]));
  const m = ok(parseDnsMessage(message({ flags: 0x8180 }, { an: [https, svcb, alias] })));
  assert.deepEqual(m.answers[0].rdata, {
    kind: 'svcb', priority: 1, target: '.', ltarget: '.', alpn: ['h3', 'h2'], noDefaultAlpn: true, port: 8443,
    ipv4hint: ['162.159.135.79', '162.159.136.79'], ipv6hint: ['2606:4700:7::a29f:874f'], ech: true, mandatory: [1],
    keys: [0, 1, 2, 3, 4, 5, 6, 65000],
  });
  assert.deepEqual(m.answers[1].rdata, {
    kind: 'svcb', priority: 1, target: 'dns.google', ltarget: 'dns.google', alpn: ['dot'], noDefaultAlpn: false, port: undefined,
    ipv4hint: [], ipv6hint: [], ech: false, mandatory: [], keys: [1],
  });
  assert.equal(m.answers[2].rdata.kind === 'svcb' && m.answers[2].rdata.priority, 0);
  assert.equal(m.answers[2].rdata.kind === 'svcb' && m.answers[2].rdata.target, 'cdn.example.net');
});

test('parseDnsMessage keeps an SVCB record with keys out of order as raw, flagged svcb_params', () => {
  const bad = rr('example.com', 65, Buffer.concat([u16(1), name('.'), svcParam(3, u16(443)), svcParam(1, alpnValue('h2'))]));
  const m = ok(parseDnsMessage(message({ flags: 0x8180 }, { an: [bad] })));
  assert.equal(m.answers[0].rdata.kind, 'raw');
  assert.equal(m.answers[0].rdata.kind === 'raw' && m.answers[0].rdata.malformed, DNS_ANOMALY.SVCB_PARAMS);
  assert.deepEqual(m.anomalies, [DNS_ANOMALY.SVCB_PARAMS]);
});

test('parseDnsMessage flags an SVCB parameter that overruns the rdata', () => {
  const rdata = Buffer.concat([u16(1), name('.'), u16(1), u16(10), Buffer.from([2, 0x68])]);
  const m = ok(parseDnsMessage(message({ flags: 0x8180 }, { an: [rr('example.com', 65, rdata)] })));
  assert.deepEqual(m.anomalies, [DNS_ANOMALY.SVCB_PARAMS]);
});

test('parseDnsMessage gives an unknown type as raw bytes, cut at MAX_DNS_RAW_RDATA_BYTES', () => {
  const big = Buffer.alloc(MAX_DNS_RAW_RDATA_BYTES + 100, 7);
  const m = ok(parseDnsMessage(message({ flags: 0x8180 }, { an: [rr('example.com', 48, big), rr('example.com', 99, Buffer.from('abc'))] })));
  const r0 = m.answers[0].rdata;
  const r1 = m.answers[1].rdata;
  assert.ok(r0.kind === 'raw' && r1.kind === 'raw');
  assert.equal(r0.length, MAX_DNS_RAW_RDATA_BYTES + 100);
  assert.equal(r0.bytes.length, MAX_DNS_RAW_RDATA_BYTES);
  assert.equal(r0.malformed, undefined);
  assert.deepEqual([...r1.bytes], [0x61, 0x62, 0x63]);
  assert.deepEqual(m.anomalies, []);
});

test('parseDnsMessage copies raw rdata (the input buffer may be reused)', () => {
  const bytes = message({ flags: 0x8180 }, { an: [rr('example.com', 99, Buffer.from('abc'))] });
  const m = ok(parseDnsMessage(bytes));
  bytes.fill(0);
  assert.deepEqual(m.answers[0].rdata.kind === 'raw' && [...m.answers[0].rdata.bytes], [0x61, 0x62, 0x63]);
});

test('parseDnsMessage combines the EDNS extended rcode with the header rcode (RFC 6891 §6.1.3)', () => {
  // OPT ttl: extended rcode 1, version 0, DO clear -> rcode (1 << 4) | 0 = 16, BADVERS.
  const opt = rr('.', 41, Buffer.alloc(0), { klass: 1232, ttl: 0x01000000 });
  const m = ok(parseDnsMessage(message({ flags: 0x8180 }, { qd: [question('example.com', 1)], ar: [opt] })));
  assert.equal(m.rcode, 16);
  assert.equal(dnsRcodeName(m.rcode), 'BADVERS');
  assert.deepEqual(m.edns, { udpPayloadSize: 1232, version: 0, dnssecOk: false, options: [] });
});

test('parseDnsMessage flags an OPT record outside the additional section', () => {
  const opt = rr('.', 41, Buffer.alloc(0), { klass: 1232 });
  const m = ok(parseDnsMessage(message({ flags: 0x8180 }, { an: [opt] })));
  assert.deepEqual(m.anomalies, [DNS_ANOMALY.OPT_INVALID]);
  assert.equal(m.edns, undefined);
});

test('parseDnsMessage flags a second OPT record', () => {
  const opt = rr('.', 41, Buffer.concat([u16(10), u16(8), Buffer.alloc(8)]), { klass: 1232 });
  const m = ok(parseDnsMessage(message({ flags: 0x8180 }, { ar: [opt, opt] })));
  assert.deepEqual(m.anomalies, [DNS_ANOMALY.OPT_INVALID]);
  assert.deepEqual(m.edns?.options, [10]);
});

test('parseDnsMessage flags bytes after the last record without failing', () => {
  const bytes = Buffer.concat([message({}, { qd: [question('example.com', 1)] }), Buffer.from([0, 0, 0])]);
  const m = ok(parseDnsMessage(bytes));
  assert.deepEqual(m.anomalies, [DNS_ANOMALY.TRAILING_BYTES]);
  assert.equal(m.questions[0].name, 'example.com');
});

// ---------------------------------------------------------------------------------------------
// Malformed messages: one test per code

test('parseDnsMessage refuses fewer than 12 bytes as header_truncated', () => {
  const e = err(parseDnsMessage(hex('e039 0100 0001 0000 0000')));
  assert.equal(e.error, DNS_ANOMALY.HEADER_TRUNCATED);
  assert.equal(e.header, undefined);
  assert.equal(err(parseDnsMessage(new Uint8Array(0))).error, DNS_ANOMALY.HEADER_TRUNCATED);
});

test('parseDnsMessage refuses counts the message cannot hold as count_overflow, before decoding', () => {
  // e039 0100: query; qd 1, an 65535: 65535 records of at least 11 bytes cannot fit in 29 bytes.
  const bytes = hex('e039 0100 0001 ffff 0000 0000 0365 7861 6d70 6c65 0363 6f6d 00 0001 0001');
  const e = err(parseDnsMessage(bytes));
  assert.equal(e.error, DNS_ANOMALY.COUNT_OVERFLOW);
  assert.equal(e.offset, 4);
  assert.deepEqual(e.header, { id: 0xe039, response: false, opcode: 0, rcode: 0 });
});

test('parseDnsMessage reports a message ending between records as count_overflow, keeping the question', () => {
  // an = 2 but only one A record follows the question.
  const one = message({ flags: 0x8180 }, { qd: [question('www.example.com', 1)], an: [rr(ptr(12), 1, ipv4('192.0.2.1'))] });
  one.writeUInt16BE(2, 6);
  const e = err(parseDnsMessage(one));
  assert.equal(e.error, DNS_ANOMALY.COUNT_OVERFLOW);
  assert.equal(e.offset, one.length);
  assert.deepEqual(e.questions.map((q) => q.name), ['www.example.com']);
  assert.equal(e.header?.response, true);
});

test('parseDnsMessage reports a question cut inside its type/class as question_truncated', () => {
  const bytes = Buffer.concat([header({ qd: 1 }), name('example.com'), u16(1)]);
  const e = err(parseDnsMessage(bytes));
  assert.equal(e.error, DNS_ANOMALY.QUESTION_TRUNCATED);
  assert.equal(e.offset, 12 + 13);
});

test('parseDnsMessage reports a record cut inside its fixed fields as record_truncated', () => {
  const full = message({ flags: 0x8180 }, { qd: [question('www.example.com', 1)], an: [rr(ptr(12), 1, ipv4('192.0.2.1'))] });
  const e = err(parseDnsMessage(full.subarray(0, full.length - 8)));
  assert.equal(e.error, DNS_ANOMALY.RECORD_TRUNCATED);
});

test('parseDnsMessage reports rdlength past the end of the message as rdata_truncated', () => {
  // A record claiming 4 bytes of rdata with 2 present.
  const full = message({ flags: 0x8180 }, { qd: [question('www.example.com', 1)], an: [rr(ptr(12), 1, ipv4('192.0.2.1'))] });
  const e = err(parseDnsMessage(full.subarray(0, full.length - 2)));
  assert.equal(e.error, DNS_ANOMALY.RDATA_TRUNCATED);
  assert.equal(e.offset, full.length - 6);
});

test('parseDnsMessage reports a label running past the end as name_truncated', () => {
  // 07 "exam": a 7-byte label with 4 bytes left (17 bytes in all: enough for the counts check).
  const bytes = Buffer.concat([header({ qd: 1 }), Buffer.from([7]), Buffer.from('exam')]);
  const e = err(parseDnsMessage(bytes));
  assert.equal(e.error, DNS_ANOMALY.NAME_TRUNCATED);
  assert.equal(e.offset, 12);
});

test('parseDnsMessage refuses a label length of 64-191 (reserved label types) as label_too_long', () => {
  // 0x41 = 65: the top bits 01 are the obsolete extended label type (RFC 6891 §5).
  const bytes = Buffer.concat([header({ qd: 1 }), Buffer.from([0x41]), Buffer.alloc(65, 0x61), Buffer.from([0]), u16(1), u16(1)]);
  const e = err(parseDnsMessage(bytes));
  assert.equal(e.error, DNS_ANOMALY.LABEL_TOO_LONG);
  assert.equal(e.offset, 12);
  const b80 = Buffer.concat([header({ qd: 1 }), Buffer.from([0x80, 0x61, 0]), u16(1), u16(1)]);
  assert.equal(err(parseDnsMessage(b80)).error, DNS_ANOMALY.LABEL_TOO_LONG);
});

test('parseDnsMessage refuses a name over 255 octets as name_too_long', () => {
  const label = 'a'.repeat(63);
  const qname = name([label, label, label, label].join('.')); // 4 x 64 + 1 = 257 octets
  const e = err(parseDnsMessage(message({}, { qd: [question(qname, 1)] })));
  assert.equal(e.error, DNS_ANOMALY.NAME_TOO_LONG);
  // 255 exactly is fine: 3 x 64 + 62 + 1.
  const fits = name([label, label, label, 'a'.repeat(61)].join('.'));
  assert.equal(fits.length, 255);
  assert.equal(ok(parseDnsMessage(message({}, { qd: [question(fits, 1)] }))).questions[0].name.length, 253);
});

test('parseDnsMessage refuses a name that grows past 255 octets through pointers', () => {
  // Question: 63+63+63 labels (193 octets incl. root). Answer owner: 63-octet label then a pointer to it.
  const label = 'b'.repeat(63);
  const q = question([label, label, label].join('.'), 1);
  const owner = labelsThenPtr('c'.repeat(63), 12);
  const e = err(parseDnsMessage(message({ flags: 0x8180 }, { qd: [q], an: [rr(owner, 1, ipv4('192.0.2.1'))] })));
  assert.equal(e.error, DNS_ANOMALY.NAME_TOO_LONG);
});

test('parseDnsMessage refuses a pointer to a later offset as pointer_forward', () => {
  // Question name at 12 is a pointer to 0x20, past itself.
  const bytes = Buffer.concat([header({ qd: 1 }), ptr(0x20), u16(1), u16(1), Buffer.alloc(20)]);
  const e = err(parseDnsMessage(bytes));
  assert.equal(e.error, DNS_ANOMALY.POINTER_FORWARD);
  assert.equal(e.offset, 12);
});

test('parseDnsMessage refuses a pointer to itself as pointer_loop', () => {
  // c0 0c at offset 12: a one-pointer loop.
  const bytes = hex('1234 0100 0001 0000 0000 0000 c00c 0001 0001');
  const e = err(parseDnsMessage(bytes));
  assert.equal(e.error, DNS_ANOMALY.POINTER_LOOP);
});

test('parseDnsMessage refuses a pointer back into the same name as pointer_loop', () => {
  // 01 61 c0 0c at offset 12: "a" then back to 12 -> a.a.a.a... forever.
  const bytes = hex('1234 0100 0001 0000 0000 0000 0161 c00c 0001 0001');
  const e = err(parseDnsMessage(bytes));
  assert.equal(e.error, DNS_ANOMALY.POINTER_LOOP);
  assert.equal(e.offset, 14);
});

test('parseDnsMessage refuses a jump into a region whose pointer turns back on it as pointer_loop', () => {
  // Question x.example at 12..26. Answer 1 (owner "." at 27, fixed fields 28..37) carries, as opaque rdata
  // at 38, the bytes 01 7a c0 26: "z" then a pointer to 38. Answer 2's owner (at 42) points to 38: every
  // pointer points backwards, yet following them would read "z.z.z..." forever.
  const q = question('x.example', 1);
  const region = Buffer.from([0x01, 0x7a, 0xc0, 38]);
  const bytes = message({ flags: 0x8180 }, { qd: [q], an: [rr('.', 99, region), rr(ptr(38), 1, ipv4('192.0.2.1'))] });
  const e = err(parseDnsMessage(bytes));
  assert.equal(e.error, DNS_ANOMALY.POINTER_LOOP);
  assert.equal(e.offset, 40);
});

test(`parseDnsMessage refuses more than MAX_DNS_POINTER_JUMPS (${MAX_DNS_POINTER_JUMPS}) pointers in a name`, () => {
  // Question: root name at 12. Then an unknown-type record whose rdata is a chain of pointers, each to the
  // previous one (the first to 12), then a record whose owner points at the last link.
  function build(links: number): Buffer {
    const q = question('.', 1); // 12..16
    const rdataStart = 17 + 1 + 10; // owner "." (1 byte) + fixed fields
    const chain: Buffer[] = [];
    for (let i = 0; i < links; i++) chain.push(ptr(i === 0 ? 12 : rdataStart + 2 * (i - 1)));
    const holder = rr('.', 99, Buffer.concat(chain));
    const last = rdataStart + 2 * (links - 1);
    return message({ flags: 0x8180 }, { qd: [q], an: [holder, rr(ptr(last), 1, ipv4('192.0.2.1'))] });
  }
  // The owner's own pointer is one jump: links + 1 in all.
  const fits = ok(parseDnsMessage(build(MAX_DNS_POINTER_JUMPS - 1)));
  assert.equal(fits.answers[1].name, '.');
  const e = err(parseDnsMessage(build(MAX_DNS_POINTER_JUMPS)));
  assert.equal(e.error, DNS_ANOMALY.TOO_MANY_POINTERS);
});

test('parseDnsMessage keeps a record whose rdata does not fit its type as raw, flagged rdata_length', () => {
  const m = ok(parseDnsMessage(message({ flags: 0x8180 }, {
    qd: [question('example.com', 1)],
    an: [
      rr(ptr(12), 1, Buffer.from([192, 0, 2])), // A with 3 bytes
      rr(ptr(12), 28, Buffer.alloc(4)), // AAAA with 4 bytes
      rr(ptr(12), 5, Buffer.concat([name('a.example'), Buffer.from([0])])), // CNAME with a byte after the name
      rr(ptr(12), 16, Buffer.from([5, 0x61])), // TXT string longer than the rdata
      rr(ptr(12), 1, ipv4('192.0.2.9')),
    ],
  })));
  assert.deepEqual(m.answers.map((r) => r.rdata.kind), ['raw', 'raw', 'raw', 'raw', 'a']);
  assert.deepEqual(m.anomalies, [DNS_ANOMALY.RDATA_LENGTH, DNS_ANOMALY.RDATA_LENGTH, DNS_ANOMALY.RDATA_LENGTH, DNS_ANOMALY.RDATA_LENGTH]);
});

test('parseDnsMessage flags a CNAME whose name runs past rdlength as rdata_length', () => {
  // rdlength 4 cuts "06 target ..." after "tar"; the rest of the name is left as trailing bytes.
  const m = ok(parseDnsMessage(message({ flags: 0x8180 }, { qd: [question('example.com', 1)], an: [rr(ptr(12), 5, name('target.example'), { rdlength: 4 })] })));
  assert.equal(m.answers[0].rdata.kind === 'raw' && m.answers[0].rdata.malformed, DNS_ANOMALY.RDATA_LENGTH);
  assert.deepEqual(m.anomalies, [DNS_ANOMALY.RDATA_LENGTH, DNS_ANOMALY.TRAILING_BYTES]);
});

test('parseDnsMessage keeps a CNAME whose target loops as raw, flagged pointer_loop', () => {
  // Question example.com at 12..28; answer at 29 (owner pointer, fixed fields), rdata at 41: "z" then a
  // pointer to 41.
  const bytes = message({ flags: 0x8180 }, { qd: [question('example.com', 1)], an: [rr(ptr(12), 5, labelsThenPtr('z', 41))] });
  const m = ok(parseDnsMessage(bytes));
  assert.equal(m.answers[0].rdata.kind === 'raw' && m.answers[0].rdata.malformed, DNS_ANOMALY.POINTER_LOOP);
  assert.deepEqual(m.anomalies, [DNS_ANOMALY.POINTER_LOOP]);
});

test(`parseDnsMessage decodes at most MAX_DNS_RECORDS (${MAX_DNS_RECORDS}) records and says so`, () => {
  const records: Buffer[] = [];
  for (let i = 0; i < MAX_DNS_RECORDS + 5; i++) records.push(rr(ptr(12), 1, ipv4(`10.0.${i >> 8}.${i & 255}`)));
  const m = ok(parseDnsMessage(message({ flags: 0x8180 }, { qd: [question('many.example', 1)], an: records })));
  assert.equal(m.answers.length, MAX_DNS_RECORDS);
  assert.equal(m.recordsTruncated, true);
  assert.deepEqual(m.anomalies, []);
  const under = ok(parseDnsMessage(message({ flags: 0x8180 }, { qd: [question('many.example', 1)], an: records.slice(0, 10) })));
  assert.equal(under.recordsTruncated, false);
});

test('parseDnsMessage never throws on any truncation of a real response', () => {
  for (let cut = 0; cut < GITHUB_RESPONSE.length; cut++) {
    const r = parseDnsMessage(GITHUB_RESPONSE.subarray(0, cut));
    assert.ok(isDnsParseError(r), `cut at ${cut} decoded`);
  }
});

test('parseDnsMessage never throws on seeded random mutations of a real response', () => {
  let seed = 12345;
  const rnd = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  let errors = 0;
  for (let i = 0; i < 20000; i++) {
    const b = Buffer.from(GITHUB_RESPONSE);
    const flips = 1 + Math.floor(rnd() * 4);
    for (let f = 0; f < flips; f++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    if (isDnsParseError(parseDnsMessage(b))) errors++;
  }
  assert.ok(errors > 0 && errors < 20000, `some mutations decode, some do not (${errors})`);
});

test('checkDnsName tells a complete, a cut and a malformed name apart', () => {
  const q = Buffer.concat([header({ qd: 1 }), name('example.com')]);
  assert.equal(checkDnsName(q, 12), q.length);
  assert.equal(checkDnsName(q.subarray(0, 16), 12), -1);
  assert.equal(checkDnsName(Buffer.concat([header({}), Buffer.from([0x41, 0])]), 12), -2);
});

test('reverseNameToAddress turns full in-addr.arpa and ip6.arpa names into addresses', () => {
  assert.equal(reverseNameToAddress('34.216.184.93.in-addr.arpa'), '93.184.216.34');
  assert.equal(reverseNameToAddress('10.100.10.10.in-addr.arpa'), '10.10.100.10');
  assert.equal(reverseNameToAddress('b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa'), '4321:0:1:2:3:4:567:89ab');
  assert.equal(reverseNameToAddress('1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa'), '::1');
  assert.equal(reverseNameToAddress('10.in-addr.arpa'), undefined);
  assert.equal(reverseNameToAddress('256.1.1.1.in-addr.arpa'), undefined);
  assert.equal(reverseNameToAddress('01.1.1.1.in-addr.arpa'), undefined);
  assert.equal(reverseNameToAddress('g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa'), undefined);
  assert.equal(reverseNameToAddress('example.com'), undefined);
});

test('formatIpv6Bytes compresses the longest zero run, leftmost on a tie, never a single group (RFC 5952)', () => {
  assert.equal(formatIpv6Bytes(ipv6Full('2001:0db8:0000:0000:0001:0000:0000:0001'), 0), '2001:db8::1:0:0:1');
  assert.equal(formatIpv6Bytes(ipv6Full('2001:0db8:0000:0001:0001:0001:0001:0001'), 0), '2001:db8:0:1:1:1:1:1');
  assert.equal(formatIpv6Bytes(ipv6Full('0000:0000:0000:0000:0000:0000:0000:0000'), 0), '::');
  assert.equal(formatIpv6Bytes(ipv6Full('fe80:0000:0000:0000:0000:0000:0000:0000'), 0), 'fe80::');
});

test('dnsTypeName and dnsRcodeName name known codes and spell out unknown ones', () => {
  assert.equal(dnsTypeName(65), 'HTTPS');
  assert.equal(dnsTypeName(12), 'PTR');
  assert.equal(dnsTypeName(4242), 'TYPE4242');
  assert.equal(dnsRcodeName(3), 'NXDOMAIN');
  assert.equal(dnsRcodeName(23), 'RCODE23');
});

test('DNS_ANOMALY_CODES lists exactly the codes tested above (a new code needs a test here)', () => {
  assert.deepEqual([...DNS_ANOMALY_CODES].sort(), [
    'dns.malformed.count_overflow', 'dns.malformed.header_truncated', 'dns.malformed.label_too_long', 'dns.malformed.name_too_long',
    'dns.malformed.name_truncated', 'dns.malformed.opt', 'dns.malformed.pointer_forward', 'dns.malformed.pointer_loop',
    'dns.malformed.question_truncated', 'dns.malformed.rdata_length', 'dns.malformed.rdata_truncated', 'dns.malformed.record_truncated',
    'dns.malformed.svcb_params', 'dns.malformed.too_many_pointers', 'dns.trailing_bytes',
  ]);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counters } from '../../sensor/events/counters.js';
import { applyStaticMap, loadStaticMap, parseStaticMap } from '../../sensor/identity/static-map.js';
import { IdentityTable } from '../../sensor/identity/table.js';
import { withTempFile } from '../helpers/pcap-writer.js';

const CSV = [
  'ip or mac,hostname,user',
  '10.4.7.23,LAPTOP-7F3,jsmith',
  '# a comment',
  '',
  '2001:DB8::17,,alice',
  'AA-BB-CC-DD-EE-FF,"printer, staff room",',
  '985a.eb89.8000,ipad-12,"o""brien"',
  'not-an-address,x,y',
  '10.4.7.24,only-two-fields',
  '10.4.7.25,,',
  '10.4.7.23,dup,dup',
  '10.4.7.26,"open quote,u',
  '300.1.1.1,h,u',
].join('\r\n');

test('parseStaticMap reads IPv4, IPv6 and MAC rows and reports every bad line with its number', () => {
  const m = parseStaticMap(CSV);
  assert.deepEqual(m.entries, [
    { line: 2, kind: 'ip', address: '10.4.7.23', hostname: 'LAPTOP-7F3', user: 'jsmith' },
    { line: 5, kind: 'ip', address: '2001:db8::17', user: 'alice' },
    { line: 6, kind: 'mac', address: 'aa:bb:cc:dd:ee:ff', hostname: 'printer, staff room' },
    { line: 7, kind: 'mac', address: '98:5a:eb:89:80:00', hostname: 'ipad-12', user: 'o"brien' },
  ]);
  assert.deepEqual(m.errors.map((e) => e.line), [8, 9, 10, 11, 12, 13]);
  assert.match(m.errors[0].message, /"not-an-address" is neither/);
  assert.match(m.errors[1].message, /expected 3 fields .* found 2/);
  assert.match(m.errors[2].message, /both hostname and user are empty/);
  assert.match(m.errors[3].message, /duplicate address 10\.4\.7\.23 \(first at line 2\)/);
  assert.match(m.errors[4].message, /unterminated quoted field/);
  assert.equal(m.errors[5].text, '300.1.1.1,h,u');
});

test('parseStaticMap takes a file without a header, with a BOM', () => {
  const m = parseStaticMap('\uFEFF10.0.0.1,h1,u1\n10.0.0.2,h2,u2\n');
  assert.equal(m.entries.length, 2);
  assert.equal(m.errors.length, 0);
});

test('applyStaticMap feeds the table as source static, valid at any capture time', () => {
  const c = new Counters();
  const t = new IdentityTable(c);
  assert.equal(applyStaticMap(t, parseStaticMap(CSV)), 4);
  t.observe({ ip: '10.4.7.23', mac: 'aa:bb:cc:dd:ee:ff', user: 'kerberos-user', source: 'kerberos', tsUs: 1_700_000_000_000_000 });
  assert.deepEqual(t.lookup('10.4.7.23', 1_700_000_000_000_000), {
    ip: '10.4.7.23', mac: 'aa:bb:cc:dd:ee:ff', hostname: 'LAPTOP-7F3', user: 'jsmith',
    sources: { mac: 'kerberos', hostname: 'static', user: 'static' },
  });
  assert.equal(t.lookup('2001:db8::17', 5)?.user, 'alice');
});

test('loadStaticMap reads a file and names the path when it cannot', () => {
  const m = withTempFile('10.0.0.9,h,u\n', (p) => loadStaticMap(p), 'map.csv');
  assert.equal(m.entries[0].address, '10.0.0.9');
  assert.throws(() => loadStaticMap('/nonexistent/identity.csv'), /Cannot read identity mapping file "\/nonexistent\/identity\.csv"/);
});

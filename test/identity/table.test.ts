import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counters } from '../../sensor/events/counters.js';
import { DEFAULT_TTL_US, SOURCE_RANKING, SOURCE_STRENGTH, type IdentitySource } from '../../sensor/identity/observation.js';
import { IdentityTable, MAX_HISTORY_PER_FIELD } from '../../sensor/identity/table.js';
import { retainedBytes, uniqueSource } from '../helpers/heap.js';

const S = 1_000_000;
const T0 = 1_700_000_000 * S;
const IP = '10.4.7.23';
const MAC = 'aa:bb:cc:dd:ee:01';

function table(limits?: { maxIps?: number; maxMacs?: number }): { t: IdentityTable; c: Counters } {
  const c = new Counters();
  return { t: new IdentityTable(c, limits), c };
}

test('SOURCE_RANKING lists every source once, strongest first, in SOURCE_STRENGTH order', () => {
  const flat = SOURCE_RANKING.flat();
  assert.deepEqual([...flat].sort(), Object.keys(SOURCE_STRENGTH).sort());
  for (let i = 1; i < SOURCE_RANKING.length; i++) {
    assert.ok(SOURCE_STRENGTH[SOURCE_RANKING[i - 1][0]] > SOURCE_STRENGTH[SOURCE_RANKING[i][0]]);
    for (const s of SOURCE_RANKING[i]) assert.equal(SOURCE_STRENGTH[s], SOURCE_STRENGTH[SOURCE_RANKING[i][0]]);
  }
  assert.deepEqual(SOURCE_RANKING.map((g) => g[0]), ['static', 'api', 'radius', 'kerberos', 'dhcp', 'netbios', 'dns-ptr']);
});

test('IdentityTable.lookup joins a DHCP host name keyed by MAC to the IP bound to that MAC', () => {
  const { t } = table();
  t.observe({ mac: MAC, hostname: 'LAPTOP-7F3', source: 'dhcp', tsUs: T0 });
  t.observe({ ip: IP, mac: MAC, source: 'dhcp', tsUs: T0 + S, expiresUs: T0 + 3600 * S });
  t.observe({ ip: IP, user: 'jsmith', domain: 'SCHOOL', source: 'kerberos', tsUs: T0 + 2 * S });
  assert.equal(t.lookup(IP, T0), undefined);
  assert.deepEqual(t.lookup(IP, T0 + 2 * S), {
    ip: IP, mac: MAC, hostname: 'LAPTOP-7F3', user: 'jsmith', domain: 'SCHOOL',
    sources: { mac: 'dhcp', hostname: 'dhcp', user: 'kerberos', domain: 'kerberos' },
  });
});

test('IdentityTable.lookup answers with the identity valid at the timestamp, not the newest', () => {
  const { t } = table();
  t.observe({ ip: IP, user: 'jsmith', source: 'kerberos', tsUs: T0 });
  t.observe({ ip: IP, user: 'alice', source: 'kerberos', tsUs: T0 + 60 * S });
  assert.equal(t.lookup(IP, T0 + 59 * S)?.user, 'jsmith', 'a capture processed after the change keeps its user');
  assert.equal(t.lookup(IP, T0 + 60 * S)?.user, 'alice');
});

test('IdentityTable: a weaker source fills an empty field only, and is counted when ignored', () => {
  const { t, c } = table();
  t.observe({ ip: IP, hostname: 'from-netbios', source: 'netbios', tsUs: T0 });
  assert.equal(t.lookup(IP, T0)?.hostname, 'from-netbios', 'fills the empty field');
  t.observe({ ip: IP, hostname: 'from-dhcp', source: 'dhcp', tsUs: T0 + S });
  assert.equal(t.lookup(IP, T0 + S)?.hostname, 'from-dhcp', 'stronger replaces');
  t.observe({ ip: IP, hostname: 'from-ptr', source: 'dns-ptr', tsUs: T0 + 2 * S });
  assert.deepEqual(t.lookup(IP, T0 + 2 * S)?.sources, { hostname: 'dhcp' });
  assert.equal(c.get('identity.conflict_weaker_ignored'), 1);
  assert.equal(c.get('identity.conflict_replaced'), 1);
});

test('IdentityTable: a weaker source fills a field once the stronger value expired', () => {
  const { t } = table();
  t.observe({ ip: IP, user: 'jsmith', source: 'radius', tsUs: T0, expiresUs: T0 + 10 * S });
  t.observe({ ip: IP, user: 'bob', source: 'ntlm', tsUs: T0 + 5 * S });
  assert.equal(t.lookup(IP, T0 + 9 * S)?.user, 'jsmith');
  assert.equal(t.lookup(IP, T0 + 10 * S), undefined, 'expired, and the weaker value was ignored at its time');
  t.observe({ ip: IP, user: 'bob', source: 'ntlm', tsUs: T0 + 11 * S });
  assert.deepEqual(t.lookup(IP, T0 + 11 * S), { ip: IP, user: 'bob', sources: { user: 'ntlm' } });
});

test('IdentityTable: the same value refreshes its expiry and takes the stronger source', () => {
  const { t } = table();
  t.observe({ ip: IP, hostname: 'laptop', source: 'netbios', tsUs: T0 });
  t.observe({ ip: IP, hostname: 'LAPTOP', source: 'dhcp', tsUs: T0 + S, expiresUs: T0 + 100 * S });
  const v = t.snapshot(T0 + S).ips[0].current.hostname;
  assert.equal(v?.value, 'laptop', 'names compare case-insensitively; the first spelling is kept');
  assert.equal(v?.source, 'dhcp');
  assert.equal(v?.firstUs, T0);
  assert.equal(v?.lastUs, T0 + S);
  assert.equal(v?.expiresUs, T0 + 100 * S);
});

test('IdentityTable: facts without an expiry live for DEFAULT_TTL_US of their source', () => {
  const { t } = table();
  t.observe({ ip: IP, user: 'jsmith', source: 'kerberos', tsUs: T0 });
  assert.equal(t.lookup(IP, T0 + DEFAULT_TTL_US.kerberos - 1)?.user, 'jsmith');
  assert.equal(t.lookup(IP, T0 + DEFAULT_TTL_US.kerberos), undefined);
});

test('IdentityTable: a DHCP release ends the binding and every dynamic value, not static ones', () => {
  const { t, c } = table();
  t.observe({ ip: IP, hostname: 'fixed-name', source: 'static', tsUs: 0 });
  t.observe({ ip: IP, mac: MAC, source: 'dhcp', tsUs: T0, expiresUs: T0 + 3600 * S });
  t.observe({ ip: IP, user: 'jsmith', source: 'kerberos', tsUs: T0 + S });
  t.observe({ ip: IP, mac: MAC, source: 'dhcp', tsUs: T0 + 10 * S, release: true });
  assert.equal(t.lookup(IP, T0 + 9 * S)?.user, 'jsmith');
  assert.deepEqual(t.lookup(IP, T0 + 10 * S), { ip: IP, hostname: 'fixed-name', sources: { hostname: 'static' } });
  assert.equal(c.get('identity.release'), 1);
});

test('IdentityTable: a release naming another MAC than the bound one is ignored and counted', () => {
  const { t, c } = table();
  t.observe({ ip: IP, mac: MAC, source: 'dhcp', tsUs: T0 });
  t.observe({ ip: IP, mac: 'aa:bb:cc:dd:ee:99', source: 'dhcp', tsUs: T0 + S, release: true });
  assert.equal(t.lookup(IP, T0 + 2 * S)?.mac, MAC);
  assert.equal(c.get('identity.release_mac_mismatch'), 1);
});

test('IdentityTable: a new MAC on an IP ends the previous device\'s names there', () => {
  const { t } = table();
  t.observe({ ip: IP, mac: MAC, hostname: 'old-laptop', source: 'dhcp', tsUs: T0 });
  t.observe({ ip: IP, user: 'jsmith', source: 'ntlm', tsUs: T0 + S });
  t.observe({ ip: IP, mac: 'aa:bb:cc:dd:ee:02', source: 'dhcp', tsUs: T0 + 10 * S });
  assert.equal(t.lookup(IP, T0 + 5 * S)?.user, 'jsmith');
  assert.deepEqual(t.lookup(IP, T0 + 10 * S), { ip: IP, mac: 'aa:bb:cc:dd:ee:02', sources: { mac: 'dhcp' } });
});

test('IdentityTable: a RADIUS Stop ends the user on the MAC too', () => {
  const { t } = table();
  t.observe({ ip: IP, mac: MAC, user: 'jsmith', source: 'radius', tsUs: T0 });
  t.observe({ ip: IP, mac: MAC, source: 'radius', tsUs: T0 + S, release: true });
  const s = t.snapshot(T0 + S);
  assert.equal(s.macs[0].current.user, undefined);
  assert.equal(s.macs[0].history[0].endedUs, T0 + S);
});

test('IdentityTable: when the IP and its MAC both hold a user, the stronger source wins', () => {
  const { t } = table();
  t.observe({ mac: MAC, user: 'radius-user', source: 'radius', tsUs: T0 });
  t.observe({ ip: IP, mac: MAC, source: 'dhcp', tsUs: T0 + S });
  t.observe({ ip: IP, user: 'ntlm-user', source: 'ntlm', tsUs: T0 + 2 * S });
  assert.deepEqual(t.lookup(IP, T0 + 2 * S)?.sources.user, 'radius');
  assert.equal(t.lookup(IP, T0 + 2 * S)?.user, 'radius-user');
});

test('IdentityTable: static facts beat everything, never expire and apply at any time', () => {
  const { t } = table({ maxIps: 2 });
  t.observe({ ip: IP, user: 'teacher1', source: 'static', tsUs: 0 });
  t.observe({ ip: IP, user: 'someone', source: 'kerberos', tsUs: T0 });
  assert.deepEqual(t.lookup(IP, T0), { ip: IP, user: 'teacher1', sources: { user: 'static' } });
  for (let i = 0; i < 5; i++) t.observe({ ip: `10.0.0.${i}`, user: 'x', source: 'dhcp', tsUs: T0 });
  assert.equal(t.lookup(IP, T0 + 1000 * S)?.user, 'teacher1', 'not evicted by churn');
});

test('IdentityTable evicts the least recently observed IP beyond maxIps and counts it', () => {
  const { t, c } = table({ maxIps: 2 });
  t.observe({ ip: '10.0.0.1', user: 'a', source: 'kerberos', tsUs: T0 });
  t.observe({ ip: '10.0.0.2', user: 'b', source: 'kerberos', tsUs: T0 + S });
  t.observe({ ip: '10.0.0.1', user: 'a', source: 'kerberos', tsUs: T0 + 2 * S }); // refresh: .2 is now oldest
  t.observe({ ip: '10.0.0.3', user: 'c', source: 'kerberos', tsUs: T0 + 3 * S });
  assert.equal(t.lookup('10.0.0.2', T0 + 3 * S), undefined);
  assert.equal(t.lookup('10.0.0.1', T0 + 3 * S)?.user, 'a');
  assert.equal(t.size.ips, 2);
  assert.equal(c.get('identity.ip_evicted'), 1);
});

test('IdentityTable keeps MAX_HISTORY_PER_FIELD values per field and counts the trimmed ones', () => {
  const { t, c } = table();
  for (let i = 0; i < MAX_HISTORY_PER_FIELD + 3; i++) t.observe({ ip: IP, user: `u${i}`, source: 'ntlm', tsUs: T0 + i * S });
  const hist = t.snapshot().ips[0].history.filter((h) => h.field === 'user');
  assert.equal(hist.length, MAX_HISTORY_PER_FIELD);
  assert.equal(c.get('identity.history_trimmed'), 3);
  assert.equal(t.lookup(IP, T0)?.user, undefined, 'the oldest value is gone');
  assert.equal(t.lookup(IP, T0 + 4 * S)?.user, 'u4');
});

test('IdentityTable ignores an older observation of a different value and counts it', () => {
  const { t, c } = table();
  t.observe({ ip: IP, user: 'new', source: 'kerberos', tsUs: T0 + 10 * S });
  t.observe({ ip: IP, user: 'old', source: 'kerberos', tsUs: T0 });
  t.observe({ ip: IP, user: 'new', source: 'kerberos', tsUs: T0 + 5 * S });
  assert.equal(c.get('identity.out_of_order'), 1);
  assert.equal(t.lookup(IP, T0 + 5 * S)?.user, 'new', 'the same value moves its first sighting back');
});

test('IdentityTable counts and drops observations without a valid address or source', () => {
  const { t, c } = table();
  t.observe({ user: 'nobody', source: 'kerberos', tsUs: T0 });
  t.observe({ ip: 'not-an-ip', user: 'x', source: 'kerberos', tsUs: T0 });
  t.observe({ mac: 'zz:zz', user: 'x', source: 'kerberos', tsUs: T0 });
  t.observe({ ip: IP, user: 'x', source: 'bogus' as IdentitySource, tsUs: T0 });
  t.observe({ ip: IP, user: 'x', source: 'kerberos', tsUs: Number.NaN });
  assert.equal(c.get('identity.observation_invalid'), 5);
  assert.equal(t.size.ips, 0);
});

test('IdentityTable canonicalises addresses and cleans names', () => {
  const { t } = table();
  t.observe({ ip: '2001:DB8:0:0::17', mac: 'AA-BB-CC-DD-EE-01', hostname: 'pc\u0001name\0\0', source: 'dhcpv6', tsUs: T0 });
  assert.deepEqual(t.lookup('2001:db8::17', T0), { ip: '2001:db8::17', mac: MAC, hostname: 'pc?name', sources: { mac: 'dhcpv6', hostname: 'dhcpv6' } });
});

test('IdentityTable claims keep none of the 64 KB packet texts their names were cut from', () => {
  const n = 2000;
  const source = 64 * 1024;
  const { bytes, held } = retainedBytes(() => {
    const { t } = table();
    for (let i = 0; i < n; i++) {
      // a DHCP host name and a Kerberos principal: slices of a decoded option block / ticket text
      const hostname = uniqueSource(source).slice(0, 40);
      const user = uniqueSource(source).slice(0, 1000);
      t.observe({ ip: `10.9.${i >> 8}.${i & 255}`, hostname, user, source: 'kerberos', tsUs: T0 + i });
    }
    return t;
  });
  const t = held as IdentityTable;
  assert.equal(t.size.ips, n);
  assert.equal(t.lookup('10.9.0.1', T0 + n)?.user?.length, 256, 'cut at MAX_IDENTITY_TEXT_LEN');
  assert.ok(bytes < 0.2 * n * source, `${Math.round(bytes / n)} bytes per address with two claims`);
});

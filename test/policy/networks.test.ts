import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_MONITORED_NETWORKS, MonitoredNetworks, NetworkConfigError, parseCidr, parseIpv4, parseIpv6,
} from '../../sensor/policy/networks.js';

const v6 = (s: string): string | false => {
  const w = new Uint32Array(4);
  return parseIpv6(s, w) ? [...w].map((x) => x.toString(16).padStart(8, '0')).join(' ') : false;
};

test('parseIpv4 reads dotted quads and refuses anything else', () => {
  assert.equal(parseIpv4('10.1.2.3'), 0x0a010203);
  assert.equal(parseIpv4('255.255.255.255'), 0xffffffff);
  for (const bad of ['10.1.2', '10.1.2.3.4', '256.1.1.1', '01.1.1.1', '1..1.1', 'a.b.c.d', '', '1.2.3.4 ']) assert.equal(parseIpv4(bad), -1, bad);
});

test('parseIpv6 reads full, compressed, IPv4-tailed and zoned addresses and refuses malformed ones', () => {
  assert.equal(v6('2001:470:1f0b:1024::2'), '20010470 1f0b1024 00000000 00000002');
  assert.equal(v6('::'), '00000000 00000000 00000000 00000000');
  assert.equal(v6('::1'), '00000000 00000000 00000000 00000001');
  assert.equal(v6('fe80::'), 'fe800000 00000000 00000000 00000000');
  assert.equal(v6('FE80::1%eth0'), 'fe800000 00000000 00000000 00000001');
  assert.equal(v6('::ffff:192.168.1.1'), '00000000 00000000 0000ffff c0a80101');
  assert.equal(v6('1:2:3:4:5:6:7:8'), '00010002 00030004 00050006 00070008');
  for (const bad of ['1:2:3:4:5:6:7:8:9', '1::2::3', ':1', '1:', '12345::', 'g::1', '1:2:3:4:5:6:7', '::1.2.3', '1:2:3:4:5:6:7:1.2.3.4']) {
    assert.equal(v6(bad), false, bad);
  }
});

test('parseCidr reads IPv4 and IPv6 networks and bare addresses', () => {
  assert.deepEqual(parseCidr('10.0.0.0/8'), { version: 4, words: [0, 0, 0, 0x0a000000], prefix: 8, text: '10.0.0.0/8' });
  assert.deepEqual(parseCidr(' fc00::/7 '), { version: 6, words: [0xfc000000, 0, 0, 0], prefix: 7, text: 'fc00::/7' });
  assert.equal((parseCidr('192.0.2.7') as { text: string }).text, '192.0.2.7/32');
  assert.equal((parseCidr('2001:db8::1') as { text: string }).text, '2001:db8::1/128');
  assert.equal((parseCidr('0.0.0.0/0') as { text: string }).text, '0.0.0.0/0');
});

test('parseCidr refuses bad networks with a message quoting the entry', () => {
  assert.deepEqual(parseCidr('10.0.0.1/8'), { error: '"10.0.0.1/8": host bits are set (did you mean "10.0.0.0/8"?)' });
  assert.deepEqual(parseCidr('fe80::1/10'), { error: '"fe80::1/10": host bits are set (did you mean "fe80::/10"?)' });
  assert.deepEqual(parseCidr('10.0.0.0/33'), { error: '"10.0.0.0/33": the prefix length must be a whole number from 0 to 32 for IPv4' });
  assert.deepEqual(parseCidr('fc00::/129'), { error: '"fc00::/129": the prefix length must be a whole number from 0 to 128 for IPv6' });
  assert.deepEqual(parseCidr('10.0.0.0/'), { error: '"10.0.0.0/": the prefix length must be a whole number from 0 to 32 for IPv4' });
  assert.deepEqual(parseCidr('school-lan'), { error: '"school-lan": not an IPv4 or IPv6 address or network' });
  assert.deepEqual(parseCidr('fe80::1%eth0/64'), { error: '"fe80::1%eth0/64": not an IPv4 or IPv6 address or network' });
});

test('MonitoredNetworks defaults: RFC 1918, CGNAT, link-local and ULA are inside; special-use ranges are special', () => {
  const n = new MonitoredNetworks();
  assert.deepEqual(n.monitored.map((c) => c.text), [...DEFAULT_MONITORED_NETWORKS]);
  for (const ip of ['10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '100.127.255.254', '169.254.1.1', 'fd12::1', 'fc00::1', 'fe80::1', '::ffff:10.0.0.1']) {
    assert.equal(n.classify(ip), 'inside', ip);
    assert.equal(n.isInternal(ip), true, ip);
  }
  for (const ip of ['127.0.0.1', '224.0.0.251', '255.255.255.255', '0.0.0.0', '192.0.2.1', '198.51.100.1', '203.0.113.9', '198.18.0.1', '::1', 'ff02::fb', '2001:db8::1']) {
    assert.equal(n.classify(ip), 'special', ip);
  }
  for (const ip of ['8.8.8.8', '172.32.0.1', '100.128.0.1', '192.169.0.1', '2a00:1450:4013:c03::10a', 'not an address']) {
    assert.equal(n.classify(ip), 'outside', ip);
    assert.equal(n.isInternal(ip), false, ip);
  }
});

test('MonitoredNetworks: the most specific entry of the monitored and ignored lists decides', () => {
  const n = new MonitoredNetworks({ monitored: ['10.0.0.0/8', '10.9.5.0/24', '2001:db8:1::/48'], ignored: ['10.9.0.0/16', '2001:db8:1:ff::/64'] });
  assert.equal(n.classify('10.1.1.1'), 'inside');
  assert.equal(n.classify('10.9.1.1'), 'ignored');
  assert.equal(n.isIgnored('10.9.1.1'), true);
  assert.equal(n.classify('10.9.5.20'), 'inside');
  assert.equal(n.classify('192.168.1.1'), 'outside'); // not in this configuration
  assert.equal(n.classify('2001:db8:1:2::5'), 'inside'); // a configured range beats the special-use list
  assert.equal(n.classify('2001:db8:1:ff::5'), 'ignored');
  assert.equal(n.classify('2001:db8:2::5'), 'special');
});

test('MonitoredNetworks.orient names the inside user and the outside site whichever side opened the flow', () => {
  const n = new MonitoredNetworks({ ignored: ['10.0.0.53/32'] });
  assert.deepEqual(n.orient('192.168.1.20', '142.250.1.1'), { kind: 'outbound', user: 'src', site: 'dst' });
  assert.deepEqual(n.orient('142.250.1.1', '192.168.1.20'), { kind: 'inbound', user: 'dst', site: 'src' });
  assert.deepEqual(n.orient('192.168.1.20', '10.1.1.1'), { kind: 'internal', user: 'src', site: 'dst' });
  // The ignored resolver is internal but never the user.
  assert.deepEqual(n.orient('192.168.1.20', '10.0.0.53'), { kind: 'internal', user: 'src', site: 'dst' });
  assert.deepEqual(n.orient('10.0.0.53', '192.168.1.20'), { kind: 'internal', user: 'dst', site: 'src' });
  assert.deepEqual(n.orient('10.0.0.53', '8.8.8.8'), { kind: 'ignored', user: undefined, site: undefined });
  assert.deepEqual(n.orient('8.8.8.8', '1.1.1.1'), { kind: 'external', user: undefined, site: undefined });
  // mDNS to the multicast group: the sender is the user; the group is no site.
  assert.deepEqual(n.orient('192.168.1.20', '224.0.0.251'), { kind: 'outbound', user: 'src', site: 'dst' });
  assert.deepEqual(n.orient('fd00::5', '2a00:1450::1'), { kind: 'outbound', user: 'src', site: 'dst' });
});

test('MonitoredNetworks refuses a bad CIDR with a NetworkConfigError naming the list and the entry', () => {
  assert.throws(() => new MonitoredNetworks({ monitored: ['10.0.0.0/8', '10.0.0.1/16'] }), (e: unknown) => {
    assert.ok(e instanceof NetworkConfigError);
    assert.equal(e.code, 'bad_cidr');
    assert.equal(e.list, 'monitored');
    assert.equal(e.entry, '10.0.0.1/16');
    assert.equal(e.message, 'Cannot use monitored network "10.0.0.1/16": host bits are set (did you mean "10.0.0.0/16"?)');
    return true;
  });
  assert.throws(() => new MonitoredNetworks({ ignored: ['guest-wifi'] }), { message: 'Cannot use ignored network "guest-wifi": not an IPv4 or IPv6 address or network' });
});

/**
 * Site policy through the commands: a static identity map names the device of every capture, the
 * allow list and ignored networks suppress captures, a blocklist turns DNS queries into dns
 * events, bad policy files stop the start with the line and reason, and `hark identity` prints
 * what a capture's DHCP says.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fixture } from '../helpers/replay.js';
import { assertCapture, assertDnsEvent } from '../helpers/schema.js';

const HARK = fileURLToPath(new URL('../../../bin/hark', import.meta.url));
const SEARCH = fixture('school-search', 'school-search.pcap');
let dir: string;

function hark(...args: string[]): { status: number | null; events: Array<Record<string, any>>; stdout: string; stderr: string } {
  const r = spawnSync(HARK, [...args, '--no-progress'], { encoding: 'utf8' });
  const events = r.status === 0 && args[0] === 'scan' ? r.stdout.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l)) : [];
  return { status: r.status, events, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hark-site-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('hark scan --identity-map names the user and host of every capture, with the source', () => {
  const map = file('map.csv', 'ip or mac,hostname,user\n127.0.0.1,LAPTOP-7F3,jsmith\n');
  const r = hark('scan', SEARCH, '--identity-map', map);
  assert.equal(r.status, 0, r.stderr);
  const caps = r.events.filter((e) => e.event_type === 'capture');
  assert.equal(caps.length, 4);
  for (const c of caps) {
    assertCapture(c);
    assert.equal(c.device.ip, '127.0.0.1');
    assert.equal(c.device.user, 'jsmith');
    assert.equal(c.device.hostname, 'LAPTOP-7F3');
    assert.deepEqual(c.device.sources, { hostname: 'static', user: 'static' });
  }
  const plain = hark('scan', SEARCH);
  assert.equal(plain.events.length, 4, 'the same four captures');
  assert.ok(plain.events.every((c) => c.device.user === undefined), 'no identity without a source');
});

test('hark scan --allow-list never captures an allow-listed site; --ignored never a watched-out host', () => {
  const allow = file('allow.txt', '# the school wiki is trusted\nschool.test\n');
  const r = hark('scan', SEARCH, '--allow-list', allow);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.events.filter((e) => e.event_type === 'capture').length, 0);
  const other = file('allow2.txt', 'example.org\n');
  assert.equal(hark('scan', SEARCH, '--allow-list', other).events.length, 4);
  assert.equal(hark('scan', SEARCH, '--ignored', '127.0.0.0/8').events.length, 0);
});

test('hark scan refuses an allow list naming a public suffix, with the line', () => {
  const allow = file('bad-allow.txt', 'youtube.com\nco.uk\n');
  const r = hark('scan', SEARCH, '--allow-list', allow);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /line 2: Allow-list entry "co\.uk" is a public suffix/);
});

test('hark scan --blocklist turns a DNS query for a listed domain into a dns event', () => {
  const list = file('feed.csv', 'domain,category,threat_level\ngithub.com,code-hosting,2\n');
  const r = hark('scan', fixture('dns', 'arkime-dns-udp.pcap'), '--blocklist', `school=${list}`);
  assert.equal(r.status, 0, r.stderr);
  const dns = r.events.filter((e) => e.event_type === 'dns');
  assert.ok(dns.length >= 1);
  for (const e of dns) assertDnsEvent(e);
  const q = dns.find((e) => e.dns?.rrname === 'www.github.com');
  assert.ok(q, JSON.stringify(dns));
  assert.deepEqual(q.policy, { matched_on: 'dns_query', name: 'www.github.com', domain: 'github.com', category: 'code-hosting', threat_level: 2, list: 'school' });
});

test('hark identity prints the DHCP host name and MAC of a capture', () => {
  const r = hark('identity', fixture('identity', 'zeek-dhcp.pcap'), '--quiet');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /128\.2\.6\.189\n\s+mac\s+90:b1:1c:99:49:29\s+\[dhcp/);
  assert.match(r.stdout, /hostname btest\.is\.cool\s+\[dhcp/);
});

test('hark identity with only a static map: values at the capture\'s last packet, marked as from the map', () => {
  const map = file('map-only.csv', 'ip or mac,hostname,user\n127.0.0.1,LAPTOP-7F3,jsmith\n');
  const r = hark('identity', SEARCH, '--identity-map', map, '--quiet');
  assert.equal(r.status, 0, r.stderr);
  // school-search.pcap's last packet is at 2026-11-21 15:41:44 UTC (no DHCP or DNS in it)
  assert.match(r.stdout, /^identity at 2026-11-21T15:41:44Z: 1 address\(es\)/);
  assert.match(r.stdout, /127\.0\.0\.1\n\s+hostname LAPTOP-7F3\s+\[static map\]\n\s+user\s+jsmith\s+\[static map\]/);
  assert.doesNotMatch(r.stdout, /1970/);
});

test('hark identity names IPv6 hosts from their mDNS announcements', () => {
  // arkime-v6-http.pcap: a host answers mDNS for linux.local with three AAAA records.
  const r = hark('identity', fixture('tcp', 'arkime-v6-http.pcap'), '--quiet');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /2001:6f8:102d:0:2d0:9ff:fee3:e8de\n\s+hostname linux\s+\[mdns/);
  assert.doesNotMatch(r.stdout, /hostname linux\.local/);
});

/**
 * menu/validate.ts: every check accepts the documented forms and refuses the rest with a message
 * that names the value and the right form.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkAllowDomain,
  checkCidr,
  checkHostPort,
  checkIpv4,
  checkSensorNumber,
  checkSiteKey,
  normaliseAllowDomain,
  normaliseHomeUrl,
  parseCidr,
  sameNetwork,
} from '../../menu/validate.js';

test('parseCidr accepts /24 and 24, refuses 0, 33 and dotted masks', () => {
  assert.equal(parseCidr('/24'), 24);
  assert.equal(parseCidr('22'), 22);
  assert.equal(parseCidr('/0'), undefined);
  assert.equal(parseCidr('/33'), undefined);
  assert.equal(parseCidr('255.255.255.0'), undefined);
});

test('checkCidr refuses a dotted mask and shows its CIDR form', () => {
  assert.equal(checkCidr('/22'), undefined);
  assert.match(checkCidr('255.255.255.0') ?? '', /for 255\.255\.255\.0 type \/24/);
  assert.match(checkCidr('255.255.252.0') ?? '', /type \/22/);
  assert.match(checkCidr('255.0.255.0') ?? '', /is not a netmask/);
  assert.match(checkCidr('abc') ?? '', /"abc" is not a netmask in CIDR form/);
});

test('checkIpv4 refuses malformed, leading-zero, loopback and multicast addresses', () => {
  assert.equal(checkIpv4('192.168.1.20'), undefined);
  for (const bad of ['192.168.1', '192.168.1.256', '192.168.01.2', '127.0.0.1', '224.0.0.1', '0.1.2.3', 'x']) assert.notEqual(checkIpv4(bad), undefined, bad);
});

test('sameNetwork compares addresses under a prefix', () => {
  assert.ok(sameNetwork('10.1.2.3', '10.1.3.1', 22));
  assert.ok(!sameNetwork('10.1.2.3', '10.1.4.1', 22));
  assert.ok(sameNetwork('1.2.3.4', '200.2.3.4', 0));
});

test('checkHostPort wants host:port without scheme and a port in range', () => {
  assert.equal(checkHostPort('proxy.school.local:3128'), undefined);
  assert.equal(checkHostPort('10.0.0.5:8080'), undefined);
  assert.match(checkHostPort('http://10.0.0.5:8080') ?? '', /address:port/);
  assert.match(checkHostPort('10.0.0.5') ?? '', /address:port/);
  assert.match(checkHostPort('10.0.0.5:70000') ?? '', /out of range/);
});

test('normaliseHomeUrl adds https:// to a bare host and refuses credentials or other schemes', () => {
  assert.equal(normaliseHomeUrl('home.example.org'), 'https://home.example.org');
  assert.equal(normaliseHomeUrl('home.example.org:8443/'), 'https://home.example.org:8443');
  assert.equal(normaliseHomeUrl('http://10.0.0.9:8080'), 'http://10.0.0.9:8080');
  assert.equal(normaliseHomeUrl('ftp://home.example.org'), undefined);
  assert.equal(normaliseHomeUrl('https://u:p@home.example.org'), undefined);
});

test('checkSensorNumber refuses non-numbers', () => {
  assert.equal(checkSensorNumber('3'), undefined);
  assert.notEqual(checkSensorNumber('0'), undefined);
  assert.notEqual(checkSensorNumber('three'), undefined);
});

test('allow-list domains need a registrable domain; schemes, paths and bare suffixes are refused', () => {
  assert.equal(normaliseAllowDomain('YouTube.com'), 'youtube.com');
  assert.equal(normaliseAllowDomain('bbc.co.uk'), 'bbc.co.uk');
  assert.equal(normaliseAllowDomain('co.uk'), undefined);
  assert.equal(normaliseAllowDomain('com'), undefined);
  assert.equal(normaliseAllowDomain('10.0.0.1'), undefined);
  assert.match(checkAllowDomain('https://youtube.com/watch') ?? '', /without http:\/\/ or a path/);
  assert.match(checkAllowDomain('com') ?? '', /second-level domain/);
});

test('checkSiteKey takes 8 to 256 characters exactly as typed and never repeats the key', () => {
  assert.equal(checkSiteKey('hilltop-key'), undefined);
  assert.equal(checkSiteKey(' spaced key '), undefined, 'home compares exactly: spaces are part of the key');
  assert.equal(checkSiteKey('ключ-школы'), undefined, 'characters, not bytes');
  assert.equal(checkSiteKey('k'.repeat(256)), undefined);
  assert.match(checkSiteKey('') ?? '', /Type the site key/);
  assert.equal(checkSiteKey('secret7'), 'A site key has at least 8 characters; the one typed has 7');
  assert.equal(checkSiteKey('k'.repeat(257)), 'A site key has at most 256 characters; the one typed has 257');
  for (const bad of ['hilltop\nkey', 'hilltop\rkey1', 'hilltop\tkey', 'hilltop\x7fkey']) {
    assert.match(checkSiteKey(bad) ?? '', /cannot contain control characters or line breaks/, JSON.stringify(bad));
  }
  for (const key of ['secret7', 'hilltop\nkey']) assert.doesNotMatch(checkSiteKey(key) ?? '', new RegExp(key.split('\n')[0]));
});

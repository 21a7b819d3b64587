import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ipv6FromBytes, macFromBytes, normaliseIp, normaliseIpv6, normaliseMac } from '../../sensor/identity/address.js';

test('normaliseMac accepts the common notations and returns aa:bb:cc:dd:ee:ff', () => {
  for (const t of ['985AEB898000', '98:5a:eb:89:80:00', '98-5A-EB-89-80-00', '985a.eb89.8000', '985aeb-898000', '98 5a eb 89 80 00', ' 98:5A:EB:89:80:00 ']) {
    assert.equal(normaliseMac(t), '98:5a:eb:89:80:00', t);
  }
});

test('normaliseMac refuses phone numbers, mixed separators, uneven groups and wrong lengths', () => {
  for (const t of ['+441234567890', '98:5a-eb:89:80:00', '985:aeb:898:000', '98:5a:eb:89:80', '98:5a:eb:89:80:00:11', 'gg:5a:eb:89:80:00', '']) {
    assert.equal(normaliseMac(t), undefined, t);
  }
});

test('normaliseIpv6 prints the flow stage\'s form and refuses malformed text', () => {
  assert.equal(normaliseIpv6('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  assert.equal(normaliseIpv6('fe80::1%eth0'), 'fe80::1');
  assert.equal(normaliseIpv6('::ffff:10.1.2.3'), '::ffff:a01:203');
  assert.equal(normaliseIpv6('1:0:0:2:0:0:0:3'), '1:0:0:2::3');
  assert.equal(normaliseIpv6('::'), '::');
  for (const t of ['1::2::3', '12345::', '1:2:3:4:5:6:7', 'g::1', ':::']) assert.equal(normaliseIpv6(t), undefined, t);
  assert.equal(ipv6FromBytes(Buffer.from('20010db8000000000000000000000001', 'hex'), 0), '2001:db8::1');
});

test('normaliseIp handles IPv4 and refuses out-of-range octets', () => {
  assert.equal(normaliseIp('10.04.7.23'), '10.4.7.23');
  assert.equal(normaliseIp('256.1.1.1'), undefined);
  assert.equal(normaliseIp('1.2.3'), undefined);
  assert.equal(macFromBytes(Buffer.from('00000aabbccddeef', 'hex'), 2), '0a:ab:bc:cd:de:ef');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fixture } from '../../helpers/replay.js';
import { HS_CERTIFICATE, parseCertificateChain } from '../../../sensor/app-layer/tls/handshake.js';
import { describeCertificate } from '../../../sensor/app-layer/tls/certificate.js';
import { messagesOfType, tlsFlows } from './corpus.js';

function chains(name: string): Uint8Array[][] {
  return messagesOfType(tlsFlows(name), 1, HS_CERTIFICATE).map((m) => {
    const chain = parseCertificateChain(m.body, false);
    assert.ok(chain, name);
    return chain;
  });
}

// zeek-tls12-decryption.pcap, server chain as OpenSSL 3 prints it, after extracting the DER with
//   tshark -r zeek-tls12-decryption.pcap -Y tls.handshake.type==11 -T fields -e tls.handshake.certificate
//   openssl x509 -inform der -noout -subject -issuer -serial -dates -fingerprint -sha256 -nameopt RFC2253
//     -ext basicConstraints,subjectAltName -modulus
test('describeCertificate matches what openssl x509 prints for the heise.de certificate', () => {
  const [[leaf]] = chains('zeek-tls12-decryption.pcap');
  const c = describeCertificate(leaf);
  assert.ok(c);
  assert.equal(c.subject, 'CN=heise.de');
  assert.equal(c.issuer, "CN=R3,O=Let's Encrypt,C=US");
  assert.equal(c.subjectCommonName, 'heise.de');
  assert.equal(c.serial, '031EFA30670855685DED554B7207005B56C6');
  assert.equal(c.notBefore, '2021-03-22T13:32:15.000Z'); // notBefore=Mar 22 13:32:15 2021 GMT
  assert.equal(c.notAfter, '2021-06-20T13:32:15.000Z'); // notAfter=Jun 20 13:32:15 2021 GMT
  assert.equal(c.sha256, '9F:A6:86:81:A2:4C:33:50:52:D1:31:8C:65:02:F7:06:8F:C4:86:57:18:CD:87:4A:8E:5D:E0:4E:8F:6D:29:C5'.replace(/:/g, '').toLowerCase());
  assert.deepEqual(c.subjectAltNames, ['heise.de']);
  assert.equal(c.publicKeyType, 'rsa');
  assert.equal(c.publicKeyModulusHex, ('BC2BD9312D53A146AA123ED2E52B09FB4D0978242DDB14CA7D0B498E49A48F1205AEC80CA329D2AAD06DF991C746A1047B7B9C8B9A8A46DEA469BD712B'
    + '092C00B9ECD058BC51AB6EC3B44551B1AE40B517A07A2A1A72192D7677FE9F210B99D80727750108D14D30EFDB524B24A1155F81EAB2596330B982CF4E606D41B03B48F9AD'
    + '2D43FC517FBADB6FD03165231200B33D416E87165FD4D5F51C803F44A05A662222582952349603DA4071D0951B7A93089214EBDAAF02D5D4291EDDBDDE596C2B8F96A3264'
    + '33620AF724A8BB1B1E795694E455C33C39D120FA5161FE1B82292B2A736A6BA99D0651AE31C1D5833000C54FD50F2B687BF89402F99409CF3FD').toLowerCase());
  assert.equal(c.isCa, false); // Basic Constraints: CA:FALSE
  assert.equal(c.selfIssued, false);
});

test('describeCertificate reads the intermediate of the same chain as a CA', () => {
  const [[, intermediate]] = chains('zeek-tls12-decryption.pcap');
  const c = describeCertificate(intermediate);
  assert.ok(c);
  assert.equal(c.subject, "CN=R3,O=Let's Encrypt,C=US");
  assert.equal(c.issuer, 'CN=DST Root CA X3,O=Digital Signature Trust Co.');
  assert.equal(c.serial, '400175048314A4C8218C84A90C16CDDF');
  assert.equal(c.notBefore, '2020-10-07T19:21:40.000Z'); // Oct  7 19:21:40 2020 GMT
  assert.equal(c.notAfter, '2021-09-29T19:21:40.000Z');
  assert.equal(c.sha256, '730c1bdcd85f57ce5dc0bba733e5f1ba5a925b2a771d640a26f7a454224dad3b');
  assert.equal(c.isCa, true); // CA:TRUE, pathlen:0
  assert.deepEqual(c.subjectAltNames, []);
});

// nDPI's published view of the same sessions (ntop/nDPI tests/cfgs/default/result/http_ipv6.pcap.out
// @ 0110623b4ed94e49f2821073146d705856ed149f): names in certificate order, SHA-1 of the DER, validity.
test('describeCertificate agrees with nDPI on the www.ntop.org and Facebook certificates', () => {
  const leaves = chains('ndpi-http_ipv6.pcap').map((c) => c[0]);
  const sha1 = (der: Uint8Array): string => createHash('sha1').update(der).digest('hex');
  const reverse = (certOrder: string): string => certOrder.split(', ').reverse().join(',');
  const ntop = leaves.find((d) => sha1(d) === 'FB:A6:FF:A7:58:F3:9D:54:24:45:E5:A0:C4:04:18:D5:58:91:E0:34'.replace(/:/g, '').toLowerCase());
  const fb = leaves.find((d) => sha1(d) === 'E7:62:76:74:8D:09:F7:E9:69:05:B8:1A:37:A1:30:2D:FF:3B:BC:0A'.replace(/:/g, '').toLowerCase());
  assert.ok(ntop && fb);
  const n = describeCertificate(ntop)!;
  assert.equal(n.subject, reverse('OU=Domain Control Validated, OU=PositiveSSL, CN=shop.ntop.org'));
  assert.equal(n.issuer, reverse('C=GB, ST=Greater Manchester, L=Salford, O=COMODO CA Limited, CN=COMODO RSA Domain Validation Secure Server CA'));
  assert.deepEqual(n.subjectAltNames, ['shop.ntop.org', 'www.shop.ntop.org']);
  assert.deepEqual([n.notBefore, n.notAfter], ['2015-11-15T00:00:00.000Z', '2018-11-14T23:59:59.000Z']);
  const f = describeCertificate(fb)!;
  // "O=Facebook, Inc." holds a comma: RFC 4514 escapes it (openssl -nameopt RFC2253 prints the same).
  assert.equal(f.subject, 'CN=*.ak.fbcdn.net,O=Facebook\\, Inc.,L=Menlo Park,ST=CA,C=US');
  assert.equal(f.issuer, reverse('C=US, O=DigiCert Inc, OU=www.digicert.com, CN=DigiCert High Assurance CA-3'));
  assert.equal(f.subjectCommonName, '*.ak.fbcdn.net');
  assert.deepEqual(f.subjectAltNames, ['*.ak.fbcdn.net', 's-static.ak.fbcdn.net', 'igsonar.com', '*.igsonar.com', 'ak.facebook.com',
    '*.ak.facebook.com', '*.s-static.ak.facebook.com', 'connect.facebook.net', 's-static.ak.facebook.com']);
  assert.deepEqual([f.notBefore, f.notAfter], ['2015-08-12T00:00:00.000Z', '2015-12-31T12:00:00.000Z']);
});

// ws-tls12-chacha20poly1305-server-ecdsa.der: the ECDSA server certificate of the corpus capture
// ws-tls12-chacha20poly1305.pcap stream 0 (see test/fixtures/tls/README.md); openssl x509 prints
// subject=CN=localhost issuer=CN=localhost serial=D2C6D38588184854, P-384 key, "No modulus for this public key type".
test('describeCertificate leaves the RSA modulus out for an EC key and flags a self-issued certificate', () => {
  const der = readFileSync(fixture('tls', 'ws-tls12-chacha20poly1305-server-ecdsa.der'));
  const c = describeCertificate(der);
  assert.ok(c);
  assert.deepEqual([c.subject, c.issuer, c.serial, c.publicKeyType, c.publicKeyModulusHex, c.selfIssued],
    ['CN=localhost', 'CN=localhost', 'D2C6D38588184854', 'ec', undefined, true]);
  assert.equal(c.notBefore, '2017-06-02T18:33:28.000Z'); // Jun  2 18:33:28 2017 GMT
  assert.equal(c.sha256, 'f6647cfba1714e625c17f951ce118915bd9a29a12ccc90f87423fe58e112c2d4');
});

test('describeCertificate returns undefined for bytes that are not a certificate', () => {
  const [[leaf]] = chains('zeek-tls12-decryption.pcap');
  assert.equal(describeCertificate(new Uint8Array(0)), undefined);
  assert.equal(describeCertificate(Buffer.from('3003020100', 'hex')), undefined);
  assert.equal(describeCertificate(leaf.subarray(0, leaf.length - 1)), undefined);
  // node:crypto would parse PEM; a Certificate message carries DER only.
  const pem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(leaf).toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;
  assert.equal(describeCertificate(Buffer.from(pem)), undefined);
});

test('describeCertificate never throws on mutated certificates', () => {
  const [[leaf, intermediate]] = chains('zeek-tls12-decryption.pcap');
  let s = 0x1234567;
  const next = (): number => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s;
  };
  let described = 0;
  for (let i = 0; i < 300; i++) {
    const der = Buffer.from(i % 2 === 0 ? leaf : intermediate);
    for (let k = 0; k < 1 + (next() % 3); k++) der[next() % der.length] = next() & 0xff;
    if (describeCertificate(der) !== undefined) described++;
  }
  assert.ok(described > 0 && described < 300);
});

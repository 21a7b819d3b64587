import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import forge from 'node-forge';
import {
  certificateFingerprint, certificateSans, ensurePki, issueSensorCertificate, PkiError, readCsr, signBundle, verifyBundle,
  type CaMaterial,
} from '../../home/pki.js';
import { makeSensorIdentity } from './helpers.js';

let dir: string;
let ca: CaMaterial;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hark-pki-'));
  ca = ensurePki(dir, ['home.example']).ca;
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('certificateFingerprint equals openssl x509 -fingerprint -sha256', () => {
  const out = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', join(dir, 'ca.pem')], { encoding: 'utf8' });
  const expected = out.trim().split('=')[1];
  assert.match(expected, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.equal(ca.fingerprint, expected);
  assert.equal(certificateFingerprint(readFileSync(join(dir, 'ca.pem'), 'utf8')), expected);
});

test('ensurePki makes an RSA 3072 CA valid ten years and keeps key files 0600', () => {
  const cert = forge.pki.certificateFromPem(ca.certPem);
  assert.equal((cert.publicKey as forge.pki.rsa.PublicKey).n.bitLength(), 3072);
  const years = (cert.validity.notAfter.getTime() - cert.validity.notBefore.getTime()) / (365.25 * 86400_000);
  assert.ok(years > 9.9 && years < 10.1, `validity ${years} years`);
  for (const f of ['ca.pem', 'ca.key', 'server.pem', 'server.key']) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
  const text = execFileSync('openssl', ['x509', '-noout', '-text', '-in', join(dir, 'ca.pem')], { encoding: 'utf8' });
  assert.match(text, /CA:TRUE/);
});

test('ensurePki reuses the CA and server certificate, and re-issues the server certificate when names change', () => {
  const serverBefore = readFileSync(join(dir, 'server.pem'), 'utf8');
  const again = ensurePki(dir, ['home.example']);
  assert.equal(again.madeCa, false);
  assert.equal(again.madeServer, false);
  assert.equal(again.ca.fingerprint, ca.fingerprint);
  assert.equal(readFileSync(join(dir, 'server.pem'), 'utf8'), serverBefore);
  const renamed = ensurePki(dir, ['home.example', 'home2.example']);
  assert.equal(renamed.madeCa, false);
  assert.equal(renamed.madeServer, true);
  assert.deepEqual(new Set(certificateSans(renamed.server.certPem)), new Set(['localhost', '127.0.0.1', '::1', 'home.example', 'home2.example']));
  // The re-issued server certificate still chains to the same CA.
  writeFileSync(join(dir, 'srv-check.pem'), renamed.server.certPem);
  assert.match(execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'srv-check.pem')], { encoding: 'utf8' }), /OK/);
});

test('issueSensorCertificate signs CN=uuid OU=sensor for five years, verifiable by openssl', () => {
  const id = makeSensorIdentity();
  const issued = issueSensorCertificate(ca, id.csrPem, id.uuid);
  const file = join(dir, 'sensor.pem');
  writeFileSync(file, issued.pem);
  assert.match(execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), file], { encoding: 'utf8' }), /OK/);
  const subject = execFileSync('openssl', ['x509', '-noout', '-subject', '-serial', '-in', file], { encoding: 'utf8' });
  assert.match(subject, new RegExp(`CN ?= ?${id.uuid}`));
  assert.match(subject, /OU ?= ?sensor/);
  assert.match(subject, new RegExp(`serial=0*${issued.serial}`));
  const years = (issued.notAfter.getTime() - issued.notBefore.getTime()) / (365.25 * 86400_000);
  assert.ok(years > 4.9 && years < 5.1);
  const other = issueSensorCertificate(ca, id.csrPem, id.uuid);
  assert.notEqual(other.serial, issued.serial);
});

test('readCsr refuses garbage, a tampered request and a short key', () => {
  assert.throws(() => readCsr('hello'), (e: unknown) => e instanceof PkiError && e.code === 'E_CSR');
  const id = makeSensorIdentity();
  // The signature is the last field of the DER: flip its last byte.
  const der = Buffer.from(id.csrPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
  der[der.length - 1] ^= 1;
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
  assert.throws(() => readCsr(tampered), (e: unknown) => e instanceof PkiError && e.code === 'E_CSR');
  assert.doesNotThrow(() => readCsr(id.csrPem));
  const small = forge.pki.rsa.generateKeyPair({ bits: 1024, e: 0x10001 });
  const weak = forge.pki.createCertificationRequest();
  weak.publicKey = small.publicKey;
  weak.setSubject([{ name: 'commonName', value: 'x' }]);
  weak.sign(small.privateKey, forge.md.sha256.create());
  assert.throws(() => readCsr(forge.pki.certificationRequestToPem(weak)), (e: unknown) => e instanceof PkiError && e.code === 'E_CSR_KEY');
});

test('signBundle verifies with the CA certificate and fails on a flipped byte', () => {
  const bytes = Buffer.from('{"format":1,"version":3}');
  const sig = signBundle(ca, bytes);
  assert.equal(verifyBundle(ca.certPem, bytes, sig), true);
  const flipped = Buffer.from(bytes);
  flipped[5] ^= 1;
  assert.equal(verifyBundle(ca.certPem, flipped, sig), false);
});

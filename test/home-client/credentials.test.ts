import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';
import { CredentialsError, fingerprint, normaliseFingerprint, SensorCredentials } from '../../sensor/home-client/credentials.js';
import { AtomicWriteError, writeFileAtomic } from '../../sensor/home-client/atomic-file.js';
import { issue, makeCa, type Pem } from './fake-home.js';
import { scratchDir } from '../helpers/scratch.js';

let ca: Pem;
let otherCa: Pem;

before(() => {
  ca = makeCa('Hark Home CA');
  otherCa = makeCa('Other CA');
});

function tempDir(): string {
  return join(scratchDir('hark-creds-'), 'identity');
}

const mode = (p: string): number => statSync(p).mode & 0o777;

function grantFor(creds: SensorCredentials, signer = ca, cn = creds.uuid, keyPem = creds.keyPem): { sensor_id: number; certificate: string; ca: string } {
  return { sensor_id: 7, certificate: issue(signer, { cn, ou: 'sensor', subjectKeyPem: keyPem }).cert, ca: ca.cert };
}

describe('SensorCredentials', () => {
  it('SensorCredentials.loadOrCreate makes a private identity with a key pair and certificate on first start', () => {
    const dir = tempDir();
    const creds = SensorCredentials.loadOrCreate(dir);
    assert.equal(mode(dir), 0o700);
    for (const f of ['sensor.json', 'key.pem', 'cert.pem']) assert.equal(mode(join(dir, f)), 0o600, f);
    assert.equal(existsSync(join(dir, 'ca.pem')), false);
    assert.equal(creds.sensorId, 0);
    assert.equal(creds.enrolled, false);
    assert.match(creds.uuid, /^[0-9a-f-]{36}$/);
    const info = JSON.parse(readFileSync(join(dir, 'sensor.json'), 'utf8'));
    assert.deepEqual(info, { uuid: creds.uuid, sensor_id: 0, enrolled_at: null, homes: [], ca_fingerprint: null });
    const cert = new X509Certificate(creds.certPem);
    assert.ok(cert.checkPrivateKey(createPrivateKey(creds.keyPem)));
    assert.match(cert.subject, new RegExp(`CN=${creds.uuid}`));
    assert.equal((createPublicKey(creds.keyPem).asymmetricKeyDetails?.modulusLength), 2048);
  });

  it('SensorCredentials.loadOrCreate reads the same identity back', () => {
    const dir = tempDir();
    const a = SensorCredentials.loadOrCreate(dir);
    const b = SensorCredentials.loadOrCreate(dir);
    assert.equal(b.uuid, a.uuid);
    assert.equal(b.keyPem, a.keyPem);
    assert.equal(b.certPem, a.certPem);
  });

  it('SensorCredentials.loadOrCreate refuses a damaged sensor.json', () => {
    const dir = tempDir();
    SensorCredentials.loadOrCreate(dir);
    writeFileSync(join(dir, 'sensor.json'), '{"uuid": 5');
    assert.throws(() => SensorCredentials.loadOrCreate(dir), (e: unknown) => e instanceof CredentialsError && e.code === 'E_CREDENTIALS' && e.message.includes('sensor.json'));
  });

  it('SensorCredentials.csr makes a PKCS#10 request for our key, CN = UUID', () => {
    const creds = SensorCredentials.loadOrCreate(tempDir());
    const csr = forge.pki.certificationRequestFromPem(creds.csr('sensor1.school.example'));
    assert.equal(csr.verify(), true);
    assert.equal(csr.subject.getField('CN').value, creds.uuid);
    const ours = forge.pki.publicKeyFromPem(createPublicKey(creds.keyPem).export({ type: 'spki', format: 'pem' }) as string) as forge.pki.rsa.PublicKey;
    assert.equal((csr.publicKey as forge.pki.rsa.PublicKey).n.toString(16), ours.n.toString(16));
  });

  it('SensorCredentials.installEnrolment stores a certificate for our key signed by the CA', () => {
    const dir = tempDir();
    const creds = SensorCredentials.loadOrCreate(dir);
    const grant = grantFor(creds);
    creds.installEnrolment(grant, ['https://home.example:8443']);
    assert.equal(creds.enrolled, true);
    assert.equal(creds.sensorId, 7);
    assert.equal(creds.caFingerprint, fingerprint(ca.cert));
    for (const f of ['sensor.json', 'key.pem', 'cert.pem', 'ca.pem']) assert.equal(mode(join(dir, f)), 0o600, f);
    const again = SensorCredentials.loadOrCreate(dir);
    assert.equal(again.sensorId, 7);
    assert.deepEqual(again.homes, ['https://home.example:8443']);
    assert.equal(fingerprint(again.caPem!), fingerprint(ca.cert));
    assert.equal(fingerprint(again.certPem), fingerprint(grant.certificate));
  });

  it('SensorCredentials.installEnrolment refuses a certificate whose public key is not ours', () => {
    const dir = tempDir();
    const creds = SensorCredentials.loadOrCreate(dir);
    const other = SensorCredentials.loadOrCreate(tempDir());
    assert.throws(() => creds.installEnrolment(grantFor(creds, ca, creds.uuid, other.keyPem), []), (e: unknown) => e instanceof CredentialsError && e.code === 'E_ENROL_CERT' && /key/.test(e.message));
    assert.equal(existsSync(join(dir, 'ca.pem')), false);
    assert.equal(SensorCredentials.loadOrCreate(dir).sensorId, 0);
  });

  it('SensorCredentials.installEnrolment refuses a certificate not signed by the CA given', () => {
    const dir = tempDir();
    const creds = SensorCredentials.loadOrCreate(dir);
    assert.throws(() => creds.installEnrolment(grantFor(creds, otherCa), []), (e: unknown) => e instanceof CredentialsError && /not signed by home's CA/.test(e.message));
    assert.equal(creds.enrolled, false);
    assert.equal(existsSync(join(dir, 'ca.pem')), false);
  });

  it('SensorCredentials.installEnrolment refuses a certificate for another sensor UUID', () => {
    const creds = SensorCredentials.loadOrCreate(tempDir());
    assert.throws(() => creds.installEnrolment(grantFor(creds, ca, '00000000-0000-4000-8000-000000000000'), []), (e: unknown) => e instanceof CredentialsError && /not for this sensor/.test(e.message));
  });

  it('SensorCredentials.reset returns to unconfigured with a new key pair, keeping the UUID', () => {
    const dir = tempDir();
    const creds = SensorCredentials.loadOrCreate(dir);
    creds.installEnrolment(grantFor(creds), ['https://home.example:8443']);
    const oldKey = creds.keyPem;
    creds.reset();
    assert.equal(creds.sensorId, 0);
    assert.equal(creds.enrolled, false);
    assert.equal(creds.caPem, undefined);
    assert.notEqual(creds.keyPem, oldKey);
    assert.equal(existsSync(join(dir, 'ca.pem')), false);
    const again = SensorCredentials.loadOrCreate(dir);
    assert.equal(again.uuid, creds.uuid);
    assert.equal(again.sensorId, 0);
    assert.equal(again.caFingerprint, null);
    assert.equal(again.keyPem, creds.keyPem);
    assert.ok(new X509Certificate(again.certPem).checkPrivateKey(createPrivateKey(again.keyPem)));
    for (const f of ['sensor.json', 'key.pem', 'cert.pem']) assert.equal(mode(join(dir, f)), 0o600, f);
  });

  it('SensorCredentials leaves no temporary files behind', () => {
    const dir = tempDir();
    const creds = SensorCredentials.loadOrCreate(dir);
    creds.installEnrolment(grantFor(creds), []);
    creds.reset();
    assert.deepEqual(readdirSync(dir).sort(), ['cert.pem', 'key.pem', 'sensor.json']);
  });
});

describe('fingerprint', () => {
  it('fingerprint is SHA-256 of the DER in upper-case hex with colons', () => {
    const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(forge.pki.certificateFromPem(ca.cert))).getBytes(), 'binary');
    const hex = createHash('sha256').update(der).digest('hex').toUpperCase();
    const fp = fingerprint(ca.cert);
    assert.equal(fp.replace(/:/g, ''), hex);
    assert.match(fp, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  it('normaliseFingerprint accepts any case and separators', () => {
    assert.equal(normaliseFingerprint('ab cd-ef01'), 'AB:CD:EF:01');
  });
});

describe('writeFileAtomic', () => {
  it('writeFileAtomic replaces a file whole with mode 0600', () => {
    const dir = scratchDir('hark-atomic-');
    const p = join(dir, 'f.json');
    writeFileSync(p, 'old', { mode: 0o644 });
    writeFileAtomic(p, 'new content');
    assert.equal(readFileSync(p, 'utf8'), 'new content');
    assert.equal(mode(p), 0o600);
    assert.deepEqual(readdirSync(dir), ['f.json']);
  });

  it('writeFileAtomic leaves the old file and no temporary file when the rename fails', () => {
    const dir = scratchDir('hark-atomic-');
    const target = join(dir, 'target');
    mkdirSync(target);
    writeFileSync(join(target, 'inside'), 'x');
    assert.throws(() => writeFileAtomic(target, 'data'), (e: unknown) => e instanceof AtomicWriteError && e.code === 'E_WRITE');
    assert.deepEqual(readdirSync(dir), ['target']);
    assert.equal(statSync(target).isDirectory(), true);
  });
});


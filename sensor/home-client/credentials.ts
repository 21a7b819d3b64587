/**
 * The sensor's identity for home: a UUID, the sensor id home gave it (0 = unconfigured), its RSA key
 * pair and certificate (self-signed from the very first start, home-signed once enrolled) and home's
 * pinned CA. Input: a private directory (0700). Output: `sensor.json`, `key.pem`, `cert.pem`,
 * `ca.pem`, each written atomically with mode 0600. Certificates from home are checked (our key,
 * signed by the CA, CN = our UUID, not expired) before anything is written.
 */
import { generateKeyPairSync, randomBytes, randomUUID, X509Certificate, createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';
import { ensurePrivateDir } from '../store/private-dir.js';
import { writeFileAtomic } from './atomic-file.js';

/** RSA modulus of the sensor's key: what home's CA signs and what PROTOCOL.md expects. */
export const SENSOR_KEY_BITS = 2048;
/** Validity of the self-signed certificate made at first start (home's certificate replaces it). */
const SELF_SIGNED_VALID_YEARS = 5;
/** sensor.json larger than this is not ours: refuse rather than parse it. */
const MAX_SENSOR_JSON_BYTES = 64 * 1024;

export const SENSOR_FILE = 'sensor.json';
export const KEY_FILE = 'key.pem';
export const CERT_FILE = 'cert.pem';
export const CA_FILE = 'ca.pem';

export class CredentialsError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface SensorRecord {
  uuid: string;
  /** 0 = unconfigured (not enrolled). */
  sensor_id: number;
  enrolled_at: string | null;
  homes: string[];
  ca_fingerprint: string | null;
  proxy?: string;
}

export interface EnrolmentGrant {
  readonly sensor_id: number;
  readonly certificate: string;
  readonly ca: string;
}

/** SHA-256 of the certificate's DER, upper-case hex with colons (as `openssl x509 -fingerprint -sha256`). */
export function fingerprint(pem: string): string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    throw new CredentialsError('E_CERTIFICATE', `Cannot read certificate: ${(err as Error).message}`, { cause: err });
  }
  return cert.fingerprint256.toUpperCase();
}

/** Hex digits in a SHA-256 fingerprint: 32 bytes. */
const SHA256_HEX_DIGITS = 64;

/**
 * Whether `text` is a SHA-256 fingerprint as an operator may type it: 64 hex digits in any case,
 * with or without colons or spaces between them (what normaliseFingerprint accepts).
 */
export function isSha256Fingerprint(text: string): boolean {
  return /^[0-9a-fA-F:\s]*$/.test(text) && text.replace(/[:\s]/g, '').length === SHA256_HEX_DIGITS;
}

/** A fingerprint as an operator may type it (any case, with or without colons or spaces) in canonical form. */
export function normaliseFingerprint(text: string): string {
  const hex = text.replace(/[^0-9a-fA-F]/g, '').toUpperCase();
  return hex.match(/.{1,2}/g)?.join(':') ?? '';
}

function spkiDer(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

function commonName(cert: X509Certificate): string | undefined {
  for (const line of cert.subject.split('\n')) if (line.startsWith('CN=')) return line.slice(3);
  return undefined;
}

function makeSelfSigned(keyPem: string, uuid: string, nowMs = Date.now()): string {
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  // A positive serial: DER INTEGER with the high bit clear.
  const serial = randomBytes(16);
  serial[0] &= 0x7f;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = new Date(nowMs - 60_000);
  cert.validity.notAfter = new Date(nowMs);
  cert.validity.notAfter.setUTCFullYear(cert.validity.notAfter.getUTCFullYear() + SELF_SIGNED_VALID_YEARS);
  const subject = [{ name: 'commonName', value: uuid }, { name: 'organizationalUnitName', value: 'sensor' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.sign(key, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

function newKeyPem(): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: SENSOR_KEY_BITS });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

function isRecord(v: unknown): v is SensorRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return typeof r.uuid === 'string' && r.uuid.length > 0
    && Number.isSafeInteger(r.sensor_id) && (r.sensor_id as number) >= 0
    && (r.enrolled_at === null || typeof r.enrolled_at === 'string')
    && Array.isArray(r.homes) && r.homes.every((h) => typeof h === 'string')
    && (r.ca_fingerprint === null || typeof r.ca_fingerprint === 'string')
    && (r.proxy === undefined || typeof r.proxy === 'string');
}

export class SensorCredentials {
  private constructor(
    readonly dir: string,
    private record: SensorRecord,
    private keyPemText: string,
    private certPemText: string,
    private caPemText: string | undefined,
  ) {}

  /** Reads the identity in `dir`, creating what is missing (directory 0700, UUID, key, self-signed certificate). */
  static loadOrCreate(dir: string): SensorCredentials {
    ensurePrivateDir(dir);
    const path = (f: string) => join(dir, f);
    let record: SensorRecord;
    if (existsSync(path(SENSOR_FILE))) {
      const text = readText(path(SENSOR_FILE));
      if (text.length > MAX_SENSOR_JSON_BYTES) throw new CredentialsError('E_CREDENTIALS', `Cannot read "${path(SENSOR_FILE)}": larger than ${MAX_SENSOR_JSON_BYTES} bytes`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        throw new CredentialsError('E_CREDENTIALS', `Cannot read "${path(SENSOR_FILE)}": not JSON (${(err as Error).message})`, { cause: err });
      }
      if (!isRecord(parsed)) throw new CredentialsError('E_CREDENTIALS', `Cannot read "${path(SENSOR_FILE)}": missing or wrong fields (uuid, sensor_id, enrolled_at, homes, ca_fingerprint)`);
      record = parsed;
    } else {
      record = { uuid: randomUUID(), sensor_id: 0, enrolled_at: null, homes: [], ca_fingerprint: null };
      writeFileAtomic(path(SENSOR_FILE), `${JSON.stringify(record, null, 2)}\n`);
    }
    const enrolled = record.sensor_id > 0;
    let keyPem = existsSync(path(KEY_FILE)) ? readText(path(KEY_FILE)) : undefined;
    if (keyPem === undefined) {
      if (enrolled) throw new CredentialsError('E_CREDENTIALS', `Sensor ${record.sensor_id} is enrolled but its key "${path(KEY_FILE)}" is missing: reset and enrol again`);
      keyPem = newKeyPem();
      writeFileAtomic(path(KEY_FILE), keyPem);
    }
    let key: KeyObject;
    try {
      key = createPublicKey(keyPem);
    } catch (err) {
      throw new CredentialsError('E_CREDENTIALS', `Cannot read key "${path(KEY_FILE)}": ${(err as Error).message}`, { cause: err });
    }
    let certPem = existsSync(path(CERT_FILE)) ? readText(path(CERT_FILE)) : undefined;
    const certMatches = certPem !== undefined && certKeyMatches(certPem, key);
    if (!certMatches) {
      if (enrolled) throw new CredentialsError('E_CREDENTIALS', `Sensor ${record.sensor_id} is enrolled but its certificate "${path(CERT_FILE)}" is missing or not for its key: reset and enrol again`);
      // Unconfigured (first start, or a reset interrupted between files): a fresh self-signed certificate.
      certPem = makeSelfSigned(keyPem, record.uuid);
      writeFileAtomic(path(CERT_FILE), certPem);
    }
    let caPem: string | undefined;
    if (enrolled) {
      if (!existsSync(path(CA_FILE))) throw new CredentialsError('E_CREDENTIALS', `Sensor ${record.sensor_id} is enrolled but home's CA "${path(CA_FILE)}" is missing: reset and enrol again`);
      caPem = readText(path(CA_FILE));
      const fp = safeFingerprint(caPem);
      if (fp === undefined || fp !== record.ca_fingerprint) {
        throw new CredentialsError('E_CREDENTIALS', `Home's CA "${path(CA_FILE)}" does not match the fingerprint in ${SENSOR_FILE} (${record.ca_fingerprint ?? 'none'})`);
      }
    }
    return new SensorCredentials(dir, record, keyPem, certPem as string, caPem);
  }

  get uuid(): string { return this.record.uuid; }
  get sensorId(): number { return this.record.sensor_id; }
  get enrolled(): boolean { return this.record.sensor_id > 0 && this.caPemText !== undefined; }
  get enrolledAt(): string | null { return this.record.enrolled_at; }
  get homes(): readonly string[] { return this.record.homes; }
  get proxy(): string | undefined { return this.record.proxy; }
  get caFingerprint(): string | null { return this.record.ca_fingerprint; }
  get keyPem(): string { return this.keyPemText; }
  get certPem(): string { return this.certPemText; }
  /** Home's CA (the pin), once enrolled. */
  get caPem(): string | undefined { return this.caPemText; }
  /** A copy of sensor.json's content. */
  get info(): SensorRecord { return { ...this.record, homes: [...this.record.homes] }; }

  /** A PKCS#10 request (PEM) for our key: CN = UUID, OU = sensor; `hostname` as a DNS name. */
  csr(hostname: string): string {
    const key = forge.pki.privateKeyFromPem(this.keyPemText) as forge.pki.rsa.PrivateKey;
    const req = forge.pki.createCertificationRequest();
    req.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
    req.setSubject([{ name: 'commonName', value: this.record.uuid }, { name: 'organizationalUnitName', value: 'sensor' }]);
    if (hostname.length > 0) {
      req.setAttributes([{ name: 'extensionRequest', extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: hostname }] }] }]);
    }
    req.sign(key, forge.md.sha256.create());
    return forge.pki.certificationRequestToPem(req);
  }

  /**
   * Installs home's answer to an enrolment: refuses a certificate that is not for our key, not
   * signed by `ca`, not for our UUID or expired, or a `ca` that is not a CA. sensor.json is written
   * last, so an interrupted install leaves the sensor unconfigured, never half-enrolled.
   */
  installEnrolment(grant: EnrolmentGrant, homes: readonly string[], nowMs = Date.now()): void {
    if (!Number.isSafeInteger(grant.sensor_id) || grant.sensor_id <= 0) throw new CredentialsError('E_ENROL_CERT', `Home gave an invalid sensor id ${JSON.stringify(grant.sensor_id)}`);
    let ca: X509Certificate;
    let cert: X509Certificate;
    try {
      ca = new X509Certificate(grant.ca);
    } catch (err) {
      throw new CredentialsError('E_ENROL_CERT', `Home's CA certificate cannot be read: ${(err as Error).message}`, { cause: err });
    }
    try {
      cert = new X509Certificate(grant.certificate);
    } catch (err) {
      throw new CredentialsError('E_ENROL_CERT', `The certificate home gave cannot be read: ${(err as Error).message}`, { cause: err });
    }
    if (!ca.ca) throw new CredentialsError('E_ENROL_CERT', `Home's CA certificate (${ca.subject.replace(/\n/g, ', ')}) is not a CA certificate`);
    if (!spkiDer(cert.publicKey).equals(spkiDer(createPublicKey(this.keyPemText)))) {
      throw new CredentialsError('E_ENROL_CERT', 'The certificate home gave is not for this sensor\'s key');
    }
    if (cert.checkIssued(ca) === false || !cert.verify(ca.publicKey)) {
      throw new CredentialsError('E_ENROL_CERT', `The certificate home gave is not signed by home's CA (fingerprint ${fingerprint(grant.ca)})`);
    }
    const cn = commonName(cert);
    if (cn !== this.record.uuid) throw new CredentialsError('E_ENROL_CERT', `The certificate home gave is for "${cn ?? ''}", not for this sensor (${this.record.uuid})`);
    if (Date.parse(cert.validTo) <= nowMs || Date.parse(cert.validFrom) > nowMs + 24 * 3600_000) {
      throw new CredentialsError('E_ENROL_CERT', `The certificate home gave is not valid now (valid ${cert.validFrom} to ${cert.validTo})`);
    }
    const caPem = ca.toString();
    const certPem = cert.toString();
    writeFileAtomic(join(this.dir, CA_FILE), caPem);
    writeFileAtomic(join(this.dir, CERT_FILE), certPem);
    const record: SensorRecord = {
      ...this.record,
      sensor_id: grant.sensor_id,
      enrolled_at: new Date(nowMs).toISOString(),
      homes: [...homes],
      ca_fingerprint: fingerprint(caPem),
    };
    writeFileAtomic(join(this.dir, SENSOR_FILE), `${JSON.stringify(record, null, 2)}\n`);
    this.record = record;
    this.certPemText = certPem;
    this.caPemText = caPem;
  }

  /** Stores the homes and the upstream proxy (undefined removes it) without touching the enrolment. */
  setLinkSettings(homes: readonly string[], proxy: string | undefined): void {
    const record: SensorRecord = { ...this.record, homes: [...homes] };
    if (proxy === undefined) delete record.proxy;
    else record.proxy = proxy;
    writeFileAtomic(join(this.dir, SENSOR_FILE), `${JSON.stringify(record, null, 2)}\n`);
    this.record = record;
  }

  /** Reset to unconfigured: sensor id 0, a new key pair and self-signed certificate, CA forgotten. UUID, homes and proxy stay. */
  reset(): void {
    const record: SensorRecord = { ...this.record, sensor_id: 0, enrolled_at: null, ca_fingerprint: null };
    writeFileAtomic(join(this.dir, SENSOR_FILE), `${JSON.stringify(record, null, 2)}\n`);
    const keyPem = newKeyPem();
    const certPem = makeSelfSigned(keyPem, record.uuid);
    writeFileAtomic(join(this.dir, KEY_FILE), keyPem);
    writeFileAtomic(join(this.dir, CERT_FILE), certPem);
    try {
      unlinkSync(join(this.dir, CA_FILE));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CredentialsError('E_CREDENTIALS', `Cannot remove "${join(this.dir, CA_FILE)}": ${(err as Error).message}`, { cause: err });
    }
    this.record = record;
    this.keyPemText = keyPem;
    this.certPemText = certPem;
    this.caPemText = undefined;
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CredentialsError('E_CREDENTIALS', `Cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

function certKeyMatches(certPem: string, key: KeyObject): boolean {
  try {
    return spkiDer(new X509Certificate(certPem).publicKey).equals(spkiDer(key));
  } catch {
    return false;
  }
}

function safeFingerprint(pem: string): string | undefined {
  try {
    return fingerprint(pem);
  } catch {
    return undefined;
  }
}

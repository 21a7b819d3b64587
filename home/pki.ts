/**
 * Home's private PKI. Input: the data directory. Output: a CA (RSA 3072, 10 years) and a server
 * certificate signed by it (made on first start, kept as ca.pem/ca.key/server.pem/server.key, 0600,
 * re-issued when its SANs change or it nears expiry), sensor certificates from PKCS#10 requests
 * (CN = uuid, OU = sensor, random positive serial, 5 years) and RS256 signatures of bundles.
 * Keys are made and every signature computed by node:crypto; node-forge only builds the ASN.1.
 */

import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign as cryptoSign, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import forge from 'node-forge';
import { ensurePrivateDir, writePrivateFile } from './files.js';

/** PROTOCOL.md: the CA is RSA 3072 and lives ten years; sensors pin it, so it must outlive them. */
export const CA_KEY_BITS = 3072;
export const CA_VALID_YEARS = 10;
/** Sensor certificates: five years, as the Securus install certificate (seeds/000). */
export const SENSOR_CERT_VALID_YEARS = 5;
export const SERVER_CERT_VALID_YEARS = 5;
/** A server certificate closer than this to its end is re-issued at start. */
export const SERVER_CERT_RENEW_MS = 30 * 24 * 3600 * 1000;
/** Serial numbers: 16 random bytes, top bit clear (positive) and next bit set (no leading zero). */
const SERIAL_BYTES = 16;
/** Largest CSR PEM accepted: an RSA 4096 request is about 1.7 kB. */
export const MAX_CSR_PEM_BYTES = 16 * 1024;
/** Smallest sensor key accepted in a CSR. */
export const MIN_SENSOR_KEY_BITS = 2048;

const BASE_SANS = ['localhost', '127.0.0.1', '::1'];

export interface CaMaterial {
  readonly certPem: string;
  readonly keyPem: string;
  /** SHA-256 of the DER, upper-case hex with colons (as `openssl x509 -fingerprint -sha256`). */
  readonly fingerprint: string;
}

export interface ServerMaterial {
  readonly certPem: string;
  readonly keyPem: string;
  readonly sans: readonly string[];
}

export interface IssuedCertificate {
  readonly pem: string;
  /** Upper-case hex without leading zeros, as node's `getPeerCertificate().serialNumber`. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export class PkiError extends Error {
  /** `E_CSR` (unreadable or unsigned request), `E_CSR_KEY` (weak or non-RSA key), `E_PKI_FILES`. */
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** SHA-256 fingerprint of a PEM certificate, `AB:CD:...`. */
export function certificateFingerprint(pem: string): string {
  const cert = forge.pki.certificateFromPem(pem);
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  return createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
}

/** Normal form of a certificate serial: upper-case hex, no leading zeros. */
export function normalSerial(hex: string): string {
  const s = hex.replace(/[^0-9a-fA-F]/g, '').toUpperCase().replace(/^0+/, '');
  return s === '' ? '0' : s;
}

function randomSerial(): string {
  const b = randomBytes(SERIAL_BYTES);
  b[0] = (b[0] & 0x7f) | 0x40;
  return b.toString('hex').toUpperCase();
}

/** Signs a forge certificate with a PEM private key through node:crypto (RSASSA-PKCS1-v1_5, SHA-256). */
function signCertificate(cert: forge.pki.Certificate, keyPem: string): void {
  const key = createPrivateKey(keyPem);
  let tbs = '';
  const md = { algorithm: 'sha256', update(bytes: string) { tbs += bytes; return md; } };
  const signer = { sign: () => cryptoSign('sha256', Buffer.from(tbs, 'binary'), key).toString('binary') };
  (cert as unknown as { sign(k: unknown, m: unknown): void }).sign(signer, md);
}

function yearsFrom(d: Date, years: number): Date {
  const out = new Date(d.getTime());
  out.setUTCFullYear(out.getUTCFullYear() + years);
  return out;
}

function newRsaKey(bits: number): { keyPem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
  };
}

/** Makes a fresh self-signed CA. */
export function createCa(commonName = 'Hark home CA', now = new Date()): CaMaterial {
  const { keyPem, publicPem } = newRsaKey(CA_KEY_BITS);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = yearsFrom(now, CA_VALID_YEARS);
  const subject = [{ name: 'commonName', value: commonName }, { name: 'organizationName', value: 'Hark' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  signCertificate(cert, keyPem);
  const certPem = forge.pki.certificateToPem(cert);
  return { certPem, keyPem, fingerprint: certificateFingerprint(certPem) };
}

function sanEntries(names: readonly string[]): Array<{ type: number; value?: string; ip?: string }> {
  return names.map((n) => (isIP(n) !== 0 ? { type: 7, ip: n } : { type: 2, value: n }));
}

/** The SAN list a server certificate should carry: the base names plus `extra`, deduplicated, in order. */
export function serverSans(extra: readonly string[]): string[] {
  return [...new Set([...BASE_SANS, ...extra.map((n) => n.trim().toLowerCase()).filter((n) => n !== '')])];
}

/** Issues home's TLS server certificate for `sans` (DNS names and IP addresses). */
export function issueServerCertificate(ca: CaMaterial, sans: readonly string[], now = new Date()): ServerMaterial {
  const { keyPem, publicPem } = newRsaKey(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = yearsFrom(now, SERVER_CERT_VALID_YEARS);
  cert.setSubject([{ name: 'commonName', value: sans.find((n) => isIP(n) === 0 && n !== 'localhost') ?? 'localhost' }, { name: 'organizationName', value: 'Hark' }]);
  cert.setIssuer(forge.pki.certificateFromPem(ca.certPem).subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: sanEntries(sans) },
  ]);
  signCertificate(cert, ca.keyPem);
  return { certPem: forge.pki.certificateToPem(cert), keyPem, sans: [...sans] };
}

/** The SANs a PEM server certificate carries, as strings (IPs in canonical text form). */
export function certificateSans(pem: string): string[] {
  const cert = forge.pki.certificateFromPem(pem);
  const ext = cert.getExtension('subjectAltName') as { altNames?: Array<{ type: number; value?: string; ip?: string }> } | null;
  const out: string[] = [];
  for (const alt of ext?.altNames ?? []) {
    if (alt.type === 7 && alt.ip !== undefined) out.push(alt.ip);
    else if (alt.type === 2 && alt.value !== undefined) out.push(alt.value.toLowerCase());
  }
  return out;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a.map(canonicalName));
  const sb = new Set(b.map(canonicalName));
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

function canonicalName(n: string): string {
  if (isIP(n) === 6) {
    // forge prints ::1 as 0:0:0:0:0:0:0:1; compare by the URL parser's canonical form.
    try { return new URL(`http://[${n}]/`).hostname; } catch { return n; }
  }
  return n.toLowerCase();
}

/**
 * Loads the CA and server certificate from `dir`, making what is missing. The server certificate
 * is re-issued when its SANs differ from `sans` or it is near its end; the CA is never replaced
 * (sensors pin it). Returns what was loaded and whether anything was made.
 */
export function ensurePki(dir: string, extraNames: readonly string[], now = new Date()): { ca: CaMaterial; server: ServerMaterial; madeCa: boolean; madeServer: boolean } {
  ensurePrivateDir(dir);
  const caPem = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  let ca: CaMaterial;
  let madeCa = false;
  if (existsSync(caPem) && existsSync(caKey)) {
    const certPem = readFileSync(caPem, 'utf8');
    ca = { certPem, keyPem: readFileSync(caKey, 'utf8'), fingerprint: certificateFingerprint(certPem) };
  } else if (existsSync(caPem) || existsSync(caKey)) {
    throw new PkiError('E_PKI_FILES', `Cannot load home's CA in "${dir}": one of ca.pem / ca.key is missing; restore it from backup (sensors pin this CA)`);
  } else {
    ca = createCa('Hark home CA', now);
    writePrivateFile(caKey, ca.keyPem);
    writePrivateFile(caPem, ca.certPem);
    madeCa = true;
  }
  const sans = serverSans(extraNames);
  const srvPem = join(dir, 'server.pem');
  const srvKey = join(dir, 'server.key');
  let server: ServerMaterial | undefined;
  if (!madeCa && existsSync(srvPem) && existsSync(srvKey)) {
    const certPem = readFileSync(srvPem, 'utf8');
    const cert = forge.pki.certificateFromPem(certPem);
    const current = certificateSans(certPem);
    const fresh = cert.validity.notAfter.getTime() - now.getTime() > SERVER_CERT_RENEW_MS;
    const ours = forge.pki.certificateFromPem(ca.certPem).verify(cert);
    if (fresh && ours && sameSet(current, sans)) server = { certPem, keyPem: readFileSync(srvKey, 'utf8'), sans: current };
  }
  let madeServer = false;
  if (server === undefined) {
    server = issueServerCertificate(ca, sans, now);
    writePrivateFile(srvKey, server.keyPem);
    writePrivateFile(srvPem, server.certPem);
    madeServer = true;
  }
  return { ca, server, madeCa, madeServer };
}

/** A checked PKCS#10 request: its public key PEM and size. Throws PkiError on anything wrong. */
export function readCsr(csrPem: string): { publicKeyPem: string; bits: number } {
  if (typeof csrPem !== 'string' || csrPem.length > MAX_CSR_PEM_BYTES || !csrPem.includes('CERTIFICATE REQUEST')) {
    throw new PkiError('E_CSR', 'Cannot read the certificate request: expected a PKCS#10 PEM ("BEGIN CERTIFICATE REQUEST")');
  }
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem);
  } catch (err) {
    throw new PkiError('E_CSR', `Cannot read the certificate request: ${(err as Error).message}`, { cause: err });
  }
  const key = csr.publicKey as forge.pki.rsa.PublicKey | null;
  if (key === null || key.n === undefined) throw new PkiError('E_CSR_KEY', 'Cannot use the certificate request: its key is not RSA');
  const bits = key.n.bitLength();
  if (bits < MIN_SENSOR_KEY_BITS) throw new PkiError('E_CSR_KEY', `Cannot use the certificate request: RSA ${bits} bits is below ${MIN_SENSOR_KEY_BITS}`);
  let ok = false;
  try { ok = csr.verify(); } catch { ok = false; }
  if (!ok) throw new PkiError('E_CSR', 'Cannot use the certificate request: its signature does not verify (not made with the key it carries)');
  return { publicKeyPem: forge.pki.publicKeyToPem(key), bits };
}

/**
 * Signs a sensor certificate: subject CN = `uuid`, OU = sensor, key from `csrPem`, random serial.
 * `validity` overrides the dates (tests make an expired certificate with it).
 */
export function issueSensorCertificate(ca: CaMaterial, csrPem: string, uuid: string, validity?: { notBefore: Date; notAfter: Date }, now = new Date()): IssuedCertificate {
  const { publicKeyPem } = readCsr(csrPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  const serial = randomSerial();
  cert.serialNumber = serial;
  cert.validity.notBefore = validity?.notBefore ?? new Date(now.getTime() - 60_000);
  cert.validity.notAfter = validity?.notAfter ?? yearsFrom(now, SENSOR_CERT_VALID_YEARS);
  cert.setSubject([{ name: 'commonName', value: uuid }, { name: 'organizationalUnitName', value: 'sensor' }, { name: 'organizationName', value: 'Hark' }]);
  cert.setIssuer(forge.pki.certificateFromPem(ca.certPem).subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
  ]);
  signCertificate(cert, ca.keyPem);
  return { pem: forge.pki.certificateToPem(cert), serial: normalSerial(serial), notBefore: cert.validity.notBefore, notAfter: cert.validity.notAfter };
}

/** RSASSA-PKCS1-v1_5 SHA-256 signature of `bytes` with the CA key. */
export function signBundle(ca: CaMaterial, bytes: Uint8Array): Buffer {
  return cryptoSign('sha256', bytes, createPrivateKey(ca.keyPem));
}

/** Verifies a bundle signature with a CA certificate's public key (what a sensor does). */
export function verifyBundle(caPem: string, bytes: Uint8Array, signature: Uint8Array): boolean {
  try {
    return cryptoVerify('sha256', bytes, new X509Certificate(caPem).publicKey, signature);
  } catch {
    return false;
  }
}

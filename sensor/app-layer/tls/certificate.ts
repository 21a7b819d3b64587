/**
 * App layer, TLS: what a server certificate says. Input: one DER X.509 certificate (from a Certificate
 * message). Output: a small readonly summary (names as RFC 4514 strings, serial, validity as ISO 8601, SHA-256
 * fingerprint, DNS subject alternative names, RSA modulus for matching a private key), or undefined when the
 * bytes are not a certificate node:crypto can read. Never throws.
 */

import { createHash, X509Certificate } from 'node:crypto';

export interface CertificateInfo {
  /** RFC 4514 order (most specific RDN first), e.g. `CN=R3,O=Let's Encrypt,C=US`; values escaped as OpenSSL
   * does for RFC 2253 except that non-ASCII stays UTF-8. */
  readonly subject: string;
  readonly issuer: string;
  /** The subject's (last) CN value, unescaped; undefined when there is none. */
  readonly subjectCommonName: string | undefined;
  /** Serial number, upper-case hex as `openssl x509 -serial` prints it. */
  readonly serial: string;
  /** Validity, ISO 8601 UTC (`2021-03-22T13:32:15.000Z`). */
  readonly notBefore: string;
  readonly notAfter: string;
  /** SHA-256 of the DER, lower-case hex without separators. */
  readonly sha256: string;
  /** dNSName entries of subjectAltName, in order. */
  readonly subjectAltNames: readonly string[];
  /** node:crypto's asymmetricKeyType: 'rsa', 'rsa-pss', 'ec', 'ed25519', 'dsa', ... */
  readonly publicKeyType: string | undefined;
  /** RSA public modulus, lower-case hex, big-endian without leading zero bytes (JWK `n`); undefined for
   * other key types. Equal moduli mean the same key pair. */
  readonly publicKeyModulusHex: string | undefined;
  /** basicConstraints cA. */
  readonly isCa: boolean;
  /** Subject equals issuer (a root or a self-signed server certificate). */
  readonly selfIssued: boolean;
}

const MONTHS: Readonly<Record<string, number>> = {
  Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11,
};
/** OpenSSL's ASN1_TIME_print form, which node:crypto's validFrom / validTo use: `Mar 22 13:32:15 2021 GMT`. */
const OPENSSL_TIME = /^([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d) (\d{4}) GMT$/;

function isoTime(s: string): string {
  const m = OPENSSL_TIME.exec(s);
  const month = m === null ? undefined : MONTHS[m[1]];
  if (m === null || month === undefined) return '';
  const t = Date.UTC(Number(m[6]), month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]));
  return Number.isFinite(t) ? new Date(t).toISOString() : '';
}

/**
 * node:crypto prints a name one attribute per line in certificate order (OpenSSL XN_FLAG_SEP_MULTILINE with
 * RFC 2253 escaping, so a value never holds a raw newline and a literal '+' is escaped); the attributes of a
 * multi-valued RDN are joined by ' + '. RFC 4514 wants the RDNs reversed, joined by ','.
 */
function rfc4514(multiline: string): string {
  if (multiline === '') return '';
  return multiline.split('\n').reverse().map((rdn) => rdn.replace(/ \+ /g, '+')).join(',');
}

/** Undoes the RFC 2253 escaping of one attribute value (`\,` and `\XX` hex pairs). */
function unescapeValue(v: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < v.length; i++) {
    const ch = v[i];
    if (ch === '\\' && i + 1 < v.length) {
      const pair = v.slice(i + 1, i + 3);
      if (/^[0-9A-Fa-f]{2}$/.test(pair)) {
        bytes.push(parseInt(pair, 16));
        i += 2;
      } else {
        for (const b of Buffer.from(v[i + 1], 'utf8')) bytes.push(b);
        i += 1;
      }
      continue;
    }
    for (const b of Buffer.from(ch, 'utf8')) bytes.push(b);
  }
  return Buffer.from(bytes).toString('utf8');
}

function commonName(multiline: string): string | undefined {
  let cn: string | undefined;
  for (const line of multiline.split('\n')) {
    for (const attr of line.split(' + ')) if (attr.startsWith('CN=')) cn = unescapeValue(attr.slice(3));
  }
  return cn;
}

/**
 * node:crypto's subjectAltName: `DNS:a.example, DNS:b.example, IP Address:1.2.3.4`; an entry whose value holds
 * a character that would make this ambiguous is printed as a JSON string (`DNS:"a, b"`, Node >= 17.3.1).
 */
function dnsNames(san: string | undefined): string[] {
  const out: string[] = [];
  if (san === undefined || san === '') return out;
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(':', i);
    if (colon < 0) break;
    const kind = san.slice(i, colon);
    let value: string;
    let next: number;
    if (san[colon + 1] === '"') {
      let j = colon + 2;
      while (j < san.length && san[j] !== '"') j += san[j] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(san.slice(colon + 1, j + 1)) as string;
      } catch {
        value = san.slice(colon + 2, j);
      }
      next = san.indexOf(', ', j);
    } else {
      next = san.indexOf(', ', colon);
      value = san.slice(colon + 1, next < 0 ? san.length : next);
    }
    if (kind === 'DNS') out.push(value);
    if (next < 0) break;
    i = next + 2;
  }
  return out;
}

function rsaModulusHex(cert: X509Certificate): string | undefined {
  const key = cert.publicKey;
  if (key.asymmetricKeyType !== 'rsa') return undefined;
  const jwk = key.export({ format: 'jwk' });
  return typeof jwk.n === 'string' ? Buffer.from(jwk.n, 'base64url').toString('hex') : undefined;
}

/** DER SEQUENCE tag: node:crypto would also take PEM text, which a Certificate message never carries. */
const DER_SEQUENCE = 0x30;

/** Summarises one DER certificate; undefined when it is not DER or node:crypto cannot parse it. */
export function describeCertificate(der: Uint8Array): CertificateInfo | undefined {
  if (der.length === 0 || der[0] !== DER_SEQUENCE) return undefined;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    return undefined;
  }
  try {
    let publicKeyType: string | undefined;
    let publicKeyModulusHex: string | undefined;
    try {
      publicKeyType = cert.publicKey.asymmetricKeyType;
      publicKeyModulusHex = rsaModulusHex(cert);
    } catch {
      // A key type node:crypto cannot load (e.g. GOST): the rest of the summary still stands.
    }
    return {
      subject: rfc4514(cert.subject),
      issuer: rfc4514(cert.issuer),
      subjectCommonName: commonName(cert.subject),
      serial: cert.serialNumber.toUpperCase(),
      notBefore: isoTime(cert.validFrom),
      notAfter: isoTime(cert.validTo),
      sha256: createHash('sha256').update(der).digest('hex'),
      subjectAltNames: dnsNames(cert.subjectAltName),
      publicKeyType,
      publicKeyModulusHex,
      isCa: cert.ca,
      selfIssued: cert.subject === cert.issuer,
    };
  } catch {
    return undefined;
  }
}

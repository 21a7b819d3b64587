/**
 * App layer, TLS: client and server hello fingerprints. Input: a parsed ClientHello / ServerHello.
 * Output: JA3 and JA3S (Salesforce, BSD-3-Clause method: decimal fields, GREASE removed, MD5) and JA4 /
 * JA4_r (FoxIO JA4 TLS client fingerprint, BSD-3-Clause method, technical_details/JA4.md). Only these: the
 * rest of JA4+ (JA4S, JA4X, ...) is under the FoxIO License 1.1, which rules out commercial use.
 */

import { createHash } from 'node:crypto';
import { EXT_ALPN, EXT_SERVER_NAME, EXT_SUPPORTED_VERSIONS, findExtension, isGrease, type ClientHello, type ServerHello } from './handshake.js';

export interface Ja3 {
  /** The JA3 string, e.g. `771,4865-4866,0-23,29-23,0`. */
  readonly text: string;
  /** Its MD5, lower-case hex. */
  readonly hash: string;
}

/** What JA4 prints when a list is empty, instead of hashing nothing (JA4.md, "Cipher hash"). */
const JA4_EMPTY_HASH = '000000000000';
/** JA4 hashes are SHA-256 truncated to this many hex characters. */
const JA4_HASH_HEX_CHARS = 12;
/** JA4 counts are two decimal digits; more than 99 prints 99. */
const JA4_MAX_COUNT = 99;

/** JA4.md "TLS and DTLS Version"; anything else is '00'. */
const JA4_VERSIONS: ReadonlyMap<number, string> = new Map([
  [0x0304, '13'], [0x0303, '12'], [0x0302, '11'], [0x0301, '10'], [0x0300, 's3'], [0x0002, 's2'],
  [0xfeff, 'd1'], [0xfefd, 'd2'], [0xfefc, 'd3'],
]);

function withoutGrease(values: readonly number[]): number[] {
  const out: number[] = [];
  for (const v of values) if (!isGrease(v)) out.push(v);
  return out;
}

function md5Hex(s: string): string {
  return createHash('md5').update(s, 'latin1').digest('hex');
}

function sha256Prefix(s: string): string {
  return createHash('sha256').update(s, 'latin1').digest('hex').slice(0, JA4_HASH_HEX_CHARS);
}

/**
 * JA3 (github.com/salesforce/ja3): `SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats`,
 * decimal, list items joined by '-', GREASE values (RFC 8701) left out, in wire order; SSLVersion is the
 * ClientHello's legacy_version. Absent lists are empty fields.
 */
export function ja3(ch: ClientHello): Ja3 {
  const text = [
    String(ch.legacyVersion),
    withoutGrease(ch.cipherSuites).join('-'),
    withoutGrease(ch.extensions.map((e) => e.type)).join('-'),
    withoutGrease(ch.supportedGroups).join('-'),
    ch.ecPointFormats.join('-'),
  ].join(',');
  return { text, hash: md5Hex(text) };
}

/** JA3S: `SSLVersion,Cipher,Extensions` of the ServerHello (legacy_version, decimal, GREASE left out). */
export function ja3s(sh: ServerHello): Ja3 {
  const text = [
    String(sh.legacyVersion),
    String(sh.cipherSuite),
    withoutGrease(sh.extensions.map((e) => e.type)).join('-'),
  ].join(',');
  return { text, hash: md5Hex(text) };
}

const hex4 = (v: number): string => v.toString(16).padStart(4, '0');
const count2 = (n: number): string => String(Math.min(n, JA4_MAX_COUNT)).padStart(2, '0');

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/**
 * JA4 ALPN characters: the first and last characters of the first ALPN value when both are ASCII
 * alphanumerics, else the first and last characters of the value's hex; '00' when there is no value.
 */
function ja4Alpn(alpn: readonly string[]): string {
  if (alpn.length === 0 || alpn[0].length === 0) return '00';
  const v = alpn[0];
  const first = v.charCodeAt(0);
  const last = v.charCodeAt(v.length - 1);
  if (isAlnum(first) && isAlnum(last)) return v[0] + v[v.length - 1];
  return first.toString(16).padStart(2, '0')[0] + last.toString(16).padStart(2, '0')[1];
}

/** The parts JA4 hashes: section a, the sorted ciphers, the sorted extensions, the signature algorithms. */
function ja4Parts(ch: ClientHello, transport: 'tcp' | 'quic'): [string, string, string, string] {
  const ciphers = withoutGrease(ch.cipherSuites);
  const extTypes = withoutGrease(ch.extensions.map((e) => e.type));
  // Version: the highest supported_versions entry when that extension is there, else legacy_version.
  let version = ch.legacyVersion;
  if (findExtension(ch.extensions, EXT_SUPPORTED_VERSIONS) !== undefined) {
    const listed = withoutGrease(ch.supportedVersions);
    if (listed.length > 0) version = Math.max(...listed);
  }
  const a = (transport === 'quic' ? 'q' : 't')
    + (JA4_VERSIONS.get(version) ?? '00')
    + (findExtension(ch.extensions, EXT_SERVER_NAME) !== undefined ? 'd' : 'i')
    + count2(ciphers.length)
    + count2(extTypes.length)
    + ja4Alpn(ch.alpn);
  const sortedCiphers = ciphers.sort((x, y) => x - y).map(hex4).join(',');
  // SNI and ALPN are already in section a, so they stay out of the extension hash.
  const sortedExts = extTypes.filter((t) => t !== EXT_SERVER_NAME && t !== EXT_ALPN).sort((x, y) => x - y).map(hex4).join(',');
  const sigAlgs = withoutGrease(ch.signatureAlgorithms).map(hex4).join(',');
  return [a, sortedCiphers, sortedExts, sigAlgs];
}

/**
 * JA4 (FoxIO, technical_details/JA4.md): `a_b_c` where a = t|q, version, d|i (SNI present), cipher count,
 * extension count (GREASE left out, SNI and ALPN counted), ALPN characters; b = SHA-256 of the sorted
 * cipher list, c = SHA-256 of the sorted extension list without SNI and ALPN, then '_' and the signature
 * algorithms in wire order (no '_' when there are none); each hash cut to 12 hex characters.
 */
export function ja4(ch: ClientHello, transport: 'tcp' | 'quic'): string {
  const [a, ciphers, exts, sigAlgs] = ja4Parts(ch, transport);
  const b = ciphers === '' ? JA4_EMPTY_HASH : sha256Prefix(ciphers);
  const c = exts === '' ? JA4_EMPTY_HASH : sha256Prefix(sigAlgs === '' ? exts : `${exts}_${sigAlgs}`);
  return `${a}_${b}_${c}`;
}

/** JA4_r, the unhashed form of `ja4`: `a_ciphers_extensions_signaturealgorithms` (the last part and its
 * '_' left off when there are no signature algorithms). */
export function ja4Raw(ch: ClientHello, transport: 'tcp' | 'quic'): string {
  const [a, ciphers, exts, sigAlgs] = ja4Parts(ch, transport);
  return sigAlgs === '' ? `${a}_${ciphers}_${exts}` : `${a}_${ciphers}_${exts}_${sigAlgs}`;
}

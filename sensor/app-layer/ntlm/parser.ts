/**
 * App layer, NTLMSSP ([MS-NLMP] §2.2.1): pure parser for NEGOTIATE (type 1), CHALLENGE (type 2) and
 * AUTHENTICATE (type 3) messages, plus extraction from an HTTP `Authorization` / `Proxy-Authorization`
 * value (`NTLM <base64>`, or `Negotiate <base64>` with SPNEGO around NTLMSSP). Input: bytes or header
 * text. Output: readonly records with the names in clear (type 3: user, domain, workstation, decoded
 * as UTF-16LE or OEM per the negotiate flags) or `{ anomaly }`. Every field is bounds-checked; never throws.
 */

import { defineAnomaly } from '../../events/counters.js';
import { hexFromBytes } from '../../identity/address.js';
import { cleanIdentityText } from '../../identity/observation.js';

export const NTLMSSP_SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');

/** Negotiate flags used ([MS-NLMP] §2.2.2.5). */
export const NTLM_FLAGS = {
  UNICODE: 0x00000001, OEM: 0x00000002, ANONYMOUS: 0x00000800, OEM_DOMAIN_SUPPLIED: 0x00001000,
  OEM_WORKSTATION_SUPPLIED: 0x00002000, TARGET_INFO: 0x00800000, VERSION: 0x02000000,
} as const;

/** Message field offsets ([MS-NLMP] §2.2.1.1-3); each "fields" entry is len(2), maxlen(2), offset(4). */
const NEGOTIATE = { FLAGS: 12, DOMAIN: 16, WORKSTATION: 24, MIN_LEN: 16, FIELDS_LEN: 32 } as const;
const CHALLENGE = { TARGET_NAME: 12, FLAGS: 20, CHALLENGE: 24, TARGET_INFO: 40, MIN_LEN: 32, TARGET_INFO_LEN: 48 } as const;
const AUTHENTICATE = { LM: 12, NT: 20, DOMAIN: 28, USER: 36, WORKSTATION: 44, SESSION_KEY: 52, FLAGS: 60, MIN_LEN: 52, FLAGS_END: 64 } as const;
/** AV_PAIR ids in a CHALLENGE's target info ([MS-NLMP] §2.2.2.1). */
const AV = { EOL: 0, NB_COMPUTER: 1, NB_DOMAIN: 2, DNS_COMPUTER: 3, DNS_DOMAIN: 4 } as const;

/** Name bytes decoded per field: Windows names are at most 256 UTF-16 characters. */
export const MAX_NTLM_NAME_BYTES = 1024;
/** AV pairs read from a target info block (Windows sends under ten). */
export const MAX_NTLM_AV_PAIRS = 32;
/** Base64 characters taken from one header value: servers cap headers at 8-64 KB. */
export const MAX_AUTH_TOKEN_BASE64_CHARS = 64 * 1024;
/** Bytes of a SPNEGO token searched for the NTLMSSP signature. */
const MAX_SPNEGO_SEARCH_BYTES = 16 * 1024;

export const A_NTLM_BAD_SIGNATURE = defineAnomaly('ntlm.bad_signature');
export const A_NTLM_TOO_SHORT = defineAnomaly('ntlm.too_short');
export const A_NTLM_UNKNOWN_TYPE = defineAnomaly('ntlm.unknown_type');
export const A_NTLM_FIELD_OUT_OF_BOUNDS = defineAnomaly('ntlm.field_out_of_bounds');
export const A_NTLM_NAME_TOO_LONG = defineAnomaly('ntlm.name_too_long');

export interface NtlmNegotiate {
  readonly type: 1;
  readonly flags: number;
  readonly domain?: string;
  readonly workstation?: string;
  readonly anomalies: readonly number[];
}

export interface NtlmChallenge {
  readonly type: 2;
  readonly flags: number;
  readonly targetName?: string;
  /** Server challenge, hex. */
  readonly challenge: string;
  readonly nbComputerName?: string;
  readonly nbDomainName?: string;
  readonly dnsComputerName?: string;
  readonly dnsDomainName?: string;
  readonly anomalies: readonly number[];
}

export interface NtlmAuthenticate {
  readonly type: 3;
  /** Undefined in the old short form without flags (names then decoded by guess, see `unicode`). */
  readonly flags?: number;
  readonly unicode: boolean;
  readonly user: string;
  readonly domain: string;
  readonly workstation: string;
  /** Empty user name and NT response: an anonymous logon ([MS-NLMP] §3.2.5.1.2). */
  readonly anonymous: boolean;
  readonly lmResponseLength: number;
  readonly ntResponseLength: number;
  readonly anomalies: readonly number[];
}

export type NtlmMessage = NtlmNegotiate | NtlmChallenge | NtlmAuthenticate;
export type NtlmResult = NtlmMessage | { readonly anomaly: number };

const u16 = (b: Uint8Array, o: number): number => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number): number => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;

interface Field {
  len: number;
  off: number;
}

function field(b: Uint8Array, at: number): Field {
  return { len: u16(b, at), off: u32(b, at + 4) };
}

/** The bytes of a field, or undefined (anomaly pushed) when out of the message. */
function fieldBytes(b: Uint8Array, f: Field, anomalies: number[]): Uint8Array | undefined {
  if (f.len === 0) return new Uint8Array(0);
  if (f.off > b.length || f.off + f.len > b.length) {
    anomalies.push(A_NTLM_FIELD_OUT_OF_BOUNDS);
    return undefined;
  }
  return b.subarray(f.off, f.off + f.len);
}

function decodeName(bytes: Uint8Array | undefined, unicode: boolean, anomalies: number[]): string {
  if (bytes === undefined || bytes.length === 0) return '';
  let v = bytes;
  if (v.length > MAX_NTLM_NAME_BYTES) {
    anomalies.push(A_NTLM_NAME_TOO_LONG);
    v = v.subarray(0, MAX_NTLM_NAME_BYTES);
  }
  const buf = Buffer.from(v.buffer, v.byteOffset, unicode ? v.length & ~1 : v.length);
  // OEM strings use the client's code page, which the wire does not say; latin1 keeps every byte.
  return cleanIdentityText(buf.toString(unicode ? 'utf16le' : 'latin1')) ?? '';
}

/** Guess for the short form without flags: UTF-16LE when every odd byte of the name is zero. */
function looksUtf16(bytes: Uint8Array | undefined): boolean {
  if (bytes === undefined || bytes.length === 0 || (bytes.length & 1) !== 0) return false;
  for (let i = 1; i < bytes.length; i += 2) if (bytes[i] !== 0) return false;
  return true;
}

/** True when `b` starts with the NTLMSSP signature. */
export function isNtlmssp(b: Uint8Array): boolean {
  if (b.length < NTLMSSP_SIGNATURE.length) return false;
  for (let i = 0; i < NTLMSSP_SIGNATURE.length; i++) if (b[i] !== NTLMSSP_SIGNATURE[i]) return false;
  return true;
}

/** Parses one NTLMSSP message (the bytes start at the signature). */
export function parseNtlmMessage(b: Uint8Array): NtlmResult {
  if (b.length < 12) return { anomaly: b.length >= 8 && isNtlmssp(b) ? A_NTLM_TOO_SHORT : A_NTLM_BAD_SIGNATURE };
  if (!isNtlmssp(b)) return { anomaly: A_NTLM_BAD_SIGNATURE };
  const type = u32(b, 8);
  const anomalies: number[] = [];
  if (type === 1) {
    if (b.length < NEGOTIATE.MIN_LEN) return { anomaly: A_NTLM_TOO_SHORT };
    const flags = u32(b, NEGOTIATE.FLAGS);
    const out: { type: 1; flags: number; domain?: string; workstation?: string; anomalies: number[] } = { type: 1, flags, anomalies };
    if (b.length >= NEGOTIATE.FIELDS_LEN) {
      if (flags & NTLM_FLAGS.OEM_DOMAIN_SUPPLIED) {
        const d = decodeName(fieldBytes(b, field(b, NEGOTIATE.DOMAIN), anomalies), false, anomalies);
        if (d !== '') out.domain = d;
      }
      if (flags & NTLM_FLAGS.OEM_WORKSTATION_SUPPLIED) {
        const w = decodeName(fieldBytes(b, field(b, NEGOTIATE.WORKSTATION), anomalies), false, anomalies);
        if (w !== '') out.workstation = w;
      }
    }
    return out;
  }
  if (type === 2) {
    if (b.length < CHALLENGE.MIN_LEN) return { anomaly: A_NTLM_TOO_SHORT };
    const flags = u32(b, CHALLENGE.FLAGS);
    const unicode = (flags & NTLM_FLAGS.UNICODE) !== 0;
    const out: Record<string, unknown> = { type: 2, flags, challenge: hexFromBytes(b, CHALLENGE.CHALLENGE, 8), anomalies };
    const target = decodeName(fieldBytes(b, field(b, CHALLENGE.TARGET_NAME), anomalies), unicode, anomalies);
    if (target !== '') out.targetName = target;
    if (b.length >= CHALLENGE.TARGET_INFO_LEN && (flags & NTLM_FLAGS.TARGET_INFO)) {
      const info = fieldBytes(b, field(b, CHALLENGE.TARGET_INFO), anomalies);
      if (info !== undefined) {
        const keys: Record<number, string> = { [AV.NB_COMPUTER]: 'nbComputerName', [AV.NB_DOMAIN]: 'nbDomainName', [AV.DNS_COMPUTER]: 'dnsComputerName', [AV.DNS_DOMAIN]: 'dnsDomainName' };
        let p = 0;
        for (let n = 0; n < MAX_NTLM_AV_PAIRS && p + 4 <= info.length; n++) {
          const id = u16(info, p);
          const len = u16(info, p + 2);
          if (id === AV.EOL) break;
          if (p + 4 + len > info.length) {
            anomalies.push(A_NTLM_FIELD_OUT_OF_BOUNDS);
            break;
          }
          const key = keys[id];
          if (key !== undefined && out[key] === undefined) {
            const v = decodeName(info.subarray(p + 4, p + 4 + len), true, anomalies);
            if (v !== '') out[key] = v;
          }
          p += 4 + len;
        }
      }
    }
    return out as unknown as NtlmChallenge;
  }
  if (type === 3) {
    if (b.length < AUTHENTICATE.MIN_LEN) return { anomaly: A_NTLM_TOO_SHORT };
    const fLm = field(b, AUTHENTICATE.LM);
    const fNt = field(b, AUTHENTICATE.NT);
    const fDomain = field(b, AUTHENTICATE.DOMAIN);
    const fUser = field(b, AUTHENTICATE.USER);
    const fWs = field(b, AUTHENTICATE.WORKSTATION);
    // The flags exist when the payload starts after them (the old short form ends at the session key).
    let minOff = Infinity;
    for (const f of [fLm, fNt, fDomain, fUser, fWs]) if (f.len > 0 && f.off < minOff) minOff = f.off;
    const hasFlags = b.length >= AUTHENTICATE.FLAGS_END && minOff >= AUTHENTICATE.FLAGS_END;
    const flags = hasFlags ? u32(b, AUTHENTICATE.FLAGS) : undefined;
    const userBytes = fieldBytes(b, fUser, anomalies);
    const unicode = flags !== undefined ? (flags & NTLM_FLAGS.UNICODE) !== 0 : looksUtf16(userBytes);
    const user = decodeName(userBytes, unicode, anomalies);
    const domain = decodeName(fieldBytes(b, fDomain, anomalies), unicode, anomalies);
    const workstation = decodeName(fieldBytes(b, fWs, anomalies), unicode, anomalies);
    return {
      type: 3,
      ...(flags !== undefined ? { flags } : {}),
      unicode,
      user,
      domain,
      workstation,
      anonymous: user === '' && fNt.len === 0,
      lmResponseLength: fLm.len,
      ntResponseLength: fNt.len,
      anomalies,
    };
  }
  return { anomaly: A_NTLM_UNKNOWN_TYPE };
}

export function isNtlmError(r: NtlmResult): r is { readonly anomaly: number } {
  return (r as { anomaly?: number }).anomaly !== undefined;
}

/**
 * The NTLMSSP bytes in an HTTP `Authorization`, `Proxy-Authorization` or `WWW-Authenticate` value:
 * `NTLM <base64>` holds NTLMSSP directly; `Negotiate <base64>` holds SPNEGO, in which NTLMSSP is found
 * by its signature (a Kerberos token has none: undefined). Undefined for any other scheme or bad base64.
 */
export function ntlmFromAuthorizationHeader(value: string): Uint8Array | undefined {
  const v = value.trim();
  const sp = v.indexOf(' ');
  if (sp < 0) return undefined;
  const scheme = v.slice(0, sp).toLowerCase();
  if (scheme !== 'ntlm' && scheme !== 'negotiate') return undefined;
  const b64 = v.slice(sp + 1).replace(/\s+/g, '');
  if (b64.length === 0 || b64.length > MAX_AUTH_TOKEN_BASE64_CHARS || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  const bytes = Buffer.from(b64, 'base64');
  if (isNtlmssp(bytes)) return bytes;
  if (scheme !== 'negotiate') return undefined;
  const at = bytes.subarray(0, MAX_SPNEGO_SEARCH_BYTES).indexOf(NTLMSSP_SIGNATURE);
  return at < 0 ? undefined : bytes.subarray(at);
}

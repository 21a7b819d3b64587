/**
 * App layer, Kerberos V5 (RFC 4120 §5): pure parser for one KDC message (a UDP payload, or one TCP
 * record without its 4-byte length). Input: DER bytes. Output: a readonly `KerberosMessage` with the
 * message type and the names in clear: AS-REQ / TGS-REQ req-body cname + realm and NetBIOS addresses,
 * AS-REP / TGS-REP crealm + cname, KRB-ERROR error-code + cname / realm; or `{ anomaly }`. Never throws.
 */

import { defineAnomaly } from '../../events/counters.js';
import { DER_CLASS, DER_TAG, children, contextChild, explicitInner, readInteger, readString, readTlv, type Tlv } from './der.js';

/** APPLICATION tags of the KDC messages (RFC 4120 §5.4.1, §5.4.2, §5.9.1). */
export const KRB_MSG = { AS_REQ: 10, AS_REP: 11, TGS_REQ: 12, TGS_REP: 13, AP_REQ: 14, AP_REP: 15, KRB_ERROR: 30 } as const;
export const KRB_MSG_NAMES: Readonly<Record<number, string>> = {
  10: 'AS-REQ', 11: 'AS-REP', 12: 'TGS-REQ', 13: 'TGS-REP', 14: 'AP-REQ', 15: 'AP-REP', 20: 'KRB-SAFE', 21: 'KRB-PRIV',
  22: 'KRB-CRED', 30: 'KRB-ERROR',
};
/** HostAddress addr-type for a NetBIOS name (RFC 4120 §7.5.3). */
const ADDRTYPE_NETBIOS = 20;

/** Components kept of a principal name: user, or service/host, or a few more; never more in practice. */
export const MAX_PRINCIPAL_COMPONENTS = 8;
/** Addresses read from a req-body (clients send one or two). */
export const MAX_HOST_ADDRESSES = 16;

export const A_KRB_NOT_DER = defineAnomaly('kerberos.not_der');
export const A_KRB_UNKNOWN_MESSAGE = defineAnomaly('kerberos.unknown_message');
export const A_KRB_MALFORMED = defineAnomaly('kerberos.malformed');

export interface PrincipalName {
  readonly nameType: number;
  readonly parts: readonly string[];
}

export interface KerberosMessage {
  readonly msgType: number;
  /** AS-REQ / TGS-REQ / AS-REP / TGS-REP / KRB-ERROR client name. */
  readonly cname?: PrincipalName;
  /** The client's realm: req-body realm (a request), crealm (a reply or an error). */
  readonly realm?: string;
  /** KRB-ERROR error-code (RFC 4120 §7.5.9). */
  readonly errorCode?: number;
  /** NetBIOS names in a request's addresses, trailing spaces removed. */
  readonly netbiosNames: readonly string[];
}

export type KerberosResult = KerberosMessage | { readonly anomaly: number };

function principal(b: Uint8Array, tagged: Tlv | undefined): PrincipalName | undefined {
  const seq = explicitInner(b, tagged);
  if (seq === undefined || seq.cls !== DER_CLASS.UNIVERSAL || seq.tag !== DER_TAG.SEQUENCE) return undefined;
  const nameType = readInteger(b, explicitInner(b, contextChild(b, seq, 0)));
  const strings = explicitInner(b, contextChild(b, seq, 1));
  if (nameType === undefined || strings === undefined || strings.tag !== DER_TAG.SEQUENCE) return undefined;
  const parts: string[] = [];
  for (const s of children(b, strings, MAX_PRINCIPAL_COMPONENTS)) {
    const v = readString(b, s);
    if (v === undefined) return undefined;
    parts.push(v);
  }
  return parts.length > 0 ? { nameType, parts } : undefined;
}

function netbiosAddresses(b: Uint8Array, tagged: Tlv | undefined): string[] {
  const out: string[] = [];
  const seq = explicitInner(b, tagged);
  if (seq === undefined || seq.tag !== DER_TAG.SEQUENCE) return out;
  for (const ha of children(b, seq, MAX_HOST_ADDRESSES)) {
    if (ha.tag !== DER_TAG.SEQUENCE) continue;
    const type = readInteger(b, explicitInner(b, contextChild(b, ha, 0)));
    const addr = explicitInner(b, contextChild(b, ha, 1));
    if (type !== ADDRTYPE_NETBIOS || addr === undefined || addr.tag !== DER_TAG.OCTET_STRING) continue;
    const name = Buffer.from(b.buffer, b.byteOffset + addr.valueStart, addr.end - addr.valueStart).toString('latin1').replace(/[ \0]+$/, '');
    if (name.length > 0) out.push(name);
  }
  return out;
}

/** Parses one Kerberos message. Messages other than KDC requests, replies and errors yield just their type. */
export function parseKerberosMessage(b: Uint8Array): KerberosResult {
  const outer = readTlv(b, 0, b.length);
  if (outer === undefined || outer.cls !== DER_CLASS.APPLICATION || !outer.constructed) return { anomaly: A_KRB_NOT_DER };
  const msgType = outer.tag;
  if (KRB_MSG_NAMES[msgType] === undefined) return { anomaly: A_KRB_UNKNOWN_MESSAGE };
  const seq = readTlv(b, outer.valueStart, outer.end);
  if (seq === undefined || seq.cls !== DER_CLASS.UNIVERSAL || seq.tag !== DER_TAG.SEQUENCE) return { anomaly: A_KRB_MALFORMED };
  const out: { msgType: number; cname?: PrincipalName; realm?: string; errorCode?: number; netbiosNames: string[] } = { msgType, netbiosNames: [] };
  switch (msgType) {
    case KRB_MSG.AS_REQ:
    case KRB_MSG.TGS_REQ: {
      // KDC-REQ ::= SEQUENCE { pvno [1], msg-type [2], padata [3] OPTIONAL, req-body [4] KDC-REQ-BODY }
      const body = explicitInner(b, contextChild(b, seq, 4));
      if (body === undefined || body.tag !== DER_TAG.SEQUENCE) return { anomaly: A_KRB_MALFORMED };
      const cnameTag = contextChild(b, body, 1);
      const cname = principal(b, cnameTag);
      if (cnameTag !== undefined && cname === undefined) return { anomaly: A_KRB_MALFORMED };
      if (cname !== undefined) out.cname = cname;
      const realm = readString(b, explicitInner(b, contextChild(b, body, 2)));
      if (realm !== undefined) out.realm = realm;
      out.netbiosNames = netbiosAddresses(b, contextChild(b, body, 9));
      break;
    }
    case KRB_MSG.AS_REP:
    case KRB_MSG.TGS_REP: {
      // KDC-REP ::= SEQUENCE { pvno [0], msg-type [1], padata [2] OPTIONAL, crealm [3], cname [4], ticket [5], enc-part [6] }
      const cname = principal(b, contextChild(b, seq, 4));
      const realm = readString(b, explicitInner(b, contextChild(b, seq, 3)));
      if (cname === undefined || realm === undefined) return { anomaly: A_KRB_MALFORMED };
      out.cname = cname;
      out.realm = realm;
      break;
    }
    case KRB_MSG.KRB_ERROR: {
      // KRB-ERROR ::= SEQUENCE { ..., error-code [6], crealm [7] OPTIONAL, cname [8] OPTIONAL, realm [9], ... }
      const code = readInteger(b, explicitInner(b, contextChild(b, seq, 6)));
      if (code === undefined) return { anomaly: A_KRB_MALFORMED };
      out.errorCode = code;
      const cname = principal(b, contextChild(b, seq, 8));
      if (cname !== undefined) out.cname = cname;
      const realm = readString(b, explicitInner(b, contextChild(b, seq, 7))) ?? readString(b, explicitInner(b, contextChild(b, seq, 9)));
      if (realm !== undefined) out.realm = realm;
      break;
    }
    default:
      break;
  }
  return out;
}

export function isKerberosError(r: KerberosResult): r is { readonly anomaly: number } {
  return (r as { anomaly?: number }).anomaly !== undefined;
}

/** Printable principal, `a/b@REALM`. */
export function formatPrincipal(p: PrincipalName, realm?: string): string {
  return `${p.parts.join('/')}${realm !== undefined ? `@${realm}` : ''}`;
}

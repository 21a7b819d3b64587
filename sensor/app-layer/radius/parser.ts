/**
 * App layer, RADIUS (RFC 2865 authentication, RFC 2866 accounting): pure parser for one UDP payload.
 * Input: a RADIUS packet. Output: a readonly `RadiusPacket` (code, identifier, the attributes that say
 * who holds which address: User-Name, Framed-IP(v6)-Address, Calling-Station-Id with its MAC normalised,
 * Acct-Status-Type, Acct-Session-Id, NAS addresses, Session-Timeout) or `{ anomaly }`.
 * Vendor-Specific and unknown attributes are skipped by their length. Never throws.
 */

import { defineAnomaly } from '../../events/counters.js';
import { ipv4FromBytes, ipv6FromBytes, normaliseMac } from '../../identity/address.js';
import { cleanIdentityText } from '../../identity/observation.js';

/** Header (RFC 2865 §3). */
export const RADIUS_HEADER = { CODE: 0, IDENTIFIER: 1, LENGTH: 2, AUTHENTICATOR: 4, ATTRIBUTES: 20 } as const;
/** RFC 2865 §3: the Length field is between 20 and 4096. */
export const RADIUS_MAX_LENGTH = 4096;

export const RADIUS_CODES: Readonly<Record<number, string>> = {
  1: 'Access-Request', 2: 'Access-Accept', 3: 'Access-Reject', 4: 'Accounting-Request', 5: 'Accounting-Response',
  11: 'Access-Challenge', 12: 'Status-Server', 13: 'Status-Client', 40: 'Disconnect-Request', 41: 'Disconnect-ACK',
  42: 'Disconnect-NAK', 43: 'CoA-Request', 44: 'CoA-ACK', 45: 'CoA-NAK',
};

export const RADIUS_ATTR = {
  USER_NAME: 1, NAS_IP_ADDRESS: 4, FRAMED_IP_ADDRESS: 8, VENDOR_SPECIFIC: 26, SESSION_TIMEOUT: 27,
  CALLED_STATION_ID: 30, CALLING_STATION_ID: 31, NAS_IDENTIFIER: 32, ACCT_STATUS_TYPE: 40, ACCT_SESSION_ID: 44,
  NAS_IPV6_ADDRESS: 95, FRAMED_IPV6_ADDRESS: 168,
} as const;

/** Acct-Status-Type values (RFC 2866 §5.1). */
export const ACCT_STATUS: Readonly<Record<number, string>> = {
  1: 'Start', 2: 'Stop', 3: 'Interim-Update', 7: 'Accounting-On', 8: 'Accounting-Off',
};

/** Attributes read per packet: 4096 bytes hold at most 2048 empty ones; real packets carry ~30. */
export const MAX_RADIUS_ATTRIBUTES = 256;

export const A_RADIUS_TOO_SHORT = defineAnomaly('radius.too_short');
export const A_RADIUS_BAD_LENGTH = defineAnomaly('radius.bad_length');
export const A_RADIUS_UNKNOWN_CODE = defineAnomaly('radius.unknown_code');
export const A_RADIUS_ATTR_TRUNCATED = defineAnomaly('radius.attribute.truncated');
export const A_RADIUS_ATTR_BAD_LENGTH = defineAnomaly('radius.attribute.bad_length');
export const A_RADIUS_TOO_MANY_ATTRS = defineAnomaly('radius.attribute.too_many');

export interface RadiusPacket {
  readonly code: number;
  readonly identifier: number;
  readonly userName?: string;
  readonly framedIp?: string;
  readonly framedIpv6?: string;
  /** As sent, cleaned. */
  readonly callingStationId?: string;
  /** Calling-Station-Id as `aa:bb:cc:dd:ee:ff` when it is a MAC in any common notation. */
  readonly callingStationMac?: string;
  readonly calledStationId?: string;
  readonly acctStatusType?: number;
  readonly acctSessionId?: string;
  readonly nasIp?: string;
  readonly nasIpv6?: string;
  readonly nasIdentifier?: string;
  readonly sessionTimeoutSeconds?: number;
  /** Vendor-Specific attributes met (skipped). */
  readonly vendorSpecific: number;
  readonly anomalies: readonly number[];
}

export type RadiusResult = RadiusPacket | { readonly anomaly: number };

const text = (b: Uint8Array, off: number, len: number): string | undefined =>
  cleanIdentityText(Buffer.from(b.buffer, b.byteOffset + off, len).toString('utf8'));

/** Parses one RADIUS packet. Bytes after the Length field are padding (RFC 2865 §3) and ignored. */
export function parseRadius(b: Uint8Array): RadiusResult {
  if (b.length < RADIUS_HEADER.ATTRIBUTES) return { anomaly: A_RADIUS_TOO_SHORT };
  const code = b[RADIUS_HEADER.CODE];
  if (RADIUS_CODES[code] === undefined) return { anomaly: A_RADIUS_UNKNOWN_CODE };
  const length = (b[RADIUS_HEADER.LENGTH] << 8) | b[RADIUS_HEADER.LENGTH + 1];
  if (length < RADIUS_HEADER.ATTRIBUTES || length > RADIUS_MAX_LENGTH || length > b.length) return { anomaly: A_RADIUS_BAD_LENGTH };
  const out: Record<string, unknown> = { code, identifier: b[RADIUS_HEADER.IDENTIFIER] };
  const anomalies: number[] = [];
  let vendorSpecific = 0;
  let n = 0;
  let p = RADIUS_HEADER.ATTRIBUTES;
  while (p < length) {
    if (p + 2 > length) {
      anomalies.push(A_RADIUS_ATTR_TRUNCATED);
      break;
    }
    const type = b[p];
    const alen = b[p + 1];
    if (alen < 2) {
      anomalies.push(A_RADIUS_ATTR_BAD_LENGTH);
      break;
    }
    if (p + alen > length) {
      anomalies.push(A_RADIUS_ATTR_TRUNCATED);
      break;
    }
    if (++n > MAX_RADIUS_ATTRIBUTES) {
      anomalies.push(A_RADIUS_TOO_MANY_ATTRS);
      break;
    }
    const v = p + 2;
    const vl = alen - 2;
    p += alen;
    const four = (): boolean => {
      if (vl === 4) return true;
      anomalies.push(A_RADIUS_ATTR_BAD_LENGTH);
      return false;
    };
    switch (type) {
      case RADIUS_ATTR.USER_NAME:
        if (out.userName === undefined) {
          const t = text(b, v, vl);
          if (t !== undefined) out.userName = t;
        }
        break;
      case RADIUS_ATTR.FRAMED_IP_ADDRESS:
        if (four() && out.framedIp === undefined) out.framedIp = ipv4FromBytes(b, v);
        break;
      case RADIUS_ATTR.FRAMED_IPV6_ADDRESS:
        if (vl !== 16) anomalies.push(A_RADIUS_ATTR_BAD_LENGTH);
        else if (out.framedIpv6 === undefined) out.framedIpv6 = ipv6FromBytes(b, v);
        break;
      case RADIUS_ATTR.NAS_IP_ADDRESS:
        if (four() && out.nasIp === undefined) out.nasIp = ipv4FromBytes(b, v);
        break;
      case RADIUS_ATTR.NAS_IPV6_ADDRESS:
        if (vl !== 16) anomalies.push(A_RADIUS_ATTR_BAD_LENGTH);
        else if (out.nasIpv6 === undefined) out.nasIpv6 = ipv6FromBytes(b, v);
        break;
      case RADIUS_ATTR.CALLING_STATION_ID:
        if (out.callingStationId === undefined) {
          const t = text(b, v, vl);
          if (t !== undefined) {
            out.callingStationId = t;
            const mac = normaliseMac(t);
            if (mac !== undefined) out.callingStationMac = mac;
          }
        }
        break;
      case RADIUS_ATTR.CALLED_STATION_ID:
        if (out.calledStationId === undefined) {
          const t = text(b, v, vl);
          if (t !== undefined) out.calledStationId = t;
        }
        break;
      case RADIUS_ATTR.NAS_IDENTIFIER:
        if (out.nasIdentifier === undefined) {
          const t = text(b, v, vl);
          if (t !== undefined) out.nasIdentifier = t;
        }
        break;
      case RADIUS_ATTR.ACCT_STATUS_TYPE:
        if (four()) out.acctStatusType = ((b[v] << 24) | (b[v + 1] << 16) | (b[v + 2] << 8) | b[v + 3]) >>> 0;
        break;
      case RADIUS_ATTR.SESSION_TIMEOUT:
        if (four()) out.sessionTimeoutSeconds = ((b[v] << 24) | (b[v + 1] << 16) | (b[v + 2] << 8) | b[v + 3]) >>> 0;
        break;
      case RADIUS_ATTR.ACCT_SESSION_ID:
        if (out.acctSessionId === undefined) {
          const t = text(b, v, vl);
          if (t !== undefined) out.acctSessionId = t;
        }
        break;
      case RADIUS_ATTR.VENDOR_SPECIFIC:
        vendorSpecific++;
        break;
      default:
        break;
    }
  }
  out.vendorSpecific = vendorSpecific;
  out.anomalies = anomalies;
  return out as unknown as RadiusPacket;
}

export function isRadiusError(r: RadiusResult): r is { readonly anomaly: number } {
  return (r as { anomaly?: number }).anomaly !== undefined;
}

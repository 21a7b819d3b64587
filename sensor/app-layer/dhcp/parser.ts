/**
 * App layer, DHCPv4 (RFC 2131 / 2132): pure parser for one UDP payload.
 * Input: the BOOTP message bytes. Output: a readonly `DhcpV4Message` (header addresses, chaddr, the
 * options that identify a client) or `{ anomaly }` when it is not a DHCP message. Options are read
 * once, bounded; names are cleaned (trailing NULs dropped, controls replaced). Never throws.
 */

import { defineAnomaly } from '../../events/counters.js';
import { hexFromBytes, ipv4FromBytes, macFromBytes } from '../../identity/address.js';
import { cleanIdentityText } from '../../identity/observation.js';

/** BOOTP fixed header (RFC 2131 §2) and the magic cookie (RFC 2131 §3). */
export const BOOTP = {
  OP: 0, HTYPE: 1, HLEN: 2, HOPS: 3, XID: 4, SECS: 8, FLAGS: 10,
  CIADDR: 12, YIADDR: 16, SIADDR: 20, GIADDR: 24, CHADDR: 28, SNAME: 44, FILE: 108, COOKIE: 236, OPTIONS: 240,
} as const;
const SNAME_LEN = 64;
const FILE_LEN = 128;
const MAGIC_COOKIE = 0x63825363;
const HTYPE_ETHERNET = 1;

/** Option codes used (RFC 2132 and successors). */
export const DHCP_OPT = {
  PAD: 0, HOSTNAME: 12, DOMAIN_NAME: 15, REQUESTED_IP: 50, LEASE_TIME: 51, OVERLOAD: 52, MESSAGE_TYPE: 53,
  SERVER_ID: 54, VENDOR_CLASS: 60, CLIENT_ID: 61, RELAY_AGENT: 82, CLIENT_FQDN: 81, END: 255,
} as const;

/** Message types (option 53). */
export const DHCP_MESSAGE_TYPES: Readonly<Record<number, string>> = {
  1: 'DISCOVER', 2: 'OFFER', 3: 'REQUEST', 4: 'DECLINE', 5: 'ACK', 6: 'NAK', 7: 'RELEASE', 8: 'INFORM',
};

/** Options read per message: a full 1500-byte packet holds at most ~750 two-byte options; real ones ~20. */
export const MAX_DHCP_OPTIONS = 256;
/** Labels followed in a wire-encoded FQDN (RFC 4702 §2.3.1): a DNS name has at most 127. */
const MAX_FQDN_LABELS = 127;

export const A_DHCP_TOO_SHORT = defineAnomaly('dhcp.too_short');
export const A_DHCP_BAD_COOKIE = defineAnomaly('dhcp.bad_magic_cookie');
export const A_DHCP_BAD_OP = defineAnomaly('dhcp.bad_op');
export const A_DHCP_OPTION_TRUNCATED = defineAnomaly('dhcp.option.truncated');
export const A_DHCP_OPTION_BAD_LENGTH = defineAnomaly('dhcp.option.bad_length');
export const A_DHCP_TOO_MANY_OPTIONS = defineAnomaly('dhcp.option.too_many');
export const A_DHCP_NO_MESSAGE_TYPE = defineAnomaly('dhcp.message_type.missing');
export const A_DHCP_FQDN_BAD = defineAnomaly('dhcp.fqdn.malformed');

export interface DhcpFqdn {
  /** RFC 4702 §2.1 flags: S 0x01, O 0x02, E 0x04 (wire encoding), N 0x08. */
  readonly flags: number;
  readonly name: string;
}

export interface DhcpRelayAgent {
  /** Sub-option 1, hex. */
  readonly circuitId?: string;
  /** Sub-option 2, hex. */
  readonly remoteId?: string;
}

export interface DhcpV4Message {
  /** 1 BOOTREQUEST (client), 2 BOOTREPLY (server). */
  readonly op: number;
  readonly xid: number;
  /** Option 53; undefined for plain BOOTP. */
  readonly messageType?: number;
  /** `aa:bb:...` for Ethernet (htype 1, hlen 6). */
  readonly clientMac?: string;
  /** chaddr as hex when it is not an Ethernet address. */
  readonly chaddrHex: string;
  readonly ciaddr: string;
  readonly yiaddr: string;
  readonly siaddr: string;
  readonly giaddr: string;
  /** Option 12, cleaned. */
  readonly hostname?: string;
  /** Option 15. */
  readonly domainName?: string;
  readonly requestedIp?: string;
  readonly leaseSeconds?: number;
  readonly serverId?: string;
  /** Option 60, cleaned. */
  readonly vendorClass?: string;
  /** Option 61 as hex (type byte first). */
  readonly clientId?: string;
  /** Option 61 when it is type 1 + a six-byte MAC. */
  readonly clientIdMac?: string;
  readonly fqdn?: DhcpFqdn;
  readonly relayAgent?: DhcpRelayAgent;
  /** Non-fatal anomaly ids met while reading options. */
  readonly anomalies: readonly number[];
}

export type DhcpV4Result = DhcpV4Message | { readonly anomaly: number };

export function messageTypeName(t: number | undefined): string {
  return t === undefined ? 'BOOTP' : DHCP_MESSAGE_TYPES[t] ?? `TYPE${t}`;
}

const latin1 = (b: Uint8Array, off: number, len: number): string => Buffer.from(b.buffer, b.byteOffset + off, len).toString('latin1');
const utf8 = (b: Uint8Array, off: number, len: number): string => Buffer.from(b.buffer, b.byteOffset + off, len).toString('utf8');

/** Dotted name from DNS wire labels (RFC 1035 §3.1, no compression: RFC 4702 §2.3.1 forbids it). */
export function decodeWireName(b: Uint8Array, off: number, end: number): string | undefined {
  const labels: string[] = [];
  let p = off;
  while (p < end) {
    const len = b[p];
    if (len === 0) break;
    if (len > 63 || p + 1 + len > end || labels.length >= MAX_FQDN_LABELS) return undefined;
    labels.push(utf8(b, p + 1, len));
    p += 1 + len;
  }
  return labels.join('.');
}

interface OptionState {
  anomalies: number[];
  count: number;
  seen: Set<number>;
  out: Record<string, unknown>;
  overload: number;
}

function readOptions(b: Uint8Array, start: number, end: number, st: OptionState): void {
  let p = start;
  while (p < end) {
    const code = b[p];
    if (code === DHCP_OPT.PAD) {
      p++;
      continue;
    }
    if (code === DHCP_OPT.END) return;
    if (p + 2 > end || p + 2 + b[p + 1] > end) {
      st.anomalies.push(A_DHCP_OPTION_TRUNCATED);
      return;
    }
    if (++st.count > MAX_DHCP_OPTIONS) {
      st.anomalies.push(A_DHCP_TOO_MANY_OPTIONS);
      return;
    }
    const len = b[p + 1];
    const v = p + 2;
    p = v + len;
    // RFC 3396 splits long options into several; the first instance is enough for identity values.
    if (st.seen.has(code)) continue;
    st.seen.add(code);
    const bad = (): void => {
      st.anomalies.push(A_DHCP_OPTION_BAD_LENGTH);
    };
    const o = st.out;
    switch (code) {
      case DHCP_OPT.HOSTNAME: {
        const h = cleanIdentityText(utf8(b, v, len));
        if (h !== undefined) o.hostname = h;
        break;
      }
      case DHCP_OPT.DOMAIN_NAME: {
        const d = cleanIdentityText(utf8(b, v, len));
        if (d !== undefined) o.domainName = d;
        break;
      }
      case DHCP_OPT.REQUESTED_IP:
        if (len === 4) o.requestedIp = ipv4FromBytes(b, v);
        else bad();
        break;
      case DHCP_OPT.LEASE_TIME:
        if (len === 4) o.leaseSeconds = ((b[v] << 24) | (b[v + 1] << 16) | (b[v + 2] << 8) | b[v + 3]) >>> 0;
        else bad();
        break;
      case DHCP_OPT.OVERLOAD:
        if (len === 1) st.overload = b[v] & 3;
        else bad();
        break;
      case DHCP_OPT.MESSAGE_TYPE:
        if (len === 1) o.messageType = b[v];
        else bad();
        break;
      case DHCP_OPT.SERVER_ID:
        if (len === 4) o.serverId = ipv4FromBytes(b, v);
        else bad();
        break;
      case DHCP_OPT.VENDOR_CLASS: {
        const vc = cleanIdentityText(latin1(b, v, len));
        if (vc !== undefined) o.vendorClass = vc;
        break;
      }
      case DHCP_OPT.CLIENT_ID:
        if (len < 2) {
          bad();
          break;
        }
        o.clientId = hexFromBytes(b, v, len);
        if (len === 7 && b[v] === HTYPE_ETHERNET) o.clientIdMac = macFromBytes(b, v + 1);
        break;
      case DHCP_OPT.CLIENT_FQDN: {
        if (len < 3) {
          bad();
          break;
        }
        const flags = b[v];
        // E flag: canonical wire format (RFC 4702 §2.1); clear: deprecated ASCII.
        const name = (flags & 0x04) !== 0 ? decodeWireName(b, v + 3, v + len) : utf8(b, v + 3, len - 3);
        const clean = name === undefined ? undefined : cleanIdentityText(name.endsWith('.') ? name.slice(0, -1) : name);
        if (name === undefined) st.anomalies.push(A_DHCP_FQDN_BAD);
        o.fqdn = { flags, name: clean ?? '' };
        break;
      }
      case DHCP_OPT.RELAY_AGENT: {
        const ra: { circuitId?: string; remoteId?: string } = {};
        let q = v;
        const e = v + len;
        while (q + 2 <= e && q + 2 + b[q + 1] <= e) {
          const sub = b[q];
          const sl = b[q + 1];
          if (sub === 1 && ra.circuitId === undefined) ra.circuitId = hexFromBytes(b, q + 2, sl);
          else if (sub === 2 && ra.remoteId === undefined) ra.remoteId = hexFromBytes(b, q + 2, sl);
          q += 2 + sl;
        }
        if (q !== e) bad();
        o.relayAgent = ra;
        break;
      }
      default:
        break;
    }
  }
  // Running off the end without END is common in captures padded by the NIC; not an anomaly.
}

/** Parses one DHCPv4 / BOOTP message. */
export function parseDhcpV4(b: Uint8Array): DhcpV4Result {
  if (b.length < BOOTP.OPTIONS) return { anomaly: b.length < BOOTP.COOKIE ? A_DHCP_TOO_SHORT : A_DHCP_BAD_COOKIE };
  const cookie = ((b[BOOTP.COOKIE] << 24) | (b[BOOTP.COOKIE + 1] << 16) | (b[BOOTP.COOKIE + 2] << 8) | b[BOOTP.COOKIE + 3]) >>> 0;
  if (cookie !== MAGIC_COOKIE) return { anomaly: A_DHCP_BAD_COOKIE };
  const op = b[BOOTP.OP];
  if (op !== 1 && op !== 2) return { anomaly: A_DHCP_BAD_OP };
  const st: OptionState = { anomalies: [], count: 0, seen: new Set(), out: {}, overload: 0 };
  readOptions(b, BOOTP.OPTIONS, b.length, st);
  // Option overload (RFC 2132 §9.3): file then sname carry more options.
  if ((st.overload & 1) !== 0) readOptions(b, BOOTP.FILE, BOOTP.FILE + FILE_LEN, st);
  if ((st.overload & 2) !== 0) readOptions(b, BOOTP.SNAME, BOOTP.SNAME + SNAME_LEN, st);
  if (st.out.messageType === undefined) st.anomalies.push(A_DHCP_NO_MESSAGE_TYPE);
  const htype = b[BOOTP.HTYPE];
  const hlen = Math.min(b[BOOTP.HLEN], 16);
  const msg: Record<string, unknown> = {
    op,
    xid: ((b[BOOTP.XID] << 24) | (b[BOOTP.XID + 1] << 16) | (b[BOOTP.XID + 2] << 8) | b[BOOTP.XID + 3]) >>> 0,
    chaddrHex: hexFromBytes(b, BOOTP.CHADDR, hlen),
    ciaddr: ipv4FromBytes(b, BOOTP.CIADDR),
    yiaddr: ipv4FromBytes(b, BOOTP.YIADDR),
    siaddr: ipv4FromBytes(b, BOOTP.SIADDR),
    giaddr: ipv4FromBytes(b, BOOTP.GIADDR),
    ...st.out,
    anomalies: st.anomalies,
  };
  if (htype === HTYPE_ETHERNET && b[BOOTP.HLEN] === 6) msg.clientMac = macFromBytes(b, BOOTP.CHADDR);
  return msg as unknown as DhcpV4Message;
}

export function isDhcpV4Error(r: DhcpV4Result): r is { readonly anomaly: number } {
  return (r as { anomaly?: number }).anomaly !== undefined;
}

/**
 * App layer, DHCPv6 (RFC 8415): pure parser for one UDP payload (ports 546 / 547).
 * Input: a client/server or relay message. Output: a readonly `DhcpV6Message` (type, client DUID and the
 * MAC inside a DUID-LL / DUID-LLT, IA_NA / IA_TA addresses with lifetimes, client FQDN (option 39),
 * vendor class, the relay's client link-layer address (RFC 6939)); relay messages are unwrapped to the
 * innermost one, bounded. `{ anomaly }` when it is not DHCPv6. Never throws.
 */

import { defineAnomaly } from '../../events/counters.js';
import { hexFromBytes, ipv6FromBytes, macFromBytes } from '../../identity/address.js';
import { cleanIdentityText } from '../../identity/observation.js';
import { decodeWireName } from './parser.js';

export const DHCPV6_MESSAGE_TYPES: Readonly<Record<number, string>> = {
  1: 'SOLICIT', 2: 'ADVERTISE', 3: 'REQUEST', 4: 'CONFIRM', 5: 'RENEW', 6: 'REBIND', 7: 'REPLY', 8: 'RELEASE',
  9: 'DECLINE', 10: 'RECONFIGURE', 11: 'INFORMATION-REQUEST', 12: 'RELAY-FORW', 13: 'RELAY-REPL',
};

export const DHCPV6_OPT = {
  CLIENTID: 1, SERVERID: 2, IA_NA: 3, IA_TA: 4, IAADDR: 5, RELAY_MSG: 9, VENDOR_CLASS: 16, CLIENT_FQDN: 39,
  CLIENT_LINKLAYER_ADDR: 79,
} as const;

const RELAY_FORW = 12;
const RELAY_REPL = 13;
/** Relay header: msg-type, hop-count, link-address, peer-address (RFC 8415 §9). */
const RELAY_HEADER_LEN = 34;
/** Relays nested: RFC 8415 §7.6 HOP_COUNT_LIMIT is 8. */
export const MAX_DHCPV6_RELAY_DEPTH = 8;
/** Options read per message level (a REPLY has a dozen). */
export const MAX_DHCPV6_OPTIONS = 256;
/** Addresses kept per message: a client asks for a handful of IAs. */
export const MAX_DHCPV6_ADDRESSES = 16;

export const A_DHCPV6_TOO_SHORT = defineAnomaly('dhcpv6.too_short');
export const A_DHCPV6_BAD_TYPE = defineAnomaly('dhcpv6.bad_message_type');
export const A_DHCPV6_OPTION_TRUNCATED = defineAnomaly('dhcpv6.option.truncated');
export const A_DHCPV6_OPTION_BAD_LENGTH = defineAnomaly('dhcpv6.option.bad_length');
export const A_DHCPV6_TOO_MANY_OPTIONS = defineAnomaly('dhcpv6.option.too_many');
export const A_DHCPV6_RELAY_TOO_DEEP = defineAnomaly('dhcpv6.relay.too_deep');
export const A_DHCPV6_RELAY_NO_MESSAGE = defineAnomaly('dhcpv6.relay.no_message');

export interface DhcpV6Address {
  readonly address: string;
  readonly preferredSeconds: number;
  /** 0xffffffff is infinity (RFC 8415 §7.7). */
  readonly validSeconds: number;
  /** IA_NA or IA_TA. */
  readonly ia: 'na' | 'ta';
}

export interface DhcpV6Message {
  /** The innermost message's type (a relay's payload). */
  readonly messageType: number;
  readonly transactionId: number;
  /** Relay levels unwrapped. */
  readonly relayDepth: number;
  /** Client DUID, hex. */
  readonly clientDuid?: string;
  /** MAC from a DUID-LLT (type 1) or DUID-LL (type 3) with hardware type 1. */
  readonly clientMac?: string;
  /** The client's link-layer address a relay added (option 79, hardware type 1). */
  readonly relayClientMac?: string;
  readonly serverDuid?: string;
  readonly addresses: readonly DhcpV6Address[];
  /** Option 39 (RFC 4704), dotted, without the final dot. */
  readonly fqdn?: { readonly flags: number; readonly name: string };
  /** Option 16: enterprise number and the first class datum, cleaned. */
  readonly vendorClass?: { readonly enterprise: number; readonly data: string };
  readonly anomalies: readonly number[];
}

export type DhcpV6Result = DhcpV6Message | { readonly anomaly: number };

const u16 = (b: Uint8Array, o: number): number => (b[o] << 8) | b[o + 1];
const u32 = (b: Uint8Array, o: number): number => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

/** The MAC inside a DUID, when it holds one (RFC 8415 §11.2 LLT, §11.4 LL, hardware type 1). */
export function macFromDuid(b: Uint8Array, off: number, len: number): string | undefined {
  if (len < 4) return undefined;
  const type = u16(b, off);
  const hw = u16(b, off + 2);
  if (hw !== 1) return undefined;
  if (type === 1 && len === 14) return macFromBytes(b, off + 8);
  if (type === 3 && len === 10) return macFromBytes(b, off + 4);
  return undefined;
}

interface V6State {
  anomalies: number[];
  addresses: DhcpV6Address[];
  out: Record<string, unknown>;
}

/** Reads IAADDR options inside an IA_NA / IA_TA body. */
function readIaAddresses(b: Uint8Array, start: number, end: number, ia: 'na' | 'ta', st: V6State): void {
  let p = start;
  let n = 0;
  while (p + 4 <= end) {
    const code = u16(b, p);
    const len = u16(b, p + 2);
    if (p + 4 + len > end) {
      st.anomalies.push(A_DHCPV6_OPTION_TRUNCATED);
      return;
    }
    if (++n > MAX_DHCPV6_OPTIONS) {
      st.anomalies.push(A_DHCPV6_TOO_MANY_OPTIONS);
      return;
    }
    if (code === DHCPV6_OPT.IAADDR) {
      if (len < 24) st.anomalies.push(A_DHCPV6_OPTION_BAD_LENGTH);
      else if (st.addresses.length < MAX_DHCPV6_ADDRESSES) {
        st.addresses.push({ address: ipv6FromBytes(b, p + 4), preferredSeconds: u32(b, p + 20), validSeconds: u32(b, p + 24), ia });
      }
    }
    p += 4 + len;
  }
}

/** Reads one level of options; returns the bounds of a Relay Message option when there is one. */
function readOptions(b: Uint8Array, start: number, end: number, st: V6State): [number, number] | undefined {
  let p = start;
  let n = 0;
  let relay: [number, number] | undefined;
  while (p < end) {
    if (p + 4 > end || p + 4 + u16(b, p + 2) > end) {
      st.anomalies.push(A_DHCPV6_OPTION_TRUNCATED);
      break;
    }
    if (++n > MAX_DHCPV6_OPTIONS) {
      st.anomalies.push(A_DHCPV6_TOO_MANY_OPTIONS);
      break;
    }
    const code = u16(b, p);
    const len = u16(b, p + 2);
    const v = p + 4;
    p = v + len;
    const o = st.out;
    switch (code) {
      case DHCPV6_OPT.CLIENTID:
        if (o.clientDuid !== undefined) break;
        o.clientDuid = hexFromBytes(b, v, len);
        {
          const mac = macFromDuid(b, v, len);
          if (mac !== undefined) o.clientMac = mac;
        }
        break;
      case DHCPV6_OPT.SERVERID:
        if (o.serverDuid === undefined) o.serverDuid = hexFromBytes(b, v, len);
        break;
      case DHCPV6_OPT.IA_NA:
        if (len < 12) st.anomalies.push(A_DHCPV6_OPTION_BAD_LENGTH);
        else readIaAddresses(b, v + 12, v + len, 'na', st);
        break;
      case DHCPV6_OPT.IA_TA:
        if (len < 4) st.anomalies.push(A_DHCPV6_OPTION_BAD_LENGTH);
        else readIaAddresses(b, v + 4, v + len, 'ta', st);
        break;
      case DHCPV6_OPT.RELAY_MSG:
        if (relay === undefined) relay = [v, v + len];
        break;
      case DHCPV6_OPT.VENDOR_CLASS:
        if (o.vendorClass !== undefined) break;
        if (len < 4) {
          st.anomalies.push(A_DHCPV6_OPTION_BAD_LENGTH);
          break;
        }
        {
          const dl = len >= 6 ? u16(b, v + 4) : 0;
          const data = len >= 6 && 6 + dl <= len ? cleanIdentityText(Buffer.from(b.buffer, b.byteOffset + v + 6, dl).toString('latin1')) : undefined;
          o.vendorClass = { enterprise: u32(b, v), data: data ?? '' };
        }
        break;
      case DHCPV6_OPT.CLIENT_FQDN:
        if (o.fqdn !== undefined) break;
        if (len < 1) {
          st.anomalies.push(A_DHCPV6_OPTION_BAD_LENGTH);
          break;
        }
        {
          // RFC 4704 §4.2: flags, then the name in wire format (possibly a partial name: no root label).
          const name = decodeWireName(b, v + 1, v + len);
          if (name === undefined) st.anomalies.push(A_DHCPV6_OPTION_BAD_LENGTH);
          o.fqdn = { flags: b[v], name: cleanIdentityText(name ?? '') ?? '' };
        }
        break;
      case DHCPV6_OPT.CLIENT_LINKLAYER_ADDR:
        // RFC 6939: link-layer type (2 bytes), then the address; only relays add it.
        if (o.relayClientMac === undefined && len === 8 && u16(b, v) === 1) o.relayClientMac = macFromBytes(b, v + 2);
        break;
      default:
        break;
    }
  }
  return relay;
}

/** Parses one DHCPv6 message, unwrapping relay layers. */
export function parseDhcpV6(b: Uint8Array): DhcpV6Result {
  if (b.length < 4) return { anomaly: A_DHCPV6_TOO_SHORT };
  const st: V6State = { anomalies: [], addresses: [], out: {} };
  let start = 0;
  let end = b.length;
  let depth = 0;
  for (;;) {
    const type = b[start];
    if (type === RELAY_FORW || type === RELAY_REPL) {
      if (end - start < RELAY_HEADER_LEN) return { anomaly: A_DHCPV6_TOO_SHORT };
      if (depth >= MAX_DHCPV6_RELAY_DEPTH) return { anomaly: A_DHCPV6_RELAY_TOO_DEEP };
      const inner = readOptions(b, start + RELAY_HEADER_LEN, end, st);
      if (inner === undefined || inner[1] - inner[0] < 4) return { anomaly: A_DHCPV6_RELAY_NO_MESSAGE };
      depth++;
      [start, end] = inner;
      continue;
    }
    if (type === 0 || type > RELAY_REPL) return { anomaly: A_DHCPV6_BAD_TYPE };
    if (end - start < 4) return { anomaly: A_DHCPV6_TOO_SHORT };
    readOptions(b, start + 4, end, st);
    return {
      messageType: type,
      transactionId: (b[start + 1] << 16) | (b[start + 2] << 8) | b[start + 3],
      relayDepth: depth,
      ...st.out,
      addresses: st.addresses,
      anomalies: st.anomalies,
    } as unknown as DhcpV6Message;
  }
}

export function isDhcpV6Error(r: DhcpV6Result): r is { readonly anomaly: number } {
  return (r as { anomaly?: number }).anomaly !== undefined;
}

/**
 * App layer, DHCP (v4 on UDP 67/68, v6 on UDP 546/547): datagrams -> identity observations.
 * Input: UDP payloads with their flow. Output: `IdentityObservation`s to an `IdentitySink`:
 *  v4  client messages (DISCOVER / REQUEST / INFORM): the host name keyed by chaddr, and bound to ciaddr
 *      when the client already owns one; ACK: yiaddr (ciaddr for an INFORM's ACK) <-> chaddr with the
 *      lease end; RELEASE: ciaddr released; OFFER / DECLINE / NAK bind nothing (counted).
 *  v6  REPLY: each IA address <-> the DUID's MAC with its valid lifetime, plus the FQDN; client messages:
 *      the FQDN keyed by the MAC; RELEASE: each address released.
 * Addresses come from the DHCP payload, never from the packet header: relays and NAT sit in between.
 */

import type { Direction, FlowInfo, DatagramSink } from '../../flow/stream.js';
import { Counters, defineCounter } from '../../events/counters.js';
import type { IdentityObservation, IdentitySink } from '../../identity/observation.js';
import { isDhcpV4Error, messageTypeName, parseDhcpV4, type DhcpV4Message } from './parser.js';
import { isDhcpV6Error, parseDhcpV6, type DhcpV6Message } from './parser-v6.js';

export * from './parser.js';
export * from './parser-v6.js';

export const DHCPV4_PORTS: readonly number[] = [67, 68];
export const DHCPV6_PORTS: readonly number[] = [546, 547];

const C_V4_MESSAGES = defineCounter('dhcp.messages');
const C_V6_MESSAGES = defineCounter('dhcpv6.messages');
const C_NOT_BOUND = defineCounter('dhcp.not_binding');
const C_OBSERVATIONS = defineCounter('dhcp.identity_observations');
/** One counter per known message type (defined at load), `dhcp.type.other` for the rest. */
const TYPE_COUNTERS = new Map<string, number>(
  ['DISCOVER', 'OFFER', 'REQUEST', 'DECLINE', 'ACK', 'NAK', 'RELEASE', 'INFORM', 'BOOTP', 'OTHER']
    .map((t) => [t, defineCounter(`dhcp.type.${t.toLowerCase()}`)]),
);
function typeCounter(name: string): number {
  return TYPE_COUNTERS.get(name) ?? (TYPE_COUNTERS.get('OTHER') as number);
}

const ZERO_V4 = '0.0.0.0';
const SECOND_US = 1_000_000;
const INFINITE_LIFETIME = 0xffffffff;

/** True when the datagram belongs to DHCPv6 by its ports. */
export function isDhcpV6Flow(flow: FlowInfo): boolean {
  return DHCPV6_PORTS.includes(flow.srcPort) || DHCPV6_PORTS.includes(flow.dstPort);
}

/** Observations from one DHCPv4 message (exported for tests and other carriers). */
export function dhcpV4Observations(m: DhcpV4Message, tsUs: number): IdentityObservation[] {
  const mac = m.clientMac ?? m.clientIdMac;
  if (mac === undefined) return [];
  const hostname = m.hostname ?? (m.fqdn !== undefined && m.fqdn.name !== '' ? m.fqdn.name : undefined);
  const names = hostname !== undefined ? { hostname } : {};
  const out: IdentityObservation[] = [];
  switch (m.messageType) {
    case 1: // DISCOVER
    case 3: // REQUEST
    case 8: // INFORM
      if (m.ciaddr !== ZERO_V4) out.push({ ip: m.ciaddr, mac, ...names, source: 'dhcp', tsUs });
      else if (hostname !== undefined) out.push({ mac, ...names, source: 'dhcp', tsUs });
      break;
    case 5: { // ACK
      const ip = m.yiaddr !== ZERO_V4 ? m.yiaddr : m.ciaddr;
      if (ip === ZERO_V4) break;
      const expiresUs = m.leaseSeconds !== undefined && m.leaseSeconds !== INFINITE_LIFETIME ? tsUs + m.leaseSeconds * SECOND_US
        : m.leaseSeconds === INFINITE_LIFETIME ? Infinity : undefined;
      out.push({ ip, mac, ...names, source: 'dhcp', tsUs, ...(expiresUs !== undefined ? { expiresUs } : {}) });
      break;
    }
    case 7: // RELEASE
      if (m.ciaddr !== ZERO_V4) out.push({ ip: m.ciaddr, mac, source: 'dhcp', tsUs, release: true });
      break;
    default:
      break;
  }
  return out;
}

/** Observations from one DHCPv6 message. */
export function dhcpV6Observations(m: DhcpV6Message, tsUs: number): IdentityObservation[] {
  const mac = m.clientMac ?? m.relayClientMac;
  const hostname = m.fqdn !== undefined && m.fqdn.name !== '' ? m.fqdn.name : undefined;
  const names = hostname !== undefined ? { hostname } : {};
  const out: IdentityObservation[] = [];
  const t = m.messageType;
  if (t === 7) { // REPLY
    for (const a of m.addresses) {
      if (a.validSeconds === 0) {
        out.push({ ip: a.address, ...(mac !== undefined ? { mac } : {}), source: 'dhcpv6', tsUs, release: true });
        continue;
      }
      const expiresUs = a.validSeconds === INFINITE_LIFETIME ? Infinity : tsUs + a.validSeconds * SECOND_US;
      if (mac === undefined && hostname === undefined) continue;
      out.push({ ip: a.address, ...(mac !== undefined ? { mac } : {}), ...names, source: 'dhcpv6', tsUs, expiresUs });
    }
  } else if (t === 8) { // RELEASE
    for (const a of m.addresses) out.push({ ip: a.address, ...(mac !== undefined ? { mac } : {}), source: 'dhcpv6', tsUs, release: true });
  } else if ((t === 1 || t === 3 || t === 5 || t === 6 || t === 11) && mac !== undefined && hostname !== undefined) {
    out.push({ mac, ...names, source: 'dhcpv6', tsUs });
  }
  return out;
}

/** The datagram handler a pipeline registers for DHCP ports. */
export class DhcpIdentity implements DatagramSink {
  constructor(private readonly sink: IdentitySink, private readonly counters: Counters) {}

  datagram(flow: FlowInfo, _dir: Direction, payload: Uint8Array, tsUs: number): void {
    let obs: IdentityObservation[];
    if (isDhcpV6Flow(flow)) {
      const r = parseDhcpV6(payload);
      if (isDhcpV6Error(r)) {
        this.counters.inc(r.anomaly);
        return;
      }
      this.counters.inc(C_V6_MESSAGES);
      for (const a of r.anomalies) this.counters.inc(a);
      obs = dhcpV6Observations(r, tsUs);
    } else {
      const r = parseDhcpV4(payload);
      if (isDhcpV4Error(r)) {
        this.counters.inc(r.anomaly);
        return;
      }
      this.counters.inc(C_V4_MESSAGES);
      this.counters.inc(typeCounter(messageTypeName(r.messageType)));
      for (const a of r.anomalies) this.counters.inc(a);
      obs = dhcpV4Observations(r, tsUs);
    }
    if (obs.length === 0) this.counters.inc(C_NOT_BOUND);
    for (const o of obs) {
      this.counters.inc(C_OBSERVATIONS);
      this.sink.observe(o);
    }
  }
}

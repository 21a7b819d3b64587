/**
 * App layer, NetBIOS name service (UDP 137): packets -> identity observations (source `netbios`).
 * Input: NBNS datagrams with their flow. Output, to a sink:
 *  - a registration / refresh request, or a positive answer (rcode 0), with NB records: a unique name
 *    with suffix <00> (workstation) or <20> (server) is the host name of each address in the record,
 *    a group <00> name its workgroup / domain; the record's TTL is the expiry;
 *  - a node status answer: the sender's unique <00> name, group <00> name, and its unit ID as MAC.
 * Queries and releases bind nothing (a query names whom the sender looks for, not the sender).
 */

import type { Direction, FlowInfo, DatagramSink } from '../../flow/stream.js';
import { Counters, defineCounter } from '../../events/counters.js';
import type { IdentityObservation, IdentitySink } from '../../identity/observation.js';
import { NBNS_TYPE, NETBIOS_SUFFIX, isNbnsError, parseNbns, type NbnsPacket } from './parser.js';

export * from './parser.js';

export const NETBIOS_NS_PORT = 137;

const C_PACKETS = defineCounter('netbios.ns.packets');
const C_OBSERVATIONS = defineCounter('netbios.ns.identity_observations');
const C_RELEASE = defineCounter('netbios.ns.release');

const SECOND_US = 1_000_000;
const REGISTRATION_OPCODES = new Set([5, 8, 9, 15]);
const ZERO_V4 = '0.0.0.0';

/** Observations from one NBNS packet; `senderIp` is the packet's source address. */
export function netbiosObservations(m: NbnsPacket, senderIp: string, tsUs: number): IdentityObservation[] {
  const out: IdentityObservation[] = [];
  const registration = !m.response && REGISTRATION_OPCODES.has(m.opcode);
  const positive = m.response && m.rcode === 0 && (m.opcode === 0 || REGISTRATION_OPCODES.has(m.opcode));
  for (const r of m.records) {
    if (r.type === NBNS_TYPE.NB && (registration || positive)) {
      const suffix = r.name.suffix;
      if (r.name.name === '' || r.name.name === '*') continue;
      const expires = r.ttlSeconds > 0 ? { expiresUs: tsUs + r.ttlSeconds * SECOND_US } : {};
      for (const a of r.addresses) {
        if (a.address === ZERO_V4) continue;
        if (!a.group && (suffix === NETBIOS_SUFFIX.WORKSTATION || suffix === NETBIOS_SUFFIX.SERVER)) {
          out.push({ ip: a.address, hostname: r.name.name, source: 'netbios', tsUs, ...expires });
        } else if (a.group && suffix === NETBIOS_SUFFIX.WORKSTATION) {
          out.push({ ip: a.address, domain: r.name.name, source: 'netbios', tsUs, ...expires });
        }
      }
    } else if (r.type === NBNS_TYPE.NBSTAT && m.response && r.nodeStatus !== undefined) {
      const host = r.nodeStatus.names.find((n) => !n.group && n.suffix === NETBIOS_SUFFIX.WORKSTATION && n.name !== '');
      const domain = r.nodeStatus.names.find((n) => n.group && n.suffix === NETBIOS_SUFFIX.WORKSTATION && n.name !== '');
      const mac = r.nodeStatus.unitId;
      if (host === undefined && domain === undefined && mac === undefined) continue;
      out.push({
        ip: senderIp,
        ...(mac !== undefined ? { mac } : {}),
        ...(host !== undefined ? { hostname: host.name } : {}),
        ...(domain !== undefined ? { domain: domain.name } : {}),
        source: 'netbios',
        tsUs,
      });
    }
  }
  return out;
}

export class NetbiosIdentity implements DatagramSink {
  constructor(private readonly sink: IdentitySink, private readonly counters: Counters) {}

  datagram(flow: FlowInfo, dir: Direction, payload: Uint8Array, tsUs: number): void {
    const r = parseNbns(payload);
    if (isNbnsError(r)) {
      this.counters.inc(r.anomaly);
      return;
    }
    this.counters.inc(C_PACKETS);
    for (const a of r.anomalies) this.counters.inc(a);
    if (!r.response && r.opcode === 6) this.counters.inc(C_RELEASE);
    for (const o of netbiosObservations(r, dir === 0 ? flow.srcIp : flow.dstIp, tsUs)) {
      this.counters.inc(C_OBSERVATIONS);
      this.sink.observe(o);
    }
  }
}

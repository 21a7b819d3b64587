/**
 * The dns event: a name on the domain policy was seen, in a DNS query, a TLS or QUIC server name,
 * or an HTTP Host header. Says which list, category and threat level matched, and who asked.
 * Shape fixed by events/dns.schema.json; EVE-style flow fields.
 */
import type { Device } from './capture.js';
import { eveFlowFields, type EventFlow } from './tls.js';

export type PolicyMatchedOn = 'dns_query' | 'tls_sni' | 'quic_sni' | 'http_host';

export interface DnsPolicyEvent {
  event_type: 'dns';
  timestamp: string;
  ts_us: number;
  flow_id: number;
  src_ip: string;
  src_port: number;
  dest_ip: string;
  dest_port: number;
  vlan: number[];
  proto: 'TCP' | 'UDP';
  app_proto: 'dns' | 'tls' | 'quic' | 'http' | 'http2';
  /** The query, when the name was asked of DNS. */
  dns?: { type: 'query'; rrname: string; rrtype: number };
  policy: {
    matched_on: PolicyMatchedOn;
    /** The name as seen (lower case). */
    name: string;
    /** The listed domain that covers it. */
    domain: string;
    category: string;
    threat_level: number;
    list: string;
  };
  device: Device;
}

export function dnsPolicyEvent(
  flow: EventFlow, tsUs: number, appProto: DnsPolicyEvent['app_proto'], policy: DnsPolicyEvent['policy'], device: Device,
  query?: { rrname: string; rrtype: number },
): DnsPolicyEvent {
  return {
    event_type: 'dns',
    ...eveFlowFields(flow, tsUs),
    app_proto: appProto,
    ...(query !== undefined ? { dns: { type: 'query' as const, ...query } } : {}),
    policy,
    device,
  };
}

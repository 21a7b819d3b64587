/**
 * The tls event: one per TLS (or QUIC) connection, written to the same JSON-lines output as
 * captures. Names what the handshake showed (SNI, version, suite, ALPN, JA3/JA4, the server
 * certificate) and whether Hark could decrypt it, and why not. Shape fixed by
 * events/tls.schema.json; field names follow Suricata's EVE `tls` record where they overlap.
 */
import { isoMicros } from './capture.js';

/** The flow fields an event needs (the flow stage's FlowInfo has them; events do not import flow). */
export interface EventFlow {
  readonly flowId: number;
  readonly proto: number;
  readonly srcIp: string;
  readonly srcPort: number;
  readonly dstIp: string;
  readonly dstPort: number;
  readonly vlan: readonly number[];
  readonly srcMac?: string;
}

/** Why a connection's content was not decrypted. */
export type NotDecryptedReason =
  | 'no_keys' // no key log entry or RSA key for it (within the wait for late keys)
  | 'unsupported_suite' // a suite or version Hark does not decrypt
  | 'non_rsa_key_exchange' // only an RSA key was available, and the suite uses (EC)DHE or PSK
  | 'bad_key' // the key was there but records failed authentication
  | 'missing_client_hello' // the flow was joined mid-stream: no randoms, no keys
  | 'gap' // bytes lost in reassembly before decryption could start
  | 'no_application_data' // the connection ended during or right after the handshake
  | 'quic'; // QUIC: not inspectable (block UDP 443 to make browsers fall back to TLS over TCP)

export interface TlsCertificateFields {
  subject?: string;
  issuerdn?: string;
  serial?: string;
  fingerprint?: string;
  notbefore?: string;
  notafter?: string;
}

export interface TlsFields extends TlsCertificateFields {
  sni?: string;
  version?: string;
  cipher_suite?: string;
  client_alpns: string[];
  server_alpn?: string;
  ja3?: { hash: string; string: string };
  ja4?: string;
  /** The ClientHello carried an Encrypted Client Hello: `sni` is the outer (public) name only. */
  ech: boolean;
  resumed: boolean;
  decrypted: boolean;
  not_decrypted_reason?: NotDecryptedReason;
  /** What the decrypted bytes turned out to be (`http`, `http2`), when decrypted. */
  inner_app_proto?: string;
  /** Application-data bytes seen, and how many of them were decrypted. */
  app_bytes: number;
  decrypted_bytes: number;
}

export interface TlsEvent {
  event_type: 'tls';
  timestamp: string;
  ts_us: number;
  flow_id: number;
  src_ip: string;
  src_port: number;
  dest_ip: string;
  dest_port: number;
  vlan: number[];
  proto: 'TCP' | 'UDP';
  app_proto: 'tls' | 'quic';
  tls: TlsFields;
  device: { ip: string; mac?: string };
}

/** The EVE flow fields every flow-level event starts with: time, flow id, endpoints, VLANs, proto. */
export function eveFlowFields(flow: EventFlow, tsUs: number) {
  return {
    timestamp: isoMicros(tsUs),
    ts_us: tsUs,
    flow_id: flow.flowId,
    src_ip: flow.srcIp,
    src_port: flow.srcPort,
    dest_ip: flow.dstIp,
    dest_port: flow.dstPort,
    vlan: [...flow.vlan],
    proto: flow.proto === 17 ? ('UDP' as const) : ('TCP' as const),
  };
}

/** A tls event for a flow. */
export function tlsEventFor(flow: EventFlow, tsUs: number, appProto: 'tls' | 'quic', tls: TlsFields): TlsEvent {
  return {
    event_type: 'tls',
    ...eveFlowFields(flow, tsUs),
    app_proto: appProto,
    tls,
    device: { ip: flow.srcIp, ...(flow.srcMac !== undefined ? { mac: flow.srcMac } : {}) },
  };
}

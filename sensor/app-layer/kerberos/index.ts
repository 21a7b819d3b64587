/**
 * App layer, Kerberos (port 88, UDP and TCP): KDC messages -> identity observations (source `kerberos`).
 * Input: UDP datagrams (one message each) or a TCP stream of records with a 4-byte big-endian length
 * (RFC 4120 §7.2.2). Output: for an AS-REQ, the client principal bound to the sender's address; for an
 * AS-REP, to the receiver's (the KDC confirming it). A name ending in `$` (an AD machine account) or a
 * `host/` principal is a host name; other service principals are ignored; the realm is the domain.
 * TCP records are buffered (as their bytes arrive) up to MAX_KERBEROS_TCP_RECORD_BYTES; larger ones are
 * skipped, not parsed. A TCP flow whose two directions have stopped (gap, reserved length bit) is bypassed.
 */

import { BYPASS, type CloseReason, type DatagramSink, type Direction, type FlowInfo, type StreamConsumer, type StreamFactory } from '../../flow/stream.js';
import { Counters, defineAnomaly, defineCounter } from '../../events/counters.js';
import type { IdentityObservation, IdentitySink } from '../../identity/observation.js';
import { KRB_MSG, isKerberosError, parseKerberosMessage, type KerberosMessage, type PrincipalName } from './parser.js';
import { PartialMessage } from '../partial-buffer.js';

export * from './parser.js';
export * from './der.js';

export const KERBEROS_PORT = 88;
/** A TCP record kept for parsing: AS-REQs are under 2 KB; AS-REPs carry a PAC of up to Windows'
 * MaxTokenSize (48,000 bytes). Larger records are skipped (counted). */
export const MAX_KERBEROS_TCP_RECORD_BYTES = 64 * 1024;
const RECORD_HEADER_BYTES = 4;

const C_MESSAGES = defineCounter('kerberos.messages');
const C_OBSERVATIONS = defineCounter('kerberos.identity_observations');
const C_SERVICE_PRINCIPAL = defineCounter('kerberos.service_principal_ignored');
const C_RECORD_TOO_LARGE = defineCounter('kerberos.tcp_record_too_large');
const C_GAP = defineCounter('kerberos.tcp_gap');
const A_RECORD_RESERVED_BIT = defineAnomaly('kerberos.tcp.reserved_length_bit');

export interface KerberosClient {
  readonly user?: string;
  readonly hostname?: string;
  readonly domain?: string;
}

/** Who a client principal names (see the file header). */
export function interpretPrincipal(p: PrincipalName, realm: string | undefined): KerberosClient {
  const domain = realm !== undefined && realm.length > 0 ? { domain: realm } : {};
  if (p.parts.length === 1) {
    const n = p.parts[0];
    if (n.length > 1 && n.endsWith('$')) return { hostname: n.slice(0, -1), ...domain };
    return n.length > 0 ? { user: n, ...domain } : {};
  }
  if (p.parts.length === 2 && p.parts[0].toLowerCase() === 'host' && p.parts[1].length > 0) return { hostname: p.parts[1], ...domain };
  return {};
}

/** The observation one message gives, if any. `senderIp` / `receiverIp` are the packet's addresses. */
export function kerberosObservation(m: KerberosMessage, senderIp: string, receiverIp: string, tsUs: number): IdentityObservation | undefined {
  let ip: string;
  if (m.msgType === KRB_MSG.AS_REQ) ip = senderIp;
  else if (m.msgType === KRB_MSG.AS_REP) ip = receiverIp;
  else return undefined;
  const who = m.cname === undefined ? {} : interpretPrincipal(m.cname, m.realm);
  const hostname = who.hostname ?? (m.netbiosNames.length > 0 ? m.netbiosNames[0] : undefined);
  if (who.user === undefined && hostname === undefined) return undefined;
  return {
    ip,
    ...(who.user !== undefined ? { user: who.user } : {}),
    ...(hostname !== undefined ? { hostname } : {}),
    ...(who.domain !== undefined ? { domain: who.domain } : {}),
    source: 'kerberos',
    tsUs,
  };
}

function handle(bytes: Uint8Array, flow: FlowInfo, dir: Direction, tsUs: number, sink: IdentitySink, counters: Counters): void {
  const r = parseKerberosMessage(bytes);
  if (isKerberosError(r)) {
    counters.inc(r.anomaly);
    return;
  }
  counters.inc(C_MESSAGES);
  const sender = dir === 0 ? flow.srcIp : flow.dstIp;
  const receiver = dir === 0 ? flow.dstIp : flow.srcIp;
  const obs = kerberosObservation(r, sender, receiver, tsUs);
  if (obs === undefined) {
    if (r.cname !== undefined && (r.msgType === KRB_MSG.AS_REQ || r.msgType === KRB_MSG.AS_REP)) counters.inc(C_SERVICE_PRINCIPAL);
    return;
  }
  counters.inc(C_OBSERVATIONS);
  sink.observe(obs);
}

/** UDP port 88: one message per datagram. */
export class KerberosIdentity implements DatagramSink {
  constructor(private readonly sink: IdentitySink, private readonly counters: Counters) {}

  datagram(flow: FlowInfo, dir: Direction, payload: Uint8Array, tsUs: number): void {
    handle(payload, flow, dir, tsUs, this.sink, this.counters);
  }
}

/** Per-direction record reassembly: header, then the record (kept) or a skip count (too large). */
class RecordReader {
  private readonly header = new Uint8Array(RECORD_HEADER_BYTES);
  private headerHave = 0;
  /** The record being read: grown as its bytes arrive, up to the announced length (only a claim); its
   * announced length is 0 between records. */
  private readonly body: PartialMessage;
  private skip = 0;
  private dead = false;

  constructor(private readonly onRecord: (record: Uint8Array) => void, private readonly counters: Counters) {
    this.body = new PartialMessage(counters);
  }

  /** Bytes of buffer held for a record spanning pushes. */
  get heldBytes(): number {
    return this.body.heldBytes;
  }

  push(bytes: Uint8Array): void {
    let p = 0;
    while (p < bytes.length && !this.dead) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, bytes.length - p);
        this.skip -= n;
        p += n;
        continue;
      }
      if (this.body.announced > 0) {
        p += this.body.append(bytes, p);
        if (this.body.complete) this.onRecord(this.body.finish());
        continue;
      }
      this.header[this.headerHave++] = bytes[p++];
      if (this.headerHave < RECORD_HEADER_BYTES) continue;
      this.headerHave = 0;
      const h = this.header;
      if (h[0] & 0x80) {
        // RFC 4120 §7.2.2: the high bit is reserved for an extension negotiation nobody deploys.
        this.counters.inc(A_RECORD_RESERVED_BIT);
        this.dead = true;
        return;
      }
      const len = ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0;
      if (len > MAX_KERBEROS_TCP_RECORD_BYTES) {
        this.counters.inc(C_RECORD_TOO_LARGE);
        this.skip = len;
      } else if (len > 0) {
        this.body.begin(len);
      }
    }
  }

  /** Nothing more is read in this direction (a gap, a reserved length bit). */
  get stopped(): boolean {
    return this.dead;
  }

  /** After a gap the record boundaries are lost: stop reading this direction. Also at the flow's end: the
   * buffer of a record not complete is let go (its charge given back). */
  stop(): void {
    this.dead = true;
    this.body.reset();
  }
}

/** TCP port 88: a `StreamConsumer` per flow. */
export class KerberosTcpSession implements StreamConsumer {
  private readonly readers: [RecordReader, RecordReader];
  private tsUs = 0;

  constructor(private readonly flow: FlowInfo, private readonly sink: IdentitySink, private readonly counters: Counters) {
    this.readers = [
      new RecordReader((r) => handle(r, this.flow, 0, this.tsUs, this.sink, this.counters), counters),
      new RecordReader((r) => handle(r, this.flow, 1, this.tsUs, this.sink, this.counters), counters),
    ];
  }

  data(dir: Direction, bytes: Uint8Array, tsUs: number): boolean | void {
    this.tsUs = tsUs;
    this.readers[dir].push(bytes);
    return this.bypass();
  }

  /** Bytes of buffer held for records spanning pushes, both directions. */
  get heldBytes(): number {
    return this.readers[0].heldBytes + this.readers[1].heldBytes;
  }

  gap(dir: Direction, _len: number, _tsUs: number): boolean | void {
    this.counters.inc(C_GAP);
    this.readers[dir].stop();
    return this.bypass();
  }

  /** BYPASS once both directions have stopped: the rest of the flow cannot be read, so it need not be
   * reassembled (see BYPASS in flow/stream.ts). */
  private bypass(): true | undefined {
    return this.readers[0].stopped && this.readers[1].stopped ? BYPASS : undefined;
  }

  end(_reason: CloseReason, _tsUs: number): void {
    // Nothing pending is worth parsing: a cut record is not a message. Its buffer is let go.
    this.readers[0].stop();
    this.readers[1].stop();
  }
}

export class KerberosStreamFactory implements StreamFactory {
  constructor(private readonly sink: IdentitySink, private readonly counters: Counters) {}

  open(flow: FlowInfo): KerberosTcpSession {
    return new KerberosTcpSession(flow, this.sink, this.counters);
  }
}

/**
 * Probe for protocol detection on TCP: a record length, then a KDC message's APPLICATION tag
 * (client: AS-REQ 0x6a / TGS-REQ 0x6c; server: AS-REP 0x6b / TGS-REP 0x6d / KRB-ERROR 0x7e).
 */
export function probeKerberosTcp(dir: Direction, bytes: Uint8Array): 'match' | 'no-match' | 'need-more' {
  if (bytes.length < RECORD_HEADER_BYTES + 1) {
    if (bytes.length > 0 && (bytes[0] & 0x80) !== 0) return 'no-match';
    return 'need-more';
  }
  const len = ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
  if (len < 2 || len > MAX_KERBEROS_TCP_RECORD_BYTES * 16) return 'no-match';
  const tag = bytes[4];
  const ok = dir === 0 ? tag === 0x6a || tag === 0x6c : tag === 0x6b || tag === 0x6d || tag === 0x7e;
  return ok ? 'match' : 'no-match';
}

/** The descriptor a protocol dispatcher registers (same shape as detect.ts's AppLayerProtocol). */
export function kerberosTcpAppLayer(sink: IdentitySink, counters: Counters): {
  readonly name: string;
  probe(dir: Direction, bytes: Uint8Array): 'match' | 'no-match' | 'need-more';
  create(flow: FlowInfo): StreamConsumer;
} {
  return { name: 'kerberos', probe: probeKerberosTcp, create: (flow) => new KerberosTcpSession(flow, sink, counters) };
}

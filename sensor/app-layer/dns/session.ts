/**
 * App layer, DNS: per-flow state over UDP (one message per datagram; DNS 53, mDNS 5353, LLMNR 5355) and
 * TCP (2-byte length framing, RFC 1035 §4.2.2; several messages per stream, split anywhere).
 * Output, through a `DnsSink`: one `DnsQuery` per query and one `DnsResponse` per response, the response
 * paired with its query by (flow, id, first question name) when that query was seen. Malformed messages
 * are counted by code; a TCP direction stops after a gap (framing cannot be recovered) and says so, and a
 * TCP flow whose two directions have stopped is bypassed.
 */

import { BYPASS, type CloseReason, type DatagramSink, type Direction, type FlowInfo, type StreamConsumer } from '../../flow/stream.js';
import { Counters, defineAnomaly, defineCounter } from '../../events/counters.js';
import {
  DNS_ANOMALY_CODES, MAX_DNS_RAW_RDATA_BYTES, dnsRcodeName, isDnsParseError, parseDnsMessage, reverseNameToAddress,
  type DnsAnomalyCode, type DnsMessage, type DnsQuestion, type DnsResourceRecord,
} from './parser.js';
import { PartialMessage } from '../partial-buffer.js';

export const DNS_PORT = 53;
/** RFC 6762. */
export const MDNS_PORT = 5353;
/** RFC 4795. */
export const LLMNR_PORT = 5355;
/** UDP ports whose datagrams `DnsDatagramHandler` decodes (for a port dispatcher). */
export const DNS_UDP_PORTS: readonly number[] = Object.freeze([DNS_PORT, MDNS_PORT, LLMNR_PORT]);

/** Queries waiting for their response, per `DnsTransactions`. A one-sided capture or a flood of
 * unanswered queries would otherwise grow without bound; the oldest are dropped (`dns.pending_overflow`). */
export const MAX_PENDING_DNS_QUERIES = 65536;
/** A query unanswered this long (capture time) is forgotten (`dns.query.unanswered`). Stub resolvers give
 * up after 5 s x a few retries; 30 s covers them. */
export const DNS_QUERY_TIMEOUT_US = 30_000_000;
/** Consecutive undecodable messages after which a TCP direction is judged not DNS and stopped. */
export const MAX_DNS_TCP_MALFORMED_RUN = 3;

const C_QUERIES = defineCounter('dns.queries');
const C_RESPONSES = defineCounter('dns.responses');
const C_MDNS = defineCounter('dns.mdns_messages');
const C_LLMNR = defineCounter('dns.llmnr_messages');
const C_TCP_MESSAGES = defineCounter('dns.tcp.messages');
const C_MALFORMED = defineCounter('dns.malformed');
const C_UNMATCHED = defineCounter('dns.response.unmatched');
const C_UNANSWERED = defineCounter('dns.query.unanswered');
const C_PENDING_OVERFLOW = defineCounter('dns.pending_overflow');
const C_RECORDS_TRUNCATED = defineCounter('dns.records_truncated');
const C_RAW_TRUNCATED = defineCounter('dns.rdata_raw_truncated');
const C_TCP_GAP = defineCounter('dns.tcp.gap');
const C_TCP_DISABLED = defineCounter('dns.tcp.parser_disabled');
const C_TCP_INCOMPLETE = defineCounter('dns.tcp.message_incomplete');
const ANOMALY_IDS = new Map<string, number>(DNS_ANOMALY_CODES.map((c) => [c, defineAnomaly(c)]));

export type DnsService = 'dns' | 'mdns' | 'llmnr';
export type DnsTransport = 'udp' | 'tcp';

/** Which DNS flavour a port pair carries; plain DNS wins (an mDNS responder may query a unicast server). */
export function dnsServiceForPorts(srcPort: number, dstPort: number): DnsService | undefined {
  if (srcPort === DNS_PORT || dstPort === DNS_PORT) return 'dns';
  if (srcPort === MDNS_PORT || dstPort === MDNS_PORT) return 'mdns';
  if (srcPort === LLMNR_PORT || dstPort === LLMNR_PORT) return 'llmnr';
  return undefined;
}

/** A reverse lookup answered: the identity table's `ip -> hostname` signal. */
export interface DnsPtrAnswer {
  readonly address: string;
  readonly hostname: string;
}

interface DnsRecordBase {
  readonly flow: FlowInfo;
  /** Flow direction the message travelled (0 originator -> responder). */
  readonly dir: Direction;
  readonly transport: DnsTransport;
  readonly service: DnsService;
  /** Time of the packet holding the message's first byte. */
  readonly tsUs: number;
  readonly id: number;
  readonly opcode: number;
  /** The first question's name (as sent, and lower-cased for matching); for a question-less response
   * (mDNS announcements) the first answer's owner; undefined when there is neither. */
  readonly name: string | undefined;
  readonly lname: string | undefined;
  readonly qtype: number | undefined;
  readonly qclass: number | undefined;
  readonly questions: readonly DnsQuestion[];
  /** The whole decoded message; undefined when it could not be decoded to the end (see `malformed`). */
  readonly message: DnsMessage | undefined;
  /** Why the message could not be decoded to the end; the questions before the fault are kept. */
  readonly malformed: DnsAnomalyCode | undefined;
  /** Non-fatal anomalies (records kept raw, trailing bytes). */
  readonly anomalies: readonly DnsAnomalyCode[];
}

export interface DnsQuery extends DnsRecordBase {
  readonly kind: 'query';
}

export interface DnsResponse extends DnsRecordBase {
  readonly kind: 'response';
  /** Extended by EDNS when present. */
  readonly rcode: number;
  readonly rcodeName: string;
  readonly answers: readonly DnsResourceRecord[];
  readonly authority: readonly DnsResourceRecord[];
  readonly additional: readonly DnsResourceRecord[];
  /** PTR answers whose owner is a full reverse name (`in-addr.arpa` / `ip6.arpa`). */
  readonly ptrs: readonly DnsPtrAnswer[];
  /** Time of the paired query; undefined when none was seen (one-sided capture, mDNS announcement). */
  readonly queryTsUs: number | undefined;
}

/** Receives records in message order per flow direction; a response is delivered after its query. */
export interface DnsSink {
  query(q: DnsQuery): void;
  response(r: DnsResponse): void;
}

const NO_RECORDS: readonly DnsResourceRecord[] = Object.freeze([]);
const NO_PTRS: readonly DnsPtrAnswer[] = Object.freeze([]);
const NO_ANOMALIES: readonly DnsAnomalyCode[] = Object.freeze([]);

function ptrAnswers(answers: readonly DnsResourceRecord[]): readonly DnsPtrAnswer[] {
  let out: DnsPtrAnswer[] | undefined;
  for (const rr of answers) {
    if (rr.rdata.kind !== 'name' || rr.type !== 12) continue;
    const address = reverseNameToAddress(rr.lname);
    if (address !== undefined) (out ??= []).push({ address, hostname: rr.rdata.target });
  }
  return out ?? NO_PTRS;
}

function countRecords(counters: Counters, list: readonly DnsResourceRecord[]): void {
  for (const rr of list) {
    if (rr.rdata.kind === 'raw' && rr.rdata.length > MAX_DNS_RAW_RDATA_BYTES) counters.inc(C_RAW_TRUNCATED);
  }
}

/**
 * Decodes messages, pairs responses with queries and hands both to the sink. One instance may serve
 * every flow (UDP and TCP alike): pending queries are keyed by flow id.
 */
export class DnsTransactions {
  /** key `flowId:id:lname` -> query time; insertion order is time order. */
  private readonly pending = new Map<string, number>();

  constructor(private readonly sink: DnsSink, readonly counters: Counters) {}

  /** Pending queries (for tests and status). */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** One whole message. Returns false when it could not be decoded to the end. */
  message(flow: FlowInfo, dir: Direction, transport: DnsTransport, service: DnsService, bytes: Uint8Array, tsUs: number): boolean {
    const c = this.counters;
    if (service === 'mdns') c.inc(C_MDNS);
    else if (service === 'llmnr') c.inc(C_LLMNR);
    const r = parseDnsMessage(bytes);
    let message: DnsMessage | undefined;
    let malformed: DnsAnomalyCode | undefined;
    let questions: readonly DnsQuestion[];
    let id: number;
    let isResponse: boolean;
    let opcode: number;
    let rcode: number;
    if (isDnsParseError(r)) {
      c.inc(C_MALFORMED);
      c.inc(ANOMALY_IDS.get(r.error) as number);
      // Without a header or a question there is nothing to pair or to match: counted only.
      if (r.header === undefined || r.questions.length === 0) return false;
      malformed = r.error;
      questions = r.questions;
      ({ id, response: isResponse, opcode, rcode } = r.header);
    } else {
      message = r;
      questions = r.questions;
      id = r.id;
      isResponse = r.response;
      opcode = r.opcode;
      rcode = r.rcode;
      for (const a of r.anomalies) c.inc(ANOMALY_IDS.get(a) as number);
      if (r.recordsTruncated) c.inc(C_RECORDS_TRUNCATED);
    }
    const q0 = questions.length > 0 ? questions[0] : undefined;
    const owner = q0 === undefined && message !== undefined && message.answers.length > 0 ? message.answers[0] : undefined;
    const name = q0?.name ?? owner?.name;
    const lname = q0?.lname ?? owner?.lname;
    const base = {
      flow, dir, transport, service, tsUs, id, opcode, name, lname,
      qtype: q0?.type, qclass: q0?.class, questions, message, malformed,
      anomalies: message?.anomalies ?? NO_ANOMALIES,
    };
    if (!isResponse) {
      c.inc(C_QUERIES);
      if (q0 !== undefined) this.remember(`${flow.flowId}:${id}:${q0.lname}`, tsUs);
      this.sink.query({ kind: 'query', ...base });
      return message !== undefined;
    }
    c.inc(C_RESPONSES);
    let queryTsUs: number | undefined;
    if (q0 !== undefined) {
      const key = `${flow.flowId}:${id}:${q0.lname}`;
      queryTsUs = this.pending.get(key);
      if (queryTsUs !== undefined) this.pending.delete(key);
    }
    // mDNS answers are mostly unsolicited multicast announcements: not counted as unmatched.
    if (queryTsUs === undefined && service !== 'mdns') c.inc(C_UNMATCHED);
    const answers = message?.answers ?? NO_RECORDS;
    if (message !== undefined) {
      countRecords(c, answers);
      countRecords(c, message.authority);
      countRecords(c, message.additional);
    }
    this.sink.response({
      kind: 'response', ...base, rcode, rcodeName: dnsRcodeName(rcode), answers,
      authority: message?.authority ?? NO_RECORDS, additional: message?.additional ?? NO_RECORDS,
      ptrs: ptrAnswers(answers), queryTsUs,
    });
    return message !== undefined;
  }

  /** End of input: queries still waiting are counted as unanswered and forgotten. (During a run they
   * expire by capture time, DNS_QUERY_TIMEOUT_US, so flows need not report their end.) */
  finish(): void {
    this.counters.inc(C_UNANSWERED, this.pending.size);
    this.pending.clear();
  }

  private remember(key: string, tsUs: number): void {
    const p = this.pending;
    // Expire from the oldest end: the map is in insertion (capture-time) order.
    for (const [k, t] of p) {
      if (tsUs - t <= DNS_QUERY_TIMEOUT_US) break;
      p.delete(k);
      this.counters.inc(C_UNANSWERED);
    }
    if (p.has(key)) return; // a retransmission: keep the first time
    if (p.size >= MAX_PENDING_DNS_QUERIES) {
      const oldest = p.keys().next().value as string;
      p.delete(oldest);
      this.counters.inc(C_PENDING_OVERFLOW);
    }
    p.set(key, tsUs);
  }
}

/**
 * UDP: every datagram on a DNS, mDNS or LLMNR port is one message. `datagram` returns false for other
 * ports (nothing counted), so it can sit behind a dispatcher or take all UDP.
 */
export class DnsDatagramHandler implements DatagramSink {
  readonly transactions: DnsTransactions;

  constructor(sink: DnsSink, counters: Counters, transactions?: DnsTransactions) {
    this.transactions = transactions ?? new DnsTransactions(sink, counters);
  }

  datagram(flow: FlowInfo, dir: Direction, payload: Uint8Array, tsUs: number): boolean {
    const service = dnsServiceForPorts(flow.srcPort, flow.dstPort);
    if (service === undefined) return false;
    this.transactions.message(flow, dir, 'udp', service, payload, tsUs);
    return true;
  }

  /** End of input (see `DnsTransactions.finish`). */
  finish(): void {
    this.transactions.finish();
  }
}

/** One direction's framing state. */
class TcpHalf {
  /** 0, 1 or 2 bytes of the length prefix seen. */
  prefixHave = 0;
  prefixHigh = 0;
  /** The message spanning pushes: grown as its bytes arrive, up to the length the prefix claims. */
  readonly body: PartialMessage;
  startTs = 0;
  stopped = false;
  malformedRun = 0;

  constructor(counters: Counters) {
    this.body = new PartialMessage(counters);
  }
}

/** TCP: 2-byte big-endian length, then the message (RFC 1035 §4.2.2, RFC 7766 §8). */
export class DnsTcpSession implements StreamConsumer {
  private readonly halves: [TcpHalf, TcpHalf];
  private readonly service: DnsService;

  constructor(readonly flow: FlowInfo, private readonly transactions: DnsTransactions) {
    this.halves = [new TcpHalf(transactions.counters), new TcpHalf(transactions.counters)];
    this.service = dnsServiceForPorts(flow.srcPort, flow.dstPort) ?? 'dns';
  }

  /** Has this direction stopped (gap or not DNS)? */
  stopped(dir: Direction): boolean {
    return this.halves[dir].stopped;
  }

  data(dir: Direction, bytes: Uint8Array, tsUs: number): boolean | void {
    const h = this.halves[dir];
    const n = bytes.length;
    let i = 0;
    while (i < n && !h.stopped) {
      if (h.prefixHave === 0) {
        // Whole frames in this chunk go straight from the caller's buffer.
        if (n - i >= 2) {
          const len = (bytes[i] << 8) | bytes[i + 1];
          if (n - i - 2 >= len) {
            this.deliver(h, dir, bytes.subarray(i + 2, i + 2 + len), tsUs);
            i += 2 + len;
            continue;
          }
        }
        h.prefixHigh = bytes[i++];
        h.prefixHave = 1;
        h.startTs = tsUs;
        continue;
      }
      if (h.prefixHave === 1) {
        const len = (h.prefixHigh << 8) | bytes[i++];
        h.prefixHave = 2;
        h.body.begin(len);
        if (len === 0) this.finishBuffered(h, dir);
        continue;
      }
      i += h.body.append(bytes, i, n);
      if (h.body.complete) this.finishBuffered(h, dir);
    }
    return this.bypass();
  }

  /** Bytes of buffer held for messages spanning pushes, both directions. */
  heldBytes(): number {
    return this.halves[0].body.heldBytes + this.halves[1].body.heldBytes;
  }

  gap(dir: Direction, len: number, tsUs: number): boolean | void {
    const h = this.halves[dir];
    if (!h.stopped) {
      // Lengths are not self-synchronising: after lost bytes the next frame boundary is unknown.
      this.transactions.counters.inc(C_TCP_GAP);
      if (h.prefixHave > 0) this.transactions.counters.inc(C_TCP_INCOMPLETE);
      this.stop(h);
    }
    return this.bypass();
  }

  /** BYPASS once both directions have stopped (gap, not DNS): the rest of the flow cannot be read, so it
   * need not be reassembled (see BYPASS in flow/stream.ts). */
  private bypass(): true | undefined {
    return this.halves[0].stopped && this.halves[1].stopped ? BYPASS : undefined;
  }

  end(reason: CloseReason, tsUs: number): void {
    for (const h of this.halves) {
      if (!h.stopped && h.prefixHave > 0) this.transactions.counters.inc(C_TCP_INCOMPLETE);
      this.stop(h);
    }
  }

  private finishBuffered(h: TcpHalf, dir: Direction): void {
    h.prefixHave = 0;
    this.deliver(h, dir, h.body.finish(), h.startTs);
  }

  private deliver(h: TcpHalf, dir: Direction, message: Uint8Array, tsUs: number): void {
    const t = this.transactions;
    t.counters.inc(C_TCP_MESSAGES);
    if (t.message(this.flow, dir, 'tcp', this.service, message, tsUs)) {
      h.malformedRun = 0;
    } else if (++h.malformedRun >= MAX_DNS_TCP_MALFORMED_RUN) {
      t.counters.inc(C_TCP_DISABLED);
      this.stop(h);
    }
  }

  private stop(h: TcpHalf): void {
    h.stopped = true;
    h.body.reset();
    h.prefixHave = 0;
  }
}

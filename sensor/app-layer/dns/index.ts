/**
 * App layer, DNS: protocol probe for TCP streams and session factories.
 * Input: the first bytes of one direction of a TCP stream (length prefix included). Output: `match` /
 * `no-match` / `need-more` (a plausible header, the right QR bit for the direction, and a well-formed
 * first question or whole message), and `DnsTcpSession`s; UDP goes to `DnsDatagramHandler`.
 */

import type { Direction, FlowInfo, StreamFactory } from '../../flow/stream.js';
import type { Counters } from '../../events/counters.js';
import { DNS_HEADER_LEN, checkDnsName, isDnsParseError, parseDnsMessage } from './parser.js';
import { DnsTcpSession, DnsTransactions, type DnsSink } from './session.js';

export {
  DnsDatagramHandler, DnsTcpSession, DnsTransactions, dnsServiceForPorts, DNS_PORT, MDNS_PORT, LLMNR_PORT, DNS_UDP_PORTS,
  MAX_PENDING_DNS_QUERIES, DNS_QUERY_TIMEOUT_US, MAX_DNS_TCP_MALFORMED_RUN,
} from './session.js';
export type { DnsSink, DnsQuery, DnsResponse, DnsPtrAnswer, DnsService, DnsTransport } from './session.js';
export {
  parseDnsMessage, isDnsParseError, reverseNameToAddress, dnsTypeName, dnsRcodeName, DNS_TYPE, DNS_ANOMALY, DNS_ANOMALY_CODES,
  MAX_DNS_NAME_LEN, MAX_DNS_NAME_WIRE_LEN, MAX_DNS_LABEL_LEN, MAX_DNS_POINTER_JUMPS, MAX_DNS_RECORDS,
} from './parser.js';
export type {
  DnsMessage, DnsParseError, DnsParseResult, DnsQuestion, DnsResourceRecord, DnsRdata, SvcbRdata, DnsEdns, DnsAnomalyCode,
} from './parser.js';

export type ProbeResult = 'match' | 'no-match' | 'need-more';

/** Opcodes seen on TCP/53: QUERY 0, IQUERY 1 (obsolete), STATUS 2, NOTIFY 4, UPDATE 5, DSO 6 (RFC 8490). */
const PROBE_OPCODES = 0b1110111;
/** The probe judges a first question within this many bytes; a longer wait means it is not DNS. */
const PROBE_MAX_BYTES = 2 + DNS_HEADER_LEN + 255 + 4;

/**
 * Does this direction start like DNS over TCP? The length covers at least a header; QR is 0 from the
 * originator and 1 from the responder; the opcode is a known one; a QUERY has at most one question; the
 * counts fit the length; then the whole message decodes, or else its first question name is well formed.
 */
export function probeDnsTcp(dir: Direction, bytes: Uint8Array): ProbeResult {
  if (bytes.length < 2) return 'need-more';
  const len = (bytes[0] << 8) | bytes[1];
  if (len < DNS_HEADER_LEN) return 'no-match';
  if (bytes.length < 2 + DNS_HEADER_LEN) return 'need-more';
  const msg = bytes.subarray(2, 2 + len);
  const flags = (msg[2] << 8) | msg[3];
  const qr = flags >>> 15;
  const opcode = (flags >>> 11) & 0xf;
  if (qr !== dir || ((PROBE_OPCODES >>> opcode) & 1) === 0) return 'no-match';
  const qd = (msg[4] << 8) | msg[5];
  const records = ((msg[6] << 8) | msg[7]) + ((msg[8] << 8) | msg[9]) + ((msg[10] << 8) | msg[11]);
  if (opcode === 0 && qd > 1) return 'no-match';
  if (DNS_HEADER_LEN + qd * 5 + records * 11 > len) return 'no-match';
  if (msg.length === len) return isDnsParseError(parseDnsMessage(msg)) ? 'no-match' : 'match';
  if (qd === 0) return 'match';
  const end = checkDnsName(msg, DNS_HEADER_LEN);
  if (end === -2) return 'no-match';
  if (end === -1) return bytes.length < PROBE_MAX_BYTES ? 'need-more' : 'no-match';
  return 'match';
}

/** A new TCP session; pass a shared `DnsTransactions` to pair across flows' bookkeeping in one place. */
export function createDnsTcpSession(flow: FlowInfo, sink: DnsSink, counters: Counters, transactions?: DnsTransactions): DnsTcpSession {
  return new DnsTcpSession(flow, transactions ?? new DnsTransactions(sink, counters));
}

/** Gives every flow a `DnsTcpSession` sharing one `DnsTransactions` (for dispatch by port or after `probeDnsTcp`). */
export class DnsTcpSessionFactory implements StreamFactory {
  readonly transactions: DnsTransactions;

  constructor(sink: DnsSink, counters: Counters, transactions?: DnsTransactions) {
    this.transactions = transactions ?? new DnsTransactions(sink, counters);
  }

  open(flow: FlowInfo): DnsTcpSession {
    return new DnsTcpSession(flow, this.transactions);
  }
}

/** The descriptor a protocol dispatcher registers. */
export const dnsAppLayer = {
  name: 'dns',
  probe: probeDnsTcp,
  create: createDnsTcpSession,
} as const;

/**
 * App layer, HTTP/1.x: protocol probe and session factory.
 * Input: the first bytes of one direction of a TCP stream. Output: `match` / `no-match` / `need-more`
 * (never a guess on too few bytes), and `HttpSession`s for flows judged HTTP.
 */

import type { Direction, FlowInfo, StreamFactory } from '../../flow/stream.js';
import type { Counters } from '../../events/counters.js';
import { MAX_START_LINE_BYTES, parseRequestLine } from './parser.js';
import { HttpSession, type HttpSessionOptions, type HttpSink } from './session.js';

export { HttpSession, headerValue } from './session.js';
export type {
  HttpSink, HttpRequest, HttpResponse, HttpMessage, MessageEndInfo, HttpParserEvent, HttpSessionOptions,
} from './session.js';

/** Methods recognised from their first bytes: RFC 9110 §9, PATCH (RFC 5789), WebDAV (RFC 4918, 3253). */
export const HTTP_METHODS: readonly string[] = [
  'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH',
  'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'SEARCH', 'MKCALENDAR',
  'CHECKOUT', 'MERGE', 'NOTIFY', 'SUBSCRIBE', 'UNSUBSCRIBE', 'PURGE',
];

/** An unknown method is only accepted with a complete request line; the probe waits this long for it. */
export const PROBE_MAX_LINE_BYTES = Math.min(4096, MAX_START_LINE_BYTES);
/** Longest method token an unknown-method request line may have. */
const PROBE_MAX_METHOD_LEN = 20;

export type ProbeResult = 'match' | 'no-match' | 'need-more';

const METHOD_PREFIXES: readonly Uint8Array[] = HTTP_METHODS.map((m) => Buffer.from(m + ' ', 'latin1'));
const STATUS_PREFIX = Buffer.from('HTTP/1.', 'latin1');

/** Compares `bytes` with `pattern` over their common length: 1 equal and complete, 0 equal so far, -1 differ. */
function prefixMatch(bytes: Uint8Array, pattern: Uint8Array): number {
  const n = Math.min(bytes.length, pattern.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== pattern[i]) return -1;
  return bytes.length >= pattern.length ? 1 : 0;
}

/**
 * Does this direction start like HTTP/1.x? Client side: a known method and a space, or any upper-case
 * token forming a complete `METHOD target HTTP/x.y` line. Server side: `HTTP/1.d NNN`.
 */
export function probeHttp(dir: Direction, bytes: Uint8Array): ProbeResult {
  if (bytes.length === 0) return 'need-more';
  if (dir === 1) {
    const p = prefixMatch(bytes, STATUS_PREFIX);
    if (p < 0) return 'no-match';
    const need = STATUS_PREFIX.length + 5; // "d NNN"
    const n = Math.min(bytes.length, need);
    for (let i = STATUS_PREFIX.length; i < n; i++) {
      const c = bytes[i];
      const ok = i === STATUS_PREFIX.length + 1 ? c === 32 : c >= 48 && c <= 57;
      if (!ok) return 'no-match';
    }
    return bytes.length >= need ? 'match' : 'need-more';
  }
  let waiting = false;
  for (const prefix of METHOD_PREFIXES) {
    const p = prefixMatch(bytes, prefix);
    if (p === 1) return 'match';
    if (p === 0) waiting = true;
  }
  if (waiting) return 'need-more';
  // Unknown method: upper-case token, then a full request line with an HTTP version.
  let i = 0;
  for (; i < bytes.length && i <= PROBE_MAX_METHOD_LEN; i++) {
    const c = bytes[i];
    if (c === 32) break;
    if (!((c >= 65 && c <= 90) || c === 45 || c === 95)) return 'no-match';
  }
  if (i === 0 || i > PROBE_MAX_METHOD_LEN) return 'no-match';
  const lf = bytes.indexOf(10);
  if (lf < 0) return bytes.length < PROBE_MAX_LINE_BYTES ? 'need-more' : 'no-match';
  const end = lf > 0 && bytes[lf - 1] === 13 ? lf - 1 : lf;
  const line = Buffer.from(bytes.buffer, bytes.byteOffset, end).toString('latin1');
  return parseRequestLine(line) !== undefined ? 'match' : 'no-match';
}

/**
 * Where an HTTP/1.x message starts in `bytes`, a stream picked up inside a message: the offset of
 * the first line that `probeHttp` takes for a request line (client side) or a status line (server
 * side), or -1. Lines start after each LF, and at 0 when `atLineStart`; a line that might match but
 * is cut off by the end of `bytes` is not taken (the caller keeps it for the next bytes).
 */
export function findHttpStart(dir: Direction, bytes: Uint8Array, atLineStart: boolean): number {
  let p = 0;
  if (!atLineStart) {
    const lf = bytes.indexOf(10);
    if (lf < 0) return -1;
    p = lf + 1;
  }
  for (;;) {
    if (p >= bytes.length) return -1;
    if (probeHttp(dir, bytes.subarray(p)) === 'match') return p;
    const lf = bytes.indexOf(10, p);
    if (lf < 0) return -1;
    p = lf + 1;
  }
}

/** A new session for a flow judged HTTP. */
export function createHttpSession(flow: FlowInfo, sink: HttpSink, counters: Counters, options?: HttpSessionOptions): HttpSession {
  return new HttpSession(flow, sink, counters, options);
}

/** Gives every flow an `HttpSession` (for a pipeline that dispatches by port or after `probeHttp`). */
export class HttpSessionFactory implements StreamFactory {
  constructor(private readonly sink: HttpSink, private readonly counters: Counters, private readonly options: HttpSessionOptions = {}) {}

  open(flow: FlowInfo): HttpSession {
    return new HttpSession(flow, this.sink, this.counters, this.options);
  }
}

/** The descriptor a protocol dispatcher registers. */
export const httpAppLayer = {
  name: 'http',
  probe: probeHttp,
  create: createHttpSession,
} as const;

/**
 * App layer, HTTP/2: protocol probe and session factory.
 * Input: the first bytes of one direction of a TCP stream (or of a decrypted TLS stream). Output: `match` /
 * `no-match` / `need-more` from the client connection preface alone, and `Http2Session`s for flows judged
 * HTTP/2 (h2c with prior knowledge, or TLS with ALPN h2 handed over by the TLS layer).
 */

import type { Direction, FlowInfo, StreamFactory } from '../../flow/stream.js';
import type { Counters } from '../../events/counters.js';
import type { HttpSessionOptions, HttpSink } from '../http/session.js';
import { CLIENT_PREFACE } from './frame.js';
import { Http2Session } from './session.js';

export { Http2Session, MAX_OPEN_STREAMS, MAX_DECODING_STREAMS, MAX_HEADER_BLOCK_BYTES } from './session.js';
export type { Http2Request, Http2Response, Http2ParserEvent, Http2InvalidReason } from './session.js';
export { CLIENT_PREFACE } from './frame.js';

export type ProbeResult = 'match' | 'no-match' | 'need-more';

/**
 * Does this direction start with the HTTP/2 client connection preface (RFC 9113 §3.4)? Only the client side
 * decides: `need-more` until the 24 preface bytes are in (or one differs). The server's first frame
 * (SETTINGS) is too weak a signal on its own, so direction 1 never matches.
 * Register before HTTP/1's probe: `PRI * HTTP/2.0` is also a well-formed HTTP/1 request line.
 */
export function probeHttp2(dir: Direction, bytes: Uint8Array): ProbeResult {
  if (dir !== 0) return 'no-match';
  const n = Math.min(bytes.length, CLIENT_PREFACE.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== CLIENT_PREFACE[i]) return 'no-match';
  return bytes.length >= CLIENT_PREFACE.length ? 'match' : 'need-more';
}

/** A new session for a flow judged HTTP/2. */
export function createHttp2Session(flow: FlowInfo, sink: HttpSink, counters: Counters, options?: HttpSessionOptions): Http2Session {
  return new Http2Session(flow, sink, counters, options);
}

/** Gives every flow an `Http2Session` (for a pipeline that dispatches by port, ALPN or after `probeHttp2`). */
export class Http2SessionFactory implements StreamFactory {
  constructor(private readonly sink: HttpSink, private readonly counters: Counters, private readonly options: HttpSessionOptions = {}) {}

  open(flow: FlowInfo): Http2Session {
    return new Http2Session(flow, this.sink, this.counters, this.options);
  }
}

/** The descriptor a protocol dispatcher registers. */
export const http2AppLayer = {
  name: 'http2',
  probe: probeHttp2,
  create: createHttp2Session,
} as const;

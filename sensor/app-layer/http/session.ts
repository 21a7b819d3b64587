/**
 * App layer, HTTP/1.x: per-flow state for both directions (a `StreamConsumer`).
 * Input: reassembled stream bytes, gaps and the flow end from the flow stage. Output, through an `HttpSink`:
 * requests, responses paired to their requests (pipelining, HEAD, 1xx, 204/304, CONNECT, Upgrade), decoded
 * bodies (de-chunked, decompressed, bounded) and one end notice per message, plus parser events
 * (invalid, resync, tunnel). Everything is synchronous and in stream order per direction.
 */

import { BYPASS, type BypassedBytes, type CloseReason, type Direction, type FlowInfo, type StreamConsumer } from '../../flow/stream.js';
import { Counters, counterName, defineAnomaly, defineCounter } from '../../events/counters.js';
import { ownedString } from '../../events/owned-string.js';
import {
  DecoderChain, DEFAULT_DECODED_LIMIT_BYTES, MAX_DECODED_BYTES, parseContentEncoding, type Coding, type DecodeStatus,
} from '../../normalize/decompress.js';
import {
  A_CONNECT_HOLD_OVERFLOW, HttpMessageParser, type BodyRule, type HeaderList, type MessageParserSink, type ParsedHead, type ResyncReason,
} from './parser.js';

/** Requests awaiting a response: browsers pipeline a handful; beyond this the oldest are dropped (a
 * one-sided capture never sees responses). */
export const MAX_PENDING_REQUESTS = 64;
/** Units of a pending request's method kept: it is only compared with HEAD, CONNECT and PRI, and no
 * registered method is longer (the longest, UPDATEREDIRECTREF, has 17). */
const MAX_QUEUED_METHOD_UNITS = 32;

const C_REQUESTS = defineCounter('http.requests');
const C_RESPONSES = defineCounter('http.responses');
const C_BODY_TRUNCATED = defineCounter('http.body_truncated');
const C_GAP_RESYNC = defineCounter('http.gap_resync');
const C_RESYNC = defineCounter('http.resync');
const C_PARSER_INVALID = defineCounter('http.parser_invalid');
const C_TUNNEL = defineCounter('http.tunnel');
const C_PIPELINE_OVERFLOW = defineCounter('http.pending_requests_overflow');
const C_MESSAGE_INCOMPLETE = defineCounter('http.message_incomplete');
const A_RESPONSE_UNMATCHED = defineAnomaly('http.response.unmatched');
const A_UNKNOWN_ENCODING = defineAnomaly('http.content_encoding.unknown');
const A_DECODE_FAILED = defineAnomaly('http.content_encoding.decode_failed');

export interface HttpRequest {
  readonly kind: 'request';
  readonly flow: FlowInfo;
  /** 0-based order of the request in its flow. */
  readonly index: number;
  readonly method: string;
  readonly uri: string;
  readonly version: string;
  /** Names as sent (compare case-insensitively, see `headerValue`), values trimmed, folds joined. */
  readonly headers: HeaderList;
  /** The authority of an absolute-form or CONNECT target, else the Host header (RFC 9112 §3.2.2-3). */
  readonly host: string | undefined;
  /** Time of the packet holding the first byte of the request line. */
  readonly tsUs: number;
  /** The request line was cut at MAX_START_LINE_BYTES. */
  readonly uriTruncated: boolean;
  /** Anomaly codes seen while parsing the head. */
  readonly anomalies: readonly string[];
}

export interface HttpResponse {
  readonly kind: 'response';
  readonly flow: FlowInfo;
  /** 0-based order of the response in its flow (interim 1xx responses included). */
  readonly index: number;
  /** `index` of the request it answers; -1 when no request was pending. */
  readonly requestIndex: number;
  readonly status: number;
  readonly reason: string;
  readonly version: string;
  readonly headers: HeaderList;
  readonly tsUs: number;
  /** A 1xx other than 101: the final response to the same request follows. */
  readonly interim: boolean;
  readonly anomalies: readonly string[];
}

export type HttpMessage = HttpRequest | HttpResponse;

export interface MessageEndInfo {
  /** Body bytes on the wire after de-chunking (before decompression), gaps excluded. */
  readonly bodyBytesWire: number;
  /** Decoded body bytes delivered through `onBody`. */
  readonly bodyBytesDecoded: number;
  /** Delivery stopped before the end of the body: inspection limit, bomb guard, corrupt data, too many
   * layers, or a gap inside compressed data. Counted as `http.body_truncated`. */
  readonly truncated: boolean;
  /** Bytes were lost (gap) or the message was cut (gap, framing error, end of flow). */
  readonly incomplete: boolean;
  /** Body bytes lost in reassembly gaps. */
  readonly gapBytes: number;
  /** Content-Encoding tokens (plus transfer codings other than chunked), lower-cased, in applied order. */
  readonly encodings: readonly string[];
  /** How decoding went: `ok`, or why it stopped. `ok` as well when there was nothing to decode. */
  readonly decode: DecodeStatus;
  /** Anomaly codes seen in the body (framing, decoding). Head anomalies are on the record. */
  readonly anomalies: readonly string[];
  readonly trailers: HeaderList | undefined;
}

export type HttpParserEventKind = 'invalid' | 'resync' | 'tunnel';

export interface HttpParserEvent {
  readonly flow: FlowInfo;
  readonly dir: Direction;
  /** `invalid`: this direction is not parsed any more; `resync`: parsing resumed at a start line after
   * a gap or garbage; `tunnel`: both directions stop (CONNECT 2xx, 101 Switching Protocols, HTTP/2). */
  readonly kind: HttpParserEventKind;
  readonly reason: ResyncReason | 'not_http' | 'connect' | 'upgrade' | 'http2' | 'connect_hold_overflow';
  readonly tsUs: number;
}

/**
 * Receives a session's records. Per direction, in order: onRequest/onResponse, onBody* (and onBodyGap*),
 * onMessageEnd. A response head may arrive before its request's body ended (servers answer early).
 * Chunks are views valid only during the call: copy what you keep.
 */
export interface HttpSink {
  onRequest(req: HttpRequest): void;
  onResponse(res: HttpResponse): void;
  /** Decoded body bytes (de-chunked, decompressed), at most the inspection limit per message. */
  onBody(msg: HttpMessage, dir: Direction, chunk: Uint8Array, tsUs: number): void;
  /** `len` wire bytes of this body were lost; bytes on either side are not contiguous. */
  onBodyGap?(msg: HttpMessage, dir: Direction, len: number, tsUs: number): void;
  onMessageEnd(msg: HttpMessage, dir: Direction, info: MessageEndInfo, tsUs: number): void;
  onParserEvent?(event: HttpParserEvent): void;
  /** The flow ended; every message has had its onMessageEnd. */
  onClose?(): void;
}

export interface HttpSessionOptions {
  /** Decoded body bytes delivered per message (default 8 MiB, at most MAX_DECODED_BYTES). */
  bodyLimitBytes?: number;
  /** Decode Content-Encoding (default true). False delivers wire bytes (de-chunked) as they are. */
  decompress?: boolean;
  /** Test hook: force the buffered decoding fallback. */
  forceBufferedDecode?: boolean;
  /**
   * The consumer of what a CONNECT tunnel carries (TLS to a web proxy), made when the proxy answers
   * 2xx; it gets both directions' bytes from there on. Without it the tunnel is not looked into.
   */
  tunnel?: (flow: FlowInfo) => StreamConsumer | undefined;
}

interface PendingRequest {
  readonly index: number;
  readonly method: string;
}

const NO_ANOMALIES: readonly string[] = Object.freeze([]);
const NO_ENCODINGS: readonly string[] = Object.freeze([]);

/** Absolute-form request target (`http://host:port/path`): its authority, else undefined. */
function authorityOf(uri: string): string | undefined {
  const c = uri.charCodeAt(0);
  if (c === 47 /* / */ || c === 42 /* * */) return undefined;
  const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)/.exec(uri);
  if (m === null) return undefined;
  const at = m[1].lastIndexOf('@');
  return at >= 0 ? m[1].slice(at + 1) : m[1];
}

/** First value of a header, by case-insensitive name (`lowerName` must be lower case). */
export function headerValue(headers: HeaderList, lowerName: string): string | undefined {
  for (const [name, value] of headers) {
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) return value;
  }
  return undefined;
}

/** One direction: its parser, the message in progress and its body decoder. */
class HttpHalf implements MessageParserSink {
  readonly parser: HttpMessageParser;
  tsUs = 0;
  private startTs = 0;
  /** The message whose head was emitted and whose end was not; set by the session before the sink sees it. */
  msg: HttpMessage | undefined;
  private pending: string[] | undefined;
  private anomalies: string[] | undefined;
  private chain: DecoderChain | undefined;
  private codings: Coding[] | undefined;
  private encodings: readonly string[] = NO_ENCODINGS;
  private bodyWire = 0;
  private bodyDecoded = 0;
  private gapBytes = 0;
  private truncated = false;
  private decodeStatus: DecodeStatus = 'ok';
  private readonly emit: (chunk: Uint8Array) => void;

  constructor(private readonly session: HttpSession, readonly dir: Direction) {
    this.parser = new HttpMessageParser(dir === 0, this, session.counters);
    this.emit = (chunk) => this.deliver(chunk);
  }

  begin(): void {
    this.startTs = this.tsUs;
    this.pending = undefined;
  }

  head(head: ParsedHead): BodyRule {
    const headAnomalies = this.pending ?? NO_ANOMALIES;
    this.pending = undefined;
    this.anomalies = undefined;
    this.bodyWire = 0;
    this.bodyDecoded = 0;
    this.gapBytes = 0;
    this.truncated = false;
    this.decodeStatus = 'ok';
    this.chain = undefined;
    this.codings = undefined;
    this.encodings = NO_ENCODINGS;
    const rule = this.session.onHead(this, head, this.startTs, headAnomalies);
    if (this.msg === undefined) return 'tunnel'; // a sink callback stopped this direction meanwhile
    if (rule !== 'no-body' && rule !== 'tunnel' && (head.contentEncoding.length > 0 || head.transferCodings.length > 0)) {
      this.setupDecoding(head);
    }
    return rule;
  }

  private setupDecoding(head: ParsedHead): void {
    const { codings, unknown } = parseContentEncoding(head.contentEncoding);
    const transfer = parseContentEncoding(head.transferCodings);
    // Transfer codings are applied after content codings (RFC 9112 §6.1), so they come last in order.
    for (const c of transfer.codings) codings.push(c);
    for (const u of transfer.unknown) unknown.push(u);
    const all: string[] = [];
    for (const v of head.contentEncoding) for (const t of v.split(',')) { const k = t.trim().toLowerCase(); if (k !== '') all.push(k); }
    for (const t of head.transferCodings) all.push(t);
    this.encodings = all;
    // Unknown tokens are mostly mislabels ("utf-8", "none", "binary"); the body is passed on as it is.
    if (unknown.length > 0) this.anomaly(A_UNKNOWN_ENCODING);
    if (this.session.decompress && codings.length > 0) this.codings = codings;
  }

  body(chunk: Uint8Array): void {
    this.bodyWire += chunk.length;
    if (this.truncated) return;
    if (this.codings !== undefined) {
      if (this.chain === undefined) {
        // Created at the first body byte: empty bodies never allocate a decoder.
        this.chain = new DecoderChain(this.codings, this.emit, this.session.counters, {
          maxOutputBytes: this.session.bodyLimit,
          forceBuffered: this.session.forceBuffered,
        });
      }
      this.chain.write(chunk);
      this.checkChain();
      return;
    }
    const room = this.session.bodyLimit - this.bodyDecoded;
    if (chunk.length > room) {
      if (room > 0) this.deliver(chunk.subarray(0, room));
      this.markTruncated();
      return;
    }
    this.deliver(chunk);
  }

  private deliver(chunk: Uint8Array): void {
    if (this.msg === undefined) return;
    this.bodyDecoded += chunk.length;
    this.session.sink.onBody(this.msg, this.dir, chunk, this.tsUs);
  }

  private checkChain(): void {
    const chain = this.chain;
    if (chain === undefined || !chain.stopped) return;
    this.decodeStatus = chain.status;
    if (chain.status === 'corrupt') this.anomaly(A_DECODE_FAILED);
    this.markTruncated();
  }

  private markTruncated(): void {
    if (this.truncated) return;
    this.truncated = true;
    this.session.counters.inc(C_BODY_TRUNCATED);
  }

  bodyGap(len: number): void {
    this.gapBytes += len;
    if (this.msg === undefined) return;
    if (this.codings !== undefined) {
      // A compressed stream cannot be resumed past a hole: decoding of this body ends here.
      if (!this.truncated) {
        this.chain?.abort();
        this.decodeStatus = 'aborted';
        this.markTruncated();
      }
      return;
    }
    if (!this.truncated) this.session.sink.onBodyGap?.(this.msg, this.dir, len, this.tsUs);
  }

  end(complete: boolean, trailers: HeaderList | undefined): void {
    const msg = this.msg;
    if (msg === undefined) return;
    if (this.chain !== undefined) {
      if (complete && !this.truncated) {
        this.chain.end();
        this.checkChain();
      } else {
        this.chain.abort();
      }
      this.chain = undefined;
    }
    const incomplete = !complete || this.gapBytes > 0;
    if (incomplete) this.session.counters.inc(C_MESSAGE_INCOMPLETE);
    const info: MessageEndInfo = {
      bodyBytesWire: this.bodyWire,
      bodyBytesDecoded: this.bodyDecoded,
      truncated: this.truncated,
      incomplete,
      gapBytes: this.gapBytes,
      encodings: this.encodings,
      decode: this.decodeStatus,
      anomalies: this.anomalies ?? NO_ANOMALIES,
      trailers,
    };
    this.msg = undefined;
    this.codings = undefined;
    this.session.sink.onMessageEnd(msg, this.dir, info, this.tsUs);
  }

  anomaly(id: number): void {
    this.session.counters.inc(id);
    if (id === A_CONNECT_HOLD_OVERFLOW) {
      this.session.counters.inc(C_TUNNEL);
      this.session.event(this.dir, 'tunnel', 'connect_hold_overflow', this.tsUs);
    }
    const name = counterName(id);
    if (this.msg !== undefined) (this.anomalies ??= []).push(name);
    else (this.pending ??= []).push(name);
  }

  tunnel(item: Uint8Array | number): void {
    this.session.tunnelled(this.dir, item, this.tsUs);
  }

  resync(reason: ResyncReason): void {
    this.session.counters.inc(reason === 'gap' ? C_GAP_RESYNC : C_RESYNC);
    this.session.event(this.dir, 'resync', reason, this.tsUs);
  }

  /** Releases a decoder still open (flow end / tunnel) without emitting. */
  dispose(): void {
    this.chain?.abort();
    this.chain = undefined;
  }
}

/** HTTP/1.x over one TCP flow. Feed it as a `StreamConsumer`; records go to the sink. */
export class HttpSession implements StreamConsumer {
  readonly counters: Counters;
  readonly sink: HttpSink;
  readonly bodyLimit: number;
  readonly decompress: boolean;
  readonly forceBuffered: boolean;
  private readonly halves: [HttpHalf, HttpHalf];
  private readonly queue: PendingRequest[] = [];
  private requestCount = 0;
  private responseCount = 0;
  private reportedInvalid: [boolean, boolean] = [false, false];
  private ended = false;
  private readonly tunnelFactory: ((flow: FlowInfo) => StreamConsumer | undefined) | undefined;
  /** The consumer of a CONNECT tunnel's bytes, once the proxy said 2xx. */
  private inner: StreamConsumer | undefined;
  /** The inner consumer asked for bypass. */
  private innerDone = false;

  constructor(readonly flow: FlowInfo, sink: HttpSink, counters: Counters, options: HttpSessionOptions = {}) {
    this.tunnelFactory = options.tunnel;
    this.sink = sink;
    this.counters = counters;
    this.bodyLimit = Math.max(0, Math.min(options.bodyLimitBytes ?? DEFAULT_DECODED_LIMIT_BYTES, MAX_DECODED_BYTES));
    this.decompress = options.decompress ?? true;
    this.forceBuffered = options.forceBufferedDecode ?? false;
    this.halves = [new HttpHalf(this, 0), new HttpHalf(this, 1)];
  }

  data(dir: Direction, bytes: Uint8Array, tsUs: number): boolean | void {
    const half = this.halves[dir];
    if (this.ended || (half.parser.stopped && this.inner === undefined)) return this.finished();
    half.tsUs = tsUs;
    if (half.parser.push(bytes) === 'invalid') this.onInvalid(dir, tsUs);
    return this.finished();
  }

  gap(dir: Direction, len: number, tsUs: number): boolean | void {
    const half = this.halves[dir];
    if (this.ended || (half.parser.stopped && this.inner === undefined)) return this.finished();
    half.tsUs = tsUs;
    half.parser.gap(len);
    return this.finished();
  }

  /**
   * BYPASS once both directions have stopped (a tunnel: CONNECT 2xx, 101 Switching Protocols; or not
   * HTTP) and nothing looks into the tunnel, or what does has asked for it.
   */
  private finished(): boolean | undefined {
    return this.halves[0].parser.stopped && this.halves[1].parser.stopped && (this.inner === undefined || this.innerDone) ? BYPASS : undefined;
  }

  end(reason: CloseReason, tsUs: number, bypassed?: BypassedBytes): void {
    if (this.ended) return;
    this.ended = true;
    for (const half of this.halves) {
      half.tsUs = tsUs;
      half.parser.end(reason === 'fin');
      half.dispose();
    }
    this.inner?.end(reason, tsUs, bypassed);
    this.sink.onClose?.();
  }

  /** True once a CONNECT tunnel's bytes go to their own consumer (protocol detection counts them there). */
  get tunnelling(): boolean {
    return this.inner !== undefined;
  }

  /** @internal Tunnel bytes (or a gap) of one direction, for the inner consumer. */
  tunnelled(dir: Direction, item: Uint8Array | number, tsUs: number): void {
    const inner = this.inner;
    if (inner === undefined) return;
    const r = typeof item === 'number' ? inner.gap(dir, item, tsUs) : inner.data(dir, item, tsUs);
    if (r === BYPASS) this.innerDone = true;
  }

  /** @internal A head was parsed: builds the record, pairs it, emits it, and rules on its body. */
  onHead(half: HttpHalf, head: ParsedHead, tsUs: number, anomalies: readonly string[]): BodyRule {
    if (head.isRequest) {
      const req: HttpRequest = {
        kind: 'request',
        flow: this.flow,
        index: this.requestCount++,
        method: head.method,
        uri: head.uri,
        version: head.version,
        headers: head.headers,
        host: head.method === 'CONNECT' ? head.uri : authorityOf(head.uri) ?? head.host,
        tsUs,
        uriTruncated: head.startLineTruncated,
        anomalies,
      };
      this.counters.inc(C_REQUESTS);
      // an owned copy: the method is a slice of the start line, which a hostile client makes 16 KiB long
      this.queue.push({ index: req.index, method: ownedString(req.method, MAX_QUEUED_METHOD_UNITS) });
      if (this.queue.length > MAX_PENDING_REQUESTS) {
        this.queue.shift();
        this.counters.inc(C_PIPELINE_OVERFLOW);
      }
      half.msg = req;
      this.sink.onRequest(req);
      if (req.method === 'PRI' && req.version === 'HTTP/2.0') {
        // HTTP/2 prior-knowledge preface (RFC 9113 §3.4): nothing HTTP/1 follows.
        this.tunnel(0, 'http2', half.tsUs);
        return 'tunnel';
      }
      return req.method === 'CONNECT' ? 'connect' : 'normal';
    }

    const status = head.status;
    const interim = status >= 100 && status < 200 && status !== 101;
    const pending: PendingRequest | undefined = interim ? this.queue[0] : this.queue.shift();
    if (pending === undefined) this.counters.inc(A_RESPONSE_UNMATCHED);
    const res: HttpResponse = {
      kind: 'response',
      flow: this.flow,
      index: this.responseCount++,
      requestIndex: pending?.index ?? -1,
      status,
      reason: head.reason,
      version: head.version,
      headers: head.headers,
      tsUs,
      interim,
      anomalies: pending === undefined ? [...anomalies, counterName(A_RESPONSE_UNMATCHED)] : anomalies,
    };
    this.counters.inc(C_RESPONSES);
    half.msg = res;
    this.sink.onResponse(res);
    const requestParser = this.halves[0].parser;
    let rule: BodyRule = 'normal';
    if (interim) rule = 'no-body';
    else if (status === 101) {
      this.tunnel(1, 'upgrade', half.tsUs);
      rule = 'tunnel';
    } else if (pending?.method === 'CONNECT') {
      if (status >= 200 && status < 300) {
        this.tunnel(1, 'connect', half.tsUs);
        rule = 'tunnel';
      } else {
        requestParser.release();
      }
    } else if (pending?.method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)) {
      rule = 'no-body';
    }
    return rule;
  }

  /** @internal */
  event(dir: Direction, kind: HttpParserEventKind, reason: HttpParserEvent['reason'], tsUs: number): void {
    this.sink.onParserEvent?.({ flow: this.flow, dir, kind, reason, tsUs });
  }

  /** Both directions stop parsing; the one that ruled `tunnel` stops by itself after its head. */
  private tunnel(from: Direction, reason: HttpParserEvent['reason'], tsUs: number): void {
    this.counters.inc(C_TUNNEL);
    // made before the client's side stops: what it held back is handed over as it stops
    if (reason === 'connect' && this.tunnelFactory !== undefined) this.inner = this.tunnelFactory(this.flow);
    const other = this.halves[from === 0 ? 1 : 0];
    other.parser.stop();
    other.dispose();
    this.event(from, 'tunnel', reason, tsUs);
  }

  private onInvalid(dir: Direction, tsUs: number): void {
    if (this.reportedInvalid[dir]) return;
    this.reportedInvalid[dir] = true;
    this.counters.inc(C_PARSER_INVALID);
    this.event(dir, 'invalid', 'not_http', tsUs);
    // Client bytes that are not HTTP mean the flow is not HTTP: stop the server side too. A server that
    // answers in something else (HTTP/0.9) still leaves the requests worth parsing.
    if (dir === 0) {
      this.halves[1].parser.stop();
      this.halves[1].dispose();
    }
  }
}

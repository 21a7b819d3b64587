/**
 * App layer, HTTP/2: per-connection state for both directions (a `StreamConsumer`), cleartext h2c with prior
 * knowledge or decrypted TLS with ALPN h2. Input: reassembled stream bytes, gaps and the flow end. Output,
 * through the HTTP/1 `HttpSink`: one request per client HEADERS block or server PUSH_PROMISE, responses paired
 * by stream, decoded bodies per stream (DATA, Content-Encoding, bounded), trailers, one end notice per message
 * (incomplete when reset or cut), and an `invalid` parser event when the connection cannot be followed any
 * more (bad preface, framing or HPACK error, reassembly gap), after which the flow is bypassed. Synchronous,
 * in stream order per direction.
 */

import { BYPASS, type CloseReason, type Direction, type FlowInfo, type StreamConsumer } from '../../flow/stream.js';
import { Counters, counterName, defineAnomaly, defineCounter } from '../../events/counters.js';
import {
  DecoderChain, DEFAULT_DECODED_LIMIT_BYTES, MAX_DECODED_BYTES, parseContentEncoding, type Coding, type DecodeStatus,
} from '../../normalize/decompress.js';
import { MAX_HEADER_LINE_BYTES, MAX_START_LINE_BYTES, type HeaderList } from '../http/parser.js';
import {
  headerValue, type HttpMessage, type HttpParserEvent, type HttpRequest, type HttpResponse, type HttpSessionOptions,
  type HttpSink, type MessageEndInfo,
} from '../http/session.js';
import { FrameParser, Setting, type FrameError, type FrameSink, type PriorityInfo, type SettingsParam } from './frame.js';
import { HPACK_ENTRY_OVERHEAD, HpackDecoder, MAX_HEADER_LIST_BYTES } from './hpack.js';
import { PartialMessage } from '../partial-buffer.js';

/** Streams tracked per connection. Servers allow 100-256 concurrent streams (nginx 128, Apache 100); beyond
 * this the oldest stream is dropped (its messages end incomplete), counted. */
export const MAX_OPEN_STREAMS = 256;
/** Streams per connection whose body holds a live Content-Encoding decoder chain. Each layer of a chain holds
 * native state and a 16 KiB output buffer from its first body byte to its end (17 KB gzip, 52 KB br
 * measured), so 256 open streams of a few wire bytes each held 13 MB a connection. Browsers receive their
 * responses one or a few at a time (Chrome chains them by exclusive priority; RFC 9218 marks scripts and
 * styles non-incremental). Beyond it a new encoded body is not decoded: it ends truncated, decode
 * 'aborted', counted (`http2.too_many_decoding_streams`). */
export const MAX_DECODING_STREAMS = 16;
/** Compressed header block (HEADERS or PUSH_PROMISE plus CONTINUATIONs) held until END_HEADERS: far above
 * what servers accept (nginx 16-32 KiB decoded). Beyond it the connection cannot be followed, counted. */
export const MAX_HEADER_BLOCK_BYTES = 256 * 1024;

const C_REQUESTS = defineCounter('http2.requests');
const C_RESPONSES = defineCounter('http2.responses');
const C_PUSHED = defineCounter('http2.pushed_requests');
const C_BODY_TRUNCATED = defineCounter('http2.body_truncated');
const C_PARSER_INVALID = defineCounter('http2.parser_invalid');
const C_GAP = defineCounter('http2.gap');
const C_TOO_MANY_STREAMS = defineCounter('http2.too_many_streams');
const C_TOO_MANY_DECODING = defineCounter('http2.too_many_decoding_streams');
const C_MESSAGE_INCOMPLETE = defineCounter('http2.message_incomplete');
const C_STREAM_RESET = defineCounter('http2.stream_reset');
const C_CLOSED_STREAM_FRAME = defineCounter('http2.frame.closed_stream');
const C_GOAWAY = defineCounter('http2.goaway');
const A_BLOCK_TOO_LARGE = defineAnomaly('http2.header_block.too_large');
const A_STREAM_ID_REUSE = defineAnomaly('http2.stream_id_reuse');
const A_STREAM_ID_INVALID = defineAnomaly('http2.frame.stream_id_invalid');
const A_HEADERS_ON_CLOSED = defineAnomaly('http2.headers.stream_closed');
const A_PSEUDO_MISSING = defineAnomaly('http2.header.pseudo_missing');
const A_PSEUDO_UNKNOWN = defineAnomaly('http2.header.pseudo_unknown');
const A_PSEUDO_DUPLICATE = defineAnomaly('http2.header.pseudo_duplicate');
const A_PSEUDO_AFTER_REGULAR = defineAnomaly('http2.header.pseudo_after_regular');
const A_PSEUDO_IN_TRAILERS = defineAnomaly('http2.trailers.pseudo_header');
const A_UPPERCASE_NAME = defineAnomaly('http2.header.uppercase_name');
const A_CONNECTION_SPECIFIC = defineAnomaly('http2.header.connection_specific');
const A_INVALID_STATUS = defineAnomaly('http2.response.invalid_status');
const A_AUTHORITY_HOST_MISMATCH = defineAnomaly('http2.authority_host_mismatch');
const A_TRAILERS_NO_END_STREAM = defineAnomaly('http2.trailers.no_end_stream');
/** Trailer fields past MAX_HEADER_LIST_BYTES summed over a message's trailer blocks were dropped. */
const A_TRAILERS_TOO_LARGE = defineAnomaly('http2.trailers.too_large');
const A_DATA_BEFORE_HEADERS = defineAnomaly('http2.data.before_headers');
const A_PUSH_INVALID = defineAnomaly('http2.push_promise.invalid');
const A_PATH_TOO_LONG = defineAnomaly('http2.path.too_long');
/**
 * Cookie crumbs are joined into one value (RFC 9113 §8.2.3), a new string the head keeps while its stream
 * is open: 64 one-byte references to a 4 KB dynamic-table entry made 255 KB per stream, 256 streams per
 * connection. The joined value is cut at the HTTP/1 header line bound, so consumers see one Cookie limit
 * whatever the version.
 */
const A_COOKIE_TOO_LONG = defineAnomaly('http2.header.cookie_too_long');
/** Counted by the HPACK decoder; named on the record whose fields were dropped. */
const C_HEADER_LIST_TOO_LARGE = defineCounter('http2.header_list.too_large');
const A_UNKNOWN_ENCODING = defineAnomaly('http2.content_encoding.unknown');
const A_DECODE_FAILED = defineAnomaly('http2.content_encoding.decode_failed');

/**
 * A request from a client HEADERS block (or a server PUSH_PROMISE). `version` is 'HTTP/2'; `uri` is :path
 * (:authority for CONNECT), cut at the HTTP/1 MAX_START_LINE_BYTES; `host` is :authority, else the Host
 * header; `headers` are the regular fields (cookie crumbs joined with "; "). `tsUs` is the time of the bytes
 * that completed the header block.
 */
export interface Http2Request extends HttpRequest {
  readonly streamId: number;
  /** Promised by the server (PUSH_PROMISE): the record and its end notice come in direction 1. */
  readonly pushed: boolean;
  /** The pseudo-header fields as sent (`:method`, `:scheme`, `:authority`, `:path`, `:protocol`). */
  readonly pseudoHeaders: HeaderList;
}

/** A response from a server HEADERS block. `reason` is '' (HTTP/2 has none), `version` 'HTTP/2'. */
export interface Http2Response extends HttpResponse {
  readonly streamId: number;
  readonly pseudoHeaders: HeaderList;
}

/** Why the connection stopped being parsed. */
export type Http2InvalidReason = FrameError | 'gap' | 'hpack' | 'header_block_too_large';

/** An `invalid` event carries `reason` 'gap' for a gap, else 'not_http'; `detail` says exactly why. */
export interface Http2ParserEvent extends HttpParserEvent {
  readonly detail: Http2InvalidReason;
}

const NO_ANOMALIES: readonly string[] = Object.freeze([]);
const NO_ENCODINGS: readonly string[] = Object.freeze([]);
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** Side of a stream: head not seen yet, head emitted (body may follow), finished. */
const H_IDLE = 0;
const H_OPEN = 1;
const H_DONE = 2;

const BLOCK_HEADERS = 0;
const BLOCK_PUSH = 1;

function hasUpper(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) return true;
  }
  return false;
}

function addOnce(list: number[], id: number): void {
  if (!list.includes(id)) list.push(id);
}

/** Counts a head's anomalies (the header list bound was counted by the HPACK decoder) and names them. */
function countAnomalies(counters: Counters, anomalies: readonly number[]): readonly string[] {
  if (anomalies.length === 0) return NO_ANOMALIES;
  for (const a of anomalies) if (a !== C_HEADER_LIST_TOO_LARGE) counters.inc(a);
  return anomalies.map(counterName);
}

/** A header list split into pseudo-headers and regular fields (cookie crumbs joined, RFC 9113 §8.2.3). */
interface SplitHead {
  readonly pseudo: HeaderList;
  readonly headers: HeaderList;
  readonly contentEncoding: string[];
  readonly values: Map<string, string>;
}

function splitHead(fields: HeaderList, allowed: readonly string[], anomalies: number[]): SplitHead {
  const pseudo: HeaderList = [];
  const headers: HeaderList = [];
  const contentEncoding: string[] = [];
  const values = new Map<string, string>();
  let regularSeen = false;
  let cookieAt = -1;
  let cookies: string[] | undefined;
  for (const field of fields) {
    const name = field[0];
    if (name.charCodeAt(0) === 58 /* : */) {
      if (regularSeen) addOnce(anomalies, A_PSEUDO_AFTER_REGULAR);
      pseudo.push(field);
      if (!allowed.includes(name)) addOnce(anomalies, A_PSEUDO_UNKNOWN);
      else if (values.has(name)) addOnce(anomalies, A_PSEUDO_DUPLICATE);
      else values.set(name, field[1]);
      continue;
    }
    regularSeen = true;
    let lower = name;
    if (hasUpper(name)) {
      // RFC 9113 §8.2.1: upper case makes the message malformed; the field is kept as sent.
      addOnce(anomalies, A_UPPERCASE_NAME);
      lower = name.toLowerCase();
    }
    if (CONNECTION_SPECIFIC.has(lower) || (lower === 'te' && field[1].trim().toLowerCase() !== 'trailers')) {
      addOnce(anomalies, A_CONNECTION_SPECIFIC);
    }
    if (lower === 'cookie') {
      if (cookieAt < 0) {
        cookieAt = headers.length;
        cookies = [field[1]];
        headers.push(field);
      } else {
        cookies!.push(field[1]);
      }
      continue;
    }
    if (lower === 'content-encoding') contentEncoding.push(field[1]);
    headers.push(field);
  }
  if (cookies !== undefined && cookies.length > 1) headers[cookieAt] = [headers[cookieAt][0], joinCookies(cookies, anomalies)];
  return { pseudo, headers, contentEncoding, values };
}

/** Crumbs joined with "; ", cut at MAX_HEADER_LINE_BYTES (see A_COOKIE_TOO_LONG); the result is a new flat
 * string, never a slice of a crumb. */
function joinCookies(crumbs: readonly string[], anomalies: number[]): string {
  let length = 0;
  for (let i = 0; i < crumbs.length; i++) length += crumbs[i].length + (i > 0 ? 2 : 0);
  if (length <= MAX_HEADER_LINE_BYTES) return crumbs.join('; ');
  addOnce(anomalies, A_COOKIE_TOO_LONG);
  const kept: string[] = [];
  let room = MAX_HEADER_LINE_BYTES;
  for (const crumb of crumbs) {
    const piece = kept.length > 0 ? `; ${crumb}` : crumb;
    if (piece.length >= room) {
      kept.push(piece.slice(0, room));
      break;
    }
    kept.push(piece);
    room -= piece.length;
  }
  return kept.join('');
}

const REQUEST_PSEUDO: readonly string[] = [':method', ':scheme', ':authority', ':path', ':protocol'];
const RESPONSE_PSEUDO: readonly string[] = [':status'];
const NO_PSEUDO: readonly string[] = [];

/** One message's body: decoding chain, limits and the figures of its end notice. */
class H2Body {
  trailers: HeaderList | undefined;
  /** name + value + 32 over the trailer fields kept (RFC 9113 §6.5.2 accounting). */
  private trailerBytes = 0;
  private chain: DecoderChain | undefined;
  private codings: Coding[] | undefined;
  private encodings: readonly string[] = NO_ENCODINGS;
  private anomalies: string[] | undefined;
  private wire = 0;
  private decoded = 0;
  private truncated = false;
  private decodeStatus: DecodeStatus = 'ok';
  private ended = false;
  /** The chain counts against the session's MAX_DECODING_STREAMS until it stops or the body ends. */
  private decoding = false;
  private readonly emit: (chunk: Uint8Array) => void;

  constructor(private readonly session: Http2Session, readonly msg: HttpMessage, readonly dir: Direction, contentEncoding: readonly string[]) {
    this.emit = (chunk) => this.deliver(chunk);
    if (contentEncoding.length > 0) {
      const { codings, unknown } = parseContentEncoding(contentEncoding);
      const all: string[] = [];
      for (const v of contentEncoding) for (const t of v.split(',')) { const k = t.trim().toLowerCase(); if (k !== '') all.push(k); }
      this.encodings = all;
      // Unknown tokens are mostly mislabels ("utf-8", "none"); the body is passed on as it is.
      if (unknown.length > 0) this.anomaly(A_UNKNOWN_ENCODING);
      if (session.decompress && codings.length > 0) this.codings = codings;
    }
  }

  write(chunk: Uint8Array): void {
    this.wire += chunk.length;
    if (this.truncated || chunk.length === 0) return;
    if (this.codings !== undefined) {
      if (this.chain === undefined) {
        // Created at the first body byte: empty bodies never allocate a decoder.
        if (!this.session.claimDecoder()) {
          this.decodeStatus = 'aborted';
          this.markTruncated();
          return;
        }
        this.decoding = true;
        this.chain = new DecoderChain(this.codings, this.emit, this.session.counters, {
          maxOutputBytes: this.session.bodyLimit,
          forceBuffered: this.session.forceBuffered,
        });
      }
      this.chain.write(chunk);
      this.checkChain();
      return;
    }
    const room = this.session.bodyLimit - this.decoded;
    if (chunk.length > room) {
      if (room > 0) this.deliver(chunk.subarray(0, room));
      this.markTruncated();
      return;
    }
    this.deliver(chunk);
  }

  private deliver(chunk: Uint8Array): void {
    if (this.ended) return;
    this.decoded += chunk.length;
    this.session.sink.onBody(this.msg, this.dir, chunk, this.session.tsOf(this.dir));
  }

  private checkChain(): void {
    const chain = this.chain;
    if (chain === undefined || !chain.stopped) return;
    this.decodeStatus = chain.status;
    if (chain.status === 'corrupt') this.anomaly(A_DECODE_FAILED);
    this.markTruncated();
    this.releaseDecoder();
  }

  /** A stopped chain has given its native decoders back: its slot goes back to the session. */
  private releaseDecoder(): void {
    if (!this.decoding) return;
    this.decoding = false;
    this.session.releaseDecoder();
  }

  private markTruncated(): void {
    if (this.truncated) return;
    this.truncated = true;
    this.session.counters.inc(C_BODY_TRUNCATED);
  }

  /** Records an anomaly on this message (each name once: a stream may repeat one without end); `count`
   * false when it was counted where it arose. */
  anomaly(id: number, count = true): void {
    if (count) this.session.counters.inc(id);
    const name = counterName(id);
    const list = (this.anomalies ??= []);
    if (!list.includes(name)) list.push(name);
  }

  /**
   * Appends a trailer block's fields in place. Trailers must end the stream (RFC 9113 §8.1), but a peer can
   * send trailer blocks without END_STREAM for as long as the stream stays open: the message keeps at most
   * MAX_HEADER_LIST_BYTES of them, as if they were one header list. False when fields were dropped.
   */
  addTrailers(fields: HeaderList): boolean {
    const list = (this.trailers ??= []);
    for (let i = 0; i < fields.length; i++) {
      const field = fields[i];
      const bytes = field[0].length + field[1].length + HPACK_ENTRY_OVERHEAD;
      if (this.trailerBytes + bytes > MAX_HEADER_LIST_BYTES) {
        this.trailerBytes = MAX_HEADER_LIST_BYTES; // full: later blocks keep nothing either
        return false;
      }
      this.trailerBytes += bytes;
      list.push(field);
    }
    return true;
  }

  end(complete: boolean): void {
    if (this.ended) return;
    if (this.chain !== undefined) {
      if (complete && !this.truncated) {
        this.chain.end();
        this.checkChain();
      } else {
        this.chain.abort();
      }
      this.chain = undefined;
      this.releaseDecoder();
    }
    this.ended = true;
    if (!complete) this.session.counters.inc(C_MESSAGE_INCOMPLETE);
    const info: MessageEndInfo = {
      bodyBytesWire: this.wire,
      bodyBytesDecoded: this.decoded,
      truncated: this.truncated,
      incomplete: !complete,
      gapBytes: 0,
      encodings: this.encodings,
      decode: this.decodeStatus,
      anomalies: this.anomalies ?? NO_ANOMALIES,
      trailers: this.trailers,
    };
    this.session.sink.onMessageEnd(this.msg, this.dir, info, this.session.tsOf(this.dir));
  }
}

/** One HTTP/2 stream: the request side (0) and the response side (1). */
class H2Stream {
  requestIndex = -1;
  readonly state: [number, number] = [H_IDLE, H_IDLE];
  readonly bodies: [H2Body | undefined, H2Body | undefined] = [undefined, undefined];
  constructor(readonly id: number) {}
}

/** Routes one direction's frames to the session. */
class DirectionSink implements FrameSink {
  constructor(private readonly s: Http2Session, private readonly dir: Direction) {}
  data(streamId: number, chunk: Uint8Array): void { this.s.onData(this.dir, streamId, chunk); }
  dataEnd(streamId: number, endStream: boolean): void { this.s.onDataEnd(this.dir, streamId, endStream); }
  headers(streamId: number, fragment: Uint8Array, endStream: boolean, endHeaders: boolean, _p: PriorityInfo | undefined): void {
    this.s.onBlockStart(this.dir, BLOCK_HEADERS, streamId, 0, endStream, fragment, endHeaders);
  }
  pushPromise(streamId: number, promised: number, fragment: Uint8Array, endHeaders: boolean): void {
    this.s.onBlockStart(this.dir, BLOCK_PUSH, streamId, promised, false, fragment, endHeaders);
  }
  continuation(_streamId: number, fragment: Uint8Array, endHeaders: boolean): void {
    this.s.onContinuation(this.dir, fragment, endHeaders);
  }
  rstStream(streamId: number): void { this.s.onReset(streamId); }
  settings(ack: boolean, params: readonly SettingsParam[]): void { if (!ack) this.s.onSettings(this.dir, params); }
  goaway(): void { this.s.counters.inc(C_GOAWAY); }
  anomaly(id: number): void { this.s.counters.inc(id); }
}

/** A header block being assembled from HEADERS/PUSH_PROMISE and CONTINUATION frames. */
interface PendingBlock {
  kind: number;
  streamId: number;
  promisedId: number;
  endStream: boolean;
  /** The fragments so far, announced as MAX_HEADER_BLOCK_BYTES (a block has no length of its own). */
  readonly bytes: PartialMessage;
}

/** HTTP/2 over one TCP flow (or one decrypted TLS stream). Feed it as a `StreamConsumer`. */
export class Http2Session implements StreamConsumer {
  readonly counters: Counters;
  readonly sink: HttpSink;
  readonly bodyLimit: number;
  readonly decompress: boolean;
  readonly forceBuffered: boolean;
  private readonly parsers: [FrameParser, FrameParser];
  private readonly hpack: [HpackDecoder, HpackDecoder];
  private readonly ts: [number, number] = [0, 0];
  private readonly streams = new Map<number, H2Stream>();
  private readonly blocks: [PendingBlock | undefined, PendingBlock | undefined] = [undefined, undefined];
  private requestCount = 0;
  private responseCount = 0;
  /** Bodies holding a live decoder chain (at most MAX_DECODING_STREAMS). */
  private decoding = 0;
  private lastClientStream = 0;
  private lastPushedStream = 0;
  private stopped = false;
  private ended = false;

  constructor(readonly flow: FlowInfo, sink: HttpSink, counters: Counters, options: HttpSessionOptions = {}) {
    this.sink = sink;
    this.counters = counters;
    this.bodyLimit = Math.max(0, Math.min(options.bodyLimitBytes ?? DEFAULT_DECODED_LIMIT_BYTES, MAX_DECODED_BYTES));
    this.decompress = options.decompress ?? true;
    this.forceBuffered = options.forceBufferedDecode ?? false;
    this.parsers = [new FrameParser(true, new DirectionSink(this, 0), counters), new FrameParser(false, new DirectionSink(this, 1), counters)];
    this.hpack = [new HpackDecoder(counters), new HpackDecoder(counters)];
  }

  /**
   * h2c upgrade (RFC 7540 §3.2, still deployed though RFC 9113 dropped it): the HTTP/1.1 request that asked
   * for `Upgrade: h2c` becomes stream 1, already closed on the client side, and its response arrives here on
   * stream 1. Call before feeding the bytes after the 101 response (the client preface comes next); indexes
   * continue the HTTP/1 session's numbering. Ignored once any stream was seen.
   */
  adoptUpgradedRequest(requestIndex: number, nextResponseIndex: number): void {
    if (this.lastClientStream !== 0 || this.streams.size !== 0) return;
    const stream = this.openStream(1);
    stream.requestIndex = requestIndex;
    stream.state[0] = H_DONE;
    this.lastClientStream = 1;
    this.requestCount = Math.max(this.requestCount, requestIndex + 1);
    this.responseCount = Math.max(this.responseCount, nextResponseIndex);
  }

  /** Streams currently tracked (open or half-closed). */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Bodies whose Content-Encoding decoder chain is live (at most MAX_DECODING_STREAMS). */
  get decodingStreams(): number {
    return this.decoding;
  }

  /** Bytes of buffer held for frames and header blocks that span pushes, both directions (HPACK tables apart). */
  get heldBytes(): number {
    const [b0, b1] = this.blocks;
    return this.parsers[0].heldBytes + this.parsers[1].heldBytes + (b0?.bytes.heldBytes ?? 0) + (b1?.bytes.heldBytes ?? 0);
  }

  /** The connection is no longer parsed (invalid or gap). */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** BYPASS once the connection is no longer parsed (both directions stop together): the rest of the flow
   * need not be reassembled (see BYPASS in flow/stream.ts). */
  data(dir: Direction, bytes: Uint8Array, tsUs: number): boolean | void {
    if (this.ended) return;
    if (this.stopped) return BYPASS;
    this.ts[dir] = tsUs;
    const parser = this.parsers[dir];
    if (parser.push(bytes) === 'invalid' && !this.stopped) this.invalid(dir, parser.error ?? 'stopped');
    return this.stopped ? BYPASS : undefined;
  }

  gap(dir: Direction, _len: number, tsUs: number): boolean | void {
    if (this.ended) return;
    if (this.stopped) return BYPASS;
    this.ts[dir] = tsUs;
    // Frames have no resync marker and the HPACK context depends on every block: nothing after a hole
    // can be read with confidence, in either direction.
    this.counters.inc(C_GAP);
    this.invalid(dir, 'gap');
    return BYPASS;
  }

  end(_reason: CloseReason, tsUs: number): void {
    if (this.ended) return;
    this.ended = true;
    this.ts[0] = Math.max(this.ts[0], tsUs);
    this.ts[1] = Math.max(this.ts[1], tsUs);
    // the frame buffers and header blocks give their charge back (app_layer.memuse)
    this.parsers[0].stop();
    this.parsers[1].stop();
    if (!this.stopped) this.closeAll();
    this.sink.onClose?.();
  }

  /** @internal A body may create its decoder chain: false (counted) when MAX_DECODING_STREAMS are live. */
  claimDecoder(): boolean {
    if (this.decoding >= MAX_DECODING_STREAMS) {
      this.counters.inc(C_TOO_MANY_DECODING);
      return false;
    }
    this.decoding++;
    return true;
  }

  /** @internal */
  releaseDecoder(): void {
    this.decoding--;
  }

  /** @internal Time of the bytes being parsed in `dir`. */
  tsOf(dir: Direction): number {
    return this.ts[dir];
  }

  /** @internal */
  onData(dir: Direction, streamId: number, chunk: Uint8Array): void {
    const stream = this.streams.get(streamId);
    if (stream === undefined || stream.state[dir] !== H_OPEN) return;
    stream.bodies[dir]?.write(chunk);
  }

  /** @internal */
  onDataEnd(dir: Direction, streamId: number, endStream: boolean): void {
    const stream = this.streams.get(streamId);
    if (stream === undefined || stream.state[dir] === H_DONE) {
      this.counters.inc(C_CLOSED_STREAM_FRAME);
      return;
    }
    if (stream.state[dir] === H_IDLE) {
      this.counters.inc(A_DATA_BEFORE_HEADERS);
      return;
    }
    if (endStream) this.finishSide(stream, dir, true);
  }

  /** @internal HEADERS or PUSH_PROMISE: the first fragment of a header block. */
  onBlockStart(dir: Direction, kind: number, streamId: number, promisedId: number, endStream: boolean, fragment: Uint8Array, endHeaders: boolean): void {
    if (endHeaders) {
      this.onBlock(dir, kind, streamId, promisedId, endStream, fragment);
      return;
    }
    if (fragment.length > MAX_HEADER_BLOCK_BYTES) {
      this.blockTooLarge(dir);
      return;
    }
    const bytes = new PartialMessage(this.counters);
    bytes.begin(MAX_HEADER_BLOCK_BYTES);
    bytes.append(fragment);
    this.blocks[dir] = { kind, streamId, promisedId, endStream, bytes };
  }

  /** @internal */
  onContinuation(dir: Direction, fragment: Uint8Array, endHeaders: boolean): void {
    const block = this.blocks[dir];
    if (block === undefined) return; // the frame parser only passes CONTINUATION inside a block
    if (block.bytes.length + fragment.length > MAX_HEADER_BLOCK_BYTES) {
      this.blockTooLarge(dir);
      return;
    }
    block.bytes.append(fragment);
    if (!endHeaders) return;
    this.blocks[dir] = undefined;
    this.onBlock(dir, block.kind, block.streamId, block.promisedId, block.endStream, block.bytes.finish());
  }

  private blockTooLarge(dir: Direction): void {
    this.counters.inc(A_BLOCK_TOO_LARGE);
    this.invalid(dir, 'header_block_too_large');
  }

  /** A complete header block: decoded whatever its stream, so the HPACK context stays in step. */
  private onBlock(dir: Direction, kind: number, streamId: number, promisedId: number, endStream: boolean, block: Uint8Array): void {
    const decoded = this.hpack[dir].decode(block);
    if (decoded === undefined) {
      this.invalid(dir, 'hpack');
      return;
    }
    const anomalies: number[] = [];
    if (decoded.truncated) anomalies.push(C_HEADER_LIST_TOO_LARGE);
    if (kind === BLOCK_PUSH) this.onPushPromise(dir, streamId, promisedId, decoded.headers, anomalies);
    else if (dir === 0) this.onClientHeaders(streamId, decoded.headers, endStream, anomalies);
    else this.onServerHeaders(streamId, decoded.headers, endStream, anomalies);
  }

  private onClientHeaders(id: number, fields: HeaderList, endStream: boolean, anomalies: number[]): void {
    if (id === 0 || id % 2 === 0) {
      this.counters.inc(A_STREAM_ID_INVALID);
      return;
    }
    const stream = this.streams.get(id);
    if (stream !== undefined) {
      this.onLaterHeaders(stream, 0, fields, endStream, anomalies);
      return;
    }
    if (id <= this.lastClientStream) {
      // A closed (or dropped) stream: a new request must use a higher id (RFC 9113 §5.1.1).
      this.counters.inc(A_STREAM_ID_REUSE);
      return;
    }
    this.lastClientStream = id;
    const opened = this.openStream(id);
    this.emitRequest(opened, 0, fields, anomalies, false);
    if (endStream) this.finishSide(opened, 0, true);
  }

  private onServerHeaders(id: number, fields: HeaderList, endStream: boolean, anomalies: number[]): void {
    if (id === 0) {
      this.counters.inc(A_STREAM_ID_INVALID);
      return;
    }
    const stream = this.streams.get(id);
    if (stream === undefined) {
      this.counters.inc(C_CLOSED_STREAM_FRAME);
      return;
    }
    if (stream.state[1] !== H_IDLE) {
      this.onLaterHeaders(stream, 1, fields, endStream, anomalies);
      return;
    }
    const split = splitHead(fields, RESPONSE_PSEUDO, anomalies);
    const statusText = split.values.get(':status');
    let status = 0;
    if (statusText === undefined) addOnce(anomalies, A_PSEUDO_MISSING);
    else if (/^[0-9]{3}$/.test(statusText)) status = Number(statusText);
    else addOnce(anomalies, A_INVALID_STATUS);
    const interim = status >= 100 && status < 200;
    const res: Http2Response = {
      kind: 'response',
      flow: this.flow,
      index: this.responseCount++,
      requestIndex: stream.requestIndex,
      status,
      reason: '',
      version: 'HTTP/2',
      headers: split.headers,
      tsUs: this.ts[1],
      interim,
      anomalies: countAnomalies(this.counters, anomalies),
      streamId: stream.id,
      pseudoHeaders: split.pseudo,
    };
    this.counters.inc(C_RESPONSES);
    const body = new H2Body(this, res, 1, split.contentEncoding);
    stream.bodies[1] = body;
    stream.state[1] = H_OPEN;
    this.sink.onResponse(res);
    if (this.stopped) return;
    if (interim && !endStream) {
      // 1xx: no content; the final response follows on the same stream (RFC 9113 §8.1).
      stream.bodies[1] = undefined;
      stream.state[1] = H_IDLE;
      body.end(true);
      return;
    }
    if (endStream) this.finishSide(stream, 1, true);
  }

  /** HEADERS after the head on the same side: trailers (RFC 9113 §8.1), which must end the stream. */
  private onLaterHeaders(stream: H2Stream, dir: Direction, fields: HeaderList, endStream: boolean, anomalies: number[]): void {
    const body = stream.bodies[dir];
    if (stream.state[dir] !== H_OPEN || body === undefined) {
      this.counters.inc(A_HEADERS_ON_CLOSED);
      return;
    }
    const split = splitHead(fields, NO_PSEUDO, anomalies);
    if (split.pseudo.length > 0) anomalies.push(A_PSEUDO_IN_TRAILERS);
    if (!endStream) anomalies.push(A_TRAILERS_NO_END_STREAM);
    if (!body.addTrailers(split.headers)) anomalies.push(A_TRAILERS_TOO_LARGE);
    for (const a of anomalies) if (a !== A_PSEUDO_UNKNOWN) body.anomaly(a, a !== C_HEADER_LIST_TOO_LARGE);
    if (endStream) this.finishSide(stream, dir, true);
  }

  private onPushPromise(dir: Direction, associated: number, promised: number, fields: HeaderList, anomalies: number[]): void {
    // Only servers push, on a client-initiated stream, promising a new even stream id (RFC 9113 §6.6, §8.4).
    if (dir !== 1 || associated % 2 === 0 || promised === 0 || promised % 2 !== 0 || promised <= this.lastPushedStream) {
      this.counters.inc(A_PUSH_INVALID);
      return;
    }
    this.lastPushedStream = promised;
    const stream = this.openStream(promised);
    stream.state[0] = H_DONE;
    this.counters.inc(C_PUSHED);
    this.emitRequest(stream, 1, fields, anomalies, true);
    // A promised request has no content (RFC 9113 §8.4): it ends where it is announced.
    if (stream.bodies[1] !== undefined) {
      const body = stream.bodies[1];
      stream.bodies[1] = undefined;
      stream.state[1] = H_IDLE;
      body.end(true);
    }
  }

  /** Builds and emits a request; for a pushed one the record travels in direction 1 until its end. */
  private emitRequest(stream: H2Stream, dir: Direction, fields: HeaderList, anomalies: number[], pushed: boolean): void {
    const split = splitHead(fields, REQUEST_PSEUDO, anomalies);
    const v = split.values;
    const method = v.get(':method') ?? '';
    const authority = v.get(':authority');
    let uri = v.get(':path');
    // CONNECT names its target in :authority alone; everything else needs :method, :scheme and :path (§8.3.1).
    if (method === 'CONNECT' && !v.has(':protocol')) {
      if (authority === undefined) addOnce(anomalies, A_PSEUDO_MISSING);
      uri ??= authority ?? '';
    } else if (method === '' || uri === undefined || !v.has(':scheme')) {
      addOnce(anomalies, A_PSEUDO_MISSING);
    }
    uri ??= '';
    const hostHeader = headerValue(split.headers, 'host');
    if (authority !== undefined && hostHeader !== undefined && authority.toLowerCase() !== hostHeader.toLowerCase()) {
      addOnce(anomalies, A_AUTHORITY_HOST_MISMATCH);
    }
    // The same bound as an HTTP/1 request line, so consumers see one URI limit whatever the version.
    const uriTruncated = uri.length > MAX_START_LINE_BYTES;
    if (uriTruncated) anomalies.push(A_PATH_TOO_LONG);
    const req: Http2Request = {
      kind: 'request',
      flow: this.flow,
      index: this.requestCount++,
      method,
      uri: uriTruncated ? uri.slice(0, MAX_START_LINE_BYTES) : uri,
      version: 'HTTP/2',
      headers: split.headers,
      host: authority ?? hostHeader,
      tsUs: this.ts[dir],
      uriTruncated,
      anomalies: countAnomalies(this.counters, anomalies),
      streamId: stream.id,
      pushed,
      pseudoHeaders: split.pseudo,
    };
    this.counters.inc(C_REQUESTS);
    stream.requestIndex = req.index;
    if (pushed) {
      stream.bodies[1] = new H2Body(this, req, 1, NO_ENCODINGS);
    } else {
      stream.bodies[0] = new H2Body(this, req, 0, split.contentEncoding);
      stream.state[0] = H_OPEN;
    }
    this.sink.onRequest(req);
  }

  /** @internal */
  onReset(streamId: number): void {
    const stream = this.streams.get(streamId);
    if (stream === undefined) return;
    this.counters.inc(C_STREAM_RESET);
    this.abortStream(stream);
  }

  /** @internal A side's SETTINGS bind what the OTHER side sends: frame size and HPACK table size. */
  onSettings(dir: Direction, params: readonly SettingsParam[]): void {
    const other: Direction = dir === 0 ? 1 : 0;
    for (const p of params) {
      // The largest value announced so far: a lowered setting binds only once acknowledged, and we cannot
      // tell when the peer saw the acknowledgement.
      if (p.id === Setting.HEADER_TABLE_SIZE) {
        const dec = this.hpack[other];
        dec.setAllowedTableSize(Math.max(dec.allowedTableSize, p.value));
      } else if (p.id === Setting.MAX_FRAME_SIZE) {
        const parser = this.parsers[other];
        parser.maxFrameSize = Math.max(parser.maxFrameSize, p.value);
      }
    }
  }

  private openStream(id: number): H2Stream {
    if (this.streams.size >= MAX_OPEN_STREAMS) {
      const oldest = this.streams.values().next().value as H2Stream;
      this.counters.inc(C_TOO_MANY_STREAMS);
      this.abortStream(oldest);
    }
    const stream = new H2Stream(id);
    this.streams.set(id, stream);
    return stream;
  }

  /** The side's message is over (END_STREAM: complete; reset or cut: incomplete). */
  private finishSide(stream: H2Stream, dir: Direction, complete: boolean): void {
    const body = stream.bodies[dir];
    stream.bodies[dir] = undefined;
    stream.state[dir] = H_DONE;
    if (stream.state[0] === H_DONE && stream.state[1] === H_DONE) this.streams.delete(stream.id);
    body?.end(complete);
  }

  /** Ends whatever the stream has open, as incomplete, and forgets it. */
  private abortStream(stream: H2Stream): void {
    this.streams.delete(stream.id);
    for (const dir of [0, 1] as const) {
      const body = stream.bodies[dir];
      stream.bodies[dir] = undefined;
      stream.state[dir] = H_DONE;
      body?.end(false);
    }
  }

  private closeAll(): void {
    const open = [...this.streams.values()];
    this.streams.clear();
    this.blocks[0]?.bytes.reset();
    this.blocks[1]?.bytes.reset();
    this.blocks[0] = undefined;
    this.blocks[1] = undefined;
    for (const stream of open) this.abortStream(stream);
  }

  /** The connection cannot be followed any more: both directions stop, open messages end incomplete. */
  private invalid(dir: Direction, detail: Http2InvalidReason): void {
    if (this.stopped) return;
    this.stopped = true;
    this.parsers[0].stop();
    this.parsers[1].stop();
    this.counters.inc(C_PARSER_INVALID);
    this.closeAll();
    const event: Http2ParserEvent = {
      flow: this.flow, dir, kind: 'invalid', reason: detail === 'gap' ? 'gap' : 'not_http', detail, tsUs: this.ts[dir],
    };
    this.sink.onParserEvent?.(event);
  }
}

/**
 * App layer, HTTP/1.x: pure, synchronous message parser for ONE direction of a TCP stream.
 * Input: in-order stream bytes cut anywhere, plus gap and end notices. Output, through a `MessageParserSink`
 * and in stream order: begin, head (start line + headers), body (wire bytes, de-chunked, NOT decompressed),
 * end; anomalies by counter id. `push` says ok / need-more / invalid (STYLE §4). Only partial lines are
 * copied (bounded); body bytes pass through as views. Never throws on stream content.
 */

import { defineAnomaly, type Counters } from '../../events/counters.js';
import { chargeMemory } from '../../events/memuse.js';
import { StreamHold } from '../stream-hold.js';

/** Longest start line kept: above Apache (8190) and nginx (8 KB) defaults; IIS takes 16 KB. A line a server
 * accepts must not slip past the sensor. Longer lines are cut (URI truncated) and counted. */
export const MAX_START_LINE_BYTES = 16 * 1024;
/** Longest header or trailer line kept (same reasoning as the start line); the value is cut beyond it. */
export const MAX_HEADER_LINE_BYTES = 16 * 1024;
/** Headers kept per message: Apache's LimitRequestFields is 100; headroom for evasive senders. */
export const MAX_HEADERS = 256;
/** Header text kept per message (memory bound per flow direction). */
export const MAX_HEAD_BYTES = 64 * 1024;
/** Chunk-size line incl. extensions (RFC 9112 §7.1.1): extensions are unused in practice. */
export const MAX_CHUNK_LINE_BYTES = 4096;
/** Significant hex digits of a chunk size: 13 digits = 2^52, still exact in a double. */
export const MAX_CHUNK_SIZE_HEX_DIGITS = 13;
/** Digits of a Content-Length: 10^15 bytes, exact in a double. */
export const MAX_CONTENT_LENGTH_DIGITS = 15;
/** Client bytes held after a CONNECT until its response says whether a tunnel opened. */
export const MAX_CONNECT_HOLD_BYTES = 64 * 1024;
/** What a header field kept in a head being accumulated costs beyond its text: the [name, value] array and
 * the two strings sliced from the line (V8, 64-bit, compressed pointers: ~70 bytes), rounded up. */
export const HEADER_ENTRY_OVERHEAD_BYTES = 96;
/**
 * Runs of bytes and gaps held after a CONNECT (bytes are one run until a gap cuts them): more holes
 * than this before the answer is a capture too lossy to follow; bounds what the runs cost.
 */
export const MAX_CONNECT_HOLD_RUNS = 64;
/** Bytes kept from the END of an over-long line (the version of a request line sits there). */
const LINE_TAIL_BYTES = 32;
/** Longest method accepted when looking for a request line after a gap (e.g. VERSION-CONTROL, 15). */
const MAX_RESYNC_METHOD_LEN = 20;

export const A_START_LINE_TOO_LONG = defineAnomaly('http.start_line.too_long');
export const A_HEADER_TOO_LONG = defineAnomaly('http.header.too_long');
export const A_TOO_MANY_HEADERS = defineAnomaly('http.header.too_many');
export const A_HEAD_TOO_LARGE = defineAnomaly('http.head.too_large');
export const A_OBS_FOLD = defineAnomaly('http.header.obsolete_folding');
export const A_FOLD_WITHOUT_HEADER = defineAnomaly('http.header.leading_whitespace');
export const A_MISSING_COLON = defineAnomaly('http.header.missing_colon');
export const A_SPACE_BEFORE_COLON = defineAnomaly('http.header.space_before_colon');
export const A_BARE_LF = defineAnomaly('http.line.bare_lf');
export const A_CL_CONFLICT = defineAnomaly('http.content_length.conflict');
export const A_CL_INVALID = defineAnomaly('http.content_length.invalid');
export const A_TE_WITH_CL = defineAnomaly('http.transfer_encoding.with_content_length');
export const A_TE_NOT_CHUNKED = defineAnomaly('http.transfer_encoding.not_chunked_final');
export const A_CHUNK_INVALID = defineAnomaly('http.chunk.invalid_size');
export const A_CHUNK_LINE_TOO_LONG = defineAnomaly('http.chunk.line_too_long');
export const A_CHUNK_MISSING_CRLF = defineAnomaly('http.chunk.missing_crlf');
export const A_CHUNK_EMPTY_LINE = defineAnomaly('http.chunk.empty_line');
export const A_INVALID_REQUEST_LINE = defineAnomaly('http.request.invalid_line');
export const A_INVALID_STATUS_LINE = defineAnomaly('http.response.invalid_line');
export const A_HEAD_INCOMPLETE = defineAnomaly('http.head.incomplete');
export const A_CONNECT_HOLD_OVERFLOW = defineAnomaly('http.connect.hold_overflow');

export type HeaderList = [name: string, value: string][];

/** A parsed start line and header block, with the framing facts the parser derived from it. */
export interface ParsedHead {
  readonly isRequest: boolean;
  /** Request: method, request-target, version ('HTTP/1.1'). Response: '' and '' and its version. */
  readonly method: string;
  readonly uri: string;
  readonly version: string;
  /** Response: status code and reason phrase. Request: 0 and ''. */
  readonly status: number;
  readonly reason: string;
  /** In arrival order, names as sent, values trimmed, folded lines joined with one space. */
  readonly headers: HeaderList;
  /** The start line was longer than MAX_START_LINE_BYTES: `uri` / `reason` is cut. */
  readonly startLineTruncated: boolean;
  /** -1 when absent, invalid, or overridden by Transfer-Encoding. */
  readonly contentLength: number;
  readonly chunked: boolean;
  /** Transfer codings other than `chunked`, lower-cased, in applied order (rare: `gzip, chunked`). */
  readonly transferCodings: readonly string[];
  /** Raw Content-Encoding header values, in order. */
  readonly contentEncoding: readonly string[];
  /** First Host header value, if any. */
  readonly host: string | undefined;
}

/**
 * What the caller decides once a head is parsed (the body of a response depends on its request):
 * `normal` = framing from the headers; `no-body` = HEAD response, 1xx, 204, 304; `tunnel` = stop parsing
 * this direction after the head (CONNECT 2xx, 101); `connect` = framing from the headers, then hold the
 * following bytes until `release()` or `stop()`.
 */
export type BodyRule = 'normal' | 'no-body' | 'tunnel' | 'connect';

export type ResyncReason = 'gap' | 'invalid_line' | 'bad_chunk';

/** Callbacks, in this order per message: begin?, head, body*, bodyGap*, end. `anomaly` any time. */
export interface MessageParserSink {
  /** The first byte of a (possible) start line arrived. */
  begin(): void;
  head(head: ParsedHead): BodyRule;
  /** Wire body bytes after de-chunking. A view valid only during the call. */
  body(chunk: Uint8Array): void;
  /** `len` body bytes were lost in a reassembly gap; framing is intact and the body goes on. */
  bodyGap(len: number): void;
  /** The message is over. `complete`: its framing reached its natural end (body holes are reported by
   * `bodyGap`); false when a gap, a framing error or the end of the flow cut it. */
  end(complete: boolean, trailers: HeaderList | undefined): void;
  anomaly(id: number): void;
  /** A valid start line was found again after a gap or garbage. */
  resync(reason: ResyncReason): void;
  /**
   * What this direction carries after the HTTP exchange opened a tunnel (CONNECT 2xx, 101): bytes,
   * or the length of a gap, in stream order, starting with what the client sent ahead of the answer.
   */
  tunnel?(item: Uint8Array | number): void;
}

export type ParseStatus = 'ok' | 'need-more' | 'invalid';

const S_START = 0;
const S_HEADERS = 1;
const S_BODY_LENGTH = 2;
const S_BODY_CLOSE = 3;
const S_CHUNK_SIZE = 4;
const S_CHUNK_DATA = 5;
const S_CHUNK_CRLF = 6;
const S_TRAILERS = 7;
const S_RESYNC = 8;
const S_RESYNC_LINE = 9;
const S_HOLD = 10;
const S_TUNNEL = 11;
const S_INVALID = 12;

const LF = 10;
const CR = 13;
const SP = 32;
const HT = 9;
const COLON = 58;
const SEMI = 59;

const VERSION_RE = /^HTTP\/\d\.\d$/;
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const RESYNC_METHOD_RE = /^[A-Z][A-Z_-]*$/;
const EMPTY = Buffer.alloc(0);
const NONE: readonly string[] = Object.freeze([]);

interface Latin1Slicer {
  latin1Slice(start: number, end: number): string;
}
/** Header text to string: Buffer#latin1Slice skips toString's argument handling (2x on short lines). */
const latin1: (buf: Buffer, start: number, end: number) => string =
  typeof (Buffer.prototype as unknown as Partial<Latin1Slicer>).latin1Slice === 'function'
    ? (buf, start, end) => (buf as unknown as Latin1Slicer).latin1Slice(start, end)
    : (buf, start, end) => buf.toString('latin1', start, end);

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function isWs(c: number): boolean {
  return c === SP || c === HT;
}

/** Trims SP/HT only (String.prototype.trim would also eat latin1 0xA0 and other spaces). */
function trimWs(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === SP || s.charCodeAt(a) === HT)) a++;
  while (b > a && (s.charCodeAt(b - 1) === SP || s.charCodeAt(b - 1) === HT)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

function lastWsIndex(s: string): number {
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i);
    if (c === SP || c === HT) return i;
  }
  return -1;
}

function firstWsIndex(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === SP || c === HT) return i;
  }
  return -1;
}

export interface RequestLine {
  method: string;
  uri: string;
  version: string;
}

/**
 * `method SP request-target SP HTTP-version` (RFC 9112 §3), split on SP/HT word boundaries as §3 allows;
 * whitespace inside the target stays in `uri`. Undefined when the method is not a token or the version
 * is missing (HTTP/0.9 simple requests are not accepted).
 */
export function parseRequestLine(line: string): RequestLine | undefined {
  const sp = firstWsIndex(line);
  if (sp <= 0) return undefined;
  const method = line.slice(0, sp);
  if (!TOKEN_RE.test(method)) return undefined;
  const rest = trimWs(line.slice(sp));
  const last = lastWsIndex(rest);
  if (last < 0) return undefined;
  const version = rest.slice(last + 1);
  if (!VERSION_RE.test(version)) return undefined;
  const uri = trimWs(rest.slice(0, last));
  if (uri === '') return undefined;
  return { method, uri, version };
}

export interface StatusLine {
  version: string;
  status: number;
  reason: string;
}

/** `HTTP-version SP 3DIGIT SP [reason]` (RFC 9112 §4); the reason may be absent. */
export function parseStatusLine(line: string): StatusLine | undefined {
  const sp = firstWsIndex(line);
  if (sp < 0) return undefined;
  const version = line.slice(0, sp);
  if (!VERSION_RE.test(version)) return undefined;
  let i = sp;
  while (i < line.length && (line.charCodeAt(i) === SP || line.charCodeAt(i) === HT)) i++;
  if (i + 3 > line.length) return undefined;
  let status = 0;
  for (let k = 0; k < 3; k++) {
    const d = line.charCodeAt(i + k) - 48;
    if (d < 0 || d > 9) return undefined;
    status = status * 10 + d;
  }
  i += 3;
  if (i < line.length && line.charCodeAt(i) !== SP && line.charCodeAt(i) !== HT) return undefined;
  return { version, status, reason: trimWs(line.slice(i)) };
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

/**
 * `chunk-size [BWS] [; chunk-ext]` (RFC 9112 §7.1), leading SP/HT tolerated. Returns the size, or -1 when
 * there is no hex digit, an unexpected byte, or more than MAX_CHUNK_SIZE_HEX_DIGITS significant digits.
 */
export function parseChunkSizeLine(buf: Uint8Array, start: number, end: number): number {
  let i = start;
  while (i < end && isWs(buf[i])) i++;
  let size = 0;
  let digits = 0;
  let significant = 0;
  for (; i < end; i++) {
    const v = hexValue(buf[i]);
    if (v < 0) break;
    digits++;
    if (size !== 0 || v !== 0) significant++;
    if (significant > MAX_CHUNK_SIZE_HEX_DIGITS) return -1;
    size = size * 16 + v;
  }
  if (digits === 0) return -1;
  while (i < end && isWs(buf[i])) i++;
  if (i < end && buf[i] !== SEMI) return -1;
  return size;
}

/** Content-Length value(s) -> length, -1 for none, -2 for invalid; `conflict` set when values differ. */
function contentLengthOf(values: string[], out: { conflict: boolean }): number {
  let result = -1;
  for (const value of values) {
    for (const raw of value.includes(',') ? value.split(',') : [value]) {
      const v = trimWs(raw);
      if (v.length === 0 || v.length > MAX_CONTENT_LENGTH_DIGITS) return -2;
      let n = 0;
      for (let i = 0; i < v.length; i++) {
        const d = v.charCodeAt(i) - 48;
        if (d < 0 || d > 9) return -2;
        n = n * 10 + d;
      }
      if (result === -1) result = n;
      else if (n !== result) out.conflict = true;
    }
  }
  return result;
}

/**
 * Incremental HTTP/1.x parser for one direction (`isRequest` true for client -> server).
 * Call `push` with stream bytes, `gap` for lost bytes, `end` at flow end; `stop` / `release` from the
 * session for tunnels and CONNECT.
 */
export class HttpMessageParser {
  private state = S_START;
  /** State to enter when a message ends (S_START, or S_HOLD after a CONNECT request). */
  private afterMessage = S_START;
  /**
   * Body bytes left in the message or chunk. A double from the start (see the constructor): lengths
   * reach 2^53 and gap lengths arrive as doubles, and a small integer field changed to a double
   * later would throw away the parser's compiled code in every worker mid-capture.
   */
  private remaining = 0.5;
  /** Heads emitted so far: a first start line that fails makes the direction invalid. */
  private messages = 0;

  private carry: Buffer = EMPTY;
  private carryLen = 0;
  private overflow = false;
  private tail: Buffer = EMPTY; // allocated at the first over-long line
  private tailLen = 0;
  private bareLf = false;

  private method = '';
  private uri = '';
  private version = '';
  private status = 0;
  private reason = '';
  private startTruncated = false;
  private headers: HeaderList = [];
  private headBytes = 0;
  private headLimitReported = false;
  private trailers: HeaderList | undefined;
  private inMessage = false;

  private atLineStart = true;
  private resyncReason: ResyncReason = 'gap';
  /** Client bytes (and gaps) after a CONNECT, in S_HOLD; made at the first CONNECT. */
  private hold: StreamHold | undefined;
  /** What `heldBytes` was when last charged to app_layer.memuse. */
  private charged = 0;

  /** `counters`: where the head being accumulated, the partial line and the CONNECT hold are charged (app_layer.memuse);
   * `end` gives it all back. */
  constructor(readonly isRequest: boolean, private readonly sink: MessageParserSink, private readonly counters?: Counters) {
    this.remaining = 0;
  }

  /**
   * Bytes held for a message head not yet complete: its text and fields so far (up to MAX_HEAD_BYTES and
   * MAX_HEADERS), and the buffers of a partial line (up to MAX_START_LINE_BYTES). A parser parked in the
   * middle of a head holds up to ~110 KB of it.
   */
  get heldBytes(): number {
    const head = this.state === S_HEADERS ? this.headBytes + this.headers.length * HEADER_ENTRY_OVERHEAD_BYTES : 0;
    return head + this.carry.length + this.tail.length;
  }

  /** Brings the app_layer.memuse charge to `heldBytes`: called at the end of every entry point. */
  private settle(): void {
    const held = this.heldBytes;
    if (held === this.charged || this.counters === undefined) return;
    chargeMemory(this.counters, held - this.charged);
    this.charged = held;
  }

  /** Adds `bytes` (negative: gives back) to app_layer.memuse: the CONNECT hold's charge, which it keeps
   * itself and gives back whole when it lets go of its bytes (release, stop, overflow, end). */
  private charge(bytes: number): void {
    if (this.counters !== undefined) chargeMemory(this.counters, bytes);
  }

  /** True between messages with nothing buffered. */
  get idle(): boolean {
    return this.state === S_START && this.carryLen === 0 && !this.overflow;
  }

  get stopped(): boolean {
    return this.state === S_TUNNEL || this.state === S_INVALID;
  }

  get invalid(): boolean {
    return this.state === S_INVALID;
  }

  /** Consumes all of `bytes` (keeping partial lines); reports where the parser rests. */
  push(bytes: Uint8Array): ParseStatus {
    const buf = asBuffer(bytes);
    const end = buf.length;
    let pos = 0;
    while (pos < end) {
      switch (this.state) {
        case S_BODY_LENGTH:
        case S_CHUNK_DATA: {
          const n = Math.min(this.remaining, end - pos);
          this.sink.body(buf.subarray(pos, pos + n));
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            if (this.state === S_CHUNK_DATA) this.state = S_CHUNK_CRLF;
            else this.endMessage(true);
          }
          break;
        }
        case S_BODY_CLOSE:
          this.sink.body(buf.subarray(pos, end));
          pos = end;
          break;
        case S_RESYNC:
          pos = this.resyncScan(buf, pos, end);
          break;
        case S_HOLD:
          this.holdData(buf.subarray(pos, end));
          pos = end;
          break;
        case S_TUNNEL:
          this.sink.tunnel?.(buf.subarray(pos, end));
          pos = end;
          break;
        case S_INVALID:
          pos = end;
          break;
        default:
          pos = this.lineStep(buf, pos, end);
      }
    }
    this.settle();
    return this.restingStatus();
  }

  /** `len` bytes of this direction were lost. Bodies of known length keep their framing; else resync. */
  gap(len: number): ParseStatus {
    const status = this.lostBytes(len);
    this.settle();
    return status;
  }

  private lostBytes(len: number): ParseStatus {
    if (len <= 0) return this.restingStatus();
    switch (this.state) {
      case S_BODY_LENGTH:
      case S_CHUNK_DATA:
        if (len <= this.remaining) {
          // The hole lies inside the body: framing is intact, the message goes on.
          this.remaining -= len;
          this.sink.bodyGap(len);
          if (this.remaining === 0) {
            if (this.state === S_CHUNK_DATA) this.state = S_CHUNK_CRLF;
            else this.endMessage(true);
          }
          return this.restingStatus();
        }
        this.sink.bodyGap(this.remaining);
        this.endMessage(false);
        break;
      case S_BODY_CLOSE:
        this.sink.bodyGap(len);
        return this.restingStatus();
      case S_HOLD:
        if (!this.hold!.gap(0, len, 0)) this.holdOverflow();
        return this.restingStatus();
      case S_TUNNEL:
        this.sink.tunnel?.(len);
        return this.restingStatus();
      case S_INVALID:
        return this.restingStatus();
      case S_START:
      case S_HEADERS:
        if (!this.idle) this.sink.anomaly(A_HEAD_INCOMPLETE);
        break;
      case S_CHUNK_SIZE:
      case S_CHUNK_CRLF:
      case S_TRAILERS:
        this.endMessage(false);
        break;
      default:
        break;
    }
    this.enterResync('gap');
    return this.restingStatus();
  }

  /** The flow ended. `clean` (FIN) completes a close-delimited body; otherwise it is incomplete. The head
   * and line buffers are let go, and their charge given back, whatever the sink does. */
  end(clean: boolean): void {
    try {
      this.endMessages(clean);
    } finally {
      this.headers = [];
      this.carry = EMPTY;
      this.tail = EMPTY;
      this.resetLine();
      this.hold?.drop();
      this.state = S_TUNNEL;
      this.settle();
    }
  }

  private endMessages(clean: boolean): void {
    switch (this.state) {
      case S_BODY_CLOSE:
        this.endMessage(clean);
        break;
      case S_BODY_LENGTH:
      case S_CHUNK_SIZE:
      case S_CHUNK_DATA:
      case S_CHUNK_CRLF:
        this.endMessage(false);
        break;
      case S_TRAILERS:
        // Every body byte arrived; only the closing empty line is missing.
        this.endMessage(true);
        break;
      case S_START:
      case S_HEADERS:
        if (!this.idle) this.sink.anomaly(A_HEAD_INCOMPLETE);
        break;
      default:
        break;
    }
  }

  /** Stop parsing this direction (tunnel). A message in progress ends incomplete. */
  stop(): void {
    if (this.state === S_TUNNEL || this.state === S_INVALID) return;
    // what a client sent after its CONNECT without waiting for the answer is the tunnel's start
    const held = this.state === S_HOLD ? this.hold!.take() : undefined;
    this.hold?.drop();
    if (this.inMessage) this.endMessage(false);
    this.resetLine();
    this.headers = [];
    this.carry = EMPTY;
    this.tail = EMPTY;
    this.state = S_TUNNEL;
    this.settle();
    if (held !== undefined && this.sink.tunnel !== undefined) for (const h of held) this.sink.tunnel(h.bytes ?? h.len);
  }

  /** After a CONNECT that did not open a tunnel: parse the held bytes and go on normally. */
  release(): void {
    if (this.state !== S_HOLD) {
      this.afterMessage = S_START;
      return;
    }
    const held = this.hold!.take();
    this.state = S_START;
    this.afterMessage = S_START;
    for (const h of held) {
      if (h.bytes === undefined) this.gap(h.len);
      else this.push(h.bytes);
      if (this.stopped) break;
    }
  }

  private restingStatus(): ParseStatus {
    if (this.state === S_INVALID) return 'invalid';
    if (this.state === S_TUNNEL || this.idle) return 'ok';
    return 'need-more';
  }

  private lineLimit(): number {
    switch (this.state) {
      case S_START:
      case S_RESYNC_LINE:
        return MAX_START_LINE_BYTES;
      case S_CHUNK_SIZE:
      case S_CHUNK_CRLF:
        return MAX_CHUNK_LINE_BYTES;
      default:
        return MAX_HEADER_LINE_BYTES;
    }
  }

  /** One line-oriented step: completes a line (from `buf` directly, or from the carry) or stores a part. */
  private lineStep(buf: Buffer, pos: number, end: number): number {
    const carrying = this.carryLen > 0 || this.overflow;
    if (!carrying && (this.state === S_START || this.state === S_RESYNC_LINE) && buf[pos] !== CR && buf[pos] !== LF) {
      this.sink.begin();
      this.bareLf = false;
    }
    const lf = buf.indexOf(LF, pos);
    if (lf < 0 || lf >= end) {
      this.appendCarry(buf, pos, end);
      return end;
    }
    if (carrying || lf - pos > this.lineLimit()) {
      this.appendCarry(buf, pos, lf);
      this.finishCarriedLine();
      return lf + 1;
    }
    let lineEnd = lf;
    if (lineEnd > pos && buf[lineEnd - 1] === CR) lineEnd--;
    else this.bareLf = true;
    this.handleLine(buf, pos, lineEnd, false);
    return lf + 1;
  }

  /** Keeps bytes of a partial line: up to the state's limit (+1 for a CR), then only the last bytes. */
  private appendCarry(buf: Buffer, from: number, to: number): void {
    if (!this.overflow) {
      const cap = this.lineLimit() + 1;
      const room = cap - this.carryLen;
      const n = to - from;
      const take = n <= room ? n : room;
      if (this.carryLen + take > this.carry.length) {
        const grown = Buffer.allocUnsafe(Math.min(cap + LINE_TAIL_BYTES, Math.max(256, (this.carryLen + take) * 2)));
        this.carry.copy(grown, 0, 0, this.carryLen);
        this.carry = grown;
      }
      buf.copy(this.carry, this.carryLen, from, from + take);
      this.carryLen += take;
      if (take === n) return;
      this.overflow = true;
      from += take;
    }
    const n = to - from;
    if (this.tail.length === 0) this.tail = Buffer.alloc(LINE_TAIL_BYTES);
    const tail = this.tail;
    if (n >= LINE_TAIL_BYTES) {
      buf.copy(tail, 0, to - LINE_TAIL_BYTES, to);
      this.tailLen = LINE_TAIL_BYTES;
    } else {
      const keep = Math.min(this.tailLen, LINE_TAIL_BYTES - n);
      tail.copyWithin(0, this.tailLen - keep, this.tailLen);
      buf.copy(tail, keep, from, to);
      this.tailLen = keep + n;
    }
  }

  private finishCarriedLine(): void {
    const overflow = this.overflow;
    let len = this.carryLen;
    if (overflow) {
      if (this.carry.length < len + this.tailLen) {
        const grown = Buffer.allocUnsafe(len + LINE_TAIL_BYTES);
        this.carry.copy(grown, 0, 0, len);
        this.carry = grown;
      }
      this.tail.copy(this.carry, len, 0, this.tailLen);
      len += this.tailLen;
    }
    if (len > 0 && this.carry[len - 1] === CR) len--;
    else this.bareLf = true;
    this.carryLen = 0;
    this.overflow = false;
    this.tailLen = 0;
    this.handleLine(this.carry, 0, len, overflow);
  }

  private resetLine(): void {
    this.carryLen = 0;
    this.overflow = false;
    this.tailLen = 0;
  }

  /** A complete line `buf[start, end)` without its line ending; `overflow`: prefix + tail of a long line. */
  private handleLine(buf: Buffer, start: number, end: number, overflow: boolean): void {
    switch (this.state) {
      case S_START:
        if (start === end) return; // empty lines between messages are ignored (RFC 9112 §2.2)
        this.startLine(buf, start, end, overflow, false);
        return;
      case S_RESYNC_LINE:
        this.startLine(buf, start, end, overflow, true);
        return;
      case S_HEADERS:
        if (start === end) this.finishHead();
        else this.headerLine(buf, start, end, overflow, this.headers);
        return;
      case S_TRAILERS:
        if (start === end) {
          const trailers = this.trailers;
          this.trailers = undefined;
          this.endMessage(true, trailers);
        } else {
          this.trailers ??= [];
          this.headerLine(buf, start, end, overflow, this.trailers);
        }
        return;
      case S_CHUNK_CRLF:
        this.state = S_CHUNK_SIZE;
        if (start === end) return;
        this.sink.anomaly(A_CHUNK_MISSING_CRLF);
        this.chunkSizeLine(buf, start, end, overflow);
        return;
      case S_CHUNK_SIZE:
        if (start === end) {
          this.sink.anomaly(A_CHUNK_EMPTY_LINE);
          return;
        }
        this.chunkSizeLine(buf, start, end, overflow);
        return;
      default:
        return;
    }
  }

  private startLine(buf: Buffer, start: number, end: number, overflow: boolean, resync: boolean): void {
    let line: string;
    if (overflow) {
      // Prefix up to the limit, plus the last word of the tail (a request's version lives there).
      const prefixEnd = start + MAX_START_LINE_BYTES;
      const tail = trimWs(latin1(buf, prefixEnd, end));
      const lastWord = tail.slice(lastWsIndex(tail) + 1);
      line = latin1(buf, start, prefixEnd);
      if (this.isRequest && VERSION_RE.test(lastWord)) line += ' ' + lastWord;
    } else {
      line = latin1(buf, start, end);
    }
    let ok = false;
    if (this.isRequest) {
      const r = parseRequestLine(line);
      if (r !== undefined && (!resync || (r.method.length <= MAX_RESYNC_METHOD_LEN && RESYNC_METHOD_RE.test(r.method)))) {
        this.method = r.method;
        this.uri = r.uri;
        this.version = r.version;
        this.status = 0;
        this.reason = '';
        ok = true;
      }
    } else {
      const s = parseStatusLine(line);
      if (s !== undefined && (!resync || s.version.startsWith('HTTP/1.'))) {
        this.method = '';
        this.uri = '';
        this.version = s.version;
        this.status = s.status;
        this.reason = s.reason;
        ok = true;
      }
    }
    if (!ok) {
      if (resync) {
        this.state = S_RESYNC;
        this.atLineStart = true;
        return;
      }
      this.sink.anomaly(this.isRequest ? A_INVALID_REQUEST_LINE : A_INVALID_STATUS_LINE);
      if (this.messages === 0) {
        this.resetLine();
        this.state = S_INVALID;
      } else {
        this.enterResync('invalid_line');
      }
      return;
    }
    if (resync) this.sink.resync(this.resyncReason);
    if (overflow) this.sink.anomaly(A_START_LINE_TOO_LONG);
    this.startTruncated = overflow;
    this.headers = [];
    this.headBytes = end - start;
    this.headLimitReported = false;
    this.state = S_HEADERS;
  }

  private headerLine(buf: Buffer, start: number, end: number, overflow: boolean, list: HeaderList): void {
    if (overflow) {
      this.sink.anomaly(A_HEADER_TOO_LONG);
      end = start + MAX_HEADER_LINE_BYTES;
    }
    if (this.headBytes + (end - start) > MAX_HEAD_BYTES) {
      if (!this.headLimitReported) this.sink.anomaly(A_HEAD_TOO_LARGE);
      this.headLimitReported = true;
      return;
    }
    if (isWs(buf[start])) {
      // obs-fold (RFC 9112 §5.2): the line continues the previous field value, joined by one SP.
      this.sink.anomaly(A_OBS_FOLD);
      if (list.length === 0) {
        this.sink.anomaly(A_FOLD_WITHOUT_HEADER);
        return;
      }
      let a = start;
      let b = end;
      while (a < b && isWs(buf[a])) a++;
      while (b > a && isWs(buf[b - 1])) b--;
      if (a < b) {
        const last = list[list.length - 1];
        last[1] = last[1] === '' ? latin1(buf, a, b) : last[1] + ' ' + latin1(buf, a, b);
      }
      this.headBytes += end - start;
      return;
    }
    const colon = buf.indexOf(COLON, start);
    if (colon < 0 || colon >= end) {
      this.sink.anomaly(A_MISSING_COLON);
      return;
    }
    let nameEnd = colon;
    while (nameEnd > start && isWs(buf[nameEnd - 1])) nameEnd--;
    if (nameEnd === start) {
      this.sink.anomaly(A_MISSING_COLON);
      return;
    }
    if (nameEnd !== colon) this.sink.anomaly(A_SPACE_BEFORE_COLON);
    if (list.length >= MAX_HEADERS) {
      if (!this.headLimitReported) this.sink.anomaly(A_TOO_MANY_HEADERS);
      this.headLimitReported = true;
      return;
    }
    let a = colon + 1;
    let b = end;
    while (a < b && isWs(buf[a])) a++;
    while (b > a && isWs(buf[b - 1])) b--;
    // One conversion per line; name and value are substrings of it.
    const text = latin1(buf, start, b);
    list.push([text.slice(0, nameEnd - start), text.slice(a - start)]);
    this.headBytes += end - start;
  }

  private finishHead(): void {
    let clValues: string[] | undefined;
    let te: string[] | undefined;
    let ce: string[] | undefined;
    let host: string | undefined;
    for (const [name, value] of this.headers) {
      const n = name.length;
      // Length first: most headers are none of these, and this avoids lower-casing them.
      if (n !== 14 && n !== 17 && n !== 16 && n !== 4) continue;
      const lower = name.toLowerCase();
      if (lower === 'content-length') (clValues ??= []).push(value);
      else if (lower === 'transfer-encoding') {
        for (const t of value.split(',')) {
          const tok = trimWs(t).toLowerCase();
          if (tok !== '') (te ??= []).push(tok);
        }
      } else if (lower === 'content-encoding') (ce ??= []).push(value);
      else if (lower === 'host' && host === undefined) host = value;
    }
    let contentLength = -1;
    let lengthInvalid = false;
    if (clValues !== undefined) {
      const flags = { conflict: false };
      const cl = contentLengthOf(clValues, flags);
      if (cl === -2) {
        this.sink.anomaly(A_CL_INVALID);
        lengthInvalid = true;
      } else {
        if (flags.conflict) this.sink.anomaly(A_CL_CONFLICT);
        contentLength = cl;
      }
    }
    let chunked = false;
    let transferCodings: readonly string[] = NONE;
    if (te !== undefined) {
      chunked = te[te.length - 1] === 'chunked';
      const other = te.filter((t) => t !== 'chunked' && t !== 'identity');
      if (other.length > 0) transferCodings = other;
      if (!chunked) this.sink.anomaly(A_TE_NOT_CHUNKED);
      if (clValues !== undefined) this.sink.anomaly(A_TE_WITH_CL);
      // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; not chunked-final means read to close.
      contentLength = -1;
      lengthInvalid = !chunked;
    }
    if (this.bareLf) this.sink.anomaly(A_BARE_LF);
    this.messages++;
    const head: ParsedHead = {
      isRequest: this.isRequest,
      method: this.method,
      uri: this.uri,
      version: this.version,
      status: this.status,
      reason: this.reason,
      headers: this.headers,
      startLineTruncated: this.startTruncated,
      contentLength,
      chunked,
      transferCodings,
      contentEncoding: ce ?? NONE,
      host,
    };
    this.headers = [];
    this.inMessage = true;
    const rule = this.sink.head(head);
    if (this.state !== S_HEADERS) return; // the sink stopped this parser
    if (rule === 'tunnel') {
      this.endMessage(true);
      this.state = S_TUNNEL;
      return;
    }
    this.afterMessage = rule === 'connect' ? S_HOLD : S_START;
    if (rule === 'no-body') this.endMessage(true);
    else if (chunked) this.state = S_CHUNK_SIZE;
    else if (lengthInvalid) this.state = S_BODY_CLOSE;
    else if (contentLength > 0) {
      this.remaining = contentLength;
      this.state = S_BODY_LENGTH;
    } else if (contentLength === 0 || this.isRequest) this.endMessage(true);
    else this.state = S_BODY_CLOSE; // a response without length runs to the end of the connection
  }

  private chunkSizeLine(buf: Buffer, start: number, end: number, overflow: boolean): void {
    if (overflow) {
      this.sink.anomaly(A_CHUNK_LINE_TOO_LONG);
      end = start + MAX_CHUNK_LINE_BYTES;
    }
    const size = parseChunkSizeLine(buf, start, end);
    if (size < 0) {
      this.sink.anomaly(A_CHUNK_INVALID);
      this.endMessage(false);
      this.enterResync('bad_chunk');
      return;
    }
    if (size === 0) this.state = S_TRAILERS;
    else {
      this.remaining = size;
      this.state = S_CHUNK_DATA;
    }
  }

  private endMessage(complete: boolean, trailers?: HeaderList): void {
    this.inMessage = false;
    this.remaining = 0;
    this.state = this.afterMessage;
    if (this.state === S_HOLD) {
      if (this.hold === undefined) this.hold = new StreamHold((bytes) => this.charge(bytes), MAX_CONNECT_HOLD_BYTES, MAX_CONNECT_HOLD_RUNS);
      else this.hold.drop();
    }
    this.sink.end(complete, trailers);
  }

  private enterResync(reason: ResyncReason): void {
    this.resetLine();
    this.headers = [];
    this.inMessage = false;
    this.trailers = undefined;
    this.state = S_RESYNC;
    this.atLineStart = true;
    this.resyncReason = reason;
  }

  /**
   * Looks for a line that starts like a request line (`METHOD SP`) or a status line (`HTTP/`). A candidate
   * is handed to the line machinery (S_RESYNC_LINE), which validates the complete line.
   */
  private resyncScan(buf: Buffer, pos: number, end: number): number {
    while (pos < end) {
      if (this.atLineStart) {
        this.atLineStart = false;
        if (this.candidatePrefix(buf, pos, end)) {
          this.state = S_RESYNC_LINE;
          return pos;
        }
      }
      const lf = buf.indexOf(LF, pos);
      if (lf < 0 || lf >= end) return end;
      pos = lf + 1;
      this.atLineStart = true;
    }
    return end;
  }

  /** Whether the available bytes at `pos` could begin a start line (checks what is there). */
  private candidatePrefix(buf: Buffer, pos: number, end: number): boolean {
    if (this.isRequest) {
      const limit = Math.min(end, pos + MAX_RESYNC_METHOD_LEN + 1);
      let i = pos;
      for (; i < limit; i++) {
        const c = buf[i];
        if (c === SP) return i > pos;
        if (!((c >= 65 && c <= 90) || c === 45 || c === 95)) return false;
      }
      return i === end && i > pos; // ran out of bytes while still in the method
    }
    const prefix = 'HTTP/';
    for (let k = 0; k < prefix.length; k++) {
      if (pos + k >= end) return true;
      if (buf[pos + k] !== prefix.charCodeAt(k)) return false;
    }
    return true;
  }

  /** Holds client bytes after a CONNECT; a run of segments is held (and replayed) as one piece. */
  private holdData(bytes: Uint8Array): void {
    if (!this.hold!.data(0, bytes, 0)) this.holdOverflow();
  }

  /** More than MAX_CONNECT_HOLD_BYTES (or MAX_CONNECT_HOLD_RUNS) before the answer. */
  private holdOverflow(): void {
    // The client streams without waiting for the answer: take it as an (optimistic) tunnel.
    this.sink.anomaly(A_CONNECT_HOLD_OVERFLOW);
    this.hold!.drop();
    this.state = S_TUNNEL;
  }
}

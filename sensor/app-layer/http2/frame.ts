/**
 * App layer, HTTP/2: pure, synchronous frame parser for ONE direction of a connection (RFC 9113 §3.4, §4, §6).
 * Input: in-order stream bytes cut anywhere: the client connection preface first on the client side, then
 * 9-byte frame headers and payloads. Output, through a `FrameSink`, in stream order: DATA payload as views
 * (padding removed, never buffered), every other known frame parsed from its whole payload (buffered up to
 * MAX_BUFFERED_FRAME_BYTES, the buffer grown with the bytes received), unknown types skipped; anomalies by
 * counter id. `push` says ok / need-more / invalid (STYLE §4); frames carry no resync marker, so invalid is
 * final. Never throws on stream content.
 */

import { defineAnomaly, defineCounter, type Counters } from '../../events/counters.js';
import { PartialMessage } from '../partial-buffer.js';

/** RFC 9113 §3.4: the client connection preface. */
export const CLIENT_PREFACE: Uint8Array = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME_HEADER_BYTES = 9;
/** Initial SETTINGS_MAX_FRAME_SIZE (RFC 9113 §4.2, §6.5.2): every endpoint accepts frames this large. */
export const DEFAULT_MAX_FRAME_SIZE = 16384;
/** Largest SETTINGS_MAX_FRAME_SIZE a peer may advertise (RFC 9113 §6.5.2): the 24-bit length field's range. */
export const MAX_FRAME_SIZE_LIMIT = 16777215;
/** Payload bytes held to parse one non-DATA frame whole (DATA streams through). Above the 256 KiB header block
 * bound plus 9 bytes of padding length, promised id and priority, and 255 of padding; larger header-carrying
 * frames are never sent in practice (browsers and servers keep header blocks to a few KiB). */
export const MAX_BUFFERED_FRAME_BYTES = 256 * 1024 + 512;

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const FLAG_END_STREAM = 0x1;
export const FLAG_ACK = 0x1;
export const FLAG_END_HEADERS = 0x4;
export const FLAG_PADDED = 0x8;
export const FLAG_PRIORITY = 0x20;

/** SETTINGS identifiers (RFC 9113 §6.5.2, RFC 8441 §3, RFC 9218 §2.1). */
export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
  ENABLE_CONNECT_PROTOCOL: 0x8,
  NO_RFC7540_PRIORITIES: 0x9,
} as const;

/** What one side announced in its SETTINGS frames so far (initial values of RFC 9113 §6.5.2). */
export interface Http2Settings {
  headerTableSize: number;
  enablePush: number;
  /** -1: unlimited (never announced). */
  maxConcurrentStreams: number;
  initialWindowSize: number;
  maxFrameSize: number;
  /** -1: unlimited (never announced). */
  maxHeaderListSize: number;
}

export function defaultSettings(): Http2Settings {
  return {
    headerTableSize: 4096, enablePush: 1, maxConcurrentStreams: -1, initialWindowSize: 65535,
    maxFrameSize: DEFAULT_MAX_FRAME_SIZE, maxHeaderListSize: -1,
  };
}

export interface SettingsParam {
  readonly id: number;
  readonly value: number;
}

export interface PriorityInfo {
  readonly exclusive: boolean;
  readonly dependsOn: number;
  /** 1..256 (the wire value plus one). */
  readonly weight: number;
}

/** Why a direction stopped being parsed. */
export type FrameError =
  | 'bad_preface' | 'frame_too_large' | 'frame_buffer_limit' | 'bad_padding' | 'continuation_expected'
  | 'continuation_unexpected' | 'stopped';

/**
 * Receives frames in stream order. DATA arrives as `data*` pieces then one `dataEnd`; header-carrying
 * frames as `headers` / `pushPromise` then `continuation*` until END_HEADERS (the parser checks that order,
 * RFC 9113 §6.10). Fragments and chunks are views valid only during the call. A callback may `stop()` the
 * parser; nothing more is delivered after that.
 */
export interface FrameSink {
  data(streamId: number, chunk: Uint8Array): void;
  dataEnd(streamId: number, endStream: boolean): void;
  headers(streamId: number, fragment: Uint8Array, endStream: boolean, endHeaders: boolean, priority: PriorityInfo | undefined): void;
  pushPromise(streamId: number, promisedStreamId: number, fragment: Uint8Array, endHeaders: boolean): void;
  continuation(streamId: number, fragment: Uint8Array, endHeaders: boolean): void;
  rstStream(streamId: number, errorCode: number): void;
  /** Non-ACK: the parameters in frame order (this direction's `settings` is already updated). */
  settings(ack: boolean, params: readonly SettingsParam[]): void;
  goaway(lastStreamId: number, errorCode: number): void;
  priority?(streamId: number, priority: PriorityInfo): void;
  ping?(ack: boolean): void;
  windowUpdate?(streamId: number, increment: number): void;
  /** A counter to count: an anomaly code, or a statistic such as `http2.frame.unknown_type`. */
  anomaly(id: number): void;
}

export type ParseStatus = 'ok' | 'need-more' | 'invalid';

export const A_BAD_PREFACE = defineAnomaly('http2.invalid_client_magic');
export const A_FRAME_TOO_LARGE = defineAnomaly('http2.frame.too_large');
export const A_BAD_PADDING = defineAnomaly('http2.frame.bad_padding');
export const A_CONTINUATION_EXPECTED = defineAnomaly('http2.continuation.expected');
export const A_CONTINUATION_UNEXPECTED = defineAnomaly('http2.continuation.unexpected');
export const A_INVALID_FRAME_LENGTH = defineAnomaly('http2.invalid_frame_length');
export const A_DATA_STREAM_ZERO = defineAnomaly('http2.data_stream_zero');
export const A_STREAM_ID_INVALID = defineAnomaly('http2.frame.stream_id_invalid');
export const A_SETTINGS_INVALID = defineAnomaly('http2.settings.invalid_value');
export const A_FIRST_NOT_SETTINGS = defineAnomaly('http2.preface.not_settings');
export const A_WINDOW_UPDATE_ZERO = defineAnomaly('http2.window_update.zero');
const C_BUFFER_LIMIT = defineCounter('http2.frame_buffer_limit');
const C_UNKNOWN_TYPE = defineCounter('http2.frame.unknown_type');

const S_PREFACE = 0;
const S_HEADER = 1;
const S_BUFFER = 2;
const S_DATA_PADLEN = 3;
const S_DATA = 4;
const S_DATA_PAD = 5;
const S_SKIP = 6;
const S_STOPPED = 7;

const EMPTY = new Uint8Array(0);
const NO_PARAMS: readonly SettingsParam[] = Object.freeze([]);

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function u31(b: Uint8Array, at: number): number {
  return u32(b, at) & 0x7fffffff;
}

function priorityAt(b: Uint8Array, at: number): PriorityInfo {
  return { exclusive: (b[at] & 0x80) !== 0, dependsOn: u31(b, at), weight: b[at + 4] + 1 };
}

/** One direction of an HTTP/2 connection. */
export class FrameParser {
  /** What this direction announced in its SETTINGS frames. */
  readonly settings: Http2Settings = defaultSettings();
  /** Largest frame this direction may send: the PEER's SETTINGS_MAX_FRAME_SIZE (set by the session). */
  maxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  error: FrameError | undefined;
  /** Frames parsed so far (headers read). */
  frames = 0;
  private state: number;
  private prefaceAt = 0;
  private readonly hdr = new Uint8Array(FRAME_HEADER_BYTES);
  private hdrLen = 0;
  private length = 0;
  private type = 0;
  private flags = 0;
  private streamId = 0;
  /** Payload bytes of the current frame not yet consumed (buffered, streamed or skipped). */
  private left = 0;
  /** Payload of a non-DATA frame spanning pushes (charged to the inspection memory gauge). */
  private readonly msg: PartialMessage;
  private padLeft = 0;
  /** Stream whose header block is open (HEADERS/PUSH_PROMISE without END_HEADERS), else -1. */
  private blockStream = -1;

  /** `isClient`: this direction starts with the client preface (RFC 9113 §3.4). `counters`: where the
   * buffer of a frame spanning pushes is charged (app_layer.memuse); `stop` gives it back. */
  constructor(readonly isClient: boolean, private readonly sink: FrameSink, counters?: Counters) {
    this.state = isClient ? S_PREFACE : S_HEADER;
    this.msg = new PartialMessage(counters);
  }

  get stopped(): boolean {
    return this.state === S_STOPPED;
  }

  /** Bytes of buffer this direction holds: a frame spanning pushes, or the one kept for the next such frame. */
  get heldBytes(): number {
    return this.msg.heldBytes;
  }

  /** A header block is open and waits for CONTINUATION. */
  get inHeaderBlock(): boolean {
    return this.blockStream >= 0;
  }

  /** Stops parsing for good (the session gave up on the connection, or it ended): the buffer is let go. */
  stop(): void {
    this.msg.reset();
    if (this.state === S_STOPPED) return;
    this.state = S_STOPPED;
    this.error ??= 'stopped';
  }

  push(bytes: Uint8Array): ParseStatus {
    const n = bytes.length;
    let pos = 0;
    while (pos < n) {
      switch (this.state) {
        case S_STOPPED:
          return 'invalid';
        case S_PREFACE: {
          const want = CLIENT_PREFACE.length;
          while (pos < n && this.prefaceAt < want) {
            if (bytes[pos] !== CLIENT_PREFACE[this.prefaceAt]) {
              this.fail('bad_preface', A_BAD_PREFACE);
              return 'invalid';
            }
            pos++;
            this.prefaceAt++;
          }
          if (this.prefaceAt === want) this.state = S_HEADER;
          break;
        }
        case S_HEADER: {
          if (this.hdrLen === 0 && n - pos >= FRAME_HEADER_BYTES) {
            this.beginFrame(bytes, pos);
            pos += FRAME_HEADER_BYTES;
          } else {
            const take = Math.min(FRAME_HEADER_BYTES - this.hdrLen, n - pos);
            this.hdr.set(bytes.subarray(pos, pos + take), this.hdrLen);
            this.hdrLen += take;
            pos += take;
            if (this.hdrLen === FRAME_HEADER_BYTES) {
              this.hdrLen = 0;
              this.beginFrame(this.hdr, 0);
            }
          }
          break;
        }
        case S_BUFFER: {
          const take = Math.min(this.left, n - pos);
          if (this.msg.length === 0 && take === this.length) {
            // The whole payload is in this push: parse it in place.
            this.left = 0;
            this.state = S_HEADER;
            this.dispatch(bytes.subarray(pos, pos + take));
          } else {
            // Grown with what arrives, not to the announced length: a frame header is only a claim.
            this.msg.append(bytes, pos, pos + take);
            this.left -= take;
            if (this.left === 0) {
              this.state = S_HEADER;
              // Keep a buffer for ordinary frames; an exceptional large one is not held for the flow's life.
              this.dispatch(this.msg.finish(DEFAULT_MAX_FRAME_SIZE));
            }
          }
          pos += take;
          break;
        }
        case S_DATA_PADLEN: {
          const pad = bytes[pos++];
          this.left--;
          if (pad > this.left) {
            // RFC 9113 §6.1: padding at least as long as the payload is a PROTOCOL_ERROR; the frame is dropped.
            this.sink.anomaly(A_BAD_PADDING);
            this.state = this.left > 0 ? S_SKIP : S_HEADER;
            break;
          }
          this.padLeft = pad;
          this.left -= pad;
          this.state = S_DATA;
          if (this.left === 0) this.afterData();
          break;
        }
        case S_DATA: {
          const take = Math.min(this.left, n - pos);
          this.left -= take;
          this.sink.data(this.streamId, bytes.subarray(pos, pos + take));
          pos += take;
          if (this.left === 0 && this.state === S_DATA) this.afterData();
          break;
        }
        case S_DATA_PAD: {
          const take = Math.min(this.padLeft, n - pos);
          this.padLeft -= take;
          pos += take;
          if (this.padLeft === 0) this.endData();
          break;
        }
        case S_SKIP: {
          const take = Math.min(this.left, n - pos);
          this.left -= take;
          pos += take;
          if (this.left === 0) this.state = S_HEADER;
          break;
        }
      }
    }
    if (this.state === S_STOPPED) return 'invalid';
    return this.state === S_HEADER && this.hdrLen === 0 ? 'ok' : 'need-more';
  }

  private beginFrame(h: Uint8Array, at: number): void {
    this.length = (h[at] << 16) | (h[at + 1] << 8) | h[at + 2];
    this.type = h[at + 3];
    this.flags = h[at + 4];
    this.streamId = u31(h, at + 5);
    this.frames++;
    if (this.length > this.maxFrameSize) {
      this.fail('frame_too_large', A_FRAME_TOO_LARGE);
      return;
    }
    // The first frame each side sends is SETTINGS (RFC 9113 §3.4).
    if (this.frames === 1 && this.type !== FrameType.SETTINGS) this.sink.anomaly(A_FIRST_NOT_SETTINGS);
    // Only CONTINUATION of the same stream may follow an open header block (RFC 9113 §6.10): anything else
    // means fields the peer encoded are lost to us, so the HPACK context can no longer follow.
    if (this.blockStream >= 0 && (this.type !== FrameType.CONTINUATION || this.streamId !== this.blockStream)) {
      this.fail('continuation_expected', A_CONTINUATION_EXPECTED);
      return;
    }
    this.left = this.length;
    const t = this.type;
    if (t === FrameType.DATA) {
      if (this.streamId === 0) {
        this.sink.anomaly(A_DATA_STREAM_ZERO);
        this.state = this.length > 0 ? S_SKIP : S_HEADER;
        return;
      }
      if ((this.flags & FLAG_PADDED) !== 0) {
        if (this.length === 0) {
          this.sink.anomaly(A_BAD_PADDING);
          this.state = S_HEADER;
          return;
        }
        this.state = S_DATA_PADLEN;
        return;
      }
      this.padLeft = 0;
      this.state = S_DATA;
      if (this.length === 0) this.afterData();
      return;
    }
    if (t > FrameType.CONTINUATION) {
      // Unknown types are ignored (RFC 9113 §4.1, §5.5).
      this.sink.anomaly(C_UNKNOWN_TYPE);
      this.state = this.length > 0 ? S_SKIP : S_HEADER;
      return;
    }
    if (this.length > MAX_BUFFERED_FRAME_BYTES) {
      this.fail('frame_buffer_limit', C_BUFFER_LIMIT);
      return;
    }
    if (this.length === 0) {
      this.state = S_HEADER;
      this.dispatch(EMPTY);
      return;
    }
    this.msg.begin(this.length);
    this.state = S_BUFFER;
  }

  private afterData(): void {
    if (this.padLeft > 0) this.state = S_DATA_PAD;
    else this.endData();
  }

  private endData(): void {
    this.state = S_HEADER;
    this.sink.dataEnd(this.streamId, (this.flags & FLAG_END_STREAM) !== 0);
  }

  /** A complete non-DATA frame payload. */
  private dispatch(p: Uint8Array): void {
    const sink = this.sink;
    const id = this.streamId;
    const len = p.length;
    const flags = this.flags;
    switch (this.type) {
      case FrameType.HEADERS: {
        let off = 0;
        let pad = 0;
        if ((flags & FLAG_PADDED) !== 0) {
          if (len < 1) return this.fail('bad_padding', A_BAD_PADDING);
          pad = p[0];
          off = 1;
        }
        let priority: PriorityInfo | undefined;
        if ((flags & FLAG_PRIORITY) !== 0) {
          if (len < off + 5) return this.fail('bad_padding', A_BAD_PADDING);
          priority = priorityAt(p, off);
          off += 5;
        }
        if (off + pad > len) return this.fail('bad_padding', A_BAD_PADDING);
        const endHeaders = (flags & FLAG_END_HEADERS) !== 0;
        if (!endHeaders) this.blockStream = id;
        sink.headers(id, p.subarray(off, len - pad), (flags & FLAG_END_STREAM) !== 0, endHeaders, priority);
        return;
      }
      case FrameType.PUSH_PROMISE: {
        let off = 0;
        let pad = 0;
        if ((flags & FLAG_PADDED) !== 0) {
          if (len < 1) return this.fail('bad_padding', A_BAD_PADDING);
          pad = p[0];
          off = 1;
        }
        if (off + 4 + pad > len) return this.fail('bad_padding', A_BAD_PADDING);
        const promised = u31(p, off);
        off += 4;
        const endHeaders = (flags & FLAG_END_HEADERS) !== 0;
        if (!endHeaders) this.blockStream = id;
        sink.pushPromise(id, promised, p.subarray(off, len - pad), endHeaders);
        return;
      }
      case FrameType.CONTINUATION: {
        if (this.blockStream < 0) return this.fail('continuation_unexpected', A_CONTINUATION_UNEXPECTED);
        const endHeaders = (flags & FLAG_END_HEADERS) !== 0;
        if (endHeaders) this.blockStream = -1;
        sink.continuation(id, p, endHeaders);
        return;
      }
      case FrameType.PRIORITY:
        if (len !== 5) return sink.anomaly(A_INVALID_FRAME_LENGTH);
        if (id === 0) return sink.anomaly(A_STREAM_ID_INVALID);
        sink.priority?.(id, priorityAt(p, 0));
        return;
      case FrameType.RST_STREAM:
        if (len !== 4) return sink.anomaly(A_INVALID_FRAME_LENGTH);
        if (id === 0) return sink.anomaly(A_STREAM_ID_INVALID);
        sink.rstStream(id, u32(p, 0));
        return;
      case FrameType.SETTINGS:
        this.onSettings(p, id, flags);
        return;
      case FrameType.PING:
        if (len !== 8) return sink.anomaly(A_INVALID_FRAME_LENGTH);
        if (id !== 0) return sink.anomaly(A_STREAM_ID_INVALID);
        sink.ping?.((flags & FLAG_ACK) !== 0);
        return;
      case FrameType.GOAWAY:
        if (len < 8) return sink.anomaly(A_INVALID_FRAME_LENGTH);
        if (id !== 0) return sink.anomaly(A_STREAM_ID_INVALID);
        sink.goaway(u31(p, 0), u32(p, 4));
        return;
      case FrameType.WINDOW_UPDATE: {
        if (len !== 4) return sink.anomaly(A_INVALID_FRAME_LENGTH);
        const inc = u31(p, 0);
        if (inc === 0) sink.anomaly(A_WINDOW_UPDATE_ZERO);
        sink.windowUpdate?.(id, inc);
        return;
      }
    }
  }

  private onSettings(p: Uint8Array, id: number, flags: number): void {
    const sink = this.sink;
    if (id !== 0) return sink.anomaly(A_STREAM_ID_INVALID);
    if ((flags & FLAG_ACK) !== 0) {
      if (p.length !== 0) return sink.anomaly(A_INVALID_FRAME_LENGTH);
      sink.settings(true, NO_PARAMS);
      return;
    }
    if (p.length % 6 !== 0) return sink.anomaly(A_INVALID_FRAME_LENGTH);
    const params: SettingsParam[] = [];
    const s = this.settings;
    for (let at = 0; at < p.length; at += 6) {
      const sid = (p[at] << 8) | p[at + 1];
      const value = u32(p, at + 2);
      switch (sid) {
        case Setting.HEADER_TABLE_SIZE: s.headerTableSize = value; break;
        case Setting.ENABLE_PUSH:
          if (value > 1) { sink.anomaly(A_SETTINGS_INVALID); continue; }
          s.enablePush = value;
          break;
        case Setting.MAX_CONCURRENT_STREAMS: s.maxConcurrentStreams = value; break;
        case Setting.INITIAL_WINDOW_SIZE:
          if (value > 0x7fffffff) { sink.anomaly(A_SETTINGS_INVALID); continue; }
          s.initialWindowSize = value;
          break;
        case Setting.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_FRAME_SIZE_LIMIT) { sink.anomaly(A_SETTINGS_INVALID); continue; }
          s.maxFrameSize = value;
          break;
        case Setting.MAX_HEADER_LIST_SIZE: s.maxHeaderListSize = value; break;
        default: break; // unknown settings are ignored (RFC 9113 §6.5.2)
      }
      params.push({ id: sid, value });
    }
    sink.settings(false, params);
  }

  private fail(error: FrameError, counterId: number): void {
    if (this.state === S_STOPPED) return;
    this.sink.anomaly(counterId);
    this.error = error;
    this.state = S_STOPPED;
    this.msg.reset();
  }
}

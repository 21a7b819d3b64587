/**
 * Normalize leaf: streaming Content-Encoding decoder chain (gzip / x-gzip, deflate raw or zlib-wrapped,
 * br; stacked codings decoded in reverse order of application).
 * Input: compressed bytes in order, cut anywhere. Output: decoded bytes delivered synchronously, in order,
 * as views valid only during the callback. Bounded: layers per message, and what every layer produces
 * (not only the last one) in bytes and against the wire bytes, so a message's decompression work is too.
 * Corrupt data stops the chain (anomaly) and never throws. Native decoders are reset and reused
 * from message to message (at most MAX_POOLED_DECODERS idle per kind and thread).
 */

import zlib from 'node:zlib';
import { Counters, defineAnomaly, defineCounter } from '../events/counters.js';
import { chargeMemory } from '../events/memuse.js';

/** Decompression-bomb guard: each layer multiplies the ratio; real servers send one (libhtp's default is 2). */
export const MAX_CONTENT_ENCODINGS = 3;
/** Hard cap of decoded bytes per message, whatever the configured inspection limit says (bomb guard). */
export const MAX_DECODED_BYTES = 64 * 1024 * 1024;
/** Default decoded bytes per message: generous for pages and scripts, bounded for downloads. */
export const DEFAULT_DECODED_LIMIT_BYTES = 8 * 1024 * 1024;
/** Decoded/wire ratio that marks a bomb (libhtp's compression-bomb ratio). Deflate alone tops out near
 * 1032:1, so this bites on brotli and stacked layers; the byte limit bounds the rest. Judged on each
 * layer's output, not only the last one's: see `DecoderChain.feed`. */
export const MAX_DECOMPRESSION_RATIO = 2048;
/** The ratio is only judged past this much output: short bodies of repeated text legitimately reach it. */
export const RATIO_CHECK_MIN_BYTES = 1024 * 1024;
/** Output piece size handed to the sink (zlib's own default chunk size). */
const OUT_CHUNK_BYTES = 16 * 1024;
/**
 * What an open decoder holds, for the flow memcap (events/memuse.ts). zlib's inflate: its state
 * (~7 KiB) and 32 KiB window, and the output buffer. Brotli: its state and Huffman tables (~40 KiB
 * for ordinary streams), the output buffer, and a ring buffer (brotliRingBytes).
 */
const ZLIB_DECODER_BYTES = 7 * 1024 + 32 * 1024 + OUT_CHUNK_BYTES;
const BROTLI_DECODER_BYTES = 40 * 1024 + OUT_CHUNK_BYTES;
/** Bytes of a brotli stream that hold its window size and first meta-block header (at most 39 bits). */
const BROTLI_HEADER_BYTES = 5;
/** The decoder's smallest ring buffer. */
const BROTLI_MIN_RING_BYTES = 1024;

/**
 * The ring buffer a brotli decoder may fill for the stream that begins with `head` (RFC 7932
 * sections 9.1-9.2), or -1 when more bytes are needed. The decoder sizes it to the smallest power of
 * two that holds the output so far and the meta-block it is starting, up to the window the sender
 * chose (up to 16 MiB), and writes it before it hands anything out: a stream compressed in one
 * meta-block (what one-shot compressors write) needs that block's length, rounded up; a stream sent
 * in several (flushed as it is produced) may grow to the whole window, with no output to show for it
 * until a block ends, so it is charged the window from the start.
 */
export function brotliRingBytes(head: Uint8Array): number {
  let pos = 0;
  const need = (n: number): boolean => pos + n <= head.length * 8;
  const bits = (n: number): number => {
    let v = 0;
    for (let i = 0; i < n; i++, pos++) v |= ((head[pos >> 3] >> (pos & 7)) & 1) << i;
    return v;
  };
  if (!need(1)) return -1;
  let wbits = 16;
  if (bits(1) === 1) {
    if (!need(3)) return -1;
    const n = bits(3);
    if (n !== 0) wbits = 17 + n;
    else {
      if (!need(3)) return -1;
      const m = bits(3);
      // m === 1: a large window (RFC 9841), which the decoder refuses without an option: charge the largest ordinary one
      wbits = m === 0 ? 17 : m === 1 ? 24 : 8 + m;
    }
  }
  const window = 2 ** wbits;
  if (!need(1)) return -1;
  if (bits(1) === 0) return window; // not the last meta-block: more follow
  if (!need(1)) return -1;
  if (bits(1) === 1) return 0; // an empty stream
  if (!need(2)) return -1;
  const nibbles = bits(2);
  if (nibbles === 3) return window; // metadata first: the data blocks come later
  if (!need(4 * (4 + nibbles))) return -1;
  const len = bits(4 * (4 + nibbles)) + 1;
  let ring = BROTLI_MIN_RING_BYTES;
  while (ring < len && ring < window) ring *= 2;
  return Math.min(ring, window);
}
/**
 * An intermediate layer (one whose output the next layer decodes) may produce the output limit plus
 * 1/LAYER_OVERHEAD_DIVISOR of it plus LAYER_SLACK_BYTES. Its output is compressed data, which encoders
 * make at most slightly larger than what it decodes to (zlib's compressBound: 1/4096 + 1/16384 + 13
 * bytes; brotli's worst case: 4 bytes per 16 KiB), and it hands on whole output pieces: with this room
 * an honest stacked body is cut where its final output reaches the limit, as a single-layer one is,
 * never sooner, while a bomb's intermediate layer stops near the limit.
 */
const LAYER_OVERHEAD_DIVISOR = 64;
const LAYER_SLACK_BYTES = 4 * OUT_CHUNK_BYTES;
/** Fallback mode only (no streaming handle API): compressed bytes held until the message ends. */
export const MAX_BUFFERED_WIRE_BYTES = 1024 * 1024;

const C_CORRUPT = defineAnomaly('decompress.corrupt');
const C_TRAILING = defineAnomaly('decompress.trailing_data');
const C_RATIO = defineAnomaly('decompress.ratio_limit');
const C_LAYERS = defineAnomaly('decompress.layers_exceeded');
const C_OUTPUT_LIMIT = defineCounter('decompress.output_limit');
const C_FALLBACK = defineCounter('decompress.buffered_fallback');
const C_BUFFER_LIMIT = defineCounter('decompress.buffer_limit');

/** A content coding this module decodes; `deflate` is auto-detected as zlib-wrapped or raw. */
export type Coding = 'gzip' | 'deflate' | 'br';

export interface ParsedEncodings {
  /** In the order the sender applied them (header order); decoding runs in reverse. */
  readonly codings: Coding[];
  /** Tokens that are neither known codings nor `identity` (lower-cased), e.g. `compress`, `utf-8`. */
  readonly unknown: string[];
}

/**
 * Splits Content-Encoding header values (several headers concatenate, RFC 9110 §8.4) into codings.
 * Tokens are case-insensitive; `identity` and empty list elements are dropped.
 */
export function parseContentEncoding(values: readonly string[]): ParsedEncodings {
  const codings: Coding[] = [];
  const unknown: string[] = [];
  for (const value of values) {
    for (const raw of value.split(',')) {
      const token = raw.trim().toLowerCase();
      if (token === '' || token === 'identity') continue;
      if (token === 'gzip' || token === 'x-gzip') codings.push('gzip');
      else if (token === 'deflate') codings.push('deflate');
      else if (token === 'br') codings.push('br');
      else unknown.push(token);
    }
  }
  return { codings, unknown };
}

/** True when the two bytes are a valid zlib header (RFC 1950 §2.2: CM 8, CINFO <= 7, FCHECK). */
export function isZlibHeader(b0: number, b1: number): boolean {
  return (b0 & 0x0f) === 8 && b0 >> 4 <= 7 && ((b0 << 8) | b1) % 31 === 0;
}

export type DecodeStatus = 'ok' | 'corrupt' | 'output_limit' | 'ratio_limit' | 'layers_exceeded' | 'aborted';

/** Where the chain sends decoded bytes. `chunk` is a view valid only during the call. */
export type DecodedOutput = (chunk: Uint8Array) => void;

/** What we use of a node:zlib stream object: its native handle driven synchronously. Node-internal. */
interface ZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number,
    out: Uint8Array, outOff: number, outLen: number): void;
  /** inflateReset / BrotliDecoder re-init: a fresh stream on the same native state and window. */
  reset(): void;
  close(): void;
  onerror: (message: string, errno: number, code?: string) => void;
}
interface ZlibInternals {
  _handle: ZlibHandle | null;
  _writeState: Uint32Array;
}

type Kind = 'gunzip' | 'inflate' | 'inflateRaw' | 'brotli';

function createStream(kind: Kind): zlib.Gunzip | zlib.Inflate | zlib.InflateRaw | zlib.BrotliDecompress {
  // chunkSize is the stream's own output buffer, unused here: keep it at the minimum.
  switch (kind) {
    case 'gunzip': return zlib.createGunzip({ chunkSize: 64 });
    case 'inflate': return zlib.createInflate({ chunkSize: 64 });
    case 'inflateRaw': return zlib.createInflateRaw({ chunkSize: 64 });
    case 'brotli': return zlib.createBrotliDecompress({ chunkSize: 64 });
  }
}

/**
 * Node's public sync APIs (inflateSync, _processChunk without a callback) close the handle after one call,
 * and the stream APIs are asynchronous. We drive the stream's native handle with `writeSync` directly,
 * exactly as node:zlib's own processChunkSync does, minus the close. This probe checks at load that the
 * internal shape is there and works; if a future Node changes it, chains fall back to buffering the
 * compressed body (bounded) and decoding at message end, counted as `decompress.buffered_fallback`.
 */
function probeStreamingHandle(): boolean {
  try {
    const sample = zlib.deflateRawSync(Buffer.from('hark'));
    const stream = createStream('inflateRaw') as unknown as ZlibInternals;
    const handle = stream._handle;
    if (!handle || typeof handle.writeSync !== 'function' || !(stream._writeState instanceof Uint32Array)) return false;
    let failed = false;
    handle.onerror = () => { failed = true; };
    const out = Buffer.alloc(64);
    let produced = 0;
    for (let i = 0; i < sample.length; i++) {
      handle.writeSync(zlib.constants.Z_SYNC_FLUSH, sample, i, 1, out, produced, out.length - produced);
      produced = out.length - stream._writeState[0];
    }
    handle.close();
    return !failed && out.subarray(0, produced).toString('latin1') === 'hark';
  } catch {
    return false;
  }
}

/** Whether decoding streams chunk by chunk (true on Node 20-24) or falls back to buffering. */
export const STREAMING_DECODE_AVAILABLE = probeStreamingHandle();

/** A native decoder with its output buffer, reused from message to message. */
interface PooledDecoder {
  readonly handle: ZlibHandle;
  readonly state: Uint32Array;
  readonly out: Buffer;
  /** The node:zlib object that owns the handle, kept so the handle lives as long as the entry. */
  readonly stream: unknown;
}

/**
 * Idle decoders kept per kind and thread. Making one (a node:zlib stream object, the native state
 * with its 32 KiB window, a 16 KiB output buffer) cost more than decoding a small gzip page, and
 * the garbage it left was a tenth of the allocation in the pipeline's profile. A decoder whose
 * message ended cleanly is reset and kept; one that saw an error is closed. A few per kind cover
 * the messages decoding at the same moment on a busy link; beyond that they are closed.
 */
const MAX_POOLED_DECODERS = 32;
const idleDecoders: Record<Kind, PooledDecoder[]> = { gunzip: [], inflate: [], inflateRaw: [], brotli: [] };

function takeDecoder(kind: Kind): PooledDecoder | undefined {
  const idle = idleDecoders[kind].pop();
  if (idle !== undefined) return idle;
  const stream = createStream(kind) as unknown as ZlibInternals;
  const handle = stream._handle;
  if (handle === null) return undefined;
  return { handle, state: stream._writeState, out: Buffer.allocUnsafe(OUT_CHUNK_BYTES), stream };
}

function giveBackDecoder(kind: Kind, d: PooledDecoder, healthy: boolean): void {
  const idle = idleDecoders[kind];
  if (healthy && idle.length < MAX_POOLED_DECODERS) {
    try {
      d.handle.onerror = ignoreDecoderError;
      d.handle.reset();
      idle.push(d);
      return;
    } catch {
      // fall through: a handle that cannot reset is closed
    }
  }
  d.handle.close();
}

function ignoreDecoderError(): void {}

interface Stage {
  decode(input: Uint8Array): void;
  /** Message end: flush what is held (fallback mode), then release native resources. */
  finish(): void;
  close(): void;
}

/** One coding layer over a native zlib/brotli handle, fed synchronously. */
class StreamingStage implements Stage {
  /** Taken from the pool at construction, given back by close(); undefined after that. */
  private decoder: PooledDecoder | undefined;
  private readonly flush: number;
  private ended = false;
  private failed = false;
  private message = '';
  /** Bytes charged to the flow memcap for this decoder, given back by close(). */
  private charged = 0;
  /** Brotli: the first bytes of the stream until its ring buffer's size is known (brotliRingBytes), then undefined. */
  private head: Uint8Array | undefined;

  constructor(private readonly chain: DecoderChain, private readonly level: number, private readonly kind: Kind) {
    this.decoder = takeDecoder(kind);
    if (this.decoder !== undefined) this.chargeTo(kind === 'brotli' ? BROTLI_DECODER_BYTES : ZLIB_DECODER_BYTES);
    if (kind === 'brotli') this.head = new Uint8Array(0);
    this.flush = kind === 'brotli' ? zlib.constants.BROTLI_OPERATION_PROCESS : zlib.constants.Z_SYNC_FLUSH;
    // Replaces node:zlib's handler, which would destroy the stream and emit 'error' asynchronously.
    if (this.decoder !== undefined) this.decoder.handle.onerror = (message: string) => { this.failed = true; this.message = message; };
  }

  decode(input: Uint8Array): void {
    const d = this.decoder;
    if (d === undefined || this.ended) return;
    if (this.head !== undefined) this.sizeRing(input);
    const { handle, out, state } = d;
    let inOff = 0;
    let inLen = input.length;
    for (;;) {
      handle.writeSync(this.flush, input, inOff, inLen, out, 0, out.length);
      if (this.failed) {
        this.chain.fail(this.message);
        return;
      }
      const availOut = state[0];
      const availIn = state[1];
      const have = out.length - availOut;
      inOff += inLen - availIn;
      inLen = availIn;
      if (have > 0) {
        this.chain.feed(this.level + 1, out.subarray(0, have));
        if (this.chain.stopped) return;
      }
      if (availOut !== 0) {
        // Output room left means the decoder took all it could: leftover input follows the end of stream.
        if (availIn > 0) {
          this.ended = true;
          this.chain.trailing();
        }
        return;
      }
    }
  }

  finish(): void {
    this.close();
  }

  close(): void {
    if (this.decoder !== undefined) {
      giveBackDecoder(this.kind, this.decoder, !this.failed);
      this.decoder = undefined;
      this.chargeTo(0);
    }
  }

  /** Brotli: once the stream's first bytes have come, charges the ring buffer it may fill. */
  private sizeRing(input: Uint8Array): void {
    const have = this.head!;
    const head = new Uint8Array(Math.min(BROTLI_HEADER_BYTES, have.length + input.length));
    head.set(have);
    head.set(input.subarray(0, head.length - have.length), have.length);
    const ring = brotliRingBytes(head);
    if (ring < 0 && head.length < BROTLI_HEADER_BYTES) {
      this.head = head;
      return;
    }
    this.head = undefined;
    this.chargeTo(BROTLI_DECODER_BYTES + Math.max(ring, BROTLI_MIN_RING_BYTES));
  }

  private chargeTo(bytes: number): void {
    this.chain.charge(bytes - this.charged);
    this.charged = bytes;
  }
}

/** `deflate` as browsers read it: zlib-wrapped when the first two bytes are a zlib header, else raw. */
class DeflateAutoStage implements Stage {
  private inner: Stage | null = null;
  private first = -1;

  constructor(private readonly chain: DecoderChain, private readonly level: number, private readonly streaming: boolean) {}

  decode(input: Uint8Array): void {
    if (this.inner === null) {
      if (input.length === 0) return;
      if (this.first < 0 && input.length === 1) {
        this.first = input[0];
        return;
      }
      const b0 = this.first >= 0 ? this.first : input[0];
      const b1 = this.first >= 0 ? input[0] : input[1];
      const kind: Kind = isZlibHeader(b0, b1) ? 'inflate' : 'inflateRaw';
      this.inner = this.streaming ? new StreamingStage(this.chain, this.level, kind) : new BufferedStage(this.chain, this.level, kind);
      if (this.first >= 0) {
        this.inner.decode(Uint8Array.of(this.first));
        if (this.chain.stopped) return;
      }
    }
    this.inner.decode(input);
  }

  finish(): void {
    this.inner?.finish();
  }

  close(): void {
    this.inner?.close();
  }
}

/** Fallback when the streaming handle is unavailable: hold the wire bytes, decode once at the end. */
class BufferedStage implements Stage {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly chain: DecoderChain, private readonly level: number, private readonly kind: Kind) {}

  decode(input: Uint8Array): void {
    if (this.size + input.length > MAX_BUFFERED_WIRE_BYTES) {
      this.chain.bufferLimit();
      return;
    }
    this.parts.push(Buffer.from(input));
    this.size += input.length;
    this.chain.charge(input.length);
  }

  finish(): void {
    const all = Buffer.concat(this.parts, this.size);
    this.release();
    if (all.length === 0) return;
    const maxOutputLength = Math.max(1, this.chain.outputCapOf(this.level));
    let out: Buffer;
    try {
      const opts = { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength };
      switch (this.kind) {
        case 'gunzip': out = zlib.gunzipSync(all, opts); break;
        case 'inflate': out = zlib.inflateSync(all, opts); break;
        case 'inflateRaw': out = zlib.inflateRawSync(all, opts); break;
        case 'brotli':
          out = zlib.brotliDecompressSync(all, { finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH, maxOutputLength });
          break;
      }
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') this.chain.outputLimit();
      else this.chain.fail(String((err as Error).message));
      return;
    }
    this.chain.feed(this.level + 1, out);
  }

  close(): void {
    this.release();
  }

  private release(): void {
    this.chain.charge(-this.size);
    this.parts = [];
    this.size = 0;
  }
}

export interface DecoderChainOptions {
  /** Decoded bytes delivered per message; clamped to MAX_DECODED_BYTES. */
  maxOutputBytes?: number;
  /** Test hook: use the buffered fallback even when streaming is available. */
  forceBuffered?: boolean;
}

/**
 * Decodes one message body. Call `write` with wire bytes (any cut), then `end` once; `abort` instead
 * when the rest of the body will not come (gap). After `stopped` turns true nothing more is emitted.
 */
export class DecoderChain {
  readonly maxOutputBytes: number;
  /** What each intermediate layer may produce (see LAYER_OVERHEAD_DIVISOR). */
  readonly maxLayerBytes: number;
  status: DecodeStatus = 'ok';
  /** The decoder's message when status is `corrupt`. */
  error = '';
  wireBytes = 0;
  /** Bytes of the final output, delivered to the sink. */
  decodedBytes = 0;
  /**
   * Bytes every layer produced, the final output included: the decompression work this message cost.
   * An intermediate layer's output counts whatever the next layer does with it: decodes it, consumes it
   * without output, or skips it as trailing data after its own end of stream.
   */
  workBytes = 0;
  private readonly stages: Stage[] = [];
  /** Output of each stage so far, by level; the last stage's is `decodedBytes` (its entry stays 0). */
  private readonly layerBytes: number[] = [];
  private readonly counters: Counters;
  private readonly output: DecodedOutput;
  private closed = false;

  /** `codings` in the order the sender applied them (as `parseContentEncoding` returns them). */
  constructor(codings: readonly Coding[], output: DecodedOutput, counters: Counters, options: DecoderChainOptions = {}) {
    this.counters = counters;
    this.output = output;
    this.maxOutputBytes = Math.max(0, Math.min(options.maxOutputBytes ?? DEFAULT_DECODED_LIMIT_BYTES, MAX_DECODED_BYTES));
    this.maxLayerBytes = this.maxOutputBytes + Math.floor(this.maxOutputBytes / LAYER_OVERHEAD_DIVISOR) + LAYER_SLACK_BYTES;
    if (codings.length > MAX_CONTENT_ENCODINGS) {
      this.status = 'layers_exceeded';
      counters.inc(C_LAYERS);
      return;
    }
    const streaming = STREAMING_DECODE_AVAILABLE && options.forceBuffered !== true;
    if (!streaming && codings.length > 0) counters.inc(C_FALLBACK);
    for (let i = codings.length - 1, level = 0; i >= 0; i--, level++) {
      const coding = codings[i];
      if (coding === 'deflate') this.stages.push(new DeflateAutoStage(this, level, streaming));
      else {
        const kind: Kind = coding === 'gzip' ? 'gunzip' : 'brotli';
        this.stages.push(streaming ? new StreamingStage(this, level, kind) : new BufferedStage(this, level, kind));
      }
      this.layerBytes.push(0);
    }
  }

  get stopped(): boolean {
    return this.status !== 'ok';
  }

  write(wire: Uint8Array): void {
    if (this.status !== 'ok' || wire.length === 0) return;
    this.wireBytes += wire.length;
    this.feed(0, wire);
  }

  /** The body is complete: flushes held data (fallback mode) and releases the decoders. */
  end(): void {
    if (this.closed) return;
    for (const stage of this.stages) {
      if (this.status !== 'ok') break;
      stage.finish();
    }
    this.release();
  }

  /** The rest of the body will not be decoded (gap, flow end): releases the decoders. */
  abort(): void {
    if (this.status === 'ok') this.status = 'aborted';
    this.release();
  }

  /** @internal What the stage at `level` may produce: the output limit for the last, a little more before it. */
  outputCapOf(level: number): number {
    return level + 1 < this.stages.length ? this.maxLayerBytes : this.maxOutputBytes;
  }

  /**
   * @internal Bytes for the stage at `level`: wire bytes at level 0, else what the stage at `level - 1`
   * produced; `level === stages.length` means fully decoded.
   *
   * The limits bite on every layer's output, not only on the final output: with `gzip, br` the br
   * layer can expand to gigabytes that the gunzip layer, its stream ended, skips as trailing data (or
   * consumes as empty stored blocks), so nothing reaches the final output and a check there never
   * fires. Counted here, before the next stage sees them, every layer is held to the final output's
   * limits (an intermediate one with a small margin, see LAYER_OVERHEAD_DIVISOR), so a message's
   * decompression work is at most one byte cap per layer, and past RATIO_CHECK_MIN_BYTES at most
   * MAX_DECOMPRESSION_RATIO times its wire bytes per layer. When a limit bites the chain stops, and the
   * stages before stop driving their decoders (they check `stopped` after each piece they hand on).
   */
  feed(level: number, bytes: Uint8Array): void {
    if (level === this.stages.length) {
      this.deliver(bytes);
      return;
    }
    if (level === 0) {
      this.stages[0].decode(bytes);
      return;
    }
    const producer = level - 1;
    const produced = this.layerBytes[producer];
    const take = Math.min(bytes.length, Math.max(0, this.maxLayerBytes - produced));
    this.layerBytes[producer] = produced + take;
    this.workBytes += take;
    if (this.overRatio(produced + take)) {
      this.ratioLimit();
      return;
    }
    if (take > 0) {
      this.stages[level].decode(take === bytes.length ? bytes : bytes.subarray(0, take));
      if (this.stopped) return;
    }
    if (take < bytes.length) this.outputLimit();
  }

  /** Final output: to the sink, cut at maxOutputBytes. */
  private deliver(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const room = this.maxOutputBytes - this.decodedBytes;
    if (bytes.length > room) {
      if (room > 0) this.output(bytes.subarray(0, room));
      this.decodedBytes += room;
      this.workBytes += room;
      this.outputLimit();
      return;
    }
    this.decodedBytes += bytes.length;
    this.workBytes += bytes.length;
    this.output(bytes);
    if (this.overRatio(this.decodedBytes)) this.ratioLimit();
  }

  /** True when `produced` bytes from one layer are too many for the wire bytes seen so far. */
  private overRatio(produced: number): boolean {
    return produced > RATIO_CHECK_MIN_BYTES && produced > this.wireBytes * MAX_DECOMPRESSION_RATIO;
  }

  /** @internal */
  fail(message: string): void {
    if (this.status !== 'ok') return;
    this.error = message;
    this.stop('corrupt');
    this.counters.inc(C_CORRUPT);
  }

  /** @internal */
  trailing(): void {
    this.counters.inc(C_TRAILING);
  }

  /** @internal */
  outputLimit(): void {
    if (this.status !== 'ok') return;
    this.stop('output_limit');
    this.counters.inc(C_OUTPUT_LIMIT);
  }

  private ratioLimit(): void {
    if (this.status !== 'ok') return;
    this.stop('ratio_limit');
    this.counters.inc(C_RATIO);
  }

  /** @internal */
  bufferLimit(): void {
    if (this.status !== 'ok') return;
    this.stop('output_limit');
    this.counters.inc(C_BUFFER_LIMIT);
  }

  private stop(status: DecodeStatus): void {
    this.status = status;
    this.release();
  }

  /** @internal A stage's change in what it holds, for the flow memcap. */
  charge(bytes: number): void {
    chargeMemory(this.counters, bytes);
  }

  private release(): void {
    if (this.closed) return;
    this.closed = true;
    for (const stage of this.stages) stage.close();
  }
}

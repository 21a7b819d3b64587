/**
 * App layer, HTTP/2: HPACK header block decoder (RFC 7541) for ONE direction of a connection.
 * Input: complete header blocks (HEADERS/PUSH_PROMISE + CONTINUATION fragments joined), in stream order.
 * Output: the header list of each block (names and values as latin1 strings, in order), with the dynamic
 * table kept in step with the peer's encoder. Bounded: dynamic table bytes, header list bytes per block.
 * A compression error leaves the table out of step for good (RFC 9113 §4.3): the decoder then refuses
 * every later block. Never throws on block content.
 */

import { Counters, defineAnomaly, defineCounter } from '../../events/counters.js';
import type { HeaderList } from '../http/parser.js';
import { huffmanDecode, huffmanMaxDecodedLength } from './huffman.js';

/** Initial SETTINGS_HEADER_TABLE_SIZE and dynamic table size (RFC 9113 §6.5.2, RFC 7541 §4.2). */
export const DEFAULT_HEADER_TABLE_SIZE = 4096;
/** Largest dynamic table we follow: Chrome and Firefox advertise 65536, servers mostly the 4096 default. An
 * encoder told it may use more and doing so cannot be followed (memory per connection), counted. */
export const MAX_DYNAMIC_TABLE_BYTES = 64 * 1024;
/** Header list bytes kept per block, counted as name + value + 32 per field (RFC 9113 §6.5.2), Chrome's
 * SETTINGS_MAX_HEADER_LIST_SIZE. Fields beyond it are still decoded (the table must stay in step) but
 * dropped from the list, counted: this also bounds the "HPACK bomb" (one index byte naming a large entry). */
export const MAX_HEADER_LIST_BYTES = 256 * 1024;
/** Per-entry overhead in table size accounting (RFC 7541 §4.1). */
export const HPACK_ENTRY_OVERHEAD = 32;
/** Largest integer accepted (RFC 7541 §5.1 leaves it to implementations): 2^32 - 1 covers every size. */
const MAX_INTEGER = 0xffffffff;

export type HpackError =
  | 'truncated' | 'integer_overflow' | 'index_out_of_range' | 'huffman_invalid'
  | 'size_update_too_large' | 'size_update_misplaced' | 'table_limit';

const ERROR_IDS: Record<HpackError, number> = {
  truncated: defineAnomaly('http2.hpack.truncated'),
  integer_overflow: defineAnomaly('http2.header_integer_overflow'),
  index_out_of_range: defineAnomaly('http2.hpack.index_out_of_range'),
  huffman_invalid: defineAnomaly('http2.hpack.huffman_invalid'),
  size_update_too_large: defineAnomaly('http2.hpack.size_update_too_large'),
  size_update_misplaced: defineAnomaly('http2.hpack.size_update_misplaced'),
  table_limit: defineCounter('http2.hpack.table_limit'),
};
const C_LIST_TOO_LARGE = defineCounter('http2.header_list.too_large');

/** RFC 7541 Appendix A: index 1..61. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC_TABLE.length;

export interface HpackResult {
  /** Decoded fields in block order, up to the header list bound. */
  readonly headers: HeaderList;
  /** name + value + 32 summed over every field of the block, dropped ones included. */
  readonly listBytes: number;
  /** Fields were dropped at the header list bound. */
  readonly truncated: boolean;
}

export interface HpackDecoderOptions {
  /** Header list bytes kept per block (default MAX_HEADER_LIST_BYTES). */
  maxHeaderListBytes?: number;
}

interface Latin1Slicer {
  latin1Slice(start: number, end: number): string;
}
const HAS_LATIN1_SLICE = typeof (Buffer.prototype as unknown as Partial<Latin1Slicer>).latin1Slice === 'function';
function latin1(buf: Buffer, start: number, end: number): string {
  if (start === end) return '';
  return HAS_LATIN1_SLICE ? (buf as unknown as Latin1Slicer).latin1Slice(start, end) : buf.toString('latin1', start, end);
}

const NO_BYTES = Buffer.alloc(0);
const INT_TRUNCATED = -1;
const INT_OVERFLOW = -2;

/** One direction's HPACK decoding context. */
export class HpackDecoder {
  /** Why decoding stopped for good; undefined while usable. */
  error: HpackError | undefined;
  // Dynamic table as a ring: slot (head - 1 - i) & mask holds dynamic index i + 1 (newest first).
  private names: string[] = new Array<string>(16);
  private values: string[] = new Array<string>(16);
  private head = 0;
  private count = 0;
  private size = 0;
  private maxSize = DEFAULT_HEADER_TABLE_SIZE;
  private allowed = DEFAULT_HEADER_TABLE_SIZE;
  private readonly maxListBytes: number;
  private scratch: Buffer = Buffer.allocUnsafe(256);
  // Decode cursor (fields, not locals, so the integer reader needs no allocation).
  private buf: Buffer = NO_BYTES;
  private pos = 0;
  private end = 0;
  // Result of `lookup` (fields, so a lookup allocates nothing).
  private lookupName = '';
  private lookupValue = '';

  constructor(private readonly counters: Counters, options: HpackDecoderOptions = {}) {
    this.maxListBytes = options.maxHeaderListBytes ?? MAX_HEADER_LIST_BYTES;
  }

  get failed(): boolean {
    return this.error !== undefined;
  }

  /** Current dynamic table size in bytes (RFC 7541 §4.1). */
  get tableSize(): number {
    return this.size;
  }

  /** Current maximum table size, as last set by a size update. */
  get tableMaxSize(): number {
    return this.maxSize;
  }

  /** Number of dynamic table entries. */
  get tableLength(): number {
    return this.count;
  }

  /** Dynamic table entries, newest first (index 62 first). */
  tableEntries(): [string, string][] {
    const out: [string, string][] = [];
    const mask = this.names.length - 1;
    for (let i = 0; i < this.count; i++) {
      const slot = (this.head - 1 - i) & mask;
      out.push([this.names[slot], this.values[slot]]);
    }
    return out;
  }

  /**
   * The decoding endpoint's SETTINGS_HEADER_TABLE_SIZE: the largest size update the encoder may send. The
   * table itself changes only through size updates (RFC 7541 §4.2).
   */
  setAllowedTableSize(bytes: number): void {
    this.allowed = bytes;
  }

  get allowedTableSize(): number {
    return this.allowed;
  }

  /** Decodes one complete header block; undefined on a compression error (see `error`). */
  decode(block: Uint8Array): HpackResult | undefined {
    if (this.error !== undefined) return undefined;
    this.buf = Buffer.isBuffer(block) ? block : Buffer.from(block.buffer, block.byteOffset, block.byteLength);
    const result = this.decodeBlock(block.length);
    this.buf = NO_BYTES; // the block is the caller's view: do not keep it alive
    return result;
  }

  private decodeBlock(length: number): HpackResult | undefined {
    this.pos = 0;
    this.end = length;
    const headers: HeaderList = [];
    let listBytes = 0;
    let truncated = false;
    let fieldSeen = false;
    const buf = this.buf;
    while (this.pos < this.end) {
      const b = buf[this.pos];
      let name: string;
      let value: string;
      let index = false;
      if (b >= 0x80) {
        // Indexed header field (§6.1).
        const i = this.readInt(7);
        if (i < 0) return this.intError(i);
        const entry = this.lookup(i);
        if (entry < 0) return this.fail('index_out_of_range');
        name = this.lookupName;
        value = this.lookupValue;
      } else if (b >= 0x40 || b < 0x20) {
        // Literal with incremental indexing (§6.2.1, 6-bit prefix), without / never indexed (§6.2.2-3, 4-bit).
        index = b >= 0x40;
        const i = this.readInt(index ? 6 : 4);
        if (i < 0) return this.intError(i);
        if (i === 0) {
          const n = this.readString();
          if (n === undefined) return undefined;
          name = n;
        } else {
          if (this.lookup(i) < 0) return this.fail('index_out_of_range');
          name = this.lookupName;
        }
        const v = this.readString();
        if (v === undefined) return undefined;
        value = v;
      } else {
        // Dynamic table size update (§6.3): only at the start of a block (§4.2).
        if (fieldSeen) return this.fail('size_update_misplaced');
        const n = this.readInt(5);
        if (n < 0) return this.intError(n);
        if (n > this.allowed) return this.fail('size_update_too_large');
        if (n > MAX_DYNAMIC_TABLE_BYTES) return this.fail('table_limit');
        this.maxSize = n;
        this.evictTo(n);
        continue;
      }
      fieldSeen = true;
      if (index) this.insert(name, value);
      listBytes += name.length + value.length + HPACK_ENTRY_OVERHEAD;
      if (listBytes > this.maxListBytes) {
        if (!truncated) {
          truncated = true;
          this.counters.inc(C_LIST_TOO_LARGE);
        }
      } else {
        headers.push([name, value]);
      }
    }
    return { headers, listBytes, truncated };
  }

  /** Sets lookupName/lookupValue for index `i` (1-based, static then dynamic); -1 when out of range. */
  private lookup(i: number): number {
    if (i === 0) return -1;
    if (i <= STATIC_COUNT) {
      const e = STATIC_TABLE[i - 1];
      this.lookupName = e[0];
      this.lookupValue = e[1];
      return 0;
    }
    const d = i - STATIC_COUNT - 1;
    if (d >= this.count) return -1;
    const slot = (this.head - 1 - d) & (this.names.length - 1);
    this.lookupName = this.names[slot];
    this.lookupValue = this.values[slot];
    return 0;
  }

  /** Integer with an N-bit prefix at `pos` (§5.1); INT_TRUNCATED / INT_OVERFLOW on error. */
  private readInt(prefixBits: number): number {
    const buf = this.buf;
    const max = (1 << prefixBits) - 1;
    let value = buf[this.pos++] & max;
    if (value < max) return value;
    let scale = 1;
    for (;;) {
      if (this.pos >= this.end) return INT_TRUNCATED;
      const b = buf[this.pos++];
      value += (b & 0x7f) * scale;
      if (value > MAX_INTEGER) return INT_OVERFLOW;
      if ((b & 0x80) === 0) return value;
      scale *= 128;
      // Leading zero groups (0x80 0x80 ...) keep the value small; bound the scale instead.
      if (scale > 2 ** 35) return INT_OVERFLOW;
    }
  }

  /** String literal at `pos` (§5.2); undefined after recording an error. */
  private readString(): string | undefined {
    if (this.pos >= this.end) {
      this.fail('truncated');
      return undefined;
    }
    const huffman = (this.buf[this.pos] & 0x80) !== 0;
    const len = this.readInt(7);
    if (len < 0) {
      this.intError(len);
      return undefined;
    }
    if (len > this.end - this.pos) {
      this.fail('truncated');
      return undefined;
    }
    const start = this.pos;
    this.pos += len;
    if (!huffman) return latin1(this.buf, start, start + len);
    const room = huffmanMaxDecodedLength(len);
    if (this.scratch.length < room) this.scratch = Buffer.allocUnsafe(Math.max(room, this.scratch.length * 2));
    const n = huffmanDecode(this.buf, start, start + len, this.scratch, 0);
    if (n < 0) {
      this.fail('huffman_invalid');
      return undefined;
    }
    return latin1(this.scratch, 0, n);
  }

  /** Adds an entry (§4.4): evicts from the oldest end first; an entry larger than the table empties it. */
  private insert(name: string, value: string): void {
    const entrySize = name.length + value.length + HPACK_ENTRY_OVERHEAD;
    if (entrySize > this.maxSize) {
      this.evictTo(0);
      return;
    }
    this.evictTo(this.maxSize - entrySize);
    if (this.count === this.names.length) this.grow();
    const slot = this.head;
    this.names[slot] = name;
    this.values[slot] = value;
    this.head = (this.head + 1) & (this.names.length - 1);
    this.count++;
    this.size += entrySize;
  }

  /** Evicts oldest entries until the table size is at most `limit`. */
  private evictTo(limit: number): void {
    const mask = this.names.length - 1;
    while (this.size > limit && this.count > 0) {
      const slot = (this.head - this.count) & mask;
      this.size -= this.names[slot].length + this.values[slot].length + HPACK_ENTRY_OVERHEAD;
      this.names[slot] = '';
      this.values[slot] = '';
      this.count--;
    }
  }

  private grow(): void {
    const cap = this.names.length;
    const names = new Array<string>(cap * 2);
    const values = new Array<string>(cap * 2);
    for (let i = 0; i < this.count; i++) {
      const slot = (this.head - this.count + i) & (cap - 1);
      names[i] = this.names[slot];
      values[i] = this.values[slot];
    }
    this.names = names;
    this.values = values;
    this.head = this.count;
  }

  private intError(code: number): undefined {
    return this.fail(code === INT_OVERFLOW ? 'integer_overflow' : 'truncated');
  }

  private fail(error: HpackError): undefined {
    if (this.error === undefined) {
      this.error = error;
      this.counters.inc(ERROR_IDS[error]);
    }
    return undefined;
  }
}

/** The anomaly/counter id of an HPACK error (for a session recording it on a message). */
export function hpackErrorId(error: HpackError): number {
  return ERROR_IDS[error];
}

/**
 * App layer: the buffer a length-prefixed framing (HTTP/2 frames and header blocks, DNS and Kerberos over
 * TCP, TLS records and handshake messages) holds for a message that spans pushes. Input: the length the
 * peer announced, then the message's bytes as they arrive. Output: the complete message. Guarantees: what
 * a partial message holds is at most twice what arrived of it (or PARTIAL_BUFFER_MIN_BYTES), whatever
 * length its header claims; and every byte of buffer it holds is charged to the `app_layer.memuse` gauge
 * (events/memuse.ts) from allocation until `reset`, so a flow table with 50,000 connections each parked on
 * a partial message sees what they hold and evicts under its memcap.
 */
import type { Counters } from '../events/counters.js';
import { chargeMemory } from '../events/memuse.js';

/** Smallest buffer made for a partial message: a 1-byte piece does not cost an allocation per byte that follows. */
export const PARTIAL_BUFFER_MIN_BYTES = 256;

const EMPTY = new Uint8Array(0);

/**
 * `buf` with room for `need` bytes (at most `announced`), its first `have` bytes kept: `buf` itself when it
 * is large enough, else a new buffer of twice `need` (at least PARTIAL_BUFFER_MIN_BYTES, at most
 * `announced`). A length field is only a claim: allocating it up front let 9 bytes of header hold 256 KiB.
 */
export function growPartialBuffer(buf: Uint8Array, have: number, need: number, announced: number): Uint8Array {
  if (need <= buf.length) return buf;
  const size = Math.max(need, Math.min(announced, Math.max(PARTIAL_BUFFER_MIN_BYTES, 2 * need)));
  const grown = new Uint8Array(size);
  if (have > 0) grown.set(buf.subarray(0, have));
  return grown;
}

/**
 * One message being assembled: `begin` with the announced length, `append` pieces, `finish` when
 * `complete`. The buffer grows with what arrives (growPartialBuffer) and is charged to the gauge by its
 * allocated size; `reset` lets it go and gives the whole charge back. Holders call `reset` on every path
 * that abandons the message (gap, invalid stream, flow end): after it the gauge holds nothing of theirs.
 * `counters` undefined: nothing is charged (a parser used on its own, e.g. in a unit test).
 */
export class PartialMessage {
  private buf: Uint8Array = EMPTY;
  private have = 0;
  private want = 0;

  constructor(private readonly counters: Counters | undefined) {}

  /** Starts a message of `announced` bytes; a buffer kept by `finish` is reused. */
  begin(announced: number): void {
    this.want = announced;
    this.have = 0;
  }

  /** Copies from `bytes[from, to)` what the message still lacks; returns how many bytes it took. */
  append(bytes: Uint8Array, from = 0, to = bytes.length): number {
    const take = Math.min(this.want - this.have, to - from);
    if (take <= 0) return 0;
    const need = this.have + take;
    if (need > this.buf.length) this.grow(need);
    this.buf.set(from === 0 && take === bytes.length ? bytes : bytes.subarray(from, from + take), this.have);
    this.have = need;
    return take;
  }

  /** Bytes of the message received so far. */
  get length(): number {
    return this.have;
  }

  /** The length `begin` announced. */
  get announced(): number {
    return this.want;
  }

  get complete(): boolean {
    return this.have === this.want;
  }

  /** Bytes of buffer held (and charged): what a partial message costs, or the buffer kept for the next. */
  get heldBytes(): number {
    return this.buf.length;
  }

  /**
   * The message so far (complete, when called as intended), and the holder is done with it. A buffer of at
   * most `keepBytes` is kept, still charged, for the next message: the view returned is then valid only
   * until the next `append`. A larger buffer is let go and its charge given back: the view is the caller's.
   */
  finish(keepBytes = 0): Uint8Array {
    const buf = this.buf;
    const out = buf.length === this.have ? buf : buf.subarray(0, this.have);
    this.have = 0;
    this.want = 0;
    if (buf.length > keepBytes) this.release();
    return out;
  }

  /** Forgets the message and lets the buffer go: the gauge gets back all this holder charged. */
  reset(): void {
    this.have = 0;
    this.want = 0;
    this.release();
  }

  private grow(need: number): void {
    const before = this.buf.length;
    this.buf = growPartialBuffer(this.buf, this.have, need, this.want);
    if (this.counters !== undefined) chargeMemory(this.counters, this.buf.length - before);
  }

  private release(): void {
    if (this.buf.length === 0) return;
    if (this.counters !== undefined) chargeMemory(this.counters, -this.buf.length);
    this.buf = EMPTY;
  }
}

/**
 * App layer: the end of one direction's stream kept while protocol detection looks for a message start in
 * a flow picked up midstream (detect.ts, resync). Input: the direction's bytes as they arrive. Output: the
 * kept tail and the new bytes as one view to search, then what of it to keep. Guarantees: joining and
 * keeping cost O(new bytes), amortised (one buffer, grown geometrically up to `maxBytes`: a tail that
 * grows a byte at a time is never copied whole per byte), and the buffer's size is charged through
 * `charge` from allocation until `release`, which gives all of it back.
 */
import { growPartialBuffer } from './partial-buffer.js';

const EMPTY = new Uint8Array(0);

export class ResyncTail {
  private buf: Uint8Array = EMPTY;
  private len = 0;
  /** The last `join` wrote the new bytes into `buf`, after the tail. */
  private joinedInPlace = false;

  /** `charge(bytes)`: adds to (negative: gives back to) the inspection memory gauge. `maxBytes`: the longest tail kept. */
  constructor(private readonly charge: (bytes: number) => void, private readonly maxBytes: number) {}

  /** Bytes kept. */
  get length(): number {
    return this.len;
  }

  /** Bytes of buffer held, and charged. */
  get heldBytes(): number {
    return this.buf.length;
  }

  /**
   * The tail followed by `bytes`, as one view valid until the next call: `bytes` itself when no tail is
   * kept; else the tail's own buffer with `bytes` written after it, when both fit in `maxBytes`; else a
   * copy made for this call (a segment that large pays for it, and the tail kept after it is shorter than
   * the segment). The tail itself stays as it was until `keep`.
   */
  join(bytes: Uint8Array): Uint8Array {
    const have = this.len;
    this.joinedInPlace = false;
    if (have === 0) return bytes;
    const need = have + bytes.length;
    if (need > this.maxBytes) {
      const joined = new Uint8Array(need);
      joined.set(this.buf.subarray(0, have));
      joined.set(bytes, have);
      return joined;
    }
    this.grow(have, need);
    this.buf.set(bytes, have);
    this.joinedInPlace = true;
    return this.buf.subarray(0, need);
  }

  /** Keeps the last `keep` bytes (at most `maxBytes`) of `joined`, what the last `join` returned. */
  keep(joined: Uint8Array, keep: number): void {
    if (keep > 0) {
      const from = joined.length - keep;
      if (this.joinedInPlace) {
        if (from > 0) this.buf.copyWithin(0, from, joined.length);
      } else {
        this.grow(0, keep);
        this.buf.set(from === 0 ? joined : joined.subarray(from));
      }
    }
    this.len = keep;
    this.joinedInPlace = false;
  }

  /**
   * Forgets the tail and lets the buffer go: the gauge gets back all it was charged. A view `join`
   * returned stays valid (nothing writes to that buffer again), so it can be handed on.
   */
  release(): void {
    this.len = 0;
    this.joinedInPlace = false;
    if (this.buf.length === 0) return;
    this.charge(-this.buf.length);
    this.buf = EMPTY;
  }

  /** Room for `need` bytes, the first `have` kept. */
  private grow(have: number, need: number): void {
    const before = this.buf.length;
    if (need <= before) return;
    this.buf = growPartialBuffer(this.buf, have, need, this.maxBytes);
    this.charge(this.buf.length - before);
  }
}

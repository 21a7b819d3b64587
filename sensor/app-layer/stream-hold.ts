/**
 * App layer: stream bytes held back until it is known who gets them (protocol detection; the client's
 * bytes after an HTTP CONNECT). Input: each direction's bytes and gaps in arrival order. Output, from
 * `take`: the same bytes and gaps in the same order, each run of consecutive bytes of one direction as
 * one view, with the timestamp of the run's first segment. Guarantee: memory is O(bytes held) (one
 * buffer per direction, grown geometrically, and at most `maxRuns` runs), charged through `charge`; a
 * hold that lets go (`take`, `drop`) gives back exactly what it charged.
 */
import type { Direction } from '../flow/stream.js';
import { growPartialBuffer } from './partial-buffer.js';

/** What one run costs beside its bytes: its record (a small object and its slot in the list). */
export const HOLD_RUN_OVERHEAD_BYTES = 64;

/** A run of held bytes of one direction (`bytes`), or a gap of `len` bytes (`bytes` undefined). */
export interface HeldRun {
  readonly dir: Direction;
  readonly bytes: Uint8Array | undefined;
  readonly len: number;
  /** The timestamp of the run's first segment (later segments coalesced into it lose theirs). */
  readonly ts: number;
}

interface Run {
  dir: Direction;
  gap: boolean;
  len: number;
  ts: number;
}

const EMPTY = new Uint8Array(0);

export class StreamHold {
  private readonly bufs: [Uint8Array, Uint8Array] = [EMPTY, EMPTY];
  private readonly lens: [number, number] = [0, 0];
  private runs: Run[] = [];
  private charged = 0;

  /**
   * `charge(bytes)`: adds to (negative: gives back to) the inspection memory gauge. `maxBytes`: bytes held
   * in all, both directions. `maxRuns`: runs of bytes and gaps; they only alternate when the directions
   * take turns or the capture lost bytes, so this bounds the per-run cost whatever the segment sizes.
   */
  constructor(private readonly charge: (bytes: number) => void, private readonly maxBytes: number, private readonly maxRuns: number) {}

  /** Payload bytes held, both directions. */
  get bytes(): number {
    return this.lens[0] + this.lens[1];
  }

  /** Runs of bytes and gaps held. */
  get runCount(): number {
    return this.runs.length;
  }

  /** What the hold has charged and not given back. */
  get memory(): number {
    return this.charged;
  }

  /** The first `len` held bytes of `dir` (a view: bytes added later never change it). */
  view(dir: Direction, len: number): Uint8Array {
    return this.bufs[dir].subarray(0, len);
  }

  /** Holds a copy of `bytes`; false (and nothing held) when that would pass `maxBytes` or `maxRuns`. */
  data(dir: Direction, bytes: Uint8Array, ts: number): boolean {
    if (this.bytes + bytes.length > this.maxBytes) return false;
    const runs = this.runs;
    const last = runs.length > 0 ? runs[runs.length - 1] : undefined;
    if (last !== undefined && last.dir === dir && !last.gap) last.len += bytes.length;
    else if (runs.length >= this.maxRuns) return false;
    else runs.push({ dir, gap: false, len: bytes.length, ts });
    const have = this.lens[dir];
    const buf = growPartialBuffer(this.bufs[dir], have, have + bytes.length, this.maxBytes);
    buf.set(bytes, have);
    this.bufs[dir] = buf;
    this.lens[dir] = have + bytes.length;
    this.recharge();
    return true;
  }

  /** Holds a gap of `len` bytes of `dir` in its place; false (and nothing held) when `maxRuns` are held. */
  gap(dir: Direction, len: number, ts: number): boolean {
    if (this.runs.length >= this.maxRuns) return false;
    this.runs.push({ dir, gap: true, len, ts });
    this.recharge();
    return true;
  }

  /**
   * Everything held, in arrival order; the hold is empty again and has given back its charge. The
   * views are the hold's own buffers, which it lets go of: they stay valid.
   */
  take(): HeldRun[] {
    const bufs = [this.bufs[0], this.bufs[1]];
    const at = [0, 0];
    const out: HeldRun[] = [];
    for (const r of this.runs) {
      if (r.gap) out.push({ dir: r.dir, bytes: undefined, len: r.len, ts: r.ts });
      else {
        out.push({ dir: r.dir, bytes: bufs[r.dir].subarray(at[r.dir], at[r.dir] + r.len), len: r.len, ts: r.ts });
        at[r.dir] += r.len;
      }
    }
    this.drop();
    return out;
  }

  /** Lets go of everything held and gives back its charge. */
  drop(): void {
    this.bufs[0] = this.bufs[1] = EMPTY;
    this.lens[0] = this.lens[1] = 0;
    if (this.runs.length > 0) this.runs = [];
    this.recharge();
  }

  /** Brings the charge to what the buffers and runs take now. */
  private recharge(): void {
    const cost = this.bufs[0].length + this.bufs[1].length + this.runs.length * HOLD_RUN_OVERHEAD_BYTES;
    if (cost === this.charged) return;
    this.charge(cost - this.charged);
    this.charged = cost;
  }
}

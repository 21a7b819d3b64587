/**
 * TCP reassembly for each direction of each connection. Input: segments (sequence number + payload
 * view) in capture order, plus the peer's ACKs. Output, in stream order: in-order bytes (a zero-copy
 * view when a segment arrives in order) and gaps for bytes that will never be seen. Guarantees:
 * sequence numbers wrap (modular 32-bit compare, 53-bit relative offsets); overlaps resolve
 * first-received-wins (Suricata "bsd", Wireshark) and raise `stream.tcp.overlap_mismatch` when the
 * bytes differ; out-of-order bytes are bounded per stream and globally, and a limit that bites turns
 * the oldest hole into a counted gap rather than growing.
 *
 * Layout: a `HalfStore` keeps the state of many directions ("halves") as fixed-size records in
 * typed arrays, indexed by half number, so that the flow table reaches a half's state with one
 * computed address instead of a chain of objects (the per-packet cost was the cache misses of that
 * chain). `TcpHalf` is the same reassembler for one direction, as an object over its own store.
 */
import { Counters, defineAnomaly, defineCounter } from '../events/counters.js';

const A_OVERLAP_MISMATCH = defineAnomaly('stream.tcp.overlap_mismatch');
const A_PRE_START = defineAnomaly('stream.tcp.data_before_stream_start');
const C_OVERLAP = defineCounter('tcp.overlap');
const C_RETRANSMISSION = defineCounter('tcp.retransmission');
const C_OOO = defineCounter('tcp.segments_out_of_order');
const C_GAP = defineCounter('tcp.reassembly_gap');
const C_GAP_BYTES = defineCounter('tcp.reassembly_gap_bytes');
const C_MEMCAP = defineCounter('tcp.reassembly_memcap');
const C_STREAM_DEPTH = defineCounter('tcp.ooo_depth_reached');
const C_BYTES = defineCounter('tcp.reassembled_bytes');
const C_UNVERIFIED = defineCounter('tcp.retransmission_unverified');

export interface ReassemblyLimits {
  /** Out-of-order bytes held per direction before the oldest hole is declared a gap. */
  maxOooBytesPerStream: number;
  /** Out-of-order segments held per direction (many tiny segments cost more than their bytes). */
  maxOooSegmentsPerStream: number;
  /** Delivered bytes kept per direction to check that retransmissions carry the same data. */
  retainBytes: number;
  /** A hole the peer has acknowledged is declared lost after this much capture time (SPAN ports reorder slightly). */
  ackedHoleGraceUs: number;
}

export const DEFAULT_REASSEMBLY_LIMITS: ReassemblyLimits = {
  maxOooBytesPerStream: 1 << 20,
  maxOooSegmentsPerStream: 2048,
  retainBytes: 4096,
  ackedHoleGraceUs: 500_000,
};

/** Bytes of retention rings kept for reuse: the concurrent streams of a busy link (4096 rings of 4 KiB retained + spill room). */
const MAX_POOLED_RING_BYTES = 32 << 20;
/**
 * A retention ring holding `size` bytes is allocated with `size` more bytes of spill room after
 * it: a delivery that wraps is copied in one piece past the end, then its overflow is moved to
 * the front within the same buffer. Splitting it instead costs two views of the source per copy,
 * and those allocations were a tenth of the engine's time.
 */
const RING_SPILL_FACTOR = 2;

/**
 * Shared by every stream of one pipeline: the out-of-order byte budget, and a pool of retention
 * rings so that short flows do not turn into garbage-collector work.
 */
export class ReassemblyBudget {
  held = 0;
  /** Bytes of the retention rings streams hold now (the pooled ones are not counted: they are capped). */
  ringBytes = 0;
  private readonly rings: Uint8Array[] = [];
  constructor(readonly maxBytes: number) {
    // Written a second time so that V8 does not take `held` for a constant until the first
    // out-of-order segment, and deoptimise the flow table's per-packet code then.
    this.held = 0;
    this.ringBytes = 0;
  }

  /** A ring for `size` retained bytes (its length includes the spill room). */
  takeRing(size: number): Uint8Array {
    const pooled = this.rings.pop();
    const r = pooled !== undefined && pooled.length === size * RING_SPILL_FACTOR ? pooled : new Uint8Array(size * RING_SPILL_FACTOR);
    this.ringBytes += r.length;
    return r;
  }

  giveRing(r: Uint8Array): void {
    this.ringBytes -= r.length;
    if ((this.rings.length + 1) * r.length <= MAX_POOLED_RING_BYTES) this.rings.push(r);
  }
}

export interface HalfSink {
  data(bytes: Uint8Array, tsUs: number): void;
  gap(len: number, tsUs: number): void;
}

/** Where a `HalfStore` sends each half's output; `h` is the half number. */
export interface HalfOutput {
  halfData(h: number, bytes: Uint8Array, tsUs: number): void;
  halfGap(h: number, len: number, tsUs: number): void;
}

interface Segment {
  start: number; // relative stream offset
  data: Uint8Array;
}

/**
 * Typed-array methods called through constants: as `ring.set(...)` V8 looked the method up with a
 * generic inline-cache call on every delivery.
 */
const typedArraySet = Uint8Array.prototype.set;
const typedArrayCopyWithin = Uint8Array.prototype.copyWithin;

/**
 * The last source buffer a view was made of, with its ArrayBuffer and offset: a capture source
 * hands every packet in the same buffer, and reading `buffer` / `byteOffset` goes through getters
 * that cost more than the view itself.
 */
let viewSource: Uint8Array | undefined;
let viewBuffer: ArrayBufferLike = new ArrayBuffer(0);
let viewBase = 0;

/**
 * `buf[off..off+n)` as a view valid while `buf` is: a plain Uint8Array for a plain Uint8Array
 * source (half the cost of `subarray`, which looks up a species constructor); a Buffer stays a Buffer.
 */
function viewOf(buf: Uint8Array, off: number, n: number): Uint8Array {
  if (buf !== viewSource) {
    if (buf.constructor !== Uint8Array) return buf.subarray(off, off + n);
    viewSource = buf;
    viewBuffer = buf.buffer;
    viewBase = buf.byteOffset;
  }
  return new Uint8Array(viewBuffer, viewBase + off, n);
}

// Hot record of a half (the fields every segment or ACK reads, then its references to deferred
// bytes), HOT_STRIDE doubles.
const HOT_STRIDE = 20;
/** Relative offset of the next expected byte (bytes delivered + gaps). */
const H_NEXT_REL = 0;
/** Next expected sequence number (unsigned 32-bit). */
const H_NEXT_SEQ = 1;
/** F_STARTED | F_FROM_SYN. */
const H_FLAGS = 2;
/** Bytes held out of order. Every held segment is non-empty, so this is 0 exactly when none is held. */
const H_OOO_BYTES = 3;
const H_DELIVERED = 4;
/** Valid retained bytes, ending at the next expected byte. */
const H_RETAIN_LEN = 5;
/** Where the next delivered byte goes in the retention ring: next relative offset % retainBytes. */
const H_RING_POS = 6;
/** Relative offset the peer has acknowledged (max). */
const H_ACKED_REL = 7;
/** DEFER_REFS references of REF_FIELDS each, a circle starting at `deferFirst[h]`. */
const H_REFS = 8;
// Cold record: COLD_STRIDE doubles.
const COLD_STRIDE = 8;
/** Relative offset of the FIN, or -1. */
const C_FIN_REL = 0;
const C_ISN = 1;
const C_GAP_BYTES_FIELD = 2;
const C_GAPS = 3;
const C_OVERLAPS = 4;
const C_MISMATCHES = 5;
/** When the peer's acknowledgement first passed a hole, or -1. */
const C_HOLE_ACKED_AT_US = 6;
/** Relative offset where the half was bypassed (see `HalfStore.bypass`). */
const C_BYPASS_REL = 7;

/**
 * Deferred retention. A delivery from the capture source's own buffer (see `HalfStore.overwrite`)
 * is not copied into the half's retention ring: the half keeps a reference to those bytes, and
 * copies them only if they are still among its last retained bytes when the source is about to
 * overwrite them. By then a busy stream has delivered far more than it retains, so most bytes are
 * never copied. A half keeps up to DEFER_REFS references (rel, pos, len) in its hot record, where
 * pos = pass * POS_PASS + offset in the source buffer orders every delivered byte of the source.
 */
const DEFER_REFS = 4;
const REF_FIELDS = 3;
const REF_REL = 0;
const REF_POS = 1;
const REF_LEN = 2;
const POS_PASS = 2 ** 32;
/**
 * Deferred deliveries waiting for the source to overwrite their bytes, in source order: (half,
 * pos), in a circle whose size is a power of two. It starts small so that its growth, and the code
 * for it, run in the first seconds rather than first at some later point.
 */
const PENDING_FIELDS = 2;
const INITIAL_PENDING = 64;
/** Entries sortPendingFrom orders at once at most (2^20: the largest connection-grouped batch, in frames). */
const SORT_INDEX_RANGE = 2 ** 20;

/** True once the stream's starting sequence number is known (SYN, SYN-ACK's ack, or first data). */
const F_STARTED = 1;
/** The start came from a SYN (not midstream pickup). */
const F_FROM_SYN = 2;
/** Bypassed: segments only move the next expected byte on; nothing is delivered, held or retained. */
const F_BYPASS = 4;

/**
 * The reassembly state of many halves. Each method takes the half number `h`; `grow` makes room
 * for more, `reset` returns one to the state of a new stream (before first use too).
 */
export class HalfStore {
  hot: Float64Array;
  cold: Float64Array;
  /** Retention ring of each half, taken from the budget's pool on first delivery. */
  private rings: (Uint8Array | undefined)[];
  /** Out-of-order segments of each half, sorted and disjoint; allocated on the first one. */
  private ooo: (Segment[] | undefined)[];
  private readonly retainSize: number;
  private readonly graceUs: number;
  /** The capture source's buffer: bytes delivered from it stay in place until `overwrite` says so. */
  private source: Uint8Array | undefined = undefined;
  /** How many times the source has wrapped to its start, and where it last wrote. */
  private pass = 0;
  private lastWriteFrom = 0;
  /** Where each half's oldest reference is in its circle, and how many it has. */
  private deferFirst: Uint8Array;
  private deferCount: Uint8Array;
  /**
   * The pos of each half's oldest reference (Infinity when it has none): a compact array, so that
   * `overwrite` can pass over the many queued deliveries whose reference is long gone without
   * reading the half's record.
   */
  private oldestRef: Float64Array;
  /** Circular queue of deferred deliveries in source order (what `overwrite` walks). */
  private pending = new Float64Array(INITIAL_PENDING * PENDING_FIELDS);
  private pendingHead = 0;
  private pendingSize = 0;
  /** Scratch of sortPendingFrom, kept between batches. */
  private sortKeys = new Float64Array(0);
  private sortHalves = new Float64Array(0);
  /** `counters.values`, for the per-delivery byte count. */
  private readonly counterValues: Float64Array;

  constructor(
    private readonly out: HalfOutput,
    private readonly counters: Counters,
    private readonly budget: ReassemblyBudget,
    private readonly limits: ReassemblyLimits,
    capacity: number,
  ) {
    this.retainSize = limits.retainBytes;
    this.graceUs = limits.ackedHoleGraceUs;
    this.counterValues = counters.values;
    // Written twice: `grow` replaces them, and V8 deoptimises code that took a field written only
    // once for a constant when the second write comes.
    this.hot = this.cold = new Float64Array(0);
    this.hot = new Float64Array(capacity * HOT_STRIDE);
    this.cold = new Float64Array(capacity * COLD_STRIDE);
    this.deferFirst = this.deferCount = new Uint8Array(0);
    this.oldestRef = new Float64Array(0);
    this.deferFirst = new Uint8Array(capacity);
    this.deferCount = new Uint8Array(capacity);
    this.oldestRef = new Float64Array(capacity).fill(Infinity);
    this.pending = new Float64Array(INITIAL_PENDING * PENDING_FIELDS);
    this.source = undefined;
    this.pass = this.lastWriteFrom = this.pendingHead = this.pendingSize = 0;
    this.rings = new Array<Uint8Array | undefined>(capacity).fill(undefined);
    this.ooo = new Array<Segment[] | undefined>(capacity).fill(undefined);
    for (let h = 0; h < capacity; h++) this.init(h);
  }

  get capacity(): number {
    return this.rings.length;
  }

  /** Room for `capacity` halves (never shrinks); new halves start as new streams. */
  grow(capacity: number): void {
    const old = this.rings.length;
    if (capacity <= old) return;
    const hot = new Float64Array(capacity * HOT_STRIDE);
    hot.set(this.hot);
    this.hot = hot;
    const cold = new Float64Array(capacity * COLD_STRIDE);
    cold.set(this.cold);
    this.cold = cold;
    const oldestRef = new Float64Array(capacity).fill(Infinity);
    oldestRef.set(this.oldestRef);
    this.oldestRef = oldestRef;
    const deferFirst = new Uint8Array(capacity);
    deferFirst.set(this.deferFirst);
    this.deferFirst = deferFirst;
    const deferCount = new Uint8Array(capacity);
    deferCount.set(this.deferCount);
    this.deferCount = deferCount;
    for (let h = old; h < capacity; h++) {
      this.rings.push(undefined);
      this.ooo.push(undefined);
      this.init(h);
    }
  }

  private init(h: number): void {
    const c = h * COLD_STRIDE;
    this.cold[c + C_FIN_REL] = -1;
    this.cold[c + C_HOLE_ACKED_AT_US] = -1;
  }

  /** Back to the state of a new stream. */
  reset(h: number): void {
    this.releaseRetained(h);
    const o = h * HOT_STRIDE;
    const hot = this.hot;
    this.dropHeld(h);
    for (let i = 0; i < HOT_STRIDE; i++) hot[o + i] = 0;
    const c = h * COLD_STRIDE;
    const cold = this.cold;
    for (let i = 0; i < COLD_STRIDE; i++) cold[c + i] = 0;
    cold[c + C_FIN_REL] = -1;
    cold[c + C_HOLE_ACKED_AT_US] = -1;
  }

  started(h: number): boolean {
    return (this.hot[h * HOT_STRIDE + H_FLAGS] & F_STARTED) !== 0;
  }

  fromSyn(h: number): boolean {
    return (this.hot[h * HOT_STRIDE + H_FLAGS] & F_FROM_SYN) !== 0;
  }

  nextSeq(h: number): number {
    return this.hot[h * HOT_STRIDE + H_NEXT_SEQ];
  }

  nextRel(h: number): number {
    return this.hot[h * HOT_STRIDE + H_NEXT_REL];
  }

  isn(h: number): number {
    return this.cold[h * COLD_STRIDE + C_ISN];
  }

  delivered(h: number): number {
    return this.hot[h * HOT_STRIDE + H_DELIVERED];
  }

  gapBytes(h: number): number {
    return this.cold[h * COLD_STRIDE + C_GAP_BYTES_FIELD];
  }

  gaps(h: number): number {
    return this.cold[h * COLD_STRIDE + C_GAPS];
  }

  overlaps(h: number): number {
    return this.cold[h * COLD_STRIDE + C_OVERLAPS];
  }

  mismatches(h: number): number {
    return this.cold[h * COLD_STRIDE + C_MISMATCHES];
  }

  finRel(h: number): number {
    return this.cold[h * COLD_STRIDE + C_FIN_REL];
  }

  ackedRel(h: number): number {
    return this.hot[h * HOT_STRIDE + H_ACKED_REL];
  }

  holeAckedAtUs(h: number): number {
    return this.cold[h * COLD_STRIDE + C_HOLE_ACKED_AT_US];
  }

  oooHeld(h: number): number {
    return this.hot[h * HOT_STRIDE + H_OOO_BYTES];
  }

  /** Bytes this half holds (out-of-order data + retained tail), for the flow memcap. */
  memory(h: number): number {
    return this.hot[h * HOT_STRIDE + H_OOO_BYTES] + (this.rings[h] === undefined ? 0 : this.retainSize);
  }

  /** SYN seen with this sequence number: the stream starts at isn + 1. */
  startFromSyn(h: number, isn: number): void {
    const o = h * HOT_STRIDE;
    const hot = this.hot;
    if ((hot[o + H_FLAGS] & F_STARTED) !== 0 && hot[o + H_DELIVERED] + this.cold[h * COLD_STRIDE + C_GAP_BYTES_FIELD] > 0) return;
    this.cold[h * COLD_STRIDE + C_ISN] = isn >>> 0;
    hot[o + H_NEXT_SEQ] = (isn + 1) >>> 0;
    hot[o + H_FLAGS] = F_STARTED | F_FROM_SYN | (hot[o + H_FLAGS] & F_BYPASS);
  }

  /** Midstream pickup: the stream starts at this sequence number. */
  startAt(h: number, seq: number): void {
    const o = h * HOT_STRIDE;
    const hot = this.hot;
    if ((hot[o + H_FLAGS] & F_STARTED) !== 0) return;
    this.cold[h * COLD_STRIDE + C_ISN] = (seq - 1) >>> 0;
    hot[o + H_NEXT_SEQ] = seq >>> 0;
    hot[o + H_FLAGS] |= F_STARTED;
  }

  /** Relative offset of a sequence number (valid within +-2 GiB of the next expected byte). */
  rel(h: number, seq: number): number {
    const o = h * HOT_STRIDE;
    return this.hot[o + H_NEXT_REL] + ((seq - this.hot[o + H_NEXT_SEQ]) | 0);
  }

  /** One segment's payload `buf[off..off+len)` at sequence `seq`. */
  segment(h: number, seq: number, buf: Uint8Array, off: number, len: number, tsUs: number): void {
    const hot = this.hot;
    const o = h * HOT_STRIDE;
    if ((hot[o + H_FLAGS] & (F_STARTED | F_BYPASS)) !== F_STARTED) {
      this.startAt(h, seq);
      if ((hot[o + H_FLAGS] & F_BYPASS) !== 0) {
        this.skip(h, seq, len);
        return;
      }
    }
    const nextRel = hot[o + H_NEXT_REL];
    let start = nextRel + ((seq - hot[o + H_NEXT_SEQ]) | 0);
    // The common case first: the next bytes in order, nothing held.
    if (start === nextRel && len > 0 && hot[o + H_OOO_BYTES] === 0) {
      this.deliver(h, buf, off, len, tsUs);
      return;
    }
    const end = start + len;
    if (start < 0 && hot[o + H_DELIVERED] + this.cold[h * COLD_STRIDE + C_GAP_BYTES_FIELD] === 0 && (hot[o + H_FLAGS] & F_FROM_SYN) === 0) {
      // Midstream pickup began at a later segment; earlier bytes now arriving cannot be placed.
      this.counters.inc(A_PRE_START);
    }
    if (end <= nextRel) {
      this.counters.inc(C_RETRANSMISSION);
      this.verifyDelivered(h, start, buf, off, len);
      return;
    }
    if (start < nextRel) {
      this.counters.inc(C_RETRANSMISSION);
      const cut = nextRel - start;
      this.verifyDelivered(h, start, buf, off, cut);
      off += cut;
      len -= cut;
      start = nextRel;
    }
    if (hot[o + H_OOO_BYTES] === 0 && start === nextRel) {
      this.deliver(h, buf, off, len, tsUs);
      return;
    }
    this.counters.inc(C_OOO);
    this.insert(h, start, end, buf, off);
    this.drain(h, tsUs);
    this.enforceLimits(h, tsUs);
  }

  /** The peer acknowledged up to `ack`: a hole below it was lost by the capture, not the network. */
  acked(h: number, ack: number, tsUs: number): void {
    const hot = this.hot;
    const o = h * HOT_STRIDE;
    if ((hot[o + H_FLAGS] & F_STARTED) === 0) return;
    const r = hot[o + H_NEXT_REL] + ((ack - hot[o + H_NEXT_SEQ]) | 0);
    if (r > hot[o + H_ACKED_REL]) hot[o + H_ACKED_REL] = r;
    if (hot[o + H_OOO_BYTES] !== 0 && hot[o + H_ACKED_REL] > hot[o + H_NEXT_REL]) {
      const at = h * COLD_STRIDE + C_HOLE_ACKED_AT_US;
      if (this.cold[at] < 0) this.cold[at] = tsUs;
      else if (tsUs - this.cold[at] >= this.graceUs) this.fillAckedHoles(h, tsUs);
    }
  }

  /** FIN at this sequence number (after the segment's payload). */
  fin(h: number, seq: number): void {
    if (!this.started(h)) this.startAt(h, seq);
    // a bypassed half may not have seen the segments before its FIN (dropped in a capture thread)
    this.bypassedTo(h, seq);
    const r = this.rel(h, seq);
    const at = h * COLD_STRIDE + C_FIN_REL;
    if (this.cold[at] < 0 || r < this.cold[at]) this.cold[at] = r;
  }

  /** True when every byte up to the FIN has been delivered. */
  finished(h: number): boolean {
    const finRel = this.cold[h * COLD_STRIDE + C_FIN_REL];
    return finRel >= 0 && this.hot[h * HOT_STRIDE + H_NEXT_REL] >= finRel;
  }

  /** End of the stream: deliver whatever is held, with gaps for the holes. */
  flush(h: number, tsUs: number): void {
    const o = h * HOT_STRIDE;
    while (this.hot[o + H_OOO_BYTES] !== 0) {
      const first = this.ooo[h]![0];
      if (first.start > this.hot[o + H_NEXT_REL]) this.skipTo(h, first.start, tsUs);
      this.drain(h, tsUs);
    }
    this.releaseRetained(h);
  }

  /**
   * Nothing more of this stream is wanted: what it holds out of order is dropped (not delivered,
   * not counted as a gap) and its retained bytes released. From now on a segment only moves the
   * next expected byte on (so FIN and the flow's end work as before), and `bypassedBytes` counts
   * the sequence space that went by undelivered.
   */
  bypass(h: number): void {
    const o = h * HOT_STRIDE;
    const hot = this.hot;
    if ((hot[o + H_FLAGS] & F_BYPASS) !== 0) return;
    const c = h * COLD_STRIDE;
    this.cold[c + C_BYPASS_REL] = hot[o + H_NEXT_REL];
    this.cold[c + C_HOLE_ACKED_AT_US] = -1;
    if (hot[o + H_OOO_BYTES] !== 0) {
      // The held bytes went by too: the stream moves on to the end of the last of them.
      const q = this.ooo[h]!;
      const last = q[q.length - 1];
      const ahead = last.start + last.data.length - hot[o + H_NEXT_REL];
      hot[o + H_NEXT_REL] += ahead;
      hot[o + H_NEXT_SEQ] = (hot[o + H_NEXT_SEQ] + ahead) >>> 0;
      this.dropHeld(h);
      hot[o + H_OOO_BYTES] = 0;
    }
    this.releaseRetained(h);
    hot[o + H_FLAGS] |= F_BYPASS;
  }

  /** Forgets the segments half h holds out of order, giving their bytes back to the budget (H_OOO_BYTES is the caller's). */
  private dropHeld(h: number): void {
    if (this.hot[h * HOT_STRIDE + H_OOO_BYTES] === 0) return;
    const q = this.ooo[h]!;
    for (const seg of q) this.budget.held -= seg.data.length;
    q.length = 0;
  }

  isBypassed(h: number): boolean {
    return (this.hot[h * HOT_STRIDE + H_FLAGS] & F_BYPASS) !== 0;
  }

  /** A bypassed half's stream went by up to sequence number `seqEnd` (frames nobody delivered here). */
  bypassedTo(h: number, seqEnd: number): void {
    if ((this.hot[h * HOT_STRIDE + H_FLAGS] & F_BYPASS) !== 0) this.skip(h, seqEnd, 0);
  }

  /** Stream bytes (sequence space) that went by after `bypass`, none of them delivered. */
  bypassedBytes(h: number): number {
    const o = h * HOT_STRIDE;
    return (this.hot[o + H_FLAGS] & F_BYPASS) === 0 ? 0 : this.hot[o + H_NEXT_REL] - this.cold[h * COLD_STRIDE + C_BYPASS_REL];
  }

  /** A bypassed half's segment: the next expected byte moves past it, if it reaches further. */
  private skip(h: number, seq: number, len: number): void {
    const o = h * HOT_STRIDE;
    const hot = this.hot;
    const ahead = ((seq - hot[o + H_NEXT_SEQ]) | 0) + len;
    if (ahead > 0) {
      hot[o + H_NEXT_REL] += ahead;
      hot[o + H_NEXT_SEQ] = (seq + len) >>> 0;
    }
  }

  /** The stream is over (FIN delivered, or flushed): the retention ring goes back to the pool. */
  releaseRetained(h: number): void {
    const r = this.rings[h];
    if (r !== undefined) {
      this.budget.giveRing(r);
      this.rings[h] = undefined;
    }
    this.hot[h * HOT_STRIDE + H_RETAIN_LEN] = 0;
    this.deferCount[h] = 0;
    this.deferFirst[h] = 0;
    this.oldestRef[h] = Infinity;
  }

  /**
   * The capture source is about to write `buf[from..to)`. Bytes it handed out from `buf` earlier
   * stay in place until it says so here: deliveries from `buf` are retained by reference, and
   * those in the range (or in a previous buffer) are copied into their rings now if still needed.
   * `from` restarts at 0 when the source wraps to the start of its buffer. `undefined` detaches
   * the source (everything referenced is copied).
   */
  overwrite(buf: Uint8Array | undefined, from: number, to: number): void {
    if (buf !== this.source) {
      this.settlePending(Infinity);
      this.source = buf;
      this.pass = 0;
      this.lastWriteFrom = from;
      return;
    }
    if (from < this.lastWriteFrom) this.pass++;
    this.lastWriteFrom = from;
    // Overwritten: everything of earlier passes below `to` (the previous pass wrote every byte up
    // to where it wrapped, so older passes are gone entirely).
    this.settlePending((this.pass - 1) * POS_PASS + to);
  }

  /** Deferred deliveries queued so far (see `sortPendingFrom`). */
  get pendingCount(): number {
    return this.pendingSize;
  }

  /**
   * Puts the deliveries queued since the queue held `mark` back in source order. A batch handed
   * over grouped by connection (workers/locality.ts) delivers one source range out of order;
   * `settlePending` walks the queue oldest first and stops at the first position not yet
   * overwritten, so it needs that order. Only the batch's own entries move: every earlier one is
   * from an earlier part of the source. Nothing settles during a batch (only `overwrite` does,
   * and the source does not write while it hands frames over), so the head stays where it was.
   */
  sortPendingFrom(mark: number): void {
    const n = this.pendingSize - mark;
    if (n < 2) return;
    const q = this.pending;
    const mask = q.length / PENDING_FIELDS - 1;
    const first = this.pendingHead + mark;
    let lo = Infinity;
    let sorted = true;
    for (let i = 0, last = -Infinity; i < n; i++) {
      const pos = q[((first + i) & mask) * PENDING_FIELDS + 1];
      if (pos < last) sorted = false;
      if (pos < lo) lo = pos;
      last = pos;
    }
    if (sorted) return;
    // One key per entry, (pos - lo) * SORT_INDEX_RANGE + i: exact in a double while the batch's
    // positions span less than 2^32 (one pass of the source) and it has under SORT_INDEX_RANGE
    // entries; the typed array's own numeric sort then orders them with no comparator calls.
    if (n > SORT_INDEX_RANGE) {
      // more than a batch can hold: copy every reference now instead (always safe, only slower)
      this.settlePending(Infinity);
      return;
    }
    if (this.sortKeys.length < n) {
      this.sortKeys = new Float64Array(Math.max(n, this.sortKeys.length * 2));
      this.sortHalves = new Float64Array(this.sortKeys.length);
    }
    const keys = this.sortKeys.subarray(0, n);
    const halves = this.sortHalves;
    for (let i = 0; i < n; i++) {
      const at = ((first + i) & mask) * PENDING_FIELDS;
      halves[i] = q[at];
      keys[i] = (q[at + 1] - lo) * SORT_INDEX_RANGE + i;
    }
    keys.sort();
    for (let i = 0; i < n; i++) {
      const k = keys[i];
      const j = k % SORT_INDEX_RANGE;
      const at = ((first + i) & mask) * PENDING_FIELDS;
      q[at] = halves[j];
      q[at + 1] = (k - j) / SORT_INDEX_RANGE + lo;
    }
  }

  /** Copies, oldest first, the queued deliveries at source positions below `limit` that are still referenced. */
  private settlePending(limit: number): void {
    const q = this.pending;
    const cap = q.length / PENDING_FIELDS;
    while (this.pendingSize > 0) {
      const at = this.pendingHead * PENDING_FIELDS;
      const pos = q[at + 1];
      if (pos >= limit) break;
      const h = q[at] | 0;
      if (pos >= this.oldestRef[h]) this.settleRef(h, pos);
      this.pendingHead = (this.pendingHead + 1) & (cap - 1);
      this.pendingSize--;
    }
  }

  /** Where half h's i-th oldest reference is in `hot`. */
  private refAt(h: number, i: number): number {
    const k = this.deferFirst[h] + i;
    return h * HOT_STRIDE + H_REFS + (k < DEFER_REFS ? k : k - DEFER_REFS) * REF_FIELDS;
  }

  /** Copies half h's references up to the one at source position `pos` into its ring, and drops them. */
  private settleRef(h: number, pos: number): void {
    const n = this.deferCount[h];
    for (let i = 0; i < n; i++) {
      const ref = this.refAt(h, i);
      if (this.hot[ref + REF_POS] === pos) {
        for (let j = 0; j <= i; j++) this.materialize(h, this.refAt(h, j));
        this.dropRefs(h, i + 1);
        return;
      }
    }
  }

  /** Drops the `k` oldest references of half h. */
  private dropRefs(h: number, k: number): void {
    const first = this.deferFirst[h] + k;
    this.deferFirst[h] = first < DEFER_REFS ? first : first - DEFER_REFS;
    const n = this.deferCount[h] - k;
    this.deferCount[h] = n;
    this.oldestRef[h] = n === 0 ? Infinity : this.hot[this.refAt(h, 0) + REF_POS];
  }

  /** Copies the still-retained part of a referenced delivery into half h's ring. */
  private materialize(h: number, ref: number): void {
    const size = this.retainSize;
    const hot = this.hot;
    const nextRel = hot[h * HOT_STRIDE + H_NEXT_REL];
    const rel = hot[ref + REF_REL];
    const from = Math.max(rel, nextRel - size);
    const to = Math.min(rel + hot[ref + REF_LEN], nextRel);
    if (to <= from) return;
    let r = this.rings[h];
    if (r === undefined) r = this.rings[h] = this.budget.takeRing(size);
    const src = this.source!;
    const off = (hot[ref + REF_POS] % POS_PASS) + (from - rel);
    const at = from % size;
    const first = Math.min(to - from, size - at);
    r.set(src.subarray(off, off + first), at);
    if (first < to - from) r.set(src.subarray(off + first, off + (to - from)), 0);
  }

  /**
   * Retains a delivery of source bytes `[off, off+n)` at the next relative offset by reference:
   * references now wholly older than the retained window are dropped, and the oldest is copied
   * if the half already holds DEFER_REFS.
   */
  private deferRetain(h: number, off: number, n: number): void {
    const size = this.retainSize;
    const hot = this.hot;
    const o = h * HOT_STRIDE;
    const rel = hot[o + H_NEXT_REL];
    const floor = rel + n - size;
    let k = this.deferCount[h];
    let stale = 0;
    while (stale < k) {
      const ref = this.refAt(h, stale);
      if (hot[ref + REF_REL] + hot[ref + REF_LEN] > floor) break;
      stale++;
    }
    if (stale > 0) {
      this.dropRefs(h, stale);
      k -= stale;
    }
    if (k === DEFER_REFS) {
      this.materialize(h, this.refAt(h, 0));
      this.dropRefs(h, 1);
      k--;
    }
    const pos = this.pass * POS_PASS + off;
    const ref = this.refAt(h, k);
    hot[ref + REF_REL] = rel;
    hot[ref + REF_POS] = pos;
    hot[ref + REF_LEN] = n;
    this.deferCount[h] = k + 1;
    if (k === 0) this.oldestRef[h] = pos;
    this.queuePending(h, pos);
    const kept = hot[o + H_RETAIN_LEN] + n;
    hot[o + H_RETAIN_LEN] = kept < size ? kept : size;
  }

  private queuePending(h: number, pos: number): void {
    let q = this.pending;
    let cap = q.length / PENDING_FIELDS;
    if (this.pendingSize === cap) {
      // Full: double, unrolling the circle so that the oldest entry comes first.
      const bigger = new Float64Array(q.length * 2);
      const head = this.pendingHead * PENDING_FIELDS;
      bigger.set(q.subarray(head));
      bigger.set(q.subarray(0, head), q.length - head);
      this.pending = q = bigger;
      this.pendingHead = 0;
      cap *= 2;
    }
    const at = ((this.pendingHead + this.pendingSize) & (cap - 1)) * PENDING_FIELDS;
    q[at] = h;
    q[at + 1] = pos;
    this.pendingSize++;
  }

  private fillAckedHoles(h: number, tsUs: number): void {
    const o = h * HOT_STRIDE;
    const hot = this.hot;
    const q = this.ooo[h]!;
    while (q.length > 0 && q[0].start < hot[o + H_ACKED_REL]) {
      if (q[0].start > hot[o + H_NEXT_REL]) this.skipTo(h, q[0].start, tsUs);
      this.drain(h, tsUs);
    }
    this.cold[h * COLD_STRIDE + C_HOLE_ACKED_AT_US] = q.length > 0 && hot[o + H_ACKED_REL] > hot[o + H_NEXT_REL] ? tsUs : -1;
  }

  /** Hands `buf[off..off+n)` to the output (as a view valid during the call) and keeps a copy of its tail. */
  private deliver(h: number, buf: Uint8Array, off: number, n: number, tsUs: number): void {
    const bytes = viewOf(buf, off, n);
    const hot = this.hot;
    const o = h * HOT_STRIDE;
    const size = this.retainSize;
    if (size !== 0) {
      if (buf === this.source) this.deferRetain(h, off, n);
      else this.copyToRing(h, bytes);
      let pos = hot[o + H_RING_POS] + n;
      if (pos >= size) pos = n < size ? pos - size : pos % size;
      hot[o + H_RING_POS] = pos;
    }
    hot[o + H_NEXT_REL] += n;
    hot[o + H_NEXT_SEQ] = (hot[o + H_NEXT_SEQ] + n) >>> 0;
    hot[o + H_DELIVERED] += n;
    this.counterValues[C_BYTES] += n;
    this.out.halfData(h, bytes, tsUs);
  }

  private skipTo(h: number, rel: number, tsUs: number): void {
    const hot = this.hot;
    const o = h * HOT_STRIDE;
    const n = rel - hot[o + H_NEXT_REL];
    if (n <= 0) return;
    hot[o + H_NEXT_REL] = rel;
    hot[o + H_NEXT_SEQ] = (hot[o + H_NEXT_SEQ] + n) >>> 0;
    if (this.retainSize !== 0) hot[o + H_RING_POS] = rel % this.retainSize;
    const c = h * COLD_STRIDE;
    this.cold[c + C_GAP_BYTES_FIELD] += n;
    this.cold[c + C_GAPS]++;
    hot[o + H_RETAIN_LEN] = 0; // the retained tail no longer ends at nextRel
    this.deferCount[h] = 0;
    this.oldestRef[h] = Infinity;
    this.counters.inc(C_GAP);
    this.counters.inc(C_GAP_BYTES, n);
    this.out.halfGap(h, n, tsUs);
  }

  /**
   * Delivers held segments that now start at (or before) the next expected byte. Each segment
   * leaves the queue before it is delivered, so the accounting stays exact if the output throws.
   */
  private drain(h: number, tsUs: number): void {
    const q = this.ooo[h]!;
    const hot = this.hot;
    const o = h * HOT_STRIDE;
    while (q.length > 0 && q[0].start <= hot[o + H_NEXT_REL]) {
      const s = q.shift()!;
      const len = s.data.length;
      hot[o + H_OOO_BYTES] -= len;
      this.budget.held -= len;
      if (q.length === 0) this.cold[h * COLD_STRIDE + C_HOLE_ACKED_AT_US] = -1;
      const nextRel = hot[o + H_NEXT_REL];
      if (s.start + len <= nextRel) continue; // fully covered by what was delivered (insert kept it disjoint)
      const from = nextRel - s.start;
      this.deliver(h, s.data, from, len - from, tsUs);
    }
  }

  /**
   * First-wins insert of [start, end): only the parts not already held are copied in; where the
   * new bytes overlap held ones, they are compared and a difference is an evasion signal.
   */
  private insert(h: number, start: number, end: number, buf: Uint8Array, off: number): void {
    let q = this.ooo[h];
    if (q === undefined) q = this.ooo[h] = [];
    // Find the first held segment that ends after `start`.
    let lo = 0;
    let hi = q.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (q[mid].start + q[mid].data.length <= start) lo = mid + 1;
      else hi = mid;
    }
    let cursor = start;
    const pieces: Segment[] = [];
    for (let i = lo; i < q.length && cursor < end; i++) {
      const s = q[i];
      const sEnd = s.start + s.data.length;
      if (s.start >= end) break;
      if (s.start > cursor) pieces.push({ start: cursor, data: buf.slice(off + cursor - start, off + s.start - start) });
      const os = Math.max(s.start, cursor);
      const oe = Math.min(sEnd, end);
      if (oe > os) this.compare(h, s.data, os - s.start, buf, off + os - start, oe - os);
      if (sEnd > cursor) cursor = sEnd;
    }
    if (cursor < end) pieces.push({ start: cursor, data: buf.slice(off + cursor - start, off + end - start) });
    if (pieces.length === 0) return;
    let added = 0;
    for (const p of pieces) added += p.data.length;
    this.hot[h * HOT_STRIDE + H_OOO_BYTES] += added;
    this.budget.held += added;
    // Pieces are sorted and fall between held segments from index `lo` on.
    let at = lo;
    for (const p of pieces) {
      while (at < q.length && q[at].start < p.start) at++;
      q.splice(at, 0, p);
      at++;
    }
  }

  private compare(h: number, held: Uint8Array, heldOff: number, buf: Uint8Array, off: number, len: number): void {
    const c = h * COLD_STRIDE;
    this.cold[c + C_OVERLAPS]++;
    this.counters.inc(C_OVERLAP);
    for (let k = 0; k < len; k++) {
      if (held[heldOff + k] !== buf[off + k]) {
        this.cold[c + C_MISMATCHES]++;
        this.counters.inc(A_OVERLAP_MISMATCH);
        return;
      }
    }
  }

  /** A retransmission of delivered bytes [start, start+len): compare with the retained tail. */
  private verifyDelivered(h: number, start: number, buf: Uint8Array, off: number, len: number): void {
    let checked = false;
    const o = h * HOT_STRIDE;
    const retainLen = this.hot[o + H_RETAIN_LEN];
    if (retainLen > 0) {
      const nextRel = this.hot[o + H_NEXT_REL];
      const s = Math.max(start, nextRel - retainLen);
      const e = Math.min(start + len, nextRel);
      if (e > s) {
        checked = true;
        const c = h * COLD_STRIDE;
        this.cold[c + C_OVERLAPS]++;
        this.counters.inc(C_OVERLAP);
        if (!this.retainedMatches(h, s, e, buf, off + s - start)) {
          this.cold[c + C_MISMATCHES]++;
          this.counters.inc(A_OVERLAP_MISMATCH);
        }
      }
    }
    if (!checked) this.counters.inc(C_UNVERIFIED);
  }

  /** Whether the retained bytes at relative offsets [from, to) equal `buf[at..)`: referenced source bytes where a reference covers them, the ring elsewhere. */
  private retainedMatches(h: number, from: number, to: number, buf: Uint8Array, at: number): boolean {
    const n = this.deferCount[h];
    const defer = this.hot;
    let x = from;
    for (let i = 0; i < n && x < to; i++) {
      const ref = this.refAt(h, i);
      const rel = defer[ref + REF_REL];
      const end = rel + defer[ref + REF_LEN];
      if (end <= x) continue;
      if (rel >= to) break;
      if (rel > x) {
        if (!this.ringMatches(this.rings[h]!, x, rel, buf, at + (x - from))) return false;
        x = rel;
      }
      const stop = Math.min(end, to);
      const src = this.source!;
      const so = (defer[ref + REF_POS] % POS_PASS) + (x - rel);
      const bo = at + (x - from);
      for (let k = 0; k < stop - x; k++) if (src[so + k] !== buf[bo + k]) return false;
      x = stop;
    }
    return x >= to || this.ringMatches(this.rings[h]!, x, to, buf, at + (x - from));
  }

  /** Whether the retained bytes at relative offsets [from, to) equal `buf[at..)`: two straight runs, no per-byte modulo. */
  private ringMatches(r: Uint8Array, from: number, to: number, buf: Uint8Array, at: number): boolean {
    const size = this.retainSize;
    let pos = from % size;
    for (let left = to - from; left > 0; ) {
      const run = Math.min(left, size - pos);
      for (let k = 0; k < run; k++) if (r[pos + k] !== buf[at + k]) return false;
      at += run;
      left -= run;
      pos = 0;
    }
    return true;
  }

  /**
   * Copies delivered bytes (about to be placed at the next relative offset x) into the ring, where
   * the byte at relative offset x lives at x % size: one copy into the ring and its spill room,
   * then the part past the end moves to the front.
   */
  private copyToRing(h: number, bytes: Uint8Array): void {
    const size = this.retainSize;
    let r = this.rings[h];
    if (r === undefined) r = this.rings[h] = this.budget.takeRing(size);
    const n = bytes.length;
    const o = h * HOT_STRIDE;
    const pos = this.hot[o + H_RING_POS];
    if (n < size) {
      typedArraySet.call(r, bytes, pos);
      if (pos + n > size) typedArrayCopyWithin.call(r, 0, size, pos + n);
    } else {
      // Only the last `size` bytes can still be needed; they start at (x + n - size) % size.
      const at = (pos + n - size) % size;
      typedArraySet.call(r, n === size ? bytes : bytes.subarray(n - size), at);
      if (at > 0) typedArrayCopyWithin.call(r, 0, size, size + at);
    }
    const kept = this.hot[o + H_RETAIN_LEN] + n;
    this.hot[o + H_RETAIN_LEN] = kept < size ? kept : size;
  }

  private enforceLimits(h: number, tsUs: number): void {
    const l = this.limits;
    const q = this.ooo[h]!;
    const o = h * HOT_STRIDE;
    while (q.length > 0 && (this.hot[o + H_OOO_BYTES] > l.maxOooBytesPerStream || q.length > l.maxOooSegmentsPerStream || this.budget.held > this.budget.maxBytes)) {
      this.counters.inc(this.budget.held > this.budget.maxBytes ? C_MEMCAP : C_STREAM_DEPTH);
      this.skipTo(h, q[0].start, tsUs);
      this.drain(h, tsUs);
    }
  }
}

/** A `HalfOutput` for a store of one half: forwards to a `HalfSink`. */
class SinkOutput implements HalfOutput {
  constructor(private readonly sink: HalfSink) {}
  halfData(_h: number, bytes: Uint8Array, tsUs: number): void {
    this.sink.data(bytes, tsUs);
  }
  halfGap(_h: number, len: number, tsUs: number): void {
    this.sink.gap(len, tsUs);
  }
}

/** TCP reassembly for one direction of one connection, output through a `HalfSink`. */
export class TcpHalf {
  private readonly store: HalfStore;

  constructor(sink: HalfSink, counters: Counters, budget: ReassemblyBudget, limits: ReassemblyLimits = DEFAULT_REASSEMBLY_LIMITS) {
    this.store = new HalfStore(new SinkOutput(sink), counters, budget, limits, 1);
  }

  /** True once the stream's starting sequence number is known (SYN, SYN-ACK's ack, or first data). */
  get started(): boolean {
    return this.store.started(0);
  }
  /** True when the start came from a SYN (not midstream pickup). */
  get fromSyn(): boolean {
    return this.store.fromSyn(0);
  }
  /** Next expected sequence number (32-bit) and its relative offset (bytes delivered + gaps). */
  get nextSeq(): number {
    return this.store.nextSeq(0);
  }
  get nextRel(): number {
    return this.store.nextRel(0);
  }
  get isn(): number {
    return this.store.isn(0);
  }
  /** Bytes delivered and lost. */
  get delivered(): number {
    return this.store.delivered(0);
  }
  get gapBytes(): number {
    return this.store.gapBytes(0);
  }
  get gaps(): number {
    return this.store.gaps(0);
  }
  get overlaps(): number {
    return this.store.overlaps(0);
  }
  get mismatches(): number {
    return this.store.mismatches(0);
  }
  /** Relative offset of the FIN, or -1. */
  get finRel(): number {
    return this.store.finRel(0);
  }
  /** Relative offset the peer has acknowledged (max), and when it first passed a hole (-1 if none). */
  get ackedRel(): number {
    return this.store.ackedRel(0);
  }
  get holeAckedAtUs(): number {
    return this.store.holeAckedAtUs(0);
  }
  get oooHeld(): number {
    return this.store.oooHeld(0);
  }
  /** Bytes this half holds (out-of-order data + retained tail). */
  get memory(): number {
    return this.store.memory(0);
  }
  /** True when every byte up to the FIN has been delivered. */
  get finished(): boolean {
    return this.store.finished(0);
  }

  /** Back to the state of a new stream. */
  reset(): void {
    this.store.reset(0);
  }
  /** SYN seen with this sequence number: the stream starts at isn + 1. */
  startFromSyn(isn: number): void {
    this.store.startFromSyn(0, isn);
  }
  /** Midstream pickup: the stream starts at this sequence number. */
  startAt(seq: number): void {
    this.store.startAt(0, seq);
  }
  /** Relative offset of a sequence number (valid within +-2 GiB of the next expected byte). */
  rel(seq: number): number {
    return this.store.rel(0, seq);
  }
  /** One segment's payload `buf[off..off+len)` at sequence `seq`. */
  segment(seq: number, buf: Uint8Array, off: number, len: number, tsUs: number): void {
    this.store.segment(0, seq, buf, off, len, tsUs);
  }
  /** The peer acknowledged up to `ack`: a hole below it was lost by the capture, not the network. */
  acked(ack: number, tsUs: number): void {
    this.store.acked(0, ack, tsUs);
  }
  /** FIN at this sequence number (after the segment's payload). */
  fin(seq: number): void {
    this.store.fin(0, seq);
  }
  /** End of the stream: deliver whatever is held, with gaps for the holes. */
  flush(tsUs: number): void {
    this.store.flush(0, tsUs);
  }
  /** The stream is over (FIN delivered): the retention ring goes back to the pool. */
  releaseRetained(): void {
    this.store.releaseRetained(0);
  }
}

/**
 * TCP reassembly for one direction of one connection. Input: segments (sequence number + payload
 * view) in capture order, plus the peer's ACKs. Output, through `HalfSink`, in stream order: `data`
 * for in-order bytes (zero-copy view when a segment arrives in order) and `gap` for bytes that will
 * never be seen. Guarantees: sequence numbers wrap (modular 32-bit compare, 53-bit relative offsets);
 * overlaps resolve first-received-wins (Suricata "bsd", Wireshark) and raise
 * `stream.tcp.overlap_mismatch` when the bytes differ; out-of-order bytes are bounded per stream and
 * globally, and a limit that bites turns the oldest hole into a counted gap rather than growing.
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

/** Retention rings kept for reuse: enough for the concurrent streams of a busy link. */
const MAX_POOLED_RINGS = 8192;

/**
 * Shared by every stream of one pipeline: the out-of-order byte budget, and a pool of retention
 * rings so that short flows do not turn into garbage-collector work.
 */
export class ReassemblyBudget {
  held = 0;
  private readonly rings: Uint8Array[] = [];
  constructor(readonly maxBytes: number) {}

  takeRing(size: number): Uint8Array {
    const r = this.rings.pop();
    return r !== undefined && r.length === size ? r : new Uint8Array(size);
  }

  giveRing(r: Uint8Array): void {
    if (this.rings.length < MAX_POOLED_RINGS) this.rings.push(r);
  }
}

export interface HalfSink {
  data(bytes: Uint8Array, tsUs: number): void;
  gap(len: number, tsUs: number): void;
}

interface Segment {
  start: number; // relative stream offset
  data: Uint8Array;
}

export class TcpHalf {
  /** True once the stream's starting sequence number is known (SYN, SYN-ACK's ack, or first data). */
  started = false;
  /** True when the start came from a SYN (not midstream pickup). */
  fromSyn = false;
  /** Next expected sequence number (32-bit) and its relative offset (bytes delivered + gaps). */
  nextSeq = 0;
  nextRel = 0;
  isn = 0;
  /** Bytes delivered and lost. */
  delivered = 0;
  gapBytes = 0;
  gaps = 0;
  overlaps = 0;
  mismatches = 0;
  /** Relative offset of the FIN, or -1. */
  finRel = -1;
  /** Relative offset the peer has acknowledged (max), and when it first passed a hole. */
  ackedRel = 0;
  holeAckedAtUs = -1;

  private ooo: Segment[] = [];
  private oooBytes = 0;
  /**
   * The last `retainBytes` delivered bytes, copied into a ring (the byte at relative offset r
   * lives at r % length) to check that retransmissions carry the same data. Sources reuse their
   * buffers, so a copy is the only way to keep them; it is cheap while the read buffer is small
   * enough not to evict the flow state from the caches (see CHUNK_BYTES in the file reader).
   */
  private retain: Uint8Array | undefined;
  private retainLen = 0; // valid bytes, ending at nextRel

  constructor(
    private readonly sink: HalfSink,
    private readonly counters: Counters,
    private readonly budget: ReassemblyBudget,
    private readonly limits: ReassemblyLimits = DEFAULT_REASSEMBLY_LIMITS,
  ) {}

  /** Back to the state of a new stream, for reuse from the flow table's pool. */
  reset(): void {
    this.releaseRetain();
    for (const seg of this.ooo) this.budget.held -= seg.data.length;
    this.ooo.length = 0;
    this.oooBytes = 0;
    this.started = false;
    this.fromSyn = false;
    this.nextSeq = 0;
    this.nextRel = 0;
    this.isn = 0;
    this.delivered = 0;
    this.gapBytes = 0;
    this.gaps = 0;
    this.overlaps = 0;
    this.mismatches = 0;
    this.finRel = -1;
    this.ackedRel = 0;
    this.holeAckedAtUs = -1;
  }

  /** SYN seen with this sequence number: the stream starts at isn + 1. */
  startFromSyn(isn: number): void {
    if (this.started && this.delivered + this.gapBytes > 0) return;
    this.isn = isn >>> 0;
    this.nextSeq = (isn + 1) >>> 0;
    this.started = true;
    this.fromSyn = true;
  }

  /** Midstream pickup: the stream starts at this sequence number. */
  startAt(seq: number): void {
    if (this.started) return;
    this.isn = (seq - 1) >>> 0;
    this.nextSeq = seq >>> 0;
    this.started = true;
  }

  /** Relative offset of a sequence number (valid within +-2 GiB of the next expected byte). */
  rel(seq: number): number {
    return this.nextRel + ((seq - this.nextSeq) | 0);
  }

  get oooHeld(): number {
    return this.oooBytes;
  }

  /** One segment's payload `buf[off..off+len)` at sequence `seq`. */
  segment(seq: number, buf: Uint8Array, off: number, len: number, tsUs: number): void {
    if (!this.started) this.startAt(seq);
    let start = this.rel(seq);
    let end = start + len;
    if (start < 0 && this.delivered + this.gapBytes === 0 && !this.fromSyn) {
      // Midstream pickup began at a later segment; earlier bytes now arriving cannot be placed.
      this.counters.inc(A_PRE_START);
    }
    if (end <= this.nextRel) {
      this.counters.inc(C_RETRANSMISSION);
      this.verifyDelivered(start, buf, off, len);
      return;
    }
    if (start < this.nextRel) {
      this.counters.inc(C_RETRANSMISSION);
      const cut = this.nextRel - start;
      this.verifyDelivered(start, buf, off, cut);
      off += cut;
      len -= cut;
      start = this.nextRel;
    }
    if (this.ooo.length === 0 && start === this.nextRel) {
      this.deliver(buf, off, len, tsUs);
      return;
    }
    this.counters.inc(C_OOO);
    this.insert(start, end, buf, off);
    this.drain(tsUs);
    this.enforceLimits(tsUs);
  }

  /** The peer acknowledged up to `ack`: a hole below it was lost by the capture, not the network. */
  acked(ack: number, tsUs: number): void {
    if (!this.started) return;
    const r = this.rel(ack);
    if (r > this.ackedRel) this.ackedRel = r;
    if (this.ooo.length > 0 && this.ackedRel > this.nextRel) {
      if (this.holeAckedAtUs < 0) this.holeAckedAtUs = tsUs;
      else if (tsUs - this.holeAckedAtUs >= this.limits.ackedHoleGraceUs) this.fillAckedHoles(tsUs);
    }
  }

  /** FIN at this sequence number (after the segment's payload). */
  fin(seq: number): void {
    if (!this.started) this.startAt(seq);
    const r = this.rel(seq);
    if (this.finRel < 0 || r < this.finRel) this.finRel = r;
  }

  /** True when every byte up to the FIN has been delivered. */
  get finished(): boolean {
    return this.finRel >= 0 && this.nextRel >= this.finRel;
  }

  /** End of the stream: deliver whatever is held, with gaps for the holes. */
  flush(tsUs: number): void {
    while (this.ooo.length > 0) {
      const first = this.ooo[0];
      if (first.start > this.nextRel) this.skipTo(first.start, tsUs);
      this.drain(tsUs);
    }
    this.releaseRetain();
  }

  private fillAckedHoles(tsUs: number): void {
    while (this.ooo.length > 0 && this.ooo[0].start < this.ackedRel) {
      if (this.ooo[0].start > this.nextRel) this.skipTo(this.ooo[0].start, tsUs);
      this.drain(tsUs);
    }
    this.holeAckedAtUs = this.ooo.length > 0 && this.ackedRel > this.nextRel ? tsUs : -1;
  }

  /** Hands `buf[off..off+n)` to the sink (as a view valid during the call) and keeps a copy of its tail. */
  private deliver(buf: Uint8Array, off: number, n: number, tsUs: number): void {
    const bytes = buf.subarray(off, off + n);
    this.keep(bytes);
    this.nextRel += n;
    this.nextSeq = (this.nextSeq + n) >>> 0;
    this.delivered += n;
    this.counters.inc(C_BYTES, n);
    this.sink.data(bytes, tsUs);
  }

  private skipTo(rel: number, tsUs: number): void {
    const n = rel - this.nextRel;
    if (n <= 0) return;
    this.nextRel = rel;
    this.nextSeq = (this.nextSeq + n) >>> 0;
    this.gapBytes += n;
    this.gaps++;
    this.retainLen = 0; // the retained tail no longer ends at nextRel
    this.counters.inc(C_GAP);
    this.counters.inc(C_GAP_BYTES, n);
    this.sink.gap(n, tsUs);
  }

  /** Delivers held segments that now start at (or before) the next expected byte. */
  private drain(tsUs: number): void {
    const q = this.ooo;
    let i = 0;
    while (i < q.length && q[i].start <= this.nextRel) {
      const s = q[i++];
      const end = s.start + s.data.length;
      this.oooBytes -= s.data.length;
      this.budget.held -= s.data.length;
      if (end <= this.nextRel) continue; // fully covered by what was delivered (insert kept it disjoint)
      const from = this.nextRel - s.start;
      this.deliver(s.data, from, s.data.length - from, tsUs);
    }
    if (i > 0) q.splice(0, i);
    if (q.length === 0) this.holeAckedAtUs = -1;
  }

  /**
   * First-wins insert of [start, end): only the parts not already held are copied in; where the
   * new bytes overlap held ones, they are compared and a difference is an evasion signal.
   */
  private insert(start: number, end: number, buf: Uint8Array, off: number): void {
    const q = this.ooo;
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
    let i = lo;
    for (; i < q.length && cursor < end; i++) {
      const s = q[i];
      const sEnd = s.start + s.data.length;
      if (s.start >= end) break;
      if (s.start > cursor) pieces.push({ start: cursor, data: buf.slice(off + cursor - start, off + s.start - start) });
      const os = Math.max(s.start, cursor);
      const oe = Math.min(sEnd, end);
      if (oe > os) this.compare(s.data, os - s.start, buf, off + os - start, oe - os);
      if (sEnd > cursor) cursor = sEnd;
    }
    if (cursor < end) pieces.push({ start: cursor, data: buf.slice(off + cursor - start, off + end - start) });
    if (pieces.length === 0) return;
    let added = 0;
    for (const p of pieces) added += p.data.length;
    this.oooBytes += added;
    this.budget.held += added;
    // Pieces are sorted and fall between held segments from index `lo` on.
    let at = lo;
    for (const p of pieces) {
      while (at < q.length && q[at].start < p.start) at++;
      q.splice(at, 0, p);
      at++;
    }
  }

  private compare(held: Uint8Array, heldOff: number, buf: Uint8Array, off: number, len: number): void {
    this.overlaps++;
    this.counters.inc(C_OVERLAP);
    for (let k = 0; k < len; k++) {
      if (held[heldOff + k] !== buf[off + k]) {
        this.mismatches++;
        this.counters.inc(A_OVERLAP_MISMATCH);
        return;
      }
    }
  }

  /** A retransmission of delivered bytes [start, start+len): compare with the retained tail. */
  private verifyDelivered(start: number, buf: Uint8Array, off: number, len: number): void {
    let checked = false;
    const r = this.retain;
    if (r !== undefined && this.retainLen > 0) {
      const s = Math.max(start, this.nextRel - this.retainLen);
      const e = Math.min(start + len, this.nextRel);
      if (e > s) {
        checked = true;
        this.overlaps++;
        this.counters.inc(C_OVERLAP);
        const size = r.length;
        for (let i = s; i < e; i++) {
          if (r[i % size] !== buf[off + i - start]) {
            this.mismatches++;
            this.counters.inc(A_OVERLAP_MISMATCH);
            break;
          }
        }
      }
    }
    if (!checked) this.counters.inc(C_UNVERIFIED);
  }

  private keep(bytes: Uint8Array): void {
    if (this.limits.retainBytes !== 0) this.copyToRing(bytes);
  }

  /** Copies delivered bytes (about to be placed at nextRel) into the ring: at most two copies, no shifting. */
  private copyToRing(bytes: Uint8Array): void {
    const size = this.limits.retainBytes;
    let r = this.retain;
    if (r === undefined) r = this.retain = this.budget.takeRing(size);
    let n = bytes.length;
    let from = 0;
    let at = this.nextRel;
    if (n > size) {
      from = n - size;
      at += from;
      n = size;
    }
    const pos = at % size;
    const first = Math.min(n, size - pos);
    r.set(first === bytes.length ? bytes : bytes.subarray(from, from + first), pos);
    if (first < n) r.set(bytes.subarray(from + first, from + n), 0);
    this.retainLen = Math.min(size, this.retainLen + bytes.length);
  }

  /** The stream is over (FIN delivered): the retention ring goes back to the pool. */
  releaseRetained(): void {
    this.releaseRetain();
  }

  private releaseRetain(): void {
    if (this.retain !== undefined) this.budget.giveRing(this.retain);
    this.retain = undefined;
    this.retainLen = 0;
  }

  private enforceLimits(tsUs: number): void {
    const l = this.limits;
    while (this.ooo.length > 0 && (this.oooBytes > l.maxOooBytesPerStream || this.ooo.length > l.maxOooSegmentsPerStream || this.budget.held > this.budget.maxBytes)) {
      this.counters.inc(this.budget.held > this.budget.maxBytes ? C_MEMCAP : C_STREAM_DEPTH);
      this.skipTo(this.ooo[0].start, tsUs);
      this.drain(tsUs);
    }
  }

  /** Bytes this half holds (out-of-order data + retained tail), for the flow memcap. */
  get memory(): number {
    return this.oooBytes + (this.retain === undefined ? 0 : this.retain.length);
  }
}

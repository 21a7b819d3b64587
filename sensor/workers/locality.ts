/**
 * Between a packet source and the pipeline: connection-grouped batches. Input: frames in capture
 * order (`add`, the PacketHandler shape), each still in place in its source's memory until
 * `flush`. Output: the same frames to the packet handler, regrouped so that a TCP connection's
 * frames of the batch follow each other (each connection's own frames in their order, every
 * other frame where it was): every frame is handed over at the position of its connection's
 * first frame in the batch.
 *
 * Why: a mirror port interleaves hundreds of connections, so consecutive packets touch different
 * flows' reassembly, HTTP parser, decompressor window (32 KiB each), normaliser and matcher
 * stream; with a thousand connections that state no longer fits the CPU caches and every packet
 * starts with misses. Grouped, a connection's state is loaded once per batch. Measured on the
 * benchmark workload (README, "Benchmarks"): the full pipeline takes ~9% less CPU (median of 12
 * alternating pairs of `node dist/bench/pipeline.js ... --locality 0|32768`); bare reassembly
 * gets slower (its frames are read out of order, for little per-connection state), and workers on
 * a 2-core VM live showed no gain, so Sensor groups capture files and workers only when asked.
 *
 * What reordering changes, and why it is safe: only frames of different connections change order,
 * and never across more than MAX_BATCH_SPAN_US of capture time (a batch ends before a frame that
 * is later than that, or earlier than the batch's first). Per-flow work (reassembly, HTTP, TLS,
 * matching) sees exactly the frames it saw before, in the same order. Flow expiry is held while a
 * batch is handed over (`BatchBounds`), so a frame moved later never finds its flow timed out by
 * a frame moved earlier; reassembly's queue of bytes kept by reference in the source is put back
 * in source order after each batch; and a source that wraps (`overwrite` from a lower offset than
 * before) hands the batch over first, so positions are never mixed across passes. Other timers
 * (fragments, DNS transactions, capture merge windows) run on the latest time seen and are tens
 * of seconds long: the span bound keeps them exact to within that span.
 * Not grouped (kept in place): UDP (DNS, DHCP, RADIUS: identity signals), IP fragments, non-IP,
 * and TCP in tunnels that `FlowHasher` cannot see into.
 */
import type { PacketHandler } from '../capture/file-reader.js';
import { FlowHasher, HASH_PORTS } from './dispatch.js';

/** Frames per batch by default (the 2 s span usually ends a batch first: ~20,000 frames of the benchmark workload). */
export const DEFAULT_LOCALITY_FRAMES = 32768;
/**
 * Capture time one batch may span: well below the timers it could shift (fragments 60 s, DNS
 * transactions 30 s, capture merges 60 s; flow expiry is held instead).
 */
export const MAX_BATCH_SPAN_US = 2_000_000;

/** What the flow table the frames go to is told around each batch (FlowTable implements it). */
export interface BatchBounds {
  /** Out-of-order hand-over begins: hold expiry. */
  batchStart(): void;
  /** It ended: restore source order where needed, run expiry that became due. */
  batchEnd(): void;
}

export class LocalityBatcher {
  private readonly hasher = new FlowHasher('flows');
  private n = 0;
  private readonly bufs: Uint8Array[] = [];
  private readonly link: Uint16Array;
  private readonly ifIndex: Uint16Array;
  private readonly off: Float64Array;
  private readonly capLen: Uint32Array;
  private readonly origLen: Float64Array;
  private readonly ts: Float64Array;
  /** Next frame of the same connection in this batch, or -1. */
  private readonly next: Int32Array;
  /** 1 when the frame is handed over at its own position (first of its connection, or not grouped). */
  private readonly lead: Uint8Array;
  // open-addressing table: connection hash -> last frame of that connection in this batch
  private readonly keys: Uint32Array;
  private readonly tails: Int32Array;
  private readonly stamp: Uint32Array;
  private generation = 1;
  private readonly mask: number;
  private firstTs = 0;
  /** The range of `rangeBuf` (the first frame's buffer) the batch's frames occupy, for `overwrite`. */
  private rangeBuf: Uint8Array | undefined;
  private rangeLo = 0;
  private rangeHi = 0;
  /** Some frame is in another buffer: any overwrite hands the batch over. */
  private mixed = false;
  /** Where the source last said it would write. */
  private lastOverwrite = 0;
  private flushing = false;

  constructor(
    private readonly handler: PacketHandler,
    private readonly bounds: BatchBounds | undefined,
    readonly maxFrames = DEFAULT_LOCALITY_FRAMES,
  ) {
    if (!Number.isInteger(maxFrames) || maxFrames < 1) throw new RangeError(`locality batch must be a positive number of frames, not ${maxFrames}`);
    this.link = new Uint16Array(maxFrames);
    this.ifIndex = new Uint16Array(maxFrames);
    this.off = new Float64Array(maxFrames);
    this.capLen = new Uint32Array(maxFrames);
    this.origLen = new Float64Array(maxFrames);
    this.ts = new Float64Array(maxFrames);
    this.next = new Int32Array(maxFrames);
    this.lead = new Uint8Array(maxFrames);
    let size = 16;
    while (size < maxFrames * 2) size <<= 1;
    this.keys = new Uint32Array(size);
    this.tails = new Int32Array(size);
    this.stamp = new Uint32Array(size);
    this.mask = size - 1;
  }

  /** Frames waiting for `flush`. */
  get pending(): number {
    return this.n;
  }

  /** One frame, left in place in `buf` until `flush` (the caller keeps it there until then). */
  readonly add = (linkType: number, buf: Uint8Array, off: number, capLen: number, origLen: number, tsUs: number, ifIndex: number): void => {
    let i = this.n;
    if (i !== 0 && (i === this.maxFrames || tsUs < this.firstTs || tsUs - this.firstTs > MAX_BATCH_SPAN_US)) {
      this.flush();
      i = 0;
    }
    if (i === 0) {
      this.firstTs = tsUs;
      this.rangeBuf = buf;
      this.rangeLo = off;
      this.rangeHi = off + capLen;
      this.mixed = false;
    } else if (buf === this.rangeBuf) {
      if (off < this.rangeLo) this.rangeLo = off;
      if (off + capLen > this.rangeHi) this.rangeHi = off + capLen;
    } else {
      this.mixed = true;
    }
    this.bufs[i] = buf;
    this.link[i] = linkType;
    this.ifIndex[i] = ifIndex;
    this.off[i] = off;
    this.capLen[i] = capLen;
    this.origLen[i] = origLen;
    this.ts[i] = tsUs;
    this.next[i] = -1;
    this.n = i + 1;
    const h = this.hasher.hash(linkType, buf, off, capLen);
    if (this.hasher.kind !== HASH_PORTS) {
      this.lead[i] = 1;
      return;
    }
    const keys = this.keys;
    const stamp = this.stamp;
    const gen = this.generation;
    let s = h & this.mask;
    while (stamp[s] === gen && keys[s] !== h) s = (s + 1) & this.mask;
    if (stamp[s] === gen) {
      this.next[this.tails[s]] = i;
      this.lead[i] = 0;
    } else {
      stamp[s] = gen;
      keys[s] = h;
      this.lead[i] = 1;
    }
    this.tails[s] = i;
  };

  /**
   * The source is about to overwrite [from, to) of `buf`: frames there are handed over first.
   * (The file reader's window; a ring consumer flushes before it releases instead.)
   */
  overwrite(buf: Uint8Array, from: number, to: number): void {
    const wrapped = from < this.lastOverwrite;
    this.lastOverwrite = from;
    if (this.n !== 0 && (wrapped || this.mixed || (buf === this.rangeBuf && from < this.rangeHi && to > this.rangeLo))) this.flush();
  }

  /** Hands every pending frame to the handler, grouped; flow expiry is held meanwhile. */
  flush(): void {
    const n = this.n;
    if (n === 0 || this.flushing) return;
    this.flushing = true;
    this.bounds?.batchStart();
    const { handler, bufs, link, off, capLen, origLen, ts, ifIndex, next, lead } = this;
    try {
      for (let i = 0; i < n; i++) {
        if (lead[i] === 0) continue;
        for (let j = i; j >= 0; j = next[j]) handler(link[j], bufs[j], off[j], capLen[j], origLen[j], ts[j], ifIndex[j]);
      }
    } finally {
      this.n = 0;
      this.rangeBuf = undefined;
      this.bufs.fill(undefined as unknown as Uint8Array, 0, n);
      if (++this.generation > 0xffffffff) {
        this.generation = 1;
        this.stamp.fill(0);
      }
      this.flushing = false;
      this.bounds?.batchEnd();
    }
  }
}

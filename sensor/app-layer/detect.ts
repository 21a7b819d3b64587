/**
 * Protocol detection: which app-layer parser gets a TCP flow. Input: the first bytes of each
 * direction. Output: the chosen protocol's `StreamConsumer`, fed everything seen so far (in
 * arrival order; consecutive segments of one direction as one piece, with the first one's
 * timestamp) and then everything after. Each protocol's probe says match / no-match /
 * need-more; bytes are held until one matches or all refuse (bounded: PROBE_MAX_BYTES per
 * direction, MAX_HELD_BYTES and MAX_HELD_RUNS in all, charged to the inspection memory gauge),
 * so a flow is never given to a parser on a guess. A flow no protocol takes is
 * bypassed (see BYPASS), and so is one whose protocol asks for it.
 *
 * A stream picked up midstream (the sensor started, or the capture lost the flow's first packets)
 * or after a hole usually begins inside a message: inside an HTTP response body, say, on a
 * keep-alive connection. Before such a flow is bypassed, the protocols that can (`findStart`,
 * `trackStart`) look for where their next message starts, in up to RESYNC_MAX_BYTES of the flow
 * (so a connection picked up inside a long download costs that much, then is bypassed); the first
 * one found gets the flow from there, told of the bytes before it as a gap (so an HTTP parser
 * resynchronises the other direction itself, and a TLS session, which cannot, has the connection
 * named and bypassed). What is kept of each direction to look at again with its next bytes (the
 * start of its last line, at most PROBE_MAX_BYTES) is charged to the inspection memory gauge too.
 */
import { Counters, defineCounter } from '../events/counters.js';
import { chargeMemory } from '../events/memuse.js';
import { BYPASS, type BypassedBytes, type CloseReason, type Direction, type FlowInfo, type StreamConsumer, type StreamFactory } from '../flow/stream.js';
import { ResyncTail } from './resync-tail.js';
import { StreamHold } from './stream-hold.js';

export type ProbeResult = 'match' | 'no-match' | 'need-more';

export interface AppLayerProtocol {
  readonly name: string;
  probe(dir: Direction, bytes: Uint8Array): ProbeResult;
  /**
   * For a stream picked up inside a message: the offset in `bytes` where a message of this
   * protocol starts, or -1 (lines start after each LF, and at 0 when `atLineStart`).
   */
  findStart?(dir: Direction, bytes: Uint8Array, atLineStart: boolean): number;
  /**
   * For a stream picked up inside a message, where a start is told by what follows it (a chain of
   * TLS records): a tracker shown each direction's bytes in order, answering the offset in the
   * bytes just shown where a message starts, or -1.
   */
  trackStart?(dir: Direction): StartTracker;
  create(flow: FlowInfo): StreamConsumer;
}

export interface StartTracker {
  next(bytes: Uint8Array): number;
}

/** Bytes held per direction while probing; a protocol that needs more is not recognised. */
export const PROBE_MAX_BYTES = 4096;
/** Bytes held in all while waiting (e.g. for the other direction's first bytes) before giving up. */
export const MAX_HELD_BYTES = 4 * PROBE_MAX_BYTES;
/**
 * Runs of held bytes (a direction's consecutive bytes are one run) and gaps before giving up: the
 * directions take turns this often before any probe decides only in a protocol none of them knows.
 * It bounds what the runs cost (HOLD_RUN_OVERHEAD_BYTES each) whatever the segment sizes.
 */
export const MAX_HELD_RUNS = 256;
/** Bytes of a flow passed over looking for a message start before it is refused. */
export const RESYNC_MAX_BYTES = 512 * 1024;

const C_UNKNOWN = defineCounter('app_layer.unknown');
const C_GAP_BEFORE_DETECT = defineCounter('app_layer.gap_before_detection');
/** Flows whose bytes held during detection reached MAX_HELD_BYTES or MAX_HELD_RUNS before a protocol was chosen. */
const C_HOLD_OVERFLOW = defineCounter('app_layer.detection_hold_overflow');
/** Flows picked up inside a message whose protocol was found at a later message start. */
const C_RESYNCED = defineCounter('app_layer.resynced');
/** Where bytes are counted: what the wire carries, or what came out of TLS decryption. */
export type ByteCounting = 'app_layer.bytes' | 'app_layer.decrypted_bytes';
const protocolCounters = new Map<string, number>();
const protocolByteCounters = new Map<string, number>();

function byteCounter(counting: ByteCounting, name: string): number {
  const full = `${counting}.${name}`;
  let id = protocolByteCounters.get(full);
  if (id === undefined) {
    id = defineCounter(full);
    protocolByteCounters.set(full, id);
  }
  return id;
}
// defined now (not at a flow's first bytes), so their ids are the same in every thread
byteCounter('app_layer.bytes', 'unknown');
byteCounter('app_layer.decrypted_bytes', 'unknown');

class ProbingConsumer implements StreamConsumer {
  private chosen: StreamConsumer | undefined;
  private chosenName: string | undefined;
  /** Counter of the bytes given to the chosen protocol (or of unrecognised bytes). */
  private bytesCounter = -1;
  private refused = false;
  /** Returned from data and gap: refused, or the chosen protocol asked for bypass while held bytes were replayed to it. */
  private bypass: true | undefined = undefined;
  /**
   * What came in while probing, in arrival order, charged to the inspection memory gauge. A run of one
   * direction's segments is replayed as one piece, with the first segment's timestamp.
   */
  private readonly held: StreamHold;
  /** Each direction's bytes probed so far: the first ones it held (at most PROBE_MAX_BYTES, none after a gap). */
  private readonly prefixLen: [number, number] = [0, 0];
  private readonly done: [boolean, boolean] = [false, false];
  /** A hole came before detection: the stream after it may begin inside a message. */
  private sawGap = false;
  /** Looking for a message start (a stream picked up inside a message), bytes no longer held. */
  private resyncing = false;
  /** Bytes of each direction passed over for good while resyncing. */
  private readonly passed: [number, number] = [0, 0];
  /**
   * The last bytes of each direction from the start of their last line, looked at again with the next
   * (at most PROBE_MAX_BYTES; a buffer per direction, charged, kept while resyncing and let go after).
   */
  private readonly tail: [ResyncTail, ResyncTail];
  /** The next bytes of the direction may begin a line (its first bytes may: nothing says otherwise). */
  private readonly lineStart: [boolean, boolean] = [true, true];
  /** Each direction's start trackers, by protocol index (protocols with `trackStart`), while resyncing. */
  private readonly trackers: [Array<StartTracker | undefined>, Array<StartTracker | undefined>] = [[], []];

  /** Counter of the bytes no protocol took. */
  private readonly unknownBytes: number;

  constructor(
    private readonly flow: FlowInfo,
    private readonly protocols: readonly AppLayerProtocol[],
    private readonly counters: Counters,
    private readonly counting: ByteCounting,
  ) {
    this.unknownBytes = byteCounter(counting, 'unknown');
    const charge = (bytes: number): void => chargeMemory(counters, bytes);
    this.held = new StreamHold(charge, MAX_HELD_BYTES, MAX_HELD_RUNS);
    this.tail = [new ResyncTail(charge, PROBE_MAX_BYTES), new ResyncTail(charge, PROBE_MAX_BYTES)];
  }

  /** @internal Runs of bytes and gaps held while probing, and what they are charged (for tests). */
  get holding(): { runs: number; bytes: number; memory: number } {
    return { runs: this.held.runCount, bytes: this.held.bytes, memory: this.held.memory };
  }

  /** The protocol chosen for this flow, once one matched. */
  get protocol(): string | undefined {
    return this.chosenName;
  }

  data(dir: Direction, bytes: Uint8Array, tsUs: number): boolean | void {
    if (this.chosen !== undefined) {
      if (!tunnelling(this.chosen)) this.counters.inc(this.bytesCounter, bytes.length);
      return this.chosen.data(dir, bytes, tsUs);
    }
    if (this.refused) {
      this.counters.inc(this.unknownBytes, bytes.length);
      return BYPASS;
    }
    if (this.resyncing) return this.resyncData(dir, bytes, tsUs);
    if (!this.held.data(dir, bytes, tsUs)) {
      this.overflow();
      // now chosen, refused or resyncing: the branches above take these bytes
      return this.data(dir, bytes, tsUs);
    }
    if (this.done[dir]) return;
    // the direction's held bytes begin with its prefix (none of its bytes were held past a gap before
    // it was done): the prefix grows in place, and the probes see a view of it
    this.prefixLen[dir] = Math.min(PROBE_MAX_BYTES, this.prefixLen[dir] + bytes.length);
    this.decide(dir);
    return this.bypass;
  }

  gap(dir: Direction, len: number, tsUs: number): boolean | void {
    if (this.chosen !== undefined) return this.chosen.gap(dir, len, tsUs);
    if (this.refused) return BYPASS;
    if (this.resyncing) return this.resyncGap(dir, len);
    this.sawGap = true;
    this.counters.inc(C_GAP_BEFORE_DETECT);
    if (!this.held.gap(dir, len, tsUs)) {
      this.overflow();
      // now chosen, refused or resyncing: the branches above take the gap
      return this.gap(dir, len, tsUs);
    }
    // Bytes after a hole cannot be probed as a stream start.
    this.done[dir] = true;
    this.giveUpIfBothDone();
    return this.bypass;
  }

  end(reason: CloseReason, tsUs: number, bypassed?: BypassedBytes): void {
    if (bypassed !== undefined && (this.chosen === undefined || !tunnelling(this.chosen))) {
      this.counters.inc(this.chosen !== undefined ? this.bytesCounter : this.unknownBytes, bypassed[0] + bypassed[1]);
    }
    this.chosen?.end(reason, tsUs, bypassed);
    if (this.resyncing) {
      this.resyncing = false;
      this.dropTails();
      this.refuse();
    } else if (this.chosen === undefined && !this.refused && this.held.runCount > 0) this.refuse();
    // whatever happened above (a chosen consumer that failed while its held bytes were replayed to it,
    // a protocol's findStart that threw), nothing stays charged past the flow's end
    this.held.drop();
    this.tail[0].release();
    this.tail[1].release();
  }

  /** The chosen consumer's bytes, counted. */
  private deliver(dir: Direction, bytes: Uint8Array, tsUs: number): boolean | void {
    const chosen = this.chosen!;
    if (!tunnelling(chosen)) this.counters.inc(this.bytesCounter, bytes.length);
    const wants = chosen.data(dir, bytes, tsUs);
    return wants === BYPASS ? BYPASS : this.bypass;
  }

  /** A stream that may begin inside a message, and a protocol that can find where its next one starts. */
  private canResync(): boolean {
    return (this.flow.midstream === true || this.sawGap) && this.protocols.some((p) => p.findStart !== undefined || p.trackStart !== undefined);
  }

  /** The held bytes would pass MAX_HELD_BYTES or MAX_HELD_RUNS: look for a message start, or refuse. */
  private overflow(): void {
    this.counters.inc(C_HOLD_OVERFLOW);
    if (this.canResync()) this.startResync();
    else this.refuse();
  }

  /** From probing to looking for a message start: what was held is looked through in arrival order. */
  private startResync(): void {
    this.resyncing = true;
    for (const h of this.held.take()) {
      if (this.chosen !== undefined) {
        const wants = h.bytes === undefined ? this.chosen.gap(h.dir, h.len, h.ts) : this.deliver(h.dir, h.bytes, h.ts);
        if (wants === BYPASS) this.bypass = BYPASS;
      } else if (this.refused) {
        if (h.bytes !== undefined) this.counters.inc(this.unknownBytes, h.len);
      } else if (h.bytes === undefined) this.resyncGap(h.dir, h.len);
      else this.resyncData(h.dir, h.bytes, h.ts);
    }
  }

  /** Looks for a message start in the next bytes of a direction (and what was kept of the last ones). */
  private resyncData(dir: Direction, bytes: Uint8Array, tsUs: number): boolean | void {
    const tail = this.tail[dir];
    const kept = tail.length;
    // the kept tail and the new bytes as one view; the new bytes are appended in place, not the tail copied
    const buf = tail.join(bytes);
    const atLineStart = kept > 0 || this.lineStart[dir];
    const protocols = this.protocols;
    for (let i = 0; i < protocols.length; i++) {
      const p = protocols[i];
      const k = p.findStart?.(dir, buf, atLineStart) ?? -1;
      if (k >= 0) return this.chooseAt(p, dir, buf, k, tsUs, false);
      if (p.trackStart !== undefined) {
        // a tracker has seen the kept tail already: it is shown the new bytes only
        const at = (this.trackers[dir][i] ??= p.trackStart(dir)).next(bytes);
        if (at >= 0) return this.chooseAt(p, dir, buf, kept + at, tsUs, true);
      }
    }
    // keep the last line's beginning: a start line may be cut in two. The kept tail holds no LF (it
    // begins after the last one), so only the new bytes are searched: not the whole tail per segment.
    const lfNew = bytes.lastIndexOf(10);
    const lf = lfNew >= 0 ? kept + lfNew : -1;
    let keep = lf >= 0 ? buf.length - lf - 1 : atLineStart ? buf.length : 0;
    if (keep > PROBE_MAX_BYTES) keep = 0;
    this.lineStart[dir] = keep === 0 && lf === buf.length - 1;
    tail.keep(buf, keep);
    this.passed[dir] += buf.length - keep;
    this.counters.inc(this.unknownBytes, buf.length - keep);
    return this.giveUpResync();
  }

  private resyncGap(dir: Direction, len: number): boolean | void {
    // a chain of records does not go on across a hole
    this.trackers[dir].length = 0;
    this.passed[dir] += this.tail[dir].length + len;
    this.counters.inc(this.unknownBytes, this.tail[dir].length);
    this.tail[dir].release();
    this.lineStart[dir] = false;
    return this.giveUpResync();
  }

  /** RESYNC_MAX_BYTES passed over without a message start: the flow is refused. */
  private giveUpResync(): boolean | void {
    if (this.passed[0] + this.passed[1] < RESYNC_MAX_BYTES) return undefined;
    this.resyncing = false;
    this.dropTails();
    this.refuse();
    return BYPASS;
  }

  /** Resyncing stops without a message start: the kept tails are counted as unknown and let go. */
  private dropTails(): void {
    this.counters.inc(this.unknownBytes, this.tail[0].length + this.tail[1].length);
    this.tail[0].release();
    this.tail[1].release();
  }

  /**
   * Protocol `p` starts at `buf[k]` in direction `dir`: it gets the flow from there, what came
   * before as gaps. `otherLost`: the other direction is told of a gap even when none of its bytes
   * went by (a tracker found the start in this direction only; the other one's next bytes may
   * begin inside a record all the same).
   */
  private chooseAt(p: AppLayerProtocol, dir: Direction, buf: Uint8Array, k: number, tsUs: number, otherLost: boolean): boolean | void {
    this.resyncing = false;
    this.counters.inc(C_RESYNCED);
    const other = (dir ^ 1) as Direction;
    const before = this.passed[dir] + k;
    const otherBefore = this.passed[other] + this.tail[other].length;
    this.counters.inc(this.unknownBytes, k + this.tail[other].length);
    // `buf` may be this direction's tail buffer: let go, it is never written again, so it can be handed on
    this.tail[0].release();
    this.tail[1].release();
    this.choose(p);
    const c = this.chosen!;
    if (before > 0 && c.gap(dir, before, tsUs) === BYPASS) this.bypass = BYPASS;
    if ((otherBefore > 0 || otherLost) && c.gap(other, otherBefore, tsUs) === BYPASS) this.bypass = BYPASS;
    return this.deliver(dir, buf.subarray(k), tsUs);
  }

  private decide(dir: Direction): void {
    const bytes = this.held.view(dir, this.prefixLen[dir]);
    let waiting = false;
    for (const p of this.protocols) {
      const r = p.probe(dir, bytes);
      if (r === 'match') {
        this.choose(p);
        return;
      }
      if (r === 'need-more') waiting = true;
    }
    if (!waiting || bytes.length >= PROBE_MAX_BYTES) {
      this.done[dir] = true;
      this.giveUpIfBothDone();
    }
  }

  private giveUpIfBothDone(): void {
    if (!this.done[0] || !this.done[1]) return;
    if (this.canResync()) this.startResync();
    else this.refuse();
  }

  private refuse(): void {
    this.refused = true;
    this.bypass = BYPASS;
    this.counters.inc(this.unknownBytes, this.held.bytes);
    this.held.drop();
    this.counters.inc(C_UNKNOWN);
  }

  private choose(p: AppLayerProtocol): void {
    let id = protocolCounters.get(p.name);
    if (id === undefined) {
      id = defineCounter(`app_layer.flow.${p.name}`);
      protocolCounters.set(p.name, id);
    }
    this.counters.inc(id);
    const consumer = p.create(this.flow);
    this.chosen = consumer;
    this.chosenName = p.name;
    this.bytesCounter = byteCounter(this.counting, p.name);
    this.counters.inc(this.bytesCounter, this.held.bytes);
    for (const h of this.held.take()) {
      const wants = h.bytes === undefined ? consumer.gap(h.dir, h.len, h.ts) : consumer.data(h.dir, h.bytes, h.ts);
      if (wants === BYPASS) this.bypass = BYPASS;
    }
  }
}

/**
 * The chosen protocol now hands its bytes to a consumer of their own (an HTTP CONNECT tunnel to the
 * protocol detection again), which counts them: they are not this protocol's.
 */
function tunnelling(c: StreamConsumer): boolean {
  return (c as { tunnelling?: boolean }).tunnelling === true;
}

export class AppLayerFactory implements StreamFactory {
  /** `counting`: `app_layer.decrypted_bytes` for what a TLS session decrypted, so it is not counted as cleartext. */
  constructor(private readonly protocols: readonly AppLayerProtocol[], private readonly counters: Counters, private readonly counting: ByteCounting = 'app_layer.bytes') {}

  open(flow: FlowInfo): StreamConsumer {
    return new ProbingConsumer(flow, this.protocols, this.counters, this.counting);
  }
}

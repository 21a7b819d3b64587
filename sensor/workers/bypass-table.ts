/**
 * Flow bypass in the capture thread. A worker that stops following a TCP connection (BYPASS, see
 * flow/stream.ts: TLS it holds no keys for, a protocol nobody parses) still received every one of
 * its frames through its ring, and decoded and looked up each one only to skip it. Here the worker
 * writes the connection's key into a table in shared memory, one per worker, and the capture thread
 * drops the connection's frames before the hand-off, as Suricata's capture bypass does.
 *
 * What still reaches the worker: SYN, FIN and RST (port reuse, the close and its reason), and one
 * frame a second or per 256 MiB of the connection (so its flow stays alive and its sequence numbers
 * never move on by half the sequence space unseen). What the capture thread dropped is counted per
 * entry (frames, bytes and the last sequence number each way, the last time), and the worker adds
 * it into the flow's record when the flow ends, so a flow's packets, bytes and bypassed bytes are
 * the same as when every frame went through. Frames a mirror port doubled are told apart here as
 * the worker's duplicate filter would (an identical copy within its window, compared on a digest
 * of the same fields among the connection's last few frames): dropped, counted as duplicates and
 * not as the connection's traffic.
 *
 * One writer (the worker) and one reader (the capture thread), without locks: the worker makes an
 * entry visible by storing its state last; a lookup that races a change misses, and a frame that
 * misses simply goes to the worker, which skips it itself. The keys are 64 bits and cover more than
 * the flow table's key (FlowHasher.bypassKey), so a frame of another connection is never dropped.
 */
import { randomBytes } from 'node:crypto';
import { defineCounter, type Counters } from '../events/counters.js';
import type { BypassedTraffic, CaptureBypassSink } from '../flow/flow-table.js';
import { DEFAULT_DUPLICATE_WINDOW_US, DUPLICATES_COUNTER } from '../decode/duplicates.js';
import { FlowHasher } from './dispatch.js';

/** Entries per worker table (a power of two); at most half are live at a time. */
export const DEFAULT_BYPASS_ENTRIES = 16384;
/** A bypassed connection still passes one frame this often (capture time)... */
const KEEPALIVE_US = 1_000_000;
/** ...and after this many bytes, so its sequence numbers never move on by 2^31 unseen. */
const KEEPALIVE_BYTES = 256 * 1024 * 1024;

const TH_FIN = 0x01;
const TH_SYN = 0x02;
const TH_RST = 0x04;

// Header words.
const H_LIVE = 0;
const H_USED = 1; // live entries and tombstones
const H_REBUILDING = 2;
/** The keys' random seed (FlowHasher.bypassKey), the same for both threads. */
const H_SEED = 3;
const HEADER_BYTES = 64;

// Key words of an entry.
const K_KEY1 = 0;
const K_KEY2 = 1;
const K_STATE = 2;
const K_TAG0 = 3;
const K_FLOW = 4;
const K_STRIDE = 5;
const EMPTY = 0;
const LIVE = 1;
const TOMB = 2;

// Value fields of an entry (doubles).
const V_LAST_PASS_US = 0;
const V_SINCE_PASS = 1;
const V_PKTS0 = 2;
const V_BYTES0 = 4;
const V_SEQ_END0 = 6;
const V_LAST_US = 8;
/** Next slot of the ring below. */
const V_DUP_NEXT = 9;
/** The connection's last frames (dropped or passed as a keepalive), for telling a mirror port's
 * copies apart: DUP_SLOTS pairs of (duplicateSig, time). Copies arrive microseconds apart, with at
 * most a few other frames of the connection between them. */
const V_DUP = 10;
const DUP_SLOTS = 8;
const V_STRIDE = V_DUP + 2 * DUP_SLOTS;

/** What `BypassTable.drop` decided for a frame. */
export const PASS = 0;
export const DROPPED = 1;
/** Dropped: a copy of a frame of the connection seen within the duplicate window. */
export const DUPLICATE = 2;

/** Frames of flows a worker bypassed, dropped before the hand-off (and their captured bytes). */
const C_DROPPED = defineCounter('workers.bypass_dropped');
const C_DROPPED_BYTES = defineCounter('workers.bypass_dropped_bytes');
const C_INSTALLED = defineCounter('workers.bypass_installed');
const C_FULL = defineCounter('workers.bypass_table_full');
const C_NO_KEY = defineCounter('workers.bypass_no_key');

/** The shared memory of one worker's table. */
export function createBypassBuffer(entries = DEFAULT_BYPASS_ENTRIES): SharedArrayBuffer {
  if (!Number.isInteger(Math.log2(entries)) || entries < 16) throw new RangeError(`bypass table entries must be a power of two >= 16, not ${entries}`);
  const buffer = new SharedArrayBuffer(HEADER_BYTES + entries * K_STRIDE * 4 + entries * V_STRIDE * 8);
  new Int32Array(buffer, 0, HEADER_BYTES / 4)[H_SEED] = randomBytes(4).readInt32LE(0);
  return buffer;
}

export class BypassTable {
  private readonly header: Int32Array;
  private readonly keys: Int32Array;
  private readonly vals: Float64Array;
  private readonly mask: number;

  constructor(buffer: SharedArrayBuffer) {
    const entries = (buffer.byteLength - HEADER_BYTES) / (K_STRIDE * 4 + V_STRIDE * 8);
    this.header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.keys = new Int32Array(buffer, HEADER_BYTES, entries * K_STRIDE);
    this.vals = new Float64Array(buffer, HEADER_BYTES + entries * K_STRIDE * 4, entries * V_STRIDE);
    this.mask = entries - 1;
  }

  get entries(): number {
    return this.mask + 1;
  }

  /** The seed both threads compute this table's keys with. */
  get seed(): number {
    return this.header[H_SEED];
  }

  /** Connections in the table. */
  get live(): number {
    return this.header[H_LIVE];
  }

  // ---- capture thread ----

  /**
   * The capture thread's question for a TCP frame `b` whose key `h.bypassKey` has just computed:
   * DROPPED when its connection is bypassed and this frame need not pass (counted in the
   * connection's entry), DUPLICATE when it is, besides, a copy of one of the connection's last
   * frames within the duplicate window (`dedup`: the workers drop such copies; not counted), else
   * PASS. `wireLen` is the frame's length on the wire, `tsUs` its time.
   */
  drop(h: FlowHasher, b: Uint8Array, wireLen: number, tsUs: number, dedup: boolean): number {
    if (this.header[H_REBUILDING] !== 0) return PASS;
    const i = this.find(h.key1, h.key2);
    if (i < 0) return PASS;
    const vals = this.vals;
    const v = i * V_STRIDE;
    if ((h.tcpFlags & (TH_SYN | TH_FIN | TH_RST)) !== 0 || tsUs - vals[v + V_LAST_PASS_US] >= KEEPALIVE_US || vals[v + V_SINCE_PASS] >= KEEPALIVE_BYTES) {
      vals[v + V_LAST_PASS_US] = tsUs;
      vals[v + V_SINCE_PASS] = 0;
      // its copy, right behind it, is the worker's duplicate: dropped here as one, not counted
      if (dedup) remember(vals, v, h.duplicateSig(b), tsUs);
      return PASS;
    }
    if (dedup) {
      const sig = h.duplicateSig(b);
      if (seenWithin(vals, v, sig, tsUs)) return DUPLICATE;
      remember(vals, v, sig, tsUs);
    }
    const dir = h.srcTag === this.keys[i * K_STRIDE + K_TAG0] ? 0 : 1;
    vals[v + V_PKTS0 + dir]++;
    vals[v + V_BYTES0 + dir] += wireLen;
    // where the stream went (a bare ACK after a FIN would count the FIN's sequence number as data)
    if (h.payloadLen > 0) vals[v + V_SEQ_END0 + dir] = h.seqEnd;
    vals[v + V_SINCE_PASS] += wireLen;
    if (tsUs > vals[v + V_LAST_US]) vals[v + V_LAST_US] = tsUs;
    return DROPPED;
  }

  private find(key1: number, key2: number): number {
    const keys = this.keys;
    const mask = this.mask;
    for (let i = key1 & mask, n = 0; n <= mask; i = (i + 1) & mask, n++) {
      const k = i * K_STRIDE;
      const state = keys[k + K_STATE];
      if (state === EMPTY) return -1;
      if (state === LIVE && keys[k + K_KEY1] === key1 && keys[k + K_KEY2] === key2) return i;
    }
    return -1;
  }

  // ---- worker ----

  /**
   * Adds a connection (its key, the originator's tag, the worker's flow slot) whose frames the
   * capture thread may drop from `tsUs` on; returns its entry, or -1 when the table is full.
   * `moved` hears of entries a rebuild moved (flow slot, new entry).
   */
  insert(key1: number, key2: number, tag0: number, flow: number, tsUs: number, sig: number, moved: (flow: number, entry: number) => void): number {
    const header = this.header;
    const keys = this.keys;
    // The same key live already (a flow the worker ended without taking it out): it is this flow's now.
    let i = this.find(key1, key2);
    if (i < 0) {
      if (header[H_LIVE] >= (this.mask + 1) >>> 1) return -1;
      if (header[H_USED] >= ((this.mask + 1) >>> 2) * 3) this.rebuild(moved);
      i = key1 & this.mask;
      while (keys[i * K_STRIDE + K_STATE] === LIVE) i = (i + 1) & this.mask;
      if (keys[i * K_STRIDE + K_STATE] === EMPTY) header[H_USED]++;
      header[H_LIVE]++;
    }
    const k = i * K_STRIDE;
    const v = i * V_STRIDE;
    const vals = this.vals;
    vals.fill(0, v, v + V_STRIDE);
    vals[v + V_LAST_PASS_US] = tsUs;
    vals[v + V_SEQ_END0] = vals[v + V_SEQ_END0 + 1] = vals[v + V_LAST_US] = -1;
    for (let d = 0; d < DUP_SLOTS; d++) vals[v + V_DUP + 2 * d + 1] = -Infinity;
    // the frame that made the worker bypass went to it: a copy of it behind is a duplicate
    remember(vals, v, sig, tsUs);
    keys[k + K_KEY1] = key1;
    keys[k + K_KEY2] = key2;
    keys[k + K_TAG0] = tag0;
    keys[k + K_FLOW] = flow;
    // the state last: a lookup that sees LIVE sees the rest
    Atomics.store(keys, k + K_STATE, LIVE);
    return i;
  }

  /** The flow slot entry `i` belongs to (-1 when it is not live). */
  flowAt(i: number): number {
    return this.keys[i * K_STRIDE + K_STATE] === LIVE ? this.keys[i * K_STRIDE + K_FLOW] : -1;
  }

  /** Takes entry `i` out: its frames pass again. Returns what was dropped of it. */
  remove(i: number): BypassedTraffic {
    const k = i * K_STRIDE;
    Atomics.store(this.keys, k + K_STATE, TOMB);
    this.header[H_LIVE]--;
    const vals = this.vals;
    const v = i * V_STRIDE;
    return {
      pkts: [vals[v + V_PKTS0], vals[v + V_PKTS0 + 1]],
      bytes: [vals[v + V_BYTES0], vals[v + V_BYTES0 + 1]],
      seqEnd: [vals[v + V_SEQ_END0], vals[v + V_SEQ_END0 + 1]],
      lastUs: vals[v + V_LAST_US],
    };
  }

  /** Empties the table (a worker that restarts has none of its flows). */
  clear(): void {
    Atomics.store(this.header, H_REBUILDING, 1);
    this.keys.fill(0);
    this.header[H_LIVE] = 0;
    this.header[H_USED] = 0;
    Atomics.store(this.header, H_REBUILDING, 0);
  }

  /** Tombstones out: the live entries are placed again (the capture thread passes every frame meanwhile). */
  private rebuild(moved: (flow: number, entry: number) => void): void {
    const n = this.mask + 1;
    const keys = this.keys;
    const vals = this.vals;
    const liveKeys: Int32Array[] = [];
    const liveVals: Float64Array[] = [];
    Atomics.store(this.header, H_REBUILDING, 1);
    for (let i = 0; i < n; i++) {
      if (keys[i * K_STRIDE + K_STATE] !== LIVE) continue;
      liveKeys.push(keys.slice(i * K_STRIDE, (i + 1) * K_STRIDE));
      liveVals.push(vals.slice(i * V_STRIDE, (i + 1) * V_STRIDE));
    }
    keys.fill(0);
    for (let j = 0; j < liveKeys.length; j++) {
      const e = liveKeys[j];
      let i = e[K_KEY1] & this.mask;
      while (keys[i * K_STRIDE + K_STATE] !== EMPTY) i = (i + 1) & this.mask;
      keys.set(e, i * K_STRIDE);
      vals.set(liveVals[j], i * V_STRIDE);
      moved(e[K_FLOW], i);
    }
    this.header[H_USED] = liveKeys.length;
    Atomics.store(this.header, H_REBUILDING, 0);
  }
}

/** Notes a frame of the entry at `v` in its ring of last frames. */
function remember(vals: Float64Array, v: number, sig: number, tsUs: number): void {
  const next = vals[v + V_DUP_NEXT];
  vals[v + V_DUP + 2 * next] = sig;
  vals[v + V_DUP + 2 * next + 1] = tsUs;
  vals[v + V_DUP_NEXT] = next === DUP_SLOTS - 1 ? 0 : next + 1;
}

/** Whether a frame with this digest is in the entry's ring, at most the duplicate window before `tsUs`. */
function seenWithin(vals: Float64Array, v: number, sig: number, tsUs: number): boolean {
  for (let d = v + V_DUP, end = v + V_DUP + 2 * DUP_SLOTS; d < end; d += 2) {
    if (vals[d] === sig) {
      const seen = vals[d + 1];
      if (tsUs >= seen && tsUs - seen <= DEFAULT_DUPLICATE_WINDOW_US) return true;
    }
  }
  return false;
}

/**
 * The capture thread's step for one TCP frame `hasher.hash` has just walked, with the table of the
 * worker it goes to: true when the frame is dropped here (counted), false when it goes on to the
 * worker. `dedup`: the workers drop mirror-port duplicates (`dropDuplicates`), so copies are told
 * apart here too.
 */
export function dropBypassed(table: BypassTable, hasher: FlowHasher, b: Uint8Array, capLen: number, wireLen: number, tsUs: number, dedup: boolean, counters: Counters): boolean {
  if (table.live === 0 || !hasher.bypassKey(b, table.seed)) return false;
  const d = table.drop(hasher, b, wireLen, tsUs, dedup);
  if (d === PASS) return false;
  counters.inc(C_DROPPED);
  counters.inc(C_DROPPED_BYTES, capLen);
  if (d === DUPLICATE) counters.inc(DUPLICATES_COUNTER);
  return true;
}

/**
 * The worker's side (a FlowTable's CaptureBypassSink): puts each connection its flow table bypasses
 * into the table, from the frame that made it bypass, and takes it out when the flow ends.
 */
export class WorkerCaptureBypass implements CaptureBypassSink {
  private readonly table: BypassTable;
  private readonly hasher = new FlowHasher();
  /** Table entry of each flow slot in it. */
  private readonly entryOf = new Map<number, number>();
  private readonly moved = (flow: number, entry: number): void => {
    this.entryOf.set(flow, entry);
  };

  constructor(buffer: SharedArrayBuffer, private readonly counters: Counters) {
    this.table = new BypassTable(buffer);
  }

  bypassed(flow: number, dir: number, linkType: number, buf: Uint8Array, off: number, capLen: number, tsUs: number): void {
    const h = this.hasher;
    h.hash(linkType, buf, off, capLen);
    if (!h.bypassKey(buf, this.table.seed)) {
      this.counters.inc(C_NO_KEY);
      return;
    }
    const entry = this.table.insert(h.key1, h.key2, dir === 0 ? h.srcTag : h.dstTag, flow, tsUs, h.duplicateSig(buf), this.moved);
    if (entry < 0) {
      this.counters.inc(C_FULL);
      return;
    }
    this.entryOf.set(flow, entry);
    this.counters.inc(C_INSTALLED);
  }

  ended(flow: number): BypassedTraffic | undefined {
    const entry = this.entryOf.get(flow);
    if (entry === undefined) return undefined;
    this.entryOf.delete(flow);
    // another flow may have taken the entry over (the same key again): it is then that flow's
    return this.table.flowAt(entry) === flow ? this.table.remove(entry) : undefined;
  }
}

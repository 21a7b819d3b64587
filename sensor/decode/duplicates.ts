/**
 * Mirror-port duplicate suppression. A SPAN session that mirrors both ingress and egress, or two
 * sessions that overlap, hand the sensor the same packet twice a few microseconds apart; fed to
 * reassembly, every such copy would count as a retransmission. Input: a decoded TCP/UDP packet.
 * Output: true when an identical packet (addresses, ports, IPv4 id, TCP sequence, ack, flags,
 * payload length and edges) was seen within the window; counted as `decoder.duplicates`.
 * A real retransmission carries a new IPv4 id and comes after at least a round trip, so it passes.
 * Bounded: a fixed direct-mapped table; a collision only lets a duplicate through. Packets are
 * compared on a 53-bit key (the 32-bit hash and 21 bits of a second, independently mixed one), so
 * two different packets are taken for copies of each other about once in 2^53 comparisons, not
 * 2^32: with 32 bits a flood of a million SYNs in a second lost two real ones.
 */
import { Counters, defineCounter } from '../events/counters.js';
import type { Packet } from './packet.js';

const C_DUPLICATES = defineCounter('decoder.duplicates');
/** The counter of dropped copies, for the capture thread's bypass (workers/bypass-table.ts), which drops some itself. */
export const DUPLICATES_COUNTER = C_DUPLICATES;

/** Entries in the table (power of two): a few ms of a 10 Gbit/s link. */
const DUPLICATE_TABLE_SIZE = 1 << 14;
/** Copies of one packet from a mirror port arrive within microseconds; LAN round trips take longer. */
export const DEFAULT_DUPLICATE_WINDOW_US = 1000;

function mix(h: number, v: number): number {
  h = Math.imul(h ^ v, 0xcc9e2d51);
  h = (h << 15) | (h >>> 17);
  return Math.imul(h, 0x1b873593);
}

/**
 * Recently written slots, indexed by slot % RECENT_SIZE: a small cache (24 KiB, stays in the CPU
 * cache) that answers most lookups without reading the big table, whose line is a cache miss on
 * nearly every packet. The big table is still written for every packet, which costs no wait.
 */
const RECENT_SIZE = 1024;
const RECENT_STRIDE = 3; // slot, hash, time

/**
 * A packet has two keys, computed in one pass over its fields by `duplicateHash`: its 32-bit hash
 * (also the slot), returned, and 21 more bits for the comparison, left here: a second lane with
 * another seed, the fields in another order and other multipliers (`mix2`), so that the 53 bits
 * are independent. IPv4 keeps its addresses in words 0 and 4 only, so only those are read; IPv6
 * mixes all eight. (A module variable rather than a returned pair: no allocation per packet.)
 */
let lane2 = 0;

/** The second lane's mix: `mix` with other multipliers. */
function mix2(h: number, v: number): number {
  h = Math.imul(h ^ v, 0x85ebca6b);
  h = (h << 13) | (h >>> 19);
  return Math.imul(h, 0xc2b2ae35);
}

/** The packet hash the filter compares (exported for tests): addresses, ports, IPv4 id, flags, sequence, ack, payload length and edges. Leaves the second lane in `lane2`. */
export function duplicateHash(p: Packet): number {
  const a = p.addr;
  let h = 0x2545f491 ^ p.transport;
  let g = 0x61c88647 ^ (p.payloadLen << 8);
  if (p.ipVersion === 4) {
    h = mix(h, a[0]);
    g = mix2(g, a[4]);
    h = mix(h, a[4]);
    g = mix2(g, a[0]);
  } else {
    for (let i = 0; i < 8; i++) {
      h = mix(h, a[i]);
      g = mix2(g, a[7 - i]);
    }
  }
  const ports = p.srcPort | (p.dstPort << 16);
  h = mix(h, ports);
  g = mix2(g, (ports >>> 16) | (ports << 16));
  h = mix(h, p.ipId | (p.tcpFlags << 16));
  g = mix2(g, p.ipId ^ (p.tcpFlags << 24));
  h = mix(h, p.seq);
  g = mix2(g, p.seq ^ p.ack);
  h = mix(h, p.ack);
  h = mix(h, p.payloadLen);
  const b = p.buf;
  const o = p.payloadOff;
  const n = p.payloadLen;
  if (n > 0) {
    const edges = (b[o] << 24) | (b[o + (n >> 1)] << 16) | (b[o + n - 1] << 8) | b[o + (n >> 2)];
    h = mix(h, edges);
    g = mix2(g, edges);
  }
  lane2 = (g ^ (g >>> 15)) & 0x1fffff;
  return h ^ (h >>> 16);
}

/** Slots in the direct-mapped table (exported for tests). */
export const DUPLICATE_SLOTS = DUPLICATE_TABLE_SIZE;

export class DuplicateFilter {
  /** Slot i holds the hash of the last packet that mapped to it at [2i] and its time at [2i + 1]. */
  private readonly table = new Float64Array(2 * DUPLICATE_TABLE_SIZE);
  /**
   * For each i < RECENT_SIZE, the last packet whose slot is i modulo RECENT_SIZE: its slot, hash
   * and time. While the times of written packets never decrease, this decides exactly what the
   * table would: either the entry is the packet's own slot (so it is that slot's last packet), or
   * it is older than the window (so that slot's last packet, written before it, is older still).
   */
  private readonly recent = new Float64Array(RECENT_STRIDE * RECENT_SIZE);
  /** True while the times of written packets have never decreased. */
  private monotonic = true;
  /** The latest time of a written packet. */
  private lastUs = -Infinity;

  constructor(private readonly counters: Counters, private readonly windowUs = DEFAULT_DUPLICATE_WINDOW_US) {
    for (let i = 1; i < this.table.length; i += 2) this.table[i] = -Infinity;
    for (let i = 0; i < this.recent.length; i += RECENT_STRIDE) {
      this.recent[i] = -1;
      this.recent[i + 2] = -Infinity;
    }
    // Written a second time: V8 treats a field written once as a constant, and code compiled on
    // that assumption is thrown away at the first write seen later.
    this.monotonic = true;
    this.lastUs = -Infinity;
  }

  /** True when `p` is a copy of a packet seen within the window (the caller drops it). */
  isDuplicate(p: Packet): boolean {
    const h32 = duplicateHash(p);
    const slot = h32 & (DUPLICATE_TABLE_SIZE - 1);
    // the stored and compared key: exact in a double (53 bits)
    const h = (h32 >>> 0) + lane2 * 4294967296;
    const ts = p.tsUs;
    const r = this.recent;
    const ri = (slot & (RECENT_SIZE - 1)) * RECENT_STRIDE;
    const w = this.windowUs;
    let dup: boolean;
    if (r[ri] === slot || (this.monotonic && ts >= this.lastUs && ts - r[ri + 2] > w)) {
      // Decided from the recent entry: it is the slot's own last packet, or (times never having
      // gone back) newer than that packet and already outside the window.
      const seen = r[ri + 2];
      dup = r[ri] === slot && r[ri + 1] === h && ts - seen <= w && ts >= seen;
    } else {
      const seen = this.table[(slot << 1) + 1];
      dup = this.table[slot << 1] === h && ts - seen <= w && ts >= seen;
    }
    if (dup) {
      this.counters.inc(C_DUPLICATES);
      return true;
    }
    const t = this.table;
    t[slot << 1] = h;
    t[(slot << 1) + 1] = ts;
    r[ri] = slot;
    r[ri + 1] = h;
    r[ri + 2] = ts;
    if (ts < this.lastUs) this.monotonic = false;
    else this.lastUs = ts;
    return false;
  }
}

/**
 * Mirror-port duplicate suppression. A SPAN session that mirrors both ingress and egress, or two
 * sessions that overlap, hand the sensor the same packet twice a few microseconds apart; fed to
 * reassembly, every such copy would count as a retransmission. Input: a decoded TCP/UDP packet.
 * Output: true when an identical packet (addresses, ports, IPv4 id, TCP sequence, ack, flags,
 * payload length and edges) was seen within the window; counted as `decoder.duplicates`.
 * A real retransmission carries a new IPv4 id and comes after at least a round trip, so it passes.
 * Bounded: a fixed direct-mapped table; a collision only lets a duplicate through.
 */
import { Counters, defineCounter } from '../events/counters.js';
import type { Packet } from './packet.js';

const C_DUPLICATES = defineCounter('decoder.duplicates');

/** Entries in the table (power of two): a few ms of a 10 Gbit/s link. */
const DUPLICATE_TABLE_SIZE = 1 << 14;
/** Copies of one packet from a mirror port arrive within microseconds; LAN round trips take longer. */
export const DEFAULT_DUPLICATE_WINDOW_US = 1000;

function mix(h: number, v: number): number {
  h = Math.imul(h ^ v, 0xcc9e2d51);
  h = (h << 15) | (h >>> 17);
  return Math.imul(h, 0x1b873593);
}

export class DuplicateFilter {
  private readonly hashes = new Int32Array(DUPLICATE_TABLE_SIZE);
  private readonly times = new Float64Array(DUPLICATE_TABLE_SIZE).fill(-Infinity);

  constructor(private readonly counters: Counters, private readonly windowUs = DEFAULT_DUPLICATE_WINDOW_US) {}

  /** True when `p` is a copy of a packet seen within the window (the caller drops it). */
  isDuplicate(p: Packet): boolean {
    const a = p.addr;
    let h = 0x2545f491 ^ p.transport;
    for (let i = 0; i < 8; i++) h = mix(h, a[i]);
    h = mix(h, p.srcPort | (p.dstPort << 16));
    h = mix(h, p.ipId | (p.tcpFlags << 16));
    h = mix(h, p.seq);
    h = mix(h, p.ack);
    h = mix(h, p.payloadLen);
    const b = p.buf;
    const o = p.payloadOff;
    const n = p.payloadLen;
    if (n > 0) {
      h = mix(h, (b[o] << 24) | (b[o + (n >> 1)] << 16) | (b[o + n - 1] << 8) | b[o + (n >> 2)]);
    }
    h ^= h >>> 16;
    const slot = h & (DUPLICATE_TABLE_SIZE - 1);
    const ts = p.tsUs;
    if (this.hashes[slot] === h && ts - this.times[slot] <= this.windowUs && ts >= this.times[slot]) {
      this.counters.inc(C_DUPLICATES);
      return true;
    }
    this.hashes[slot] = h;
    this.times[slot] = ts;
    return false;
  }
}

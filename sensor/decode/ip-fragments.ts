/**
 * IPv4 and IPv6 fragment reassembly. Input: one fragment at a time (the decoder has validated the
 * IP header and points `p.off..p.end` at the fragment's payload). Output: when the last hole is
 * filled, `p.buf` becomes the reassembled payload (`p.off = 0`, `p.end = length`) and the caller
 * decodes on; `p.frames` and `p.wireLen` then count every fragment frame held for it, so the flow
 * has the packets and bytes that were on the wire. Fragments of a datagram that never completes
 * reach no flow: they are counted only here (`defrag.fragments`) and in the decoder's totals. Bounded: datagrams in progress, bytes held, fragments per datagram and age all have
 * limits that evict and count. Overlaps: first received wins (Suricata's "bsd", Wireshark); an
 * overlap carrying different bytes is an evasion signal and raises `defrag.overlap_mismatch`.
 */
import { Counters, defineAnomaly, defineCounter } from '../events/counters.js';
import type { Packet } from './packet.js';

const A_OVERLAP_MISMATCH = defineAnomaly('defrag.overlap_mismatch');
const A_TOO_LARGE = defineAnomaly('defrag.datagram_too_large');
const A_TOO_MANY_FRAGS = defineAnomaly('defrag.too_many_fragments');
const A_BAD_LAST = defineAnomaly('defrag.inconsistent_last_fragment');
const A_NOT_MULT8 = defineAnomaly('defrag.fragment_not_multiple_of_8');
const C_FRAGMENTS = defineCounter('defrag.fragments');
const C_OVERLAP = defineCounter('defrag.overlap');
const C_REASSEMBLED = defineCounter('defrag.reassembled');
const C_TIMEOUT = defineCounter('defrag.timeout');
const C_MEMCAP = defineCounter('defrag.memcap_evicted');
const C_IN_PROGRESS = defineCounter('defrag.in_progress');

/** Largest reassembled payload: the IP length fields are 16 bits (RFC 791, RFC 8200 section 4.5). */
const MAX_DATAGRAM_BYTES = 65535;
/** Age limit from the first fragment; Linux uses 30 s (net.ipv4.ipfrag_time), RFC 8200 60 s. */
export const DEFRAG_TIMEOUT_US = 60_000_000;

export interface DefragLimits {
  /** Datagrams being reassembled at once. */
  maxDatagrams: number;
  /** Payload bytes held across all datagrams (Linux ipfrag_high_thresh is 4 MB per netns). */
  maxBytes: number;
  /** Fragments per datagram; a stream of tiny fragments is a resource attack. */
  maxFragments: number;
}

export const DEFAULT_DEFRAG_LIMITS: DefragLimits = { maxDatagrams: 4096, maxBytes: 32 << 20, maxFragments: 128 };

interface Piece {
  start: number;
  data: Uint8Array;
}

interface Datagram {
  readonly firstUs: number;
  pieces: Piece[];
  /** Payload length once the last fragment (MF = 0) arrived, else -1. */
  total: number;
  bytes: number;
  fragments: number;
  /** Frames and their wire length so far (a fragment can itself stand for several: tunnels). */
  frames: number;
  wireBytes: number;
}

export class Defragmenter {
  private readonly table = new Map<string, Datagram>();
  private heldBytes = 0;

  constructor(private readonly counters: Counters, private readonly limits: DefragLimits = DEFAULT_DEFRAG_LIMITS) {}

  addIpv4(p: Packet, id: number, offset: number, more: boolean): boolean {
    const a = p.addr;
    const key = `4|${a[0]}|${a[4]}|${p.ipProto}|${id}|${p.vlan0}|${p.vlan1}`;
    return this.add(p, key, offset, more);
  }

  addIpv6(p: Packet, id: number, offset: number, more: boolean, nextHeader: number): boolean {
    const a = p.addr;
    const key = `6|${a[0]}|${a[1]}|${a[2]}|${a[3]}|${a[4]}|${a[5]}|${a[6]}|${a[7]}|${nextHeader}|${id}|${p.vlan0}|${p.vlan1}`;
    return this.add(p, key, offset, more);
  }

  /** Datagrams currently held (for tests and the status report). */
  get inProgress(): number {
    return this.table.size;
  }

  get bytesHeld(): number {
    return this.heldBytes;
  }

  private add(p: Packet, key: string, start: number, more: boolean): boolean {
    const c = this.counters;
    c.inc(C_FRAGMENTS);
    this.expire(p.tsUs);
    const len = p.end - p.off;
    const end = start + len;
    if (end > MAX_DATAGRAM_BYTES) {
      c.inc(A_TOO_LARGE);
      this.drop(key);
      return false;
    }
    if (more && (len & 7) !== 0) c.inc(A_NOT_MULT8);
    let d = this.table.get(key);
    if (d === undefined) {
      while (this.table.size >= this.limits.maxDatagrams || this.heldBytes + len > this.limits.maxBytes) {
        if (!this.evictOldest()) break;
        c.inc(C_MEMCAP);
      }
      d = { firstUs: p.tsUs, pieces: [], total: -1, bytes: 0, fragments: 0, frames: 0, wireBytes: 0 };
      this.table.set(key, d);
    }
    if (++d.fragments > this.limits.maxFragments) {
      c.inc(A_TOO_MANY_FRAGS);
      this.drop(key);
      return false;
    }
    if (!more) {
      if ((d.total >= 0 && d.total !== end) || d.pieces.some((x) => x.start + x.data.length > end)) {
        c.inc(A_BAD_LAST);
        this.drop(key);
        return false;
      }
      d.total = end;
    } else if (d.total >= 0 && end > d.total) {
      c.inc(A_BAD_LAST);
      this.drop(key);
      return false;
    }
    this.insert(d, p.buf, p.off, start, end);
    d.frames += p.frames;
    d.wireBytes += p.wireLen;
    c.set(C_IN_PROGRESS, this.table.size);
    if (d.total < 0) return false;
    // Complete when the pieces (sorted, non-overlapping) tile [0, total).
    let at = 0;
    for (const piece of d.pieces) {
      if (piece.start !== at) return false;
      at += piece.data.length;
    }
    if (at !== d.total) return false;
    const out = new Uint8Array(d.total);
    for (const piece of d.pieces) out.set(piece.data, piece.start);
    this.drop(key);
    c.inc(C_REASSEMBLED);
    c.set(C_IN_PROGRESS, this.table.size);
    p.buf = out;
    p.off = 0;
    p.end = out.length;
    p.frames = d.frames;
    p.wireLen = d.wireBytes;
    return true;
  }

  /** First-wins insert: only the parts of [start, end) not yet held are copied in. */
  private insert(d: Datagram, buf: Uint8Array, bufOff: number, start: number, end: number): void {
    let cursor = start;
    const added: Piece[] = [];
    for (const piece of d.pieces) {
      const ps = piece.start;
      const pe = ps + piece.data.length;
      if (pe <= cursor) continue;
      if (ps >= end) break;
      if (ps > cursor) added.push({ start: cursor, data: buf.slice(bufOff + cursor - start, bufOff + ps - start) });
      // Overlap [max(ps,cursor), min(pe,end)): compare what was held with what arrived.
      const os = Math.max(ps, cursor);
      const oe = Math.min(pe, end);
      this.counters.inc(C_OVERLAP);
      for (let i = os; i < oe; i++) {
        if (piece.data[i - ps] !== buf[bufOff + i - start]) {
          this.counters.inc(A_OVERLAP_MISMATCH);
          break;
        }
      }
      cursor = Math.max(cursor, pe);
      if (cursor >= end) break;
    }
    if (cursor < end) added.push({ start: cursor, data: buf.slice(bufOff + cursor - start, bufOff + end - start) });
    if (added.length === 0) return;
    for (const a of added) {
      d.pieces.push(a);
      d.bytes += a.data.length;
      this.heldBytes += a.data.length;
    }
    d.pieces.sort((x, y) => x.start - y.start);
  }

  private expire(nowUs: number): void {
    for (const [key, d] of this.table) {
      if (nowUs - d.firstUs < DEFRAG_TIMEOUT_US) break; // Map keeps insertion (= age) order
      this.counters.inc(C_TIMEOUT);
      this.drop(key);
    }
  }

  private evictOldest(): boolean {
    const first = this.table.keys().next();
    if (first.done === true) return false;
    this.drop(first.value);
    return true;
  }

  private drop(key: string): void {
    const d = this.table.get(key);
    if (d === undefined) return;
    this.heldBytes -= d.bytes;
    this.table.delete(key);
  }
}

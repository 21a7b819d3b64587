/**
 * The flow table: one entry per TCP or UDP conversation, keyed the same in both directions
 * (addresses, ports, protocol, VLAN tags), with a stable flow id, idle timeouts per state measured
 * in capture time, and a memory cap that evicts the least recently active flows (counted) instead
 * of growing. TCP flows own two `TcpHalf` reassemblers and hand ordered bytes to the consumer that
 * the `StreamFactory` returned for the flow; UDP datagrams go to a `DatagramSink`.
 * Input: decoded packets (`Packet` with `transport` set). Output: StreamConsumer / DatagramSink
 * calls and, when a flow ends, one `FlowRecord` to the `FlowEndSink`.
 */
import type { Packet } from '../decode/packet.js';
import { formatIpv4, formatIpv6, formatMac, IPPROTO_TCP } from '../decode/packet.js';
import { TH_ACK, TH_FIN, TH_RST, TH_SYN } from '../decode/transport.js';
import { Counters, defineAnomaly, defineCounter } from '../events/counters.js';
import type { CloseReason, DatagramSink, Direction, FlowInfo, StreamConsumer, StreamFactory } from './stream.js';
import { DEFAULT_REASSEMBLY_LIMITS, ReassemblyBudget, ReassemblyLimits, TcpHalf } from './tcp-reassembly.js';

const C_FLOWS_TCP = defineCounter('flow.tcp');
const C_FLOWS_UDP = defineCounter('flow.udp');
const C_ACTIVE = defineCounter('flow.active');
const C_MEMCAP = defineCounter('flow.memcap_evicted');
const C_TIMEOUT = defineCounter('flow.timeout');
const C_PORT_REUSE = defineCounter('tcp.port_reuse');
const C_MIDSTREAM = defineCounter('tcp.midstream_pickup');
const C_ONE_SIDED = defineCounter('flow.one_sided');
const C_CONSUMER_ERROR = defineCounter('flow.consumer_error');
const A_DATA_AFTER_RST = defineAnomaly('stream.tcp.pkt_after_rst');
const A_RST_IN_HANDSHAKE = defineAnomaly('stream.tcp.rst_before_handshake_done');
const A_SYN_DATA = defineCounter('tcp.syn_with_data');

export type FlowState = 'new' | 'established' | 'closing' | 'closed';

export interface FlowLimits {
  /** Flows tracked at once; the least recently active is evicted beyond it. */
  maxFlows: number;
  /** Bytes of flow state (entries + reassembly buffers) before eviction. */
  memcapBytes: number;
  /** Idle timeouts in capture time (Suricata's defaults: flow-timeouts tcp new 60 / established 600 / closed 0-60, udp 30/300). */
  tcpNewTimeoutUs: number;
  tcpEstablishedTimeoutUs: number;
  tcpClosedTimeoutUs: number;
  udpTimeoutUs: number;
  reassembly: ReassemblyLimits;
}

export const DEFAULT_FLOW_LIMITS: FlowLimits = {
  maxFlows: 500_000,
  memcapBytes: 256 << 20,
  tcpNewTimeoutUs: 60_000_000,
  tcpEstablishedTimeoutUs: 600_000_000,
  tcpClosedTimeoutUs: 10_000_000,
  udpTimeoutUs: 120_000_000,
  reassembly: DEFAULT_REASSEMBLY_LIMITS,
};

/** Approximate fixed cost of one flow entry (object, key, halves), for the memcap. */
const FLOW_ENTRY_BYTES = 640;
/**
 * A flow moves to the tail of its timeout list at most this often: re-linking on every packet
 * costs more than the whole decode, and timeouts are tens of seconds. The lists stay ordered to
 * within this granularity, so a flow expires at most this late.
 */
const LRU_GRANULARITY_US = 1_000_000;
/** How often (capture time) idle flows are looked for. */
const EXPIRE_INTERVAL_US = 1_000_000;

/** What `hark flows` prints for a finished flow. */
export interface FlowRecord extends FlowInfo {
  readonly endUs: number;
  readonly pkts: readonly [number, number];
  readonly bytes: readonly [number, number];
  /** Reassembled (delivered) payload bytes per direction; UDP: payload bytes. */
  readonly dataBytes: readonly [number, number];
  readonly gaps: readonly [number, number];
  readonly gapBytes: readonly [number, number];
  readonly overlaps: number;
  readonly overlapMismatches: number;
  readonly state: FlowState;
  readonly closeReason: CloseReason;
  readonly midstream: boolean;
}

export interface FlowEndSink {
  flowEnded(record: FlowRecord): void;
}

const LIST_TCP_NEW = 0;
const LIST_TCP_EST = 1;
const LIST_TCP_CLOSED = 2;
const LIST_UDP = 3;
const LIST_COUNT = 4;

export class Flow {
  // Key, stored with the originator as "a".
  ipVersion = 4;
  readonly addr = new Uint32Array(8);
  portA = 0;
  portB = 0;
  proto = 0;
  vlanCount = 0;
  vlan0 = 0;
  vlan1 = 0;
  hash = 0;
  flowId = 0;
  startUs = 0;
  lastUs = 0;
  /** When the flow was last placed at the tail of its list. */
  listUs = 0;
  state: FlowState = 'new';
  closeReason: CloseReason = 'eof';
  rstSeen = false;
  midstream = false;
  // Per-direction counters as plain fields: one object, one cache line, on the per-packet path.
  pkts0 = 0;
  pkts1 = 0;
  bytes0 = 0;
  bytes1 = 0;
  udpData0 = 0;
  udpData1 = 0;
  /** Both reassemblers; created once per pooled Flow object, reset on reuse. Only TCP uses them. */
  halves: [TcpHalf, TcpHalf] | undefined;
  consumer: StreamConsumer | undefined;
  info: FlowInfo | undefined;
  // Hash chain and per-timeout-class LRU list links.
  hnext: Flow | undefined;
  list = 0;
  prev: Flow | undefined;
  next: Flow | undefined;
}

function mix(h: number, v: number): number {
  h = Math.imul(h ^ v, 0x85ebca6b);
  return (h << 13) | (h >>> 19);
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Same value for both directions: each address/port pair is combined with commutative XOR and +. */
function symmetricHash(p: Packet): number {
  const a = p.addr;
  const sp = p.srcPort;
  const dp = p.dstPort;
  let h = 0x9747b28c ^ p.transport ^ (p.vlan0 << 8) ^ (p.vlan1 << 20);
  h = mix(h, (sp ^ dp) | ((sp + dp) << 16));
  // IPv4 keeps its addresses in words 0 and 4 (the rest are zero): hash only those.
  const words = p.ipVersion === 4 ? 1 : 4;
  for (let i = 0; i < words; i++) {
    const x = a[i];
    const y = a[i + 4];
    h = mix(h, x ^ y);
    h = mix(h, (x + y) | 0);
  }
  return fmix(h);
}

class LruList {
  head: Flow | undefined;
  tail: Flow | undefined;
  size = 0;
  push(f: Flow): void {
    f.prev = this.tail;
    f.next = undefined;
    if (this.tail) this.tail.next = f;
    else this.head = f;
    this.tail = f;
    this.size++;
  }
  remove(f: Flow): void {
    if (f.prev) f.prev.next = f.next;
    else this.head = f.next;
    if (f.next) f.next.prev = f.prev;
    else this.tail = f.prev;
    f.prev = f.next = undefined;
    this.size--;
  }
}

/** Initial hash buckets; doubled whenever flows outnumber buckets, so chains stay about one long. */
const INITIAL_BUCKETS = 4096;
/** Bucket array ceiling (4 M entries, 16 MB): beyond it chains grow instead. */
const MAX_BUCKETS = 1 << 22;

/** Finished Flow objects kept for reuse: allocation and GC promotion of flow state cost more than the flow's packets. */
const MAX_POOLED_FLOWS = 65536;

/** Adapts one direction of a flow to the reassembler's sink, looking up the flow's current consumer. */
function halfSink(f: Flow, dir: Direction) {
  return {
    data(bytes: Uint8Array, ts: number): void {
      f.consumer?.data(dir, bytes, ts);
    },
    gap(len: number, ts: number): void {
      f.consumer?.gap(dir, len, ts);
    },
  };
}

export class FlowTable {
  private readonly pool: Flow[] = [];
  private buckets: (Flow | undefined)[] = new Array<Flow | undefined>(INITIAL_BUCKETS).fill(undefined);
  private mask = INITIAL_BUCKETS - 1;
  private readonly lists: LruList[] = Array.from({ length: LIST_COUNT }, () => new LruList());
  private readonly timeouts: number[];
  private readonly budget: ReassemblyBudget;
  private count = 0;
  private nextExpireUs = 0;
  private nowUs = 0;

  constructor(
    private readonly counters: Counters,
    private readonly factory: StreamFactory | undefined,
    private readonly datagrams: DatagramSink | undefined,
    private readonly ended: FlowEndSink | undefined,
    private readonly limits: FlowLimits = DEFAULT_FLOW_LIMITS,
  ) {
    this.timeouts = [limits.tcpNewTimeoutUs, limits.tcpEstablishedTimeoutUs, limits.tcpClosedTimeoutUs, limits.udpTimeoutUs];
    this.budget = new ReassemblyBudget(Math.floor(limits.memcapBytes / 2));
  }

  get active(): number {
    return this.count;
  }

  /** Takes one decoded TCP or UDP packet; `frameLen` is counted as the flow's bytes. */
  packet(p: Packet, frameLen: number): void {
    const ts = p.tsUs;
    if (ts > this.nowUs) this.nowUs = ts;
    if (this.nowUs >= this.nextExpireUs) {
      this.expire(this.nowUs);
      this.nextExpireUs = this.nowUs + EXPIRE_INTERVAL_US;
    }
    const h = symmetricHash(p);
    let dir: Direction = 0;
    let f = this.buckets[h & this.mask];
    for (; f !== undefined; f = f.hnext) {
      const d = this.matchDirection(f, p);
      if (d >= 0) {
        dir = d as Direction;
        break;
      }
    }
    const isTcp = p.transport === IPPROTO_TCP;
    if (f !== undefined && isTcp && this.isPortReuse(f, p, dir)) {
      this.counters.inc(C_PORT_REUSE);
      this.end(f, f.rstSeen ? 'rst' : f.state === 'closed' || f.state === 'closing' ? 'fin' : 'port_reuse');
      f = undefined;
    }
    if (f === undefined) {
      f = this.create(p, h);
      dir = this.matchDirection(f, p) as Direction;
    }
    f.lastUs = ts;
    if (dir === 0) {
      if (f.pkts0 === 0 && p.macBuf !== undefined && f.info !== undefined) (f.info as { srcMac?: string }).srcMac = formatMac(p.macBuf, p.macOff);
      f.pkts0++;
      f.bytes0 += frameLen;
    } else {
      f.pkts1++;
      f.bytes1 += frameLen;
    }
    if (ts - f.listUs > LRU_GRANULARITY_US) {
      const list = this.lists[f.list];
      list.remove(f);
      list.push(f);
      f.listUs = ts;
    }
    try {
      if (isTcp) this.tcp(f, p, dir);
      else {
        if (dir === 0) f.udpData0 += p.payloadLen;
        else f.udpData1 += p.payloadLen;
        if (this.datagrams !== undefined && f.info !== undefined) this.datagrams.datagram(f.info, dir, p.buf.subarray(p.payloadOff, p.payloadOff + p.payloadLen), ts);
      }
    } catch (err) {
      // A consumer bug must not take the sensor down: count it and stop feeding that flow.
      this.counters.inc(C_CONSUMER_ERROR);
      f.consumer = undefined;
      reportConsumerError(err);
    }
    if (this.count > this.limits.maxFlows || this.memoryEstimate() > this.limits.memcapBytes) this.evict();
  }

  /** End of input: every flow ends with reason `eof` (or how it closed). */
  flush(): void {
    for (const list of this.lists) {
      while (list.head !== undefined) {
        const f = list.head;
        this.end(f, f.rstSeen ? 'rst' : f.state === 'closed' ? 'fin' : 'eof');
      }
    }
  }

  /** Ends flows idle longer than their state's timeout, as of capture time `nowUs`. */
  expire(nowUs: number): void {
    for (let i = 0; i < LIST_COUNT; i++) {
      const list = this.lists[i];
      const limit = this.timeouts[i];
      while (list.head !== undefined && nowUs - list.head.lastUs > limit) {
        const f = list.head;
        if (i === LIST_TCP_CLOSED) this.end(f, f.rstSeen ? 'rst' : 'fin');
        else {
          this.counters.inc(C_TIMEOUT);
          this.end(f, 'timeout');
        }
      }
    }
  }

  private memoryEstimate(): number {
    return this.count * FLOW_ENTRY_BYTES + this.budget.held * 2;
  }

  private evict(): void {
    // Closed flows first, then new (half-open scans), then the least recently active established.
    for (const i of [LIST_TCP_CLOSED, LIST_UDP, LIST_TCP_NEW, LIST_TCP_EST]) {
      const list = this.lists[i];
      while (list.head !== undefined && (this.count > this.limits.maxFlows || this.memoryEstimate() > this.limits.memcapBytes)) {
        this.counters.inc(C_MEMCAP);
        this.end(list.head, 'memcap');
      }
    }
  }

  /** 0 when `p` goes originator -> responder, 1 for the reverse, -1 when it is another flow. */
  private matchDirection(f: Flow, p: Packet): number {
    if (f.proto !== p.transport || f.vlan0 !== p.vlan0 || f.vlan1 !== p.vlan1 || f.ipVersion !== p.ipVersion) return -1;
    const a = f.addr;
    const b = p.addr;
    if (f.ipVersion === 4) {
      if (f.portA === p.srcPort && f.portB === p.dstPort && a[0] === b[0] && a[4] === b[4]) return 0;
      if (f.portA === p.dstPort && f.portB === p.srcPort && a[0] === b[4] && a[4] === b[0]) return 1;
      return -1;
    }
    if (f.portA === p.srcPort && f.portB === p.dstPort && a[0] === b[0] && a[4] === b[4] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3] && a[5] === b[5] && a[6] === b[6] && a[7] === b[7]) return 0;
    if (f.portA === p.dstPort && f.portB === p.srcPort && a[0] === b[4] && a[4] === b[0] && a[1] === b[5] && a[2] === b[6] && a[3] === b[7] && a[5] === b[1] && a[6] === b[2] && a[7] === b[3]) return 1;
    return -1;
  }

  /** A new SYN on a finished flow, or with a different initial sequence number, starts a new connection. */
  private isPortReuse(f: Flow, p: Packet, dir: Direction): boolean {
    if ((p.tcpFlags & (TH_SYN | TH_ACK | TH_RST)) !== TH_SYN || dir !== 0 || f.halves === undefined) return false;
    const h = f.halves[0];
    if (f.state === 'closed' || f.state === 'closing' || f.rstSeen) return !(h.fromSyn && h.isn === p.seq && h.delivered === 0);
    return h.fromSyn && h.isn !== p.seq && h.delivered + f.halves[1].delivered > 0;
  }

  private create(p: Packet, hash: number): Flow {
    const f = this.pool.pop() ?? new Flow();
    const isTcp = p.transport === IPPROTO_TCP;
    // Who opened the conversation: a SYN's sender; a SYN-ACK's receiver; otherwise the side not on
    // a well-known port (midstream pickup, or UDP answers seen before questions).
    let swap = false;
    if (isTcp && (p.tcpFlags & (TH_SYN | TH_ACK)) === (TH_SYN | TH_ACK)) swap = true;
    else if (!(isTcp && (p.tcpFlags & TH_SYN) !== 0)) swap = p.srcPort < 1024 && p.dstPort >= 1024;
    const a = f.addr;
    const b = p.addr;
    for (let i = 0; i < 4; i++) {
      a[i] = swap ? b[i + 4] : b[i];
      a[i + 4] = swap ? b[i] : b[i + 4];
    }
    f.portA = swap ? p.dstPort : p.srcPort;
    f.portB = swap ? p.srcPort : p.dstPort;
    f.ipVersion = p.ipVersion;
    f.proto = p.transport;
    f.vlanCount = p.vlanCount;
    f.vlan0 = p.vlan0;
    f.vlan1 = p.vlan1;
    f.hash = hash;
    f.startUs = p.tsUs;
    f.lastUs = p.tsUs;
    f.listUs = p.tsUs;
    f.flowId = stableFlowId(f);
    const slot = hash & this.mask;
    f.hnext = this.buckets[slot];
    this.buckets[slot] = f;
    this.count++;
    if (this.count > this.buckets.length && this.buckets.length < MAX_BUCKETS) this.grow();
    this.counters.set(C_ACTIVE, this.count);
    // The printable FlowInfo (address strings) only when a consumer will see it; otherwise it is
    // made when the flow's record is (most UDP flows of a busy link are two-packet DNS lookups).
    if (isTcp ? this.factory !== undefined : this.datagrams !== undefined) f.info = flowInfo(f);
    if (isTcp) {
      this.counters.inc(C_FLOWS_TCP);
      f.list = LIST_TCP_NEW;
      f.consumer = f.info !== undefined ? this.factory?.open(f.info) : undefined;
      if (f.halves === undefined) {
        f.halves = [new TcpHalf(halfSink(f, 0), this.counters, this.budget, this.limits.reassembly), new TcpHalf(halfSink(f, 1), this.counters, this.budget, this.limits.reassembly)];
      }
      // Midstream: the client's SYN was not the first packet seen (a SYN-ACK first means it was missed).
      if ((p.tcpFlags & (TH_SYN | TH_ACK)) !== TH_SYN) {
        f.midstream = true;
        this.counters.inc(C_MIDSTREAM);
      }
    } else {
      this.counters.inc(C_FLOWS_UDP);
      f.list = LIST_UDP;
    }
    this.lists[f.list].push(f);
    return f;
  }

  private grow(): void {
    const old = this.buckets;
    const n = old.length * 2;
    this.buckets = new Array<Flow | undefined>(n).fill(undefined);
    this.mask = n - 1;
    for (let head of old) {
      while (head !== undefined) {
        const next = head.hnext;
        const slot = head.hash & this.mask;
        head.hnext = this.buckets[slot];
        this.buckets[slot] = head;
        head = next;
      }
    }
  }

  private moveTo(f: Flow, list: number): void {
    if (f.list === list) return;
    this.lists[f.list].remove(f);
    f.list = list;
    f.listUs = f.lastUs;
    this.lists[list].push(f);
  }

  private tcp(f: Flow, p: Packet, dir: Direction): void {
    const halves = f.halves!;
    const mine = halves[dir];
    const peer = halves[dir ^ 1];
    const flags = p.tcpFlags;
    const ts = p.tsUs;
    if (flags & TH_RST) {
      if (f.state === 'new') this.counters.inc(A_RST_IN_HANDSHAKE);
      f.rstSeen = true;
      f.state = 'closed';
      this.moveTo(f, LIST_TCP_CLOSED);
      return;
    }
    if (f.rstSeen && (p.payloadLen > 0 || (flags & TH_SYN) !== 0)) {
      // Traffic after a RST: either the RST was forged (an evasion, e.g. suricata-verify bug 3286)
      // or a late retransmission. Keep reassembling; the flow is alive again.
      this.counters.inc(A_DATA_AFTER_RST);
      f.rstSeen = false;
      f.state = mine.started && peer.started ? 'established' : 'new';
      this.moveTo(f, f.state === 'established' ? LIST_TCP_EST : LIST_TCP_NEW);
    }
    if (flags & TH_SYN) {
      mine.startFromSyn(p.seq);
      if (flags & TH_ACK) {
        // SYN-ACK: the peer's stream starts at our acknowledgement number (missing SYN inferred).
        if (!peer.started) peer.startAt(p.ack);
        if (f.state === 'new') {
          f.state = 'established';
          this.moveTo(f, LIST_TCP_EST);
        }
      }
      if (p.payloadLen > 0) {
        this.counters.inc(A_SYN_DATA);
        mine.segment((p.seq + 1) >>> 0, p.buf, p.payloadOff, p.payloadLen, ts);
      }
      return;
    }
    if (f.state === 'new' && mine.started && peer.started) {
      f.state = 'established';
      this.moveTo(f, LIST_TCP_EST);
    } else if (f.state === 'new' && f.midstream) {
      f.state = 'established';
      this.moveTo(f, LIST_TCP_EST);
    }
    if (p.payloadLen > 0) mine.segment(p.seq, p.buf, p.payloadOff, p.payloadLen, ts);
    if (flags & TH_ACK) peer.acked(p.ack, ts);
    if (flags & TH_FIN) {
      mine.fin((p.seq + p.payloadLen) >>> 0);
      if (f.state !== 'closed') {
        f.state = 'closing';
        if (mine.finished) mine.releaseRetained();
        if (mine.finished && (peer.finished || !peer.started)) {
          // Both sides done (or a one-sided capture finished): linger briefly for retransmissions.
          f.state = 'closed';
          this.moveTo(f, LIST_TCP_CLOSED);
        }
      }
    } else if (f.state === 'closing' && mine.finished && peer.finished) {
      f.state = 'closed';
      this.moveTo(f, LIST_TCP_CLOSED);
    }
  }

  private end(f: Flow, reason: CloseReason): void {
    // Unlink from the hash chain and its list.
    const slot = f.hash & this.mask;
    const head = this.buckets[slot];
    if (head === f) {
      this.buckets[slot] = f.hnext;
    } else {
      for (let x = head; x !== undefined; x = x.hnext) {
        if (x.hnext === f) {
          x.hnext = f.hnext;
          break;
        }
      }
    }
    f.hnext = undefined;
    this.lists[f.list].remove(f);
    this.count--;
    this.counters.set(C_ACTIVE, this.count);
    f.closeReason = reason;
    const ts = f.lastUs;
    try {
      if (f.proto === IPPROTO_TCP && f.halves !== undefined) {
        f.halves[0].flush(ts);
        f.halves[1].flush(ts);
      }
      f.consumer?.end(reason, ts);
    } catch (err) {
      this.counters.inc(C_CONSUMER_ERROR);
      reportConsumerError(err);
    }
    f.consumer = undefined;
    if (f.pkts0 === 0 || f.pkts1 === 0) this.counters.inc(C_ONE_SIDED);
    this.ended?.flowEnded(flowRecord(f));
    this.recycle(f);
  }

  private recycle(f: Flow): void {
    if (this.pool.length >= MAX_POOLED_FLOWS) return;
    if (f.halves !== undefined) {
      f.halves[0].reset();
      f.halves[1].reset();
    }
    f.info = undefined;
    f.state = 'new';
    f.closeReason = 'eof';
    f.rstSeen = false;
    f.midstream = false;
    f.pkts0 = f.pkts1 = f.bytes0 = f.bytes1 = f.udpData0 = f.udpData1 = 0;
    f.hnext = f.prev = f.next = undefined;
    this.pool.push(f);
  }
}

let consumerErrorsLogged = 0;
/** Rate-limited: the first few consumer exceptions are printed with their stack, then only counted. */
const MAX_CONSUMER_ERROR_LOGS = 5;
function reportConsumerError(err: unknown): void {
  if (consumerErrorsLogged++ < MAX_CONSUMER_ERROR_LOGS) {
    process.emitWarning(`hark: a stream consumer failed and was detached from its flow: ${(err as Error)?.stack ?? String(err)}`);
  }
}

function ipString(f: Flow, base: number): string {
  return f.ipVersion === 6 ? formatIpv6(f.addr, base) : formatIpv4(f.addr[base]);
}

function flowInfo(f: Flow): FlowInfo {
  const vlan: number[] = [];
  if (f.vlanCount > 0) vlan.push(f.vlan0);
  if (f.vlanCount > 1) vlan.push(f.vlan1);
  return { flowId: f.flowId, proto: f.proto, srcIp: ipString(f, 0), srcPort: f.portA, dstIp: ipString(f, 4), dstPort: f.portB, vlan, startUs: f.startUs };
}

/** 53-bit id from the key and first timestamp: the same input always gives the same ids. */
function stableFlowId(f: Flow): number {
  let h1 = 0x3c6ef372;
  let h2 = 0x510e527f;
  const a = f.addr;
  for (let i = 0; i < 8; i++) {
    h1 = mix(h1, a[i]);
    h2 = mix(h2, a[i] ^ 0x5bd1e995);
  }
  const rest = [f.portA | (f.portB << 16), f.proto | (f.vlan0 << 8) | (f.vlan1 << 20), f.startUs % 4294967296, Math.floor(f.startUs / 4294967296)];
  for (let i = 0; i < 4; i++) {
    h1 = mix(h1, rest[i]);
    h2 = mix(h2, rest[i] ^ 0x5bd1e995);
  }
  return (fmix(h1) & 0x1fffff) * 4294967296 + fmix(h2);
}

function flowRecord(f: Flow): FlowRecord {
  const info = f.info ?? flowInfo(f);
  const h = f.proto === IPPROTO_TCP ? f.halves : undefined;
  return {
    ...info,
    endUs: f.lastUs,
    pkts: [f.pkts0, f.pkts1],
    bytes: [f.bytes0, f.bytes1],
    dataBytes: h ? [h[0].delivered, h[1].delivered] : [f.udpData0, f.udpData1],
    gaps: h ? [h[0].gaps, h[1].gaps] : [0, 0],
    gapBytes: h ? [h[0].gapBytes, h[1].gapBytes] : [0, 0],
    overlaps: h ? h[0].overlaps + h[1].overlaps : 0,
    overlapMismatches: h ? h[0].mismatches + h[1].mismatches : 0,
    state: f.state,
    closeReason: f.closeReason,
    midstream: f.midstream,
  };
}

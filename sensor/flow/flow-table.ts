/**
 * The flow table: one entry per TCP or UDP conversation, keyed the same in both directions
 * (addresses, ports, protocol, VLAN tags), with a stable flow id, idle timeouts per state measured
 * in capture time, and a memory cap that evicts the least recently active flows (counted) instead
 * of growing. TCP flows own two reassembly halves and hand ordered bytes to the consumer that the
 * `StreamFactory` returned for the flow; UDP datagrams go to a `DatagramSink`.
 * Input: decoded packets (`Packet` with `transport` set). Output: StreamConsumer / DatagramSink
 * calls and, when a flow ends, one `FlowRecord` to the `FlowEndSink`.
 *
 * Layout: a flow is a slot number. What every packet reads (key, state, counters, timestamps,
 * hash chain) is a fixed-size record in one Float64Array, the reassembly halves of slot f are
 * halves 2f and 2f+1 of a `HalfStore`, and only what a flow's first and last packets need (the
 * printable info, the consumer, the rest of an IPv6 key) lives in objects. A packet so reaches its
 * flow's state with addresses computed from the slot, instead of following a chain of objects
 * whose cache misses were most of the per-packet cost.
 */
import type { Packet } from '../decode/packet.js';
import { formatIpv4, formatIpv6, formatMac, IPPROTO_TCP } from '../decode/packet.js';
import { TH_ACK, TH_FIN, TH_RST, TH_SYN } from '../decode/transport.js';
import { Counters, defineAnomaly, defineCounter } from '../events/counters.js';
import { BYPASS, type BypassedBytes, type CloseReason, type DatagramSink, type Direction, type FlowInfo, type StreamConsumer, type StreamFactory } from './stream.js';
import { C_APP_MEMUSE } from '../events/memuse.js';
import { DEFAULT_REASSEMBLY_LIMITS, HalfStore, ReassemblyBudget, type HalfOutput, type ReassemblyLimits } from './tcp-reassembly.js';

const C_FLOWS_TCP = defineCounter('flow.tcp');
const C_FLOWS_UDP = defineCounter('flow.udp');
const C_ACTIVE = defineCounter('flow.active');
const C_MEMCAP = defineCounter('flow.memcap_evicted');
const C_TIMEOUT = defineCounter('flow.timeout');
const C_PORT_REUSE = defineCounter('tcp.port_reuse');
const C_MIDSTREAM = defineCounter('tcp.midstream_pickup');
const C_ONE_SIDED = defineCounter('flow.one_sided');
const C_CONSUMER_ERROR = defineCounter('flow.consumer_error');
const C_BYPASSED = defineCounter('flow.bypassed');
const C_BYPASSED_BYTES = defineCounter('flow.bypassed_bytes');
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
  /**
   * UDP flows to or from port 53: a DNS lookup is a query and its answer within milliseconds, and a
   * busy network makes thousands a second, each on its own source port; held for the UDP timeout
   * they would fill the table (Zeek's dns_session_timeout is 10 s).
   */
  dnsTimeoutUs: number;
  reassembly: ReassemblyLimits;
}

export const DEFAULT_FLOW_LIMITS: FlowLimits = {
  maxFlows: 500_000,
  memcapBytes: 256 << 20,
  tcpNewTimeoutUs: 60_000_000,
  tcpEstablishedTimeoutUs: 600_000_000,
  tcpClosedTimeoutUs: 10_000_000,
  udpTimeoutUs: 120_000_000,
  dnsTimeoutUs: 10_000_000,
  reassembly: DEFAULT_REASSEMBLY_LIMITS,
};

/**
 * What one flow entry costs, for the memcap: measured with a flood of 200,000 SYN-only flows
 * through the whole Sensor (node --expose-gc, heap + typed arrays after GC): ~320 B of heap (slot,
 * no consumer until data) and ~850 B of records and reassembly state in typed arrays, with the
 * arrays' growth slack. A flow carrying data costs more; its buffered bytes count separately.
 */
const FLOW_ENTRY_BYTES = 1200;
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
/** UDP flows on port 53 (FlowLimits.dnsTimeoutUs). */
const LIST_UDP_DNS = 4;
const LIST_COUNT = 5;
/** The order in which the memcap evicts: closed flows, DNS, other UDP, new (half-open scans), then established. */
const EVICTION_ORDER = [LIST_TCP_CLOSED, LIST_UDP_DNS, LIST_UDP, LIST_TCP_NEW, LIST_TCP_EST];
/** When inspection state (memuse.ts) is over its half of the memcap: the TCP flows that carry data, least recently active first. */
const APP_EVICTION_ORDER = [LIST_TCP_CLOSED, LIST_TCP_EST];
const DNS_PORT = 53;

const S_NEW = 0;
const S_ESTABLISHED = 1;
const S_CLOSING = 2;
const S_CLOSED = 3;
const STATE_NAMES: readonly FlowState[] = ['new', 'established', 'closing', 'closed'];

// The record of a flow slot: REC_STRIDE doubles (two cache lines), in the order a packet reads them.
const REC_STRIDE = 16;
/** Protocol and VLAN ids (8 + 12 + 12 bits), as packed by keyMeta. */
const R_KEY_META = 0;
/** Both ports: portA << 16 | portB ("a" is the originator). */
const R_KEY_PORTS = 1;
/** First address words (int32) of originator and responder; IPv4 keeps its addresses there. */
const R_A0 = 2;
const R_B0 = 3;
const R_IP_VERSION = 4;
/** Next slot in the hash chain, or -1. */
const R_HNEXT = 5;
/** S_NEW .. S_CLOSED. */
const R_STATE = 6;
/** 1 after a RST. */
const R_RST = 7;
const R_LAST_US = 8;
/** When the flow was last placed at the tail of its list. */
const R_LIST_US = 9;
const R_PKTS0 = 10;
const R_PKTS1 = 11;
const R_BYTES0 = 12;
const R_BYTES1 = 13;
/** Which LRU list (LIST_*). */
const R_LIST = 14;
/** symmetricHash of the key, as int32. */
const R_HASH = 15;
/** IPv6: the other address words (a1 a2 a3 b1 b2 b3), int32, in an Int32Array of this stride. */
const V6_STRIDE = 8;

/**
 * Flow slots allocated at first; doubled when they run out (never beyond maxFlows + 1). Small, so
 * that the first doublings come within the first flows: V8 then compiles the per-flow code with
 * its growth path in it instead of throwing that code away at the first growth.
 */
const INITIAL_FLOW_SLOTS = 64;

/** What a capture thread dropped of a bypassed connection (workers/bypass-table.ts). */
export interface BypassedTraffic {
  /** Frames and bytes (wire length) each way: [originator's, responder's]. */
  readonly pkts: readonly [number, number];
  readonly bytes: readonly [number, number];
  /** The sequence number after the last dropped segment each way (-1: none dropped that way). */
  readonly seqEnd: readonly [number, number];
  /** Capture time of the last dropped frame (-1: none). */
  readonly lastUs: number;
}

/**
 * Bypass before the flow table (workers/bypass-table.ts): told of each TCP flow this table
 * bypasses, with the frame that made it (the Pipeline calls `bypassed`), so that the capture
 * thread can drop the flow's later frames; asked at the flow's end what it dropped, which the
 * flow's record then counts as if the frames had come.
 */
export interface CaptureBypassSink {
  bypassed(flow: number, dir: number, linkType: number, buf: Uint8Array, off: number, capLen: number, tsUs: number): void;
  ended(flow: number): BypassedTraffic | undefined;
}

/** The parts of a flow that only its first and last packets need. */
class FlowSlot {
  portA = 0;
  portB = 0;
  proto = 0;
  vlanCount = 0;
  vlan0 = 0;
  vlan1 = 0;
  flowId = 0.5;
  startUs = 0.5;
  closeReason: CloseReason = 'eof';
  midstream = false;
  udpData0 = 0;
  udpData1 = 0;
  /** The originator's MAC as a 48-bit number (-1: none seen), formatted only into a FlowInfo. */
  srcMac = -1.5;
  info: FlowInfo | undefined = undefined;

  constructor() {
    // Every field is stored twice here, before any code is optimised: V8 treats a field written
    // only once as a constant and deoptimises the code that relied on it at the second write,
    // which for a slot's fields would come at the first reuse, well into a capture. The first
    // values of flowId and startUs are fractions so that these fields hold doubles from the start.
    this.portA = this.portB = this.proto = this.vlanCount = this.vlan0 = this.vlan1 = 0;
    this.flowId = this.startUs = 0;
    this.closeReason = 'eof';
    this.midstream = false;
    this.udpData0 = this.udpData1 = 0;
    this.srcMac = -1;
    this.info = undefined;
  }
}

/**
 * The consumer of a flow whose factory wanted none, or whose own consumer failed: it asks for the
 * flow to be bypassed, so the flow costs no more reassembly and nobody is fed half a stream.
 */
const DETACHED: StreamConsumer = {
  data: () => BYPASS,
  gap: () => BYPASS,
  end: () => undefined,
};

const macBytes = new Uint8Array(6);
function macText(mac: number): string {
  let v = mac;
  for (let i = 5; i >= 0; i--) {
    macBytes[i] = v % 256;
    v = Math.floor(v / 256);
  }
  return formatMac(macBytes, 0);
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

/** Protocol and VLAN ids packed as in R_KEY_META (VLAN ids are 12 bits, see decodeVlan). */
function keyMeta(proto: number, vlan0: number, vlan1: number): number {
  return proto | (vlan0 << 8) | (vlan1 << 20);
}

/** Initial hash buckets; doubled whenever flows outnumber buckets, so chains stay about one long (small for the same reason as the slots). */
const INITIAL_BUCKETS = 64;
/** Bucket array ceiling (4 M entries, 16 MB): beyond it chains grow instead. */
const MAX_BUCKETS = 1 << 22;

export class FlowTable implements HalfOutput {
  private rec: Float64Array = new Float64Array(INITIAL_FLOW_SLOTS * REC_STRIDE);
  private v6: Int32Array = new Int32Array(INITIAL_FLOW_SLOTS * V6_STRIDE);
  private readonly slots: FlowSlot[] = [];
  /** The consumer of each slot's TCP flow (undefined: not opened yet; DETACHED: nobody wants its bytes, or it failed). */
  private readonly consumers: (StreamConsumer | undefined)[] = new Array<StreamConsumer | undefined>(INITIAL_FLOW_SLOTS).fill(undefined);
  /** Free slots, popped from the end. */
  private readonly free: number[] = [];
  private readonly halves: HalfStore;
  // Hash buckets: the first slot of each chain, or -1.
  private heads: Int32Array = new Int32Array(INITIAL_BUCKETS).fill(-1);
  private mask = INITIAL_BUCKETS - 1;
  // Per-timeout-class LRU lists, doubly linked through the slots (-1 ends a list).
  private prev: Int32Array = new Int32Array(INITIAL_FLOW_SLOTS).fill(-1);
  private next: Int32Array = new Int32Array(INITIAL_FLOW_SLOTS).fill(-1);
  private readonly listHead = new Int32Array(LIST_COUNT).fill(-1);
  private readonly listTail = new Int32Array(LIST_COUNT).fill(-1);
  private readonly timeouts: number[];
  private readonly budget: ReassemblyBudget;
  private readonly maxFlows: number;
  private readonly memcapBytes: number;
  private count = 0;
  private nextExpireUs = 0;
  /** nextExpireUs during a batch (batchStart), else -1. */
  private heldExpireUs = -1;
  /** Deferred-retention queue length when the batch began. */
  private batchMark = 0;
  private nowUs = 0;
  /** A flow whose consumer asked for bypass during the current packet, or -1. */
  private wantBypass = -1;
  /**
   * With a CaptureBypassSink: 2 * flow + direction of the flow the last packet made this table
   * bypass (that packet's own flow), else -1. The Pipeline, which has the frame, hands it on.
   */
  bypassedNow = -1;

  constructor(
    private readonly counters: Counters,
    private readonly factory: StreamFactory | undefined,
    private readonly datagrams: DatagramSink | undefined,
    private readonly ended: FlowEndSink | undefined,
    limits: FlowLimits = DEFAULT_FLOW_LIMITS,
    /** False: a consumer's BYPASS is not acted on, and every flow is reassembled to its end. */
    private readonly bypassAllowed = true,
    /** Told of what the capture thread dropped of each bypassed flow, at its end. */
    private readonly captureBypass: CaptureBypassSink | undefined = undefined,
  ) {
    this.timeouts = [limits.tcpNewTimeoutUs, limits.tcpEstablishedTimeoutUs, limits.tcpClosedTimeoutUs, limits.udpTimeoutUs, limits.dnsTimeoutUs];
    this.budget = new ReassemblyBudget(Math.floor(limits.memcapBytes / 2));
    this.maxFlows = limits.maxFlows;
    this.memcapBytes = limits.memcapBytes;
    this.halves = new HalfStore(this, counters, this.budget, limits.reassembly, 2 * INITIAL_FLOW_SLOTS);
    this.addSlots(0, INITIAL_FLOW_SLOTS);
    // Fields replaced when the table grows are written a second time now, so that V8 does not
    // treat them as constants and deoptimise the per-packet code at the first growth.
    this.rec = new Float64Array(this.rec.length);
    this.v6 = new Int32Array(this.v6.length);
    this.prev = new Int32Array(this.prev.length).fill(-1);
    this.next = new Int32Array(this.next.length).fill(-1);
    this.heads = new Int32Array(this.heads.length).fill(-1);
    this.mask = this.heads.length - 1;
    this.count = 0;
    this.nextExpireUs = 0.5;
    this.nowUs = 0.5;
    this.nextExpireUs = 0;
    this.nowUs = 0;
  }

  get active(): number {
    return this.count;
  }

  /** The newest packet time seen (µs; 0 before the first TCP or UDP packet). */
  get latestUs(): number {
    return this.nowUs;
  }

  /**
   * Takes one decoded TCP or UDP packet; its `frames` and `wireLen` (one frame, or every fragment
   * of a reassembled datagram) are counted as the flow's packets and bytes.
   */
  packet(p: Packet): void {
    const ts = p.tsUs;
    if (ts > this.nowUs) this.nowUs = ts;
    if (this.nowUs >= this.nextExpireUs) {
      this.expire(this.nowUs);
      this.nextExpireUs = this.nowUs + EXPIRE_INTERVAL_US;
    }
    const h = symmetricHash(p);
    const meta = keyMeta(p.transport, p.vlan0, p.vlan1);
    let dir = -1;
    let f = this.heads[h & this.mask];
    for (; f >= 0; f = this.rec[f * REC_STRIDE + R_HNEXT] | 0) {
      dir = this.matchDirection(f, p, meta);
      if (dir >= 0) break;
    }
    const isTcp = p.transport === IPPROTO_TCP;
    if (f >= 0 && isTcp && (p.tcpFlags & (TH_SYN | TH_ACK | TH_RST)) === TH_SYN && this.isPortReuse(f, p, dir)) {
      this.counters.inc(C_PORT_REUSE);
      const state = this.rec[f * REC_STRIDE + R_STATE];
      this.end(f, this.rec[f * REC_STRIDE + R_RST] !== 0 ? 'rst' : state === S_CLOSED || state === S_CLOSING ? 'fin' : 'port_reuse');
      f = -1;
    }
    if (f < 0) {
      f = this.create(p, h);
      dir = this.matchDirection(f, p, meta);
    }
    const r = this.rec;
    const o = f * REC_STRIDE;
    r[o + R_LAST_US] = ts;
    if (dir === 0) {
      if (r[o + R_PKTS0] === 0 && p.macBuf !== undefined) this.noteSourceMac(f, p.macBuf, p.macOff);
      r[o + R_PKTS0] += p.frames;
      r[o + R_BYTES0] += p.wireLen;
    } else {
      r[o + R_PKTS1] += p.frames;
      r[o + R_BYTES1] += p.wireLen;
    }
    if (ts - r[o + R_LIST_US] > LRU_GRANULARITY_US) this.touch(f, ts);
    try {
      if (isTcp) this.tcp(f, p, dir);
      else this.udp(f, p, dir as Direction);
    } catch (err) {
      // A consumer bug must not take the sensor down: count it and stop feeding that flow.
      this.counters.inc(C_CONSUMER_ERROR);
      const failed = this.consumers[f];
      this.consumers[f] = DETACHED;
      // Ended now, as at the end of input, so that it gives back what it holds (memuse.ts): it is
      // never called again, and a charge kept for good would make the memcap evict everything else.
      if (failed !== undefined && failed !== DETACHED) {
        try {
          failed.end('eof', ts);
        } catch {
          // counted once above; what its end() released before throwing stays released
        }
      }
      if (isTcp && this.bypassAllowed) this.wantBypass = f;
      reportConsumerError(err);
    }
    if (this.wantBypass >= 0) this.bypassWanted(f, dir);
    if (this.count > this.maxFlows || this.memoryEstimate() > this.memcapBytes) this.evict();
  }

  /** End of input: every flow ends with reason `eof` (or how it closed). */
  flush(): void {
    for (let i = 0; i < LIST_COUNT; i++) {
      for (let f = this.listHead[i]; f >= 0; f = this.listHead[i]) {
        const o = f * REC_STRIDE;
        this.end(f, this.rec[o + R_RST] !== 0 ? 'rst' : this.rec[o + R_STATE] === S_CLOSED ? 'fin' : 'eof');
      }
    }
  }

  /**
   * A batch of packets handed over grouped by connection, out of capture order across flows, begins
   * (workers/locality.ts). Until `batchEnd`, packets do not run expiry: a packet handed over later
   * than another flow's later packets must not find its own flow timed out.
   */
  batchStart(): void {
    if (this.heldExpireUs >= 0) return;
    this.heldExpireUs = this.nextExpireUs;
    this.nextExpireUs = Infinity;
    this.batchMark = this.halves.pendingCount;
  }

  /** The batch is over: source order is restored where reassembly needs it, and due expiry runs. */
  batchEnd(): void {
    if (this.heldExpireUs < 0) return;
    this.halves.sortPendingFrom(this.batchMark);
    this.nextExpireUs = this.heldExpireUs;
    this.heldExpireUs = -1;
    if (this.nowUs >= this.nextExpireUs) {
      this.expire(this.nowUs);
      this.nextExpireUs = this.nowUs + EXPIRE_INTERVAL_US;
    }
  }

  /** Ends flows idle longer than their state's timeout, as of capture time `nowUs`. */
  expire(nowUs: number): void {
    for (let i = 0; i < LIST_COUNT; i++) {
      const limit = this.timeouts[i];
      for (let f = this.listHead[i]; f >= 0 && nowUs - this.rec[f * REC_STRIDE + R_LAST_US] > limit; f = this.listHead[i]) {
        if (i === LIST_TCP_CLOSED) this.end(f, this.rec[f * REC_STRIDE + R_RST] !== 0 ? 'rst' : 'fin');
        else {
          this.counters.inc(C_TIMEOUT);
          this.end(f, 'timeout');
        }
      }
    }
  }

  /**
   * The capture source is about to write `buf[from..to)` (see ReadOptions.onOverwrite): until
   * then, reassembly keeps the bytes it delivered from `buf` by reference instead of copying them.
   * `undefined` detaches the source.
   */
  sourceOverwrite(buf: Uint8Array | undefined, from: number, to: number): void {
    this.halves.overwrite(buf, from, to);
  }

  /** HalfOutput: in-order bytes of half h (slot h >> 1, direction h & 1). */
  halfData(h: number, bytes: Uint8Array, tsUs: number): void {
    const c = this.consumers[h >> 1] ?? this.openConsumer(h >> 1);
    if (c !== undefined && c.data((h & 1) as Direction, bytes, tsUs) === BYPASS && this.bypassAllowed) this.wantBypass = h >> 1;
  }

  /** HalfOutput: bytes of half h that were never seen. */
  halfGap(h: number, len: number, tsUs: number): void {
    const c = this.consumers[h >> 1] ?? this.openConsumer(h >> 1);
    if (c !== undefined && c.gap((h & 1) as Direction, len, tsUs) === BYPASS && this.bypassAllowed) this.wantBypass = h >> 1;
  }

  /**
   * The flow whose consumer asked (BYPASS) during this packet stops being reassembled: both halves
   * drop what they hold, and its later segments only move their sequence on. Applied after the
   * packet, never inside a half's own delivery.
   */
  private bypassWanted(current: number, dir: number): void {
    const f = this.wantBypass;
    this.wantBypass = -1;
    if (this.halves.isBypassed(2 * f)) return;
    this.halves.bypass(2 * f);
    this.halves.bypass(2 * f + 1);
    this.counters.inc(C_BYPASSED);
    if (f === current && this.captureBypass !== undefined && this.slots[f].proto === IPPROTO_TCP) this.bypassedNow = 2 * f + dir;
  }

  /**
   * A TCP flow's consumer (and its printable FlowInfo) is made when its first byte (or gap) is
   * delivered, not at its first packet: a SYN flood or a port scan makes flows that never carry
   * data, and each must cost only its table entry.
   */
  private openConsumer(f: number): StreamConsumer | undefined {
    const factory = this.factory;
    if (factory === undefined) return undefined;
    const slot = this.slots[f];
    const info = (slot.info ??= this.flowInfo(f));
    const c = factory.open(info);
    if (c !== undefined) return (this.consumers[f] = c);
    this.consumers[f] = DETACHED;
    if (this.bypassAllowed) this.wantBypass = f;
    return undefined;
  }

  /** Out-of-order bytes held across all flows (the reassembly budget in use). */
  heldBytes(): number {
    return this.budget.held;
  }

  /** Flow entries, out-of-order bytes (and their segment records), retention rings, and the inspection state charged by the flows' consumers (memuse.ts). */
  private memoryEstimate(): number {
    return this.count * FLOW_ENTRY_BYTES + this.budget.held * 2 + this.budget.ringBytes + this.counters.values[C_APP_MEMUSE];
  }

  private evict(): void {
    // Inspection state is held by flows that carried data: past its half of the memcap, the least
    // recently active of those go first, so that a crowd of idle connections parked mid-message
    // cannot make every new connection be evicted at its SYN.
    const appLimit = this.memcapBytes / 2;
    if (this.counters.values[C_APP_MEMUSE] > appLimit) {
      for (const i of APP_EVICTION_ORDER) {
        while (this.listHead[i] >= 0 && this.counters.values[C_APP_MEMUSE] > appLimit && this.memoryEstimate() > this.memcapBytes) {
          this.counters.inc(C_MEMCAP);
          this.end(this.listHead[i], 'memcap');
        }
      }
    }
    for (const i of EVICTION_ORDER) {
      while (this.listHead[i] >= 0 && (this.count > this.maxFlows || this.memoryEstimate() > this.memcapBytes)) {
        this.counters.inc(C_MEMCAP);
        this.end(this.listHead[i], 'memcap');
      }
    }
  }

  /** 0 when `p` goes originator -> responder, 1 for the reverse, -1 when slot f holds another flow. */
  private matchDirection(f: number, p: Packet, meta: number): number {
    const r = this.rec;
    const o = f * REC_STRIDE;
    if (r[o + R_KEY_META] !== meta || r[o + R_IP_VERSION] !== p.ipVersion) return -1;
    const b = p.addr;
    const sp = p.srcPort;
    const dp = p.dstPort;
    if (r[o + R_KEY_PORTS] === ((sp << 16) | dp) && r[o + R_A0] === (b[0] | 0) && r[o + R_B0] === (b[4] | 0) && (p.ipVersion === 4 || this.sameV6(f, b, 0))) return 0;
    if (r[o + R_KEY_PORTS] === ((dp << 16) | sp) && r[o + R_A0] === (b[4] | 0) && r[o + R_B0] === (b[0] | 0) && (p.ipVersion === 4 || this.sameV6(f, b, 4))) return 1;
    return -1;
  }

  /** IPv6: address words 1-3 of both sides match the packet's (`from` 0 forward, 4 reverse). */
  private sameV6(f: number, b: Uint32Array, from: number): boolean {
    const w = this.v6;
    const o = f * V6_STRIDE;
    const to = 4 - from;
    return w[o] === (b[from + 1] | 0) && w[o + 1] === (b[from + 2] | 0) && w[o + 2] === (b[from + 3] | 0) && w[o + 3] === (b[to + 1] | 0) && w[o + 4] === (b[to + 2] | 0) && w[o + 5] === (b[to + 3] | 0);
  }

  /** A new SYN (the caller checked the flags) on a finished flow, or with a different initial sequence number, starts a new connection. */
  private isPortReuse(f: number, p: Packet, dir: number): boolean {
    if (dir !== 0) return false;
    const hs = this.halves;
    const h0 = 2 * f;
    const o = f * REC_STRIDE;
    // The client has sent nothing on this flow yet: its SYN is this connection's own, arriving late
    // (a TAP that delivers each direction on its own port can hand over the server's side first).
    if (this.rec[o + R_PKTS0] === 0) return false;
    const state = this.rec[o + R_STATE];
    if (state === S_CLOSED || state === S_CLOSING || this.rec[o + R_RST] !== 0) return !(hs.fromSyn(h0) && hs.isn(h0) === p.seq && hs.delivered(h0) === 0);
    return hs.fromSyn(h0) && hs.isn(h0) !== p.seq && hs.delivered(h0) + hs.delivered(h0 + 1) > 0;
  }

  /** Sets the originator's MAC on the flow info (at its first packet). */
  private noteSourceMac(f: number, b: Uint8Array, o: number): void {
    const slot = this.slots[f];
    slot.srcMac = b[o] * 0x10000000000 + b[o + 1] * 0x100000000 + ((b[o + 2] << 24) >>> 0) + (b[o + 3] << 16) + (b[o + 4] << 8) + b[o + 5];
    if (slot.info !== undefined) (slot.info as { srcMac?: string }).srcMac = macText(slot.srcMac);
  }

  private create(p: Packet, hash: number): number {
    if (this.free.length === 0) this.growSlots();
    const f = this.free.pop()!;
    const slot = this.slots[f];
    const isTcp = p.transport === IPPROTO_TCP;
    // Who opened the conversation: a SYN's sender; a SYN-ACK's receiver; otherwise the side not on
    // a well-known port (midstream pickup, or UDP answers seen before questions).
    const sp = p.srcPort;
    const dp = p.dstPort;
    let swap = false;
    if (isTcp && (p.tcpFlags & (TH_SYN | TH_ACK)) === (TH_SYN | TH_ACK)) swap = true;
    else if (!(isTcp && (p.tcpFlags & TH_SYN) !== 0)) swap = sp < 1024 && dp >= 1024;
    const b = p.addr;
    const s = swap ? 4 : 0;
    const d = swap ? 0 : 4;
    const r = this.rec;
    const o = f * REC_STRIDE;
    slot.portA = swap ? dp : sp;
    slot.portB = swap ? sp : dp;
    slot.proto = p.transport;
    slot.vlanCount = p.vlanCount;
    slot.vlan0 = p.vlan0;
    slot.vlan1 = p.vlan1;
    slot.startUs = p.tsUs;
    r[o + R_KEY_META] = keyMeta(p.transport, p.vlan0, p.vlan1);
    r[o + R_KEY_PORTS] = (slot.portA << 16) | slot.portB;
    r[o + R_A0] = b[s] | 0;
    r[o + R_B0] = b[d] | 0;
    r[o + R_IP_VERSION] = p.ipVersion;
    const w = this.v6;
    const v = f * V6_STRIDE;
    w[v] = b[s + 1];
    w[v + 1] = b[s + 2];
    w[v + 2] = b[s + 3];
    w[v + 3] = b[d + 1];
    w[v + 4] = b[d + 2];
    w[v + 5] = b[d + 3];
    r[o + R_HASH] = hash | 0;
    r[o + R_LAST_US] = p.tsUs;
    r[o + R_LIST_US] = p.tsUs;
    slot.flowId = this.stableFlowId(f);
    const bucket = hash & this.mask;
    r[o + R_HNEXT] = this.heads[bucket];
    this.heads[bucket] = f;
    this.count++;
    if (this.count > this.heads.length && this.heads.length < MAX_BUCKETS) this.growBuckets();
    this.counters.set(C_ACTIVE, this.count);
    // The printable FlowInfo (address strings) only when a consumer will see it: for UDP now, for
    // TCP with the consumer at the first byte delivered (openConsumer); otherwise it is made when
    // the flow's record is (most UDP flows of a busy link are two-packet DNS lookups).
    if (!isTcp && this.datagrams !== undefined) slot.info = this.flowInfo(f);
    let list: number;
    if (isTcp) {
      this.counters.inc(C_FLOWS_TCP);
      list = LIST_TCP_NEW;
      // Midstream: the client's SYN was not the first packet seen (a SYN-ACK first means it was missed).
      if ((p.tcpFlags & (TH_SYN | TH_ACK)) !== TH_SYN) {
        slot.midstream = true;
        this.counters.inc(C_MIDSTREAM);
      }
    } else {
      this.counters.inc(C_FLOWS_UDP);
      list = sp === DNS_PORT || dp === DNS_PORT ? LIST_UDP_DNS : LIST_UDP;
    }
    r[o + R_LIST] = list;
    this.push(list, f);
    return f;
  }

  /**
   * Slots [from, to) with their cold parts, free (handed out lowest first). The arrays only ever
   * grow by push, so their element kinds, and the code compiled against them, stay put.
   */
  private addSlots(from: number, to: number): void {
    for (let f = from; f < to; f++) this.slots.push(new FlowSlot());
    for (let f = this.consumers.length; f < to; f++) this.consumers.push(undefined);
    for (let f = to - 1; f >= from; f--) this.free.push(f);
  }

  private growSlots(): void {
    const old = this.slots.length;
    const n = old * 2;
    const rec = new Float64Array(n * REC_STRIDE);
    rec.set(this.rec);
    this.rec = rec;
    const v6 = new Int32Array(n * V6_STRIDE);
    v6.set(this.v6);
    this.v6 = v6;
    const prev = new Int32Array(n).fill(-1);
    prev.set(this.prev);
    this.prev = prev;
    const next = new Int32Array(n).fill(-1);
    next.set(this.next);
    this.next = next;
    this.halves.grow(2 * n);
    this.addSlots(old, n);
  }

  private growBuckets(): void {
    const n = this.heads.length * 2;
    const heads = new Int32Array(n).fill(-1);
    const mask = n - 1;
    const r = this.rec;
    // Every slot on a chain is linked again from its own hash.
    for (let b = 0; b < this.heads.length; b++) {
      for (let f = this.heads[b]; f >= 0; ) {
        const o = f * REC_STRIDE;
        const nextInChain = r[o + R_HNEXT];
        const bucket = r[o + R_HASH] & mask;
        r[o + R_HNEXT] = heads[bucket];
        heads[bucket] = f;
        f = nextInChain;
      }
    }
    this.heads = heads;
    this.mask = mask;
  }

  private push(list: number, f: number): void {
    const tail = this.listTail[list];
    this.prev[f] = tail;
    this.next[f] = -1;
    if (tail >= 0) this.next[tail] = f;
    else this.listHead[list] = f;
    this.listTail[list] = f;
  }

  private remove(list: number, f: number): void {
    const p = this.prev[f];
    const n = this.next[f];
    if (p >= 0) this.next[p] = n;
    else this.listHead[list] = n;
    if (n >= 0) this.prev[n] = p;
    else this.listTail[list] = p;
    this.prev[f] = -1;
    this.next[f] = -1;
  }

  /** Moves a flow to the tail of its timeout list (at most once per LRU_GRANULARITY_US). */
  private touch(f: number, ts: number): void {
    const o = f * REC_STRIDE;
    const list = this.rec[o + R_LIST];
    this.remove(list, f);
    this.push(list, f);
    this.rec[o + R_LIST_US] = ts;
  }

  private moveTo(f: number, list: number): void {
    const r = this.rec;
    const o = f * REC_STRIDE;
    if (r[o + R_LIST] === list) return;
    this.remove(r[o + R_LIST], f);
    r[o + R_LIST] = list;
    r[o + R_LIST_US] = r[o + R_LAST_US];
    this.push(list, f);
  }

  private udp(f: number, p: Packet, dir: Direction): void {
    const slot = this.slots[f];
    if (dir === 0) slot.udpData0 += p.payloadLen;
    else slot.udpData1 += p.payloadLen;
    if (this.datagrams !== undefined && slot.info !== undefined) this.datagrams.datagram(slot.info, dir, p.buf.subarray(p.payloadOff, p.payloadOff + p.payloadLen), p.tsUs);
  }

  private tcp(f: number, p: Packet, dir: number): void {
    const hs = this.halves;
    const mine = 2 * f + dir;
    const peer = 2 * f + (dir ^ 1);
    const flags = p.tcpFlags;
    const ts = p.tsUs;
    const r = this.rec;
    const o = f * REC_STRIDE;
    if ((flags & (TH_RST | TH_SYN | TH_FIN)) === 0 && r[o + R_STATE] === S_ESTABLISHED && r[o + R_RST] === 0) {
      // The common case: data and/or an ACK on an established connection.
      if (p.payloadLen > 0) hs.segment(mine, p.seq, p.buf, p.payloadOff, p.payloadLen, ts);
      if (flags & TH_ACK) hs.acked(peer, p.ack, ts);
      return;
    }
    if (flags & TH_RST) {
      if (r[o + R_STATE] === S_NEW) this.counters.inc(A_RST_IN_HANDSHAKE);
      r[o + R_RST] = 1;
      r[o + R_STATE] = S_CLOSED;
      this.moveTo(f, LIST_TCP_CLOSED);
      return;
    }
    if (r[o + R_RST] !== 0 && (p.payloadLen > 0 || (flags & TH_SYN) !== 0)) {
      // Traffic after a RST: either the RST was forged (an evasion, e.g. suricata-verify bug 3286)
      // or a late retransmission. Keep reassembling; the flow is alive again.
      this.counters.inc(A_DATA_AFTER_RST);
      r[o + R_RST] = 0;
      const established = hs.started(mine) && hs.started(peer);
      r[o + R_STATE] = established ? S_ESTABLISHED : S_NEW;
      this.moveTo(f, established ? LIST_TCP_EST : LIST_TCP_NEW);
    }
    if (flags & TH_SYN) {
      hs.startFromSyn(mine, p.seq);
      if (flags & TH_ACK) {
        // SYN-ACK: the peer's stream starts at our acknowledgement number (missing SYN inferred).
        if (!hs.started(peer)) hs.startAt(peer, p.ack);
        if (r[o + R_STATE] === S_NEW) {
          r[o + R_STATE] = S_ESTABLISHED;
          this.moveTo(f, LIST_TCP_EST);
        }
      }
      if (p.payloadLen > 0) {
        this.counters.inc(A_SYN_DATA);
        hs.segment(mine, (p.seq + 1) >>> 0, p.buf, p.payloadOff, p.payloadLen, ts);
      }
      return;
    }
    if (r[o + R_STATE] === S_NEW && hs.started(mine) && hs.started(peer)) {
      r[o + R_STATE] = S_ESTABLISHED;
      this.moveTo(f, LIST_TCP_EST);
    } else if (r[o + R_STATE] === S_NEW && this.slots[f].midstream) {
      r[o + R_STATE] = S_ESTABLISHED;
      this.moveTo(f, LIST_TCP_EST);
    }
    if (p.payloadLen > 0) hs.segment(mine, p.seq, p.buf, p.payloadOff, p.payloadLen, ts);
    if (flags & TH_ACK) hs.acked(peer, p.ack, ts);
    if (flags & TH_FIN) {
      hs.fin(mine, (p.seq + p.payloadLen) >>> 0);
      if (r[o + R_STATE] !== S_CLOSED) {
        r[o + R_STATE] = S_CLOSING;
        if (hs.finished(mine)) hs.releaseRetained(mine);
        if (hs.finished(mine) && (hs.finished(peer) || !hs.started(peer))) {
          // Both sides done (or a one-sided capture finished): linger briefly for retransmissions.
          r[o + R_STATE] = S_CLOSED;
          this.moveTo(f, LIST_TCP_CLOSED);
        }
      }
    } else if (r[o + R_STATE] === S_CLOSING && hs.finished(mine) && hs.finished(peer)) {
      r[o + R_STATE] = S_CLOSED;
      this.moveTo(f, LIST_TCP_CLOSED);
    }
  }

  private end(f: number, reason: CloseReason): void {
    const r = this.rec;
    const o = f * REC_STRIDE;
    // Unlink from the hash chain and its list.
    const bucket = r[o + R_HASH] & this.mask;
    const head = this.heads[bucket];
    if (head === f) {
      this.heads[bucket] = r[o + R_HNEXT];
    } else {
      for (let x = head; x >= 0; x = r[x * REC_STRIDE + R_HNEXT]) {
        if (r[x * REC_STRIDE + R_HNEXT] === f) {
          r[x * REC_STRIDE + R_HNEXT] = r[o + R_HNEXT];
          break;
        }
      }
    }
    r[o + R_HNEXT] = -1;
    this.remove(r[o + R_LIST], f);
    this.count--;
    this.counters.set(C_ACTIVE, this.count);
    const slot = this.slots[f];
    slot.closeReason = reason;
    if (this.captureBypass !== undefined && slot.proto === IPPROTO_TCP && this.halves.isBypassed(2 * f)) this.addCaptureBypassed(f);
    const ts = r[o + R_LAST_US];
    try {
      let bypassed: BypassedBytes | undefined;
      if (slot.proto === IPPROTO_TCP) {
        this.halves.flush(2 * f, ts);
        this.halves.flush(2 * f + 1, ts);
        if (this.halves.isBypassed(2 * f)) {
          bypassed = [this.halves.bypassedBytes(2 * f), this.halves.bypassedBytes(2 * f + 1)];
          this.counters.inc(C_BYPASSED_BYTES, bypassed[0] + bypassed[1]);
        }
      }
      this.consumers[f]?.end(reason, ts, bypassed);
    } catch (err) {
      this.counters.inc(C_CONSUMER_ERROR);
      reportConsumerError(err);
    }
    this.consumers[f] = undefined;
    if (this.wantBypass === f) this.wantBypass = -1;
    // ended (evicted) by the packet that made it bypass: nothing for the capture thread to drop
    if (this.bypassedNow >> 1 === f) this.bypassedNow = -1;
    if (r[o + R_PKTS0] === 0 || r[o + R_PKTS1] === 0) this.counters.inc(C_ONE_SIDED);
    if (this.ended !== undefined) this.ended.flowEnded(this.flowRecord(f));
    this.recycle(f);
  }

  /** What the capture thread dropped of bypassed flow f goes into its record, as if it had come. */
  private addCaptureBypassed(f: number): void {
    const t = this.captureBypass!.ended(f);
    if (t === undefined) return;
    const r = this.rec;
    const o = f * REC_STRIDE;
    r[o + R_PKTS0] += t.pkts[0];
    r[o + R_PKTS1] += t.pkts[1];
    r[o + R_BYTES0] += t.bytes[0];
    r[o + R_BYTES1] += t.bytes[1];
    if (t.lastUs > r[o + R_LAST_US]) r[o + R_LAST_US] = t.lastUs;
    for (let d = 0; d < 2; d++) if (t.seqEnd[d] >= 0) this.halves.bypassedTo(2 * f + d, t.seqEnd[d]);
  }

  /** Slot f back to the free list, with new-flow state. */
  private recycle(f: number): void {
    this.halves.reset(2 * f);
    this.halves.reset(2 * f + 1);
    const slot = this.slots[f];
    slot.info = undefined;
    slot.srcMac = -1;
    slot.closeReason = 'eof';
    slot.midstream = false;
    slot.udpData0 = 0;
    slot.udpData1 = 0;
    const r = this.rec;
    const o = f * REC_STRIDE;
    r[o + R_STATE] = S_NEW;
    r[o + R_RST] = 0;
    r[o + R_PKTS0] = 0;
    r[o + R_PKTS1] = 0;
    r[o + R_BYTES0] = 0;
    r[o + R_BYTES1] = 0;
    this.free.push(f);
  }

  private ipString(f: number, responder: boolean): string {
    const o = f * REC_STRIDE;
    const first = this.rec[o + (responder ? R_B0 : R_A0)];
    if (this.rec[o + R_IP_VERSION] !== 6) return formatIpv4(first >>> 0);
    const w = this.v6;
    const v = f * V6_STRIDE + (responder ? 3 : 0);
    v6Words[0] = first;
    v6Words[1] = w[v];
    v6Words[2] = w[v + 1];
    v6Words[3] = w[v + 2];
    return formatIpv6(v6Words, 0);
  }

  private flowInfo(f: number): FlowInfo {
    const slot = this.slots[f];
    const vlan: number[] = [];
    if (slot.vlanCount > 0) vlan.push(slot.vlan0);
    if (slot.vlanCount > 1) vlan.push(slot.vlan1);
    const info: FlowInfo = { flowId: slot.flowId, proto: slot.proto, srcIp: this.ipString(f, false), srcPort: slot.portA, dstIp: this.ipString(f, true), dstPort: slot.portB, vlan, startUs: slot.startUs };
    if (slot.srcMac >= 0) (info as { srcMac?: string }).srcMac = macText(slot.srcMac);
    if (slot.midstream) (info as { midstream?: boolean }).midstream = true;
    return info;
  }

  /** 53-bit id from the key and first timestamp: the same input always gives the same ids. */
  private stableFlowId(f: number): number {
    const K = 0x5bd1e995;
    const r = this.rec;
    const o = f * REC_STRIDE;
    const w = this.v6;
    const v = f * V6_STRIDE;
    const slot = this.slots[f];
    // Address words in key order: originator 0-3, responder 0-3 (zero beyond word 0 for IPv4).
    const a0 = r[o + R_A0];
    const b0 = r[o + R_B0];
    let h1 = mix(mix(mix(mix(mix(mix(mix(mix(0x3c6ef372, a0), w[v]), w[v + 1]), w[v + 2]), b0), w[v + 3]), w[v + 4]), w[v + 5]);
    let h2 = mix(mix(mix(mix(mix(mix(mix(mix(0x510e527f, a0 ^ K), w[v] ^ K), w[v + 1] ^ K), w[v + 2] ^ K), b0 ^ K), w[v + 3] ^ K), w[v + 4] ^ K), w[v + 5] ^ K);
    const r0 = slot.portA | (slot.portB << 16);
    const r1 = slot.proto | (slot.vlan0 << 8) | (slot.vlan1 << 20);
    const r2 = slot.startUs % 4294967296;
    const r3 = Math.floor(slot.startUs / 4294967296);
    h1 = mix(mix(mix(mix(h1, r0), r1), r2), r3);
    h2 = mix(mix(mix(mix(h2, r0 ^ K), r1 ^ K), r2 ^ K), r3 ^ K);
    return (fmix(h1) & 0x1fffff) * 4294967296 + fmix(h2);
  }

  private flowRecord(f: number): FlowRecord {
    const slot = this.slots[f];
    const info = slot.info ?? this.flowInfo(f);
    const r = this.rec;
    const o = f * REC_STRIDE;
    const tcp = slot.proto === IPPROTO_TCP;
    const hs = this.halves;
    const h0 = 2 * f;
    // Built field by field in FlowInfo's order: V8 (Node 20) takes ~2 us per property added after
    // an object spread ({...info, endUs, ...}: 27 us a record, measured), a lot per ended flow.
    const rec: { -readonly [K in keyof FlowRecord]: FlowRecord[K] } = {
      flowId: info.flowId, proto: info.proto, srcIp: info.srcIp, srcPort: info.srcPort, dstIp: info.dstIp, dstPort: info.dstPort,
      vlan: info.vlan, startUs: info.startUs,
    } as { -readonly [K in keyof FlowRecord]: FlowRecord[K] };
    if (info.srcMac !== undefined) rec.srcMac = info.srcMac;
    rec.endUs = r[o + R_LAST_US];
    rec.pkts = [r[o + R_PKTS0], r[o + R_PKTS1]];
    rec.bytes = [r[o + R_BYTES0], r[o + R_BYTES1]];
    rec.dataBytes = tcp ? [hs.delivered(h0), hs.delivered(h0 + 1)] : [slot.udpData0, slot.udpData1];
    rec.gaps = tcp ? [hs.gaps(h0), hs.gaps(h0 + 1)] : [0, 0];
    rec.gapBytes = tcp ? [hs.gapBytes(h0), hs.gapBytes(h0 + 1)] : [0, 0];
    rec.overlaps = tcp ? hs.overlaps(h0) + hs.overlaps(h0 + 1) : 0;
    rec.overlapMismatches = tcp ? hs.mismatches(h0) + hs.mismatches(h0 + 1) : 0;
    rec.state = STATE_NAMES[r[o + R_STATE]];
    rec.closeReason = slot.closeReason;
    rec.midstream = slot.midstream;
    return rec;
  }

}

/** Scratch words for formatting an IPv6 address. */
const v6Words = new Uint32Array(4);

let consumerErrorsLogged = 0;
/** Rate-limited: the first few consumer exceptions are printed with their stack, then only counted. */
const MAX_CONSUMER_ERROR_LOGS = 5;
function reportConsumerError(err: unknown): void {
  if (consumerErrorsLogged++ < MAX_CONSUMER_ERROR_LOGS) {
    process.emitWarning(`hark: a stream consumer failed and was detached from its flow: ${(err as Error)?.stack ?? String(err)}`);
  }
}

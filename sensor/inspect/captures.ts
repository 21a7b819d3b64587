/**
 * Capture collector: turns phrase hits aggregated per message into capture events, merging
 * repeats of the same phrase by the same device on the same URL within a time window into one
 * capture whose `count` is the sum (a page repeating a word a hundred times is one capture).
 * Input: `CaptureCandidate`s in capture-time order. Output: each capture is emitted at once (so
 * it is stored at once and survives a crash); when repeats were merged into it, it is emitted
 * again with the same id and the final count once its window has passed (or at `flush`): the
 * latest event of an id wins. Bounded: at most MAX_PENDING_CAPTURES windows open.
 */
import { Counters, defineCounter } from '../events/counters.js';
import { isoMicros, stableId, type CaptureEvent, type CaptureField, type CaptureSource, type Device } from '../events/capture.js';
import type { Direction, FlowInfo } from '../flow/stream.js';
import type { Phrase } from '../../rules/dictionary.js';

/** Default merge window: a page reloaded or a search retyped within a minute is one event. */
export const DEFAULT_DEDUP_WINDOW_US = 60_000_000;
/** Captures held for merging; beyond it the oldest is emitted early (counted). */
const MAX_PENDING_CAPTURES = 100_000;

const C_CAPTURES = defineCounter('capture.emitted');
const C_UPDATES = defineCounter('capture.count_updates');
const C_MERGED = defineCounter('capture.merged');
const C_EARLY = defineCounter('capture.pending_overflow');
const C_ALLOW_LISTED = defineCounter('capture.allow_listed');
const C_IGNORED_NETWORK = defineCounter('capture.ignored_network');

export interface CaptureCandidate {
  readonly flow: FlowInfo;
  readonly dir: Direction;
  readonly messageIndex: number;
  readonly source: CaptureSource;
  readonly field: CaptureField;
  readonly host?: string;
  readonly url?: string;
  readonly method?: string;
  readonly status?: number;
  readonly phraseIndex: number;
  readonly phrase: Phrase;
  readonly count: number;
  readonly context: string;
  readonly tsUs: number;
  /** Default `http`. */
  readonly appProto?: 'http' | 'http2';
  readonly decrypted?: boolean;
}

interface Pending {
  event: CaptureEvent;
  firstUs: number;
  /** The count already emitted for this id. */
  emittedCount: number;
}

/** Site knowledge the collector applies to every capture. */
export interface CaptureAttribution {
  /** Who a device was at a time (the identity stage's answer), for the capture's `device`. */
  identify?(ip: string, tsUs: number): Omit<Device, 'ip'> | undefined;
  /** Which side of a flow is the inside user (the device), or `ignore` for networks not watched. */
  userSide?(srcIp: string, dstIp: string): 'src' | 'dst' | 'ignore';
  /** True for allow-listed hosts: their traffic is never captured. */
  allowed?(host: string): boolean;
}

/** The user's device of a flow at `tsUs`: its address, the MAC as seen on the wire (originator only),
 * and who the identity stage says it was, with the sources. */
export function deviceOf(f: FlowInfo, side: 'src' | 'dst', tsUs: number, attribution: CaptureAttribution): Device {
  const ip = side === 'src' ? f.srcIp : f.dstIp;
  const known = attribution.identify?.(ip, tsUs);
  const mac = (side === 'src' ? f.srcMac : undefined) ?? known?.mac;
  return {
    ip,
    ...(mac !== undefined ? { mac } : {}),
    ...(known?.hostname !== undefined ? { hostname: known.hostname } : {}),
    ...(known?.user !== undefined ? { user: known.user } : {}),
    ...(known?.sources !== undefined && Object.keys(known.sources).length > 0 ? { sources: { ...known.sources } } : {}),
  };
}

export class CaptureCollector {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly emit: (capture: CaptureEvent) => void,
    private readonly counters: Counters,
    private readonly windowUs: number = DEFAULT_DEDUP_WINDOW_US,
    private readonly attribution: CaptureAttribution = {},
  ) {}

  private device(f: FlowInfo, side: 'src' | 'dst', tsUs: number): Device {
    return deviceOf(f, side, tsUs, this.attribution);
  }

  add(c: CaptureCandidate): void {
    this.expire(c.tsUs);
    const f = c.flow;
    const a = this.attribution;
    if (c.host !== undefined && a.allowed?.(c.host) === true) {
      this.counters.inc(C_ALLOW_LISTED);
      return;
    }
    const side = a.userSide?.(f.srcIp, f.dstIp) ?? 'src';
    if (side === 'ignore') {
      this.counters.inc(C_IGNORED_NETWORK);
      return;
    }
    const key = `${side === 'src' ? f.srcIp : f.dstIp}\u0000${c.phraseIndex}\u0000${c.host ?? ''}${c.url ?? ''}\u0000${c.source}`;
    const held = this.pending.get(key);
    if (held !== undefined && c.tsUs - held.firstUs <= this.windowUs) {
      held.event.count += c.count;
      this.counters.inc(C_MERGED);
      return;
    }
    if (held !== undefined) this.release(key, held);
    if (this.pending.size >= MAX_PENDING_CAPTURES) {
      const [oldKey, old] = this.pending.entries().next().value as [string, Pending];
      this.counters.inc(C_EARLY);
      this.release(oldKey, old);
    }
    const event: CaptureEvent = {
      event_type: 'capture',
      id: stableId(f.flowId, f.srcIp, f.srcPort, f.dstIp, f.dstPort, f.startUs, c.dir, c.messageIndex, c.field, c.phraseIndex, c.phrase.phrase),
      timestamp: isoMicros(c.tsUs),
      ts_us: c.tsUs,
      flow_id: f.flowId,
      src_ip: c.dir === 0 ? f.srcIp : f.dstIp,
      src_port: c.dir === 0 ? f.srcPort : f.dstPort,
      dest_ip: c.dir === 0 ? f.dstIp : f.srcIp,
      dest_port: c.dir === 0 ? f.dstPort : f.srcPort,
      vlan: [...f.vlan],
      proto: 'TCP',
      app_proto: c.appProto ?? 'http',
      ...(c.decrypted === true ? { decrypted: true } : {}),
      direction: c.dir === 0 ? 'to_server' : 'to_client',
      source: c.source,
      field: c.field,
      ...(c.host !== undefined ? { host: c.host } : {}),
      ...(c.url !== undefined ? { url: c.url } : {}),
      ...(c.method !== undefined ? { method: c.method } : {}),
      ...(c.status !== undefined ? { status: c.status } : {}),
      phrase: c.phrase.phrase,
      category: c.phrase.category,
      severity: c.phrase.severity,
      count: c.count,
      context: c.context.trim(),
      device: this.device(f, side, c.tsUs),
    };
    this.counters.inc(C_CAPTURES);
    this.emit({ ...event, vlan: [...event.vlan], device: { ...event.device, ...(event.device.sources ? { sources: { ...event.device.sources } } : {}) } });
    this.pending.set(key, { event, firstUs: c.tsUs, emittedCount: event.count });
  }

  /** Emits captures whose merge window has passed as of capture time `nowUs`. */
  expire(nowUs: number): void {
    for (const [key, p] of this.pending) {
      if (nowUs - p.firstUs <= this.windowUs) break; // insertion order is first-seen order
      this.release(key, p);
    }
  }

  /** Emits everything held (end of input, shutdown). */
  flush(): void {
    for (const [key, p] of this.pending) this.release(key, p);
  }

  get held(): number {
    return this.pending.size;
  }

  /** Closes a window: re-emits the capture when repeats raised its count. */
  private release(key: string, p: Pending): void {
    this.pending.delete(key);
    if (p.event.count === p.emittedCount) return;
    this.counters.inc(C_UPDATES);
    this.emit(p.event);
  }
}

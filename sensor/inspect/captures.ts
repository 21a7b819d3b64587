/**
 * Capture collector: turns phrase hits aggregated per message into capture events, merging
 * repeats of the same phrase by the same device on the same URL within a time window into one
 * capture whose `count` is the sum (a page repeating a word a hundred times is one capture).
 * Input: `CaptureCandidate`s in capture-time order. Output: each capture is emitted at once (so
 * it is stored at once and survives a crash); when repeats were merged into it, it is emitted
 * again with the same id and the final count once its window has passed (or at `flush`): the
 * latest event of an id wins. Bounded: at most MAX_PENDING_CAPTURES windows open, each held as one
 * flat record (the event is rebuilt, id included, only when it is emitted again), found by a
 * numeric hash of its merge key and expired in first-seen order from a queue.
 */
import type { Evidence } from './evidence.js';
import { Counters, defineCounter } from '../events/counters.js';
import { cutCaptureText, isoMicros, MAX_CAPTURE_HOST_CHARS, MAX_CAPTURE_METHOD_CHARS, MAX_CAPTURE_URL_CHARS, stableId, type CaptureEvent, type CaptureField, type CaptureSource, type Device } from '../events/capture.js';
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
const C_URL_CUT = defineCounter('capture.url_truncated');
const C_HOST_CUT = defineCounter('capture.host_truncated');
const C_METHOD_CUT = defineCounter('capture.method_truncated');


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
  /** The page the response carried (viewed captures of HTML/text responses), for home's picture. */
  readonly evidence?: Evidence;
}

/** An open merge window: its capture's candidate fields, flat (no rope of context pieces, no event),
 * and the count so far. */
class Pending implements CaptureCandidate {
  /** Next window in the same hash bucket. */
  next: Pending | undefined = undefined;
  closed = false;
  readonly flow: FlowInfo;
  readonly dir: Direction;
  readonly messageIndex: number;
  readonly source: CaptureSource;
  readonly field: CaptureField;
  readonly host: string | undefined;
  readonly url: string | undefined;
  readonly method: string | undefined;
  readonly status: number | undefined;
  readonly phraseIndex: number;
  readonly phrase: Phrase;
  readonly context: string;
  /** When the window opened. */
  readonly tsUs: number;
  readonly appProto: 'http' | 'http2' | undefined;
  readonly decrypted: boolean | undefined;
  /** The count already emitted for this capture. */
  readonly emittedCount: number;

  constructor(
    readonly hash: number,
    /** The device's address: with phraseIndex, host + URL and source, the merge key. */
    readonly deviceIp: string,
    c: CaptureCandidate,
    readonly device: Device,
    /** The count so far. */
    public count: number,
  ) {
    this.flow = c.flow;
    this.dir = c.dir;
    this.messageIndex = c.messageIndex;
    this.source = c.source;
    this.field = c.field;
    this.host = c.host;
    this.url = c.url;
    this.method = c.method;
    this.status = c.status;
    this.phraseIndex = c.phraseIndex;
    this.phrase = c.phrase;
    // trimming joins the pieces the context was built from: the window does not keep them
    this.context = c.context.trim();
    this.tsUs = c.tsUs;
    this.appProto = c.appProto;
    this.decrypted = c.decrypted;
    this.emittedCount = count;
  }

  /** Same merge key as a candidate of the same hash (host and URL count as one string). */
  sameKey(ip: string, c: CaptureCandidate): boolean {
    // the phrase object too: after a dictionary reload the same index names another phrase
    if (this.deviceIp !== ip || this.phraseIndex !== c.phraseIndex || this.phrase.phrase !== c.phrase.phrase || this.source !== c.source) return false;
    if (this.host === c.host && this.url === c.url) return true;
    return (this.host ?? '') + (this.url ?? '') === (c.host ?? '') + (c.url ?? '');
  }
}

/** FNV-1a over the merge key (the UTF-16 units of the strings). */
function keyHash(ip: string, phraseIndex: number, host: string | undefined, url: string | undefined, source: CaptureSource): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < ip.length; k++) h = Math.imul(h ^ ip.charCodeAt(k), 0x01000193);
  h = Math.imul(h ^ phraseIndex, 0x01000193);
  h = Math.imul(h ^ (phraseIndex >>> 16), 0x01000193);
  if (host !== undefined) for (let k = 0; k < host.length; k++) h = Math.imul(h ^ host.charCodeAt(k), 0x01000193);
  if (url !== undefined) for (let k = 0; k < url.length; k++) h = Math.imul(h ^ url.charCodeAt(k), 0x01000193);
  h = Math.imul(h ^ (source === 'typed' ? 1 : 2), 0x01000193);
  return h & 0x3fffffff;
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
  /** Open windows by key hash (colliding ones chained through `next`). */
  private readonly table = new Map<number, Pending>();
  /** Windows in first-seen order from `head` on; closed ones are skipped (and dropped in bulk). */
  private order: Pending[] = [];
  private head = 0;
  private open = 0;

  constructor(
    /** A capture (again when repeats raised its count); its evidence with the first emission only. */
    private readonly emit: (capture: CaptureEvent, evidence?: Evidence) => void,
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
    const ip = side === 'src' ? f.srcIp : f.dstIp;
    const hash = keyHash(ip, c.phraseIndex, c.host, c.url, c.source);
    let held = this.table.get(hash);
    while (held !== undefined && !held.sameKey(ip, c)) held = held.next;
    if (held !== undefined && c.tsUs - held.tsUs <= this.windowUs) {
      held.count += c.count;
      this.counters.inc(C_MERGED);
      return;
    }
    if (held !== undefined) this.release(held);
    if (this.open >= MAX_PENDING_CAPTURES) {
      this.counters.inc(C_EARLY);
      this.release(this.oldest()!);
    }
    const device = this.device(f, side, c.tsUs);
    const p = new Pending(hash, ip, c, device, c.count);
    this.counters.inc(C_CAPTURES);
    if (c.url !== undefined && c.url.length > MAX_CAPTURE_URL_CHARS) this.counters.inc(C_URL_CUT);
    if (c.host !== undefined && c.host.length > MAX_CAPTURE_HOST_CHARS) this.counters.inc(C_HOST_CUT);
    if (c.method !== undefined && c.method.length > MAX_CAPTURE_METHOD_CHARS) this.counters.inc(C_METHOD_CUT);
    this.emit(captureEvent(p, { ...device, ...(device.sources ? { sources: { ...device.sources } } : {}) }, c.count), c.evidence);
    p.next = this.table.get(hash);
    this.table.set(hash, p);
    this.order.push(p);
    this.open++;
  }

  /** Emits captures whose merge window has passed as of capture time `nowUs`. */
  expire(nowUs: number): void {
    for (let p = this.oldest(); p !== undefined; p = this.oldest()) {
      if (nowUs - p.tsUs <= this.windowUs) break; // insertion order is first-seen order
      this.release(p);
    }
  }

  /** Emits everything held (end of input, shutdown). */
  flush(): void {
    for (let p = this.oldest(); p !== undefined; p = this.oldest()) this.release(p);
  }

  get held(): number {
    return this.open;
  }

  /** The open window seen first, or undefined. */
  private oldest(): Pending | undefined {
    const order = this.order;
    while (this.head < order.length && order[this.head].closed) this.head++;
    if (this.head >= 1024 && this.head * 2 >= order.length) {
      this.order = order.slice(this.head);
      this.head = 0;
    }
    return this.head < this.order.length ? this.order[this.head] : undefined;
  }

  /** Closes a window: re-emits the capture when repeats raised its count. */
  private release(p: Pending): void {
    p.closed = true;
    this.open--;
    const first = this.table.get(p.hash);
    if (first === p) {
      if (p.next === undefined) this.table.delete(p.hash);
      else this.table.set(p.hash, p.next);
    } else {
      let q = first;
      while (q !== undefined && q.next !== p) q = q.next;
      if (q !== undefined) q.next = p.next;
    }
    if (p.count === p.emittedCount) return;
    this.counters.inc(C_UPDATES);
    this.emit(captureEvent(p, p.device, p.count));
  }
}

/** The capture event of a window, with the device as identified and a count. The optional fields
 * are added in place, in the schema's order (the JSON keeps it), rather than spread in: cheaper. */
function captureEvent(c: Pending, device: Device, count: number): CaptureEvent {
  const f = c.flow;
  const toServer = c.dir === 0;
  const e = {
    event_type: 'capture',
    id: stableId(c.tsUs, f.flowId, f.srcIp, f.srcPort, f.dstIp, f.dstPort, f.startUs, c.dir, c.messageIndex, c.field, c.phraseIndex, c.phrase.phrase),
    timestamp: isoMicros(c.tsUs),
    ts_us: c.tsUs,
    flow_id: f.flowId,
    src_ip: toServer ? f.srcIp : f.dstIp,
    src_port: toServer ? f.srcPort : f.dstPort,
    dest_ip: toServer ? f.dstIp : f.srcIp,
    dest_port: toServer ? f.dstPort : f.srcPort,
    vlan: [...f.vlan],
    proto: 'TCP',
    app_proto: c.appProto ?? 'http',
  } as Record<string, unknown>;
  if (c.decrypted === true) e.decrypted = true;
  e.direction = toServer ? 'to_server' : 'to_client';
  e.source = c.source;
  e.field = c.field;
  // cut here, not in the window: the merge key is the whole host and URL
  if (c.host !== undefined) e.host = cutCaptureText(c.host, MAX_CAPTURE_HOST_CHARS);
  if (c.url !== undefined) e.url = cutCaptureText(c.url, MAX_CAPTURE_URL_CHARS);
  if (c.method !== undefined) e.method = cutCaptureText(c.method, MAX_CAPTURE_METHOD_CHARS);
  if (c.status !== undefined) e.status = c.status;
  e.phrase = c.phrase.phrase;
  e.category = c.phrase.category;
  e.severity = c.phrase.severity;
  e.count = count;
  e.context = c.context;
  e.device = device;
  return e as unknown as CaptureEvent;
}

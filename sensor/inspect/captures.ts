/**
 * Capture collector: turns phrase hits aggregated per message into capture events, merging
 * repeats of the same phrase by the same device on the same URL within a time window into one
 * capture whose `count` is the sum (a page repeating a word a hundred times is one capture).
 * Input: `CaptureCandidate`s in capture-time order. Output: each capture is emitted at once (so
 * it is stored at once and survives a crash); when repeats were merged into it, it is emitted
 * again with the same id and the final count once its window has passed (or at `flush`): the
 * latest event of an id wins. Bounded: at most MAX_PENDING_CAPTURES windows open, each held as one
 * flat record (the event is rebuilt, id included, only when it is emitted again), found by a
 * numeric hash of its merge key and expired in first-seen order from a queue. A window holds owned
 * copies of its strings, and a host or URL over its capture limit only as the event shows it plus
 * the whole text's length and digest (`CutCaptureText`): never the packet's header block.
 */
import type { Evidence } from './evidence.js';
import { Counters, defineCounter } from '../events/counters.js';
import { CAPTURE_TEXT_CUT, cutCaptureText, isoMicros, MAX_CAPTURE_HOST_CHARS, MAX_CAPTURE_METHOD_CHARS, MAX_CAPTURE_URL_CHARS, stableId, type CaptureEvent, type CaptureField, type CaptureSource, type Device } from '../events/capture.js';
import type { Direction, FlowInfo } from '../flow/stream.js';
import type { Phrase } from '../../rules/dictionary.js';
import { ownedString } from '../events/owned-string.js';

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

/**
 * A host or URL longer than its capture limit, as long-lived state keeps it: the start the event shows
 * (cutCaptureText without its CAPTURE_TEXT_CUT marker, an owned copy: one byte per character where the
 * text allows, the marker's U+2026 would double it) and the whole text's length and digest, so that two texts which
 * differ only past the cut stay two merge keys. A request line may be 16 KiB and an HTTP/2 :path or
 * :authority a slice of a 256 KiB header list: 100,000 windows, or 64 remembered requests per flow,
 * holding those whole cost ~30 KB (HTTP/1) and ~149 KB (HTTP/2) each.
 */
export interface CutCaptureText {
  readonly shown: string;
  readonly length: number;
  readonly digest: number;
}

/** A candidate's host or URL: the whole text, or what `holdCaptureText` kept of a long one. */
export type CaptureText = string | CutCaptureText;

/** 32-bit multiplicative digest of a whole text, independent of `keyHash` (another multiplier and
 * mixing): with the length and the shown start, what tells two long texts apart. */
function textDigest(text: string): number {
  let h = 0x9747b28c;
  for (let k = 0; k < text.length; k++) {
    h = Math.imul(h ^ text.charCodeAt(k), 0x5bd1e995);
    h ^= h >>> 15;
  }
  return h >>> 0;
}

/** The merge-key form of a host or URL, without copying: a string within `max` as it is, a longer one cut
 * (with its length and digest). */
function keyText(text: CaptureText, max: number): CaptureText {
  if (typeof text !== 'string' || text.length <= max) return text;
  const shown = cutCaptureText(text, max);
  return { shown: ownedString(shown, shown.length - CAPTURE_TEXT_CUT.length), length: text.length, digest: textDigest(text) };
}

/** A host or URL as long-lived state keeps it (`max`: MAX_CAPTURE_HOST_CHARS or MAX_CAPTURE_URL_CHARS):
 * an owned copy of a text within `max`, else a `CutCaptureText`. */
export function holdCaptureText(text: CaptureText, max: number): CaptureText {
  const k = keyText(text, max);
  return typeof k === 'string' ? ownedString(k) : k;
}

/** The text a capture shows for a host or URL of at most `max` units (cutCaptureText). */
function shownText(text: CaptureText, max: number): string {
  return typeof text === 'string' ? cutCaptureText(text, max) : text.shown + CAPTURE_TEXT_CUT;
}

function sameText(a: CaptureText | undefined, b: CaptureText | undefined): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  return a.length === b.length && a.digest === b.digest && a.shown === b.shown;
}

export interface CaptureCandidate {
  readonly flow: FlowInfo;
  readonly dir: Direction;
  readonly messageIndex: number;
  readonly source: CaptureSource;
  readonly field: CaptureField;
  readonly host?: CaptureText;
  readonly url?: CaptureText;
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
  readonly host: CaptureText | undefined;
  readonly url: CaptureText | undefined;
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
    /** `c.host` and `c.url` in merge-key form (`keyText`). */
    host: CaptureText | undefined,
    url: CaptureText | undefined,
    readonly device: Device,
    /** The count so far. */
    public count: number,
  ) {
    this.flow = c.flow;
    this.dir = c.dir;
    this.messageIndex = c.messageIndex;
    this.source = c.source;
    this.field = c.field;
    // owned copies: a slice of the packet's header block would keep the whole block for the window
    this.host = typeof host === 'string' ? ownedString(host) : host;
    this.url = typeof url === 'string' ? ownedString(url) : url;
    this.method = c.method === undefined ? undefined : ownedString(cutCaptureText(c.method, MAX_CAPTURE_METHOD_CHARS));
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

  /** Same merge key as a candidate of the same hash, whose host and URL are in merge-key form (host and
   * URL within their limits count as one string). */
  sameKey(ip: string, c: CaptureCandidate, host: CaptureText | undefined, url: CaptureText | undefined): boolean {
    // the phrase object too: after a dictionary reload the same index names another phrase
    if (this.deviceIp !== ip || this.phraseIndex !== c.phraseIndex || this.phrase.phrase !== c.phrase.phrase || this.source !== c.source) return false;
    if (this.host === host && this.url === url) return true;
    if (typeof this.host === 'object' || typeof this.url === 'object' || typeof host === 'object' || typeof url === 'object') {
      return sameText(this.host, host) && sameText(this.url, url);
    }
    return (this.host ?? '') + (this.url ?? '') === (host ?? '') + (url ?? '');
  }
}

/** FNV-1a over the merge key (the UTF-16 units of the strings; a cut text's shown units, length and digest). */
function keyHash(ip: string, phraseIndex: number, host: CaptureText | undefined, url: CaptureText | undefined, source: CaptureSource): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < ip.length; k++) h = Math.imul(h ^ ip.charCodeAt(k), 0x01000193);
  h = Math.imul(h ^ phraseIndex, 0x01000193);
  h = Math.imul(h ^ (phraseIndex >>> 16), 0x01000193);
  if (host !== undefined) h = hashText(h, host);
  if (url !== undefined) h = hashText(h, url);
  h = Math.imul(h ^ (source === 'typed' ? 1 : 2), 0x01000193);
  return h & 0x3fffffff;
}

function hashText(h: number, text: CaptureText): number {
  const s = typeof text === 'string' ? text : text.shown;
  for (let k = 0; k < s.length; k++) h = Math.imul(h ^ s.charCodeAt(k), 0x01000193);
  if (typeof text === 'object') {
    h = Math.imul(h ^ text.length, 0x01000193);
    h = Math.imul(h ^ text.digest, 0x01000193);
  }
  return h;
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
    // a host past MAX_CAPTURE_HOST_CHARS that a holder already cut is judged by what it shows (no DNS name is that long)
    if (c.host !== undefined && a.allowed?.(typeof c.host === 'string' ? c.host : c.host.shown) === true) {
      this.counters.inc(C_ALLOW_LISTED);
      return;
    }
    const side = a.userSide?.(f.srcIp, f.dstIp) ?? 'src';
    if (side === 'ignore') {
      this.counters.inc(C_IGNORED_NETWORK);
      return;
    }
    const ip = side === 'src' ? f.srcIp : f.dstIp;
    const host = c.host === undefined ? undefined : keyText(c.host, MAX_CAPTURE_HOST_CHARS);
    const url = c.url === undefined ? undefined : keyText(c.url, MAX_CAPTURE_URL_CHARS);
    const hash = keyHash(ip, c.phraseIndex, host, url, c.source);
    let held = this.table.get(hash);
    while (held !== undefined && !held.sameKey(ip, c, host, url)) held = held.next;
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
    const p = new Pending(hash, ip, c, host, url, device, c.count);
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
  // a window holds a long host or URL cut already (CutCaptureText); a whole one is within its limit
  if (c.host !== undefined) e.host = shownText(c.host, MAX_CAPTURE_HOST_CHARS);
  if (c.url !== undefined) e.url = shownText(c.url, MAX_CAPTURE_URL_CHARS);
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

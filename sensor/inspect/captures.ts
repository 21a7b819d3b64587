/**
 * Capture collector: turns phrase hits aggregated per message into capture events, merging
 * repeats of the same phrase by the same device on the same URL within a time window into one
 * capture whose `count` is the sum (a page repeating a word a hundred times is one capture).
 * Input: `CaptureCandidate`s in capture-time order. Output: each capture is emitted at once (so
 * it is stored at once and survives a crash); when repeats were merged into it, it is emitted
 * again with the same id and the final count once its window has passed (or at `flush`): the
 * latest event of an id wins. Bounded: at most MAX_PENDING_CAPTURES windows open, each held as a
 * small record (phrase, field, context, counts) pointing to one record of the fields all windows of
 * its message share (the event is rebuilt, id included, only when it is emitted again), found by a
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
export const MAX_PENDING_CAPTURES = 100_000;
/** Hash buckets a collector starts with (8 KB); they double as windows open. */
const MIN_BUCKETS = 1024;

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

/**
 * What the windows one message opens have in common: the merge key's device address, source, host
 * and URL, the windows' start, and every field of the capture but the phrase, field, context and
 * count. A message's candidates arrive one after another, so each window takes the last window's
 * record when it fits. Held per window, as they were, these fields, the device and the host and URL
 * copies cost ~360 bytes a window; the benchmark workload's 100,000 windows come from 24,324 messages.
 */
class MessageFields {
  readonly host: CaptureText | undefined;
  readonly url: CaptureText | undefined;
  readonly method: string | undefined;

  constructor(
    /** The device's address: with phraseIndex, host + URL and source, the merge key. */
    readonly ip: string,
    /** The device of the windows (the previous message's, when the same). */
    readonly device: Device,
    c: CaptureCandidate,
    /** `c.host` and `c.url` in merge-key form (`keyText`). */
    host: CaptureText | undefined,
    url: CaptureText | undefined,
    /** `c.method` as the capture shows it. */
    method: string | undefined,
    /** The fields of the message before: its host, URL and device, where the same, are taken as they are. */
    prev: MessageFields | undefined,
    readonly flow: FlowInfo = c.flow,
    readonly dir: Direction = c.dir,
    readonly messageIndex: number = c.messageIndex,
    readonly source: CaptureSource = c.source,
    readonly status: number | undefined = c.status,
    /** When the windows opened. */
    readonly tsUs: number = c.tsUs,
    readonly appProto: 'http' | 'http2' | undefined = c.appProto,
    readonly decrypted: boolean | undefined = c.decrypted,
  ) {
    // owned copies: a slice of the packet's header block would keep the whole block for the window
    this.host = prev !== undefined && sameText(prev.host, host) ? prev.host : typeof host === 'string' ? ownedString(host) : host;
    this.url = prev !== undefined && sameText(prev.url, url) ? prev.url : typeof url === 'string' ? ownedString(url) : url;
    this.method = method === undefined ? undefined : ownedString(method);
    if (prev !== undefined && sameDevice(prev.device, device)) this.device = prev.device;
  }

  /** True when a window of candidate `c` (its host, URL and method as here, its device `device`)
   * would hold exactly these fields. */
  fits(c: CaptureCandidate, host: CaptureText | undefined, url: CaptureText | undefined, method: string | undefined, device: Device): boolean {
    return (
      this.flow === c.flow && this.dir === c.dir && this.messageIndex === c.messageIndex && this.tsUs === c.tsUs &&
      this.source === c.source && this.status === c.status && this.appProto === c.appProto && this.decrypted === c.decrypted &&
      this.method === method && sameText(this.host, host) && sameText(this.url, url) && sameDevice(this.device, device)
    );
  }
}

/** Same device, down to the order of the keys of `sources` (the JSON keeps it). */
function sameDevice(a: Device, b: Device): boolean {
  if (a.ip !== b.ip || a.mac !== b.mac || a.hostname !== b.hostname || a.user !== b.user) return false;
  if (a.sources === b.sources) return true;
  if (a.sources === undefined || b.sources === undefined) return false;
  const ka = Object.keys(a.sources);
  const kb = Object.keys(b.sources);
  if (ka.length !== kb.length) return false;
  for (let k = 0; k < ka.length; k++) {
    const key = ka[k] as keyof NonNullable<Device['sources']>;
    if (key !== kb[k] || a.sources[key] !== b.sources[key]) return false;
  }
  return true;
}

/** An open merge window: what its message's windows share, its own phrase, field and context, and
 * the count so far. */
class Pending {
  /** Next window in the same hash bucket. */
  next: Pending | undefined = undefined;
  closed = false;
  /** The count already emitted for this capture. */
  readonly emittedCount: number;

  constructor(
    readonly hash: number,
    readonly shared: MessageFields,
    readonly field: CaptureField,
    readonly phraseIndex: number,
    readonly phrase: Phrase,
    readonly context: string,
    /** The count so far. */
    public count: number,
  ) {
    this.emittedCount = count;
  }

  /** Same merge key as a candidate of the same hash, whose host and URL are in merge-key form (host and
   * URL within their limits count as one string). */
  sameKey(ip: string, c: CaptureCandidate, host: CaptureText | undefined, url: CaptureText | undefined): boolean {
    const m = this.shared;
    // the phrase object too: after a dictionary reload the same index names another phrase
    if (m.ip !== ip || this.phraseIndex !== c.phraseIndex || this.phrase.phrase !== c.phrase.phrase || m.source !== c.source) return false;
    if (m.host === host && m.url === url) return true;
    if (typeof m.host === 'object' || typeof m.url === 'object' || typeof host === 'object' || typeof url === 'object') {
      return sameText(m.host, host) && sameText(m.url, url);
    }
    return (m.host ?? '') + (m.url ?? '') === (host ?? '') + (url ?? '');
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
  /** Open windows by the low bits of their key hash, chained through `next`: a bucket array whose
   * length, a power of two, grows to at least the windows open (at most 131,072 slots, 1 MB, at
   * MAX_PENDING_CAPTURES). A Map<number, Pending> cost ~75 bytes a window at the bound. */
  private buckets: Array<Pending | undefined> = new Array<Pending | undefined>(MIN_BUCKETS).fill(undefined);
  /** Windows in first-seen order from `head` on; closed ones are skipped (and dropped in bulk). */
  private order: Array<Pending | undefined> = [];
  private head = 0;
  private open = 0;
  /** The fields the last window opened shares, for the next window of the same message. */
  private lastShared: MessageFields | undefined = undefined;

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
    let held = this.buckets[hash & (this.buckets.length - 1)];
    while (held !== undefined && !held.sameKey(ip, c, host, url)) held = held.next;
    if (held !== undefined && c.tsUs - held.shared.tsUs <= this.windowUs) {
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
    const method = c.method === undefined ? undefined : cutCaptureText(c.method, MAX_CAPTURE_METHOD_CHARS);
    let shared = this.lastShared;
    if (shared === undefined || !shared.fits(c, host, url, method, device)) shared = this.lastShared = new MessageFields(ip, device, c, host, url, method, shared);
    // an owned copy of the trimmed context, not the rope it was built from nor a slice of it: on the
    // benchmark workload 160 bytes a window where the trimmed string alone held 171
    const p = new Pending(hash, shared, c.field, c.phraseIndex, c.phrase, ownedString(c.context.trim()), c.count);
    this.counters.inc(C_CAPTURES);
    if (c.url !== undefined && c.url.length > MAX_CAPTURE_URL_CHARS) this.counters.inc(C_URL_CUT);
    if (c.host !== undefined && c.host.length > MAX_CAPTURE_HOST_CHARS) this.counters.inc(C_HOST_CUT);
    if (c.method !== undefined && c.method.length > MAX_CAPTURE_METHOD_CHARS) this.counters.inc(C_METHOD_CUT);
    this.emit(captureEvent(p, copyDevice(device), c.count), c.evidence);
    if (++this.open > this.buckets.length) this.growBuckets();
    const b = hash & (this.buckets.length - 1);
    p.next = this.buckets[b];
    this.buckets[b] = p;
    this.order.push(p);
  }

  /** Emits captures whose merge window has passed as of capture time `nowUs`. */
  expire(nowUs: number): void {
    for (let p = this.oldest(); p !== undefined; p = this.oldest()) {
      if (nowUs - p.shared.tsUs <= this.windowUs) break; // insertion order is first-seen order
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

  /** Twice the buckets, every open window rehashed into them (chain order does not matter: a key has
   * one open window at most). */
  private growBuckets(): void {
    const buckets = new Array<Pending | undefined>(this.buckets.length * 2).fill(undefined);
    const mask = buckets.length - 1;
    for (let k = this.head; k < this.order.length; k++) {
      const p = this.order[k];
      if (p === undefined || p.closed) continue;
      p.next = buckets[p.hash & mask];
      buckets[p.hash & mask] = p;
    }
    this.buckets = buckets;
  }

  /** The open window seen first, or undefined. */
  private oldest(): Pending | undefined {
    const order = this.order;
    // a closed window's slot is cleared as the head passes it: the array would keep it, its context
    // and its message's fields until the next compaction (up to as many again as are open)
    while (this.head < order.length && order[this.head]!.closed) order[this.head++] = undefined;
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
    const b = p.hash & (this.buckets.length - 1);
    const first = this.buckets[b];
    if (first === p) this.buckets[b] = p.next;
    else {
      let q = first;
      while (q !== undefined && q.next !== p) q = q.next;
      if (q !== undefined) q.next = p.next;
    }
    if (p.count === p.emittedCount) return;
    this.counters.inc(C_UPDATES);
    // a copy: other windows of the message share the device
    this.emit(captureEvent(p, copyDevice(p.shared.device), p.count));
  }
}

/** A device for an event: its own object, so that what the sink does with it touches no window. */
function copyDevice(device: Device): Device {
  return { ...device, ...(device.sources ? { sources: { ...device.sources } } : {}) };
}

/** The capture event of a window, with the device as identified and a count. The optional fields
 * are added in place, in the schema's order (the JSON keeps it), rather than spread in: cheaper. */
function captureEvent(p: Pending, device: Device, count: number): CaptureEvent {
  const c = p.shared;
  const f = c.flow;
  const toServer = c.dir === 0;
  const e = {
    event_type: 'capture',
    id: stableId(c.tsUs, f.flowId, f.srcIp, f.srcPort, f.dstIp, f.dstPort, f.startUs, c.dir, c.messageIndex, p.field, p.phraseIndex, p.phrase.phrase),
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
  e.field = p.field;
  // a window holds a long host or URL cut already (CutCaptureText); a whole one is within its limit
  if (c.host !== undefined) e.host = shownText(c.host, MAX_CAPTURE_HOST_CHARS);
  if (c.url !== undefined) e.url = shownText(c.url, MAX_CAPTURE_URL_CHARS);
  if (c.method !== undefined) e.method = c.method;
  if (c.status !== undefined) e.status = c.status;
  e.phrase = p.phrase.phrase;
  e.category = p.phrase.category;
  e.severity = p.phrase.severity;
  e.count = count;
  e.context = p.context;
  e.device = device;
  return e as unknown as CaptureEvent;
}

/**
 * Policy: monitored networks. Input: CIDR lists (IPv4 and IPv6) of internal ranges to watch
 * (`monitored`) and to leave out (`ignored`); addresses as the flow stage prints them. Output: each
 * address's class (inside / ignored / special / outside) and, for a flow, which side is the inside user
 * and which the outside site, whatever side opened it. The most specific entry of the two lists decides
 * (`10.0.0.0/8` monitored with `10.9.0.0/16` ignored leaves 10.9.x.x out). Addresses no list names are
 * special-use (RFC 5735 / RFC 6890: loopback, multicast, documentation, ...) or outside.
 */
import { formatIpv6Words } from '../net/ipv6-text.js';

/** Internal by default: RFC 1918, RFC 6598 shared address space (CGNAT), link-local (RFC 3927, RFC 4291),
 * IPv6 unique local addresses (RFC 4193). */
export const DEFAULT_MONITORED_NETWORKS: readonly string[] = Object.freeze([
  '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', 'fc00::/7', 'fe80::/10',
]);

/** Special-use ranges (RFC 5735 §4, RFC 6890, RFC 4291): never an inside user and never an outside site. */
export const SPECIAL_NETWORKS: readonly string[] = Object.freeze([
  '0.0.0.0/8', '127.0.0.0/8', '192.0.0.0/24', '192.0.2.0/24', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24',
  '224.0.0.0/4', '240.0.0.0/4', '::/128', '::1/128', '64:ff9b::/96', '100::/64', '2001:db8::/32', 'ff00::/8',
]);

/** Entries per list: a configuration, not a routing table. */
export const MAX_NETWORK_ENTRIES = 65536;

export type AddressClass = 'inside' | 'ignored' | 'special' | 'outside';

/** `outbound`: src inside, dst not; `inbound`: dst inside, src not; `internal`: both inside (or one inside,
 * one ignored); `ignored`: no inside side and an ignored one; `external`: neither side is internal. */
export type OrientationKind = 'outbound' | 'inbound' | 'internal' | 'ignored' | 'external';

export interface Orientation {
  readonly kind: OrientationKind;
  /** The inside user's side (src when both are inside: the originator), undefined when there is none. */
  readonly user: 'src' | 'dst' | undefined;
  /** The other side when the user is known. */
  readonly site: 'src' | 'dst' | undefined;
}

const O_OUTBOUND: Orientation = Object.freeze({ kind: 'outbound', user: 'src', site: 'dst' });
const O_INBOUND: Orientation = Object.freeze({ kind: 'inbound', user: 'dst', site: 'src' });
const O_INTERNAL_SRC: Orientation = Object.freeze({ kind: 'internal', user: 'src', site: 'dst' });
const O_INTERNAL_DST: Orientation = Object.freeze({ kind: 'internal', user: 'dst', site: 'src' });
const O_IGNORED: Orientation = Object.freeze({ kind: 'ignored', user: undefined, site: undefined });
const O_EXTERNAL: Orientation = Object.freeze({ kind: 'external', user: undefined, site: undefined });

/** A configuration error: a CIDR that cannot be used. `code` is stable. */
export class NetworkConfigError extends Error {
  readonly code = 'bad_cidr';

  constructor(message: string, readonly entry: string, readonly list: string) {
    super(message);
    this.name = 'NetworkConfigError';
  }
}

export interface Cidr {
  readonly version: 4 | 6;
  /** Network address as four 32-bit words (IPv4: word 3 holds it, words 0-2 are zero). */
  readonly words: readonly [number, number, number, number];
  readonly prefix: number;
  /** Canonical text, e.g. `10.0.0.0/8`. */
  readonly text: string;
}

// ---------------------------------------------------------------------------------------------
// Address parsing (no allocation on the lookup path: results go to a scratch array)

/** Parses dotted-quad IPv4 text to an unsigned 32-bit number, or -1. */
export function parseIpv4(s: string, start = 0, end = s.length): number {
  let v = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = start; i <= end; i++) {
    const c = i < end ? s.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || parts === 4) return -1;
      v = v * 256 + part;
      parts++;
      part = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && part === 0) return -1; // leading zero: octal in some parsers, refused
      part = part * 10 + (c - 0x30);
      if (part > 255) return -1;
      digits++;
    } else return -1;
  }
  return parts === 4 ? v : -1;
}

/** Parses IPv6 text (with `::`, an embedded IPv4 tail, a `%zone`) into `out` (4 words). */
export function parseIpv6(s: string, out: Uint32Array | number[]): boolean {
  let end = s.indexOf('%');
  if (end < 0) end = s.length;
  const groups = scratchGroups;
  let n = 0;
  let gapAt = -1;
  let i = 0;
  if (end >= 2 && s.charCodeAt(0) === 0x3a && s.charCodeAt(1) === 0x3a) {
    gapAt = 0;
    i = 2;
    if (i === end) return fillIpv6(groups, 0, gapAt, out);
  } else if (end > 0 && s.charCodeAt(0) === 0x3a) return false;
  for (;;) {
    // One group, or an IPv4 tail.
    let j = i;
    let v = 0;
    while (j < end) {
      const c = s.charCodeAt(j);
      let d: number;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
      else break;
      v = v * 16 + d;
      j++;
    }
    if (j < end && s.charCodeAt(j) === 0x2e) {
      const v4 = parseIpv4(s, i, end);
      if (v4 < 0 || n > 6) return false;
      groups[n++] = v4 >>> 16;
      groups[n++] = v4 & 0xffff;
      break;
    }
    if (j === i || j - i > 4 || n >= 8) return false;
    groups[n++] = v;
    if (j === end) break;
    if (s.charCodeAt(j) !== 0x3a) return false;
    if (j + 1 < end && s.charCodeAt(j + 1) === 0x3a) {
      if (gapAt >= 0) return false;
      gapAt = n;
      i = j + 2;
      if (i === end) break;
    } else {
      i = j + 1;
      if (i === end) return false;
    }
  }
  return fillIpv6(groups, n, gapAt, out);
}

const scratchGroups = new Uint32Array(8);

function fillIpv6(groups: Uint32Array, n: number, gapAt: number, out: Uint32Array | number[]): boolean {
  if (gapAt < 0 ? n !== 8 : n > 7) return false;
  const zeros = 8 - n;
  for (let w = 0; w < 4; w++) {
    let word = 0;
    for (let half = 0; half < 2; half++) {
      const g = w * 2 + half;
      let value: number;
      if (gapAt < 0 || g < gapAt) value = groups[g];
      else if (g < gapAt + zeros) value = 0;
      else value = groups[g - zeros];
      word = half === 0 ? value << 16 : (word | value);
    }
    out[w] = word >>> 0;
  }
  return true;
}

/** IPv4 and IPv4-mapped IPv6 (`::ffff:a.b.c.d`) -> 4, other IPv6 -> 6, else 0; address in `out`. */
function parseAddress(ip: string, out: Uint32Array): 0 | 4 | 6 {
  const v4 = ip.indexOf(':') < 0 ? parseIpv4(ip) : -1;
  if (v4 >= 0) {
    out[0] = out[1] = out[2] = 0;
    out[3] = v4;
    return 4;
  }
  if (!parseIpv6(ip, out)) return 0;
  if (out[0] === 0 && out[1] === 0 && out[2] === 0xffff) {
    out[2] = 0;
    return 4;
  }
  return 6;
}

function maskWord(word: number, wordIndex: number, prefix: number): number {
  const bits = prefix - wordIndex * 32;
  if (bits >= 32) return word >>> 0;
  if (bits <= 0) return 0;
  return (word & (0xffffffff << (32 - bits))) >>> 0;
}

function formatIpv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/**
 * Parses `a.b.c.d/len`, `x:y::/len`, or a bare address (/32, /128). Returns a reason instead when it
 * cannot be used: a bad address, a prefix length out of range, or host bits set (`10.0.0.1/8`: the
 * intended network is named in the message).
 */
export function parseCidr(text: string): Cidr | { readonly error: string } {
  const t = text.trim();
  const shown = JSON.stringify(t);
  const slash = t.indexOf('/');
  const addr = slash < 0 ? t : t.slice(0, slash);
  const words = new Uint32Array(4);
  let version: 4 | 6;
  const v4 = addr.indexOf(':') < 0 ? parseIpv4(addr) : -1;
  if (v4 >= 0) {
    version = 4;
    words[3] = v4;
  } else if (addr.includes(':') && parseIpv6(addr, words) && !addr.includes('%')) {
    version = 6;
  } else {
    return { error: `${shown}: not an IPv4 or IPv6 address or network` };
  }
  const max = version === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = t.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p) || Number(p) > max) return { error: `${shown}: the prefix length must be a whole number from 0 to ${max} for IPv${version}` };
    prefix = Number(p);
  }
  const net = new Uint32Array(4);
  if (version === 4) net[3] = maskWord(words[3], 0, prefix);
  else for (let w = 0; w < 4; w++) net[w] = maskWord(words[w], w, prefix);
  const canonical = version === 4 ? `${formatIpv4(net[3])}/${prefix}` : `${formatIpv6Words(net, 0)}/${prefix}`;
  for (let w = 0; w < 4; w++) {
    if (net[w] !== words[w]) return { error: `${shown}: host bits are set (did you mean "${canonical}"?)` };
  }
  return { version, words: [net[0], net[1], net[2], net[3]], prefix, text: canonical };
}


// ---------------------------------------------------------------------------------------------
// Lookup tables

const TAG_MONITORED = 1;
const TAG_IGNORED = 2;
const TAG_SPECIAL = 3;

/** Longest-prefix match. IPv4: one Map per prefix length in use, most specific first. IPv6: a short list
 * sorted by prefix length, compared word by word (configurations hold a handful of IPv6 ranges). */
class PrefixTable {
  private readonly v4 = new Map<number, Map<number, number>>();
  private v4Lengths: number[] = [];
  private v6: { words: readonly number[]; prefix: number; tag: number }[] = [];

  add(c: Cidr, tag: number): void {
    if (c.version === 4) {
      let m = this.v4.get(c.prefix);
      if (m === undefined) {
        m = new Map();
        this.v4.set(c.prefix, m);
        this.v4Lengths = [...this.v4.keys()].sort((a, b) => b - a);
      }
      // A range in both lists: the later list (ignored) wins, as the more deliberate statement.
      m.set(c.words[3], tag);
    } else {
      this.v6 = this.v6.filter((e) => !(e.prefix === c.prefix && e.words.every((w, i) => w === c.words[i])));
      this.v6.push({ words: c.words, prefix: c.prefix, tag });
      this.v6.sort((a, b) => b.prefix - a.prefix);
    }
  }

  /** The tag of the most specific range holding the address, or 0. */
  lookup(version: 4 | 6, a: Uint32Array): number {
    if (version === 4) {
      const v = a[3];
      for (const len of this.v4Lengths) {
        const key = len === 0 ? 0 : (v & (0xffffffff << (32 - len))) >>> 0;
        const tag = (this.v4.get(len) as Map<number, number>).get(key);
        if (tag !== undefined) return tag;
      }
      return 0;
    }
    for (const e of this.v6) {
      let ok = true;
      for (let w = 0; w < 4 && ok; w++) ok = maskWord(a[w], w, e.prefix) === e.words[w];
      if (ok) return e.tag;
    }
    return 0;
  }
}

export interface MonitoredNetworksOptions {
  /** Internal ranges whose hosts are the users to watch (default DEFAULT_MONITORED_NETWORKS). */
  readonly monitored?: readonly string[];
  /** Ranges to leave out: their hosts are never treated as users (servers, printers, a guest network). */
  readonly ignored?: readonly string[];
}

export class MonitoredNetworks {
  private readonly lists = new PrefixTable();
  private readonly special = new PrefixTable();
  private readonly scratch = new Uint32Array(4);
  readonly monitored: readonly Cidr[];
  readonly ignored: readonly Cidr[];

  /** Throws `NetworkConfigError` naming the first bad entry and its list (a start-up configuration error). */
  constructor(options: MonitoredNetworksOptions = {}) {
    this.monitored = MonitoredNetworks.parseList(options.monitored ?? DEFAULT_MONITORED_NETWORKS, 'monitored');
    this.ignored = MonitoredNetworks.parseList(options.ignored ?? [], 'ignored');
    for (const c of this.monitored) this.lists.add(c, TAG_MONITORED);
    for (const c of this.ignored) this.lists.add(c, TAG_IGNORED);
    for (const s of SPECIAL_NETWORKS) this.special.add(parseCidr(s) as Cidr, TAG_SPECIAL);
  }

  private static parseList(entries: readonly string[], list: string): Cidr[] {
    if (entries.length > MAX_NETWORK_ENTRIES) {
      throw new NetworkConfigError(`Cannot use the ${list} networks: ${entries.length} entries, at most ${MAX_NETWORK_ENTRIES}`, '', list);
    }
    return entries.map((e) => {
      const c = parseCidr(e);
      if ('error' in c) throw new NetworkConfigError(`Cannot use ${list} network ${c.error}`, e, list);
      return c;
    });
  }

  /** Inside (a user), ignored, special-use, or outside (a site). Unparseable text is `outside`. */
  classify(ip: string): AddressClass {
    const v = parseAddress(ip, this.scratch);
    if (v === 0) return 'outside';
    const tag = this.lists.lookup(v, this.scratch);
    if (tag === TAG_MONITORED) return 'inside';
    if (tag === TAG_IGNORED) return 'ignored';
    return this.special.lookup(v, this.scratch) === TAG_SPECIAL ? 'special' : 'outside';
  }

  /** In a monitored range, and no more specific ignored range. */
  isInternal(ip: string): boolean {
    return this.classify(ip) === 'inside';
  }

  /** In an ignored range, and no more specific monitored range. */
  isIgnored(ip: string): boolean {
    return this.classify(ip) === 'ignored';
  }

  /**
   * Which side of a flow is the inside user. The originator (src) is the user when both are inside; an
   * ignored host is internal but never the user. Returns a shared frozen object: no allocation.
   */
  orient(srcIp: string, dstIp: string): Orientation {
    const s = this.classify(srcIp);
    const d = this.classify(dstIp);
    if (s === 'inside') return d === 'inside' || d === 'ignored' ? O_INTERNAL_SRC : O_OUTBOUND;
    if (d === 'inside') return s === 'ignored' ? O_INTERNAL_DST : O_INBOUND;
    if (s === 'ignored' || d === 'ignored') return O_IGNORED;
    return O_EXTERNAL;
  }
}

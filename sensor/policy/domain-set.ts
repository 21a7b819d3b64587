/**
 * Policy: a compact set of domain names with subdomain semantics, each carrying a 32-bit value.
 * Input: normalised names (`normalizeDomain`) added to a `DomainSetBuilder`. Output: a read-only
 * `DomainSet` whose `lookup` finds the most specific entry covering a name (`a.b.example.com` ->
 * `example.com` unless `b.example.com` is also listed) without allocating.
 * Layout: the names packed in one byte array, per-entry offset/length/value typed arrays and an
 * open-addressing table of [hash, index] pairs (~40-50 bytes per entry all told). A name's suffixes are hashed right to left,
 * so every label boundary is one table probe.
 */

import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';

/** RFC 1035 §2.3.4: 255 octets on the wire is 253 characters of text without the trailing dot. */
export const MAX_DOMAIN_LEN = 253;
/** RFC 1035 §2.3.4. */
export const MAX_LABEL_LEN = 63;
/** Entries per set: offsets into the packed names are 32-bit and a table slot holds index + 1. */
export const MAX_DOMAIN_SET_ENTRIES = 1 << 26;

/** Bloom filter size in bits per entry (rounded up to a power of two). */
const FILTER_BITS_PER_ENTRY = 8;
/** Fibonacci hashing multiplier: the filter takes the top bits of hash x this. */
const FILTER_MUL = 0x9e3779b1;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const DOT = 0x2e;

export type NormalizedDomain = { readonly domain: string; readonly reason?: undefined } | { readonly domain?: undefined; readonly reason: string };

/**
 * A list entry as the set stores it: lower case, no trailing dot, a leading `*.` dropped (every entry
 * already covers its subdomains), internationalised names as punycode A-labels (node:url domainToASCII).
 * Letters, digits, `-` and `_` only (`_` appears in real service names and blocklists). IP addresses are
 * refused. `reason` says what is wrong, quoting the offending part.
 */
export function normalizeDomain(text: string): NormalizedDomain {
  let d = text;
  if (d.length > 0 && (d.charCodeAt(0) <= 0x20 || d.charCodeAt(d.length - 1) <= 0x20)) d = d.trim();
  if (d.startsWith('*.')) d = d.slice(2);
  if (d.length > 0 && d.charCodeAt(d.length - 1) === DOT) d = d.slice(0, -1);
  if (d.length === 0) return { reason: 'empty domain' };
  if (d.includes(':') && isIP(d.startsWith('[') && d.endsWith(']') ? d.slice(1, -1) : d) === 6) return { reason: 'an IP address, not a domain' };
  let upper = false;
  let nonAscii = false;
  for (let i = 0; i < d.length; i++) {
    const c = d.charCodeAt(i);
    if (c > 0x7f) nonAscii = true;
    else if (c >= 0x41 && c <= 0x5a) upper = true;
    // Checked before IDN conversion too: the WHATWG host parser would cut "bücher.de/x" at the "/".
    else if (!isNameChar(c) && c !== DOT) return { reason: `character ${JSON.stringify(d[i])} is not allowed in a domain name` };
  }
  if (nonAscii) {
    const ascii = domainToASCII(d);
    if (ascii === '') return { reason: 'not a valid internationalised domain name' };
    d = ascii;
  } else if (upper) d = d.toLowerCase();
  if (d.length > MAX_DOMAIN_LEN) return { reason: `longer than ${MAX_DOMAIN_LEN} characters` };
  let start = 0;
  let numeric = true;
  for (let i = 0; i <= d.length; i++) {
    const c = i < d.length ? d.charCodeAt(i) : DOT;
    if (c === DOT) {
      const n = i - start;
      if (n === 0) return { reason: 'empty label (two dots in a row, or a leading dot)' };
      if (n > MAX_LABEL_LEN) return { reason: `label "${d.slice(start, i)}" is longer than ${MAX_LABEL_LEN} characters` };
      start = i + 1;
      continue;
    }
    if (!(c >= 0x30 && c <= 0x39)) numeric = false;
    if (!isNameChar(c)) {
      return { reason: `character ${JSON.stringify(d[i])} is not allowed in a domain name` };
    }
  }
  // All digits and dots: an IPv4 address (or a shorthand of one), never a host name (RFC 1123 §2.1).
  if (numeric) return { reason: 'an IP address, not a domain' };
  return { domain: d };
}

/** a-z, 0-9, `-`, `_` (upper case is folded before this is asked). */
function isNameChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f;
}

/** FNV-1a over a name's characters from the last to the first, ASCII letters folded to lower case. */
function hashReversed(s: string, start: number, end: number): number {
  let h = FNV_OFFSET;
  for (let i = end - 1; i >= start; i--) {
    let c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    h = Math.imul(h ^ c, FNV_PRIME);
  }
  return h >>> 0;
}

/** Table slot from a hash (murmur3 finaliser: FNV's low bits alone cluster). */
function slotOf(h: number, mask: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h & mask;
}

function nextPow2(n: number): number {
  let p = 16;
  while (p < n) p *= 2;
  return p;
}

/** Collects entries; `build` dedupes and packs them. */
export class DomainSetBuilder {
  private names = new Uint8Array(1 << 16);
  private used = 0;
  private offsets = new Uint32Array(1024);
  private lens = new Uint8Array(1024);
  private values = new Uint32Array(1024);
  private n = 0;

  get size(): number {
    return this.n;
  }

  /**
   * Adds a name already normalised (`normalizeDomain`) with its value. Returns false when the set is full
   * (MAX_DOMAIN_SET_ENTRIES) or the name is not normalised-length.
   */
  add(domain: string, value: number): boolean {
    const len = domain.length;
    if (len === 0 || len > MAX_DOMAIN_LEN || this.n >= MAX_DOMAIN_SET_ENTRIES) return false;
    if (this.used + len > this.names.length) {
      const bigger = new Uint8Array(Math.max(this.names.length * 2, this.used + len));
      bigger.set(this.names.subarray(0, this.used));
      this.names = bigger;
    }
    if (this.n === this.offsets.length) {
      const cap = this.n * 2;
      const o = new Uint32Array(cap);
      o.set(this.offsets);
      this.offsets = o;
      const l = new Uint8Array(cap);
      l.set(this.lens);
      this.lens = l;
      const v = new Uint32Array(cap);
      v.set(this.values);
      this.values = v;
    }
    const names = this.names;
    for (let i = 0; i < len; i++) names[this.used + i] = domain.charCodeAt(i) & 0xff;
    this.offsets[this.n] = this.used;
    this.lens[this.n] = len;
    this.values[this.n] = value >>> 0;
    this.used += len;
    this.n++;
    return true;
  }

  /**
   * Packs the entries into exact-size arrays. A name added twice becomes one entry whose value is
   * `merge(first, later)` (default: the first value is kept).
   */
  build(merge: (kept: number, incoming: number) => number = (kept) => kept): DomainSet {
    const n = this.n;
    const names = this.names;
    const offsets = this.offsets;
    const lens = this.lens;
    const values = this.values;
    const cap = nextPow2(n + (n >>> 1) + 1);
    const mask = cap - 1;
    // Slot s holds [hash, index + 1] at 2s, 2s + 1: a probe reads one cache line, and only a hash match
    // touches the entry's bytes.
    const table = new Uint32Array(cap * 2);
    const alive = new Uint8Array(n);
    let live = 0;
    let liveBytes = 0;
    for (let i = 0; i < n; i++) {
      let h = FNV_OFFSET;
      const o = offsets[i];
      const len = lens[i];
      for (let k = o + len - 1; k >= o; k--) h = Math.imul(h ^ names[k], FNV_PRIME);
      h >>>= 0;
      let s = slotOf(h, mask);
      for (;;) {
        const e = table[2 * s + 1];
        if (e === 0) {
          table[2 * s] = h;
          table[2 * s + 1] = i + 1;
          alive[i] = 1;
          live++;
          liveBytes += len;
          break;
        }
        const j = e - 1;
        if (table[2 * s] === h && lens[j] === len && bytesEqual(names, offsets[j], o, len)) {
          values[j] = merge(values[j], values[i]) >>> 0;
          break;
        }
        s = (s + 1) & mask;
      }
    }
    // Compact: live entries only, exact sizes.
    const newIndex = new Uint32Array(n);
    const pNames = new Uint8Array(liveBytes);
    const pOffsets = new Uint32Array(live);
    const pLens = new Uint8Array(live);
    const pValues = new Uint32Array(live);
    let w = 0;
    let at = 0;
    for (let i = 0; i < n; i++) {
      if (alive[i] === 0) continue;
      const len = lens[i];
      const o = offsets[i];
      for (let k = 0; k < len; k++) pNames[at + k] = names[o + k];
      pOffsets[w] = at;
      pLens[w] = len;
      pValues[w] = values[i];
      newIndex[i] = w;
      at += len;
      w++;
    }
    for (let s = 1; s < table.length; s += 2) if (table[s] !== 0) table[s] = newIndex[table[s] - 1] + 1;
    // The builder is spent: drop its arrays so they can be collected.
    this.names = new Uint8Array(0);
    this.offsets = new Uint32Array(0);
    this.lens = new Uint8Array(0);
    this.values = new Uint32Array(0);
    this.n = 0;
    this.used = 0;
    // A one-hash Bloom filter of 8 bits per entry (~12% false positives): most probes for suffixes that
    // are not listed stop here, in an array small enough to stay in cache, instead of in the table.
    const filterBits = nextPow2(Math.max(32, live * FILTER_BITS_PER_ENTRY));
    const filter = new Uint32Array(filterBits >>> 5);
    const shift = 32 - Math.log2(filterBits);
    for (let s = 0; s < table.length; s += 2) {
      if (table[s + 1] === 0) continue;
      const bit = Math.imul(table[s], FILTER_MUL) >>> shift;
      filter[bit >>> 5] |= 1 << (bit & 31);
    }
    return new DomainSet(pNames, pOffsets, pLens, pValues, table, filter, n - live);
  }
}

function bytesEqual(b: Uint8Array, x: number, y: number, len: number): boolean {
  for (let k = 0; k < len; k++) if (b[x + k] !== b[y + k]) return false;
  return true;
}

/** Where the host name in `name` ends: before a `:port` (an HTTP Host header, RFC 9110 §7.2) and one
 * trailing dot. */
function nameEnd(name: string): number {
  let end = name.length;
  let p = end - 1;
  while (p >= 0 && name.charCodeAt(p) >= 0x30 && name.charCodeAt(p) <= 0x39) p--;
  if (p >= 0 && p < end - 1 && name.charCodeAt(p) === 0x3a) end = p;
  if (end > 0 && name.charCodeAt(end - 1) === DOT) end--;
  return end;
}

/** Label boundaries of one name during a lookup (a 253-character name has at most 127 labels; empty
 * labels from stray dots are counted too). Reused: lookups are synchronous. */
const MAX_BOUNDARIES = MAX_DOMAIN_LEN + 1;
const boundaryStart = new Int32Array(MAX_BOUNDARIES);
const boundaryHash = new Uint32Array(MAX_BOUNDARIES);

export class DomainSet {
  private readonly mask: number;
  private readonly filterShift: number;
  /** Bit n set when some entry has n labels (31: 31 or more): suffixes of other label counts are not probed. */
  private readonly labelMask: number;
  /** Where in the last looked-up name the matched entry began (see `lookup`). */
  lastStart = 0;
  /** Where the last looked-up name ended (a trailing dot excluded). */
  lastEnd = 0;

  constructor(
    private readonly names: Uint8Array,
    private readonly offsets: Uint32Array,
    private readonly lens: Uint8Array,
    private readonly values: Uint32Array,
    private readonly table: Uint32Array,
    private readonly filter: Uint32Array,
    /** Names added more than once and merged at build. */
    readonly duplicates: number,
  ) {
    this.mask = table.length / 2 - 1;
    this.filterShift = 32 - Math.log2(filter.length * 32);
    let labelMask = 0;
    for (let i = 0; i < offsets.length; i++) {
      let labels = 1;
      for (let k = offsets[i], e = k + lens[i]; k < e; k++) if (names[k] === DOT) labels++;
      labelMask |= 1 << Math.min(labels, 31);
    }
    this.labelMask = labelMask;
  }

  static empty(): DomainSet {
    return new DomainSetBuilder().build();
  }

  get size(): number {
    return this.offsets.length;
  }

  /** Bytes held by the set's arrays. */
  get memoryBytes(): number {
    return this.names.byteLength + this.offsets.byteLength + this.lens.byteLength + this.values.byteLength + this.table.byteLength + this.filter.byteLength;
  }

  /**
   * The most specific entry equal to `name` or to one of its parent domains, or -1; on a match,
   * `name.slice(lastStart, lastEnd)` is the entry (in the name's case). `name` may have upper-case ASCII
   * letters, one trailing dot and, as in an HTTP Host header, a `:port`. One right-to-left pass hashes every suffix; probes then run from the
   * whole name outwards and stop at the first hit. Nothing is allocated.
   */
  lookup(name: string): number {
    const end = nameEnd(name);
    if (end === 0 || end > MAX_DOMAIN_LEN) return -1;
    let h = FNV_OFFSET;
    let k = 0;
    for (let i = end - 1; i >= 0; i--) {
      let c = name.charCodeAt(i);
      if (c === DOT && i + 1 < end) {
        boundaryStart[k] = i + 1;
        boundaryHash[k] = h;
        k++;
      }
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    boundaryStart[k] = 0;
    boundaryHash[k] = h;
    const labelMask = this.labelMask;
    for (let j = k; j >= 0; j--) {
      if (((labelMask >>> Math.min(j + 1, 31)) & 1) === 0) continue;
      const idx = this.find(boundaryHash[j], name, boundaryStart[j], end);
      if (idx >= 0) {
        this.lastStart = boundaryStart[j];
        this.lastEnd = end;
        return idx;
      }
    }
    return -1;
  }

  /** The entry equal to `name` (no parent domains), or -1. */
  lookupExact(name: string): number {
    const end = nameEnd(name);
    if (end === 0 || end > MAX_DOMAIN_LEN) return -1;
    return this.find(hashReversed(name, 0, end), name, 0, end);
  }

  value(index: number): number {
    return this.values[index];
  }

  domain(index: number): string {
    const o = this.offsets[index];
    return Buffer.from(this.names.buffer, this.names.byteOffset + o, this.lens[index]).toString('latin1');
  }

  /** Every entry's name, in insertion order (first occurrence). */
  *domains(): IterableIterator<string> {
    for (let i = 0; i < this.offsets.length; i++) yield this.domain(i);
  }

  private find(h: number, name: string, start: number, end: number): number {
    const bit = Math.imul(h, FILTER_MUL) >>> this.filterShift;
    if ((this.filter[bit >>> 5] & (1 << (bit & 31))) === 0) return -1;
    const len = end - start;
    const table = this.table;
    const mask = this.mask;
    let s = slotOf(h, mask);
    for (;;) {
      const e = table[2 * s + 1];
      if (e === 0) return -1;
      if (table[2 * s] === h) {
        const j = e - 1;
        if (this.lens[j] === len) {
          const names = this.names;
          const o = this.offsets[j];
          let k = 0;
          for (; k < len; k++) {
            let c = name.charCodeAt(start + k);
            if (c >= 0x41 && c <= 0x5a) c |= 0x20;
            if (names[o + k] !== c) break;
          }
          if (k === len) return j;
        }
      }
      s = (s + 1) & mask;
    }
  }
}

/**
 * Policy: the domain policy. Input: entries from blocklist feeds (see blocklist.ts), each a domain with a
 * category, a threat level and the name of its list. Output: `match(name)` on a queried DNS name, a TLS
 * SNI or an HTTP Host: the most specific listed domain covering it (`a.b.example.com` matches
 * `example.com` unless `b.example.com` is listed), or undefined. Lookups allocate only on a match.
 */

import { DomainSet, DomainSetBuilder } from './domain-set.js';

/** Threat levels run 1 (informational) to 5 (block-worthy), like capture severities. */
export const MIN_THREAT_LEVEL = 1;
export const MAX_THREAT_LEVEL = 5;
/** Distinct list names per policy: 8 bits of an entry's packed value. */
export const MAX_POLICY_LISTS = 256;
/** Distinct categories per policy: 21 bits of an entry's packed value. */
export const MAX_POLICY_CATEGORIES = 1 << 21;

// Entry value: category (21 bits) | list (8 bits) | threat level (3 bits).
const THREAT_BITS = 3;
const LIST_BITS = 8;
const THREAT_MASK = (1 << THREAT_BITS) - 1;
const LIST_MASK = (1 << LIST_BITS) - 1;

export interface DomainPolicyMatch {
  /** The listed domain that covers the name (the name itself or a parent of it). */
  readonly domain: string;
  readonly category: string;
  readonly threatLevel: number;
  /** The name of the list the entry came from. */
  readonly list: string;
}

/** On a duplicate, the higher threat level wins; on a tie, the entry seen first. */
function mergeValues(kept: number, incoming: number): number {
  return (incoming & THREAT_MASK) > (kept & THREAT_MASK) ? incoming : kept;
}

export class DomainPolicyBuilder {
  private readonly set = new DomainSetBuilder();
  private readonly categories = new Map<string, number>();
  private readonly lists = new Map<string, number>();

  get size(): number {
    return this.set.size;
  }

  /**
   * Adds one normalised domain (`normalizeDomain`). Returns a reason when it cannot be added (threat
   * level out of range, too many lists or categories, the set is full), else undefined.
   */
  add(domain: string, category: string, threatLevel: number, list: string): string | undefined {
    if (!Number.isInteger(threatLevel) || threatLevel < MIN_THREAT_LEVEL || threatLevel > MAX_THREAT_LEVEL) {
      return `threat level ${JSON.stringify(threatLevel)} is not a whole number from ${MIN_THREAT_LEVEL} to ${MAX_THREAT_LEVEL}`;
    }
    let listId = this.lists.get(list);
    if (listId === undefined) {
      if (this.lists.size >= MAX_POLICY_LISTS) return `more than ${MAX_POLICY_LISTS} lists in one policy`;
      listId = this.lists.size;
      this.lists.set(list, listId);
    }
    let catId = this.categories.get(category);
    if (catId === undefined) {
      if (this.categories.size >= MAX_POLICY_CATEGORIES) return `more than ${MAX_POLICY_CATEGORIES} categories in one policy`;
      catId = this.categories.size;
      this.categories.set(category, catId);
    }
    const value = ((catId << (LIST_BITS + THREAT_BITS)) | (listId << THREAT_BITS) | threatLevel) >>> 0;
    return this.set.add(domain, value) ? undefined : 'the policy is full';
  }

  build(): DomainPolicy {
    return new DomainPolicy(this.set.build(mergeValues), [...this.categories.keys()], [...this.lists.keys()]);
  }
}

function hasUpper(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return true;
  }
  return false;
}

export class DomainPolicy {
  constructor(private readonly set: DomainSet, private readonly categories: readonly string[], private readonly lists: readonly string[]) {}

  static empty(): DomainPolicy {
    return new DomainPolicyBuilder().build();
  }

  /** Distinct domains. */
  get size(): number {
    return this.set.size;
  }

  /** Domains listed more than once (merged: highest threat level kept). */
  get duplicates(): number {
    return this.set.duplicates;
  }

  /** Bytes held by the packed entries. */
  get memoryBytes(): number {
    return this.set.memoryBytes;
  }

  /** The names of the lists loaded, in load order. */
  listNames(): readonly string[] {
    return this.lists;
  }

  /** Does any entry cover `name`? Never allocates. */
  covers(name: string): boolean {
    return this.set.lookup(name) >= 0;
  }

  /**
   * The most specific entry covering `name` (a DNS name, a TLS SNI or an HTTP Host; any case, one
   * trailing dot and a `:port` allowed), or undefined.
   */
  match(name: string): DomainPolicyMatch | undefined {
    const i = this.set.lookup(name);
    if (i < 0) return undefined;
    const v = this.set.value(i);
    // The entry is the matched part of the name itself (cheaper than decoding the packed bytes).
    const part = name.slice(this.set.lastStart, this.set.lastEnd);
    return {
      domain: hasUpper(part) ? part.toLowerCase() : part,
      category: this.categories[v >>> (LIST_BITS + THREAT_BITS)],
      threatLevel: v & THREAT_MASK,
      list: this.lists[(v >>> THREAT_BITS) & LIST_MASK],
    };
  }
}

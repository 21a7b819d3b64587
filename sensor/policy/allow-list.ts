/**
 * Policy: the allow list, domains whose traffic is never captured and never stored.
 * Input: entries (one per line in a file, `#` comments). Output: an `AllowList` answering `allows(name)`
 * for a DNS name, SNI or Host: an entry covers itself and every subdomain (`youtube.com` covers
 * `www.youtube.com`). An entry must name a registrable domain or below under the public suffix list
 * (tldts, private suffixes included): `com`, `co.uk` or `github.io` alone would exempt whole registries
 * or hosting platforms, so they are refused with a message that names the entry.
 */

import { getDomain, getPublicSuffix, parse } from 'tldts';
import { DomainSet, DomainSetBuilder, normalizeDomain } from './domain-set.js';

/** Private suffixes (`github.io`, `blogspot.com`) count as public: allowing one would allow every site on it. */
const PSL_OPTIONS = { allowPrivateDomains: true } as const;

export type AllowListEntryCheck = { readonly domain: string; readonly error?: undefined } | { readonly domain?: undefined; readonly error: string };

export interface AllowListProblem {
  /** 1-based line (or entry) number. */
  readonly line: number;
  readonly entry: string;
  readonly error: string;
}

/**
 * Checks and normalises one allow-list entry: lower case, no trailing dot, punycode for an
 * internationalised name; `*.example.com` is taken as `example.com`. Refuses public suffixes (and single
 * labels such as `localhost`), IP addresses and malformed names, naming the entry in the message.
 */
export function checkAllowListEntry(entry: string): AllowListEntryCheck {
  const shown = JSON.stringify(entry.trim());
  const n = normalizeDomain(entry);
  if (n.domain === undefined) {
    if (n.reason === 'an IP address, not a domain') {
      return { error: `Allow-list entry ${shown} is an IP address: the allow list takes domain names (leave addresses out with the ignored networks)` };
    }
    return { error: `Allow-list entry ${shown} is not a valid domain name: ${n.reason}` };
  }
  const d = n.domain;
  if (!d.includes('.') && parse(d, PSL_OPTIONS).isIcann !== true) {
    return { error: `Allow-list entry ${shown} is a single-label name, not a domain: name a registered domain such as "example.com"` };
  }
  if (getDomain(d, PSL_OPTIONS) === null) {
    const suffix = getPublicSuffix(d, PSL_OPTIONS) ?? d;
    const example = `example.${suffix}`;
    if (suffix === d) {
      return { error: `Allow-list entry ${shown} is a public suffix: name a domain under it, such as "${example}"` };
    }
    return { error: `Allow-list entry ${shown} is above the public suffix "${suffix}": name a domain under it, such as "${example}"` };
  }
  return { domain: d };
}

export class AllowList {
  private constructor(private readonly set: DomainSet) {}

  static empty(): AllowList {
    return new AllowList(DomainSet.empty());
  }

  /** Builds from entries; refused ones are returned as problems (numbered from 1), never dropped silently. */
  static fromEntries(entries: readonly string[]): { allowList: AllowList; problems: AllowListProblem[] } {
    const b = new DomainSetBuilder();
    const problems: AllowListProblem[] = [];
    entries.forEach((e, i) => {
      const c = checkAllowListEntry(e);
      if (c.domain === undefined) problems.push({ line: i + 1, entry: e, error: c.error });
      else b.add(c.domain, 0);
    });
    return { allowList: new AllowList(b.build()), problems };
  }

  /** One entry per line; blank lines and `#` comments (whole-line or trailing) are skipped. */
  static parse(text: string): { allowList: AllowList; problems: AllowListProblem[] } {
    const b = new DomainSetBuilder();
    const problems: AllowListProblem[] = [];
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const hash = lines[i].indexOf('#');
      const entry = (hash >= 0 ? lines[i].slice(0, hash) : lines[i]).trim();
      if (entry.length === 0) continue;
      const c = checkAllowListEntry(entry);
      if (c.domain === undefined) problems.push({ line: i + 1, entry, error: c.error });
      else b.add(c.domain, 0);
    }
    return { allowList: new AllowList(b.build()), problems };
  }

  get size(): number {
    return this.set.size;
  }

  /** Is `name` (any case, one trailing dot allowed) an entry or a subdomain of one? Never allocates. */
  allows(name: string): boolean {
    return this.set.lookup(name) >= 0;
  }

  /** The entry that covers `name`, or undefined. */
  match(name: string): string | undefined {
    const i = this.set.lookup(name);
    return i < 0 ? undefined : name.slice(this.set.lastStart, this.set.lastEnd).toLowerCase();
  }

  /** The normalised entries, first occurrence order. */
  entries(): string[] {
    return [...this.set.domains()];
  }
}

/**
 * Policy: blocklist feed loaders. Input: the text of a feed in one of three formats (below) and the
 * list's name. Output: entries added to a `DomainPolicyBuilder`, and a report giving every line that
 * was not used, with its number and the reason: nothing is dropped silently.
 *
 *   hosts    `0.0.0.0 bad.example [more.example ...]` (any IPv4/IPv6 address first; `#` comments). The
 *            machine's own names (`localhost`, `broadcasthost`, `ip6-*`, ...) are skipped and reported.
 *   domains  one domain per line (`#` comments); `*.bad.example` is the same entry as `bad.example`.
 *   csv      a header line `domain,category,threat_level`, then one entry per line:
 *              domain        the domain (its subdomains are covered too)
 *              category      free text naming what the site is (`malware`, `phishing`, `gambling`, ...)
 *              threat_level  a whole number from 1 (informational) to 5 (most serious)
 *            Further columns after these three are ignored (e.g. `source`, `added`). Fields may be
 *            double-quoted (RFC 4180, `""` for a quote; no line breaks inside a field). `#` lines are comments.
 */

import { isIP } from 'node:net';
import { normalizeDomain } from './domain-set.js';
import { MAX_THREAT_LEVEL, MIN_THREAT_LEVEL, type DomainPolicyBuilder } from './domain-policy.js';

export type DomainListFormat = 'hosts' | 'domains' | 'csv';

/** Problems kept in a report; the rest are only counted (`problemCount`), so a wrong file cannot
 * fill memory with a million messages. */
export const MAX_REPORTED_PROBLEMS = 1000;
/** Category and threat level of hosts and plain-domain entries when the caller names none. */
export const DEFAULT_CATEGORY = 'blocklist';
export const DEFAULT_THREAT_LEVEL = 3;
/** Longest category text: a label for events and reports, not prose. */
export const MAX_CATEGORY_LEN = 64;

/** Names a hosts file gives the machine itself, never a blocked site (StevenBlack's and the OS defaults). */
const LOCAL_HOST_NAMES: ReadonlySet<string> = new Set([
  'localhost', 'localhost.localdomain', 'local', 'broadcasthost', 'localdomain', 'ip6-localhost', 'ip6-loopback',
  'ip6-localnet', 'ip6-mcastprefix', 'ip6-allnodes', 'ip6-allrouters', 'ip6-allhosts', '0.0.0.0',
]);

const CSV_COLUMNS = ['domain', 'category', 'threat_level'] as const;

export interface DomainListOptions {
  /** The list's name, reported with every match (e.g. `urlhaus`). */
  readonly list: string;
  /** `auto` (default) looks at the first line that is not blank or a comment. */
  readonly format?: DomainListFormat | 'auto';
  /** For hosts and plain-domain lists (CSV rows carry their own). */
  readonly category?: string;
  readonly threatLevel?: number;
}

export interface DomainListProblem {
  /** 1-based line number; 0 when the problem is with the options (the whole list is refused). */
  readonly line: number;
  /** The line as read (trimmed, at most 200 characters). */
  readonly text: string;
  readonly reason: string;
}

export interface DomainListReport {
  readonly list: string;
  readonly format: DomainListFormat;
  /** Lines read, blank and comment lines included. */
  readonly lines: number;
  /** Domains added (a name listed twice counts twice here; the policy merges them). */
  readonly entries: number;
  /** Every problem, up to MAX_REPORTED_PROBLEMS. */
  readonly problems: readonly DomainListProblem[];
  /** All problems, reported or not. */
  readonly problemCount: number;
}

/** Guesses a feed's format from its first line that is not blank or a comment. */
export function detectDomainListFormat(text: string): DomainListFormat {
  for (const raw of lines(text)) {
    const line = stripComment(raw.text).trim();
    if (line.length === 0) continue;
    if (/^"?domain"?\s*,/i.test(line)) return 'csv';
    const first = line.split(/\s+/, 1)[0];
    return isIP(first) !== 0 ? 'hosts' : 'domains';
  }
  return 'domains';
}

/** Loads a feed in the given (or detected) format into `builder`. */
export function loadDomainList(builder: DomainPolicyBuilder, text: string, options: DomainListOptions): DomainListReport {
  const format = options.format === undefined || options.format === 'auto' ? detectDomainListFormat(text) : options.format;
  if (format === 'hosts') return loadHostsFile(builder, text, options);
  if (format === 'csv') return loadDomainCsv(builder, text, options);
  return loadPlainDomains(builder, text, options);
}

/** Collects problems for one report. */
class Reporter {
  readonly problems: DomainListProblem[] = [];
  count = 0;
  entries = 0;

  problem(line: number, text: string, reason: string): void {
    this.count++;
    if (this.problems.length < MAX_REPORTED_PROBLEMS) {
      const t = text.trim();
      this.problems.push({ line, text: t.length > 200 ? `${t.slice(0, 200)}...` : t, reason });
    }
  }

  report(list: string, format: DomainListFormat, lineCount: number): DomainListReport {
    return { list, format, lines: lineCount, entries: this.entries, problems: this.problems, problemCount: this.count };
  }
}

/** Lines with 1-based numbers; `\n` or `\r\n`; a byte-order mark at the start is dropped. */
function* lines(text: string): IterableIterator<{ n: number; text: string }> {
  let start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let n = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    n++;
    yield { n, text: text.slice(start, end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end) };
    start = end + 1;
  }
}

function stripComment(line: string): string {
  const h = line.indexOf('#');
  return h >= 0 ? line.slice(0, h) : line;
}

/** The category and threat level a hosts or plain list applies to every entry. */
function listDefaults(options: DomainListOptions): { category: string; threatLevel: number } {
  return { category: options.category ?? DEFAULT_CATEGORY, threatLevel: options.threatLevel ?? DEFAULT_THREAT_LEVEL };
}

/** What is wrong with the options of a hosts or plain list, or undefined. */
function checkListOptions(options: DomainListOptions, category: string, threatLevel: number): string | undefined {
  if (options.list.trim().length === 0) return 'the list has no name';
  if (category.trim().length === 0 || category.length > MAX_CATEGORY_LEN) return `category ${JSON.stringify(category)} must be 1 to ${MAX_CATEGORY_LEN} characters`;
  if (!Number.isInteger(threatLevel) || threatLevel < MIN_THREAT_LEVEL || threatLevel > MAX_THREAT_LEVEL) {
    return `threat level ${JSON.stringify(threatLevel)} is not a whole number from ${MIN_THREAT_LEVEL} to ${MAX_THREAT_LEVEL}`;
  }
  return undefined;
}

function addDomain(builder: DomainPolicyBuilder, r: Reporter, lineNo: number, line: string, name: string, category: string, threatLevel: number, list: string): void {
  const d = normalizeDomain(name);
  if (d.domain === undefined) {
    r.problem(lineNo, line, `${JSON.stringify(name)}: ${d.reason}`);
    return;
  }
  const why = builder.add(d.domain, category, threatLevel, list);
  if (why !== undefined) r.problem(lineNo, line, `${JSON.stringify(name)}: ${why}`);
  else r.entries++;
}

/** Hosts-file format: an address, then one or more names. */
export function loadHostsFile(builder: DomainPolicyBuilder, text: string, options: DomainListOptions): DomainListReport {
  const r = new Reporter();
  const { category, threatLevel } = listDefaults(options);
  let n = 0;
  const bad = checkListOptions(options, category, threatLevel);
  if (bad !== undefined) {
    r.problem(0, '', `Cannot load list ${JSON.stringify(options.list)}: ${bad}`);
    return r.report(options.list, 'hosts', 0);
  }
  for (const { n: lineNo, text: raw } of lines(text)) {
    n = lineNo;
    const line = stripComment(raw).trim();
    if (line.length === 0) continue;
    const fields = line.split(/\s+/);
    if (isIP(fields[0]) === 0) {
      r.problem(lineNo, raw, `expected an IP address and host names, found ${JSON.stringify(fields[0])} first`);
      continue;
    }
    if (fields.length === 1) {
      r.problem(lineNo, raw, 'no host name after the address');
      continue;
    }
    for (let i = 1; i < fields.length; i++) {
      const name = fields[i];
      if (LOCAL_HOST_NAMES.has(name.toLowerCase())) {
        r.problem(lineNo, raw, `${JSON.stringify(name)} is the machine's own name, not a blocked site: skipped`);
        continue;
      }
      addDomain(builder, r, lineNo, raw, name, category, threatLevel, options.list);
    }
  }
  return r.report(options.list, 'hosts', n);
}

/** One domain per line. */
export function loadPlainDomains(builder: DomainPolicyBuilder, text: string, options: DomainListOptions): DomainListReport {
  const r = new Reporter();
  const { category, threatLevel } = listDefaults(options);
  let n = 0;
  const bad = checkListOptions(options, category, threatLevel);
  if (bad !== undefined) {
    r.problem(0, '', `Cannot load list ${JSON.stringify(options.list)}: ${bad}`);
    return r.report(options.list, 'domains', 0);
  }
  for (const { n: lineNo, text: raw } of lines(text)) {
    n = lineNo;
    const line = stripComment(raw).trim();
    if (line.length === 0) continue;
    if (/\s/.test(line)) {
      r.problem(lineNo, raw, 'more than one word on the line (a hosts-file line? load it as format "hosts")');
      continue;
    }
    addDomain(builder, r, lineNo, raw, line, category, threatLevel, options.list);
  }
  return r.report(options.list, 'domains', n);
}

/** Splits one CSV line (RFC 4180 quoting, no line breaks in fields); undefined when a quote is unclosed. */
export function splitCsvLine(line: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    while (i < line.length && (line[i] === ' ' || line[i] === '\t')) i++;
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) return undefined;
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += line[i++];
      }
      while (i < line.length && line[i] !== ',') {
        if (line[i] !== ' ' && line[i] !== '\t') return undefined;
        i++;
      }
    } else {
      const comma = line.indexOf(',', i);
      const end = comma < 0 ? line.length : comma;
      field = line.slice(i, end);
      i = end;
    }
    out.push(field.trim());
    if (i >= line.length) return out;
    i++; // the comma
  }
}

/** CSV with the header `domain,category,threat_level` (see the file header for the columns). */
export function loadDomainCsv(builder: DomainPolicyBuilder, text: string, options: DomainListOptions): DomainListReport {
  const r = new Reporter();
  let n = 0;
  if (options.list.trim().length === 0) {
    r.problem(0, '', 'Cannot load a list with no name');
    return r.report(options.list, 'csv', 0);
  }
  let header = false;
  for (const { n: lineNo, text: raw } of lines(text)) {
    n = lineNo;
    const line = raw.trim();
    if (line.length === 0 || line.startsWith('#')) continue;
    const fields = splitCsvLine(line);
    if (fields === undefined) {
      r.problem(lineNo, raw, 'unclosed double quote');
      continue;
    }
    if (!header) {
      const got = fields.slice(0, CSV_COLUMNS.length).map((f) => f.toLowerCase());
      if (got.join(',') !== CSV_COLUMNS.join(',')) {
        r.problem(lineNo, raw, `the first line must be the header "${CSV_COLUMNS.join(',')}": nothing loaded`);
        return r.report(options.list, 'csv', n);
      }
      header = true;
      continue;
    }
    if (fields.length < CSV_COLUMNS.length) {
      r.problem(lineNo, raw, `expected ${CSV_COLUMNS.length} fields (${CSV_COLUMNS.join(', ')}), found ${fields.length}`);
      continue;
    }
    const [domain, category, level] = fields;
    if (category.length === 0 || category.length > MAX_CATEGORY_LEN) {
      r.problem(lineNo, raw, `category ${JSON.stringify(category)} must be 1 to ${MAX_CATEGORY_LEN} characters`);
      continue;
    }
    const threat = /^[0-9]+$/.test(level) ? Number(level) : NaN;
    if (!(threat >= MIN_THREAT_LEVEL && threat <= MAX_THREAT_LEVEL)) {
      r.problem(lineNo, raw, `threat_level ${JSON.stringify(level)} is not a whole number from ${MIN_THREAT_LEVEL} to ${MAX_THREAT_LEVEL}`);
      continue;
    }
    addDomain(builder, r, lineNo, raw, domain, category, threat, options.list);
  }
  if (!header) r.problem(n, '', `no header line "${CSV_COLUMNS.join(',')}": nothing loaded`);
  return r.report(options.list, 'csv', n);
}

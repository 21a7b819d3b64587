/**
 * Identity, static mapping file: CSV rows `ip or mac,hostname,user` (as identity products export them).
 * Input: the file's text. Output: entries (address canonicalised, kind ip / mac) and, for every line
 * that is not one, an error with its 1-based line number: no line is dropped silently. `applyStaticMap`
 * feeds the entries to a table as source `static`, valid for every timestamp.
 * Format: optional header row (first cell `ip`, `mac`, `address` or `ip or mac`); `#` comments and blank
 * lines skipped; RFC 4180 quoting (`"a,b"`, `""` for a quote); hostname or user may be empty, not both.
 */

import { readFileSync, statSync } from 'node:fs';
import { normaliseIp, normaliseMac } from './address.js';
import { MAX_IDENTITY_TEXT_LEN, cleanIdentityText, type IdentitySink } from './observation.js';

/** Largest mapping file read: 200,000 rows of ~80 bytes. */
export const MAX_STATIC_MAP_BYTES = 16 * 1024 * 1024;
/** Rows accepted; later rows are errors (the table's static section has the same bound). */
export const MAX_STATIC_MAP_ENTRIES = 200_000;

export interface StaticEntry {
  readonly line: number;
  readonly kind: 'ip' | 'mac';
  readonly address: string;
  readonly hostname?: string;
  readonly user?: string;
}

export interface StaticMapError {
  readonly line: number;
  readonly message: string;
  readonly text: string;
}

export interface StaticMap {
  readonly entries: readonly StaticEntry[];
  readonly errors: readonly StaticMapError[];
}

const HEADER_FIRST_CELL = /^(ip|mac|address|ip or mac|ip_or_mac|ip\/mac)$/i;

/** Splits one CSV line; undefined when a quote is left open. */
function splitCsvLine(line: string): string[] | undefined {
  const cells: string[] = [];
  let cur = '';
  let i = 0;
  let quoted = false;
  while (i < line.length) {
    const c = line[i];
    if (quoted) {
      if (c === '"') {
        if (line[i + 1] === '"') {
          cur += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      cur += c;
      i++;
      continue;
    }
    if (c === '"' && cur.trim() === '') {
      cur = '';
      quoted = true;
    } else if (c === ',') {
      cells.push(cur);
      cur = '';
    } else {
      cur += c;
    }
    i++;
  }
  if (quoted) return undefined;
  cells.push(cur);
  return cells.map((x) => x.trim());
}

/** Parses mapping text. Duplicated addresses keep their first row and report the later ones. */
export function parseStaticMap(text: string): StaticMap {
  const entries: StaticEntry[] = [];
  const errors: StaticMapError[] = [];
  const seen = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  let sawContent = false;
  for (let n = 0; n < lines.length; n++) {
    const lineNo = n + 1;
    const raw = n === 0 ? lines[n].replace(/^\uFEFF/, '') : lines[n];
    const t = raw.trim();
    if (t === '' || t.startsWith('#')) continue;
    const fail = (message: string): void => {
      errors.push({ line: lineNo, message, text: raw.length > 200 ? `${raw.slice(0, 200)}...` : raw });
    };
    const cells = splitCsvLine(raw);
    if (cells === undefined) {
      fail('unterminated quoted field');
      continue;
    }
    if (!sawContent) {
      sawContent = true;
      if (HEADER_FIRST_CELL.test(cells[0])) continue;
    }
    if (cells.length !== 3) {
      fail(`expected 3 fields (ip or mac, hostname, user), found ${cells.length}`);
      continue;
    }
    const [addr, host, user] = cells;
    const mac = normaliseMac(addr);
    const ip = mac === undefined ? normaliseIp(addr) : undefined;
    if (mac === undefined && ip === undefined) {
      fail(`"${addr}" is neither an IPv4 / IPv6 address nor a MAC address`);
      continue;
    }
    if (host.length > MAX_IDENTITY_TEXT_LEN || user.length > MAX_IDENTITY_TEXT_LEN) {
      fail(`hostname or user longer than ${MAX_IDENTITY_TEXT_LEN} characters`);
      continue;
    }
    const hostname = cleanIdentityText(host);
    const userName = cleanIdentityText(user);
    if (hostname === undefined && userName === undefined) {
      fail('both hostname and user are empty');
      continue;
    }
    const address = (mac ?? ip) as string;
    const first = seen.get(address);
    if (first !== undefined) {
      fail(`duplicate address ${address} (first at line ${first}); the first row is kept`);
      continue;
    }
    if (entries.length >= MAX_STATIC_MAP_ENTRIES) {
      fail(`more than ${MAX_STATIC_MAP_ENTRIES} entries`);
      continue;
    }
    seen.set(address, lineNo);
    const e: { line: number; kind: 'ip' | 'mac'; address: string; hostname?: string; user?: string } = {
      line: lineNo, kind: mac !== undefined ? 'mac' : 'ip', address,
    };
    if (hostname !== undefined) e.hostname = hostname;
    if (userName !== undefined) e.user = userName;
    entries.push(e);
  }
  return { entries, errors };
}

/** Reads and parses a mapping file. Throws (operational error, with the path) only when it cannot be read. */
export function loadStaticMap(path: string): StaticMap {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new Error(`Cannot read identity mapping file "${path}": ${(e as Error).message}`, { cause: e });
  }
  if (size > MAX_STATIC_MAP_BYTES) {
    throw new Error(`Cannot read identity mapping file "${path}": ${size} bytes, more than ${MAX_STATIC_MAP_BYTES}`);
  }
  try {
    return parseStaticMap(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`Cannot read identity mapping file "${path}": ${(e as Error).message}`, { cause: e });
  }
}

/** Feeds every entry to `sink` as source `static` at time `tsUs` (0: valid for any capture). Returns the count. */
export function applyStaticMap(sink: IdentitySink, map: StaticMap, tsUs = 0): number {
  for (const e of map.entries) {
    sink.observe({
      ...(e.kind === 'ip' ? { ip: e.address } : { mac: e.address }),
      ...(e.hostname !== undefined ? { hostname: e.hostname } : {}),
      ...(e.user !== undefined ? { user: e.user } : {}),
      source: 'static',
      tsUs,
    });
  }
  return map.entries.length;
}

/**
 * Normalize stage, URL: an HTTP request-target -> the text a person typed into it. Input: the
 * target as a byte string (one char per byte, as `latin1` gives; chars above 0xFF are taken as
 * already decoded) or bytes. Output: decoded path segments, search terms (values of q, query,
 * search, ...) reported apart so a capture can say "searched for", and the other query values.
 * Also the percent decoder that form.ts streams urlencoded bodies through. Rules: extractUrlText.
 */

import { defineAnomaly, defineCounter, Counters } from '../events/counters.js';
import { utf8ContinuationOk, utf8SeqLen, windows1252Char } from './charset.js';

const C_DOUBLE = defineCounter('normalize.url.double_encoded');
const C_TOO_DEEP = defineAnomaly('normalize.url.encoding_too_deep');
const C_INVALID_UTF8 = defineAnomaly('normalize.url.invalid_utf8');
const C_PRIVATE = defineCounter('normalize.url.private_field_skipped');
const C_TOO_MANY = defineCounter('normalize.url.components_capped');

/** Decoded UTF-16 units buffered before they become a string (one fromCharCode call). */
const OUT_UNITS = 1024;
/** Query parameters read from one target; the HTTP parser bounds the line, this bounds the work. */
const MAX_QUERY_PARAMS = 256;
/** Path segments read from one target, for the same reason. */
const MAX_PATH_SEGMENTS = 128;

/** Field names whose values are secrets or machine state, not text to match (case-insensitive). */
export const PRIVATE_FIELD_RE = /pass|pwd|csrf|xsrf|token|viewstate|eventvalidation|nonce|session|sessid/i;

/** Query parameter names that carry a search (Google, Bing, Yahoo p, YouTube, Amazon k, Baidu wd, ...). */
const SEARCH_PARAMS = new Set([
  'q', 'query', 'search', 's', 'p', 'k', 'text', 'term', 'terms', 'keyword', 'keywords', 'search_query',
  'searchquery', 'searchterm', 'search_term', 'searchtext', 'search_text', 'searchstring', 'wd', 'word',
  'kw', 'oq', 'as_q', 'as_epq', 'field-keywords', 'find', 'qry', 'question',
]);

/** Whether a query parameter name (already decoded) carries search terms. */
export function isSearchParam(name: string): boolean {
  return SEARCH_PARAMS.has(name.toLowerCase());
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

/**
 * Streaming percent decoder: feed `byte` (0-255) or `char` (already text), call `end` at a field
 * boundary, `take` the text so far. Holds at most one escape and one UTF-8 sequence (3 bytes).
 */
export class PercentDecoder {
  counters: Counters | undefined;
  private readonly out = new Uint16Array(OUT_UNITS);
  private outLen = 0;
  private acc = '';
  private pct = 0; // 0: none, 1: after '%', 2: after '%' and one hex digit
  private pctHi = 0;
  // The UTF-8 sequence being assembled: bytes, and for escaped ones the two hex digits as written.
  private readonly seq = new Uint8Array(4);
  private readonly seqHex = new Uint16Array(8);
  private seqLen = 0;
  private seqNeed = 0;

  constructor(private readonly plusIsSpace: boolean, counters?: Counters) {
    this.counters = counters;
  }

  /** One input byte (or a char below 0x80 of a string being decoded a second time). */
  byte(c: number): void {
    if (this.pct === 1) {
      if (hexValue(c) >= 0) {
        this.pct = 2;
        this.pctHi = c;
        return;
      }
      this.pct = 0;
      this.flushSeq();
      this.unit(37);
    } else if (this.pct === 2) {
      this.pct = 0;
      const lo = hexValue(c);
      if (lo >= 0) {
        this.decoded((hexValue(this.pctHi) << 4) | lo, this.pctHi, c);
        return;
      }
      this.flushSeq();
      this.unit(37);
      this.unit(this.pctHi);
    }
    if (c === 37) {
      this.pct = 1;
      return;
    }
    if (c === 43 && this.plusIsSpace) c = 32;
    if (c < 0x80) {
      this.flushSeq();
      this.unit(c);
      return;
    }
    this.decoded(c, 0, 0);
  }

  /** A character that is already text (second pass over a decoded string). */
  char(c: number): void {
    this.flushEscape();
    this.flushSeq();
    this.unit(c);
  }

  /** Field boundary: anything unfinished is kept as written. */
  end(): void {
    this.flushEscape();
    this.flushSeq();
  }

  take(): string {
    let s = this.acc;
    if (this.outLen > 0) s += String.fromCharCode.apply(null, this.out.subarray(0, this.outLen) as unknown as number[]);
    this.acc = '';
    this.outLen = 0;
    return s;
  }

  private unit(u: number): void {
    if (this.outLen === OUT_UNITS) {
      this.acc += String.fromCharCode.apply(null, this.out as unknown as number[]);
      this.outLen = 0;
    }
    this.out[this.outLen++] = u;
  }

  /** A decoded byte; `hi`/`lo` are its hex digits as written, 0 for a raw byte. */
  private decoded(b: number, hi: number, lo: number): void {
    if (this.seqNeed > 0) {
      if (utf8ContinuationOk(this.seq[0], this.seqLen, b)) {
        this.seqHex[2 * this.seqLen] = hi;
        this.seqHex[2 * this.seqLen + 1] = lo;
        this.seq[this.seqLen++] = b;
        if (--this.seqNeed === 0) this.emitSeq();
        return;
      }
      this.flushSeq();
    }
    if (b < 0x80) {
      this.unit(b);
      return;
    }
    const len = utf8SeqLen(b);
    this.seq[0] = b;
    this.seqHex[0] = hi;
    this.seqHex[1] = lo;
    this.seqLen = 1;
    if (len === 0) {
      this.flushSeq();
      return;
    }
    this.seqNeed = len - 1;
  }

  private emitSeq(): void {
    const s = this.seq;
    let cp: number;
    if (this.seqLen === 2) cp = ((s[0] & 0x1f) << 6) | (s[1] & 0x3f);
    else if (this.seqLen === 3) cp = ((s[0] & 0x0f) << 12) | ((s[1] & 0x3f) << 6) | (s[2] & 0x3f);
    else cp = ((s[0] & 0x07) << 18) | ((s[1] & 0x3f) << 12) | ((s[2] & 0x3f) << 6) | (s[3] & 0x3f);
    if (cp > 0xffff) {
      cp -= 0x10000;
      this.unit(0xd800 + (cp >> 10));
      this.unit(0xdc00 + (cp & 0x3ff));
    } else {
      this.unit(cp);
    }
    this.seqLen = 0;
  }

  /** The bytes held are not valid UTF-8: escapes stay as written, raw bytes read as windows-1252. */
  private flushSeq(): void {
    if (this.seqLen === 0) return;
    for (let k = 0; k < this.seqLen; k++) {
      const hi = this.seqHex[2 * k];
      if (hi !== 0) {
        this.unit(37);
        this.unit(hi);
        this.unit(this.seqHex[2 * k + 1]);
      } else {
        this.unit(windows1252Char(this.seq[k]).charCodeAt(0));
      }
    }
    this.counters?.inc(C_INVALID_UTF8);
    this.seqLen = 0;
    this.seqNeed = 0;
  }

  private flushEscape(): void {
    if (this.pct === 0) return;
    this.flushSeq();
    this.unit(37);
    if (this.pct === 2) this.unit(this.pctHi);
    this.pct = 0;
  }
}

const ESCAPE_RE = /%[0-9A-Fa-f]{2}/;
const plusDecoder = new PercentDecoder(true);
const plainDecoder = new PercentDecoder(false);

function percentPass(s: string, dec: PercentDecoder, bytes: boolean): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80 || (bytes && c <= 0xff)) dec.byte(c);
    else dec.char(c);
  }
  dec.end();
  return dec.take();
}

/**
 * Decodes one URL component (a path segment, a query name or value): percent escapes as UTF-8,
 * '+' as space when `plusIsSpace`, a second pass when the first uncovered "%25"-made escapes.
 */
export function decodeUrlComponent(raw: string, plusIsSpace: boolean, counters?: Counters): string {
  let plain = true;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 37 || c >= 0x80 || (c === 43 && plusIsSpace)) {
      plain = false;
      break;
    }
  }
  if (plain) return raw;
  const dec = plusIsSpace ? plusDecoder : plainDecoder;
  dec.counters = counters;
  let out = percentPass(raw, dec, true);
  if (raw.includes('%25') && ESCAPE_RE.test(out)) {
    counters?.inc(C_DOUBLE);
    const once = out;
    plainDecoder.counters = counters;
    out = percentPass(once, plainDecoder, false);
    if (once.includes('%25') && ESCAPE_RE.test(out)) counters?.inc(C_TOO_DEEP);
  }
  dec.counters = undefined;
  plainDecoder.counters = undefined;
  return out;
}

export interface UrlText {
  /** Decoded path segments, in order. */
  readonly path: string[];
  /** Values of search parameters (`q`, `query`, `search`, `p`, `wd`, ...), in order. */
  readonly search: string[];
  /** Other query values, and parameters without '=' taken whole. */
  readonly query: string[];
}

const SLUG_RE = /[_-]+/g;

/**
 * The typed text of a request-target: origin-form (`/a/b?q=x`) or absolute-form
 * (`http://host/a?q=x`); authority-form and `*` carry none. A fragment, if sent, is ignored.
 * Rules: %XX sequences are UTF-8; an escape that is not valid UTF-8 stays as written ("%FF"), a
 * raw byte that is not reads as windows-1252; '+' is a space in the query only. A component that
 * still holds %XX after decoding and had "%25" is decoded a second time (double encoding, counted),
 * never a third. Path segments: `;params` dropped, '_' and '-' read as spaces (/wiki/Our_Secret,
 * /news/our-secret-plan are how sites spell typed titles), "." and ".." and empty ones skipped.
 * Query values of fields named like passwords, tokens or session ids are skipped (counted).
 */
export function extractUrlText(target: string | Uint8Array, counters?: Counters): UrlText {
  const result: UrlText = { path: [], search: [], query: [] };
  let t =
    typeof target === 'string' ? target : Buffer.from(target.buffer, target.byteOffset, target.byteLength).toString('latin1');
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(t);
  if (scheme !== null) {
    const slash = t.indexOf('/', scheme[0].length);
    const q = t.indexOf('?', scheme[0].length);
    if (slash < 0 && q < 0) return result;
    t = slash < 0 || (q >= 0 && q < slash) ? '/' + t.slice(q) : t.slice(slash);
  } else if (t.charCodeAt(0) !== 47) {
    return result;
  }
  const hash = t.indexOf('#');
  if (hash >= 0) t = t.slice(0, hash);
  const qmark = t.indexOf('?');
  const path = qmark < 0 ? t : t.slice(0, qmark);

  const segments = path.split('/');
  let taken = 0;
  for (const segment of segments) {
    if (segment.length === 0) continue;
    if (taken++ >= MAX_PATH_SEGMENTS) {
      counters?.inc(C_TOO_MANY);
      break;
    }
    const semi = segment.indexOf(';');
    const raw = semi < 0 ? segment : segment.slice(0, semi);
    if (raw === '.' || raw === '..') continue;
    const text = decodeUrlComponent(raw, false, counters).replace(SLUG_RE, ' ').trim();
    if (text.length > 0) result.path.push(text);
  }

  if (qmark < 0) return result;
  const params = t.slice(qmark + 1).split('&');
  for (let k = 0; k < params.length; k++) {
    if (k >= MAX_QUERY_PARAMS) {
      counters?.inc(C_TOO_MANY);
      break;
    }
    const param = params[k];
    if (param.length === 0) continue;
    const eq = param.indexOf('=');
    if (eq < 0) {
      const text = decodeUrlComponent(param, true, counters);
      if (text.trim().length > 0) result.query.push(text);
      continue;
    }
    const name = decodeUrlComponent(param.slice(0, eq), true, counters);
    if (PRIVATE_FIELD_RE.test(name)) {
      counters?.inc(C_PRIVATE);
      continue;
    }
    const value = decodeUrlComponent(param.slice(eq + 1), true, counters);
    if (value.trim().length === 0) continue;
    (isSearchParam(name) ? result.search : result.query).push(value);
  }
  return result;
}

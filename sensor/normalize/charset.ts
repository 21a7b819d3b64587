/**
 * Normalize stage, charset: body bytes -> JS strings, streaming. Input: Content-Type parameters,
 * the first bytes of the body (BOM, `<meta charset>`, `<?xml encoding>`), then chunks cut anywhere.
 * Output: text pushed to a `TextConsumer`, the same text however the bytes were cut.
 * UTF-8 (declared or default) never yields U+FFFD for bad bytes: each byte that is not part of a
 * valid UTF-8 sequence is read as windows-1252 instead, so a mislabelled Latin-1 page still reads.
 */

import { isAscii, isUtf8 } from 'node:buffer';
import { TextDecoder } from 'node:util';
import { defineAnomaly, defineCounter, Counters } from '../events/counters.js';
import type { TextConsumer } from './sink.js';

const C_UNKNOWN_LABEL = defineAnomaly('normalize.charset.unknown_label');
const C_INVALID_UTF8 = defineAnomaly('normalize.charset.invalid_utf8_byte');
const C_BOM = defineCounter('normalize.charset.bom');
const C_PRESCAN = defineCounter('normalize.charset.prescan');

/** Parameters kept from one header value: real ones carry 1-3; more is junk or an attack. */
const MAX_MEDIA_PARAMS = 16;

/** WHATWG "prescan a byte stream to determine its encoding" reads this many bytes (HTML 13.2.3.2). */
export const PRESCAN_BYTES = 1024;

/** A UTF-8 BOM is 3 bytes, UTF-16's 2: this many bytes decide a BOM. */
const BOM_BYTES = 3;

// ---------------------------------------------------------------------------------------------
// Media types

export interface MediaType {
  /** `type/subtype`, lower case, no parameters. */
  readonly essence: string;
  /** Parameter names lower case; values unquoted, case kept; first occurrence wins. */
  readonly params: ReadonlyMap<string, string>;
}

/** Parses `text/html; charset="utf-8"`. Undefined when there is no `type/subtype`. */
export function parseMediaType(value: string): MediaType | undefined {
  const semi = value.indexOf(';');
  const essence = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  const slash = essence.indexOf('/');
  if (slash <= 0 || slash === essence.length - 1 || /[\s"(),:<>@[\\\]{}]/.test(essence)) return undefined;
  return { essence, params: semi < 0 ? new Map() : parseHeaderParams(value, semi) };
}

/**
 * Parses `; name=value; name="quoted \" value"` from `from` on (Content-Type, Content-Disposition).
 * Names lower case. A quoted value ends at its closing quote; backslash escapes the next char
 * unless `backslashEscapes` is false (form-data part headers: browsers send `C:\dir\f.txt` raw
 * and write '"' as %22, HTML 4.10.21.8).
 */
export function parseHeaderParams(value: string, from: number, backslashEscapes = true): Map<string, string> {
  const params = new Map<string, string>();
  const n = value.length;
  let i = from;
  while (i < n && params.size < MAX_MEDIA_PARAMS) {
    while (i < n && (value.charCodeAt(i) === 59 || isHttpSpace(value.charCodeAt(i)))) i++; // ';' and spaces
    const nameStart = i;
    while (i < n && value.charCodeAt(i) !== 61 && value.charCodeAt(i) !== 59) i++; // '=' ';'
    const name = value.slice(nameStart, i).trim().toLowerCase();
    if (i >= n || value.charCodeAt(i) === 59) continue; // a name without '=' carries nothing
    i++; // '='
    while (i < n && isHttpSpace(value.charCodeAt(i))) i++;
    let v: string;
    if (value.charCodeAt(i) === 34) {
      let out = '';
      i++;
      while (i < n && value.charCodeAt(i) !== 34) {
        if (backslashEscapes && value.charCodeAt(i) === 92 && i + 1 < n) i++;
        out += value[i];
        i++;
      }
      i++; // closing quote (or past the end)
      v = out;
      while (i < n && value.charCodeAt(i) !== 59) i++;
    } else {
      const vStart = i;
      while (i < n && value.charCodeAt(i) !== 59) i++;
      v = value.slice(vStart, i).trim();
    }
    if (name.length > 0 && !params.has(name)) params.set(name, v);
  }
  return params;
}

function isHttpSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

// ---------------------------------------------------------------------------------------------
// Charset labels

/** WHATWG Encoding labels for the encodings decoded here without ICU (Encoding Standard 4.2). */
const BUILTIN_LABELS = new Map<string, string>();
for (const [name, labels] of [
  ['utf-8', 'utf-8 utf8 unicode-1-1-utf-8 unicode11utf8 unicode20utf8 x-unicode20utf8'],
  // WHATWG maps ascii and iso-8859-1 to windows-1252: browsers decode 0x80-0x9F as cp1252 there.
  ['windows-1252', 'windows-1252 ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 ' +
    'iso-ir-100 iso8859-1 iso88591 iso_8859-1 iso_8859-1:1987 l1 latin1 us-ascii x-cp1252'],
  ['utf-16le', 'utf-16le csunicode iso-10646-ucs-2 ucs-2 unicode unicodefeff utf-16'],
  ['utf-16be', 'utf-16be unicodefffe'],
] as const) {
  for (const label of labels.split(' ')) BUILTIN_LABELS.set(label, name);
}

/** Labels that ICU accepted, by label. Only accepted labels are kept, so the map stays small. */
const icuLabels = new Map<string, string>();

/**
 * The canonical encoding name for a charset label (`UTF8` -> `utf-8`, `latin1` -> `windows-1252`,
 * `Shift_JIS` -> `shift_jis`), or undefined when neither WHATWG's table nor ICU knows it.
 */
export function resolveCharset(label: string): string | undefined {
  const key = label.trim().toLowerCase();
  if (key.length === 0 || key.length > 40) return undefined;
  const builtin = BUILTIN_LABELS.get(key) ?? icuLabels.get(key);
  if (builtin !== undefined) return builtin;
  try {
    const encoding = new TextDecoder(key).encoding;
    // Node's ICU decoder for windows-1252 is plain Latin-1 (0x80-0x9F wrong): use ours.
    const name = BUILTIN_LABELS.get(encoding) ?? encoding;
    icuLabels.set(key, name);
    return name;
  } catch {
    return undefined;
  }
}

/** Charset named by a BOM at the start of `b`, and the BOM's length. */
export function sniffBom(b: Uint8Array): { charset: string; length: number } | undefined {
  if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return { charset: 'utf-8', length: 3 };
  if (b.length >= 2 && b[0] === 0xfe && b[1] === 0xff) return { charset: 'utf-16be', length: 2 };
  if (b.length >= 2 && b[0] === 0xff && b[1] === 0xfe) return { charset: 'utf-16le', length: 2 };
  return undefined;
}

export type PrescanMode = 'html' | 'xml' | 'none';

const META_TAG_RE = /<meta[\s/][^>]*>/gi;
const META_CHARSET_RE = /charset\s*=\s*["']?\s*([^\s"'>;/]+)/i;
const XML_DECL_RE = /^\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']+)["']/;
const COMMENT_RE = /<!--[\s\S]*?(?:-->|$)/g;

/**
 * Charset declared inside the first bytes of a document: `<meta charset>` or
 * `<meta http-equiv content="...; charset=x">` (HTML, comments skipped), `<?xml encoding>` (XML).
 * A simplified WHATWG prescan: it reads meta tags with a regex, not the full attribute algorithm.
 * Returns a canonical name; UTF-16 in a meta tag means UTF-8, as the HTML standard says (an
 * ASCII-compatible prescan cannot have read real UTF-16).
 */
export function prescanCharset(head: Uint8Array, mode: PrescanMode): string | undefined {
  if (mode === 'none') return undefined;
  const text = latin1(head.subarray(0, PRESCAN_BYTES));
  let label: string | undefined;
  if (mode === 'xml') {
    label = XML_DECL_RE.exec(text)?.[1];
  } else {
    const stripped = text.replace(COMMENT_RE, '');
    for (const tag of stripped.match(META_TAG_RE) ?? []) {
      const m = META_CHARSET_RE.exec(tag);
      if (m !== null) {
        label = m[1];
        break;
      }
    }
  }
  if (label === undefined) return undefined;
  const charset = resolveCharset(label);
  if (charset === 'utf-16le' || charset === 'utf-16be') return 'utf-8';
  if (charset === 'x-user-defined') return 'windows-1252';
  return charset;
}

// ---------------------------------------------------------------------------------------------
// Byte decoders

/** Streaming bytes -> text. `decode` keeps no reference to its argument. */
export interface ByteTextDecoder {
  decode(chunk: Uint8Array): string;
  /** Text for bytes still held (a sequence cut by the end of input). */
  flush(): string;
}

/** windows-1252 for 0x80-0x9F; the rest of the byte range is Latin-1. */
const W1252_C1 =
  '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f' +
  '\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178';
const C1_RE = /[\u0080-\u009f]/;
const C1_RE_G = /[\u0080-\u009f]/g;
const mapC1 = (c: string): string => W1252_C1[c.charCodeAt(0) - 0x80];

/** The windows-1252 character for one byte. */
export function windows1252Char(b: number): string {
  return b >= 0x80 && b <= 0x9f ? W1252_C1[b - 0x80] : String.fromCharCode(b);
}

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

/** Decodes windows-1252 (stateless: one byte is one character). */
export function decodeWindows1252(b: Uint8Array): string {
  const s = latin1(b);
  return C1_RE.test(s) ? s.replace(C1_RE_G, mapC1) : s;
}

const utf8Decoder = new TextDecoder('utf-8');

/** Length of the UTF-8 sequence a lead byte starts: 1 for ASCII, 0 when it cannot start one. */
export function utf8SeqLen(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead < 0xc2) return 0;
  if (lead < 0xe0) return 2;
  if (lead < 0xf0) return 3;
  return lead < 0xf5 ? 4 : 0;
}

/** Unicode 15, table 3-7: the second byte's range depends on the lead (no overlongs, surrogates). */
function secondLo(lead: number): number {
  return lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
}
function secondHi(lead: number): number {
  return lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
}

/** Whether `c` may be byte `k` (1 = the one after the lead) of the sequence `lead` starts. */
export function utf8ContinuationOk(lead: number, k: number, c: number): boolean {
  return k === 1 ? c >= secondLo(lead) && c <= secondHi(lead) : c >= 0x80 && c <= 0xbf;
}

/**
 * The UTF-8 sequence at `b[i]`, looking no further than `end`: its length when complete and
 * valid, minus the number of bytes seen when valid so far but cut by `end`, 0 when invalid.
 */
export function utf8SequenceAt(b: Uint8Array, i: number, end: number): number {
  const lead = b[i];
  const len = utf8SeqLen(lead);
  if (len <= 1) return len;
  for (let k = 1; k < len; k++) {
    if (i + k >= end) return -k;
    const c = b[i + k];
    if (k === 1 ? c < secondLo(lead) || c > secondHi(lead) : c < 0x80 || c > 0xbf) return 0;
  }
  return len;
}

/** UTF-8 -> text where every byte outside a valid sequence is read as windows-1252. */
function decodeUtf8Run(b: Uint8Array, start: number, end: number, counters: Counters | undefined): string {
  const body = b.subarray(start, end);
  // ASCII (most chunks of English pages) as Latin-1: a plain copy, and a one-byte string.
  if (isAscii(body)) return latin1(body);
  if (isUtf8(body)) return utf8Decoder.decode(body);
  let out = '';
  let run = start;
  let i = start;
  while (i < end) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    const r = utf8SequenceAt(b, i, end);
    if (r > 0) {
      i += r;
      continue;
    }
    if (i > run) out += utf8Decoder.decode(b.subarray(run, i));
    out += windows1252Char(c);
    counters?.inc(C_INVALID_UTF8);
    i++;
    run = i;
  }
  if (run < end) out += utf8Decoder.decode(b.subarray(run, end));
  return out;
}

/** One-shot UTF-8 with windows-1252 fallback (header values, short fields). */
export function decodeUtf8Fallback(b: Uint8Array, counters?: Counters): string {
  return decodeUtf8Run(b, 0, b.length, counters);
}

/**
 * Streaming UTF-8 with windows-1252 fallback. Holds at most 3 bytes: a sequence cut by the chunk
 * end that is valid so far. Fast path: a chunk that is valid UTF-8 goes to TextDecoder whole.
 */
export class Utf8FallbackDecoder implements ByteTextDecoder {
  private readonly held = new Uint8Array(4);
  private heldLen = 0;

  constructor(private readonly counters?: Counters) {}

  decode(chunk: Uint8Array): string {
    const n = chunk.length;
    let out = '';
    let start = 0;
    if (this.heldLen > 0) {
      const lead = this.held[0];
      const len = utf8SeqLen(lead);
      while (this.heldLen < len && start < n) {
        const c = chunk[start];
        if (!utf8ContinuationOk(lead, this.heldLen, c)) break;
        this.held[this.heldLen++] = c;
        start++;
      }
      if (this.heldLen === len) {
        out = utf8Decoder.decode(this.held.subarray(0, len));
        this.heldLen = 0;
      } else if (start === n) {
        return '';
      } else {
        out = this.flush();
      }
    }
    let end = n;
    for (let t = n - 1; t >= start && t >= n - 3; t--) {
      const b = chunk[t];
      if (b < 0x80) break;
      if (b >= 0xc0) {
        if (utf8SequenceAt(chunk, t, n) < 0) {
          this.held.set(chunk.subarray(t, n));
          this.heldLen = n - t;
          end = t;
        }
        break;
      }
    }
    if (end > start) out += decodeUtf8Run(chunk, start, end, this.counters);
    return out;
  }

  flush(): string {
    let out = '';
    for (let k = 0; k < this.heldLen; k++) out += windows1252Char(this.held[k]);
    this.counters?.inc(C_INVALID_UTF8, this.heldLen);
    this.heldLen = 0;
    return out;
  }
}

class Windows1252Decoder implements ByteTextDecoder {
  decode(chunk: Uint8Array): string {
    return decodeWindows1252(chunk);
  }
  flush(): string {
    return '';
  }
}

/** UTF-16 and every other ICU encoding: TextDecoder in streaming mode (bad input -> U+FFFD). */
class IcuDecoder implements ByteTextDecoder {
  private readonly td: TextDecoder;
  constructor(charset: string) {
    this.td = new TextDecoder(charset);
  }
  decode(chunk: Uint8Array): string {
    return this.td.decode(chunk, { stream: true });
  }
  flush(): string {
    return this.td.decode();
  }
}

/** A decoder for a canonical name from `resolveCharset` (anything else decodes as UTF-8). */
export function createByteDecoder(charset: string, counters?: Counters): ByteTextDecoder {
  if (charset === 'windows-1252') return new Windows1252Decoder();
  if (charset === 'utf-8') return new Utf8FallbackDecoder(counters);
  try {
    return new IcuDecoder(charset);
  } catch {
    return new Utf8FallbackDecoder(counters);
  }
}

// ---------------------------------------------------------------------------------------------
// The decode stage in front of every text extractor

/**
 * Bytes in -> text out to a `TextConsumer`. Chooses the charset in WHATWG order: BOM, then the
 * Content-Type charset, then a prescan of the first `PRESCAN_BYTES` (html/xml), then UTF-8 with
 * windows-1252 fallback. Holds at most `PRESCAN_BYTES` (prescan) or 3 bytes (BOM) until it
 * decides, then decodes each chunk as it comes.
 */
export class TextDecodeStage {
  /** The charset in use once decided, else undefined. */
  charset: string | undefined;
  private decoder: ByteTextDecoder | undefined;
  private readonly head: Uint8Array;
  private headLen = 0;
  private readonly declared: string | undefined;

  constructor(
    private readonly consumer: TextConsumer,
    private readonly counters: Counters,
    declaredLabel: string | undefined,
    private readonly prescan: PrescanMode,
  ) {
    if (declaredLabel !== undefined && declaredLabel.length > 0) {
      this.declared = resolveCharset(declaredLabel);
      if (this.declared === undefined) counters.inc(C_UNKNOWN_LABEL);
    }
    const needPrescan = prescan !== 'none' && this.declared === undefined;
    this.head = new Uint8Array(needPrescan ? PRESCAN_BYTES : BOM_BYTES);
  }

  write(chunk: Uint8Array): void {
    if (this.decoder !== undefined) {
      const text = this.decoder.decode(chunk);
      if (text.length > 0) this.consumer.push(text);
      return;
    }
    const take = Math.min(chunk.length, this.head.length - this.headLen);
    this.head.set(chunk.subarray(0, take), this.headLen);
    this.headLen += take;
    if (this.headLen < this.head.length) return;
    this.decide();
    if (take < chunk.length) this.write(chunk.subarray(take));
  }

  end(): void {
    if (this.decoder === undefined) this.decide();
    const rest = this.decoder!.flush();
    if (rest.length > 0) this.consumer.push(rest);
    this.consumer.finish();
  }

  private decide(): void {
    const head = this.head.subarray(0, this.headLen);
    const bom = sniffBom(head);
    let charset: string;
    let skip = 0;
    if (bom !== undefined) {
      charset = bom.charset;
      skip = bom.length;
      this.counters.inc(C_BOM);
    } else if (this.declared !== undefined) {
      charset = this.declared;
    } else {
      const found = prescanCharset(head, this.prescan);
      if (found !== undefined) this.counters.inc(C_PRESCAN);
      charset = found ?? 'utf-8';
    }
    this.charset = charset;
    this.decoder = createByteDecoder(charset, this.counters);
    const text = this.decoder.decode(head.subarray(skip));
    if (text.length > 0) this.consumer.push(text);
  }
}

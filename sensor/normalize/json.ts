/**
 * Normalize stage, JSON: request bodies (typed) and responses (read) -> string values, streaming.
 * Input: body bytes (UTF-8 unless a BOM or charset says otherwise) or decoded text, cut anywhere,
 * including inside `\uD83D\uDE00`. Output: each string VALUE as its own segment, escapes decoded,
 * surrogate pairs joined (an unpaired half -> U+FFFD). Keys, numbers, true/false/null: dropped.
 * State: a one-byte-per-level container stack of MAX_JSON_DEPTH and one pending escape.
 */

import { defineAnomaly, defineCounter, Counters } from '../events/counters.js';
import { TextDecodeStage } from './charset.js';
import type { Extractor, TextConsumer, TextSink } from './sink.js';

const C_MALFORMED = defineAnomaly('normalize.json.malformed');
const C_TRUNCATED = defineAnomaly('normalize.json.truncated');
const C_LONE_SURROGATE = defineAnomaly('normalize.json.lone_surrogate');
const C_DEPTH = defineCounter('normalize.json.depth_capped');
const C_STRING_CUT = defineCounter('normalize.json.string_truncated');

/**
 * Containers tracked for the key/value decision. Real APIs nest well under 32; deeper levels are
 * counted and their strings all taken as values (the stack costs one byte a level).
 */
const MAX_JSON_DEPTH = 512;
/**
 * Characters emitted from one string. A longer string is data (base64 images, blobs), not
 * something a person typed or read; the rest is parsed but not emitted.
 */
const MAX_JSON_STRING_CHARS = 1 << 20;

const E_VALUE = 0; // a value may come next
const E_KEY = 1; // inside an object, a key (or '}') comes next
const E_COLON = 2;
const E_COMMA = 3; // after a value: ',' or a closing bracket

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

/** Characters of numbers and literals (and of JSONP identifiers, read the same way). */
function isScalarChar(c: number): boolean {
  const l = c | 0x20;
  return (c >= 48 && c <= 57) || (l >= 97 && l <= 122) || c === 45 || c === 43 || c === 46 || c === 95 || c === 36;
}

/**
 * The string stage: decoded text in, string values out. Use `JsonExtractor` for bytes.
 * Malformed input is not fatal: the tokenizer is lenient (counts `normalize.json.malformed` once
 * per body and goes on), so JSONP `cb({...})`, anti-XSSI prefixes `)]}'`, NDJSON, trailing commas
 * and bad escapes still give their string values; keys stay keys as long as braces balance. Text
 * outside quotes is never emitted (no "printable runs" fallback: in JSON it is structure, not words).
 */
export class JsonTokenizer implements TextConsumer {
  private readonly kinds = new Uint8Array(MAX_JSON_DEPTH); // 1 object, 0 array
  private depth = 0;
  private expect = E_VALUE;
  private inScalar = false;
  private malformed = false;
  // The string being read.
  private inString = false;
  private isKey = false;
  private emitted = 0;
  private esc = 0; // 0 none, 1 after '\', 2 inside \uXXXX
  private escVal = 0;
  private escDigits = 0;
  private high = 0; // a high surrogate from \uD8xx waiting for its low half
  // Next '"' and '\' in the current string (-1 none, -2 unknown).
  private quotePos = -2;
  private slashPos = -2;

  constructor(
    private readonly sink: TextSink,
    private readonly counters: Counters,
  ) {}

  push(s: string): void {
    this.quotePos = -2;
    this.slashPos = -2;
    const n = s.length;
    let i = 0;
    while (i < n) {
      if (this.inString) {
        i = this.stringPart(s, i);
        continue;
      }
      const c = s.charCodeAt(i);
      if (isScalarChar(c)) {
        if (!this.inScalar) {
          if (this.expect !== E_VALUE) this.flagMalformed();
          this.inScalar = true;
          this.afterValue();
        }
        i++;
        while (i < n && isScalarChar(s.charCodeAt(i))) i++;
        continue;
      }
      this.inScalar = false;
      i++;
      switch (c) {
        case 32:
        case 9:
        case 10:
        case 13:
          break;
        case 34: // '"'
          this.openString();
          break;
        case 123: // '{'
          this.open(1);
          break;
        case 91: // '['
          this.open(0);
          break;
        case 125: // '}'
          this.close(1);
          break;
        case 93: // ']'
          this.close(0);
          break;
        case 58: // ':'
          if (this.expect !== E_COLON) this.flagMalformed();
          this.expect = E_VALUE;
          break;
        case 44: // ','
          if (this.expect !== E_COMMA) this.flagMalformed();
          this.expect = this.topIsObject() ? E_KEY : E_VALUE;
          break;
        default:
          // JSONP parentheses, ';', a BOM left by a mislabelled charset, single quotes...
          if (c !== 0xfeff) this.flagMalformed();
      }
    }
  }

  finish(): void {
    if (this.inString) {
      this.counters.inc(C_TRUNCATED);
      this.esc = 0;
      this.closeString();
    } else if (this.depth > 0) {
      this.counters.inc(C_TRUNCATED);
    }
    this.sink.onBreak();
  }

  private flagMalformed(): void {
    // Past the tracked depth keys read as values, so ':' looks wrong there: no judgement.
    if (this.depth > MAX_JSON_DEPTH) return;
    if (!this.malformed) this.counters.inc(C_MALFORMED);
    this.malformed = true;
  }

  private topIsObject(): boolean {
    return this.depth > 0 && this.depth <= MAX_JSON_DEPTH && this.kinds[this.depth - 1] === 1;
  }

  private open(kind: number): void {
    if (this.expect !== E_VALUE) this.flagMalformed();
    if (this.depth < MAX_JSON_DEPTH) this.kinds[this.depth] = kind;
    else if (this.depth === MAX_JSON_DEPTH) this.counters.inc(C_DEPTH);
    this.depth++;
    this.expect = kind === 1 ? E_KEY : E_VALUE;
  }

  private close(kind: number): void {
    if (this.depth === 0) {
      this.flagMalformed();
      return;
    }
    if ((this.depth <= MAX_JSON_DEPTH && this.kinds[this.depth - 1] !== kind) || this.expect === E_COLON) this.flagMalformed();
    this.depth--;
    this.afterValue();
  }

  private afterValue(): void {
    this.expect = this.depth === 0 ? E_VALUE : E_COMMA;
  }

  private openString(): void {
    if (this.expect === E_COLON) this.flagMalformed();
    // Inside an object anything but an expected value is a key (also after a missing comma).
    this.isKey = this.topIsObject() && this.expect !== E_VALUE;
    if (!this.isKey && this.expect !== E_VALUE) this.flagMalformed();
    this.inString = true;
    this.emitted = 0;
  }

  private closeString(): void {
    if (this.high !== 0) this.loneHigh();
    this.inString = false;
    if (this.isKey) {
      this.expect = E_COLON;
    } else {
      this.sink.onBreak();
      this.afterValue();
    }
  }

  private stringPart(s: string, i: number): number {
    const n = s.length;
    while (i < n) {
      if (this.esc !== 0) {
        i = this.escape(s, i);
        continue;
      }
      if (this.quotePos !== -1 && this.quotePos < i) this.quotePos = s.indexOf('"', i);
      if (this.slashPos !== -1 && this.slashPos < i) this.slashPos = s.indexOf('\\', i);
      let stop = this.quotePos;
      if (this.slashPos !== -1 && (stop === -1 || this.slashPos < stop)) stop = this.slashPos;
      if (stop === -1) {
        this.run(i === 0 ? s : s.slice(i));
        return n;
      }
      if (stop > i) this.run(s.slice(i, stop));
      if (s.charCodeAt(stop) === 34) {
        this.closeString();
        return stop + 1;
      }
      this.esc = 1;
      i = stop + 1;
    }
    return n;
  }

  private escape(s: string, i: number): number {
    const c = s.charCodeAt(i);
    if (this.esc === 1) {
      this.esc = 0;
      switch (c) {
        case 117: // 'u'
          this.esc = 2;
          this.escVal = 0;
          this.escDigits = 0;
          break;
        case 110:
          this.unit(10);
          break;
        case 116:
          this.unit(9);
          break;
        case 114:
          this.unit(13);
          break;
        case 98:
          this.unit(8);
          break;
        case 102:
          this.unit(12);
          break;
        case 34:
        case 92:
        case 47:
          this.unit(c);
          break;
        default:
          // Not a JSON escape: keep the character, as JavaScript does.
          this.flagMalformed();
          this.unit(c);
      }
      return i + 1;
    }
    const h = hexValue(c);
    if (h < 0) {
      // A cut \u escape: U+FFFD for it, then read `c` as string content.
      this.flagMalformed();
      this.esc = 0;
      this.unit(0xfffd);
      return i;
    }
    this.escVal = (this.escVal << 4) | h;
    if (++this.escDigits === 4) {
      this.esc = 0;
      this.unit(this.escVal);
    }
    return i + 1;
  }

  /** One UTF-16 unit from an escape: pairs surrogates, replaces unpaired halves. */
  private unit(u: number): void {
    if (this.high !== 0) {
      if (u >= 0xdc00 && u <= 0xdfff) {
        this.text(String.fromCharCode(this.high, u));
        this.high = 0;
        return;
      }
      this.loneHigh();
    }
    if (u >= 0xd800 && u <= 0xdbff) {
      this.high = u;
    } else if (u >= 0xdc00 && u <= 0xdfff) {
      this.counters.inc(C_LONE_SURROGATE);
      this.text('\ufffd');
    } else {
      this.text(String.fromCharCode(u));
    }
  }

  private loneHigh(): void {
    this.counters.inc(C_LONE_SURROGATE);
    this.high = 0;
    this.text('\ufffd');
  }

  private run(t: string): void {
    if (this.high !== 0) this.loneHigh();
    this.text(t);
  }

  private text(t: string): void {
    if (this.isKey || this.emitted >= MAX_JSON_STRING_CHARS) return;
    if (this.emitted + t.length >= MAX_JSON_STRING_CHARS) {
      // Reaching the limit (not only passing it) cuts, so a pair split by chunking cuts the same.
      this.counters.inc(C_STRING_CUT);
      let cut = MAX_JSON_STRING_CHARS - this.emitted;
      const last = t.charCodeAt(cut - 1);
      if (last >= 0xd800 && last <= 0xdbff) cut--; // do not split a pair
      t = t.slice(0, cut);
      this.emitted = MAX_JSON_STRING_CHARS;
    } else {
      this.emitted += t.length;
    }
    if (t.length > 0) this.sink.onText(t);
  }
}

/** Bytes -> JsonTokenizer. `charset`: the Content-Type charset parameter, if any (RFC 8259: UTF-8). */
export class JsonExtractor implements Extractor {
  readonly format = 'json';
  private readonly stage: TextDecodeStage;

  constructor(sink: TextSink, counters: Counters, charset?: string) {
    this.stage = new TextDecodeStage(new JsonTokenizer(sink, counters), counters, charset, 'none');
  }

  write(chunk: Uint8Array): void {
    this.stage.write(chunk);
  }

  end(): void {
    this.stage.end();
  }
}

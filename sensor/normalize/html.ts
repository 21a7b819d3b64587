/**
 * Normalize stage, HTML/XML: markup -> the text a person sees on the page, streaming.
 * Input: body bytes (charset chosen by charset.ts: BOM, Content-Type, early <meta>) or decoded
 * text, cut anywhere. Output: TextSink calls, identical however the input was cut. State: a few
 * scalars, bounded carries and bounded attribute text. The rules are on `HtmlTokenizer`.
 */

import { defineCounter, Counters } from '../events/counters.js';
import { TextDecodeStage, windows1252Char } from './charset.js';
import { LEGACY_REFS, MAX_LEGACY_REF_NAME_LEN, MAX_REF_NAME_LEN, NAMED_REFS } from './html-entities.js';
import type { Extractor, TextConsumer, TextSink } from './sink.js';

const C_REF_CUT = defineCounter('normalize.html.charref_too_long');
const C_ATTR_TRUNCATED = defineCounter('normalize.html.attr_truncated');
const C_ATTR_DROPPED = defineCounter('normalize.html.attr_dropped');
const C_TEMPLATE_DEEP = defineCounter('normalize.html.template_depth_capped');

/**
 * A character reference is cut after this many characters: the longest name is 33 with '&' and
 * ';' (`&CounterClockwiseContourIntegral;`); only zero-padded numeric ones run longer.
 */
const MAX_CHARREF_CHARS = 40;
/** Element names are matched against a table whose longest entry is 10; longer ones are unknown. */
const MAX_TAG_NAME_CHARS = 16;
/** Attribute names we capture are at most 11 long (`placeholder`). */
const MAX_ATTR_NAME_CHARS = 12;
/** Tooltips, alt texts and button labels are short; a longer value is data (JSON, base64). */
const MAX_ATTR_VALUE_CHARS = 1024;
/** Attribute text waiting for the next word break (a run of inline images with alt texts). */
const MAX_PENDING_ATTR_CHARS = 4096;
/** Nested <template> elements; deeper ones are counted but still hide their content. */
const MAX_TEMPLATE_DEPTH = 64;

// Element classes.
const F_BLOCK = 1; // gives a word break at its start and end tag
const F_RAWTEXT = 2; // content is raw text, not shown
const F_RAWTEXT_SHOWN = 4; // content is raw text, shown (xmp)
const F_RCDATA = 8; // content is text with references, no tags (title, textarea)
const F_PLAINTEXT = 16; // everything after it is text
const F_TEMPLATE = 32; // content not rendered
const F_ALT = 64;
const F_PLACEHOLDER = 128;
const F_INPUT = 256;
const F_LABEL = 512;

const TAG_FLAGS = new Map<string, number>();
for (const name of (
  'address article aside audio blockquote body br button canvas caption center col colgroup dd ' +
  'details dialog dir div dl dt embed fieldset figcaption figure footer form frame frameset h1 h2 ' +
  'h3 h4 h5 h6 head header hgroup hr html iframe img input legend li listing main menu meter nav ' +
  'object ol optgroup option output p picture pre progress section select summary svg math table ' +
  'tbody td textarea tfoot th thead title tr ul video xmp plaintext area'
).split(' ')) {
  TAG_FLAGS.set(name, F_BLOCK);
}
const addFlag = (names: string, flag: number): void => {
  for (const name of names.split(' ')) TAG_FLAGS.set(name, (TAG_FLAGS.get(name) ?? 0) | flag);
};
addFlag('script style iframe noembed noframes', F_RAWTEXT);
addFlag('xmp', F_RAWTEXT_SHOWN);
addFlag('title textarea', F_RCDATA);
addFlag('plaintext', F_PLAINTEXT);
addFlag('template', F_TEMPLATE);
addFlag('img area input', F_ALT);
addFlag('input textarea', F_PLACEHOLDER);
addFlag('input', F_INPUT);
addFlag('option optgroup', F_LABEL);

const TAGS_BY_HASH = hashTable(TAG_FLAGS);

/** Case-folded hash of s[from, to): ASCII letters fold to lower case. */
function foldHash(s: string, from: number, to: number): number {
  let h = 0;
  for (let k = from; k < to; k++) h = (Math.imul(h, 31) + (s.charCodeAt(k) | 0x20)) | 0;
  return h;
}

/** Whether s[from, from + name.length) is `name` (lower case) ignoring ASCII case. */
function eqFold(s: string, from: number, name: string): boolean {
  for (let k = 0; k < name.length; k++) if ((s.charCodeAt(from + k) | 0x20) !== name.charCodeAt(k)) return false;
  return true;
}

interface NameEntry {
  readonly name: string;
  readonly value: number;
}

/** Names by folded hash, so a tag or attribute name is looked up without making a string. */
function hashTable(entries: Iterable<[string, number]>): Map<number, NameEntry> {
  const table = new Map<number, NameEntry>();
  for (const [name, value] of entries) {
    const h = foldHash(name, 0, name.length);
    if (table.has(h)) throw new Error(`Cannot build the HTML name table: "${name}" collides with "${table.get(h)!.name}"`);
    table.set(h, { name, value });
  }
  return table;
}

/** Finds `s[from, to)`, whose foldHash is `h`, in a hashTable, ignoring ASCII case. */
function lookupName(table: Map<number, NameEntry>, h: number, s: string, from: number, to: number): NameEntry | undefined {
  const e = table.get(h);
  return e !== undefined && e.name.length === to - from && eqFold(s, from, e.name) ? e : undefined;
}

/** input types whose value attribute is drawn on screen (as the box's text or a button label). */
const VISIBLE_VALUE_TYPES = new Set(['', 'text', 'search', 'email', 'url', 'tel', 'submit', 'button', 'reset']);

// Captured attribute slots.
const A_TITLE = 0;
const A_ALT = 1;
const A_PLACEHOLDER = 2;
const A_LABEL = 3;
const A_VALUE = 4;
const A_TYPE = 5;
const A_COUNT = 6;
const ATTRS_BY_HASH = hashTable([
  ['title', A_TITLE], ['alt', A_ALT], ['placeholder', A_PLACEHOLDER], ['label', A_LABEL], ['value', A_VALUE], ['type', A_TYPE],
]);

// Tokenizer states.
const S_TEXT = 0;
const S_TAG_NAME = 1;
const S_BEFORE_ATTR = 2;
const S_ATTR_NAME = 3;
const S_AFTER_ATTR_NAME = 4;
const S_BEFORE_VALUE = 5;
const S_VALUE_DQ = 6;
const S_VALUE_SQ = 7;
const S_VALUE_UQ = 8;
const S_COMMENT_START = 9;
const S_COMMENT = 10;
const S_BOGUS = 11;
const S_CDATA = 12;
const S_RAWTEXT = 13;
const S_RCDATA = 14;
const S_PLAINTEXT = 15;

function isWs(c: number): boolean {
  return c === 32 || c === 10 || c === 9 || c === 12 || c === 13;
}
function isAlpha(c: number): boolean {
  return (c | 0x20) >= 97 && (c | 0x20) <= 122;
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isAlnum(c: number): boolean {
  return isAlpha(c) || isDigit(c);
}
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

// decodeCharRef's results, returned through module state to avoid an object per reference.
let refText = '';
let refCut = false;

function literalAmp(i: number): number {
  refText = '&';
  return i + 1;
}

function numericRefText(v: number): string {
  if (v === 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return '\ufffd';
  if (v >= 0x80 && v <= 0x9f) return windows1252Char(v);
  return String.fromCodePoint(v);
}

/**
 * Decodes the character reference at `s[i] === '&'`. Returns the index after it and sets
 * `refText` (just "&" when it is not a reference), or -1 when the reference may continue past the
 * end of `s` and `final` is false. Reads at most MAX_CHARREF_CHARS characters.
 */
function decodeCharRef(s: string, i: number, inAttr: boolean, final: boolean): number {
  const n = s.length;
  const limit = Math.min(n, i + MAX_CHARREF_CHARS);
  const mayGrow = !final && n < i + MAX_CHARREF_CHARS;
  let j = i + 1;
  if (j >= n) return mayGrow ? -1 : literalAmp(i);
  let c = s.charCodeAt(j);
  if (c === 35) {
    // '#': numeric
    j++;
    if (j >= n) return mayGrow ? -1 : literalAmp(i);
    c = s.charCodeAt(j);
    const hex = c === 120 || c === 88;
    if (hex) {
      j++;
      if (j >= n) return mayGrow ? -1 : literalAmp(i);
    }
    const digitsStart = j;
    let v = 0;
    while (j < limit) {
      c = s.charCodeAt(j);
      const d = hex ? hexValue(c) : isDigit(c) ? c - 48 : -1;
      if (d < 0) break;
      v = Math.min(v * (hex ? 16 : 10) + d, 0x110000);
      j++;
    }
    if (j === n && mayGrow) return -1;
    if (j === digitsStart) return literalAmp(i);
    if (j === limit && j < n && (hex ? hexValue(s.charCodeAt(j)) >= 0 : isDigit(s.charCodeAt(j)))) refCut = true;
    if (j < n && s.charCodeAt(j) === 59) j++;
    refText = numericRefText(v);
    return j;
  }
  if (!isAlnum(c)) return literalAmp(i);
  while (j < limit && isAlnum(s.charCodeAt(j))) j++;
  if (j === n && mayGrow) return -1;
  if (j === limit && j < n && isAlnum(s.charCodeAt(j))) refCut = true;
  const nameLen = j - i - 1;
  if (j < n && s.charCodeAt(j) === 59 && nameLen <= MAX_REF_NAME_LEN) {
    const v = NAMED_REFS.get(s.slice(i + 1, j + 1));
    if (v !== undefined) {
      refText = v;
      return j + 1;
    }
  }
  for (let k = Math.min(nameLen, MAX_LEGACY_REF_NAME_LEN); k >= 2; k--) {
    const name = s.slice(i + 1, i + 1 + k);
    if (!LEGACY_REFS.has(name)) continue;
    // In an attribute a legacy name followed by a letter, digit or '=' is not a reference.
    if (inAttr && (k < nameLen || (j < n && s.charCodeAt(j) === 61))) return literalAmp(i);
    refText = NAMED_REFS.get(name + ';')!;
    return i + 1 + k;
  }
  return literalAmp(i);
}

/** Decodes every character reference in a complete string (attribute values, tests). */
export function decodeHtmlEntities(s: string, inAttribute = false): string {
  let amp = s.indexOf('&');
  if (amp < 0) return s;
  let out = '';
  let i = 0;
  while (amp >= 0) {
    out += s.slice(i, amp);
    i = decodeCharRef(s, amp, inAttribute, true);
    out += refText;
    amp = s.indexOf('&', i);
  }
  return out + s.slice(i);
}

export interface HtmlOptions {
  /** XML mode: every tag breaks words, CDATA is text, `<script/>` is empty. */
  readonly xml?: boolean;
}

/**
 * The string stage: decoded text in, sink calls out. Use `HtmlExtractor` for bytes.
 * Rules (HTML Living Standard tokenizer, simplified where noted):
 * - Dropped: tags, comments (`<!-- -- >` does not end one; `<!-->` does), `<!DOCTYPE>`, `<?pi>`,
 *   CDATA sections (HTML; in XML mode their text is kept), the content of script, style, iframe,
 *   noembed, noframes (raw text: ends at the first `</script` + space, `/` or `>`, whatever
 *   quotes or comments come before it) and of template (nested, still tokenized).
 * - Kept: text, title and textarea content (tags inside are text), xmp and plaintext content as
 *   written, and noscript content (shown to users without JavaScript, and parsed as markup).
 * - Character references: all 2,125 WHATWG names, the 106 legacy ones also without ';' (in text
 *   `&notit;` is "¬it;", in an attribute it stays literal), decimal and hex with or without ';',
 *   0 / surrogates / > U+10FFFF -> U+FFFD, 0x80-0x9F -> windows-1252. `&amp;lt;` gives "&lt;".
 * - Word breaks: block-level and replaced elements (p, div, br, li, td, h1, img, input, ...) give
 *   one U+0020 unless the text already ends in whitespace; inline elements (b, span, a, ...) give
 *   nothing, so `s<b>ex</b>` is "sex", as a browser draws it. In XML mode every tag is a break.
 * - Whitespace inside text is passed as found, not collapsed: collapsing costs a per-character
 *   pass and the matcher must fold whitespace runs anyway (typed text, JSON, plain text).
 * - Visible attribute text, each as its own segment, emitted at the next word break (so it does
 *   not cut the sentence it sits in): title (any element), alt (img, area, input), placeholder
 *   (input, textarea), label (option, optgroup), and value of input when the type shows it
 *   (no type, text, search, email, url, tel, submit, button, reset). Not: aria-label (not seen),
 *   value of hidden/password/checkbox inputs, content hidden by CSS or the `hidden` attribute.
 * Bounds: carries of an unfinished character reference, tag opener, end tag or tag name;
 * MAX_ATTR_VALUE_CHARS per captured value and MAX_PENDING_ATTR_CHARS waiting.
 */
export class HtmlTokenizer implements TextConsumer {
  private state = S_TEXT;
  private carry = '';
  private final = false;
  private readonly xml: boolean;
  // Cached positions of the next '<' and '&' in the current string (-1 none, -2 unknown).
  private ltPos = -2;
  private ampPos = -2;
  // Output state.
  private lastSpace = true;
  private hidden = 0;
  private readonly pending: string[] = [];
  private pendingChars = 0;
  // Current tag.
  private tagIsEnd = false;
  private tagName = '';
  private tagFlags = 0;
  private selfClosing = false;
  private attrName = '';
  private attrSlot = -1;
  private attrSeen = 0;
  private readonly attrValues: string[] = new Array<string>(A_COUNT).fill('');
  // Raw text / RCDATA element being read.
  private endName = '';
  private rawShown = false;

  constructor(
    private readonly sink: TextSink,
    private readonly counters: Counters,
    options: HtmlOptions = {},
  ) {
    this.xml = options.xml === true;
  }

  push(chunk: string): void {
    let s = chunk;
    if (this.carry.length > 0) {
      s = this.carry + chunk;
      this.carry = '';
    }
    this.ltPos = -2;
    this.ampPos = -2;
    const n = s.length;
    let i = 0;
    while (i < n) {
      switch (this.state) {
        case S_TEXT:
          i = this.inText(s, i, false);
          break;
        case S_TAG_NAME:
          i = this.inTagName(s, i);
          break;
        case S_BEFORE_ATTR:
          i = this.beforeAttr(s, i);
          break;
        case S_ATTR_NAME:
          i = this.inAttrName(s, i);
          break;
        case S_AFTER_ATTR_NAME:
          i = this.afterAttrName(s, i);
          break;
        case S_BEFORE_VALUE:
          i = this.beforeValue(s, i);
          break;
        case S_VALUE_DQ:
          i = this.quotedValue(s, i, '"');
          break;
        case S_VALUE_SQ:
          i = this.quotedValue(s, i, "'");
          break;
        case S_VALUE_UQ:
          i = this.unquotedValue(s, i);
          break;
        case S_COMMENT_START:
          i = this.commentStart(s, i);
          break;
        case S_COMMENT:
          i = this.comment(s, i);
          break;
        case S_BOGUS: {
          const gt = s.indexOf('>', i);
          if (gt < 0) return;
          this.state = S_TEXT;
          i = gt + 1;
          break;
        }
        case S_CDATA:
          i = this.cdata(s, i);
          break;
        case S_RAWTEXT:
          i = this.rawText(s, i);
          break;
        case S_RCDATA:
          i = this.inText(s, i, true);
          break;
        default: // S_PLAINTEXT
          this.emit(i === 0 ? s : s.slice(i));
          return;
      }
    }
  }

  finish(): void {
    this.final = true;
    if (this.carry.length > 0) this.push('');
    this.hidden = 0;
    if (this.pending.length > 0) this.wordBreak();
    this.sink.onBreak();
  }

  // --- output

  private emit(text: string): void {
    if (this.hidden > 0 || text.length === 0) return;
    this.sink.onText(text);
    this.lastSpace = isWs(text.charCodeAt(text.length - 1));
  }

  /** A visual word break; flushes attribute text waiting for one. */
  private wordBreak(): void {
    if (this.hidden > 0) return;
    if (this.pending.length > 0) {
      this.sink.onBreak();
      for (const t of this.pending) {
        this.sink.onText(t);
        this.sink.onBreak();
      }
      this.pending.length = 0;
      this.pendingChars = 0;
      this.lastSpace = true;
    } else if (!this.lastSpace) {
      this.sink.onText(' ');
      this.lastSpace = true;
    }
  }

  private needMore(s: string, i: number): number {
    this.carry = s.slice(i);
    return s.length;
  }

  // --- text, character references, tag openers

  private inText(s: string, i: number, rcdata: boolean): number {
    const n = s.length;
    if (this.ltPos !== -1 && this.ltPos < i) this.ltPos = s.indexOf('<', i);
    if (this.ampPos !== -1 && this.ampPos < i) this.ampPos = s.indexOf('&', i);
    let stop = this.ltPos;
    if (this.ampPos !== -1 && (stop === -1 || this.ampPos < stop)) stop = this.ampPos;
    if (stop === -1) {
      this.emit(i === 0 ? s : s.slice(i));
      return n;
    }
    if (stop > i) this.emit(s.slice(i, stop));
    if (s.charCodeAt(stop) === 38) {
      const end = decodeCharRef(s, stop, false, this.final);
      if (end < 0) return this.needMore(s, stop);
      if (refCut) {
        refCut = false;
        this.counters.inc(C_REF_CUT);
      }
      this.emit(refText);
      return end;
    }
    return rcdata ? this.rcdataLt(s, stop) : this.tagOpen(s, stop);
  }

  private tagOpen(s: string, i: number): number {
    const n = s.length;
    if (i + 1 >= n) {
      if (!this.final) return this.needMore(s, i);
      this.emit('<');
      return n;
    }
    const c = s.charCodeAt(i + 1);
    if (isAlpha(c)) {
      this.beginTag(false);
      this.state = S_TAG_NAME;
      return this.inTagName(s, i + 1);
    }
    if (c === 47) {
      // '/'
      if (i + 2 >= n) {
        if (!this.final) return this.needMore(s, i);
        this.emit('</');
        return n;
      }
      const d = s.charCodeAt(i + 2);
      if (isAlpha(d)) {
        this.beginTag(true);
        this.state = S_TAG_NAME;
        return this.inTagName(s, i + 2);
      }
      if (d === 62) return i + 3; // "</>" is dropped
      this.state = S_BOGUS;
      return i + 2;
    }
    if (c === 33) {
      // '!'
      if (s.startsWith('<!--', i)) {
        this.state = S_COMMENT_START;
        return i + 4;
      }
      if (s.startsWith('<![CDATA[', i)) {
        this.state = S_CDATA;
        return i + 9;
      }
      if (!this.final && n - i < 9) {
        const rest = s.slice(i);
        if ('<!--'.startsWith(rest) || '<![CDATA['.startsWith(rest)) return this.needMore(s, i);
      }
      this.state = S_BOGUS;
      return i + 2;
    }
    if (c === 63) {
      // '?': processing instruction or XML declaration
      this.state = S_BOGUS;
      return i + 2;
    }
    this.emit('<');
    return i + 1;
  }

  /** '<' inside title/textarea: only `</name` ends the element. */
  private rcdataLt(s: string, i: number): number {
    const r = this.matchEndTag(s, i);
    if (r === -1) return this.needMore(s, i);
    if (r > 0) return r;
    this.emit('<');
    return i + 1;
  }

  /**
   * At `s[i] === '<'`: if `</endName` + delimiter follows, starts that end tag and returns the
   * index after the name; 0 if not; -1 if the input ends too early to tell (never when final).
   */
  private matchEndTag(s: string, i: number): number {
    const len = this.endName.length;
    const n = s.length;
    if (i + 2 + len >= n) {
      if (this.final) return 0;
      return ('</' + this.endName).startsWith(s.slice(i, n).toLowerCase()) ? -1 : 0;
    }
    if (s.charCodeAt(i + 1) !== 47) return 0;
    for (let k = 0; k < len; k++) {
      if ((s.charCodeAt(i + 2 + k) | 0x20) !== this.endName.charCodeAt(k)) return 0;
    }
    const d = s.charCodeAt(i + 2 + len);
    if (!isWs(d) && d !== 47 && d !== 62) return 0;
    this.beginTag(true);
    this.tagName = this.endName;
    this.tagFlags = TAG_FLAGS.get(this.endName) ?? 0;
    this.state = S_BEFORE_ATTR;
    return i + 2 + len;
  }

  // --- tags and attributes

  private beginTag(isEnd: boolean): void {
    this.tagIsEnd = isEnd;
    this.tagName = '';
    this.tagFlags = 0;
    this.selfClosing = false;
    this.attrSeen = 0;
    this.attrSlot = -1;
  }

  private inTagName(s: string, i: number): number {
    const n = s.length;
    let j = i;
    let h = 0;
    while (j < n) {
      const c = s.charCodeAt(j);
      if (c === 62 || c === 47 || isWs(c)) break;
      h = (Math.imul(h, 31) + (c | 0x20)) | 0;
      j++;
    }
    let e: NameEntry | undefined;
    if (this.tagName.length === 0 && j < n) {
      // The whole name is in this string: look it up in place.
      e = j - i <= MAX_TAG_NAME_CHARS ? lookupName(TAGS_BY_HASH, h, s, i, j) : undefined;
    } else {
      if (this.tagName.length < MAX_TAG_NAME_CHARS) {
        this.tagName += s.slice(i, Math.min(j, i + MAX_TAG_NAME_CHARS - this.tagName.length));
      }
      if (j === n) return n;
      const name = this.tagName;
      e = lookupName(TAGS_BY_HASH, foldHash(name, 0, name.length), name, 0, name.length);
    }
    // Only known names matter from here on (raw text end tags); others are inline elements.
    this.tagName = e === undefined ? '' : e.name;
    this.tagFlags = e === undefined ? 0 : e.value;
    return this.beforeAttr(s, j);
  }

  /**
   * From before an attribute name to the tag's '>': every attribute in one loop while the string
   * lasts (the hot path: no state dispatch per attribute). At the end of the string it leaves the
   * state where it stopped, and the single-step handlers below resume from there.
   */
  private beforeAttr(s: string, i: number): number {
    const n = s.length;
    this.state = S_BEFORE_ATTR;
    while (i < n) {
      let c = s.charCodeAt(i);
      if (isWs(c)) {
        i++;
        continue;
      }
      if (c === 47) {
        this.selfClosing = true;
        i++;
        continue;
      }
      if (c === 62) return this.tagEnd(i + 1);
      this.selfClosing = false;
      // Attribute name (per the standard a leading '=' belongs to it).
      const nameStart = i;
      if (c === 61) i++;
      while (i < n) {
        c = s.charCodeAt(i);
        if (c === 61 || c === 62 || c === 47 || isWs(c)) break;
        i++;
      }
      if (i === n) {
        this.attrName = s.slice(nameStart, Math.min(n, nameStart + MAX_ATTR_NAME_CHARS + 1));
        this.state = S_ATTR_NAME;
        return n;
      }
      this.attrSlot = this.slotFor(s, nameStart, i);
      while (i < n && isWs(s.charCodeAt(i))) i++;
      if (i === n) {
        this.state = S_AFTER_ATTR_NAME;
        return n;
      }
      if (s.charCodeAt(i) !== 61) continue; // no value: next attribute, '/' or '>'
      i++;
      while (i < n && isWs(s.charCodeAt(i))) i++;
      if (i === n) {
        this.state = S_BEFORE_VALUE;
        return n;
      }
      c = s.charCodeAt(i);
      if (c === 34 || c === 39) {
        this.state = c === 34 ? S_VALUE_DQ : S_VALUE_SQ;
        i = this.quotedValue(s, i + 1, c === 34 ? '"' : "'");
        if (this.state !== S_BEFORE_ATTR) return n;
        continue;
      }
      if (c === 62) return this.tagEnd(i + 1);
      this.state = S_VALUE_UQ;
      i = this.unquotedValue(s, i);
      if (this.state !== S_BEFORE_ATTR) return n;
    }
    return n;
  }


  private inAttrName(s: string, i: number): number {
    const n = s.length;
    let j = i;
    while (j < n) {
      const c = s.charCodeAt(j);
      if (c === 61 || c === 62 || c === 47 || isWs(c)) break;
      j++;
    }
    if (this.attrName.length === 0 && j < n) {
      this.attrSlot = this.slotFor(s, i, j);
    } else {
      if (this.attrName.length <= MAX_ATTR_NAME_CHARS) this.attrName += s.slice(i, Math.min(j, i + MAX_ATTR_NAME_CHARS + 1));
      if (j === n) return n;
      this.attrSlot = this.slotFor(this.attrName, 0, this.attrName.length);
    }
    const c = s.charCodeAt(j);
    if (c === 61) {
      this.state = S_BEFORE_VALUE;
      return j + 1;
    }
    this.state = isWs(c) ? S_AFTER_ATTR_NAME : S_BEFORE_ATTR;
    return j;
  }

  private afterAttrName(s: string, i: number): number {
    const n = s.length;
    for (let j = i; j < n; j++) {
      const c = s.charCodeAt(j);
      if (isWs(c)) continue;
      if (c === 61) {
        this.state = S_BEFORE_VALUE;
        return j + 1;
      }
      this.state = S_BEFORE_ATTR;
      return j;
    }
    return n;
  }

  private beforeValue(s: string, i: number): number {
    const n = s.length;
    for (let j = i; j < n; j++) {
      const c = s.charCodeAt(j);
      if (isWs(c)) continue;
      if (c === 34) {
        this.state = S_VALUE_DQ;
        return j + 1;
      }
      if (c === 39) {
        this.state = S_VALUE_SQ;
        return j + 1;
      }
      if (c === 62) return this.tagEnd(j + 1);
      this.state = S_VALUE_UQ;
      return j;
    }
    return n;
  }

  private quotedValue(s: string, i: number, quote: string): number {
    const q = s.indexOf(quote, i);
    const end = q < 0 ? s.length : q;
    if (this.attrSlot >= 0 && end > i) this.capture(s, i, end);
    if (q < 0) return s.length;
    this.state = S_BEFORE_ATTR;
    return q + 1;
  }

  private unquotedValue(s: string, i: number): number {
    const n = s.length;
    let j = i;
    while (j < n) {
      const c = s.charCodeAt(j);
      if (c === 62 || isWs(c)) break;
      j++;
    }
    if (this.attrSlot >= 0 && j > i) this.capture(s, i, j);
    if (j === n) return n;
    this.state = S_BEFORE_ATTR;
    return j;
  }

  /** The slot to capture attribute `s[from, to)` into for the current tag, or -1. First one wins. */
  private slotFor(s: string, from: number, to: number): number {
    if (this.tagIsEnd || to - from > MAX_ATTR_NAME_CHARS || to - from < 3) return -1;
    // Cheap filter before hashing: the names we capture start with t, a, p, l or v.
    const c0 = s.charCodeAt(from) | 0x20;
    if (c0 !== 116 && c0 !== 97 && c0 !== 112 && c0 !== 108 && c0 !== 118) return -1;
    const e = lookupName(ATTRS_BY_HASH, foldHash(s, from, to), s, from, to);
    if (e === undefined) return -1;
    const f = this.tagFlags;
    const slot = e.value;
    const allowed =
      slot === A_TITLE ||
      (slot === A_ALT && (f & F_ALT) !== 0) ||
      (slot === A_PLACEHOLDER && (f & F_PLACEHOLDER) !== 0) ||
      (slot === A_LABEL && (f & F_LABEL) !== 0) ||
      ((slot === A_VALUE || slot === A_TYPE) && (f & F_INPUT) !== 0);
    if (!allowed || this.attrSeen & (1 << slot)) return -1;
    this.attrSeen |= 1 << slot;
    this.attrValues[slot] = '';
    return slot;
  }

  private capture(s: string, from: number, to: number): void {
    const have = this.attrValues[this.attrSlot].length;
    if (have + (to - from) > MAX_ATTR_VALUE_CHARS) {
      if (have < MAX_ATTR_VALUE_CHARS) this.counters.inc(C_ATTR_TRUNCATED);
      to = from + Math.max(0, MAX_ATTR_VALUE_CHARS - have);
    }
    if (to > from) this.attrValues[this.attrSlot] += s.slice(from, to);
  }

  private tagEnd(next: number): number {
    this.state = S_TEXT;
    const f = this.tagFlags;
    if (this.tagIsEnd) {
      if (f & F_TEMPLATE && !this.xml) {
        if (this.hidden > 0) this.hidden--;
      } else if (f & F_BLOCK || this.xml) {
        this.wordBreak();
      }
      return next;
    }
    if (f & F_TEMPLATE && !this.xml) {
      if (this.hidden < MAX_TEMPLATE_DEPTH) this.hidden++;
      else this.counters.inc(C_TEMPLATE_DEEP);
      return next;
    }
    if (f & F_BLOCK || this.xml) this.wordBreak();
    if (this.attrSeen !== 0) this.queueAttributes();
    // XML has no RCDATA (an RSS <title> holds CDATA sections) and honours `<script/>`.
    const raw = this.xml ? (this.selfClosing ? 0 : f & F_RAWTEXT) : f & (F_RAWTEXT | F_RAWTEXT_SHOWN | F_RCDATA);
    if (raw !== 0) {
      this.endName = this.tagName;
      this.rawShown = (f & F_RAWTEXT_SHOWN) !== 0;
      this.state = f & F_RCDATA ? S_RCDATA : S_RAWTEXT;
    } else if (f & F_PLAINTEXT && !this.xml) {
      this.state = S_PLAINTEXT;
    }
    return next;
  }

  private queueAttributes(): void {
    if (this.hidden > 0) return;
    const seen = this.attrSeen;
    for (let slot = 0; slot < A_VALUE; slot++) {
      if (seen & (1 << slot)) this.queue(this.attrValues[slot]);
    }
    if (seen & (1 << A_VALUE)) {
      const type = seen & (1 << A_TYPE) ? this.attrValues[A_TYPE].trim().toLowerCase() : '';
      if (VISIBLE_VALUE_TYPES.has(type)) this.queue(this.attrValues[A_VALUE]);
    }
  }

  private queue(raw: string): void {
    const text = decodeHtmlEntities(raw, true);
    if (text.trim().length === 0) return;
    if (this.pendingChars + text.length > MAX_PENDING_ATTR_CHARS) {
      this.counters.inc(C_ATTR_DROPPED);
      return;
    }
    this.pending.push(text);
    this.pendingChars += text.length;
  }

  // --- comments, CDATA, raw text

  private commentStart(s: string, i: number): number {
    const c = s.charCodeAt(i);
    if (c === 62) {
      // "<!-->"
      this.state = S_TEXT;
      return i + 1;
    }
    if (c === 45) {
      if (i + 1 >= s.length && !this.final) return this.needMore(s, i);
      if (s.charCodeAt(i + 1) === 62) {
        // "<!--->"
        this.state = S_TEXT;
        return i + 2;
      }
    }
    this.state = S_COMMENT;
    return i;
  }

  private comment(s: string, i: number): number {
    const a = s.indexOf('-->', i);
    const b = s.indexOf('--!>', i);
    if (a < 0 && b < 0) {
      // Keep what could start "-->" or "--!>" (at most 3 characters).
      return this.final ? s.length : this.needMore(s, Math.max(i, s.length - 3));
    }
    this.state = S_TEXT;
    return a >= 0 && (b < 0 || a < b) ? a + 3 : b + 4;
  }

  private cdata(s: string, i: number): number {
    const end = s.indexOf(']]>', i);
    if (end < 0) {
      const keep = this.final ? s.length : Math.max(i, s.length - 2);
      if (this.xml && keep > i) this.emit(s.slice(i, keep));
      return keep < s.length ? this.needMore(s, keep) : s.length;
    }
    if (this.xml && end > i) this.emit(s.slice(i, end));
    this.state = S_TEXT;
    return end + 3;
  }

  private rawText(s: string, i: number): number {
    const n = s.length;
    let from = i;
    for (;;) {
      const lt = s.indexOf('<', from);
      if (lt < 0) {
        if (this.rawShown) this.emit(s.slice(i));
        return n;
      }
      const r = this.matchEndTag(s, lt);
      if (r === 0) {
        from = lt + 1;
        continue;
      }
      if (this.rawShown && lt > i) this.emit(s.slice(i, lt));
      if (r === -1) return this.needMore(s, lt);
      return r;
    }
  }
}

/** Bytes -> HtmlTokenizer, with the HTML (or XML) charset rules. */
export class HtmlExtractor implements Extractor {
  readonly format: 'html' | 'xml';
  private readonly stage: TextDecodeStage;

  /** `charset`: the Content-Type charset parameter, if any. */
  constructor(sink: TextSink, counters: Counters, charset?: string, options: HtmlOptions = {}) {
    this.format = options.xml === true ? 'xml' : 'html';
    this.stage = new TextDecodeStage(new HtmlTokenizer(sink, counters, options), counters, charset, this.format);
  }

  write(chunk: Uint8Array): void {
    this.stage.write(chunk);
  }

  end(): void {
    this.stage.end();
  }
}

/**
 * Dictionary problems and the per-row checks that the CSV and pack readers share.
 * Input: one row's fields as read from either format, with the physical line it starts on.
 * Output: problems (error or warning, line, reason) pushed onto the caller's list, and the
 * cleaned texts. A row with any error is never turned into a Phrase; nothing is dropped quietly.
 * Checks about matching use the sensor's own normaliser (skeletonOf), so they agree with the matcher.
 */

import { isUtf8 } from 'node:buffer';
import { skeletonOf } from '../sensor/normalize/text.js';
import type { Phrase } from './dictionary.js';

export type ProblemLevel = 'error' | 'warning';

export interface DictionaryProblem {
  /** 1-based physical line of the file where the record (or the offending JSON value) starts. */
  readonly line: number;
  /** 1-based column, only for JSON syntax errors and the like. */
  readonly column?: number;
  readonly level: ProblemLevel;
  /** Stable dotted code (`severity.range`, `duplicate.conflict`) for tests and tooling. */
  readonly code: string;
  /** Human text without the location, e.g. `severity "7" is not 1-5`. */
  readonly reason: string;
  /** For duplicates: the line of the earlier record this one clashes with. */
  readonly relatedLine?: number;
}

/**
 * A phrase is a few words; anything longer is nearly always a shifted CSV column or a pasted
 * paragraph, and a bound lets the matcher size the context it carries across packet boundaries.
 * Counted in Unicode code points of the trimmed text (as JSON Schema's maxLength counts).
 * pack.schema.json repeats this number as maxLength; a test keeps the two equal.
 */
export const MAX_PHRASE_CHARS = 128;

/**
 * Bounds the compiler's automaton: a school safeguarding library is thousands of phrases, not
 * millions. Rows past the limit are reported as one error, not loaded.
 */
export const MAX_PHRASES = 1_000_000;

/** Reading a multi-gigabyte file by mistake (a disk image, a capture) must fail fast. */
export const MAX_DICTIONARY_BYTES = 64 * 1024 * 1024;

const FORMAT_CHARS = /\p{Cf}/gu;
const PLAIN_ASCII = /^(?:[\x21-\x7e]+(?: [\x21-\x7e]+)*)?$/;
const WHITESPACE_RUN = /\s+/gu;
/**
 * Loose BCP 47 shape: a 2-3 letter ISO 639 language, then subtags (`en`, `en-GB`, `pa-Arab-PK`).
 * The 5-8 letter registered primaries BCP 47 allows are unused, and refusing them catches "english".
 */
const LANGUAGE_TAG = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/;

/**
 * The spelling of a phrase with case, width and spacing folded: NFKC (full-width and ligature forms
 * fold), lower case, format characters (zero-width space, soft hyphen) removed, whitespace runs
 * collapsed to one space, trimmed. Punctuation is kept: "ak-47" and "ak47" differ here, though the
 * matcher reads both the same (see matchForm). Duplicate messages use it to tell a repeat from a
 * different spelling of the same phrase.
 */
export function phraseKey(text: string): string {
  // Fast path: printable ASCII with single inner spaces is already NFKC, free of format characters
  // and collapsed, so lower-casing is all it needs (most dictionary rows).
  if (PLAIN_ASCII.test(text)) return text.toLowerCase();
  return text.normalize('NFKC').toLowerCase().replace(FORMAT_CHARS, '').replace(WHITESPACE_RUN, ' ').trim();
}

/** Category identity: categories compare case-insensitively after trimming. */
export function categoryKey(category: string): string {
  return category.trim().toLowerCase();
}

/** Quotes a value for a reason text, showing invisible characters as \u{...} escapes. */
export function quote(value: string): string {
  let out = '"';
  for (const ch of value) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (cp < 0x20 || cp === 0x7f || /\p{Cf}/u.test(ch)) out += `\\u{${cp.toString(16)}}`;
    else out += ch;
  }
  return out + '"';
}

/** Length in code points, the unit of MAX_PHRASE_CHARS (and JSON Schema's maxLength). */
function codePointLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}

/** Code points never exceed UTF-16 units, so short strings skip the count. */
function longerThanLimit(s: string): boolean {
  return s.length > MAX_PHRASE_CHARS && codePointLength(s) > MAX_PHRASE_CHARS;
}

/**
 * What the matcher looks for: the phrase's skeleton from sensor/normalize/text.ts (lower case,
 * diacritics and punctuation folded, leet undone, words joined by one space) as a byte string, and
 * the repeated-letter run of each byte. "AK47", "AK-47" and "ak 47" share one form.
 */
export interface MatchForm {
  /** Skeleton UTF-8 bytes, one char per byte (latin1), without the virtual spaces at the ends. */
  readonly text: string;
  /** Run length per byte (1, 2, 3 = "3 or more"), one char per byte. */
  readonly runs: string;
}

export function matchForm(text: string): MatchForm {
  const skeleton = skeletonOf(text);
  return { text: byteString(skeleton.bytes), runs: byteString(skeleton.runs) };
}

/** Argument count for one String.fromCharCode call; far below engines' argument limits. */
const BYTE_STRING_CHUNK = 4096;

/** Bytes as a one-char-per-byte string; phrases are short, so one fromCharCode call suffices. */
function byteString(bytes: Uint8Array): string {
  if (bytes.length <= BYTE_STRING_CHUNK) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}


/** Two phrases with the same key match exactly the same text. */
export function matchKey(form: MatchForm): string {
  return form.text + '\u0000' + form.runs;
}

/** The skeleton as readable text, for messages. */
export function matchText(form: MatchForm): string {
  return Buffer.from(form.text, 'latin1').toString('utf8');
}

const SPACE = 0x20;

/**
 * True when an exclusion's skeleton contains the phrase's skeleton where the matcher could find
 * the phrase: anywhere for an embedded phrase, between word boundaries (a space or an end) for a
 * whole-word phrase. Repeated-letter runs are not compared. Takes the texts as written.
 */
export function exclusionCovers(exclusion: string, phrase: string, embedded: boolean): boolean {
  return formCovers(matchForm(exclusion), matchForm(phrase), embedded);
}

function formCovers(exclusion: MatchForm, phrase: MatchForm, embedded: boolean): boolean {
  const ex = exclusion.text;
  const ph = phrase.text;
  if (ph.length === 0) return false;
  if (embedded) return ex.includes(ph);
  for (let at = ex.indexOf(ph); at !== -1; at = ex.indexOf(ph, at + 1)) {
    const startOk = at === 0 || ex.charCodeAt(at - 1) === SPACE;
    const endOk = at + ph.length === ex.length || ex.charCodeAt(at + ph.length) === SPACE;
    if (startOk && endOk) return true;
  }
  return false;
}

/** Row fields after format-specific parsing (severity and embedded already decided by the reader). */
export interface RowTexts {
  readonly phrase: string;
  readonly category: string;
  readonly exclusions: readonly string[];
  readonly languages: readonly string[];
  readonly embedded: boolean;
}

export interface CleanRow {
  readonly phrase: string;
  /** matchKey of the phrase, computed once here for the duplicate check. */
  readonly key: string;
  readonly category: string;
  readonly exclusions: string[];
  readonly languages: string[];
}

/**
 * The checks every row gets whatever its format: phrase present, not empty once normalised, not
 * over-long; category present; exclusions bounded and covering the phrase; language tags shaped
 * like BCP 47. Pushes problems at `line`; returns the trimmed texts and the number of errors found.
 */
export function checkRowTexts(row: RowTexts, line: number, problems: DictionaryProblem[]): { clean: CleanRow; errors: number } {
  let errors = 0;
  const phrase = row.phrase.trim();
  const tooLong = longerThanLimit(phrase);
  const form = tooLong ? { text: '', runs: '' } : matchForm(phrase);
  const key = matchKey(form);
  if (phrase.length === 0) {
    problems.push({ line, level: 'error', code: 'phrase.empty', reason: 'phrase is empty' });
    errors++;
  } else if (tooLong) {
    problems.push({ line, level: 'error', code: 'phrase.too_long', reason: `phrase is ${codePointLength(phrase)} characters, more than the ${MAX_PHRASE_CHARS} limit (a shifted column or a pasted paragraph?)` });
    errors++;
  } else if (form.text.length === 0) {
    problems.push({ line, level: 'error', code: 'phrase.no_letters', reason: `phrase ${quote(phrase)} normalises to nothing (no letters or digits)` });
    errors++;
  }

  const category = row.category.trim();
  if (category.length === 0) {
    problems.push({ line, level: 'error', code: 'category.missing', reason: 'category is missing' });
    errors++;
  }

  const exclusions: string[] = [];
  for (const raw of row.exclusions) {
    const exclusion = raw.trim();
    if (exclusion.length === 0) continue;
    if (longerThanLimit(exclusion)) {
      problems.push({ line, level: 'error', code: 'exclusion.too_long', reason: `exclusion is ${codePointLength(exclusion)} characters, more than the ${MAX_PHRASE_CHARS} limit` });
      errors++;
      continue;
    }
    exclusions.push(exclusion);
    if (form.text.length === 0) continue;
    const exForm = matchForm(exclusion);
    if (exForm.text === form.text) {
      problems.push({ line, level: 'warning', code: 'exclusion.equals_phrase', reason: `exclusion ${quote(exclusion)} is the phrase itself to the matcher, so it cancels every match` });
    } else if (!formCovers(exForm, form, row.embedded)) {
      const how = row.embedded ? 'does not contain' : 'does not contain, as whole words,';
      problems.push({ line, level: 'warning', code: 'exclusion.not_covering', reason: `exclusion ${quote(exclusion)} ${how} the phrase ${quote(phrase)}, so it can never cancel it` });
    }
  }

  const languages: string[] = [];
  for (const raw of row.languages) {
    const tag = raw.trim();
    if (tag.length === 0) continue;
    if (!LANGUAGE_TAG.test(tag)) problems.push({ line, level: 'warning', code: 'language.malformed', reason: `language ${quote(tag)} is not a BCP 47 tag such as "en" or "en-GB"` });
    languages.push(tag);
  }

  return { clean: { phrase, key, category, exclusions, languages }, errors };
}

/** What each reader returns: the rows that passed their per-row checks, in file order. */
export interface LocatedPhrase {
  readonly phrase: Phrase;
  readonly line: number;
  /** matchKey(matchForm(phrase.phrase)) when the reader has it; computed by the checker otherwise. */
  readonly key?: string;
}

export interface ReadResult {
  readonly name: string;
  readonly entries: LocatedPhrase[];
  readonly problems: DictionaryProblem[];
}

/**
 * UTF-16 is what Excel's "Unicode Text" writes; detect it by its byte-order mark and say so
 * rather than reading every phrase as garbage.
 */
export function isUtf16(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff));
}

/**
 * Decodes a dictionary file: strips a UTF-8 BOM, reports a UTF-16 file as one error, and reports
 * every line holding bytes that are not UTF-8 (Excel's plain "CSV" is Windows-1252). Returns the
 * text (undecodable bytes as U+FFFD) and the set of bad lines, whose records the reader skips.
 */
export function decodeDictionaryBytes(source: Uint8Array | string, problems: DictionaryProblem[]): { text: string; badLines: Set<number> } | undefined {
  const badLines = new Set<number>();
  if (typeof source === 'string') {
    return { text: source.charCodeAt(0) === 0xfeff ? source.slice(1) : source, badLines };
  }
  if (isUtf16(source)) {
    problems.push({ line: 1, level: 'error', code: 'file.encoding', reason: 'file is UTF-16; save it as UTF-8 (in Excel: "CSV UTF-8")' });
    return undefined;
  }
  let text = new TextDecoder('utf-8', { fatal: false, ignoreBOM: false }).decode(source);
  if (!isUtf8(source)) {
    let line = 1;
    let reported = -1;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x0a || (c === 0x0d && text.charCodeAt(i + 1) !== 0x0a)) line++;
      else if (c === 0xfffd && reported !== line) {
        reported = line;
        badLines.add(line);
        problems.push({ line, level: 'error', code: 'file.encoding', reason: 'line is not valid UTF-8; save the file as UTF-8 (in Excel: "CSV UTF-8")' });
      }
    }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return { text, badLines };
}

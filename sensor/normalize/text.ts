/**
 * Text normaliser (normalize stage): folds decoded text into the "skeleton" the phrase matcher scans,
 * identically for dictionary phrases and for traffic. Input: string chunks cut anywhere (inside a
 * surrogate pair, a combining sequence, a word, an "s.u.i.c" run). Output, in slices through a sink:
 * UTF-8 skeleton bytes, and per byte a map entry (where its source sits in a bounded ring of
 * readable display text, and the length of the letter run it stands for).
 * Guarantees: the output does not depend on how the input was chunked; state per stream is bounded.
 * Speed: ASCII text can be folded by a native loop handed in by the match stage (NativeFolder, the
 * Hyperscan addon's hark_fold.cc: the same output, tested against this module), and written text
 * can be collected and folded in batches (NormalizerOptions).
 *
 * Rules, in order (NORMALIZER_VERSION names this exact list):
 *  1. Unicode NFKC, then lower case. This text is the display text (whitespace runs shown as one space).
 *  2. Per character: diacritics removed (NFD, combining diacritical marks and Hebrew/Arabic points
 *     dropped), a few letters without decomposition folded (ß ss, ς σ, ı i, ø o, ł l, æ ae, ...);
 *     format characters (zero-width, soft hyphen, bidi, variation selectors) ignored.
 *  3. Words are runs of letters (\p{L}, \p{M}, \p{N}), ASCII digits and leet symbols ($ @ ! | €);
 *     everything else separates words. Skeleton words are joined by one space, with a virtual space
 *     at the start and at the end of the stream, so " kill " is a whole-word pattern.
 *  4. Leet: inside a word, a run of digits/symbols between two letters becomes letters when every
 *     character has a letter (0o 1i 3e 4a 5s 7t 8b 9g $s @a !i |i €e): "k1ll" kill, "h@te" hate;
 *     a single leading "$" before a letter too ("$uicide"). Otherwise digits stay digits as their own
 *     word and symbols separate: "ak47", "AK-47" and "ak 47" all give "ak 47". Trailing digits are
 *     never folded: "tiger5" would read as "tigers" (user names and versions are full of these).
 *  5. Spelled-out words: three or more single letters separated by the same gap each time, one
 *     punctuation character or up to four spaces ("s.u.i.c.i.d.e", "s u i c i d e"), join into
 *     one word; a different gap ends the run ("k.i.l.l m.e" is "kill me").
 *  6. Repeated letters: a run of one letter becomes one skeleton letter whose map entry records the
 *     run length (1, 2, or 3 meaning "3 or more"). The scanner accepts a match only where each text
 *     run equals the phrase's run or is 3+: "diiiie" matches "die", "killll" matches "kill", but
 *     "as" does not match "ass" and "tilled" does not match "tiled".
 */
import { isAscii } from 'node:buffer';
import { Counters, defineCounter } from '../events/counters.js';
import { chargeMemory } from '../events/memuse.js';

/** Bumped whenever a folding rule changes; compiled dictionaries record it and are refused on mismatch. */
export const NORMALIZER_VERSION = 1;

/** Longest run of word characters kept whole (code points). Longer runs (base64, hex dumps) are cut
 * into pieces with a word boundary between them; no natural-language word is this long. */
export const MAX_TOKEN_CHARS = 48;
/** Most letters one spelled-out run joins into a word; a longer run is cut. */
export const MAX_SPELLED_LETTERS = 32;
/** Separator characters (spaces, zero-width) tolerated between two spelled letters. */
const MAX_SPELLED_GAP = 4;
/** Units held back at a chunk end while a combining sequence may continue; longer sequences
 * (Zalgo text) are folded without waiting, the only case where chunking can change the output. */
const MAX_HELD_UNITS = 32;
/** Skeleton bytes per slice handed to the sink: bounds the per-stream buffers and match latency.
 * A slice is handed over when full or at `finish`, not at every `write`: text written in many small
 * pieces reaches the engine in few calls. Hyperscan with 10,000 phrases costs several microseconds
 * per call when its tables were evicted by the work between calls: 4 KiB slices took the workload's
 * pipeline from 33.7 s to 28.2 s against 1 KiB ones (bench/pipeline.ts). */
export const SLICE_BYTES = 4096;
/** Display units per slice, so the display ring always holds the last slices' context (a slice of
 * plain words has about as many display units as skeleton bytes). */
const SLICE_DISPLAY_UNITS = 4096;
/** Most skeleton bytes one unit (token piece or spelled run) emits past the slice limit:
 * 48 chars x (3 folded code points x 4 bytes + 1 boundary). */
const MAX_UNIT_BYTES = 1024;
/** Display text kept per stream, in UTF-16 units: a match's context is read at most one slice
 * (SLICE_DISPLAY_UNITS) after its after-context is complete, so 60 + match + 60 + 4096 must fit;
 * a match spanning more than ~3,800 display units gets a shortened context (counted by the
 * scanner). Costs 16 KiB per normaliser being written (one per HTTP message in progress). */
export const DISPLAY_RING_UNITS = 8192;
const DISPLAY_RING_MASK = DISPLAY_RING_UNITS - 1;
/** Identical display characters kept in a row ("!!!!!!!!", "iiiiiiii"): bounds a match's display
 * span. Trimmed runs are counted (normalize.text.display_trimmed), once per run. */
const MAX_DISPLAY_REPEAT = 8;
/** Display characters kept per separator run ("-=-=-=-=" rulers, markup debris). */
const MAX_DISPLAY_SEPARATOR_RUN = 16;
/** Most code points one character folds to (NFD of some Sinhala vowel signs has three). */
const MAX_FOLD_CPS = 3;

const CTR_TOKEN_CUT = defineCounter('normalize.text.long_token_cut');
const CTR_SPELLED_CUT = defineCounter('normalize.text.spelled_run_cut');
const CTR_COMBINING_CUT = defineCounter('normalize.text.combining_run_cut');
const CTR_DISPLAY_TRIMMED = defineCounter('normalize.text.display_trimmed');
const CTR_CARRY_OVERFLOW = defineCounter('normalize.text.carry_overflow');

// ---------- map entries: (display position mod 2^28) << 2 | run length (1..3) ----------

const MAP_POS_MASK = 0x0fffffff;

/** Letter-run length recorded in a map entry: 1, 2, or 3 meaning "3 or more". */
export function mapRun(entry: number): number {
  return entry & 3;
}

/** Absolute display position recorded in a map entry, given any display position at or after it. */
export function mapDisplayPos(entry: number, displayNow: number): number {
  return displayNow - ((displayNow - (entry >>> 2)) & MAP_POS_MASK);
}

// ---------- character kinds ----------

const K_SPACE = 1; // whitespace and controls: separator, shown as one space
const K_SEP = 2; // punctuation, symbols, anything else: separator
const K_LETTER = 3; // word letter, folded
const K_DIGIT = 4; // ASCII digit
const K_LEET = 5; // leet symbol: a letter inside a word, a separator elsewhere
const K_DROP = 6; // invisible format character: ignored, not shown
const K_MARK = 7; // stripped diacritic: part of its word, shown, not in the skeleton

const ASCII_KIND = new Uint8Array(128);
/** Letter a leet character stands for, or -1. */
const ASCII_LEET = new Int32Array(128).fill(-1);
for (let u = 0; u < 128; u++) {
  if (u <= 0x20 || u === 0x7f) ASCII_KIND[u] = K_SPACE;
  else if ((u >= 0x61 && u <= 0x7a) || (u >= 0x41 && u <= 0x5a)) ASCII_KIND[u] = K_LETTER;
  else if (u >= 0x30 && u <= 0x39) ASCII_KIND[u] = K_DIGIT;
  else ASCII_KIND[u] = K_SEP;
}
for (const [c, l] of [['0', 'o'], ['1', 'i'], ['3', 'e'], ['4', 'a'], ['5', 's'], ['7', 't'], ['8', 'b'], ['9', 'g'],
  ['$', 's'], ['@', 'a'], ['!', 'i'], ['|', 'i']]) {
  ASCII_LEET[c.charCodeAt(0)] = l.charCodeAt(0);
  if (ASCII_KIND[c.charCodeAt(0)] === K_SEP) ASCII_KIND[c.charCodeAt(0)] = K_LEET;
}
/** The one symbol that reads as a letter at the start of a word: "$uicide", "$hit". */
const LEADING_LEET = 0x24;

/** Letters NFD does not decompose but readers treat as their base letters. */
const SPECIAL_FOLD = new Map<number, string>([
  [0xdf, 'ss'], [0x1e9e, 'ss'], [0x3c2, 'σ'], [0x131, 'i'], [0xf8, 'o'], [0x111, 'd'], [0xf0, 'd'],
  [0x142, 'l'], [0x127, 'h'], [0xe6, 'ae'], [0x153, 'oe'], [0xfe, 'th'], [0x167, 't'],
]);
/** Non-ASCII leet symbols. */
const EXTRA_LEET = new Map<number, number>([[0x20ac, 0x65]]); // € e

const RE_FORMAT = /^[\p{Cf}\u034f\u180b-\u180f\ufe00-\ufe0f\u{e0100}-\u{e01ef}]$/u;
const RE_SPACE = /^[\s\p{Cc}\p{Zs}\p{Zl}\p{Zp}]$/u;
const RE_WORD = /^[\p{L}\p{M}\p{N}]$/u;
const RE_MARK = /^\p{M}$/u;

/** Diacritics removed by rule 2: combining diacritical blocks, Hebrew points, Arabic harakat. */
function isStrippedMark(cp: number): boolean {
  return (cp >= 0x300 && cp <= 0x36f) || (cp >= 0x1ab0 && cp <= 0x1aff) || (cp >= 0x1dc0 && cp <= 0x1dff)
    || (cp >= 0x20d0 && cp <= 0x20ff) || (cp >= 0xfe20 && cp <= 0xfe2f)
    || (cp >= 0x591 && cp <= 0x5bd) || cp === 0x5bf || cp === 0x5c1 || cp === 0x5c2 || cp === 0x5c4
    || cp === 0x5c5 || cp === 0x5c7
    || (cp >= 0x610 && cp <= 0x61a) || (cp >= 0x64b && cp <= 0x65f) || cp === 0x670
    || (cp >= 0x6d6 && cp <= 0x6dc) || (cp >= 0x6df && cp <= 0x6e4) || cp === 0x6e7 || cp === 0x6e8
    || (cp >= 0x6ea && cp <= 0x6ed);
}

// Lazily filled tables for non-ASCII code points: kind, and the folded letter (or -1: several).
const bmpKind = new Uint8Array(0x10000);
const bmpFold = new Int32Array(0x10000);
const astralKind = new Map<number, number>();
const astralFold = new Map<number, number>();
const multiFold = new Map<number, readonly number[]>();

function classify(cp: number): [number, readonly number[]] {
  const ch = String.fromCodePoint(cp);
  if (RE_FORMAT.test(ch)) return [K_DROP, []];
  if (RE_SPACE.test(ch)) return [K_SPACE, []];
  if (isStrippedMark(cp)) return [K_MARK, []];
  const leet = EXTRA_LEET.get(cp);
  if (leet !== undefined) return [K_LEET, [leet]];
  if (!RE_WORD.test(ch)) return [K_SEP, []];
  let base = '';
  for (const c of ch.normalize('NFD')) if (!isStrippedMark(c.codePointAt(0)!)) base += c;
  base = base.normalize('NFC').toLowerCase();
  const out: number[] = [];
  for (const c of base) {
    const special = SPECIAL_FOLD.get(c.codePointAt(0)!);
    for (const x of special ?? c) out.push(x.codePointAt(0)!);
  }
  if (out.length === 0) return [RE_MARK.test(ch) ? K_MARK : K_DROP, []];
  return [K_LETTER, out.slice(0, MAX_FOLD_CPS)];
}

function learn(cp: number): number {
  const [kind, fold] = classify(cp);
  const f = fold.length === 1 ? fold[0] : -1;
  if (fold.length > 1) multiFold.set(cp, fold);
  if (cp < 0x10000) {
    bmpKind[cp] = kind;
    bmpFold[cp] = f;
  } else {
    astralKind.set(cp, kind);
    astralFold.set(cp, f);
  }
  return kind;
}

function kindOf(cp: number): number {
  if (cp < 0x10000) {
    const k = bmpKind[cp];
    return k !== 0 ? k : learn(cp);
  }
  return astralKind.get(cp) ?? learn(cp);
}

/** The single code point a K_LETTER/K_LEET character folds to, or -1 (see multiFold). */
function foldOf(cp: number): number {
  if (cp < 0x80) return cp >= 0x41 && cp <= 0x5a ? cp | 0x20 : ASCII_KIND[cp] === K_LEET || ASCII_KIND[cp] === K_DIGIT ? ASCII_LEET[cp] : cp;
  if (cp < 0x10000) return bmpFold[cp];
  return astralFold.get(cp) ?? -1;
}

/** Which code points never start a new combining sequence: cutting before them is unsafe for NFKC. */
const bmpJoins = new Uint8Array(0x10000); // 0 unknown, 1 safe start, 2 joins the previous character
function joinsPrevious(cp: number): boolean {
  if (cp < 0x10000) {
    let v = bmpJoins[cp];
    if (v === 0) {
      v = bmpJoins[cp] = computeJoins(cp) ? 2 : 1;
    }
    return v === 2;
  }
  return computeJoins(cp);
}
function computeJoins(cp: number): boolean {
  // Marks reorder or compose; Hangul medial/final jamo compose with a preceding syllable; halfwidth
  // katakana voiced marks become combining marks under NFKC.
  return RE_MARK.test(String.fromCodePoint(cp)) || (cp >= 0x1160 && cp <= 0x11ff) || (cp >= 0xd7b0 && cp <= 0xd7ff)
    || cp === 0xff9e || cp === 0xff9f || (cp >= 0xdc00 && cp <= 0xdfff);
}

/** True when s may be cut just before index k without changing NFKC(s). */
function safeCut(s: string, k: number): boolean {
  const u = s.charCodeAt(k);
  if (u < 0x80) return true;
  if (u >= 0xd800 && u <= 0xdbff) {
    if (k + 1 >= s.length) return false;
    const lo = s.charCodeAt(k + 1);
    if (lo < 0xdc00 || lo > 0xdfff) return true;
    return !joinsPrevious(((u - 0xd800) << 10) + (lo - 0xdc00) + 0x10000);
  }
  return !joinsPrevious(u);
}

/**
 * True when every unit of `s` is ASCII: its UTF-8 length equals its length exactly then (any other
 * unit, a lone surrogate too, takes two or more bytes). Node computes that length in native code,
 * 6-8x faster than a /[^\x00-\x7f]/ test on the 4 KiB batches folded here.
 */
function isAsciiText(s: string): boolean {
  return Buffer.byteLength(s, 'utf8') === s.length;
}

function isHighSurrogate(u: number): boolean {
  return u >= 0xd800 && u <= 0xdbff;
}

/** Code point at t[i] (a lone surrogate stands for itself). */
function cpAt(t: Uint16Array, i: number, n: number): number {
  const u = t[i];
  if (u >= 0xd800 && u <= 0xdbff && i + 1 < n) {
    const lo = t[i + 1];
    if (lo >= 0xdc00 && lo <= 0xdfff) return ((u - 0xd800) << 10) + (lo - 0xdc00) + 0x10000;
  }
  return u;
}

/** Rule 1 on a piece that ends at a safe cut. ASCII is left as is: the folder lower-cases it inline. */
function unicodeFold(s: string): string {
  return isAsciiText(s) ? s : s.normalize('NFKC').toLowerCase();
}

// ---------- output slices ----------

/**
 * Receives each slice: `bytes[0, length)` are skeleton bytes starting at absolute skeleton offset
 * `normalizer.sliceStart`, `map[k]` the map entry of `bytes[k]`. Both arrays are the normaliser's
 * own buffers, valid only during the call. A slice is handed over when full or at `finish`, so
 * text written in small pieces reaches the sink in few calls.
 */
export type SliceSink = (bytes: Uint8Array, map: Int32Array, length: number) => void;

/** Text folded per pass (UTF-16 units); longer input is folded in pieces. */
const WORK_UNITS = 16384;
/** Undecided text carried to the next pass: at most a 48-character word piece, or a spelled run of
 * 32 letters with their separators. */
const MAX_CARRY_UNITS = 512;
const WORK = new Uint16Array(WORK_UNITS + MAX_CARRY_UNITS);
const WORK_BYTES = Buffer.from(WORK.buffer);
let workBusy = false;

// Per-word scratch, shared: a word is folded without calling the sink, so no other normaliser runs meanwhile.
const SEG_CP = new Int32Array(MAX_TOKEN_CHARS);
const SEG_DISP = new Float64Array(MAX_TOKEN_CHARS);
const SEG_LEET = new Int32Array(MAX_TOKEN_CHARS);
const SPELLED_START = new Int32Array(MAX_SPELLED_LETTERS);
const NO_CARRY = new Uint16Array(0);
const NO_COUNTERS = new Counters();

// ---------- native fold ----------

/**
 * The fold loop (`process`) for ASCII text, implemented natively (sensor/match/native/hark_fold.cc,
 * handed in by the match stage, which loads that addon). It works on the normaliser's arena: the
 * float64 state slots S_*, then the display ring, the slice bytes and the slice map, laid out as
 * below. It stops where TypeScript must act: a full slice, an item that may continue past the text,
 * or an item that involves a character that is not ASCII (folded here, then it is called again).
 * Output, state and counters are exactly those of the TypeScript loop (tests compare the two).
 */
export interface NativeFolder {
  /** Hands over this module's constants and tables; false when the native side cannot follow them. */
  configureFold(params: Int32Array, kind: Uint8Array, leet: Int32Array): boolean;
  /** Folds t[from, n); returns where it stopped, the reason (FOLD_*) in the state's S_STATUS slot. */
  foldRun(arena: Uint8Array, t: Uint16Array, from: number, n: number, final: number): number;
}

/** Version of the arena layout and parameter list below (hark_fold.cc LAYOUT_VERSION). */
const FOLD_LAYOUT_VERSION = 1;
// State slots (float64), in this order in hark_fold.cc.
const S_DISPLAY_POS = 0;
const S_OUT_LEN = 1;
const S_OUT_LIMIT = 2;
const S_SLICE_DISPLAY = 3;
const S_LAST_DISP = 4;
const S_DISP_REPEAT = 5;
const S_SEP_DISPLAY = 6;
const S_LAST_SKEL_SPACE = 7;
const S_BAIL = 8;
const S_STATUS = 9;
const S_TOKEN_CUT = 10;
const S_SPELLED_CUT = 11;
const S_DISPLAY_TRIMMED = 12;
const STATE_SLOTS = 16;
// Why foldRun stopped besides the end of the text (0) and a full slice (1: the loop flushes and goes on).
const FOLD_CARRY = 2;
const FOLD_FOREIGN = 3;
/** Slice buffer length: a slice is handed over from SLICE_BYTES on, and one unit adds at most MAX_UNIT_BYTES. */
const OUT_CAPACITY = SLICE_BYTES + MAX_UNIT_BYTES;
const RING_OFFSET = STATE_SLOTS * 8;
const OUT_BYTES_OFFSET = RING_OFFSET + DISPLAY_RING_UNITS * 2;
const OUT_MAP_OFFSET = (OUT_BYTES_OFFSET + OUT_CAPACITY + 3) & ~3;
const ARENA_BYTES = OUT_MAP_OFFSET + OUT_CAPACITY * 4;

/** Text shorter than this is folded here even with a native folder: a native call costs about a
 * quarter of a microsecond, more than folding a word or two here (most such calls fold the last
 * word of a segment). Both give the same output. */
const NATIVE_FOLD_MIN_UNITS = 32;

/** Folders that accepted this module's parameters (configureFold is asked once per folder). */
const foldersReady = new WeakMap<NativeFolder, boolean>();

function folderReady(f: NativeFolder): boolean {
  let ok = foldersReady.get(f);
  if (ok === undefined) {
    const params = Int32Array.from([
      FOLD_LAYOUT_VERSION, MAX_TOKEN_CHARS, MAX_SPELLED_LETTERS, MAX_SPELLED_GAP, SLICE_DISPLAY_UNITS, DISPLAY_RING_UNITS,
      MAX_DISPLAY_REPEAT, MAX_DISPLAY_SEPARATOR_RUN, MAP_POS_MASK, LEADING_LEET, RING_OFFSET, OUT_BYTES_OFFSET,
      OUT_MAP_OFFSET, OUT_CAPACITY, ARENA_BYTES, K_SPACE, K_SEP, K_LETTER, K_DIGIT, K_LEET,
    ]);
    try {
      ok = typeof f.foldRun === 'function' && f.configureFold(params, ASCII_KIND, ASCII_LEET) === true;
    } catch {
      ok = false;
    }
    foldersReady.set(f, ok);
  }
  return ok;
}

/** A normaliser's buffers: state slots, display ring, slice bytes and map, in one ArrayBuffer. */
interface Arena {
  readonly bytes: Uint8Array;
  readonly state: Float64Array;
  readonly ring: Uint16Array;
  readonly out: Uint8Array;
  readonly map: Int32Array;
  /** The arena's bytes as a Buffer: display text is decoded from the ring through it. */
  readonly buffer: Buffer;
}

function newArena(): Arena {
  const buf = new ArrayBuffer(ARENA_BYTES);
  return {
    bytes: new Uint8Array(buf),
    buffer: Buffer.from(buf),
    state: new Float64Array(buf, 0, STATE_SLOTS),
    ring: new Uint16Array(buf, RING_OFFSET, DISPLAY_RING_UNITS),
    out: new Uint8Array(buf, OUT_BYTES_OFFSET, OUT_CAPACITY),
    map: new Int32Array(buf, OUT_MAP_OFFSET, OUT_CAPACITY),
  };
}

/** Arenas of disposed normalisers, reused by new ones (one normaliser per HTTP message:
 * allocation and zeroing would otherwise cost more than folding a short message). */
const MAX_POOLED = 64;
const arenaPool: Arena[] = [];

/** Text a batching normaliser collects before folding it (UTF-16 units): every fold costs a few
 * calls and copies whatever its size, and extractors hand text over in pieces of ~100 characters. */
export const BATCH_UNITS = 4096;

export interface NormalizerOptions {
  /** The native ASCII fold loop (same output, faster); without it everything is folded here. */
  readonly folder?: NativeFolder;
  /**
   * Collect written text and fold it in batches (at BATCH_UNITS, and at `writeAscii`,
   * `finishStretch` and `finish`). The output is the same (it does not depend on chunking; see
   * foldBatch for the one exception), but the state (`displayPos`, `skeletonPos`, the display
   * text) lags what was written until then.
   */
  readonly batch?: boolean;
}
const EMPTY_ARENA = newArena();
/** Whether a Uint16Array stores its units little-endian (as UTF-16LE text), as on x86 and ARM. */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * Streaming normaliser for one stream. Call order: `write`* then `finish`; after `finish`,
 * `restart` begins a new, unrelated stretch of text (after a gap) with the same display ring.
 */
export class TextNormalizer {
  /** Absolute skeleton offset of the first byte of the current slice. */
  sliceStart = 0;
  /** Display units written since the stream began. */
  displayPos = 0;
  /** Display position of the last (re)start: context never reaches before it. */
  displayFloor = 0;

  private arena: Arena;
  private ring: Uint16Array;
  /** The current slice: skeleton bytes and their map entries (limit + MAX_UNIT_BYTES long). */
  private outBytes: Uint8Array;
  private outMap: Int32Array;
  /** The native fold loop, when one was handed in and accepted. */
  private folder: NativeFolder | undefined;
  /** Text written and not folded yet (batching normalisers only; a rope until folded). */
  private batch: string | undefined;
  private outLen = 0;
  /** The slice is handed over from this many bytes on (0 once disposed: every unit flushes). */
  private outLimit = SLICE_BYTES;
  private sliceDisplay = 0;
  /** Raw units held back: a combining sequence may continue in the next chunk. */
  private held = '';
  /** Folded text whose skeleton depends on what follows (the last word, a spelled run). */
  private carry = NO_CARRY;
  private carryLen = 0;
  private lastSkelSpace = false;
  private lastDisp = 0x20;
  private dispRepeat = 0;
  private sepDisplay = 0;
  // letter run being collapsed
  private pendLetter = -1;
  private pendDisp = 0;
  private pendRun = 0;
  // mixed-token state: 0 nothing yet, 1 letter, 2 digit; and pending digit/symbol segment
  private tkLast = 0;
  private tkPrevLetter = false;
  private segLen = 0;
  /** Where asciiRun stopped at an item it leaves to the general path, or -1. */
  private bailAt = -1;

  constructor(private readonly sink: SliceSink, private readonly counters: Counters = NO_COUNTERS, options: NormalizerOptions = {}) {
    const arena = (this.arena = arenaPool.pop() ?? newArena());
    chargeMemory(counters, ARENA_BYTES);
    this.ring = arena.ring;
    this.outBytes = arena.out;
    this.outMap = arena.map;
    const folder = options.folder;
    if (folder !== undefined && folderReady(folder)) this.folder = folder;
    if (options.batch === true) this.batch = '';
    this.emitSpace(0);
  }

  /**
   * Gives this normaliser's buffers back for reuse by new ones. Call once, after `finish`, when
   * neither the normaliser nor the display text it holds is used again.
   */
  dispose(): void {
    if (this.arena === EMPTY_ARENA) return;
    chargeMemory(this.counters, -ARENA_BYTES);
    if (arenaPool.length < MAX_POOLED) arenaPool.push(this.arena);
    this.arena = EMPTY_ARENA;
    this.ring = EMPTY_ARENA.ring;
    this.outBytes = EMPTY_ARENA.out;
    this.outMap = EMPTY_ARENA.map;
    this.outLimit = 0;
    this.folder = undefined;
  }

  /** Absolute skeleton offset of the next byte. */
  get skeletonPos(): number {
    return this.sliceStart + this.outLen;
  }

  /** Oldest display position still readable. */
  get displayOldest(): number {
    return Math.max(this.displayFloor, this.displayPos - DISPLAY_RING_UNITS);
  }

  write(text: string): void {
    if (text.length === 0) return;
    if (this.batch !== undefined) {
      const batch = (this.batch += text);
      if (batch.length >= BATCH_UNITS) this.foldBatch(false);
      return;
    }
    this.writeNow(text);
  }

  /**
   * Folds the collected text as one write: ASCII text (with an ASCII held character) straight
   * into the fold, ending the stretch when `final` (returns whether it did); anything else
   * through `write`'s own path. The output is that of the pieces written one by one (it does not
   * depend on chunking), except that a combining sequence longer than MAX_HELD_UNITS spanning
   * two pieces is now seen whole (the one case where chunking changes the output).
   */
  private foldBatch(final: boolean): boolean {
    const text = this.batch!;
    if (text.length === 0) return false;
    this.batch = '';
    const held = this.held;
    if (!isAsciiText(text) || !isAsciiText(held)) {
      this.writeNow(text);
      return false;
    }
    // what `write` does with ASCII text, here for the whole batch
    if (final) {
      this.held = '';
      this.fold(held, text, text.length, true);
    } else {
      this.held = text.slice(text.length - 1);
      this.fold(held, text, text.length - 1, false);
    }
    return final;
  }

  private writeNow(text: string): void {
    // Hold back from the last place where NFKC may not cut (a combining sequence may continue).
    let cut = -1;
    const lo = Math.max(0, text.length - MAX_HELD_UNITS);
    for (let k = text.length - 1; k >= lo; k--) {
      if (safeCut(text, k)) {
        cut = k;
        break;
      }
    }
    const held = this.held;
    if (cut < 0) {
      if (held.length + text.length <= MAX_HELD_UNITS) {
        this.held = held + text;
        return;
      }
      this.counters.inc(CTR_COMBINING_CUT);
      this.held = '';
      this.fold(unicodeFold(held + text), '', 0, false);
    } else {
      this.held = cut < text.length ? text.slice(cut) : '';
      if (isAsciiText(text) && isAsciiText(held)) this.fold(held, text, cut, false);
      else this.fold(unicodeFold(held + text.slice(0, cut)), '', 0, false);
    }
  }

  /**
   * ASCII bytes (every byte < 0x80): exactly `write` of the same text, without building strings.
   * Other bytes are read as Latin-1.
   */
  writeAscii(bytes: Uint8Array): void {
    const len = bytes.length;
    if (len === 0) return;
    if (this.batch !== undefined) this.foldBatch(false);
    const held = this.held;
    if (!isAscii(bytes) || (held.length !== 0 && !isAsciiText(held))) {
      this.write(Buffer.from(bytes.buffer, bytes.byteOffset, len).toString('latin1'));
      return;
    }
    this.held = String.fromCharCode(bytes[len - 1]);
    this.fold(held, bytes, len - 1, false);
  }

  /** Folds everything held, emits the virtual trailing space and hands over the last slice. */
  finish(): void {
    this.finishStretch();
    this.flushSlice();
  }

  /**
   * Folds everything held and emits the virtual trailing space, but keeps the slice: with
   * `restart` right after, the next stretch continues in the same slice. The skeleton then holds
   * two spaces in a row at the seam, which no pattern contains (a skeleton never has two), so
   * nothing matches across it; the display positions of the seam tell a reader where each
   * stretch's context ends and begins.
   */
  finishStretch(): void {
    if (this.batch === undefined || !this.foldBatch(true)) {
      const rest = this.held;
      this.held = '';
      this.fold(rest.length !== 0 ? unicodeFold(rest) : '', '', 0, true);
    }
    this.flushLetter();
    this.emitSpace(this.displayPos);
  }

  /** Starts a new stretch after `finish`: a fresh virtual leading space, context cut at this point. */
  restart(): void {
    this.lastDisp = 0x20;
    this.dispRepeat = 0;
    this.sepDisplay = 0;
    this.displayFloor = this.displayPos;
    this.lastSkelSpace = false;
    this.emitSpace(this.displayPos);
  }

  /** Display text between two absolute positions (both within [displayOldest, displayPos]). */
  displayText(from: number, to: number): string {
    if (to <= from) return '';
    // at most one ring's worth, in at most two contiguous pieces of the ring
    const a = from & DISPLAY_RING_MASK;
    const len = Math.min(to - from, DISPLAY_RING_UNITS);
    if (a + len <= DISPLAY_RING_UNITS) return this.ringText(a, a + len);
    return this.ringText(a, DISPLAY_RING_UNITS) + this.ringText(0, a + len - DISPLAY_RING_UNITS);
  }

  /** Ring units [a, b) as a string: decoded as UTF-16LE by Node (~50 ns for 80 units, where
   * String.fromCharCode.apply on the units took ~260: it first copies them into an array). */
  private ringText(a: number, b: number): string {
    if (!LITTLE_ENDIAN) return String.fromCharCode.apply(null, this.ring.subarray(a, b) as unknown as number[]);
    return this.arena.buffer.toString('utf16le', RING_OFFSET + a * 2, RING_OFFSET + b * 2);
  }

  /** Display unit at an absolute position within the ring. */
  displayUnit(pos: number): number {
    return this.ring[pos & DISPLAY_RING_MASK];
  }

  // ---------- folding ----------

  /**
   * Folds a + b[0, bLen) (both already through rule 1) after the carry, in pieces that fit the
   * work buffer; whatever is still undecided at the end becomes the new carry.
   */
  private fold(a: string, b: string | Uint8Array, bLen: number, final: boolean): void {
    if (a.length + bLen > WORK_UNITS) {
      if (typeof b !== 'string') {
        // ASCII bytes: no surrogate pair to keep whole
        this.foldPiece(a, b, Math.min(bLen, WORK_UNITS - a.length), false);
        for (let p = WORK_UNITS - a.length; p < bLen; p += WORK_UNITS) {
          const q = Math.min(bLen, p + WORK_UNITS);
          this.foldPiece('', b.subarray(p, q), q - p, final && q === bLen);
        }
        return;
      }
      const s = a + b.slice(0, bLen);
      let p = 0;
      while (p < s.length) {
        let q = Math.min(s.length, p + WORK_UNITS);
        if (q < s.length && isHighSurrogate(s.charCodeAt(q - 1))) q--;
        this.foldPiece(s.slice(p, q), '', 0, final && q === s.length);
        p = q;
      }
      if (s.length === 0) this.foldPiece('', '', 0, final);
      return;
    }
    this.foldPiece(a, b, bLen, final);
  }

  private foldPiece(a: string, b: string | Uint8Array, bLen: number, final: boolean): void {
    // A sink callback may run another normaliser (a match handler writing to another stream):
    // the shared work buffer is then busy and this call gets its own.
    const shared = !workBusy;
    const t = shared ? WORK : new Uint16Array(WORK.length);
    const bytes = shared ? WORK_BYTES : Buffer.from(t.buffer);
    workBusy = true;
    try {
      let n = this.carryLen;
      // the carry is a word or a spelled run at most: copied unit by unit, no views made
      const carry = this.carry;
      for (let k = 0; k < n; k++) t[k] = carry[k];
      if (a.length !== 0) n += bytes.write(a, n * 2, a.length * 2, 'utf16le') >> 1;
      if (bLen !== 0) {
        if (typeof b === 'string') n += bytes.write(b, n * 2, bLen * 2, 'utf16le') >> 1;
        else {
          t.set(b.subarray(0, bLen), n);
          n += bLen;
        }
      }
      const stop = this.process(t, n, final);
      let keep = n - stop;
      if (keep > MAX_CARRY_UNITS) {
        // cannot happen (a word piece or a spelled run is shorter): fold it rather than grow
        this.counters.inc(CTR_CARRY_OVERFLOW);
        this.process(t.subarray(stop), keep, true);
        keep = 0;
      }
      if (keep > this.carry.length) this.carry = new Uint16Array(Math.min(MAX_CARRY_UNITS, Math.max(32, keep * 2)));
      const next = this.carry;
      for (let k = 0; k < keep; k++) next[k] = t[stop + k];
      this.carryLen = keep;
    } finally {
      if (shared) workBusy = false;
    }
  }

  /** Folds t from the start; returns where undecided text begins (t.length when all was folded). */
  private process(t: Uint16Array, n: number, final: boolean): number {
    let i = 0;
    let bail = -1;
    const folder = this.folder;
    /** The native loop's own `bail`, and the item it left to this loop. */
    let nativeBail = -1;
    let foreign = -1;
    while (i < n) {
      if (this.outLen >= this.outLimit || this.sliceDisplay >= SLICE_DISPLAY_UNITS) this.flushSlice();
      const u = t[i];
      if (folder !== undefined && u < 0x80 && i !== foreign && n - i >= NATIVE_FOLD_MIN_UNITS) {
        i = this.foldNative(folder, t, i, n, final, nativeBail);
        const st = this.arena.state;
        nativeBail = st[S_BAIL];
        const status = st[S_STATUS];
        if (status === FOLD_CARRY) return i;
        // an item with a character that is not ASCII in reach: this loop folds it (general path)
        if (status === FOLD_FOREIGN) foreign = bail = i;
        continue;
      }
      if (u < 0x80 && i !== bail) {
        i = this.asciiRun(t, i, n);
        bail = this.bailAt;
        continue;
      }
      let kind: number;
      let w = 1;
      if (u < 0x80) kind = ASCII_KIND[u];
      else {
        const cp = cpAt(t, i, n);
        if (cp > 0xffff) w = 2;
        kind = kindOf(cp);
      }
      if (kind === K_SPACE) {
        this.emitSpace(this.displayPos);
        if (this.lastDisp !== 0x20) this.separatorDisplay(0x20, -1);
        i += w;
      } else if (kind === K_SEP) {
        this.emitSpace(this.displayPos);
        this.separatorDisplay(u, w === 2 ? t[i + 1] : -1);
        i += w;
      } else if (kind === K_DROP) {
        i += w;
      } else if (kind === K_MARK) {
        this.putDisplay(u);
        if (w === 2) this.putDisplay(t[i + 1]);
        i += w;
      } else {
        const next = this.token(t, i, n, final);
        if (next < 0) return i;
        i = next;
      }
    }
    return n;
  }

  /** One run of the native fold loop over t[i, n), with this normaliser's state handed over and back. */
  private foldNative(folder: NativeFolder, t: Uint16Array, i: number, n: number, final: boolean, bail: number): number {
    const st = this.arena.state;
    st[S_DISPLAY_POS] = this.displayPos;
    st[S_OUT_LEN] = this.outLen;
    st[S_OUT_LIMIT] = this.outLimit;
    st[S_SLICE_DISPLAY] = this.sliceDisplay;
    st[S_LAST_DISP] = this.lastDisp;
    st[S_DISP_REPEAT] = this.dispRepeat;
    st[S_SEP_DISPLAY] = this.sepDisplay;
    st[S_LAST_SKEL_SPACE] = this.lastSkelSpace ? 1 : 0;
    st[S_BAIL] = bail;
    const at = folder.foldRun(this.arena.bytes, t, i, n, final ? 1 : 0);
    this.displayPos = st[S_DISPLAY_POS];
    this.outLen = st[S_OUT_LEN];
    this.sliceDisplay = st[S_SLICE_DISPLAY];
    this.lastDisp = st[S_LAST_DISP];
    this.dispRepeat = st[S_DISP_REPEAT];
    this.sepDisplay = st[S_SEP_DISPLAY];
    this.lastSkelSpace = st[S_LAST_SKEL_SPACE] !== 0;
    if (st[S_DISPLAY_TRIMMED] !== 0 || st[S_TOKEN_CUT] !== 0 || st[S_SPELLED_CUT] !== 0) {
      if (st[S_DISPLAY_TRIMMED] !== 0) this.counters.inc(CTR_DISPLAY_TRIMMED, st[S_DISPLAY_TRIMMED]);
      if (st[S_TOKEN_CUT] !== 0) this.counters.inc(CTR_TOKEN_CUT, st[S_TOKEN_CUT]);
      if (st[S_SPELLED_CUT] !== 0) this.counters.inc(CTR_SPELLED_CUT, st[S_SPELLED_CUT]);
      st[S_DISPLAY_TRIMMED] = st[S_TOKEN_CUT] = st[S_SPELLED_CUT] = 0;
    }
    return at;
  }

  /**
   * The common ASCII cases in one loop with the state in locals: spaces, separators, words of 2-47
   * ASCII letters and numbers of 1-47 digits, each ended by a space or separator. Exactly what the
   * general path does for them. Stops at the end of the text, when the slice is full, or at an item
   * it does not handle (a non-ASCII character, one letter, leet symbols, digits joined to letters, a
   * word that may continue past the text): `bailAt` is then that item's position, else -1.
   */
  private asciiRun(t: Uint16Array, i: number, n: number): number {
    const ring = this.ring;
    const outBytes = this.outBytes;
    const outMap = this.outMap;
    const outLimit = this.outLimit;
    const dp0 = this.displayPos;
    const dispEnd = dp0 + SLICE_DISPLAY_UNITS - this.sliceDisplay;
    let dp = dp0;
    let o = this.outLen;
    let last = this.lastDisp;
    let rep = this.dispRepeat;
    let sep = this.sepDisplay;
    let sk = this.lastSkelSpace;
    let bail = -1;
    while (i < n) {
      if (o >= outLimit || dp >= dispEnd) break;
      const u = t[i];
      if (u >= 0x80) break;
      const kind = ASCII_KIND[u];
      if (kind === K_SPACE || kind === K_SEP) {
        if (!sk) {
          outBytes[o] = 0x20;
          outMap[o++] = ((dp & MAP_POS_MASK) << 2) | 1;
          sk = true;
        }
        if (kind === K_SEP || last !== 0x20) {
          const k = ++sep;
          if (k <= MAX_DISPLAY_SEPARATOR_RUN) {
            if (u === last) {
              const r = ++rep;
              if (r <= MAX_DISPLAY_REPEAT) ring[dp++ & DISPLAY_RING_MASK] = u;
              else if (r === MAX_DISPLAY_REPEAT + 1) this.counters.inc(CTR_DISPLAY_TRIMMED);
            } else {
              last = kind === K_SPACE ? 0x20 : u; // a space is only shown after something else
              rep = 1;
              ring[dp++ & DISPLAY_RING_MASK] = last;
            }
          } else if (k === MAX_DISPLAY_SEPARATOR_RUN + 1) this.counters.inc(CTR_DISPLAY_TRIMMED);
        }
        i++;
        continue;
      }
      if (!sk || (kind !== K_LETTER && kind !== K_DIGIT)) {
        bail = i;
        break;
      }
      // a word or a number: find its end first (nothing is written unless this loop takes it)
      let j = i + 1;
      const lim = n < i + MAX_TOKEN_CHARS ? n : i + MAX_TOKEN_CHARS;
      if (kind === K_LETTER) {
        while (j < lim && (t[j] | 0x20) >= 0x61 && (t[j] | 0x20) <= 0x7a) j++;
      } else {
        while (j < lim && t[j] >= 0x30 && t[j] <= 0x39) j++;
      }
      if (j >= lim || (kind === K_LETTER && j - i < 2)) {
        bail = i;
        break;
      }
      const after = t[j];
      if (after >= 0x80 || (ASCII_KIND[after] !== K_SPACE && ASCII_KIND[after] !== K_SEP)) {
        bail = i;
        break;
      }
      // token(): a trimmed separator run still ends with a space in the display
      if (sep > MAX_DISPLAY_SEPARATOR_RUN && last !== 0x20) {
        last = 0x20;
        rep = 1;
        ring[dp++ & DISPLAY_RING_MASK] = 0x20;
      }
      if (kind === K_LETTER) {
        let prev = -1;
        let run = 0;
        let pdisp = 0;
        let trimmed = false;
        for (let k = i; k < j; k++) {
          const c = t[k] | 0x20;
          const d = dp;
          if (c !== last) {
            last = c;
            rep = 1;
            ring[dp++ & DISPLAY_RING_MASK] = c;
          } else if (++rep <= MAX_DISPLAY_REPEAT) ring[dp++ & DISPLAY_RING_MASK] = c;
          else trimmed = true;
          if (c === prev) run++;
          else {
            if (prev >= 0) {
              outBytes[o] = prev;
              outMap[o++] = ((pdisp & MAP_POS_MASK) << 2) | (run > 3 ? 3 : run);
            }
            prev = c;
            run = 1;
            pdisp = d;
          }
        }
        outBytes[o] = prev;
        outMap[o++] = ((pdisp & MAP_POS_MASK) << 2) | (run > 3 ? 3 : run);
        if (trimmed) this.counters.inc(CTR_DISPLAY_TRIMMED);
      } else {
        for (let k = i; k < j; k++) {
          const c = t[k];
          outBytes[o] = c;
          outMap[o++] = ((dp & MAP_POS_MASK) << 2) | 1;
          if (c !== last) {
            last = c;
            rep = 1;
            ring[dp++ & DISPLAY_RING_MASK] = c;
          } else {
            const r = ++rep;
            if (r <= MAX_DISPLAY_REPEAT) ring[dp++ & DISPLAY_RING_MASK] = c;
            else if (r === MAX_DISPLAY_REPEAT + 1) this.counters.inc(CTR_DISPLAY_TRIMMED);
          }
        }
      }
      sep = 0;
      sk = false;
      i = j;
    }
    this.outLen = o;
    this.displayPos = dp;
    this.sliceDisplay += dp - dp0;
    this.lastDisp = last;
    this.dispRepeat = rep;
    this.sepDisplay = sep;
    this.lastSkelSpace = sk;
    this.bailAt = bail;
    return i;
  }

  /** Folds the word starting at i; returns its end, or -1 when it may continue past the text. */
  private token(t: Uint16Array, i: number, n: number, final: boolean): number {
    // a trimmed separator run still ends with a space, so words never run together in the display
    if (this.sepDisplay > MAX_DISPLAY_SEPARATOR_RUN && this.lastDisp !== 0x20) this.putDisplay(0x20);
    const fast = this.plainWord(t, i, n, final);
    if (fast !== -2) return fast;
    let j = i;
    let chars = 0;
    let simple = true;
    while (j < n && chars < MAX_TOKEN_CHARS) {
      const u = t[j];
      if (u < 0x80) {
        const k = ASCII_KIND[u];
        if (k === K_LETTER) {
          j++;
          chars++;
          continue;
        }
        if (k === K_DIGIT || k === K_LEET) {
          simple = false;
          j++;
          chars++;
          continue;
        }
        break;
      }
      const cp = cpAt(t, j, n);
      const k = kindOf(cp);
      if (k !== K_LETTER && k !== K_LEET && k !== K_DROP && k !== K_MARK) break;
      simple = false;
      j += cp > 0xffff ? 2 : 1;
      chars++;
    }
    const full = chars >= MAX_TOKEN_CHARS;
    if (j >= n && !final && !full) return -1;
    if (full) this.counters.inc(CTR_TOKEN_CUT);
    this.sepDisplay = 0;
    this.emitSpace(this.displayPos); // a word cut at MAX_TOKEN_CHARS continues as a new word
    if (chars === 1 && !full && this.firstIsLetter(t, i, n)) {
      const r = this.spelled(t, i, j, n, final);
      if (r !== 0) return r;
    }
    if (simple) this.simpleToken(t, i, j);
    else this.mixedToken(t, i, j);
    return j;
  }

  private firstIsLetter(t: Uint16Array, i: number, n: number): boolean {
    const u = t[i];
    return u < 0x80 ? ASCII_KIND[u] === K_LETTER : kindOf(cpAt(t, i, n)) === K_LETTER;
  }

  /**
   * The common case in one pass: a word of 2+ ASCII letters ended by an ASCII separator (or cut
   * at MAX_TOKEN_CHARS, or at the end of the stream), folded while it is scanned. Returns its end,
   * -1 when it may continue past the text, or -2 (nothing changed) when the general path must
   * decide: a digit, leet symbol or non-ASCII character in or after it, or a one-letter word.
   */
  private plainWord(t: Uint16Array, i: number, n: number, final: boolean): number {
    if (!this.lastSkelSpace) return -2;
    const ring = this.ring;
    const outBytes = this.outBytes;
    const outMap = this.outMap;
    const dp0 = this.displayPos;
    let dp = dp0;
    let last = this.lastDisp;
    let rep = this.dispRepeat;
    let o = this.outLen;
    let prev = -1;
    let run = 0;
    let pdisp = 0;
    let trimmed = 0;
    const lim = Math.min(n, i + MAX_TOKEN_CHARS);
    let j = i;
    for (; j < lim; j++) {
      const raw = t[j];
      if (raw >= 0x80 || ASCII_KIND[raw] !== K_LETTER) break;
      const u = raw | 0x20;
      const d = dp;
      if (u !== last) {
        last = u;
        rep = 1;
        ring[dp & DISPLAY_RING_MASK] = u;
        dp++;
      } else if (++rep <= MAX_DISPLAY_REPEAT) {
        ring[dp & DISPLAY_RING_MASK] = u;
        dp++;
      } else trimmed++;
      if (u === prev) run++;
      else {
        if (prev >= 0) {
          outBytes[o] = prev;
          outMap[o++] = ((pdisp & MAP_POS_MASK) << 2) | (run > 3 ? 3 : run);
        }
        prev = u;
        run = 1;
        pdisp = d;
      }
    }
    const full = j - i === MAX_TOKEN_CHARS;
    if (!full) {
      if (j - i < 2) return -2;
      if (j < n) {
        const raw = t[j];
        if (raw >= 0x80 || (ASCII_KIND[raw] !== K_SPACE && ASCII_KIND[raw] !== K_SEP)) return -2;
      } else if (!final) return -1;
    } else this.counters.inc(CTR_TOKEN_CUT);
    if (trimmed !== 0) this.counters.inc(CTR_DISPLAY_TRIMMED);
    outBytes[o] = prev;
    outMap[o++] = ((pdisp & MAP_POS_MASK) << 2) | (run > 3 ? 3 : run);
    this.outLen = o;
    this.displayPos = dp;
    this.sliceDisplay += dp - dp0;
    this.lastDisp = last;
    this.dispRepeat = rep;
    this.sepDisplay = 0;
    this.lastSkelSpace = false;
    return j;
  }

  /** A word of ASCII letters only: the common case, folded without the leet machinery. */
  private simpleToken(t: Uint16Array, i: number, j: number): void {
    const ring = this.ring;
    const outBytes = this.outBytes;
    const outMap = this.outMap;
    const dp0 = this.displayPos;
    let dp = dp0;
    let last = this.lastDisp;
    let rep = this.dispRepeat;
    let o = this.outLen;
    let prev = -1;
    let run = 0;
    let pdisp = 0;
    for (let k = i; k < j; k++) {
      const u = t[k] | 0x20;
      const d = dp;
      if (u !== last) {
        last = u;
        rep = 1;
        ring[dp & DISPLAY_RING_MASK] = u;
        dp++;
      } else if (++rep <= MAX_DISPLAY_REPEAT) {
        ring[dp & DISPLAY_RING_MASK] = u;
        dp++;
      } else if (rep === MAX_DISPLAY_REPEAT + 1) this.counters.inc(CTR_DISPLAY_TRIMMED);
      if (u === prev) run++;
      else {
        if (prev >= 0) {
          outBytes[o] = prev;
          outMap[o++] = ((pdisp & MAP_POS_MASK) << 2) | (run > 3 ? 3 : run);
        }
        prev = u;
        run = 1;
        pdisp = d;
      }
    }
    outBytes[o] = prev;
    outMap[o++] = ((pdisp & MAP_POS_MASK) << 2) | (run > 3 ? 3 : run);
    this.outLen = o;
    this.displayPos = dp;
    this.sliceDisplay += dp - dp0;
    this.lastDisp = last;
    this.dispRepeat = rep;
    this.lastSkelSpace = false;
  }

  /** A word with digits, leet symbols or non-ASCII characters (rules 2, 4, 6). */
  private mixedToken(t: Uint16Array, i: number, j: number): void {
    this.tkLast = 0;
    this.tkPrevLetter = false;
    this.segLen = 0;
    let k = i;
    while (k < j) {
      const u = t[k];
      let cp = u;
      let kind: number;
      let w = 1;
      if (u < 0x80) kind = ASCII_KIND[u];
      else {
        cp = cpAt(t, k, j);
        if (cp > 0xffff) w = 2;
        kind = kindOf(cp);
      }
      const d = this.displayPos;
      if (kind !== K_DROP) {
        this.putDisplay(u < 0x80 && kind === K_LETTER ? u | 0x20 : u);
        if (w === 2) this.putDisplay(t[k + 1]);
      }
      if (kind === K_LETTER) {
        if (this.segLen !== 0) this.resolveSegment(true);
        if (this.tkLast === 2) this.boundary(d);
        const f = foldOf(cp);
        if (f >= 0) this.letter(f, d);
        else for (const x of multiFold.get(cp) ?? []) this.letter(x, d);
        this.tkLast = 1;
        this.tkPrevLetter = true;
      } else if (kind === K_DIGIT || kind === K_LEET) {
        const s = this.segLen++;
        SEG_CP[s] = cp;
        SEG_DISP[s] = d;
        SEG_LEET[s] = u < 0x80 ? ASCII_LEET[u] : foldOf(cp);
      }
      k += w;
    }
    if (this.segLen !== 0) this.resolveSegment(false);
    this.flushLetter();
  }

  /** Rule 4 for a run of digits/leet symbols inside a word, once we know what follows it. */
  private resolveSegment(followedByLetter: boolean): void {
    const len = this.segLen;
    this.segLen = 0;
    let leet = followedByLetter
      && (this.tkPrevLetter || (this.tkLast === 0 && len === 1 && SEG_CP[0] === LEADING_LEET));
    for (let s = 0; leet && s < len; s++) if (SEG_LEET[s] < 0) leet = false;
    if (leet) {
      for (let s = 0; s < len; s++) this.letter(SEG_LEET[s], SEG_DISP[s]);
      this.tkLast = 1;
      this.tkPrevLetter = true;
      return;
    }
    for (let s = 0; s < len; s++) {
      const cp = SEG_CP[s];
      const d = SEG_DISP[s];
      if (cp >= 0x30 && cp <= 0x39) {
        if (this.tkLast === 1) this.boundary(d);
        this.flushLetter();
        this.emit(cp, d, 1);
        this.lastSkelSpace = false;
        this.tkLast = 2;
      } else {
        this.boundary(d);
        this.tkLast = 0;
      }
    }
  }

  /**
   * Rule 5. t[i, j) is a one-letter word. Returns the end of the joined run (3+ letters), 0 when
   * there is no such run, -1 when the text ends before we can tell.
   */
  private spelled(t: Uint16Array, i: number, j: number, n: number, final: boolean): number {
    const st = SPELLED_START;
    st[0] = i;
    let m = 1;
    let k = j;
    let gap0 = 0;
    let gap0Len = 0;
    for (;;) {
      if (m === MAX_SPELLED_LETTERS) {
        this.counters.inc(CTR_SPELLED_CUT);
        break;
      }
      let p = k;
      let seps = 0;
      let gap = 0;
      let ok = true;
      while (p < n) {
        const u = t[p];
        const cp = u < 0x80 ? u : cpAt(t, p, n);
        const kind = u < 0x80 ? ASCII_KIND[u] : kindOf(cp);
        if (kind === K_SEP) seps++;
        else if (kind !== K_SPACE && kind !== K_DROP) break;
        p += cp > 0xffff ? 2 : 1;
        if (++gap > MAX_SPELLED_GAP || seps > 1 || (seps === 1 && gap > 1)) {
          ok = false;
          break;
        }
      }
      if (!ok || p === k) break;
      if (p >= n) {
        if (final) break;
        return -1;
      }
      // every gap of a run is the same: "k.i.l.l m.e" is "kill me", not "killme"
      if (m === 1) {
        gap0 = k;
        gap0Len = p - k;
      } else {
        if (p - k !== gap0Len) break;
        let same = true;
        for (let x = 0; x < gap0Len && same; x++) same = t[k + x] === t[gap0 + x];
        if (!same) break;
      }
      if (!this.firstIsLetter(t, p, n)) break;
      const q = p + (t[p] >= 0xd800 && t[p] <= 0xdbff ? 2 : 1);
      if (q >= n) {
        if (!final) return -1;
      } else if (this.isWordChar(t, q, n)) break;
      st[m++] = p;
      k = q;
    }
    if (m < 3) return 0;
    for (let x = 0; x < m; x++) {
      const p = st[x];
      if (x > 0) {
        // the separators between two spelled letters: shown, not in the skeleton
        let s = st[x - 1] + (t[st[x - 1]] >= 0xd800 && t[st[x - 1]] <= 0xdbff ? 2 : 1);
        while (s < p) {
          const u = t[s];
          const cp = u < 0x80 ? u : cpAt(t, s, n);
          const kind = u < 0x80 ? ASCII_KIND[u] : kindOf(cp);
          if (kind === K_SPACE) {
            if (this.lastDisp !== 0x20) this.putDisplay(0x20);
          } else if (kind === K_SEP) {
            this.putDisplay(u);
            if (cp > 0xffff) this.putDisplay(t[s + 1]);
          }
          s += cp > 0xffff ? 2 : 1;
        }
      }
      const u = t[p];
      const cp = u < 0x80 ? u : cpAt(t, p, n);
      const d = this.displayPos;
      this.putDisplay(u < 0x80 ? u | 0x20 : u);
      if (cp > 0xffff) this.putDisplay(t[p + 1]);
      const f = foldOf(cp);
      if (f >= 0) this.letter(f, d);
      else for (const x2 of multiFold.get(cp) ?? []) this.letter(x2, d);
    }
    this.flushLetter();
    this.sepDisplay = 0;
    return k;
  }

  private isWordChar(t: Uint16Array, q: number, n: number): boolean {
    const u = t[q];
    const kind = u < 0x80 ? ASCII_KIND[u] : kindOf(cpAt(t, q, n));
    return kind === K_LETTER || kind === K_DIGIT || kind === K_LEET || kind === K_DROP || kind === K_MARK;
  }

  // ---------- skeleton output ----------

  private letter(cp: number, d: number): void {
    if (cp === this.pendLetter) {
      this.pendRun++;
      return;
    }
    this.flushLetter();
    this.pendLetter = cp;
    this.pendDisp = d;
    this.pendRun = 1;
  }

  private flushLetter(): void {
    const cp = this.pendLetter;
    if (cp < 0) return;
    this.pendLetter = -1;
    const d = this.pendDisp;
    const run = this.pendRun;
    if (cp < 0x80) this.emit(cp, d, run);
    else if (cp < 0x800) {
      this.emit(0xc0 | (cp >> 6), d, run);
      this.emit(0x80 | (cp & 0x3f), d, run);
    } else if (cp < 0x10000) {
      this.emit(0xe0 | (cp >> 12), d, run);
      this.emit(0x80 | ((cp >> 6) & 0x3f), d, run);
      this.emit(0x80 | (cp & 0x3f), d, run);
    } else {
      this.emit(0xf0 | (cp >> 18), d, run);
      this.emit(0x80 | ((cp >> 12) & 0x3f), d, run);
      this.emit(0x80 | ((cp >> 6) & 0x3f), d, run);
      this.emit(0x80 | (cp & 0x3f), d, run);
    }
    this.lastSkelSpace = false;
  }

  private boundary(d: number): void {
    this.flushLetter();
    this.emitSpace(d);
  }

  private emitSpace(d: number): void {
    if (this.lastSkelSpace) return;
    this.emit(0x20, d, 1);
    this.lastSkelSpace = true;
  }

  private emit(b: number, d: number, run: number): void {
    const o = this.outLen++;
    this.outBytes[o] = b;
    this.outMap[o] = ((d & MAP_POS_MASK) << 2) | (run > 3 ? 3 : run);
  }

  private flushSlice(): void {
    if (this.outLen === 0 && this.sliceDisplay === 0) return;
    const len = this.outLen;
    this.outLen = 0;
    this.sliceDisplay = 0;
    this.sink(this.outBytes, this.outMap, len);
    this.sliceStart += len;
  }

  // ---------- display ring ----------

  /** One separator character (`lo` >= 0: the low half of a surrogate pair), within the run's cap. */
  private separatorDisplay(u: number, lo: number): void {
    const k = ++this.sepDisplay;
    if (k <= MAX_DISPLAY_SEPARATOR_RUN) {
      this.putDisplay(u);
      if (lo >= 0) this.putDisplay(lo);
    } else if (k === MAX_DISPLAY_SEPARATOR_RUN + 1) this.counters.inc(CTR_DISPLAY_TRIMMED);
  }

  private putDisplay(u: number): void {
    if (u === this.lastDisp) {
      const k = ++this.dispRepeat;
      if (k > MAX_DISPLAY_REPEAT) {
        if (k === MAX_DISPLAY_REPEAT + 1) this.counters.inc(CTR_DISPLAY_TRIMMED);
        return;
      }
    } else {
      this.lastDisp = u;
      this.dispRepeat = 1;
    }
    this.putUnit(u);
  }

  private putUnit(u: number): void {
    this.ring[this.displayPos & DISPLAY_RING_MASK] = u;
    this.displayPos++;
    this.sliceDisplay++;
  }
}

// ---------- whole-text helpers (dictionary compilation, tests) ----------

export interface Skeleton {
  /** Skeleton bytes, without the virtual spaces at start and end. */
  readonly bytes: Uint8Array;
  /** Letter-run length (1, 2, 3 = "3 or more") of each byte. */
  readonly runs: Uint8Array;
}

let collectBytes = new Uint8Array(4096);
let collectRuns = new Uint8Array(4096);
let collectLen = 0;
const collector = new TextNormalizer((bytes, map, length) => {
  if (collectLen + length > collectBytes.length) {
    const size = Math.max(collectBytes.length * 2, collectLen + length);
    const b = new Uint8Array(size);
    const r = new Uint8Array(size);
    b.set(collectBytes.subarray(0, collectLen));
    r.set(collectRuns.subarray(0, collectLen));
    collectBytes = b;
    collectRuns = r;
  }
  for (let k = 0; k < length; k++) {
    collectBytes[collectLen + k] = bytes[k];
    collectRuns[collectLen + k] = map[k] & 3;
  }
  collectLen += length;
});

/**
 * Skeleton of a complete text, fed in the given chunks (one chunk when a string): the form a
 * dictionary phrase is compiled to. Not reentrant from inside a sink.
 */
export function skeletonOf(text: string | readonly string[]): Skeleton {
  collectLen = 0;
  collector.restart();
  if (typeof text === 'string') collector.write(text);
  else for (const c of text) collector.write(c);
  collector.finish();
  let a = 0;
  let b = collectLen;
  while (a < b && collectBytes[a] === 0x20) a++;
  while (b > a && collectBytes[b - 1] === 0x20) b--;
  return { bytes: collectBytes.slice(a, b), runs: collectRuns.slice(a, b) };
}

/** The skeleton as a string (UTF-8 decoded), for tests and diagnostics. */
export function normalizeText(text: string | readonly string[]): string {
  return new TextDecoder().decode(skeletonOf(text).bytes);
}

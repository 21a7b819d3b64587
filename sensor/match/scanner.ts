/**
 * Phrase scanner (match stage): one per stream of decoded text. Input: text chunks cut anywhere
 * (`write`, `writeUtf8`), segment ends (`split`), holes (`gap`), the end (`end`). Output: `onMatch`
 * once per phrase occurrence that survives its exclusions, with readable context around it and
 * the tag of the segment it was in.
 * Path: TextNormalizer (batched; with the engine's native fold loop when it has one) -> MatchEngine
 * (pure-TS DFA or any engine built from matcherPatterns; one stream per scanner, reused by later
 * scanners) -> letter-run check -> pending, held until every exclusion that could cover the match
 * and the after-context have been seen (or its segment or the stream ends) -> hit. Memory per
 * stream: the normaliser's 12 KiB arena (display ring and slice) and up to BATCH_UNITS of text not
 * yet folded, a history ring as long as the longest pattern, a few pending matches.
 */
import { isAscii } from 'node:buffer';
import { TextDecoder } from 'node:util';
import { Counters, defineCounter } from '../events/counters.js';
import { chargeMemory } from '../events/memuse.js';
import { DISPLAY_RING_UNITS, mapDisplayPos, TextNormalizer } from '../normalize/text.js';
import type { Phrase } from '../../rules/dictionary.js';
import type { MatchDatabase, MatchStream } from './engine.js';
import { PATTERN_EXCLUSION, type CompiledMatcher } from './matcher.js';

export interface PhraseHit {
  readonly phraseIndex: number;
  readonly phrase: Phrase;
  /** Normalised text (NFKC, lower case, whitespace collapsed) around the match, which is marked
   * [[like this]]; "... " / " ..." where text was cut. */
  readonly context: string;
  /** Where the match starts in the stream's normalised text, in UTF-16 units. */
  readonly offset: number;
  /** The tag of the segment the match is in (`tag` option, `split(nextTag)`); 0 by default. */
  readonly tag: number;
}

export interface PhraseScannerOptions {
  readonly counters?: Counters;
  /** A database another engine compiled from matcherPatterns(m) (same pattern ids, e.g. Hyperscan);
   * default: the matcher's pure-TS DFA. */
  readonly database?: MatchDatabase;
  /** Context characters on each side of a match (at most MAX_CONTEXT_CHARS). */
  readonly contextChars?: number;
  /** Tag of the first segment (see `split`). */
  readonly tag?: number;
}

export const CONTEXT_CHARS = 60;
/** Context per side is capped so before + match + after fit the normaliser's display ring. */
export const MAX_CONTEXT_CHARS = 200;
/** Matches waiting for their after-context, at most about one slice's worth (a 1 KiB slice holds
 * ~500 one-letter words); beyond this the oldest is reported early, with a shorter after-context. */
export const MAX_PENDING_MATCHES = 1024;
/** Exclusion occurrences remembered while matches they might cover are pending; beyond this the
 * oldest is forgotten (a match it would have cancelled is then reported). */
const MAX_RECENT_EXCLUSIONS = 256;

const CTR_HITS = defineCounter('match.hits');
const CTR_EXCLUDED = defineCounter('match.excluded');
const CTR_RUN_MISMATCH = defineCounter('match.run_mismatch');
const CTR_CONTEXT_TRUNCATED = defineCounter('match.context_truncated');
const CTR_PENDING_OVERFLOW = defineCounter('match.pending_overflow');
const CTR_EXCLUSION_OVERFLOW = defineCounter('match.exclusion_overflow');
const CTR_WRITE_AFTER_END = defineCounter('match.write_after_end');

/** A stretch of text (up to a gap or the end) whose whole skeleton is at most this long is scanned
 * by the matcher's own pure-TS automaton, even when another engine is configured: a native call
 * costs ~1-2 us (Hyperscan stream state load and store), more than the DFA spends on 256 bytes,
 * and the pipeline cuts requests into many short stretches (URL parts, headers). Both engines are
 * built from the same patterns, so the matches are the same. */
const SHORT_STRETCH_BYTES = 256;

/** Engine streams kept per database for later scanners (each is reset before it is kept): a
 * message is scanned by one stream, and opening one costs a native allocation and a finalizer. */
const MAX_POOLED_STREAMS = 256;

const NO_COUNTERS = new Counters();
/** One reusable DFA stream per matcher for short stretches (always reset after use). */
const shortStreams = new WeakMap<CompiledMatcher, MatchStream>();
const streamPools = new WeakMap<MatchDatabase, MatchStream[]>();
/** Letter-run history arrays of ended scanners, by length, for new ones: one scanner runs per HTTP
 * message, and a typed array this size lives outside V8's heap (malloc, then the GC's sweeper). */
const histPools = new Map<number, Int32Array[]>();
const EMPTY_MAP = new Int32Array(0);
/** A scanner's objects on the heap (itself, its normaliser object, pending lists, UTF-8 decoder), for the flow memcap. */
const SCANNER_BYTES = 2048;

class Pending {
  /** -1 until the skeleton byte after an embedded match exists. */
  dispEnd = -1;
  /** Where the match's segment ends: its skeleton offset and display position, -1 while it goes on. */
  stop = -1;
  limit = -1;
  constructor(
    readonly phrase: number,
    /** Skeleton span [start, end) of the whole pattern. */
    readonly start: number,
    readonly end: number,
    readonly dispStart: number,
    /** Skeleton offset by which every exclusion that could cover this match has been scanned. */
    readonly readyAt: number,
    /** Display position where the match's segment begins: its context never reaches before it. */
    readonly floor: number,
    readonly tag: number,
  ) {}
}

interface Exclusion {
  phrase: number;
  start: number;
  end: number;
}

/**
 * Scans one stream. Call order: `write`/`writeUtf8`*, `split` and `gap` any time, `end` once; calls
 * after `end` are ignored. `onMatch` is called synchronously from `write`, `split`, `gap` and `end`,
 * in stream order (by match end), and must not call back into the same scanner. Every match is
 * reported by the `gap` or `end` that follows it at the latest.
 */
export class PhraseScanner {
  private readonly norm: TextNormalizer;
  private readonly database: MatchDatabase;
  /** Opened at the first slice that needs it (short texts never do); back to the pool at `end`. */
  private stream: MatchStream | undefined;
  private readonly counters: Counters;
  private readonly ctx: number;
  private readonly hist: Int32Array;
  private readonly histMask: number;
  /** Absolute skeleton offset of the engine stream's offset 0, and bytes scanned since. */
  private engineBase = 0;
  private enginePos = 0;
  private sliceBase = 0;
  private sliceLen = 0;
  private sliceMap: Int32Array = EMPTY_MAP;
  private pending: Pending[] = [];
  private exclusions: Exclusion[] = [];
  /** Segment ends not yet scanned past: [skeleton offset, display position, next tag, ...]. */
  private readonly seams: number[] = [];
  /** Display floor and tag of the segment that starts after the last seam scanned past. */
  private floorBase = 0;
  private tagBase: number;
  private tag: number;
  private ended = false;
  /** True while gap/end hand over the last slice of a stretch. */
  private finishing = false;
  /** Set when another engine than the matcher's DFA runs the stream. */
  private readonly shortStream: MatchStream | undefined;
  private utf8: TextDecoder | undefined;
  private utf8Pending = false;

  constructor(
    private readonly m: CompiledMatcher,
    private readonly onMatch: (hit: PhraseHit) => void,
    opts: PhraseScannerOptions = {},
  ) {
    this.counters = opts.counters ?? NO_COUNTERS;
    this.ctx = Math.min(MAX_CONTEXT_CHARS, Math.max(0, Math.floor(opts.contextChars ?? CONTEXT_CHARS)));
    this.tag = this.tagBase = opts.tag ?? 0;
    this.database = opts.database ?? m.engine;
    if (opts.database !== undefined && opts.database !== m.engine) {
      let short = shortStreams.get(m);
      if (short === undefined) shortStreams.set(m, (short = m.engine.openStream()));
      this.shortStream = short;
    }
    let h = 64;
    while (h < m.maxPatternLength + 1) h <<= 1;
    this.hist = histPools.get(h)?.pop()?.fill(0) ?? new Int32Array(h);
    this.histMask = h - 1;
    chargeMemory(this.counters, this.ownBytes());
    this.norm = new TextNormalizer((bytes, map, len) => this.onSlice(bytes, map, len), this.counters, { folder: this.database.textFolder, batch: true });
  }

  write(text: string): void {
    if (this.ended) {
      this.counters.inc(CTR_WRITE_AFTER_END);
      return;
    }
    this.norm.write(text);
  }

  /** UTF-8 bytes, split anywhere (a multi-byte character cut between calls is joined). */
  writeUtf8(bytes: Uint8Array): void {
    if (this.ended) {
      this.counters.inc(CTR_WRITE_AFTER_END);
      return;
    }
    if (bytes.length === 0) return;
    // ASCII with no multi-byte character pending: straight in, no string built
    if (!this.utf8Pending && isAscii(bytes)) {
      this.norm.writeAscii(bytes);
      return;
    }
    this.utf8 ??= new TextDecoder('utf-8');
    this.norm.write(this.utf8.decode(bytes, { stream: true }));
    // a character can only be left incomplete when the last byte is not ASCII
    this.utf8Pending = bytes[bytes.length - 1] >= 0x80;
  }

  /**
   * Ends a segment (a field, a paragraph, the text before a hole): nothing matches across the
   * seam and no context reaches over it, exactly as with `gap`, but the text goes on in the same
   * slice and engine stream, so the segment's matches may be reported later (by a later call).
   * Text written after it is tagged `nextTag` (default: the current tag).
   */
  split(nextTag: number = this.tag): void {
    if (this.ended) return;
    this.flushUtf8();
    const norm = this.norm;
    norm.finishStretch();
    const at = norm.skeletonPos;
    const display = norm.displayPos;
    for (const p of this.pending) {
      if (p.stop < 0) {
        p.stop = at;
        p.limit = display;
      }
    }
    this.seams.push(at, display, nextTag);
    this.tag = nextTag;
    norm.restart();
  }

  /** A hole in the stream: what came before is finished (its matches reported), nothing matches across. */
  gap(): void {
    if (this.ended) return;
    this.finishText();
    // a stream that scanned nothing since open or the last reset is already fresh
    if (this.enginePos !== 0) this.stream!.reset();
    this.engineBase = this.norm.skeletonPos;
    this.enginePos = 0;
    this.exclusions.length = 0;
    this.norm.restart();
    this.floorBase = this.norm.displayFloor;
  }

  end(): void {
    if (this.ended) return;
    this.finishText();
    const stream = this.stream;
    if (stream !== undefined) {
      this.stream = undefined;
      let pool = streamPools.get(this.database);
      if (pool === undefined) streamPools.set(this.database, (pool = []));
      if (pool.length < MAX_POOLED_STREAMS) {
        if (this.enginePos !== 0) stream.reset();
        pool.push(stream);
      } else stream.close();
    }
    this.ended = true;
    chargeMemory(this.counters, -this.ownBytes());
    this.norm.dispose();
    let hists = histPools.get(this.hist.length);
    if (hists === undefined) histPools.set(this.hist.length, (hists = []));
    if (hists.length < MAX_POOLED_STREAMS) hists.push(this.hist);
  }

  /** What this scanner holds beside its normaliser (which charges its own arena), for the flow memcap. */
  private ownBytes(): number {
    return SCANNER_BYTES + this.hist.byteLength + this.database.streamStateSize;
  }

  /** Everything written so far is normalised, scanned and its matches reported. */
  private finishText(): void {
    this.flushUtf8();
    this.finishing = true;
    this.norm.finish();
    this.finishing = false;
    this.release(true);
  }

  private flushUtf8(): void {
    if (this.utf8 === undefined || !this.utf8Pending) return;
    this.utf8Pending = false;
    const rest = this.utf8.decode();
    if (rest.length !== 0) this.norm.write(rest);
  }

  // ---------- per slice ----------

  private onSlice(bytes: Uint8Array, map: Int32Array, len: number): void {
    const base = this.norm.sliceStart;
    this.sliceBase = base;
    this.sliceLen = len;
    this.sliceMap = map;
    if (len !== 0) {
      const before = this.enginePos;
      let pairs: Uint32Array;
      if (before === 0 && this.finishing && len <= SHORT_STRETCH_BYTES && this.shortStream !== undefined) {
        // the whole stretch is in this slice: the engine stream stays fresh (no reset needed)
        pairs = this.shortStream.scan(bytes.subarray(0, len));
        this.shortStream.reset();
      } else {
        const stream = this.stream ?? (this.stream = streamPools.get(this.database)?.pop() ?? this.database.openStream());
        pairs = stream.scan(bytes.subarray(0, len));
        this.enginePos += len;
      }
      // engine offsets are modulo 2^32; every end lies in (before, before + len]
      const beforeMod = before % 4294967296;
      for (let k = 0; k < pairs.length; k += 2) {
        this.candidate(pairs[k], this.engineBase + before + ((pairs[k + 1] - beforeMod) >>> 0));
      }
      const end = base + len;
      for (const p of this.pending) if (p.dispEnd < 0 && p.end < end) p.dispEnd = this.displayAt(p.end);
      for (let k = Math.max(0, len - this.hist.length); k < len; k++) this.hist[(base + k) & this.histMask] = map[k];
      // Seams scanned past: every match before them has been found (none crosses a seam).
      const seams = this.seams;
      let k = 0;
      for (; k < seams.length && seams[k] <= end; k += 3) {
        this.floorBase = seams[k + 1];
        this.tagBase = seams[k + 2];
      }
      if (k !== 0) seams.splice(0, k);
    }
    // Everything that reads the shared slice is done: from here on user callbacks may run.
    if (this.pending.length > MAX_PENDING_MATCHES) {
      const early = this.pending.splice(0, this.pending.length - MAX_PENDING_MATCHES);
      this.counters.inc(CTR_PENDING_OVERFLOW, early.length);
      for (const p of early) this.deliver(p);
    }
    this.release(false);
  }

  private mapAt(p: number): number {
    return p >= this.sliceBase ? this.sliceMap[p - this.sliceBase] : this.hist[p & this.histMask];
  }

  private displayAt(p: number): number {
    return mapDisplayPos(this.mapAt(p), this.norm.displayPos);
  }

  /** A pattern occurrence ending at absolute skeleton offset `end`. */
  private candidate(pid: number, end: number): void {
    const m = this.m;
    const len = m.patternLength[pid];
    const start = end - len;
    // Letter runs: each text run must equal the phrase's, or be 3+ (elongated).
    let q = m.runIndex[pid];
    const qe = m.runIndex[pid + 1];
    for (let k = 0; k < len; k++) {
      let r = 1;
      if (q < qe && m.runOffset[q] === k) r = m.runValue[q++];
      const t = this.mapAt(start + k) & 3;
      if (t !== r && t !== 3) {
        this.counters.inc(CTR_RUN_MISMATCH);
        return;
      }
    }
    const phrase = m.patternPhrase[pid];
    if (m.patternKind[pid] === PATTERN_EXCLUSION) {
      if (this.exclusions.length >= MAX_RECENT_EXCLUSIONS) {
        this.counters.inc(CTR_EXCLUSION_OVERFLOW);
        this.exclusions.shift();
      }
      this.exclusions.push({ phrase, start, end });
      return;
    }
    const whole = m.patternWhole[pid] === 1;
    // the segment the match is in: the first seam at or after its end closes it
    const seams = this.seams;
    let floor = this.floorBase;
    let tag = this.tagBase;
    let k = 0;
    for (; k < seams.length && seams[k] < end; k += 3) {
      floor = seams[k + 1];
      tag = seams[k + 2];
    }
    const p = new Pending(phrase, start, end, this.displayAt(whole ? start + 1 : start), start + m.maxExclusionLength[phrase], floor, tag);
    if (k < seams.length) {
      p.stop = seams[k];
      p.limit = seams[k + 1];
    }
    if (whole) p.dispEnd = this.displayAt(end - 1);
    else if (end < this.sliceBase + this.sliceLen) p.dispEnd = this.displayAt(end);
    this.pending.push(p);
  }

  /** Reports pending matches that are ready (all of them when `final`). */
  private release(final: boolean): void {
    const scanned = this.sliceBase + this.sliceLen;
    const displayPos = this.norm.displayPos;
    let n = 0;
    for (; n < this.pending.length; n++) {
      const p = this.pending[n];
      if (final || (p.stop >= 0 && p.stop <= scanned)) continue; // its segment is complete and scanned
      if (p.dispEnd < 0 || scanned < p.readyAt || displayPos <= p.dispEnd + this.ctx) break;
    }
    if (n !== 0) {
      const pending = this.pending;
      for (let k = 0; k < n; k++) this.deliver(pending[k]);
      if (n === pending.length) pending.length = 0;
      else {
        pending.copyWithin(0, n);
        pending.length -= n;
      }
    }
    if (this.pending.length === 0) this.exclusions.length = 0;
    else if (this.exclusions.length !== 0) {
      let minEnd = Infinity;
      for (const p of this.pending) if (p.end < minEnd) minEnd = p.end;
      this.exclusions = this.exclusions.filter((e) => e.end >= minEnd);
    }
  }

  private deliver(p: Pending): void {
    for (const e of this.exclusions) {
      if (e.phrase === p.phrase && e.start <= p.start && e.end >= p.end) {
        this.counters.inc(CTR_EXCLUDED);
        return;
      }
    }
    const now = p.limit >= 0 ? p.limit : this.norm.displayPos;
    const dispEnd = p.dispEnd < 0 ? now : p.dispEnd;
    this.counters.inc(CTR_HITS);
    this.onMatch({
      phraseIndex: p.phrase,
      phrase: this.m.phrases[p.phrase],
      context: this.context(p.dispStart, dispEnd, p.floor, now),
      offset: p.dispStart,
      tag: p.tag,
    });
  }

  /** Context of a match at display [start, end) in a segment that spans display [floor, now). */
  private context(start: number, end: number, floor: number, now: number): string {
    const norm = this.norm;
    const oldest = Math.max(floor, norm.displayPos - DISPLAY_RING_UNITS);
    if (start < oldest) {
      this.counters.inc(CTR_CONTEXT_TRUNCATED);
      start = oldest;
      if (end < start) end = start;
    }
    let from = Math.max(oldest, start - this.ctx);
    let to = Math.min(now, end + this.ctx);
    // never split a surrogate pair at the window edges
    if (from > oldest && from < start && isLowSurrogate(norm.displayUnit(from))) from++;
    if (to < now && to > end && isHighSurrogate(norm.displayUnit(to - 1))) to--;
    let before = norm.displayText(from, start);
    let after = norm.displayText(end, to);
    let pre = '';
    let post = '';
    if (from > floor) {
      const sp = norm.displayUnit(from - 1) === 0x20 ? -1 : before.indexOf(' ');
      if (sp >= 0) before = before.slice(sp + 1);
      pre = '... ';
    }
    if (to < now) {
      const sp = norm.displayUnit(to) === 0x20 ? -1 : after.lastIndexOf(' ');
      if (sp >= 0) after = after.slice(0, sp);
      post = ' ...';
    }
    return `${pre}${before}[[${norm.displayText(start, end)}]]${after}${post}`;
  }
}

function isLowSurrogate(u: number): boolean {
  return u >= 0xdc00 && u <= 0xdfff;
}

function isHighSurrogate(u: number): boolean {
  return u >= 0xd800 && u <= 0xdbff;
}

/**
 * Compiled dictionary (match stage). Input: a Dictionary object (rules/dictionary.ts; this module
 * never reads dictionary source files). Output: a CompiledMatcher (phrase and exclusion patterns over
 * the normalised skeleton, their metadata, and the pure-TS automaton), the versioned binary artifact
 * `hark dictionary compile` writes, and the loader for it.
 * Artifact layout (little-endian): "HARKMTCH", u32 format version, u32 normaliser version, u32 JSON
 * length, JSON metadata, then typed arrays each as u32 byte length + data, 4-byte aligned: the
 * automaton's trie (AcDfa.serialize) first, then the pattern tables.
 */
import type { Dictionary, Phrase } from '../../rules/dictionary.js';
import { NORMALIZER_VERSION, skeletonOf, type Skeleton } from '../normalize/text.js';
import { AcDfa, AcDfaFormatError, DENSE_CELL_BUDGET, deserializeAcDfa, type AcDfaStats } from './ac-dfa.js';

/** Longest pattern in skeleton bytes (delimiting spaces included): sizes each stream's history ring. */
export const MAX_PATTERN_BYTES = 512;
export const MATCHER_FORMAT_VERSION = 1;
const MAGIC = 'HARKMTCH';

export const PATTERN_PHRASE = 0;
export const PATTERN_EXCLUSION = 1;

export interface SkippedPhrase {
  readonly index: number;
  readonly text: string;
  readonly reason: string;
}

export interface CompiledMatcher {
  readonly name: string;
  readonly phrases: readonly Phrase[];
  /** The pure-TS engine's database over the patterns (pattern ids index the arrays below). */
  readonly engine: AcDfa;
  /** Per pattern: index of the phrase it belongs to. */
  readonly patternPhrase: Int32Array;
  /** Per pattern: PATTERN_PHRASE or PATTERN_EXCLUSION. */
  readonly patternKind: Uint8Array;
  /** Per pattern: 1 when whole-word, i.e. delimited by a space on each side. */
  readonly patternWhole: Uint8Array;
  readonly patternLength: Uint16Array;
  /** Letter-run profile: for pattern p, entries runIndex[p] .. runIndex[p+1]-1 give the byte offsets
   * (runOffset) whose run length (runValue) is not 1. */
  readonly runIndex: Int32Array;
  readonly runOffset: Uint16Array;
  readonly runValue: Uint8Array;
  /** Per phrase: longest exclusion pattern in bytes (0 without exclusions). */
  readonly maxExclusionLength: Uint16Array;
  readonly maxPatternLength: number;
  /** Phrases and exclusions that produced no pattern, with the reason. */
  readonly skipped: readonly SkippedPhrase[];
}

export interface CompileOptions {
  /** Dense transition cells for the automaton (see ac-dfa.ts). */
  readonly denseCellBudget?: number;
}

export interface MatcherStats extends AcDfaStats {
  readonly phrases: number;
  readonly patterns: number;
  readonly skipped: number;
}

/** Thrown by loadMatcher on a damaged, truncated or incompatible artifact. */
export class MatcherFormatError extends Error {
  readonly code = 'MATCH_ARTIFACT_FORMAT';
  /** What is wrong with the bytes, without the file name loadMatcher never sees (the loader adds it). */
  constructor(readonly reason: string) {
    super(`Cannot load compiled dictionary: ${reason}`);
  }
}


function patternOf(sk: Skeleton, whole: boolean): Skeleton {
  if (!whole) return sk;
  const bytes = new Uint8Array(sk.bytes.length + 2);
  const runs = new Uint8Array(sk.bytes.length + 2);
  bytes[0] = bytes[bytes.length - 1] = 0x20;
  runs[0] = runs[runs.length - 1] = 1;
  bytes.set(sk.bytes, 1);
  runs.set(sk.runs, 1);
  return { bytes, runs };
}

export function compileDictionary(dict: Dictionary, opts: CompileOptions = {}): CompiledMatcher {
  const patterns: Uint8Array[] = [];
  const pPhrase: number[] = [];
  const pKind: number[] = [];
  const pWhole: number[] = [];
  const runIndex: number[] = [0];
  const runOffset: number[] = [];
  const runValue: number[] = [];
  const skipped: SkippedPhrase[] = [];
  const maxExclusionLength = new Uint16Array(dict.phrases.length);
  let maxPatternLength = 0;

  const add = (p: Skeleton, phrase: number, kind: number, whole: boolean): void => {
    patterns.push(p.bytes);
    pPhrase.push(phrase);
    pKind.push(kind);
    pWhole.push(whole ? 1 : 0);
    for (let k = 0; k < p.runs.length; k++) {
      if (p.runs[k] !== 1) {
        runOffset.push(k);
        runValue.push(p.runs[k]);
      }
    }
    runIndex.push(runOffset.length);
    if (p.bytes.length > maxPatternLength) maxPatternLength = p.bytes.length;
  };
  const check = (p: Skeleton): string | undefined => {
    if (p.bytes.length === 0 || p.bytes.every((b) => b === 0x20)) return 'no letters or digits after normalisation';
    if (p.bytes.length > MAX_PATTERN_BYTES) return `longer than ${MAX_PATTERN_BYTES} bytes after normalisation`;
    return undefined;
  };

  dict.phrases.forEach((ph, i) => {
    const whole = !ph.embedded;
    const pat = patternOf(skeletonOf(ph.phrase), whole);
    const bad = check(pat);
    if (bad !== undefined) {
      skipped.push({ index: i, text: ph.phrase, reason: bad });
      return;
    }
    add(pat, i, PATTERN_PHRASE, whole);
    for (const ex of ph.exclusions) {
      const xp = patternOf(skeletonOf(ex), whole);
      const xbad = check(xp) ?? (xp.bytes.length <= pat.bytes.length ? 'exclusion is not longer than its phrase' : undefined);
      if (xbad !== undefined) {
        skipped.push({ index: i, text: ex, reason: `exclusion: ${xbad}` });
        continue;
      }
      add(xp, i, PATTERN_EXCLUSION, whole);
      if (xp.bytes.length > maxExclusionLength[i]) maxExclusionLength[i] = xp.bytes.length;
    }
  });

  const engine = AcDfa.compile(patterns, opts.denseCellBudget ?? DENSE_CELL_BUDGET);
  return {
    name: dict.name,
    phrases: dict.phrases,
    engine,
    patternPhrase: Int32Array.from(pPhrase),
    patternKind: Uint8Array.from(pKind),
    patternWhole: Uint8Array.from(pWhole),
    patternLength: Uint16Array.from(patterns, (p) => p.length),
    runIndex: Int32Array.from(runIndex),
    runOffset: Uint16Array.from(runOffset),
    runValue: Uint8Array.from(runValue),
    maxExclusionLength,
    maxPatternLength,
    skipped,
  };
}

export function matcherStats(m: CompiledMatcher): MatcherStats {
  return { ...m.engine.stats(), phrases: m.phrases.length, patterns: m.patternPhrase.length, skipped: m.skipped.length };
}

// ---------- artifact ----------

interface Meta {
  name: string;
  maxPatternLength: number;
  categories: string[];
  /** [phrase, category index, severity, embedded 0/1, exclusions, languages] */
  phrases: [string, number, number, number, string[], string[]][];
  skipped: [number, string, string][];
}

type Arr = Uint8Array | Uint16Array | Int32Array;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function serializeMatcher(m: CompiledMatcher): Uint8Array {
  if (!LITTLE_ENDIAN) throw new Error('Cannot serialise a matcher on a big-endian host');
  const categories: string[] = [];
  const catIndex = new Map<string, number>();
  const meta: Meta = {
    name: m.name,
    maxPatternLength: m.maxPatternLength,
    categories,
    phrases: m.phrases.map((p) => {
      let c = catIndex.get(p.category);
      if (c === undefined) {
        c = categories.length;
        categories.push(p.category);
        catIndex.set(p.category, c);
      }
      return [p.phrase, c, p.severity, p.embedded ? 1 : 0, [...p.exclusions], [...p.languages]];
    }),
    skipped: m.skipped.map((s) => [s.index, s.text, s.reason]),
  };
  const json = new TextEncoder().encode(JSON.stringify(meta));
  const arrays: Arr[] = [
    m.engine.serialize(),
    m.patternPhrase, m.patternKind, m.patternWhole, m.patternLength,
    m.runIndex, m.runOffset, m.runValue, m.maxExclusionLength,
  ];
  const pad = (n: number): number => (n + 3) & ~3;
  let size = 20 + pad(json.length);
  for (const a of arrays) size += 4 + pad(a.byteLength);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  for (let k = 0; k < 8; k++) out[k] = MAGIC.charCodeAt(k);
  dv.setUint32(8, MATCHER_FORMAT_VERSION, true);
  dv.setUint32(12, NORMALIZER_VERSION, true);
  dv.setUint32(16, json.length, true);
  out.set(json, 20);
  let off = 20 + pad(json.length);
  for (const a of arrays) {
    dv.setUint32(off, a.byteLength, true);
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), off + 4);
    off += 4 + pad(a.byteLength);
  }
  return out;
}

export function loadMatcher(bytes: Uint8Array, opts: CompileOptions = {}): CompiledMatcher {
  if (!LITTLE_ENDIAN) throw new Error('Cannot load a matcher on a big-endian host');
  const fail = (why: string): never => {
    throw new MatcherFormatError(why);
  };
  if (bytes.length < 20) fail(`${bytes.length} bytes is too short`);
  for (let k = 0; k < 8; k++) if (bytes[k] !== MAGIC.charCodeAt(k)) fail('not a Hark compiled dictionary (bad magic)');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, true);
  if (version !== MATCHER_FORMAT_VERSION) fail(`format version ${version}, expected ${MATCHER_FORMAT_VERSION}`);
  const normVersion = dv.getUint32(12, true);
  if (normVersion !== NORMALIZER_VERSION) {
    fail(`compiled with normaliser version ${normVersion}, this sensor has ${NORMALIZER_VERSION}: recompile the dictionary`);
  }
  const jsonLen = dv.getUint32(16, true);
  if (20 + jsonLen > bytes.length) fail('metadata runs past the end');
  let meta: Meta;
  try {
    meta = JSON.parse(new TextDecoder().decode(bytes.subarray(20, 20 + jsonLen))) as Meta;
  } catch (e) {
    return fail(`metadata is not JSON (${(e as Error).message})`);
  }
  if (!meta || !Array.isArray(meta.phrases) || !Array.isArray(meta.categories) || !Array.isArray(meta.skipped)) {
    fail('metadata lacks phrases');
  }
  let off = 20 + ((jsonLen + 3) & ~3);
  const next = <T extends Arr>(ctor: { new (b: ArrayBuffer): T; BYTES_PER_ELEMENT: number }): T => {
    if (off + 4 > bytes.length) fail('array header runs past the end');
    const len = dv.getUint32(off, true);
    if (len % ctor.BYTES_PER_ELEMENT !== 0 || off + 4 + len > bytes.length) fail('array runs past the end');
    // a fresh copy, so the typed view is aligned and owns exactly these bytes (Buffer#slice would not)
    const copy = new Uint8Array(len);
    copy.set(bytes.subarray(off + 4, off + 4 + len));
    off += 4 + ((len + 3) & ~3);
    return new ctor(copy.buffer);
  };
  const dfaBytes = next(Uint8Array);
  const patternPhrase = next(Int32Array);
  const patternKind = next(Uint8Array);
  const patternWhole = next(Uint8Array);
  const patternLength = next(Uint16Array);
  const runIndex = next(Int32Array);
  const runOffset = next(Uint16Array);
  const runValue = next(Uint8Array);
  const maxExclusionLength = next(Uint16Array);

  const P = patternPhrase.length;
  const nPhrases = meta.phrases.length;
  if (patternKind.length !== P || patternWhole.length !== P
    || patternLength.length !== P || runIndex.length !== P + 1 || runOffset.length !== runValue.length
    || maxExclusionLength.length !== nPhrases || runIndex[P] !== runOffset.length) {
    fail('pattern tables disagree in length');
  }
  for (let p = 0; p < P; p++) {
    if (patternPhrase[p] < 0 || patternPhrase[p] >= nPhrases || patternKind[p] > 1 || patternLength[p] === 0
      || patternLength[p] > MAX_PATTERN_BYTES || runIndex[p] > runIndex[p + 1]) fail(`pattern ${p} is malformed`);
  }
  for (let k = 0; k < runOffset.length; k++) if (runValue[k] < 1 || runValue[k] > 3) fail('run profile is malformed');

  const phrases: Phrase[] = meta.phrases.map(([phrase, cat, severity, embedded, exclusions, languages]) => ({
    phrase, category: meta.categories[cat] ?? '', severity: severity as Phrase['severity'], embedded: embedded === 1,
    exclusions, languages,
  }));
  let engine: AcDfa;
  try {
    engine = deserializeAcDfa(dfaBytes, opts.denseCellBudget ?? DENSE_CELL_BUDGET);
  } catch (e) {
    if (e instanceof AcDfaFormatError) return fail(e.message);
    throw e;
  }
  if (engine.patternCount !== P) fail('automaton and pattern tables disagree');
  let maxPatternLength = 0;
  for (let p = 0; p < P; p++) if (patternLength[p] > maxPatternLength) maxPatternLength = patternLength[p];
  return {
    name: String(meta.name),
    phrases,
    engine,
    patternPhrase, patternKind, patternWhole, patternLength, runIndex, runOffset, runValue,
    maxExclusionLength,
    maxPatternLength,
    skipped: meta.skipped.map(([index, text, reason]) => ({ index, text, reason })),
  };
}

/** The literal byte patterns, in pattern-id order: what another engine (Hyperscan) compiles. */
export function matcherPatterns(m: CompiledMatcher): Uint8Array[] {
  return m.engine.patterns();
}

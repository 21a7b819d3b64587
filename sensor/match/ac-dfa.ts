/**
 * Pure-TypeScript match engine: Aho-Corasick compiled to a DFA over byte equivalence classes.
 * Input: literal byte patterns (`compile`) or the trie a compiled dictionary stores (`fromParts`).
 * Output: a MatchDatabase (engine.ts contract) reporting every occurrence of every pattern.
 * Layout: states are numbered breadth-first, so the children of each state are contiguous and the
 * trie needs one byte per state (edge class) plus a child count. The shallow states, where scanning
 * spends nearly all its time, get full transition rows in one Int32Array (a state's code is its row
 * offset, bitwise-inverted when it reports); deeper states get a compact record of their trie edges
 * and failure link (a hybrid), which bounds memory on 100k-phrase dictionaries. Scanning is bound by
 * memory latency, so long calls run two interleaved lanes (see AcDfaStream.scan).
 */
import { NO_MATCHES, type MatchDatabase, type MatchEngine, type MatchPairs, type MatchStream } from './engine.js';

/** Dense transition cells (Int32): 4 MiB, the ~37k shallowest states of a 28-class dictionary.
 * Measured on the 10k-phrase benchmark: as fast as fully dense (16 MiB) and half the memory; deeper,
 * rarely visited states use compact records, which keeps 100k-phrase dictionaries bounded too. */
export const DENSE_CELL_BUDGET = 1 << 20;

/** The serialisable trie: everything else is derived at load. States are in breadth-first order. */
export interface AcDfaParts {
  /** byte -> class; class 0 = the byte occurs in no pattern. */
  readonly byteClass: Uint8Array;
  readonly classCount: number;
  /** Per state: class of the edge from its parent (0 for the root). */
  readonly nodeClass: Uint8Array;
  /** Per state: number of children (the children of state s follow those of state s - 1). */
  readonly childCount: Uint8Array;
  /** Per pattern: the state where it ends. */
  readonly patternState: Int32Array;
}

export interface AcDfaStats {
  readonly states: number;
  readonly denseStates: number;
  readonly classes: number;
  /** Bytes of typed arrays held at run time. */
  readonly memoryBytes: number;
}

/** Thrown when serialised parts are inconsistent (a damaged or foreign artifact). */
export class AcDfaFormatError extends Error {
  readonly code = 'MATCH_DFA_FORMAT';
}

/** Bytes as a string of char codes 0-255, so patterns sort and compare natively. */
function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** Builds the breadth-first trie of the patterns (sorted insertion, no hash maps). */
export function buildTrie(patterns: readonly Uint8Array[]): AcDfaParts {
  const used = new Uint8Array(256);
  let total = 0;
  let maxLen = 0;
  for (const p of patterns) {
    if (p.length === 0) throw new Error('Cannot compile an empty pattern');
    for (let k = 0; k < p.length; k++) used[p[k]] = 1;
    total += p.length;
    if (p.length > maxLen) maxLen = p.length;
  }
  const byteClass = new Uint8Array(256);
  let classCount = 1;
  for (let b = 0; b < 256; b++) if (used[b]) byteClass[b] = classCount++;
  if (classCount > 256) throw new Error('Cannot compile patterns using all 256 byte values');

  // Sort the distinct keys natively (code-unit order = byte order); equal patterns share a state.
  const n = patterns.length;
  const keyOf: string[] = new Array(n);
  const firstWith = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const k = latin1(patterns[i]);
    keyOf[i] = k;
    if (!firstWith.has(k)) firstWith.set(k, i);
  }
  const keys = [...firstWith.keys()].sort();

  // Depth-first insertion of the sorted keys: each key shares its prefix with the previous one.
  const cap = total + 1;
  const dClass = new Uint8Array(cap);
  const dDepth = new Int32Array(cap);
  const dParent = new Int32Array(cap);
  const path = new Int32Array(maxLen + 1);
  const keyState = new Map<string, number>();
  let count = 1;
  let prev = '';
  for (const key of keys) {
    const lim = Math.min(prev.length, key.length);
    let l = 0;
    while (l < lim && prev.charCodeAt(l) === key.charCodeAt(l)) l++;
    for (let d = l + 1; d <= key.length; d++) {
      const id = count++;
      dClass[id] = byteClass[key.charCodeAt(d - 1)];
      dDepth[id] = d;
      dParent[id] = path[d - 1];
      path[d] = id;
    }
    keyState.set(key, path[key.length]);
    prev = key;
  }

  // Renumber breadth-first, stable in depth-first order: children of a state become contiguous.
  const pos = new Int32Array(maxLen + 2);
  for (let id = 0; id < count; id++) pos[dDepth[id] + 1]++;
  for (let d = 1; d < pos.length; d++) pos[d] += pos[d - 1];
  const newId = new Int32Array(count);
  for (let id = 0; id < count; id++) newId[id] = pos[dDepth[id]]++;
  const nodeClass = new Uint8Array(count);
  const childCount = new Uint8Array(count);
  for (let id = 0; id < count; id++) {
    nodeClass[newId[id]] = dClass[id];
    if (id > 0) childCount[newId[dParent[id]]]++;
  }
  const patternState = new Int32Array(n);
  for (let i = 0; i < n; i++) patternState[i] = newId[keyState.get(keyOf[i])!];
  return { byteClass, classCount, nodeClass, childCount, patternState };
}

export class AcDfa implements MatchDatabase {
  readonly parts: AcDfaParts;
  readonly patternCount: number;
  /** Bytes of typed arrays held at run time. */
  readonly size: number;
  /** A stream holds one state code and an offset. */
  readonly streamStateSize = 16;
  readonly stateCount: number;
  /** Longest pattern: the state after reading this many bytes from the root is exact. */
  readonly maxDepth: number;
  readonly denseStates: number;
  /** Codes below this are dense rows (code = state * classes); from it on, sparse records. */
  readonly denseLimit: number;
  readonly byteClass: Uint8Array;
  /** Dense rows: dense[code + class] = next code, bitwise-inverted when that state reports. */
  readonly dense: Int32Array;
  /** Sparse records, one per deep state at offset code - denseLimit:
   * [fail code, child count, state id, (class, next code) per child]. One cache line for most. */
  readonly records: Int32Array;
  private readonly classes: number;
  private readonly ownStart: Int32Array;
  private readonly ownList: Int32Array;
  private readonly dictLink: Int32Array;

  static compile(patterns: readonly Uint8Array[], denseCellBudget = DENSE_CELL_BUDGET): AcDfa {
    return new AcDfa(buildTrie(patterns), denseCellBudget);
  }

  static fromParts(parts: AcDfaParts, denseCellBudget = DENSE_CELL_BUDGET): AcDfa {
    return new AcDfa(parts, denseCellBudget);
  }

  private constructor(parts: AcDfaParts, denseCellBudget: number) {
    const { byteClass, classCount: C, nodeClass, childCount, patternState } = parts;
    const S = nodeClass.length;
    if (byteClass.length !== 256 || C < 1 || C > 256 || S < 1 || childCount.length !== S) {
      throw new AcDfaFormatError('Cannot load match automaton: inconsistent table sizes');
    }
    for (let b = 0; b < 256; b++) {
      if (byteClass[b] >= C) throw new AcDfaFormatError(`Cannot load match automaton: byte class ${byteClass[b]} out of range`);
    }
    const firstChild = new Int32Array(S + 1);
    firstChild[0] = 1;
    for (let s = 0; s < S; s++) {
      const c = childCount[s];
      if (c !== 0 && firstChild[s] <= s) throw new AcDfaFormatError('Cannot load match automaton: not breadth-first');
      firstChild[s + 1] = firstChild[s] + c;
    }
    if (firstChild[S] !== S) throw new AcDfaFormatError('Cannot load match automaton: child counts do not add up');
    for (let s = 1; s < S; s++) {
      if (nodeClass[s] === 0 || nodeClass[s] >= C) throw new AcDfaFormatError('Cannot load match automaton: edge class out of range');
    }
    for (let i = 0; i < patternState.length; i++) {
      if (patternState[i] <= 0 || patternState[i] >= S) throw new AcDfaFormatError('Cannot load match automaton: pattern state out of range');
    }

    const numDense = Math.min(S, Math.max(1, Math.floor(denseCellBudget / C)));
    const dense = new Int32Array(numDense * C);
    const fail = new Int32Array(S);
    const depth = new Int32Array(S);
    for (let s = 0; s < S; s++) for (let k = firstChild[s], e = firstChild[s + 1]; k < e; k++) depth[k] = depth[s] + 1;
    // Goto-or-fail transition on raw state ids; dense rows of states before s are complete.
    const delta = (f: number, c: number): number => {
      for (;;) {
        if (f < numDense) return dense[f * C + c];
        for (let k = firstChild[f], e = firstChild[f + 1]; k < e; k++) if (nodeClass[k] === c) return k;
        f = fail[f];
      }
    };
    // Failure links and dense rows (raw state ids for now), breadth-first: fail(s) precedes s.
    for (let s = 0; s < S; s++) {
      const a = firstChild[s];
      const b = firstChild[s + 1];
      if (s < numDense) {
        const row = s * C;
        if (s !== 0) {
          const fr = fail[s] * C;
          dense.copyWithin(row, fr, fr + C);
        }
        for (let k = a; k < b; k++) dense[row + nodeClass[k]] = k;
      }
      if (s === 0) continue;
      const f = fail[s];
      for (let k = a; k < b; k++) fail[k] = delta(f, nodeClass[k]);
    }

    // Outputs: patterns ending exactly at each state, plus a link to the nearest suffix state with some.
    const P = patternState.length;
    const ownStart = new Int32Array(S + 1);
    for (let i = 0; i < P; i++) ownStart[patternState[i] + 1]++;
    for (let s = 0; s < S; s++) ownStart[s + 1] += ownStart[s];
    const fill = ownStart.slice(0, S);
    const ownList = new Int32Array(P);
    for (let i = 0; i < P; i++) ownList[fill[patternState[i]]++] = i;
    const dictLink = new Int32Array(S);
    dictLink[0] = -1;
    for (let s = 1; s < S; s++) {
      const f = fail[s];
      dictLink[s] = ownStart[f + 1] > ownStart[f] ? f : dictLink[f];
    }

    // Codes: dense states by row offset, sparse states by record offset past the dense rows.
    const denseLimit = numDense * C;
    let recLen = 0;
    for (let s = numDense; s < S; s++) recLen += 3 + 2 * childCount[s];
    if (denseLimit + recLen > 0x7fffffff) throw new AcDfaFormatError('Cannot load match automaton: too large');
    const plain = new Int32Array(S);
    const enc = new Int32Array(S);
    for (let s = 0, r = 0; s < S; s++) {
      let code: number;
      if (s < numDense) code = s * C;
      else {
        code = denseLimit + r;
        r += 3 + 2 * childCount[s];
      }
      plain[s] = code;
      enc[s] = ownStart[s + 1] > ownStart[s] || dictLink[s] >= 0 ? ~code : code;
    }
    for (let k = 0; k < dense.length; k++) dense[k] = enc[dense[k]];
    const records = new Int32Array(recLen);
    for (let s = numDense, r = 0; s < S; s++) {
      records[r] = plain[fail[s]];
      records[r + 1] = childCount[s];
      records[r + 2] = s;
      let o = r + 3;
      for (let k = firstChild[s], e = firstChild[s + 1]; k < e; k++) {
        records[o++] = nodeClass[k];
        records[o++] = enc[k];
      }
      r = o;
    }

    this.parts = parts;
    this.patternCount = P;
    this.stateCount = S;
    this.maxDepth = depth[S - 1];
    this.denseStates = numDense;
    this.classes = C;
    this.denseLimit = denseLimit;
    this.byteClass = byteClass;
    this.dense = dense;
    this.records = records;
    this.ownStart = ownStart;
    this.ownList = ownList;
    this.dictLink = dictLink;
    this.size = dense.byteLength + records.byteLength + ownStart.byteLength + ownList.byteLength
      + dictLink.byteLength + nodeClass.byteLength + childCount.byteLength + patternState.byteLength
      + byteClass.byteLength;
  }

  /** Transition from a sparse state's code: its trie edges, else its failure chain down to a dense row. */
  sparseNext(code: number, c: number): number {
    const records = this.records;
    const limit = this.denseLimit;
    let r = code - limit;
    for (;;) {
      for (let k = r + 3, e = k + 2 * records[r + 1]; k < e; k += 2) if (records[k] === c) return records[k + 1];
      const f = records[r];
      if (f < limit) return this.dense[f + c];
      r = f - limit;
    }
  }

  /** Appends every pattern that ends in the state with this code to a lane's shared output. */
  report(code: number, endOffset: number, lane: LaneOut): void {
    let s = code < this.denseLimit ? code / this.classes : this.records[code - this.denseLimit + 2];
    const { ownStart, ownList, dictLink } = this;
    do {
      for (let k = ownStart[s], e = ownStart[s + 1]; k < e; k++) {
        if (lane.len + 2 > lane.pairs.length) {
          const bigger = new Uint32Array(lane.pairs.length * 2);
          bigger.set(lane.pairs);
          lane.pairs = bigger;
        }
        lane.pairs[lane.len++] = ownList[k];
        lane.pairs[lane.len++] = endOffset;
      }
      s = dictLink[s];
    } while (s >= 0);
  }

  openStream(): MatchStream {
    return new AcDfaStream(this);
  }

  stats(): AcDfaStats {
    return { states: this.stateCount, denseStates: this.denseStates, classes: this.classes, memoryBytes: this.size };
  }

  /** The trie (AcDfaParts) in a small binary form; `deserializeAcDfa` reads it back. */
  serialize(): Uint8Array {
    const p = this.parts;
    const arrays = [p.byteClass, p.nodeClass, p.childCount, p.patternState];
    let size = 16;
    for (const a of arrays) size += 4 + ((a.byteLength + 3) & ~3);
    const bytes = new Uint8Array(size);
    const dv = new DataView(bytes.buffer);
    for (let k = 0; k < 8; k++) bytes[k] = DFA_MAGIC.charCodeAt(k);
    dv.setUint32(8, DFA_FORMAT_VERSION, true);
    dv.setUint32(12, p.classCount, true);
    let off = 16;
    for (const a of arrays) {
      dv.setUint32(off, a.byteLength, true);
      bytes.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), off + 4);
      off += 4 + ((a.byteLength + 3) & ~3);
    }
    return bytes;
  }

  /** The literal byte patterns, rebuilt from the trie (to compile another engine over the same set). */
  patterns(): Uint8Array[] {
    const S = this.stateCount;
    const { childCount, nodeClass } = this.parts;
    const parent = new Int32Array(S);
    const depth = new Int32Array(S);
    for (let s = 0, k = 1; s < S; s++) {
      for (let e = k + childCount[s]; k < e; k++) {
        parent[k] = s;
        depth[k] = depth[s] + 1;
      }
    }
    const classByte = new Uint8Array(256);
    for (let b = 0; b < 256; b++) if (this.byteClass[b] !== 0) classByte[this.byteClass[b]] = b;
    const out: Uint8Array[] = [];
    for (const end of this.parts.patternState) {
      const p = new Uint8Array(depth[end]);
      for (let s = end, k = p.length - 1; s !== 0; s = parent[s], k--) p[k] = classByte[nodeClass[s]];
      out.push(p);
    }
    return out;
  }
}

/** Match pairs found by one lane during the scan call in progress (grown on demand). */
interface LaneOut {
  pairs: Uint32Array;
  len: number;
}
const laneA: LaneOut = { pairs: new Uint32Array(2048), len: 0 };
const laneB: LaneOut = { pairs: new Uint32Array(2048), len: 0 };

/** Below this many bytes per call, one lane: the second lane's warm-up would cost too much. */
const MIN_TWO_LANE_BYTES = 256;

class AcDfaStream implements MatchStream {
  private code = 0;
  /** Bytes scanned since open or reset. */
  private offset = 0;

  constructor(private readonly dfa: AcDfa) {}

  /**
   * The automaton is bound by memory latency (one dependent table load per byte), so a long call
   * runs two lanes in one loop: lane A from the stream's state over the first half, lane B from
   * the root starting maxDepth bytes before the second half (exact from there on, since a state
   * depends only on the last maxDepth bytes). Lane B reports only matches ending in its half.
   */
  scan(bytes: Uint8Array): MatchPairs {
    const dfa = this.dfa;
    const dense = dfa.dense;
    const byteClass = dfa.byteClass;
    const limit = dfa.denseLimit;
    const n = bytes.length;
    const base = this.offset + 1;
    const depth = dfa.maxDepth;
    laneA.len = 0;
    laneB.len = 0;
    let a = this.code;
    if (n < MIN_TWO_LANE_BYTES || n < 4 * depth) {
      for (let i = 0; i < n; i++) {
        const c = byteClass[bytes[i]];
        const e = a < limit ? dense[a + c] : dfa.sparseNext(a, c);
        if (e >= 0) a = e;
        else {
          a = ~e;
          dfa.report(a, (base + i) >>> 0, laneA);
        }
      }
      this.code = a;
    } else {
      const half = (n + depth + 1) >>> 1;
      const bStart = half - depth;
      const bLen = n - bStart;
      let b = 0;
      for (let k = 0; k < bLen; k++) {
        const ca = byteClass[bytes[k]];
        const j = bStart + k;
        const cb = byteClass[bytes[j]];
        const ea = a < limit ? dense[a + ca] : dfa.sparseNext(a, ca);
        const eb = b < limit ? dense[b + cb] : dfa.sparseNext(b, cb);
        if (ea >= 0) a = ea;
        else {
          a = ~ea;
          dfa.report(a, (base + k) >>> 0, laneA);
        }
        if (eb >= 0) b = eb;
        else {
          b = ~eb;
          if (j >= half) dfa.report(b, (base + j) >>> 0, laneB);
        }
      }
      for (let k = bLen; k < half; k++) {
        const c = byteClass[bytes[k]];
        const e = a < limit ? dense[a + c] : dfa.sparseNext(a, c);
        if (e >= 0) a = e;
        else {
          a = ~e;
          dfa.report(a, (base + k) >>> 0, laneA);
        }
      }
      this.code = b;
    }
    this.offset += n;
    const total = laneA.len + laneB.len;
    if (total === 0) return NO_MATCHES;
    const result = new Uint32Array(total);
    result.set(laneA.pairs.subarray(0, laneA.len));
    result.set(laneB.pairs.subarray(0, laneB.len), laneA.len);
    return result;
  }

  reset(): MatchPairs {
    this.code = 0;
    this.offset = 0;
    return NO_MATCHES;
  }

  close(): MatchPairs {
    this.code = 0;
    return NO_MATCHES;
  }
}

const DFA_MAGIC = 'HARKACDF';
const DFA_FORMAT_VERSION = 1;

/** Reads `AcDfa.serialize()` output; throws AcDfaFormatError on anything inconsistent. */
export function deserializeAcDfa(bytes: Uint8Array, denseCellBudget = DENSE_CELL_BUDGET): AcDfa {
  const bad = (why: string): never => {
    throw new AcDfaFormatError(`Cannot load match automaton: ${why}`);
  };
  if (bytes.length < 16) bad(`${bytes.length} bytes is too short`);
  for (let k = 0; k < 8; k++) if (bytes[k] !== DFA_MAGIC.charCodeAt(k)) bad('bad magic');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, true);
  if (version !== DFA_FORMAT_VERSION) bad(`format version ${version}, expected ${DFA_FORMAT_VERSION}`);
  const classCount = dv.getUint32(12, true);
  let off = 16;
  const next = (elementBytes: number): ArrayBuffer => {
    if (off + 4 > bytes.length) bad('truncated');
    const len = dv.getUint32(off, true);
    if (len % elementBytes !== 0 || off + 4 + len > bytes.length) bad('truncated');
    // a fresh copy, so the typed view is aligned and owns exactly these bytes (Buffer#slice would not)
    const copy = new Uint8Array(len);
    copy.set(bytes.subarray(off + 4, off + 4 + len));
    off += 4 + ((len + 3) & ~3);
    return copy.buffer;
  };
  const byteClass = new Uint8Array(next(1));
  const nodeClass = new Uint8Array(next(1));
  const childCount = new Uint8Array(next(1));
  const patternState = new Int32Array(next(4));
  return AcDfa.fromParts({ byteClass, classCount, nodeClass, childCount, patternState }, denseCellBudget);
}

/** The pure-TS engine: no native code, runs everywhere. */
export class PureTsEngine implements MatchEngine {
  readonly name = 'pure-ts';

  constructor(private readonly denseCellBudget = DENSE_CELL_BUDGET) {}

  compileLiterals(patterns: readonly Uint8Array[]): AcDfa {
    return AcDfa.compile(patterns, this.denseCellBudget);
  }

  deserialize(bytes: Uint8Array): AcDfa {
    return deserializeAcDfa(bytes, this.denseCellBudget);
  }
}

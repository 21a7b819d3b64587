/**
 * Match stage: the Hyperscan phrase engine (native addon in ./native) behind a small typed contract
 * that the pure-TS engine implements too. Input: normalised phrases (compiled at load) and stream
 * bytes. Output: per scan call, flat [patternId, endOffset, ...] pairs. Never throws on scanned
 * bytes. `loadHyperscan` returns a reason instead of an engine when the addon is not built or the
 * CPU cannot run Hyperscan (no SSSE3), so the caller falls back to the pure-TS engine.
 */

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { defineCounter, type Counters } from '../events/counters.js';
import type { NativeFolder } from '../normalize/text.js';
import { NO_MATCHES, type CompileOptions, type MatchDatabase, type MatchEngine, type MatchPairs, type MatchStream } from './engine.js';

/*
 * Engine contract (MatchEngine / MatchDatabase / MatchStream), the same for every engine:
 *
 * Patterns: `compileLiterals(patterns)` takes literal byte strings (already normalised: lower-case
 *   UTF-8); pattern id = array index. Matching is exact bytes (no case folding). Every pattern must
 *   be non-empty; Hyperscan also refuses patterns over 16,000 bytes. Duplicates are allowed and
 *   each id reports. Compilation happens at load; failures throw MatchCompileError.
 * Matches: every occurrence of every pattern, overlapping ones included ("aa" in "aaa" twice).
 *   Each is reported by the scan call that delivers its last byte, as the pair
 *   (patternId, endOffset): endOffset is the exclusive end, counted in bytes from stream open or
 *   the last reset(), modulo 2^32. (Past 4 GiB in one stream the offset wraps; the caller knows its
 *   stream position and every reported end lies in (position before call, position after call].)
 *   Order within a call: Hyperscan's (ascending end offset in practice; same-end order
 *   unspecified): compare as a set.
 * Results: scan/reset/close return a Uint32Array [id, end, id, end, ...] that belongs to the caller
 *   (a fresh array per call that found matches; the shared empty NO_MATCHES otherwise). At most
 *   MAX_MATCHES_PER_SCAN matches per call are returned, the first ones; the rest are counted in
 *   `match.hyperscan.matches_dropped` (no real dictionary gets near it).
 * reset(): forgets the stream's history (use it after a reassembly gap, so no phrase is matched
 *   across the hole); offsets restart at 0, exactly like a new stream. Returns end-of-stream
 *   matches (literal patterns have none, so it is empty).
 * close(): ends the stream and frees its state; returns end-of-stream matches (empty for
 *   literals). Closing again returns NO_MATCHES; scan or reset after close throws (caller bug).
 * serialize()/deserialize(): Hyperscan's own format, read back only by the same engine with the
 *   same Hyperscan version on a CPU that has the features it was compiled for (`portable: true`
 *   compiles for any SSSE3 x86-64; the default tunes for this host, AVX2 included).
 *
 * Threads and memory: a database and its streams belong to the thread (Node environment) that made
 *   them; another worker loads its own from serialize() bytes. Each environment keeps one Hyperscan
 *   scratch, grown to fit every database loaded in it (at compile/deserialize, so platform errors
 *   surface at load and the packet path never allocates it) and freed when the environment ends.
 *   Streams and databases not closed are freed by GC finalizers (the native side tells V8 their
 *   size); close() frees a stream's state at once and is preferred.
 *
 * Input bytes: scan() does not keep them; the caller may reuse the buffer once it returns.
 *
 * Text folding: the same addon carries the text normaliser's native ASCII fold loop
 *   (native/hark_fold.cc), exposed as `textFolder` on the engine and its databases: PhraseScanner
 *   hands it to the normaliser in front of this engine. Addons built before it have none, and the
 *   normaliser then folds in TypeScript (same output).
 *
 * Cost: scan() is one native call (~0.1 us of binding overhead). The native side copies the pairs
 *   into a per-thread output array that the wrapper passes in; only a call that found matches then
 *   allocates: one `slice` of exactly its pairs (measured ~0.1 us for one match, ~0.5 us for ten).
 *   Measured alternative: the native side creating the Uint32Array (napi_create_arraybuffer) cost
 *   ~0.6 us even for one match. Returning a view of the shared array would save the slice but hand
 *   callers a result that the next call overwrites; matches are rare in traffic, so safety wins.
 */

// The engine contract (MatchPairs, MatchStream, MatchDatabase, CompileOptions, MatchEngine,
// NO_MATCHES) is defined once, in engine.ts; the pure-TS engine implements the same one.
export type { CompileOptions, MatchDatabase, MatchEngine, MatchPairs, MatchStream } from './engine.js';
export { NO_MATCHES } from './engine.js';

/** Per-call match limit (8 bytes a match: 8 MiB). Must equal the native MAX_MATCHES_PER_SCAN. */
export const MAX_MATCHES_PER_SCAN = 1 << 20;


/** Pairs the per-thread output array holds: a call that finds more gets a one-off array. */
const OUTPUT_PAIRS = 1024;

/** A pattern set that cannot be compiled. `patternIndex` is -1 when no one pattern is at fault. */
export class MatchCompileError extends Error {
  readonly code = 'HS_COMPILER_ERROR';
  constructor(message: string, readonly patternIndex: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MatchCompileError';
  }
}

const C_MATCHES_DROPPED = defineCounter('match.hyperscan.matches_dropped');

/** Longest pattern excerpt quoted in a compile error message. */
const MAX_QUOTED_PATTERN_CHARS = 60;

// ---------- native binding ----------

declare const nativeDatabase: unique symbol;
declare const nativeStream: unique symbol;
type NativeDatabase = { readonly [nativeDatabase]: true };
type NativeStream = { readonly [nativeStream]: true };

/** What hark_hyperscan.cc exports (all synchronous, all on the calling thread). */
interface NativeBinding {
  compileLiterals(patterns: readonly Uint8Array[], portable: boolean): NativeDatabase;
  serialize(db: NativeDatabase): Uint8Array;
  deserialize(bytes: Uint8Array): NativeDatabase;
  /** [databaseBytes, streamStateBytes] */
  databaseSizes(db: NativeDatabase): [number, number];
  databaseInfo(db: NativeDatabase): string;
  openStream(db: NativeDatabase): NativeStream;
  /**
   * Number of matches found. The first min(found, MAX_MATCHES_PER_SCAN) are kept and copied into
   * `out` as far as it holds them (its contents are left alone when nothing was found).
   */
  scan(stream: NativeStream, bytes: Uint8Array, out: Uint32Array): number;
  reset(stream: NativeStream, out: Uint32Array): number;
  close(stream: NativeStream, out: Uint32Array): number;
  /** Copies the kept pairs of this thread's last scan/reset/close into `out`; returns how many. */
  takeMatches(out: Uint32Array): number;
  validPlatform(): boolean;
  version(): string;
  /** [databases, streams] alive in the process (leak tests). */
  liveCounts(): [number, number];
  readonly MAX_MATCHES_PER_SCAN: number;
  /** The text normaliser's native ASCII fold loop (hark_fold.cc); absent from addons built before it. */
  readonly configureFold?: NativeFolder['configureFold'];
  readonly foldRun?: NativeFolder['foldRun'];
}

const ADDON_FILE = 'build/Release/hark_hyperscan.node';

/**
 * The addon's source folder (binding.gyp): sensor/match/native of the repository, found from this
 * module whether it runs compiled (dist/sensor/match/) or from source (sensor/match/).
 */
export function hyperscanNativeDir(): string {
  const candidates = [
    fileURLToPath(new URL('../../../sensor/match/native/', import.meta.url)),
    fileURLToPath(new URL('./native/', import.meta.url)),
  ];
  return candidates.find((d) => existsSync(d + 'binding.gyp')) ?? candidates[0];
}

/**
 * Names another build of the addon to load instead of the one in build/Release: the sanitizer
 * run (appliance/sanitize.sh) points it at its AddressSanitizer + UBSan build, loaded into plain
 * node with libasan preloaded. Unset in production: the normal build is loaded.
 */
export const HYPERSCAN_ADDON_ENV = 'HARK_HYPERSCAN_ADDON';

/** Path of the addon to load (it may not exist yet): $HARK_HYPERSCAN_ADDON when set, else the normal build. */
export function hyperscanAddonPath(): string {
  const override = process.env[HYPERSCAN_ADDON_ENV];
  return override !== undefined && override !== '' ? override : hyperscanNativeDir() + ADDON_FILE;
}

/** Hyperscan's only hard CPU requirement is SSSE3: check before loading code built for it. */
function cpuLacksSsse3(): string | undefined {
  if (process.arch !== 'x64') return `Hyperscan needs an x86-64 CPU (this is ${process.arch})`;
  let cpuinfo: string;
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'latin1');
  } catch {
    return undefined; // no /proc: let hs_valid_platform() decide after loading
  }
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo);
  if (flags && !flags[1].split(/\s+/).includes('ssse3')) return 'Hyperscan needs SSSE3: this CPU lacks it';
  return undefined;
}

let binding: NativeBinding | undefined;
/** This thread's output array for every stream of every engine: each call's pairs are sliced out
 *  of it before the call returns, so sharing is safe (calls are synchronous). */
const output = new Uint32Array(2 * OUTPUT_PAIRS);

type BindingLoad = { binding: NativeBinding; reason?: undefined } | { binding?: undefined; reason: string };

function loadBinding(): BindingLoad {
  if (binding) return { binding };
  const cpu = cpuLacksSsse3();
  if (cpu) return { reason: cpu };
  const file = hyperscanAddonPath();
  if (!existsSync(file)) {
    return {
      reason: `Hyperscan addon not built: ${file} is missing (build it: node-gyp rebuild -C ${hyperscanNativeDir()})`,
    };
  }
  let b: NativeBinding;
  try {
    b = createRequire(import.meta.url)(file) as NativeBinding;
  } catch (err) {
    return { reason: `Cannot load Hyperscan addon "${file}": ${(err as Error).message}` };
  }
  if (!b.validPlatform()) {
    return { reason: `Hyperscan ${b.version()} cannot run on this CPU (hs_valid_platform failed)` };
  }
  if (b.MAX_MATCHES_PER_SCAN !== MAX_MATCHES_PER_SCAN) {
    return { reason: `Hyperscan addon "${file}" is stale (match limit ${b.MAX_MATCHES_PER_SCAN}): rebuild it` };
  }
  binding = b;
  return { binding };
}

// ---------- engine ----------

export type HyperscanLoad =
  | { engine: HyperscanEngine; reason?: undefined }
  | { engine?: undefined; reason: string };

/**
 * Loads the native engine for this thread. Never throws: on failure returns the reason (log it
 * and use the pure-TS engine). A failed load is not remembered, so building the addon and calling
 * again works.
 */
export function loadHyperscan(counters: Counters): HyperscanLoad {
  const loaded = loadBinding();
  if (!loaded.binding) return { reason: loaded.reason };
  return { engine: new HyperscanEngine(loaded.binding, counters) };
}

export class HyperscanEngine implements MatchEngine {
  readonly name = 'hyperscan';
  /** Hyperscan's version string, e.g. "5.4.0 2021-01-26". */
  readonly version: string;
  /** The addon's native text fold loop, handed to the normaliser of every stream of this engine. */
  readonly textFolder: NativeFolder | undefined;

  constructor(
    private readonly native: NativeBinding,
    private readonly counters: Counters,
  ) {
    this.version = native.version();
    const { configureFold, foldRun } = native;
    this.textFolder = configureFold !== undefined && foldRun !== undefined ? (native as NativeBinding & NativeFolder) : undefined;
  }

  compileLiterals(patterns: readonly Uint8Array[], options: CompileOptions = {}): HyperscanDatabase {
    let handle: NativeDatabase;
    try {
      handle = this.native.compileLiterals(patterns, options.portable === true);
    } catch (err) {
      const e = err as Error & { code?: string; patternIndex?: number };
      if (e.code !== 'HS_COMPILER_ERROR') throw err;
      const index = e.patternIndex ?? -1;
      const which =
        index >= 0 && index < patterns.length
          ? `pattern ${index} (${quotePattern(patterns[index])})`
          : `${patterns.length} patterns`;
      throw new MatchCompileError(`Cannot compile Hyperscan database from ${which}: ${e.message}`, index, {
        cause: err,
      });
    }
    return new HyperscanDatabase(this, this.native, handle);
  }

  deserialize(bytes: Uint8Array): HyperscanDatabase {
    let handle: NativeDatabase;
    try {
      handle = this.native.deserialize(bytes);
    } catch (err) {
      const e = err as Error & { code?: string };
      const out = new Error(`Cannot load Hyperscan database (${bytes.length} bytes): ${e.message}`, { cause: err });
      (out as Error & { code?: string }).code = e.code;
      throw out;
    }
    return new HyperscanDatabase(this, this.native, handle);
  }

  /** [databases, streams] not yet freed in this process (for leak tests). */
  liveCounts(): [number, number] {
    return this.native.liveCounts();
  }

  /** The pairs of a native call that found `found` (> 0) matches, counting any dropped. */
  collect(found: number): MatchPairs {
    const kept = found < MAX_MATCHES_PER_SCAN ? found : MAX_MATCHES_PER_SCAN;
    if (found > kept) this.counters.inc(C_MATCHES_DROPPED, found - kept);
    if (kept <= OUTPUT_PAIRS) return output.slice(0, 2 * kept);
    const pairs = new Uint32Array(2 * kept);
    this.native.takeMatches(pairs);
    return pairs;
  }
}

export class HyperscanDatabase implements MatchDatabase {
  readonly size: number;
  readonly streamStateSize: number;
  readonly textFolder: NativeFolder | undefined;

  constructor(
    private readonly engine: HyperscanEngine,
    private readonly native: NativeBinding,
    private readonly handle: NativeDatabase,
  ) {
    [this.size, this.streamStateSize] = native.databaseSizes(handle);
    this.textFolder = engine.textFolder;
  }

  /** Hyperscan's description, e.g. "Version: 5.4.0 Features: AVX2 Mode: STREAM". */
  get info(): string {
    return this.native.databaseInfo(this.handle);
  }

  serialize(): Uint8Array {
    return this.native.serialize(this.handle);
  }

  openStream(): HyperscanStream {
    return new HyperscanStream(this.engine, this.native, this.native.openStream(this.handle));
  }
}

export class HyperscanStream implements MatchStream {
  constructor(
    private readonly engine: HyperscanEngine,
    private readonly native: NativeBinding,
    private readonly handle: NativeStream,
  ) {}

  scan(bytes: Uint8Array): MatchPairs {
    const found = this.native.scan(this.handle, bytes, output);
    return found === 0 ? NO_MATCHES : this.engine.collect(found);
  }

  reset(): MatchPairs {
    const found = this.native.reset(this.handle, output);
    return found === 0 ? NO_MATCHES : this.engine.collect(found);
  }

  close(): MatchPairs {
    const found = this.native.close(this.handle, output);
    return found === 0 ? NO_MATCHES : this.engine.collect(found);
  }
}

function quotePattern(p: Uint8Array): string {
  const text = new TextDecoder().decode(p.subarray(0, MAX_QUOTED_PATTERN_CHARS * 4));
  const cut = text.length > MAX_QUOTED_PATTERN_CHARS ? text.slice(0, MAX_QUOTED_PATTERN_CHARS) + '...' : text;
  return `${JSON.stringify(cut)}, ${p.length} bytes`;
}

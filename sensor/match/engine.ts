/**
 * Match engine contract (match stage): literal byte patterns found in byte streams. Input: patterns
 * and stream bytes, both the normalised skeleton (sensor/normalize/text.ts). Output: every
 * occurrence of every pattern as (patternId, endOffset) pairs. Implemented by the pure-TS
 * Aho-Corasick DFA (ac-dfa.ts) and by the native Hyperscan engine (hyperscan.ts, same shapes):
 * both see the same bytes, so both report the same matches.
 *
 * Patterns: `compileLiterals(patterns)`; pattern id = array index; exact bytes, non-empty,
 *   duplicates allowed (each id reports).
 * Matches: every occurrence, overlapping ones included ("aa" in "aaa" twice), reported by the scan
 *   call that delivers the last byte, as (patternId, endOffset): endOffset is the exclusive end in
 *   bytes from stream open or the last reset(), modulo 2^32. Within one call, ascending endOffset;
 *   same-end order unspecified.
 * Results: a Uint32Array [id, end, id, end, ...] owned by the caller, or the shared empty NO_MATCHES.
 * reset(): forgets the stream (after a gap: nothing matches across it); offsets restart at 0.
 * close(): ends the stream; scan after close is a caller bug.
 */
import type { NativeFolder } from '../normalize/text.js';

/** Flat [patternId, endOffset, ...] pairs. */
export type MatchPairs = Uint32Array;

/** Returned by calls that found nothing (length 0, frozen: safe to share). */
export const NO_MATCHES: MatchPairs = Object.freeze(new Uint32Array(0)) as MatchPairs;

export interface MatchStream {
  /** Scans the next bytes of the stream; returns the matches that end inside them. */
  scan(bytes: Uint8Array): MatchPairs;
  /** Forgets the stream's history (after a gap); offsets restart at 0. */
  reset(): MatchPairs;
  /** Ends the stream, frees its state; returns end-of-stream matches (none for literals). */
  close(): MatchPairs;
}

export interface MatchDatabase {
  /** Bytes of the compiled database. */
  readonly size: number;
  /** A native text fold loop that ships with this engine (Hyperscan's addon), for the normaliser in
   * front of it; absent for the pure-TS engine. */
  readonly textFolder?: NativeFolder;
  /** Bytes of state each open stream holds. */
  readonly streamStateSize: number;
  serialize(): Uint8Array;
  openStream(): MatchStream;
}

export interface CompileOptions {
  /** Engines with CPU-specific code compile for any CPU of the family; others ignore it. */
  portable?: boolean;
}

export interface MatchEngine {
  readonly name: string;
  compileLiterals(patterns: readonly Uint8Array[], options?: CompileOptions): MatchDatabase;
  deserialize(bytes: Uint8Array): MatchDatabase;
}

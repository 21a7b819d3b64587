/**
 * Dictionary compiler (`hark dictionary compile`). Input: a Dictionary object (read by rules/csv.ts
 * or rules/pack.ts). Output: the compiled matcher artifact sensor/match loads (loadMatcher), written
 * atomically (temporary file + rename, mode 0644), and figures about it.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Dictionary } from './dictionary.js';
import { compileDictionary, matcherStats, serializeMatcher, type SkippedPhrase } from '../sensor/match/matcher.js';

export interface CompileStats {
  readonly phrases: number;
  /** Phrase and exclusion patterns in the automaton. */
  readonly patterns: number;
  readonly states: number;
  readonly denseStates: number;
  /** Size of the written artifact. */
  readonly bytes: number;
  readonly bytesPerPhrase: number;
  /** Compile + serialise + write time. */
  readonly ms: number;
  readonly skipped: readonly SkippedPhrase[];
}

/** Typed error for the operator: the action, the path, the cause. */
export class DictionaryCompileError extends Error {
  readonly code = 'E_DICTIONARY_COMPILE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export async function compileDictionaryFile(dictionary: Dictionary, outPath: string): Promise<CompileStats> {
  const t0 = performance.now();
  const m = compileDictionary(dictionary);
  const bytes = serializeMatcher(m);
  const tmp = path.join(path.dirname(outPath), `.${path.basename(outPath)}.${process.pid}.tmp`);
  try {
    await fsp.writeFile(tmp, bytes, { mode: 0o644 });
    await fsp.rename(tmp, outPath);
  } catch (e) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    const code = (e as NodeJS.ErrnoException).code;
    throw new DictionaryCompileError(
      `Cannot write compiled dictionary "${outPath}": ${code === 'EISDIR' ? 'is a directory' : code ?? (e as Error).message}`,
      { cause: e },
    );
  }
  const st = matcherStats(m);
  return {
    phrases: st.phrases,
    patterns: st.patterns,
    states: st.states,
    denseStates: st.denseStates,
    bytes: bytes.length,
    bytesPerPhrase: st.phrases === 0 ? 0 : bytes.length / st.phrases,
    ms: performance.now() - t0,
    skipped: m.skipped,
  };
}

/**
 * Dictionary checking and strict loading: reads a .csv or .json dictionary, adds the checks that
 * span rows (duplicates, conflicting duplicates), and reports every problem with its line.
 * Output: `checkDictionary` returns the usable phrases plus all problems; `loadDictionary` returns
 * the dictionary only when there is no error, else throws DictionaryError listing the problems.
 */

import { readFileSync, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { parseCsvDictionary } from './csv.js';
import type { Dictionary, Phrase } from './dictionary.js';
import { parsePackDictionary } from './pack.js';
import {
  categoryKey, matchForm, matchKey, matchText, MAX_DICTIONARY_BYTES, phraseKey, quote,
  type DictionaryProblem, type LocatedPhrase, type ReadResult,
} from './problems.js';

export { MAX_PHRASE_CHARS, MAX_PHRASES, MAX_DICTIONARY_BYTES, matchForm, matchKey, phraseKey } from './problems.js';
export type { DictionaryProblem } from './problems.js';

export type DictionaryFormat = 'csv' | 'json';

export type DictionaryErrorCode =
  | 'E_DICTIONARY_INVALID'
  | 'E_DICTIONARY_READ'
  | 'E_DICTIONARY_FORMAT'
  | 'E_DICTIONARY_TOO_LARGE';

/** Operational or validation failure of a dictionary file; `code` is stable for callers. */
export class DictionaryError extends Error {
  override readonly name = 'DictionaryError';

  constructor(
    readonly code: DictionaryErrorCode,
    message: string,
    readonly file: string,
    readonly problems: readonly DictionaryProblem[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface CheckResult {
  /** The usable phrases: rows with errors and later copies of duplicates are left out. */
  readonly dictionary: Dictionary;
  /** Every problem, sorted by line; nothing is left out. */
  readonly problems: readonly DictionaryProblem[];
  readonly errors: number;
  readonly warnings: number;
  /** Line of each phrase in `dictionary.phrases` (same index). */
  readonly lines: readonly number[];
}

/** The format a path's extension names, or undefined. */
export function dictionaryFormat(path: string): DictionaryFormat | undefined {
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.json') return 'json';
  return undefined;
}

const keyOf = (text: string): string => matchKey(matchForm(text));

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length === 0 && b.length === 0) return true;
  const ka = [...new Set(a.map(keyOf))].sort();
  const kb = [...new Set(b.map(keyOf))].sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i]);
}

/**
 * Cross-row checks. Two rows are the same phrase when the matcher reads them the same (this folds
 * case, spacing and invisible characters, and also punctuation and leet: "AK-47" is "AK47").
 * The first row wins; a later one is a warning when it says the same thing and an error (naming
 * both lines) when its severity, category, embedded flag or exclusions differ. Pushes problems;
 * returns the rows kept.
 */
export function checkDuplicates(entries: readonly LocatedPhrase[], problems: DictionaryProblem[]): LocatedPhrase[] {
  const first = new Map<string, LocatedPhrase>();
  const kept: LocatedPhrase[] = [];
  for (const entry of entries) {
    const key = entry.key ?? keyOf(entry.phrase.phrase);
    const earlier = first.get(key);
    if (earlier === undefined) {
      first.set(key, entry);
      kept.push(entry);
      continue;
    }
    const a: Phrase = earlier.phrase;
    const b: Phrase = entry.phrase;
    const differences: string[] = [];
    if (a.severity !== b.severity) differences.push(`severity ${b.severity} here, ${a.severity} there`);
    if (categoryKey(a.category) !== categoryKey(b.category)) differences.push(`category ${quote(b.category)} here, ${quote(a.category)} there`);
    if (a.embedded !== b.embedded) differences.push(`${b.embedded ? 'embedded' : 'whole-word'} here, ${a.embedded ? 'embedded' : 'whole-word'} there`);
    if (!sameSet(a.exclusions, b.exclusions)) differences.push('different exclusions');
    const sameSpelling = phraseKey(a.phrase) === phraseKey(b.phrase);
    const same = sameSpelling
      ? `is also on line ${earlier.line}`
      : `matches the same text as ${quote(a.phrase)} on line ${earlier.line} (both read ${quote(matchText(matchForm(b.phrase)))})`;
    if (differences.length > 0) {
      problems.push({
        line: entry.line, relatedLine: earlier.line, level: 'error', code: 'duplicate.conflict',
        reason: `phrase ${quote(b.phrase)} ${same} with a conflict: ${differences.join('; ')}`,
      });
    } else {
      problems.push({
        line: entry.line, relatedLine: earlier.line, level: 'warning', code: 'duplicate.exact',
        reason: sameSpelling
          ? `phrase ${quote(b.phrase)} repeats line ${earlier.line} exactly; this copy is ignored`
          : `phrase ${quote(b.phrase)} ${same}; this copy is ignored`,
      });
    }
  }
  return kept;
}

function finish(read: ReadResult): CheckResult {
  const problems = [...read.problems];
  const kept = checkDuplicates(read.entries, problems);
  problems.sort((x, y) => x.line - y.line || (x.column ?? 0) - (y.column ?? 0));
  let errors = 0;
  for (const p of problems) if (p.level === 'error') errors++;
  return {
    dictionary: { name: read.name, phrases: kept.map((e) => e.phrase) },
    problems,
    errors,
    warnings: problems.length - errors,
    lines: kept.map((e) => e.line),
  };
}

/** Checks dictionary content already in memory (a download, a test). `name` names the dictionary. */
export function checkDictionarySource(source: Uint8Array | string, format: DictionaryFormat, name: string): CheckResult {
  return finish(format === 'csv' ? parseCsvDictionary(source, name) : parsePackDictionary(source, name));
}

/** Whether `path` is a directory; false when it cannot be looked at (reading it then says why). */
function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Reads and checks a dictionary file by extension (.csv, .json). Content problems come back in the
 * result; only an unreadable, unknown-format or oversized file throws DictionaryError.
 */
export function checkDictionary(path: string): CheckResult {
  // A directory's extension ("" for /tmp, ".csv" for a folder so named) says nothing about it.
  if (isDirectory(path)) throw new DictionaryError('E_DICTIONARY_READ', `Cannot read dictionary "${path}": is a directory`, path);
  const format = dictionaryFormat(path);
  if (format === undefined) {
    throw new DictionaryError('E_DICTIONARY_FORMAT', `Cannot read dictionary "${path}": extension "${extname(path)}" is neither .csv nor .json`, path);
  }
  let bytes: Buffer;
  try {
    const size = statSync(path).size;
    if (size > MAX_DICTIONARY_BYTES) {
      throw new DictionaryError('E_DICTIONARY_TOO_LARGE', `Cannot read dictionary "${path}": ${size} bytes is more than the ${MAX_DICTIONARY_BYTES}-byte limit`, path);
    }
    bytes = readFileSync(path);
  } catch (err) {
    if (err instanceof DictionaryError) throw err;
    const reason = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new DictionaryError('E_DICTIONARY_READ', `Cannot read dictionary "${path}": ${reason}`, path, [], { cause: err });
  }
  return checkDictionarySource(bytes, format, basename(path, extname(path)));
}

/**
 * Strict load for the sensor and the compiler: the dictionary when it has no errors (warnings are
 * allowed), otherwise DictionaryError 'E_DICTIONARY_INVALID' carrying every problem.
 */
export function loadDictionary(path: string): Dictionary {
  const result = checkDictionary(path);
  if (result.errors > 0) {
    const firstError = result.problems.find((p) => p.level === 'error') as DictionaryProblem;
    throw new DictionaryError(
      'E_DICTIONARY_INVALID',
      `Cannot load dictionary "${path}": ${result.errors} error${result.errors === 1 ? '' : 's'}, first ${formatProblems([firstError], path)}`,
      path,
      result.problems,
    );
  }
  return result.dictionary;
}

/**
 * One line per problem, compiler style: `rules/x.csv:12: severity "7" is not 1-5`, with the column
 * when known (`pack.json:4:17: ...`) and `warning: ` before warnings. Lines joined with "\n".
 */
export function formatProblems(problems: readonly DictionaryProblem[], file: string): string {
  return problems
    .map((p) => `${file}:${p.line}${p.column !== undefined ? `:${p.column}` : ''}: ${p.level === 'warning' ? 'warning: ' : ''}${p.reason}`)
    .join('\n');
}

/**
 * The body of `hark dictionary check FILE`: writes every problem, then a summary line, through
 * `write` (one call per line, no newline). Returns the exit code: 1 when there is any error, 0
 * otherwise (warnings alone do not fail). A file that cannot be read at all (missing, a directory,
 * an unknown extension, too large) throws its DictionaryError: there is no problem list to write,
 * and the caller reports it where errors go.
 */
export function runDictionaryCheck(path: string, write: (line: string) => void): number {
  const result = checkDictionary(path);
  for (const line of formatProblems(result.problems, path).split('\n')) if (line.length > 0) write(line);
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  write(`${path}: ${plural(result.dictionary.phrases.length, 'phrase')}, ${plural(result.errors, 'error')}, ${plural(result.warnings, 'warning')}`);
  return result.errors > 0 ? 1 : 0;
}

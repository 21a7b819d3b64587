import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import {
  checkDictionary, checkDictionarySource, checkDuplicates, DictionaryError, dictionaryFormat,
  formatProblems, loadDictionary, runDictionaryCheck,
} from '../../rules/check.js';
import type { DictionaryProblem } from '../../rules/problems.js';

const fixturePath = (name: string): string =>
  fileURLToPath(new URL(`../../../test/fixtures/rules/${name}`, import.meta.url));

const HEADER = 'phrase,category,severity,embedded,exclusions\n';

function codesByLine(problems: readonly DictionaryProblem[]): [number, string, string][] {
  return problems.map((p) => [p.line, p.level, p.code]);
}

test('checkDictionary reports every bad row of bad.csv in line order, with duplicates', () => {
  const result = checkDictionary(fixturePath('bad.csv'));
  assert.deepEqual(codesByLine(result.problems), [
    [3, 'error', 'phrase.empty'],
    [4, 'error', 'phrase.no_letters'],
    [5, 'error', 'severity.missing'],
    [6, 'error', 'severity.range'],
    [7, 'error', 'severity.not_integer'],
    [8, 'error', 'embedded.unknown'],
    [9, 'error', 'category.missing'],
    [10, 'error', 'phrase.too_long'],
    [11, 'warning', 'exclusion.not_covering'],
    [12, 'error', 'csv.field_count'],
    [15, 'warning', 'duplicate.exact'],
    [16, 'error', 'duplicate.conflict'],
    [17, 'error', 'csv.quote_stray'],
    [18, 'warning', 'language.malformed'],
  ]);
  assert.equal(result.errors, 11);
  assert.equal(result.warnings, 3);
  assert.equal(result.dictionary.name, 'bad');
  assert.deepEqual(result.dictionary.phrases.map((p) => p.phrase), ['kill myself', 'shoot', 'a phrase over\ntwo lines', 'heroin']);
  assert.deepEqual(result.lines, [2, 11, 13, 18]);
});

test('checkDuplicates names both lines and each conflicting field', () => {
  const { problems, dictionary } = checkDictionary(fixturePath('duplicates.csv'));
  assert.deepEqual(problems.map((p) => [p.line, p.relatedLine, p.level, p.reason]), [
    [4, 2, 'warning', 'phrase "Our  Secret" repeats line 2 exactly; this copy is ignored'],
    [5, 3, 'error', 'phrase "ak47" is also on line 3 with a conflict: category "violence" here, "weapons" there'],
    [6, 2, 'error', 'phrase "our secret" is also on line 2 with a conflict: severity 5 here, 4 there'],
    [7, 3, 'error', 'phrase "AK47" is also on line 3 with a conflict: embedded here, whole-word there'],
    [9, 8, 'error', 'phrase "KILL" is also on line 8 with a conflict: different exclusions'],
    [10, 8, 'warning', 'phrase "kill" repeats line 8 exactly; this copy is ignored'],
  ]);
  assert.deepEqual(dictionary.phrases.map((p) => p.phrase), ['our secret', 'AK47', 'kill']);
});

test('checkDuplicates treats spellings the matcher reads the same as one phrase', () => {
  const text = HEADER + ['AK47,weapons,4,no,', 'AK-47,weapons,4,no,', 'ak 47,weapons,5,no,', 'k1ll,violence,2,no,', 'kill,violence,2,no,', 'kil,violence,2,no,'].join('\n');
  const { problems, dictionary } = checkDictionarySource(text, 'csv', 't');
  assert.deepEqual(problems.map((p) => [p.line, p.relatedLine, p.level, p.reason]), [
    [3, 2, 'warning', 'phrase "AK-47" matches the same text as "AK47" on line 2 (both read "ak 47"); this copy is ignored'],
    [4, 2, 'error', 'phrase "ak 47" matches the same text as "AK47" on line 2 (both read "ak 47") with a conflict: severity 5 here, 4 there'],
    [6, 5, 'warning', 'phrase "kill" matches the same text as "k1ll" on line 5 (both read "kil"); this copy is ignored'],
  ]);
  assert.deepEqual(dictionary.phrases.map((p) => p.phrase), ['AK47', 'k1ll', 'kil'], '"kil" differs from "kill" by its letter run');
});

test('checkDuplicates reports severity and category together when both differ', () => {
  const problems: DictionaryProblem[] = [];
  const base = { embedded: false, exclusions: [], languages: [] };
  const kept = checkDuplicates([
    { line: 4, phrase: { ...base, phrase: 'our secret', category: 'grooming', severity: 4 } },
    { line: 9, phrase: { ...base, phrase: 'OUR SECRET', category: 'sexual', severity: 2 } },
  ], problems);
  assert.equal(kept.length, 1);
  assert.equal(problems[0].reason, 'phrase "OUR SECRET" is also on line 4 with a conflict: severity 2 here, 4 there; category "sexual" here, "grooming" there');
});

test('checkDictionary finds duplicates in a pack and reports the lines of the phrase objects', () => {
  const result = checkDictionary(fixturePath('bad-schema.json'));
  const dup = result.problems.find((p) => p.code === 'duplicate.conflict');
  assert.deepEqual([dup?.line, dup?.relatedLine], [28, 10]);
  assert.equal(result.errors, 16);
  assert.equal(result.warnings, 0);
});

test('checkDictionary warns when an exclusion cannot cancel its phrase', () => {
  const text = HEADER + [
    'gun,weapons,2,no,glue gun|gunmetal|GUN',
    'heroin,drugs,4,yes,heroine|heroics',
    'kill,violence,2,no,skill',
    '#proana,self-harm,4,no,#proana tips|my#proana',
  ].join('\n');
  const result = checkDictionarySource(text, 'csv', 't');
  assert.deepEqual(result.problems.map((p) => [p.line, p.level, p.code, p.reason]), [
    [2, 'warning', 'exclusion.not_covering', 'exclusion "gunmetal" does not contain, as whole words, the phrase "gun", so it can never cancel it'],
    [2, 'warning', 'exclusion.equals_phrase', 'exclusion "GUN" is the phrase itself to the matcher, so it cancels every match'],
    [3, 'warning', 'exclusion.not_covering', 'exclusion "heroics" does not contain the phrase "heroin", so it can never cancel it'],
    [4, 'warning', 'exclusion.not_covering', 'exclusion "skill" does not contain, as whole words, the phrase "kill", so it can never cancel it'],
  ]);
  assert.equal(result.errors, 0);
  assert.equal(result.dictionary.phrases.length, 4, 'warnings do not drop a phrase');
});

test('loadDictionary throws E_DICTIONARY_INVALID carrying every problem when there is an error', () => {
  const path = fixturePath('bad.csv');
  assert.throws(() => loadDictionary(path), (err: unknown) => {
    assert.ok(err instanceof DictionaryError);
    assert.equal(err.code, 'E_DICTIONARY_INVALID');
    assert.equal(err.file, path);
    assert.equal(err.problems.length, 14);
    assert.equal(err.message, `Cannot load dictionary "${path}": 11 errors, first ${path}:3: phrase is empty`);
    return true;
  });
});

test('loadDictionary returns the dictionary when there are only warnings', () => {
  const dictionary = loadDictionary(fixturePath('good.csv'));
  assert.equal(dictionary.name, 'good');
  assert.equal(dictionary.phrases.length, 9);
  const pack = loadDictionary(fixturePath('good.json'));
  assert.equal(pack.name, 'fixture-good');
  assert.equal(pack.phrases.length, 5);
});

test('loadDictionary refuses a pack with a syntax error', () => {
  assert.throws(() => loadDictionary(fixturePath('syntax.json')), (err: unknown) => {
    assert.ok(err instanceof DictionaryError);
    assert.equal(err.code, 'E_DICTIONARY_INVALID');
    assert.deepEqual(err.problems.map((p) => [p.line, p.column]), [[6, 5]]);
    return true;
  });
});

test('checkDictionary throws typed errors for an unknown extension and an unreadable file', () => {
  assert.throws(() => checkDictionary('rules/words.txt'), (err: unknown) => err instanceof DictionaryError && err.code === 'E_DICTIONARY_FORMAT' && /"\.txt" is neither/.test(err.message));
  assert.throws(() => checkDictionary('/nonexistent/hark/words.csv'), (err: unknown) => err instanceof DictionaryError && err.code === 'E_DICTIONARY_READ' && /ENOENT/.test(err.message) && err.cause !== undefined);
});

test('checkDictionary says a directory is one, before looking at its extension', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hark-dict-'));
  try {
    const named = join(dir, 'words.csv');
    mkdirSync(named);
    for (const path of [dir, named]) {
      assert.throws(() => checkDictionary(path), (err: unknown) => err instanceof DictionaryError && err.code === 'E_DICTIONARY_READ'
        && err.message === `Cannot read dictionary "${path}": is a directory`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('checkDictionary reads upper-case extensions and names the dictionary after the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hark-dict-'));
  try {
    const path = join(dir, 'School List.CSV');
    writeFileSync(path, HEADER + 'AK47,weapons,4,no,\n');
    const result = checkDictionary(path);
    assert.equal(result.dictionary.name, 'School List');
    assert.equal(result.errors, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dictionaryFormat maps extensions case-insensitively', () => {
  assert.equal(dictionaryFormat('a/b.csv'), 'csv');
  assert.equal(dictionaryFormat('b.JSON'), 'json');
  assert.equal(dictionaryFormat('b.xlsx'), undefined);
  assert.equal(dictionaryFormat('csv'), undefined);
});

test('formatProblems prints file:line: reason, the column when known, and marks warnings', () => {
  const problems: DictionaryProblem[] = [
    { line: 12, level: 'error', code: 'severity.range', reason: 'severity "7" is not 1-5' },
    { line: 6, column: 5, level: 'error', code: 'json.syntax', reason: 'JSON syntax error: x' },
    { line: 15, level: 'warning', code: 'duplicate.exact', reason: 'phrase "a" repeats line 2 exactly; this copy is ignored' },
  ];
  assert.equal(formatProblems(problems, 'rules/x.csv'), [
    'rules/x.csv:12: severity "7" is not 1-5',
    'rules/x.csv:6:5: JSON syntax error: x',
    'rules/x.csv:15: warning: phrase "a" repeats line 2 exactly; this copy is ignored',
  ].join('\n'));
  assert.equal(formatProblems([], 'x'), '');
});

test('checkDictionarySource checks 100,000 CSV rows and reports each of the 1,000 duplicates', () => {
  const rows: string[] = [HEADER];
  for (let i = 0; i < 100_000; i++) rows.push(`phrase ${i % 99_000},cat,${(i % 5) + 1},no,\n`);
  const result = checkDictionarySource(rows.join(''), 'csv', 'big');
  assert.equal(result.dictionary.phrases.length, 99_000);
  assert.equal(result.errors + result.warnings, 1000);
});

test('runDictionaryCheck prints problems and a summary and exits 1 on errors', () => {
  const lines: string[] = [];
  const path = fixturePath('duplicates.csv');
  assert.equal(runDictionaryCheck(path, (l) => lines.push(l)), 1);
  assert.equal(lines.length, 7);
  assert.equal(lines[0], `${path}:4: warning: phrase "Our  Secret" repeats line 2 exactly; this copy is ignored`);
  assert.equal(lines[6], `${path}: 3 phrases, 4 errors, 2 warnings`);
});

test('runDictionaryCheck exits 0 when there are only warnings, and throws for an unreadable file', () => {
  const lines: string[] = [];
  assert.equal(runDictionaryCheck(fixturePath('good.csv'), (l) => lines.push(l)), 0);
  assert.match(lines[lines.length - 1], /: 9 phrases, 0 errors, 1 warning$/);
  const missing: string[] = [];
  assert.throws(() => runDictionaryCheck('/nonexistent/x.json', (l) => missing.push(l)), (err: unknown) => err instanceof DictionaryError
    && err.code === 'E_DICTIONARY_READ' && err.message === 'Cannot read dictionary "/nonexistent/x.json": ENOENT');
  assert.deepEqual(missing, [], 'no problem list and no summary for a file that was never read');
});

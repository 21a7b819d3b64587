import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { parseCsvDictionary, splitCsvRecords } from '../../rules/csv.js';
import { matchForm, matchKey, type DictionaryProblem } from '../../rules/problems.js';

const fixture = (name: string): Buffer =>
  readFileSync(fileURLToPath(new URL(`../../../test/fixtures/rules/${name}`, import.meta.url)));

const HEADER = 'phrase,category,severity,embedded\n';

function problemAt(problems: readonly DictionaryProblem[], line: number, code: string): DictionaryProblem {
  const found = problems.find((p) => p.line === line && p.code === code);
  assert.ok(found, `expected ${code} at line ${line}; got ${JSON.stringify(problems)}`);
  return found;
}

test('splitCsvRecords handles quoted commas, doubled quotes and newlines inside quotes', () => {
  const problems: DictionaryProblem[] = [];
  const records = splitCsvRecords('a,"b, c","say ""hi"""\n"two\nlines",x\nlast,y', problems);
  assert.deepEqual(problems, []);
  assert.deepEqual(records.map((r) => r.fields), [['a', 'b, c', 'say "hi"'], ['two\nlines', 'x'], ['last', 'y']]);
  assert.deepEqual(records.map((r) => r.line), [1, 2, 4]);
});

test('splitCsvRecords counts CRLF, LF and lone CR as one line each', () => {
  const records = splitCsvRecords('a\r\nb\nc\rd\r\n"e\r\nf"\r\ng', []);
  assert.deepEqual(records.map((r) => r.fields[0]), ['a', 'b', 'c', 'd', 'e\r\nf', 'g']);
  assert.deepEqual(records.map((r) => r.line), [1, 2, 3, 4, 5, 7]);
  const insideQuotes = splitCsvRecords('"x\ry\nz",1\rw\n', []);
  assert.deepEqual(insideQuotes.map((r) => [r.fields[0], r.line, r.endLine]), [['x\ry\nz', 1, 3], ['w', 4, 4]]);
});

test('splitCsvRecords keeps an empty last field after a trailing comma', () => {
  assert.deepEqual(splitCsvRecords('a,b,\n', []).map((r) => r.fields), [['a', 'b', '']]);
});

test('parseCsvDictionary reads the good fixture: any column order, header case, quoting, multi-line phrase', () => {
  const result = parseCsvDictionary(fixture('good.csv'), 'good');
  assert.deepEqual(result.problems.map((p) => [p.line, p.level, p.code]), [[1, 'warning', 'csv.column_unknown']]);
  assert.equal(result.name, 'good');
  const byPhrase = new Map(result.entries.map((e) => [e.phrase.phrase, e]));
  assert.deepEqual(byPhrase.get('kill myself'), {
    line: 2,
    key: matchKey(matchForm('kill myself')),
    phrase: { phrase: 'kill myself', category: 'self-harm', severity: 5, embedded: false, exclusions: [], languages: ['en'] },
  });
  assert.equal(byPhrase.get('guns, knives')?.line, 5);
  assert.equal(byPhrase.get('he said "meet me"')?.line, 6);
  assert.equal(byPhrase.get('after\nschool')?.line, 7);
  assert.equal(byPhrase.get('cocaine')?.line, 9, 'line after a two-line record');
  assert.deepEqual(byPhrase.get('cocaine')?.phrase.languages, ['en', 'en-GB']);
  assert.deepEqual(byPhrase.get('gun')?.phrase.exclusions, ['glue gun', 'nail gun']);
  assert.equal(result.entries.length, 9);
});

test('parseCsvDictionary accepts every embedded spelling and blank as false', () => {
  const rows = ['a1,c,1,yes', 'a2,c,1,no', 'a3,c,1,TRUE', 'a4,c,1,false', 'a5,c,1,1', 'a6,c,1,0', 'a7,c,1,Y', 'a8,c,1,n', 'a9,c,1,', 'a10,c,1, yes '];
  const result = parseCsvDictionary(HEADER + rows.join('\n'), 't');
  assert.deepEqual(result.problems, []);
  assert.deepEqual(result.entries.map((e) => e.phrase.embedded), [true, false, true, false, true, false, true, false, false, true]);
});

test('parseCsvDictionary treats a missing embedded column as whole-word', () => {
  const result = parseCsvDictionary('phrase,category,severity\nAK47,weapons,4\n', 't');
  assert.deepEqual(result.problems, []);
  assert.equal(result.entries[0].phrase.embedded, false);
});

test('parseCsvDictionary strips a UTF-8 byte-order mark before the header', () => {
  const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(HEADER + 'AK47,weapons,4,no\n')]);
  const result = parseCsvDictionary(bytes, 't');
  assert.deepEqual(result.problems, []);
  assert.equal(result.entries[0].phrase.phrase, 'AK47');
});

test('parseCsvDictionary reads CRLF files with the right line numbers', () => {
  const text = 'phrase,category,severity,embedded\r\nAK47,weapons,4,no\r\n"our\r\nsecret",grooming,4,no\r\nbad,weapons,9,no\r\n';
  const result = parseCsvDictionary(Buffer.from(text), 't');
  assert.deepEqual(result.entries.map((e) => [e.phrase.phrase, e.line]), [['AK47', 2], ['our\r\nsecret', 3]]);
  assert.deepEqual(result.problems.map((p) => [p.line, p.code]), [[5, 'severity.range']]);
});

test('parseCsvDictionary reports each bad row of the bad fixture at its line', () => {
  const { problems, entries } = parseCsvDictionary(fixture('bad.csv'), 'bad');
  assert.equal(problemAt(problems, 3, 'phrase.empty').reason, 'phrase is empty');
  assert.match(problemAt(problems, 4, 'phrase.no_letters').reason, /^phrase "!!!" normalises to nothing/);
  assert.equal(problemAt(problems, 5, 'severity.missing').reason, 'severity is missing');
  assert.equal(problemAt(problems, 6, 'severity.range').reason, 'severity "7" is not 1-5');
  assert.equal(problemAt(problems, 7, 'severity.not_integer').reason, 'severity "high" is not an integer 1-5');
  assert.match(problemAt(problems, 8, 'embedded.unknown').reason, /^embedded "maybe" is not one of yes, no/);
  assert.equal(problemAt(problems, 9, 'category.missing').reason, 'category is missing');
  assert.match(problemAt(problems, 10, 'phrase.too_long').reason, /more than the 128 limit/);
  const exclusion = problemAt(problems, 11, 'exclusion.not_covering');
  assert.equal(exclusion.level, 'warning');
  assert.match(exclusion.reason, /"bamboo"/);
  assert.match(problemAt(problems, 12, 'csv.field_count').reason, /7 fields but the header has 6/);
  assert.match(problemAt(problems, 17, 'csv.quote_stray').reason, /must be doubled/);
  assert.equal(problemAt(problems, 18, 'language.malformed').level, 'warning');
  assert.deepEqual(entries.map((e) => e.line), [2, 11, 13, 15, 16, 18], 'rows with errors are not loaded');
  assert.equal(problems.filter((p) => p.level === 'error').length, 10);
});

test('parseCsvDictionary reports every error of one row, not only the first', () => {
  const { problems } = parseCsvDictionary(HEADER + ',,x,maybe\n', 't');
  assert.deepEqual(problems.map((p) => p.code).sort(), ['category.missing', 'embedded.unknown', 'phrase.empty', 'severity.not_integer']);
  assert.ok(problems.every((p) => p.line === 2));
});

test('parseCsvDictionary reports a phrase of only format characters as normalising to nothing', () => {
  const { problems, entries } = parseCsvDictionary(HEADER + '\u200b\u00ad,bullying,2,no\n', 't');
  assert.equal(entries.length, 0);
  assert.equal(problemAt(problems, 2, 'phrase.no_letters').reason, 'phrase "\\u{200b}\\u{ad}" normalises to nothing (no letters or digits)');
});

test('parseCsvDictionary reports an unclosed quote at the line its record starts', () => {
  const { problems, entries } = parseCsvDictionary(HEADER + 'AK47,weapons,4,no\n"our secret,grooming,4,no\nmore,x,1,no\n', 't');
  assert.deepEqual(entries.map((e) => e.phrase.phrase), ['AK47']);
  assert.deepEqual(problems.map((p) => [p.line, p.code]), [[3, 'csv.quote_unclosed']]);
});

test('parseCsvDictionary refuses a header without the required columns', () => {
  const { problems, entries } = parseCsvDictionary('kill myself,self-harm,5,no\nAK47,weapons,4,no\n', 't');
  assert.equal(entries.length, 0);
  assert.ok(problems.length >= 3);
  assert.ok(problems.every((p) => p.line === 1));
  assert.ok(problems.some((p) => p.code === 'csv.header' && /no "severity" column/.test(p.reason)));
});

test('parseCsvDictionary refuses a column named twice', () => {
  const { problems } = parseCsvDictionary('phrase,category,severity,Phrase\nx,y,1,z\n', 't');
  assert.deepEqual(problems.map((p) => [p.line, p.code]), [[1, 'csv.header']]);
});

test('parseCsvDictionary reports an empty file and a header with no rows', () => {
  assert.deepEqual(parseCsvDictionary('', 't').problems.map((p) => [p.line, p.code]), [[1, 'file.empty']]);
  assert.deepEqual(parseCsvDictionary('\n\n' + HEADER + '\n', 't').problems.map((p) => [p.line, p.code]), [[3, 'file.empty']]);
});

test('parseCsvDictionary skips blank and all-empty rows without a problem', () => {
  const { problems, entries } = parseCsvDictionary(HEADER + '\n,,,\nAK47,weapons,4,no\n  \n', 't');
  assert.deepEqual(problems, []);
  assert.deepEqual(entries.map((e) => e.line), [4]);
});

test('parseCsvDictionary reports an unquoted comma that adds a non-empty field', () => {
  const { problems, entries } = parseCsvDictionary(HEADER + 'guns, knives,weapons,3,no\n', 't');
  assert.equal(entries.length, 0);
  assert.deepEqual(problems.map((p) => [p.line, p.code, p.reason]), [[2, 'csv.field_count', 'row has 5 fields but the header has 4; a phrase containing a comma must be in double quotes']]);
});

test('parseCsvDictionary accepts trailing empty fields beyond the header', () => {
  const { problems, entries } = parseCsvDictionary(HEADER + 'AK47,weapons,4,no,,\n', 't');
  assert.deepEqual(problems, []);
  assert.equal(entries.length, 1);
});

test('parseCsvDictionary reports each line that is not UTF-8 and skips its row', () => {
  const bytes = Buffer.concat([
    Buffer.from(HEADER + 'AK47,weapons,4,no\n'),
    Buffer.from([0x93]), Buffer.from('our secret'), Buffer.from([0x94]), Buffer.from(',grooming,4,no\n'),
    Buffer.from('gun,weapons,2,no\n'),
  ]);
  const { problems, entries } = parseCsvDictionary(bytes, 't');
  assert.deepEqual(problems.map((p) => [p.line, p.code]), [[3, 'file.encoding']]);
  assert.deepEqual(entries.map((e) => e.phrase.phrase), ['AK47', 'gun']);
});

test('parseCsvDictionary reports a UTF-16 file instead of reading garbage', () => {
  const bytes = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(HEADER, 'utf16le')]);
  const { problems, entries } = parseCsvDictionary(bytes, 't');
  assert.equal(entries.length, 0);
  assert.deepEqual(problems.map((p) => [p.line, p.code]), [[1, 'file.encoding']]);
  assert.match(problems[0].reason, /UTF-16/);
});

test('parseCsvDictionary trims phrase and category and drops empty list items', () => {
  const text = 'phrase,category,severity,embedded,exclusions,languages\n  gun  , weapons ,2,no, glue gun || nail gun ,en| |\n';
  const { problems, entries } = parseCsvDictionary(text, 't');
  assert.deepEqual(problems, []);
  assert.deepEqual(entries[0].phrase, { phrase: 'gun', category: 'weapons', severity: 2, embedded: false, exclusions: ['glue gun', 'nail gun'], languages: ['en'] });
});

test('parseCsvDictionary reads 100,000 rows with every line number right', () => {
  const rows: string[] = [HEADER];
  for (let i = 0; i < 100_000; i++) rows.push(`"phrase number ${i}",category${i % 8},${(i % 5) + 1},${i % 2 ? 'yes' : 'no'}\n`);
  const text = rows.join('');
  const { problems, entries } = parseCsvDictionary(text, 'big');
  assert.equal(problems.length, 0);
  assert.equal(entries.length, 100_000);
  assert.equal(entries[99_999].line, 100_001);
});

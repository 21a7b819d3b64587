import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { packSchema, packSchemaPath, parsePackDictionary } from '../../rules/pack.js';
import { MAX_PHRASE_CHARS, type DictionaryProblem } from '../../rules/problems.js';

const fixture = (name: string): Buffer =>
  readFileSync(fileURLToPath(new URL(`../../../test/fixtures/rules/${name}`, import.meta.url)));

function reasonsByLine(problems: readonly DictionaryProblem[]): [number, string][] {
  return problems.map((p) => [p.line, p.reason]);
}

test('parsePackDictionary reads the good fixture with category defaults and object lines', () => {
  const result = parsePackDictionary(fixture('good.json'), 'fallback');
  assert.deepEqual(result.problems, []);
  assert.equal(result.name, 'fixture-good');
  assert.equal(result.version, '2.1.0');
  assert.match(result.description ?? '', /^Small pack/);
  assert.deepEqual([...result.categories.keys()], ['weapons', 'grooming']);
  assert.equal(result.categories.get('weapons')?.severity, 4);
  assert.deepEqual(result.entries.map((e) => [e.line, e.phrase.phrase, e.phrase.severity]), [
    [11, 'AK47', 4],
    [12, 'our secret', 4],
    [13, 'gun', 2],
    [20, 'shank', 4],
    [21, "don't tell your parents", 5],
  ]);
  assert.equal(result.entries[3].phrase.category, 'weapons', 'declared spelling wins over "Weapons"');
  assert.deepEqual(result.entries[2].phrase, {
    phrase: 'gun', category: 'weapons', severity: 2, embedded: false, exclusions: ['glue gun', 'nail gun'], languages: ['en'],
  });
});

test('parsePackDictionary reports each schema violation at the line of the offending value', () => {
  const result = parsePackDictionary(fixture('bad-schema.json'), 'bad');
  assert.deepEqual(reasonsByLine(result.problems), [
    [4, 'unknown field "colour" (known: $schema, name, version, description, categories, phrases)'],
    [7, 'severity 9 is not 1-5'],
    [11, 'phrase is empty'],
    [12, 'severity 7 is not 1-5'],
    [13, 'severity must be an integer, not the string "3"'],
    [14, 'severity must be an integer, not the number 2.5'],
    [15, 'category is missing'],
    [16, 'category "drug" is not declared in "categories" (declared: "weapons", "drugs")'],
    [17, 'severity is missing (and its category gives no default)'],
    [18, 'embedded must be true or false, not the string "yes"'],
    [19, 'unknown field "sevrity" (known: phrase, category, severity, embedded, exclusions, languages)'],
    [20, 'member "severity" appears twice (first on line 20); JSON readers silently keep only one'],
    [24, 'exclusions[1] is empty'],
    [26, 'phrases[12] must be an object, not the string "pistol"'],
    [27, 'phrase is empty'],
  ]);
  assert.ok(result.problems.every((p) => p.level === 'error'));
  assert.deepEqual(result.entries.map((e) => e.line), [10, 28], 'only the valid phrase objects load');
});

test('parsePackDictionary reports a JSON syntax error with its line and column', () => {
  const result = parsePackDictionary(fixture('syntax.json'), 'syntax');
  assert.deepEqual(result.problems, [{
    line: 6, column: 5, level: 'error', code: 'json.syntax',
    reason: 'JSON syntax error: expected "," or "]" after an array item, found "{"',
  }]);
  assert.equal(result.entries.length, 0);
  assert.equal(result.name, 'syntax');
});

test('parsePackDictionary reports trailing commas, single quotes and raw newlines in strings', () => {
  const trailing = parsePackDictionary('{"name": "x",\n  "version": "1",\n}', 't').problems[0];
  assert.deepEqual([trailing.line, trailing.column, trailing.reason], [3, 1, 'JSON syntax error: trailing comma before "}"']);
  const single = parsePackDictionary("{\n  'name': 'x'}", 't').problems[0];
  assert.deepEqual([single.line, single.column], [2, 3]);
  assert.match(single.reason, /member name in double quotes/);
  const newline = parsePackDictionary('{"name": "two\nlines"}', 't').problems[0];
  assert.deepEqual([newline.line, newline.column], [1, 14]);
  assert.match(newline.reason, /control character U\+000A inside a string/);
});

test('parsePackDictionary reports missing top-level members at the document line', () => {
  const result = parsePackDictionary('\n\n{"description": "no name"}', 't');
  assert.deepEqual(reasonsByLine(result.problems), [[3, 'name is missing'], [3, 'version is missing'], [3, 'phrases is missing']]);
});

test('parsePackDictionary refuses an empty phrase list and a non-object document', () => {
  assert.deepEqual(reasonsByLine(parsePackDictionary('{"name": "x", "version": "1", "phrases": []}', 't').problems), [[1, 'phrases must have at least 1 item']]);
  assert.deepEqual(reasonsByLine(parsePackDictionary('[1]', 't').problems), [[1, 'document must be an object, not an array']]);
});

test('parsePackDictionary needs a severity on every phrase when there are no categories, and accepts any category', () => {
  const text = '{"name": "x", "version": "1", "phrases": [\n{"phrase": "a", "category": "anything"},\n{"phrase": "b", "category": "other", "severity": 1}\n]}';
  const result = parsePackDictionary(text, 't');
  assert.deepEqual(result.problems.map((p) => [p.line, p.code]), [[2, 'severity.missing']]);
  assert.deepEqual(result.entries.map((e) => e.phrase.phrase), ['b']);
});

test('parsePackDictionary strips a BOM and falls back to the file name for a blank name', () => {
  const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"name": " ", "version": "1", "phrases": [{"phrase": "AK47", "category": "weapons", "severity": 4}]}')]);
  const result = parsePackDictionary(bytes, 'from-file');
  assert.deepEqual(result.problems, []);
  assert.equal(result.name, 'from-file');
});

test('parsePackDictionary applies the shared row checks (exclusions, normalising to nothing)', () => {
  const text = '{"name": "x", "version": "1", "phrases": [\n{"phrase": "gun", "category": "w", "severity": 2, "exclusions": ["gunmetal"]},\n{"phrase": "\\u200b", "category": "w", "severity": 2}\n]}';
  const result = parsePackDictionary(text, 't');
  assert.deepEqual(result.problems.map((p) => [p.line, p.level, p.code]), [[2, 'warning', 'exclusion.not_covering'], [3, 'error', 'phrase.no_letters']]);
});

test('parsePackDictionary reports an over-long phrase from the schema limit', () => {
  const long = 'word '.repeat(30);
  const result = parsePackDictionary(`{"name": "x", "version": "1", "phrases": [\n{"phrase": "${long}", "category": "w", "severity": 2}]}`, 't');
  assert.deepEqual(reasonsByLine(result.problems), [[2, `phrase is ${long.length} characters, more than the ${MAX_PHRASE_CHARS} limit`]]);
});

test('pack.schema.json repeats MAX_PHRASE_CHARS and uses only enforced keywords', () => {
  const schema = packSchema() as { $defs: { text: { maxLength: number } }; $schema: string };
  assert.equal(schema.$defs.text.maxLength, MAX_PHRASE_CHARS);
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.match(packSchemaPath(), /rules[/\\]pack\.schema\.json$/);
});

import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { checkDictionary, formatProblems, loadDictionary, phraseKey } from '../../rules/check.js';
import { STARTER_CATEGORIES, type Phrase } from '../../rules/dictionary.js';

const STARTER = fileURLToPath(new URL('../../../rules/starter.json', import.meta.url));

function find(phrases: readonly Phrase[], text: string): Phrase | undefined {
  return phrases.find((p) => phraseKey(p.phrase) === phraseKey(text));
}

test('starter.json passes the dictionary checker with no errors and no warnings', () => {
  const result = checkDictionary(STARTER);
  assert.equal(formatProblems(result.problems, 'rules/starter.json'), '');
  assert.equal(result.errors, 0);
  assert.equal(result.warnings, 0);
});

test('starter.json holds 400-600 phrases spread over every starter category', () => {
  const { phrases, name } = loadDictionary(STARTER);
  assert.equal(name, 'hark-starter');
  assert.ok(phrases.length >= 400 && phrases.length <= 600, `${phrases.length} phrases`);
  const categories = new Set(phrases.map((p) => p.category));
  assert.deepEqual([...categories].sort(), [...STARTER_CATEGORIES].sort());
  for (const category of STARTER_CATEGORIES) {
    const inCategory = phrases.filter((p) => p.category === category);
    assert.ok(inCategory.length >= 40, `${category}: ${inCategory.length} phrases`);
    assert.ok(inCategory.some((p) => p.severity >= 4), `${category} has a high-severity phrase`);
  }
});

test('starter.json contains the phrases school monitors are tested with', () => {
  const { phrases } = loadDictionary(STARTER);
  assert.deepEqual(find(phrases, 'AK47'), { phrase: 'AK47', category: 'weapons', severity: 4, embedded: false, exclusions: [], languages: [] });
  assert.equal(find(phrases, 'our secret')?.category, 'grooming');
  assert.equal(find(phrases, 'our secret')?.severity, 4);
  assert.equal(find(phrases, "don't tell your parents")?.severity, 5);
  assert.equal(find(phrases, 'kill myself')?.severity, 5);
  assert.equal(find(phrases, 'suicide note')?.severity, 5);
  assert.equal(find(phrases, 'nobody likes you')?.severity, 3);
});

test('starter.json keeps innocent longer forms as exclusions of noisy words', () => {
  const { phrases } = loadDictionary(STARTER);
  assert.ok(find(phrases, 'gun')?.exclusions.includes('glue gun'));
  assert.ok(find(phrases, 'shoot')?.exclusions.includes('photo shoot'));
  assert.ok(find(phrases, 'kill')?.exclusions.includes('kill time'));
  assert.ok(find(phrases, 'heroin')?.exclusions.includes('heroine'));
});

test('starter.json marks only a few distinctive stems as embedded', () => {
  const { phrases } = loadDictionary(STARTER);
  const embedded = phrases.filter((p) => p.embedded);
  assert.ok(embedded.length > 0 && embedded.length < phrases.length / 10, `${embedded.length} embedded`);
  for (const p of embedded) assert.doesNotMatch(p.phrase, / /, `embedded phrase "${p.phrase}" should be a single stem`);
  for (const shortWord of ['sex', 'kill', 'gun', 'meth', 'ket']) assert.equal(find(phrases, shortWord)?.embedded, false, shortWord);
});

/**
 * Tests for rules/compile.ts: the artifact written by `hark dictionary compile` loads back into the
 * same matcher, is written atomically with mode 0644, reports its figures, fails with a typed error
 * naming the path, and the starter dictionary compiles with nothing skipped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDictionary } from '../../rules/check.js';
import { compileDictionaryFile, DictionaryCompileError } from '../../rules/compile.js';
import type { Dictionary, Phrase } from '../../rules/dictionary.js';
import { loadMatcher, matcherPatterns } from '../../sensor/match/matcher.js';
import { PhraseScanner } from '../../sensor/match/scanner.js';

const phrase = (text: string, more: Partial<Phrase> = {}): Phrase => ({
  phrase: text, category: 'self-harm', severity: 5, embedded: false, exclusions: [], languages: [], ...more,
});

const DICT: Dictionary = {
  name: 'tiny',
  phrases: [phrase('kill myself'), phrase('kill', { category: 'violence', severity: 3, exclusions: ['kill time'] }), phrase('...')],
};

function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hark-compile-'));
  return f(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

test('compileDictionaryFile writes a 0644 artifact that loads into the same matcher', () => withDir(async (dir) => {
  const out = join(dir, 'tiny.hark');
  const stats = await compileDictionaryFile(DICT, out);
  assert.equal(statSync(out).mode & 0o777, 0o644);
  const bytes = readFileSync(out);
  assert.equal(stats.bytes, bytes.length);
  assert.equal(stats.phrases, 3);
  assert.equal(stats.patterns, 3); // two phrases and one exclusion; "..." has no letters
  assert.equal(stats.bytesPerPhrase, bytes.length / 3);
  assert.ok(stats.states > 10 && stats.denseStates === stats.states);
  assert.ok(stats.ms >= 0);
  assert.deepEqual(stats.skipped.map((s) => s.text), ['...']);

  const m = loadMatcher(bytes);
  assert.deepEqual(matcherPatterns(m).map((p) => Buffer.from(p).toString()), [' kil myself ', ' kil ', ' kil time ']);
  const found: string[] = [];
  const s = new PhraseScanner(m, (h) => found.push(`${h.phrase.category}:${h.phrase.phrase}`));
  s.write('I will KILL MYSELF, not kill time');
  s.end();
  assert.deepEqual(found, ['violence:kill', 'self-harm:kill myself']);
  assert.deepEqual(readdirSync(dir), ['tiny.hark'], 'no temporary file left behind');
}));

test('compileDictionaryFile replaces an existing artifact whole', () => withDir(async (dir) => {
  const out = join(dir, 'dict.hark');
  writeFileSync(out, 'old contents');
  await compileDictionaryFile(DICT, out);
  assert.equal(loadMatcher(readFileSync(out)).name, 'tiny');
}));

test('compileDictionaryFile fails with DictionaryCompileError naming the path', () => withDir(async (dir) => {
  const out = join(dir, 'missing', 'dict.hark');
  await assert.rejects(compileDictionaryFile(DICT, out), (e: unknown) => {
    assert.ok(e instanceof DictionaryCompileError);
    assert.equal(e.code, 'E_DICTIONARY_COMPILE');
    assert.match(e.message, /Cannot write compiled dictionary ".*missing\/dict\.hark": ENOENT/);
    return true;
  });
  assert.deepEqual(readdirSync(dir), []);
}));

test('compileDictionaryFile refuses a directory as its output, saying so and leaving nothing behind', () => withDir(async (dir) => {
  const out = join(dir, 'out');
  mkdirSync(out);
  await assert.rejects(compileDictionaryFile(DICT, out), (e: unknown) => {
    assert.ok(e instanceof DictionaryCompileError);
    assert.equal(e.code, 'E_DICTIONARY_COMPILE');
    assert.equal(e.message, `Cannot write compiled dictionary "${out}": is a directory`);
    return true;
  });
  assert.deepEqual(readdirSync(dir), ['out']);
  assert.deepEqual(readdirSync(out), []);
}));

test('the starter dictionary compiles with nothing skipped', () => withDir(async (dir) => {
  const starter = loadDictionary(fileURLToPath(new URL('../../../rules/starter.json', import.meta.url)));
  const stats = await compileDictionaryFile(starter, join(dir, 'starter.hark'));
  assert.deepEqual(stats.skipped, []);
  assert.equal(stats.phrases, starter.phrases.length);
  assert.ok(stats.phrases > 100);
}));

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  categoryKey, checkRowTexts, exclusionCovers, matchForm, matchKey, matchText, phraseKey, quote, type DictionaryProblem,
} from '../../rules/problems.js';

test('phraseKey folds case, width, format characters and whitespace but keeps punctuation', () => {
  assert.equal(phraseKey('  Our \t Secret\n'), 'our secret');
  assert.equal(phraseKey('ＡＫ４７'), 'ak47', 'full-width forms fold under NFKC');
  assert.equal(phraseKey('kill\u200bmyself'), 'killmyself', 'zero-width space removed');
  assert.equal(phraseKey('self\u00adharm'), 'selfharm', 'soft hyphen removed');
  assert.notEqual(phraseKey('AK-47'), phraseKey('AK47'));
  assert.equal(phraseKey('Straße'), 'straße');
});

test('phraseKey gives the same key on its ASCII fast path as on the full path', () => {
  for (const text of ['AK47', 'our secret', "don't tell", 'a b c', 'x', '']) {
    const slow = text.normalize('NFKC').toLowerCase().replace(/\p{Cf}/gu, '').replace(/\s+/gu, ' ').trim();
    assert.equal(phraseKey(text), slow, text);
  }
  assert.equal(phraseKey('a '), 'a', 'a trailing space leaves the fast path');
});

test('categoryKey compares categories case-insensitively after trimming', () => {
  assert.equal(categoryKey(' Weapons '), categoryKey('weapons'));
});

test('quote escapes quotes, backslashes, control and invisible format characters', () => {
  assert.equal(quote('a "b" \\ c'), '"a \\"b\\" \\\\ c"');
  assert.equal(quote('tab\there\u200b'), '"tab\\u{9}here\\u{200b}"');
});

test('matchForm reads phrases as the matcher does: punctuation, leet and diacritics folded', () => {
  assert.equal(matchText(matchForm('AK-47')), 'ak 47');
  assert.equal(matchKey(matchForm('AK47')), matchKey(matchForm('ak 47')));
  assert.equal(matchKey(matchForm('k1ll')), matchKey(matchForm('KILL')));
  assert.notEqual(matchKey(matchForm('kill')), matchKey(matchForm('kil')), 'letter runs are part of the key');
  assert.equal(matchText(matchForm('Café')), 'cafe');
  assert.equal(matchForm('!!! \u200b').text, '');
});

test('exclusionCovers needs whole-word containment for whole-word phrases only', () => {
  assert.equal(exclusionCovers('photo shoot', 'shoot', false), true);
  assert.equal(exclusionCovers('shoot hoops', 'shoot', false), true);
  assert.equal(exclusionCovers('skill', 'kill', false), false);
  assert.equal(exclusionCovers('killer whale', 'kill', false), false);
  assert.equal(exclusionCovers('killer whale', 'kill', true), true);
  assert.equal(exclusionCovers('skill kill', 'kill', false), true, 'a later occurrence at a boundary counts');
  assert.equal(exclusionCovers('offa\'s dyke', 'dyke', false), true);
  assert.equal(exclusionCovers('café kill', 'kill', false), true);
  assert.equal(exclusionCovers('ékill', 'kill', false), false, 'a letter with a diacritic is still a letter');
  assert.equal(exclusionCovers('my#proana', '#proana', false), true, 'punctuation separates words');
  assert.equal(exclusionCovers('ak-47 airsoft', 'AK47', false), true, 'punctuation folds the same in both');
  assert.equal(exclusionCovers('anything', '', false), false);
});

test('checkRowTexts counts errors and leaves warnings out of the count', () => {
  const problems: DictionaryProblem[] = [];
  const { errors, clean } = checkRowTexts({ phrase: ' gun ', category: '', exclusions: ['gun', ' '], languages: ['en', 'english'], embedded: false }, 7, problems);
  assert.equal(errors, 1);
  assert.deepEqual(problems.map((p) => [p.line, p.level, p.code]), [
    [7, 'error', 'category.missing'],
    [7, 'warning', 'exclusion.equals_phrase'],
    [7, 'warning', 'language.malformed'],
  ]);
  assert.deepEqual(clean, { phrase: 'gun', key: matchKey(matchForm('gun')), category: '', exclusions: ['gun'], languages: ['en', 'english'] });
});

test('checkRowTexts counts an over-long phrase in code points, not UTF-16 units', () => {
  const emoji = '\u{1f52a}';
  assert.equal(checkRowTexts({ phrase: 'a' + emoji.repeat(127), category: 'c', exclusions: [], languages: [], embedded: false }, 1, []).errors, 0);
  assert.equal(checkRowTexts({ phrase: 'a' + emoji.repeat(128), category: 'c', exclusions: [], languages: [], embedded: false }, 1, []).errors, 1);
});

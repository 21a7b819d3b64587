/**
 * Tests for sensor/match/matcher.ts: how phrases and exclusions become patterns, what is skipped and
 * why, the artifact round trip (every table equal, same matches), refusal of damaged or foreign
 * artifacts, and the cost of 100,000 phrases (compile and load each under 2 s of CPU time).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import type { Phrase } from '../../rules/dictionary.js';
import {
  compileDictionary,
  loadMatcher,
  MatcherFormatError,
  matcherPatterns,
  MAX_PATTERN_BYTES,
  PATTERN_EXCLUSION,
  PATTERN_PHRASE,
  serializeMatcher,
  type CompiledMatcher,
} from '../../sensor/match/matcher.js';
import { PhraseScanner } from '../../sensor/match/scanner.js';

function phrase(text: string, more: Partial<Phrase> = {}): Phrase {
  return { phrase: text, category: 'self-harm', severity: 4, embedded: false, exclusions: [], languages: ['en'], ...more };
}

const dec = new TextDecoder();

const sample = (): CompiledMatcher => compileDictionary({
  name: 'sample',
  phrases: [
    phrase('Kill myself'),
    phrase('ass', { embedded: true, category: 'bullying', severity: 2, exclusions: ['class', 'assess'] }),
    phrase('!!!'),
    phrase('kill', { exclusions: ['kill', 'killer whale'] }),
    phrase('убить', { languages: ['ru'] }),
  ],
});

function hits(m: CompiledMatcher, text: string): string[] {
  const out: string[] = [];
  const s = new PhraseScanner(m, (h) => out.push(`${h.phraseIndex}:${h.context}`));
  s.write(text);
  s.end();
  return out;
}

describe('compileDictionary', () => {
  it('turns whole-word phrases into space-delimited skeletons and embedded ones into bare skeletons', () => {
    const m = sample();
    const pats = matcherPatterns(m).map((p) => dec.decode(p));
    assert.deepEqual(pats, [' kil myself ', 'as', 'clas', 'ases', ' kil ', ' kiler whale ', ' убить ']);
    assert.deepEqual([...m.patternPhrase], [0, 1, 1, 1, 3, 3, 4]);
    assert.deepEqual([...m.patternKind], [PATTERN_PHRASE, PATTERN_PHRASE, PATTERN_EXCLUSION, PATTERN_EXCLUSION, PATTERN_PHRASE, PATTERN_EXCLUSION, PATTERN_PHRASE]);
    assert.deepEqual([...m.patternWhole], [1, 0, 0, 0, 1, 1, 1]);
    assert.deepEqual([...m.patternLength], [12, 2, 4, 4, 5, 13, 12]);
    assert.deepEqual([...m.maxExclusionLength], [0, 4, 0, 13, 0]);
    assert.equal(m.maxPatternLength, 13);
  });

  it('records the letter runs that are not single', () => {
    const m = sample();
    // pattern 0 " kil myself ": the l of kill (offset 3) is a double
    assert.deepEqual([...m.runOffset.subarray(m.runIndex[0], m.runIndex[1])], [3]);
    assert.deepEqual([...m.runValue.subarray(m.runIndex[0], m.runIndex[1])], [2]);
    // pattern 1 "as" (embedded "ass"): the s is a double
    assert.deepEqual([...m.runOffset.subarray(m.runIndex[1], m.runIndex[2])], [1]);
  });

  it('skips phrases without letters or digits and exclusions not longer than their phrase, saying why', () => {
    assert.deepEqual(sample().skipped, [
      { index: 2, text: '!!!', reason: 'no letters or digits after normalisation' },
      { index: 3, text: 'kill', reason: 'exclusion: exclusion is not longer than its phrase' },
    ]);
    const long = compileDictionary({ name: 'x', phrases: [phrase('word '.repeat(MAX_PATTERN_BYTES))] });
    assert.match(long.skipped[0].reason, /longer than 512 bytes/);
    assert.equal(long.patternPhrase.length, 0);
  });

  it('compiles an empty dictionary into a matcher that finds nothing', () => {
    const m = compileDictionary({ name: 'empty', phrases: [] });
    assert.deepEqual(hits(m, 'kill myself'), []);
    assert.deepEqual(hits(loadMatcher(serializeMatcher(m)), 'kill myself'), []);
  });
});

describe('serializeMatcher and loadMatcher', () => {
  it('round-trips every table, the phrases and the matches', () => {
    const m = sample();
    const back = loadMatcher(serializeMatcher(m));
    assert.equal(back.name, m.name);
    assert.deepEqual(back.phrases, m.phrases);
    assert.deepEqual(back.skipped, m.skipped);
    for (const k of ['patternPhrase', 'patternKind', 'patternWhole', 'patternLength', 'runIndex', 'runOffset', 'runValue', 'maxExclusionLength'] as const) {
      assert.deepEqual(back[k], m[k], k);
    }
    assert.equal(back.maxPatternLength, m.maxPatternLength);
    assert.deepEqual(back.engine.parts, m.engine.parts);
    assert.deepEqual(back.engine.dense, m.engine.dense);
    assert.deepEqual(back.engine.records, m.engine.records);
    const text = 'I will kill myself, you ass, in class; a killer whale; я хочу убить';
    assert.deepEqual(hits(back, text), hits(m, text));
    assert.equal(hits(m, text).length, 4);
    assert.deepEqual(serializeMatcher(back), serializeMatcher(m));
  });

  it('refuses damaged, truncated or foreign artifacts with MatcherFormatError', () => {
    const good = serializeMatcher(sample());
    const patched = (offset: number, value: number): Uint8Array => {
      const b = good.slice();
      new DataView(b.buffer).setUint32(offset, value, true);
      return b;
    };
    assert.throws(() => loadMatcher(good.subarray(0, 12)), MatcherFormatError);
    assert.throws(() => loadMatcher(new TextEncoder().encode('HARKMTCX' + ' '.repeat(40))), /bad magic/);
    assert.throws(() => loadMatcher(patched(8, 99)), /format version 99/);
    assert.throws(() => loadMatcher(patched(12, 99)), /normaliser version 99.*recompile/);
    assert.throws(() => loadMatcher(patched(16, good.length)), /metadata runs past the end/);
    assert.throws(() => loadMatcher(good.subarray(0, good.length - 4)), MatcherFormatError);
    const jsonLen = new DataView(good.buffer).getUint32(16, true);
    const notJson = good.slice();
    notJson[20] = 0x5b; // "[" where "{" was
    assert.throws(() => loadMatcher(notJson), /metadata is not JSON/);
    const noPhrases = good.slice();
    noPhrases.set(new TextEncoder().encode('{}'.padEnd(jsonLen, ' ')), 20); // valid JSON, not the metadata
    assert.throws(() => loadMatcher(noPhrases), /lacks phrases/);
    const dfaAt = 20 + ((jsonLen + 3) & ~3) + 4;
    const badDfa = good.slice();
    badDfa[dfaAt] ^= 0xff; // the automaton's magic
    assert.throws(() => loadMatcher(badDfa), (e: unknown) => e instanceof MatcherFormatError && /automaton/.test((e as Error).message));
  });
});

describe('compileDictionary at scale', () => {
  it('compiles 100,000 phrases and loads their artifact back (times: npm run bench)', () => {
    const words = existsSync('/usr/share/dict/words')
      ? readFileSync('/usr/share/dict/words', 'utf8').split('\n').filter((w) => /^[a-z]+$/i.test(w))
      : Array.from({ length: 60_000 }, (_, i) => `w${i.toString(36)}x`);
    let seed = 7;
    const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
    const phrases: Phrase[] = [];
    for (let i = 0; i < 100_000; i++) {
      const n = 1 + Math.floor(next() * 3);
      phrases.push(phrase(Array.from({ length: n }, () => words[Math.floor(next() * words.length)]).join(' ')));
    }
    const m: CompiledMatcher = compileDictionary({ name: 'big', phrases });
    const bytes = serializeMatcher(m);
    const back: CompiledMatcher = loadMatcher(bytes);
    assert.equal(back.patternPhrase.length, 100_000);
    const probe = phrases[12_345].phrase;
    assert.ok(hits(back, `he said ${probe.toUpperCase()} twice`).some((h) => h.startsWith('12345:')));
  });
});

/**
 * Tests for sensor/match/scanner.ts: whole-word versus embedded phrases, the letter-run check,
 * overlapping phrases, exclusions (also cut across chunks), gaps and splits, segment tags, the end
 * of a stream, context windows, UTF-8 input, another engine behind the same matcher, engine streams
 * reused across scanners, and that every two-chunk cut of a text gives exactly the matches and
 * contexts of the whole text.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Counters } from '../../sensor/events/counters.js';
import { AcDfa } from '../../sensor/match/ac-dfa.js';
import { compileDictionary, matcherPatterns, MAX_PATTERN_BYTES, type CompiledMatcher } from '../../sensor/match/matcher.js';
import { PhraseScanner, type PhraseHit } from '../../sensor/match/scanner.js';
import { DISPLAY_RING_UNITS } from '../../sensor/normalize/text.js';
import type { Phrase } from '../../rules/dictionary.js';
import type { MatchDatabase } from '../../sensor/match/engine.js';

function phrase(text: string, more: Partial<Phrase> = {}): Phrase {
  return { phrase: text, category: 'test', severity: 3, embedded: false, exclusions: [], languages: [], ...more };
}

function matcher(...phrases: Phrase[]): CompiledMatcher {
  return compileDictionary({ name: 'test', phrases });
}

interface Found {
  phrase: string;
  embedded: boolean;
  context: string;
  offset: number;
}

function run(m: CompiledMatcher, chunks: readonly string[], opts: { counters?: Counters; database?: MatchDatabase; gapAfter?: number[]; splitAfter?: number[] } = {}): Found[] {
  const out: Found[] = [];
  const s = new PhraseScanner(m, (h: PhraseHit) => out.push({ phrase: h.phrase.phrase, embedded: h.phrase.embedded, context: h.context, offset: h.offset }), opts);
  chunks.forEach((c, i) => {
    s.write(c);
    if (opts.gapAfter?.includes(i)) s.gap();
    if (opts.splitAfter?.includes(i)) s.split();
  });
  s.end();
  return out;
}

const names = (found: Found[]): string[] => found.map((f) => (f.embedded ? `~${f.phrase}` : f.phrase));

describe('PhraseScanner whole words and embedded phrases', () => {
  const m = matcher(phrase('ass'), phrase('ass', { embedded: true }));

  it('whole-word "ass" matches neither "class" nor "assessment"; embedded does', () => {
    assert.deepEqual(names(run(m, ['the class took an assessment'])), ['~ass', '~ass']);
    assert.deepEqual(names(run(m, ['you ass.'])), ['~ass', 'ass']);
  });

  it('neither matches "as": the letter-run check keeps "ss" apart from "s"', () => {
    const counters = new Counters();
    assert.deepEqual(run(m, ['as far as I know'], { counters }), []);
    assert.ok(counters.get('match.run_mismatch') >= 2);
  });

  it('accepts an elongated run (3+) for a single or a double letter', () => {
    const d = matcher(phrase('die'), phrase('kill'));
    assert.deepEqual(names(run(d, ['diiiie killllll kiiill'])), ['die', 'kill', 'kill']);
    assert.deepEqual(names(run(d, ['diie kil'])), []);
  });

  it('finds obfuscated spellings through the normaliser', () => {
    const d = matcher(phrase('kill myself'), phrase('suicide'), phrase('AK47'));
    assert.deepEqual(names(run(d, ['K1LL   MYS3LF; $uicide s.u.i.c.i.d.e suïcide AK-47 ak 47 ａｋ４７'])),
      ['kill myself', 'suicide', 'suicide', 'suicide', 'AK47', 'AK47', 'AK47']);
  });

  it('treats letters of any script as part of the word', () => {
    const d = matcher(phrase('kill'), phrase('убить'));
    assert.deepEqual(names(run(d, ['killя яkill kill, killα αkill kill2'])), ['kill', 'kill']);
    assert.deepEqual(names(run(d, ['я хочу убить. хочуубить убитья'])), ['убить']);
  });
});

describe('PhraseScanner overlapping phrases', () => {
  it('reports both "kill" and "kill myself" on "kill myself"', () => {
    const m = matcher(phrase('kill myself'), phrase('kill'), phrase('myself'));
    assert.deepEqual(names(run(m, ['I will kill myself'])), ['kill', 'kill myself', 'myself']);
  });

  it('reports a phrase repeated back to back each time', () => {
    const m = matcher(phrase('die'));
    assert.deepEqual(names(run(m, ['die die die'])), ['die', 'die', 'die']);
  });
});

describe('PhraseScanner exclusions', () => {
  const m = matcher(
    phrase('kill', { embedded: true, exclusions: ['killer whale', 'kill time'] }),
    phrase('whale', { exclusions: ['killer whale'] }),
  );

  it('cancels a match an exclusion covers, keeps the others', () => {
    const counters = new Counters();
    const found = run(m, ['a killer whale, a killer shark, time to kill, kill time, a blue whale'], { counters });
    assert.deepEqual(found.map((f) => f.context.match(/\[\[(.*?)\]\]/)![1]), ['kill', 'kill', 'whale']);
    assert.equal(counters.get('match.excluded'), 3);
  });

  it('cancels the same way when the text is cut anywhere', () => {
    const text = 'the killer whale sang';
    for (let cut = 0; cut <= text.length; cut++) {
      assert.deepEqual(run(m, [text.slice(0, cut), text.slice(cut)]), [], `cut at ${cut}`);
    }
  });

  it('does not cancel when the exclusion only overlaps the match', () => {
    const e = matcher(phrase('kill time', { exclusions: ['to kill time'] }), phrase('time', { exclusions: ['kill time'] }));
    // "kill time" covers "time" but "to kill time" does not occur: only "kill time" is reported
    assert.deepEqual(names(run(e, ['we kill time'])), ['kill time']);
  });
});

describe('PhraseScanner gaps and stream end', () => {
  const m = matcher(phrase('kill'), phrase('kill myself'), phrase('kill', { embedded: true }));

  it('gap() stops a phrase from matching across the hole', () => {
    assert.deepEqual(run(m, ['I will ki', 'll'], { gapAfter: [0] }), []);
    assert.deepEqual(names(run(m, ['I will kill', ' myself'], { gapAfter: [0] })), ['~kill', 'kill']);
  });

  it('gap() keeps the context of later matches from reaching before the hole', () => {
    const found = run(m, ['before the hole ', 'kill now'], { gapAfter: [0] });
    assert.deepEqual(found.map((f) => f.context), ['[[kill]] now', '[[kill]] now']);
  });

  it('split() stops a phrase from matching across the seam, and context from reaching over it', () => {
    assert.deepEqual(run(m, ['I will ki', 'll'], { splitAfter: [0] }), []);
    assert.deepEqual(names(run(m, ['I will kill', ' myself'], { splitAfter: [0] })), ['~kill', 'kill']);
    const found = run(m, ['before the seam ', 'kill now', ' and after it'], { splitAfter: [0, 1] });
    assert.deepEqual(found.map((f) => f.context), ['[[kill]] now', '[[kill]] now']);
  });

  it('split() gives the matches and contexts of gap(), wherever the text is split', () => {
    const e = matcher(phrase('kill myself'), phrase('kill', { embedded: true, exclusions: ['killer whale'] }), phrase('die'), phrase('ass', { embedded: true, exclusions: ['class'] }));
    const texts = ['I want to kill myself, a killer whale in class', 'you ass. diiie now; kill', 'myself kill kill die die', ' and then some more words to die for in class'];
    for (let a = 0; a < texts.length; a++) {
      for (let b = a; b < texts.length; b++) {
        const at = [a, b];
        assert.deepEqual(run(e, texts, { splitAfter: at }), run(e, texts, { gapAfter: at }), `split after ${at}`);
      }
    }
    // one long text whose matches wait across slices before their segment ends
    const long = Array.from({ length: 400 }, (_, k) => (k % 7 === 0 ? 'kill myself' : k % 5 === 0 ? 'killer whale' : `w${k}`)).join(' ');
    const pieces = [long.slice(0, 1500), long.slice(1500, 2600), long.slice(2600)];
    assert.deepEqual(run(e, pieces, { splitAfter: [0, 1] }), run(e, pieces, { gapAfter: [0, 1] }));
    assert.ok(run(e, pieces, { splitAfter: [0, 1] }).length > 100);
  });

  it('split(nextTag) tags each hit with the segment it is in', () => {
    const tags: [string, number][] = [];
    const s = new PhraseScanner(m, (h) => tags.push([h.context, h.tag]), { tag: 5 });
    s.write('kill in five');
    s.split(7);
    s.write('nothing here');
    s.split();
    s.write('seven kill');
    s.split(2);
    s.write('two: kill myself');
    s.end();
    assert.deepEqual(tags.filter(([c]) => !c.includes('[[kill myself]]')).map(([, t]) => t), [5, 5, 7, 7, 2, 2]);
    assert.deepEqual(tags.filter(([c]) => c.includes('[[kill myself]]')).map(([, t]) => t), [2]);
  });

  it('end() reports a phrase at the very end of the text', () => {
    assert.deepEqual(names(run(m, ['time to kill'])), ['~kill', 'kill']);
  });

  it('ignores writes after end() and counts them', () => {
    const counters = new Counters();
    const s = new PhraseScanner(m, () => assert.fail('no match expected'), { counters });
    s.end();
    s.write('kill');
    s.end();
    assert.equal(counters.get('match.write_after_end'), 1);
  });
});

describe('PhraseScanner context', () => {
  const m = matcher(phrase('kill myself'));

  it('marks the match in readable text, cut at word boundaries with "..."', () => {
    const text = 'It has been a very long and difficult year at school and now I really want to KILL   MYSELF tonight because nobody listens to me at all, not even my friends.';
    const [hit] = run(m, [text]);
    assert.equal(hit.context, '... long and difficult year at school and now i really want to [[kill myself]] tonight because nobody listens to me at all, not even my ...');
    assert.equal(hit.offset, text.toLowerCase().indexOf('kill'));
  });

  it('shows the original spelling of an obfuscated match', () => {
    assert.equal(run(m, ['so k.i.l.l m y s e l f now'])[0].context, 'so [[k.i.l.l m y s e l f]] now');
  });

  it('shortens the context of a match longer than the display ring, and counts it', () => {
    // Within MAX_PATTERN_BYTES a match outgrows the ring only through display-only characters:
    // each letter carries 30 distinct combining marks (shown, stripped from the skeleton).
    const marks = Array.from({ length: 30 }, (_, i) => String.fromCharCode(0x316 + i)).join('');
    const count = Math.floor((MAX_PATTERN_BYTES - 1) / 3);
    const shown = `q${marks}z${marks}`;
    const text = Array.from({ length: count }, () => shown).join(' ');
    assert.ok(text.length > DISPLAY_RING_UNITS, 'the match outgrows the ring');
    const long = matcher(phrase(Array.from({ length: count }, () => 'qz').join(' ')));
    const counters = new Counters();
    const found = run(long, [`${text} end`], { counters });
    assert.equal(found.length, 1);
    assert.ok(found[0].context.startsWith('... [['), found[0].context.slice(0, 40));
    assert.ok(found[0].context.endsWith(`${shown.normalize('NFKC')}]] end`), found[0].context.slice(-40));
    assert.ok(found[0].context.length < text.length, 'the start of the match is gone from the ring');
    assert.equal(counters.get('match.context_truncated'), 1);
  });

  it('honours contextChars', () => {
    const out: string[] = [];
    const s = new PhraseScanner(m, (h) => out.push(h.context), { contextChars: 5 });
    s.write('one two three kill myself four five six');
    s.end();
    assert.deepEqual(out, ['... [[kill myself]] four ...']);
  });
});

describe('PhraseScanner limits', () => {
  it('reports early, and loses nothing, when more matches wait for context than MAX_PENDING_MATCHES', () => {
    const m = matcher(...Array.from({ length: 12 }, (_, k) => phrase(Array(k + 1).fill('die').join(' '))));
    const counters = new Counters();
    const words = 2000;
    const found = run(m, [Array(words).fill('die').join(' ')], { counters });
    let expected = 0;
    for (let k = 1; k <= 12; k++) expected += words - k + 1;
    assert.equal(found.length, expected);
    assert.ok(counters.get('match.pending_overflow') > 0);
  });
});

describe('PhraseScanner input', () => {
  const m = matcher(phrase('suïcide'), phrase('убить'));

  it('writeUtf8 joins multi-byte characters cut between calls', () => {
    const bytes = Buffer.from('la suïcide et убить', 'utf8');
    for (let cut = 0; cut <= bytes.length; cut++) {
      const out: string[] = [];
      const s = new PhraseScanner(m, (h) => out.push(h.context));
      s.writeUtf8(bytes.subarray(0, cut));
      s.writeUtf8(bytes.subarray(cut));
      s.end();
      assert.deepEqual(out, ['la [[suïcide]] et убить', 'la suïcide et [[убить]]'], `cut at ${cut}`);
    }
  });

  it('reuses engine streams across scanners (a scanner gives its stream back at end)', () => {
    const db = AcDfa.compile(matcherPatterns(m), 1);
    let opened = 0;
    const counting: MatchDatabase = {
      size: db.size,
      streamStateSize: db.streamStateSize,
      serialize: () => db.serialize(),
      openStream: () => (opened++, db.openStream()),
    };
    const text = 'nous suicide, SUICIDE!! убить '.repeat(20); // past the short-text path
    const expected = run(m, [text]);
    for (let k = 0; k < 50; k++) assert.deepEqual(run(m, [text], { database: counting }), expected);
    assert.equal(opened, 1);
  });

  it('runs on any engine built from matcherPatterns with the same results', () => {
    const other = AcDfa.compile(matcherPatterns(m), 1); // fully sparse automaton
    const text = ['nous suicide, SUICIDE!! убить убить'];
    assert.deepEqual(run(m, text, { database: other }), run(m, text));
    assert.equal(run(m, text).length, 4);
  });
});

describe('PhraseScanner chunking', () => {
  const m = matcher(
    phrase('kill myself'), phrase('kill', { embedded: true, exclusions: ['killer whale'] }), phrase('suicide'),
    phrase('die'), phrase('AK47'), phrase('убить'), phrase('ass', { embedded: true, exclusions: ['class'] }),
  );
  const texts = [
    'I want to K1LL mys3lf — s.u.i.c.i.d.e, $uicide; AK-47 ak47 diiiie. A killer whale in class, you ass.',
    'ＫＩＬＬ ＭＹＳＥＬＦ sui\u0308cide \ud83d\ude00 я хочу убить\u0301 and d\u200bie, then k-i-l-l-e-r w-h-a-l-e',
  ];
  for (const text of texts) {
    it(`gives the same matches and contexts for every two-chunk cut: ${JSON.stringify(text.slice(0, 20))}`, () => {
      const whole = run(m, [text]);
      assert.ok(whole.length >= 5);
      for (let cut = 0; cut <= text.length; cut++) {
        assert.deepEqual(run(m, [text.slice(0, cut), text.slice(cut)]), whole, `cut at ${cut}`);
      }
    });
  }
});

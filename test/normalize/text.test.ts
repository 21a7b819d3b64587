/**
 * Tests for sensor/normalize/text.ts: every folding rule on whole texts, the run-length map, the
 * display ring, and chunk independence (a text cut in two at every offset, and fed one unit at a
 * time, gives exactly the skeleton of the whole text), batching and stretch seams. The native fold
 * loop is compared with this module in test/match/hyperscan.test.ts (it ships with that addon).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Counters } from '../../sensor/events/counters.js';
import {
  BATCH_UNITS,
  MAX_SPELLED_LETTERS,
  MAX_TOKEN_CHARS,
  mapDisplayPos,
  mapRun,
  normalizeText,
  skeletonOf,
  TextNormalizer,
} from '../../sensor/normalize/text.js';

/** Skeleton bytes and runs of a text fed as `chunks` (strings, or ASCII bytes), via a real streaming normaliser. */
function stream(chunks: readonly (string | Uint8Array)[], batch = false): { skeleton: string; runs: number[]; display: number[] } {
  const bytes: number[] = [];
  const runs: number[] = [];
  const display: number[] = [];
  const n: TextNormalizer = new TextNormalizer((b, map, len) => {
    for (let k = 0; k < len; k++) {
      bytes.push(b[k]);
      runs.push(mapRun(map[k]));
      display.push(mapDisplayPos(map[k], n.displayPos));
    }
  }, undefined, { batch });
  for (const c of chunks) {
    if (typeof c === 'string') n.write(c);
    else n.writeAscii(c);
  }
  n.finish();
  return { skeleton: Buffer.from(bytes).toString('utf8'), runs, display };
}

describe('normalizeText folding rules', () => {
  it('lower-cases and joins words with one space, whatever separates them', () => {
    assert.equal(normalizeText('Want  TO,\t\r\n--  Die!!'), 'want to die');
    assert.equal(normalizeText('  leading and trailing...  '), 'leading and trailing');
  });

  it('applies NFKC: fullwidth letters, ligatures, compatibility digits', () => {
    assert.equal(normalizeText('ＫＩＬＬ ｍｅ'), 'kil me');
    assert.equal(normalizeText('\ufb01ght'), 'fight');
    assert.equal(normalizeText('ak\u2074\u2077'), 'ak 47');
    assert.equal(normalizeText('\ud835\udc0a\ud835\udc08\ud835\udc0b\ud835\udc0b'), 'kil'); // mathematical bold KILL
  });

  it('removes diacritics, precomposed or combining', () => {
    assert.equal(normalizeText('suïcide'), 'suicide');
    assert.equal(normalizeText('sui\u0308cide'), 'suicide');
    assert.equal(normalizeText('Ça Été ÑANDÚ'), 'ca ete nandu');
    assert.equal(normalizeText('שָׁלוֹם'), 'שלום');
  });

  it('folds letters without a decomposition (ß, ø, ł, æ) and final sigma', () => {
    assert.equal(normalizeText('STRASSE straße Straẞe'), 'strase strase strase');
    assert.equal(normalizeText('Øl Łódź æther'), 'ol lodz aether');
    assert.equal(normalizeText('ΟΔΟΣ οδος'), 'οδοσ οδοσ');
  });

  it('ignores zero-width and format characters inside words', () => {
    assert.equal(normalizeText('ki\u200bll my\u00adself'), 'kil myself');
    assert.equal(normalizeText('k\u200di\ufeffll'), 'kil');
  });

  it('reads leet digits and symbols between letters as letters', () => {
    assert.equal(normalizeText('k1ll'), 'kil');
    assert.equal(normalizeText('h@te'), 'hate');
    assert.equal(normalizeText('d!e'), 'die');
    assert.equal(normalizeText('l33t h4x0r'), 'let haxor');
    assert.equal(normalizeText('sh!t'), 'shit');
    assert.equal(normalizeText('5h1t'), '5 hit'); // a leading digit is a number, not a letter
  });

  it('reads a leading $ before a letter as s, and no other leading or trailing symbol', () => {
    assert.equal(normalizeText('$uicide'), 'suicide');
    assert.equal(normalizeText('@everyone die!'), 'everyone die');
    assert.equal(normalizeText('cost $100'), 'cost 100');
  });

  it('keeps digits as their own word unless between letters: AK47 = AK-47 = ak 47', () => {
    assert.equal(normalizeText('AK47'), 'ak 47');
    assert.equal(normalizeText('AK-47'), 'ak 47');
    assert.equal(normalizeText('ak 47'), 'ak 47');
    assert.equal(normalizeText('tiger5 win7'), 'tiger 5 win 7');
    assert.equal(normalizeText('3d 2nd'), '3 d 2 nd');
    assert.equal(normalizeText('a2b'), 'a 2 b'); // 2 has no letter: not leet
  });

  it('joins three or more letters spelled out with one separator each', () => {
    assert.equal(normalizeText('s.u.i.c.i.d.e'), 'suicide');
    assert.equal(normalizeText('S U I C I D E now'), 'suicide now');
    assert.equal(normalizeText('k-i-l-l'), 'kil');
    assert.equal(normalizeText('a b'), 'a b');
    assert.equal(normalizeText('s. u. i.'), 's u i');
    assert.equal(normalizeText('s..u..i'), 's u i');
    assert.equal(normalizeText('x y zz'), 'x y z');
    assert.equal(normalizeText('k.i.l.l y.o.u'), 'kil you');
    assert.equal(normalizeText('k.i.l.l m.e'), 'kil m e'); // two letters are not a run
    assert.equal(normalizeText('k i l l  m y s e l f'), 'kil myself');
  });

  it('cuts a spelled run at MAX_SPELLED_LETTERS letters', () => {
    const letters = 'ab'.repeat(MAX_SPELLED_LETTERS).split('');
    const expected = letters.slice(0, MAX_SPELLED_LETTERS).join('') + ' ' + letters.slice(MAX_SPELLED_LETTERS).join('');
    assert.equal(normalizeText(letters.join('.')), expected);
  });

  it('collapses repeated letters and records the run length (3 = three or more)', () => {
    assert.equal(normalizeText('diiiiie'), 'die');
    assert.deepEqual([...skeletonOf('diiiiie').runs], [1, 3, 1]);
    assert.deepEqual([...skeletonOf('Kill').runs], [1, 1, 2]);
    assert.deepEqual([...skeletonOf('as ass').runs], [1, 1, 1, 1, 2]);
    assert.deepEqual([...skeletonOf('1000').runs], [1, 1, 1, 1]); // digits never collapse
    assert.equal(normalizeText('1000'), '1000');
  });

  it('treats any Unicode letter as a word character: no boundary between scripts', () => {
    assert.equal(normalizeText('killя kill.я убить'), 'kilя kil я убить');
    assert.equal(normalizeText('αkill'), 'αkil');
    assert.equal(normalizeText('日本語のテキスト'), '日本語のテキスト');
  });

  it('cuts words longer than MAX_TOKEN_CHARS and counts it', () => {
    const counters = new Counters();
    const word = 'ab'.repeat(MAX_TOKEN_CHARS); // 2 x the limit
    const out: number[] = [];
    const n = new TextNormalizer((b, _m, len) => out.push(...b.subarray(0, len)), counters);
    n.write(word);
    n.finish();
    assert.equal(Buffer.from(out).toString().trim(), `${word.slice(0, MAX_TOKEN_CHARS)} ${word.slice(MAX_TOKEN_CHARS)}`);
    assert.equal(counters.get('normalize.text.long_token_cut'), 2);
  });
});

describe('TextNormalizer map and display', () => {
  it('maps each skeleton byte to where its source starts in the display text', () => {
    const r = stream(['Hello,   WORLD  k1ll']);
    assert.equal(r.skeleton, ' helo world kil ');
    // display text is "hello, world k1ll"
    assert.deepEqual(r.display, [0, 0, 1, 2, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17]);
    assert.deepEqual(r.runs, [1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1]);
  });

  it('keeps NFKC lower-case text with whitespace collapsed in the display ring', () => {
    const n = new TextNormalizer(() => undefined);
    n.write('  I  WANT\tto\n\nＤＩＥ — s.u.i.c.i.d.e!!!!!!!!!!!!!!!!!!!! ok');
    n.finish();
    assert.equal(n.displayText(n.displayOldest, n.displayPos), 'i want to die — s.u.i.c.i.d.e!!!!!!!! ok');
  });

  it('trims long runs in the display (not the skeleton) and counts each trimmed run', () => {
    const counters = new Counters();
    const bytes: number[] = [];
    const n = new TextNormalizer((b, _m, len) => bytes.push(...b.subarray(0, len)), counters);
    n.write('diiiiiiiiiiiie -=-=-=-=-=-=-=-=-=-=-=-= yes !!!!!!!!!!!!');
    n.finish();
    assert.equal(n.displayText(n.displayOldest, n.displayPos), 'diiiiiiiie -=-=-=-=-=-=-=- yes !!!!!!!!');
    assert.equal(Buffer.from(bytes).toString(), ' die yes ');
    assert.equal(counters.get('normalize.text.display_trimmed'), 3);
  });

  it('reads display text back whole across the ring wrap, surrogate pairs and other scripts included', () => {
    // 4 units, then 1,800 items of 7: the 8,192-unit ring wraps, and item 1,169's emoji sits at
    // display positions 8,191 and 8,192, its surrogate pair split between the ring's end and start
    const item = 'abc \ud83d\ude00 ';
    const shown = 'abc ' + item.repeat(1800) + 'щ end';
    const n = new TextNormalizer(() => undefined);
    n.write(shown);
    n.finish();
    assert.equal(n.displayPos, shown.length);
    assert.equal(shown.slice(8191, 8193), '\ud83d\ude00');
    const oldest = n.displayOldest;
    assert.equal(n.displayText(oldest, n.displayPos), shown.slice(oldest));
    for (const from of [n.displayPos - 8192, 8190, 8191, 8192, 9000, n.displayPos - 5]) {
      for (const len of [1, 2, 7, 100]) {
        const to = Math.min(n.displayPos, from + len);
        assert.equal(n.displayText(from, to), shown.slice(from, to), `display [${from}, ${to})`);
      }
    }
  });
});

describe('TextNormalizer chunking', () => {
  const texts = [
    'I want to K1LL mys3lf — s.u.i.c.i.d.e, $uicide; AK-47 ak47 diiiie.',
    'suïcide sui\u0308cide e\u0301te\u0301 \u1100\u1161\u11a8 \uff76\uff9e end',
    'emoji \ud83d\ude00\ud83d\ude00 and \ud835\udc0a\ud835\udc08\ud835\udc0b\ud835\udc0b plus ki\u200bll',
    'x y z a.b.c q r s-t-u v w',
    'Zalgo k\u0301\u0302\u0303\u0304i\u0305\u0306l\u0307l and убить and ΣΊΣΥΦΟΣ.',
    'word'.repeat(30) + ' ' + 'A1B2'.repeat(20) + ' $$$ @@@ tail',
  ];

  for (const text of texts) {
    it(`gives the same skeleton, runs and map cut anywhere: ${JSON.stringify(text.slice(0, 24))}`, () => {
      const whole = stream([text]);
      for (let cut = 0; cut <= text.length; cut++) {
        const two = stream([text.slice(0, cut), text.slice(cut)]);
        assert.deepEqual(two, whole, `cut at ${cut}`);
      }
      assert.deepEqual(stream(text.split('')), whole, 'one unit at a time');
    });
  }

  it('folds long input in pieces, from strings or ASCII bytes, with the same result', () => {
    const text = ('Kill  myself, s.u.i.c.i.d.e h@te AK-47 ' + 'x'.repeat(60) + ' tail ').repeat(600); // ~64k units
    const whole = stream([text]);
    const ascii = new Uint8Array(Buffer.from(text, 'latin1'));
    const pieces = (n: number): Uint8Array[] => Array.from({ length: Math.ceil(ascii.length / n) }, (_, k) => ascii.subarray(k * n, (k + 1) * n));
    assert.equal(whole.skeleton.split(' kil myself suicide hate ak 47 ').length, 601);
    assert.deepEqual(stream([ascii]), whole);
    assert.deepEqual(stream(pieces(997)), whole);
    assert.deepEqual(stream([text.slice(0, 20_000), ascii.subarray(20_000, 40_000), text.slice(40_000)]), whole);
  });

  it('writeAscii reads bytes that are not ASCII as Latin-1', () => {
    assert.deepEqual(stream([new Uint8Array([0x63, 0x61, 0x66, 0xe9])]), stream(['caf\u00e9']));
  });

  it('holds back a combining sequence until it can no longer continue', () => {
    // "e" then a combining acute in the next chunk: one display character "é", skeleton "e"
    const n = new TextNormalizer(() => undefined);
    n.write('caf');
    n.write('e');
    n.write('\u0301 ok');
    n.finish();
    assert.equal(n.displayText(n.displayOldest, n.displayPos), 'café ok');
  });

  it('joins Hangul jamo and halfwidth voiced kana split across chunks as NFKC does', () => {
    assert.equal(stream(['\u1100', '\u1161']).skeleton, ' \uac00 ');
    assert.equal(stream(['\uff76', '\uff9e']).skeleton, ' \u30ac ');
  });

  it('batch: collected writes give the same skeleton, runs and map, folded at BATCH_UNITS and at the end', () => {
    for (const text of texts) {
      const whole = stream([text]);
      assert.deepEqual(stream(text.split(''), true), whole, 'one unit at a time, batched');
      assert.deepEqual(stream([text.slice(0, 7), new Uint8Array(Buffer.from('ki')), text.slice(7)], true), stream([text.slice(0, 7), 'ki', text.slice(7)]));
    }
    const seen: number[] = [];
    const n = new TextNormalizer((_b, _m, len) => seen.push(len), undefined, { batch: true });
    n.write('kill '.repeat(100));
    assert.equal(n.skeletonPos, 1, 'nothing folded yet: only the leading virtual space');
    n.write('kill '.repeat(BATCH_UNITS / 5));
    assert.ok(n.skeletonPos > 1000, 'folded once BATCH_UNITS were collected');
    n.finish();
    assert.equal(seen.reduce((a, b) => a + b, 0), n.skeletonPos);
  });

  it('finishStretch + restart keeps the slice and puts two spaces at the seam', () => {
    const slices: string[] = [];
    const n = new TextNormalizer((b, _m, len) => slices.push(Buffer.from(b.subarray(0, len)).toString()));
    n.write('ki');
    n.finishStretch();
    assert.deepEqual(slices, [], 'no slice handed over');
    const seam = n.displayPos;
    n.restart();
    n.write('ll me');
    n.finish();
    assert.deepEqual(slices, [' ki  l me ']);
    assert.equal(n.displayFloor, seam);
  });

  it('restart begins an unrelated stretch: no word joins across it', () => {
    const bytes: number[] = [];
    const n = new TextNormalizer((b, _m, len) => bytes.push(...b.subarray(0, len)));
    n.write('ki');
    n.finish();
    n.restart();
    n.write('ll');
    n.finish();
    assert.equal(Buffer.from(bytes).toString(), ' ki  l ');
    assert.equal(n.displayFloor, 2);
  });
});

/**
 * Tests for sensor/match/ac-dfa.ts: the pure-TS engine against a naive indexOf reference (random
 * patterns and texts over a small alphabet, whole streams cut into random pieces), with the
 * automaton fully dense, fully sparse and mixed; serialisation; and the checks on loaded tables.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AcDfa, AcDfaFormatError, buildTrie, deserializeAcDfa, PureTsEngine } from '../../sensor/match/ac-dfa.js';
import { NO_MATCHES, type MatchDatabase } from '../../sensor/match/engine.js';

const enc = new TextEncoder();

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Every (pattern, end) pair, sorted, by brute force. */
function naive(patterns: readonly Uint8Array[], text: Uint8Array): string[] {
  const out: string[] = [];
  const hay = Buffer.from(text);
  patterns.forEach((p, id) => {
    for (let i = hay.indexOf(p); i >= 0; i = hay.indexOf(p, i + 1)) out.push(`${id}@${i + p.length}`);
  });
  return out.sort();
}

/** Scans `text` cut at the given points; returns sorted pairs, checking the per-call contract. */
function scanned(db: MatchDatabase, text: Uint8Array, cuts: number[]): string[] {
  const s = db.openStream();
  const out: string[] = [];
  let prev = 0;
  for (const c of [...cuts, text.length]) {
    const pairs = s.scan(text.subarray(prev, c));
    let lastEnd = 0;
    for (let k = 0; k < pairs.length; k += 2) {
      assert.ok(pairs[k + 1] > prev && pairs[k + 1] <= c, 'end lies inside this call');
      assert.ok(pairs[k + 1] >= lastEnd, 'ascending ends');
      lastEnd = pairs[k + 1];
      out.push(`${pairs[k]}@${pairs[k + 1]}`);
    }
    prev = c;
  }
  s.close();
  return out.sort();
}

describe('AcDfa against a naive search', () => {
  for (const budget of [1, 64, 1 << 22]) {
    it(`finds every overlapping occurrence (dense cell budget ${budget})`, () => {
      const r = rng(budget);
      for (let round = 0; round < 20; round++) {
        const alphabet = 'ab c'.slice(0, 2 + Math.floor(r() * 3));
        const word = (n: number): string => Array.from({ length: n }, () => alphabet[Math.floor(r() * alphabet.length)]).join('');
        const patterns = Array.from({ length: 1 + Math.floor(r() * 40) }, () => enc.encode(word(1 + Math.floor(r() * 6))));
        const text = enc.encode(word(300 + Math.floor(r() * 300)));
        const db = AcDfa.compile(patterns, budget);
        const cuts = [...new Set(Array.from({ length: 5 }, () => Math.floor(r() * text.length)))].sort((a, b) => a - b);
        assert.deepEqual(scanned(db, text, cuts), naive(patterns, text), `round ${round}`);
      }
    });
  }

  it('finds a pattern at every position of a long call, across the two lanes\' seam', () => {
    const db = AcDfa.compile([enc.encode('abcdef'), enc.encode('f')]);
    for (let at = 0; at + 6 <= 600; at++) {
      const text = new Uint8Array(600).fill(0x78);
      text.set(enc.encode('abcdef'), at);
      assert.deepEqual([...db.openStream().scan(text)], [0, at + 6, 1, at + 6], `at ${at}`);
    }
  });

  it('reports he/she/his/hers in "ushers" the classic way', () => {
    const db = AcDfa.compile(['he', 'she', 'his', 'hers'].map((p) => enc.encode(p)));
    assert.deepEqual([...db.openStream().scan(enc.encode('ushers'))], [1, 4, 0, 4, 3, 6]);
  });

  it('reports duplicate patterns under each id', () => {
    const db = AcDfa.compile(['kill', 'kill'].map((p) => enc.encode(p)));
    assert.deepEqual([...db.openStream().scan(enc.encode('a kill'))], [0, 6, 1, 6]);
  });

  it('returns the shared NO_MATCHES when nothing matched, and reset restarts offsets', () => {
    const db = AcDfa.compile([enc.encode('abc')]);
    const s = db.openStream();
    assert.equal(s.scan(enc.encode('xxab')), NO_MATCHES);
    assert.equal(s.reset(), NO_MATCHES);
    assert.equal(s.scan(enc.encode('c abc')).join(','), '0,5'); // "ab" before the reset is forgotten
  });

  it('refuses an empty pattern', () => {
    assert.throws(() => AcDfa.compile([new Uint8Array(0)]), /empty pattern/);
  });

  it('rebuilds its literal patterns from the trie', () => {
    const patterns = [' kill ', 'kill', ' kill myself ', 'убить', 'a'].map((p) => enc.encode(p));
    assert.deepEqual(AcDfa.compile(patterns, 64).patterns(), patterns);
  });
});

describe('AcDfa serialisation', () => {
  const patterns = [' kill ', ' kil myself ', 'as', ' die '].map((p) => enc.encode(p));

  it('round-trips through serialize/deserialize with the same tables and matches', () => {
    const engine = new PureTsEngine();
    const db = engine.compileLiterals(patterns);
    const back = engine.deserialize(db.serialize());
    assert.deepEqual(back.parts, db.parts);
    assert.deepEqual(back.dense, db.dense);
    assert.deepEqual(back.records, db.records);
    const text = enc.encode(' i will kill myself or die as a class ');
    assert.deepEqual(back.openStream().scan(text), db.openStream().scan(text));
  });

  it('rejects damaged bytes with AcDfaFormatError', () => {
    const good = AcDfa.compile(patterns).serialize();
    assert.throws(() => deserializeAcDfa(good.subarray(0, 10)), AcDfaFormatError);
    const magic = good.slice();
    magic[0] ^= 1;
    assert.throws(() => deserializeAcDfa(magic), /bad magic/);
    assert.throws(() => deserializeAcDfa(good.subarray(0, good.length - 8)), AcDfaFormatError);
  });

  it('rejects tables that are not a breadth-first trie', () => {
    const parts = buildTrie(patterns);
    const childCount = parts.childCount.slice();
    childCount[0] += 1;
    assert.throws(() => AcDfa.fromParts({ ...parts, childCount }), /child counts/);
    const nodeClass = parts.nodeClass.slice();
    nodeClass[1] = 0;
    assert.throws(() => AcDfa.fromParts({ ...parts, nodeClass }), /edge class/);
    const patternState = parts.patternState.slice();
    patternState[0] = parts.nodeClass.length;
    assert.throws(() => AcDfa.fromParts({ ...parts, patternState }), /pattern state/);
  });
});

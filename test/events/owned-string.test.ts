/**
 * ownedString: a bounded copy of a string that keeps nothing it was sliced from alive; the bound never
 * splits a surrogate pair, and short strings come back as they are.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ownedString } from '../../sensor/events/owned-string.js';
import { retainedBytes, uniqueSource } from '../helpers/heap.js';

test('ownedString returns equal text, bounded to maxUnits', () => {
  const s = `/search?q=${'\u00e9t\u00e9 '.repeat(50)}\u4e2d\u6587`;
  assert.equal(ownedString(s), s);
  assert.equal(ownedString(s, s.length), s);
  assert.equal(ownedString(s, 100), s.slice(0, 100));
  assert.equal(ownedString(s, 0), '');
  assert.equal(ownedString('', 10), '');
});

test('ownedString returns a string under 13 units as it is', () => {
  const s = 'GET';
  assert.equal(ownedString(s), s);
  assert.equal(ownedString('example.com!', 5), 'examp');
  assert.equal(ownedString('x'.repeat(12)).length, 12);
});

test('ownedString never splits a surrogate pair at the cut', () => {
  const s = `${'a'.repeat(20)}\u{1f600}b`;
  assert.equal(ownedString(s, 21), 'a'.repeat(20), 'the pair at 20-21 is dropped whole');
  assert.equal(ownedString(s, 22), `${'a'.repeat(20)}\u{1f600}`);
  assert.equal(ownedString(s, 5), 'aaaaa');
  // a short cut through a pair
  assert.equal(ownedString('ab\u{1f600}', 3), 'ab');
});

test('ownedString keeps lone surrogates and every UTF-16 unit as they were', () => {
  const s = `${'q'.repeat(14)}\ud800x\udc00y\u0000\u00ff\u0100\uffff`;
  assert.equal(ownedString(s), s);
  assert.equal(ownedString(s, 15), s.slice(0, 15), 'a lone high surrogate at the cut is not a pair: kept');
});

test('ownedString copies of slices keep none of their 64 KB sources alive', () => {
  const n = 2000;
  const source = 64 * 1024;
  const { bytes, held } = retainedBytes(() => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const s = uniqueSource(source);
      out.push(ownedString(s.slice(3, 3 + 40 + (i % 7))), ownedString(s, 200));
    }
    return out;
  });
  assert.equal((held as string[]).length, 2 * n);
  assert.ok(bytes < 0.2 * n * source, `${bytes} bytes retained for ${n} sources of ${source}`);
});

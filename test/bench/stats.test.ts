/**
 * The benches' statistics (bench/stats.ts): medians, the sign test against exact binomial values,
 * and the paired summary bench/ab.ts prints.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { median, pairedSummary, signTestP } from '../../bench/stats.js';

test('median: middle value, mean of the two middles for an even count, NaN for none', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
  assert.ok(Number.isNaN(median([])));
  const xs = [5, 4, 3];
  median(xs);
  assert.deepEqual(xs, [5, 4, 3], 'the input is not sorted in place');
});

test('sign test: two-sided exact binomial probabilities', () => {
  // 8 of 8 one way: 2 / 2^8; 7 of 8: 2 * (1 + 8) / 2^8; 6 of 8: 2 * (1 + 8 + 28) / 2^8
  assert.equal(signTestP(8, 8), 2 / 256);
  assert.equal(signTestP(0, 8), 2 / 256);
  assert.equal(signTestP(7, 8), 18 / 256);
  assert.equal(signTestP(6, 8), 74 / 256);
  assert.equal(signTestP(4, 8), 1, 'an even split is capped at 1');
  assert.equal(signTestP(0, 0), 1, 'no pairs that differ: no evidence');
  assert.equal(signTestP(12, 12), 2 / 4096);
  assert.throws(() => signTestP(9, 8), RangeError);
  assert.throws(() => signTestP(1.5, 8), RangeError);
});

test('paired summary: wins, ties, median change and the test over the pairs that differ', () => {
  const a = [10, 10, 10, 10, 10];
  const b = [9, 9.5, 10, 11, 8];
  const s = pairedSummary(a, b);
  assert.equal(s.pairs, 5);
  assert.equal(s.bLess, 3);
  assert.equal(s.bMore, 1);
  assert.equal(s.medianA, 10);
  assert.equal(s.medianB, 9.5);
  assert.ok(Math.abs(s.medianChange - -0.05) < 1e-12, `median change ${s.medianChange}`);
  // differences -1, -0.5, 0, 1, -2: median -0.5
  assert.equal(s.medianDifference, -0.5);
  // a difference near zero, where a ratio would explode, stays a difference
  assert.equal(pairedSummary([0.001, 5, 5], [1, 6, 7]).medianDifference, 1);
  assert.equal(s.p, signTestP(3, 4));
  assert.throws(() => pairedSummary([1], [1, 2]), RangeError);
});

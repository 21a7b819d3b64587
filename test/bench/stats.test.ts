/**
 * The benches' statistics (bench/stats.ts): medians, the sign test against exact binomial values,
 * the paired summary bench/ab.ts prints, and the least-squares slope bench/soak.ts prints.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leastSquaresSlope, median, pairedSummary, signTestP } from '../../bench/stats.js';

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

test('leastSquaresSlope: the ordinary least-squares slope, not the slope between the ends', () => {
  assert.equal(leastSquaresSlope([0, 1, 2, 3], [5, 7, 9, 11]), 2, 'a straight line: its slope');
  assert.equal(leastSquaresSlope([0, 1, 2], [4, 4, 4]), 0, 'flat');
  // ends at 0 and 0 (an end-to-end slope of 0), a bump in the middle that the fit does not see
  // as growth: sum((x - 1.5)(y - 1.5)) / sum((x - 1.5)^2) = (-1.5*-1.5 + -0.5*1.5 + 0.5*4.5 + 1.5*-1.5) / 5 = 0.3
  assert.ok(Math.abs(leastSquaresSlope([0, 1, 2, 3], [0, 3, 6, 0]) - 0.3) < 1e-12);
  // unevenly spaced x, order does not matter: y = 10 - 0.5 x
  assert.equal(leastSquaresSlope([8, 0, 2], [6, 10, 9]), -0.5);
  assert.ok(Number.isNaN(leastSquaresSlope([1], [1])), 'one point has no slope');
  assert.ok(Number.isNaN(leastSquaresSlope([2, 2], [1, 5])), 'every x the same has no slope');
  assert.throws(() => leastSquaresSlope([1, 2], [1]), RangeError);
});

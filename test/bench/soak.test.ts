/**
 * bench/soak.ts's summary of RSS (rssTrend): which samples make the second half, the slope over
 * them in MB an hour, and the peak. The soak itself needs root and minutes; its command line is
 * checked with every bench's in command-line.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rssTrend, type RssSample } from '../../bench/soak.js';

const MB = 1024 * 1024;

/** A sample every `everyS` seconds over `n` samples, RSS from `mbAt(seconds)`. */
function samples(n: number, everyS: number, mbAt: (s: number) => number): RssSample[] {
  return Array.from({ length: n }, (_, k) => ({ seconds: k * everyS, rssBytes: mbAt(k * everyS) * MB }));
}

test('rssTrend: growth in the second half, in MB an hour, not counting the start-up in the first', () => {
  // 10 minutes, a sample every 10 s: 300 MB of start-up in the first minute, then 2 MB a minute
  const t = rssTrend(samples(61, 10, (s) => (s < 60 ? (300 * s) / 60 : 300 + (2 * (s - 60)) / 60)))!;
  assert.equal(t.secondHalfStart.seconds, 300, 'the first sample at half the span');
  assert.equal(t.secondHalfSamples, 31);
  assert.equal(t.end.seconds, 600);
  assert.ok(Math.abs(t.slopeMbPerHour - 120) < 1e-9, `2 MB a minute is 120 MB an hour, not ${t.slopeMbPerHour}`);
  assert.equal(t.peakBytes, (300 + (2 * 540) / 60) * MB);
});

test('rssTrend: a plateau after a peak in the first half has no slope, and the peak is the first half\'s', () => {
  const t = rssTrend(samples(21, 30, (s) => (s === 60 ? 900 : s < 120 ? 400 : 500)))!;
  assert.equal(t.slopeMbPerHour, 0);
  assert.equal(t.peakBytes, 900 * MB);
  assert.equal(t.secondHalfStart.rssBytes, 500 * MB);
  assert.equal(t.end.rssBytes, 500 * MB);
});

test('rssTrend: an interrupted run is halved where it stopped; one sample has no slope; none, no trend', () => {
  const t = rssTrend(samples(7, 10, () => 100))!;
  assert.equal(t.secondHalfStart.seconds, 30);
  assert.equal(t.secondHalfSamples, 4);
  const one = rssTrend([{ seconds: 0, rssBytes: 5 * MB }])!;
  assert.ok(Number.isNaN(one.slopeMbPerHour));
  assert.equal(one.end.rssBytes, 5 * MB);
  assert.equal(rssTrend([]), undefined);
});

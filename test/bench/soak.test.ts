/**
 * bench/soak.ts's summary of RSS (rssTrend): which samples make the second half, the slope over
 * them in MB an hour, and the peak; the memory breakdown each sample and the summary print. The soak itself needs root and minutes; its command line is
 * checked with every bench's in command-line.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exitWithin, spawnListener } from '../../bench/live-harness.js';
import { memoryBreakdown, memoryCells, parseSoakArgs, rssTrend, type RssSample } from '../../bench/soak.js';
import { summarizeMemory } from '../../sensor/health/memory.js';

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
  assert.deepEqual(t.quarterLowBytes, [0, 300 + (2 * 90) / 60, 300 + (2 * 240) / 60, 300 + (2 * 390) / 60].map((m) => m * MB));
});

test('rssTrend: the lowest RSS of each quarter tells a swing that returns from lows that rise', () => {
  // a collector's saw-tooth: 1,000 MB climbing to 1,400 every 3 minutes, over 20 minutes
  const swing = rssTrend(samples(121, 10, (s) => 1000 + ((s % 180) * 400) / 180))!;
  assert.deepEqual(swing.quarterLowBytes, [1000 * MB, 1000 * MB, 1000 * MB, 1000 * MB]);
  // the same saw-tooth on a floor rising 10 MB a minute
  const leak = rssTrend(samples(121, 10, (s) => 1000 + s / 6 + ((s % 180) * 400) / 180))!;
  // the lows: the saw-tooth's restarts at 0, 360 and 720 s, and the last quarter's first sample (900 s)
  assert.deepEqual(leak.quarterLowBytes, [1000, 1060, 1120, 1150].map((m) => m * MB));
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
  assert.deepEqual(one.quarterLowBytes, [5 * MB]);
  assert.equal(rssTrend([]), undefined);
});

test('memoryCells and memoryBreakdown: capture heap, workers\' heap summed, young generation summed, shared, other', () => {
  const m = summarizeMemory({
    rss_bytes: 1210 * MB,
    capture: { heap_committed_bytes: 152 * MB, young_generation_bytes: 128 * MB, external_bytes: 4 * MB },
    workers: [{ heap_committed_bytes: 161 * MB, young_generation_bytes: 128 * MB, external_bytes: 3 * MB }, { heap_committed_bytes: 158 * MB, young_generation_bytes: 128 * MB, external_bytes: 2 * MB }],
    shared: { capture_rings: 64 * MB, handoff_rings: 64 * MB, bypass_tables: 7 * MB },
    other_bytes: 585 * MB,
  });
  assert.deepEqual(memoryCells(m), ['152.0', '319.0', '384.0', '135.0', '585.0']);
  assert.equal(memoryBreakdown(m), 'capture heap 152.0, workers\' heap 319.0 (2 workers), young generation 384.0 of those, external 9.0, shared 135.0, other 585.0 MB of RSS 1210.0 MB');
  assert.deepEqual(memoryCells(undefined), ['?', '?', '?', '?', '?'], 'a status without a memory section');
  assert.match(memoryBreakdown(undefined), /no memory section/);
});

test('--sensor-stdout: the sensor\'s stdout (where V8 writes --trace-gc) goes to a file only its owner reads', async () => {
  assert.equal(parseSoakArgs(['--sensor-stdout', '/tmp/x.log']).sensorStdout, '/tmp/x.log');
  assert.equal(parseSoakArgs([]).sensorStdout, undefined);
  const dir = mkdtempSync(join(tmpdir(), 'hark-soak-stdout-'));
  try {
    const file = join(dir, 'sensor.log');
    const l = spawnListener('sh', ['-c', 'echo "[1:0x1] 12 ms: Scavenge"; echo listening on >&2'], file);
    await l.exited;
    assert.equal(readFileSync(file, 'utf8'), '[1:0x1] 12 ms: Scavenge\n');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(l.stderr(), /listening on/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('exitWithin: the exit when it comes first, undefined after the time, and no timer left behind either way', async () => {
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  assert.equal(await exitWithin(Promise.resolve([0, null]), 600_000).then((r) => r?.[0]), 0);
  assert.equal(timers(), before, 'a 10-minute timer still pending would keep the bench alive after its summary');
  assert.equal(await exitWithin(new Promise(() => {}), 10), undefined);
  assert.equal(timers(), before);
});

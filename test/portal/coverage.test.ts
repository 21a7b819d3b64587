import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { counterDelta, coverageAdvice, coverageDays, recordCoverage } from '../../home/coverage.js';
import { HomeStore } from '../../home/store.js';

test('counterDelta takes the increase within a run and the new value after a restart', () => {
  assert.equal(counterDelta(undefined, 50, true), 50);
  assert.equal(counterDelta(40, 50, true), 10);
  assert.equal(counterDelta(40, 50, false), 50);
  assert.equal(counterDelta(90, 50, true), 50, 'a counter going down means the sensor restarted');
});

test('recordCoverage sums heartbeat deltas per day across a restart and coverageAdvice names the fix', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hark-cov-'));
  const store = new HomeStore(join(dir, 'home.db'));
  try {
    const at = Date.parse('2026-11-20T10:00:00Z');
    const beats = [
      { started_at: 'a', counters: { 'decoder.bytes': 1000, 'quic.bytes_uninspectable': 100, 'flow.tcp': 10 } },
      { started_at: 'a', counters: { 'decoder.bytes': 3000, 'quic.bytes_uninspectable': 300, 'flow.tcp': 20, 'flow.one_sided': 5 } },
      { started_at: 'b', counters: { 'decoder.bytes': 1000, 'quic.bytes_uninspectable': 0, 'flow.tcp': 10, 'other.counter': 7 } },
    ];
    let prev: Record<string, unknown> | undefined;
    for (const [i, b] of beats.entries()) { recordCoverage(store, 1, at + i * 60_000, b, prev); prev = b; }
    const [day] = coverageDays(store, '2026-11-01');
    assert.equal(day.day, '2026-11-20');
    assert.deepEqual(day.counters, { 'decoder.bytes': 4000, 'quic.bytes_uninspectable': 300, 'flow.tcp': 30, 'flow.one_sided': 5 });
    assert.equal(day.quic, 300 / 4000);
    assert.equal(day.one_sided, 5 / 30);
    assert.equal(day.tls_undecrypted, 0);
    const advice = coverageAdvice(day).join('\n');
    assert.match(advice, /block UDP 443/);
    assert.match(advice, /mirror both/);
    assert.doesNotMatch(advice, /TLS keys/);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Tests for sensor/workers/sizing.ts: the default worker count follows the cores and stops where
 * the memory runs out, an operator's count is kept but warned about when the memory looks too
 * small, and `hark run` says so on stderr at start.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { BASE_MEMORY_BYTES, planWorkers, usableMemoryBytes, WORKER_MEMORY_BYTES, workersForMemory } from '../../sensor/workers/sizing.js';
import { MAX_WORKERS } from '../../sensor/workers/pool.js';

const GIB = 1024 * 1024 * 1024;

describe('workers/sizing', () => {
  it('gives each worker its share beside the base', () => {
    assert.equal(workersForMemory(BASE_MEMORY_BYTES - 1), 0);
    assert.equal(workersForMemory(BASE_MEMORY_BYTES + WORKER_MEMORY_BYTES - 1), 0);
    assert.equal(workersForMemory(BASE_MEMORY_BYTES + WORKER_MEMORY_BYTES), 1);
    assert.equal(workersForMemory(4 * GIB), 6);
    assert.equal(workersForMemory(0), 0);
  });

  it('runs one worker per core where the memory carries them (the 2-core, 4 GiB appliance: 2)', () => {
    assert.deepEqual(planWorkers(2, 4 * GIB), { workers: 2 });
    assert.deepEqual(planWorkers(8, 24 * GIB), { workers: 8 });
    assert.deepEqual(planWorkers(1, 4 * GIB), { workers: 0 }, 'one core: everything on one thread');
    assert.equal(planWorkers(256, 1024 * GIB).workers, MAX_WORKERS);
  });

  it('runs fewer workers than cores when the memory would not carry one per core, and says why', () => {
    const plan = planWorkers(8, 4 * GIB);
    assert.equal(plan.workers, 6);
    assert.match(plan.note ?? '', /6 worker threads, not 8 \(one per core\): this machine has 4\.0 GiB of memory/);
    assert.match(plan.note ?? '', /--workers N overrides/);
    const one = planWorkers(4, 1.6 * GIB);
    assert.equal(one.workers, 1);
    assert.match(one.note ?? '', /1 worker thread, not 4/);
    const none = planWorkers(4, 1.2 * GIB);
    assert.equal(none.workers, 0);
    assert.match(none.note ?? '', /no worker threads \(everything on one thread\), not 4/);
  });

  it("keeps the operator's count, warning when the memory looks too small for it", () => {
    assert.deepEqual(planWorkers(2, 4 * GIB, 2), { workers: 2 });
    assert.deepEqual(planWorkers(2, 1 * GIB, 0), { workers: 0 });
    const big = planWorkers(2, 4 * GIB, 12);
    assert.equal(big.workers, 12);
    assert.match(big.note ?? '', /--workers 12 may need 7\.0 GiB of memory .* this machine has 4\.0 GiB.*--workers 6 fits/);
  });

  it('reads the memory this process may use: never more than the machine has', () => {
    const m = usableMemoryBytes();
    assert.ok(m > 0 && m <= totalmem(), `${m} of ${totalmem()}`);
  });

  it('hark run warns at start when --workers asks for more than the memory carries', () => {
    // one worker more than this machine's memory carries by the plan (on a machine that carries
    // the most --workers accepts, that count, which must then pass without a warning)
    const fits = workersForMemory(usableMemoryBytes());
    const n = Math.min(MAX_WORKERS, fits + 1);
    const need = ((BASE_MEMORY_BYTES + n * WORKER_MEMORY_BYTES) / GIB).toFixed(1);
    const hark = join(import.meta.dirname, '..', '..', 'sensor', 'cli', 'hark.js');
    const dataDir = mkdtempSync(join(tmpdir(), 'hark-sizing-'));
    try {
      // a missing interface stops the run after the plan is made, before any worker starts
      const r = spawnSync(process.execPath, [hark, 'run', '--workers', String(n), '--interface', 'hk-no-such-if0', '--data-dir', dataDir], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 2, r.stderr);
      if (n > fits) assert.ok(r.stderr.includes(`hark: --workers ${n} may need ${need} GiB of memory`), r.stderr);
      else assert.doesNotMatch(r.stderr, /may need/);
      assert.match(r.stderr, /Cannot open capture interface "hk-no-such-if0": no such interface/);
      assert.doesNotMatch(r.stderr, /warmed up/, 'no worker was started for an interface that is not there');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

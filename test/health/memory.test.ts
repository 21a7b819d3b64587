/**
 * health/memory.ts: VmRSS / VmHWM parsed from /proc status text (odd or missing lines left out),
 * the shared heap slot a worker writes and the main thread reads, sampleMemory's parts adding up
 * to RSS (the capture ring taken out of the capture thread's external memory, `other` never
 * negative, unreadable figures left out, never a throw), this thread's own V8 figures, and
 * summarizeMemory reading a status file's section tolerantly.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createHeapSlot, HeapSlot, parseProcStatusMemory, readThreadMemory, sampleMemory, summarizeMemory, type ThreadMemory } from '../../sensor/health/memory.js';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const dir = mkdtempSync(join(tmpdir(), 'hark-memory-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// The memory lines of a real /proc/self/status (Linux 6.1), trimmed.
const PROC_STATUS = [
  'Name:\tnode',
  'VmPeak:\t 2270400 kB',
  'VmSize:\t 2201360 kB',
  'VmHWM:\t 1402880 kB',
  'VmRSS:\t 1239040 kB',
  'RssAnon:\t 1100000 kB',
  'Threads:\t14',
  '',
].join('\n');

function procFile(text: string): string {
  const path = join(dir, `status-${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, text);
  return path;
}

describe('parseProcStatusMemory', () => {
  test('parseProcStatusMemory reads VmRSS and VmHWM in bytes', () => {
    assert.deepEqual(parseProcStatusMemory(PROC_STATUS), { rss_bytes: 1239040 * 1024, peak_rss_bytes: 1402880 * 1024 });
  });

  test('parseProcStatusMemory leaves out a missing or odd line, and refuses a text far too long', () => {
    assert.deepEqual(parseProcStatusMemory('Name:\tnode\nVmRSS:\t 100 kB\n'), { rss_bytes: 102400 });
    assert.deepEqual(parseProcStatusMemory('VmRSS:\t lots kB\nVmHWM:\t 12 MB\n'), {});
    assert.deepEqual(parseProcStatusMemory(''), {});
    assert.deepEqual(parseProcStatusMemory(`${PROC_STATUS}${'x'.repeat(20_000)}`), {});
  });
});

describe('HeapSlot', () => {
  test('HeapSlot: figures written through one view are read through another over the same memory', () => {
    const buf = createHeapSlot();
    const figures: ThreadMemory = { heap_used_bytes: 10 * MIB, heap_committed_bytes: 150 * MIB, young_generation_bytes: 128 * MIB, young_generation_size_bytes: 131 * MIB, external_bytes: 3 * MIB };
    new HeapSlot(buf).write(figures);
    assert.deepEqual(new HeapSlot(buf).read(), figures);
  });

  test('HeapSlot reads nothing before the first write, and leaves out a figure written unknown or odd', () => {
    const buf = createHeapSlot();
    assert.deepEqual(new HeapSlot(buf).read(), {});
    new HeapSlot(buf).write({ heap_used_bytes: 5, heap_committed_bytes: NaN, young_generation_bytes: -1 });
    assert.deepEqual(new HeapSlot(buf).read(), { heap_used_bytes: 5 });
  });
});

describe('readThreadMemory', () => {
  test('readThreadMemory gives this thread\'s V8 heap: used within committed, young generation within committed and within its size', () => {
    const m = readThreadMemory();
    for (const k of ['heap_used_bytes', 'heap_committed_bytes', 'young_generation_bytes', 'young_generation_size_bytes', 'external_bytes'] as const) {
      assert.ok(typeof m[k] === 'number' && m[k]! >= 0 && m[k]! < GIB, `${k} ${m[k]}`);
    }
    assert.ok(m.heap_used_bytes! > 0 && m.heap_used_bytes! <= m.heap_committed_bytes!, `used ${m.heap_used_bytes} <= committed ${m.heap_committed_bytes}`);
    assert.ok(m.young_generation_bytes! <= m.heap_committed_bytes!);
    // resident pages are committed ones; V8 commits at least a 1 MiB semi-space
    assert.ok(m.young_generation_bytes! <= m.young_generation_size_bytes! && m.young_generation_size_bytes! >= MIB, `young ${m.young_generation_bytes} <= size ${m.young_generation_size_bytes}`);
  });

  test('readThreadMemory counts an ArrayBuffer as external memory, and a SharedArrayBuffer not', () => {
    const before = readThreadMemory().external_bytes!;
    const shared = new SharedArrayBuffer(64 * MIB);
    const sharedAdded = readThreadMemory().external_bytes! - before;
    const own = new ArrayBuffer(64 * MIB);
    const ownAdded = readThreadMemory().external_bytes! - before;
    assert.ok(sharedAdded < MIB, `a SharedArrayBuffer added ${sharedAdded} B`);
    assert.ok(ownAdded >= 64 * MIB, `an ArrayBuffer added ${ownAdded} B`);
    assert.ok(shared.byteLength + own.byteLength > 0);
  });
});

describe('sampleMemory', () => {
  const capture: ThreadMemory = { heap_used_bytes: 40 * MIB, heap_committed_bytes: 150 * MIB, young_generation_bytes: 128 * MIB, external_bytes: 70 * MIB };
  const worker: ThreadMemory = { heap_used_bytes: 60 * MIB, heap_committed_bytes: 170 * MIB, young_generation_bytes: 128 * MIB, external_bytes: 5 * MIB };

  test('sampleMemory splits RSS into thread heaps, external memory, shared parts and other, which add up to RSS', () => {
    const m = sampleMemory({
      procStatusPath: procFile(PROC_STATUS),
      capture: () => capture,
      workers: () => [worker, worker],
      shared: () => ({ capture_rings: 64 * MIB, handoff_rings: 64 * MIB, bypass_tables: 7 * MIB }),
      sharedInCaptureExternal: () => 64 * MIB,
    });
    assert.equal(m.rss_bytes, 1239040 * 1024);
    assert.equal(m.peak_rss_bytes, 1402880 * 1024);
    assert.deepEqual(m.capture, { ...capture, external_bytes: 6 * MIB }, 'the capture ring is shared memory, not the capture thread\'s external memory');
    assert.deepEqual(m.workers, [worker, worker]);
    assert.deepEqual(m.shared, { capture_rings: 64 * MIB, handoff_rings: 64 * MIB, bypass_tables: 7 * MIB });
    const parts = [m.capture, ...m.workers].reduce((t, x) => t + x.heap_committed_bytes! + x.external_bytes!, 0) + 135 * MIB;
    assert.equal(m.other_bytes, m.rss_bytes! - parts);
    assert.ok(m.other_bytes! > 0);
  });

  test('sampleMemory counts a worker that has not reported as nothing, and never gives a negative other', () => {
    const m = sampleMemory({ procStatusPath: procFile('VmRSS:\t 102400 kB\n'), capture: () => capture, workers: () => [{}, worker], shared: () => ({ handoff_rings: 64 * MIB }) });
    assert.deepEqual(m.workers, [{}, worker]);
    assert.equal(m.peak_rss_bytes, undefined);
    assert.equal(m.other_bytes, 0, '100 MiB RSS against more than that accounted: untouched shared pages');
  });

  test('sampleMemory without a readable /proc leaves RSS, peak and other out, and survives throwing sources', () => {
    const boom = (): never => {
      throw new Error('boom');
    };
    const m = sampleMemory({ procStatusPath: join(dir, 'missing'), capture: boom, workers: boom, shared: boom, sharedInCaptureExternal: boom });
    assert.deepEqual(m, { capture: {}, workers: [], shared: {} });
  });

  test('sampleMemory by default reads this process and this thread', () => {
    const m = sampleMemory();
    assert.ok(m.rss_bytes! > 0 && m.peak_rss_bytes! >= m.rss_bytes!, `rss ${m.rss_bytes} peak ${m.peak_rss_bytes}`);
    assert.ok(m.capture.heap_committed_bytes! > 0 && m.capture.heap_committed_bytes! < m.rss_bytes!);
    assert.deepEqual(m.workers, []);
    // external memory need not be resident (an ArrayBuffer's untouched pages): other is never below 0
    assert.equal(m.other_bytes, Math.max(0, m.rss_bytes! - m.capture.heap_committed_bytes! - m.capture.external_bytes!));
  });
});

describe('summarizeMemory', () => {
  test('summarizeMemory totals young generation, external and shared over every thread and part', () => {
    const s = summarizeMemory({
      rss_bytes: 900, peak_rss_bytes: 1000,
      capture: { heap_committed_bytes: 150, young_generation_bytes: 128, external_bytes: 6 },
      workers: [{ heap_committed_bytes: 170, young_generation_bytes: 128, external_bytes: 5 }, {}],
      shared: { capture_rings: 64, handoff_rings: 64, bypass_tables: 7 },
      other_bytes: 306,
    });
    assert.deepEqual(s, { rssBytes: 900, peakRssBytes: 1000, captureHeapBytes: 150, workerHeapBytes: [170, 0], youngBytes: 256, externalBytes: 11, sharedBytes: 135, otherBytes: 306 });
  });

  test('summarizeMemory gives undefined without a section and treats odd fields as absent', () => {
    assert.equal(summarizeMemory(undefined), undefined);
    assert.equal(summarizeMemory([1]), undefined);
    assert.deepEqual(summarizeMemory({ rss_bytes: 'x', capture: 5, workers: [null, { heap_committed_bytes: -3 }], shared: { a: 'b' } }), {
      rssBytes: undefined, peakRssBytes: undefined, captureHeapBytes: undefined, workerHeapBytes: [0, 0], youngBytes: 0, externalBytes: 0, sharedBytes: 0, otherBytes: undefined,
    });
  });
});

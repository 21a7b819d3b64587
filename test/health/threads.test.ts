/**
 * Tests for sensor/health/threads.ts: parsing /proc stat lines (a command name with spaces and
 * parentheses), per-role CPU shares from a fake /proc tree over two samples (a restarted worker's
 * new thread has no rate yet), and the real thing: this process's main thread, and a worker
 * thread's own kernel id.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { osThreadId, parseStatCpuSeconds, ThreadCpuSampler } from '../../sensor/health/threads.js';

/** A /proc stat line as Linux writes it, with utime and stime in ticks of 1/100 s. */
function statLine(comm: string, utime: number, stime: number): string {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
  return `4242 (${comm}) R 1 4242 4242 0 -1 4194560 100 0 0 0 ${utime} ${stime} 0 0 20 0 5 0 123 1000 50 18446744073709551615\n`;
}

test('parseStatCpuSeconds reads utime + stime after the command name, whatever the name holds', () => {
  assert.equal(parseStatCpuSeconds(statLine('node', 250, 50)), 3);
  assert.equal(parseStatCpuSeconds(statLine('we ird) 1 2 3 (name', 7, 3)), 0.1, 'fields counted from the last parenthesis');
  assert.equal(parseStatCpuSeconds('garbage'), undefined);
  assert.equal(parseStatCpuSeconds('1 (x) R 1 2'), undefined, 'too few fields');
  assert.equal(parseStatCpuSeconds(statLine('x', -1, 5)), undefined);
  assert.equal(parseStatCpuSeconds(`${statLine('x', 1, 1)}${'9'.repeat(5000)}`), undefined, 'not a stat line');
});

test('ThreadCpuSampler: capture, each worker and the rest as shares of a core between two samples', () => {
  const root = mkdtempSync(join(tmpdir(), 'hark-proc-'));
  try {
    const pid = 4242;
    const write = (rel: string, ticks: number): void => {
      mkdirSync(join(root, String(pid), rel, '..'), { recursive: true });
      writeFileSync(join(root, String(pid), rel), statLine('node', ticks, 0));
    };
    let tids: (number | undefined)[] = [4250, 4251];
    const sampler = new ThreadCpuSampler({ pid, procRoot: root, workerTids: () => tids });
    write('stat', 1000);
    write(`task/${pid}/stat`, 200);
    write('task/4250/stat', 300);
    write('task/4251/stat', 400);
    const first = sampler.sample(10_000)!;
    assert.deepEqual(first.process, { cpu_seconds: 10, cpu_pct: 0 });
    assert.deepEqual(first.capture, { cpu_seconds: 2, cpu_pct: 0 });
    assert.deepEqual(first.workers, [{ cpu_seconds: 3, cpu_pct: 0, tid: 4250 }, { cpu_seconds: 4, cpu_pct: 0, tid: 4251 }]);
    assert.deepEqual(first.other, { cpu_seconds: 1, cpu_pct: 0 });
    // 2 s later: capture +0.5 s, workers +2 s and +1.9 s, process +4.8 s
    write('stat', 1480);
    write(`task/${pid}/stat`, 250);
    write('task/4250/stat', 500);
    write('task/4251/stat', 590);
    const second = sampler.sample(12_000)!;
    assert.equal(second.process.cpu_pct, 240);
    assert.equal(second.capture.cpu_pct, 25);
    assert.deepEqual(second.workers.map((w) => w.cpu_pct), [100, 95]);
    assert.equal(second.other.cpu_seconds, 1.4, 'the process less the capture thread and the workers');
    assert.equal(second.other.cpu_pct, 20);
    // worker 0 restarted as thread 4260: no rate for it until its second sample
    tids = [4260, 4251];
    write('task/4260/stat', 10);
    const third = sampler.sample(14_000)!;
    assert.deepEqual(third.workers[0], { cpu_seconds: 0.1, cpu_pct: 0, tid: 4260 });
    // a worker thread that ended (the sensor stopping) keeps its last figure
    rmSync(join(root, String(pid), 'task/4251/stat'));
    assert.deepEqual(sampler.sample(15_000)!.workers[1], { cpu_seconds: 5.9, cpu_pct: 0, tid: 4251 });
    // a worker not ready yet counts nothing; a missing process is no sample
    tids = [undefined, 4251];
    assert.deepEqual(sampler.sample(16_000)!.workers[0], { cpu_seconds: 0, cpu_pct: 0 });
    assert.equal(new ThreadCpuSampler({ pid: 1, procRoot: root }).sample(), undefined);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('ThreadCpuSampler on this process: the main thread is the capture thread; a worker has its own id', async () => {
  assert.equal(osThreadId(), process.pid);
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads'); const { readlinkSync } = require('node:fs');
     parentPort.postMessage(Number(readlinkSync('/proc/thread-self').split('/')[2]));`,
    { eval: true },
  );
  const tid = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  try {
    assert.ok(Number.isInteger(tid) && tid !== process.pid, `worker thread ${tid}`);
    let spin = 0;
    for (let i = 0; i < 3e7; i++) spin += i % 7;
    const s = new ThreadCpuSampler({ workerTids: () => [tid] }).sample()!;
    assert.ok(spin > 0 && s.capture.cpu_seconds > 0, JSON.stringify(s));
    assert.equal(s.workers[0].tid, tid);
    assert.ok(s.process.cpu_seconds + 0.02 >= s.capture.cpu_seconds + s.workers[0].cpu_seconds, JSON.stringify(s));
  } finally {
    await worker.terminate();
  }
});

/**
 * Child process for the status tests (not a test file itself): a stand-in sensor that writes a
 * status file. `run PATH INTERVAL_MS`: writes, prints "ready", keeps running; SIGTERM stops the
 * writer cleanly and exits 0. `churn PATH COUNT DONE_FILE`: rewrites the file COUNT times with
 * sizes that vary from ~300 bytes to ~40 KB, then creates DONE_FILE.
 */
import { writeFileSync } from 'node:fs';
import { Counters } from '../../sensor/events/counters.js';
import { SensorSampler } from '../../sensor/health/snapshot.js';
import { StatusFileWriter } from '../../sensor/health/status-file.js';

const [mode, path, arg, doneFile] = process.argv.slice(2);

if (mode === 'run') {
  let packets = 0;
  const sampler = new SensorSampler({ interfaces: () => [{ name: 'eth1', packets, bytes: packets * 100 }], counters: new Counters() });
  const writer = new StatusFileWriter(path, { intervalMs: Number(arg), snapshot: () => sampler.sample() });
  writer.start();
  const keepAlive = setInterval(() => (packets += 10), 50);
  process.once('SIGTERM', () => {
    clearInterval(keepAlive);
    writer.stop();
    process.exit(0);
  });
  process.stdout.write('ready\n');
} else if (mode === 'churn') {
  let n = 1;
  const base = new SensorSampler({ interfaces: () => [], counters: new Counters() }).sample();
  // `captures` says how many interfaces the file lists: a reader can check the file is whole.
  const snapshot = () => ({ ...base, captures: n, interfaces: Array.from({ length: n }, (_, i) => ({ name: `if${i}`, packets: i * 1000, bytes: i * 100_000, pps: i, bps: i * 8 })) });
  const writer = new StatusFileWriter(path, { intervalMs: 60_000, snapshot });
  const count = Number(arg);
  for (let i = 0; i < count; i++) {
    n = 1 + ((i * 37) % 300);
    if (!writer.writeNow()) process.exit(1);
  }
  writeFileSync(doneFile, 'done');
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}

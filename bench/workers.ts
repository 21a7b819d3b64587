/**
 * Benchmark: the full sensor on the shared workload through a WorkerPool of N workers (the main
 * thread reads the file, hashes and copies each frame into a worker's ring; each worker runs the
 * whole pipeline), beside the single-thread Sensor (N = 0, as bench/pipeline.ts takes it). Prints
 * MB/s (wall and CPU, CPU summed over every thread), the balance over the workers, and whether the
 * phrase matches and the sum of the captures' counts equal the generator's ground truth.
 *   node dist/bench/workers.js [--workers 0,1,2] [--engine auto|hyperscan|js]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Dictionary } from '../rules/dictionary.js';
import { readCaptureFile } from '../sensor/capture/file-reader.js';
import { Counters } from '../sensor/events/counters.js';
import { Sensor, type EngineChoice } from '../sensor/main.js';
import { loadHyperscan } from '../sensor/match/hyperscan.js';
import { WorkerPool } from '../sensor/workers/pool.js';
import { BenchCommandLine } from './command-line.js';
import { DEFAULT_WORKLOAD_DIR, ensureWorkload, workloadPhrase, type PipelineFigures } from './workload.js';

export interface WorkersResult extends PipelineFigures {
  workers: number;
  ringFull: number;
  framesPerWorker: number[];
}

function cpuSeconds(u: NodeJS.CpuUsage): number {
  return (u.user + u.system) / 1e6;
}

/** One run: N = 0 is the single-thread Sensor, N >= 1 a pool of N workers. */
export async function runWorkers(pcap: string, dictionary: Dictionary, engine: EngineChoice, workers: number): Promise<WorkersResult> {
  const latest = new Map<string, number>();
  const onCapture = (c: { id: string; count: number }): void => {
    latest.set(c.id, c.count);
  };
  let counters: Counters;
  let packets = 0;
  let fileBytes = 0;
  let engineName = engine as string;
  let frames: number[] = [];
  const t0 = process.hrtime.bigint();
  let t1: bigint;
  let cpu0: NodeJS.CpuUsage;
  if (workers === 0) {
    const sensor = new Sensor({ dictionary, engine, onCapture });
    counters = sensor.counters;
    engineName = sensor.matching.engine;
    t1 = process.hrtime.bigint();
    cpu0 = process.cpuUsage();
    const s = sensor.pipeline.runFile(pcap);
    sensor.finish();
    packets = s.packets;
    fileBytes = s.bytesRead;
  } else {
    counters = new Counters();
    const pool = await WorkerPool.start({ workers, sensorOptions: { dictionary, engine }, onCapture, counters, whenFull: 'wait', tickMs: 0 });
    t1 = process.hrtime.bigint();
    cpu0 = process.cpuUsage();
    const s = readCaptureFile(pcap, pool.packet);
    await pool.finish();
    frames = pool.framesPerWorker();
    await pool.close();
    packets = s.packets;
    fileBytes = s.bytesRead;
    engineName = engine === 'auto' ? (loadHyperscan(new Counters()).engine !== undefined ? 'hyperscan' : 'js') : engine;
  }
  const cpu = cpuSeconds(process.cpuUsage(cpu0));
  const seconds = Number(process.hrtime.bigint() - t1) / 1e9;
  let countSum = 0;
  for (const n of latest.values()) countSum += n;
  return {
    workers,
    engine: engineName,
    loadSeconds: Number(t1 - t0) / 1e9,
    seconds,
    cpuSeconds: cpu,
    fileBytes,
    packets,
    hits: counters.get('match.hits'),
    captures: latest.size,
    countSum,
    ringFull: counters.get('workers.ring_full'),
    framesPerWorker: frames,
  };
}

const cli: BenchCommandLine = new BenchCommandLine('bench/workers', 'Usage: node dist/bench/workers.js [--workers 0,1,2] [--engine auto|hyperscan|js]\n');

/** Runs every count of workers; a bad command line ends the process with the usage (exit 2). */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const { values } = cli.parse({
    args: argv,
    options: { workers: { type: 'string', default: '0,1,2' }, engine: { type: 'string', default: 'auto' } },
  });
  // 0 = the single-thread Sensor, no pool
  const counts = values.workers.split(',').map((x) => cli.wholeNumber('--workers', x.trim(), 'workers (a list like 0,1,2)'));
  const engine: EngineChoice = cli.oneOf('--engine', values.engine, ['auto', 'hyperscan', 'js']);
  ensureWorkload(DEFAULT_WORKLOAD_DIR);
  const pcap = join(DEFAULT_WORKLOAD_DIR, 'workload.pcap');
  const truth = JSON.parse(readFileSync(join(DEFAULT_WORKLOAD_DIR, 'truth.json'), 'utf8')) as { packets: number; pcap_file_bytes: number; planted: { total: number } };
  const phrases = readFileSync(join(DEFAULT_WORKLOAD_DIR, 'phrases.txt'), 'utf8').split('\n').filter((l) => l.trim().length > 0).map(workloadPhrase);
  const dictionary: Dictionary = { name: 'bench', phrases };
  const planted = truth.planted.total;
  const rows: string[][] = [['what', 'MB/s (wall)', 'MB/s (cpu)', 'cpu/wall', 'load s', 'matches', 'sum of counts', 'captures', 'frames per worker']];
  const mb = (bytes: number, s: number): string => (bytes / 1e6 / s).toFixed(0);
  let allOk = true;
  for (const n of counts) {
    const r = await runWorkers(pcap, dictionary, engine, n);
    rows.push([
      n === 0 ? `single thread (Sensor), ${r.engine}` : `pool of ${n} worker${n === 1 ? '' : 's'}, ${r.engine}`,
      mb(r.fileBytes, r.seconds), mb(r.fileBytes, r.cpuSeconds), (r.cpuSeconds / r.seconds).toFixed(2), r.loadSeconds.toFixed(2),
      String(r.hits), String(r.countSum), String(r.captures), r.framesPerWorker.join(' / '),
    ]);
    const exact = r.hits === planted && r.countSum === planted && r.packets === truth.packets && r.ringFull === 0;
    allOk &&= exact;
    process.stderr.write(`${n} workers: ${exact ? 'matches and counts equal' : 'MISMATCH with'} the planted total ${planted} (matches ${r.hits}, sum ${r.countSum}, packets ${r.packets}/${truth.packets}, ring full ${r.ringFull})\n`);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  process.stdout.write(`workload: ${pcap} (${truth.pcap_file_bytes} bytes, ${truth.packets} packets), 10k phrases, ${planted} planted occurrences\n`);
  for (const r of rows) process.stdout.write(`${r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ')}\n`);
  return allOk ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then((code) => {
    process.exitCode = code;
  }, (err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  });
}

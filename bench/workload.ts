/**
 * The shared benchmark workload (../shared/bench/gen-workload.mjs): where it is, generating it,
 * and reading its files. Used by `npm run bench`, bench/match.ts and the matcher's ground-truth
 * test, so all three find the generator and split decoded.bin the same way.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Phrase } from '../rules/dictionary.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** shared/ sits beside the repository (CI clones it that way); HARK_SHARED_DIR overrides. */
export const SHARED = process.env.HARK_SHARED_DIR ?? join(ROOT, '..', 'shared');
/**
 * The V8 flags bin/hark runs Hark with (test/appliance/node-flags.test.ts holds bin/hark,
 * hark.service and these to the same lists), so benches run Hark's code as the sensor runs it.
 * ONE_THREAD_V8_FLAGS: `hark scan` and every command but `run`, where one thread does the packet
 * work (64 MiB semi-spaces at most; the bench children engine.ts, pipeline.ts...). RUN_V8_FLAGS:
 * `hark run` (live.ts, soak.ts): none, so the capture thread keeps V8's default nursery; the worker
 * pool sizes the workers' own. HARK_BENCH_NODE_FLAGS adds more, space-separated, for the bench's
 * children only (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`, which NODE_OPTIONS refuses).
 */
export const ONE_THREAD_V8_FLAGS: readonly string[] = ['--max-semi-space-size=64'];
export const RUN_V8_FLAGS: readonly string[] = [];
const EXTRA_NODE_FLAGS: readonly string[] = (process.env.HARK_BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f.length > 0);
/** Node flags for a bench child doing one-thread packet work. */
export const ONE_THREAD_NODE_FLAGS: readonly string[] = [...ONE_THREAD_V8_FLAGS, ...EXTRA_NODE_FLAGS];
/** Node flags for the `hark run` a live bench starts. */
export const RUN_NODE_FLAGS: readonly string[] = [...RUN_V8_FLAGS, ...EXTRA_NODE_FLAGS];
/** A bench child prints one short JSON line; more than this is a bench printing what it should not. */
const MAX_CHILD_OUTPUT_BYTES = 1 << 20;

/**
 * Runs a bench child (dist/bench/engine.js, pipeline.js...) in its own process with the sensor's V8
 * flags, so its peak RSS is its own, and returns the JSON figures of its last output line. Throws
 * with the child's stderr when it fails or prints no figures.
 */
export function runBenchChild(script: string, args: readonly string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, [...ONE_THREAD_NODE_FLAGS, script, ...args], { encoding: 'utf8', maxBuffer: MAX_CHILD_OUTPUT_BYTES });
  if (r.status !== 0) throw new Error(`${script} failed (exit ${r.status ?? r.signal}): ${r.stderr.trim()}`);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new Error(`${script} printed no JSON figures: ${JSON.stringify(line.slice(0, 200))}`);
  }
}

/** Where `npm run bench` keeps the default workload. */
export const DEFAULT_WORKLOAD_DIR = join(ROOT, 'bench', '.cache', 'wl');
/** gen-workload.mjs ends every HTTP message in decoded.bin with this separator. */
const SEPARATOR = Buffer.from('\n\0\n');

export interface WorkloadOptions {
  flows: number;
  concurrency: number;
  seed: number;
}

/** The generator's default workload (the one shared/bench/README.md gives figures for). */
export const DEFAULT_WORKLOAD: WorkloadOptions = { flows: 20000, concurrency: 1000, seed: 1 };

/** Runs gen-workload.mjs into `dir`; throws naming what is missing. */
export function generateWorkload(dir: string, o: WorkloadOptions = DEFAULT_WORKLOAD, quiet = false): void {
  const gen = join(SHARED, 'bench', 'gen-workload.mjs');
  if (!existsSync(gen)) throw new Error(`Cannot generate the workload: ${gen} not found (set HARK_SHARED_DIR)`);
  if (!existsSync('/usr/share/dict/words')) throw new Error('Cannot generate the workload: /usr/share/dict/words missing (apt-get install wamerican)');
  mkdirSync(dir, { recursive: true });
  const args = [gen, '--out', dir, '--flows', String(o.flows), '--concurrency', String(o.concurrency), '--seed', String(o.seed)];
  execFileSync(process.execPath, args, { stdio: ['ignore', 'ignore', quiet ? 'ignore' : 'inherit'] });
}

/** Generates the default workload into `dir` unless its files are already there. */
export function ensureWorkload(dir: string = DEFAULT_WORKLOAD_DIR): void {
  if (['workload.pcap', 'decoded.bin', 'phrases.txt', 'truth.json'].every((f) => existsSync(join(dir, f)))) return;
  process.stderr.write(`generating the workload into ${dir} (about 30 s)...\n`);
  generateWorkload(dir);
}

/** The workload's dictionary: phrases.txt, one phrase a line. */
export function workloadPhrases(dir: string): string[] {
  return readFileSync(join(dir, 'phrases.txt'), 'utf8').split('\n').filter((l) => l.trim().length > 0);
}

/** The ground truth: phrase occurrences planted in the decoded HTTP content (truth.json planted.total). */
export function plantedTotal(dir: string): number {
  return (JSON.parse(readFileSync(join(dir, 'truth.json'), 'utf8')) as { planted: { total: number } }).planted.total;
}

/** decoded.bin split into its HTTP messages. */
export function decodedMessages(decoded: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (let i = decoded.indexOf(SEPARATOR); i >= 0; i = decoded.indexOf(SEPARATOR, at)) {
    out.push(decoded.subarray(at, i));
    at = i + SEPARATOR.length;
  }
  if (at < decoded.length) out.push(decoded.subarray(at));
  return out;
}

/** What one full-pipeline run reports (bench/pipeline.ts prints it; bench/workers.ts adds its own). */
export interface PipelineFigures {
  engine: string;
  loadSeconds: number;
  seconds: number;
  cpuSeconds: number;
  fileBytes: number;
  packets: number;
  hits: number;
  captures: number;
  countSum: number;
}

/** A phrases.txt line as a whole-word dictionary phrase. */
export const workloadPhrase = (text: string): Phrase => ({ phrase: text, category: 'bench', severity: 3, embedded: false, exclusions: [], languages: [] });

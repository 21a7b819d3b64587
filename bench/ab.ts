/**
 * Compares two builds of Hark on the same bench by running them in alternation: pair i runs A then
 * B (B then A for odd i, so a drift in the machine's speed falls on both), then prints each pair,
 * the medians, the median paired change, how many pairs each build won and a sign test. Every run's
 * counts (packets, reassembled bytes, matches...) must equal the first run's: a build that is faster
 * because it finds less fails (exit 1). Speed itself never fails it.
 *
 *   node dist/bench/ab.js --a DIR --b DIR [--bench pipeline|engine|stages] [--runs N] [--metric NAME]
 *                         [--extra-a ARGS] [--extra-b ARGS] [-- child args]
 *
 * DIR is a built checkout (its own dist/ and native addons), e.g. the commit before a change:
 *   git worktree add ../hark-base HEAD~1 && (cd ../hark-base && npm run setup)
 * or the same checkout twice with different options: --extra-b="--locality 0" appends those
 * (space-separated) to B's child arguments (the `=` form, since they start with a dash).
 * Child args default to the shared workload (bench/.cache/wl): engine and stages <pcap>; pipeline <pcap>
 * <phrases.txt> hyperscan. The metric defaults to cpuSeconds (what the speed targets are per core of).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BenchCommandLine } from './command-line.js';
import { pairedSummary } from './stats.js';
import { DEFAULT_WORKLOAD_DIR, ensureWorkload, runBenchChild } from './workload.js';

/** The figures of each bench child that must not differ between builds. */
const COUNT_FIELDS: Record<string, readonly string[]> = {
  engine: ['packets', 'flows', 'reassembled', 'gapBytes'],
  pipeline: ['packets', 'hits', 'captures', 'countSum', 'httpRequests', 'httpResponses'],
  stages: ['packets', 'decoded', 'passed', 'reassembled'],
};
const DEFAULT_PAIRS = 6;

type Figures = Record<string, unknown>;

const cli: BenchCommandLine = new BenchCommandLine(
  'bench/ab',
  `Usage: node dist/bench/ab.js --a DIR --b DIR [--bench ${Object.keys(COUNT_FIELDS).join('|')}] [--runs N] [--metric NAME] [--extra-a ARGS] [--extra-b ARGS] [-- child args]\n`,
);

const OPTIONS = {
  a: { type: 'string' },
  b: { type: 'string' },
  bench: { type: 'string', default: 'pipeline' },
  runs: { type: 'string', default: String(DEFAULT_PAIRS) },
  metric: { type: 'string', default: 'cpuSeconds' },
  'extra-a': { type: 'string', default: '' },
  'extra-b': { type: 'string', default: '' },
} as const;

const { values, positionals } = cli.parse({ options: OPTIONS, allowPositionals: true });
if (values.a === undefined || values.b === undefined) cli.fail('--a and --b name the two built checkouts to compare');
const bench = values.bench;
const countFields = COUNT_FIELDS[bench];
if (countFields === undefined) cli.fail(`unknown bench "${bench}"`);
const pairs = cli.wholeNumber('--runs', values.runs, 'pairs', 1);
const metric = values.metric;

const words = (s: string): string[] => s.split(' ').filter((w) => w.length > 0);
const builds = [
  { dir: resolve(values.a), extra: words(values['extra-a']) },
  { dir: resolve(values.b), extra: words(values['extra-b']) },
].map(({ dir, extra }) => {
  const script = join(dir, 'dist', 'bench', `${bench}.js`);
  if (!existsSync(script)) cli.fail(`${script} not found: build that checkout first (npm run setup)`);
  return { dir, script, extra, rev: revision(dir) };
});

let childArgs = positionals;
if (childArgs.length === 0) {
  ensureWorkload();
  const pcap = join(DEFAULT_WORKLOAD_DIR, 'workload.pcap');
  childArgs = bench === 'engine' || bench === 'stages' ? [pcap] : [pcap, join(DEFAULT_WORKLOAD_DIR, 'phrases.txt'), 'hyperscan'];
}

/** `git describe` of a checkout, or its path alone when it is not one. */
function revision(dir: string): string {
  const r = spawnSync('git', ['-C', dir, 'describe', '--always', '--dirty'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'not a git checkout';
}

function metricOf(f: Figures, script: string): number {
  const v = f[metric];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${script} reports no number "${metric}"`);
  return v;
}

for (const [k, b] of builds.entries()) console.log(`${k === 0 ? 'A' : 'B'} ${b.dir} (${b.rev})${b.extra.length > 0 ? ` with ${b.extra.join(' ')}` : ''}`);
console.log(`${bench} ${childArgs.join(' ')}: ${metric}, ${pairs} alternating pairs`);

/** Runs the pairs; a child that fails or reports no figures ends the comparison with its message. */
function compare(): void {
  const a: number[] = [];
  const b: number[] = [];
  let reference: Figures | undefined;
  const mismatches: string[] = [];
  for (let i = 0; i < pairs; i++) {
    const order = i % 2 === 0 ? [0, 1] : [1, 0];
    const got: number[] = [];
    for (const k of order) {
      const f = runBenchChild(builds[k].script, [...childArgs, ...builds[k].extra]);
      got[k] = metricOf(f, builds[k].script);
      reference ??= f;
      for (const field of countFields) {
        if (f[field] !== reference[field]) mismatches.push(`pair ${i + 1}, ${k === 0 ? 'A' : 'B'}: ${field} ${String(f[field])}, first run ${String(reference[field])}`);
      }
    }
    a.push(got[0]);
    b.push(got[1]);
    console.log(`pair ${i + 1} (${order[0] === 0 ? 'A first' : 'B first'}): A ${got[0].toFixed(3)}  B ${got[1].toFixed(3)}  (${formatChange(got[1] / got[0] - 1)})`);
  }
  const s = pairedSummary(a, b);
  console.log(
    `median A ${s.medianA.toFixed(3)}, B ${s.medianB.toFixed(3)}; median paired change ${formatChange(s.medianChange)}; ` +
      `B less in ${s.bLess} of ${s.pairs} pairs, more in ${s.bMore} (sign test p = ${s.p.toFixed(3)})`,
  );
  if (mismatches.length > 0) {
    console.log(`counts differ:\n  ${mismatches.join('\n  ')}`);
    process.exitCode = 1;
  } else {
    console.log(`counts identical in all ${2 * pairs} runs: ${countFields.map((f) => `${f} ${String(reference?.[f])}`).join(', ')}`);
  }
}

try {
  compare();
} catch (err) {
  process.stderr.write(`bench/ab: ${(err as Error).message}\n`);
  process.exitCode = 1;
}

function formatChange(x: number): string {
  return `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`;
}

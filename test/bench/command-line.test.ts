/**
 * bench/command-line.ts through every bench program: `--help` prints the usage on stdout and exits
 * 0 before anything is measured (no workload generated, no figures), and a bad argument prints
 * `bench/<name>: <problem>` on one line, then the same usage, on stderr and exits 2, without a
 * stack trace. No bench is run for real here: every case ends at its command line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../bench/workload.js';

const BENCH = join(ROOT, 'dist', 'bench');
const PCAP = join(ROOT, 'test', 'fixtures', 'tcp', 'arkime-v6-http.pcap');
/** Any readable file: the cases below stop at the argument after it. */
const PHRASES = join(ROOT, 'package.json');
/** bench/ modules the programs import, with no command line of their own. */
const LIBRARIES = new Set(['command-line', 'live-harness', 'stats', 'workload']);

/** Per bench program: bad command lines, each with the problem its first line must name. */
const BAD: Record<string, Array<[string[], RegExp]>> = {
  ab: [[['--a', ROOT, '--b', ROOT, '--runs', 'x'], /^--runs takes a number of pairs, not "x"$/]],
  engine: [
    [[], /^one capture file, please$/],
    [['F', '--group-frames', 'abc', '--bogus'], /^Unknown option '--bogus'/],
    [[PCAP, '--group-frames', 'abc'], /^--group-frames takes a number of frames, not "abc"$/],
    [[join(tmpdir(), 'no-such-capture.pcap')], /^Cannot open capture file ".*no-such-capture\.pcap": no such file$/],
  ],
  extract: [[['--seconds', 'abc'], /^--seconds takes a number of seconds above 0, not "abc"$/]],
  'home-soak': [[['--batch', '5000'], /^--batch takes a number of captures from 1 to 1000, not "5000"$/]],
  hyperscan: [[['--chunk', '0'], /^--chunk takes a number of bytes, not "0"$/]],
  live: [[['--capture', 'ring,tape'], /^--capture must be ring or pcap, not "tape"$/]],
  match: [[['--runs', '0'], /^--runs takes a number of runs, not "0"$/]],
  pipeline: [
    [[], /^a capture file, a phrases file and an engine, please$/],
    [[PCAP, PHRASES, 'bogus'], /^the engine must be hyperscan or js, not "bogus"$/],
    [[PCAP, PHRASES, 'js', '--bodies', 'bogus'], /^--bodies must be extract, raw or none, not "bogus"$/],
  ],
  policy: [[['bogus'], /^entries takes a number of domains, not "bogus"$/]],
  portal: [[['--rows', 'many'], /^--rows takes a number of captures, not "many"$/]],
  run: [[['--bogus'], /^Unknown option '--bogus'$/]],
  soak: [
    [['--minutes', '0'], /^--minutes takes a number of minutes above 0, not "0"$/],
    [['--rate', 'fast'], /^--rate takes a number of Mbit\/s above 0, not "fast"$/],
    [['--minutes', '0.5', '--every', '60'], /^--every 60 is longer than the run \(--minutes 0\.5\)$/],
  ],
  stages: [[[PCAP, '--rounds', '1.5'], /^--rounds takes a number of rounds, not "1\.5"$/]],
  store: [[['--captures', '0'], /^--captures takes a number of captures, not "0"$/]],
  tls: [[['abc'], /^MB per suite takes a number of megabytes above 0, not "abc"$/]],
  workers: [[['--engine', 'foo'], /^--engine must be auto, hyperscan or js, not "foo"$/]],
};

function run(bench: string, args: string[]) {
  return spawnSync(process.execPath, [join(BENCH, `${bench}.js`), ...args], { encoding: 'utf8', timeout: 60_000 });
}

/** What `--help` prints, checked once per bench and compared with every error's usage. */
const usages = new Map<string, string>();

test('every bench program has its command-line cases here', () => {
  const programs = readdirSync(BENCH)
    .filter((f) => f.endsWith('.js'))
    .map((f) => f.slice(0, -'.js'.length))
    .filter((name) => !LIBRARIES.has(name));
  assert.deepEqual(programs.sort(), Object.keys(BAD).sort());
});

for (const bench of Object.keys(BAD)) {
  test(`bench/${bench} --help prints its usage and exits 0 before measuring anything`, () => {
    const r = run(bench, ['--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'nothing on stderr (no workload generated)');
    assert.match(r.stdout, /^Usage: (node dist\/bench\/|npm run bench)/);
    assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('Usage:')).length, 1, 'the usage alone, no figures');
    assert.doesNotMatch(r.stdout, /[{}]/, 'no JSON figures');
    usages.set(bench, r.stdout);
  });

  for (const [args, problem] of BAD[bench]) {
    test(`bench/${bench} ${args.map((a) => (a.startsWith(ROOT) ? a.slice(ROOT.length) || '.' : a)).join(' ') || '(no arguments)'}: one line naming the problem, the usage, exit 2`, () => {
      const r = run(bench, args);
      assert.equal(r.status, 2, r.stdout + r.stderr);
      assert.equal(r.stdout, '');
      assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
      const newline = r.stderr.indexOf('\n');
      const [first, rest] = [r.stderr.slice(0, newline), r.stderr.slice(newline + 1)];
      assert.ok(first.startsWith(`bench/${bench}: `), first);
      assert.match(first.slice(`bench/${bench}: `.length), problem);
      assert.equal(rest, usages.get(bench) ?? run(bench, ['-h']).stdout, 'then the usage --help prints');
    });
  }
}

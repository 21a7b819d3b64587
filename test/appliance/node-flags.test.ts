/**
 * The V8 flags Hark runs with are written in three places: bin/hark (a checkout, `npm start`),
 * appliance/systemd/hark.service (the appliance) and bench/workload.ts (what the benches give the
 * processes they start, so their figures are Hark's). bin/hark is run here with a `node` of the
 * test's own first on PATH, which prints the arguments it was given.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { ONE_THREAD_V8_FLAGS, RUN_V8_FLAGS } from '../../bench/workload.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The `--flags` bin/hark hands node for `args`, and nothing else (it does not run Hark). */
function binFlags(args: string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'hark-node-flags-'));
  try {
    const fake = join(dir, 'node');
    writeFileSync(fake, '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n');
    chmodSync(fake, 0o755);
    const out = execFileSync(join(ROOT, 'bin/hark'), args, { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, encoding: 'utf8' });
    const words = out.trim().split('\n');
    const script = words.findIndex((w) => w.endsWith('dist/sensor/cli/hark.js'));
    assert.ok(script >= 0, `bin/hark ${args.join(' ')} did not run the CLI: ${out}`);
    assert.deepEqual(words.slice(script + 1), args, 'the arguments are passed on as they are');
    return words.slice(0, script);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The `--flags` between node and the script on hark.service's ExecStart line. */
function unitFlags(): string[] {
  const line = readFileSync(join(ROOT, 'appliance/systemd/hark.service'), 'utf8').split('\n').find((l) => /^ExecStart=.*hark\.js run/.test(l));
  assert.ok(line !== undefined, 'hark.service: no ExecStart line runs hark.js run');
  const words = line.trim().split(/\s+/);
  const node = words.findIndex((w) => w.endsWith('/node'));
  const script = words.findIndex((w) => w.endsWith('dist/sensor/cli/hark.js'));
  assert.ok(node >= 0 && script > node, `hark.service: cannot find node and the script in: ${line}`);
  return words.slice(node + 1, script);
}

test('one-thread commands run with 64 MiB semi-spaces at most, as the benches run them, and never a minimum', () => {
  for (const args of [['scan', 'x.pcap'], ['flows', 'x.pcap'], ['--help']]) {
    assert.deepEqual(binFlags(args), [...ONE_THREAD_V8_FLAGS], `bin/hark ${args.join(' ')}`);
  }
  assert.deepEqual([...ONE_THREAD_V8_FLAGS], ['--max-semi-space-size=64']);
});

test('hark run has no semi-space flags on bin/hark, hark.service or the live benches: the worker pool sizes the workers\' nursery', () => {
  const run = binFlags(['run', '-i', 'eth1']);
  assert.deepEqual(run, [...RUN_V8_FLAGS]);
  assert.deepEqual(unitFlags(), run);
  // a process-wide maximum would override the workers' resourceLimits and let the capture thread
  // grow to it; a minimum would give the capture thread a full-size nursery from the start
  assert.ok(!run.some((f) => /semi-space/.test(f)), run.join(' '));
});

/**
 * bench/ab.ts end to end: two builds run in alternating pairs on a corpus capture (here the same
 * checkout twice, so the counts must agree and the exit is 0), and a build whose counts differ
 * (a stand-in bench child in a temporary checkout) makes it exit 1 naming the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../bench/workload.js';

const AB = join(ROOT, 'dist', 'bench', 'ab.js');
const PCAP = join(ROOT, 'test', 'fixtures', 'tcp', 'arkime-v6-http.pcap');

function ab(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [AB, ...args], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

test('the same build twice: pairs alternate, counts agree, exit 0', () => {
  const r = ab('--a', ROOT, '--b', ROOT, '--bench', 'engine', '--runs', '2', '--', PCAP);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /pair 1 \(A first\): A \d+\.\d{3} {2}B \d+\.\d{3}/);
  assert.match(r.out, /pair 2 \(B first\)/);
  assert.match(r.out, /B less in \d of 2 pairs, more in \d \(sign test p = [01]\.\d{3}\)/);
  assert.match(r.out, /counts identical in all 4 runs: packets [1-9]\d*, flows [1-9]\d*, reassembled [1-9]\d*, gapBytes 0/);
});

test('the same build with different options: each side gets its own extra arguments', () => {
  // connection-grouped batches change the order frames are handed over in, not what is reassembled
  const r = ab('--a', ROOT, '--b', ROOT, '--bench', 'engine', '--runs', '1', '--extra-b=--group-frames 64 --no-warm', '--', PCAP);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /^A \S+ \([^)]*\)\nB \S+ \([^)]*\) with --group-frames 64 --no-warm\n/);
  assert.match(r.out, /counts identical in all 2 runs/);
});

test('a build that counts differently fails, naming the field', () => {
  const other = mkdtempSync(join(tmpdir(), 'hark-ab-'));
  try {
    mkdirSync(join(other, 'dist', 'bench'), { recursive: true });
    // a stand-in build that finds one packet with one byte in it: no real build counts that here
    writeFileSync(join(other, 'dist', 'bench', 'engine.js'), `console.log(JSON.stringify({ cpuSeconds: 0.01, packets: 1, flows: 1, reassembled: 1, gapBytes: 0 }));\n`);
    const r = ab('--a', ROOT, '--b', other, '--bench', 'engine', '--runs', '1', '--', PCAP);
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /counts differ:\n {2}pair 1, B: packets 1, first run [1-9]\d*/);
    assert.match(r.out, /reassembled 1, first run [1-9]\d*/);
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

test('a bench child that fails ends the comparison with its message, no stack trace', () => {
  const broken = mkdtempSync(join(tmpdir(), 'hark-ab-'));
  try {
    mkdirSync(join(broken, 'dist', 'bench'), { recursive: true });
    writeFileSync(join(broken, 'dist', 'bench', 'engine.js'), `process.stderr.write('cannot read the capture\\n'); process.exit(3);\n`);
    const r = ab('--a', ROOT, '--b', broken, '--bench', 'engine', '--runs', '1', '--', PCAP);
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /bench\/ab: \S+engine\.js failed \(exit 3\): cannot read the capture/);
    assert.doesNotMatch(r.out, /\n +at /, 'no stack trace');
  } finally {
    rmSync(broken, { recursive: true, force: true });
  }
});

test('bad arguments: a clear message and exit 2', () => {
  assert.equal(ab('--a', ROOT).status, 2);
  const dashed = ab('--a', ROOT, '--b', ROOT, '--extra-b', '--no-warm');
  assert.equal(dashed.status, 2);
  assert.match(dashed.out, /^bench\/ab: Option '--extra-b' argument is ambiguous/);
  const r = ab('--a', ROOT, '--b', ROOT, '--bench', 'nonsense');
  assert.equal(r.status, 2);
  assert.match(r.out, /unknown bench "nonsense"/);
  const missing = ab('--a', ROOT, '--b', join(tmpdir(), 'no-such-hark-build'), '--bench', 'engine', '--', PCAP);
  assert.equal(missing.status, 2);
  assert.match(missing.out, /no-such-hark-build\/dist\/bench\/engine\.js not found: build that checkout first/);
});

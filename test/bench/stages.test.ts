/**
 * bench/stages.ts: per-stage costs of the stream engine on a corpus capture. Its counts must agree
 * with the engine bench (the same reassembled bytes) and with a duplicate-free capture doubled
 * (every copy dropped by the filter stage); `--against` runs a second build in the same process
 * and refuses one that counts differently; bench/ab.ts accepts it as a bench.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCaptureFile } from '../../sensor/capture/file-reader.js';
import { ROOT } from '../../bench/workload.js';

const PCAP = join(ROOT, 'test', 'fixtures', 'tcp', 'zeek-http-pipelined-requests.pcap');

function run(script: string, ...args: string[]) {
  return spawnSync(process.execPath, [join(ROOT, 'dist', 'bench', script), ...args], { encoding: 'utf8' });
}

function child(script: string, ...args: string[]): Record<string, number> {
  const r = run(script, ...args);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, number>;
}

const FIGURES = ['decodeNs', 'duplicatesStageNs', 'engineNs', 'fileNs', 'duplicatesNs', 'flowsNs'];

test('stages: per-packet figures for each stage, counts as the engine bench counts them', () => {
  const s = child('stages.js', PCAP, '--rounds', '3');
  const e = child('engine.js', PCAP, '--no-warm');
  assert.equal(s.packets, e.packets);
  assert.equal(s.reassembled, e.reassembled);
  assert.ok(s.reassembled > 0);
  assert.equal(s.passed, s.decoded, 'a clean capture has no duplicates');
  for (const k of ['decodeNs', 'duplicatesStageNs', 'engineNs', 'fileNs']) assert.ok(Number.isFinite(s[k]) && s[k] > 0, `${k} ${s[k]}`);
  for (const k of ['duplicatesNs', 'flowsNs']) assert.ok(Number.isFinite(s[k]), `${k} ${s[k]}`);
});

test('stages: a capture with every frame twice passes each packet once through the filter stage', () => {
  // classic little-endian pcap, each record written twice, the copy 2 µs later (a SPAN port's ingress + egress)
  const records: Buffer[] = [];
  let linkType = 0;
  readCaptureFile(PCAP, (lt, buf, off, capLen, origLen, tsUs) => {
    linkType = lt;
    for (const t of [tsUs, tsUs + 2]) {
      const h = Buffer.alloc(16);
      h.writeUInt32LE(Math.floor(t / 1e6), 0);
      h.writeUInt32LE(t % 1e6, 4);
      h.writeUInt32LE(capLen, 8);
      h.writeUInt32LE(origLen, 12);
      records.push(h, Buffer.from(buf.subarray(off, off + capLen)));
    }
  });
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(262144, 16);
  header.writeUInt32LE(linkType, 20);
  const dir = mkdtempSync(join(tmpdir(), 'hark-stages-'));
  try {
    const doubled = join(dir, 'doubled.pcap');
    writeFileSync(doubled, Buffer.concat([header, ...records]));
    const once = child('stages.js', PCAP, '--rounds', '1');
    const twice = child('stages.js', doubled, '--rounds', '1');
    assert.equal(twice.packets, 2 * once.packets);
    assert.equal(twice.decoded, 2 * once.decoded);
    assert.equal(twice.passed, once.passed);
    assert.equal(twice.reassembled, once.reassembled);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('stages: bench/ab.ts compares one stage of two builds and checks the counts', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'bench', 'ab.js'), '--a', ROOT, '--b', ROOT, '--bench', 'stages', '--metric', 'duplicatesNs', '--runs', '1', '--', PCAP], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /stages \S+: duplicatesNs, 1 alternating pairs/);
  assert.match(r.stdout, /counts identical in all 2 runs: packets [1-9]\d*, decoded [1-9]\d*, passed [1-9]\d*, reassembled [1-9]\d*/);
});

test('stages --against: both builds in one process, each figure of each with the change between them', () => {
  const s = child('stages.js', PCAP, '--rounds', '2', '--against', ROOT) as unknown as Record<string, unknown>;
  const against = s.against as Record<string, unknown>;
  const change = s.change as Record<string, { median: number; less: number; more: number; p: number }>;
  assert.equal(against.dir, ROOT.replace(/\/$/, ''));
  for (const k of FIGURES) {
    assert.ok(Number.isFinite(against[k]), `against.${k}`);
    assert.ok(Number.isFinite(change[k].median), `change.${k}`);
    assert.ok(change[k].less + change[k].more <= 2 && change[k].p > 0 && change[k].p <= 1, JSON.stringify(change[k]));
  }
});

test('stages --against a build that counts differently fails, naming it; a missing build is a usage error', () => {
  const other = mkdtempSync(join(tmpdir(), 'hark-stages-build-'));
  try {
    cpSync(join(ROOT, 'dist'), join(other, 'dist'), { recursive: true });
    // a stand-in build whose duplicate filter takes every packet for a copy
    const dup = join(other, 'dist', 'sensor', 'decode', 'duplicates.js');
    const text = readFileSync(dup, 'utf8');
    const patched = text.replace(/isDuplicate\(p\) \{/, 'isDuplicate(p) { return true;');
    assert.notEqual(patched, text, 'the stand-in build was patched');
    writeFileSync(dup, patched);
    const r = run('stages.js', PCAP, '--rounds', '1', '--against', other);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /duplicates: round 1 of the (against|this) build counted \{"passed":(0|\d+),"reassembled":0\}, the first run/);
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
  const missing = run('stages.js', PCAP, '--against', join(tmpdir(), 'no-such-hark-build'));
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /no-such-hark-build\/dist\/sensor\/events\/counters\.js not found: build that checkout first/);
});

test('stages: a bad command line gives the usage and exit 2', () => {
  const r = run('stages.js', '--rounds', '0', PCAP);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^bench\/stages: --rounds takes a number of rounds, not "0"\nUsage: node dist\/bench\/stages\.js <capture> \[--rounds N\] \[--against DIR\]/);
  assert.equal(run('stages.js').status, 2, 'no capture');
});

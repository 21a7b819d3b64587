/**
 * bench/stages.ts: per-stage costs of the stream engine on a corpus capture. Its counts must agree
 * with the engine bench (the same reassembled bytes) and with a duplicate-free capture doubled
 * (every copy dropped by the filter stage), and bench/ab.ts accepts it as a bench.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCaptureFile } from '../../sensor/capture/file-reader.js';
import { ROOT } from '../../bench/workload.js';

const PCAP = join(ROOT, 'test', 'fixtures', 'tcp', 'zeek-http-pipelined-requests.pcap');

function child(script: string, ...args: string[]): Record<string, number> {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'bench', script), ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, number>;
}

test('stages: per-packet figures for each stage, counts as the engine bench counts them', () => {
  const s = child('stages.js', PCAP, '--rounds', '3');
  const e = child('engine.js', PCAP, '--no-warm');
  assert.equal(s.packets, e.packets);
  assert.equal(s.reassembled, e.reassembled);
  assert.ok(s.reassembled > 0);
  assert.equal(s.passed, s.decoded, 'a clean capture has no duplicates');
  for (const k of ['decodeNs', 'duplicatesStageNs', 'engineNs']) assert.ok(Number.isFinite(s[k]) && s[k] > 0, `${k} ${s[k]}`);
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

test('stages: a bad command line gives the usage and exit 2', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'bench', 'stages.js'), '--rounds', '0', PCAP], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^Usage: node dist\/bench\/stages\.js <capture> \[--rounds N\]/);
});

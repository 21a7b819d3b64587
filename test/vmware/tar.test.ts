// vmware/tar.ts: ustar writing in the given order, and reading back (GNU tar cross-check).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TAR_BLOCK, listTar, tarHeader, writeTar } from '../../vmware/tar.js';

function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hark-vmware-tar-'));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

const bufferReader = (b: Buffer) => async (o: number, l: number) => b.subarray(o, o + l);

test('writeTar keeps the given member order, and GNU tar lists and extracts the same bytes', () => withDir(async (dir) => {
  const names = ['z.ovf', 'z.mf', 'a-disk.vmdk'];
  const sizes = [700, 0, 1024];
  names.forEach((n, i) => writeFileSync(join(dir, n), Buffer.alloc(sizes[i] ?? 0, 0x41 + i)));
  const ova = join(dir, 'x.ova');
  await writeTar(ova, names.map((n) => join(dir, n)), 1_700_000_000);
  assert.equal(execFileSync('tar', ['-tf', ova], { encoding: 'utf8' }), `${names.join('\n')}\n`);
  const out = join(dir, 'x');
  execFileSync('mkdir', [out]);
  execFileSync('tar', ['-xf', ova, '-C', out]);
  for (const n of names) assert.deepEqual(readFileSync(join(out, n)), readFileSync(join(dir, n)));
  const buf = readFileSync(ova);
  const { members, problem } = await listTar(bufferReader(buf), buf.length);
  assert.equal(problem, undefined);
  assert.deepEqual(members.map((m) => [m.name, m.size]), names.map((n, i) => [n, sizes[i]]));
  assert.equal(members[0]?.dataOffset, TAR_BLOCK);
  assert.equal(statSync(ova).size % TAR_BLOCK, 0);
}));

test('listTar reports a damaged header checksum', async () => {
  const h = tarHeader('a.ovf', 0, 0);
  h[0] = 0x62; // rename without fixing the checksum
  const buf = Buffer.concat([h, Buffer.alloc(1024)]);
  const r = await listTar(bufferReader(buf), buf.length);
  assert.match(r.problem ?? '', /checksum/);
  assert.equal(r.members.length, 0);
});

test('listTar reports a member whose data is cut off', async () => {
  const buf = Buffer.concat([tarHeader('a.vmdk', 5000, 0), Buffer.alloc(512)]);
  const r = await listTar(bufferReader(buf), buf.length);
  assert.match(r.problem ?? '', /truncated/);
});

test('tarHeader refuses names over the ustar limit', () => {
  assert.throws(() => tarHeader('x'.repeat(101), 0, 0), /longer than 100/);
});

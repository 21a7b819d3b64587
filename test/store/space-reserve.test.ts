/**
 * SpaceReserve: its size from the filesystem's, a file of exactly that size (owner-only, bytes that
 * do not compress), given back by `release`, written only with room for it twice over (a real
 * small tmpfs), and a short one (a write cut off by a crash) written again at start.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import { MAX_RESERVE_BYTES, reserveBytesFor, SpaceReserve } from '../../sensor/store/space-reserve.js';
import { withSmallDisk } from './small-disk.js';

test('reserveBytesFor holds back an eighth of the filesystem, from 256 KiB to 16 MiB, in whole pages', () => {
  assert.equal(reserveBytesFor(4 << 20), 512 << 10);
  assert.equal(reserveBytesFor(1 << 20), 256 << 10, 'at least 256 KiB');
  assert.equal(reserveBytesFor(100 * 2 ** 30), MAX_RESERVE_BYTES);
  assert.equal(reserveBytesFor(10_000_000) % 4096, 0);
});

test('SpaceReserve writes a file of its size that does not compress, gives it back, and writes it again', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hark-reserve-'));
  try {
    const path = join(dir, 'captures.db-reserve');
    const r = new SpaceReserve(path, 300 * 1024);
    assert.equal(r.held, false);
    assert.equal(r.restore(), true);
    assert.equal(r.held, true);
    assert.equal(statSync(path).size, 300 * 1024);
    assert.equal(statSync(path).mode & 0o077, 0, 'owner-only');
    const bytes = readFileSync(path);
    assert.ok(deflateRawSync(bytes).length > bytes.length * 0.99, 'a compressing filesystem could not store it in less');
    assert.equal(r.release(), true);
    assert.equal(existsSync(path), false);
    assert.equal(r.held, false);
    assert.equal(r.release(), false, 'nothing left to give back');
    assert.equal(r.restore(), true);
    assert.equal(new SpaceReserve(path, 300 * 1024).held, true, 'found whole at the next start');
    assert.equal(new SpaceReserve(path, 0).restore(), false, 'size 0: no reserve');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SpaceReserve found short at start (a write cut off) is written again whole', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hark-reserve-'));
  try {
    const path = join(dir, 'r');
    writeFileSync(path, Buffer.alloc(1000));
    const r = new SpaceReserve(path, 64 * 1024);
    assert.equal(r.held, false);
    assert.equal(r.restore(), true);
    assert.equal(statSync(path).size, 64 * 1024);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SpaceReserve is written only when the disk has room for it twice over', withSmallDisk('1m', (disk) => {
  const path = join(disk.dir, 'r');
  assert.equal(new SpaceReserve(path).bytes, 256 * 1024, 'a 1 MiB disk: the 256 KiB floor');
  const r = new SpaceReserve(path, 600 * 1024);
  assert.ok(r.freeBytes() > 600 * 1024 && r.freeBytes() < 1200 * 1024);
  assert.equal(r.restore(), false, 'room for it once, not twice');
  assert.equal(existsSync(path), false);
  const fits = new SpaceReserve(path, 256 * 1024);
  assert.equal(fits.restore(), true);
  assert.equal(statSync(path).size, 256 * 1024);
}));

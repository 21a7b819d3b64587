/**
 * Test helper: a real small filesystem for full-disk tests, a tmpfs mounted on a new temporary
 * directory (mounting needs root, as CI has: without it the test fails, it is never skipped), grown or shrunk
 * with `resize`, unmounted and removed by `withSmallDisk` whatever the test does. Not a test file:
 * it declares no tests.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallDisk {
  readonly dir: string;
  /** Remounts with another size ("32m"): space freed, or taken, elsewhere on the disk. */
  resize(size: string): void;
  /** Writes a file until the disk has not one byte left; returns its path (delete it to give the room back). */
  fill(): string;
}

function fillDir(dir: string): string {
  const filler = join(dir, `filler-${Math.random().toString(36).slice(2, 8)}`);
  const fd = openSync(filler, 'w');
  try {
    for (const size of [64 * 1024, 1]) {
      const chunk = Buffer.alloc(size, 0x41);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
      }
    }
  } finally {
    closeSync(fd);
  }
  return filler;
}

/** Runs `fn` on a tmpfs of `size` ("4m"), owner-only, unmounted and removed afterwards. */
export function withSmallDisk(size: string, fn: (disk: SmallDisk) => void | Promise<void>): () => Promise<void> {
  return async () => {
    assert.equal(process.getuid?.(), 0, 'full-disk tests mount a tmpfs: they need root (CI runs as root)');
    const dir = mkdtempSync(join(tmpdir(), 'hark-disk-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
    try {
      await fn({ dir, resize: (to) => execFileSync('mount', ['-o', `remount,size=${to}`, dir], { stdio: 'pipe' }), fill: () => fillDir(dir) });
    } finally {
      execFileSync('umount', [dir], { stdio: 'pipe' });
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/**
 * Disk space held back for the capture store: a file of incompressible bytes beside the database.
 * Input: the store's calls when SQLite reports the disk full. Output: `release()` gives the space
 * back to the filesystem, so the store can still record what home acknowledged and delete it;
 * `restore()` writes the file again once the disk has room for it twice over. Guarantees: the file
 * is owner-only and never left shorter than its size (a partial one is removed, and one found short
 * at start is written again); every write or removal failure is swallowed and leaves `held` true
 * only when the whole file is on disk.
 */
import { closeSync, fstatSync, fsyncSync, openSync, statfsSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { dirname } from 'node:path';

/** Share of the filesystem held back: a small disk (a test tmpfs, an SD card) gives a small reserve. */
const RESERVE_FS_FRACTION = 1 / 8;
/** Enough for SQLite to checkpoint its default 1000-page WAL (4 MiB) into the database and then
 * write a mark or a delete of a full upload batch, twice over. */
export const MAX_RESERVE_BYTES = 16 << 20;
const MIN_RESERVE_BYTES = 256 << 10;
/** Written in chunks of fresh random bytes: a compressing or deduplicating filesystem (btrfs, ZFS)
 * would store zeros, or a repeated chunk, in almost nothing and the file would hold no space. */
const WRITE_CHUNK_BYTES = 256 << 10;

/** The reserve for a filesystem of `fsBytes`: an eighth of it, from 256 KiB to 16 MiB, whole 4 KiB pages. */
export function reserveBytesFor(fsBytes: number): number {
  const want = Math.min(MAX_RESERVE_BYTES, Math.max(MIN_RESERVE_BYTES, Math.floor(fsBytes * RESERVE_FS_FRACTION)));
  return Math.floor(want / 4096) * 4096;
}


export class SpaceReserve {
  readonly bytes: number;
  private present: boolean;

  /** `bytes`: the reserve's size; default reserveBytesFor the filesystem `path` is on. */
  constructor(readonly path: string, bytes?: number) {
    if (bytes === undefined) {
      try {
        const s = statfsSync(dirname(path));
        bytes = reserveBytesFor(s.blocks * s.bsize);
      } catch {
        bytes = 0; // a filesystem that cannot say its size cannot say its free space either
      }
    }
    this.bytes = bytes;
    let size = -1;
    try {
      size = statSync(path).size;
    } catch {
      // absent: restore() writes it
    }
    this.present = size >= bytes && bytes > 0;
  }

  /** The whole reserve is on disk. */
  get held(): boolean {
    return this.present;
  }

  /** Removes the file; true when that gave space back (it was there). */
  release(): boolean {
    let freed = false;
    try {
      unlinkSync(this.path);
      freed = true;
    } catch {
      // already gone
    }
    this.present = false;
    return freed;
  }

  /** Bytes an unprivileged writer may still allocate on the reserve's filesystem (0 when it cannot tell). */
  freeBytes(): number {
    try {
      const s = statfsSync(dirname(this.path));
      return s.bavail * s.bsize;
    } catch {
      return 0;
    }
  }

  /** Writes the reserve when it is missing and the disk has room for it twice over; true when held. */
  restore(): boolean {
    if (this.present || this.bytes <= 0) return this.present;
    if (this.freeBytes() < 2 * this.bytes) return false;
    let fd: number | undefined;
    try {
      fd = openSync(this.path, 'w', 0o600);
      const chunk = Buffer.allocUnsafe(Math.min(WRITE_CHUNK_BYTES, this.bytes));
      for (let at = 0; at < this.bytes; at += chunk.length) {
        const n = Math.min(chunk.length, this.bytes - at);
        randomFillSync(chunk, 0, n);
        writeSync(fd, chunk, 0, n, at);
      }
      fsyncSync(fd);
      this.present = fstatSync(fd).size === this.bytes;
    } catch {
      this.present = false;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    if (!this.present) this.release();
    return this.present;
  }
}

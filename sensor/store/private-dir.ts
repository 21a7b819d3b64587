/**
 * Directories that hold personal data (captures, streams, databases, credentials): readable only by
 * their owner (0700), never reached through a symbolic link, and handed to the unprivileged user
 * without following anything a compromised sensor could have planted in them. Component by
 * component rather than `mkdirSync(..., { recursive: true })`, which spins forever under /proc on
 * Node 20. Every refusal is a DirectoryError with a stable code naming the directory.
 */
import { closeSync, constants, fchmodSync, fchownSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const PRIVATE_DIR_MODE = 0o700;
/** Mode bits that let anyone but the owner read, enter or write. */
const GROUP_OTHER_BITS = 0o077;
/** Group and world write: whoever has them can swap the directory's entries. */
const GROUP_OTHER_WRITE_BITS = 0o022;
/** The sticky bit: set on directories meant to be shared (/tmp, /var/tmp). */
const STICKY_BIT = 0o1000;
/** Opens a directory only if it is one itself, not a symbolic link to one. */
const OPEN_DIR_NOFOLLOW = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** Opens an entry without following a final link and without blocking on a FIFO. */
const OPEN_ENTRY_NOFOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

export type DirectoryErrorCode =
  /** cannot be created, or a component is not a directory */
  | 'E_DIRECTORY'
  /** the directory is a symbolic link */
  | 'E_DIRECTORY_SYMLINK'
  /** the directory is shared: sticky, or writable by others while someone else owns it */
  | 'E_DIRECTORY_SHARED'
  /** the directory is readable by others and this process may not change its mode */
  | 'E_DIRECTORY_MODE';

export class DirectoryError extends Error {
  constructor(readonly code: DirectoryErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * Makes `path` (and its missing parents, 0700) and makes sure the directory itself is private:
 * an existing one readable by others is set to 0700. Refuses a symbolic link, a sticky directory
 * and one that someone else owns while others may write to it: in any of them another user could
 * put or redirect what the sensor writes.
 */
export function ensurePrivateDir(path: string): void {
  const leaf = resolve(path);
  const missing: string[] = [];
  let p = leaf;
  for (;;) {
    let st;
    try {
      // The leaf is looked at itself (a link there is refused below); a parent may be a link
      // (/var/lib -> /data/lib is the operator's choice).
      st = p === leaf ? lstatSync(p) : statSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new DirectoryError('E_DIRECTORY', `Cannot create directory "${path}": ${(err as Error).message}`, { cause: err });
      missing.push(p);
      const up = dirname(p);
      if (up === p) break;
      p = up;
      continue;
    }
    if (!st.isDirectory() && !st.isSymbolicLink()) throw new DirectoryError('E_DIRECTORY', `Cannot create directory "${path}": "${p}" exists and is not a directory`);
    break;
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir, { mode: PRIVATE_DIR_MODE });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new DirectoryError('E_DIRECTORY', `Cannot create directory "${dir}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
  }
  makePrivate(leaf);
}

/** Opens `dir` without following a link, checks who may use it and tightens it to 0700 through the descriptor. */
function makePrivate(dir: string): void {
  const fd = openDirNoFollow(dir, 'Cannot use directory', 'for private data');
  try {
    const st = fstatSync(fd);
    const mode = st.mode & 0o7777;
    const octal = mode.toString(8).padStart(4, '0');
    if ((mode & STICKY_BIT) !== 0) {
      throw new DirectoryError('E_DIRECTORY_SHARED', `Cannot use directory "${dir}" for private data: it is a shared directory (sticky bit, mode ${octal}); give a directory of its own inside it`);
    }
    if (st.uid !== process.geteuid?.() && (mode & GROUP_OTHER_WRITE_BITS) !== 0) {
      throw new DirectoryError('E_DIRECTORY_SHARED', `Cannot use directory "${dir}" for private data: it belongs to uid ${st.uid} and others may write to it (mode ${octal})`);
    }
    if ((mode & GROUP_OTHER_BITS) === 0) return;
    try {
      fchmodSync(fd, PRIVATE_DIR_MODE);
    } catch (err) {
      throw new DirectoryError('E_DIRECTORY_MODE', `Cannot make directory "${dir}" private (mode ${octal}, owner uid ${st.uid}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens a directory without following a final link. Linux answers ELOOP or ENOTDIR for a link
 * (which one depends on O_DIRECTORY), so the failure is told apart by looking at the entry itself.
 */
function openDirNoFollow(dir: string, action: string, purpose: string): number {
  try {
    return openSync(dir, OPEN_DIR_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const st = lstatSync(dir, { throwIfNoEntry: false });
    if (st?.isSymbolicLink() === true) {
      throw new DirectoryError('E_DIRECTORY_SYMLINK', `${action} "${dir}" ${purpose}: it is a symbolic link (to "${linkTarget(dir)}"); give the real directory instead`, { cause: err });
    }
    if (st !== undefined && !st.isDirectory()) throw new DirectoryError('E_DIRECTORY', `${action} "${dir}" ${purpose}: it exists and is not a directory`, { cause: err });
    throw new DirectoryError('E_DIRECTORY', `${action} "${dir}" ${purpose}: ${code ?? (err as Error).message}`, { cause: err });
  }
}

function linkTarget(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '?';
  }
}

/** What chownTreeNoFollow did: entries given to the new owner, and those left as they were. */
export interface ChownTreeResult {
  readonly changed: number;
  /** Paths not changed: symbolic links, hard-linked files, FIFOs, sockets, entries swapped mid-walk. */
  readonly skipped: readonly string[];
}

/**
 * Gives the directory `root` and everything in it to uid:gid without ever following a link: the
 * tree may have been written by a compromised sensor, which could plant a symbolic link to /etc
 * or a hard link to a root-owned file for a root process to chown. Every directory and file is
 * opened with O_NOFOLLOW and changed through its descriptor; a directory is listed through
 * /proc/self/fd (as openat would), so renaming a parent mid-walk cannot redirect the walk. A file
 * with more than one link may be a file outside the tree and is left alone, as is anything that is
 * neither file nor directory, or whose inode changed between listing and opening.
 */
export function chownTreeNoFollow(root: string, uid: number, gid: number): ChownTreeResult {
  const skipped: string[] = [];
  let changed = 0;
  const walk = (fd: number, shown: string): void => {
    fchownSync(fd, uid, gid);
    changed++;
    const here = `/proc/self/fd/${fd}`;
    for (const name of readdirSync(here)) {
      const label = join(shown, name);
      const seen = lstatSync(`${here}/${name}`, { throwIfNoEntry: false });
      if (seen === undefined) continue;
      if (!seen.isDirectory() && !seen.isFile()) {
        skipped.push(label);
        continue;
      }
      let child: number;
      try {
        child = openSync(`${here}/${name}`, OPEN_ENTRY_NOFOLLOW | (seen.isDirectory() ? constants.O_DIRECTORY : 0));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // ELOOP / ENOTDIR / ENXIO: swapped for a link, a file or a socket since the lstat; ENOENT: removed.
        if (code === 'ELOOP' || code === 'ENOTDIR' || code === 'ENXIO' || code === 'ENOENT') {
          skipped.push(label);
          continue;
        }
        throw err;
      }
      try {
        const now = fstatSync(child);
        if (now.ino !== seen.ino || now.dev !== seen.dev) skipped.push(label);
        else if (now.isDirectory()) walk(child, label);
        else if (now.nlink > 1) skipped.push(label);
        else {
          fchownSync(child, uid, gid);
          changed++;
        }
      } finally {
        closeSync(child);
      }
    }
  };
  const top = openDirNoFollow(root, 'Cannot hand directory', 'to another user');
  try {
    walk(top, root);
  } finally {
    closeSync(top);
  }
  return { changed, skipped: skipped.sort() };
}

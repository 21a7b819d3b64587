/**
 * Directories that hold personal data (captures, streams, databases, credentials): readable only by
 * their owner (0700) and never reached through a symbolic link. Component by component rather than
 * `mkdirSync(..., { recursive: true })`, which spins forever under /proc on Node 20. Every refusal
 * is a DirectoryError with a stable code naming the directory.
 */
import { closeSync, constants, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, readlinkSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

const PRIVATE_DIR_MODE = 0o700;
/** Mode bits that let anyone but the owner read, enter or write. */
const GROUP_OTHER_BITS = 0o077;
/** Group and world write: whoever has them can swap the directory's entries. */
const GROUP_OTHER_WRITE_BITS = 0o022;
/** The sticky bit: set on directories meant to be shared (/tmp, /var/tmp). */
const STICKY_BIT = 0o1000;
/** Opens a directory only if it is one itself, not a symbolic link to one. */
const OPEN_DIR_NOFOLLOW = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

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

/**
 * A root process writing in the sensor's data directory does it as the sensor's user: effective
 * uid, gid and groups switched (seteuid / setegid / setgroups) around the writes and back after.
 * Every file and directory it makes is then that user's own (0600 / 0700 as written), and the
 * kernel refuses what that user could not do itself: a link planted in the directory cannot make
 * root write or read through it. Input: a user name, or a data directory (its owner). Output: the
 * callback's result, with the caller's ids restored.
 */
import { lstatSync, readFileSync } from 'node:fs';

export interface UserIds {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** True when this process has root's effective uid (it may switch ids). */
export function runningAsRoot(): boolean {
  return typeof process.geteuid === 'function' && process.geteuid() === 0;
}

/** uid and primary gid of `name` from /etc/passwd (name:x:uid:gid:...); throws "no such user". */
export function lookupUser(name: string): UserIds {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.split(':')[0] === name);
  if (line === undefined) throw new Error('no such user');
  const [, , uid, gid] = line.split(':');
  return { name, uid: Number(uid), gid: Number(gid) };
}

/**
 * Whom a root process acts as in `dir`: its owner, when this process is root and `dir` is a real
 * directory (not a link) that belongs to another user, as setup.sh makes /var/lib/hark (hark:hark).
 * Undefined otherwise: not root, no such directory yet, or root's own.
 */
export function dataDirOwner(dir: string): UserIds | undefined {
  if (!runningAsRoot()) return undefined;
  const st = lstatSync(dir, { throwIfNoEntry: false });
  if (st === undefined || !st.isDirectory() || st.uid === 0) return undefined;
  return { name: `uid ${st.uid}`, uid: st.uid, gid: st.gid };
}

/**
 * Runs `fn` with `user`'s effective uid, gid and (only) group, then restores this process's; with
 * `user` undefined just runs it. For a root process only, and not nested. A promise is waited for
 * before the ids are restored: other asynchronous work running meanwhile runs as `user` too, so
 * the caller must have none (the sensor's start has none yet).
 */
export function actAs<T>(user: UserIds | undefined, fn: () => T): T {
  if (user === undefined) return fn();
  const saved = { uid: process.geteuid!(), gid: process.getegid!(), groups: process.getgroups!() };
  const restore = (): void => {
    process.seteuid!(saved.uid);
    process.setegid!(saved.gid);
    process.setgroups!(saved.groups);
  };
  // groups and gid first: once the euid is not root, they can no longer be changed
  process.setgroups!([user.gid]);
  process.setegid!(user.gid);
  try {
    process.seteuid!(user.uid);
  } catch (err) {
    restore();
    throw err;
  }
  let result: T;
  try {
    result = fn();
  } catch (err) {
    restore();
    throw err;
  }
  if (result instanceof Promise) return result.finally(restore) as T;
  restore();
  return result;
}

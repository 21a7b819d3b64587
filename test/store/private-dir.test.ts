/**
 * sensor/store/private-dir.ts: ensurePrivateDir makes and tightens directories to 0700 and refuses
 * links and shared directories; chownTreeNoFollow hands a tree to another user without following
 * anything planted in it. Needs root (CI runs as root): it owns files as "nobody" and switches the
 * effective uid to see what an unprivileged sensor is allowed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, lstatSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chownTreeNoFollow, DirectoryError, ensurePrivateDir } from '../../sensor/store/private-dir.js';

/** nobody:nogroup on Debian: a user that owns nothing here. */
const NOBODY = 65534;

let base = '';

before(() => {
  assert.equal(process.getuid?.(), 0, 'private-dir tests need root (CI runs as root)');
  base = mkdtempSync(join(tmpdir(), 'hark-private-dir-'));
});

after(() => rmSync(base, { recursive: true, force: true }));

function fresh(name: string): string {
  const dir = join(base, name);
  mkdirSync(dir);
  return dir;
}

function modeOf(p: string): number {
  return lstatSync(p).mode & 0o7777;
}

function ownerOf(p: string): string {
  const st = lstatSync(p);
  return `${st.uid}:${st.gid}`;
}

function refusedWith(code: string, pattern: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof DirectoryError, String(e));
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  };
}

/** Runs `f` with the effective uid and gid of nobody, as a sensor started with --user nobody is. */
function asNobody(f: () => void): void {
  process.setegid!(NOBODY);
  process.seteuid!(NOBODY);
  try {
    f();
  } finally {
    process.seteuid!(0);
    process.setegid!(0);
  }
}

test('ensurePrivateDir makes missing directories 0700 whatever the umask', () => {
  const dir = join(fresh('make'), 'a', 'b');
  const old = process.umask(0o022);
  try {
    ensurePrivateDir(dir);
  } finally {
    process.umask(old);
  }
  assert.equal(modeOf(dir), 0o700);
  assert.equal(modeOf(join(dir, '..')), 0o700);
});

test('ensurePrivateDir tightens an existing directory readable by others to 0700', () => {
  const dir = fresh('loose');
  chmodSync(dir, 0o755);
  ensurePrivateDir(dir);
  assert.equal(modeOf(dir), 0o700);
  chmodSync(dir, 0o2770);
  ensurePrivateDir(dir);
  assert.equal(modeOf(dir), 0o700, 'group write and setgid go too');
});

test('ensurePrivateDir leaves an existing private directory and its parents as they are', () => {
  const parent = fresh('parent');
  chmodSync(parent, 0o755);
  const dir = join(parent, 'data');
  mkdirSync(dir, { mode: 0o700 });
  ensurePrivateDir(dir);
  assert.equal(modeOf(dir), 0o700);
  assert.equal(modeOf(parent), 0o755, 'only the directory asked for is tightened');
});

test('ensurePrivateDir refuses a symbolic link and leaves its target alone', () => {
  const target = fresh('link-target');
  chmodSync(target, 0o755);
  const link = join(base, 'link');
  symlinkSync(target, link);
  assert.throws(() => ensurePrivateDir(link), refusedWith('E_DIRECTORY_SYMLINK', /^Cannot use directory ".*\/link" for private data: it is a symbolic link \(to ".*\/link-target"\); give the real directory instead$/));
  assert.equal(modeOf(target), 0o755);
  const dangling = join(base, 'dangling');
  symlinkSync(join(base, 'nowhere'), dangling);
  assert.throws(() => ensurePrivateDir(dangling), refusedWith('E_DIRECTORY_SYMLINK', /symbolic link/));
});

test('ensurePrivateDir still follows a link among the parents', () => {
  const real = fresh('real-parent');
  const viaLink = join(base, 'parent-link');
  symlinkSync(real, viaLink);
  ensurePrivateDir(join(viaLink, 'data'));
  assert.equal(modeOf(join(real, 'data')), 0o700);
});

test('ensurePrivateDir refuses a directory someone else owns that others may write to', () => {
  const dir = fresh('foreign');
  chownSync(dir, NOBODY, NOBODY);
  chmodSync(dir, 0o775);
  assert.throws(() => ensurePrivateDir(dir), refusedWith('E_DIRECTORY_SHARED', new RegExp(`belongs to uid ${NOBODY} and others may write to it \\(mode 0775\\)`)));
  assert.equal(modeOf(dir), 0o775, 'not changed');
});

test('ensurePrivateDir refuses a sticky (shared) directory rather than taking it over', () => {
  const dir = fresh('sticky');
  chmodSync(dir, 0o1777);
  assert.throws(() => ensurePrivateDir(dir), refusedWith('E_DIRECTORY_SHARED', /it is a shared directory \(sticky bit, mode 1777\); give a directory of its own inside it/));
  assert.equal(modeOf(dir), 0o1777);
  assert.throws(() => ensurePrivateDir(tmpdir()), refusedWith('E_DIRECTORY_SHARED', /sticky bit/));
});

test('ensurePrivateDir as an unprivileged user tightens its own directory and names one it may not change', () => {
  const parent = fresh('unprivileged');
  chmodSync(parent, 0o755);
  const mine = join(parent, 'mine');
  mkdirSync(mine, { mode: 0o755 });
  chownSync(mine, NOBODY, NOBODY);
  chmodSync(mine, 0o755);
  const roots = join(parent, 'roots');
  mkdirSync(roots);
  chmodSync(roots, 0o755);
  chmodSync(base, 0o711); // nobody may pass through the test's own directory
  try {
    asNobody(() => {
      ensurePrivateDir(mine);
      assert.throws(() => ensurePrivateDir(roots), refusedWith('E_DIRECTORY_MODE', /^Cannot make directory ".*\/roots" private \(mode 0755, owner uid 0\): EPERM$/));
    });
  } finally {
    chmodSync(base, 0o700);
  }
  assert.equal(modeOf(mine), 0o700);
  assert.equal(modeOf(roots), 0o755);
});

test('chownTreeNoFollow hands a tree over without following links or taking hard-linked files', () => {
  const root = fresh('tree');
  const outside = fresh('outside');
  writeFileSync(join(outside, 'secret.txt'), 'root only\n', { mode: 0o600 });
  const hardTarget = join(outside, 'shadow');
  writeFileSync(hardTarget, 'root only\n', { mode: 0o600 });
  writeFileSync(join(root, 'captures.db'), 'x', { mode: 0o600 });
  mkdirSync(join(root, 'identity'), { mode: 0o700 });
  writeFileSync(join(root, 'identity', 'key.pem'), 'k', { mode: 0o600 });
  symlinkSync(outside, join(root, 'planted-dir-link'));
  symlinkSync(join(outside, 'secret.txt'), join(root, 'identity', 'planted-file-link'));
  linkSync(hardTarget, join(root, 'planted-hard-link'));
  execFileSync('mkfifo', [join(root, 'fifo')]);

  const r = chownTreeNoFollow(root, NOBODY, NOBODY);

  assert.equal(r.changed, 4, 'the directory, identity/, captures.db and key.pem');
  assert.deepEqual([...r.skipped].sort(), ['fifo', 'identity/planted-file-link', 'planted-dir-link', 'planted-hard-link'].map((n) => join(root, n)));
  for (const p of ['', 'captures.db', 'identity', 'identity/key.pem']) assert.equal(ownerOf(join(root, p)), `${NOBODY}:${NOBODY}`, p);
  for (const p of [outside, join(outside, 'secret.txt'), hardTarget]) assert.equal(ownerOf(p), '0:0', `${p} stays root's`);
  assert.equal(ownerOf(join(root, 'planted-dir-link')), '0:0', 'the link itself is left too');
  assert.equal(statSync(join(outside, 'secret.txt')).mode & 0o777, 0o600);
});

test('chownTreeNoFollow refuses a tree whose top is a symbolic link', () => {
  const target = fresh('top-target');
  const link = join(base, 'top-link');
  symlinkSync(target, link);
  assert.throws(() => chownTreeNoFollow(link, NOBODY, NOBODY), refusedWith('E_DIRECTORY_SYMLINK', /^Cannot hand directory ".*\/top-link" to another user: it is a symbolic link/));
  assert.equal(ownerOf(target), '0:0');
});

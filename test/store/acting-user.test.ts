/**
 * sensor/store/acting-user.ts: actAs makes what it writes the user's own and restores root's ids
 * after a result, a throw and a rejected promise; a link the user planted cannot make root write
 * through it; dataDirOwner names the owner of a directory only root should act for. Needs root (CI
 * runs as root).
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeFileAtomic } from '../../sensor/home-client/atomic-file.js';
import { actAs, dataDirOwner, lookupUser } from '../../sensor/store/acting-user.js';
import { ensurePrivateDir } from '../../sensor/store/private-dir.js';

/** nobody:nogroup on Debian. */
const NOBODY = { name: 'nobody', uid: 65534, gid: 65534 };

let base = '';

before(() => {
  assert.equal(process.getuid?.(), 0, 'acting-user tests need root (CI runs as root)');
  base = mkdtempSync(join(tmpdir(), 'hark-acting-user-'));
  chmodSync(base, 0o711); // nobody passes through to its directories, as to /var/lib/hark
});

after(() => rmSync(base, { recursive: true, force: true }));

function ownerOf(p: string): string {
  const st = lstatSync(p);
  return `${st.uid}:${st.gid}`;
}

function ids(): string {
  return `${process.geteuid!()}:${process.getegid!()}:${process.getgroups!().join(',')}`;
}

/** A directory owned by nobody, 0700, as setup.sh makes /var/lib/hark for hark. */
function nobodysDir(name: string): string {
  const dir = join(base, name);
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, NOBODY.uid, NOBODY.gid);
  return dir;
}

test('lookupUser reads uid and gid from /etc/passwd and refuses an unknown name', () => {
  assert.deepEqual(lookupUser('nobody'), NOBODY);
  assert.throws(() => lookupUser('no-such-user-here'), /no such user/);
});

test('actAs writes as the user: files and directories are its own, 0600 and 0700', () => {
  const data = nobodysDir('owned');
  actAs(NOBODY, () => {
    ensurePrivateDir(join(data, 'config', 'active-1'));
    writeFileAtomic(join(data, 'config', 'active-1', 'dictionary.json'), '{}');
  });
  for (const p of ['config', 'config/active-1', 'config/active-1/dictionary.json']) assert.equal(ownerOf(join(data, p)), `${NOBODY.uid}:${NOBODY.gid}`, p);
  assert.equal(lstatSync(join(data, 'config', 'active-1')).mode & 0o777, 0o700);
  assert.equal(lstatSync(join(data, 'config', 'active-1', 'dictionary.json')).mode & 0o777, 0o600);
});

test('actAs: a link the user planted cannot make root write through it', () => {
  const data = nobodysDir('planted');
  const victim = join(base, 'victim');
  writeFileSync(victim, 'root only\n', { mode: 0o600 });
  symlinkSync(victim, join(data, 'allow-list-combined.txt'));
  assert.throws(() => actAs(NOBODY, () => writeFileSync(join(data, 'allow-list-combined.txt'), 'overwritten\n')), { code: 'EACCES' });
  assert.equal(readFileSync(victim, 'utf8'), 'root only\n');
});

test('actAs restores root\'s ids after a result, a throw and a rejected promise', async () => {
  const before = ids();
  assert.equal(actAs(NOBODY, () => process.geteuid!()), NOBODY.uid);
  assert.equal(ids(), before);
  assert.throws(() => actAs(NOBODY, () => { throw new Error('boom'); }), /boom/);
  assert.equal(ids(), before);
  await assert.rejects(actAs(NOBODY, async () => {
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(process.geteuid!(), NOBODY.uid, 'still the user across an await');
    throw new Error('later');
  }), /later/);
  assert.equal(ids(), before);
  assert.equal(actAs(undefined, () => process.geteuid!()), 0, 'no user: runs as it is');
});

test('dataDirOwner: another user\'s directory names its owner; root\'s, a missing one or a link does not', () => {
  const data = nobodysDir('owner');
  assert.deepEqual(dataDirOwner(data), { name: `uid ${NOBODY.uid}`, uid: NOBODY.uid, gid: NOBODY.gid });
  assert.equal(dataDirOwner(base), undefined, 'root\'s own directory');
  assert.equal(dataDirOwner(join(base, 'missing')), undefined);
  symlinkSync(data, join(base, 'owner-link'));
  assert.equal(dataDirOwner(join(base, 'owner-link')), undefined);
});

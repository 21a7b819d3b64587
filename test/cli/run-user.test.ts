/**
 * `hark run --user nobody` for real on lo (a filter that matches nothing: no interfaces made, no
 * traffic needed): the data directory is handed to nobody, but a symbolic link or hard link planted
 * in it (as a compromised sensor running as nobody could, before the supervisor restarts it as
 * root) is never followed. A data directory that is itself a link is refused. Needs root (CI runs
 * as root).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, linkSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const HARK = fileURLToPath(new URL('../../../bin/hark', import.meta.url));
const NOBODY = 65534;
/** Loading the dictionary and opening lo: startup, not a speed claim. */
const READY_DEADLINE_MS = 30_000;
/** A BPF filter that no loopback traffic of this machine's tests matches. */
const QUIET_FILTER = 'tcp port 9 and host 127.0.0.254';
const RUN_ARGS = ['-i', 'lo', '-f', QUIET_FILTER, '--mode', 'standalone', '--keep-offloads', '--workers', '0', '--warm-up', '0', '--no-api', '--stats-interval', '0'];

function ownerOf(p: string): string {
  const st = lstatSync(p);
  return `${st.uid}:${st.gid}`;
}

test('hark run --user hands the data directory over without following links planted in it', async () => {
  assert.equal(process.getuid?.(), 0, 'the --user test needs root (CI runs as root)');
  const base = mkdtempSync(join(tmpdir(), 'hark-run-user-'));
  try {
    chmodSync(base, 0o711); // nobody passes through to its data directory
    const data = join(base, 'data');
    mkdirSync(data, { mode: 0o755 });
    chmodSync(data, 0o755);
    const victim = join(base, 'victim');
    mkdirSync(victim, { mode: 0o700 });
    writeFileSync(join(victim, 'victim.txt'), 'root only\n', { mode: 0o600 });
    const shadow = join(base, 'shadow');
    writeFileSync(shadow, 'root only\n', { mode: 0o600 });
    symlinkSync(victim, join(data, 'planted-link'));
    linkSync(shadow, join(data, 'planted-hard-link'));

    const child = spawn(HARK, ['run', ...RUN_ARGS, '--data-dir', data, '--user', 'nobody'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const exited = once(child, 'exit');
    for (let i = 0; i * 100 < READY_DEADLINE_MS && !err.includes('listening on lo') && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(err, /listening on lo/);
    child.kill('SIGINT');
    const [code] = await exited;
    assert.equal(code, 0, err);

    assert.equal(ownerOf(data), `${NOBODY}:${NOBODY}`, 'the data directory is nobody\'s');
    assert.equal(lstatSync(data).mode & 0o777, 0o700, 'and private');
    assert.equal(ownerOf(join(data, 'captures.db')), `${NOBODY}:${NOBODY}`);
    assert.equal(ownerOf(join(data, 'identity')), `${NOBODY}:${NOBODY}`);
    for (const p of [victim, join(victim, 'victim.txt'), shadow]) assert.equal(ownerOf(p), '0:0', `${p} stays root's`);
    assert.match(err, /hark: left 2 entries in .*\/data as they were \(links, hard-linked files and special files are never handed to "nobody"\): ".*\/planted-hard-link", ".*\/planted-link"/);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('hark run refuses a data directory that is a symbolic link, naming it', () => {
  const base = mkdtempSync(join(tmpdir(), 'hark-run-user-'));
  try {
    const elsewhere = join(base, 'elsewhere');
    mkdirSync(elsewhere);
    symlinkSync(elsewhere, join(base, 'data'));
    const r = spawnSync(HARK, ['run', ...RUN_ARGS, '--data-dir', join(base, 'data'), '--user', 'nobody'], { encoding: 'utf8', timeout: READY_DEADLINE_MS });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /Cannot use directory ".*\/data" for private data: it is a symbolic link \(to ".*\/elsewhere"\); give the real directory instead/);
    assert.equal(ownerOf(elsewhere), '0:0');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

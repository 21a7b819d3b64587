/**
 * `hark run --user nobody` for real on lo (a filter that matches nothing: no interfaces made, no
 * traffic needed): the data directory is handed to nobody, but a symbolic link or hard link planted
 * in it (as a compromised sensor running as nobody could, before the supervisor restarts it as
 * root) is never followed. A data directory that is itself a link is refused. In home mode (a real
 * `hark home` on 127.0.0.1) the identity root enrolled and the configuration fetched before the drop
 * are nobody's, 0600 in 0700 directories, and a link nobody planted where the start writes is never
 * written through. Needs root (CI runs as root).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { enrolByCredentials, Operator, startHomeProcess } from '../helpers/system.js';

const HARK = fileURLToPath(new URL('../../../bin/hark', import.meta.url));
const NOBODY = 65534;
/** Loading the dictionary and opening lo: startup, not a speed claim. */
const READY_DEADLINE_MS = 30_000;
/** A BPF filter that no loopback traffic of this machine's tests matches. */
const QUIET_FILTER = 'tcp port 9 and host 127.0.0.254';
const QUIET_ARGS = ['--keep-offloads', '--workers', '0', '--warm-up', '0', '--no-api', '--stats-interval', '0'];
const RUN_ARGS = ['-i', 'lo', '-f', QUIET_FILTER, '--mode', 'standalone', ...QUIET_ARGS];

/** Runs `hark run ARGS` until it listens, then stops it with SIGINT; returns its stderr (exit 0 checked). */
async function runUntilListening(args: string[]): Promise<string> {
  const child = spawn(HARK, ['run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = once(child, 'exit');
  for (let i = 0; i * 100 < READY_DEADLINE_MS && !err.includes('listening on lo') && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(err, /listening on lo/);
  child.kill('SIGINT');
  const [code] = await exited;
  assert.equal(code, 0, err);
  return err;
}

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

    const err = await runUntilListening([...RUN_ARGS, '--data-dir', data, '--user', 'nobody']);

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

/** Every entry under `dir` (itself included), depth first. */
function tree(dir: string): string[] {
  const out = [dir];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    out.push(...(lstatSync(p).isDirectory() ? tree(p) : [p]));
  }
  return out;
}

test('hark run --user in home mode: identity and configuration are the user\'s, 0600 in 0700 directories, and a link it planted is never written through', { timeout: 180_000 }, async () => {
  assert.equal(process.getuid?.(), 0, 'the --user test needs root (CI runs as root)');
  const base = mkdtempSync(join(tmpdir(), 'hark-run-user-home-'));
  chmodSync(base, 0o711);
  const home = await startHomeProcess(join(base, 'home'));
  const op = await Operator.firstAdmin(home);
  try {
    const def = await op.ok('POST', '/v1/sensors', { name: 'user-drop', site: 'Hilltop', interfaces: ['lo'], bpf: QUIET_FILTER, dictionary: 'starter', allow_list: 'example.org\n' });
    const data = join(base, 'data');
    // enrolled by root, as the console menu does under hark.sh: identity/ starts root's
    const enrol = await enrolByCredentials([home.url], home.fingerprint, data, def.id, 'correct horse battery staple');
    assert.equal(await enrol.exited, 0, enrol.err);
    assert.equal(ownerOf(join(data, 'identity', 'key.pem')), '0:0');
    const localAllow = join(base, 'allow-list.txt');
    writeFileSync(localAllow, 'school.example\n', { mode: 0o644 });
    const args = ['--mode', 'home', '--data-dir', data, '--user', 'nobody', '--allow-list', localAllow, ...QUIET_ARGS];

    await runUntilListening(args);
    const active = readdirSync(join(data, 'config')).find((n) => n.startsWith('active-'));
    assert.ok(active !== undefined, 'the configuration from home is materialised');
    const startFiles = [join(data, 'identity'), join(data, 'config')].flatMap(tree);
    for (const p of tree(data)) assert.equal(ownerOf(p), `${NOBODY}:${NOBODY}`, `${p} is nobody's`);
    for (const p of startFiles) assert.equal(lstatSync(p).mode & 0o777, lstatSync(p).isDirectory() ? 0o700 : 0o600, p);
    assert.ok(startFiles.includes(join(data, 'config', active, 'allow-list-combined.txt')), 'home\'s and the local allow list, combined');

    // What a sensor compromised as nobody could leave for the next start as root: a link where
    // the start writes the combined allow list, pointing at a file only root may write.
    const victim = join(base, 'victim');
    writeFileSync(victim, 'root only\n', { mode: 0o600 });
    const combined = join(data, 'config', active, 'allow-list-combined.txt');
    const plant = spawnSync('runuser', ['-u', 'nobody', '--', 'ln', '-sf', victim, combined], { encoding: 'utf8' });
    assert.equal(plant.status, 0, plant.stderr);
    assert.ok(lstatSync(combined).isSymbolicLink());

    await runUntilListening(args);
    assert.equal(readFileSync(victim, 'utf8'), 'root only\n', 'the root start never writes through the planted link');
    assert.equal(ownerOf(victim), '0:0');
    assert.ok(lstatSync(combined).isFile(), 'the link is replaced by the file');
    assert.equal(ownerOf(combined), `${NOBODY}:${NOBODY}`);
    assert.equal(lstatSync(combined).mode & 0o777, 0o600);
    assert.match(readFileSync(combined, 'utf8'), /example\.org[\s\S]*school\.example/);
  } finally {
    await op.close();
    await home.proc.stop();
    rmSync(base, { recursive: true, force: true });
  }
});

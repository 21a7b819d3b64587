import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startHome } from '../../home/main.js';
import { agentFor, call, closeAgents } from './helpers.js';

const MAIN = fileURLToPath(new URL('../../home/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'hark-home-cli-'));
after(async () => { await closeAgents(); rmSync(dir, { recursive: true, force: true }); });

function hark(args: string[], input = ''): { status: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { input, encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

test('runHome --help explains every option', () => {
  const r = hark(['--help']);
  assert.equal(r.status, 0);
  for (const opt of ['--data-dir', '--port', '--listen', '--name', '--heartbeat-timeout', 'admin add', 'admin passwd', '--password-file']) assert.ok(r.stdout.includes(opt), opt);
});

test('runHome admin add / passwd make operators who can log in, with no default password', async () => {
  const data = join(dir, 'data');
  assert.equal(hark(['admin', 'add', 'dsl', '--role', 'lead', '--data-dir', data], 'short\n').status, 2, 'short password refused');
  assert.equal(hark(['admin', 'add', 'dsl', '--role', 'boss', '--data-dir', data], 'long enough pw\n').status, 2, 'unknown role refused');
  assert.equal(hark(['admin', 'add', 'dsl', '--role', 'lead', '--data-dir', data], 'safeguarding lead pw\n').status, 0);
  assert.equal(hark(['admin', 'add', 'dsl', '--role', 'lead', '--data-dir', data], 'safeguarding lead pw\n').status, 1, 'exists');
  const pwFile = join(dir, 'pw');
  writeFileSync(pwFile, 'changed by the cli\n');
  assert.equal(hark(['admin', 'passwd', 'dsl', '--password-file', pwFile, '--data-dir', data]).status, 0);
  assert.equal(hark(['admin', 'passwd', 'nobody', '--password-file', pwFile, '--data-dir', data]).status, 1);
  const home = await startHome({ dataDir: data, port: 0, listen: '127.0.0.1', announce: () => {} });
  try {
    const a = agentFor(home.caPem);
    assert.equal((await call(home, a, 'POST', '/v1/login', { user: 'dsl', password: 'safeguarding lead pw' })).status, 401);
    const r = await call(home, a, 'POST', '/v1/login', { user: 'dsl', password: 'changed by the cli' });
    assert.equal(r.status, 200);
    assert.deepEqual([(r.body as { role: string }).role, (r.body as { must_change_password: boolean }).must_change_password], ['lead', false]);
  } finally {
    await home.close();
  }
});

test('runHome admin add with a --password-file it cannot read names it in one line and exits 2', () => {
  const data = join(dir, 'no-password');
  const missing = join(dir, 'nosuch');
  const r = hark(['admin', 'add', 'dsl', '--role', 'lead', '--data-dir', data, '--password-file', missing]);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, `hark home admin: Cannot read password file "${missing}": no such file\n`);
  const isDir = hark(['admin', 'passwd', 'dsl', '--data-dir', data, '--password-file', dir]);
  assert.equal(isDir.status, 2, isDir.stderr);
  assert.equal(isDir.stderr, `hark home admin: Cannot read password file "${dir}": is a directory\n`);
  assert.equal(existsSync(data), false, 'nothing is made before the password is read');
});

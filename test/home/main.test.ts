import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:https';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

test('runHome admin passwd admin deletes initial-admin-password, which another operator\'s passwd leaves alone', async () => {
  const data = join(dir, 'initial');
  const first = await startHome({ dataDir: data, port: 0, listen: '127.0.0.1', announce: () => {} });
  await first.close();
  const file = join(data, 'initial-admin-password');
  const initial = readFileSync(file, 'utf8').trim();
  assert.equal(hark(['admin', 'add', 'dsl', '--role', 'lead', '--data-dir', data], 'safeguarding lead pw\n').status, 0);
  assert.equal(hark(['admin', 'passwd', 'dsl', '--data-dir', data], 'another lead password\n').status, 0);
  assert.equal(readFileSync(file, 'utf8').trim(), initial, 'another operator\'s new password leaves the file');
  const r = hark(['admin', 'passwd', 'admin', '--data-dir', data], 'set from the console\n');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(existsSync(file), false, 'the file must not keep a password that no longer works');
  assert.equal(r.stderr, `hark home admin passwd: deleted ${file}: the password it held no longer works\n`);
  assert.match(readFileSync(join(data, 'home.log'), 'utf8'), /config\.password_changed user=admin by=cli initial_password_file=deleted/);
  const home = await startHome({ dataDir: data, port: 0, listen: '127.0.0.1', announce: () => {} });
  try {
    const a = agentFor(home.caPem);
    assert.equal((await call(home, a, 'POST', '/v1/login', { user: 'admin', password: initial })).status, 401);
    const login = await call(home, a, 'POST', '/v1/login', { user: 'admin', password: 'set from the console' });
    assert.equal(login.status, 200);
    assert.equal((login.body as { must_change_password: boolean }).must_change_password, false);
    assert.equal(existsSync(file), false, 'nor is it made again at the next start');
  } finally {
    await home.close();
  }
});

test('runHome admin add with a --password-file it cannot read names it in one line and exits 2', () => {
  const data = join(dir, 'no-password');
  const missing = join(dir, 'nosuch');
  const r = hark(['admin', 'add', 'dsl', '--role', 'lead', '--data-dir', data, '--password-file', missing]);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, `hark home admin: Cannot read the password file "${missing}": no such file\n`);
  const isDir = hark(['admin', 'passwd', 'dsl', '--data-dir', data, '--password-file', dir]);
  assert.equal(isDir.status, 2, isDir.stderr);
  assert.equal(isDir.stderr, `hark home admin: Cannot read the password file "${dir}": is a directory\n`);
  assert.equal(existsSync(data), false, 'nothing is made before the password is read');
});

test('runHome admin reads at most one bounded line: /dev/zero and an empty first line are refused in one line', () => {
  const data = join(dir, 'bounded');
  // before, the whole file was read: /dev/zero filled memory until the read failed
  const zero = spawnSync(process.execPath, [MAIN, 'admin', 'add', 'dsl', '--role', 'lead', '--data-dir', data, '--password-file', '/dev/zero'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(zero.status, 2, zero.stderr);
  assert.equal(zero.stderr, 'hark home admin: No password in the password file "/dev/zero": its first line is longer than 4098 bytes\n');
  const empty = hark(['admin', 'add', 'dsl', '--role', 'lead', '--data-dir', data], '\nsafeguarding lead pw\n');
  assert.equal(empty.status, 2, empty.stderr);
  assert.equal(empty.stderr, 'hark home admin: No password in standard input: its first line is empty\n');
  assert.equal(existsSync(data), false, 'nothing is made before the password is read');
});

test('runHome takes an empty --listen as every address (as hark-home.service passes it) and stops cleanly on SIGTERM', async () => {
  const data = join(dir, 'serve');
  const child = spawn(process.execPath, [MAIN, '--data-dir', data, '--port', '0', '--listen', ''], { env: { ...process.env, HARK_HOME_READY_FD: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const [line] = await once(child.stdout.setEncoding('utf8'), 'data') as [string];
  const { port } = JSON.parse(line) as { port: number };
  assert.match(stderr, new RegExp(`listening on https://127\\.0\\.0\\.1:${port} `));
  const ping = await new Promise<{ status?: number; body: string }>((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/v1/ping', rejectUnauthorized: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject).end();
  });
  assert.equal(ping.status, 200, ping.body);
  child.kill('SIGTERM');
  const [code, signal] = await once(child, 'exit') as [number | null, string | null];
  assert.deepEqual([code, signal], [0, null], stderr);
  assert.match(readFileSync(join(data, 'home.log'), 'utf8'), /home\.stop port=\d+/);
});

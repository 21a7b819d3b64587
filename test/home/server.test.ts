import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startHome } from '../../home/main.js';
import { agentFor, call, closeAgents } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'hark-home-srv-'));
const dataDir = join(dir, 'data');
after(async () => { await closeAgents(); rmSync(dir, { recursive: true, force: true }); });

test('startHome first start: admin with a random password in a 0600 file (only its path printed) that can only change it; files 0600, dir 0700', async () => {
  let announced = '';
  const home = await startHome({ dataDir, port: 0, listen: '127.0.0.1', announce: (s) => { announced += s; } });
  try {
    assert.equal(statSync(dataDir).mode & 0o777, 0o700);
    for (const f of readdirSync(dataDir)) assert.equal(statSync(join(dataDir, f)).mode & 0o777, 0o600, f);
    assert.ok(readdirSync(dataDir).includes('home.db-wal'), 'WAL mode');
    const file = join(dataDir, 'initial-admin-password');
    const password = readFileSync(file, 'utf8').trim();
    assert.ok(password.length >= 16);
    assert.ok(!announced.includes(password), 'the password is never printed: stderr goes to the journal');
    assert.ok(announced.includes(file), 'the announcement says where the password is');
    assert.doesNotMatch(readFileSync(join(dataDir, 'home.log'), 'utf8'), new RegExp(password), 'nor logged');
    const a = agentFor(home.caPem);
    assert.deepEqual((await call(home, a, 'GET', '/v1/ping')).status, 200);
    const ca = await call(home, a, 'GET', '/v1/ca');
    assert.equal(ca.body, home.caPem);
    assert.equal((await call(home, a, 'POST', '/v1/login', { user: 'admin', password: 'admin' })).status, 401, 'no default password');
    const login = await call(home, a, 'POST', '/v1/login', { user: 'admin', password });
    assert.equal(login.status, 200);
    const body = login.body as { token: string; role: string; must_change_password: boolean };
    assert.deepEqual([body.role, body.must_change_password], ['admin', true]);
    for (const [m, p] of [['GET', '/v1/sensors'], ['GET', '/v1/audit'], ['POST', '/v1/sensors']]) {
      const r = await call(home, a, m, p, m === 'POST' ? { name: 'x' } : undefined, body.token);
      assert.equal(r.status, 403, p);
      assert.equal((r.body as { error: string }).error, 'E_PASSWORD_CHANGE');
    }
    assert.equal((await call(home, a, 'POST', '/v1/password', { current_password: password, new_password: 'short' }, body.token)).status, 400);
    assert.equal((await call(home, a, 'POST', '/v1/password', { current_password: 'wrong', new_password: 'a much longer password' }, body.token)).status, 403);
    assert.equal((await call(home, a, 'POST', '/v1/password', { current_password: password, new_password: 'a much longer password' }, body.token)).status, 204);
    assert.equal(existsSync(file), false, 'the initial password file is removed once changed');
    assert.equal((await call(home, a, 'GET', '/v1/sensors', undefined, body.token)).status, 200);
    assert.equal((await call(home, a, 'POST', '/v1/login', { user: 'admin', password })).status, 401, 'old password gone');
    assert.equal((await call(home, a, 'GET', '/v1/nope')).status, 404);
    assert.equal((await call(home, a, 'DELETE', '/v1/ping')).status, 405);
    const big = await call(home, a, 'POST', '/v1/login', 'x'.repeat(2 * 1024 * 1024));
    assert.equal(big.status, 413);
  } finally {
    await home.close();
  }
  const log = readFileSync(join(dataDir, 'home.log'), 'utf8');
  assert.match(log, /home\.start port=\d+/);
  assert.match(log, /home\.stop port=\d+/);
});

test('startHome second start reuses the CA, makes no new admin, and re-issues the server certificate for new names', async () => {
  const first = readFileSync(join(dataDir, 'ca.pem'), 'utf8');
  const serverBefore = readFileSync(join(dataDir, 'server.pem'), 'utf8');
  let announced = '';
  const home = await startHome({ dataDir, port: 0, listen: '127.0.0.1', names: ['home.school.example'], announce: (s) => { announced += s; } });
  try {
    assert.equal(home.caPem, first);
    assert.equal(announced, '');
    assert.equal(existsSync(join(dataDir, 'initial-admin-password')), false);
    assert.notEqual(readFileSync(join(dataDir, 'server.pem'), 'utf8'), serverBefore);
    const a = agentFor(home.caPem);
    assert.equal((await call(home, a, 'POST', '/v1/login', { user: 'admin', password: 'a much longer password' })).status, 200);
  } finally {
    await home.close();
  }
});

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { hashPassword } from '../../home/auth.js';
import { UNKNOWN_USER } from '../../home/core.js';
import { startHome } from '../../home/main.js';
import { HomeStore } from '../../home/store.js';
import { addSensor, agentFor, call, closeAgents, enrolByCredentials, makeSensorIdentity, readLog, startTestHome, type TestHome } from './helpers.js';

let t: TestHome;

before(async () => { t = await startTestHome(); });
after(async () => { await closeAgents(); await t.close(); });

async function login(user: string, password: string): Promise<string> {
  const r = await call(t.home, agentFor(t.home.caPem), 'POST', '/v1/login', { user, password });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body as { token: string }).token;
}

test('roles: readonly reads but cannot change anything; lead may reload and triage but not restart', async () => {
  const a = agentFor(t.home.caPem);
  assert.equal((await call(t.home, a, 'POST', '/v1/operators', { user: 'ro', role: 'readonly', password: 'readonly pass 1', must_change_password: false }, t.adminToken)).status, 201);
  assert.equal((await call(t.home, a, 'POST', '/v1/operators', { user: 'lead', role: 'lead', password: 'lead pass 12', must_change_password: false }, t.adminToken)).status, 201);
  const ro = await login('ro', 'readonly pass 1');
  const lead = await login('lead', 'lead pass 12');
  const sensorId = await addSensor(t, 'Roles sensor');
  const e = await enrolByCredentials(t, sensorId);
  await call(t.home, agentFor(t.home.caPem, { cert: e.cert, key: e.keyPem }), 'POST', '/v1/sensor/captures', {
    captures: [{ id: 'role-cap-1', ts_us: 1, timestamp: '2026-01-01T00:00:00Z', severity: 3, category: 'drugs', phrase: 'x', device: { ip: '10.0.0.1' } }],
  });

  for (const [path] of [['/v1/sensors'], [`/v1/sensors/${sensorId}`], [`/v1/sensors/${sensorId}/status`], ['/v1/captures'], ['/v1/audit'], ['/v1/dictionaries'], ['/v1/enrolments']]) {
    assert.equal((await call(t.home, a, 'GET', path, undefined, ro)).status, 200, path);
  }
  const changes: Array<[string, string, unknown]> = [
    ['POST', '/v1/sensors', { name: 'x' }],
    ['PATCH', `/v1/sensors/${sensorId}`, { name: 'y' }],
    ['DELETE', `/v1/sensors/${sensorId}`, undefined],
    ['PUT', '/v1/dictionaries/ro', { format: 'csv', text: 'phrase,category,severity\na b,drugs,2\n' }],
    ['POST', '/v1/site-keys', { key: 'abcdefgh12' }],
    ['POST', '/v1/operators', { user: 'z', role: 'admin', password: 'zzzzzzzzzzzz' }],
    ['POST', `/v1/sensors/${sensorId}/actions`, { kind: 'reload' }],
    ['PATCH', '/v1/captures/role-cap-1', { status: 'reviewed' }],
    ['PUT', '/v1/settings', { homes: ['https://h.example'] }],
  ];
  for (const [method, path, body] of changes) {
    const r = await call(t.home, a, method, path, body, ro);
    assert.equal(r.status, 403, `${method} ${path}`);
    assert.equal((r.body as { error: string }).error, 'E_ROLE');
  }
  assert.equal((await call(t.home, a, 'GET', `/v1/sensors/${sensorId}`, undefined, t.adminToken)).status, 200, 'nothing was deleted');

  assert.equal((await call(t.home, a, 'POST', `/v1/sensors/${sensorId}/actions`, { kind: 'reload' }, lead)).status, 202);
  assert.equal((await call(t.home, a, 'POST', `/v1/sensors/${sensorId}/actions`, { kind: 'restart' }, lead)).status, 403);
  assert.equal((await call(t.home, a, 'PATCH', '/v1/captures/role-cap-1', { status: 'escalated', note: 'DSL told' }, lead)).status, 200);
  assert.equal((await call(t.home, a, 'PATCH', `/v1/sensors/${sensorId}`, { name: 'y' }, lead)).status, 403);
  const caps = (await call(t.home, a, 'GET', `/v1/captures?sensor=${sensorId}`, undefined, ro)).body as { captures: Array<{ id: string; triage: { status: string; by: string } }> };
  assert.deepEqual(caps.captures.map((c) => [c.id, c.triage.status, c.triage.by]), [['role-cap-1', 'escalated', 'lead']]);
  assert.equal((await call(t.home, a, 'GET', '/v1/sensors')).status, 401);
});

test('login rate limit: per user after 5 failures, 429 with retry-after even for the right password', async () => {
  const a = agentFor(t.home.caPem);
  await call(t.home, a, 'POST', '/v1/operators', { user: 'victim', role: 'readonly', password: 'victim pass 1', must_change_password: false }, t.adminToken);
  for (let i = 0; i < 5; i++) assert.equal((await call(t.home, a, 'POST', '/v1/login', { user: 'victim', password: `wrong ${i}` })).status, 401);
  const limited = await call(t.home, a, 'POST', '/v1/login', { user: 'victim', password: 'victim pass 1' });
  assert.equal(limited.status, 429);
  assert.equal((limited.body as { error: string }).error, 'E_RATE_LIMIT');
  assert.ok(Number(limited.headers['retry-after']) > 0);
  assert.match(readLog(t.home), /security\.rate_limit peer=127\.0\.0\.1:\d+ call=login user=victim/);
  assert.match(readLog(t.home), /security\.login_failed peer=127\.0\.0\.1:\d+ call=login user=victim/);
  // Another user from the same address is still allowed (the per-address limit is higher).
  assert.equal((await call(t.home, a, 'POST', '/v1/login', { user: 'admin', password: t.adminPassword })).status, 200);
});

test('a failed login is audited under the operator\'s name, or as (unknown user) when the name is no operator\'s (a password typed in the wrong box stays out of the audit every operator reads)', async () => {
  const a = agentFor(t.home.caPem);
  await call(t.home, a, 'POST', '/v1/operators', { user: 'typist', role: 'readonly', password: 'typist pass 1', must_change_password: false }, t.adminToken);
  assert.equal((await call(t.home, a, 'POST', '/v1/login', { user: 'typist', password: 'not it' })).status, 401);
  assert.equal((await call(t.home, a, 'POST', '/v1/login', { user: 'Tr0ub4dor&3 secret', password: '' })).status, 401);
  const reader = (await call(t.home, a, 'POST', '/v1/login', { user: 'typist', password: 'typist pass 1' })).body as { token: string };
  const rows = ((await call(t.home, a, 'GET', '/v1/audit?action=login.failed&limit=1000', undefined, reader.token)).body as { audit: Array<{ who: string }> }).audit;
  assert.ok(rows.some((r) => r.who === 'typist'), 'the operator\'s own failure names them');
  assert.ok(rows.some((r) => r.who === UNKNOWN_USER), 'the other is there, nameless');
  assert.ok(!JSON.stringify(rows).includes('Tr0ub4dor'), 'what was typed as the name is not in the audit');
  assert.match(readLog(t.home), /security\.login_failed peer=127\.0\.0\.1:\d+ call=login user="Tr0ub4dor&3 secret"/, 'home.log (0600) keeps it for the host\'s admins');
});

test('audit records who, what and from where for every change', async () => {
  const a = agentFor(t.home.caPem);
  const sensorId = await addSensor(t, 'Audit sensor');
  await call(t.home, a, 'PATCH', `/v1/sensors/${sensorId}`, { site: 'Annex' }, t.adminToken);
  const key = await call(t.home, a, 'POST', '/v1/site-keys', { key: 'audit-key-123', label: 'north' }, t.adminToken);
  await call(t.home, a, 'DELETE', `/v1/site-keys/${(key.body as { id: number }).id}`, undefined, t.adminToken);
  const rows = ((await call(t.home, a, 'GET', '/v1/audit?limit=50', undefined, t.adminToken)).body as { audit: Array<{ who: string; action: string; target: string; peer: string }> }).audit;
  for (const [action, target] of [['sensor.add', `sensor:${sensorId}`], ['sensor.change', `sensor:${sensorId}`], ['site_key.add', 'site_key:'], ['site_key.revoke', 'site_key:']]) {
    const row = rows.find((r) => r.action === action && r.target.startsWith(target));
    assert.ok(row, `audit row for ${action}`);
    assert.equal(row.who, 'admin');
    assert.match(row.peer, /^127\.0\.0\.1:\d+$/);
  }
  assert.match(readLog(t.home), new RegExp(`config\\.sensor_changed sensor=${sensorId} fields=site`));
});

test('site keys: enrolment needs an active key (403 logged with peer); revoking one keeps existing certificates', async () => {
  const a = agentFor(t.home.caPem);
  const sensorId = await addSensor(t, 'Key sensor');
  const before = await enrolByCredentials(t, sensorId);
  assert.equal(before.answer.status, 200, 'no key needed while none is active');
  assert.equal((await call(t.home, a, 'POST', '/v1/site-keys', { key: 'short' }, t.adminToken)).status, 400);
  const k1 = (await call(t.home, a, 'POST', '/v1/site-keys', { key: 'first-site-key', label: 'one' }, t.adminToken)).body as { id: number };
  await call(t.home, a, 'POST', '/v1/site-keys', { key: 'second-site-key', label: 'two' }, t.adminToken);
  const id = makeSensorIdentity();
  const missing = await call(t.home, a, 'POST', '/v1/enrol/request', { uuid: id.uuid, hostname: 'h', csr: id.csrPem });
  assert.equal(missing.status, 403);
  assert.equal((missing.body as { error: string }).error, 'E_SITE_KEY');
  const wrong = await call(t.home, a, 'POST', '/v1/enrol/sensors', { user: 'admin', password: t.adminPassword, site_key: 'not-the-key' });
  assert.equal(wrong.status, 403);
  assert.match(readLog(t.home), /security\.site_key peer=127\.0\.0\.1:\d+ call=enrol\.request reason=missing/);
  assert.match(readLog(t.home), /security\.site_key peer=127\.0\.0\.1:\d+ call=enrol\.sensors reason=wrong/);
  assert.equal((await call(t.home, a, 'POST', '/v1/enrol/request', { uuid: id.uuid, hostname: 'h', csr: id.csrPem, site_key: 'second-site-key' })).status, 202);
  assert.equal((await call(t.home, a, 'DELETE', `/v1/site-keys/${k1.id}`, undefined, t.adminToken)).status, 204);
  assert.equal((await call(t.home, a, 'POST', '/v1/enrol/request', { uuid: id.uuid, hostname: 'h', csr: id.csrPem, site_key: 'first-site-key' })).status, 403);
  // The sensor enrolled before any key existed still works.
  const agent = agentFor(t.home.caPem, { cert: before.cert, key: before.keyPem });
  assert.equal((await call(t.home, agent, 'POST', '/v1/sensor/heartbeat', { queue: 0 })).status, 200);
});

test('PUT /v1/dictionaries validates with the rules/ readers: bad rows are 400 with line numbers', async () => {
  const a = agentFor(t.home.caPem);
  const bad = 'phrase,category,severity\nfine phrase,drugs,3\nbad severity,drugs,9\n,drugs,2\n';
  const r = await call(t.home, a, 'PUT', '/v1/dictionaries/broken', { format: 'csv', text: bad }, t.adminToken);
  assert.equal(r.status, 400);
  const body = r.body as { error: string; message: string; problems: Array<{ line: number; reason: string }> };
  assert.equal(body.error, 'E_DICTIONARY');
  assert.deepEqual(body.problems.map((p) => p.line), [3, 4]);
  assert.match(body.message, /broken:3: /);
  assert.equal((await call(t.home, a, 'GET', '/v1/dictionaries/broken', undefined, t.adminToken)).status, 404);
  assert.equal((await call(t.home, a, 'PUT', '/v1/dictionaries/Bad%20Name', { format: 'csv', text: 'x' }, t.adminToken)).status, 400);
  assert.equal((await call(t.home, a, 'PUT', '/v1/dictionaries/p', { format: 'pack', text: '{"name": ' }, t.adminToken)).status, 400);
  const list = (await call(t.home, a, 'GET', '/v1/dictionaries', undefined, t.adminToken)).body as { dictionaries: Array<{ name: string; phrases: number }> };
  assert.ok((list.dictionaries.find((d) => d.name === 'starter')?.phrases ?? 0) > 100);
});

test('sensor definitions are validated: unknown dictionary, bad network and bad interface are 400', async () => {
  const a = agentFor(t.home.caPem);
  const cases: Array<[object, string]> = [
    [{ name: 'x', dictionary: 'nope' }, 'dictionary'], [{ name: 'x', monitored: ['10.0.0.0/33'] }, 'monitored'], [{ name: 'x', interfaces: ['eth 1'] }, 'interfaces'],
    [{ name: '' }, 'name'], [{ name: 'x', retention: { days: 0 } }, 'retention.days'],
  ];
  for (const [body, field] of cases) {
    const r = await call(t.home, a, 'POST', '/v1/sensors', body, t.adminToken);
    assert.equal(r.status, 400, JSON.stringify(body));
    // refused for the field it gets wrong, not for something every one of these bodies lacks
    assert.deepEqual([(r.body as { error: string }).error, (r.body as { message: string }).message.startsWith(`"${field}" `)], ['E_FIELD', true], `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
  }
});

test('operators: admin cannot delete the last admin or itself; a reset password must be changed', async () => {
  const a = agentFor(t.home.caPem);
  assert.equal((await call(t.home, a, 'DELETE', '/v1/operators/admin', undefined, t.adminToken)).status, 409);
  assert.equal((await call(t.home, a, 'PATCH', '/v1/operators/admin', { role: 'readonly' }, t.adminToken)).status, 409);
  await call(t.home, a, 'POST', '/v1/operators', { user: 'temp', role: 'lead', password: 'temporary pass' }, t.adminToken);
  const tok = await login('temp', 'temporary pass');
  const blocked = await call(t.home, a, 'GET', '/v1/sensors', undefined, tok);
  assert.equal(blocked.status, 403);
  assert.equal((blocked.body as { error: string }).error, 'E_PASSWORD_CHANGE');
  assert.equal((await call(t.home, a, 'DELETE', '/v1/operators/temp', undefined, t.adminToken)).status, 204);
  assert.equal((await call(t.home, a, 'GET', '/v1/sensors', undefined, tok)).status, 401, 'deleting an operator ends its sessions');
});

/**
 * A home just after first start (initial-admin-password on disk) with a second admin "boss" added
 * and a readonly "clerk" beside the initial "admin", as `hark home admin add` would.
 */
async function homeWithInitialAdminAndBoss(): Promise<{ dir: string; file: string; initial: string; start: () => ReturnType<typeof startHome> }> {
  const dir = mkdtempSync(join(tmpdir(), 'hark-home-initial-'));
  const dataDir = join(dir, 'data');
  const start = (): ReturnType<typeof startHome> => startHome({ dataDir, port: 0, listen: '127.0.0.1', announce: () => {} });
  await (await start()).close();
  const store = new HomeStore(join(dataDir, 'home.db'));
  store.addOperator('boss', 'admin', await hashPassword('the second admin'), false);
  store.addOperator('clerk', 'readonly', await hashPassword('the clerk password'), false);
  store.close();
  const file = join(dataDir, 'initial-admin-password');
  return { dir, file, initial: readFileSync(file, 'utf8').trim(), start };
}

test('operators: an admin resetting the initial admin\'s password deletes initial-admin-password; resetting another\'s does not', async () => {
  const h = await homeWithInitialAdminAndBoss();
  const home = await h.start();
  try {
    const a = agentFor(home.caPem);
    const boss = (await call(home, a, 'POST', '/v1/login', { user: 'boss', password: 'the second admin' })).body as { token: string };
    assert.equal((await call(home, a, 'PATCH', '/v1/operators/clerk', { password: 'a new clerk password' }, boss.token)).status, 204);
    assert.equal(readFileSync(h.file, 'utf8').trim(), h.initial, 'another operator\'s reset leaves the file');
    assert.equal((await call(home, a, 'PATCH', '/v1/operators/admin', { password: 'reset by the boss' }, boss.token)).status, 204);
    assert.equal(existsSync(h.file), false, 'the file must not keep a password that no longer works');
    assert.equal((await call(home, a, 'POST', '/v1/login', { user: 'admin', password: h.initial })).status, 401);
    assert.match(readLog(home), /config\.operator_changed user=admin by=boss peer=\S+ initial_password_file=deleted/);
  } finally {
    await home.close();
    rmSync(h.dir, { recursive: true, force: true });
  }
});

test('operators: deleting the initial admin deletes initial-admin-password', async () => {
  const h = await homeWithInitialAdminAndBoss();
  const home = await h.start();
  try {
    const a = agentFor(home.caPem);
    const boss = (await call(home, a, 'POST', '/v1/login', { user: 'boss', password: 'the second admin' })).body as { token: string };
    assert.equal((await call(home, a, 'DELETE', '/v1/operators/clerk', undefined, boss.token)).status, 204);
    assert.equal(existsSync(h.file), true, 'deleting another operator leaves the file');
    assert.equal((await call(home, a, 'DELETE', '/v1/operators/admin', undefined, boss.token)).status, 204);
    assert.equal(existsSync(h.file), false, 'the file must not keep the password of an account that is gone');
    assert.match(readLog(home), /config\.operator_deleted user=admin by=boss peer=\S+ initial_password_file=deleted/);
  } finally {
    await home.close();
    rmSync(h.dir, { recursive: true, force: true });
  }
});

// Last in this file: it leaves 127.0.0.1 locked out of site-key calls.
test('site keys: repeated wrong keys from one address are rate limited with 429', async () => {
  const a = agentFor(t.home.caPem);
  const id = makeSensorIdentity();
  let last = 0;
  for (let i = 0; i < 25 && last !== 429; i++) {
    last = (await call(t.home, a, 'POST', '/v1/enrol/request', { uuid: id.uuid, hostname: 'h', csr: id.csrPem, site_key: `guess-${i}-xyz` })).status;
    if (last !== 429) assert.equal(last, 403);
  }
  assert.equal(last, 429);
  const r = await call(t.home, a, 'POST', '/v1/enrol/request', { uuid: id.uuid, hostname: 'h', csr: id.csrPem, site_key: 'second-site-key' });
  assert.equal(r.status, 429, 'even the right key waits out the window');
  assert.ok(Number(r.headers['retry-after']) > 0);
});

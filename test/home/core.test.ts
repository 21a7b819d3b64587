/**
 * HomeCore.checkCredentials over HTTP: wrong passwords sent all at once are counted before any
 * scrypt check ends, so only the allowance is checked and the rest get 429, on /v1/login, the
 * portal sign-in and enrolment by credentials; per user and per address. Each case comes from its
 * own loopback source address so the per-address windows do not mix.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { LOGIN_FAILURES_PER_PEER, LOGIN_FAILURES_PER_USER } from '../../home/auth.js';
import { agentFor, call, closeAgents, makeSensorIdentity, readLog, startTestHome, type TestHome } from './helpers.js';

let t: TestHome;
const agents: Agent[] = [];
const PASSWORD = 'operator password 1';

before(async () => {
  t = await startTestHome();
  for (const [user, role] of [['api-user', 'readonly'], ['enroller', 'admin'], ['portal-user', 'readonly']]) {
    const r = await call(t.home, agentFor(t.home.caPem), 'POST', '/v1/operators', { user, role, password: PASSWORD, must_change_password: false }, t.adminToken);
    assert.equal(r.status, 201);
  }
});
after(async () => {
  await Promise.all(agents.map((a) => a.close()));
  await closeAgents();
  await t.close();
});

/** A client whose connections come from `source` (any 127/8 address reaches 127.0.0.1). */
function from(source: string): Agent {
  const a = new Agent({ localAddress: source, connect: { ca: t.home.caPem }, connections: 64 });
  agents.push(a);
  return a;
}

function tally(codes: number[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const c of codes) out[c] = (out[c] ?? 0) + 1;
  return out;
}

test('checkCredentials: 30 wrong /v1/login passwords for one user at once are 5 x 401 and 25 x 429', async () => {
  const a = from('127.0.0.2');
  const codes = await Promise.all(Array.from({ length: 30 }, (_, i) => call(t.home, a, 'POST', '/v1/login', { user: 'api-user', password: `wrong guess ${i}` }).then((r) => r.status)));
  assert.deepEqual(tally(codes), { 401: LOGIN_FAILURES_PER_USER, 429: 30 - LOGIN_FAILURES_PER_USER });
  const right = await call(t.home, from('127.0.0.3'), 'POST', '/v1/login', { user: 'api-user', password: PASSWORD });
  assert.equal(right.status, 429, 'the user is limited from any address, even with the right password');
  assert.ok(Number(right.headers['retry-after']) > 60);
  assert.equal((readLog(t.home).match(/security\.login_failed peer=127\.0\.0\.2:\d+ call=login user=api-user/g) ?? []).length, LOGIN_FAILURES_PER_USER);
});

test('checkCredentials: 30 wrong passwords for different users from one address at once are 20 x 401 and 10 x 429', async () => {
  const a = from('127.0.0.4');
  const codes = await Promise.all(Array.from({ length: 30 }, (_, i) => call(t.home, a, 'POST', '/v1/login', { user: `nobody-${i}`, password: 'wrong guess' }).then((r) => r.status)));
  assert.deepEqual(tally(codes), { 401: LOGIN_FAILURES_PER_PEER, 429: 30 - LOGIN_FAILURES_PER_PEER });
  assert.equal((await call(t.home, a, 'POST', '/v1/login', { user: 'admin', password: t.adminPassword })).status, 429, 'the address is limited');
  assert.equal((await call(t.home, from('127.0.0.5'), 'POST', '/v1/login', { user: 'admin', password: t.adminPassword })).status, 200, 'another address is not');
});

test('checkCredentials: concurrent right passwords within the allowance all succeed', async () => {
  const a = from('127.0.0.6');
  const codes = await Promise.all(Array.from({ length: LOGIN_FAILURES_PER_USER }, () => call(t.home, a, 'POST', '/v1/login', { user: 'admin', password: t.adminPassword }).then((r) => r.status)));
  assert.deepEqual(tally(codes), { 200: LOGIN_FAILURES_PER_USER });
});

test('checkCredentials: 12 wrong enrolment-by-credentials passwords at once are 5 x 401 and 7 x 429', async () => {
  const a = from('127.0.0.7');
  const id = makeSensorIdentity();
  const codes = await Promise.all(Array.from({ length: 12 }, (_, i) => call(t.home, a, 'POST', '/v1/enrol/credentials', {
    user: 'enroller', password: `wrong guess ${i}`, sensor_id: 1, uuid: id.uuid, hostname: 'h', csr: id.csrPem,
  }).then((r) => r.status)));
  assert.deepEqual(tally(codes), { 401: LOGIN_FAILURES_PER_USER, 429: 12 - LOGIN_FAILURES_PER_USER });
});

test('checkCredentials: 12 wrong portal sign-ins at once are 5 x 401 and 7 x 429', async () => {
  const a = from('127.0.0.8');
  const page = await request(`${t.home.url}/login`, { dispatcher: a });
  const nonce = /name="_login" value="([^"]+)"/.exec(await page.body.text())?.[1] ?? '';
  assert.notEqual(nonce, '');
  const signIn = async (i: number): Promise<number> => {
    const res = await request(`${t.home.url}/login`, {
      dispatcher: a, method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `__Host-hark-login=${nonce}` },
      body: new URLSearchParams({ _login: nonce, user: 'portal-user', password: `wrong guess ${i}` }).toString(),
    });
    await res.body.text();
    return res.statusCode;
  };
  const codes = await Promise.all(Array.from({ length: 12 }, (_, i) => signIn(i)));
  assert.deepEqual(tally(codes), { 401: LOGIN_FAILURES_PER_USER, 429: 12 - LOGIN_FAILURES_PER_USER });
});

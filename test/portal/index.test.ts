/**
 * The portal's own password change (home/portal/index.ts POST /password) goes through the same
 * HomeCore.changeOwnPassword as the operator API: the first admin changing the initial password in
 * the portal deletes DATA/initial-admin-password and logs config.password_changed; a wrong current
 * password is refused, logged and leaves the file. Plain HTTPS forms, no browser.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { startHome, type HomeServer } from '../../home/main.js';
import { agentFor, call, closeAgents, readLog } from '../home/helpers.js';

let dir: string;
let home: HomeServer;
let agent: Agent;
let initial: string;
let file: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hark-portal-pw-'));
  home = await startHome({ dataDir: join(dir, 'data'), port: 0, listen: '127.0.0.1', announce: () => {} });
  file = join(home.dataDir, 'initial-admin-password');
  initial = readFileSync(file, 'utf8').trim();
  agent = new Agent({ connect: { ca: home.caPem } });
});
after(async () => {
  await agent.close();
  await closeAgents();
  await home.close();
  rmSync(dir, { recursive: true, force: true });
});

async function send(method: string, path: string, form?: Record<string, string>, cookie?: string): Promise<{ status: number; location?: string; setCookie: string; body: string }> {
  const headers: Record<string, string> = {};
  if (form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
  if (cookie !== undefined) headers.cookie = cookie;
  const res = await request(`${home.url}${path}`, { dispatcher: agent, method: method as 'GET', headers, body: form === undefined ? undefined : new URLSearchParams(form).toString() });
  const setCookie = ([] as string[]).concat(res.headers['set-cookie'] ?? []).join(';');
  return { status: res.statusCode, location: res.headers.location as string | undefined, setCookie, body: await res.body.text() };
}

/** Signs in through the form; returns the session cookie and the password page's CSRF token. */
async function signIn(password: string): Promise<{ cookie: string; csrf: string }> {
  const nonce = /name="_login" value="([^"]+)"/.exec((await send('GET', '/login')).body)?.[1] ?? '';
  const r = await send('POST', '/login', { _login: nonce, user: 'admin', password }, `__Host-hark-login=${nonce}`);
  assert.equal(r.status, 303, r.body.slice(0, 300));
  const cookie = `__Host-hark-session=${/__Host-hark-session=([^;]+)/.exec(r.setCookie)?.[1] ?? ''}`;
  const csrf = /name="_csrf" value="([^"]+)"/.exec((await send('GET', '/password', undefined, cookie)).body)?.[1] ?? '';
  assert.notEqual(csrf, '');
  return { cookie, csrf };
}

test('portal POST /password with a wrong current password: 403, logged, the initial password file stays', async () => {
  const { cookie, csrf } = await signIn(initial);
  const r = await send('POST', '/password', { _csrf: csrf, current_password: 'not the password', new_password: 'Portal-New-Pass-42' }, cookie);
  assert.equal(r.status, 403);
  assert.match(r.body, /The current password is wrong/);
  assert.ok(existsSync(file));
  assert.match(readLog(home), /security\.password_change_failed peer=127\.0\.0\.1:\d+ call=portal\.password user=admin/);
  assert.doesNotMatch(readLog(home), /config\.password_changed/);
});

test('portal POST /password changing the first admin password deletes initial-admin-password and logs config.password_changed', async () => {
  const { cookie, csrf } = await signIn(initial);
  const r = await send('POST', '/password', { _csrf: csrf, current_password: initial, new_password: 'Portal-New-Pass-42' }, cookie);
  assert.equal(r.status, 303);
  assert.equal(r.location, '/captures');
  assert.equal(existsSync(file), false, 'the file with the old password is gone');
  assert.match(readLog(home), /config\.password_changed user=admin peer=127\.0\.0\.1:\d+ via=portal initial_password_file=deleted/);
  const a = agentFor(home.caPem);
  assert.equal((await call(home, a, 'POST', '/v1/login', { user: 'admin', password: initial })).status, 401, 'the old password is gone');
  const login = await call(home, a, 'POST', '/v1/login', { user: 'admin', password: 'Portal-New-Pass-42' });
  assert.equal(login.status, 200);
  assert.equal((login.body as { must_change_password: boolean }).must_change_password, false);
  const audit = ((await call(home, a, 'GET', '/v1/audit?limit=50', undefined, (login.body as { token: string }).token)).body as { audit: Array<{ who: string; action: string }> }).audit;
  assert.ok(audit.some((row) => row.who === 'admin' && row.action === 'password.change'));
});

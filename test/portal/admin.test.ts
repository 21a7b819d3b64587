/**
 * The portal's sensor page (home/portal/admin.ts) edits the inspection settings like the other
 * definition fields: shown with their bounds and defaults, saved through sensorFields (an empty box
 * is the sensor's default), a bad value refused with the field's name. Plain HTTPS forms, no browser;
 * the session is the admin's API session (the portal and the API share the session table).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { addSensor, agentFor, call, closeAgents, startTestHome, type TestHome } from '../home/helpers.js';

let t: TestHome;
let sensorId: number;

before(async () => {
  t = await startTestHome();
  sensorId = await addSensor(t, 'Portal sensor');
});
after(async () => {
  await closeAgents();
  await t.close();
});

async function send(method: 'GET' | 'POST', path: string, form?: Record<string, string>): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = { cookie: `__Host-hark-session=${t.adminToken}` };
  if (form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
  const res = await request(`${t.home.url}${path}`, { dispatcher: agentFor(t.home.caPem), method, headers, body: form === undefined ? undefined : new URLSearchParams(form).toString() });
  return { status: res.statusCode, body: await res.body.text() };
}

/** The sensor form as the page shows it, with `over` typed in. */
async function sensorForm(over: Record<string, string>): Promise<Record<string, string>> {
  const page = (await send('GET', `/sensors/${sensorId}`)).body;
  const value = (name: string): string => new RegExp(`name="${name}"[^>]*value="([^"]*)"`).exec(page)?.[1] ?? '';
  return {
    _csrf: value('_csrf'), name: value('name'), site: value('site'), interfaces: value('interfaces'), monitored: value('monitored'), ignored: value('ignored'),
    bpf: value('bpf'), dictionary: 'starter', alert_email: value('alert_email'),
    dedup_window_seconds: value('dedup_window_seconds'), body_limit_bytes: value('body_limit_bytes'), ...over,
  };
}

const inspection = async (): Promise<unknown> => ((await call(t.home, agentFor(t.home.caPem), 'GET', `/v1/sensors/${sensorId}`, undefined, t.adminToken)).body as { inspection: unknown }).inspection;

test('portal sensor page shows the inspection settings with their bounds and defaults', async () => {
  const page = (await send('GET', `/sensors/${sensorId}`)).body;
  assert.match(page, /<label>Merge window \(seconds\) <input name="dedup_window_seconds" type="number" min="0" max="86400" step="1" value="" placeholder="60 \(default\)">/);
  assert.match(page, /<label>Body limit \(bytes\) <input name="body_limit_bytes" type="number" min="1" max="67108864" step="1" value="" placeholder="8388608 \(default\)">/);
  assert.match(page, /0: every repeat is a capture/);
  assert.match(page, /Both apply from the sensor's next start \(restart\)/);
});

test('portal sensor page saves the inspection settings; empty boxes are the sensor\'s defaults', async () => {
  const saved = await send('POST', `/sensors/${sensorId}`, await sensorForm({ dedup_window_seconds: '0', body_limit_bytes: '16' }));
  assert.equal(saved.status, 303, saved.body.slice(0, 300));
  assert.deepEqual(await inspection(), { dedup_window_seconds: 0, body_limit_bytes: 16 });
  assert.match((await send('GET', `/sensors/${sensorId}`)).body, /name="body_limit_bytes" [^>]*value="16"/, 'the page shows what is set');
  assert.equal((await send('POST', `/sensors/${sensorId}`, await sensorForm({ dedup_window_seconds: '', body_limit_bytes: '' }))).status, 303);
  assert.deepEqual(await inspection(), {});
});

test('portal sensor page refuses a bad inspection setting with its field\'s name and keeps the stored one', async () => {
  assert.equal((await send('POST', `/sensors/${sensorId}`, await sensorForm({ dedup_window_seconds: '30' }))).status, 303);
  for (const [over, message] of [
    [{ body_limit_bytes: '0' }, '&quot;inspection.body_limit_bytes&quot; must be a whole number of bytes from 1 to 67108864'],
    [{ body_limit_bytes: '1e6' }, '&quot;inspection.body_limit_bytes&quot; must be a whole number of bytes from 1 to 67108864'],
    [{ dedup_window_seconds: '86401' }, '&quot;inspection.dedup_window_seconds&quot; must be a whole number of seconds from 0 to 86400'],
    [{ dedup_window_seconds: 'soon' }, '&quot;inspection.dedup_window_seconds&quot; must be a whole number of seconds from 0 to 86400'],
  ] as const) {
    const r = await send('POST', `/sensors/${sensorId}`, await sensorForm(over));
    assert.equal(r.status, 400, JSON.stringify(over));
    assert.ok(r.body.includes(`<p class="error" id="error">${message}</p>`), r.body.slice(0, 2000));
  }
  assert.deepEqual(await inspection(), { dedup_window_seconds: 30 });
});

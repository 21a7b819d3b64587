/**
 * End to end, in Debian's headless Chromium driven by playwright-core, against a real home fed by a
 * real sensor replaying school-search.pcap: sign in, filter, open a capture, see the highlighted
 * phrase and the evidence image, close it as a false positive, see the reports; a read-only
 * operator sees no change controls and the server refuses its POSTs. Screenshots go to docs/.
 */

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { closeAgents, readLog } from '../home/helpers.js';
import { OPERATOR_PASSWORD, startWorld, type World } from './helpers.js';

const DOCS = fileURLToPath(new URL('../../../docs/', import.meta.url));
let w: World;
let browser: Browser;

before(async () => {
  w = await startWorld();
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  mkdirSync(DOCS, { recursive: true });
});
after(async () => {
  await browser?.close();
  await closeAgents();
  await w?.close();
});

async function signIn(user: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${w.t.home.url}/captures`);
  assert.match(page.url(), /\/login$/);
  await page.fill('#login-user', user);
  await page.fill('#login-password', OPERATOR_PASSWORD);
  await Promise.all([page.waitForURL(/\/captures$/), page.click('#login-submit')]);
  return { context, page };
}

function pngSize(buf: Buffer): { width: number; height: number } {
  assert.deepEqual([...buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  assert.equal(buf.toString('latin1', 12, 16), 'IHDR');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

test('portal: a lead signs in, filters, opens a capture with its highlighted phrase and evidence image, and closes it as a false positive', async () => {
  const viewed = w.captures.find((c) => c.source === 'viewed' && /secret/i.test(c.phrase));
  assert.ok(viewed !== undefined, 'the sensor captured "our secret" as viewed');
  const { context, page } = await signIn('lead1');

  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === '__Host-hark-session');
  assert.ok(session !== undefined);
  assert.equal(session.httpOnly, true);
  assert.equal(session.secure, true);
  assert.equal(session.sameSite, 'Strict');

  const listed = await page.locator('tr.capture-row').count();
  assert.ok(listed >= 4, `every capture is listed (${listed})`);
  await page.screenshot({ path: join(DOCS, 'portal-captures.png'), fullPage: true });

  // Filter: full-text "secret", viewed only.
  await page.fill('input[name=q]', 'secret');
  await page.selectOption('select[name=source]', 'viewed');
  await Promise.all([page.waitForLoadState('load'), page.click('#apply-filters')]);
  assert.match(page.url(), /\/captures$/, 'the search text stays out of the URL');
  const ids = await page.locator('tr.capture-row').evaluateAll((rows) => rows.map((r) => (r as unknown as { dataset: { id: string } }).dataset.id));
  assert.deepEqual(ids, [viewed.id]);

  await Promise.all([page.waitForURL(/\/captures\/[^/]+$/), page.click(`tr[data-id="${viewed.id}"] td.phrase a`)]);
  assert.equal(await page.locator('#context mark').first().textContent(), viewed.context.match(/\[\[(.+?)\]\]/)?.[1]);
  assert.match(await page.locator('.facts').textContent() ?? '', /jsmith via static/);
  assert.match(await page.locator('#evidence-status').textContent() ?? '', /marked [1-9]\d* time/);
  await page.waitForFunction("document.getElementById('evidence-image').complete");
  const natural = await page.evaluate("document.getElementById('evidence-image').naturalWidth");
  assert.ok(typeof natural === 'number' && natural > 0, `the evidence image decodes in the browser (${natural})`);
  const png = await context.request.get(`${w.t.home.url}/captures/${viewed.id}/evidence.png`);
  assert.equal(png.headers()['content-type'], 'image/png');
  assert.ok(pngSize(await png.body()).width >= 640);
  assert.ok(await page.locator('#next-capture, #prev-capture').count() >= 1, 'neighbours of the same user are linked');
  await page.screenshot({ path: join(DOCS, 'portal-capture.png'), fullPage: true });

  await page.selectOption('#triage-status', 'false_positive');
  await page.fill('#triage-note', 'Library catalogue search, not a disclosure');
  await Promise.all([page.waitForLoadState('load'), page.click('#triage-save')]);
  assert.match(await page.locator('h1 .status').textContent() ?? '', /False positive/);
  const trail = await page.locator('#audit-trail tbody').textContent() ?? '';
  assert.match(trail, /lead1.*viewed/s);
  assert.match(trail, /set false_positive/);
  assert.match(await page.locator('ol.notes').textContent() ?? '', /not a disclosure/);

  // The default list shows open captures: this one has gone.
  await page.goto(`${w.t.home.url}/captures`);
  assert.equal(await page.locator(`tr[data-id="${viewed.id}"]`).count(), 0);

  // The renderer had no network: the tracker the page points at heard nothing.
  assert.equal(w.trackerHits(), 0);
  // No capture content in home.log.
  assert.doesNotMatch(readLog(w.t.home), /secret|ak47|jsmith/i);
  await context.close();
});

test('portal: the 7-day report shows charts and exports CSV and PDF; coverage gives advice', async () => {
  const { context, page } = await signIn('lead1');
  await page.goto(`${w.t.home.url}/reports`);
  assert.ok(await page.locator('#chart-severity rect').count() >= 1, 'severity bars');
  assert.ok(await page.locator('#chart-category rect').count() >= 1, 'category bars');
  assert.match(await page.locator('#top-users').textContent() ?? '', /jsmith/);
  assert.match(await page.locator('#top-sites').textContent() ?? '', /wiki\.school\.test/);
  await page.screenshot({ path: join(DOCS, 'portal-reports.png'), fullPage: true });
  const csv = await context.request.get(`${w.t.home.url}/reports/captures.csv`);
  assert.match(csv.headers()['content-type'], /^text\/csv/);
  const text = await csv.text();
  for (const c of w.captures) assert.ok(text.includes(c.id), `CSV has ${c.id}`);
  const pdf = await context.request.get(`${w.t.home.url}/reports/report.pdf`);
  assert.equal(pdf.status(), 200);
  assert.equal((await pdf.body()).subarray(0, 5).toString('latin1'), '%PDF-');
  await page.goto(`${w.t.home.url}/coverage`);
  assert.match(await page.locator('#coverage').textContent() ?? '', /deploy TLS keys/);
  await page.screenshot({ path: join(DOCS, 'portal-coverage.png'), fullPage: true });
  await context.close();
});

test('portal: pages carry a CSP without inline script, and a POST without the CSRF token or from another origin is refused', async () => {
  const { context, page } = await signIn('lead1');
  const res = await page.goto(`${w.t.home.url}/captures`);
  const csp = res?.headers()['content-security-policy'] ?? '';
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.match(csp, /frame-ancestors 'none'/);
  const target = w.captures.find((c) => c.source === 'typed')!;
  const noToken = await context.request.post(`${w.t.home.url}/captures/${target.id}/triage`, { form: { status: 'closed', note: '' } });
  assert.equal(noToken.status(), 403);
  assert.match(await noToken.text(), /expired or did not come from this portal/);
  const csrf = await page.locator('form.who input[name=_csrf]').getAttribute('value');
  const foreign = await context.request.post(`${w.t.home.url}/captures/${target.id}/triage`, { form: { _csrf: csrf ?? '', status: 'closed', note: '' }, headers: { origin: 'https://evil.example' } });
  assert.equal(foreign.status(), 403);
  const ok = await context.request.post(`${w.t.home.url}/captures/${target.id}/triage`, { form: { _csrf: csrf ?? '', status: 'escalated', note: '' }, maxRedirects: 0 });
  assert.equal(ok.status(), 303, 'the same request with the token is accepted');
  await context.close();
});

test('portal: a read-only operator sees no change controls and the server refuses its triage with 403', async () => {
  const { context, page } = await signIn('reader');
  const target = w.captures.find((c) => c.source === 'viewed' && /ak47/i.test(c.phrase))!;
  await page.goto(`${w.t.home.url}/captures/${target.id}`);
  assert.equal(await page.locator('#triage-form').count(), 0);
  assert.equal(await page.locator('form[method=post]:not(.who)').count(), 0, 'no change forms at all');
  const csrf = await page.locator('form.who input[name=_csrf]').getAttribute('value');
  const r = await context.request.post(`${w.t.home.url}/captures/${target.id}/triage`, { form: { _csrf: csrf ?? '', status: 'closed', note: 'x' } });
  assert.equal(r.status(), 403);
  await page.reload();
  assert.match(await page.locator('h1 .status').textContent() ?? '', /Open/);
  await context.close();
});

test('portal: sensors, dictionary and allow-list pages; the allow list refuses a public suffix; roles gate sensor actions', async () => {
  const { context, page } = await signIn('admin2');
  await page.goto(`${w.t.home.url}/sensors`);
  assert.match(await page.locator('#sensors').textContent() ?? '', /Library[\s\S]*online[\s\S]*0\.1\.0/);
  await page.screenshot({ path: join(DOCS, 'portal-sensors.png'), fullPage: true });
  await page.goto(`${w.t.home.url}/dictionaries/starter`);
  assert.match(await page.locator('#fire-most').textContent() ?? '', /our secret/i);
  await page.screenshot({ path: join(DOCS, 'portal-dictionary.png') });
  await page.goto(`${w.t.home.url}/allow-list?sensor=${w.sensorId}`);
  await page.fill('#allow-form textarea', 'bbc.co.uk\nco.uk\n');
  await Promise.all([page.waitForLoadState('load'), page.click('#allow-form button')]);
  assert.match(await page.locator('#allow-problems').textContent() ?? '', /Line 2: .*co\.uk/);
  await page.screenshot({ path: join(DOCS, 'portal-allow-list.png') });
  await page.fill('#allow-form textarea', 'bbc.co.uk\n');
  await Promise.all([page.waitForLoadState('load'), page.click('#allow-form button')]);
  assert.equal(await page.locator('#allow-problems').count(), 0);
  assert.equal(await page.locator('#allow-form textarea').inputValue(), 'bbc.co.uk\n');
  await context.close();

  const reader = await signIn('reader');
  await reader.page.goto(`${w.t.home.url}/sensors`);
  assert.equal(await reader.page.locator('#sensors form').count(), 0, 'no action buttons for read-only');
  const csrf = await reader.page.locator('form.who input[name=_csrf]').getAttribute('value');
  const refused = await reader.context.request.post(`${w.t.home.url}/sensors/${w.sensorId}/actions`, { form: { _csrf: csrf ?? '', kind: 'reload' } });
  assert.equal(refused.status(), 403);
  await reader.context.close();

  const lead = await signIn('lead1');
  await lead.page.goto(`${w.t.home.url}/sensors`);
  const leadCsrf = await lead.page.locator('form.who input[name=_csrf]').getAttribute('value');
  const restart = await lead.context.request.post(`${w.t.home.url}/sensors/${w.sensorId}/actions`, { form: { _csrf: leadCsrf ?? '', kind: 'restart' } });
  assert.equal(restart.status(), 403, 'a lead may not restart');
  const reload = await lead.context.request.post(`${w.t.home.url}/sensors/${w.sensorId}/actions`, { form: { _csrf: leadCsrf ?? '', kind: 'reload' }, maxRedirects: 0 });
  assert.equal(reload.status(), 303);
  const hb = await w.link.request('POST', '/v1/sensor/heartbeat', { hark_version: '0.1.0', started_at: '2026-11-21T08:00:00Z', config_version: 1, counters: {} });
  assert.deepEqual((hb.body as { actions: Array<{ kind: string }> }).actions.map((a) => a.kind), ['reload']);
  await lead.context.close();
});

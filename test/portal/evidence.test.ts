import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { evidenceDocument, evidenceItem, evidenceText, MAX_EVIDENCE_BODY_BYTES } from '../../home/evidence.js';
import { addSensor, agentFor, call, closeAgents, enrolByCredentials, startTestHome, type TestHome } from '../home/helpers.js';

let t: TestHome;
before(async () => { t = await startTestHome({ chromium: null }); });
after(async () => { await closeAgents(); await t.close(); });

test('evidenceItem refuses malformed and oversized items', () => {
  const ok = { capture_id: 'c1', content_type: 'text/html', body_base64: Buffer.from('<p>x</p>').toString('base64'), truncated: false };
  assert.equal(evidenceItem(ok)?.body.toString(), '<p>x</p>');
  assert.equal(evidenceItem({ ...ok, capture_id: 'bad id' }), undefined);
  assert.equal(evidenceItem({ ...ok, charset: 'x"y' }), undefined);
  assert.equal(evidenceItem({ ...ok, body_base64: Buffer.alloc(MAX_EVIDENCE_BODY_BYTES + 1).toString('base64') }), undefined);
  assert.equal(evidenceItem([]), undefined);
});

test('evidenceText decodes the named charset and evidenceDocument puts a CSP meta in the head or escapes non-HTML', () => {
  assert.equal(evidenceText(Buffer.from([0x63, 0x61, 0x66, 0xe9]), 'text/html; charset=iso-8859-1', null), 'café');
  const doc = evidenceDocument('<html><head><title>t</title></head><body>x</body></html>', 'text/html');
  assert.match(doc, /^<meta http-equiv="Content-Security-Policy" content="default-src 'none'[^>]*><html><head><title>/);
  // A doctype stays first (standards mode); the CSP follows it at once.
  assert.match(evidenceDocument('\uFEFF<!DOCTYPE html>\n<html><head></head></html>', 'text/html'), /^\uFEFF<!DOCTYPE html><meta http-equiv="Content-Security-Policy"/);
  assert.match(evidenceDocument('<b>a & b</b>', 'text/plain'), /<pre[^>]*>&lt;b&gt;a &amp; b&lt;\/b&gt;<\/pre>/);
});

test('evidenceDocument puts the CSP before any markup of the page: a "<head" in a comment, a <header> or a <title> cannot move it after loads', () => {
  const csp = '<meta http-equiv="Content-Security-Policy"';
  const pages = [
    '<!-- <head> --><img src="http://tracker.example/a.png"><p>secret</p>',
    '<header class="top"><img src="http://tracker.example/b.png"></header><p>secret</p>',
    '<html><title>x <head> y</title><link rel="stylesheet" href="http://tracker.example/c.css"></html>',
    '<!DOCTYPE html><textarea><head></textarea><iframe src="http://tracker.example/d.html"></iframe>',
  ];
  for (const p of pages) {
    const doc = evidenceDocument(p, 'text/html; charset=utf-8');
    const meta = doc.indexOf(csp);
    assert.ok(meta >= 0, p);
    // Before the meta there is at most a doctype: no element, comment or text of the page.
    assert.match(doc.slice(0, meta), /^(<!DOCTYPE html>)?$/i, `CSP not first in: ${doc.slice(0, 120)}`);
    assert.equal(doc.slice(0, meta) + doc.slice(meta).replace(/^<meta[^>]*>/, ''), p, 'the page itself is unchanged');
  }
});

test('POST /v1/sensor/evidence without Chromium: stored once (idempotent), the portal says the image is unavailable', async () => {
  const sensorId = await addSensor(t, 'No chromium');
  const e = await enrolByCredentials(t, sensorId);
  const agent = agentFor(t.home.caPem, { cert: e.cert, key: e.keyPem });
  const cap = { id: 'ev-cap-1', ts_us: 1_795_000_000_000_000, severity: 4, category: 'grooming', phrase: 'our secret', context: '[[our secret]]', device: { ip: '10.0.0.9' } };
  assert.equal((await call(t.home, agent, 'POST', '/v1/sensor/captures', { captures: [cap] })).status, 200);
  const item = { capture_id: 'ev-cap-1', content_type: 'text/html', body_base64: Buffer.from('<p>our secret</p>').toString('base64'), truncated: false };
  assert.deepEqual((await call(t.home, agent, 'POST', '/v1/sensor/evidence', { evidence: [item, { capture_id: 'x' }] })).body, { accepted: 1, duplicates: 0, rejected: 1 });
  assert.deepEqual((await call(t.home, agent, 'POST', '/v1/sensor/evidence', { evidence: [item] })).body, { accepted: 0, duplicates: 1, rejected: 0 });
  assert.equal((await call(t.home, agentFor(t.home.caPem), 'POST', '/v1/sensor/evidence', { evidence: [item] })).status, 401, 'mutual TLS required');
  // The portal, signed in through its own form.
  const anon = agentFor(t.home.caPem);
  const { request } = await import('undici');
  const loginPage = await request(`${t.home.url}/login`, { dispatcher: anon });
  const nonceCookie = String(loginPage.headers['set-cookie']).split(';')[0];
  const nonce = /name="_login" value="([^"]+)"/.exec(await loginPage.body.text())?.[1] ?? '';
  const login = await request(`${t.home.url}/login`, {
    dispatcher: anon, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: nonceCookie },
    body: new URLSearchParams({ _login: nonce, user: 'admin', password: t.adminPassword }).toString(),
  });
  await login.body.text();
  assert.equal(login.statusCode, 303);
  const session = String(login.headers['set-cookie']).split(';')[0];
  const detail = await request(`${t.home.url}/captures/ev-cap-1`, { dispatcher: anon, headers: { cookie: session } });
  const page = await detail.body.text();
  assert.equal(detail.statusCode, 200);
  assert.match(page, /Evidence image unavailable: Chromium is not installed/);
  assert.match(page, /<mark>our secret<\/mark>/);
  const pdf = await request(`${t.home.url}/reports/report.pdf`, { dispatcher: anon, headers: { cookie: session } });
  assert.equal(pdf.statusCode, 503);
  assert.match(await pdf.body.text(), /Chromium is not installed/);
});

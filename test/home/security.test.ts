/**
 * Security regressions found in review (home): which TLS 1.2 suites home negotiates; what an unauthenticated peer on the school network
 * can make home hold in memory. A portal form (up to 8 MiB: a dictionary upload) must not be read
 * before the request's session is known, and the login call's body is bounded to what a user name
 * and password need. Plain TLS sockets to 127.0.0.1 so a body can be announced and never sent.
 * And what one enrolled sensor can do to another's captures: attach evidence (a page "as the
 * user received it") to a capture another sensor sent.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { after, before, test } from 'node:test';
import { FORM_BODY_LIMIT_BYTES } from '../../home/portal/web.js';
import { LOGIN_BODY_LIMIT_BYTES } from '../../home/operator-api.js';
import { request } from 'undici';
import { addSensor, agentFor, call, closeAgents, enrolByCredentials, startTestHome, type TestHome } from './helpers.js';

let t: TestHome;
before(async () => { t = await startTestHome({ chromium: null }); });
after(async () => { await closeAgents(); await t.close(); });

/**
 * Sends the request head and `sent` bytes of a body announced as `declared` bytes, then waits (at
 * most `waitMs`) for the status line; undefined when home is still waiting for the body.
 */
function partialPost(path: string, declared: number, sent: string, waitMs: number, contentType = 'application/x-www-form-urlencoded'): Promise<number | undefined> {
  const url = new URL(t.home.url);
  return new Promise((resolve, reject) => {
    const sock = connect({ host: url.hostname, port: Number(url.port), ca: t.home.caPem, servername: 'localhost' }, () => {
      sock.write(`POST ${path} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: ${contentType}\r\nContent-Length: ${declared}\r\n\r\n${sent}`);
    });
    let got = '';
    const timer = setTimeout(() => { sock.destroy(); resolve(undefined); }, waitMs);
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      if (m !== null) { clearTimeout(timer); sock.destroy(); resolve(Number(m[1])); }
    });
    sock.on('error', (err) => { clearTimeout(timer); reject(err); });
  });
}

test('portal POSTs without a session are refused (401) before their body is read: no unauthenticated megabyte buffers', async () => {
  for (const path of ['/captures', '/dictionaries', '/allow-list', '/sensors/1', '/captures/x/triage', '/logout']) {
    const status = await partialPost(path, FORM_BODY_LIMIT_BYTES, '_csrf=x&q=', 3000);
    assert.equal(status, 401, `${path}: home waited for ${FORM_BODY_LIMIT_BYTES} bytes from a peer with no session`);
  }
});

test('POST /v1/login bodies are limited to LOGIN_BODY_LIMIT_BYTES (413), announced or sent', async () => {
  assert.equal(await partialPost('/v1/login', LOGIN_BODY_LIMIT_BYTES + 1, '{"user":"', 3000, 'application/json'), 413);
  const big = { user: 'admin', password: 'x', pad: 'y'.repeat(LOGIN_BODY_LIMIT_BYTES) };
  assert.equal((await call(t.home, agentFor(t.home.caPem), 'POST', '/v1/login', big)).status, 413);
  // An ordinary login still works.
  assert.equal((await call(t.home, agentFor(t.home.caPem), 'POST', '/v1/login', { user: 'admin', password: t.adminPassword })).status, 200);
});

/** The portal's evidence status for capture `id`, read as the admin (the API token is a session). */
async function evidenceStatus(id: string): Promise<string> {
  const res = await request(`${t.home.url}/captures/${encodeURIComponent(id)}`, { dispatcher: agentFor(t.home.caPem), headers: { cookie: `__Host-hark-session=${t.adminToken}` } });
  const html = await res.body.text();
  assert.equal(res.statusCode, 200, html.slice(0, 200));
  return /id="evidence-status">([^<]*)/.exec(html)?.[1] ?? '';
}

test('evidence from one sensor is never shown for a capture another sensor sent (before or after that capture arrived)', async () => {
  const a = await enrolByCredentials(t, await addSensor(t, 'Sensor A'));
  const b = await enrolByCredentials(t, await addSensor(t, 'Sensor B'));
  const asA = agentFor(t.home.caPem, { cert: a.cert, key: a.keyPem });
  const asB = agentFor(t.home.caPem, { cert: b.cert, key: b.keyPem });
  const capture = (id: string) => ({ id, ts_us: 1_795_000_000_000_000, severity: 4, category: 'grooming', phrase: 'our secret', context: '[[our secret]]', device: { ip: '10.0.0.9', user: 'pupil1' } });
  const forged = (id: string) => ({ capture_id: id, content_type: 'text/html', body_base64: Buffer.from('<p>forged page: our secret</p>').toString('base64'), truncated: false });

  // After: A's capture is stored, then B sends evidence for it.
  assert.equal((await call(t.home, asA, 'POST', '/v1/sensor/captures', { captures: [capture('xs-after')] })).status, 200);
  const r = await call(t.home, asB, 'POST', '/v1/sensor/evidence', { evidence: [forged('xs-after')] });
  assert.equal(r.status, 200);
  assert.equal((r.body as { accepted: number }).accepted, 0, 'evidence for another sensor\'s capture is not stored');
  assert.match(await evidenceStatus('xs-after'), /No page was received/);

  // Before: B's evidence arrives first, then A's capture.
  assert.equal((await call(t.home, asB, 'POST', '/v1/sensor/evidence', { evidence: [forged('xs-before')] })).status, 200);
  assert.equal((await call(t.home, asA, 'POST', '/v1/sensor/captures', { captures: [capture('xs-before')] })).status, 200);
  assert.match(await evidenceStatus('xs-before'), /No page was received/, 'B\'s earlier evidence is not paired with A\'s capture');

  // A's own evidence for its own capture is shown as before.
  assert.equal((await call(t.home, asA, 'POST', '/v1/sensor/captures', { captures: [capture('xs-own')] })).status, 200);
  assert.equal(((await call(t.home, asA, 'POST', '/v1/sensor/evidence', { evidence: [forged('xs-own')] })).body as { accepted: number }).accepted, 1);
  assert.match(await evidenceStatus('xs-own'), /Chromium is not installed/);
});

/** The cipher a TLS 1.2 handshake with home settles on when the client offers only `ciphers`; the error code when none is accepted. */
function tls12With(ciphers: string): Promise<string> {
  const url = new URL(t.home.url);
  return new Promise((resolve) => {
    const sock = connect({ host: url.hostname, port: Number(url.port), ca: t.home.caPem, servername: 'localhost', maxVersion: 'TLSv1.2', ciphers }, () => {
      const name = sock.getCipher().name;
      sock.destroy();
      resolve(name);
    });
    sock.on('error', (err: NodeJS.ErrnoException) => resolve(`refused: ${err.code ?? err.message}`));
  });
}

test('home offers TLS 1.2 clients authenticated encryption only: a CBC-only client is refused, a GCM or ChaCha20 one is served', async () => {
  for (const cbc of ['ECDHE-RSA-AES128-SHA256', 'ECDHE-RSA-AES256-SHA384', 'ECDHE-RSA-AES128-SHA', 'AES128-GCM-SHA256']) {
    assert.match(await tls12With(cbc), /^refused: /, `${cbc} must not be negotiated`);
  }
  assert.equal(await tls12With('ECDHE-RSA-AES128-GCM-SHA256'), 'ECDHE-RSA-AES128-GCM-SHA256');
  assert.equal(await tls12With('ECDHE-RSA-CHACHA20-POLY1305'), 'ECDHE-RSA-CHACHA20-POLY1305');
  // a client offering everything (CBC first) still gets an AEAD suite
  assert.match(await tls12With('ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256'), /GCM/);
});

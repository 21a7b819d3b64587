import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ensurePki, issueSensorCertificate, verifyBundle } from '../../home/pki.js';
import {
  addSensor, agentFor, call, closeAgents, enrolByCredentials, makeSensorIdentity, readLog, startTestHome, type TestHome,
} from './helpers.js';

let t: TestHome;

before(async () => { t = await startTestHome(); });
after(async () => { await closeAgents(); await t.close(); });

function capture(id: string, severity = 4, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    event_type: 'capture', id, timestamp: '2026-11-21T10:00:00.000000Z', ts_us: 1_795_000_000_000_000 + Number.parseInt(id.slice(-4), 16),
    flow_id: 1, src_ip: '10.0.0.5', src_port: 50000, dest_ip: '192.0.2.1', dest_port: 80, vlan: [], proto: 'TCP', app_proto: 'http',
    direction: 'to_server', source: 'typed', field: 'search', host: 'search.example', url: '/?q=x', phrase: 'our secret',
    category: 'grooming', severity, count: 1, context: '... our secret ...', device: { ip: '10.0.0.5', user: 'pupil1' }, ...extra,
  };
}

test('enrol by code: request, operator approves with a sensor id, poll returns a certificate openssl verifies', async () => {
  const sensorId = await addSensor(t, 'Code sensor');
  const anon = agentFor(t.home.caPem);
  const id = makeSensorIdentity();
  const req = await call(t.home, anon, 'POST', '/v1/enrol/request', { uuid: id.uuid, hostname: 'hark-7', csr: id.csrPem });
  assert.equal(req.status, 202);
  const { code, poll } = req.body as { code: string; poll: string };
  assert.match(code, /^[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}$/);
  assert.deepEqual((await call(t.home, anon, 'GET', `/v1/enrol/request/${poll}`)).body, { status: 'pending' });
  const listed = await call(t.home, anon, 'GET', '/v1/enrolments?status=pending', undefined, t.adminToken);
  assert.ok((listed.body as { enrolments: Array<{ code: string; hostname: string }> }).enrolments.some((e) => e.code === code && e.hostname === 'hark-7'));
  const approve = await call(t.home, anon, 'POST', `/v1/enrolments/${code}/approve`, { sensor_id: sensorId }, t.adminToken);
  assert.equal(approve.status, 200);
  const done = await call(t.home, anon, 'GET', `/v1/enrol/request/${poll}`);
  const body = done.body as { status: string; sensor_id: number; certificate: string; ca: string };
  assert.equal(body.status, 'approved');
  assert.equal(body.sensor_id, sensorId);
  assert.equal(body.ca, t.home.caPem);
  const file = join(t.dir, 'code-sensor.pem');
  writeFileSync(file, body.certificate);
  writeFileSync(join(t.dir, 'ca-copy.pem'), body.ca);
  assert.match(execFileSync('openssl', ['verify', '-CAfile', join(t.dir, 'ca-copy.pem'), file], { encoding: 'utf8' }), /OK/);
  // The certificate works for the sensor API.
  const agent = agentFor(t.home.caPem, { cert: body.certificate, key: id.keyPem });
  const hb = await call(t.home, agent, 'POST', '/v1/sensor/heartbeat', { hark_version: '0.1.0', config_version: 0 });
  assert.equal(hb.status, 200);
  assert.match(readLog(t.home), new RegExp(`enrol\\.approved sensor=${sensorId} uuid=${id.uuid}`));
  // Approving twice is refused.
  assert.equal((await call(t.home, anon, 'POST', `/v1/enrolments/${code}/approve`, { sensor_id: sensorId }, t.adminToken)).status, 409);
});

test('enrol by code: a rejected request polls as rejected and cannot be approved', async () => {
  const anon = agentFor(t.home.caPem);
  const id = makeSensorIdentity();
  const { code, poll } = (await call(t.home, anon, 'POST', '/v1/enrol/request', { uuid: id.uuid, hostname: 'h', csr: id.csrPem })).body as { code: string; poll: string };
  assert.equal((await call(t.home, anon, 'POST', `/v1/enrolments/${code}/reject`, undefined, t.adminToken)).status, 200);
  assert.deepEqual((await call(t.home, anon, 'GET', `/v1/enrol/request/${poll}`)).body, { status: 'rejected' });
  assert.equal((await call(t.home, anon, 'GET', '/v1/enrol/request/not-a-poll-token')).status, 404);
});

test('enrol request refuses a bad CSR and a bad uuid with 400', async () => {
  const anon = agentFor(t.home.caPem);
  const id = makeSensorIdentity();
  assert.equal((await call(t.home, anon, 'POST', '/v1/enrol/request', { uuid: id.uuid, hostname: 'h', csr: 'nope' })).status, 400);
  assert.equal((await call(t.home, anon, 'POST', '/v1/enrol/request', { uuid: 'x', hostname: 'h', csr: id.csrPem })).status, 400);
});

test('enrol by credentials: lists sensors, enrols one, wrong password is 401 and a lead is 403', async () => {
  const sensorId = await addSensor(t, 'Cred sensor');
  const anon = agentFor(t.home.caPem);
  const list = await call(t.home, anon, 'POST', '/v1/enrol/sensors', { user: 'admin', password: t.adminPassword });
  assert.equal(list.status, 200);
  const row = (list.body as { sensors: Array<{ id: number; name: string; enrolled: boolean }> }).sensors.find((s) => s.id === sensorId);
  assert.deepEqual(row && { name: row.name, enrolled: row.enrolled }, { name: 'Cred sensor', enrolled: false });
  const e = await enrolByCredentials(t, sensorId);
  assert.equal(e.answer.status, 200);
  assert.equal((e.answer.body as { sensor_id: number }).sensor_id, sensorId);
  const again = await call(t.home, anon, 'POST', '/v1/enrol/sensors', { user: 'admin', password: t.adminPassword });
  assert.equal((again.body as { sensors: Array<{ id: number; enrolled: boolean }> }).sensors.find((s) => s.id === sensorId)?.enrolled, true);
  assert.equal((await call(t.home, anon, 'POST', '/v1/enrol/sensors', { user: 'admin', password: 'wrong password!' })).status, 401);
  await call(t.home, anon, 'POST', '/v1/operators', { user: 'lead1', role: 'lead', password: 'lead password 1', must_change_password: false }, t.adminToken);
  const lead = await call(t.home, anon, 'POST', '/v1/enrol/credentials', { user: 'lead1', password: 'lead password 1', sensor_id: sensorId, uuid: e.uuid, hostname: 'h', csr: e.csrPem });
  assert.equal(lead.status, 403);
  assert.equal((lead.body as { error: string }).error, 'E_ROLE');
});

test('mutual TLS refuses no certificate, a foreign CA, an expired and a revoked certificate, each logged with the peer', async () => {
  const sensorId = await addSensor(t, 'TLS sensor');
  const first = await enrolByCredentials(t, sensorId);
  const good = agentFor(t.home.caPem, { cert: first.cert, key: first.keyPem });
  assert.equal((await call(t.home, good, 'GET', '/v1/sensor/config')).status, 200);

  const expect401 = async (agent: ReturnType<typeof agentFor>, reason: RegExp): Promise<void> => {
    const r = await call(t.home, agent, 'POST', '/v1/sensor/heartbeat', { queue: 0 });
    assert.equal(r.status, 401);
    assert.equal((r.body as { error: string }).error, 'E_CERT');
    const lines = readLog(t.home).split('\n').filter((l) => l.includes('security.client_cert'));
    assert.ok(lines.some((l) => reason.test(l) && /peer=127\.0\.0\.1:\d+/.test(l)), `no log line for ${reason}: ${lines.join('\n')}`);
  };
  await expect401(agentFor(t.home.caPem), /reason="no client certificate"/);

  const foreign = ensurePki(join(t.dir, 'foreign'), []).ca;
  const alien = makeSensorIdentity(first.uuid, first.keyPem);
  await expect401(agentFor(t.home.caPem, { cert: issueSensorCertificate(foreign, alien.csrPem, alien.uuid).pem, key: alien.keyPem }), /reason="certificate not issued by this home's CA/);

  const ourCa = { certPem: t.home.caPem, keyPem: readFileSync(join(t.home.dataDir, 'ca.key'), 'utf8'), fingerprint: t.home.caFingerprint };
  const expired = issueSensorCertificate(ourCa, first.csrPem, first.uuid, { notBefore: new Date(Date.now() - 10 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
  await expect401(agentFor(t.home.caPem, { cert: expired.pem, key: first.keyPem }), /reason="expired certificate"/);

  // Re-enrolling the same sensor id revokes the first certificate.
  const second = await enrolByCredentials(t, sensorId);
  assert.equal(second.answer.status, 200);
  await expect401(agentFor(t.home.caPem, { cert: first.cert, key: first.keyPem }), /reason="revoked certificate"/);
  assert.equal((await call(t.home, agentFor(t.home.caPem, { cert: second.cert, key: second.keyPem }), 'GET', '/v1/sensor/config')).status, 200);
});

test('config bundle carries inspection: {} until set, the values once set (a version bump), and a bad value is refused by name', async () => {
  const sensorId = await addSensor(t, 'Inspection sensor', {});
  const e = await enrolByCredentials(t, sensorId);
  const agent = agentFor(t.home.caPem, { cert: e.cert, key: e.keyPem });
  const bundle = async (): Promise<{ version: number; config: { inspection: unknown } }> =>
    JSON.parse(Buffer.from(((await call(t.home, agent, 'GET', '/v1/sensor/config')).body as { bundle: string }).bundle, 'base64').toString('utf8'));
  const before = await bundle();
  assert.deepEqual(before.config.inspection, {});
  const set = await call(t.home, agent, 'PATCH', `/v1/sensors/${sensorId}`, { inspection: { dedup_window_seconds: 0, body_limit_bytes: 16 } }, t.adminToken);
  assert.equal(set.status, 200);
  const after = await bundle();
  assert.deepEqual(after.config.inspection, { dedup_window_seconds: 0, body_limit_bytes: 16 });
  assert.ok(after.version > before.version, `${after.version} > ${before.version}`);
  assert.deepEqual(((await call(t.home, agent, 'GET', `/v1/sensors/${sensorId}`, undefined, t.adminToken)).body as { inspection: unknown }).inspection, { dedup_window_seconds: 0, body_limit_bytes: 16 });
  const bad = await call(t.home, agent, 'PATCH', `/v1/sensors/${sensorId}`, { inspection: { body_limit_bytes: 0 } }, t.adminToken);
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.body, { error: 'E_FIELD', message: '"inspection.body_limit_bytes" must be a whole number of bytes from 1 to 67108864' });
  assert.equal((await bundle()).version, after.version, 'a refused change bumps nothing');
});

test('config bundle verifies with the CA public key, not after a flipped byte, and its version bumps on changes', async () => {
  const sensorId = await addSensor(t, 'Bundle sensor', { allow_list: 'example.org\n', retention: { days: 30, by_category: { violence: 90 } } });
  const e = await enrolByCredentials(t, sensorId);
  const agent = agentFor(t.home.caPem, { cert: e.cert, key: e.keyPem });
  const get = async () => {
    const r = await call(t.home, agent, 'GET', '/v1/sensor/config');
    const b = r.body as { alg: string; bundle: string; signature: string };
    return { alg: b.alg, bytes: Buffer.from(b.bundle, 'base64'), sig: Buffer.from(b.signature, 'base64') };
  };
  const one = await get();
  assert.equal(one.alg, 'RS256');
  assert.equal(verifyBundle(t.home.caPem, one.bytes, one.sig), true);
  const flipped = Buffer.from(one.bytes);
  flipped[10] ^= 0x01;
  assert.equal(verifyBundle(t.home.caPem, flipped, one.sig), false);
  const bundle = JSON.parse(one.bytes.toString('utf8'));
  assert.equal(bundle.format, 1);
  assert.equal(bundle.sensor_id, sensorId);
  assert.equal(bundle.uuid, e.uuid);
  assert.equal(bundle.config.name, 'Bundle sensor');
  assert.deepEqual(bundle.config.interfaces, ['eth1']);
  assert.equal(bundle.config.allow_list, 'example.org\n');
  assert.equal(bundle.config.dictionary.name, 'starter');
  assert.equal(bundle.config.dictionary.format, 'pack');
  assert.ok(bundle.config.dictionary.text.length > 1000);
  assert.deepEqual(bundle.config.retention, { days: 30, by_category: { violence: 90 } });

  const hb = async () => ((await call(t.home, agent, 'POST', '/v1/sensor/heartbeat', { config_version: bundle.version })).body as { config_version: number }).config_version;
  const v0 = await hb();
  assert.equal(v0, bundle.version);
  assert.equal((await call(t.home, agent, 'PATCH', `/v1/sensors/${sensorId}`, { bpf: 'not port 22' }, t.adminToken)).status, 200);
  const v1 = await hb();
  assert.ok(v1 > v0, `sensor change: ${v1} > ${v0}`);
  const csv = 'phrase,category,severity\nour secret,grooming,4\n';
  assert.equal((await call(t.home, agent, 'PUT', '/v1/dictionaries/local', { format: 'csv', text: csv }, t.adminToken)).status, 200);
  assert.equal((await call(t.home, agent, 'PATCH', `/v1/sensors/${sensorId}`, { dictionary: 'local' }, t.adminToken)).status, 200);
  const v2 = await hb();
  assert.ok(v2 > v1);
  assert.equal((await call(t.home, agent, 'PUT', '/v1/dictionaries/local', { format: 'csv', text: `${csv}knife crime,weapons,3\n` }, t.adminToken)).status, 200);
  const v3 = await hb();
  assert.ok(v3 > v2, `dictionary change: ${v3} > ${v2}`);
  const latest = JSON.parse((await get()).bytes.toString('utf8'));
  assert.equal(latest.version, v3);
  assert.equal(latest.config.bpf, 'not port 22');
  assert.deepEqual(latest.config.dictionary, { name: 'local', format: 'csv', text: `${csv}knife crime,weapons,3\n` });
});

test('actions are delivered by heartbeat until acknowledged, then reported done', async () => {
  const sensorId = await addSensor(t, 'Action sensor');
  const e = await enrolByCredentials(t, sensorId);
  const agent = agentFor(t.home.caPem, { cert: e.cert, key: e.keyPem });
  const created = await call(t.home, agent, 'POST', `/v1/sensors/${sensorId}/actions`, { kind: 'reload' }, t.adminToken);
  assert.equal(created.status, 202);
  const actionId = (created.body as { id: number }).id;
  for (let i = 0; i < 2; i++) {
    const hb = await call(t.home, agent, 'POST', '/v1/sensor/heartbeat', { queue: 0 });
    assert.deepEqual((hb.body as { actions: unknown[] }).actions, [{ id: actionId, kind: 'reload' }]);
  }
  assert.equal((await call(t.home, agent, 'POST', `/v1/sensor/actions/${actionId}/done`, { ok: true, message: 'reloaded v3' })).status, 204);
  const hb = await call(t.home, agent, 'POST', '/v1/sensor/heartbeat', { queue: 0 });
  assert.deepEqual((hb.body as { actions: unknown[] }).actions, []);
  const list = await call(t.home, agent, 'GET', `/v1/sensors/${sensorId}/actions`, undefined, t.adminToken);
  const row = (list.body as { actions: Array<{ id: number; status: string; ok: boolean; message: string }> }).actions.find((a) => a.id === actionId);
  assert.deepEqual(row && { status: row.status, ok: row.ok, message: row.message }, { status: 'done', ok: true, message: 'reloaded v3' });
  assert.match(readLog(t.home), new RegExp(`sensor\\.reload_requested sensor=${sensorId} action=${actionId}`));
  assert.match(readLog(t.home), new RegExp(`sensor\\.reloaded sensor=${sensorId} action=${actionId}`));
  // Another sensor cannot acknowledge it.
  const otherId = await addSensor(t, 'Other');
  const other = await enrolByCredentials(t, otherId);
  const a2 = (await call(t.home, agent, 'POST', `/v1/sensors/${sensorId}/actions`, { kind: 'restart' }, t.adminToken)).body as { id: number };
  assert.equal((await call(t.home, agentFor(t.home.caPem, { cert: other.cert, key: other.keyPem }), 'POST', `/v1/sensor/actions/${a2.id}/done`, { ok: true })).status, 404);
});

test('capture ingest is idempotent across repeated batches and refuses more than 1000 per batch', async () => {
  const sensorId = await addSensor(t, 'Ingest sensor');
  const e = await enrolByCredentials(t, sensorId);
  const agent = agentFor(t.home.caPem, { cert: e.cert, key: e.keyPem });
  const batch = Array.from({ length: 50 }, (_, i) => capture(`cap-${sensorId}-${i.toString(16).padStart(4, '0')}`, 1 + (i % 5)));
  const one = await call(t.home, agent, 'POST', '/v1/sensor/captures', { captures: batch });
  assert.deepEqual(one.body, { accepted: 50, updated: 0, duplicates: 0, rejected: 0, rejects: [] });
  const two = await call(t.home, agent, 'POST', '/v1/sensor/captures', { captures: batch });
  assert.deepEqual(two.body, { accepted: 0, updated: 0, duplicates: 50, rejected: 0, rejects: [] });
  // the first capture again, its merge window closed with the phrase seen 4 times: home takes the count
  const grown = { ...(batch[0] as object), count: 4 };
  assert.deepEqual((await call(t.home, agent, 'POST', '/v1/sensor/captures', { captures: [grown] })).body, { accepted: 0, updated: 1, duplicates: 0, rejected: 0, rejects: [] });
  const mixed = [...batch.slice(0, 10), capture(`cap-${sensorId}-ffff`), { id: 'bad' }];
  assert.deepEqual((await call(t.home, agent, 'POST', '/v1/sensor/captures', { captures: mixed })).body, {
    accepted: 1, updated: 0, duplicates: 10, rejected: 1,
    rejects: [{ index: 11, id: 'bad', error: 'E_CAPTURE_TIME', message: 'Capture "bad" has neither a "ts_us" nor a "timestamp" home can read' }],
  });
  const listed = await call(t.home, agent, 'GET', `/v1/captures?sensor=${sensorId}&limit=1000`, undefined, t.adminToken);
  const caps = (listed.body as { captures: Array<{ id: string; sensor_id: number; severity: number }> }).captures;
  assert.equal(caps.length, 51);
  assert.equal(new Set(caps.map((c) => c.id)).size, 51);
  const high = await call(t.home, agent, 'GET', `/v1/captures?sensor=${sensorId}&min_severity=5`, undefined, t.adminToken);
  assert.ok((high.body as { captures: Array<{ severity: number }> }).captures.every((c) => c.severity === 5));
  assert.equal((high.body as { captures: unknown[] }).captures.length, 10);
  const tooMany = Array.from({ length: 1001 }, (_, i) => capture(`big-${i.toString(16).padStart(4, '0')}`));
  const r = await call(t.home, agent, 'POST', '/v1/sensor/captures', { captures: tooMany });
  assert.equal(r.status, 413);
});

test('capture ingest names each capture it refuses, with its place in the batch and why, and stores the rest', async () => {
  const sensorId = await addSensor(t, 'Refusals sensor');
  const e = await enrolByCredentials(t, sensorId);
  const agent = agentFor(t.home.caPem, { cert: e.cert, key: e.keyPem });
  const id = (n: number): string => `ref-${sensorId}-${n.toString(16).padStart(4, '0')}`;
  // An HTTP/2 :path may be 256 KiB: this capture's JSON is over home's 64 KiB.
  const big = capture(id(1), 5, { app_proto: 'http2', url: `/search?q=our+secret&pad=${'x'.repeat(70_000)}` });
  const batch = [
    capture(id(0)), big, capture(id(2)), capture(id(3), 9), 'not a capture', capture(id(5), 4, { phrase: 'p'.repeat(513) }),
    capture(id(6), 4, { category: 'c'.repeat(129) }), { id: 'x'.repeat(129) }, capture(id(8)),
  ];
  const r = await call(t.home, agent, 'POST', '/v1/sensor/captures', { captures: batch });
  assert.equal(r.status, 200);
  const body = r.body as { accepted: number; rejected: number; rejects: Array<{ index: number; id?: string; error: string; message: string }> };
  assert.equal(body.accepted, 3);
  assert.equal(body.rejected, 6);
  assert.deepEqual(body.rejects.map((x) => [x.index, x.id, x.error]), [
    [1, id(1), 'E_CAPTURE_TOO_LARGE'], [3, id(3), 'E_CAPTURE_SEVERITY'], [4, undefined, 'E_CAPTURE_TYPE'],
    [5, id(5), 'E_CAPTURE_PHRASE'], [6, id(6), 'E_CAPTURE_CATEGORY'], [7, 'x'.repeat(128), 'E_CAPTURE_ID'],
  ]);
  assert.match(body.rejects[0].message, new RegExp(`^Capture "${id(1)}" is \\d+ bytes of JSON, more than 65536$`));
  assert.equal(body.rejects[1].message, `Capture "${id(3)}" has severity 9: it must be a whole number from 0 to 5`);
  const listed = await call(t.home, agent, 'GET', `/v1/captures?sensor=${sensorId}&limit=1000`, undefined, t.adminToken);
  assert.deepEqual((listed.body as { captures: Array<{ id: string }> }).captures.map((c) => c.id).sort(), [id(0), id(2), id(8)]);
  assert.match(readLog(t.home), new RegExp(`ingest\\.rejected sensor=${sensorId} rejected=6 first_error=E_CAPTURE_TOO_LARGE first_id=${id(1)}`));
});

test('sensor connect and disconnect are logged from heartbeats and the timeout', async () => {
  const sensorId = await addSensor(t, 'Presence sensor');
  const e = await enrolByCredentials(t, sensorId);
  const agent = agentFor(t.home.caPem, { cert: e.cert, key: e.keyPem });
  await call(t.home, agent, 'POST', '/v1/sensor/heartbeat', { hark_version: '0.1.0', config_source: 'home', queue: 3, counters: { 'capture.packets': 10 } });
  assert.match(readLog(t.home), new RegExp(`sensor\\.connect sensor=${sensorId} name="Presence sensor" peer=127\\.0\\.0\\.1:\\d+`));
  const status = await call(t.home, agent, 'GET', `/v1/sensors/${sensorId}/status`, undefined, t.adminToken);
  const s = status.body as { online: boolean; hark_version: string; queue: number; counters: Record<string, number>; config_source: string };
  assert.deepEqual({ online: s.online, v: s.hark_version, q: s.queue, c: s.counters['capture.packets'], src: s.config_source }, { online: true, v: '0.1.0', q: 3, c: 10, src: 'home' });
  assert.doesNotMatch(readLog(t.home), new RegExp(`sensor\\.disconnect sensor=${sensorId} `));
  t.home.checkHeartbeats(Date.now() + 181_000);
  assert.match(readLog(t.home), new RegExp(`sensor\\.disconnect sensor=${sensorId} `));
  // The next request after being offline is a new connect.
  const before = readLog(t.home).split(`sensor.connect sensor=${sensorId} `).length;
  await call(t.home, agent, 'POST', '/v1/sensor/heartbeat', { queue: 0 });
  assert.equal(readLog(t.home).split(`sensor.connect sensor=${sensorId} `).length, before + 1);
});

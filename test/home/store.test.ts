import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createRequire } from 'node:module';
import { HEARTBEAT_TRIM_EVERY, HomeStore, MIGRATIONS, type CaptureInsert } from '../../home/store.js';

const dir = mkdtempSync(join(tmpdir(), 'hark-home-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function row(id: string, severity = 3): CaptureInsert {
  return { id, ts_us: 1000 + Number(id.replace(/\D/g, '')), severity, category: 'drugs', user: 'u', host: 'h', url: '/', phrase: 'p', event: JSON.stringify({ id }) };
}

test('HomeStore migrates to the current user_version once and keeps the file 0600', () => {
  const path = join(dir, 'a.db');
  const s = new HomeStore(path);
  const v = s.schemaVersion;
  assert.ok(v >= 1);
  s.close();
  const again = new HomeStore(path);
  assert.equal(again.schemaVersion, v);
  again.close();
  assert.equal(statSync(path).mode & 0o777, 0o600);
});

test('HomeStore upgrades a version-2 database: its sensors gain inspection settings, {} (the sensor\'s defaults)', () => {
  const path = join(dir, 'v2.db');
  type Db = { exec(sql: string): void; pragma(s: string): unknown; prepare(s: string): { run(...a: unknown[]): unknown }; close(): void };
  const Sqlite = createRequire(import.meta.url)('better-sqlite3') as new (file: string) => Db;
  const db = new Sqlite(path);
  for (const sql of MIGRATIONS.slice(0, 2)) db.exec(sql);
  db.pragma('user_version = 2');
  db.prepare("INSERT INTO dictionaries (name, format, text, phrases, updated_at) VALUES ('starter', 'csv', 'x', 1, '2026-01-01T00:00:00Z')").run();
  db.prepare("INSERT INTO sensors (name, bpf, config_version, created_at, updated_at) VALUES ('old', 'tcp', 4, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')").run();
  db.close();
  const s = new HomeStore(path);
  try {
    assert.equal(s.schemaVersion, MIGRATIONS.length);
    const row = s.listSensors()[0];
    assert.equal(row.inspection, '{}');
    assert.equal(row.bpf, 'tcp', 'the rest of the row is kept');
    assert.equal(row.config_version, 4, 'the upgrade changes no configuration version');
    assert.ok(s.updateSensor(row.id, { inspection: '{"dedup_window_seconds":0}' }));
    assert.equal(s.sensor(row.id)!.inspection, '{"dedup_window_seconds":0}');
  } finally {
    s.close();
  }
});

test('HomeStore opens its database in WAL mode with synchronous=FULL: an acknowledged upload survives a power loss', () => {
  const s = new HomeStore(join(dir, 'sync.db'));
  try {
    assert.equal(s.sql.pragma('journal_mode', { simple: true }), 'wal');
    // 2 = FULL (0 OFF, 1 NORMAL, 3 EXTRA): under NORMAL the last WAL commits can roll back on power loss.
    assert.equal(s.sql.pragma('synchronous', { simple: true }), 2);
  } finally {
    s.close();
  }
});

test('HomeStore.ingestCaptures stores a capture id once and counts only new ones', () => {
  const s = new HomeStore(join(dir, 'b.db'));
  s.putDictionary('starter', 'csv', 'x', 1);
  const sid = s.addSensor({ name: 'n' });
  assert.deepEqual(s.ingestCaptures(sid, [row('c1'), row('c2')]), { added: 2, updated: 0 });
  assert.deepEqual(s.ingestCaptures(sid, [row('c2'), row('c3')]), { added: 1, updated: 0 });
  assert.equal(s.captureCount(sid), 3);
  assert.deepEqual(s.captures({ limit: 10, min_severity: 3 }).map((r) => r.id), ['c3', 'c2', 'c1']);
  s.close();
});

test('HomeStore.ingestCaptures takes the larger count of a capture its sensor sends again, never a smaller one or another sensor\'s', () => {
  const s = new HomeStore(join(dir, 'b2.db'));
  s.putDictionary('starter', 'csv', 'x', 1);
  const sid = s.addSensor({ name: 'n' });
  const other = s.addSensor({ name: 'm' });
  const counted = (id: string, count: number): CaptureInsert => ({ ...row(id), event: JSON.stringify({ id, count, context: 'a [[b]] c' }) });
  const countAtHome = (id: string): number => (JSON.parse(s.captures({ limit: 10 }).find((r) => r.id === id)!.event) as { count: number }).count;
  assert.deepEqual(s.ingestCaptures(sid, [counted('g1', 1)]), { added: 1, updated: 0 });
  // the merge window closed with the phrase seen 5 times
  assert.deepEqual(s.ingestCaptures(sid, [counted('g1', 5)]), { added: 0, updated: 1 });
  assert.equal(countAtHome('g1'), 5);
  assert.deepEqual(s.ingestCaptures(sid, [counted('g1', 3), counted('g1', 5)]), { added: 0, updated: 0 }, 'a retried older batch changes nothing');
  assert.deepEqual(s.ingestCaptures(other, [counted('g1', 50)]), { added: 0, updated: 0 }, 'another sensor cannot rewrite it');
  assert.equal(countAtHome('g1'), 5);
  assert.equal(s.captureCount(sid), 1);
  s.close();
});

test('HomeStore.addHeartbeat keeps a bounded history per sensor and the last heartbeat whole', () => {
  const s = new HomeStore(join(dir, 'c.db'), 10);
  for (let i = 0; i < 200; i++) s.addHeartbeat(1, i, 'p', JSON.stringify({ n: i, big: 'x' }), JSON.stringify({ n: i }));
  for (let i = 0; i < 5; i++) s.addHeartbeat(2, i, 'p', '{}');
  assert.ok(s.heartbeatHistoryCount(1) <= 10 + HEARTBEAT_TRIM_EVERY, `history ${s.heartbeatHistoryCount(1)}`);
  assert.ok(s.heartbeatHistoryCount(1) >= 10);
  assert.equal(s.heartbeatHistoryCount(2), 5, 'trimming one sensor leaves the others alone');
  assert.deepEqual(JSON.parse(s.lastHeartbeat(1)!.body), { n: 199, big: 'x' });
  assert.deepEqual(s.heartbeatHistory(1, 1).map((h) => JSON.parse(h.body)), [{ n: 199 }]);
  s.close();
});

test('HomeStore.recordEnrolment revokes the earlier certificate of the sensor and bumps config_version', () => {
  const s = new HomeStore(join(dir, 'd.db'));
  s.putDictionary('starter', 'csv', 'x', 1);
  const sid = s.addSensor({ name: 'n' });
  const v0 = s.sensor(sid)!.config_version;
  const cert = (serial: string) => ({ serial, pem: 'pem', notBefore: new Date(), notAfter: new Date(Date.now() + 1e9) });
  assert.deepEqual(s.recordEnrolment(sid, 'u1', 'h', cert('AA')), []);
  assert.deepEqual(s.recordEnrolment(sid, 'u1', 'h', cert('BB')), ['AA']);
  assert.notEqual(s.certificate('AA')!.revoked_at, null);
  assert.equal(s.certificate('BB')!.revoked_at, null);
  assert.equal(s.sensor(sid)!.cert_serial, 'BB');
  assert.equal(s.sensor(sid)!.config_version, v0 + 2);
  s.close();
});

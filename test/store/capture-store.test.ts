/**
 * CaptureStore: schema migrations (from version 1 too), owner-only file modes, idempotent
 * re-insert, the upload outbox (priority order, marking, quarantine, index use), commit
 * notification, retention per category, a quota that fills (oldest uploaded deleted first,
 * un-uploaded kept, held in memory, health raised and cleared), a disk that is really full (a
 * tmpfs: the reserve given back so uploads are still recorded, their room reused, held captures
 * let in, the reserve written again when the disk grows), and durability across kill -9.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import type { CaptureEvent } from '../../sensor/events/capture.js';
import { Counters } from '../../sensor/events/counters.js';
import type { HealthEvent } from '../../sensor/events/health.js';
import { CaptureStore, MAX_HELD_CAPTURES, MIGRATIONS, StoreError } from '../../sensor/store/capture-store.js';
import { assertCapture } from '../helpers/schema.js';
import { BASE_TS_US, makeCapture as capture } from './make-capture.js';
import { withSmallDisk } from './small-disk.js';

const require = createRequire(import.meta.url);
const DAY_US = 86_400_000_000;

function withDir(fn: (dir: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hark-store-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('CaptureStore migrates, stores privately, and ignores a repeated capture id', withDir((dir) => {
  const path = join(dir, 'data', 'captures.db');
  const store = new CaptureStore(path);
  assert.equal(store.schemaVersion, MIGRATIONS.length);
  for (let i = 0; i < 3; i++) {
    assertCapture(capture(i));
    store.add(capture(i));
  }
  store.add(capture(1)); // the same capture again (a re-scan): no second row
  store.add({ ...capture(2), count: 7 }); // a merged repeat raised its count: the row follows
  assert.deepEqual(store.flush().map((c) => c.id), [0, 1, 2, 2].map((i) => capture(i).id), 'the unchanged repeat is not reported as committed');
  store.add(capture(0));
  assert.deepEqual(store.flush(), []);
  assert.equal(store.count(), 3);
  assert.equal(store.countOf(capture(2).id), 7);
  assert.equal(store.countOf(capture(1).id), 1);
  assert.equal(store.stored, 4, 'three inserts and one count update changed rows');
  for (const suffix of ['', '-wal', '-shm']) {
    assert.ok(existsSync(path + suffix), `${suffix} exists while open`);
    assert.equal(statSync(path + suffix).mode & 0o077, 0, `captures.db${suffix} is owner-only`);
  }
  store.close();
  assert.equal(statSync(path).mode & 0o077, 0);
  assert.equal(statSync(join(dir, 'data')).mode & 0o077, 0);
  const again = new CaptureStore(path);
  assert.equal(again.schemaVersion, MIGRATIONS.length, 'reopening does not migrate again');
  assert.equal(again.count(), 3);
  for (const suffix of ['-wal', '-shm']) if (existsSync(path + suffix)) assert.equal(statSync(path + suffix).mode & 0o077, 0);
  again.close();
}));

test('CaptureStore refuses a directory under /proc at once (recursive mkdir would spin there)', () => {
  assert.throws(() => new CaptureStore('/proc/hark-cannot-be-here/captures.db'), (e: unknown) => e instanceof StoreError && e.code === 'E_STORE_OPEN');
});

test('CaptureStore says which file it cannot open', withDir((dir) => {
  // A directory path that runs through a regular file cannot be created (ENOTDIR).
  const file = join(dir, 'plain-file');
  writeFileSync(file, 'x');
  const path = join(file, 'sub', 'captures.db');
  assert.throws(() => new CaptureStore(path), (e: unknown) => e instanceof StoreError && e.code === 'E_STORE_OPEN' && e.message.startsWith(`Cannot open capture store "${path}"`));
}));

test('CaptureStore refuses a file that is not an SQLite database, leaving it as it was', withDir((dir) => {
  const path = join(dir, 'notes.txt');
  writeFileSync(path, 'these are my notes\n', { mode: 0o644 });
  chmodSync(path, 0o644);
  assert.throws(() => new CaptureStore(path), (e: unknown) => e instanceof StoreError && e.code === 'E_STORE_OPEN'
    && e.message === `Cannot open capture store "${path}": not an SQLite database`);
  assert.equal(readFileSync(path, 'utf8'), 'these are my notes\n');
  assert.equal(statSync(path).mode & 0o777, 0o644, 'a file that is not ours keeps its mode');
  assert.equal(existsSync(`${path}-wal`), false);
}));

test('CaptureStore refuses a damaged SQLite database with E_STORE_OPEN, naming it', withDir((dir) => {
  const path = join(dir, 'captures.db');
  // SQLite's 16-byte header, then junk where the page size and the schema should be.
  writeFileSync(path, Buffer.concat([Buffer.from('SQLite format 3\0', 'latin1'), Buffer.alloc(4096, 0xa5)]));
  assert.throws(() => new CaptureStore(path), (e: unknown) => e instanceof StoreError && e.code === 'E_STORE_OPEN'
    && e.message.startsWith(`Cannot open capture store "${path}": `) && e.cause !== undefined);
}));

test('CaptureStore upgrades a version-1 database: its captures land in the outbox', withDir((dir) => {
  const path = join(dir, 'captures.db');
  const Sqlite = require('better-sqlite3') as new (file: string) => { exec(sql: string): void; pragma(s: string): unknown; prepare(s: string): { run(...a: unknown[]): unknown }; close(): void };
  const db = new Sqlite(path);
  // Version 1 exactly as it shipped (migration 1 of capture-store.ts).
  db.exec(`CREATE TABLE captures (id TEXT PRIMARY KEY, ts_us INTEGER NOT NULL, timestamp TEXT NOT NULL, flow_id INTEGER NOT NULL,
     src_ip TEXT NOT NULL, src_port INTEGER NOT NULL, dest_ip TEXT NOT NULL, dest_port INTEGER NOT NULL,
     vlan TEXT, app_proto TEXT NOT NULL, direction TEXT NOT NULL, source TEXT NOT NULL, field TEXT NOT NULL,
     host TEXT, url TEXT, method TEXT, status INTEGER, phrase TEXT NOT NULL, category TEXT NOT NULL, severity INTEGER NOT NULL, count INTEGER NOT NULL,
     context TEXT NOT NULL, device_ip TEXT NOT NULL, device_mac TEXT, device_hostname TEXT, device_user TEXT,
     event TEXT NOT NULL, stored_at INTEGER NOT NULL, uploaded_at INTEGER) STRICT;
   CREATE INDEX captures_ts ON captures(ts_us);
   CREATE INDEX captures_outbox ON captures(uploaded_at, severity DESC, ts_us);`);
  db.pragma('user_version = 1');
  const old = capture(1, { severity: 2 });
  db.prepare(`INSERT INTO captures (id, ts_us, timestamp, flow_id, src_ip, src_port, dest_ip, dest_port, app_proto, direction, source, field,
      phrase, category, severity, count, context, device_ip, event, stored_at) VALUES (?, ?, ?, 1, '10.0.0.2', 1, '192.0.2.1', 80, 'http', 'to_server', 'typed', 'url',
      'AK47', 'weapons', 2, 1, '[[ak47]]', '10.0.0.2', ?, 0)`).run(old.id, old.ts_us, old.timestamp, JSON.stringify(old));
  db.close();
  const store = new CaptureStore(path);
  try {
    assert.equal(store.schemaVersion, MIGRATIONS.length);
    assert.deepEqual(store.outboxBatch(10), [old]);
    assert.equal(store.pendingCount(), 1);
  } finally {
    store.close();
  }
}));

test('CaptureStore upgrades a version-3 database to one copy of each field: `captures` still reads every column, outbox, marks and pages kept', withDir((dir) => {
  const path = join(dir, 'captures.db');
  type Db = { exec(sql: string): void; pragma(s: string, o?: object): unknown; prepare(s: string): { run(...a: unknown[]): unknown; all(...a: unknown[]): unknown[]; get(...a: unknown[]): unknown }; close(): void };
  const Sqlite = require('better-sqlite3') as new (file: string) => Db;
  const db = new Sqlite(path);
  for (const sql of MIGRATIONS.slice(0, 3)) db.exec(sql);
  db.pragma('user_version = 3');
  // Version 3 stored every field twice: in its own column and in the event JSON.
  const insert = db.prepare(`INSERT INTO captures (id, ts_us, timestamp, flow_id, src_ip, src_port, dest_ip, dest_port, vlan, app_proto, direction, source, field,
      host, url, method, status, phrase, category, severity, count, context, device_ip, device_mac, device_hostname, device_user, event, stored_at, uploaded_at, quarantined_at, quarantine_reason)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const waiting = { ...capture(1, { severity: 2 }), vlan: [6, 7], status: 200, device: { ip: '10.0.0.2', mac: '00:11:22:33:44:55', hostname: 'pc-7', user: 'alice' } };
  const uploaded = { ...capture(2), vlan: [] };
  const quarantined = capture(3, { severity: 5 });
  const rows: [CaptureEvent, number | null, number | null][] = [[waiting, null, null], [uploaded, 1000, null], [quarantined, null, 2000]];
  for (const [c, up, q] of rows) {
    insert.run(c.id, c.ts_us, c.timestamp, c.flow_id, c.src_ip, c.src_port, c.dest_ip, c.dest_port, c.vlan.length > 0 ? c.vlan.join('/') : null, c.app_proto, c.direction, c.source, c.field,
      c.host ?? null, c.url ?? null, c.method ?? null, c.status ?? null, c.phrase, c.category, c.severity, c.count, c.context, c.device.ip, c.device.mac ?? null,
      c.device.hostname ?? null, c.device.user ?? null, JSON.stringify(c), 0, up, q, q === null ? null : 'rejected by home');
  }
  db.prepare('INSERT INTO evidence (capture_id, content_type, charset, body, truncated) VALUES (?, ?, ?, ?, 0)').run(uploaded.id, 'text/html', 'utf-8', Buffer.from('page'));
  const before = db.prepare('SELECT * FROM captures ORDER BY ts_us').all();
  db.close();

  const store = new CaptureStore(path);
  try {
    assert.equal(store.schemaVersion, MIGRATIONS.length);
    assert.deepEqual(store.outboxBatch(10), [waiting], 'the waiting capture is still the only one to send');
    assert.equal(store.pendingCount(), 1);
    assert.equal(store.quarantinedCount(), 1);
    assert.equal(store.evidencePending(), 1, 'the page of the uploaded capture survived the rebuild');
  } finally {
    store.close();
  }
  const reopened = new CaptureStore(path);
  try {
    // with foreign keys back on, retention deleting the uploaded capture takes its page along
    assert.equal(reopened.purge({ days: 1 }, BASE_TS_US / 1000 + 10 * 86_400_000).deleted, 1);
    assert.equal(reopened.evidencePending(), 0);
  } finally {
    reopened.close();
  }
  const after = new Sqlite(path);
  try {
    // Every column an operator could query before reads the same, now a view over the event.
    assert.deepEqual(after.prepare('SELECT * FROM captures ORDER BY ts_us').all(), before.filter((r) => (r as { id: string }).id !== uploaded.id));
    const stored = (after.prepare("SELECT name FROM pragma_table_info('capture_rows')").all() as { name: string }[]).map((r) => r.name);
    assert.deepEqual(stored, ['id', 'ts_us', 'category', 'severity', 'count', 'event', 'stored_at', 'uploaded_at', 'quarantined_at', 'quarantine_reason']);
    assert.deepEqual(after.prepare('PRAGMA foreign_key_list(evidence)').all().map((r) => (r as { table: string }).table), ['capture_rows']);
    assert.deepEqual(after.prepare('SELECT count(*) AS n FROM evidence').get(), { n: 0 });
  } finally {
    after.close();
  }
}));

test('CaptureStore.outboxBatch gives severity 4-5 first in time order, then the rest in time order', withDir((dir) => {
  const store = new CaptureStore(join(dir, 'captures.db'));
  try {
    // Times shuffled against insertion order; severities mixed.
    const plan: [number, number][] = [[7, 1], [3, 5], [9, 4], [1, 2], [5, 4], [2, 3], [8, 5], [4, 1], [6, 3]];
    for (const [t, sev] of plan) store.add(capture(t, { severity: sev }));
    store.flush();
    const first = store.outboxBatch(4).map((c) => c.ts_us - BASE_TS_US);
    assert.deepEqual(first, [3, 5, 8, 9], 'urgent ones (4-5) oldest first');
    const all = store.outboxBatch(100).map((c) => c.ts_us - BASE_TS_US);
    assert.deepEqual(all, [3, 5, 8, 9, 1, 2, 4, 6, 7]);
    assert.deepEqual(store.outboxBatch(6).map((c) => c.ts_us - BASE_TS_US), [3, 5, 8, 9, 1, 2], 'the limit cuts into the routine tier');
    assert.deepEqual(store.outboxBatch(0), []);
    assert.deepEqual(store.outboxBatch(1)[0], capture(3, { severity: 5 }), 'the event comes back as it was stored');
    assert.equal(store.pendingCount(), 9);

    assert.equal(store.markUploaded([capture(3), capture(1), { id: 'no-such-id', count: 1 }], 1000), 2);
    assert.equal(store.markUploaded([capture(3)], 2000), 0, 'marking again changes nothing');
    assert.equal(store.stateOf(capture(3).id)?.uploadedAt, 1000);
    assert.equal(store.quarantine([capture(5).id], 'HTTP 400: E_BAD_CAPTURE', 1500), 1);
    assert.deepEqual(store.stateOf(capture(5).id), { uploadedAt: null, quarantinedAt: 1500, reason: 'HTTP 400: E_BAD_CAPTURE' });
    assert.equal(store.quarantinedCount(), 1);
    assert.equal(store.pendingCount(), 6);
    assert.deepEqual(store.outboxBatch(100).map((c) => c.ts_us - BASE_TS_US), [8, 9, 2, 4, 6, 7]);
    // A merged repeat of an uploaded capture updates the row and puts it back in the outbox, first
    // in its tier: home has it with count 1 and takes the final count.
    store.add(capture(3, { severity: 5, count: 9 }));
    store.flush();
    assert.equal(store.countOf(capture(3).id), 9);
    assert.equal(store.pendingCount(), 7);
    assert.deepEqual(store.outboxBatch(1).map((c) => [c.ts_us - BASE_TS_US, c.count]), [[3, 9]]);
  } finally {
    store.close();
  }
}));

test('CaptureStore outbox and eviction queries read their partial indexes, never the whole table', withDir((dir) => {
  const store = new CaptureStore(join(dir, 'captures.db'));
  try {
    const plans = { urgent: store.queryPlan('outbox-urgent'), routine: store.queryPlan('outbox-routine'), evict: store.queryPlan('evict') };
    assert.match(plans.urgent.join('|'), /USING INDEX captures_pending_urgent/);
    assert.match(plans.routine.join('|'), /USING INDEX captures_pending_routine/);
    assert.match(plans.evict.join('|'), /USING INDEX captures_uploaded/);
    for (const p of Object.values(plans)) assert.ok(!p.some((d) => /^SCAN captures$/.test(d) || /TEMP B-TREE/.test(d)), p.join('|'));
  } finally {
    store.close();
  }
}));

test('CaptureStore.onCommitted sees each batch only after it is readable from another connection', withDir((dir) => {
  const path = join(dir, 'captures.db');
  const store = new CaptureStore(path);
  const Sqlite = require('better-sqlite3') as new (file: string, o: object) => { prepare(s: string): { get(...a: unknown[]): unknown }; close(): void };
  const reader = new Sqlite(path, { readonly: true });
  try {
    const seen: number[] = [];
    let visible = 0;
    const off = store.onCommitted((rows) => {
      seen.push(rows.length);
      for (const r of rows) if (reader.prepare('SELECT 1 AS x FROM captures WHERE id = ?').get(r.id) !== undefined) visible++;
    });
    store.onCommitted(() => { throw new Error('a broken consumer'); });
    for (let i = 0; i < 510; i++) store.add(capture(i)); // 500 commit by themselves
    assert.deepEqual(seen, [500]);
    const rows = store.flush();
    assert.equal(rows.length, 10);
    assert.deepEqual(seen, [500, 10]);
    assert.equal(visible, 510, 'every row handed to a listener was already committed');
    assert.deepEqual(store.flush(), [], 'nothing pending: nothing committed');
    off();
    store.add(capture(1000));
    store.flush();
    assert.deepEqual(seen, [500, 10], 'unsubscribed');
    assert.equal(store.count(), 511, 'the throwing listener undid nothing');
  } finally {
    reader.close();
    store.close();
  }
}));

test('CaptureStore.pendingCount follows every change (insert, repeat, mark, quarantine, re-queue, purge, reopen) as the indexes count it', withDir((dir) => {
  const path = join(dir, 'captures.db');
  const store = new CaptureStore(path);
  const check = (want: number, what: string): void => {
    assert.equal(store.pendingCount(), want, `${what}: kept count`);
    assert.equal(store.countOutbox(), want, `${what}: the indexes agree`);
  };
  try {
    check(0, 'empty');
    for (let i = 0; i < 10; i++) store.add(capture(i, { severity: i % 2 === 0 ? 5 : 2 }));
    store.add(capture(3)); // a repeat, nothing new
    check(0, 'before the commit');
    store.flush();
    check(10, 'committed');
    store.add({ ...capture(4, { severity: 5 }), count: 3 }); // a count that grew while waiting: still one row
    store.flush();
    check(10, 'a waiting capture grew');
    assert.equal(store.markUploaded([0, 1, 2, 3].map((i) => capture(i))), 4);
    assert.equal(store.markUploaded([capture(0), { id: 'no-such-id', count: 1 }]), 0, 'already uploaded, and unknown: no change');
    check(6, 'four uploaded');
    assert.equal(store.quarantine([capture(5).id, capture(0).id], 'E_SCHEMA'), 1, 'only the waiting one is quarantined');
    check(5, 'one quarantined');
    store.add({ ...capture(5), count: 9 }); // grew while quarantined: updated, stays out of the outbox
    store.flush();
    check(5, 'a quarantined capture grew');
    assert.equal(store.countOf(capture(5).id), 9);
    // A capture home already has whose merge window closed with a larger count: back in the outbox.
    store.add({ ...capture(1), count: 4 });
    assert.deepEqual(store.flush().map((c) => c.id), [capture(1).id]);
    check(6, 'an uploaded capture grew');
    const next = store.outboxBatch(100).find((c) => c.id === capture(1).id);
    assert.equal(next?.count, 4, 'the outbox offers the final count');
    store.add({ ...capture(2), count: 1 }); // same count as uploaded: nothing to send again
    assert.deepEqual(store.flush(), []);
    check(6, 'an uploaded repeat that did not grow');
    const nowMs = BASE_TS_US / 1000 + 400 * 86_400_000;
    assert.ok(store.purge({ days: 30, includeNotUploaded: true }, nowMs).deleted > 0);
    check(0, 'a purge of everything');
    store.add(capture(20));
    store.flush();
    store.close();
    const again = new CaptureStore(path);
    try {
      assert.equal(again.pendingCount(), 1, 'reopened: counted from the indexes');
    } finally {
      again.close();
    }
  } finally {
    store.close();
  }
}));

test('CaptureStore.markUploaded marks only the count that was sent: a count that grew in flight stays in the outbox', withDir((dir) => {
  const store = new CaptureStore(join(dir, 'captures.db'));
  try {
    store.add(capture(1, { count: 1 }));
    store.add(capture(2, { count: 1 }));
    store.flush();
    const sent = store.outboxBatch(10);
    assert.deepEqual(sent.map((c) => c.count), [1, 1]);
    // While the batch is on the wire the merge window of capture 1 closes with the phrase seen 7 times.
    store.add(capture(1, { count: 7 }));
    assert.equal(store.flush().length, 1);
    assert.equal(store.markUploaded(sent, 1000), 1, 'only capture 2 is marked: home has capture 1 at count 1, not 7');
    assert.deepEqual(store.stateOf(capture(1).id), { uploadedAt: null, quarantinedAt: null, reason: null });
    assert.equal(store.stateOf(capture(2).id)?.uploadedAt, 1000);
    assert.equal(store.pendingCount(), 1);
    assert.equal(store.countOutbox(), 1);
    const again = store.outboxBatch(10);
    assert.deepEqual(again.map((c) => [c.id, c.count]), [[capture(1).id, 7]], 'the grown count is offered again');
    assert.equal(store.markUploaded(again, 2000), 1);
    assert.equal(store.pendingCount(), 0);
  } finally {
    store.close();
  }
}));

test('CaptureStore.purge deletes uploaded captures past their category retention, keeps un-uploaded ones', withDir((dir) => {
  const counters = new Counters();
  const store = new CaptureStore(join(dir, 'captures.db'), { counters });
  try {
    const nowMs = BASE_TS_US / 1000 + 100 * 86_400_000; // 100 days after BASE
    const age = (days: number) => BASE_TS_US + (100 - days) * DAY_US;
    const rows: CaptureEvent[] = [];
    let n = 0;
    for (const [cat, days] of [['weapons', 10], ['weapons', 40], ['weapons', 95], ['violence', 40], ['violence', 95], ['drugs', 31], ['drugs', 29]] as [string, number][]) {
      rows.push(capture(n++, { category: cat, tsUs: age(days) }));
    }
    const pendingOld = capture(n++, { category: 'weapons', tsUs: age(99) });
    for (const r of rows) store.add(r);
    store.add(pendingOld);
    store.flush();
    store.markUploaded(rows, nowMs);
    const r1 = store.purge({ days: 30, byCategory: { violence: 90 } }, nowMs);
    assert.equal(r1.deleted, 4, 'weapons 40 and 95, violence 95, drugs 31');
    assert.equal(r1.done, true);
    const left = new Set(store.ids());
    assert.deepEqual([...left].sort(), [rows[0].id, rows[3].id, rows[6].id, pendingOld.id].sort());
    assert.equal(counters.get('store.purged'), 4);
    assert.equal(store.purge({ days: 30, byCategory: { violence: 90 } }, nowMs).deleted, 0, 'idempotent');
    // A standalone sensor with no home: un-uploaded captures age out too.
    assert.equal(store.purge({ days: 30, includeNotUploaded: true }, nowMs).deleted, 2, 'violence 40 now under the default, and the pending 99');
    assert.ok(!store.ids().includes(pendingOld.id));
    assert.throws(() => store.purge({ days: 0 }, nowMs), (e: unknown) => e instanceof StoreError && e.code === 'E_STORE_RETENTION');
    assert.throws(() => store.purge({ byCategory: { x: Number.NaN } }, nowMs), (e: unknown) => e instanceof StoreError && e.code === 'E_STORE_RETENTION');
  } finally {
    store.close();
  }
}));

test('CaptureStore.purge works in batches and stops at maxRows, resuming on the next call', withDir((dir) => {
  const store = new CaptureStore(join(dir, 'captures.db'));
  try {
    const total = 2500;
    const ids: string[] = [];
    for (let i = 0; i < total; i++) {
      // Every fifth is 'violence', kept longer, interleaved in time with those that go.
      const c = capture(i, { category: i % 5 === 0 ? 'violence' : 'weapons' });
      ids.push(c.id);
      store.add(c);
    }
    store.flush();
    store.markUploaded(ids.map((id) => ({ id, count: 1 })), 0);
    const nowMs = BASE_TS_US / 1000 + 45 * 86_400_000;
    const policy = { days: 30, byCategory: { violence: 60 } };
    const part = store.purge({ ...policy, maxRows: 1500 }, nowMs);
    assert.deepEqual(part, { deleted: 1500, batches: 2, done: false });
    const rest = store.purge(policy, nowMs);
    assert.equal(rest.deleted, 500);
    assert.equal(rest.done, true);
    assert.equal(store.count(), 500, 'only the violence ones are left');
    assert.equal(store.integrityCheck(), 'ok');
  } finally {
    store.close();
  }
}));

test('CaptureStore with a quota deletes the oldest uploaded captures first and never an un-uploaded one', withDir((dir) => {
  const counters = new Counters();
  const health: HealthEvent[] = [];
  const store = new CaptureStore(join(dir, 'captures.db'), { maxBytes: 512 * 1024, counters, onHealth: (e) => health.push(e) });
  try {
    // 80 uploaded captures of ~3 KB each (the context is in its column and in the event JSON), oldest first.
    const uploaded: string[] = [];
    for (let i = 0; i < 80; i++) {
      const c = capture(i, { tag: 'up', contextBytes: 1500 });
      uploaded.push(c.id);
      store.add(c);
    }
    assert.equal(store.flush().length, 80);
    store.markUploaded(uploaded.map((id) => ({ id, count: 1 })), 1);
    // Newer, un-uploaded captures until the store has had to make room.
    const pending: string[] = [];
    let n = 0;
    while (counters.get('store.evicted') === 0 && n < 2000) {
      for (let k = 0; k < 20; k++, n++) {
        const c = capture(n, { tag: 'new', tsUs: BASE_TS_US + 1_000_000 + n, contextBytes: 1500, severity: 1 + (n % 5) });
        pending.push(c.id);
        store.add(c);
      }
      store.flush();
    }
    assert.ok(counters.get('store.full') > 0, 'the quota was hit');
    assert.equal(store.heldCount, 0, 'eviction made room');
    const have = new Set(store.ids());
    for (const id of pending) assert.ok(have.has(id), 'every un-uploaded capture is stored');
    const kept = uploaded.filter((id) => have.has(id));
    assert.ok(kept.length < uploaded.length, 'uploaded captures were deleted');
    assert.deepEqual(kept, uploaded.slice(uploaded.length - kept.length), 'the oldest uploaded went first');
    assert.equal(counters.get('store.evicted'), uploaded.length - kept.length);
    assert.equal(health[0]?.name, 'store.full');
    assert.equal(health[0]?.state, 'raised');
    assert.equal(store.pendingCount(), pending.length);
    assert.equal(store.integrityCheck(), 'ok');
  } finally {
    store.close();
  }
}));

test('CaptureStore full with nothing uploaded holds captures in memory, retries, and clears store.full once they commit', withDir((dir) => {
  const counters = new Counters();
  const health: HealthEvent[] = [];
  const store = new CaptureStore(join(dir, 'captures.db'), { maxBytes: 256 * 1024, counters, onHealth: (e) => health.push(e) });
  try {
    const committed: string[] = [];
    let n = 0;
    store.onCommitted((rows) => { for (const r of rows) committed.push(r.id); });
    while (store.heldCount === 0 && n < 2000) {
      store.add(capture(n++, { contextBytes: 1500 }));
      store.flush();
    }
    assert.ok(store.heldCount > 0, 'a capture is waiting in memory');
    const heldId = capture(n - 1).id;
    assert.ok(!store.ids().includes(heldId));
    assert.equal(health.at(-1)?.name, 'store.full');
    assert.equal(health.at(-1)?.state, 'raised');
    const before = store.count();
    // More arrive while full: they wait too, nothing stored is touched.
    for (let k = 0; k < 3; k++) store.add(capture(n++, { contextBytes: 1500 }));
    assert.deepEqual(store.flush(), []);
    assert.equal(store.heldCount, 4);
    assert.equal(store.count(), before);
    assert.equal(counters.get('store.held'), 4);
    // Home takes the stored ones: now there is something that may go.
    store.markUploaded(store.outboxBatch(MAX_HELD_CAPTURES), 5);
    const rows = store.flush();
    assert.equal(rows.length, 4, 'the held captures commit on the next flush');
    assert.equal(store.heldCount, 0);
    assert.ok(store.ids().includes(heldId));
    assert.ok(committed.includes(heldId), 'listeners hear of them only now');
    // The next commit needs no room made: the episode is over.
    store.add(capture(n++, { contextBytes: 100 }));
    store.flush();
    assert.deepEqual(health.map((e) => `${e.name}:${e.state}`), ['store.full:raised', 'store.full:cleared']);
    assert.equal(counters.get('store.dropped'), 0);
  } finally {
    store.close();
  }
}));

test('CaptureStore drops the least severe held captures past MAX_HELD_CAPTURES and raises store.dropped', withDir((dir) => {
  const counters = new Counters();
  const health: HealthEvent[] = [];
  const store = new CaptureStore(join(dir, 'captures.db'), { maxBytes: 128 * 1024, counters, onHealth: (e) => health.push(e) });
  try {
    let n = 0;
    while (store.heldCount === 0) {
      store.add(capture(n++, { contextBytes: 1500, severity: 5 }));
      store.flush();
    }
    const extra = 50;
    const room = MAX_HELD_CAPTURES - store.heldCount;
    for (let k = 0; k < room; k++) store.add(capture(n++, { severity: 3 }));
    for (let k = 0; k < extra; k++) store.add(capture(n++, { severity: 2 }));
    store.flush();
    assert.equal(store.heldCount, MAX_HELD_CAPTURES);
    assert.equal(counters.get('store.dropped'), extra, 'the severity-2 ones went');
    const dropped = health.find((e) => e.name === 'store.dropped');
    assert.equal(dropped?.severity, 'critical');
    assert.equal(dropped?.state, 'raised');
  } finally {
    store.close();
  }
}));

test('CaptureStore on a really full disk, no quota: every capture home acknowledges is recorded, its room reused, and held captures go in', withSmallDisk('4m', (disk) => {
  const counters = new Counters();
  const health: HealthEvent[] = [];
  const path = join(disk.dir, 'captures.db');
  const store = new CaptureStore(path, { counters, onHealth: (e) => health.push(e) });
  try {
    assert.equal(statSync(`${path}-reserve`).size, 512 * 1024, 'an eighth of the 4 MiB disk held back');
    let n = 0;
    const made: string[] = [];
    const add = (k: number): void => {
      for (let i = 0; i < k; i++, n++) {
        const c = capture(n, { contextBytes: 1500, severity: 1 + (n % 5) });
        made.push(c.id);
        store.add(c);
      }
      store.flush();
    };
    while (store.heldCount === 0) add(100);
    assert.equal(statfsSync(disk.dir).bavail, 0, 'the disk is full');
    assert.equal(counters.get('store.evicted'), 0, 'nothing uploaded to delete');
    // Home acknowledges batch after batch while captures keep coming (what the uploader does).
    const home = new Set<string>();
    const acknowledge = (): void => {
      const batch = store.outboxBatch(500);
      assert.equal(store.markUploaded(batch, 1000), batch.length, 'every acknowledged capture is recorded');
      for (const c of batch) home.add(c.id);
    };
    for (let round = 0; round < 10; round++) {
      acknowledge();
      add(100);
    }
    for (let round = 0; store.heldCount > 0 || store.pendingCount() > 0; round++) {
      assert.ok(round < 100, `uploads make room (held ${store.heldCount}, pending ${store.pendingCount()})`);
      acknowledge();
      store.flush();
    }
    assert.equal(counters.get('store.dropped'), 0, 'nothing held in memory was dropped');
    assert.equal(counters.get('store.reserve_released'), 1);
    assert.ok(!existsSync(`${path}-reserve`));
    assert.deepEqual(made.filter((id) => !home.has(id)), [], 'home has every capture made');
    assert.equal(counters.get('store.uploaded'), made.length, 'each recorded once');
    assert.equal(store.integrityCheck(), 'ok');
    assert.deepEqual(health.map((e) => `${e.name}:${e.state}`), ['store.full:raised']);
    // Space freed elsewhere on the disk: the reserve is written again and the store grows again.
    disk.resize('32m');
    add(10);
    add(10);
    assert.equal(statSync(`${path}-reserve`).size, 512 * 1024, 'the reserve is back');
    assert.deepEqual(health.map((e) => `${e.name}:${e.state}`), ['store.full:raised', 'store.full:cleared']);
    const before = store.count();
    add(3000);
    assert.equal(store.heldCount, 0, 'no longer held to the size it had while full');
    assert.equal(store.count(), before + 3000);
    assert.equal(store.integrityCheck(), 'ok');
  } finally {
    store.close();
  }
}));

test('CaptureStore.purge on a disk something else filled gives the reserve back to write its deletes', withSmallDisk('4m', (disk) => {
  const counters = new Counters();
  const store = new CaptureStore(join(disk.dir, 'captures.db'), { counters });
  try {
    for (let i = 0; i < 300; i++) store.add(capture(i, { contextBytes: 1500 }));
    store.flush();
    assert.equal(store.markUploaded(store.outboxBatch(300), 0), 300);
    store.checkpoint();
    fillDisk(join(disk.dir, 'filler'));
    const r = store.purge({ days: 1 }, BASE_TS_US / 1000 + 10 * 86_400_000);
    assert.ok(counters.get('store.full') > 0, 'the first delete found the disk full');
    assert.equal(counters.get('store.reserve_released'), 1);
    assert.deepEqual(r, { deleted: 300, batches: 1, done: true });
    assert.equal(store.count(), 0);
    assert.equal(store.integrityCheck(), 'ok');
  } finally {
    store.close();
  }
}));

/** Writes `path` until the disk has no byte left. */
function fillDisk(path: string): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  assert.equal(statfsSync(path).bavail, 0);
}

test('CaptureStore rejects a quota that is not a positive number', withDir((dir) => {
  assert.throws(() => new CaptureStore(join(dir, 'c.db'), { maxBytes: -1 }), (e: unknown) => e instanceof StoreError && e.code === 'E_STORE_QUOTA');
}));

test('CaptureStore keeps every flushed capture when its process is killed with SIGKILL mid-stream', withDir(async (dir) => {
  const path = join(dir, 'captures.db');
  const child = spawn(process.execPath, [fileURLToPath(new URL('./kill-child.js', import.meta.url))], {
    env: { ...process.env, HARK_KILL_CHILD_DB: path, HARK_KILL_CHILD_BATCH: '50' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let durable = 0;
  let buf = '';
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, sig) => resolve(sig)));
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) durable = Math.max(durable, Number(l));
      // Kill while it is still writing: after at least 20 flushes.
      if (durable >= 1000 && child.exitCode === null && !child.killed) {
        child.kill('SIGKILL');
        resolve();
      }
    });
  });
  assert.equal(await exited, 'SIGKILL');
  assert.ok(durable >= 1000);
  const store = new CaptureStore(path);
  try {
    assert.equal(store.integrityCheck(), 'ok');
    const have = new Set(store.ids());
    for (let i = 0; i < durable; i++) assert.ok(have.has(capture(i, { tag: 'kill' }).id), `capture ${i} of ${durable} acknowledged by flush() is present`);
    assert.ok(store.count() >= durable);
  } finally {
    store.close();
  }
}));

test('CaptureStore keeps a capture\'s page beside it (not in its JSON), offers it once home has the capture, and deletes it with the capture', withDir((dir) => {
  const store = new CaptureStore(join(dir, 'captures.db'));
  const page = Buffer.from(`<html><body><p>${'filler '.repeat(2000)} ak47 for sale</p></body></html>`);
  const c = capture(1);
  store.add(c, { contentType: 'text/html', charset: 'utf-8', body: page, truncated: false });
  store.add(capture(2));
  const committed = store.flush();
  assert.equal(committed.length, 2);
  assert.ok(!JSON.stringify(committed[0]).includes('filler'), 'the page is not in the capture event');
  assert.deepEqual(store.evidenceBatch(10, 1 << 20), [], 'nothing to send before home has the capture');
  store.markUploaded([c, capture(2)]);
  const batch = store.evidenceBatch(10, 1 << 20);
  assert.equal(batch.length, 1);
  assert.equal(batch[0].captureId, c.id);
  assert.equal(batch[0].contentType, 'text/html');
  assert.equal(batch[0].charset, 'utf-8');
  assert.equal(batch[0].truncated, false);
  assert.ok(batch[0].body.equals(page), 'the page comes back byte for byte');
  assert.equal(store.evidencePending(), 1);
  store.markEvidenceUploaded([c.id]);
  assert.equal(store.evidencePending(), 0);
  assert.deepEqual(store.evidenceBatch(10, 1 << 20), []);
  // retention deletes the capture: its page goes with it (ON DELETE CASCADE)
  store.purge({ days: 1 }, BASE_TS_US / 1000 + 10 * 86_400_000);
  assert.equal(store.count(), 0);
  const Sqlite = createRequire(import.meta.url)('better-sqlite3') as new (f: string, o?: object) => { prepare(s: string): { pluck(): { get(): unknown } }; close(): void };
  store.close();
  const db = new Sqlite(join(dir, 'captures.db'), { readonly: true });
  assert.equal(db.prepare('SELECT count(*) FROM evidence').pluck().get(), 0);
  db.close();
}));

test('CaptureStore.add never throws when the commit it starts fails (database locked), nor waits seconds for the lock: the captures wait for the next flush', withDir((dir) => {
  const path = join(dir, 'captures.db');
  const counters = new Counters();
  const store = new CaptureStore(path, { counters });
  // Another process holding the write lock (an operator's sqlite3 shell): commits fail with SQLITE_BUSY, not "full".
  const Sqlite = require('better-sqlite3') as new (file: string) => { exec(sql: string): void; close(): void };
  const other = new Sqlite(path);
  try {
    other.exec('BEGIN IMMEDIATE');
    // 500 (BATCH_ROWS) starts one commit, which waits out the store's busy timeout
    const batch = Array.from({ length: 500 }, (_, i) => capture(i));
    // add runs on the packet path and in the workers' message handler: a throw there ends the sensor
    const started = performance.now();
    for (const c of batch) store.add(c);
    // SQLite's default busy timeout (5 s) would stall the capture thread that long on every try
    assert.ok(performance.now() - started < 2500, `add waited ${Math.round(performance.now() - started)} ms for the lock`);
    assert.equal(counters.get('store.write_error'), 1, 'the failed commit is counted');
    assert.equal(store.count(), 0);
    assert.equal(store.heldCount, batch.length);
    other.exec('ROLLBACK');
    store.flush();
    assert.equal(store.count(), batch.length, 'nothing lost once the lock is gone');
    assert.equal(store.pendingCount(), batch.length);
  } finally {
    other.close();
    store.close();
  }
}));

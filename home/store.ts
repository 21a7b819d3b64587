/**
 * Home's database: SQLite (better-sqlite3) in WAL mode with synchronous=FULL (an upload is on disk
 * before it is acknowledged), schema versioned by `PRAGMA user_version`, file and WAL 0600. Input:
 * calls from the APIs. Output: rows for operators, sessions, sensors and their definitions,
 * dictionaries, site keys, enrolments, certificates, actions, captures (id is the primary key:
 * ingest is idempotent), heartbeats (last + bounded history) and the audit log.
 * Every method is synchronous (better-sqlite3); the caller owns validation of what it passes.
 */

import { chmodSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { touchPrivateFile } from './files.js';

const require = createRequire(import.meta.url);

/** Heartbeats kept per sensor: 24 hours at one a minute (NetSupport's 60 s heartbeat, seeds/003). */
export const HEARTBEAT_HISTORY_PER_SENSOR = 1440;
/** History is trimmed every this many heartbeats of a sensor: trimming each time doubles the writes. */
export const HEARTBEAT_TRIM_EVERY = 32;
/** Largest page any list call returns. */
export const MAX_LIST_LIMIT = 1000;

export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE operators (
     id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, hash TEXT NOT NULL,
     must_change_password INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
   ) STRICT;
   CREATE TABLE sessions (
     token_hash TEXT PRIMARY KEY, operator_id INTEGER NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
     created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, peer TEXT
   ) STRICT;
   CREATE TABLE dictionaries (
     name TEXT PRIMARY KEY, format TEXT NOT NULL, text TEXT NOT NULL, phrases INTEGER NOT NULL,
     updated_at TEXT NOT NULL
   ) STRICT;
   CREATE TABLE sensors (
     id INTEGER PRIMARY KEY, name TEXT NOT NULL, site TEXT NOT NULL DEFAULT '',
     interfaces TEXT NOT NULL DEFAULT '[]', bpf TEXT NOT NULL DEFAULT '', monitored TEXT NOT NULL DEFAULT '[]',
     ignored TEXT NOT NULL DEFAULT '[]', dictionary TEXT NOT NULL DEFAULT 'starter' REFERENCES dictionaries(name),
     allow_list TEXT NOT NULL DEFAULT '', blocklists TEXT NOT NULL DEFAULT '[]', identity_map TEXT NOT NULL DEFAULT '',
     outputs TEXT NOT NULL DEFAULT '{}', retention TEXT NOT NULL DEFAULT '{}', alert_email TEXT NOT NULL DEFAULT '',
     config_version INTEGER NOT NULL DEFAULT 1,
     uuid TEXT, hostname TEXT, cert_serial TEXT, enrolled_at TEXT,
     bundle_version INTEGER, bundle_at TEXT,
     created_at TEXT NOT NULL, updated_at TEXT NOT NULL
   ) STRICT;
   CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
   CREATE TABLE site_keys (
     id INTEGER PRIMARY KEY, label TEXT NOT NULL, salt TEXT NOT NULL, key_hash TEXT NOT NULL,
     created_at TEXT NOT NULL, created_by TEXT NOT NULL, revoked_at TEXT
   ) STRICT;
   CREATE TABLE enrolments (
     id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, poll_hash TEXT NOT NULL UNIQUE, uuid TEXT NOT NULL,
     hostname TEXT NOT NULL, csr TEXT NOT NULL, status TEXT NOT NULL, sensor_id INTEGER, certificate TEXT,
     peer TEXT, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, decided_by TEXT, decided_at TEXT
   ) STRICT;
   CREATE INDEX enrolments_status ON enrolments(status, created_at);
   CREATE TABLE certificates (
     serial TEXT PRIMARY KEY, sensor_id INTEGER NOT NULL, uuid TEXT NOT NULL, not_before TEXT NOT NULL,
     not_after TEXT NOT NULL, issued_at TEXT NOT NULL, revoked_at TEXT, pem TEXT NOT NULL
   ) STRICT;
   CREATE INDEX certificates_sensor ON certificates(sensor_id);
   CREATE TABLE actions (
     id INTEGER PRIMARY KEY, sensor_id INTEGER NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
     created_at TEXT NOT NULL, created_by TEXT NOT NULL, delivered_at TEXT, done_at TEXT, ok INTEGER, message TEXT
   ) STRICT;
   CREATE INDEX actions_pending ON actions(sensor_id, status);
   CREATE TABLE captures (
     id TEXT PRIMARY KEY, sensor_id INTEGER NOT NULL, received_at INTEGER NOT NULL, ts_us INTEGER NOT NULL,
     severity INTEGER NOT NULL, category TEXT NOT NULL, user TEXT, host TEXT, url TEXT, phrase TEXT NOT NULL,
     triage TEXT, event TEXT NOT NULL
   ) STRICT;
   CREATE INDEX captures_ts ON captures(ts_us);
   CREATE INDEX captures_sensor_ts ON captures(sensor_id, ts_us);
   CREATE INDEX captures_severity ON captures(severity, ts_us);
   CREATE INDEX captures_category ON captures(category);
   CREATE INDEX captures_user ON captures(user);
   CREATE INDEX captures_host ON captures(host);
   CREATE TABLE heartbeat_last (
     sensor_id INTEGER PRIMARY KEY, at INTEGER NOT NULL, peer TEXT, body TEXT NOT NULL
   ) STRICT;
   CREATE TABLE heartbeat_history (
     id INTEGER PRIMARY KEY, sensor_id INTEGER NOT NULL, at INTEGER NOT NULL, body TEXT NOT NULL
   ) STRICT;
   CREATE INDEX heartbeat_history_sensor ON heartbeat_history(sensor_id, id);
   CREATE TABLE audit (
     id INTEGER PRIMARY KEY, at TEXT NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL, target TEXT,
     detail TEXT, peer TEXT
   ) STRICT;
   CREATE INDEX audit_at ON audit(at);`,
  // 2: the portal. Filter columns pulled out of the event (each with a (column, ts_us) index so a
  // filtered, time-ordered page is an index range, never a table scan), triage state, FTS5 over
  // phrase / context / url, notes, evidence (response bodies + rendered PNGs), per-day coverage.
  `ALTER TABLE captures ADD COLUMN source TEXT;
   ALTER TABLE captures ADD COLUMN device_ip TEXT;
   ALTER TABLE captures ADD COLUMN device_name TEXT;
   ALTER TABLE captures ADD COLUMN context TEXT;
   ALTER TABLE captures ADD COLUMN status TEXT NOT NULL DEFAULT 'open';
   UPDATE captures SET source = json_extract(event, '$.source'), device_ip = json_extract(event, '$.device.ip'),
     device_name = json_extract(event, '$.device.hostname'), context = json_extract(event, '$.context'),
     status = CASE json_extract(triage, '$.status') WHEN 'reviewed' THEN 'closed' WHEN 'dismissed' THEN 'false_positive'
       WHEN 'escalated' THEN 'escalated' ELSE 'open' END;
   DROP INDEX captures_category;
   DROP INDEX captures_user;
   DROP INDEX captures_host;
   CREATE INDEX captures_category_ts ON captures(category, ts_us);
   CREATE INDEX captures_user_ts ON captures(user, ts_us);
   CREATE INDEX captures_host_ts ON captures(host, ts_us);
   CREATE INDEX captures_device_ip_ts ON captures(device_ip, ts_us);
   CREATE INDEX captures_device_name_ts ON captures(device_name, ts_us);
   CREATE INDEX captures_source_ts ON captures(source, ts_us);
   CREATE INDEX captures_status_ts ON captures(status, ts_us);
   CREATE INDEX captures_phrase_ts ON captures(phrase, ts_us);
   CREATE VIRTUAL TABLE captures_fts USING fts5(phrase, context, url, content='captures', content_rowid='rowid');
   CREATE TRIGGER captures_fts_insert AFTER INSERT ON captures BEGIN
     INSERT INTO captures_fts (rowid, phrase, context, url) VALUES (new.rowid, new.phrase, new.context, new.url);
   END;
   CREATE TRIGGER captures_fts_delete AFTER DELETE ON captures BEGIN
     INSERT INTO captures_fts (captures_fts, rowid, phrase, context, url) VALUES ('delete', old.rowid, old.phrase, old.context, old.url);
   END;
   INSERT INTO captures_fts (captures_fts) VALUES ('rebuild');
   CREATE INDEX audit_target ON audit(target, id);
   CREATE TABLE capture_notes (
     id INTEGER PRIMARY KEY, capture_id TEXT NOT NULL, at TEXT NOT NULL, who TEXT NOT NULL, status TEXT NOT NULL, note TEXT NOT NULL
   ) STRICT;
   CREATE INDEX capture_notes_capture ON capture_notes(capture_id, id);
   CREATE TABLE evidence (
     capture_id TEXT PRIMARY KEY, sensor_id INTEGER NOT NULL, received_at INTEGER NOT NULL, content_type TEXT NOT NULL,
     charset TEXT, truncated INTEGER NOT NULL, body BLOB NOT NULL, body_bytes INTEGER NOT NULL,
     png_status TEXT NOT NULL, png BLOB, marks INTEGER, rendered_at INTEGER, error TEXT
   ) STRICT;
   CREATE INDEX evidence_status ON evidence(png_status, received_at);
   CREATE TABLE coverage_daily (
     sensor_id INTEGER NOT NULL, day TEXT NOT NULL, counter TEXT NOT NULL, value INTEGER NOT NULL,
     PRIMARY KEY (sensor_id, day, counter)
   ) STRICT;`,
  // 3: a sensor's inspection settings (merge window, body limit) set at home; '{}' keeps the sensor's defaults.
  `ALTER TABLE sensors ADD COLUMN inspection TEXT NOT NULL DEFAULT '{}';`,
];

export interface Statement {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

export interface Database {
  pragma(sql: string, opts?: { simple?: boolean }): unknown;
  exec(sql: string): void;
  prepare(sql: string): Statement;
  transaction<T extends (...args: never[]) => unknown>(fn: T): T;
  close(): void;
}

export class HomeStoreError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export type Role = 'admin' | 'lead' | 'readonly';
export const ROLES: readonly Role[] = ['admin', 'lead', 'readonly'];

export interface OperatorRow {
  id: number; name: string; role: Role; hash: string; must_change_password: number; created_at: string; updated_at: string;
}

export interface SensorRow {
  id: number; name: string; site: string; interfaces: string; bpf: string; monitored: string; ignored: string;
  dictionary: string; allow_list: string; blocklists: string; identity_map: string; outputs: string; retention: string;
  inspection: string; alert_email: string; config_version: number; uuid: string | null; hostname: string | null; cert_serial: string | null;
  enrolled_at: string | null; bundle_version: number | null; bundle_at: string | null; created_at: string; updated_at: string;
}

/** The definition fields an operator edits; JSON columns are passed already serialised. */
export const SENSOR_FIELDS = [
  'name', 'site', 'interfaces', 'bpf', 'monitored', 'ignored', 'dictionary', 'allow_list', 'blocklists',
  'identity_map', 'outputs', 'retention', 'inspection', 'alert_email',
] as const;
export type SensorField = typeof SENSOR_FIELDS[number];

export interface DictionaryRow { name: string; format: string; text: string; phrases: number; updated_at: string }
export interface SiteKeyRow { id: number; label: string; salt: string; key_hash: string; created_at: string; created_by: string; revoked_at: string | null }
export interface EnrolmentRow {
  id: number; code: string; poll_hash: string; uuid: string; hostname: string; csr: string; status: string;
  sensor_id: number | null; certificate: string | null; peer: string | null; created_at: number; expires_at: number;
  decided_by: string | null; decided_at: string | null;
}
export interface CertificateRow { serial: string; sensor_id: number; uuid: string; not_before: string; not_after: string; issued_at: string; revoked_at: string | null; pem: string }
export interface ActionRow { id: number; sensor_id: number; kind: string; status: string; created_at: string; created_by: string; delivered_at: string | null; done_at: string | null; ok: number | null; message: string | null }
export interface AuditRow { id: number; at: string; who: string; action: string; target: string | null; detail: string | null; peer: string | null }
export interface CaptureRow {
  id: string; sensor_id: number; received_at: number; ts_us: number; severity: number; category: string; user: string | null; host: string | null;
  url: string | null; phrase: string; triage: string | null; event: string; source: string | null; device_ip: string | null; device_name: string | null;
  context: string | null; status: string;
}

/** A capture as ingest stores it: the indexed columns plus the full JSON text. */
export interface CaptureInsert {
  id: string; ts_us: number; severity: number; category: string; user: string | null; host: string | null; url: string | null; phrase: string; event: string;
  source?: string | null; device_ip?: string | null; device_name?: string | null; context?: string | null;
}

export interface CaptureQuery { since_us?: number; until_us?: number; sensor_id?: number; min_severity?: number; category?: string; limit: number }

const iso = (ms = Date.now()): string => new Date(ms).toISOString();

export class HomeStore {
  private readonly db: Database;
  private readonly insertCapture: Statement;
  private readonly ingestTx: (sensorId: number, rows: readonly CaptureInsert[], now: number) => { added: number; updated: number };
  private readonly heartbeatTx: (sensorId: number, at: number, peer: string, body: string, summary: string) => void;
  private readonly heartbeatsSinceTrim = new Map<number, number>();
  private readonly trimHistory: Statement;

  constructor(readonly path: string, readonly historyPerSensor = HEARTBEAT_HISTORY_PER_SENSOR) {
    try {
      touchPrivateFile(path);
      const Sqlite = require('better-sqlite3') as new (file: string) => Database;
      this.db = new Sqlite(path);
    } catch (err) {
      throw new HomeStoreError('E_STORE_OPEN', `Cannot open home database "${path}": ${(err as Error).message}`, { cause: err });
    }
    this.db.pragma('journal_mode = WAL');
    // FULL: a commit is fsynced before it returns. Home acknowledges an upload once its transaction
    // commits and the sensor then marks those captures uploaded and may evict them; under NORMAL
    // a power loss can roll back the last commits in the WAL, and the captures would be gone from
    // both ends. The sensor's own store is FULL for the same reason.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    for (const suffix of ['-wal', '-shm']) if (existsSync(path + suffix)) chmodSync(path + suffix, 0o600);
    this.insertCapture = this.db.prepare(
      `INSERT INTO captures (id, sensor_id, received_at, ts_us, severity, category, user, host, url, phrase, event, source, device_ip, device_name, context)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`,
    );
    // A capture sent again by the sensor that sent it, because its merge window closed with a larger
    // count (the phrase repeated on the page): the stored event takes the final count.
    const growCapture = this.db.prepare(
      `UPDATE captures SET event = ? WHERE id = ? AND sensor_id = ?
         AND coalesce(json_extract(?, '$.count'), 0) > coalesce(json_extract(event, '$.count'), 0)`,
    );
    this.ingestTx = this.db.transaction((sensorId: number, rows: readonly CaptureInsert[], now: number) => {
      let added = 0;
      let updated = 0;
      for (const c of rows) {
        const n = this.insertCapture.run(c.id, sensorId, now, c.ts_us, c.severity, c.category, c.user, c.host, c.url, c.phrase, c.event,
          c.source ?? null, c.device_ip ?? null, c.device_name ?? null, c.context ?? null).changes;
        if (n > 0) added++;
        else updated += growCapture.run(c.event, c.id, sensorId, c.event).changes;
      }
      return { added, updated };
    });
    const upsertLast = this.db.prepare(
      `INSERT INTO heartbeat_last (sensor_id, at, peer, body) VALUES (?, ?, ?, ?)
       ON CONFLICT(sensor_id) DO UPDATE SET at = excluded.at, peer = excluded.peer, body = excluded.body`,
    );
    const insertHistory = this.db.prepare('INSERT INTO heartbeat_history (sensor_id, at, body) VALUES (?, ?, ?)');
    this.heartbeatTx = this.db.transaction((sensorId: number, at: number, peer: string, body: string, summary: string) => {
      upsertLast.run(sensorId, at, peer, body);
      insertHistory.run(sensorId, at, summary);
    });
    this.trimHistory = this.db.prepare(`DELETE FROM heartbeat_history WHERE sensor_id = ? AND id < (
      SELECT id FROM heartbeat_history WHERE sensor_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`);
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  private migrate(): void {
    const have = this.schemaVersion;
    if (have > MIGRATIONS.length) {
      throw new HomeStoreError('E_STORE_SCHEMA', `Cannot use home database "${this.path}": schema version ${have} is newer than this Hark (${MIGRATIONS.length})`);
    }
    for (let v = have; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  close(): void {
    this.db.close();
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  // ---- settings ----
  getSetting(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setSetting(key: string, value: string): void {
    this.db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  // ---- operators ----
  operatorCount(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM operators').get() as { n: number }).n;
  }

  adminCount(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM operators WHERE role = 'admin'").get() as { n: number }).n;
  }

  operatorByName(name: string): OperatorRow | undefined {
    return this.db.prepare('SELECT * FROM operators WHERE name = ?').get(name) as OperatorRow | undefined;
  }

  operatorById(id: number): OperatorRow | undefined {
    return this.db.prepare('SELECT * FROM operators WHERE id = ?').get(id) as OperatorRow | undefined;
  }

  listOperators(): OperatorRow[] {
    return this.db.prepare('SELECT * FROM operators ORDER BY name').all() as OperatorRow[];
  }

  addOperator(name: string, role: Role, hash: string, mustChange: boolean): number {
    const now = iso();
    return Number(this.db.prepare('INSERT INTO operators (name, role, hash, must_change_password, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(name, role, hash, mustChange ? 1 : 0, now, now).lastInsertRowid);
  }

  updateOperator(id: number, fields: { role?: Role; hash?: string; must_change_password?: boolean }): void {
    const sets: string[] = [];
    const vals: unknown[] = [];
    if (fields.role !== undefined) { sets.push('role = ?'); vals.push(fields.role); }
    if (fields.hash !== undefined) { sets.push('hash = ?'); vals.push(fields.hash); }
    if (fields.must_change_password !== undefined) { sets.push('must_change_password = ?'); vals.push(fields.must_change_password ? 1 : 0); }
    if (sets.length === 0) return;
    sets.push('updated_at = ?');
    vals.push(iso(), id);
    this.db.prepare(`UPDATE operators SET ${sets.join(', ')} WHERE id = ?`).run(...vals);
  }

  deleteOperator(id: number): void {
    this.db.prepare('DELETE FROM operators WHERE id = ?').run(id);
  }

  // ---- sessions ----
  addSession(tokenHash: string, operatorId: number, expiresAt: number, peer: string): void {
    this.db.prepare('INSERT INTO sessions (token_hash, operator_id, created_at, expires_at, peer) VALUES (?, ?, ?, ?, ?)')
      .run(tokenHash, operatorId, Date.now(), expiresAt, peer);
  }

  sessionOperator(tokenHash: string, now: number): OperatorRow | undefined {
    return this.db.prepare('SELECT o.* FROM sessions s JOIN operators o ON o.id = s.operator_id WHERE s.token_hash = ? AND s.expires_at > ?')
      .get(tokenHash, now) as OperatorRow | undefined;
  }

  deleteSession(tokenHash: string): void {
    this.db.prepare('DELETE FROM sessions WHERE token_hash = ?').run(tokenHash);
  }

  deleteSessionsOf(operatorId: number, exceptHash?: string): void {
    this.db.prepare('DELETE FROM sessions WHERE operator_id = ? AND token_hash <> ?').run(operatorId, exceptHash ?? '');
  }

  purgeSessions(now: number): void {
    this.db.prepare('DELETE FROM sessions WHERE expires_at <= ?').run(now);
  }

  // ---- dictionaries ----
  putDictionary(name: string, format: string, text: string, phrases: number): void {
    this.db.prepare(`INSERT INTO dictionaries (name, format, text, phrases, updated_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT(name) DO UPDATE SET format = excluded.format, text = excluded.text, phrases = excluded.phrases, updated_at = excluded.updated_at`)
      .run(name, format, text, phrases, iso());
  }

  dictionary(name: string): DictionaryRow | undefined {
    return this.db.prepare('SELECT * FROM dictionaries WHERE name = ?').get(name) as DictionaryRow | undefined;
  }

  listDictionaries(): Array<Omit<DictionaryRow, 'text'> & { bytes: number; sensors: number }> {
    return this.db.prepare(`SELECT d.name, d.format, d.phrases, d.updated_at, length(CAST(d.text AS BLOB)) AS bytes,
      (SELECT count(*) FROM sensors s WHERE s.dictionary = d.name) AS sensors FROM dictionaries d ORDER BY d.name`).all() as Array<Omit<DictionaryRow, 'text'> & { bytes: number; sensors: number }>;
  }

  deleteDictionary(name: string): void {
    this.db.prepare('DELETE FROM dictionaries WHERE name = ?').run(name);
  }

  /** Bumps config_version of every sensor using dictionary `name`; returns how many. */
  bumpSensorsUsing(name: string): number {
    return this.db.prepare('UPDATE sensors SET config_version = config_version + 1, updated_at = ? WHERE dictionary = ?').run(iso(), name).changes;
  }

  bumpAllSensors(): number {
    return this.db.prepare('UPDATE sensors SET config_version = config_version + 1, updated_at = ?').run(iso()).changes;
  }

  // ---- sensors ----
  addSensor(fields: Partial<Record<SensorField, string>> & { name: string }): number {
    const cols = SENSOR_FIELDS.filter((f) => fields[f] !== undefined);
    const now = iso();
    return Number(this.db.prepare(`INSERT INTO sensors (${cols.join(', ')}, created_at, updated_at) VALUES (${cols.map(() => '?').join(', ')}, ?, ?)`)
      .run(...cols.map((c) => fields[c]), now, now).lastInsertRowid);
  }

  /** Updates definition fields and bumps config_version; returns false when no such sensor. */
  updateSensor(id: number, fields: Partial<Record<SensorField, string>>): boolean {
    const cols = SENSOR_FIELDS.filter((f) => fields[f] !== undefined);
    return this.db.prepare(`UPDATE sensors SET ${cols.map((c) => `${c} = ?, `).join('')}config_version = config_version + 1, updated_at = ? WHERE id = ?`)
      .run(...cols.map((c) => fields[c]), iso(), id).changes > 0;
  }

  sensor(id: number): SensorRow | undefined {
    return this.db.prepare('SELECT * FROM sensors WHERE id = ?').get(id) as SensorRow | undefined;
  }

  listSensors(): SensorRow[] {
    return this.db.prepare('SELECT * FROM sensors ORDER BY id').all() as SensorRow[];
  }

  deleteSensor(id: number): void {
    this.db.prepare('DELETE FROM sensors WHERE id = ?').run(id);
    this.db.prepare('UPDATE certificates SET revoked_at = ? WHERE sensor_id = ? AND revoked_at IS NULL').run(iso(), id);
    this.db.prepare("UPDATE actions SET status = 'cancelled' WHERE sensor_id = ? AND status = 'pending'").run(id);
    this.db.prepare('DELETE FROM heartbeat_last WHERE sensor_id = ?').run(id);
  }

  noteBundleServed(id: number, version: number): void {
    this.db.prepare('UPDATE sensors SET bundle_version = ?, bundle_at = ? WHERE id = ?').run(version, iso(), id);
  }

  // ---- site keys ----
  activeSiteKeys(): SiteKeyRow[] {
    return this.db.prepare('SELECT * FROM site_keys WHERE revoked_at IS NULL').all() as SiteKeyRow[];
  }

  listSiteKeys(): SiteKeyRow[] {
    return this.db.prepare('SELECT * FROM site_keys ORDER BY id').all() as SiteKeyRow[];
  }

  addSiteKey(label: string, salt: string, keyHash: string, by: string): number {
    return Number(this.db.prepare('INSERT INTO site_keys (label, salt, key_hash, created_at, created_by) VALUES (?, ?, ?, ?, ?)')
      .run(label, salt, keyHash, iso(), by).lastInsertRowid);
  }

  revokeSiteKey(id: number): boolean {
    return this.db.prepare('UPDATE site_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(iso(), id).changes > 0;
  }

  // ---- enrolments ----
  addEnrolment(e: { code: string; poll_hash: string; uuid: string; hostname: string; csr: string; peer: string; created_at: number; expires_at: number }): number {
    return Number(this.db.prepare(`INSERT INTO enrolments (code, poll_hash, uuid, hostname, csr, status, peer, created_at, expires_at)
      VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)`).run(e.code, e.poll_hash, e.uuid, e.hostname, e.csr, e.peer, e.created_at, e.expires_at).lastInsertRowid);
  }

  enrolmentByPoll(pollHash: string): EnrolmentRow | undefined {
    return this.db.prepare('SELECT * FROM enrolments WHERE poll_hash = ?').get(pollHash) as EnrolmentRow | undefined;
  }

  enrolmentByCode(code: string): EnrolmentRow | undefined {
    return this.db.prepare('SELECT * FROM enrolments WHERE code = ?').get(code) as EnrolmentRow | undefined;
  }

  pendingEnrolmentCount(now: number): number {
    return (this.db.prepare("SELECT count(*) AS n FROM enrolments WHERE status = 'pending' AND expires_at > ?").get(now) as { n: number }).n;
  }

  listEnrolments(status: string | undefined, limit: number): EnrolmentRow[] {
    if (status === undefined) return this.db.prepare('SELECT * FROM enrolments ORDER BY id DESC LIMIT ?').all(limit) as EnrolmentRow[];
    return this.db.prepare('SELECT * FROM enrolments WHERE status = ? ORDER BY id DESC LIMIT ?').all(status, limit) as EnrolmentRow[];
  }

  decideEnrolment(id: number, status: 'approved' | 'rejected', by: string, sensorId: number | null, certificate: string | null): void {
    this.db.prepare('UPDATE enrolments SET status = ?, decided_by = ?, decided_at = ?, sensor_id = ?, certificate = ? WHERE id = ?')
      .run(status, by, iso(), sensorId, certificate, id);
  }

  expireEnrolments(now: number): number {
    return this.db.prepare("UPDATE enrolments SET status = 'expired' WHERE status = 'pending' AND expires_at <= ?").run(now).changes;
  }

  // ---- certificates ----
  /**
   * Records a newly issued certificate as the sensor's only valid one: revokes every earlier
   * certificate of that sensor, sets uuid / hostname / serial and bumps config_version.
   * Returns the serials revoked.
   */
  recordEnrolment(sensorId: number, uuid: string, hostname: string, cert: { serial: string; pem: string; notBefore: Date; notAfter: Date }): string[] {
    return this.transaction(() => {
      const now = iso();
      const old = (this.db.prepare('SELECT serial FROM certificates WHERE sensor_id = ? AND revoked_at IS NULL').all(sensorId) as Array<{ serial: string }>).map((r) => r.serial);
      this.db.prepare('UPDATE certificates SET revoked_at = ? WHERE sensor_id = ? AND revoked_at IS NULL').run(now, sensorId);
      this.db.prepare('INSERT INTO certificates (serial, sensor_id, uuid, not_before, not_after, issued_at, pem) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(cert.serial, sensorId, uuid, cert.notBefore.toISOString(), cert.notAfter.toISOString(), now, cert.pem);
      this.db.prepare('UPDATE sensors SET uuid = ?, hostname = ?, cert_serial = ?, enrolled_at = ?, config_version = config_version + 1, updated_at = ? WHERE id = ?')
        .run(uuid, hostname, cert.serial, now, now, sensorId);
      return old;
    });
  }

  certificate(serial: string): CertificateRow | undefined {
    return this.db.prepare('SELECT * FROM certificates WHERE serial = ?').get(serial) as CertificateRow | undefined;
  }

  // ---- actions ----
  addAction(sensorId: number, kind: string, by: string): number {
    return Number(this.db.prepare("INSERT INTO actions (sensor_id, kind, status, created_at, created_by) VALUES (?, ?, 'pending', ?, ?)")
      .run(sensorId, kind, iso(), by).lastInsertRowid);
  }

  pendingActions(sensorId: number): ActionRow[] {
    return this.db.prepare("SELECT * FROM actions WHERE sensor_id = ? AND status = 'pending' ORDER BY id").all(sensorId) as ActionRow[];
  }

  markDelivered(ids: readonly number[]): void {
    const st = this.db.prepare('UPDATE actions SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL');
    const now = iso();
    for (const id of ids) st.run(now, id);
  }

  action(id: number): ActionRow | undefined {
    return this.db.prepare('SELECT * FROM actions WHERE id = ?').get(id) as ActionRow | undefined;
  }

  listActions(sensorId: number, limit: number): ActionRow[] {
    return this.db.prepare('SELECT * FROM actions WHERE sensor_id = ? ORDER BY id DESC LIMIT ?').all(sensorId, limit) as ActionRow[];
  }

  finishAction(id: number, ok: boolean, message: string | null): boolean {
    return this.db.prepare("UPDATE actions SET status = ?, ok = ?, message = ?, done_at = ? WHERE id = ? AND status = 'pending'")
      .run(ok ? 'done' : 'failed', ok ? 1 : 0, message, iso(), id).changes > 0;
  }

  // ---- captures ----
  /**
   * Stores new captures in one transaction: how many were new, and how many this sensor had sent
   * before with a smaller count (updated to the larger); the rest were already stored as they are.
   */
  ingestCaptures(sensorId: number, rows: readonly CaptureInsert[], now = Date.now()): { added: number; updated: number } {
    return this.ingestTx(sensorId, rows, now);
  }

  captures(q: CaptureQuery): CaptureRow[] {
    const where: string[] = [];
    const vals: unknown[] = [];
    if (q.since_us !== undefined) { where.push('ts_us >= ?'); vals.push(q.since_us); }
    if (q.until_us !== undefined) { where.push('ts_us < ?'); vals.push(q.until_us); }
    if (q.sensor_id !== undefined) { where.push('sensor_id = ?'); vals.push(q.sensor_id); }
    if (q.min_severity !== undefined) { where.push('severity >= ?'); vals.push(q.min_severity); }
    if (q.category !== undefined) { where.push('category = ?'); vals.push(q.category); }
    vals.push(Math.min(q.limit, MAX_LIST_LIMIT));
    return this.db.prepare(`SELECT * FROM captures ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ts_us DESC, id LIMIT ?`).all(...vals) as CaptureRow[];
  }

  capture(id: string): CaptureRow | undefined {
    return this.db.prepare('SELECT * FROM captures WHERE id = ?').get(id) as CaptureRow | undefined;
  }

  /** Sets the triage JSON and the indexed state (open, closed, false_positive, escalated). */
  setTriage(id: string, triage: string, status: string): boolean {
    return this.db.prepare('UPDATE captures SET triage = ?, status = ? WHERE id = ?').run(triage, status, id).changes > 0;
  }

  /** The underlying connection, for the portal's queries (home/portal/queries.ts). */
  get sql(): Database {
    return this.db;
  }

  captureCount(sensorId?: number): number {
    if (sensorId === undefined) return (this.db.prepare('SELECT count(*) AS n FROM captures').get() as { n: number }).n;
    return (this.db.prepare('SELECT count(*) AS n FROM captures WHERE sensor_id = ?').get(sensorId) as { n: number }).n;
  }

  // ---- heartbeats ----
  /**
   * Stores a heartbeat as the sensor's last (`body`) and in its history (`summary`), trimming the
   * sensor's history to `historyPerSensor` rows every HEARTBEAT_TRIM_EVERY of its heartbeats.
   */
  addHeartbeat(sensorId: number, at: number, peer: string, body: string, summary: string = body): void {
    this.heartbeatTx(sensorId, at, peer, body, summary);
    const n = (this.heartbeatsSinceTrim.get(sensorId) ?? 0) + 1;
    if (n >= HEARTBEAT_TRIM_EVERY) {
      this.heartbeatsSinceTrim.set(sensorId, 0);
      this.trimHeartbeats(sensorId);
    } else {
      this.heartbeatsSinceTrim.set(sensorId, n);
    }
  }

  trimHeartbeats(sensorId: number): void {
    this.trimHistory.run(sensorId, sensorId, this.historyPerSensor - 1);
  }

  lastHeartbeat(sensorId: number): { at: number; peer: string | null; body: string } | undefined {
    return this.db.prepare('SELECT at, peer, body FROM heartbeat_last WHERE sensor_id = ?').get(sensorId) as { at: number; peer: string | null; body: string } | undefined;
  }

  heartbeatHistory(sensorId: number, limit: number): Array<{ at: number; body: string }> {
    return this.db.prepare('SELECT at, body FROM heartbeat_history WHERE sensor_id = ? ORDER BY id DESC LIMIT ?').all(sensorId, limit) as Array<{ at: number; body: string }>;
  }

  heartbeatHistoryCount(sensorId: number): number {
    return (this.db.prepare('SELECT count(*) AS n FROM heartbeat_history WHERE sensor_id = ?').get(sensorId) as { n: number }).n;
  }

  // ---- audit ----
  audit(who: string, action: string, target: string | null, detail: unknown, peer: string | null): void {
    this.db.prepare('INSERT INTO audit (at, who, action, target, detail, peer) VALUES (?, ?, ?, ?, ?, ?)')
      .run(iso(), who, action, target, detail === undefined ? null : JSON.stringify(detail), peer);
  }

  listAudit(q: { since?: string; action?: string; limit: number }): AuditRow[] {
    const where: string[] = [];
    const vals: unknown[] = [];
    if (q.since !== undefined) { where.push('at >= ?'); vals.push(q.since); }
    if (q.action !== undefined) { where.push('action = ?'); vals.push(q.action); }
    vals.push(Math.min(q.limit, MAX_LIST_LIMIT));
    return this.db.prepare(`SELECT * FROM audit ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`).all(...vals) as AuditRow[];
  }
}

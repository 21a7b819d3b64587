/**
 * Durable capture store: SQLite (better-sqlite3) in WAL mode with a versioned schema.
 * Input: capture events. Output: rows committed in batches inside one transaction each; `flush()`
 * returns only once they are on disk (synchronous=FULL), so a capture is never acknowledged before
 * it is stored. The same capture id again updates the row when its count grew (a merged repeat)
 * and is otherwise a no-op (ids are stable for the same input, so a re-scan adds nothing).
 * The database file and its WAL are created mode 0600 in a directory of mode 0700: captures hold
 * children's data.
 */
import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { CaptureEvent } from '../events/capture.js';
import { ensurePrivateDir } from './private-dir.js';

const require = createRequire(import.meta.url);

/** Captures written per transaction: fsync once per batch rather than per row. */
const BATCH_ROWS = 500;

/** Schema migrations, in order; `PRAGMA user_version` records how many have run. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE captures (
     id TEXT PRIMARY KEY,
     ts_us INTEGER NOT NULL,
     timestamp TEXT NOT NULL,
     flow_id INTEGER NOT NULL,
     src_ip TEXT NOT NULL, src_port INTEGER NOT NULL, dest_ip TEXT NOT NULL, dest_port INTEGER NOT NULL,
     vlan TEXT, app_proto TEXT NOT NULL, direction TEXT NOT NULL, source TEXT NOT NULL, field TEXT NOT NULL,
     host TEXT, url TEXT, method TEXT, status INTEGER,
     phrase TEXT NOT NULL, category TEXT NOT NULL, severity INTEGER NOT NULL, count INTEGER NOT NULL,
     context TEXT NOT NULL,
     device_ip TEXT NOT NULL, device_mac TEXT, device_hostname TEXT, device_user TEXT,
     event TEXT NOT NULL,
     stored_at INTEGER NOT NULL,
     uploaded_at INTEGER
   ) STRICT;
   CREATE INDEX captures_ts ON captures(ts_us);
   CREATE INDEX captures_outbox ON captures(uploaded_at, severity DESC, ts_us);`,
];

interface Statement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

interface Database {
  pragma(sql: string, opts?: { simple?: boolean }): unknown;
  exec(sql: string): void;
  prepare(sql: string): Statement;
  transaction<T extends (...args: never[]) => unknown>(fn: T): T;
  close(): void;
}

export class StoreError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class CaptureStore {
  private readonly db: Database;
  private readonly insert: Statement;
  private readonly pending: CaptureEvent[] = [];
  private readonly commit: (rows: CaptureEvent[]) => number;
  stored = 0;

  constructor(readonly path: string) {
    const dir = dirname(path);
    try {
      ensurePrivateDir(dir);
      // Create the file with owner-only permissions before SQLite opens it with the umask's.
      closeSync(openSync(path, 'a', 0o600));
      chmodSync(path, 0o600);
      const Sqlite = require('better-sqlite3') as new (file: string) => Database;
      this.db = new Sqlite(path);
    } catch (err) {
      throw new StoreError('E_STORE_OPEN', `Cannot open capture store "${path}": ${(err as Error).message}`, { cause: err });
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.migrate();
    for (const suffix of ['-wal', '-shm']) if (existsSync(path + suffix)) chmodSync(path + suffix, 0o600);
    this.insert = this.db.prepare(
      `INSERT INTO captures (id, ts_us, timestamp, flow_id, src_ip, src_port, dest_ip, dest_port, vlan, app_proto,
         direction, source, field, host, url, method, status, phrase, category, severity, count, context,
         device_ip, device_mac, device_hostname, device_user, event, stored_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET count = excluded.count, event = excluded.event
         WHERE excluded.count > captures.count`,
    );
    this.commit = this.db.transaction((rows: CaptureEvent[]) => {
      let n = 0;
      const now = Date.now();
      for (const c of rows) {
        n += this.insert.run(
          c.id, c.ts_us, c.timestamp, c.flow_id, c.src_ip, c.src_port, c.dest_ip, c.dest_port,
          c.vlan.length > 0 ? c.vlan.join('/') : null, c.app_proto, c.direction, c.source, c.field,
          c.host ?? null, c.url ?? null, c.method ?? null, c.status ?? null, c.phrase, c.category, c.severity, c.count,
          c.context, c.device.ip, c.device.mac ?? null, c.device.hostname ?? null, c.device.user ?? null,
          JSON.stringify(c), now,
        ).changes;
      }
      return n;
    });
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  private migrate(): void {
    const have = this.schemaVersion;
    if (have > MIGRATIONS.length) {
      throw new StoreError('E_STORE_SCHEMA', `Capture store "${this.path}" has schema version ${have}, newer than this Hark (${MIGRATIONS.length})`);
    }
    for (let v = have; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  add(capture: CaptureEvent): void {
    this.pending.push(capture);
    if (this.pending.length >= BATCH_ROWS) this.flush();
  }

  /** Commits what is pending; returns once it is durable. */
  flush(): void {
    if (this.pending.length === 0) return;
    const rows = this.pending.splice(0);
    this.stored += this.commit(rows);
  }

  /** The stored count of one capture, or undefined. */
  countOf(id: string): number | undefined {
    return (this.db.prepare('SELECT count FROM captures WHERE id = ?').get(id) as { count: number } | undefined)?.count;
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM captures').get() as { n: number }).n;
  }

  close(): void {
    this.flush();
    this.db.close();
  }
}

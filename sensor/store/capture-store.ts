/**
 * Durable capture store and upload outbox: SQLite (better-sqlite3) in WAL mode, synchronous=FULL,
 * versioned schema. Input: capture events (`add`). Output: rows committed in batches, one
 * transaction each; `flush()` returns the rows it committed only once they are on disk, and
 * `onCommitted` listeners see each committed batch, so nothing is acknowledged before it is stored.
 * The same capture id again updates the row when its count grew (a merged repeat), else is a no-op;
 * an update to a capture already uploaded puts it back in the outbox, so home gets the final count,
 * and marking uploaded marks only the count that was sent (one that grew in flight is sent again).
 * Outbox: un-uploaded captures, severity 4-5 first, each tier in time order, through partial
 * indexes. Space: an optional quota (`maxBytes`); when full, the oldest uploaded captures go first;
 * un-uploaded ones are never deleted to make room (they wait in memory, bounded, instead). When the
 * disk itself is full, a reserve file beside the database is given back so that what home
 * acknowledged can always be written (marked, or deleted when not even that fits: home has it),
 * and the database stops growing, reusing what deletes free, until the disk has room again.
 * The database, WAL and shm are mode 0600 in a 0700 directory: captures hold children's data.
 */
import { chmodSync, closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { CaptureEvent, Evidence } from '../events/capture.js';
import { Counters, defineCounter } from '../events/counters.js';
import { healthEvent, type HealthSink } from '../events/health.js';
import { rememberJson } from '../events/json-text.js';
import { ensurePrivateDir } from './private-dir.js';
import { SpaceReserve } from './space-reserve.js';

const require = createRequire(import.meta.url);

/** Captures written per transaction: fsync once per batch rather than per row. */
const BATCH_ROWS = 500;
/** Uploaded captures deleted per step when the store is full: small enough to keep the writer lock short. */
const EVICT_BATCH_ROWS = 1000;
/** Acknowledged captures deleted per transaction when the disk is too full even to mark them (see
 * markUploaded): each delete is checkpointed before the next, so a few pages of WAL suffice. */
const FORGET_BATCH_ROWS = 50;
/** Rows deleted per retention transaction: the sensor keeps committing between batches. */
const PURGE_BATCH_ROWS = 1000;
/** Deleting at least this many rows checkpoints the WAL (TRUNCATE) so the freed space shows on disk. */
const CHECKPOINT_AFTER_ROWS = 10_000;
/** How long a commit waits for a write lock held by another connection (opening waits SQLite's 5 s). */
export const COMMIT_BUSY_TIMEOUT_MS = 100;

/** Captures kept in memory while nothing can be committed (disk full, nothing uploaded left to
 * delete): about 2 KiB each, so ~40 MiB at worst. Past it the least severe, newest go (`store.dropped`). */
export const MAX_HELD_CAPTURES = 20_000;
/** Share of the quota kept back from new captures so marking uploaded (which must succeed for space
 * ever to come back) has room to write. */
const QUOTA_RESERVE_FRACTION = 1 / 32;
const QUOTA_RESERVE_MIN_PAGES = 8;
/** max_page_count meaning no limit: SQLite lowers it to its own maximum. */
const UNLIMITED_PAGES = 4_294_967_294;
const DEFAULT_RETENTION_DAYS = 30;
const DAY_MS = 86_400_000;

const C_COMMITTED = defineCounter('store.committed');
const C_FULL = defineCounter('store.full');
const C_EVICTED = defineCounter('store.evicted');
const C_HELD = defineCounter('store.held');
const C_DROPPED = defineCounter('store.dropped');
const C_PURGED = defineCounter('store.purged');
const C_UPLOADED = defineCounter('store.uploaded');
const C_QUARANTINED = defineCounter('store.quarantined');
const C_LISTENER_ERRORS = defineCounter('store.listener_errors');
const C_RESERVE_RELEASED = defineCounter('store.reserve_released');
/**
 * A store write failed for a reason other than a full store (I/O error, database locked): counted
 * by whoever catches it (add() here, the service's timers for flush and retention); rows are held and retried.
 */
export const C_STORE_WRITE_ERROR = defineCounter('store.write_error');

/** Predicates of the partial indexes; queries repeat them verbatim so SQLite can use the index. */
const PENDING = 'uploaded_at IS NULL AND quarantined_at IS NULL';
const URGENT = `${PENDING} AND severity >= 4`;
const ROUTINE = `${PENDING} AND severity < 4`;
const UPLOADED = 'uploaded_at IS NOT NULL';
/** The outbox's and eviction's reads, each through its partial index; queryPlan explains these same statements. */
const PLANNED_SQL = {
  'outbox-urgent': `SELECT event FROM capture_rows INDEXED BY captures_pending_urgent WHERE ${URGENT} ORDER BY ts_us LIMIT ?`,
  'outbox-routine': `SELECT event FROM capture_rows INDEXED BY captures_pending_routine WHERE ${ROUTINE} ORDER BY ts_us LIMIT ?`,
  evict: `SELECT rowid FROM capture_rows INDEXED BY captures_uploaded WHERE ${UPLOADED} ORDER BY ts_us LIMIT ?`,
} as const;

/** Schema migrations, in order; `PRAGMA user_version` records how many have run. Append only.
 * Exported for the upgrade tests, which build older versions from them. */
export const MIGRATIONS: readonly string[] = [
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
  // Outbox and retention through partial indexes: the pending ones hold only what is still to be
  // sent (small, and shrinking as uploads succeed); the uploaded one orders what may be deleted.
  `ALTER TABLE captures ADD COLUMN quarantined_at INTEGER;
   ALTER TABLE captures ADD COLUMN quarantine_reason TEXT;
   DROP INDEX captures_outbox;
   CREATE INDEX captures_pending_urgent ON captures(ts_us) WHERE ${URGENT};
   CREATE INDEX captures_pending_routine ON captures(ts_us) WHERE ${ROUTINE};
   CREATE INDEX captures_uploaded ON captures(ts_us) WHERE ${UPLOADED};`,
  // 3: the page a viewed capture came from (home renders it), compressed, deleted with its capture.
  `CREATE TABLE evidence (
     capture_id TEXT PRIMARY KEY REFERENCES captures(id) ON DELETE CASCADE,
     content_type TEXT NOT NULL, charset TEXT, body BLOB NOT NULL, truncated INTEGER NOT NULL,
     uploaded_at INTEGER
   ) STRICT;
   CREATE INDEX evidence_pending ON evidence(capture_id) WHERE uploaded_at IS NULL;`,
  // 4: every field is stored once, in the event JSON. The table becomes `capture_rows`, with only
  // what the store itself filters, orders or updates on as columns; `captures` is now a view with
  // every column it had, read from the JSON, so an operator's `SELECT phrase, src_ip FROM captures`
  // still works. Measured per insert (this store, 100k captures of ~1 KB, tmpfs, A/B): 21-25 us
  // with every field stored twice, 16-19 us now, and a quarter less on disk. Virtual generated
  // columns were tried instead of the view and were slower than the duplicated columns: SQLite
  // computes them on insert, parsing the JSON once per column. SQLite's table rebuild: the caller
  // turns foreign keys off around it; renaming first carries evidence's reference over to
  // `capture_rows`, which then names the new table, and dropping the old one does not cascade.
  `ALTER TABLE captures RENAME TO capture_rows;
   CREATE TABLE capture_rows_v4 (
     id TEXT PRIMARY KEY,
     ts_us INTEGER NOT NULL,
     category TEXT NOT NULL,
     severity INTEGER NOT NULL,
     count INTEGER NOT NULL,
     event TEXT NOT NULL,
     stored_at INTEGER NOT NULL,
     uploaded_at INTEGER,
     quarantined_at INTEGER,
     quarantine_reason TEXT
   ) STRICT;
   INSERT INTO capture_rows_v4 (id, ts_us, category, severity, count, event, stored_at, uploaded_at, quarantined_at, quarantine_reason)
     SELECT id, ts_us, category, severity, count, event, stored_at, uploaded_at, quarantined_at, quarantine_reason FROM capture_rows;
   DROP TABLE capture_rows;
   ALTER TABLE capture_rows_v4 RENAME TO capture_rows;
   CREATE INDEX captures_ts ON capture_rows(ts_us);
   CREATE INDEX captures_pending_urgent ON capture_rows(ts_us) WHERE ${URGENT};
   CREATE INDEX captures_pending_routine ON capture_rows(ts_us) WHERE ${ROUTINE};
   CREATE INDEX captures_uploaded ON capture_rows(ts_us) WHERE ${UPLOADED};
   CREATE VIEW captures AS SELECT
     id, ts_us,
     ${jsonColumns(['timestamp', 'flow_id', 'src_ip', 'src_port', 'dest_ip', 'dest_port'])},
     nullif(replace(trim(event->>'$.vlan', '[]'), ',', '/'), '') AS vlan,
     ${jsonColumns(['app_proto', 'direction', 'source', 'field', 'host', 'url', 'method', 'status', 'phrase'])},
     category, severity, count,
     ${jsonColumns(['context', 'device_ip:device.ip', 'device_mac:device.mac', 'device_hostname:device.hostname', 'device_user:device.user'])},
     event, stored_at, uploaded_at, quarantined_at, quarantine_reason
   FROM capture_rows;`,
];
/** Migrations that rebuild a table another one references: run with foreign keys off. */
const REBUILDS = new Set([4]);

/** Columns of the event JSON for the view: "name" (the field of the same name) or "name:json.path". */
function jsonColumns(specs: readonly string[]): string {
  return specs
    .map((spec) => {
      const [name, path] = spec.split(':');
      return `event->>'$.${path ?? name}' AS ${name}`;
    })
    .join(',\n     ');
}

/** A capture's page rides on the event object under this key until it is committed (JSON.stringify skips symbols). */
const EVIDENCE = Symbol('evidence');
type WithEvidence = CaptureEvent & { [EVIDENCE]?: Evidence };
/** Each page compressed once: the captures of one message (a page with three phrases is three
 * captures) share its Evidence object, and deflating it again per capture tripled the cost. */
const deflated = new WeakMap<Evidence, Buffer>();

function deflatedBody(ev: Evidence): Buffer {
  let body = deflated.get(ev);
  if (body === undefined) deflated.set(ev, (body = deflateRawSync(ev.body)));
  return body;
}

/** One stored page as the uploader sends it. */
export interface StoredEvidence {
  readonly captureId: string;
  readonly contentType: string;
  readonly charset: string | null;
  readonly body: Buffer;
  readonly truncated: boolean;
}

interface Statement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  pluck(on?: boolean): Statement;
}

interface Database {
  pragma(sql: string, opts?: { simple?: boolean }): unknown;
  exec(sql: string): void;
  prepare(sql: string): Statement;
  transaction<T extends (...args: never[]) => unknown>(fn: T): T;
  close(): void;
  readonly open: boolean;
}

export class StoreError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface CaptureStoreOptions {
  /** Quota for the database file (PRAGMA max_page_count); unset: the disk is the limit. */
  maxBytes?: number;
  counters?: Counters;
  /** `store.full` (warning) and `store.dropped` (critical), raised and cleared. */
  onHealth?: HealthSink;
  /** Wall clock for stored_at and health timestamps (tests). */
  now?: () => number;
  /**
   * Disk space held back in a file beside the database (`<path>-reserve`) and given back when the
   * disk is full, so what home acknowledged can still be recorded and deleted: default an eighth
   * of the filesystem, 256 KiB to 16 MiB (space-reserve.ts); 0: none.
   */
  reserveBytes?: number;
}

export interface RetentionPolicy {
  /** Uploaded captures older than this (capture time) are deleted. Default 30. */
  days?: number;
  /** Per-category overrides of `days`. */
  byCategory?: Readonly<Record<string, number>>;
  /** Also delete un-uploaded captures past their age: only for a standalone sensor with no home. */
  includeNotUploaded?: boolean;
  /** Stop after this many deletions (call again later to go on); default: until done. */
  maxRows?: number;
}

export interface PurgeResult {
  deleted: number;
  batches: number;
  /** False when `maxRows` stopped it before every expired capture was gone. */
  done: boolean;
}

/** A capture as it was sent to home: its id, and its count then (the version home has). */
export type SentCapture = Pick<CaptureEvent, 'id' | 'count'>;

export type CommittedListener = (rows: readonly CaptureEvent[]) => void;

/** The first 16 bytes of every SQLite 3 database file (https://www.sqlite.org/fileformat.html, 1.3.1). */
const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * Why `path` cannot be a capture store, or undefined when it is absent, empty (SQLite makes a new
 * database in it) or starts with SQLite's header. Looked at before the store makes the file
 * owner-only: a --db that names someone's notes by mistake leaves them as they were.
 */
function foreignFileProblem(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    if (fstatSync(fd).isDirectory()) return 'is a directory';
    const head = Buffer.alloc(SQLITE_HEADER.length);
    const got = readSync(fd, head, 0, head.length, 0);
    return got === 0 || head.equals(SQLITE_HEADER) ? undefined : 'not an SQLite database';
  } finally {
    closeSync(fd);
  }
}

/** WAL pages after which SQLite checkpoints: a quarter of the reserve, at most its default 1000. */
function walCheckpointPages(reserveBytes: number, pageSize: number): number {
  return Math.max(1, Math.min(1000, Math.floor(reserveBytes / 4 / pageSize)));
}

function isFull(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'SQLITE_FULL';
}

export class CaptureStore {
  private readonly db: Database;
  private readonly insert: Statement;
  private readonly pending: CaptureEvent[] = [];
  /**
   * Captures in the outbox (committed, not uploaded, not quarantined), kept in step with every
   * change this store makes (the only writer): counting the partial indexes costs O(outbox),
   * ~50 ms at a million (a home down for days), and status and the uploader ask every few seconds.
   */
  private outbox = 0;
  /** Captures that could not be committed (store full): retried first on every flush. */
  private held: CaptureEvent[] = [];
  /** One transaction: the rows that changed the store, and how many of them entered the outbox (new or re-queued). */
  private readonly commit: (rows: CaptureEvent[]) => { changed: CaptureEvent[]; queued: number };
  private readonly listeners: CommittedListener[] = [];
  private readonly counters: Counters;
  private readonly onHealth: HealthSink | undefined;
  private readonly now: () => number;
  /** Page limits: new captures stop at `insertPages`; marking and quarantining may use up to `quotaPages`. */
  private readonly quotaPages: number | undefined;
  private readonly insertPages: number | undefined;
  /** While the reserve is given back (the disk is full), the database may not grow past the pages
   * it had then: every write reuses pages deletes freed, so a checkpoint never needs disk space. */
  private growthCap: number | undefined;
  private fullRaised = false;
  private droppedRaised = false;
  private readonly selectUrgent: Statement;
  private readonly selectRoutine: Statement;
  private readonly markOne: Statement;
  private readonly quarantineOne: Statement;
  private readonly oldestUploaded: Statement;
  private readonly deleteRow: Statement;
  private readonly countUrgent: Statement;
  private readonly countRoutine: Statement;
  private readonly deleteRows: (rowids: number[]) => number;
  private readonly selectEvidence: Statement;
  private readonly markEvidence: Statement;
  private readonly forgetOne: Statement;
  /** Disk space for recording uploads when the disk is full (released then, written again once there is room). */
  private readonly reserve: SpaceReserve;
  stored = 0;

  constructor(readonly path: string, options: CaptureStoreOptions = {}) {
    this.counters = options.counters ?? new Counters();
    this.onHealth = options.onHealth;
    this.now = options.now ?? Date.now;
    const dir = dirname(path);
    try {
      ensurePrivateDir(dir);
      const foreign = foreignFileProblem(path);
      if (foreign !== undefined) throw new StoreError('E_STORE_OPEN', `Cannot open capture store "${path}": ${foreign}`);
      // Create the file with owner-only permissions before SQLite opens it with the umask's.
      closeSync(openSync(path, 'a', 0o600));
      chmodSync(path, 0o600);
      const Sqlite = require('better-sqlite3') as new (file: string) => Database;
      this.db = new Sqlite(path);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError('E_STORE_OPEN', `Cannot open capture store "${path}": ${(err as Error).message}`, { cause: err });
    }
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.migrate();
      // From here commits run on the capture thread: a write lock another process holds (an
      // operator's sqlite3 shell) must not stall capture for SQLite's default 5 s. A commit that
      // cannot get the lock in time fails, its captures stay held, and the next tick retries.
      this.db.pragma(`busy_timeout = ${COMMIT_BUSY_TIMEOUT_MS}`);
    } catch (err) {
      // SQLite reads past the header only now: a damaged file ("database disk image is
      // malformed"), or one another process holds locked, fails here.
      if (this.db.open) this.db.close();
      if (err instanceof StoreError) throw err;
      throw new StoreError('E_STORE_OPEN', `Cannot open capture store "${path}": ${(err as Error).message}`, { cause: err });
    }
    // SQLite gives the WAL and shm the database file's mode; set it again in case they predate it.
    for (const suffix of ['-wal', '-shm']) if (existsSync(path + suffix)) chmodSync(path + suffix, 0o600);
    if (options.maxBytes !== undefined) {
      if (!(options.maxBytes > 0) || !Number.isFinite(options.maxBytes)) {
        this.db.close();
        throw new StoreError('E_STORE_QUOTA', `Cannot use capture store quota ${options.maxBytes}: it must be a positive number of bytes`);
      }
      const pageSize = this.db.pragma('page_size', { simple: true }) as number;
      this.quotaPages = Math.max(1, Math.floor(options.maxBytes / pageSize));
      this.insertPages = Math.max(1, this.quotaPages - Math.max(QUOTA_RESERVE_MIN_PAGES, Math.floor(this.quotaPages * QUOTA_RESERVE_FRACTION)));
      this.setPageLimit(this.insertPages);
    }
    this.insert = this.db.prepare(
      'INSERT INTO capture_rows (id, ts_us, category, severity, count, event, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING',
    );
    // A repeat whose count grew: in place while it waits in the outbox (or is quarantined)...
    const growWaiting = this.db.prepare('UPDATE capture_rows SET count = ?, event = ? WHERE id = ? AND count < ? AND uploaded_at IS NULL');
    // ...else back into the outbox: home has it with the smaller count and takes the larger one.
    const growUploaded = this.db.prepare('UPDATE capture_rows SET count = ?, event = ?, uploaded_at = NULL WHERE id = ? AND count < ? AND uploaded_at IS NOT NULL');
    const insertEvidence = this.db.prepare('INSERT OR IGNORE INTO evidence (capture_id, content_type, charset, body, truncated) VALUES (?, ?, ?, ?, ?)');
    this.commit = this.db.transaction((rows: CaptureEvent[]) => {
      const changed: CaptureEvent[] = [];
      const now = this.now();
      let queued = 0;
      for (const c of rows) {
        const json = rememberJson(c);
        let n = this.insert.run(c.id, c.ts_us, c.category, c.severity, c.count, json, now).changes;
        if (n > 0) queued++;
        else {
          n = growWaiting.run(c.count, json, c.id, c.count).changes;
          if (n === 0) {
            n = growUploaded.run(c.count, json, c.id, c.count).changes;
            queued += n;
          }
        }
        const ev = (c as WithEvidence)[EVIDENCE];
        if (ev !== undefined && n > 0) insertEvidence.run(c.id, ev.contentType, ev.charset ?? null, deflatedBody(ev), ev.truncated ? 1 : 0);
        if (n > 0) changed.push(c);
      }
      return { changed, queued };
    });
    this.selectUrgent = this.db.prepare(PLANNED_SQL['outbox-urgent']).pluck();
    this.selectRoutine = this.db.prepare(PLANNED_SQL['outbox-routine']).pluck();
    // Only the version home was sent: a count that grew while the batch was in flight stays in the
    // outbox (counts only grow, so the count is the version), and home takes the larger one later.
    this.markOne = this.db.prepare(`UPDATE capture_rows SET uploaded_at = ? WHERE id = ? AND count = ? AND ${PENDING}`);
    this.quarantineOne = this.db.prepare(`UPDATE capture_rows SET quarantined_at = ?, quarantine_reason = ? WHERE id = ? AND ${PENDING}`);
    this.oldestUploaded = this.db.prepare(PLANNED_SQL.evict).pluck();
    this.deleteRow = this.db.prepare('DELETE FROM capture_rows WHERE rowid = ?');
    this.countUrgent = this.db.prepare(`SELECT count(*) FROM capture_rows INDEXED BY captures_pending_urgent WHERE ${URGENT}`).pluck();
    this.countRoutine = this.db.prepare(`SELECT count(*) FROM capture_rows INDEXED BY captures_pending_routine WHERE ${ROUTINE}`).pluck();
    this.outbox = this.countOutbox();
    this.selectEvidence = this.db.prepare(
      `SELECT e.capture_id, e.content_type, e.charset, e.body, e.truncated FROM evidence e INDEXED BY evidence_pending
         JOIN capture_rows c ON c.id = e.capture_id WHERE e.uploaded_at IS NULL AND c.${UPLOADED} LIMIT ?`);
    this.markEvidence = this.db.prepare('UPDATE evidence SET uploaded_at = ? WHERE capture_id = ? AND uploaded_at IS NULL');
    this.deleteRows = this.db.transaction((rowids: number[]) => {
      let n = 0;
      for (const r of rowids) n += this.deleteRow.run(r).changes;
      return n;
    });
    this.forgetOne = this.db.prepare(`DELETE FROM capture_rows WHERE id = ? AND count = ? AND ${PENDING}`);
    this.reserve = new SpaceReserve(`${path}-reserve`, options.reserveBytes);
    this.reserve.restore();
    // The WAL is checkpointed before it grows past a quarter of the reserve (SQLite's default,
    // 1000 pages, from a 16 MiB reserve up): released, the reserve must let the checkpoint finish.
    if (this.reserve.bytes > 0) this.db.pragma(`wal_autocheckpoint = ${walCheckpointPages(this.reserve.bytes, this.db.pragma('page_size', { simple: true }) as number)}`);
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  private migrate(): void {
    const have = this.schemaVersion;
    if (have > MIGRATIONS.length) {
      this.db.close();
      throw new StoreError('E_STORE_SCHEMA', `Capture store "${this.path}" has schema version ${have}, newer than this Hark (${MIGRATIONS.length})`);
    }
    for (let v = have; v < MIGRATIONS.length; v++) {
      const rebuild = REBUILDS.has(v + 1);
      // foreign_keys cannot change inside a transaction
      if (rebuild) this.db.pragma('foreign_keys = OFF');
      try {
        this.db.transaction(() => {
          this.db.exec(MIGRATIONS[v]);
          if (rebuild && (this.db.prepare('PRAGMA foreign_key_check').all() as unknown[]).length > 0) {
            throw new StoreError('E_STORE_SCHEMA', `Capture store "${this.path}": migration ${v + 1} would break a foreign key`);
          }
          this.db.pragma(`user_version = ${v + 1}`);
        })();
      } finally {
        if (rebuild) this.db.pragma('foreign_keys = ON');
      }
    }
  }

  /** Called after every commit that changed rows, with those rows (as `flush()` returns them), in
   * commit order, synchronously before `flush()` returns. A throwing listener is counted, not fatal. Returns an unsubscribe. */
  onCommitted(listener: CommittedListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /**
   * Queues a capture (and the page it was seen in) for the next commit. Never throws: it runs on
   * the packet path and in the workers' message handler, where an exception ends the sensor. A
   * commit it starts that fails (I/O error, database locked) is counted (store.write_error) and
   * leaves the rows held; the next flush() retries them and throws the error to its caller.
   */
  add(capture: CaptureEvent, evidence?: Evidence): void {
    if (evidence !== undefined) (capture as WithEvidence)[EVIDENCE] = evidence;
    this.pending.push(capture);
    if (this.pending.length < BATCH_ROWS) return;
    try {
      this.flush();
    } catch {
      this.counters.inc(C_STORE_WRITE_ERROR);
    }
  }

  /** Captures waiting in memory because the store is full (not yet durable). */
  get heldCount(): number {
    return this.held.length;
  }

  /**
   * Commits what is pending (first anything held back by a full store); returns once it is durable,
   * with the rows that changed the store (new ids, or a count that grew; a repeat that changes
   * nothing is not returned or announced). One transaction per BATCH_ROWS. When the store is full
   * it deletes the oldest uploaded captures and retries; when none are left it commits what fits
   * (halving the transaction down to one capture) and the rest stay in memory (bounded) for the
   * next flush. Listeners hear of every row committed, once, after the last transaction.
   */
  flush(): readonly CaptureEvent[] {
    if (this.pending.length === 0 && this.held.length === 0) return [];
    const rows = this.held.length > 0 ? this.held.concat(this.pending) : this.pending.slice();
    this.pending.length = 0;
    this.held = [];
    const changed: CaptureEvent[] = [];
    let hitFull = false;
    let failure: StoreError | undefined;
    let size = BATCH_ROWS;
    let at = 0;
    while (at < rows.length) {
      const slice = rows.length <= size && at === 0 ? rows : rows.slice(at, at + size);
      try {
        const done = this.commit(slice);
        for (const c of done.changed) changed.push(c);
        this.outbox += done.queued;
        for (const c of slice) delete (c as WithEvidence)[EVIDENCE];
        at += slice.length;
        continue;
      } catch (err) {
        if (!isFull(err)) {
          failure = new StoreError('E_STORE_WRITE', `Cannot commit ${rows.length - at} captures to "${this.path}": ${(err as Error).message}`, { cause: err });
          break;
        }
      }
      hitFull = true;
      this.counters.inc(C_FULL);
      this.raiseFull();
      try {
        if (this.makeRoom(false)) continue;
      } catch (err) {
        failure = err instanceof StoreError ? err : new StoreError('E_STORE_WRITE', `Cannot make room in "${this.path}": ${(err as Error).message}`, { cause: err });
        break;
      }
      // Nothing left to delete: what fits in the space there is goes in, a smaller transaction at a time.
      if (slice.length > 1) {
        size = Math.ceil(slice.length / 2);
        continue;
      }
      break;
    }
    if (at < rows.length) {
      this.held = at === 0 ? rows : rows.slice(at);
      this.boundHeld();
    } else {
      this.counters.set(C_HELD, 0);
      this.clearDropped();
      // Room enough again for the space held back for uploads: take it back first.
      if (!hitFull && !this.reserve.held) this.restoreReserve();
      // A flush that needed no room made is the end of the episode (one that had to evict is not),
      // unless the disk is still too full to give back the reserve.
      if (!hitFull && this.growthCap === undefined) this.clearFull();
    }
    this.stored += changed.length;
    this.counters.inc(C_COMMITTED, changed.length);
    if (changed.length > 0) {
      for (const l of this.listeners) {
        try {
          l(changed);
        } catch {
          // A consumer's bug must not undo or repeat a commit; it is counted.
          this.counters.inc(C_LISTENER_ERRORS);
        }
      }
    }
    if (failure !== undefined) throw failure;
    return changed;
  }

  /**
   * The next captures to upload, at most `limit`: un-uploaded, not quarantined; severity 4-5 first,
   * oldest first, then the rest oldest first.
   */
  outboxBatch(limit: number): CaptureEvent[] {
    const n = Math.max(0, Math.floor(limit));
    if (n === 0) return [];
    const out = (this.selectUrgent.all(n) as string[]).map((e) => JSON.parse(e) as CaptureEvent);
    if (out.length < n) for (const e of this.selectRoutine.all(n - out.length) as string[]) out.push(JSON.parse(e) as CaptureEvent);
    return out;
  }

  /**
   * Pages of captures home already has, not yet sent: at most `maxItems`, and at most `maxBytes` of
   * page (one page even when it alone is bigger).
   */
  evidenceBatch(maxItems: number, maxBytes: number): StoredEvidence[] {
    const rows = this.selectEvidence.all(Math.max(1, Math.floor(maxItems))) as Array<{ capture_id: string; content_type: string; charset: string | null; body: Buffer; truncated: number }>;
    const out: StoredEvidence[] = [];
    let bytes = 0;
    for (const r of rows) {
      const body = inflateRawSync(r.body);
      if (out.length > 0 && bytes + body.length > maxBytes) break;
      bytes += body.length;
      out.push({ captureId: r.capture_id, contentType: r.content_type, charset: r.charset, body, truncated: r.truncated === 1 });
    }
    return out;
  }

  markEvidenceUploaded(captureIds: readonly string[], atMs: number = this.now()): number {
    return this.writeWithReserve(() => {
      let n = 0;
      for (const id of captureIds) n += this.markEvidence.run(atMs, id).changes;
      return n;
    });
  }

  /** Pages not yet sent whose captures home has. */
  evidencePending(): number {
    return this.db.prepare(`SELECT count(*) FROM evidence e INDEXED BY evidence_pending JOIN capture_rows c ON c.id = e.capture_id WHERE e.uploaded_at IS NULL AND c.${UPLOADED}`).pluck().get() as number;
  }

  /**
   * Marks captures as accepted by home, each only at the count it was sent with: one whose count
   * grew meanwhile stays in the outbox, so home gets the larger count too. Returns how many were
   * marked (still pending at that count); on a disk too full to write even the marks, how many
   * were deleted instead (forgetUploaded).
   */
  markUploaded(sent: readonly SentCapture[], atMs: number = this.now()): number {
    let n: number;
    try {
      n = this.writeWithReserve(() => {
        let changed = 0;
        for (const c of sent) changed += this.markOne.run(atMs, c.id, c.count).changes;
        return changed;
      });
    } catch (err) {
      if (!(err instanceof StoreError) || err.code !== 'E_STORE_FULL') throw err;
      return this.forgetUploaded(sent);
    }
    this.outbox -= n;
    this.counters.inc(C_UPLOADED, n);
    return n;
  }

  /**
   * The disk is full, the reserve is spent and nothing uploaded is left to delete, so even marking
   * cannot be written: deletes the acknowledged captures instead (home has them, and marked they
   * would be the first to go to make room). A delete writes less than a mark and gives its pages
   * back; FORGET_BATCH_ROWS at a time, each checkpointed, so the WAL's few pages are reused.
   * Counted as uploaded and as evicted. Throws E_STORE_FULL when not even that can be written.
   */
  private forgetUploaded(sent: readonly SentCapture[]): number {
    let n = 0;
    try {
      for (let i = 0; i < sent.length; i += FORGET_BATCH_ROWS) {
        const part = sent.slice(i, i + FORGET_BATCH_ROWS);
        n += this.writeWithReserve(() => {
          let deleted = 0;
          for (const c of part) deleted += this.forgetOne.run(c.id, c.count).changes;
          return deleted;
        });
        this.checkpoint();
      }
    } finally {
      this.outbox -= n;
      this.counters.inc(C_UPLOADED, n);
      this.counters.inc(C_EVICTED, n);
    }
    return n;
  }

  /** Takes captures home refuses out of the outbox; they stay stored, marked with why. */
  quarantine(ids: readonly string[], reason: string, atMs: number = this.now()): number {
    const n = this.writeWithReserve(() => {
      let changed = 0;
      for (const id of ids) changed += this.quarantineOne.run(atMs, reason, id).changes;
      return changed;
    });
    this.outbox -= n;
    this.counters.inc(C_QUARANTINED, n);
    return n;
  }

  /** Captures waiting to be uploaded (committed, not uploaded, not quarantined): kept as they change, O(1). */
  pendingCount(): number {
    return this.outbox;
  }

  /** The same figure counted from the outbox indexes (O(outbox)): at open, after a purge, and for tests. */
  countOutbox(): number {
    return (this.countUrgent.get() as number) + (this.countRoutine.get() as number);
  }

  quarantinedCount(): number {
    return this.db.prepare('SELECT count(*) FROM capture_rows WHERE quarantined_at IS NOT NULL').pluck().get() as number;
  }

  /** Upload state of one capture: undefined when absent. */
  stateOf(id: string): { uploadedAt: number | null; quarantinedAt: number | null; reason: string | null } | undefined {
    const r = this.db.prepare('SELECT uploaded_at, quarantined_at, quarantine_reason FROM capture_rows WHERE id = ?').get(id) as
      { uploaded_at: number | null; quarantined_at: number | null; quarantine_reason: string | null } | undefined;
    return r === undefined ? undefined : { uploadedAt: r.uploaded_at, quarantinedAt: r.quarantined_at, reason: r.quarantine_reason };
  }

  /**
   * Retention: deletes captures older than their category's days (capture time), in batches of
   * PURGE_BATCH_ROWS, one transaction each. Only uploaded ones unless `includeNotUploaded`.
   */
  purge(policy: RetentionPolicy = {}, nowMs: number = this.now()): PurgeResult {
    const days = policy.days ?? DEFAULT_RETENTION_DAYS;
    const byCategory = new Map<string, number>();
    for (const [cat, d] of Object.entries(policy.byCategory ?? {})) byCategory.set(cat, d);
    for (const [what, d] of [['days', days], ...byCategory] as [string, number][]) {
      if (!(d > 0) || !Number.isFinite(d)) throw new StoreError('E_STORE_RETENTION', `Cannot apply retention ${what}=${d}: it must be a positive number of days`);
    }
    const cutoffUs = (d: number) => (nowMs - d * DAY_MS) * 1000;
    const defaultCutoff = cutoffUs(days);
    let scanCutoff = defaultCutoff;
    const cutoffs = new Map<string, number>();
    for (const [cat, d] of byCategory) {
      const c = cutoffUs(d);
      cutoffs.set(cat, c);
      if (c > scanCutoff) scanCutoff = c;
    }
    // One pass in capture-time order up to the latest cutoff, resuming after the last row seen, so
    // rows kept by a longer category retention are read once, not once per batch.
    const scan = this.db.prepare(policy.includeNotUploaded === true
      ? 'SELECT rowid AS r, ts_us AS t, category AS c FROM capture_rows INDEXED BY captures_ts WHERE ts_us < ? AND (ts_us > ? OR (ts_us = ? AND rowid > ?)) ORDER BY ts_us, rowid LIMIT ?'
      : `SELECT rowid AS r, ts_us AS t, category AS c FROM capture_rows INDEXED BY captures_uploaded WHERE ${UPLOADED} AND ts_us < ? AND (ts_us > ? OR (ts_us = ? AND rowid > ?)) ORDER BY ts_us, rowid LIMIT ?`);
    const maxRows = policy.maxRows ?? Number.POSITIVE_INFINITY;
    let lastTs = Number.MIN_SAFE_INTEGER;
    let lastRow = 0;
    let deleted = 0;
    let batches = 0;
    let done = true;
    for (;;) {
      const rows = scan.all(scanCutoff, lastTs, lastTs, lastRow, PURGE_BATCH_ROWS) as { r: number; t: number; c: string }[];
      if (rows.length === 0) break;
      const victims: number[] = [];
      for (const row of rows) {
        if (deleted + victims.length >= maxRows) {
          done = false;
          break;
        }
        if (row.t < (cutoffs.get(row.c) ?? defaultCutoff)) victims.push(row.r);
        lastTs = row.t;
        lastRow = row.r;
      }
      if (victims.length > 0) {
        const n = this.deleteExpired(victims);
        if (n === undefined) {
          // The disk is too full to write even a delete: the next purge goes on.
          done = false;
          break;
        }
        deleted += n;
        batches++;
      }
      if (!done || rows.length < PURGE_BATCH_ROWS) break;
    }
    this.counters.inc(C_PURGED, deleted);
    // Only a purge may delete captures still in the outbox (includeNotUploaded): count again.
    if (deleted > 0) this.outbox = this.countOutbox();
    if (deleted >= CHECKPOINT_AFTER_ROWS) this.checkpoint();
    // Deleting made room: anything held back by a full store can go in now.
    if (deleted > 0 && this.held.length > 0) this.flush();
    return { deleted, batches, done };
  }

  /** One retention delete; when the disk is full, once more with the reserve given back; undefined when that fails too. */
  private deleteExpired(rowids: number[]): number | undefined {
    for (let attempt = 0; ; attempt++) {
      try {
        return this.deleteRows(rowids);
      } catch (err) {
        if (!isFull(err)) throw err;
        this.counters.inc(C_FULL);
        if (attempt > 0 || !this.makeRoom(true)) return undefined;
      }
    }
  }

  /** Moves the WAL into the database and truncates it, so space freed by deletes is reusable. */
  checkpoint(): void {
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch (err) {
      // A full disk can refuse the checkpoint itself; the WAL is checkpointed again later.
      if (!isFull(err)) throw err;
    }
  }

  /** `PRAGMA integrity_check`: 'ok' or SQLite's first complaints. */
  integrityCheck(): string {
    return (this.db.prepare('PRAGMA integrity_check').pluck().all() as string[]).join('; ');
  }

  /** The stored count of one capture, or undefined. */
  countOf(id: string): number | undefined {
    return (this.db.prepare('SELECT count FROM capture_rows WHERE id = ?').get(id) as { count: number } | undefined)?.count;
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM capture_rows').get() as { n: number }).n;
  }

  /** Ids of every stored capture (tests and tools). */
  ids(): string[] {
    return this.db.prepare('SELECT id FROM capture_rows ORDER BY ts_us, rowid').pluck().all() as string[];
  }

  /** How a statement would run (EXPLAIN QUERY PLAN details), to check that the outbox uses its indexes. */
  queryPlan(which: keyof typeof PLANNED_SQL): string[] {
    return (this.db.prepare(`EXPLAIN QUERY PLAN ${PLANNED_SQL[which]}`).all(1) as { detail: string }[]).map((r) => r.detail);
  }

  /** Commits what it can and closes; captures still held by a full store are lost and counted. */
  close(): void {
    if (!this.db.open) return;
    try {
      this.flush();
    } finally {
      if (this.held.length > 0) {
        this.counters.inc(C_DROPPED, this.held.length);
        this.held = [];
      }
      this.db.close();
    }
  }

  private setPageLimit(pages: number): void {
    this.db.pragma(`max_page_count = ${pages}`);
  }

  /** The page limit for recording uploads (`forUpload`) or for new captures: the quota's, capped
   * while the reserve is out. Untouched with neither. */
  private applyPageLimit(forUpload: boolean): void {
    const quota = forUpload ? this.quotaPages : this.insertPages;
    if (quota === undefined && this.growthCap === undefined) return;
    this.setPageLimit(Math.min(quota ?? UNLIMITED_PAGES, this.growthCap ?? UNLIMITED_PAGES));
  }

  /**
   * Runs an outbox update (mark, quarantine) with the quota's reserve open to it, and without the
   * fsync: in WAL mode synchronous=NORMAL cannot corrupt, it can only lose the last updates on power
   * loss, and a lost mark only means those captures are sent again, which home ignores by id. The
   * next capture commit (FULL) makes the update durable too, the WAL being append-only.
   */
  private writeWithReserve(write: () => number): number {
    const tx = this.db.transaction(write);
    this.applyPageLimit(true);
    this.db.pragma('synchronous = NORMAL');
    try {
      for (;;) {
        try {
          return tx();
        } catch (err) {
          if (!isFull(err)) throw new StoreError('E_STORE_WRITE', `Cannot update captures in "${this.path}": ${(err as Error).message}`, { cause: err });
          this.counters.inc(C_FULL);
          this.raiseFull();
          if (!this.makeRoom(true)) throw new StoreError('E_STORE_FULL', `Cannot update captures in "${this.path}": the store is full`, { cause: err });
        }
      }
    } finally {
      this.db.pragma('synchronous = FULL');
      this.applyPageLimit(false);
    }
  }

  /**
   * After SQLITE_FULL: lifts the cap when the disk has room again; else deletes the oldest uploaded
   * captures; failing that, for a write that records what home has (`forUpload`: a mark, a
   * quarantine, a retention delete) when the disk itself is full (not only the quota), gives the
   * reserve back and caps the database at its size. New captures never get the reserve: they wait
   * in memory until uploads make room. True when there is more room to try again. (No loop: the
   * reserve comes back only with twice its size free, and goes only with less than its size free.)
   */
  private makeRoom(forUpload: boolean): boolean {
    if (this.growthCap !== undefined && this.restoreReserve()) return true;
    if (this.evictUploaded(EVICT_BATCH_ROWS) > 0) return true;
    if (!forUpload || this.reserve.bytes === 0 || this.reserve.freeBytes() >= this.reserve.bytes) return false;
    const released = this.reserve.release();
    if (released) {
      this.counters.inc(C_RESERVE_RELEASED);
      // The freed space lets the WAL's last frames into the database...
      this.checkpoint();
    }
    if (this.growthCap === undefined) {
      // ...which stays that size from now on: what deletes free is what every write reuses.
      this.growthCap = this.db.pragma('page_count', { simple: true }) as number;
      this.applyPageLimit(true);
    }
    return released;
  }

  /** Writes the reserve again once the disk has room for it (twice over), and lifts the cap; true when it did. */
  private restoreReserve(): boolean {
    if (!this.reserve.restore()) return false;
    if (this.growthCap !== undefined) {
      this.growthCap = undefined;
      this.setPageLimit(this.insertPages ?? UNLIMITED_PAGES);
    }
    return true;
  }

  /** Deletes up to `n` of the oldest uploaded captures; returns how many went (0 when the disk
   * is too full to write the delete). */
  private evictUploaded(n: number): number {
    const rowids = this.oldestUploaded.all(n) as number[];
    if (rowids.length === 0) return 0;
    let deleted: number;
    try {
      deleted = this.deleteRows(rowids);
    } catch (err) {
      if (isFull(err)) return 0;
      throw err;
    }
    this.counters.inc(C_EVICTED, deleted);
    this.checkpoint();
    return deleted;
  }

  /** Keeps at most MAX_HELD_CAPTURES in memory: the least severe, then the newest, are dropped. */
  private boundHeld(): void {
    this.counters.set(C_HELD, this.held.length);
    if (this.held.length <= MAX_HELD_CAPTURES) return;
    const keep = this.held.slice().sort((a, b) => b.severity - a.severity || a.ts_us - b.ts_us);
    const dropped = keep.length - MAX_HELD_CAPTURES;
    keep.length = MAX_HELD_CAPTURES;
    this.held = keep;
    this.counters.inc(C_DROPPED, dropped);
    this.counters.set(C_HELD, this.held.length);
    if (!this.droppedRaised) {
      this.droppedRaised = true;
      this.emit('store.dropped', 'critical', `Capture store "${this.path}" is full with nothing uploaded left to delete: captures are being lost`, { dropped, held: this.held.length }, 'raised');
    }
  }

  private raiseFull(): void {
    if (this.fullRaised) return;
    this.fullRaised = true;
    this.emit('store.full', 'warning', `Capture store "${this.path}" is full: deleting the oldest uploaded captures to make room`, this.quotaPages !== undefined ? { quota_pages: this.quotaPages } : undefined, 'raised');
  }

  private clearDropped(): void {
    if (!this.droppedRaised) return;
    this.droppedRaised = false;
    this.emit('store.dropped', 'critical', `Capture store "${this.path}" commits again`, undefined, 'cleared');
  }

  private clearFull(): void {
    if (this.fullRaised) {
      this.fullRaised = false;
      this.emit('store.full', 'warning', `Capture store "${this.path}" commits again`, undefined, 'cleared');
    }
  }

  private emit(name: string, severity: 'warning' | 'critical', message: string, detail: Record<string, number> | undefined, state: 'raised' | 'cleared'): void {
    if (this.onHealth === undefined) return;
    try {
      this.onHealth(healthEvent(name, severity, message, detail, state, this.now()));
    } catch {
      this.counters.inc(C_LISTENER_ERRORS);
    }
  }
}

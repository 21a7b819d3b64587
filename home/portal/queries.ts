/**
 * The portal's reads over home's database: the capture list (every filter an index range, full-text
 * search through FTS5, keyset paging newest first), a capture's neighbours by user, its notes and
 * audit trail, the 7-day report aggregates and phrase statistics. Input: validated filters.
 * Output: rows. `explainCaptureList` returns SQLite's plan so tests and bench/portal.ts can show
 * that no filter combination falls back to scanning the captures table.
 */

import type { AuditRow, CaptureRow, Database } from '../store.js';

/** Rows on one page of the capture list. */
export const PAGE_ROWS = 50;
/** Search terms kept from the search box (each becomes one quoted FTS5 phrase). */
export const MAX_SEARCH_TERMS = 8;
/** Rows in a "top N" table of a report. */
export const TOP_ROWS = 10;

export interface CaptureFilter {
  since_us?: number;
  until_us?: number;
  /** Exact severity, or at least `min_severity`. */
  severity?: number;
  min_severity?: number;
  category?: string;
  sensor_id?: number;
  site?: string;
  user?: string;
  /** Device IP address or host name. */
  device?: string;
  host?: string;
  source?: 'typed' | 'viewed';
  /** `open` = open or escalated, `closed` = closed or false positive, or one exact state. */
  status?: string;
  /** Free text over phrase, context and URL. */
  text?: string;
  /** Keyset cursor: rows strictly older than this (ts_us, id). */
  before?: { ts_us: number; id: string };
}

/** FTS5 query from free text: each word becomes a quoted phrase (no operators from users). */
export function ftsQuery(text: string): string | undefined {
  const terms = text.split(/\s+/).map((t) => t.replace(/"/g, '')).filter((t) => t !== '').slice(0, MAX_SEARCH_TERMS);
  return terms.length === 0 ? undefined : terms.map((t) => `"${t}"`).join(' ');
}

function listSql(f: CaptureFilter, limit: number): { sql: string; vals: unknown[] } {
  const where: string[] = [];
  const vals: unknown[] = [];
  const add = (clause: string, ...v: unknown[]): void => { where.push(clause); vals.push(...v); };
  if (f.since_us !== undefined) add('ts_us >= ?', f.since_us);
  if (f.until_us !== undefined) add('ts_us < ?', f.until_us);
  if (f.severity !== undefined) add('severity = ?', f.severity);
  else if (f.min_severity !== undefined) add('severity >= ?', f.min_severity);
  if (f.category !== undefined) add('category = ?', f.category);
  if (f.sensor_id !== undefined) add('sensor_id = ?', f.sensor_id);
  if (f.site !== undefined) add('sensor_id IN (SELECT id FROM sensors WHERE site = ?)', f.site);
  if (f.user !== undefined) add('user = ?', f.user);
  if (f.device !== undefined) add('(device_ip = ? OR device_name = ?)', f.device, f.device);
  if (f.host !== undefined) add('host = ?', f.host);
  if (f.source !== undefined) add('source = ?', f.source);
  if (f.status === 'open') add("status IN ('open', 'escalated')");
  else if (f.status === 'closed') add("status IN ('closed', 'false_positive')");
  else if (f.status !== undefined) add('status = ?', f.status);
  const fts = f.text === undefined ? undefined : ftsQuery(f.text);
  if (fts !== undefined) add('rowid IN (SELECT rowid FROM captures_fts WHERE captures_fts MATCH ?)', fts);
  if (f.before !== undefined) add('(ts_us < ? OR (ts_us = ? AND id < ?))', f.before.ts_us, f.before.ts_us, f.before.id);
  vals.push(limit);
  return { sql: `SELECT * FROM captures ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ts_us DESC, id DESC LIMIT ?`, vals };
}

export class PortalQueries {
  constructor(private readonly db: Database) {}

  /** One page (newest first) and whether an older page exists. */
  captureList(f: CaptureFilter, rows = PAGE_ROWS): { rows: CaptureRow[]; more: boolean } {
    const { sql, vals } = listSql(f, rows + 1);
    const got = this.db.prepare(sql).all(...vals) as CaptureRow[];
    return { rows: got.slice(0, rows), more: got.length > rows };
  }

  /** EXPLAIN QUERY PLAN of the list query for `f`: one `detail` line per plan step. */
  explainCaptureList(f: CaptureFilter): string[] {
    const { sql, vals } = listSql(f, PAGE_ROWS + 1);
    return (this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...vals) as Array<{ detail: string }>).map((r) => r.detail);
  }

  capture(id: string): CaptureRow | undefined {
    return this.db.prepare('SELECT * FROM captures WHERE id = ?').get(id) as CaptureRow | undefined;
  }

  /** The previous (older) and next (newer) capture of the same user, by capture time. */
  neighbours(c: CaptureRow): { previous?: CaptureRow; next?: CaptureRow } {
    if (c.user === null) return {};
    const previous = this.db.prepare('SELECT * FROM captures WHERE user = ? AND (ts_us < ? OR (ts_us = ? AND id < ?)) ORDER BY ts_us DESC, id DESC LIMIT 1')
      .get(c.user, c.ts_us, c.ts_us, c.id) as CaptureRow | undefined;
    const next = this.db.prepare('SELECT * FROM captures WHERE user = ? AND (ts_us > ? OR (ts_us = ? AND id > ?)) ORDER BY ts_us ASC, id ASC LIMIT 1')
      .get(c.user, c.ts_us, c.ts_us, c.id) as CaptureRow | undefined;
    return { previous, next };
  }

  notes(id: string): Array<{ at: string; who: string; status: string; note: string }> {
    return this.db.prepare('SELECT at, who, status, note FROM capture_notes WHERE capture_id = ? ORDER BY id').all(id) as Array<{ at: string; who: string; status: string; note: string }>;
  }

  /** Who looked at and changed capture `id`, oldest first (at most `limit`). */
  auditTrail(id: string, limit = 200): AuditRow[] {
    return (this.db.prepare('SELECT * FROM audit WHERE target = ? ORDER BY id DESC LIMIT ?').all(`capture:${id}`, limit) as AuditRow[]).reverse();
  }

  // ---- reports (a window of capture time) ----
  bySeverity(since: number, until: number): Array<{ severity: number; n: number }> {
    return this.db.prepare('SELECT severity, count(*) AS n FROM captures WHERE ts_us >= ? AND ts_us < ? GROUP BY severity ORDER BY severity DESC')
      .all(since, until) as Array<{ severity: number; n: number }>;
  }

  /** Per UTC day (YYYY-MM-DD) and category. */
  byCategoryPerDay(since: number, until: number): Array<{ day: string; category: string; n: number }> {
    return this.db.prepare(`SELECT strftime('%Y-%m-%d', ts_us / 1000000, 'unixepoch') AS day, category, count(*) AS n FROM captures
      WHERE ts_us >= ? AND ts_us < ? GROUP BY day, category ORDER BY day, category`).all(since, until) as Array<{ day: string; category: string; n: number }>;
  }

  topUsers(since: number, until: number, limit = TOP_ROWS): Array<{ key: string; n: number; max_severity: number }> {
    return this.db.prepare(`SELECT user AS key, count(*) AS n, max(severity) AS max_severity FROM captures WHERE ts_us >= ? AND ts_us < ? AND user IS NOT NULL
      GROUP BY user ORDER BY n DESC, key LIMIT ?`).all(since, until, limit) as Array<{ key: string; n: number; max_severity: number }>;
  }

  topSites(since: number, until: number, limit = TOP_ROWS): Array<{ key: string; n: number; max_severity: number }> {
    return this.db.prepare(`SELECT host AS key, count(*) AS n, max(severity) AS max_severity FROM captures WHERE ts_us >= ? AND ts_us < ? AND host IS NOT NULL
      GROUP BY host ORDER BY n DESC, key LIMIT ?`).all(since, until, limit) as Array<{ key: string; n: number; max_severity: number }>;
  }

  /** Captures in the window, oldest first, for the CSV export (at most `limit`). */
  window(since: number, until: number, limit: number): CaptureRow[] {
    return this.db.prepare('SELECT * FROM captures WHERE ts_us >= ? AND ts_us < ? ORDER BY ts_us, id LIMIT ?').all(since, until, limit) as CaptureRow[];
  }

  /** How often each phrase fired since `since` (capture rows, and the sum of their counts). */
  phraseHits(since: number): Map<string, number> {
    const rows = this.db.prepare('SELECT lower(phrase) AS p, count(*) AS n FROM captures WHERE ts_us >= ? GROUP BY lower(phrase)').all(since) as Array<{ p: string; n: number }>;
    return new Map(rows.map((r) => [r.p, r.n]));
  }
}

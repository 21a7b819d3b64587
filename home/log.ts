/**
 * DATA/home.log: plain text, one line per event, `ISO-time event key=value ...` (start, stop,
 * sensor connect / disconnect, enrolment, failed security checks with the peer address,
 * configuration changes, reloads). Input: events from the server. Output: appended lines (0600);
 * a flood (an attacker retrying a refused certificate) is capped per minute and the cap reported.
 */

import { appendFileSync } from 'node:fs';
import { touchPrivateFile } from './files.js';

/** Lines written per minute at most; past it lines are counted and one summary line written. */
export const MAX_LOG_LINES_PER_MINUTE = 1200;

/** Quotes a value when it has spaces, quotes or control characters (log injection guard). */
export function logValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  return /^[^\s"=\x00-\x1f\x7f]*$/.test(s) && s !== '' ? s : JSON.stringify(s);
}

export class HomeLog {
  private minute = 0;
  private lines = 0;
  private suppressed = 0;
  /** Lines written since start. */
  written = 0;

  constructor(readonly path: string, private readonly echo?: (line: string) => void) {
    touchPrivateFile(path);
  }

  write(event: string, fields: Record<string, unknown> = {}, now = Date.now()): void {
    const minute = Math.floor(now / 60_000);
    if (minute !== this.minute) {
      if (this.suppressed > 0) this.append(`${new Date(now).toISOString()} log.suppressed count=${this.suppressed}`);
      this.minute = minute;
      this.lines = 0;
      this.suppressed = 0;
    }
    if (++this.lines > MAX_LOG_LINES_PER_MINUTE) {
      this.suppressed++;
      return;
    }
    const parts = [new Date(now).toISOString(), event];
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) parts.push(`${k}=${logValue(v)}`);
    this.append(parts.join(' '));
  }

  private append(line: string): void {
    try {
      appendFileSync(this.path, `${line}\n`, { mode: 0o600 });
      this.written++;
    } catch {
      // A full disk must not stop home answering sensors; the line is lost.
    }
    this.echo?.(line);
  }
}

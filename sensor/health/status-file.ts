/**
 * The status file (DATA_DIR/status.json) that `hark status`, the menu and monitoring scripts read.
 * Input: a snapshot function, called every `intervalMs` and once more on `stop()`. Output: the
 * snapshot as JSON plus `stopped` and `interval_ms`, written atomically (temporary file in the same
 * directory, then rename: a reader sees the old file or the new one, never half of one), mode 0640.
 * A failed write (disk full, directory gone) is counted and reported once, never thrown from the timer.
 */
import { closeSync, fchmodSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { defineCounter, type Counters } from '../events/counters.js';
import type { SensorSnapshot } from './snapshot.js';

export const STATUS_FILE_NAME = 'status.json';
/** Group-readable so a monitoring user in the sensor's group can run `hark status`; no one else. */
export const STATUS_FILE_MODE = 0o640;
/** Often enough that `hark status` is current, rare enough to cost nothing (one small write). */
export const STATUS_DEFAULT_INTERVAL_MS = 5_000;

const C_WRITES = defineCounter('status.writes');
const C_WRITE_FAILED = defineCounter('status.write_failed');

/** What status.json holds: the snapshot, whether the sensor stopped cleanly, and the write period. */
export interface StatusFileContent extends SensorSnapshot {
  stopped: boolean;
  /** How often the file is rewritten while running: `hark status` calls it stale after 3 periods. */
  interval_ms: number;
}

export interface StatusFileWriterOptions {
  readonly intervalMs?: number;
  readonly snapshot: () => SensorSnapshot;
  readonly counters?: Counters;
  /** Told about a failed write once per distinct message (default: a line on stderr). */
  readonly onError?: (err: Error) => void;
}

/** Writes `content` to `path` atomically with mode 0640. Throws on I/O errors (the temp file is removed). */
export function writeStatusFile(path: string, content: StatusFileContent): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const data = `${JSON.stringify(content, null, 2)}\n`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'w', STATUS_FILE_MODE);
    // openSync's mode is filtered by the umask and ignored for an existing file: set it exactly.
    fchmodSync(fd, STATUS_FILE_MODE);
    writeSync(fd, data);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
}

export class StatusFileWriter {
  readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastErrorMessage: string | undefined;

  constructor(readonly path: string, private readonly opts: StatusFileWriterOptions) {
    const ms = opts.intervalMs ?? STATUS_DEFAULT_INTERVAL_MS;
    if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`Status file interval must be a positive number of milliseconds, not ${ms}`);
    this.intervalMs = ms;
  }

  /** Writes now, then every interval. The timer does not keep the process alive. */
  start(): void {
    if (this.timer !== undefined || this.stopped) return;
    this.writeNow();
    this.timer = setInterval(() => this.writeNow(), this.intervalMs);
    this.timer.unref();
  }

  /** One write of the current snapshot; false if it failed (counted and reported). */
  writeNow(): boolean {
    return this.write(false);
  }

  /** Stops the timer and writes the final state with `stopped: true`. Idempotent. */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.stopped) return;
    this.stopped = true;
    this.write(true);
  }

  private write(stopped: boolean): boolean {
    const c = this.opts.counters;
    try {
      writeStatusFile(this.path, { ...this.opts.snapshot(), stopped, interval_ms: this.intervalMs });
      c?.inc(C_WRITES);
      this.lastErrorMessage = undefined;
      return true;
    } catch (err) {
      c?.inc(C_WRITE_FAILED);
      const e = err as Error;
      const message = `Cannot write status file "${this.path}": ${e.message}`;
      if (message !== this.lastErrorMessage) {
        this.lastErrorMessage = message;
        const report = this.opts.onError ?? ((x: Error) => process.stderr.write(`hark: ${x.message}\n`));
        report(new Error(message, { cause: err }));
      }
      return false;
    }
  }
}

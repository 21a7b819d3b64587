/**
 * EVE-style JSON lines file: one event object per line (flows, captures, tls, dns, health), field
 * names compatible with Suricata's EVE where they overlap so Filebeat, Logstash and Splunk
 * pipelines ingest it. Buffered; `flush()` writes, `close()` flushes and closes. Optional rotation
 * by size (eve.json -> eve.json.1 -> ... -> eve.json.N, the oldest deleted) and `reopen()` for
 * SIGHUP after logrotate moved the file. Files Hark creates are mode 0600: events carry personal data.
 * A sensor's writer (`onWriteState` given) never throws on a write: on a full disk, an I/O error or a
 * closed pipe it keeps the unwritten lines (bounded, oldest dropped and counted), retries at the
 * next flush and reports the failure and the recovery; a line is never cut in two in the file.
 */
import { closeSync, fstatSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { Counters, defineCounter } from '../events/counters.js';
import { jsonOf } from '../events/json-text.js';
import { OutputConfigError, type EventOutput } from './output.js';

/** Bytes buffered before a write(2): large enough to batch, small enough to lose little on a crash. */
const FLUSH_BYTES = 64 * 1024;
/** Rotated files kept when `keep` is not given. */
export const DEFAULT_KEEP_FILES = 5;
/** More rotated files than this is a configuration mistake (and a rename storm per rotation). */
const MAX_KEEP_FILES = 1000;

/** Unwritten bytes a failing writer keeps for its retry; older whole lines beyond it are dropped. */
export const MAX_HELD_BYTES = 4 * 1024 * 1024;

const C_ROTATIONS = defineCounter('output.eve.rotations');
const C_WRITE_ERRORS = defineCounter('output.eve.write_errors');
const C_LINES_DROPPED = defineCounter('output.eve.lines_dropped');
const NEWLINE = 0x0a;

/** The event file cannot be opened (its directory is missing, it is a directory, no permission). */
export class EveFileError extends Error {
  readonly code = 'E_EVE_OPEN';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface EventSink {
  write(event: object): void;
  flush(): void;
  close(): void;
}

export interface JsonLinesOptions {
  /** Rotate before a line would take the file past this many bytes; 0 (default) never rotates. */
  maxBytes?: number;
  /** Rotated files kept (eve.json.1 .. eve.json.N); 0 deletes the full file instead. */
  keep?: number;
  counters?: Counters;
  /**
   * Makes the writer tolerate write failures (a live sensor: its files are second copies of the
   * store and must never stop it). Called with the error when writes start failing (or fail for
   * another reason), and with undefined once a write succeeds again. Without it, errors throw.
   */
  onWriteState?: (err: (Error & { code?: string }) | undefined) => void;
}

export class JsonLinesWriter implements EventSink, EventOutput {
  /** -1 when closed, or when a tolerant writer's reopen or rotation failed (opened again at the next flush). */
  private fd: number;
  private closed = false;
  private parts: string[] = [];
  /** Bytes (UTF-8) buffered in `parts`. */
  private size = 0;
  /** Bytes a failed write did not take, retried first. Starts with the rest of a line already partly in the file when `heldPartial` > 0. */
  private held: Buffer | undefined;
  private heldPartial = 0;
  /** The error writes are failing with (tolerant writer), undefined while they succeed. */
  private failing: (Error & { code?: string }) | undefined;
  /** Bytes already in the open file. */
  private fileBytes = 0;
  private readonly maxBytes: number;
  private readonly keep: number;
  private readonly counters: Counters | undefined;
  private readonly onWriteState: ((err: (Error & { code?: string }) | undefined) => void) | undefined;
  written = 0;
  rotations = 0;
  /** Whole lines dropped because writes failed for longer than MAX_HELD_BYTES of events took. */
  dropped = 0;

  /** `path` '-' writes to standard output (never rotated). */
  constructor(readonly path: string, options: JsonLinesOptions = {}) {
    const maxBytes = options.maxBytes ?? 0;
    const keep = options.keep ?? DEFAULT_KEEP_FILES;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new OutputConfigError('E_EVE_CONFIG', `EVE maxBytes must be a whole number of bytes, not "${options.maxBytes}"`);
    if (!Number.isSafeInteger(keep) || keep < 0 || keep > MAX_KEEP_FILES) throw new OutputConfigError('E_EVE_CONFIG', `EVE keep must be a whole number from 0 to ${MAX_KEEP_FILES}, not "${options.keep}"`);
    this.maxBytes = path === '-' ? 0 : maxBytes;
    this.keep = keep;
    this.counters = options.counters;
    this.onWriteState = options.onWriteState;
    this.fd = path === '-' ? 1 : this.open();
  }

  /** Bytes waiting for a failed write to be retried (0 while writes succeed). */
  get heldBytes(): number {
    return this.held?.length ?? 0;
  }

  write(event: object): void {
    if (this.closed) return;
    const line = `${jsonOf(event)}\n`;
    const n = Buffer.byteLength(line);
    // Rotate at a line boundary, so no file goes past maxBytes unless one line alone is larger;
    // not while writes fail (what is held belongs to the current file).
    if (this.maxBytes > 0 && this.fileBytes + this.size + n > this.maxBytes && this.fileBytes + this.size > 0) {
      this.flush();
      if (this.held === undefined && this.fd >= 0) this.rotate();
    }
    this.parts.push(line);
    this.size += n;
    this.written++;
    if (this.size >= FLUSH_BYTES) this.flush();
  }

  flush(): void {
    if (this.closed || (this.parts.length === 0 && this.held === undefined)) return;
    let data = this.held;
    if (this.parts.length > 0) {
      const fresh = Buffer.from(this.parts.join(''));
      data = data === undefined ? fresh : Buffer.concat([data, fresh]);
      this.parts = [];
      this.size = 0;
    }
    this.held = undefined;
    if (data === undefined) return;
    let off = 0;
    try {
      if (this.fd < 0) this.fd = this.open();
      while (off < data.length) {
        const n = writeSync(this.fd, data, off, data.length - off);
        off += n;
        this.fileBytes += n;
      }
    } catch (err) {
      if (this.onWriteState === undefined) throw err;
      this.hold(data.subarray(off), off > 0 ? data[off - 1] !== NEWLINE : this.heldPartial > 0);
      this.failed(err as Error);
      return;
    }
    this.heldPartial = 0;
    if (this.failing !== undefined) {
      this.failing = undefined;
      this.onWriteState?.(undefined);
    }
  }

  /** After logrotate renamed the file: the next line goes to a new file at `path`. */
  reopen(): void {
    if (this.path === '-' || this.closed) return;
    this.flush();
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    try {
      this.fd = this.open();
    } catch (err) {
      if (this.onWriteState === undefined) throw err;
      this.failed(err as Error);
    }
  }

  /** Flushes (a tolerant writer drops what still cannot be written, counted) and closes. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.flush();
    if (this.held !== undefined) this.dropHeld(this.held);
    this.held = undefined;
    this.closed = true;
    if (this.fd > 2) closeSync(this.fd);
    this.fd = -1;
    return Promise.resolve();
  }

  private open(): number {
    let fd: number;
    try {
      fd = openSync(this.path, 'a', 0o600);
    } catch (err) {
      throw new EveFileError(`Cannot open event file "${this.path}": ${whyNotOpened(this.path, err as NodeJS.ErrnoException)}`, { cause: err });
    }
    this.fileBytes = fstatSync(fd).size;
    return fd;
  }

  /**
   * Keeps `rest` for the retry. When it is longer than MAX_HELD_BYTES, the oldest whole lines go
   * (counted); the rest of a line already partly written is always kept, so the file never holds a
   * cut line.
   */
  private hold(rest: Buffer, startsMidLine: boolean): void {
    const partial = startsMidLine ? rest.indexOf(NEWLINE) + 1 : 0;
    this.heldPartial = partial;
    if (rest.length <= MAX_HELD_BYTES) {
      this.held = rest;
      return;
    }
    // the first line start at or after the cut: keep it and everything after
    const cut = rest.length - MAX_HELD_BYTES + partial;
    const nl = rest.indexOf(NEWLINE, cut - 1);
    const start = nl < 0 ? rest.length : nl + 1;
    this.dropHeld(rest.subarray(partial, start));
    this.held = Buffer.concat([rest.subarray(0, partial), rest.subarray(start)]);
  }

  /** Counts the lines ending in `bytes` as dropped. */
  private dropHeld(bytes: Buffer): void {
    let lines = 0;
    for (let i = bytes.indexOf(NEWLINE); i >= 0; i = bytes.indexOf(NEWLINE, i + 1)) lines++;
    if (lines === 0) return;
    this.dropped += lines;
    this.counters?.inc(C_LINES_DROPPED, lines);
  }

  private failed(err: Error & { code?: string }): void {
    this.counters?.inc(C_WRITE_ERRORS);
    const was = this.failing;
    this.failing = err;
    if (was === undefined || was.code !== err.code) this.onWriteState?.(err);
  }

  /** eve.json.N is deleted, each eve.json.i becomes .i+1, eve.json becomes .1, a new eve.json opens. */
  private rotate(): void {
    closeSync(this.fd);
    this.fd = -1;
    try {
      if (this.keep === 0) {
        removeIfPresent(this.path);
      } else {
        removeIfPresent(`${this.path}.${this.keep}`);
        for (let i = this.keep - 1; i >= 1; i--) renameIfPresent(`${this.path}.${i}`, `${this.path}.${i + 1}`);
        renameIfPresent(this.path, `${this.path}.1`);
      }
      this.fd = this.open();
    } catch (err) {
      if (this.onWriteState === undefined) throw err;
      this.failed(err as Error);
      return;
    }
    this.rotations++;
    this.counters?.inc(C_ROTATIONS);
  }
}

/** Opening for append creates the file, so ENOENT means its directory is missing. */
function whyNotOpened(path: string, err: NodeJS.ErrnoException): string {
  if (err.code === 'ENOENT') return `no directory "${dirname(path)}"`;
  if (err.code === 'EISDIR') return 'is a directory';
  if (err.code === 'EACCES') return 'permission denied';
  return err.code ?? err.message;
}

function removeIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function renameIfPresent(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

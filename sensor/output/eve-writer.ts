/**
 * EVE-style JSON lines file: one event object per line (flows, captures, tls, dns, health), field
 * names compatible with Suricata's EVE where they overlap so Filebeat, Logstash and Splunk
 * pipelines ingest it. Buffered; `flush()` writes, `close()` flushes and closes. Optional rotation
 * by size (eve.json -> eve.json.1 -> ... -> eve.json.N, the oldest deleted) and `reopen()` for
 * SIGHUP after logrotate moved the file. Files Hark creates are mode 0600: events carry personal data.
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

const C_ROTATIONS = defineCounter('output.eve.rotations');

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
}

export class JsonLinesWriter implements EventSink, EventOutput {
  private fd: number;
  private parts: string[] = [];
  /** Bytes (UTF-8) buffered in `parts`. */
  private size = 0;
  /** Bytes already in the open file. */
  private fileBytes = 0;
  private readonly maxBytes: number;
  private readonly keep: number;
  private readonly counters: Counters | undefined;
  written = 0;
  rotations = 0;

  /** `path` '-' writes to standard output (never rotated). */
  constructor(readonly path: string, options: JsonLinesOptions = {}) {
    const maxBytes = options.maxBytes ?? 0;
    const keep = options.keep ?? DEFAULT_KEEP_FILES;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new OutputConfigError('E_EVE_CONFIG', `EVE maxBytes must be a whole number of bytes, not "${options.maxBytes}"`);
    if (!Number.isSafeInteger(keep) || keep < 0 || keep > MAX_KEEP_FILES) throw new OutputConfigError('E_EVE_CONFIG', `EVE keep must be a whole number from 0 to ${MAX_KEEP_FILES}, not "${options.keep}"`);
    this.maxBytes = path === '-' ? 0 : maxBytes;
    this.keep = keep;
    this.counters = options.counters;
    this.fd = path === '-' ? 1 : this.open();
  }

  write(event: object): void {
    const line = `${jsonOf(event)}\n`;
    const n = Buffer.byteLength(line);
    // Rotate at a line boundary, so no file goes past maxBytes unless one line alone is larger.
    if (this.maxBytes > 0 && this.fileBytes + this.size + n > this.maxBytes && this.fileBytes + this.size > 0) {
      this.flush();
      this.rotate();
    }
    this.parts.push(line);
    this.size += n;
    this.written++;
    if (this.size >= FLUSH_BYTES) this.flush();
  }

  flush(): void {
    if (this.parts.length === 0) return;
    const data = this.parts.join('');
    this.parts = [];
    this.fileBytes += this.size;
    this.size = 0;
    writeSync(this.fd, data);
  }

  /** After logrotate renamed the file: the next line goes to a new file at `path`. */
  reopen(): void {
    if (this.path === '-' || this.fd < 0) return;
    this.flush();
    closeSync(this.fd);
    this.fd = this.open();
  }

  close(): Promise<void> {
    this.flush();
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

  /** eve.json.N is deleted, each eve.json.i becomes .i+1, eve.json becomes .1, a new eve.json opens. */
  private rotate(): void {
    closeSync(this.fd);
    this.fd = -1;
    if (this.keep === 0) {
      removeIfPresent(this.path);
    } else {
      removeIfPresent(`${this.path}.${this.keep}`);
      for (let i = this.keep - 1; i >= 1; i--) renameIfPresent(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      renameIfPresent(this.path, `${this.path}.1`);
    }
    this.fd = this.open();
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

/**
 * App layer, TLS: NSS key log files (SSLKEYLOGFILE) and the session key store.
 * Input: key log text (`LABEL <client random hex> <secret hex>` lines), or a file path that is followed as it
 * grows. Output: a bounded `KeyStore` of secrets by client random, with listeners told of each session that
 * gained keys. Bad lines are counted and reported by line number (never echoed: they may hold secrets) and
 * never thrown; a key log that vanishes or is replaced at run time is a counted event, not a crash.
 * Format: https://firefox-source-docs.mozilla.org/security/nss/legacy/key_log_format/
 */

import { closeSync, fstatSync, openSync, readSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { Counters, defineCounter } from '../../events/counters.js';

/** Sessions kept: measured ~370 bytes each (TLS 1.2) to ~490 (TLS 1.3, four secrets), so at most ~100 MB; a busy site's key log for a day. */
export const MAX_KEYLOG_SESSIONS = 200_000;
/** A valid line is at most 31 + 64 + 96 + 2 characters; longer ones are not key log lines. */
export const MAX_KEYLOG_LINE_BYTES = 1024;
/** Bytes read per poll; the rest follows on the next turn of the event loop so a large key log never stalls packets. */
export const MAX_KEYLOG_READ_PER_POLL_BYTES = 4 << 20;
/** Stat interval when file events are missed (network file systems, a replaced file, inotify limits). */
export const DEFAULT_KEYLOG_POLL_MS = 1000;

const C_LINES = defineCounter('tls.keylog.lines');
const C_BAD_LINES = defineCounter('tls.keylog.bad_lines');
const C_IGNORED_LINES = defineCounter('tls.keylog.ignored_lines');
const C_SESSIONS = defineCounter('tls.keylog.sessions');
const C_EVICTED = defineCounter('tls.keylog.sessions_evicted');
const C_VANISHED = defineCounter('tls.keylog.file_vanished');
const C_REREAD = defineCounter('tls.keylog.file_reread');
const C_READ_ERRORS = defineCounter('tls.keylog.read_errors');
const C_LISTENER_ERRORS = defineCounter('tls.keylog.listener_errors');

const RANDOM_HEX_LEN = 64;

/** Secrets of one session (TLS <= 1.2: the master secret; TLS 1.3: traffic secrets). */
export interface SessionSecrets {
  /** CLIENT_RANDOM: the 48-byte master secret of TLS <= 1.2. */
  masterSecret?: Buffer;
  clientEarlyTrafficSecret?: Buffer;
  clientHandshakeTrafficSecret?: Buffer;
  serverHandshakeTrafficSecret?: Buffer;
  clientTrafficSecret0?: Buffer;
  serverTrafficSecret0?: Buffer;
}

/** Labels stored, with the `SessionSecrets` field each fills and the secret lengths allowed. */
const LABELS = {
  CLIENT_RANDOM: { field: 'masterSecret', lengths: [48] },
  CLIENT_EARLY_TRAFFIC_SECRET: { field: 'clientEarlyTrafficSecret', lengths: [32, 48] },
  CLIENT_HANDSHAKE_TRAFFIC_SECRET: { field: 'clientHandshakeTrafficSecret', lengths: [32, 48] },
  SERVER_HANDSHAKE_TRAFFIC_SECRET: { field: 'serverHandshakeTrafficSecret', lengths: [32, 48] },
  CLIENT_TRAFFIC_SECRET_0: { field: 'clientTrafficSecret0', lengths: [32, 48] },
  SERVER_TRAFFIC_SECRET_0: { field: 'serverTrafficSecret0', lengths: [32, 48] },
} as const satisfies Record<string, { field: keyof SessionSecrets; lengths: readonly number[] }>;

export type KeyLogLabel = keyof typeof LABELS;

/**
 * Labels read but not stored: EXPORTER_SECRET (not needed to decrypt), RSA (keyed by the encrypted premaster,
 * and every client that writes it also writes CLIENT_RANDOM), and the ECH labels of draft-ietf-tls-ech.
 * Any other well-formed label is ignored too (forward compatible), and counted the same.
 */
export const IGNORED_LABELS: readonly string[] = ['EXPORTER_SECRET', 'RSA', 'ECH_SECRET', 'ECH_CONFIG', 'PMS_CLIENT_RANDOM'];

export interface KeyLogEntry {
  readonly label: KeyLogLabel;
  /** Lower-case hex of the 32-byte client random. */
  readonly clientRandom: string;
  readonly secret: Buffer;
}

export type KeyLogLine =
  | { readonly kind: 'entry'; readonly entry: KeyLogEntry }
  | { readonly kind: 'blank' }
  | { readonly kind: 'ignored'; readonly label: string }
  | { readonly kind: 'bad'; readonly reason: string };

export interface BadKeyLogLine {
  /** 1-based line number in the file. */
  readonly line: number;
  readonly reason: string;
}

export interface KeyLogParseResult {
  readonly entries: KeyLogEntry[];
  readonly ignored: number;
  readonly bad: BadKeyLogLine[];
}

const HEX = /^[0-9a-fA-F]*$/;
const BLANK: KeyLogLine = { kind: 'blank' };

function isLabel(label: string): label is KeyLogLabel {
  return Object.prototype.hasOwnProperty.call(LABELS, label);
}

/** Parses one line (without its newline; a trailing CR is allowed). Never throws. */
export function parseKeyLogLine(line: string): KeyLogLine {
  const text = line.trim();
  if (text.length === 0 || text.charCodeAt(0) === 0x23 /* # */) return BLANK;
  if (text.length > MAX_KEYLOG_LINE_BYTES) return { kind: 'bad', reason: 'line too long' };
  const fields = text.split(/[ \t]+/);
  if (fields.length !== 3) return { kind: 'bad', reason: `expected 3 fields, found ${fields.length}` };
  const [label, random, secretHex] = fields;
  if (!/^[A-Z0-9_]+$/.test(label)) return { kind: 'bad', reason: 'label is not an upper-case word' };
  if (!isLabel(label)) {
    if (HEX.test(random) && HEX.test(secretHex)) return { kind: 'ignored', label };
    return { kind: 'bad', reason: 'fields are not hex' };
  }
  if (random.length !== RANDOM_HEX_LEN || !HEX.test(random)) return { kind: 'bad', reason: 'client random is not 32 bytes of hex' };
  if (secretHex.length % 2 !== 0 || !HEX.test(secretHex)) return { kind: 'bad', reason: 'secret is not hex' };
  const lengths: readonly number[] = LABELS[label].lengths;
  if (!lengths.includes(secretHex.length / 2)) {
    return { kind: 'bad', reason: `${label} secret is ${secretHex.length / 2} bytes, expected ${lengths.join(' or ')}` };
  }
  return { kind: 'entry', entry: { label, clientRandom: random.toLowerCase(), secret: Buffer.from(secretHex, 'hex') } };
}

/** Parses a whole key log text; `firstLine` numbers the first line (for text read in pieces). */
export function parseKeyLog(text: string, firstLine = 1): KeyLogParseResult {
  const entries: KeyLogEntry[] = [];
  const bad: BadKeyLogLine[] = [];
  let ignored = 0;
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const r = parseKeyLogLine(lines[i]);
    if (r.kind === 'entry') entries.push(r.entry);
    else if (r.kind === 'ignored') ignored++;
    else if (r.kind === 'bad') bad.push({ line: firstLine + i, reason: r.reason });
  }
  return { entries, ignored, bad };
}

function randomHex(clientRandom: Uint8Array | string): string {
  if (typeof clientRandom !== 'string') return Buffer.from(clientRandom.buffer, clientRandom.byteOffset, clientRandom.byteLength).toString('hex');
  return /[A-F]/.test(clientRandom) ? clientRandom.toLowerCase() : clientRandom;
}

/**
 * Secrets by client random, oldest evicted past `maxSessions` (counted). Listeners hear of every session that
 * gained or changed a secret, synchronously, in the order lines were added; a throwing listener is counted
 * and does not stop the others.
 */
export class KeyStore {
  private readonly sessions = new Map<string, SessionSecrets>();
  private readonly listeners = new Set<(clientRandomHex: string) => void>();
  private evictedCount = 0;
  private everAdded = false;

  constructor(private readonly counters?: Counters, readonly maxSessions = MAX_KEYLOG_SESSIONS) {}

  /** True once any secret has been stored (evicted since or not): this sensor is being given keys. */
  get hasHadKeys(): boolean {
    return this.everAdded;
  }

  /** Stores one secret; false (and nothing stored) when the label is unknown or the sizes are wrong, or it was already known. */
  add(label: KeyLogLabel | string, clientRandom: Uint8Array | string, secret: Uint8Array | string): boolean {
    if (!isLabel(label)) return false;
    const hex = randomHex(clientRandom);
    if (hex.length !== RANDOM_HEX_LEN || !HEX.test(hex)) return false;
    if (typeof secret === 'string' && (!HEX.test(secret) || secret.length % 2 !== 0)) return false;
    const value = typeof secret === 'string' ? Buffer.from(secret, 'hex') : Buffer.from(secret);
    const spec = LABELS[label];
    if (!(spec.lengths as readonly number[]).includes(value.length)) return false;
    let s = this.sessions.get(hex);
    if (s) {
      const old = s[spec.field];
      if (old && old.equals(value)) return false;
      // Keep insertion order = recency of keys, so eviction drops the session whose keys are oldest.
      this.sessions.delete(hex);
    } else {
      s = {};
      this.counters?.inc(C_SESSIONS);
    }
    s[spec.field] = value;
    this.sessions.set(hex, s);
    this.everAdded = true;
    if (this.sessions.size > this.maxSessions) this.evictOldest();
    this.notify(hex);
    return true;
  }

  /** Adds parsed entries; returns how many changed the store. */
  addEntries(entries: readonly KeyLogEntry[]): number {
    let n = 0;
    for (const e of entries) if (this.add(e.label, e.clientRandom, e.secret)) n++;
    return n;
  }

  /** Secrets for a client random (hex, either case, or the 32 bytes). */
  get(clientRandom: string | Uint8Array): Readonly<SessionSecrets> | undefined {
    return this.sessions.get(randomHex(clientRandom));
  }

  /** Registers a listener for sessions gaining keys; returns its removal function. */
  onKeys(listener: (clientRandomHex: string) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Sessions dropped by the size bound since creation. */
  get evicted(): number {
    return this.evictedCount;
  }

  private evictOldest(): void {
    const oldest = this.sessions.keys().next();
    if (oldest.done) return;
    this.sessions.delete(oldest.value);
    this.evictedCount++;
    this.counters?.inc(C_EVICTED);
  }

  private notify(hex: string): void {
    for (const l of this.listeners) {
      try {
        l(hex);
      } catch {
        this.counters?.inc(C_LISTENER_ERRORS);
      }
    }
  }
}

export type KeyLogErrorCode = 'E_KEYLOG_NOT_FOUND' | 'E_KEYLOG_PERMISSION' | 'E_KEYLOG_NOT_FILE' | 'E_KEYLOG_READ';

/** A key log that cannot be read at start (bad configuration). */
export class KeyLogError extends Error {
  readonly code: KeyLogErrorCode;
  readonly path: string;
  constructor(code: KeyLogErrorCode, path: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.path = path;
  }
}

function keyLogError(path: string, err: unknown): KeyLogError {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new KeyLogError('E_KEYLOG_NOT_FOUND', path, `Cannot read key log "${path}": no such file`, { cause: err });
  if (code === 'EACCES' || code === 'EPERM') return new KeyLogError('E_KEYLOG_PERMISSION', path, `Cannot read key log "${path}": permission denied`, { cause: err });
  if (code === 'EISDIR') return new KeyLogError('E_KEYLOG_NOT_FILE', path, `Cannot read key log "${path}": is a directory`, { cause: err });
  const why = err instanceof Error ? err.message : String(err);
  return new KeyLogError('E_KEYLOG_READ', path, `Cannot read key log "${path}": ${why}`, { cause: err });
}

/** Run-time events of a followed key log, for a log line. */
export type KeyLogEvent = 'vanished' | 'reappeared' | 'reread' | 'read_error';

export interface KeyLogWatchOptions {
  /** Follow the file as it grows (default true); false reads it once, including an unterminated last line. */
  follow?: boolean;
  pollIntervalMs?: number;
  /** Told of each bad line (number and reason; the text is withheld because it may hold secrets). */
  onBadLine?: (bad: BadKeyLogLine) => void;
  onEvent?: (event: KeyLogEvent, message: string) => void;
}

export interface KeyLogWatchStats {
  readonly path: string;
  /** Bytes of the current file consumed. */
  readonly offset: number;
  readonly lines: number;
  readonly entries: number;
  readonly ignored: number;
  readonly badLines: number;
}

/**
 * Follows a key log: reads it whole at start (synchronously, so an offline run sees every key before its first
 * packet), then reads only the bytes appended since, on file events and on a poll timer. A partial last line
 * waits for its newline; while the file is idle it is also tried as is (tentatively: its final form replaces
 * it). A truncated file (size below the offset) or a replaced one (other inode) is read again from the start.
 */
export class KeyLogWatcher {
  readonly path: string;
  private fd = -1;
  private ino = -1;
  private dev = -1;
  private offset = 0;
  private lineNo = 0;
  private partial = '';
  /** Skipping the rest of an over-long line until its newline. */
  private discarding = false;
  private vanished = false;
  private readonly follow: boolean;
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private pending: NodeJS.Immediate | undefined;
  private closed = false;
  private readonly buf = Buffer.allocUnsafe(64 << 10);
  private entries = 0;
  private ignored = 0;
  private badLines = 0;

  private constructor(path: string, private readonly store: KeyStore, private readonly counters: Counters, private readonly opts: KeyLogWatchOptions) {
    this.path = path;
    this.follow = opts.follow !== false;
  }

  /** Opens and reads the key log; throws `KeyLogError` when it cannot be read now. */
  static open(path: string, store: KeyStore, counters: Counters, opts: KeyLogWatchOptions = {}): KeyLogWatcher {
    const w = new KeyLogWatcher(path, store, counters, opts);
    w.openFile(true);
    try {
      w.drain(true);
    } catch (err) {
      w.close();
      throw err;
    }
    if (w.follow) w.startWatching();
    else w.close();
    return w;
  }

  /** Checks the file now: rotation, vanishing, new bytes. Called by the timers; callable by tests. */
  poll(): void {
    if (this.closed) return;
    let st;
    try {
      st = statSync(this.path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        if (!this.vanished) {
          this.vanished = true;
          this.counters.inc(C_VANISHED);
          this.opts.onEvent?.('vanished', `Key log "${this.path}" vanished; keys read so far are kept`);
        }
      } else {
        this.readError(err);
      }
      return;
    }
    if (this.vanished || st.ino !== this.ino || st.dev !== this.dev) {
      const reappeared = this.vanished;
      this.vanished = false;
      try {
        this.openFile(false);
      } catch (err) {
        this.readError(err);
        return;
      }
      this.counters.inc(C_REREAD);
      this.opts.onEvent?.(reappeared ? 'reappeared' : 'reread', `Key log "${this.path}" was ${reappeared ? 'created again' : 'replaced'}; reading it from the start`);
    } else if (st.size < this.offset) {
      this.restart();
      this.counters.inc(C_REREAD);
      this.opts.onEvent?.('reread', `Key log "${this.path}" was truncated; reading it from the start`);
    }
    this.drain(false);
  }

  stats(): KeyLogWatchStats {
    return { path: this.path, offset: this.offset, lines: this.lineNo, entries: this.entries, ignored: this.ignored, badLines: this.badLines };
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.pending) clearImmediate(this.pending);
    this.watcher?.close();
    this.timer = undefined;
    this.pending = undefined;
    this.watcher = undefined;
    if (this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {
        // already closed: nothing to release
      }
      this.fd = -1;
    }
  }

  private openFile(atStart: boolean): void {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
      const st = fstatSync(fd);
      if (!st.isFile()) {
        closeSync(fd);
        throw Object.assign(new Error('not a regular file'), { code: st.isDirectory() ? 'EISDIR' : 'ENOTFILE' });
      }
      if (this.fd >= 0) closeSync(this.fd);
      this.fd = fd;
      this.ino = st.ino;
      this.dev = st.dev;
    } catch (err) {
      if (atStart) throw keyLogError(this.path, err);
      throw err;
    }
    this.restart();
  }

  private restart(): void {
    this.offset = 0;
    this.lineNo = 0;
    this.partial = '';
    this.discarding = false;
  }

  private readError(err: unknown): void {
    this.counters.inc(C_READ_ERRORS);
    this.opts.onEvent?.('read_error', keyLogError(this.path, err).message);
  }

  /** A poll from a timer or file event: a throwing onBadLine / onEvent callback is counted, never fatal. */
  private tick(): void {
    try {
      this.poll();
    } catch {
      this.counters.inc(C_LISTENER_ERRORS);
    }
  }

  private startWatching(): void {
    const interval = this.opts.pollIntervalMs ?? DEFAULT_KEYLOG_POLL_MS;
    this.timer = setInterval(() => this.tick(), interval);
    this.timer.unref();
    // Watch the directory, not the file: a file watch dies with the inode when the key log is replaced.
    const name = basename(this.path);
    try {
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
        if (file === null || file === name) this.tick();
      });
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      this.watcher = undefined; // the poll timer still runs
    }
  }

  /** Reads new bytes (bounded per call; a follower continues on the next event-loop turn). */
  private drain(atStart: boolean): void {
    if (this.fd < 0) return;
    let size: number;
    try {
      size = fstatSync(this.fd).size;
    } catch (err) {
      if (atStart) throw keyLogError(this.path, err);
      this.readError(err);
      return;
    }
    const budget = atStart || !this.follow ? Infinity : MAX_KEYLOG_READ_PER_POLL_BYTES;
    let read = 0;
    while (this.offset < size && read < budget) {
      let n: number;
      try {
        n = readSync(this.fd, this.buf, 0, Math.min(this.buf.length, size - this.offset), this.offset);
      } catch (err) {
        if (atStart) throw keyLogError(this.path, err);
        this.readError(err);
        return;
      }
      if (n <= 0) break;
      this.offset += n;
      read += n;
      this.consume(this.buf.toString('latin1', 0, n));
    }
    if (this.offset < size) {
      if (!this.pending && !this.closed) this.pending = setImmediate(() => {
        this.pending = undefined;
        this.tick();
      });
      return;
    }
    // Idle file (nothing new since the last look) or a one-shot read: try an unterminated last line as it stands.
    if (this.partial.length > 0 && !this.discarding && (read === 0 || atStart || !this.follow)) {
      const r = parseKeyLogLine(this.partial);
      if (r.kind === 'entry') this.store.add(r.entry.label, r.entry.clientRandom, r.entry.secret);
    }
  }

  private consume(chunk: string): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf('\n', start);
      if (nl < 0) break;
      const piece = chunk.slice(start, nl);
      start = nl + 1;
      this.lineNo++;
      if (this.discarding) {
        this.discarding = false;
        this.partial = '';
        continue;
      }
      const line = this.partial.length > 0 ? this.partial + piece : piece;
      this.partial = '';
      this.handleLine(line);
    }
    if (start < chunk.length) {
      if (this.discarding) return;
      this.partial += chunk.slice(start);
      if (this.partial.length > MAX_KEYLOG_LINE_BYTES) {
        this.partial = '';
        this.discarding = true;
        this.bad({ line: this.lineNo + 1, reason: 'line too long' });
      }
    }
  }

  private handleLine(line: string): void {
    const r = parseKeyLogLine(line);
    if (r.kind === 'entry') {
      this.entries++;
      this.counters.inc(C_LINES);
      this.store.add(r.entry.label, r.entry.clientRandom, r.entry.secret);
    } else if (r.kind === 'ignored') {
      this.ignored++;
      this.counters.inc(C_IGNORED_LINES);
    } else if (r.kind === 'bad') {
      this.bad({ line: this.lineNo, reason: r.reason });
    }
  }

  private bad(b: BadKeyLogLine): void {
    this.badLines++;
    this.counters.inc(C_BAD_LINES);
    this.opts.onBadLine?.(b);
  }
}

/** Reads a key log into `store` and follows it (see `KeyLogWatcher`); throws `KeyLogError` if unreadable now. */
export function watchKeyLogFile(path: string, store: KeyStore, counters: Counters, opts: KeyLogWatchOptions = {}): KeyLogWatcher {
  return KeyLogWatcher.open(path, store, counters, opts);
}

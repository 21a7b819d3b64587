/**
 * Upload stage: drains the capture store's outbox to home through a HomeTransport, as
 * `POST /v1/sensor/captures {captures}` batches (home/PROTOCOL.md). Input: committed captures (the
 * store's outbox; `kick()` when new ones commit). Output: captures marked uploaded once home
 * answered 2xx. At-least-once: a capture is marked only after home's 2xx, and home ignores an id it
 * already has, so retries have an exactly-once effect. Failures back off exponentially with full
 * jitter; 413 halves the batch; 429/503 honour retry-after; a 400/422 is bisected down to the
 * capture(s) home refuses, which are quarantined (kept, marked) so they never block the queue, as
 * are those a 2xx answer names in `rejects` (a 2xx that counts refusals without naming them, from
 * an older home, is bisected too). Only the captures home took are marked, at the counts sent.
 */
import { Counters, defineCounter } from '../events/counters.js';
import { healthEvent, type HealthSink } from '../events/health.js';
import type { HomeResponse, HomeTransport } from '../home-client/transport.js';
import type { CaptureEvent } from '../events/capture.js';
import type { CaptureStore } from '../store/capture-store.js';

export const CAPTURES_PATH = '/v1/sensor/captures';
const DEFAULT_BATCH = 500;
/** Home takes at most this many captures per request (PROTOCOL.md). */
export const MAX_BATCH = 1000;
export const EVIDENCE_PATH = '/v1/sensor/evidence';
/** Pages per evidence call and their decoded bytes: home accepts 32 and 24 MiB of base64. */
const EVIDENCE_ITEMS = 32;
const EVIDENCE_BYTES = 12 << 20;
const DEFAULT_MIN_BACKOFF_MS = 1000;
const DEFAULT_MAX_BACKOFF_MS = 5 * 60_000;
/** Failing this long without one success raises `upload.failing`: short outages are normal. */
const DEFAULT_FAILING_AFTER_MS = 10 * 60_000;
/** One request may take this long (a 1000-capture batch is ~2 MB) before it counts as failed. */
const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** With nothing to send and no kick, look at the outbox again this often anyway. */
const IDLE_POLL_MS = 30_000;
/** How long `stop()` lets an in-flight request finish before abandoning it. */
const DEFAULT_STOP_GRACE_MS = 5000;

const C_CAPTURES = defineCounter('upload.captures');
const C_BATCHES = defineCounter('upload.batches');
const C_EVIDENCE = defineCounter('upload.evidence');
const C_EVIDENCE_REFUSED = defineCounter('upload.evidence_refused');
const C_FAILURES = defineCounter('upload.failures');
const C_DUPLICATES = defineCounter('upload.duplicates');
const C_QUEUE = defineCounter('upload.queue');
const C_QUARANTINED = defineCounter('upload.quarantined');
const C_SHRUNK = defineCounter('upload.batch_shrunk');
const C_ERRORS = defineCounter('upload.errors');

export class UploadError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export interface UploaderOptions {
  counters: Counters;
  /** Captures per request, 1..1000; default 500. */
  batchSize?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** `upload.failing` (warning) is raised after failing this long, cleared on the next success. */
  failingAfterMs?: number;
  requestTimeoutMs?: number;
  stopGraceMs?: number;
  onHealth?: HealthSink;
  /** Clock for `upload.failing` and health timestamps (tests). */
  now?: () => number;
  /** Uniform [0, 1) for the backoff jitter (tests). */
  random?: () => number;
  /** Called with every backoff delay chosen (tests and logs). */
  onBackoff?: (delayMs: number, reason: string) => void;
}

/** What one pass over the outbox came to. */
type Outcome = { kind: 'sent' } | { kind: 'empty' } | { kind: 'failed'; reason: string; retryAfterMs?: number };


/** `retry-after` as milliseconds from now: delta-seconds or an HTTP-date (RFC 9110 section 10.2.3). */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const t = v.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const at = Date.parse(t);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : undefined;
}

/** Why home refused one capture: its code when it named one, and the reason the store keeps. */
interface Rejection {
  readonly error: string | undefined;
  readonly reason: string;
}

/** The captures one pass quarantined, and the last refusal's status and code, for the health event. */
interface Refused {
  ids: string[];
  status: number;
  error: string | undefined;
}

/**
 * The captures of a batch home answered 2xx to but refused, by their place in the batch, from the
 * answer's `rejects` (home/PROTOCOL.md): empty when it refused none. Undefined when it says it
 * refused some without naming each (a home older than `rejects`), or names them inconsistently
 * (a place outside the batch, an id not at that place): the caller bisects then.
 */
export function readRejects(part: readonly CaptureEvent[], body: unknown): Map<number, Rejection> | undefined {
  const b = (body !== null && typeof body === 'object' ? body : {}) as { rejected?: unknown; rejects?: unknown };
  const rejected = typeof b.rejected === 'number' && Number.isFinite(b.rejected) ? b.rejected : 0;
  const out = new Map<number, Rejection>();
  if (!Array.isArray(b.rejects)) return rejected > 0 ? undefined : out;
  for (const r of b.rejects as unknown[]) {
    const e = (r !== null && typeof r === 'object' ? r : {}) as { index?: unknown; id?: unknown; error?: unknown; message?: unknown };
    if (!Number.isInteger(e.index) || (e.index as number) < 0 || (e.index as number) >= part.length) return undefined;
    const i = e.index as number;
    if (e.id !== undefined && e.id !== part[i].id) return undefined;
    const error = typeof e.error === 'string' ? e.error.slice(0, 64) : undefined;
    const message = typeof e.message === 'string' ? e.message.slice(0, 200) : 'no reason given';
    out.set(i, { error, reason: `home rejected it: ${error !== undefined ? `${error} ` : ''}${message}` });
  }
  return out.size < rejected ? undefined : out;
}

/** A 4xx that is about the captures sent (bisect them), not about the sensor's standing with home. */
function refusesContent(status: number): boolean {
  return status === 400 || status === 422 || status === 415;
}

export class Uploader {
  private readonly counters: Counters;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly failingAfterMs: number;
  private readonly requestTimeoutMs: number;
  private readonly stopGraceMs: number;
  private readonly onHealth: HealthSink | undefined;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly onBackoff: ((delayMs: number, reason: string) => void) | undefined;
  /** Captures per request now: halves on 413. */
  private batch: number;
  private attempt = 0;
  private failingSince: number | undefined;
  private failingRaised = false;
  private running: Promise<void> | undefined;
  /** The current run's flags; `abandoned` is set when stop() gave up on an in-flight request, after
   * which that run must not touch the store again (a new start() gets a fresh object). */
  private run: { stopping: boolean; abandoned: boolean } = { stopping: false, abandoned: false };
  private inFlight: AbortController | undefined;
  private wake: (() => void) | undefined;
  private wakeable = false;
  private kicked = false;
  private drainWaiters: Array<() => void> = [];

  constructor(private readonly store: CaptureStore, private readonly transport: HomeTransport, options: UploaderOptions) {
    const batch = options.batchSize ?? DEFAULT_BATCH;
    if (!Number.isInteger(batch) || batch < 1 || batch > MAX_BATCH) {
      throw new UploadError('E_UPLOAD_CONFIG', `Cannot use upload batch size ${batch}: it must be a whole number from 1 to ${MAX_BATCH}`);
    }
    this.batch = batch;
    this.counters = options.counters;
    this.minBackoffMs = options.minBackoffMs ?? DEFAULT_MIN_BACKOFF_MS;
    this.maxBackoffMs = Math.max(this.minBackoffMs, options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS);
    this.failingAfterMs = options.failingAfterMs ?? DEFAULT_FAILING_AFTER_MS;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.stopGraceMs = options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
    this.onHealth = options.onHealth;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.onBackoff = options.onBackoff;
  }

  /** Captures per request at the moment (smaller than configured after a 413). */
  get batchSize(): number {
    return this.batch;
  }

  start(): void {
    if (this.running !== undefined) return;
    this.run = { stopping: false, abandoned: false };
    this.running = this.loop(this.run);
  }

  /** New captures were committed: if idle, look at the outbox now (a backoff is still honoured). */
  kick(): void {
    this.kicked = true;
    if (this.wakeable) this.wake?.();
  }

  /**
   * Stops the loop. An in-flight batch may finish (and be marked) within stopGraceMs; after that it
   * is aborted and its captures stay in the outbox. The store is not touched once this resolves.
   */
  async stop(): Promise<void> {
    const running = this.running;
    if (running === undefined) return;
    const run = this.run;
    run.stopping = true;
    this.wake?.();
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), this.stopGraceMs); });
    const r = await Promise.race([running.then(() => 'done' as const), graceOver]);
    clearTimeout(timer);
    if (r === 'late') {
      run.abandoned = true;
      this.inFlight?.abort();
    }
    this.running = undefined;
    for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Resolves true once the outbox is empty (quarantined captures aside), false after timeoutMs. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.store.pendingCount() === 0) return true;
    this.kick();
    let timer: NodeJS.Timeout | undefined;
    let waiter: (() => void) | undefined;
    const emptied = new Promise<void>((resolve) => { waiter = resolve; this.drainWaiters.push(resolve); });
    const late = new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); });
    await Promise.race([emptied, late]);
    clearTimeout(timer);
    const i = waiter !== undefined ? this.drainWaiters.indexOf(waiter) : -1;
    if (i >= 0) this.drainWaiters.splice(i, 1);
    return this.running === undefined && this.run.abandoned ? false : this.store.pendingCount() === 0;
  }

  private async loop(run: { stopping: boolean; abandoned: boolean }): Promise<void> {
    while (!run.stopping) {
      let outcome: Outcome;
      try {
        outcome = await this.pass(run);
      } catch (err) {
        // The store failed (full, closed) or a bug: count it and back off like a failed upload.
        this.counters.inc(C_ERRORS);
        outcome = { kind: 'failed', reason: `error: ${(err as Error).message}` };
      }
      if (run.stopping) break;
      if (outcome.kind === 'sent') {
        this.succeeded();
        continue;
      }
      if (outcome.kind === 'empty') {
        for (const w of this.drainWaiters.splice(0)) w();
        if (this.kicked) continue;
        await this.sleep(IDLE_POLL_MS, true);
        continue;
      }
      this.failed(outcome.reason);
      const delay = outcome.retryAfterMs !== undefined
        ? Math.min(this.maxBackoffMs, Math.max(0, outcome.retryAfterMs))
        : this.backoffDelay();
      this.attempt++;
      this.onBackoff?.(delay, outcome.reason);
      await this.sleep(delay, false);
    }
  }

  /** Full jitter: uniform between the minimum and min * 2^attempt (capped). */
  private backoffDelay(): number {
    const ceiling = Math.min(this.maxBackoffMs, this.minBackoffMs * 2 ** Math.min(this.attempt, 52));
    return Math.round(this.minBackoffMs + this.random() * (ceiling - this.minBackoffMs));
  }

  /** One batch, bisected on refusal. */
  private async pass(run: { abandoned: boolean }): Promise<Outcome> {
    this.kicked = false;
    const batch = this.store.outboxBatch(this.batch);
    this.counters.set(C_QUEUE, batch.length < this.batch ? batch.length : this.store.pendingCount());
    // Captures first; the pages of captures home already has when there are none to send.
    if (batch.length === 0) return this.evidencePass(run);
    // Slices still to send, last = next; a refused slice is split in two in its place.
    const todo: CaptureEvent[][] = [batch];
    const refused: Refused = { ids: [], status: 0, error: undefined };
    while (todo.length > 0) {
      const part = todo.pop() as CaptureEvent[];
      let res: HomeResponse;
      try {
        res = await this.post(part);
      } catch (err) {
        this.raiseQuarantined(refused);
        return { kind: 'failed', reason: `${(err as { code?: string }).code ?? 'error'}: ${(err as Error).message}` };
      }
      if (run.abandoned) return { kind: 'failed', reason: 'stopped' };
      const s = res.status;
      if (s >= 200 && s < 300) {
        const rejects = readRejects(part, res.body);
        if (rejects === undefined && part.length > 1) {
          // Home took the batch but refused some it does not name (a home older than `rejects`):
          // find them by halves; the ones it took come back as duplicates.
          todo.push(...this.halves(part));
          continue;
        }
        const named = rejects ?? new Map([[0, { error: undefined, reason: `HTTP ${s}: rejected, home gave no reason` }]]);
        for (const [i, why] of named) this.quarantineOne(part[i], s, why, refused);
        this.accepted(named.size === 0 ? part : part.filter((_, i) => !named.has(i)), res.body);
        continue;
      }
      if (s === 413 && part.length > 1) {
        // Home's body limit: send smaller batches from now on.
        this.batch = Math.max(1, Math.floor(part.length / 2));
        this.counters.inc(C_SHRUNK);
        todo.push(...this.halves(part));
        continue;
      }
      if (refusesContent(s) || s === 413) {
        if (part.length === 1) {
          this.quarantineOne(part[0], s, { error: undefined, reason: `HTTP ${s}: ${describe(res.body)}` }, refused);
          continue;
        }
        todo.push(...this.halves(part));
        continue;
      }
      const retryAfterMs = s === 429 || s === 503 ? parseRetryAfter(res.headers?.['retry-after'], this.now()) : undefined;
      this.raiseQuarantined(refused);
      return { kind: 'failed', reason: `HTTP ${s}`, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
    }
    this.raiseQuarantined(refused);
    return { kind: 'sent' };
  }

  /** Takes one capture home refuses out of the outbox (kept in the store, with why). */
  private quarantineOne(c: CaptureEvent, status: number, why: Rejection, refused: Refused): void {
    this.store.quarantine([c.id], why.reason, this.now());
    this.counters.inc(C_QUARANTINED);
    refused.ids.push(c.id);
    refused.status = status;
    refused.error = why.error;
  }

  /**
   * Sends stored pages of uploaded captures. Home without evidence storage (404) or refusing one
   * page (400/413/422) marks them sent: a page never blocks the queue, and the capture has its text.
   */
  private async evidencePass(run: { abandoned: boolean }): Promise<Outcome> {
    const items = this.store.evidenceBatch(EVIDENCE_ITEMS, EVIDENCE_BYTES);
    if (items.length === 0) return { kind: 'empty' };
    const body = {
      evidence: items.map((e) => ({ capture_id: e.captureId, content_type: e.contentType, charset: e.charset, body_base64: e.body.toString('base64'), truncated: e.truncated })),
    };
    const ac = new AbortController();
    this.inFlight = ac;
    let res: HomeResponse;
    try {
      res = await this.transport.request('POST', EVIDENCE_PATH, body, { timeoutMs: this.requestTimeoutMs, signal: ac.signal });
    } catch (err) {
      return { kind: 'failed', reason: `evidence: ${(err as { code?: string }).code ?? 'error'}: ${(err as Error).message}` };
    } finally {
      this.inFlight = undefined;
    }
    if (run.abandoned) return { kind: 'failed', reason: 'stopped' };
    const ids = items.map((e) => e.captureId);
    if (res.status >= 200 && res.status < 300) {
      this.store.markEvidenceUploaded(ids, this.now());
      this.counters.inc(C_EVIDENCE, items.length);
      return { kind: 'sent' };
    }
    if (res.status === 404 || refusesContent(res.status) || res.status === 413) {
      this.store.markEvidenceUploaded(ids, this.now());
      this.counters.inc(C_EVIDENCE_REFUSED, items.length);
      return { kind: 'sent' };
    }
    return { kind: 'failed', reason: `evidence: HTTP ${res.status}` };
  }

  /** The two halves, pushed so that the first half is sent first. */
  private halves(part: CaptureEvent[]): CaptureEvent[][] {
    const mid = Math.ceil(part.length / 2);
    return [part.slice(mid), part.slice(0, mid)];
  }

  private async post(part: CaptureEvent[]): Promise<HomeResponse> {
    const ac = new AbortController();
    this.inFlight = ac;
    try {
      return await this.transport.request('POST', CAPTURES_PATH, { captures: part }, { timeoutMs: this.requestTimeoutMs, signal: ac.signal });
    } finally {
      this.inFlight = undefined;
    }
  }

  /** Marks what home took (at the counts sent). */
  private accepted(taken: CaptureEvent[], body: unknown): void {
    if (taken.length > 0) this.store.markUploaded(taken, this.now());
    this.counters.inc(C_BATCHES);
    this.counters.inc(C_CAPTURES, taken.length);
    const dup = (body as { duplicates?: unknown } | null | undefined)?.duplicates;
    if (typeof dup === 'number' && Number.isFinite(dup) && dup > 0) this.counters.inc(C_DUPLICATES, Math.min(dup, taken.length));
  }

  private succeeded(): void {
    this.attempt = 0;
    this.failingSince = undefined;
    if (this.failingRaised) {
      this.failingRaised = false;
      this.emit('upload.failing', 'warning', 'Uploads to home succeed again', undefined, 'cleared');
    }
  }

  private failed(reason: string): void {
    this.counters.inc(C_FAILURES);
    const now = this.now();
    if (this.failingSince === undefined) this.failingSince = now;
    if (!this.failingRaised && now - this.failingSince > this.failingAfterMs) {
      this.failingRaised = true;
      this.emit('upload.failing', 'warning', `Cannot upload captures to home for ${Math.round((now - this.failingSince) / 60_000)} minutes: ${reason}`,
        { since_ms: this.failingSince, queue: this.counters.get(C_QUEUE) }, 'raised');
    }
  }

  /** One health event for the captures a pass quarantined, if any. */
  private raiseQuarantined(r: Refused): void {
    if (r.ids.length === 0) return;
    const why = r.error !== undefined ? `HTTP ${r.status}, ${r.error}` : `HTTP ${r.status}`;
    this.emit('upload.quarantined', 'warning', `Home refused ${r.ids.length} capture(s) (${why}); kept in the store, out of the upload queue`,
      { count: r.ids.length, status: r.status, first_id: r.ids[0], ...(r.error !== undefined ? { error: r.error } : {}) }, 'raised');
  }

  private emit(name: string, severity: 'warning', message: string, detail: Record<string, string | number> | undefined, state: 'raised' | 'cleared'): void {
    if (this.onHealth === undefined) return;
    try {
      this.onHealth(healthEvent(name, severity, message, detail, state, this.now()));
    } catch {
      this.counters.inc(C_ERRORS);
    }
  }

  /** Waits `ms`, or less when stop() (or, if wakeable, kick()) comes first. */
  private sleep(ms: number, wakeable: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.wake = undefined;
        self.wakeable = false;
        resolve();
      }
      this.wake = done;
      this.wakeable = wakeable;
    });
  }
}

/** A short printable reason from home's error body (`{error, message}`) or text. */
function describe(body: unknown): string {
  if (typeof body === 'string') return body.slice(0, 200);
  if (body !== null && typeof body === 'object') {
    const b = body as { error?: unknown; message?: unknown };
    const parts = [b.error, b.message].filter((x) => typeof x === 'string') as string[];
    if (parts.length > 0) return parts.join(' ').slice(0, 200);
  }
  return 'refused';
}

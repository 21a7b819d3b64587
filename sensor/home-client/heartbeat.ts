/**
 * The heartbeat: every interval POSTs /v1/sensor/heartbeat with what `collect()` gives, runs the
 * actions home sends (reload, restart, reset) and acknowledges each one, and reports a newer
 * configuration version. Raises the `home.unreachable` health event after 3 consecutive failed
 * beats and clears it on the next success. Beats never overlap; a redelivered action runs once.
 */
import { defineCounter, type Counters } from '../events/counters.js';
import { healthEvent, type HealthEvent } from '../events/health.js';
import { HomeTransportError, type HomeTransport } from './transport.js';

/** NetSupport gateways beat every 60 s: frequent enough for "online", cheap on a school line. */
export const HEARTBEAT_INTERVAL_MS = 60_000;
/** Failed beats in a row before `home.unreachable` is raised (one lost beat is not an outage). */
export const HEARTBEAT_FAILURES_TO_RAISE = 3;
/** Action ids remembered (with their result) so a redelivered action is acknowledged, not rerun. */
const MAX_REMEMBERED_ACTIONS = 256;
/** Actions taken from one answer at most; more wait for the next beat. */
const MAX_ACTIONS_PER_BEAT = 16;

const C_BEATS = defineCounter('home.heartbeats');
const C_BEAT_FAILED = defineCounter('home.heartbeat_failures');
const C_ACTIONS = defineCounter('home.actions');
const C_ACTION_REPEATS = defineCounter('home.actions_redelivered');
const C_ACK_FAILED = defineCounter('home.action_ack_failures');
const C_ACTIONS_DEFERRED = defineCounter('home.actions_deferred');

export interface HomeAction {
  readonly id: string;
  /** `reload`, `restart` or `reset` (anything else is passed on; the handler refuses it). */
  readonly kind: string;
}

export interface ActionResult {
  readonly ok: boolean;
  readonly message?: string;
}

export interface HeartbeatOptions {
  readonly link: HomeTransport;
  readonly intervalMs?: number;
  /** The heartbeat body (PROTOCOL.md); its `config_version` is compared with home's. */
  readonly collect: () => Record<string, unknown>;
  readonly onAction: (a: HomeAction) => Promise<ActionResult>;
  /** Called when home's configuration version is newer than the one in the body sent. */
  readonly onConfigVersion?: (version: number) => void;
  /** After every answered heartbeat (a sensor running its last-known-good copy fetches home's now). */
  readonly onAnswered?: () => void;
  readonly onHealth?: (e: HealthEvent) => void;
  readonly counters?: Counters;
}

export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private inFlight: Promise<boolean> | undefined;
  private failures = 0;
  private raised = false;
  private readonly done = new Map<string, ActionResult>();

  constructor(private readonly opts: HeartbeatOptions) {}

  /** Consecutive failed beats so far. */
  get consecutiveFailures(): number { return this.failures; }
  get unreachableRaised(): boolean { return this.raised; }

  /** Beats now, then every interval until stop(). */
  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  stop(): void {
    this.running = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One beat (shares the one in flight); resolves true when home answered 2xx. */
  beatNow(): Promise<boolean> {
    if (this.inFlight === undefined) {
      this.inFlight = this.beat().finally(() => (this.inFlight = undefined));
    }
    return this.inFlight;
  }

  private async loop(): Promise<void> {
    await this.beatNow();
    if (!this.running) return;
    this.timer = setTimeout(() => void this.loop(), this.opts.intervalMs ?? HEARTBEAT_INTERVAL_MS);
    this.timer.unref();
  }

  private async beat(): Promise<boolean> {
    const c = this.opts.counters;
    c?.inc(C_BEATS);
    const body = this.opts.collect();
    let answer: unknown;
    try {
      const res = await this.opts.link.request('POST', '/v1/sensor/heartbeat', body);
      if (res.status < 200 || res.status > 299) {
        const b = res.body as { error?: unknown; message?: unknown } | undefined;
        this.failed(`home "${res.home}" answered ${res.status}${typeof b?.error === 'string' ? ` ${b.error}` : ''}${typeof b?.message === 'string' ? `: ${b.message}` : ''}`);
        return false;
      }
      answer = res.body;
    } catch (err) {
      if (!(err instanceof HomeTransportError)) throw err;
      this.failed(err.message);
      return false;
    }
    this.succeeded();
    const a = (answer !== null && typeof answer === 'object' ? answer : {}) as { config_version?: unknown; actions?: unknown };
    const running = body.config_version;
    if (Number.isSafeInteger(a.config_version) && (typeof running !== 'number' || (a.config_version as number) > running)) {
      this.opts.onConfigVersion?.(a.config_version as number);
    }
    if (Array.isArray(a.actions)) await this.runActions(a.actions);
    this.opts.onAnswered?.();
    return true;
  }

  private failed(why: string): void {
    this.opts.counters?.inc(C_BEAT_FAILED);
    this.failures++;
    if (this.failures >= HEARTBEAT_FAILURES_TO_RAISE && !this.raised) {
      this.raised = true;
      this.opts.onHealth?.(healthEvent('home.unreachable', 'warning', `Home has not answered ${this.failures} heartbeats in a row: ${why}`, { failures: this.failures }));
    }
  }

  private succeeded(): void {
    if (this.raised) this.opts.onHealth?.(healthEvent('home.unreachable', 'info', `Home answers again after ${this.failures} failed heartbeats`, { failures: this.failures }, 'cleared'));
    this.raised = false;
    this.failures = 0;
  }

  private async runActions(list: unknown[]): Promise<void> {
    const c = this.opts.counters;
    if (list.length > MAX_ACTIONS_PER_BEAT) c?.inc(C_ACTIONS_DEFERRED, list.length - MAX_ACTIONS_PER_BEAT);
    for (const item of list.slice(0, MAX_ACTIONS_PER_BEAT)) {
      const x = item as { id?: unknown; kind?: unknown } | null;
      if (x === null || typeof x !== 'object' || (typeof x.id !== 'string' && typeof x.id !== 'number') || typeof x.kind !== 'string') continue;
      const id = String(x.id);
      let result = this.done.get(id);
      if (result === undefined) {
        c?.inc(C_ACTIONS);
        try {
          result = await this.opts.onAction({ id, kind: x.kind });
        } catch (err) {
          result = { ok: false, message: (err as Error).message };
        }
        this.remember(id, result);
      } else {
        c?.inc(C_ACTION_REPEATS);
      }
      try {
        const res = await this.opts.link.request('POST', `/v1/sensor/actions/${encodeURIComponent(id)}/done`, result);
        if (res.status < 200 || res.status > 299) c?.inc(C_ACK_FAILED);
      } catch {
        // Home delivers the action again until acknowledged; the remembered result answers it then.
        c?.inc(C_ACK_FAILED);
      }
    }
  }

  private remember(id: string, result: ActionResult): void {
    if (this.done.size >= MAX_REMEMBERED_ACTIONS) {
      const oldest = this.done.keys().next().value;
      if (oldest !== undefined) this.done.delete(oldest);
    }
    this.done.set(id, result);
  }
}

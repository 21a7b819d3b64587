/**
 * The one shape every event output has (EVE file, syslog, e-mail): `write` takes an event and
 * never blocks or throws on a network problem, `flush` pushes what is buffered, `reopen` (files
 * only) starts a new file after logrotate moved the old one, `close` drains what it can and
 * resolves. Outputs are best-effort second copies: the capture store is the authoritative one.
 */
import { Counters, defineCounter } from '../events/counters.js';

const C_OUTPUT_ERRORS = defineCounter('output.errors');

/** Any Hark event: captures, flows, tls, dns, health. */
export type OutputEvent = { event_type: string } & object;

export interface EventOutput {
  write(event: OutputEvent): void;
  flush(): void;
  reopen?(): void;
  close(): Promise<void>;
}

/** A stable `code` for errors about an output's configuration (thrown at start only). */
export class OutputConfigError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'OutputConfigError';
  }
}

/**
 * Exponential backoff for reconnects and resends: base * 2^attempt, capped, with up to 20% added
 * jitter so that many sensors restarted together do not hammer a collector in step.
 */
export function backoffDelayMs(attempt: number, baseMs: number, maxMs: number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.min(maxMs, Math.round(exp * (1 + Math.random() * 0.2)));
}

/**
 * Writes every event to several outputs; `close` waits for all of them. An output that throws
 * (a bug: outputs do not throw) loses that event alone: the others still get it, and it is counted.
 */
export class OutputFanout implements EventOutput {
  constructor(readonly outputs: readonly EventOutput[], private readonly counters?: Counters) {}

  write(event: OutputEvent): void {
    for (const o of this.outputs) {
      try {
        o.write(event);
      } catch {
        this.counters?.inc(C_OUTPUT_ERRORS);
      }
    }
  }

  flush(): void {
    for (const o of this.outputs) {
      try {
        o.flush();
      } catch {
        this.counters?.inc(C_OUTPUT_ERRORS);
      }
    }
  }

  reopen(): void {
    for (const o of this.outputs) {
      try {
        o.reopen?.();
      } catch {
        this.counters?.inc(C_OUTPUT_ERRORS);
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.outputs.map(async (o) => {
      try {
        await o.close();
      } catch {
        this.counters?.inc(C_OUTPUT_ERRORS);
      }
    }));
  }
}

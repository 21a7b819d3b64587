/**
 * The sensor's active health conditions, for the status file, `hark status` and /metrics.
 * Input: every health event through `sink` (raised and cleared, any source). Output: `list()`, the
 * raised events not yet cleared, oldest first. A condition is keyed by its name plus the
 * `interface` (or `subject`) in its detail, so `capture.no_packets` on eth1 and eth2 are two.
 */
import type { HealthEvent, HealthSink } from '../events/health.js';

/** More distinct conditions than any sensor has: a buggy source cannot grow the table forever. */
export const MAX_ACTIVE_HEALTH = 256;

function conditionKey(e: HealthEvent): string {
  const subject = e.detail?.interface ?? e.detail?.subject;
  return subject === undefined ? e.name : `${e.name}\u0000${String(subject)}`;
}

export class ActiveHealth {
  private readonly active = new Map<string, HealthEvent>();
  /** Raised events ignored because MAX_ACTIVE_HEALTH conditions were already active. */
  dropped = 0;

  readonly sink: HealthSink = (e) => {
    const key = conditionKey(e);
    if (e.state === 'cleared') {
      this.active.delete(key);
    } else if (this.active.has(key) || this.active.size < MAX_ACTIVE_HEALTH) {
      this.active.set(key, e);
    } else {
      this.dropped++;
    }
  };

  list(): HealthEvent[] {
    return [...this.active.values()];
  }
}

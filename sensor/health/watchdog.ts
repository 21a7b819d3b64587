/**
 * Capture watchdog: notices a mirror port that went silent, the classic way a sensor goes blind.
 * Input: `check(nowMs, [{name, packets}])` every few seconds with each interface's running packet
 * count. Output: one `capture.no_packets` health event (warning, raised) per interface once it has
 * received nothing for `silentMs`, and one `cleared` event when packets resume. Clock injected.
 */
import { healthEvent, type HealthEvent, type HealthSink } from '../events/health.js';
import { formatDuration } from './format.js';

/** A mirror port carrying real traffic is never quiet for five minutes; a quiet lab link may set more. */
export const WATCHDOG_DEFAULT_SILENT_MS = 5 * 60_000;
export const HEALTH_NO_PACKETS = 'capture.no_packets';

export interface WatchdogInterface {
  readonly name: string;
  /** Packets received since the sensor started (a running total; a drop means a restart). */
  readonly packets: number;
}

export interface InterfaceWatchdogOptions {
  /** How long an interface may receive nothing before the event is raised (default 5 minutes). */
  readonly silentMs?: number;
  /** Called with each raised and cleared event, in the order they happen. */
  readonly onHealth: HealthSink;
}

interface WatchState {
  packets: number;
  /** When the packet count last moved (or when the interface was first seen). */
  sinceMs: number;
  raised: HealthEvent | undefined;
}

export class InterfaceWatchdog {
  readonly silentMs: number;
  private readonly onHealth: HealthSink;
  private readonly state = new Map<string, WatchState>();

  constructor(opts: InterfaceWatchdogOptions) {
    const silentMs = opts.silentMs ?? WATCHDOG_DEFAULT_SILENT_MS;
    if (!Number.isFinite(silentMs) || silentMs <= 0) throw new RangeError(`Watchdog silence must be a positive number of milliseconds, not ${silentMs}`);
    this.silentMs = silentMs;
    this.onHealth = opts.onHealth;
  }

  /** Compares each interface's count with the previous check; raises or clears as needed. */
  check(nowMs: number, interfaces: readonly WatchdogInterface[]): void {
    for (const { name, packets } of interfaces) {
      const s = this.state.get(name);
      if (s === undefined) {
        this.state.set(name, { packets, sinceMs: nowMs, raised: undefined });
        continue;
      }
      if (packets !== s.packets) {
        const silentFor = nowMs - s.sinceMs;
        s.packets = packets;
        s.sinceMs = nowMs;
        if (s.raised !== undefined) {
          s.raised = undefined;
          this.onHealth(healthEvent(HEALTH_NO_PACKETS, 'warning', `Packets on interface "${name}" again after ${formatDuration(silentFor)} without any`,
            { interface: name, silent_s: Math.round(silentFor / 1000) }, 'cleared', nowMs));
        }
        continue;
      }
      const silentFor = nowMs - s.sinceMs;
      if (s.raised === undefined && silentFor >= this.silentMs) {
        s.raised = healthEvent(HEALTH_NO_PACKETS, 'warning',
          `No packets on interface "${name}" for ${formatDuration(silentFor)}: check the mirror port or TAP feeding it`,
          { interface: name, silent_s: Math.round(silentFor / 1000), since: new Date(s.sinceMs).toISOString() }, 'raised', nowMs);
        this.onHealth(s.raised);
      }
    }
  }

  /** The raised events not yet cleared, by interface name. */
  active(): HealthEvent[] {
    const out: HealthEvent[] = [];
    for (const s of this.state.values()) if (s.raised !== undefined) out.push(s.raised);
    return out;
  }
}

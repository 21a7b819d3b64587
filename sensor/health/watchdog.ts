/**
 * Capture watchdog: notices a mirror port that went silent, the classic way a sensor goes blind,
 * and a sensor that loses packets (more traffic than it can inspect: every lost segment is a hole
 * in a conversation). Input: `check(nowMs, [{name, packets, kernelDrops?, interfaceDrops?,
 * handoffDrops?}])` every
 * few seconds with each interface's running counts. Output: per interface, one `capture.no_packets`
 * health event (warning, raised) once it has received nothing for `silentMs`, and one `cleared`
 * when packets resume; one `capture.drops` event (warning, raised) at the first check where its
 * drop counters moved, and one `cleared` after `dropWindowMs` without a new drop. Clock injected.
 */
import { healthEvent, type HealthEvent, type HealthSink } from '../events/health.js';
import { formatDuration } from './format.js';

/** A mirror port carrying real traffic is never quiet for five minutes; a quiet lab link may set more. */
export const WATCHDOG_DEFAULT_SILENT_MS = 5 * 60_000;
export const HEALTH_NO_PACKETS = 'capture.no_packets';
export const HEALTH_DROPS = 'capture.drops';
/** A loss alarm clears after this long without a new drop: long enough not to flap on a sensor
 * that drops at every burst, short enough to tell an operator the change they made worked. */
export const WATCHDOG_DEFAULT_DROP_WINDOW_MS = 5 * 60_000;

export interface WatchdogInterface {
  readonly name: string;
  /** Packets received since the sensor started (a running total; a drop means a restart). */
  readonly packets: number;
  /** Frames the capture socket dropped (TPACKET / pcap_stats), running total, when known. */
  readonly kernelDrops?: number;
  /** Frames the NIC or driver dropped (sysfs rx_dropped + rx_missed_errors), running total, when known. */
  readonly interfaceDrops?: number;
  /** Captured frames the worker threads had no room for, running total, when workers run. */
  readonly handoffDrops?: number;
}

export interface InterfaceWatchdogOptions {
  /** How long an interface may receive nothing before the event is raised (default 5 minutes). */
  readonly silentMs?: number;
  /** How long without a new drop before a loss alarm clears (default 5 minutes). */
  readonly dropWindowMs?: number;
  /** Called with each raised and cleared event, in the order they happen. */
  readonly onHealth: HealthSink;
}

interface WatchState {
  packets: number;
  /** When the packet count last moved (or when the interface was first seen). */
  sinceMs: number;
  raised: HealthEvent | undefined;
  /** Drop counters at the previous check (-1: not reported), and the loss alarm. */
  kernelDrops: number;
  interfaceDrops: number;
  handoffDrops: number;
  /** Packets at the previous check, for the loss fraction of a step. */
  lastPackets: number;
  lastCheckMs: number;
  lastDropMs: number;
  dropsRaised: HealthEvent | undefined;
  /** Drops and packets since the alarm was raised (the cleared event's summary). */
  droppedSince: number;
  packetsSince: number;
}

export class InterfaceWatchdog {
  readonly silentMs: number;
  readonly dropWindowMs: number;
  private readonly onHealth: HealthSink;
  private readonly state = new Map<string, WatchState>();

  constructor(opts: InterfaceWatchdogOptions) {
    const silentMs = opts.silentMs ?? WATCHDOG_DEFAULT_SILENT_MS;
    if (!Number.isFinite(silentMs) || silentMs <= 0) throw new RangeError(`Watchdog silence must be a positive number of milliseconds, not ${silentMs}`);
    this.silentMs = silentMs;
    const dropWindowMs = opts.dropWindowMs ?? WATCHDOG_DEFAULT_DROP_WINDOW_MS;
    if (!Number.isFinite(dropWindowMs) || dropWindowMs <= 0) throw new RangeError(`Drop alarm window must be a positive number of milliseconds, not ${dropWindowMs}`);
    this.dropWindowMs = dropWindowMs;
    this.onHealth = opts.onHealth;
  }

  /** Compares each interface's count with the previous check; raises or clears as needed. */
  check(nowMs: number, interfaces: readonly WatchdogInterface[]): void {
    for (const i of interfaces) {
      const { name, packets } = i;
      const s = this.state.get(name);
      if (s === undefined) {
        this.state.set(name, {
          packets, sinceMs: nowMs, raised: undefined,
          kernelDrops: i.kernelDrops ?? -1, interfaceDrops: i.interfaceDrops ?? -1, handoffDrops: i.handoffDrops ?? -1, lastPackets: packets, lastCheckMs: nowMs,
          lastDropMs: nowMs, dropsRaised: undefined, droppedSince: 0, packetsSince: 0,
        });
        continue;
      }
      this.checkDrops(nowMs, i, s);
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
    for (const s of this.state.values()) {
      if (s.raised !== undefined) out.push(s.raised);
      if (s.dropsRaised !== undefined) out.push(s.dropsRaised);
    }
    return out;
  }

  /** Raises capture.drops when a drop counter moved since the last check, clears it after a quiet window. */
  private checkDrops(nowMs: number, i: WatchdogInterface, s: WatchState): void {
    // A counter that went down was reset (capture reopened): it counts from there.
    const kernel = stepOf(i.kernelDrops, s.kernelDrops);
    const nic = stepOf(i.interfaceDrops, s.interfaceDrops);
    const handoff = stepOf(i.handoffDrops, s.handoffDrops);
    const received = Math.max(0, i.packets - s.lastPackets);
    const stepMs = nowMs - s.lastCheckMs;
    s.kernelDrops = i.kernelDrops ?? -1;
    s.interfaceDrops = i.interfaceDrops ?? -1;
    s.handoffDrops = i.handoffDrops ?? -1;
    s.lastPackets = i.packets;
    s.lastCheckMs = nowMs;
    const dropped = kernel + nic + handoff;
    if (s.dropsRaised !== undefined) {
      s.droppedSince += dropped;
      s.packetsSince += received;
    }
    if (dropped > 0) {
      s.lastDropMs = nowMs;
      if (s.dropsRaised !== undefined) return;
      const where = dropWhere(kernel, nic, handoff);
      const pct = lossPercent(dropped, received);
      s.droppedSince = dropped;
      s.packetsSince = received;
      s.dropsRaised = healthEvent(HEALTH_DROPS, 'warning',
        `Interface "${i.name}" is losing packets: ${dropped} dropped ${where} against ${received} received in the last ${formatDuration(stepMs)} ` +
        `(${pct}% lost): the sensor cannot inspect all this traffic; give it more CPU cores (workers) or leave traffic out with --filter`,
        { interface: i.name, dropped, kernel_drops: kernel, interface_drops: nic, handoff_drops: handoff, received, loss_pct: pct, step_s: Math.round(stepMs / 1000) }, 'raised', nowMs);
      this.onHealth(s.dropsRaised);
      return;
    }
    if (s.dropsRaised !== undefined && nowMs - s.lastDropMs >= this.dropWindowMs) {
      const pct = lossPercent(s.droppedSince, s.packetsSince);
      this.onHealth(healthEvent(HEALTH_DROPS, 'warning',
        `Interface "${i.name}" has lost no packets for ${formatDuration(nowMs - s.lastDropMs)} (${s.droppedSince} lost against ${s.packetsSince} received while the alarm was up, ${pct}%)`,
        { interface: i.name, dropped: s.droppedSince, received: s.packetsSince, loss_pct: pct }, 'cleared', nowMs));
      s.dropsRaised = undefined;
    }
  }
}

/** Where frames were lost, in words: "by the capture socket and the worker hand-off". */
function dropWhere(kernel: number, nic: number, handoff: number): string {
  const parts: string[] = [];
  if (kernel > 0) parts.push('the capture socket');
  if (nic > 0) parts.push('the network card');
  if (handoff > 0) parts.push('the worker hand-off (worker threads behind)');
  return `by ${parts.length > 1 ? `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}` : parts[0]}`;
}

/** How much a running drop counter moved since `before` (-1: not reported then); 0 when unknown or reset. */
function stepOf(now: number | undefined, before: number): number {
  if (now === undefined || before < 0 || now < before) return 0;
  return now - before;
}

/** Lost share of what arrived plus what was lost, in percent with two decimals. */
function lossPercent(dropped: number, received: number): number {
  const total = dropped + received;
  return total === 0 ? 0 : Math.round((dropped / total) * 10_000) / 100;
}

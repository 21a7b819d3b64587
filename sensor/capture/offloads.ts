/**
 * Receive offloads on capture interfaces. A NIC or driver with GRO (generic receive offload) or
 * LRO (large receive offload) on merges consecutive TCP segments into frames of up to 64 KiB
 * before packet sockets see them: what Hark reassembles is then not what was on the wire
 * (retransmissions, overlaps and segment boundaries, the evasion signals, are lost). Suricata and
 * Zeek ask for both off on sniffing interfaces; Hark turns them off itself when it may.
 * Input: interface names. Output: one report per interface, and `restore()`, which puts back what
 * was changed (on a clean stop, so a shared interface is left as found). Reading the settings needs
 * no privilege; changing them needs CAP_NET_ADMIN (the hark service has it). Never throws.
 */
import { constants } from 'node:os';
import { loadRingBinding, type RingBinding } from './ring.js';

export type Offload = 'gro' | 'lro';

export interface OffloadReport {
  readonly interface: string;
  /** Offloads found on and turned off. */
  readonly turnedOff: readonly Offload[];
  /** Offloads still on: kept on request (no `error`), or the change failed (`error`). */
  readonly stillOn: readonly Offload[];
  /** Why a change failed (errno name and what to do), when it did. */
  readonly error?: string;
}

export interface OffloadPlan {
  readonly reports: readonly OffloadReport[];
  /** Set when the settings could not be read at all (no addon here): why. */
  readonly unchecked?: string;
  /** Turns back on what was turned off; returns a message per failure. */
  restore(): string[];
}

const WHICH: Record<Offload, 0 | 1> = { gro: 0, lro: 1 };
const { EPERM, ENODEV } = constants.errno;

function errnoName(e: number): string {
  return Object.entries(constants.errno).find(([, n]) => n === e)?.[0] ?? `errno ${e}`;
}

/** The shell command that does by hand what Hark could not. */
export function offloadCommand(name: string, offloads: readonly Offload[]): string {
  return `ethtool -K ${name} ${offloads.map((o) => `${o} off`).join(' ')}`;
}

/**
 * Checks GRO and LRO on each interface; unless `keep`, turns off those that are on.
 * `binding` is for tests; by default the ring capture addon.
 */
export function prepareReceiveOffloads(interfaces: readonly string[], opts: { keep: boolean; binding?: Pick<RingBinding, 'getOffloads' | 'setOffload'> }): OffloadPlan {
  let b = opts.binding;
  if (b === undefined) {
    const loaded = loadRingBinding();
    if (loaded.binding === undefined) return { reports: [], unchecked: loaded.reason, restore: () => [] };
    b = loaded.binding;
  }
  const binding = b;
  const changed: Array<{ name: string; offload: Offload }> = [];
  const reports = interfaces.map((name): OffloadReport => {
    const [gro, lro] = binding.getOffloads(name);
    const on: Offload[] = [];
    if (gro === 1) on.push('gro');
    if (lro === 1) on.push('lro');
    if (opts.keep || on.length === 0) return { interface: name, turnedOff: [], stillOn: on };
    const turnedOff: Offload[] = [];
    const stillOn: Offload[] = [];
    let error: string | undefined;
    for (const offload of on) {
      const e = binding.setOffload(name, WHICH[offload], false);
      if (e === 0) {
        turnedOff.push(offload);
        changed.push({ name, offload });
      } else {
        stillOn.push(offload);
        error ??= e === EPERM ? 'EPERM: changing offloads needs CAP_NET_ADMIN' : `${errnoName(e)} from the driver`;
      }
    }
    return { interface: name, turnedOff, stillOn, ...(error !== undefined ? { error } : {}) };
  });
  return {
    reports,
    restore(): string[] {
      const failures: string[] = [];
      for (const { name, offload } of changed.splice(0)) {
        const e = binding.setOffload(name, WHICH[offload], true);
        if (e !== 0 && e !== ENODEV) failures.push(`${name}: could not turn ${offload.toUpperCase()} back on (${errnoName(e)})`);
      }
      return failures;
    },
  };
}

/** The log line or health message for one report, or undefined when there is nothing to say. */
export function describeOffloads(r: OffloadReport): { level: 'info' | 'warning'; message: string } | undefined {
  const names = (list: readonly Offload[]): string => list.map((o) => o.toUpperCase()).join(' and ');
  if (r.stillOn.length > 0) {
    const why = r.error === undefined ? 'kept on (--keep-offloads)' : `could not be turned off (${r.error})`;
    return {
      level: 'warning',
      message: `${r.interface}: receive offload ${names(r.stillOn)} ${why}: the kernel merges TCP segments before capture, hiding retransmissions and overlaps; run: ${offloadCommand(r.interface, r.stillOn)}`,
    };
  }
  if (r.turnedOff.length > 0) {
    return { level: 'info', message: `${r.interface}: turned receive offload ${names(r.turnedOff)} off for capture (back on when Hark stops)` };
  }
  return undefined;
}

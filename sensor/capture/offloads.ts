/**
 * Receive offloads on capture interfaces. A NIC or driver with GRO (generic receive offload) or
 * LRO (large receive offload) on merges consecutive TCP segments into frames of up to 64 KiB
 * before packet sockets see them: what Hark reassembles is then not what was on the wire
 * (retransmissions, overlaps and segment boundaries, the evasion signals, are lost). Suricata and
 * Zeek ask for both off on sniffing interfaces; Hark turns them off itself when it may, on each
 * capture interface and on the devices stacked under it (a bond's members, a VLAN's parent), where
 * GRO actually runs. Input: interface names. Output: one report per device, and `restore()`, which
 * puts back what was changed (on a clean stop, so a shared interface is left as found). Reading the
 * settings needs no privilege; changing them needs CAP_NET_ADMIN (the hark service has it). Never throws.
 */
import { constants } from 'node:os';
import { findLowerDevices, MAX_STACK_DEPTH, SYS_CLASS_NET } from './lower-devices.js';
import { loadRingBinding, type RingBinding } from './ring.js';

export type Offload = 'gro' | 'lro';

export interface OffloadReport {
  /** The device whose offloads these are: a capture interface, or a device stacked under one. */
  readonly interface: string;
  /** For a device stacked under a capture interface (a bond's member, a VLAN's or macvlan's parent): that interface. */
  readonly under?: string;
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
  /** Devices not checked because their stack is deeper than the kernel allows: one line per capture interface. */
  readonly notes: readonly string[];
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
 * Checks GRO and LRO on each interface and on every device stacked under it (a bond's members, a
 * VLAN's or macvlan's parent: GRO runs in their receive path, before the upper device's socket);
 * unless `keep`, turns off those that are on. `binding` and `sysClassNet` are for tests; by
 * default the ring capture addon and /sys/class/net.
 */
export function prepareReceiveOffloads(
  interfaces: readonly string[],
  opts: { keep: boolean; binding?: Pick<RingBinding, 'getOffloads' | 'setOffload'>; sysClassNet?: string },
): OffloadPlan {
  let b = opts.binding;
  if (b === undefined) {
    const loaded = loadRingBinding();
    if (loaded.binding === undefined) return { reports: [], notes: [], unchecked: loaded.reason, restore: () => [] };
    b = loaded.binding;
  }
  const binding = b;
  const { devices, notes } = receiveStack(interfaces, opts.sysClassNet ?? SYS_CLASS_NET);
  const offloadsOn = (name: string): Offload[] => {
    const [gro, lro] = binding.getOffloads(name);
    return [...(gro === 1 ? ['gro' as const] : []), ...(lro === 1 ? ['lro' as const] : [])];
  };
  // Everything is read before anything changes: turning LRO off on a bond turns it off on its
  // members too (the kernel's NETIF_F_UPPER_DISABLES), and they must come back on at the end.
  const found = devices.map((d) => offloadsOn(d.name));
  const changed: Array<{ name: string; label: string; offload: Offload }> = [];
  const errors = new Map<string, string>();
  if (!opts.keep) {
    devices.forEach((d, i) => {
      for (const offload of found[i]) {
        const e = binding.setOffload(d.name, WHICH[offload], false);
        if (e === 0) changed.push({ name: d.name, label: deviceLabel(d.name, d.under), offload });
        else if (!errors.has(d.name)) errors.set(d.name, e === EPERM ? 'EPERM: changing offloads needs CAP_NET_ADMIN' : `${errnoName(e)} from the driver`);
      }
    });
  }
  const reports = devices.map((d, i): OffloadReport => {
    const where = { interface: d.name, ...(d.under !== undefined ? { under: d.under } : {}) };
    if (opts.keep || found[i].length === 0) return { ...where, turnedOff: [], stillOn: found[i] };
    // Read back once every device is done: a macvlan's GRO follows its parent's (Linux 6.18), so
    // it reads off only after the parent's is off, and the change made on the macvlan is a no-op.
    const nowOn = offloadsOn(d.name);
    const turnedOff = found[i].filter((o) => !nowOn.includes(o));
    const stillOn = found[i].filter((o) => nowOn.includes(o));
    if (stillOn.length === 0) return { ...where, turnedOff, stillOn };
    return { ...where, turnedOff, stillOn, error: errors.get(d.name) ?? 'the driver left it on, or it follows a device under this one' };
  });
  return {
    reports,
    notes,
    restore(): string[] {
      // In the order turned off, upper before lower: a lower device's LRO only comes back once its upper's is on.
      const failures: string[] = [];
      for (const { name, label, offload } of changed.splice(0)) {
        const e = binding.setOffload(name, WHICH[offload], true);
        if (e !== 0 && e !== ENODEV) failures.push(`${label}: could not turn ${offload.toUpperCase()} back on (${errnoName(e)})`);
      }
      return failures;
    },
  };
}

/** A device and the capture interface it sits under (none for a capture interface). */
interface StackedDevice {
  readonly name: string;
  readonly under?: string;
}

/** "eth0 (under bond0)" for a lower device, the name alone for a capture interface. */
function deviceLabel(name: string, under: string | undefined): string {
  return under === undefined ? name : `${name} (under ${under})`;
}

/**
 * Each capture interface followed by the devices stacked under it, each device once (a capture
 * interface that is also under another one keeps no `under`); `notes` names stacks cut at MAX_STACK_DEPTH.
 */
function receiveStack(interfaces: readonly string[], sysClassNet: string): { devices: StackedDevice[]; notes: string[] } {
  const captured = new Set(interfaces);
  const listed = new Set<string>();
  const devices: StackedDevice[] = [];
  const notes: string[] = [];
  for (const iface of interfaces) {
    const stack = findLowerDevices(iface, sysClassNet);
    if (stack.cutAt !== undefined) notes.push(`${iface}: devices stacked more than ${MAX_STACK_DEPTH} deep (under ${stack.cutAt}) not checked for receive offloads`);
    for (const name of [iface, ...stack.devices.map((d) => d.name)]) {
      if (listed.has(name)) continue;
      listed.add(name);
      devices.push(captured.has(name) ? { name } : { name, under: iface });
    }
  }
  return { devices, notes };
}

/** The log line or health message for one report, or undefined when there is nothing to say. */
export function describeOffloads(r: OffloadReport): { level: 'info' | 'warning'; message: string } | undefined {
  const names = (list: readonly Offload[]): string => list.map((o) => o.toUpperCase()).join(' and ');
  if (r.stillOn.length > 0) {
    const why = r.error === undefined ? 'kept on (--keep-offloads)' : `could not be turned off (${r.error})`;
    return {
      level: 'warning',
      message: `${deviceLabel(r.interface, r.under)}: receive offload ${names(r.stillOn)} ${why}: the kernel merges TCP segments before capture, hiding retransmissions and overlaps; run: ${offloadCommand(r.interface, r.stillOn)}`,
    };
  }
  if (r.turnedOff.length > 0) {
    return { level: 'info', message: `${deviceLabel(r.interface, r.under)}: turned receive offload ${names(r.turnedOff)} off for capture (back on when Hark stops)` };
  }
  return undefined;
}

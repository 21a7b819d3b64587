/**
 * The devices stacked under a capture interface: a bond's or team's members, a VLAN's, macvlan's or
 * ipvlan's parent, and theirs in turn. Frames reach an upper device through its lower devices'
 * receive path, so what is done to packets there (GRO merging segments) is done before the upper
 * device's packet socket sees them. Input: an interface name and the sysfs folder of network
 * devices. Output: the lower devices, upper before lower, each once. Bounded; never throws.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const SYS_CLASS_NET = '/sys/class/net';

/** The kernel's MAX_NEST_DEV (include/linux/netdevice.h): it refuses a deeper stack of upper/lower links. */
export const MAX_STACK_DEPTH = 8;

const LOWER_PREFIX = 'lower_';

export interface LowerDevice {
  readonly name: string;
  /** The device it is a lower device of: the capture interface, or one stacked under it. */
  readonly upper: string;
  /** 1 for a direct lower device of the capture interface. */
  readonly depth: number;
}

export interface LowerDevices {
  readonly devices: readonly LowerDevice[];
  /** Set when the stack went deeper than MAX_STACK_DEPTH: the first device whose lower devices were not followed. */
  readonly cutAt?: string;
}

/** An interface name as sysfs can hold one: a single path component. */
function isDeviceName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/');
}

/**
 * The direct lower devices of `name`: its `lower_*` links (bond, team, VLAN, macvlan, ipvlan...)
 * and, for a bond, `bonding/slaves` (the same members where the kernel makes the links; read too
 * for a kernel that does not). A device that is no one's upper has neither.
 */
function directLowerDevices(name: string, sysClassNet: string): string[] {
  const found = new Set<string>();
  try {
    for (const entry of readdirSync(join(sysClassNet, name))) {
      if (entry.startsWith(LOWER_PREFIX)) found.add(entry.slice(LOWER_PREFIX.length));
    }
  } catch {
    return []; // not a device here (gone, another namespace, or a pseudo-name like "any")
  }
  try {
    for (const slave of readFileSync(join(sysClassNet, name, 'bonding', 'slaves'), 'utf8').split(/\s+/)) found.add(slave);
  } catch {
    // not a bond
  }
  return [...found].filter(isDeviceName);
}

/**
 * Every device under `name`, depth first, upper before lower (the order to turn things off in and
 * back on: the kernel makes a lower device follow some settings of its upper one). A device met
 * twice (two uppers, or a loop in a broken or fake tree) is listed once; `name` itself is not listed.
 */
export function findLowerDevices(name: string, sysClassNet = SYS_CLASS_NET): LowerDevices {
  const seen = new Set<string>([name]);
  const devices: LowerDevice[] = [];
  let cutAt: string | undefined;
  const visit = (upper: string, depth: number): void => {
    for (const lower of directLowerDevices(upper, sysClassNet)) {
      if (seen.has(lower)) continue;
      if (depth > MAX_STACK_DEPTH) {
        cutAt ??= upper;
        return;
      }
      seen.add(lower);
      devices.push({ name: lower, upper, depth });
      visit(lower, depth + 1);
    }
  };
  visit(name, 1);
  return { devices, ...(cutAt !== undefined ? { cutAt } : {}) };
}

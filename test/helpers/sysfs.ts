/**
 * A fake /sys/class/net for the stacked-device tests: one folder per device, `lower_X` symlinks to
 * `../X` as the kernel makes them, and a bond's `bonding/slaves`. Removed when the test file ends.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from './scratch.js';

export interface FakeDevice {
  readonly lower?: readonly string[];
  /** The contents of bonding/slaves, as the kernel writes it ("eth0 eth1\n"). */
  readonly slaves?: string;
}

/** The folder to pass as `sysClassNet`. */
export function fakeSysClassNet(devices: Record<string, FakeDevice>): string {
  const root = scratchDir('hark-sysfs-');
  for (const name of Object.keys(devices)) mkdirSync(join(root, name));
  for (const [name, d] of Object.entries(devices)) {
    for (const lower of d.lower ?? []) symlinkSync(join('..', lower), join(root, name, `lower_${lower}`));
    if (d.slaves !== undefined) {
      mkdirSync(join(root, name, 'bonding'));
      writeFileSync(join(root, name, 'bonding', 'slaves'), d.slaves);
    }
  }
  return root;
}

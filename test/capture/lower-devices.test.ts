/**
 * Tests for sensor/capture/lower-devices.ts on fake /sys/class/net trees: a bond's members through
 * both lower_* links and bonding/slaves, a VLAN on a bond, devices under nothing, loops and a stack
 * deeper than the kernel allows. The real kernel's links are exercised by offloads.test.ts (macvlan).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findLowerDevices, MAX_STACK_DEPTH } from '../../sensor/capture/lower-devices.js';
import { fakeSysClassNet } from '../helpers/sysfs.js';

const names = (root: string, name: string): string[] => findLowerDevices(name, root).devices.map((d) => d.name);

test('findLowerDevices lists a bond\'s members from its lower_* links and from bonding/slaves, each once', () => {
  // eth2: only in bonding/slaves (a kernel without the links); eth0, eth1: in both
  const root = fakeSysClassNet({ bond0: { lower: ['eth0', 'eth1'], slaves: 'eth0 eth1 eth2\n' }, eth0: {}, eth1: {}, eth2: {} });
  assert.deepEqual(findLowerDevices('bond0', root), {
    devices: [
      { name: 'eth0', upper: 'bond0', depth: 1 },
      { name: 'eth1', upper: 'bond0', depth: 1 },
      { name: 'eth2', upper: 'bond0', depth: 1 },
    ],
  });
});

test('findLowerDevices follows a two-level stack, upper before lower', () => {
  const root = fakeSysClassNet({ 'bond0.10': { lower: ['bond0'] }, bond0: { lower: ['eth0', 'eth1'], slaves: 'eth0 eth1\n' }, eth0: {}, eth1: {} });
  assert.deepEqual(findLowerDevices('bond0.10', root).devices, [
    { name: 'bond0', upper: 'bond0.10', depth: 1 },
    { name: 'eth0', upper: 'bond0', depth: 2 },
    { name: 'eth1', upper: 'bond0', depth: 2 },
  ]);
  assert.deepEqual(names(root, 'bond0'), ['eth0', 'eth1'], 'from the middle of the stack: only what is under it');
});

test('findLowerDevices: a device that is lower of nothing, or not there at all, has none', () => {
  const root = fakeSysClassNet({ eth0: {}, bond1: { slaves: '\n' } });
  assert.deepEqual(findLowerDevices('eth0', root), { devices: [] });
  assert.deepEqual(findLowerDevices('bond1', root), { devices: [] }, 'a bond without members');
  assert.deepEqual(findLowerDevices('any', root), { devices: [] }, 'libpcap\'s pseudo-device has no folder');
  assert.deepEqual(findLowerDevices('eth0', `${root}/no-such-dir`), { devices: [] });
});

test('findLowerDevices ends on a loop, through the start device or below it, listing each device once', () => {
  const root = fakeSysClassNet({ a: { lower: ['b'] }, b: { lower: ['a'] }, x: { lower: ['y'] }, y: { lower: ['z'] }, z: { lower: ['y'] } });
  assert.deepEqual(names(root, 'a'), ['b']);
  assert.deepEqual(names(root, 'x'), ['y', 'z']);
  const diamond = fakeSysClassNet({ top: { lower: ['m1', 'm2'] }, m1: { lower: ['nic'] }, m2: { lower: ['nic'] }, nic: {} });
  assert.deepEqual(findLowerDevices('top', diamond).devices, [
    { name: 'm1', upper: 'top', depth: 1 },
    { name: 'nic', upper: 'm1', depth: 2 },
    { name: 'm2', upper: 'top', depth: 1 },
  ], 'a device under two others is listed once, under the first');
});

test('findLowerDevices stops at the kernel\'s nesting limit and says where', () => {
  const chain: Record<string, { lower?: string[] }> = {};
  for (let i = 0; i < 20; i++) chain[`d${i}`] = { lower: [`d${i + 1}`] };
  chain.d20 = {};
  const root = fakeSysClassNet(chain);
  const found = findLowerDevices('d0', root);
  assert.equal(found.devices.length, MAX_STACK_DEPTH);
  assert.deepEqual(found.devices.at(-1), { name: `d${MAX_STACK_DEPTH}`, upper: `d${MAX_STACK_DEPTH - 1}`, depth: MAX_STACK_DEPTH });
  assert.equal(found.cutAt, `d${MAX_STACK_DEPTH}`);
});

test('findLowerDevices ignores entry names that are not device names', () => {
  const root = fakeSysClassNet({ bond0: { slaves: 'eth0 .. ../../etc\n' }, eth0: {} });
  assert.deepEqual(names(root, 'bond0'), ['eth0']);
});

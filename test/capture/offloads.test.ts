/**
 * Tests for sensor/capture/offloads.ts: the plan and its messages against a recorded fake driver
 * (stacked devices from a fake /sys/class/net), then the real ioctls on a veth pair made for the
 * test (root; GRO on a veth can be switched, LRO cannot), including the EPERM an unprivileged
 * process gets, and on a macvlan over a veth, checked with ethtool.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { MAX_STACK_DEPTH } from '../../sensor/capture/lower-devices.js';
import { describeOffloads, offloadCommand, prepareReceiveOffloads } from '../../sensor/capture/offloads.js';
import { loadRingBinding } from '../../sensor/capture/ring.js';
import { fakeSysClassNet } from '../helpers/sysfs.js';

/** A /sys/class/net where no device has another under it, for the tests of single interfaces. */
const NO_STACKS = fakeSysClassNet({});

/** A driver: per interface [gro, lro] (1 on, 0 off, <0 -errno), and the errno each change returns. */
function fakeDriver(state: Record<string, [number, number]>, failWith = 0) {
  const calls: string[] = [];
  return {
    calls,
    getOffloads: (name: string): [number, number] => [...state[name]] as [number, number],
    setOffload: (name: string, which: 0 | 1, on: boolean): number => {
      calls.push(`${name} ${which === 0 ? 'gro' : 'lro'} ${on ? 'on' : 'off'}`);
      if (failWith !== 0) return failWith;
      state[name][which] = on ? 1 : 0;
      return 0;
    },
  };
}

test('offloads that are on are turned off, reported, and restored exactly as found', () => {
  const state: Record<string, [number, number]> = { eth1: [1, 1], eth2: [0, 0], eth3: [1, -95] };
  const driver = fakeDriver(state);
  const plan = prepareReceiveOffloads(['eth1', 'eth2', 'eth3'], { keep: false, binding: driver, sysClassNet: NO_STACKS });
  assert.deepEqual(plan.reports, [
    { interface: 'eth1', turnedOff: ['gro', 'lro'], stillOn: [] },
    { interface: 'eth2', turnedOff: [], stillOn: [] },
    { interface: 'eth3', turnedOff: ['gro'], stillOn: [] },
  ]);
  assert.deepEqual(state, { eth1: [0, 0], eth2: [0, 0], eth3: [0, -95] });
  assert.equal(describeOffloads(plan.reports[0])?.message, 'eth1: turned receive offload GRO and LRO off for capture (back on when Hark stops)');
  assert.equal(describeOffloads(plan.reports[0])?.level, 'info');
  assert.equal(describeOffloads(plan.reports[1]), undefined, 'nothing to say about an interface without offloads');
  assert.deepEqual(plan.restore(), []);
  assert.deepEqual(state, { eth1: [1, 1], eth2: [0, 0], eth3: [1, -95] }, 'only what Hark turned off comes back on');
  assert.deepEqual(driver.calls, ['eth1 gro off', 'eth1 lro off', 'eth3 gro off', 'eth1 gro on', 'eth1 lro on', 'eth3 gro on']);
  assert.deepEqual(plan.restore(), [], 'a second restore changes nothing');
  assert.equal(driver.calls.length, 6);
});

test('--keep-offloads leaves them on, and the warning says what that costs and the command to run', () => {
  const state: Record<string, [number, number]> = { eth1: [1, 0] };
  const driver = fakeDriver(state);
  const plan = prepareReceiveOffloads(['eth1'], { keep: true, binding: driver, sysClassNet: NO_STACKS });
  assert.deepEqual(plan.reports, [{ interface: 'eth1', turnedOff: [], stillOn: ['gro'] }]);
  assert.deepEqual(driver.calls, []);
  const said = describeOffloads(plan.reports[0])!;
  assert.equal(said.level, 'warning');
  assert.equal(said.message, 'eth1: receive offload GRO kept on (--keep-offloads): the kernel merges TCP segments before capture, hiding retransmissions and overlaps; run: ethtool -K eth1 gro off');
});

test('a change the kernel refuses is a warning naming the privilege, and nothing is restored', () => {
  const state: Record<string, [number, number]> = { eth1: [1, 1] };
  const driver = fakeDriver(state, 1);
  const plan = prepareReceiveOffloads(['eth1'], { keep: false, binding: driver, sysClassNet: NO_STACKS });
  assert.deepEqual(plan.reports, [{ interface: 'eth1', turnedOff: [], stillOn: ['gro', 'lro'], error: 'EPERM: changing offloads needs CAP_NET_ADMIN' }]);
  assert.match(describeOffloads(plan.reports[0])!.message, /^eth1: receive offload GRO and LRO could not be turned off \(EPERM: changing offloads needs CAP_NET_ADMIN\): .*; run: ethtool -K eth1 gro off lro off$/);
  assert.deepEqual(plan.restore(), []);
  assert.equal(driver.calls.length, 2, 'no restore of what was never changed');
  assert.equal(offloadCommand('bond0', ['lro']), 'ethtool -K bond0 lro off');
});

test('a restore that fails says which interface and offload', () => {
  const state: Record<string, [number, number]> = { eth1: [1, 0] };
  let refuse = false;
  const driver = { getOffloads: (n: string) => state[n], setOffload: (n: string, w: 0 | 1, on: boolean) => (refuse ? 1 : ((state[n][w] = on ? 1 : 0), 0)) };
  const plan = prepareReceiveOffloads(['eth1'], { keep: false, binding: driver, sysClassNet: NO_STACKS });
  refuse = true;
  assert.deepEqual(plan.restore(), ['eth1: could not turn GRO back on (EPERM)']);
});

test('devices stacked under a capture interface get the same treatment, named as "eth0 (under bond0)"', () => {
  const sys = fakeSysClassNet({ bond0: { lower: ['eth0', 'eth1'], slaves: 'eth0 eth1\n' }, eth0: {}, eth1: {} });
  const state: Record<string, [number, number]> = { bond0: [1, 0], eth0: [1, 1], eth1: [0, 0] };
  const driver = fakeDriver(state);
  const plan = prepareReceiveOffloads(['bond0'], { keep: false, binding: driver, sysClassNet: sys });
  assert.deepEqual(plan.reports, [
    { interface: 'bond0', turnedOff: ['gro'], stillOn: [] },
    { interface: 'eth0', under: 'bond0', turnedOff: ['gro', 'lro'], stillOn: [] },
    { interface: 'eth1', under: 'bond0', turnedOff: [], stillOn: [] },
  ]);
  assert.deepEqual(plan.notes, []);
  assert.deepEqual(state, { bond0: [0, 0], eth0: [0, 0], eth1: [0, 0] });
  assert.deepEqual(describeOffloads(plan.reports[1]), { level: 'info', message: 'eth0 (under bond0): turned receive offload GRO and LRO off for capture (back on when Hark stops)' });
  assert.deepEqual(plan.restore(), []);
  assert.deepEqual(state, { bond0: [1, 0], eth0: [1, 1], eth1: [0, 0] });
  assert.deepEqual(driver.calls, ['bond0 gro off', 'eth0 gro off', 'eth0 lro off', 'bond0 gro on', 'eth0 gro on', 'eth0 lro on'], 'upper before lower, both ways');

  const kept = prepareReceiveOffloads(['bond0'], { keep: true, binding: fakeDriver(state), sysClassNet: sys });
  assert.equal(
    describeOffloads(kept.reports[1])?.message,
    'eth0 (under bond0): receive offload GRO and LRO kept on (--keep-offloads): the kernel merges TCP segments before capture, hiding retransmissions and overlaps; run: ethtool -K eth0 gro off lro off',
  );

  const refusing = { getOffloads: (n: string) => state[n], setOffload: (n: string, w: 0 | 1, on: boolean) => (n === 'eth0' ? 1 : ((state[n][w] = on ? 1 : 0), 0)) };
  const refused = prepareReceiveOffloads(['bond0'], { keep: false, binding: refusing, sysClassNet: sys });
  assert.deepEqual(refused.reports[1], { interface: 'eth0', under: 'bond0', turnedOff: [], stillOn: ['gro', 'lro'], error: 'EPERM: changing offloads needs CAP_NET_ADMIN' });
  assert.match(describeOffloads(refused.reports[1])!.message, /^eth0 \(under bond0\): receive offload GRO and LRO could not be turned off \(EPERM: .*; run: ethtool -K eth0 gro off lro off$/);
  refused.restore();
});

test('a device both captured and under another captured one is handled once, as a capture interface', () => {
  const sys = fakeSysClassNet({ bond0: { lower: ['eth0'] }, eth0: {} });
  const state: Record<string, [number, number]> = { bond0: [1, 0], eth0: [1, 0] };
  const driver = fakeDriver(state);
  const plan = prepareReceiveOffloads(['bond0', 'eth0'], { keep: false, binding: driver, sysClassNet: sys });
  assert.deepEqual(plan.reports, [
    { interface: 'bond0', turnedOff: ['gro'], stillOn: [] },
    { interface: 'eth0', turnedOff: ['gro'], stillOn: [] },
  ]);
  assert.deepEqual(driver.calls, ['bond0 gro off', 'eth0 gro off']);
});

test('a stack deeper than the kernel allows is cut, and the plan says so', () => {
  const chain: Record<string, { lower?: string[] }> = {};
  const state: Record<string, [number, number]> = {};
  for (let i = 0; i <= 12; i++) {
    chain[`d${i}`] = i < 12 ? { lower: [`d${i + 1}`] } : {};
    state[`d${i}`] = [0, 0];
  }
  const plan = prepareReceiveOffloads(['d0'], { keep: false, binding: fakeDriver(state), sysClassNet: fakeSysClassNet(chain) });
  assert.equal(plan.reports.length, 1 + MAX_STACK_DEPTH);
  assert.deepEqual(plan.notes, [`d0: devices stacked more than ${MAX_STACK_DEPTH} deep (under d${MAX_STACK_DEPTH}) not checked for receive offloads`]);
});

/**
 * A macvlan as this kernel has it: its GRO reads as its parent's, and a change made on the macvlan
 * itself is accepted (0) and does nothing.
 */
function macvlanDriver(state: Record<string, [number, number]>, parentRefuses: boolean) {
  const read = (n: string): [number, number] => (n === 'mv0' ? [state.nic0[0], 0] : state[n]);
  return {
    getOffloads: read,
    setOffload: (n: string, w: 0 | 1, on: boolean): number => {
      if (n === 'mv0') return 0;
      if (parentRefuses) return 1;
      state[n][w] = on ? 1 : 0;
      return 0;
    },
  };
}

test('an offload is reported off only when the kernel reads it off: a macvlan follows its parent', () => {
  const sys = fakeSysClassNet({ mv0: { lower: ['nic0'] }, nic0: {} });
  const state: Record<string, [number, number]> = { nic0: [1, 0] };
  const plan = prepareReceiveOffloads(['mv0'], { keep: false, binding: macvlanDriver(state, false), sysClassNet: sys });
  assert.deepEqual(plan.reports, [
    { interface: 'mv0', turnedOff: ['gro'], stillOn: [] },
    { interface: 'nic0', under: 'mv0', turnedOff: ['gro'], stillOn: [] },
  ]);
  assert.deepEqual(plan.restore(), []);
  assert.deepEqual(state, { nic0: [1, 0] });

  const refused = prepareReceiveOffloads(['mv0'], { keep: false, binding: macvlanDriver(state, true), sysClassNet: sys });
  assert.deepEqual(refused.reports, [
    { interface: 'mv0', turnedOff: [], stillOn: ['gro'], error: 'the driver left it on, or it follows a device under this one' },
    { interface: 'nic0', under: 'mv0', turnedOff: [], stillOn: ['gro'], error: 'EPERM: changing offloads needs CAP_NET_ADMIN' },
  ], 'not "turned off" on the macvlan because its own change was accepted');
});

test('LRO on a bond\'s members comes back at stop although turning it off on the bond turned theirs off', () => {
  // The kernel's NETIF_F_UPPER_DISABLES: LRO off on an upper device clears it from its lower
  // devices' wanted features, and a lower device cannot turn it on while the upper has it off.
  const sys = fakeSysClassNet({ bond0: { lower: ['eth0'] }, eth0: {} });
  const lro: Record<string, boolean> = { bond0: true, eth0: true };
  const driver = {
    getOffloads: (n: string): [number, number] => [0, lro[n] && (n === 'bond0' || lro.bond0) ? 1 : 0],
    setOffload: (n: string, _w: 0 | 1, on: boolean): number => {
      lro[n] = on;
      if (n === 'bond0' && !on) lro.eth0 = false;
      return 0;
    },
  };
  const plan = prepareReceiveOffloads(['bond0'], { keep: false, binding: driver, sysClassNet: sys });
  assert.deepEqual(plan.reports.map((r) => r.turnedOff), [['lro'], ['lro']]);
  assert.deepEqual(plan.restore(), []);
  assert.deepEqual([driver.getOffloads('bond0')[1], driver.getOffloads('eth0')[1]], [1, 1], 'both back on as found');
});

/** `ethtool -k NAME`'s generic-receive-offload line: "on" or "off". */
function ethtoolGro(name: string): string {
  const out = execFileSync('ethtool', ['-k', name], { encoding: 'utf8' });
  const m = /^generic-receive-offload: (on|off)/m.exec(out);
  assert.ok(m, `no GRO line in ethtool -k ${name}: ${out}`);
  return m[1];
}

test('on a real stack: GRO turned off on the veth under a captured macvlan, as ethtool sees it, and back on after', () => {
  assert.equal(process.getuid?.(), 0, 'the live tests need root (CI runs as root)');
  const b = loadRingBinding().binding;
  assert.ok(b);
  const id = process.pid % 100000;
  const [a, z, m] = [`hkl${id}a`, `hkl${id}b`, `hkl${id}m`];
  try {
    execFileSync('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', z]);
    execFileSync('ip', ['link', 'add', 'link', a, 'name', m, 'type', 'macvlan']);
    execFileSync('ethtool', ['-K', a, 'gro', 'on']);
    assert.equal(ethtoolGro(a), 'on');
    const peer = ethtoolGro(z);
    assert.equal(ethtoolGro(m), 'on', 'the macvlan reads its parent\'s GRO');

    const kept = prepareReceiveOffloads([m], { keep: true });
    assert.deepEqual(kept.reports, [
      { interface: m, turnedOff: [], stillOn: ['gro'] },
      { interface: a, under: m, turnedOff: [], stillOn: ['gro'] },
    ]);
    assert.match(describeOffloads(kept.reports[1])!.message, new RegExp(`^${a} \\(under ${m}\\): receive offload GRO kept on .*run: ethtool -K ${a} gro off$`));
    assert.equal(ethtoolGro(a), 'on');

    const plan = prepareReceiveOffloads([m], { keep: false });
    assert.deepEqual(plan.reports, [
      { interface: m, turnedOff: ['gro'], stillOn: [] },
      { interface: a, under: m, turnedOff: ['gro'], stillOn: [] },
    ]);
    assert.equal(ethtoolGro(a), 'off', 'GRO off on the device under the captured one while capturing');
    assert.equal(ethtoolGro(m), 'off');
    assert.equal(ethtoolGro(z), peer, 'the veth\'s peer is not under the macvlan: untouched');
    assert.deepEqual(plan.restore(), []);
    assert.equal(ethtoolGro(a), 'on', 'back on as found');
    assert.equal(ethtoolGro(m), 'on');
  } finally {
    spawnSync('ip', ['link', 'del', m]);
    spawnSync('ip', ['link', 'del', a]);
  }
});

test('on a real interface: GRO switched off and back on through the ring addon, EPERM without CAP_NET_ADMIN', () => {
  assert.equal(process.getuid?.(), 0, 'the live tests need root (CI runs as root)');
  const loaded = loadRingBinding();
  assert.ok(loaded.binding, loaded.reason);
  const b = loaded.binding;
  const a = `hko${process.pid % 100000}a`;
  const z = `hko${process.pid % 100000}b`;
  execFileSync('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', z]);
  try {
    assert.equal(b.setOffload(z, 0, true), 0);
    assert.equal(b.getOffloads(z)[0], 1, 'GRO on as the test set it');
    assert.ok(b.getOffloads(z)[1] === 0 || b.getOffloads(z)[1] < 0, 'a veth has no LRO');
    // an unprivileged process can read the settings but not change them
    const moduleUrl = new URL('../../sensor/capture/offloads.js', import.meta.url).href;
    const script = `import(${JSON.stringify(moduleUrl)}).then((m) => { const p = m.prepareReceiveOffloads([${JSON.stringify(z)}], { keep: false }); process.stdout.write(JSON.stringify(p.reports)); })`;
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, '-e', script], { encoding: 'utf8', cwd: fileURLToPath(new URL('.', import.meta.url)) });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [{ interface: z, turnedOff: [], stillOn: ['gro'], error: 'EPERM: changing offloads needs CAP_NET_ADMIN' }]);
    assert.equal(b.getOffloads(z)[0], 1, 'still on after the refused change');
    // as root: off for the capture, back on at the end
    const plan = prepareReceiveOffloads([z], { keep: false });
    assert.deepEqual(plan.reports, [{ interface: z, turnedOff: ['gro'], stillOn: [] }]);
    assert.equal(b.getOffloads(z)[0], 0, 'the kernel reports GRO off');
    assert.deepEqual(plan.restore(), []);
    assert.equal(b.getOffloads(z)[0], 1, 'the kernel reports GRO on again');
    const missing = b.getOffloads('hk-no-such0');
    assert.ok(missing[0] < 0 && missing[1] < 0, `a missing interface reads as unknown, not off: ${missing}`);
  } finally {
    spawnSync('ip', ['link', 'del', a]);
  }
});

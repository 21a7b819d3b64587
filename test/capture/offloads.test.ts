/**
 * Tests for sensor/capture/offloads.ts: the plan and its messages against a recorded fake driver,
 * then the real ioctls on a veth pair made for the test (root; GRO on a veth can be switched, LRO
 * cannot), including the EPERM an unprivileged process gets.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { describeOffloads, offloadCommand, prepareReceiveOffloads } from '../../sensor/capture/offloads.js';
import { loadRingBinding } from '../../sensor/capture/ring.js';

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
  const plan = prepareReceiveOffloads(['eth1', 'eth2', 'eth3'], { keep: false, binding: driver });
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
  const plan = prepareReceiveOffloads(['eth1'], { keep: true, binding: driver });
  assert.deepEqual(plan.reports, [{ interface: 'eth1', turnedOff: [], stillOn: ['gro'] }]);
  assert.deepEqual(driver.calls, []);
  const said = describeOffloads(plan.reports[0])!;
  assert.equal(said.level, 'warning');
  assert.equal(said.message, 'eth1: receive offload GRO kept on (--keep-offloads): the kernel merges TCP segments before capture, hiding retransmissions and overlaps; run: ethtool -K eth1 gro off');
});

test('a change the kernel refuses is a warning naming the privilege, and nothing is restored', () => {
  const state: Record<string, [number, number]> = { eth1: [1, 1] };
  const driver = fakeDriver(state, 1);
  const plan = prepareReceiveOffloads(['eth1'], { keep: false, binding: driver });
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
  const plan = prepareReceiveOffloads(['eth1'], { keep: false, binding: driver });
  refuse = true;
  assert.deepEqual(plan.restore(), ['eth1: could not turn GRO back on (EPERM)']);
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

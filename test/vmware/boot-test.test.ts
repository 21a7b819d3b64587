// vmware/boot-test.ts: the serial-console report parser and the appliance checks (no VM is booted
// here; `npm run test:appliance` boots the real image).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkBootReport, parseBootReport, qemuArgs } from '../../vmware/boot-test.js';

const IMAGE = 16 * 1024 ** 3;

// Shaped like hark-boot-report's output, with the serial noise a real console carries.
const GOOD = [
  '[   12.3] systemd[1]: Started hark-menu.service',
  '\x1b[0;32mHARK-BOOT-REPORT begin\r',
  'hark-menu.service: active\r',
  'hark-mirror@eth1.service: active\r',
  'mirror-link: 3: eth1: <BROADCAST,NOARP,PROMISC,UP,LOWER_UP> mtu 1500 qdisc mq state UP mode DEFAULT group default qlen 1000\\    link/ether 52:54:00:00:00:11 brd ff:ff:ff:ff:ff:ff\r',
  'mirror-addr: 0 addresses\r',
  'mirror-detail: 3: eth1: <BROADCAST,NOARP,PROMISC,UP,LOWER_UP> mtu 1500',
  'mirror-promiscuity: promiscuity 2\r',
  'root-password: L\r',
  'root-fs-bytes: 21173002240\r',
  'tty1: Hark sensor setup',
  'tty1: This sensor is not configured yet. Answer each question and press Enter; Ctrl-C returns to',
  'HARK-BOOT-REPORT end',
].join('\n');

test('parseBootReport reads the mirror flags, promiscuity, units, root status and tty1 text', () => {
  const r = parseBootReport(GOOD);
  assert.ok(r);
  assert.deepEqual(r.mirrorFlags, ['BROADCAST', 'NOARP', 'PROMISC', 'UP', 'LOWER_UP']);
  assert.equal(r.promiscuity, 2);
  assert.equal(r.mirrorAddresses, 0);
  assert.equal(r.menuUnit, 'active');
  assert.equal(r.mirrorUnit, 'active');
  assert.equal(r.rootPassword, 'L');
  assert.equal(r.tty1[0], 'Hark sensor setup');
  assert.deepEqual(checkBootReport(r, IMAGE), []);
});

test('parseBootReport returns undefined until the end marker has arrived', () => {
  assert.equal(parseBootReport(GOOD.slice(0, GOOD.indexOf('HARK-BOOT-REPORT end'))), undefined);
  assert.equal(parseBootReport('booting...'), undefined);
});

test('checkBootReport flags a mirror NIC that is not promiscuous or has an address', () => {
  const r = parseBootReport(GOOD.replace(/PROMISC,/g, '').replace('promiscuity 2', 'promiscuity 0').replace('0 addresses', '1 addresses'));
  assert.ok(r);
  const p = checkBootReport(r, IMAGE).join('\n');
  assert.match(p, /lack PROMISC/);
  assert.match(p, /promiscuity is 0/);
  assert.match(p, /1 addresses/);
});

test('checkBootReport flags a console without the menu and a usable root password', () => {
  const r = parseBootReport(GOOD.replace(/tty1: .*\n/g, 'tty1: Debian GNU/Linux 12 hark-sensor tty1\n').replace('root-password: L', 'root-password: P').replace('hark-menu.service: active', 'hark-menu.service: failed'));
  assert.ok(r);
  const p = checkBootReport(r, IMAGE).join('\n');
  assert.match(p, /neither/);
  assert.match(p, /expected L/);
  assert.match(p, /hark-menu.service is "failed"/);
});

test('checkBootReport flags a root filesystem that did not grow past the image size', () => {
  const r = parseBootReport(GOOD.replace('root-fs-bytes: 21173002240', 'root-fs-bytes: 16735727616'));
  assert.ok(r);
  assert.equal(r.rootFsBytes, 16735727616);
  assert.match(checkBootReport(r, IMAGE).join('\n'), /did not grow/);
});

test('qemuArgs boots q35 with OVMF pflash, the qcow2 overlay and two vmxnet3 NICs on the serial console', () => {
  const a = qemuArgs({ image: '/x.qcow2', ovmfCode: '/c.fd', ovmfVars: '/v.fd', kvm: false }).join(' ');
  assert.match(a, /-machine q35,accel=tcg/);
  assert.match(a, /if=pflash,format=raw,unit=0,readonly=on,file=\/c\.fd/);
  assert.match(a, /file=\/x\.qcow2,format=qcow2,if=virtio/);
  assert.equal(a.match(/-device vmxnet3/g)?.length, 2);
  assert.match(a, /-serial stdio/);
});

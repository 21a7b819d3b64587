/**
 * runMenu, driven for real in tmux, after unlocking the console with the root password: the
 * first-boot wizard on an unconfigured sensor (with a refused dotted netmask and a refused short
 * site key; the key stored 0600 and given to hark enrol by file), the allow-list editor
 * (add / edit / remove, restart prompt), reboot recorded, and reset to unconfigured; checks the
 * files written under HARK_ROOT and the control script's effects. Sign-in itself: console-auth.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MenuSession } from './tmux-harness.js';

function sensorPid(m: MenuSession): number {
  try {
    return Number(readFileSync(join(m.root, 'run/hark/hark.pid'), 'utf8').trim());
  } catch {
    return 0;
  }
}

function alive(pid: number): boolean {
  try {
    return pid > 0 && process.kill(pid, 0);
  } catch {
    return false;
  }
}

/** Polls a condition the menu brings about through the control script (its own start-up wait). */
async function waitUntil(what: string, check: () => boolean): Promise<void> {
  const end = Date.now() + 15_000;
  while (Date.now() < end) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what} did not happen`);
}

test('runMenu first-boot wizard configures, enrols and starts an unconfigured sensor', async () => {
  const m = new MenuSession('wizard');
  try {
    m.start();
    await m.login();
    await m.answer(/Which type of sensor is this\?/, '1');
    await m.answer(/Home server address/, 'home.example.org');
    await m.answer(/Does home require a site key to enrol/, 'y');
    await m.answer(/Site key:/, 'short');
    await m.expect(/A site key has at least 8 characters; the one typed has 5/);
    m.key('C-u');
    m.type('hilltop-site-key');
    await m.answer(/How should this sensor enrol with home\?/, '1');
    await m.expect(/asks home for an enrolment code and shows it here/);
    await m.answer(/Management interface/, '1');
    await m.answer(/How does it get its address\?/, '2');
    await m.answer(/IP address for this sensor/, '192.168.10.20');
    await m.answer(/Netmask in CIDR form/, '255.255.255.0');
    await m.expect(/Type the netmask in CIDR form, not as an address: for 255\.255\.255\.0 type \/24/);
    m.key('C-u');
    m.type('/24');
    await m.answer(/Gateway:/, '10.0.0.1');
    await m.expect(/The gateway 10\.0\.0\.1 is not in 192\.168\.10\.20\/24/);
    m.key('C-u');
    m.type('192.168.10.1');
    await m.answer(/DNS server \(one address\)/, '192.168.10.2');
    await m.answer(/Do you require an upstream proxy/, 'y');
    await m.answer(/Proxy address and port/, 'proxy.school.local:3128');
    await m.expect(/1\) eth1\s+2\) eth2/);
    await m.answer(/Which interfaces are mirror ports\?/, 'eth0');
    await m.expect(/eth0 is the management interface/);
    m.key('C-u');
    m.type('1,2');
    const summary = await m.expect(/Is this right\?/);
    assert.match(summary, /Management network:\s+eth0, 192\.168\.10\.20\/24, gateway 192\.168\.10\.1, DNS 192\.168\.10\.2/);
    assert.match(summary, /Mirror interfaces:\s+eth1, eth2/);
    assert.match(summary, /Site key:\s+new \(16 characters\)/);
    assert.doesNotMatch(summary, /hilltop-site-key/, 'the key is never shown');
    // Go back to a section from the summary: the proxy, now none.
    m.type('5');
    await m.answer(/Do you require an upstream proxy/, 'n');
    await m.expect(/Upstream proxy:\s+none/);
    await m.answer(/Is this right\?/, '1');
    await m.expect(/Press Enter to return to the menu/);

    const env = m.file('etc/hark/hark.env');
    assert.match(env, /^HARK_MODE=home$/m);
    assert.match(env, /^HARK_INTERFACE=eth1,eth2$/m);
    assert.match(env, /^HARK_HOME=https:\/\/home\.example\.org$/m);
    assert.match(env, /^HARK_DATA_DIR=\/var\/lib\/hark$/m);
    assert.doesNotMatch(env, /^HARK_PROXY=/m);
    const mgmt = m.file('etc/systemd/network/10-hark-management.network');
    assert.match(mgmt, /^Name=eth0$/m);
    assert.match(mgmt, /^Address=192\.168\.10\.20\/24$/m);
    assert.match(mgmt, /^Gateway=192\.168\.10\.1$/m);
    assert.match(mgmt, /^DNS=192\.168\.10\.2$/m);
    const mirror = m.file('etc/systemd/network/10-hark-mirror-eth2.network');
    assert.match(mirror, /^Promiscuous=yes$/m);
    assert.doesNotMatch(mirror, /^Address=/m);
    const keyFile = join(m.root, 'etc/hark/site-key');
    assert.match(m.file('var/log/hark/fake-hark.log'), new RegExp(`^enrol --home https://home\\.example\\.org --code --site-key-file ${keyFile}$`, 'm'));
    assert.equal(m.file('etc/hark/site-key'), 'hilltop-site-key\n', 'the first line is the key, as hark enrol --site-key-file reads it');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.match(env, /^HARK_SITE_KEY_FILE=\/etc\/hark\/site-key$/m);
    assert.doesNotMatch(env, /hilltop-site-key/);
    assert.match(m.file('var/log/hark/menu-actions.log'), /network-apply mirrors=eth1,eth2/);
    const pid = sensorPid(m);
    assert.ok(alive(pid), 'the control script started the sensor');

    m.type('');
    await m.expect(/Sensor: sensor 42, mirror ports eth1, eth2/);
    await m.answer(/Type an option and press Enter/, '3');
    await m.expect(/MENU-EXITED 0/);
  } finally {
    m.close();
  }
});

test('runMenu allow list add, edit, remove with restart prompt; reboot recorded; reset to unconfigured', async () => {
  const m = new MenuSession('allow');
  try {
    mkdirSync(join(m.root, 'etc/hark'), { recursive: true });
    writeFileSync(join(m.root, 'etc/hark/hark.env'), 'HARK_MODE=standalone\nHARK_INTERFACE=eth1\nHARK_DATA_DIR=/var/lib/hark\nHARK_ALLOW_LIST=/etc/hark/allow-list.txt\nHARK_SITE_KEY_FILE=/etc/hark/site-key\n');
    writeFileSync(join(m.root, 'etc/hark/site-key'), 'old-site-key\n', { mode: 0o600 });
    m.start();
    await m.login();
    await m.answer(/Sensor: standalone, mirror ports eth1[\s\S]*Type an option and press Enter/, 'a');
    await m.answer(/\(empty\)[\s\S]*Type new to add an entry/, 'new');
    await m.answer(/Domain to allow/, 'com');
    await m.expect(/needs at least a second-level domain/);
    m.key('C-u');
    m.type('YouTube.com');
    await m.answer(/Restart services now to apply the change\?/, 'n');
    await m.answer(/1\) youtube\.com[\s\S]*Type new to add an entry/, '1');
    await m.answer(/Entry 1:/, 'www.youtube.com');
    await m.answer(/Entry 1 is now www\.youtube\.com\.[\s\S]*Restart services now/, 'n');
    await m.answer(/1\) www\.youtube\.com[\s\S]*Type new to add an entry/, 'new');
    await m.answer(/Domain to allow/, 'bbc.co.uk');
    await m.answer(/Added bbc\.co\.uk\.[\s\S]*Restart services now/, 'n');
    assert.deepEqual(m.file('etc/hark/allow-list.txt').split('\n').filter((l) => l && !l.startsWith('#')), ['www.youtube.com', 'bbc.co.uk']);
    await m.answer(/2\) bbc\.co\.uk[\s\S]*Type new to add an entry/, 'remove');
    await m.answer(/Number of the entry to remove/, '1');
    assert.equal(sensorPid(m), 0, 'not started before the restart prompt');
    await m.answer(/Removed www\.youtube\.com\.[\s\S]*Restart services now/, '');
    await waitUntil('the sensor started by the restart', () => alive(sensorPid(m)));
    await m.expect(/Sensor: standalone[\s\S]*Type an option and press Enter/);
    assert.deepEqual(m.file('etc/hark/allow-list.txt').split('\n').filter((l) => l && !l.startsWith('#')), ['bbc.co.uk']);
    assert.ok(alive(sensorPid(m)), 'answering Y restarted the sensor');

    m.type('6');
    await m.answer(/Reboot the appliance now\?/, 'y');
    await m.answer(/reboot recorded, not done[\s\S]*Press Enter/, '');
    assert.match(m.file('var/log/hark/menu-actions.log'), /Z reboot$/m);

    // Ctrl-C at a question returns to the menu, no stack trace.
    await m.answer(/Type an option and press Enter/, 'p');
    await m.expect(/Address or host name to ping/);
    m.key('C-c');
    const back = await m.expect(/Type an option and press Enter/);
    assert.doesNotMatch(back, /Error|at .*\.js/);

    const pid = sensorPid(m);
    m.type('4');
    await m.answer(/Reset the sensor to an unconfigured state\?/, 'y');
    await m.answer(/The sensor is now unconfigured[\s\S]*Press Enter/, '');
    await m.expect(/Sensor: UNCONFIGURED: choose 1 to configure it/);
    assert.ok(!existsSync(join(m.root, 'etc/hark/hark.env')));
    assert.ok(!alive(pid), 'reset stopped the sensor');
    assert.match(m.file('var/log/hark/fake-hark.log'), /^enrol --reset$/m);
    assert.match(m.file('var/lib/hark/identity/sensor.json'), /"sensor_id":0/);
    assert.ok(existsSync(join(m.root, 'etc/hark/allow-list.txt')), 'the allow list survives a reset');
    assert.ok(!existsSync(join(m.root, 'etc/hark/site-key')), 'the site key does not');
    m.type('3');
    await m.expect(/MENU-EXITED 0/);
  } finally {
    m.close();
  }
});

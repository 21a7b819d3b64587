/**
 * Console sign-in (menu/console-auth.ts): the root password is asked before any option, checked
 * through the account tools (a stand-in in the test root, given the real command lines), wrong
 * ones are delayed and counted in a file that outlives the menu, five lock the console, an idle
 * question locks it again, option 5 wants the current password, and the image's first boot makes
 * the operator choose the root password before the wizard. The tmux tests drive the real menu.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { menuPaths } from '../../menu/config-files.js';
import {
  CONSOLE_FAIL_DELAY_MS,
  CONSOLE_LOGIN_FAILURES,
  CONSOLE_LOGIN_WINDOW_MS,
  DEFAULT_IDLE_TIMEOUT_S,
  checkRootPassword,
  idleTimeoutMs,
  lockedForMs,
  readFailures,
} from '../../menu/console-auth.js';
import { rootPasswordState, verifyRootPassword } from '../../menu/system.js';
import { MenuSession, ROOT_PASSWORD } from './tmux-harness.js';

const SU_AS_NOBODY = 'setpriv --reuid=65534 --regid=65534 --clear-groups -- su -c true root';

/** A configured standalone sensor, so the menu (not the wizard) follows the sign-in. */
function configured(m: MenuSession): void {
  mkdirSync(join(m.root, 'etc/hark'), { recursive: true });
  writeFileSync(join(m.root, 'etc/hark/hark.env'), 'HARK_MODE=standalone\nHARK_INTERFACE=eth1\nHARK_DATA_DIR=/var/lib/hark\n');
}

function seedFailures(m: MenuSession, times: number[]): void {
  mkdirSync(join(m.root, 'var/lib/hark-menu'), { recursive: true });
  writeFileSync(join(m.root, 'var/lib/hark-menu/login-failures'), times.map((t) => `${t}\n`).join(''));
}

function stagingPaths(m: MenuSession) {
  return menuPaths({ HARK_ROOT: m.root, HARK_ACCOUNTS: join(m.root, 'accounts') });
}

test('menuPaths takes the $HARK_ACCOUNTS stand-in only in a staging root, never on "/"', () => {
  assert.equal(menuPaths({ HARK_ACCOUNTS: '/tmp/fake-accounts' }).accounts, undefined);
  assert.equal(menuPaths({ HARK_ROOT: '/', HARK_ACCOUNTS: '/tmp/fake-accounts' }).accounts, undefined);
  assert.equal(menuPaths({ HARK_ROOT: '/tmp/r', HARK_ACCOUNTS: '/tmp/fake-accounts' }).accounts, '/tmp/fake-accounts');
  assert.equal(menuPaths({ HARK_ROOT: '/tmp/r' }).consoleFailures, '/tmp/r/var/lib/hark-menu/login-failures');
});

test('idleTimeoutMs takes $HARK_MENU_IDLE_S when it is a whole number of seconds in range', () => {
  assert.equal(idleTimeoutMs({}), DEFAULT_IDLE_TIMEOUT_S * 1000);
  assert.equal(idleTimeoutMs({ HARK_MENU_IDLE_S: '30' }), 30_000);
  for (const bad of ['0', '-5', '1.5', 'ten', '86401']) assert.equal(idleTimeoutMs({ HARK_MENU_IDLE_S: bad }), DEFAULT_IDLE_TIMEOUT_S * 1000, bad);
});

test('rootPasswordState and verifyRootPassword run passwd -S and su as nobody with the password on stdin', async () => {
  const m = new MenuSession('unit-verify');
  try {
    const paths = stagingPaths(m);
    assert.deepEqual(await rootPasswordState(paths), { state: 'usable', detail: 'P' });
    assert.equal(await verifyRootPassword(paths, ROOT_PASSWORD), true);
    assert.equal(await verifyRootPassword(paths, 'not it'), false);
    assert.equal(await verifyRootPassword(paths, `${ROOT_PASSWORD}\nmore`), false, 'a line break never reaches su');
    assert.equal(await verifyRootPassword(paths, ''), false);
    assert.deepEqual(m.accountCalls(), ['passwd --status root', SU_AS_NOBODY, SU_AS_NOBODY]);
    const none = new MenuSession('unit-none', { rootPassword: null });
    try {
      assert.deepEqual(await rootPasswordState(stagingPaths(none)), { state: 'none', detail: 'L' });
    } finally {
      none.close();
    }
    assert.equal((await rootPasswordState(menuPaths({ HARK_ROOT: m.root }))).state, 'unknown', 'a staging root without the stand-in cannot check');
  } finally {
    m.close();
  }
});

test('checkRootPassword counts a wrong password before asking PAM, delays it, locks at the fifth and forgets all on the right one', async () => {
  const m = new MenuSession('unit-check');
  try {
    const paths = stagingPaths(m);
    const now = Date.now();
    seedFailures(m, [now - CONSOLE_LOGIN_WINDOW_MS - 1000, now - 60_000, now - 50_000]);
    assert.equal(readFailures(paths).length, 2, 'a failure older than the window no longer counts');
    const t0 = Date.now();
    assert.equal(await checkRootPassword(paths, 'wrong 1'), 'wrong');
    assert.ok(Date.now() - t0 >= CONSOLE_FAIL_DELAY_MS - 50, 'a wrong password waits');
    assert.equal(readFailures(paths).length, 3);
    assert.equal(await checkRootPassword(paths, ROOT_PASSWORD), 'ok');
    assert.equal(readFailures(paths).length, 0, 'the right password forgets the failures');
    seedFailures(m, Array.from({ length: CONSOLE_LOGIN_FAILURES - 1 }, (_, i) => now - 1000 * (i + 1)));
    assert.equal(await checkRootPassword(paths, 'wrong 2'), 'locked');
    assert.ok(lockedForMs(paths) > CONSOLE_LOGIN_WINDOW_MS - 60_000);
    const calls = m.accountCalls().length;
    assert.equal(await checkRootPassword(paths, ROOT_PASSWORD), 'locked', 'locked: even the right password waits');
    assert.equal(m.accountCalls().length, calls, 'and PAM is not asked');
  } finally {
    m.close();
  }
});

test('runMenu shows no option before the root password; an option key typed there is just a wrong password', async () => {
  const m = new MenuSession('auth-gate');
  try {
    configured(m);
    m.start();
    const locked = await m.expect(/The console is locked\. Type the root password[\s\S]*Root password:/);
    assert.doesNotMatch(locked, /Type an option|Sensor: standalone/);
    await m.answer(/Root password:/, '4');
    await m.expect(/Wrong password\./);
    assert.deepEqual(m.accountCalls().slice(0, 2), ['passwd --status root', SU_AS_NOBODY]);
    assert.equal(m.file('var/lib/hark-menu/login-failures').trim().split('\n').length, 1);
    await m.login();
    await m.expect(/Sensor: standalone, mirror ports eth1[\s\S]*Type an option and press Enter/);
    assert.ok(!existsSync(join(m.root, 'var/lib/hark-menu/login-failures')), 'the right password clears the failures');
    assert.ok(existsSync(join(m.root, 'etc/hark/hark.env')), 'option 4 typed at the password prompt reset nothing');
    await m.answer(/Type an option and press Enter/, 'x');
    const relocked = await m.expect(/The console is locked\.[\s\S]*Root password:/);
    assert.doesNotMatch(relocked, /Sensor: standalone/, 'locking clears the screen');
  } finally {
    m.close();
  }
});

test('runMenu locks the console at the fifth wrong password in 15 minutes, and a restarted menu is still locked', async () => {
  const now = Date.now();
  const m = new MenuSession('auth-lockout');
  try {
    configured(m);
    seedFailures(m, [now - 240_000, now - 180_000, now - 120_000, now - 60_000]);
    m.start();
    await m.answer(/Root password:/, 'fifth guess');
    await m.expect(/Too many wrong passwords: the console is locked for 1[0-4] min \d+ s\./);
    assert.equal(m.accountCalls().filter((c) => c.includes(' su ')).length, 1);
    assert.match(m.file('var/log/hark/menu-actions.log'), /console locked: too many wrong passwords$/m);
  } finally {
    m.close();
  }
  const again = new MenuSession('auth-locked-at-start');
  try {
    configured(again);
    seedFailures(again, [now - 4000, now - 3000, now - 2000, now - 1000, now]);
    again.start();
    const screen = await again.expect(/Too many wrong passwords: the console is locked for 1[45] min \d+ s\./);
    assert.doesNotMatch(screen, /Root password:|Type an option/);
    again.type(ROOT_PASSWORD);
    await new Promise((r) => setTimeout(r, 1500));
    assert.doesNotMatch(again.screen(), /Type an option/);
    assert.equal(again.accountCalls().filter((c) => c.includes(' su ')).length, 0, 'nothing typed while locked reaches PAM');
  } finally {
    again.close();
  }
});

test('runMenu locks the console again when a question waits longer than $HARK_MENU_IDLE_S, in the menu and inside a screen', async () => {
  const m = new MenuSession('auth-idle', { idleSeconds: 3 });
  try {
    configured(m);
    m.start();
    await m.login();
    await m.expect(/Type an option and press Enter/);
    await m.expect(/The console is locked\.[\s\S]*Root password:/);
    assert.match(m.file('var/log/hark/menu-actions.log'), /console locked: idle$/m);
    await m.login();
    await m.answer(/Type an option and press Enter/, 'a');
    await m.expect(/Type new to add an entry/);
    const screen = await m.expect(/The console is locked\.[\s\S]*Root password:/);
    assert.doesNotMatch(screen, /Allow list/);
    assert.equal(m.file('var/log/hark/menu-actions.log').match(/console locked: idle/g)?.length, 2);
  } finally {
    m.close();
  }
});

test('runMenu option 5 asks for the current root password: a wrong one changes nothing, the right one sets the new one with chpasswd', async () => {
  const m = new MenuSession('auth-passwd');
  try {
    configured(m);
    m.start();
    await m.login();
    await m.answer(/Type an option and press Enter/, '5');
    await m.answer(/Current root password:/, 'not the password');
    await m.answer(/The current password is wrong; the root password was NOT changed\.[\s\S]*Press Enter/, '');
    assert.equal(m.rootPassword(), ROOT_PASSWORD);
    assert.ok(!m.accountCalls().includes('chpasswd'));
    await m.answer(/Type an option and press Enter/, '5');
    await m.answer(/Current root password:/, ROOT_PASSWORD);
    await m.answer(/New root password \(at least 8 characters\):/, 'New-Root-Pass-2');
    await m.answer(/Type it again:/, 'New-Root-Pass-2');
    await m.answer(/Root password changed\.[\s\S]*Press Enter/, '');
    assert.equal(m.rootPassword(), 'New-Root-Pass-2');
    assert.equal(m.accountCalls().at(-1), 'chpasswd');
    await m.answer(/Type an option and press Enter/, 'x');
    await m.answer(/Root password:/, ROOT_PASSWORD);
    await m.expect(/Wrong password\./);
    await m.login('New-Root-Pass-2');
    await m.expect(/Type an option and press Enter/);
  } finally {
    m.close();
  }
});

test('runMenu at the image\'s first boot makes the operator choose the root password before the wizard', async () => {
  const m = new MenuSession('auth-firstboot', { rootPassword: null, firstBoot: true });
  try {
    m.start();
    const first = await m.expect(/Hark Sensor Control Menu[\s\S]*First start: root has no password yet[\s\S]*Root password for this appliance/);
    assert.doesNotMatch(first, /Which type of sensor/);
    m.key('C-c');
    await m.answer(/Root password for this appliance \(at least 8 characters\):/, 'short');
    await m.expect(/The password needs at least 8 characters/);
    m.key('C-u');
    m.type('First-Root-Pass-1');
    await m.answer(/Type it again:/, 'First-Root-Pass-1');
    await m.expect(/Which type of sensor is this\?/);
    assert.equal(m.rootPassword(), 'First-Root-Pass-1');
    assert.ok(!existsSync(join(m.root, 'var/lib/hark-menu/root-password-unset')), 'the first-boot marker is gone');
    assert.deepEqual(m.accountCalls().filter((c) => c.includes(' su ')), [], 'no password was asked for: there was none');
    m.key('C-c');
    await m.answer(/Sensor: UNCONFIGURED[\s\S]*Type an option and press Enter/, 'x');
    await m.login('First-Root-Pass-1');
    await m.expect(/Which type of sensor is this\?/);
  } finally {
    m.close();
  }
});

test('runMenu with root locked and no first-boot marker stays locked and says why', async () => {
  const m = new MenuSession('auth-nopassword', { rootPassword: null });
  try {
    configured(m);
    m.start();
    await m.answer(/Root has no usable password \(passwd -S: L\)[\s\S]*Press Enter to check again/, '');
    await new Promise((r) => setTimeout(r, 500));
    const after = await m.expect(/Press Enter to check again/);
    assert.doesNotMatch(after, /Type an option|Root password:|First start/);
    assert.deepEqual(m.accountCalls().filter((c) => c !== 'passwd --status root'), [], 'no password set or checked');
    assert.ok(m.accountCalls().length >= 2, 'Enter checks again');
  } finally {
    m.close();
  }
});

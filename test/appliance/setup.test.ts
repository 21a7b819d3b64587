/**
 * appliance/setup.sh into a temporary root (Debian packages and npm skipped, the already compiled
 * output given with --dist): the tree, owners and modes it leaves, no file capabilities on its node
 * (and those of an older install removed), that a second run changes nothing and says so, and that
 * a Node.js older than 20 is refused clearly; hark-home.service is installed but home is set up
 * (user, data directory, home.env, unit enabled) only with --with-home.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdtempSync, readlinkSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

const DIST = fileURLToPath(new URL('../../', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const SETUP = join(REPO, 'appliance/setup.sh');

let root = '';
let first = { code: -1, out: '', err: '' };

function setup(...extra: string[]): { code: number; out: string; err: string } {
  const r = spawnSync('bash', [SETUP, '--root', root, '--skip-packages', '--dist', DIST, '--node', process.execPath, ...extra], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** Every path under the root (node_modules-free) with its mode and owner, for comparing runs. */
function snapshot(dir: string, base = dir, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (st === undefined) continue;
    out.push(`${p.slice(base.length)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.isFile() ? st.size : ''}`);
    if (st.isDirectory() && !p.endsWith('/opt/hark/dist')) snapshot(p, base, out);
  }
  return out;
}

/** getcap's answer for a path under the root: '' when the file has no capabilities. */
function fileCaps(p: string): string {
  const r = spawnSync('getcap', [join(root, p)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

function mode(p: string): string {
  const st = statSync(join(root, p));
  return `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
}

before(() => {
  root = mkdtempSync(join(tmpdir(), 'hark-setup-'));
  first = setup();
});

after(() => rmSync(root, { recursive: true, force: true }));

test('setup.sh installs the tree with the right owners and modes, and no capabilities on its node', () => {
  assert.equal(first.code, 0, first.err);
  const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
  const m = /^hark:[^:]*:(\d+):(\d+):[^:]*:\/var\/lib\/hark:\/usr\/sbin\/nologin$/m.exec(passwd);
  assert.ok(m, `no nologin hark user in ${passwd}`);
  const [uid, gid] = [m[1], m[2]];
  assert.equal(mode('var/lib/hark'), `700 ${uid}:${gid}`);
  assert.equal(mode('etc/hark'), `750 0:${gid}`);
  assert.equal(mode('etc/hark/hark.env'), `640 0:${gid}`);
  assert.match(readFileSync(join(root, 'etc/hark/hark.env'), 'utf8'), /^HARK_DATA_DIR=\/var\/lib\/hark$/m);
  assert.equal(mode('opt/hark/node/bin/node'), '755 0:0');
  assert.equal(fileCaps('opt/hark/node/bin/node'), '', 'a world-executable node must not carry capture capabilities');
  assert.match(first.out, /capabilities: none on .*\/opt\/hark\/node\/bin\/node \(hark\.service grants capture rights to the sensor alone\)/);
  assert.ok(statSync(join(root, 'opt/hark/dist/sensor/cli/hark.js')).isFile());
  assert.ok(statSync(join(root, 'opt/hark/dist/menu/main.js')).isFile());
  assert.ok(statSync(join(root, 'opt/hark/appliance/hark.sh')).isFile());
  for (const u of ['hark.service', 'hark-home.service', 'hark-mirror@.service', 'hark-menu.service']) assert.equal(mode(`etc/systemd/system/${u}`), '644 0:0');
  assert.match(first.out, /user: created system user hark/);
  assert.match(first.out, /units: systemd is not running here \(or --root is set\): installed, not enabled/);
});

test('setup.sh without --with-home sets up no home: no hark-home user, data directory or home.env, unit not enabled', () => {
  assert.doesNotMatch(readFileSync(join(root, 'etc/passwd'), 'utf8'), /^hark-home:/m);
  for (const p of ['var/lib/hark-home', 'etc/hark/home.env', 'etc/systemd/system/multi-user.target.wants/hark-home.service']) {
    assert.equal(existsSync(join(root, p)), false, `${p} exists`);
  }
  assert.doesNotMatch(first.out, /user: .*hark-home|hark-home\.service already enabled|enabled hark-home/);
});

test('setup.sh run twice changes nothing and says it was already done', () => {
  const before = snapshot(root);
  const second = setup();
  assert.equal(second.code, 0, second.err);
  assert.deepEqual(snapshot(root), before);
  for (const said of [/Node\.js: .* is already 20\./, /capabilities: none on /, /user: hark already exists/, /\/var\/lib\/hark already 0700 hark:hark/, /hark\.env kept as it is/, /units: already up to date/]) {
    assert.match(second.out, said);
  }
  assert.equal(readFileSync(join(root, 'etc/passwd'), 'utf8').split('\n').filter((l) => l.startsWith('hark:')).length, 1);
});

test('setup.sh removes the capture capabilities an older setup.sh gave its node', () => {
  const node = join(root, 'opt/hark/node/bin/node');
  const set = spawnSync('setcap', ['cap_net_raw,cap_net_admin+eip', node], { encoding: 'utf8' });
  assert.equal(set.status, 0, set.stderr);
  assert.match(fileCaps('opt/hark/node/bin/node'), /cap_net_admin,cap_net_raw=eip/);
  const r = setup();
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /capabilities: removed the file capabilities an older setup gave .*\/opt\/hark\/node\/bin\/node/);
  assert.equal(fileCaps('opt/hark/node/bin/node'), '');
  assert.equal(mode('opt/hark/node/bin/node'), '755 0:0');
});

test('setup.sh keeps a configured hark.env', () => {
  writeFileSync(join(root, 'etc/hark/hark.env'), 'HARK_MODE=standalone\nHARK_INTERFACE=eth1\n');
  assert.equal(setup().code, 0);
  assert.equal(readFileSync(join(root, 'etc/hark/hark.env'), 'utf8'), 'HARK_MODE=standalone\nHARK_INTERFACE=eth1\n');
});

test('setup.sh refuses a Node.js older than 20 with what to do', () => {
  const old = join(root, 'old-node');
  writeFileSync(old, '#!/bin/sh\necho 18.19.0\n');
  chmodSync(old, 0o755);
  const r = setup('--node', old);
  assert.equal(r.code, 1);
  assert.match(r.err, /Hark needs Node\.js 20 or newer; ".*old-node" is version 18\.19\.0 \(Debian 12 ships 18\)\. .*HARK_NODE=\/path\/to\/node/);
});

test('setup.sh --with-home makes the hark-home user, its 0700 data directory and a 0640 root:hark-home home.env, and enables the unit', () => {
  const r = setup('--with-home');
  assert.equal(r.code, 0, r.err);
  const m = /^hark-home:[^:]*:(\d+):(\d+):[^:]*:\/var\/lib\/hark-home:\/usr\/sbin\/nologin$/m.exec(readFileSync(join(root, 'etc/passwd'), 'utf8'));
  assert.ok(m, 'no nologin hark-home user');
  const [uid, gid] = [m[1], m[2]];
  const sensorUid = /^hark:[^:]*:(\d+):/m.exec(readFileSync(join(root, 'etc/passwd'), 'utf8'))?.[1];
  assert.ok(sensorUid !== undefined, 'the sensor\'s user hark is there too');
  assert.notEqual(uid, sensorUid, 'home must not share the sensor\'s user');
  assert.equal(mode('var/lib/hark-home'), `700 ${uid}:${gid}`);
  assert.equal(mode('etc/hark/home.env'), `640 0:${gid}`);
  const env = readFileSync(join(root, 'etc/hark/home.env'), 'utf8');
  for (const line of [/^HARK_HOME_PORT=443$/m, /^HARK_HOME_LISTEN=$/m, /^HARK_HOME_DIR=\/var\/lib\/hark-home$/m, /^HARK_HOME_ARGS=$/m]) assert.match(env, line);
  const link = join(root, 'etc/systemd/system/multi-user.target.wants/hark-home.service');
  assert.ok(lstatSync(link).isSymbolicLink());
  assert.equal(readlinkSync(link), '/etc/systemd/system/hark-home.service');
  assert.equal(existsSync(join(root, 'etc/systemd/system/multi-user.target.wants/hark.service')), false, 'the sensor unit stays as it was');
  assert.match(r.out, /user: created system user hark-home \(no login\)/);
  assert.match(r.out, /units: enabled hark-home\.service \(it starts at the next boot\)/);

  writeFileSync(join(root, 'etc/hark/home.env'), 'HARK_HOME_PORT=8443\n');
  const before = snapshot(root);
  const again = setup('--with-home');
  assert.equal(again.code, 0, again.err);
  assert.deepEqual(snapshot(root), before, 'a second run changes nothing, and keeps a configured home.env');
  for (const said of [/user: hark-home already exists/, /\/var\/lib\/hark-home already 0700 hark-home:hark-home/, /home\.env kept as it is/, /hark-home\.service already enabled/]) assert.match(again.out, said);
});

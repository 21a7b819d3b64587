/**
 * appliance/systemd/*: every unit passes `systemd-analyze verify` with no warning (the units are
 * copied to a temporary folder with Hark's node path pointed at the running node, since /opt/hark
 * is not installed here), hark.service carries the privileges and hardening the appliance needs, and
 * hark-home.service the same hardening with what home's Chromium sandbox needs left open.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const UNITS = fileURLToPath(new URL('../../../appliance/systemd/', import.meta.url));

/** Copies the units (the mirror template as instance "lo") and returns what verify says about them. */
function verify(edit?: (name: string, text: string) => string): { code: number; said: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hark-units-'));
  try {
    const names: string[] = [];
    for (const [src, dst] of [['hark.service', 'hark.service'], ['hark-home.service', 'hark-home.service'], ['hark-menu.service', 'hark-menu.service'], ['hark-mirror@.service', 'hark-mirror@lo.service']] as const) {
      let text = readFileSync(join(UNITS, src), 'utf8').replaceAll('/opt/hark/node/bin/node', process.execPath);
      if (edit) text = edit(dst, text);
      writeFileSync(join(dir, dst), text);
      names.push(join(dir, dst));
    }
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...names], { encoding: 'utf8' });
    return { code: r.status ?? -1, said: `${r.stdout}${r.stderr}`.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('appliance units pass systemd-analyze verify without a warning', () => {
  const r = verify();
  assert.equal(r.code, 0, r.said);
  assert.equal(r.said, '');
});

test('systemd-analyze verify catches a bad directive in hark.service (the check can fail)', () => {
  const r = verify((name, text) => (name === 'hark.service' ? text.replace('Restart=always', 'Restart=sometimes') : text));
  assert.match(r.said, /restart specifier/);
});

test('hark.service runs as hark with only the capture capabilities, reloads with SIGUSR2, restarts always', () => {
  const unit = readFileSync(join(UNITS, 'hark.service'), 'utf8');
  const has = (line: string) => assert.ok(unit.split('\n').includes(line), `hark.service lacks "${line}"`);
  has('User=hark');
  has('AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN');
  has('CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN');
  has('EnvironmentFile=/etc/hark/hark.env');
  has('ExecReload=/bin/kill -USR2 $MAINPID');
  has('Restart=always');
  has('RestartSec=5');
  for (const h of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'ReadWritePaths=/var/lib/hark', 'PrivateTmp=yes', 'ProtectHome=yes', 'UMask=0077']) has(h);
});

test('hark-home.service runs home as hark-home, binds 443 with one capability and leaves Chromium its namespaces', () => {
  const unit = readFileSync(join(UNITS, 'hark-home.service'), 'utf8');
  const lines = unit.split('\n');
  const has = (line: string) => assert.ok(lines.includes(line), `hark-home.service lacks "${line}"`);
  for (const h of ['User=hark-home', 'EnvironmentFile=/etc/hark/home.env', 'ConditionPathExists=/etc/hark/home.env', 'StateDirectory=hark-home', 'StateDirectoryMode=0700', 'Restart=on-failure', 'KillSignal=SIGTERM']) has(h);
  assert.match(unit, /^Environment=.*\bHARK_HOME_PORT=443\b.*\bHARK_HOME_DIR=\/var\/lib\/hark-home\b/m);
  assert.match(unit, /^ExecStart=\/opt\/hark\/node\/bin\/node \/opt\/hark\/dist\/sensor\/cli\/hark\.js home --port \$\{HARK_HOME_PORT\} --listen \$\{HARK_HOME_LISTEN\} \$HARK_HOME_ARGS$/m);
  has('AmbientCapabilities=CAP_NET_BIND_SERVICE');
  has('CapabilityBoundingSet=CAP_NET_BIND_SERVICE');
  // Chromium's namespace sandbox: new user, PID and network namespaces, nothing else.
  has('RestrictNamespaces=user pid net');
  assert.doesNotMatch(unit, /^MemoryDenyWriteExecute=yes/m, 'V8 needs writable executable memory');
  const hark = readFileSync(join(UNITS, 'hark.service'), 'utf8').split('\n');
  const shared = hark.filter((l) => /^(NoNewPrivileges|UMask|ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|Protect\w+|RestrictRealtime|RestrictSUIDSGID|LockPersonality|SystemCallArchitectures)=/.test(l));
  assert.ok(shared.length >= 14, shared.join(' '));
  for (const h of shared) has(h);
});

test('hark-mirror@.service brings its interface up promiscuous with no address before hark.service', () => {
  const unit = readFileSync(join(UNITS, 'hark-mirror@.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/sbin\/ip address flush dev %i$/m);
  assert.match(unit, /^ExecStart=\/usr\/sbin\/ip link set dev %i .*promisc on up$/m);
  assert.match(unit, /^Before=hark\.service$/m);
});

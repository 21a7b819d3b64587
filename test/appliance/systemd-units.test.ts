/**
 * appliance/systemd/*: every unit passes `systemd-analyze verify` with no warning (the units are
 * copied to a temporary folder with Hark's node path pointed at the running node, since /opt/hark
 * is not installed here), and hark.service carries the privileges and hardening the appliance needs.
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
    for (const [src, dst] of [['hark.service', 'hark.service'], ['hark-menu.service', 'hark-menu.service'], ['hark-mirror@.service', 'hark-mirror@lo.service']] as const) {
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

test('hark-mirror@.service brings its interface up promiscuous with no address before hark.service', () => {
  const unit = readFileSync(join(UNITS, 'hark-mirror@.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/sbin\/ip address flush dev %i$/m);
  assert.match(unit, /^ExecStart=\/usr\/sbin\/ip link set dev %i .*promisc on up$/m);
  assert.match(unit, /^Before=hark\.service$/m);
});

/**
 * menu/config-files.ts: hark.env round trip, allow-list parsing, networkd rendering for the
 * management and mirror interfaces, read-back of the management settings, and identity reading.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  hasSiteKey,
  isUnconfigured,
  menuPaths,
  parseAllowList,
  parseEnvFile,
  readManagementNetwork,
  removeSiteKey,
  renderEnvFile,
  renderNetworkdFiles,
  settingsFromEnv,
  writeNetworkPlan,
  writeSettings,
  writeSiteKey,
} from '../../menu/config-files.js';

test('parseEnvFile reads EnvironmentFile syntax: comments, quotes, empty values', () => {
  const v = parseEnvFile('# c\n; c\nHARK_MODE=home\nHARK_RUN_ARGS="--stats-interval 0"\n  HARK_PROXY=\nnot a line\n');
  assert.equal(v.get('HARK_MODE'), 'home');
  assert.equal(v.get('HARK_RUN_ARGS'), '--stats-interval 0');
  assert.equal(v.get('HARK_PROXY'), '');
  assert.equal(v.size, 3);
});

test('renderEnvFile and settingsFromEnv round-trip the sensor settings', () => {
  const s = { mode: 'standalone' as const, interfaces: ['eth1', 'eth2'], dataDir: '/var/lib/hark', allowList: '/etc/hark/allow-list.txt', proxy: 'http://p:3128', runArgs: '--stats-interval 0' };
  assert.deepEqual(settingsFromEnv(parseEnvFile(renderEnvFile(s))), s);
  assert.match(renderEnvFile(s), /^HARK_INTERFACE=eth1,eth2$/m);
});

test('renderEnvFile names the site key file, never the key; settingsFromEnv reads it back', () => {
  const s = { mode: 'home' as const, interfaces: ['eth1'], dataDir: '/var/lib/hark', allowList: '/etc/hark/allow-list.txt', home: 'https://home.example.org', siteKeyFile: '/etc/hark/site-key' };
  assert.match(renderEnvFile(s), /^HARK_SITE_KEY_FILE=\/etc\/hark\/site-key$/m);
  assert.deepEqual(settingsFromEnv(parseEnvFile(renderEnvFile(s))), s);
  const none = { ...s, siteKeyFile: undefined };
  assert.doesNotMatch(renderEnvFile(none), /HARK_SITE_KEY_FILE/);
});

test('writeSiteKey stores the key as the first line, 0600 whatever the umask or a stale temporary file', () => {
  const root = mkdtempSync(join(tmpdir(), 'hark-cf-'));
  const umask = process.umask(0o000);
  try {
    const file = join(root, 'etc/hark/site-key');
    mkdirSync(join(root, 'etc/hark'), { recursive: true });
    // a temporary file a crash left, readable by all: its mode must not carry over to the key
    writeFileSync(`${file}.tmp-${process.pid}`, 'stale', { mode: 0o644 });
    assert.equal(hasSiteKey(file), false);
    writeSiteKey(file, 'hilltop-site-key');
    assert.equal(readFileSync(file, 'utf8'), 'hilltop-site-key\n');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(hasSiteKey(file), true);
    assert.equal(existsSync(`${file}.tmp-${process.pid}`), false);
    removeSiteKey(file);
    assert.equal(hasSiteKey(file), false);
    removeSiteKey(file);
  } finally {
    process.umask(umask);
    rmSync(root, { recursive: true, force: true });
  }
});

test('parseAllowList skips comments and blank lines', () => {
  assert.deepEqual(parseAllowList('# x\n\nyoutube.com\n  bbc.co.uk \n'), ['youtube.com', 'bbc.co.uk']);
});

test('renderNetworkdFiles addresses the management interface and leaves mirror ports without an address', () => {
  const files = renderNetworkdFiles({ management: { iface: 'eth0', dhcp: false, address: '10.0.0.5', prefix: 22, gateway: '10.0.0.1', dns: '10.0.0.2' }, mirrors: ['eth1'] });
  assert.deepEqual(files.map((f) => f.name), ['10-hark-management.network', '10-hark-mirror-eth1.network']);
  assert.match(files[0].text, /^Address=10\.0\.0\.5\/22$/m);
  assert.match(files[1].text, /^Promiscuous=yes$/m);
  assert.doesNotMatch(files[1].text, /^(Address|Gateway|DNS)=/m);
  const dhcp = renderNetworkdFiles({ management: { iface: 'eth0', dhcp: true }, mirrors: [] });
  assert.match(dhcp[0].text, /^DHCP=ipv4$/m);
});

test('writeNetworkPlan replaces only the menu files and reads back the management settings', () => {
  const root = mkdtempSync(join(tmpdir(), 'hark-cf-'));
  try {
    const paths = menuPaths({ HARK_ROOT: root });
    mkdirSync(paths.networkDir, { recursive: true });
    writeFileSync(join(paths.networkDir, '50-other.network'), '[Match]\nName=eth9\n');
    writeNetworkPlan(paths, { management: { iface: 'eth0', dhcp: true }, mirrors: ['eth1', 'eth2'] });
    assert.deepEqual(readdirSync(paths.networkDir).sort(), ['10-hark-management.network', '10-hark-mirror-eth1.network', '10-hark-mirror-eth2.network', '50-other.network']);
    writeNetworkPlan(paths, { management: { iface: 'eth0', dhcp: false, address: '192.168.1.5', prefix: 24, gateway: '192.168.1.1', dns: '192.168.1.1' }, mirrors: ['eth1'] });
    assert.deepEqual(readManagementNetwork(paths), { iface: 'eth0', dhcp: false, address: '192.168.1.5', prefix: 24, gateway: '192.168.1.1', dns: '192.168.1.1' });
    assert.deepEqual(readdirSync(paths.networkDir).sort(), ['10-hark-management.network', '10-hark-mirror-eth1.network', '50-other.network'], 'eth2 is no longer a mirror: its file is gone');
    assert.equal(readFileSync(join(paths.networkDir, '50-other.network'), 'utf8'), '[Match]\nName=eth9\n');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('isUnconfigured: no hark.env, or home mode with sensor id 0; a damaged identity counts as 0', () => {
  const root = mkdtempSync(join(tmpdir(), 'hark-cf-'));
  try {
    const paths = menuPaths({ HARK_ROOT: root });
    assert.ok(isUnconfigured(paths));
    writeSettings(paths, { mode: 'home', interfaces: ['eth1'], dataDir: '/var/lib/hark', allowList: '/etc/hark/allow-list.txt' });
    assert.ok(isUnconfigured(paths));
    mkdirSync(join(root, 'var/lib/hark/identity'), { recursive: true });
    writeFileSync(join(root, 'var/lib/hark/identity/sensor.json'), '{"sensor_id": 7}');
    assert.ok(!isUnconfigured(paths));
    writeFileSync(join(root, 'var/lib/hark/identity/sensor.json'), '{"sensor_id": 7');
    assert.ok(isUnconfigured(paths));
    writeSettings(paths, { mode: 'standalone', interfaces: ['eth1'], dataDir: '/var/lib/hark', allowList: '/etc/hark/allow-list.txt' });
    assert.ok(!isUnconfigured(paths));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/**
 * SensorSampler and readInterfaceDrops: rates between samples, counters split into statistics and
 * anomalies, extra fields, watchdog events, and NIC drops read from a fake sysfs tree (absent or
 * odd files leave the field out, never throw).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Counters, defineAnomaly, defineCounter } from '../../sensor/events/counters.js';
import { ActiveHealth } from '../../sensor/health/active-health.js';
import { readHarkVersion, readInterfaceDrops, SensorSampler, type InterfaceCount } from '../../sensor/health/snapshot.js';
import { InterfaceWatchdog } from '../../sensor/health/watchdog.js';

const C_GAP = defineCounter('tcp.reassembly_gap');
const C_ACTIVE = defineCounter('flow.active');
const C_EMITTED = defineCounter('capture.emitted');
const A_HLEN = defineAnomaly('decoder.ipv4.hlen_too_small');

const root = mkdtempSync(join(tmpdir(), 'hark-sysfs-'));
after(() => rmSync(root, { recursive: true, force: true }));

function fakeNic(name: string, files: Record<string, string>): void {
  const dir = join(root, 'class', 'net', name, 'statistics');
  mkdirSync(dir, { recursive: true });
  for (const [f, v] of Object.entries(files)) writeFileSync(join(dir, f), v);
}

fakeNic('eth1', { rx_dropped: '12\n', rx_missed_errors: '30\n', rx_packets: '999\n' });
fakeNic('eth2', { rx_dropped: '7\n' });
fakeNic('eth3', {});
fakeNic('eth4', { rx_dropped: 'garbage\n', rx_missed_errors: '' });
fakeNic('eth5', { rx_missed_errors: '18446744073709551615\n' });

const T0 = Date.parse('2024-05-01T10:00:00Z');

describe('readInterfaceDrops', () => {
  test('readInterfaceDrops sums rx_dropped and rx_missed_errors', () => {
    assert.equal(readInterfaceDrops('eth1', root), 42);
  });

  test('readInterfaceDrops uses whichever of the two files exists', () => {
    assert.equal(readInterfaceDrops('eth2', root), 7);
    assert.equal(readInterfaceDrops('eth5', root), 18446744073709551615);
  });

  test('readInterfaceDrops gives undefined for absent or unreadable counters, never a throw', () => {
    assert.equal(readInterfaceDrops('eth3', root), undefined);
    assert.equal(readInterfaceDrops('eth4', root), undefined);
    assert.equal(readInterfaceDrops('nosuch0', root), undefined);
    assert.equal(readInterfaceDrops('eth1', join(root, 'missing')), undefined);
  });

  test('readInterfaceDrops refuses names that would leave the statistics folder', () => {
    fakeNic('..', { rx_dropped: '5\n' });
    assert.equal(readInterfaceDrops('..', root), undefined);
    assert.equal(readInterfaceDrops('../eth1', root), undefined);
    assert.equal(readInterfaceDrops('', root), undefined);
    assert.equal(readInterfaceDrops('a-name-longer-than-15', root), undefined);
  });
});

describe('SensorSampler', () => {
  test('SensorSampler reports counts, rates since the previous sample and sysfs drops', () => {
    let counts: InterfaceCount[] = [{ name: 'eth1', packets: 0, bytes: 0, kernelDrops: 3, handoffDrops: 6 }, { name: 'eth3', packets: 10, bytes: 1000 }];
    const sampler = new SensorSampler({ interfaces: () => counts, counters: new Counters(), sysfsRoot: root, version: '1.2.3', startedAtMs: T0 - 1000, pid: 77 });
    const first = sampler.sample(T0);
    assert.equal(first.pid, 77);
    assert.equal(first.handoff_backlog, undefined, 'one thread: no hand-off backlog');
    assert.equal(first.version, '1.2.3');
    assert.equal(first.started_at, new Date(T0 - 1000).toISOString());
    assert.equal(first.updated_at, new Date(T0).toISOString());
    assert.deepEqual(first.interfaces[0], { name: 'eth1', packets: 0, bytes: 0, kernel_drops: 3, interface_drops: 42, handoff_drops: 6, pps: 0, bps: 0 });
    assert.deepEqual(first.interfaces[1], { name: 'eth3', packets: 10, bytes: 1000, pps: 0, bps: 0, last_packet_at: new Date(T0).toISOString() });

    counts = [{ name: 'eth1', packets: 500, bytes: 250_000, kernelDrops: 4 }, { name: 'eth3', packets: 10, bytes: 1000 }];
    const second = sampler.sample(T0 + 5000);
    assert.equal(second.interfaces[0].pps, 100);
    assert.equal(second.interfaces[0].bps, 400_000);
    assert.equal(second.interfaces[0].kernel_drops, 4);
    assert.equal(second.interfaces[0].last_packet_at, new Date(T0 + 5000).toISOString());
    assert.equal(second.interfaces[1].pps, 0);
    assert.equal(second.interfaces[1].last_packet_at, new Date(T0).toISOString(), 'last packet time stays when nothing moved');
    assert.equal(sampler.latest(T0 + 9999), second, 'latest() does not sample again');

    counts = [{ name: 'eth1', packets: 2, bytes: 100 }, { name: 'eth3', packets: 10, bytes: 1000 }];
    const third = sampler.sample(T0 + 10_000);
    assert.equal(third.interfaces[0].pps, 0, 'a count that went down gives no negative rate');
    assert.equal(third.interfaces[0].bps, 0);
  });

  test('SensorSampler splits counters into statistics and anomalies and takes flows and captures from them', () => {
    const c = new Counters();
    c.inc(C_GAP, 7);
    c.set(C_ACTIVE, 12);
    c.inc(C_EMITTED, 3);
    c.inc(A_HLEN, 2);
    const s = new SensorSampler({ interfaces: () => [], counters: c }).sample(T0);
    assert.equal(s.counters['tcp.reassembly_gap'], 7);
    assert.equal(s.counters['decoder.ipv4.hlen_too_small'], undefined);
    assert.deepEqual(s.anomalies, { 'decoder.ipv4.hlen_too_small': 2 });
    assert.equal(s.flows_active, 12);
    assert.equal(s.captures, 3);
    assert.deepEqual(s.upload, { queue: 0 });
    assert.equal(s.config.source, 'command line');
    assert.deepEqual(s.health, []);
    assert.equal(s.pid, process.pid);
    assert.equal(s.version, JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version);
  });

  test('SensorSampler takes fields from extra over its defaults', () => {
    const c = new Counters();
    c.set(C_ACTIVE, 12);
    const s = new SensorSampler({
      interfaces: () => [],
      counters: c,
      extra: () => ({ flows_active: 99, upload: { queue: 4, home: 'https://home.example' }, config: { source: 'home', version: '3', age_s: 60 } }),
    }).sample(T0);
    assert.equal(s.flows_active, 99);
    assert.deepEqual(s.upload, { queue: 4, home: 'https://home.example' });
    assert.deepEqual(s.config, { source: 'home', version: '3', age_s: 60 });
    assert.equal(s.memory, undefined, 'no memory from extra: none in the snapshot');
  });

  test('SensorSampler carries the memory section extra gives into the snapshot', () => {
    const memory = {
      rss_bytes: 900 << 20, peak_rss_bytes: 1000 << 20,
      capture: { heap_used_bytes: 40 << 20, heap_committed_bytes: 150 << 20, young_generation_bytes: 128 << 20, external_bytes: 2 << 20 },
      workers: [{ heap_used_bytes: 60 << 20, heap_committed_bytes: 170 << 20, young_generation_bytes: 128 << 20, external_bytes: 6 << 20 }, {}],
      shared: { capture_rings: 64 << 20, handoff_rings: 64 << 20 },
      other_bytes: 374 << 20,
    };
    const s = new SensorSampler({ interfaces: () => [], counters: new Counters(), extra: () => ({ memory }) }).sample(T0);
    assert.deepEqual(s.memory, memory);
    assert.deepEqual(JSON.parse(JSON.stringify(s)).memory, memory, 'JSON-able as the status file writes it');
  });

  test('SensorSampler checks the watchdog and lists its events once, even when they also reach extra.health', () => {
    const board = new ActiveHealth();
    const watchdog = new InterfaceWatchdog({ silentMs: 60_000, onHealth: board.sink });
    const sampler = new SensorSampler({ interfaces: () => [{ name: 'eth9', packets: 0, bytes: 0 }], counters: new Counters(), extra: () => ({ health: board.list() }), watchdog, sysfsRoot: root });
    assert.deepEqual(sampler.sample(T0).health, []);
    const s = sampler.sample(T0 + 60_000);
    assert.equal(s.health.length, 1);
    assert.equal(s.health[0].name, 'capture.no_packets');
    assert.equal(s.health[0].detail?.interface, 'eth9');
    const alone = new SensorSampler({ interfaces: () => [{ name: 'eth9', packets: 0, bytes: 0 }], counters: new Counters(), watchdog: new InterfaceWatchdog({ silentMs: 1, onHealth: () => undefined }), sysfsRoot: root });
    alone.sample(T0);
    assert.equal(alone.sample(T0 + 1).health.length, 1, 'watchdog events without extra');
  });

  test('SensorSampler hands the watchdog kernel drops, hand-off drops and the NIC drops it reads from sysfs: a loss alarm', () => {
    const board = new ActiveHealth();
    const watchdog = new InterfaceWatchdog({ onHealth: board.sink });
    let packets = 0;
    let kernelDrops = 0;
    let handoffDrops = 0;
    const sampler = new SensorSampler({ interfaces: () => [{ name: 'eth7', packets, bytes: 0, kernelDrops, handoffDrops }], counters: new Counters(), extra: () => ({ health: board.list() }), watchdog, sysfsRoot: root });
    fakeNic('eth7', { rx_dropped: '10\n', rx_missed_errors: '0\n' });
    sampler.sample(T0);
    packets = 1000;
    fakeNic('eth7', { rx_dropped: '14\n', rx_missed_errors: '1\n' });
    const s = sampler.sample(T0 + 5_000);
    assert.deepEqual(s.health.map((e) => [e.name, e.detail?.interface, e.detail?.interface_drops, e.detail?.kernel_drops]), [['capture.drops', 'eth7', 5, 0]]);
    const other = new InterfaceWatchdog({ onHealth: () => undefined });
    const s2 = new SensorSampler({ interfaces: () => [{ name: 'eth8', packets, bytes: 0, handoffDrops }], counters: new Counters(), watchdog: other, sysfsRoot: root });
    s2.sample(T0);
    handoffDrops = 12;
    assert.deepEqual(s2.sample(T0 + 5_000).health.map((e) => [e.name, e.detail?.handoff_drops]), [['capture.drops', 12]]);
    kernelDrops = 3;
    sampler.sample(T0 + 10_000);
    assert.equal(board.list().length, 1, 'one alarm per interface');
  });

  test('readHarkVersion reads package.json', () => {
    assert.match(readHarkVersion(), /^\d+\.\d+\.\d+/);
  });
});

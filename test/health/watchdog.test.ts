/**
 * InterfaceWatchdog with an injected clock: raises capture.no_packets once per silent interface
 * after silentMs, clears it when packets resume, and treats each interface on its own; raises
 * capture.drops when the drop counters move and clears it after a window without drops.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { HealthEvent } from '../../sensor/events/health.js';
import { InterfaceWatchdog, WATCHDOG_DEFAULT_DROP_WINDOW_MS, WATCHDOG_DEFAULT_SILENT_MS } from '../../sensor/health/watchdog.js';

const T0 = Date.parse('2024-05-01T10:00:00Z');
const MIN = 60_000;

function watchdog(silentMs?: number) {
  const events: HealthEvent[] = [];
  const w = new InterfaceWatchdog({ ...(silentMs !== undefined ? { silentMs } : {}), onHealth: (e) => events.push(e) });
  return { w, events };
}

describe('InterfaceWatchdog', () => {
  test('InterfaceWatchdog raises capture.no_packets once after silentMs without packets', () => {
    const { w, events } = watchdog(5 * MIN);
    w.check(T0, [{ name: 'eth1', packets: 100 }]);
    w.check(T0 + 4 * MIN, [{ name: 'eth1', packets: 100 }]);
    assert.equal(events.length, 0, 'not before silentMs');
    w.check(T0 + 5 * MIN, [{ name: 'eth1', packets: 100 }]);
    assert.equal(events.length, 1);
    const e = events[0];
    assert.equal(e.name, 'capture.no_packets');
    assert.equal(e.severity, 'warning');
    assert.equal(e.state, 'raised');
    assert.equal(e.timestamp, new Date(T0 + 5 * MIN).toISOString());
    assert.match(e.message, /"eth1"/);
    assert.match(e.message, /5 minutes/);
    assert.equal(e.detail?.interface, 'eth1');
    assert.equal(e.detail?.silent_s, 300);
    w.check(T0 + 9 * MIN, [{ name: 'eth1', packets: 100 }]);
    w.check(T0 + 60 * MIN, [{ name: 'eth1', packets: 100 }]);
    assert.equal(events.length, 1, 'raised once, not on every check');
    assert.deepEqual(w.active(), [e]);
  });

  test('InterfaceWatchdog clears the event when packets resume, and can raise it again', () => {
    const { w, events } = watchdog(MIN);
    w.check(T0, [{ name: 'eth1', packets: 5 }]);
    w.check(T0 + 2 * MIN, [{ name: 'eth1', packets: 5 }]);
    w.check(T0 + 3 * MIN, [{ name: 'eth1', packets: 6 }]);
    assert.deepEqual(events.map((e) => e.state), ['raised', 'cleared']);
    assert.equal(events[1].name, 'capture.no_packets');
    assert.equal(events[1].detail?.interface, 'eth1');
    assert.equal(events[1].detail?.silent_s, 180);
    assert.match(events[1].message, /"eth1" again after 3 minutes/);
    assert.deepEqual(w.active(), []);
    w.check(T0 + 3 * MIN + 30_000, [{ name: 'eth1', packets: 6 }]);
    assert.equal(events.length, 2, 'silence counts from the last packet');
    w.check(T0 + 4 * MIN, [{ name: 'eth1', packets: 6 }]);
    assert.deepEqual(events.map((e) => e.state), ['raised', 'cleared', 'raised']);
  });

  test('InterfaceWatchdog raises for an interface silent from the start and watches each on its own', () => {
    const { w, events } = watchdog(MIN);
    w.check(T0, [{ name: 'eth1', packets: 0 }, { name: 'eth2', packets: 0 }]);
    w.check(T0 + 30_000, [{ name: 'eth1', packets: 10 }, { name: 'eth2', packets: 0 }]);
    w.check(T0 + MIN, [{ name: 'eth1', packets: 20 }, { name: 'eth2', packets: 0 }]);
    assert.equal(events.length, 1);
    assert.equal(events[0].detail?.interface, 'eth2');
    assert.deepEqual(w.active().map((e) => e.detail?.interface), ['eth2']);
  });

  test('InterfaceWatchdog treats a counter that went down (capture restarted) as traffic', () => {
    const { w, events } = watchdog(MIN);
    w.check(T0, [{ name: 'eth1', packets: 50 }]);
    w.check(T0 + MIN, [{ name: 'eth1', packets: 50 }]);
    w.check(T0 + 2 * MIN, [{ name: 'eth1', packets: 3 }]);
    assert.deepEqual(events.map((e) => e.state), ['raised', 'cleared']);
  });

  test('InterfaceWatchdog defaults to five minutes and rejects a bad silence', () => {
    assert.equal(WATCHDOG_DEFAULT_SILENT_MS, 5 * MIN);
    const { w, events } = watchdog();
    w.check(T0, [{ name: 'eth1', packets: 0 }]);
    w.check(T0 + 5 * MIN - 1, [{ name: 'eth1', packets: 0 }]);
    assert.equal(events.length, 0);
    w.check(T0 + 5 * MIN, [{ name: 'eth1', packets: 0 }]);
    assert.equal(events.length, 1);
    assert.throws(() => new InterfaceWatchdog({ silentMs: 0, onHealth: () => undefined }), RangeError);
    assert.throws(() => new InterfaceWatchdog({ silentMs: NaN, onHealth: () => undefined }), RangeError);
  });
});

describe('InterfaceWatchdog packet loss', () => {
  const SEC = 1000;

  test('raises capture.drops at the first check where the kernel drop counter moved, once, with the figures', () => {
    const events: HealthEvent[] = [];
    const w = new InterfaceWatchdog({ onHealth: (e) => events.push(e) });
    // drops counted before the first check are history, not news
    w.check(T0, [{ name: 'eth1', packets: 1000, kernelDrops: 50, interfaceDrops: 3 }]);
    w.check(T0 + 5 * SEC, [{ name: 'eth1', packets: 9000, kernelDrops: 50, interfaceDrops: 3 }]);
    assert.equal(events.length, 0);
    w.check(T0 + 10 * SEC, [{ name: 'eth1', packets: 17_000, kernelDrops: 2050, interfaceDrops: 3 }]);
    assert.equal(events.length, 1);
    const e = events[0];
    assert.equal(e.name, 'capture.drops');
    assert.equal(e.state, 'raised');
    assert.equal(e.severity, 'warning');
    assert.equal(e.timestamp, new Date(T0 + 10 * SEC).toISOString());
    assert.deepEqual(e.detail, { interface: 'eth1', dropped: 2000, kernel_drops: 2000, interface_drops: 0, handoff_drops: 0, received: 8000, loss_pct: 20, step_s: 5 });
    assert.match(e.message, /"eth1" is losing packets: 2000 dropped by the capture socket against 8000 received in the last 5 seconds \(20% lost\)/);
    w.check(T0 + 15 * SEC, [{ name: 'eth1', packets: 25_000, kernelDrops: 3000, interfaceDrops: 10 }]);
    assert.equal(events.length, 1, 'raised once while losses go on');
    assert.deepEqual(w.active(), [e]);
  });

  test('frames lost at the worker hand-off raise the alarm too, named with the other sources', () => {
    const events: HealthEvent[] = [];
    const w = new InterfaceWatchdog({ onHealth: (e) => events.push(e) });
    w.check(T0, [{ name: 'eth1', packets: 0, kernelDrops: 0, handoffDrops: 7 }]);
    w.check(T0 + 5 * SEC, [{ name: 'eth1', packets: 4000, kernelDrops: 0, handoffDrops: 7 }]);
    assert.equal(events.length, 0, 'hand-off drops from before the first check are history');
    w.check(T0 + 10 * SEC, [{ name: 'eth1', packets: 8000, kernelDrops: 0, handoffDrops: 407 }]);
    assert.equal(events.length, 1);
    assert.deepEqual(events[0].detail, { interface: 'eth1', dropped: 400, kernel_drops: 0, interface_drops: 0, handoff_drops: 400, received: 4000, loss_pct: 9.09, step_s: 5 });
    assert.match(events[0].message, /400 dropped by the worker hand-off \(worker threads behind\) against 4000 received/);
    const w2 = new InterfaceWatchdog({ onHealth: (e) => events.push(e) });
    w2.check(T0, [{ name: 'eth2', packets: 0, kernelDrops: 0, interfaceDrops: 0, handoffDrops: 0 }]);
    w2.check(T0 + 5 * SEC, [{ name: 'eth2', packets: 100, kernelDrops: 1, interfaceDrops: 2, handoffDrops: 3 }]);
    assert.match(events[1].message, /6 dropped by the capture socket, the network card and the worker hand-off/);
  });

  test('clears after a whole window without drops, summing what was lost meanwhile, and raises again later', () => {
    const events: HealthEvent[] = [];
    const w = new InterfaceWatchdog({ dropWindowMs: 60 * SEC, onHealth: (e) => events.push(e) });
    w.check(T0, [{ name: 'eth1', packets: 0, interfaceDrops: 0 }]);
    w.check(T0 + 10 * SEC, [{ name: 'eth1', packets: 900, interfaceDrops: 100 }]);
    assert.match(events[0].message, /dropped by the network card/);
    w.check(T0 + 20 * SEC, [{ name: 'eth1', packets: 1900, interfaceDrops: 150 }]);
    w.check(T0 + 60 * SEC, [{ name: 'eth1', packets: 5000, interfaceDrops: 150 }]);
    assert.equal(events.length, 1, 'not cleared: the last drop was 40 s ago');
    w.check(T0 + 80 * SEC, [{ name: 'eth1', packets: 7000, interfaceDrops: 150 }]);
    assert.deepEqual(events.map((x) => x.state), ['raised', 'cleared']);
    assert.deepEqual(events[1].detail, { interface: 'eth1', dropped: 150, received: 7000, loss_pct: 2.1 });
    assert.match(events[1].message, /"eth1" has lost no packets for 1 minute/);
    assert.deepEqual(w.active(), []);
    w.check(T0 + 90 * SEC, [{ name: 'eth1', packets: 8000, interfaceDrops: 151 }]);
    assert.deepEqual(events.map((x) => x.state), ['raised', 'cleared', 'raised']);
    assert.equal(WATCHDOG_DEFAULT_DROP_WINDOW_MS, 5 * MIN);
  });

  test('a counter that goes down was reset: it is not a loss, and counts from there', () => {
    const events: HealthEvent[] = [];
    const w = new InterfaceWatchdog({ onHealth: (e) => events.push(e) });
    w.check(T0, [{ name: 'eth1', packets: 500, kernelDrops: 900 }]);
    w.check(T0 + 5 * SEC, [{ name: 'eth1', packets: 10, kernelDrops: 0 }]);
    w.check(T0 + 10 * SEC, [{ name: 'eth1', packets: 20, kernelDrops: 0 }]);
    assert.equal(events.length, 0);
    w.check(T0 + 15 * SEC, [{ name: 'eth1', packets: 30, kernelDrops: 4 }]);
    assert.equal(events[0]?.detail?.dropped, 4);
  });

  test('watches each interface on its own, and counters never reported never alarm', () => {
    const events: HealthEvent[] = [];
    const w = new InterfaceWatchdog({ onHealth: (e) => events.push(e) });
    w.check(T0, [{ name: 'eth1', packets: 0, kernelDrops: 0 }, { name: 'eth2', packets: 0 }]);
    w.check(T0 + 5 * SEC, [{ name: 'eth1', packets: 100, kernelDrops: 0 }, { name: 'eth2', packets: 100 }]);
    w.check(T0 + 10 * SEC, [{ name: 'eth1', packets: 200, kernelDrops: 0 }, { name: 'eth2', packets: 200, kernelDrops: 7 }]);
    assert.equal(events.length, 0, 'eth2 reported no drop counter before: no baseline, no alarm');
    w.check(T0 + 15 * SEC, [{ name: 'eth1', packets: 300, kernelDrops: 1 }, { name: 'eth2', packets: 300, kernelDrops: 7 }]);
    assert.deepEqual(events.map((x) => x.detail?.interface), ['eth1']);
    assert.throws(() => new InterfaceWatchdog({ dropWindowMs: 0, onHealth: () => undefined }), RangeError);
  });
});

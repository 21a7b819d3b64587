/**
 * InterfaceWatchdog with an injected clock: raises capture.no_packets once per silent interface
 * after silentMs, clears it when packets resume, and treats each interface on its own.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { HealthEvent } from '../../sensor/events/health.js';
import { InterfaceWatchdog, WATCHDOG_DEFAULT_SILENT_MS } from '../../sensor/health/watchdog.js';

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

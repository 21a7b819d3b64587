/**
 * ActiveHealth: keeps raised health events until cleared, one per name + interface/subject.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { healthEvent } from '../../sensor/events/health.js';
import { ActiveHealth, MAX_ACTIVE_HEALTH } from '../../sensor/health/active-health.js';

describe('ActiveHealth', () => {
  test('ActiveHealth lists raised events until they are cleared, per interface', () => {
    const h = new ActiveHealth();
    const a = healthEvent('capture.no_packets', 'warning', 'eth1 silent', { interface: 'eth1' });
    const b = healthEvent('capture.no_packets', 'warning', 'eth2 silent', { interface: 'eth2' });
    const full = healthEvent('store.full', 'critical', 'disk full');
    h.sink(a);
    h.sink(b);
    h.sink(full);
    assert.deepEqual(h.list(), [a, b, full]);
    h.sink(healthEvent('capture.no_packets', 'warning', 'eth1 back', { interface: 'eth1' }, 'cleared'));
    assert.deepEqual(h.list(), [b, full]);
    h.sink(healthEvent('store.full', 'critical', 'disk ok', undefined, 'cleared'));
    assert.deepEqual(h.list(), [b]);
  });

  test('ActiveHealth replaces a condition raised again and bounds the table', () => {
    const h = new ActiveHealth();
    h.sink(healthEvent('home.unreachable', 'warning', 'first'));
    const again = healthEvent('home.unreachable', 'warning', 'second');
    h.sink(again);
    assert.deepEqual(h.list(), [again]);
    for (let i = 0; i < MAX_ACTIVE_HEALTH + 10; i++) h.sink(healthEvent('x.y', 'info', 'm', { subject: `s${i}` }));
    assert.equal(h.list().length, MAX_ACTIVE_HEALTH);
    assert.equal(h.dropped, 11);
  });
});

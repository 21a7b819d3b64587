/**
 * PartialMessage (sensor/app-layer/partial-buffer.ts): the buffer of a length-framed message spanning
 * pushes grows with what arrives, is charged to app_layer.memuse by its allocated size while held, and
 * gives the whole charge back when the message is finished or abandoned.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PARTIAL_BUFFER_MIN_BYTES, PartialMessage } from '../../sensor/app-layer/partial-buffer.js';
import { Counters } from '../../sensor/events/counters.js';
import { memoryInUse } from '../../sensor/events/memuse.js';

const bytes = (n: number, from = 0): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);

test('PartialMessage grows with the bytes received, charges the gauge its allocated size, and finish gives it back', () => {
  const counters = new Counters();
  const m = new PartialMessage(counters);
  m.begin(100_000);
  assert.equal(memoryInUse(counters), 0, 'an announced length allocates nothing');
  assert.equal(m.append(bytes(10)), 10);
  assert.equal(m.heldBytes, PARTIAL_BUFFER_MIN_BYTES);
  assert.equal(memoryInUse(counters), PARTIAL_BUFFER_MIN_BYTES);
  assert.equal(m.append(bytes(1000, 10)), 1000);
  assert.equal(m.heldBytes, 2 * 1010);
  assert.equal(memoryInUse(counters), 2 * 1010, 'the grown buffer replaces the old one in the gauge');
  assert.equal(m.append(bytes(200_000, 1010), 0, 98_990), 98_990);
  assert.equal(m.append(bytes(5)), 0, 'nothing beyond the announced length');
  assert.equal(m.complete, true);
  assert.equal(m.heldBytes, 100_000, 'never past the announced length');
  assert.equal(memoryInUse(counters), 100_000);
  const out = m.finish();
  assert.equal(out.length, 100_000);
  assert.deepEqual(out.subarray(0, 1010), bytes(1010));
  assert.equal(out[99_999], 99_999 & 0xff);
  assert.equal(m.heldBytes, 0);
  assert.equal(memoryInUse(counters), 0);
});

test('PartialMessage.append takes only the message\'s part of a larger push, from an offset', () => {
  const m = new PartialMessage(new Counters());
  m.begin(6);
  assert.equal(m.append(bytes(10), 2, 5), 3);
  assert.equal(m.append(bytes(10), 7), 3);
  assert.deepEqual(m.finish(), Uint8Array.from([2, 3, 4, 7, 8, 9]));
});

test('PartialMessage.finish keeps a buffer up to keepBytes for the next message, still charged; reset gives it back', () => {
  const counters = new Counters();
  const m = new PartialMessage(counters);
  m.begin(300);
  m.append(bytes(100));
  m.append(bytes(200, 100));
  assert.equal(m.heldBytes, 300);
  assert.deepEqual(m.finish(1024), bytes(300));
  assert.equal(m.length, 0);
  assert.equal(m.heldBytes, 300, 'kept');
  assert.equal(memoryInUse(counters), 300, 'a kept buffer stays charged');
  m.begin(50);
  m.append(bytes(50));
  assert.equal(m.heldBytes, 300, 'reused, not grown');
  assert.equal(memoryInUse(counters), 300);
  assert.equal(m.finish(1024).length, 50, 'a view of the message only');
  m.begin(5000);
  m.append(bytes(2000));
  assert.equal(memoryInUse(counters), 4000);
  m.reset();
  assert.equal(m.heldBytes, 0);
  assert.equal(m.length, 0);
  assert.equal(memoryInUse(counters), 0, 'a message abandoned half-way gives everything back');
  m.reset();
  assert.equal(memoryInUse(counters), 0, 'reset twice gives back nothing more');
});

test('PartialMessage without counters holds the same buffer and charges nothing', () => {
  const m = new PartialMessage(undefined);
  m.begin(1000);
  m.append(bytes(600));
  assert.equal(m.heldBytes, 1000);
  m.reset();
  assert.equal(m.heldBytes, 0);
});

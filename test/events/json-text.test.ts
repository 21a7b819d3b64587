/** rememberJson / jsonOf: one serialisation shared by the store and the outputs. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonOf, rememberJson } from '../../sensor/events/json-text.js';

test('rememberJson returns JSON.stringify and jsonOf gives back the very same text for that object', () => {
  const e = { event_type: 'capture', id: 'a', count: 2, context: 'caf\u00e9 "quoted"' };
  const text = rememberJson(e);
  assert.equal(text, JSON.stringify(e));
  // Kept, not recomputed: a later change to the object (which Hark never makes) does not show.
  (e as { count: number }).count = 3;
  assert.equal(jsonOf(e), text);
});

test('jsonOf stringifies an object nobody remembered, and does not keep it', () => {
  const e: { n: number } = { n: 1 };
  assert.equal(jsonOf(e), '{"n":1}');
  e.n = 2;
  assert.equal(jsonOf(e), '{"n":2}');
});

/** rememberJson / fromJson / jsonOf: one serialisation shared by the store, the outputs and the worker threads. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromJson, jsonOf, rememberJson } from '../../sensor/events/json-text.js';

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

test('fromJson parses, and rememberJson and jsonOf then give back the text it came from without stringifying', () => {
  const text = '{"event_type":"capture","id":"b","count":1,"vlan":[6],"device":{"ip":"10.0.0.2"}}';
  const e = fromJson(text) as { id: string; count: number };
  assert.deepEqual(e, JSON.parse(text));
  e.count = 9; // Hark never changes an emitted event; here it shows the text was not recomputed
  assert.equal(rememberJson(e), text);
  assert.equal(jsonOf(e), text);
});

test('rememberJson keeps its first text: a second call does not stringify again', () => {
  const e = { id: 'c', count: 1 };
  const first = rememberJson(e);
  e.count = 2;
  assert.equal(rememberJson(e), first);
});

test('the kept text stays out of the event: not in its JSON, its keys, or a spread copy (which is a new event)', () => {
  const text = '{"event_type":"capture","id":"d","count":1}';
  const e = fromJson(text) as { id: string; count: number };
  assert.deepEqual(Object.keys(e), ['event_type', 'id', 'count']);
  assert.equal(JSON.stringify(e), text);
  const copy = { ...e, count: 5 };
  assert.equal(jsonOf(copy), '{"event_type":"capture","id":"d","count":5}');
  assert.equal(rememberJson(copy), '{"event_type":"capture","id":"d","count":5}');
  assert.equal(jsonOf(e), text);
});

test('a frozen object is serialised, not kept, and nothing throws', () => {
  const e = Object.freeze({ id: 'e', count: 1 });
  assert.equal(rememberJson(e), '{"id":"e","count":1}');
  assert.equal(jsonOf(e), '{"id":"e","count":1}');
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Counters } from '../../sensor/events/counters.js';
import { JsonExtractor } from '../../sensor/normalize/json.js';
import type { TextSink } from '../../sensor/normalize/sink.js';
import { assertSplitInvariant, bytes, run, segmentsOf, type MakeExtractor } from './helpers.js';

const makeJson: MakeExtractor = (sink, counters) => new JsonExtractor(sink, counters);
const json = (s: string | Uint8Array): string[] => segmentsOf(makeJson, s);

describe('JsonExtractor values', () => {
  it('emits string values, each its own segment, and drops keys, numbers and literals', () => {
    assert.deepEqual(json('{"query": "our secret", "n": 12.5e3, "ok": true, "none": null, "tags": ["a", "b"]}'), ['our secret', 'a', 'b']);
  });

  it('tells keys from values at any depth', () => {
    assert.deepEqual(json('[{"k1": {"k2": ["v1", {"k3": "v2"}]}, "k4": "v3"}, "v4"]'), ['v1', 'v2', 'v3', 'v4']);
  });

  it('decodes escapes', () => {
    assert.deepEqual(json('["a\\"b\\\\c\\/d\\n\\te\\u00e9\\u0041"]'), ['a"b\\c/d\n\te\u00e9A']);
  });

  it('joins a surrogate pair from \\ud83d\\ude00', () => {
    assert.deepEqual(json('{"m": "hi \\ud83d\\ude00!"}'), ['hi \ud83d\ude00!']);
  });

  it('replaces unpaired surrogate halves with U+FFFD and counts them', () => {
    const r = run(makeJson, '["\\ud83d x", "\\ude00", "\\ud83d\\u0041", "\\ud83d"]');
    assert.deepEqual(r.segments, ['\ufffd x', '\ufffd', '\ufffdA', '\ufffd']);
    assert.equal(r.counters['normalize.json.lone_surrogate'], 4);
    assert.equal(r.counters['normalize.json.malformed'], undefined);
  });

  it('keeps raw UTF-8 text and empty strings add no segment', () => {
    assert.deepEqual(json('["caf\u00e9 \ud83d\ude00", "", "x"]'), ['caf\u00e9 \ud83d\ude00', 'x']);
  });
});

describe('JsonExtractor malformed input', () => {
  it('reads JSONP and an anti-XSSI prefix, counting malformed once', () => {
    const r = run(makeJson, ")]}'\ncallback({\"key\": \"value\", \"list\": [\"x\"]});");
    assert.deepEqual(r.segments, ['value', 'x']);
    assert.equal(r.counters['normalize.json.malformed'], 1);
  });

  it('reads NDJSON without counting it malformed', () => {
    const r = run(makeJson, '{"a": "one"}\n{"a": "two"}\n"three"\n');
    assert.deepEqual(r.segments, ['one', 'two', 'three']);
    assert.equal(r.counters['normalize.json.malformed'], undefined);
  });

  it('keeps keys as keys after a missing comma and a trailing comma', () => {
    assert.deepEqual(json('{"a": "1" "b": "2", "c": ["3",],}'), ['1', '2', '3']);
  });

  it('keeps the character of an unknown escape and U+FFFD for a cut \\u escape', () => {
    const r = run(makeJson, '["\\q\\u12G", "\\u00"]');
    assert.deepEqual(r.segments, ['q\ufffdG', '\ufffd']);
    assert.equal(r.counters['normalize.json.malformed'], 1);
  });

  it('emits a string cut by the end of the body and counts the truncation', () => {
    const r = run(makeJson, '{"a": ["complete", "cut sh');
    assert.deepEqual(r.segments, ['complete', 'cut sh']);
    assert.equal(r.counters['normalize.json.truncated'], 1);
  });
});

describe('JsonExtractor limits', () => {
  it('stops emitting a string at 1 MiB characters and counts it', () => {
    const lengths: number[] = [0];
    const counters = new Counters();
    const sink: TextSink = {
      onText: (t) => (lengths[lengths.length - 1] += t.length),
      onBreak: () => lengths.push(0),
    };
    const x = new JsonExtractor(sink, counters);
    x.write(bytes(`["${'x'.repeat((1 << 20) + 10)}", "after"]`));
    x.end();
    assert.deepEqual(lengths.filter((n) => n > 0), [1 << 20, 5]);
    assert.equal(counters.get('normalize.json.string_truncated'), 1);
  });

  it('counts nesting past 512 levels and reads strings deeper than that as values', () => {
    const deep = '{"k": '.repeat(600) + '"v"' + '}'.repeat(600);
    const r = run(makeJson, deep);
    // Keys of the objects at levels 513-600 can no longer be told from values.
    assert.deepEqual(r.segments, [...Array<string>(88).fill('k'), 'v']);
    assert.equal(r.counters['normalize.json.depth_capped'], 1);
    assert.equal(r.counters['normalize.json.malformed'], undefined);
  });
});

describe('JsonExtractor streaming', () => {
  it('gives the same output for every cut, inside escapes and surrogate pairs too', () => {
    const r = assertSplitInvariant(
      makeJson,
      '{"q":"our \\"secret\\"","e":"\\ud83d\\ude00\\u00e9\\n","n":[1,true,null,-2.5E+3],"k\\u0041":"caf\u00e9 \ud83d\ude00","x":"\\ud83dz"}',
    );
    assert.deepEqual(r.segments, ['our "secret"', '\ud83d\ude00\u00e9\n', 'caf\u00e9 \ud83d\ude00', '\ufffdz']);
  });

  it('is cut-invariant for malformed input', () => {
    assertSplitInvariant(makeJson, "while(1);cb({'a': \"b\\x\", tru: [\"c\"]})");
  });
});

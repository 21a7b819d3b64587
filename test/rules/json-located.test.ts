import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assertSupportedSchema, MAX_JSON_DEPTH, parseLocatedJson, validateLocated,
  type LocatedJson, type SchemaNode,
} from '../../rules/json-located.js';

function parsed(text: string): LocatedJson {
  const result = parseLocatedJson(text);
  assert.ok(result.ok, JSON.stringify(result));
  return result.value;
}

function syntaxError(text: string): { line: number; column: number; message: string } {
  const result = parseLocatedJson(text);
  assert.ok(!result.ok, `expected a syntax error for ${JSON.stringify(text)}`);
  return { line: result.error.line, column: result.error.column, message: result.error.message };
}

test('parseLocatedJson gives the same values as JSON.parse', () => {
  const text = '{"a": [1, -2.5e3, 0, true, false, null, "x\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00"], "b": {}}';
  const toPlain = (n: LocatedJson): unknown => {
    switch (n.kind) {
      case 'object': return Object.fromEntries(n.members.map((m) => [m.key, toPlain(m.value)]));
      case 'array': return n.items.map(toPlain);
      case 'null': return null;
      default: return n.value;
    }
  };
  assert.deepEqual(toPlain(parsed(text)), JSON.parse(text));
});

test('parseLocatedJson records the line and column of members and values across LF, CRLF and CR', () => {
  const root = parsed('{\n  "a": 1,\r\n  "b":\r    [true]\n}');
  assert.equal(root.kind, 'object');
  if (root.kind !== 'object') return;
  assert.deepEqual(root.members.map((m) => [m.key, m.line, m.column, m.value.line, m.value.column]), [
    ['a', 2, 3, 2, 8],
    ['b', 3, 3, 4, 5],
  ]);
});

test('parseLocatedJson reports malformed numbers and literals with their position', () => {
  assert.deepEqual(syntaxError('[01]'), { line: 1, column: 2, message: 'numbers must not have leading zeros' });
  assert.equal(syntaxError('[1.]').message, 'expected a digit after the decimal point');
  assert.equal(syntaxError('[1e]').message, 'expected a digit in the exponent');
  assert.equal(syntaxError('[-]').message, 'expected a digit');
  assert.equal(syntaxError('[tru]').message, 'expected a value, found "tru]"');
  assert.equal(syntaxError('{"a" 1}').message, 'expected ":" after member name "a", found "1"');
  assert.equal(syntaxError('"\\x"').message, 'unknown escape \\x in a string');
  assert.equal(syntaxError('"\\u12"').message, '\\u must be followed by four hex digits');
  assert.equal(syntaxError('"open').message, 'string is never closed');
  assert.deepEqual(syntaxError('{}\n x'), { line: 2, column: 2, message: 'unexpected "x" after the end of the document' });
  assert.equal(syntaxError('').message, 'expected a value, found the end of the file');
});

test('parseLocatedJson refuses nesting past MAX_JSON_DEPTH without overflowing the stack', () => {
  const deep = '['.repeat(MAX_JSON_DEPTH + 2) + ']'.repeat(MAX_JSON_DEPTH + 2);
  assert.match(syntaxError(deep).message, /nesting deeper than/);
  assert.ok(parseLocatedJson('['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH)).ok);
});

test('parseLocatedJson reports duplicate keys with their path and both lines', () => {
  const result = parseLocatedJson('{"p": [{"a": 1,\n"a": 2}]}');
  assert.ok(result.ok);
  if (!result.ok) return;
  assert.deepEqual(result.duplicateKeys.map((d) => [d.line, d.path, d.message]), [
    [2, ['p', 0, 'a'], 'member "a" appears twice (first on line 1); JSON readers silently keep only one'],
  ]);
});

test('validateLocated enforces enum, pattern, one-sided bounds, minLength and type unions', () => {
  const schema: SchemaNode = {
    type: 'object',
    properties: {
      mode: { enum: ['a', 'b'] },
      id: { type: 'string', pattern: '^[a-z]+$', minLength: 2 },
      low: { type: 'number', minimum: 0 },
      high: { type: 'number', maximum: 10 },
      either: { type: ['string', 'null'] },
    },
  };
  const issues = validateLocated(schema, parsed('{"mode": "c", "id": "X", "low": -1, "high": 11, "either": 3}'));
  assert.deepEqual(issues.map((i) => i.message), [
    'mode must be one of "a", "b", not the string "c"',
    'id is shorter than 2 characters',
    'id "X" does not match the pattern ^[a-z]+$',
    'low -1 is less than 0',
    'high 11 is more than 10',
    'either must be a string or null, not the number 3',
  ]);
  assert.deepEqual(validateLocated(schema, parsed('{"mode": "a", "id": "ok", "low": 0, "high": 10, "either": null}')), []);
});

test('validateLocated counts string length in code points, as JSON Schema does', () => {
  const schema: SchemaNode = { type: 'string', maxLength: 2 };
  assert.deepEqual(validateLocated(schema, parsed('"\\ud83d\\ude00\\ud83d\\ude00"')), []);
  assert.equal(validateLocated(schema, parsed('"abc"')).length, 1);
});

test('assertSupportedSchema refuses keywords the validator does not enforce', () => {
  assert.throws(() => assertSupportedSchema({ type: 'object', properties: { a: { oneOf: [] } } }), /keyword "oneOf" at #\/properties\/a/);
  assert.throws(() => assertSupportedSchema({ $ref: 'http://example.com/x' }), /not a local/);
  assert.doesNotThrow(() => assertSupportedSchema({ $schema: 'x', title: 't', type: 'string', description: 'd' }));
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { children, contextChild, explicitInner, readInteger, readString, readTlv } from '../../../sensor/app-layer/kerberos/der.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('readTlv reads short and long definite lengths and high tag numbers', () => {
  assert.deepEqual(readTlv(hex('3003020105'), 0, 5), { cls: 0, constructed: true, tag: 16, start: 0, valueStart: 2, end: 5 });
  const long = Buffer.concat([hex('0481c8'), Buffer.alloc(200)]);
  assert.deepEqual(readTlv(long, 0, long.length), { cls: 0, constructed: false, tag: 4, start: 0, valueStart: 3, end: 203 });
  assert.deepEqual(readTlv(hex('5f2101ff'), 0, 4), { cls: 1, constructed: false, tag: 33, start: 0, valueStart: 3, end: 4 });
});

test('readTlv refuses indefinite lengths, lengths past the window and over-long length fields', () => {
  assert.equal(readTlv(hex('308002010500'), 0, 6), undefined);
  assert.equal(readTlv(hex('300502'), 0, 3), undefined);
  assert.equal(readTlv(hex('0485010000000000'), 0, 8), undefined);
  assert.equal(readTlv(hex('3003020105'), 0, 4), undefined, 'the window, not the buffer, bounds the value');
  assert.equal(readTlv(hex('30'), 0, 1), undefined);
});

test('readInteger decodes positive and negative INTEGERs and refuses other tags', () => {
  assert.equal(readInteger(hex('020105'), readTlv(hex('020105'), 0, 3)), 5);
  const neg = hex('0201e6'); // -26
  assert.equal(readInteger(neg, readTlv(neg, 0, 3)), -26);
  const big = hex('020500ffffffff');
  assert.equal(readInteger(big, readTlv(big, 0, big.length)), 0xffffffff);
  assert.equal(readInteger(hex('040105'), readTlv(hex('040105'), 0, 3)), undefined);
});

test('contextChild, explicitInner, children and readString walk a principal name', () => {
  // PrincipalName ::= SEQUENCE { name-type [0] INTEGER (1), name-string [1] SEQUENCE OF GeneralString ("a", "bc") }
  const b = hex('3010 a003020101 a1093007 1b0161 1b026263');
  const seq = readTlv(b, 0, b.length);
  assert.ok(seq);
  assert.equal(readInteger(b, explicitInner(b, contextChild(b, seq, 0))), 1);
  const names = explicitInner(b, contextChild(b, seq, 1));
  assert.ok(names);
  assert.deepEqual(children(b, names, 8).map((t) => readString(b, t)), ['a', 'bc']);
  assert.equal(contextChild(b, seq, 2), undefined);
});

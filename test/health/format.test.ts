/**
 * health/format.ts: memory sizes in MiB as `hark status` prints them (whole MiB from 10 up, one
 * decimal below, 0 for what is not a size).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatMebibytes } from '../../sensor/health/format.js';

const MIB = 1024 * 1024;

test('formatMebibytes prints whole MiB from 10 up and one decimal below', () => {
  assert.equal(formatMebibytes(1210 * MIB), '1210');
  assert.equal(formatMebibytes(10 * MIB), '10');
  assert.equal(formatMebibytes(5.5 * MIB), '5.5');
  assert.equal(formatMebibytes(1_000_000), '1.0', 'powers of 1024, not 1000');
});

test('formatMebibytes prints 0 for a negative or non-finite size', () => {
  for (const n of [-5, NaN, Infinity, 0]) assert.equal(formatMebibytes(n), '0.0', String(n));
});

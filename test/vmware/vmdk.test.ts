// vmware/vmdk.ts: the hosted sparse extent header reader.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readVmdkHeader } from '../../vmware/vmdk.js';
import { fakeVmdk } from './vmdk-fixture.js';

test('readVmdkHeader reads capacity and createType of a streamOptimized header', () => {
  const r = readVmdkHeader(fakeVmdk(16 * 1024 ** 3, 'streamOptimized'));
  assert.ok(r.ok);
  assert.equal(r.info.capacityBytes, 16 * 1024 ** 3);
  assert.equal(r.info.createType, 'streamOptimized');
  assert.equal(r.info.compressAlgorithm, 1);
});

test('readVmdkHeader reads a monolithicSparse header', () => {
  const r = readVmdkHeader(fakeVmdk(1024 ** 3, 'monolithicSparse'));
  assert.ok(r.ok);
  assert.equal(r.info.createType, 'monolithicSparse');
});

test('readVmdkHeader refuses a file without the KDMV magic', () => {
  const b = fakeVmdk(1024 ** 3, 'streamOptimized');
  b[0] = 0;
  const r = readVmdkHeader(b);
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.reason, /magic/);
});

test('readVmdkHeader refuses a truncated header and an unknown version', () => {
  assert.equal(readVmdkHeader(new Uint8Array(40)).ok, false);
  const b = fakeVmdk(1024 ** 3, 'streamOptimized');
  b.writeUInt32LE(9, 4);
  assert.equal(readVmdkHeader(b).ok, false);
});

test('readVmdkHeader leaves createType empty when the descriptor lies beyond the bytes given', () => {
  const r = readVmdkHeader(fakeVmdk(1024 ** 3, 'streamOptimized').subarray(0, 512));
  assert.ok(r.ok);
  assert.equal(r.info.createType, '');
});

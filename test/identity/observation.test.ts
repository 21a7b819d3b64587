/**
 * cleanIdentityText: printable, trimmed, cut at MAX_IDENTITY_TEXT_LEN without splitting a surrogate
 * pair, and an owned copy (the claim it becomes is held for hours).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanIdentityText, MAX_IDENTITY_TEXT_LEN } from '../../sensor/identity/observation.js';

test('cleanIdentityText drops trailing NULs and spaces and replaces controls', () => {
  assert.equal(cleanIdentityText('LAPTOP-7F3\u0000\u0000 '), 'LAPTOP-7F3');
  assert.equal(cleanIdentityText('a\u0001b\u007fc\u0085'), 'a?b?c?');
  assert.equal(cleanIdentityText('\u0000 '), undefined);
});

test('cleanIdentityText cuts at MAX_IDENTITY_TEXT_LEN and never between the halves of a surrogate pair', () => {
  const long = 'u'.repeat(MAX_IDENTITY_TEXT_LEN + 50);
  assert.equal(cleanIdentityText(long), 'u'.repeat(MAX_IDENTITY_TEXT_LEN));
  const pairAtCut = `${'u'.repeat(MAX_IDENTITY_TEXT_LEN - 1)}\u{1f600}tail`;
  assert.equal(cleanIdentityText(pairAtCut), 'u'.repeat(MAX_IDENTITY_TEXT_LEN - 1));
  const pairBeforeCut = `${'u'.repeat(MAX_IDENTITY_TEXT_LEN - 2)}\u{1f600}tail`;
  assert.equal(cleanIdentityText(pairBeforeCut), `${'u'.repeat(MAX_IDENTITY_TEXT_LEN - 2)}\u{1f600}`);
});

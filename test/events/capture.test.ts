/**
 * Tests for sensor/events/capture.ts helpers: isoMicros (cached per second, must read exactly as a
 * fresh Date formatting would) and stableId (same digest for the same parts, UUID-shaped).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { isoMicros, stableId } from '../../sensor/events/capture.js';

/** What isoMicros must print, formatted from scratch. */
function reference(us: number): string {
  const ms = Math.floor(us / 1000);
  const micros = us - ms * 1000;
  return new Date(ms).toISOString().replace('Z', `${String(micros).padStart(3, '0')}Z`);
}

describe('isoMicros', () => {
  it('prints microseconds exactly, across second, day and year boundaries, in any order', () => {
    const starts = [0, 1_700_000_000_000_000, Date.UTC(2023, 11, 31, 23, 59, 59) * 1000, Date.UTC(2024, 1, 29) * 1000];
    const values: number[] = [];
    for (const s of starts) for (const d of [0, 1, 999, 1000, 999_999, 1_000_000, 1_000_001, 86_400_000_000]) values.push(s + d, s - d);
    // out of order and repeated: the cached second must never leak into another second
    for (const us of [...values, ...values.reverse()]) {
      if (us < 0) continue;
      assert.equal(isoMicros(us), reference(us), String(us));
    }
    assert.equal(isoMicros(1_700_000_000_123_456), '2023-11-14T22:13:20.123456Z');
  });
});

describe('stableId', () => {
  it('is a UUIDv7: the time in milliseconds, then a SHA-256 of the time and the parts joined by NUL', () => {
    const tsUs = 1_700_000_000_123_456;
    const id = stableId(tsUs, 7, '10.0.0.1', 80, 'kill');
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(parseInt(id.replace(/-/g, '').slice(0, 12), 16), 1_700_000_000_123, 'the first 48 bits are the Unix time in ms');
    const h = createHash('sha256').update(`${tsUs}\u00007\u000010.0.0.1\u000080\u0000kill`).digest('hex');
    assert.equal(id.slice(15, 18), h.slice(0, 3));
    assert.equal(id.slice(-12), h.slice(7, 19));
    assert.equal(stableId(tsUs, 7, '10.0.0.1', 80, 'kill'), id, 'the same input gives the same id');
    assert.notEqual(stableId(tsUs, 7, '10.0.0.1', 81, 'kill'), id);
    assert.notEqual(stableId(tsUs + 1, 7, '10.0.0.1', 80, 'kill'), id, 'the time is hashed too, to the microsecond');
  });

  it('equals the definition (join by NUL, hex digest, time in hex) on random and edge inputs', () => {
    // the definition, written the plain way: stableId builds the same string with table lookups
    const reference = (tsUs: number, ...parts: Array<string | number>): string => {
      const ms = Number.isFinite(tsUs) ? Math.min(2 ** 48 - 1, Math.max(0, Math.floor(tsUs / 1000))) : 0;
      const t = ms.toString(16).padStart(12, '0');
      const h = createHash('sha256').update(`${tsUs}\u0000${parts.join('\u0000')}`).digest('hex');
      return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${h.slice(0, 3)}-${((parseInt(h[3], 16) & 0x3) | 0x8).toString(16)}${h.slice(4, 7)}-${h.slice(7, 19)}`;
    };
    let seed = 12345;
    const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const times = [0, 999, 1000, 2 ** 24 * 1000, 2 ** 24 * 1000 - 1, (2 ** 48 - 1) * 1000, 2 ** 60, -1, Number.NaN, 1_700_000_000_123_456.5];
    const variants = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const tsUs = i < times.length ? times[i] : Math.floor(rnd() * 2 ** 52);
      const parts: Array<string | number> = [Math.floor(rnd() * 2 ** 53), `10.${i & 255}.0.1`, i & 0xffff, -i / 3, 'sök ünïcode \u{1f600}', i % 7, ''];
      const id = stableId(tsUs, ...parts);
      assert.equal(id, reference(tsUs, ...parts), `input ${i}`);
      variants.add(id[19]);
    }
    assert.deepEqual([...variants].sort(), ['8', '9', 'a', 'b'], 'every variant nibble was produced');
    assert.equal(stableId(5, 'a', undefined as unknown as string, 'b'), reference(5, 'a', undefined as unknown as string, 'b'), 'a missing part is empty, as join writes it');
  });

  it('sorts in time order across milliseconds, and clamps a time no UUIDv7 can hold', () => {
    const ids = [5, 1_000, 999_999, 1_700_000_000_000_000, 1_700_000_000_001_000].map((t, i) => stableId(t, 'x', i));
    assert.deepEqual([...ids].sort(), ids);
    assert.ok(stableId(-5, 'x').startsWith('00000000-0000-7'));
    assert.ok(stableId(Number.NaN, 'x').startsWith('00000000-0000-7'));
    assert.ok(stableId(2 ** 60, 'x').startsWith('ffffffff-ffff-7'));
  });
});

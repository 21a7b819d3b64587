/**
 * JsonLinesWriter: one JSON object per line, mode 0600, size rotation keeping N files (oldest
 * deleted), reopen() after logrotate renamed the file. Real files in a temporary directory.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { Counters } from '../../sensor/events/counters.js';
import { EveFileError, JsonLinesWriter } from '../../sensor/output/eve-writer.js';
import type { EventOutput } from '../../sensor/output/output.js';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hark-eve-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function lines(path: string): Array<Record<string, unknown>> {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

/** Events of about 60 bytes each, numbered; the phrase has a multi-byte character so bytes != chars. */
function event(i: number) {
  return { event_type: 'capture', n: i, phrase: `ü-${String(i).padStart(4, '0')}`, pad: 'x'.repeat(20) };
}

describe('JsonLinesWriter', () => {
  test('JsonLinesWriter writes one JSON object per line to a mode 0600 file', async () => {
    const path = join(dir, 'eve.json');
    const w = new JsonLinesWriter(path);
    w.write(event(1));
    w.write({ event_type: 'health', name: 'store.full' });
    await w.close();
    assert.deepEqual(lines(path), [event(1), { event_type: 'health', name: 'store.full' }]);
    assert.equal(mode(path), 0o600);
    assert.equal(w.written, 2);
  });

  test('JsonLinesWriter refuses a directory or a missing directory with E_EVE_OPEN naming the file', () => {
    const missing = join(dir, 'nope', 'eve.json');
    assert.throws(() => new JsonLinesWriter(missing), (e: unknown) => e instanceof EveFileError && e.code === 'E_EVE_OPEN'
      && e.message === `Cannot open event file "${missing}": no directory "${join(dir, 'nope')}"` && (e.cause as NodeJS.ErrnoException).code === 'ENOENT');
    assert.throws(() => new JsonLinesWriter(dir), (e: unknown) => e instanceof EveFileError && e.code === 'E_EVE_OPEN'
      && e.message === `Cannot open event file "${dir}": is a directory`);
  });

  test('JsonLinesWriter satisfies EventOutput and close() resolves', async () => {
    const path = join(dir, 'eve.json');
    const out: EventOutput = new JsonLinesWriter(path);
    const tlsEvent = { event_type: 'tls', sni: 'example.com' };
    out.write(tlsEvent);
    out.flush();
    assert.deepEqual(lines(path), [{ event_type: 'tls', sni: 'example.com' }]);
    await out.close();
  });

  test('JsonLinesWriter rotates by size, keeps N files and deletes the oldest', async () => {
    const path = join(dir, 'eve.json');
    const counters = new Counters();
    const one = Buffer.byteLength(`${JSON.stringify(event(0))}\n`);
    const maxBytes = one * 4 + 10; // four lines per file
    const w = new JsonLinesWriter(path, { maxBytes, keep: 2, counters });
    for (let i = 0; i < 30; i++) w.write(event(i));
    await w.close();
    assert.ok(existsSync(`${path}.1`) && existsSync(`${path}.2`));
    assert.equal(existsSync(`${path}.3`), false, 'only keep=2 rotated files');
    for (const p of [path, `${path}.1`, `${path}.2`]) {
      assert.ok(statSync(p).size <= maxBytes, `${p} is within maxBytes`);
      assert.equal(mode(p), 0o600, `${p} mode`);
    }
    // Oldest to newest, the kept files hold the last events in order, with no gap.
    const kept = [...lines(`${path}.2`), ...lines(`${path}.1`), ...lines(path)].map((e) => e.n);
    assert.deepEqual(kept, Array.from({ length: kept.length }, (_, i) => 30 - kept.length + i));
    assert.equal(lines(path).length, 2); // 30 = 7 full files of 4 + 2
    assert.equal(counters.get('output.eve.rotations'), 7);
    assert.equal(w.rotations, 7);
  });

  test('JsonLinesWriter counts bytes already in an existing file before rotating', async () => {
    const path = join(dir, 'eve.json');
    writeFileSync(path, `${JSON.stringify({ event_type: 'old' })}\n`.repeat(10), { mode: 0o600 });
    const before = statSync(path).size;
    const w = new JsonLinesWriter(path, { maxBytes: before + 10, keep: 1 });
    w.write(event(1));
    await w.close();
    assert.equal(lines(`${path}.1`).length, 10);
    assert.deepEqual(lines(path), [event(1)]);
  });

  test('JsonLinesWriter with keep 0 deletes the full file instead of keeping it', async () => {
    const path = join(dir, 'eve.json');
    const one = Buffer.byteLength(`${JSON.stringify(event(0))}\n`);
    const w = new JsonLinesWriter(path, { maxBytes: one * 2, keep: 0 });
    for (let i = 0; i < 5; i++) w.write(event(i));
    await w.close();
    assert.equal(existsSync(`${path}.1`), false);
    assert.deepEqual(lines(path).map((e) => e.n), [4]);
  });

  test('JsonLinesWriter writes a line longer than maxBytes to a file of its own', async () => {
    const path = join(dir, 'eve.json');
    const w = new JsonLinesWriter(path, { maxBytes: 100, keep: 3 });
    w.write(event(1));
    w.write({ event_type: 'capture', context: 'y'.repeat(500) });
    w.write(event(2));
    await w.close();
    assert.deepEqual(lines(`${path}.2`), [event(1)]);
    assert.equal((lines(`${path}.1`)[0].context as string).length, 500);
    assert.deepEqual(lines(path), [event(2)]);
  });

  test('JsonLinesWriter reopen() after a rename writes the next lines to a new file', async () => {
    const path = join(dir, 'eve.json');
    const w = new JsonLinesWriter(path);
    w.write(event(1));
    w.flush();
    renameSync(path, `${path}.rotated`); // what logrotate does before it sends SIGHUP
    w.write(event(2)); // buffered before the reopen: belongs to the old file
    w.reopen();
    assert.equal(existsSync(path), true);
    assert.equal(mode(path), 0o600);
    w.write(event(3));
    await w.close();
    assert.deepEqual(lines(`${path}.rotated`).map((e) => e.n), [1, 2]);
    assert.deepEqual(lines(path).map((e) => e.n), [3]);
  });

  test('JsonLinesWriter rejects a negative keep or a fractional maxBytes', () => {
    assert.throws(() => new JsonLinesWriter(join(dir, 'a.json'), { keep: -1 }), { code: 'E_EVE_CONFIG' });
    assert.throws(() => new JsonLinesWriter(join(dir, 'b.json'), { maxBytes: 1.5 }), { code: 'E_EVE_CONFIG' });
  });
});

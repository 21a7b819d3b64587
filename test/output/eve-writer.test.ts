/**
 * JsonLinesWriter: one JSON object per line, mode 0600, size rotation keeping N files (oldest
 * deleted), reopen() after logrotate renamed the file. Real files in a temporary directory.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { Counters } from '../../sensor/events/counters.js';
import { EveFileError, JsonLinesWriter, MAX_HELD_BYTES } from '../../sensor/output/eve-writer.js';
import type { EventOutput } from '../../sensor/output/output.js';
import { withSmallDisk } from '../store/small-disk.js';

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

  test('JsonLinesWriter without onWriteState throws a failed write (hark scan stops on a full disk)', withSmallDisk('64k', async (disk) => {
    const w = new JsonLinesWriter(join(disk.dir, 'out.json'));
    try {
      assert.throws(() => {
        for (let i = 0; i < 10_000; i++) w.write(event(i));
        w.flush();
      }, { code: 'ENOSPC' });
    } finally {
      await w.close();
    }
  }));
});

/**
 * Each event's number, every line parsed (a cut line fails the test). `whileFailing`: the last line
 * may still be incomplete, its rest waiting for room (a reader tailing the file waits for its newline).
 */
function numbers(path: string, whileFailing = false): number[] {
  let text = readFileSync(path, 'utf8');
  if (whileFailing) text = text.slice(0, text.lastIndexOf('\n') + 1);
  assert.ok(text === '' || text.endsWith('\n'), 'the file ends with a whole line');
  return text.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { n: number }).n);
}

describe('JsonLinesWriter on a failing disk (a sensor: onWriteState given)', () => {
  test('a full disk neither throws nor cuts a line; the events wait and are written, in order, once there is room', withSmallDisk('1m', async (disk) => {
    const path = join(disk.dir, 'eve.json');
    const counters = new Counters();
    const states: Array<string | undefined> = [];
    const w = new JsonLinesWriter(path, { counters, onWriteState: (e) => states.push(e?.code) });
    try {
      for (let i = 0; i < 100; i++) w.write(event(i));
      w.flush();
      const filler = disk.fill();
      // 40 KB of events on a full disk: flushes along the way and at the end all fail
      for (let i = 100; i < 800; i++) w.write(event(i));
      w.flush();
      w.flush();
      assert.deepEqual(states, ['ENOSPC'], 'one report for the failure, not one per retry');
      assert.ok(counters.get('output.eve.write_errors') >= 2);
      assert.ok(w.heldBytes > 0);
      const before = numbers(path, true);
      assert.ok(before.length >= 100);
      assert.deepEqual(before, Array.from({ length: before.length }, (_, i) => i), 'the lines that reached the file are the first ones, in order');
      rmSync(filler);
      w.flush();
      assert.deepEqual(states, ['ENOSPC', undefined], 'the recovery is reported');
      assert.equal(w.heldBytes, 0);
      assert.deepEqual(numbers(path), Array.from({ length: 800 }, (_, i) => i), 'every event, once, in order');
      assert.equal(counters.get('output.eve.lines_dropped'), 0);
    } finally {
      await w.close();
    }
  }));

  test('writes failing for long keep the newest MAX_HELD_BYTES; the dropped lines are counted and the file stays whole', withSmallDisk('64k', async (disk) => {
    const path = join(disk.dir, 'eve.json');
    const counters = new Counters();
    const w = new JsonLinesWriter(path, { counters, onWriteState: () => {} });
    const filler = disk.fill();
    rmSync(filler);
    // 20 KB free: the first events fit, the next ~6 MiB do not
    const total = Math.ceil((6 * 1024 * 1024) / 64);
    for (let i = 0; i < total; i++) w.write(event(i));
    w.flush();
    assert.ok(!readFileSync(path, 'utf8').endsWith('\n'), 'the disk filled mid-line (the case under test: the rest of that line is kept)');
    assert.ok(w.heldBytes <= MAX_HELD_BYTES, `held ${w.heldBytes} bytes`);
    assert.ok(w.heldBytes > MAX_HELD_BYTES - 1024, 'the bound is used, not far undershot');
    const dropped = counters.get('output.eve.lines_dropped');
    assert.ok(dropped > 0);
    assert.equal(w.dropped, dropped);
    disk.resize('16m');
    w.flush();
    assert.equal(w.heldBytes, 0);
    const got = numbers(path);
    assert.equal(got.length + dropped, total, 'every event is either in the file or counted as dropped');
    // the file: the first events, then (after the dropped run) the newest, each once and in order
    for (let k = 1; k < got.length; k++) assert.ok(got[k] > got[k - 1]);
    assert.equal(got[got.length - 1], total - 1);
    await w.close();
  }));

  test('reopen() into a directory that is gone does not throw; the next flush after it is back opens the file again', async () => {
    const sub = join(dir, 'log');
    mkdirSync(sub);
    const path = join(sub, 'eve.json');
    const states: Array<string | undefined> = [];
    const w = new JsonLinesWriter(path, { onWriteState: (e) => states.push(e?.code) });
    w.write(event(1));
    rmSync(sub, { recursive: true });
    w.reopen();
    w.write(event(2));
    w.flush();
    assert.deepEqual(states, ['E_EVE_OPEN']);
    mkdirSync(sub);
    w.flush();
    assert.deepEqual(states, ['E_EVE_OPEN', undefined]);
    assert.deepEqual(numbers(path), [2]);
    await w.close();
  });

  test('close() on a disk that stays full counts what it could not write and returns', withSmallDisk('64k', async (disk) => {
    const counters = new Counters();
    const w = new JsonLinesWriter(join(disk.dir, 'eve.json'), { counters, onWriteState: () => {} });
    disk.fill();
    for (let i = 0; i < 50; i++) w.write(event(i));
    await w.close();
    assert.equal(counters.get('output.eve.lines_dropped'), 50);
    w.write(event(51));
    w.flush();
  }));
});

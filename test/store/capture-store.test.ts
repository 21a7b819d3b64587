/**
 * CaptureStore: schema version through migrations, owner-only file modes, stored rows equal to the
 * events, idempotent re-insert of the same capture id, and a clear typed error when it cannot open.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { CaptureEvent } from '../../sensor/events/capture.js';
import { isoMicros, stableId } from '../../sensor/events/capture.js';
import { CaptureStore, StoreError } from '../../sensor/store/capture-store.js';
import { assertCapture } from '../helpers/schema.js';

function capture(n: number): CaptureEvent {
  const ts = 1_700_000_000_000_000 + n;
  return {
    event_type: 'capture',
    id: stableId('test', n),
    timestamp: isoMicros(ts),
    ts_us: ts,
    flow_id: 42,
    src_ip: '10.0.0.2',
    src_port: 50000,
    dest_ip: '192.0.2.1',
    dest_port: 80,
    vlan: [6],
    proto: 'TCP',
    app_proto: 'http',
    direction: 'to_server',
    source: 'typed',
    field: 'search',
    host: 'example.test',
    url: '/?q=ak47',
    method: 'GET',
    phrase: 'AK47',
    category: 'weapons',
    severity: 4,
    count: 1,
    context: '[[ak47]]',
    device: { ip: '10.0.0.2', mac: '00:11:22:33:44:55' },
  };
}

test('CaptureStore migrates, stores privately, and ignores a repeated capture id', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hark-store-'));
  try {
    const path = join(dir, 'data', 'captures.db');
    const store = new CaptureStore(path);
    assert.equal(store.schemaVersion, 1);
    for (let i = 0; i < 3; i++) {
      assertCapture(capture(i));
      store.add(capture(i));
    }
    store.add(capture(1)); // the same capture again (a re-scan): no second row
    store.add({ ...capture(2), count: 7 }); // a merged repeat raised its count: the row follows
    store.flush();
    assert.equal(store.count(), 3);
    assert.equal(store.countOf(capture(2).id), 7);
    assert.equal(store.countOf(capture(1).id), 1);
    assert.equal(store.stored, 4, 'three inserts and one count update changed rows');
    store.close();
    assert.equal(statSync(path).mode & 0o077, 0);
    assert.equal(statSync(join(dir, 'data')).mode & 0o077, 0);
    const again = new CaptureStore(path);
    assert.equal(again.schemaVersion, 1, 'reopening does not migrate again');
    assert.equal(again.count(), 3);
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CaptureStore refuses a directory under /proc at once (recursive mkdir would spin there)', () => {
  assert.throws(() => new CaptureStore('/proc/hark-cannot-be-here/captures.db'), (e: unknown) => e instanceof StoreError && e.code === 'E_STORE_OPEN');
});

test('CaptureStore says which file it cannot open', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hark-store-'));
  try {
    // A directory path that runs through a regular file cannot be created (ENOTDIR).
    const file = join(dir, 'plain-file');
    writeFileSync(file, 'x');
    const path = join(file, 'sub', 'captures.db');
    assert.throws(() => new CaptureStore(path), (e: unknown) => e instanceof StoreError && e.code === 'E_STORE_OPEN' && e.message.startsWith(`Cannot open capture store "${path}"`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

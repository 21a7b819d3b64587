/**
 * Uploader against a real node:http home on loopback (test/upload/fake-home.ts) and a real SQLite
 * store in a tmp dir: priority order, batch shrinking on 413, bisect-and-quarantine on 400, captures
 * a 2xx names as rejected quarantined (bisected when an older home only counts them), backoff
 * growth (injected random, delays read from onBackoff, never wall time), retry-after, upload.failing
 * raised and cleared (injected clock), exactly-once effect at home after failures, a dropped
 * connection and a restart, stop() with a batch in flight, a count that grows in flight, kick(),
 * and a store on a really full disk (a tmpfs) that uploads keep making room in.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { CaptureEvent } from '../../sensor/events/capture.js';
import { Counters } from '../../sensor/events/counters.js';
import type { HealthEvent } from '../../sensor/events/health.js';
import { CaptureStore } from '../../sensor/store/capture-store.js';
import { parseRetryAfter, readRejects, UploadError, Uploader, type UploaderOptions } from '../../sensor/upload/uploader.js';
import { makeCapture } from '../store/make-capture.js';
import { withSmallDisk } from '../store/small-disk.js';
import { FakeHome, PlainHttpTransport } from './fake-home.js';

interface Rig {
  dir: string;
  store: CaptureStore;
  home: FakeHome;
  counters: Counters;
  health: HealthEvent[];
  uploader(o?: Partial<UploaderOptions>): Uploader;
}

function rigged(fn: (r: Rig) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hark-upload-'));
    const counters = new Counters();
    const health: HealthEvent[] = [];
    const store = new CaptureStore(join(dir, 'captures.db'), { counters });
    const home = await new FakeHome().start();
    const made: Uploader[] = [];
    const rig: Rig = {
      dir, store, home, counters, health,
      uploader: (o = {}) => {
        const u = new Uploader(rig.store, new PlainHttpTransport(home.url), { counters, onHealth: (e) => health.push(e), minBackoffMs: 1, maxBackoffMs: 8, ...o });
        made.push(u);
        return u;
      },
    };
    try {
      await fn(rig);
    } finally {
      for (const u of made) await u.stop();
      await home.close();
      rig.store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function fill(store: CaptureStore, n: number, sev = (i: number) => 1 + (i % 5)): CaptureEvent[] {
  const out: CaptureEvent[] = [];
  for (let i = 0; i < n; i++) {
    const c = makeCapture(i, { severity: sev(i) });
    out.push(c);
    store.add(c);
  }
  store.flush();
  return out;
}

test('Uploader sends severity 4-5 first, then the rest, each oldest first, and marks them uploaded', rigged(async ({ store, home, counters, uploader }) => {
  const caps = fill(store, 10);
  const up = uploader({ batchSize: 3 });
  up.start();
  assert.equal(await up.drain(5000), true);
  const order = home.batches.flat();
  const urgent = caps.filter((c) => c.severity >= 4).map((c) => c.id);
  const routine = caps.filter((c) => c.severity < 4).map((c) => c.id);
  assert.deepEqual(order, [...urgent, ...routine]);
  assert.deepEqual(home.batches.map((b) => b.length), [3, 3, 3, 1]);
  assert.equal(store.pendingCount(), 0);
  assert.ok(caps.every((c) => store.stateOf(c.id)?.uploadedAt !== null));
  assert.equal(counters.get('upload.captures'), 10);
  assert.equal(counters.get('upload.batches'), 4);
  assert.equal(counters.get('upload.failures'), 0);
  assert.equal(counters.get('upload.queue'), 0);
}));

test('Uploader refuses a batch size outside 1..1000', rigged(async ({ store, home }) => {
  for (const b of [0, 1001, 2.5]) {
    assert.throws(() => new Uploader(store, new PlainHttpTransport(home.url), { counters: new Counters(), batchSize: b }), (e: unknown) => e instanceof UploadError && e.code === 'E_UPLOAD_CONFIG');
  }
}));

test('Uploader bisects a refused batch, quarantines only the bad captures, and delivers the rest', rigged(async ({ store, home, counters, health, uploader }) => {
  const caps = fill(store, 16, () => 3);
  const bad = [caps[5].id, caps[11].id];
  for (const id of bad) home.refuse.add(id);
  const up = uploader({ batchSize: 16 });
  up.start();
  assert.equal(await up.drain(5000), true, 'quarantined captures do not block the queue');
  assert.equal(home.stored.size, 14);
  for (const id of bad) {
    assert.ok(!home.stored.has(id));
    const st = store.stateOf(id);
    assert.equal(st?.uploadedAt, null);
    assert.ok(st?.quarantinedAt !== null);
    assert.match(st?.reason ?? '', /^HTTP 400: E_BAD_CAPTURE/);
  }
  assert.equal(store.count(), 16, 'quarantined captures are kept');
  assert.equal(store.quarantinedCount(), 2);
  assert.equal(counters.get('upload.quarantined'), 2);
  assert.equal(counters.get('upload.captures'), 14);
  assert.ok(home.batches.length < 16, `bisection, not one by one (${home.batches.length} requests)`);
  const q = health.find((e) => e.name === 'upload.quarantined');
  assert.equal(q?.state, 'raised');
  assert.equal(q?.detail?.count, 2);
}));

test('Uploader quarantines the captures a 2xx names in rejects, with home\'s reason, and marks only the rest', rigged(async ({ store, home, counters, health, uploader }) => {
  const caps = fill(store, 8, () => 4);
  const bad = [caps[2].id, caps[6].id];
  home.reject.set(bad[0], 'E_CAPTURE_TOO_LARGE');
  home.reject.set(bad[1], 'E_CAPTURE_PHRASE');
  const up = uploader({ batchSize: 8 });
  up.start();
  assert.equal(await up.drain(5000), true, 'the refused ones do not block the queue');
  assert.equal(home.batches.length, 1, 'named: no bisection, nothing sent twice');
  assert.equal(home.stored.size, 6);
  for (const [i, id] of bad.entries()) {
    const st = store.stateOf(id);
    assert.equal(st?.uploadedAt, null, 'not marked as delivered');
    assert.ok(st?.quarantinedAt !== null);
    assert.equal(st?.reason, `home rejected it: ${['E_CAPTURE_TOO_LARGE', 'E_CAPTURE_PHRASE'][i]} Capture "${id}" refused: ${['E_CAPTURE_TOO_LARGE', 'E_CAPTURE_PHRASE'][i]}`);
  }
  assert.ok(caps.filter((c) => !bad.includes(c.id)).every((c) => store.stateOf(c.id)?.uploadedAt !== null));
  assert.equal(store.quarantinedCount(), 2);
  assert.equal(store.pendingCount(), 0);
  assert.equal(counters.get('upload.captures'), 6);
  assert.equal(counters.get('upload.quarantined'), 2);
  const q = health.filter((e) => e.name === 'upload.quarantined');
  assert.equal(q.length, 1);
  assert.deepEqual(q[0].detail, { count: 2, status: 200, first_id: bad[0], error: 'E_CAPTURE_PHRASE' });
}));

test('Uploader bisects a 2xx from an older home that counts rejected captures without naming them', rigged(async ({ store, home, counters, uploader }) => {
  const caps = fill(store, 16, () => 3);
  const bad = caps[9].id;
  home.reject.set(bad, 'E_CAPTURE_TOO_LARGE');
  home.namesRejects = false;
  const up = uploader({ batchSize: 16 });
  up.start();
  assert.equal(await up.drain(5000), true);
  assert.equal(home.stored.size, 15);
  assert.equal(store.stateOf(bad)?.uploadedAt, null);
  assert.equal(store.stateOf(bad)?.reason, 'HTTP 200: rejected, home gave no reason');
  assert.ok(caps.filter((c) => c.id !== bad).every((c) => store.stateOf(c.id)?.uploadedAt !== null));
  assert.deepEqual(home.batches.map((b) => b.length), [16, 8, 8, 4, 2, 1, 1, 2, 4], 'halves down to the one home drops, first halves first');
  assert.equal(counters.get('upload.captures'), 15, 'each capture home took is marked once');
  assert.equal(store.pendingCount(), 0);
}));

test('readRejects reads home\'s rejects and gives up (bisect) on an answer it cannot trust', () => {
  const part = [makeCapture(1), makeCapture(2), makeCapture(3)];
  assert.deepEqual(readRejects(part, { accepted: 3, duplicates: 0 }), new Map(), 'a home that refused none');
  assert.deepEqual(readRejects(part, { accepted: 3, rejected: 0, rejects: [] }), new Map());
  assert.deepEqual([...readRejects(part, { rejected: 1, rejects: [{ index: 1, id: part[1].id, error: 'E_CAPTURE_TIME', message: 'no time' }] })!],
    [[1, { error: 'E_CAPTURE_TIME', reason: 'home rejected it: E_CAPTURE_TIME no time' }]]);
  assert.equal(readRejects(part, { rejected: 1 }), undefined, 'counted, not named');
  assert.equal(readRejects(part, { rejected: 2, rejects: [{ index: 0 }] }), undefined, 'fewer named than counted');
  assert.equal(readRejects(part, { rejected: 1, rejects: [{ index: 3 }] }), undefined, 'a place outside the batch');
  assert.equal(readRejects(part, { rejected: 1, rejects: [{ index: 0, id: part[1].id }] }), undefined, 'an id not at that place');
  assert.equal(readRejects(part, { rejected: 1, rejects: [{ index: '0' }] }), undefined);
  assert.deepEqual(readRejects(part, null), new Map(), 'a 2xx without a body: taken whole, as before');
});

test('Uploader halves the batch on 413 until home takes it, quarantining nothing', rigged(async ({ store, home, counters, uploader }) => {
  fill(store, 20);
  home.maxBatch = 3;
  const up = uploader({ batchSize: 20 });
  up.start();
  assert.equal(await up.drain(5000), true);
  assert.equal(home.stored.size, 20);
  assert.ok(up.batchSize <= 3, `batch now ${up.batchSize}`);
  assert.equal(store.quarantinedCount(), 0);
  assert.ok(counters.get('upload.batch_shrunk') >= 2);
}));

test('Uploader backs off exponentially with full jitter up to the cap', rigged(async ({ store, home, counters, uploader }) => {
  fill(store, 3);
  home.failWith = 500;
  for (const [rand, expected] of [[() => 0.999999, [1, 2, 4, 8, 8, 8]], [() => 0, [1, 1, 1, 1, 1, 1]], [() => 0.5, [1, 2, 3, 5, 5, 5]]] as [() => number, number[]][]) {
    const delays: number[] = [];
    let up: Uploader | undefined;
    const enough = new Promise<void>((resolve) => {
      up = uploader({
        minBackoffMs: 1, maxBackoffMs: 8, random: rand,
        onBackoff: (ms) => {
          delays.push(ms);
          if (delays.length === expected.length) resolve();
        },
      });
    });
    up?.start();
    await enough;
    await up?.stop();
    assert.deepEqual(delays, expected);
  }
  assert.equal(store.pendingCount(), 3, 'nothing marked while home fails');
  assert.ok(counters.get('upload.failures') >= 18);
}));

test('Uploader honours retry-after on 429 and 503', rigged(async ({ store, home, uploader }) => {
  fill(store, 2);
  home.script.push({ status: 429, headers: { 'retry-after': '7' } }, { status: 503, headers: { 'retry-after': '3' } });
  const delays: number[] = [];
  const up = uploader({ maxBackoffMs: 60_000, onBackoff: (ms) => { delays.push(ms); } });
  up.start();
  // The real sleep is 7 s: stop wakes it. Nothing here depends on elapsed time.
  while (delays.length === 0) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(delays, [7000]);
  await up.stop();
  assert.equal(home.batches.length, 1);
  assert.equal(store.pendingCount(), 2);
  assert.equal(parseRetryAfter('3', 0), 3000);
  assert.equal(parseRetryAfter('Thu, 01 Jan 1970 00:00:10 GMT', 4000), 6000);
  assert.equal(parseRetryAfter('soon', 0), undefined);
  assert.equal(parseRetryAfter(undefined, 0), undefined);
}));

test('Uploader raises upload.failing after failures outlast the threshold and clears it on success', rigged(async ({ store, home, health, uploader }) => {
  fill(store, 4);
  home.failWith = 503;
  let clock = 1_000_000;
  let failures = 0;
  const up = uploader({
    failingAfterMs: 1000,
    now: () => clock,
    onBackoff: () => {
      clock += 400;
      failures++;
      if (failures === 5) home.failWith = undefined;
    },
  });
  up.start();
  assert.equal(await up.drain(5000), true);
  const failing = health.filter((e) => e.name === 'upload.failing');
  assert.deepEqual(failing.map((e) => e.state), ['raised', 'cleared']);
  assert.equal(failing[0].timestamp, new Date(1_000_000 + 3 * 400).toISOString(), 'raised at the first failure more than 1000 ms after the first one');
  assert.equal(home.stored.size, 4);
}));

test('Uploader gives home an exactly-once effect across failures, a dropped connection and a restart', rigged(async (rig) => {
  const { home, counters } = rig;
  const caps = fill(rig.store, 25);
  home.script.push({ status: 500 }, 'die', { status: 502 });
  const first = rig.uploader({ batchSize: 10 });
  first.start();
  // Let it deliver part of the outbox, then stop it and close the store (a restart).
  await new Promise<void>((resolve) => { home.onBatch = () => { if (home.stored.size >= 10) resolve(); }; });
  await first.stop();
  rig.store.close();
  rig.store = new CaptureStore(join(rig.dir, 'captures.db'), { counters });
  assert.ok(rig.store.pendingCount() > 0);
  const second = rig.uploader({ batchSize: 10 });
  second.start();
  assert.equal(await second.drain(5000), true);
  assert.deepEqual([...home.stored].sort(), caps.map((c) => c.id).sort(), 'every capture arrived');
  const sent = home.batches.flat().length;
  assert.ok(sent > caps.length, 'some were sent more than once');
  assert.ok(counters.get('upload.duplicates') >= 10, 'the batch stored before the connection dropped came back as duplicates');
  assert.equal(counters.get('upload.captures'), caps.length, 'each capture marked uploaded once');
}));

test('Uploader sends a capture again when its count grew while its batch was in flight; home ends with the final count', rigged(async ({ store, home, counters, uploader }) => {
  const grows = makeCapture(1, { severity: 5, count: 1 });
  const other = makeCapture(2, { severity: 5, count: 1 });
  store.add(grows);
  store.add(other);
  store.flush();
  // Home has received the batch (count 1) but not yet answered: the merge window closes with 7.
  home.onBatch = () => {
    home.onBatch = undefined;
    store.add(makeCapture(1, { severity: 5, count: 7 }));
    store.flush();
  };
  const up = uploader();
  up.start();
  assert.equal(await up.drain(5000), true);
  assert.deepEqual(home.batches.map((b) => b.length), [2, 1], 'the grown capture went again, alone');
  assert.equal(home.counts.get(grows.id), 7, 'home holds the final count');
  assert.equal(home.counts.get(other.id), 1);
  assert.equal(store.countOf(grows.id), 7);
  assert.notEqual(store.stateOf(grows.id)?.uploadedAt, null);
  assert.equal(store.pendingCount(), 0);
  assert.equal(counters.get('upload.captures'), 3, 'sent three times in all');
}));

test('Uploader on a really full disk, no quota: each batch home takes is recorded and makes room, and no capture held in memory is dropped', withSmallDisk('4m', async (disk) => {
  const counters = new Counters();
  const store = new CaptureStore(join(disk.dir, 'captures.db'), { counters });
  const home = await new FakeHome().start();
  const up = new Uploader(store, new PlainHttpTransport(home.url), { counters, minBackoffMs: 1, maxBackoffMs: 8 });
  try {
    store.onCommitted(() => up.kick()); // as sensor/service.ts wires them
    const made: string[] = [];
    let n = 0;
    const add = (k: number): void => {
      for (let i = 0; i < k; i++, n++) {
        const c = makeCapture(n, { contextBytes: 1500, severity: 1 + (n % 5) });
        made.push(c.id);
        store.add(c);
      }
      store.flush();
    };
    while (store.heldCount === 0) add(100);
    up.start();
    // Captures keep coming while the disk is full, then stop; the sensor's flush tick goes on.
    for (let t = 0; t < 20; t++) {
      await new Promise((r) => setTimeout(r, 20));
      add(100);
    }
    await waitUntil(() => {
      store.flush();
      return store.heldCount === 0 && store.pendingCount() === 0;
    }, 20_000);
    assert.equal(await up.drain(5000), true);
    assert.equal(counters.get('store.dropped'), 0, 'no capture held in memory was dropped');
    assert.equal(counters.get('upload.errors'), 0, 'no pass failed on the store');
    assert.deepEqual(made.filter((id) => !home.stored.has(id)), [], 'home has every capture');
    assert.equal(counters.get('upload.captures'), made.length, 'each sent and recorded once');
    assert.equal(store.integrityCheck(), 'ok');
  } finally {
    await up.stop();
    await home.close();
    store.close();
  }
}));

test('Uploader.stop abandons a batch home never answers; its captures stay in the outbox', rigged(async ({ store, home, uploader }) => {
  fill(store, 5);
  home.script.push('hang');
  const up = uploader({ stopGraceMs: 20 });
  const inFlight = new Promise<void>((resolve) => { home.onBatch = () => resolve(); });
  up.start();
  await inFlight;
  await up.stop();
  assert.equal(store.pendingCount(), 5);
  home.onBatch = undefined;
  const again = uploader();
  again.start();
  assert.equal(await again.drain(5000), true);
  assert.equal(home.stored.size, 5);
}));

test('Uploader.kick wakes an idle uploader when new captures commit', rigged(async ({ store, home, uploader }) => {
  const up = uploader();
  store.onCommitted(() => up.kick());
  up.start();
  assert.equal(await up.drain(2000), true, 'an empty outbox drains at once');
  // Idle now (it would look again only after 30 s): the commit's kick must send this.
  const arrived = new Promise<string[]>((resolve) => { home.onBatch = resolve; });
  store.add(makeCapture(99));
  store.flush();
  assert.deepEqual(await arrived, [makeCapture(99).id]);
}));

test('Uploader sends a capture\'s page after home has the capture, once; a home without evidence storage does not block the queue', rigged(async ({ store, home, counters, uploader }) => {
  const page = Buffer.from('<html><body>buy an ak47 here</body></html>');
  const withPage = makeCapture(1, { severity: 2 });
  store.add(withPage, { contentType: 'text/html', body: page, truncated: false });
  store.add(makeCapture(2, { severity: 5 }));
  store.flush();
  const u = uploader();
  u.start();
  assert.equal(await u.drain(5000), true);
  await waitUntil(() => home.evidence.size === 1);
  assert.ok(home.stored.has(withPage.id));
  assert.ok(home.evidence.get(withPage.id)!.body.equals(page));
  assert.equal(home.evidence.get(withPage.id)!.contentType, 'text/html');
  assert.equal(counters.get('upload.evidence'), 1);
  assert.equal(store.evidencePending(), 0);

  home.keepsEvidence = false;
  const another = makeCapture(3);
  store.add(another, { contentType: 'text/plain', body: Buffer.from('ak47'), truncated: true });
  store.flush();
  u.kick();
  await waitUntil(() => counters.get('upload.evidence_refused') === 1);
  assert.ok(home.stored.has(another.id), 'the capture itself went');
  assert.equal(store.evidencePending(), 0, 'a page home cannot keep is not retried forever');
}));

async function waitUntil(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

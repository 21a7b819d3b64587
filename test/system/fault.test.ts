/**
 * Issue 7's fault test: a real home (`hark home`, a child process) and a real enrolled sensor
 * (`hark run` on a veth pair fed by tcpreplay). While four rounds of traffic go through, the test
 * kills home, fills the sensor's store quota while home is down, brings home back, freezes home so
 * an upload batch is in flight and kills the sensor with SIGKILL in the middle of it, then restarts
 * everything. At the end every capture the traffic produced (one per conversation, by the
 * generator's ground truth) exists exactly once at home. Needs root (veth), like the other live tests.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { conversationPath, httpTrafficPcap } from '../helpers/http-traffic.js';
import {
  enrolByCredentials, freePort, hark, makeVeth, Operator, removeVeth, replay, sensorListening, sleep, startHomeProcess, waitFor, type HomeProcess, type Proc,
} from '../helpers/system.js';

const require = createRequire(import.meta.url);
type Db = { prepare(sql: string): { all(...p: unknown[]): any[]; get(...p: unknown[]): any }; close(): void };
const Sqlite = require('better-sqlite3') as new (file: string, opts?: object) => Db;

const ROUND = 150;
const ROUNDS = 4;
/** Small enough that round 2 (taken while home is down) does not fit beside round 1 (rows are
 * smaller since schema 4 stores each field once). */
const QUOTA_BYTES = 224 * 1024;
const PASSWORD = 'fault test password 1';

function query<T>(file: string, sql: string): T[] {
  const db = new Sqlite(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

const homeUrls = (home: HomeProcess): string[] => query<{ url: string }>(join(home.dataDir, 'home.db'), 'SELECT url FROM captures').map((r) => r.url);
const sensorRows = (dir: string): { total: number; pending: number } =>
  query<{ total: number; pending: number }>(join(dir, 'captures.db'), 'SELECT count(*) AS total, count(*) FILTER (WHERE uploaded_at IS NULL) AS pending FROM captures')[0];

test('fault: every capture exists exactly once at home after home dies, a full store quota, and a sensor SIGKILL mid-batch', { timeout: 240_000 }, async (t) => {
  assert.equal(process.getuid?.(), 0, 'the live test needs root (CI runs as root)');
  const root = mkdtempSync(join(tmpdir(), 'hark-fault-'));
  const homeDir = join(root, 'home');
  const sensorDir = join(root, 'sensor');
  const veth = makeVeth('f');
  let home: HomeProcess | undefined;
  let sensor: Proc | undefined;
  const pcaps: string[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const file = join(root, `round-${r}.pcap`);
    writeFileSync(file, httpTrafficPcap({ conversations: ROUND, offset: r * ROUND }));
    pcaps.push(file);
  }
  const startSensor = async (): Promise<Proc> => {
    const p = hark(['run', '--data-dir', sensorDir, '--heartbeat-interval', '1', '--status-interval', '0.5', '--stats-interval', '0', '--no-api', '--store-max-bytes', String(QUOTA_BYTES)]);
    await sensorListening(p);
    return p;
  };
  try {
    const port = await freePort();
    home = await startHomeProcess(homeDir, port);
    const op = await Operator.firstAdmin(home, PASSWORD);
    const def = await op.ok('POST', '/v1/sensors', { name: 'fault', site: 'Fault School', interfaces: [veth.recv], dictionary: 'starter' });
    await op.close();
    const enrol = await enrolByCredentials([home.url], home.fingerprint, sensorDir, def.id, PASSWORD);
    assert.equal(await enrol.exited, 0, enrol.err + enrol.out);

    // Round 1: all well.
    sensor = await startSensor();
    assert.match(sensor.err, /configuration from home, version \d+/);
    replay(veth.send, pcaps[0], 3000);
    await waitFor('round 1 at home', 60_000, () => homeUrls(home!).length === ROUND);

    // Round 2 with home dead: the outbox grows past the quota; the oldest uploaded (round 1) go
    // first, then the rest wait in memory until there is room again.
    await home.proc.stop('SIGKILL');
    replay(veth.send, pcaps[1], 3000);
    await waitFor('the store quota to fill', 60_000, () => /health raised store\.full/.test(sensor!.err));
    await waitFor('round 2 committed in the room the uploaded round 1 left', 60_000, () => sensorRows(sensorDir).pending > 0);
    const duringOutage = sensorRows(sensorDir);
    t.diagnostic(`home down, quota full: sensor store holds ${duringOutage.total} captures, ${duringOutage.pending} not uploaded (uploaded ones evicted first)`);

    // Home back on the same port: everything drains, the held captures are committed.
    home = await startHomeProcess(homeDir, port);
    await waitFor('rounds 1-2 at home', 90_000, () => homeUrls(home!).length === 2 * ROUND);

    // Round 3: home frozen (an upload in flight, never answered), the sensor killed mid-batch.
    home.proc.child.kill('SIGSTOP');
    replay(veth.send, pcaps[2], 3000);
    await waitFor('round 3 committed by the sensor', 60_000, () => sensorRows(sensorDir).pending >= ROUND);
    await sleep(1500); // the uploader has a batch on the wire to the frozen home
    const atKill = sensorRows(sensorDir);
    await sensor.stop('SIGKILL');
    home.proc.child.kill('SIGCONT');
    await sleep(1000);
    const reachedHome = homeUrls(home).length - 2 * ROUND;
    t.diagnostic(`sensor SIGKILLed with ${atKill.pending} captures not acknowledged; ${reachedHome} of them reached home from the batch in flight and will come again`);
    assert.ok(atKill.pending > 0);

    // Restart everything: the sensor resends what home never acknowledged; home ignores repeats.
    sensor = await startSensor();
    replay(veth.send, pcaps[3], 3000);
    await waitFor('all rounds at home', 120_000, () => homeUrls(home!).length >= ROUNDS * ROUND && sensorRows(sensorDir).pending === 0).catch((err: Error) => {
      // what the sensor and home said, so a failure here can be told apart from a slow machine
      const last = (text: string): string => text.split('\n').slice(-25).join('\n');
      throw new Error(`${err.message}: home holds ${homeUrls(home!).length} of ${ROUNDS * ROUND}, the sensor has ${sensorRows(sensorDir).pending} not uploaded\n--- sensor stderr ---\n${last(sensor!.err)}\n--- home stderr ---\n${last(home!.proc.err)}\n--- home.log ---\n${last(existsSync(join(home!.dataDir, 'home.log')) ? readFileSync(join(home!.dataDir, 'home.log'), 'utf8') : '')}`);
    });
    assert.equal(await sensor.stop('SIGTERM'), 0, sensor.err);
    sensor = undefined;

    const urls = homeUrls(home);
    const expected = new Set<string>();
    for (let i = 0; i < ROUNDS * ROUND; i++) expected.add(conversationPath(i));
    const distinct = new Set(urls);
    const ids = query<{ n: number; d: number }>(join(home.dataDir, 'home.db'), 'SELECT count(*) AS n, count(DISTINCT id) AS d FROM captures')[0];
    t.diagnostic(`produced ${expected.size} captures; home holds ${urls.length} rows, ${distinct.size} distinct conversations, ${ids.d} distinct ids`);
    assert.equal(urls.length, expected.size, 'exactly one row per capture at home');
    assert.equal(ids.n, ids.d);
    assert.deepEqual([...distinct].filter((u) => !expected.has(u)), []);
    assert.deepEqual([...expected].filter((u) => !distinct.has(u)), [], 'no capture lost');
  } finally {
    if (sensor !== undefined) await sensor.stop('SIGKILL');
    if (home !== undefined) {
      home.proc.child.kill('SIGCONT');
      await home.proc.stop('SIGKILL');
    }
    removeVeth(veth);
    rmSync(root, { recursive: true, force: true });
  }
});

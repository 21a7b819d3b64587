/**
 * A live sensor whose disk fills up: `hark run` (on a veth pair fed by tcpreplay) keeps its data
 * directory on a small tmpfs; the test fills that filesystem while traffic goes on. The sensor must
 * not stop: `output.failing` names eve.json, the captures wait, and once the disk has room again
 * every capture is in the store and in eve.json (whole lines, each once) and the health event clears.
 * Needs root (veth, mount), like the other live tests.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { httpTrafficPcap } from '../helpers/http-traffic.js';
import { hark, makeVeth, removeVeth, replay, sensorListening, sleep, status, waitFor } from '../helpers/system.js';
import { withSmallDisk } from '../store/small-disk.js';

const require = createRequire(import.meta.url);
type Db = { prepare(sql: string): { get(): any }; close(): void };
const Sqlite = require('better-sqlite3') as new (file: string, opts?: object) => Db;

const ROUND = 40;

function eveCaptureIds(dataDir: string): string[] {
  const text = readFileSync(join(dataDir, 'eve.json'), 'utf8');
  assert.ok(text.endsWith('\n'), 'eve.json ends with a whole line');
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { event_type: string; id?: string })
    .filter((e) => e.event_type === 'capture').map((e) => e.id as string);
}

test('hark run on a disk that fills up keeps running, says so, and writes every capture once there is room', withSmallDisk('32m', async (disk) => {
  const dataDir = join(disk.dir, 'data');
  mkdirSync(dataDir, { mode: 0o700 });
  const pcaps = [0, 1].map((r) => {
    const file = join(disk.dir, `round-${r}.pcap`);
    writeFileSync(file, httpTrafficPcap({ conversations: ROUND, offset: r * ROUND }));
    return file;
  });
  const veth = makeVeth('fd');
  const sensor = hark(['run', '-i', veth.recv, '--mode', 'standalone', '--data-dir', dataDir, '--workers', '0', '--warm-up', '0', '--no-api', '--status-interval', '0.2', '--stats-interval', '0']);
  try {
    await sensorListening(sensor);
    replay(veth.send, pcaps[0], 2000);
    await waitFor('the first round stored', 30_000, () => status(dataDir)?.captures === ROUND);
    const filler = disk.fill();
    replay(veth.send, pcaps[1], 2000);
    await waitFor('output.failing for eve.json', 30_000, () => {
      // before the fix, the first failed write of eve.json ended the sensor (ENOSPC thrown from its timer)
      assert.ok(sensor.alive, `the sensor stopped on the full disk:\n${sensor.err}`);
      return /health raised output\.failing: Cannot write [^\n]*eve\.json: ENOSPC/.test(sensor.err);
    });
    await sleep(2000);
    assert.ok(sensor.alive, `the sensor is still running:\n${sensor.err}`);
    rmSync(filler);
    await waitFor('output.failing cleared', 30_000, () => /health cleared output\.failing: [^\n]*eve\.json is written again/.test(sensor.err));
    await waitFor('both rounds stored', 30_000, () => status(dataDir)?.captures === 2 * ROUND);
    sensor.child.kill('SIGTERM');
    assert.equal(await sensor.exited, 0, sensor.err);
    const db = new Sqlite(join(dataDir, 'captures.db'), { readonly: true });
    try {
      assert.equal(db.prepare('SELECT count(*) AS n FROM captures').get().n, 2 * ROUND);
    } finally {
      db.close();
    }
    const ids = eveCaptureIds(dataDir);
    assert.equal(new Set(ids).size, 2 * ROUND, 'every capture reached eve.json');
    assert.equal(ids.length, 2 * ROUND, 'and none twice');
  } finally {
    if (sensor.alive) sensor.child.kill('SIGKILL');
    await sensor.exited;
    removeVeth(veth);
  }
}));

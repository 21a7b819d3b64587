/**
 * Standard error that goes away (a `2>&1 | tee` whose tee was killed, a journal stream that broke)
 * must not end a command: before, the next log line raised EPIPE as an uncaught error, so the
 * sensor died on a reload (or any log line) and home on a failed login, an attacker's line. Each
 * test closes the reading end of the child's stderr and then makes it write there.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { fixture } from '../helpers/replay.js';
import { scratchDir } from '../helpers/scratch.js';
import { HARK, hark, makeVeth, Operator, removeVeth, sensorListening, sleep, startHomeProcess, status, waitFor } from '../helpers/system.js';

const require = createRequire(import.meta.url);
type Db = { prepare(sql: string): { get(): any }; close(): void };
const Sqlite = require('better-sqlite3') as new (file: string, opts?: object) => Db;

test('hark run keeps capturing after its stderr reader has gone, through a reload and stats lines', { timeout: 120_000 }, async () => {
  assert.equal(process.getuid?.(), 0, 'the live test needs root (CI runs as root)');
  const dir = scratchDir('hark-stderr-run-');
  const data = join(dir, 'data');
  const veth = makeVeth('e');
  const sensor = hark(['run', '-i', veth.recv, '--mode', 'standalone', '--data-dir', data, '--no-api', '--stats-interval', '1', '--status-interval', '0.2']);
  try {
    await sensorListening(sensor);
    sensor.child.stderr!.destroy();
    // SIGUSR2: "hark: reloaded ..." goes to the closed stderr, as do the stats lines each second.
    sensor.child.kill('SIGUSR2');
    await sleep(2500);
    assert.ok(sensor.alive, `the sensor ended when it wrote to a closed stderr (exit ${sensor.child.exitCode})`);
    execFileSync('tcpreplay', ['-i', veth.send, fixture('school-search', 'school-search.pcap')], { stdio: 'ignore' });
    await waitFor('the captures in the status file', 30_000, () => {
      if (!sensor.alive) throw new Error(`hark run exited (${sensor.child.exitCode})`);
      return (status(data)?.captures ?? 0) >= 4;
    });
    assert.equal(await sensor.stop('SIGTERM'), 0, 'a clean stop');
    const db = new Sqlite(join(data, 'captures.db'), { readonly: true });
    try {
      const n = (db.prepare('SELECT count(*) AS n FROM captures').get() as { n: number }).n;
      assert.equal(n, 4, 'the four captures of school-search.pcap are stored');
    } finally {
      db.close();
    }
  } finally {
    await sensor.stop('SIGKILL');
    removeVeth(veth);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hark home keeps answering after its stderr reader has gone and a failed login logs there', { timeout: 120_000 }, async () => {
  const dir = scratchDir('hark-stderr-home-');
  const home = await startHomeProcess(join(dir, 'home'));
  const op = new Operator(home.url, home.caPem);
  try {
    home.proc.child.stderr!.destroy();
    for (let i = 0; i < 3; i++) {
      const r = await op.call('POST', '/v1/login', { user: 'admin', password: `wrong ${i}` });
      assert.equal(r.status, 401, `login ${i} refused`);
    }
    await sleep(300);
    assert.ok(home.proc.alive, `home ended when it logged to a closed stderr (exit ${home.proc.child.exitCode})`);
    const logged = await Operator.firstAdmin(home);
    assert.ok((await logged.ok('GET', '/v1/sensors')) !== undefined, 'home still serves its API');
    await logged.close();
    assert.equal(await home.proc.stop('SIGTERM'), 0, 'a clean stop');
  } finally {
    await op.close();
    await home.proc.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hark scan finishes with status 0 and its whole output when stderr has no reader', () => {
  const pcap = fixture('school-search', 'school-search.pcap');
  // bash's process substitution reader exits at once; the scan's summary then meets a closed pipe.
  const r = spawnSync('bash', ['-c', '"$0" scan "$1" 2> >(exit 0)', HARK, pcap], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `exit status ${r.status}`);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event_type: string });
  assert.equal(lines.filter((l) => l.event_type === 'capture').length, 4, 'all four captures written');
});

/**
 * memory.high end to end (sensor/health/memory-alarm.ts): `hark run` in a memory cgroup of its own,
 * whose limit the test lowers to just above the sensor's RSS and then raises again, as an operator
 * does with `systemctl set-property hark MemoryMax=...`. The sensor must raise memory.high in its
 * status file and eve.json, naming its RSS and the cgroup's limit, and clear it once the limit is
 * raised. Root only (cgroups); cgroup v2 (memory.max) or v1 (memory.limit_in_bytes). Removes its
 * cgroup and files.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Proc, sensorListening, sleep, status, waitFor } from '../helpers/system.js';

const HARK_JS = fileURLToPath(new URL('../../sensor/cli/hark.js', import.meta.url));
const CGROUP_ROOT = '/sys/fs/cgroup';
const GIB = 1024 * 1024 * 1024;
/** The lowered limit puts the sensor's RSS at this share of it: over the alarm's 85%, with room
 * below the limit so the kernel does not have to reclaim the sensor's own memory. */
const LOWERED_SHARE = 0.9;

/** A memory cgroup of the test's own: where its limit file is, and how to put a process in it. */
interface MemoryCgroup {
  readonly dir: string;
  readonly limitFile: string;
}

function makeCgroup(name: string): MemoryCgroup {
  const unified = existsSync(join(CGROUP_ROOT, 'cgroup.controllers')) && readFileSync(join(CGROUP_ROOT, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('memory');
  const dir = unified ? join(CGROUP_ROOT, name) : join(CGROUP_ROOT, 'memory', name);
  assert.ok(unified || existsSync(join(CGROUP_ROOT, 'memory')), `no memory cgroup controller under ${CGROUP_ROOT} (this test needs cgroup v1 or v2 with memory)`);
  mkdirSync(dir);
  return { dir, limitFile: join(dir, unified ? 'memory.max' : 'memory.limit_in_bytes') };
}

function setLimit(cg: MemoryCgroup, bytes: number): void {
  writeFileSync(cg.limitFile, String(Math.floor(bytes)));
}

let dir = '';
let cg: MemoryCgroup | undefined;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hark-memory-alarm-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
  // the sensor has exited by now: an empty cgroup is removed with rmdir
  if (cg !== undefined) rmdirSync(cg.dir);
});

interface HealthEntry {
  name: string;
  state: string;
  message: string;
  detail?: { rss_bytes?: number; limit_bytes?: number };
}

function eveHealth(dataDir: string): HealthEntry[] {
  const file = join(dataDir, 'eve.json');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as HealthEntry & { event_type: string })
    .filter((e) => e.event_type === 'health' && e.name === 'memory.high');
}

test('hark run raises memory.high when its cgroup limit is lowered near its RSS, and clears it when the limit is raised', async () => {
  assert.equal(process.getuid?.(), 0, 'the memory cgroup test needs root (CI runs as root)');
  cg = makeCgroup(`hark-test-${process.pid}`);
  setLimit(cg, 4 * GIB);
  const data = join(dir, 'data');
  // the shell puts itself in the cgroup, then becomes the sensor: every thread of it is charged there
  const sensor = new Proc(spawn('sh', ['-c', `echo $$ > ${join(cg.dir, 'cgroup.procs')} && exec "$0" "$@"`, process.execPath, HARK_JS, 'run', '-i', 'lo', '--workers', '0', '--mode', 'standalone', '--data-dir', data, '--no-api', '--status-interval', '0.2', '--stats-interval', '0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  }));
  try {
    await sensorListening(sensor);
    await waitFor('a status file with memory figures', 10_000, () => (status(data)?.memory?.rss_bytes ?? 0) > 0);
    await sleep(1000);
    assert.equal(status(data).health.filter((e: HealthEntry) => e.name === 'memory.high').length, 0, 'no alarm under a 4 GiB limit');
    const rss = status(data).memory.rss_bytes as number;
    const lowered = rss / LOWERED_SHARE;
    setLimit(cg, lowered);
    await waitFor('memory.high in the status file', 10_000, () => status(data).health.some((e: HealthEntry) => e.name === 'memory.high' && e.state === 'raised'));
    const raised = status(data).health.find((e: HealthEntry) => e.name === 'memory.high') as HealthEntry;
    // the limit the sensor names is the cgroup's (read again after the change), not the machine's
    assert.ok(Math.abs(raised.detail!.limit_bytes! - lowered) < 4096 * 2, `limit_bytes ${raised.detail?.limit_bytes} against the cgroup's ${lowered}`);
    assert.ok(raised.detail!.rss_bytes! > 0.85 * raised.detail!.limit_bytes!, JSON.stringify(raised.detail));
    assert.match(raised.message, /Memory is running short: the sensor uses [\d.]+ GiB of the [\d.]+ GiB it may use \(\d+%\)/);
    setLimit(cg, 4 * GIB);
    await waitFor('memory.high cleared', 10_000, () => !status(data).health.some((e: HealthEntry) => e.name === 'memory.high'));
    assert.equal(await sensor.stop(), 0, sensor.err);
    // eve.json has the raise and the clear, in that order
    assert.deepEqual(eveHealth(data).map((e) => e.state), ['raised', 'cleared'], sensor.err);
  } finally {
    await sensor.stop('SIGKILL');
  }
});

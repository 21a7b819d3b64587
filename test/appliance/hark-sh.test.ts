/**
 * appliance/hark.sh against a REAL sensor process: `hark run -i lo` (standalone) in a temporary
 * HARK_ROOT, started under the script's own supervisor. Walks start -> status -> reload -> restart
 * -> SIGKILL (the supervisor brings it back within 10 s) -> stop, and the LSB status codes; with
 * HARK_USER, that a restart as root does not follow a link planted in the data directory; and that
 * status reports a REAL home server (`hark home`) when home.env says one is set up here.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

const DIST = fileURLToPath(new URL('../../', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const SCRIPT = join(REPO, 'appliance/hark.sh');

/** How long the sensor may take to load its dictionary and open lo: startup, not a speed claim. */
const READY_DEADLINE_MS = 20_000;
/** The appliance promise: a killed sensor is running again within 10 s. */
const RESTART_DEADLINE_MS = 10_000;
/** Home makes its RSA 3072 CA on first start: seconds on a busy 2-core machine. */
const HOME_READY_DEADLINE_MS = 60_000;

let root = '';
let env: NodeJS.ProcessEnv = {};

function ctl(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync('bash', [SCRIPT, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function pidFile(name: string): number {
  try {
    return Number(readFileSync(join(root, 'run/hark', name), 'utf8').trim());
  } catch {
    return 0;
  }
}

function alive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function log(): string {
  try {
    return readFileSync(join(root, 'var/log/hark/hark.log'), 'utf8');
  } catch {
    return '';
  }
}

async function waitFor(what: string, deadlineMs: number, check: () => boolean): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what} did not happen within ${deadlineMs} ms; log:\n${log()}`);
}

/** Counts "listening on" lines: each sensor start that got as far as capturing adds one. */
function listens(): number {
  return log().split('\n').filter((l) => l.startsWith('hark: listening on lo')).length;
}

before(() => {
  root = mkdtempSync(join(tmpdir(), 'hark-sh-'));
  mkdirSync(join(root, 'etc/hark'), { recursive: true });
  writeFileSync(
    join(root, 'etc/hark/hark.env'),
    '# test settings\nHARK_INTERFACE=lo\nHARK_DATA_DIR=/var/lib/hark\nHARK_MODE=standalone\nHARK_RUN_ARGS="--stats-interval 0 --no-api"\n',
  );
  const bin = join(root, 'hark');
  writeFileSync(bin, `#!/bin/sh\nexec node ${JSON.stringify(join(DIST, 'sensor/cli/hark.js'))} "$@"\n`);
  chmodSync(bin, 0o755);
  env = { ...process.env, HARK_ROOT: root, HARK_BIN: bin, HARK_STOP_TIMEOUT_S: '20' };
});

after(() => {
  // Whatever happened, leave no sensor behind.
  for (const f of ['supervisor.pid', 'hark.pid']) {
    const pid = pidFile(f);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  rmSync(root, { recursive: true, force: true });
});

test('hark.sh status says not running (exit 3) before the first start', () => {
  const r = ctl('status');
  assert.equal(r.code, 3);
  assert.match(r.out, /not running/);
});

test('hark.sh start -> status -> reload -> restart -> SIGKILL -> stop drives a real sensor', async () => {
  const started = ctl('start');
  assert.equal(started.code, 0, started.err);
  const pid1 = pidFile('hark.pid');
  assert.ok(alive(pid1), 'sensor process alive after start');
  assert.match(readFileSync(`/proc/${pid1}/cmdline`, 'utf8'), /sensor\/cli\/hark\.js\x00run\x00--stats-interval\x000\x00--no-api/);
  await waitFor('the sensor listening on lo', READY_DEADLINE_MS, () => listens() === 1);
  assert.ok(existsSync(join(root, 'var/lib/hark')), 'data dir created under HARK_ROOT');
  assert.equal(statSync(join(root, 'var/lib/hark')).mode & 0o777, 0o700, 'the data directory is private');
  assert.equal(statSync(join(root, 'var/log/hark/hark.log')).mode & 0o077, 0, 'the log is private (umask 077, as hark.service)');
  assert.equal(statSync(join(root, 'var/lib/hark/captures.db')).mode & 0o077, 0, 'the store is private');

  const again = ctl('start');
  assert.equal(again.code, 0);
  assert.match(again.out, /already running/);
  assert.equal(pidFile('hark.pid'), pid1);

  // the sensor's memory once its status file has it (the first sample comes within a few seconds)
  await waitFor('a memory line in status', READY_DEADLINE_MS, () => /memory: RSS/.test(ctl('status').out));
  const st = ctl('status');
  assert.equal(st.code, 0);
  assert.match(st.out, new RegExp(`running \\(pid ${pid1}\\) since \\d{4}-`));
  const mem = /memory: RSS ([\d,]+) MiB \(peak ([\d,]+) MiB; hark status shows where it goes\)/.exec(st.out);
  assert.ok(mem !== null, st.out);
  const [rss, peak] = [Number(mem[1].replace(/,/g, '')), Number(mem[2].replace(/,/g, ''))];
  assert.ok(rss > 10 && rss <= peak && peak < 8192, `RSS ${rss} MiB, peak ${peak} MiB`);
  const js = ctl('status', '--json');
  assert.equal(js.code, 0);
  const parsed = JSON.parse(js.out) as { state: string; pid: number };
  assert.equal(parsed.state, 'running');
  assert.equal(parsed.pid, pid1);

  // reload = SIGUSR2: the sensor re-fetches its configuration in place, keeping its pid.
  const rl = ctl('reload');
  assert.equal(rl.code, 0, rl.err);
  await new Promise((r) => setTimeout(r, 1000));
  assert.ok(alive(pid1), 'sensor survives SIGUSR2');
  assert.equal(pidFile('hark.pid'), pid1);

  const rs = ctl('restart');
  assert.equal(rs.code, 0, rs.err);
  const pid2 = pidFile('hark.pid');
  assert.ok(alive(pid2));
  assert.notEqual(pid2, pid1);
  assert.ok(!alive(pid1), 'old sensor gone after restart');
  assert.match(log(), /hark: stopped \(signal\); \d+ captures stored/, 'the restart let the sensor flush');
  await waitFor('the restarted sensor listening', READY_DEADLINE_MS, () => listens() === 2);

  // Tamper resistance: killed outright, it is back within 10 s under a new pid.
  process.kill(pid2, 'SIGKILL');
  await waitFor('the supervisor restarting a killed sensor', RESTART_DEADLINE_MS, () => {
    const p = pidFile('hark.pid');
    return p !== pid2 && alive(p);
  });
  const pid3 = pidFile('hark.pid');
  assert.match(log(), /sensor exited with status 137; restarting/);
  await waitFor('the revived sensor listening', READY_DEADLINE_MS, () => listens() === 3);

  const supervisor = pidFile('supervisor.pid');
  assert.ok(alive(supervisor));
  const sp = ctl('stop');
  assert.equal(sp.code, 0, sp.err);
  assert.ok(!alive(pid3), 'sensor stopped');
  assert.ok(!alive(supervisor), 'supervisor stopped');
  assert.equal(log().split('\n').filter((l) => l.startsWith('hark: stopped (signal);')).length, 2, 'the sensor flushed on stop');
  assert.ok(!existsSync(join(root, 'run/hark/hark.pid')));
  assert.equal(ctl('status').code, 3);
  assert.match(ctl('stop').out, /not running/);
});

test('hark.sh with HARK_USER: the sensor it restarts as root never follows a link planted in the data directory', async () => {
  // The attack: the sensor, running as HARK_USER, is compromised by the traffic it parses, plants
  // DATA_DIR/x -> a root-owned directory and dies; the supervisor starts it again as root.
  const own = mkdtempSync(join(tmpdir(), 'hark-sh-user-'));
  const ownEnv = { ...env, HARK_ROOT: own };
  const run = (...args: string[]) => spawnSync('bash', [SCRIPT, ...args], { env: ownEnv, encoding: 'utf8', timeout: 60_000 });
  const sensorPid = (): number => Number((existsSync(join(own, 'run/hark/hark.pid')) ? readFileSync(join(own, 'run/hark/hark.pid'), 'utf8') : '').trim());
  const ownLog = (): string => (existsSync(join(own, 'var/log/hark/hark.log')) ? readFileSync(join(own, 'var/log/hark/hark.log'), 'utf8') : '');
  const ownListens = (): number => ownLog().split('\n').filter((l) => l.startsWith('hark: listening on lo')).length;
  const until = async (what: string, check: () => boolean): Promise<void> => {
    for (const end = Date.now() + READY_DEADLINE_MS; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (check()) return;
    assert.fail(`${what} did not happen within ${READY_DEADLINE_MS} ms; log:\n${ownLog()}`);
  };
  try {
    // nobody must reach its data directory, as it can reach /var/lib/hark on an appliance
    chmodSync(own, 0o711);
    mkdirSync(join(own, 'var/lib'), { recursive: true });
    chmodSync(join(own, 'var'), 0o755);
    chmodSync(join(own, 'var/lib'), 0o755);
    mkdirSync(join(own, 'etc/hark'), { recursive: true });
    writeFileSync(join(own, 'etc/hark/hark.env'), 'HARK_INTERFACE=lo\nHARK_DATA_DIR=/var/lib/hark\nHARK_MODE=standalone\nHARK_USER=nobody\nHARK_RUN_ARGS="--stats-interval 0 --no-api --workers 0"\n');
    const victim = join(own, 'victim');
    mkdirSync(victim, { mode: 0o700 });
    writeFileSync(join(victim, 'victim.txt'), 'root only\n', { mode: 0o600 });

    const started = run('start');
    assert.equal(started.status, 0, started.stderr);
    await until('the sensor listening on lo', () => ownListens() === 1);
    const data = join(own, 'var/lib/hark');
    assert.equal(statSync(data).uid, 65534, 'the data directory was handed to nobody');
    symlinkSync(victim, join(data, 'planted-link'));
    const first = sensorPid();
    process.kill(first, 'SIGKILL');
    await until('the sensor restarted as root and listening again', () => ownListens() === 2);
    assert.notEqual(sensorPid(), first);
    for (const p of [victim, join(victim, 'victim.txt')]) assert.equal(statSync(p).uid, 0, `${p} stays root's`);
    assert.match(ownLog(), /hark: left 1 entry in .*\/var\/lib\/hark as they were .*"[^"]*\/planted-link"/);
    const stopped = run('stop');
    assert.equal(stopped.status, 0, stopped.stderr);
  } finally {
    for (const f of ['supervisor.pid', 'hark.pid']) {
      const pid = Number((existsSync(join(own, 'run/hark', f)) ? readFileSync(join(own, 'run/hark', f), 'utf8') : '').trim());
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    rmSync(own, { recursive: true, force: true });
  }
});

test('hark.sh status exits 1 for a stale pid file', () => {
  mkdirSync(join(root, 'run/hark'), { recursive: true });
  // A pid that cannot be alive: above the kernel's pid_max.
  const pidMax = Number(execFileSync('cat', ['/proc/sys/kernel/pid_max'], { encoding: 'utf8' }).trim());
  writeFileSync(join(root, 'run/hark/hark.pid'), `${pidMax + 1}\n`);
  const r = ctl('status');
  assert.equal(r.code, 1);
  assert.match(r.out, /dead/);
  rmSync(join(root, 'run/hark/hark.pid'));
});

test('hark.sh status names each raised health event beside its message', () => {
  const data = join(root, 'var/lib/hark');
  mkdirSync(data, { recursive: true });
  const health = [
    { event_type: 'health', timestamp: new Date().toISOString(), name: 'memory.high', severity: 'warning', state: 'raised', message: 'Memory is running short: the sensor uses 3.5 GiB of the 4.0 GiB it may use (88%)' },
    { event_type: 'health', timestamp: new Date().toISOString(), name: 'capture.no_packets', severity: 'warning', state: 'raised', message: 'No packets on eth1 for 5 minutes' },
  ];
  writeFileSync(join(data, 'status.json'), JSON.stringify({ updated_at: new Date().toISOString(), pid: 0, interfaces: [], health }));
  try {
    const r = ctl('status');
    assert.match(r.out, /^  health: memory\.high: Memory is running short: the sensor uses 3\.5 GiB/m, r.out);
    assert.match(r.out, /^  health: capture\.no_packets: No packets on eth1 for 5 minutes$/m, r.out);
  } finally {
    rmSync(join(data, 'status.json'));
  }
});

test('hark.sh start refuses clearly when the sensor is not configured', () => {
  const bare = mkdtempSync(join(tmpdir(), 'hark-sh-bare-'));
  try {
    const r = spawnSync('bash', [SCRIPT, 'start'], { env: { ...env, HARK_ROOT: bare }, encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /hark\.env" is missing; configure the sensor first/);
  } finally {
    rmSync(bare, { recursive: true, force: true });
  }
});

test('hark.sh rejects an unknown command with usage and exit 2', () => {
  const r = ctl('frobnicate');
  assert.equal(r.code, 2);
  assert.match(r.err, /Usage: hark\.sh start\|stop\|restart\|reload\|status/);
});

interface HomeStatus {
  state: string;
  managed_by: string | null;
  listen: { address: string | null; port: number | null } | null;
  ping: { url: string | null; answers: boolean; error: string | null };
}

test('hark.sh status says nothing about home where home.env is absent (setup.sh without --with-home)', () => {
  const r = ctl('status');
  assert.equal(r.code, 3);
  assert.doesNotMatch(r.out, /home/i);
  const js = JSON.parse(ctl('status', '--json').out) as Record<string, unknown>;
  assert.equal('home' in js, false);
});

test('hark.sh status without systemd reports a real home: running and answering, then stopped; exit codes stay the sensor\'s', async () => {
  const own = mkdtempSync(join(tmpdir(), 'hark-sh-home-'));
  const run = (...args: string[]) => spawnSync('bash', [SCRIPT, ...args], { env: { ...env, HARK_ROOT: own, HARK_HOME_PING_TIMEOUT_MS: '500' }, encoding: 'utf8', timeout: 60_000 });
  const home = spawn(process.execPath, [join(DIST, 'sensor/cli/hark.js'), 'home', '--data-dir', join(own, 'var/lib/hark-home'), '--port', '0', '--listen', '127.0.0.1'], {
    env: { ...process.env, HARK_HOME_READY_FD: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const hung = createServer();
  try {
    let out = '';
    home.stdout.setEncoding('utf8');
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`home did not start within ${HOME_READY_DEADLINE_MS} ms`)), HOME_READY_DEADLINE_MS);
      home.stdout.on('data', (c: string) => {
        out += c;
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line !== undefined) { clearTimeout(timer); resolve((JSON.parse(line) as { port: number }).port); }
      });
      home.on('exit', (code) => { clearTimeout(timer); reject(new Error(`home exited with status ${code}`)); });
    });
    mkdirSync(join(own, 'etc/hark'), { recursive: true });
    // As setup.sh writes it, with the port home really has and one address.
    writeFileSync(join(own, 'etc/hark/home.env'), `# Hark home server settings\nHARK_HOME_PORT=${port}\nHARK_HOME_LISTEN="127.0.0.1"\nHARK_HOME_DIR=/var/lib/hark-home\nHARK_HOME_ARGS=\n`);

    const up = run('status');
    assert.equal(up.status, 3, 'the sensor is not running: exit 3, whatever home does');
    assert.match(up.stdout, /^Hark sensor: not running$/m);
    assert.match(up.stdout, /^Hark home: running$/m);
    assert.match(up.stdout, new RegExp(`^  listen: 127\\.0\\.0\\.1, port ${port}$`, 'm'));
    assert.match(up.stdout, new RegExp(`^  health: https://127\\.0\\.0\\.1:${port}/v1/ping answers$`, 'm'));
    const upJs = run('status', '--json');
    assert.equal(upJs.status, 3);
    const h = (JSON.parse(upJs.stdout) as { exit_code: number; home: HomeStatus }).home;
    assert.deepEqual(h, { state: 'running', pid: null, since: null, managed_by: null, listen: { address: '127.0.0.1', port }, ping: { url: `https://127.0.0.1:${port}/v1/ping`, answers: true, error: null } });

    // Every address (HARK_HOME_LISTEN empty): probed on loopback.
    writeFileSync(join(own, 'etc/hark/home.env'), `HARK_HOME_PORT=${port}\nHARK_HOME_LISTEN=\n`);
    assert.match(run('status').stdout, /^  listen: every address, port \d+\n  health: \S+ answers$/m);

    home.kill('SIGTERM');
    await new Promise((r) => home.once('exit', r));
    const down = run('status', '--json');
    assert.equal(down.status, 3);
    const d = (JSON.parse(down.stdout) as { home: HomeStatus }).home;
    assert.equal(d.state, 'stopped');
    assert.deepEqual(d.ping, { url: `https://127.0.0.1:${port}/v1/ping`, answers: false, error: 'ECONNREFUSED' });
    assert.match(run('status').stdout, /^Hark home: not running\n  listen: every address, port \d+\n  health: \S+ does not answer \(ECONNREFUSED\)$/m);

    // A port that accepts and never speaks TLS (a hung home, or not home at all): state unknown.
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    const hungPort = (hung.address() as AddressInfo).port;
    writeFileSync(join(own, 'etc/hark/home.env'), `HARK_HOME_PORT=${hungPort}\nHARK_HOME_LISTEN=127.0.0.1\n`);
    const stuck = await new Promise<{ status: number | null; stdout: string }>((resolve) => {
      const c = spawn('bash', [SCRIPT, 'status', '--json'], { env: { ...env, HARK_ROOT: own, HARK_HOME_PING_TIMEOUT_MS: '500' } });
      let so = '';
      c.stdout.setEncoding('utf8').on('data', (x: string) => { so += x; });
      c.on('close', (status) => resolve({ status, stdout: so }));
    });
    assert.equal(stuck.status, 3);
    const u = (JSON.parse(stuck.stdout) as { home: HomeStatus }).home;
    assert.equal(u.state, 'unknown');
    assert.deepEqual(u.ping, { url: `https://127.0.0.1:${hungPort}/v1/ping`, answers: false, error: 'ETIMEDOUT' });
  } finally {
    if (home.exitCode === null && home.signalCode === null) home.kill('SIGKILL');
    hung.close();
    rmSync(own, { recursive: true, force: true });
  }
});

/**
 * The live sensor for real: a veth pair stands in for the mirror port. tcpreplay sends the
 * school-search capture into one end, `hark run` listens on the other, and after SIGINT every
 * capture is in the SQLite store and the EVE file (both mode 0600). Needs root (CI runs as root)
 * and iproute2 + tcpreplay (installed by appliance/dev-setup.sh). Removes its interfaces.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { fixture } from '../helpers/replay.js';
import { status } from '../helpers/system.js';

const HARK = fileURLToPath(new URL('../../../bin/hark', import.meta.url));

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

const SCHOOL_SEARCH_ROWS = [
  { phrase: 'AK47', source: 'typed' },
  { phrase: 'AK47', source: 'viewed' },
  { phrase: 'our secret', source: 'typed' },
  { phrase: 'our secret', source: 'viewed' },
];

/**
 * A veth pair as the mirror port: `hark run` (with `extra` options) on one end, the school-search
 * capture replayed into the other, then `signal`. Resolves with the sensor's stderr and the stored
 * (phrase, source) rows; removes the pair and, after `check`, the data directory.
 */
async function replayIntoRun(tag: string, extra: string[], signal: NodeJS.Signals, check: (r: { dir: string; err: string; out: string; rows: Array<{ phrase: string; source: string }> }) => void): Promise<void> {
  assert.equal(process.getuid?.(), 0, 'the live capture test needs root (CI runs as root)');
  const dir = mkdtempSync(join(tmpdir(), 'hark-run-'));
  const send = `hk${tag}${process.pid % 10000}a`;
  const recv = `hk${tag}${process.pid % 10000}b`;
  ip('link', 'add', send, 'type', 'veth', 'peer', 'name', recv);
  try {
    ip('link', 'set', send, 'up');
    ip('link', 'set', recv, 'up');
    const child = spawn(HARK, ['run', '-i', recv, '--data-dir', dir, '--stats-interval', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    let out = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => (out += d));
    const exited = once(child, 'close');
    for (let i = 0; i < 200 && !err.includes('listening on'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(err, new RegExp(`listening on ${recv}`));
    execFileSync('tcpreplay', ['-i', send, fixture('school-search', 'school-search.pcap')], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 1500));
    child.kill(signal);
    const [code] = await exited;
    assert.equal(code, 0, err);
    const Sqlite = createRequire(import.meta.url)('better-sqlite3') as new (f: string, o?: object) => { prepare(s: string): { all(): Array<{ phrase: string; source: string }> }; close(): void };
    const conn = new Sqlite(join(dir, 'captures.db'), { readonly: true });
    const rows = conn.prepare('SELECT phrase, source FROM captures ORDER BY phrase, source').all();
    conn.close();
    check({ dir, err, out, rows });
  } finally {
    try {
      ip('link', 'del', send);
    } catch {
      // already gone with its peer
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

test('hark run captures from a mirror port (veth) and stores every capture on SIGINT', () =>
  replayIntoRun('t', [], 'SIGINT', ({ dir, err, rows }) => {
    assert.match(err, /stopped \(signal\); 4 captures stored/);
    assert.equal(statSync(join(dir, 'captures.db')).mode & 0o077, 0, 'captures.db is private');
    assert.equal(statSync(join(dir, 'eve.json')).mode & 0o077, 0, 'eve.json is private');
    assert.equal(statSync(dir).mode & 0o077, 0, 'the data directory is private');
    assert.deepEqual(rows, SCHOOL_SEARCH_ROWS);
    const eve = readFileSync(join(dir, 'eve.json'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(eve.length, 4);
    assert.ok(eve.every((e) => e.event_type === 'capture'));
  }));

/** Captures as `hark scan` writes them for the school-search capture, without what depends on when the packets were seen. */
function scanLines(): Array<Record<string, unknown>> {
  const r = spawnSync(HARK, ['scan', '--quiet', '--no-progress', fixture('school-search', 'school-search.pcap')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return timeless(r.stdout);
}

function timeless(jsonLines: string): Array<Record<string, unknown>> {
  return jsonLines.trim().split('\n').map((l) => {
    const { id, timestamp, ts_us, flow_id, ...rest } = JSON.parse(l) as Record<string, unknown>;
    assert.ok(typeof id === 'string' && typeof timestamp === 'string' && typeof ts_us === 'number' && typeof flow_id === 'number');
    return rest;
  }).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

test('hark run --out FILE writes the captures as hark scan writes them for the same traffic, mode 0600', async () => {
  const outDir = mkdtempSync(join(tmpdir(), 'hark-run-out-'));
  const outFile = join(outDir, 'captures.jsonl');
  try {
    await replayIntoRun('o', ['--out', outFile, '--workers', '1', '--warm-up', '200'], 'SIGTERM', ({ out, rows }) => {
      assert.deepEqual(rows, SCHOOL_SEARCH_ROWS);
      assert.equal(out, '', 'nothing on standard output');
      assert.equal(statSync(outFile).mode & 0o777, 0o600);
      assert.deepEqual(timeless(readFileSync(outFile, 'utf8')), scanLines());
    });
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});

test('hark run --out - writes them to standard output', () =>
  replayIntoRun('s', ['--out', '-', '--workers', '0', '--warm-up', '200'], 'SIGINT', ({ dir, out }) => {
    assert.deepEqual(timeless(out), scanLines());
    assert.deepEqual(timeless(out), timeless(readFileSync(join(dir, 'eve.json'), 'utf8')), 'the same lines as eve.json');
  }));

test('hark run names a missing interface and what exists', () => {
  const r = (() => {
    try {
      execFileSync(HARK, ['run', '-i', 'nosuchif0', '--data-dir', join(tmpdir(), `hark-run-missing-${process.pid}`)], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
      return { code: 0, err: '' };
    } catch (e) {
      const x = e as { status: number; stderr: string };
      return { code: x.status, err: x.stderr };
    }
  })();
  assert.equal(r.code, 2);
  assert.match(r.err, /Cannot open capture interface "nosuchif0": no such interface \(available: .*lo/);
  rmSync(join(tmpdir(), `hark-run-missing-${process.pid}`), { recursive: true, force: true });
});

test('hark run refuses a damaged compiled dictionary before it opens any interface, on one thread and in workers', () => {
  // The dictionary is loaded before capture starts: were it accepted, the sensor would open lo and
  // run until the timeout kills it (status null: the test fails). A missing interface is refused
  // before the dictionary is read, so the interface must exist here.
  const dir = mkdtempSync(join(tmpdir(), 'hark-run-dict-'));
  try {
    const junk = join(dir, 'junk.hdict');
    writeFileSync(junk, '8 bytes!');
    for (const workers of ['0', '1']) {
      const r = spawnSync(HARK, ['run', '--mode', 'standalone', '-i', 'lo', '--data-dir', join(dir, `data-${workers}`), '--dictionary', junk, '--workers', workers, '--warm-up', '0', '--no-api'], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 2, `--workers ${workers}: ${r.stderr}`);
      assert.equal(r.stderr, `hark run: Cannot load compiled dictionary "${junk}": 8 bytes is too short\n`, `--workers ${workers}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** `hark run ARGS` on lo must stop at its options: exit 2, `message` on stderr, no stack trace, nothing left behind. */
function assertRunRefuses(args: readonly string[], message: RegExp): void {
  const dir = join(tmpdir(), `hark-run-refused-${process.pid}`);
  try {
    execFileSync(HARK, ['run', '-i', 'lo', '--data-dir', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    assert.fail(`accepted ${args.join(' ')}`);
  } catch (e) {
    const x = e as { status: number; stderr: string };
    assert.equal(x.status, 2, x.stderr);
    assert.match(x.stderr, message);
    assert.doesNotMatch(x.stderr, /\n\s+at /, 'no stack trace');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('hark run refuses a ring size it cannot have, naming the range', () => {
  for (const [args, message] of [
    [['--ring-mb', '1'], /--ring-mb must be a whole number of MiB from 2 to 1024, not "1"/],
    [['--ring-mb', '2048'], /from 2 to 1024, not "2048"/],
    [['--ring-mb', '8.5'], /not "8\.5"/],
    [['--ring-mb', '8', '--capture', 'pcap'], /--ring-mb sizes the ring capture: it does not apply with --capture pcap/],
  ] as const) assertRunRefuses(args, message);
});

test('hark run refuses an --out it cannot write, naming the file', () => {
  assertRunRefuses(['--out', ''], /--out needs a file name \(- for standard output\)/);
  assertRunRefuses(['--out', '/nonexistent-hark-dir/captures.jsonl', '--warm-up', '0', '--no-api'], /Cannot open event file "\/nonexistent-hark-dir\/captures\.jsonl": no directory "\/nonexistent-hark-dir"/);
});

test('hark run refuses a warm-up it cannot have, naming the range', () => {
  for (const value of ['1.5', 'soon', '60001']) {
    assertRunRefuses(['--warm-up', value], new RegExp(`--warm-up must be a whole number from 0 to 60000, not "${value.replace('.', '\\.')}"`));
  }
});

test('hark run refuses durations beyond what a timer can wait and a metrics address it would not serve', () => {
  for (const [args, message] of [
    // 3,000,000 s overflows Node's 32-bit timers, which would then fire every millisecond
    [['--stats-interval', '3000000'], /--stats-interval must be a number from 0 to 2147483, not "3000000"/],
    [['--status-interval', '0.01'], /--status-interval must be a number from 0\.1 to 2147483, not "0\.01"/],
    [['--watchdog-minutes', '40000'], /--watchdog-minutes must be a number from 0\.01 to 35791, not "40000"/],
    [['--heartbeat-interval', 'soon'], /--heartbeat-interval must be a number from 0\.1 to 2147483, not "soon"/],
    [['--metrics-listen', '0.0.0.0:9469'], /Metrics address "0\.0\.0\.0:9469" is not a loopback address: \/metrics has no authentication, so it listens only on/],
    [['--metrics-listen', 'nonsense'], /Metrics address "nonsense" is not HOST:PORT/],
  ] as const) assertRunRefuses(args, message);
});

test('hark run refuses a dedup window or body limit as hark scan does, with its messages', () => {
  for (const [args, message] of [
    [['--dedup-window', 'soon'], /--dedup-window must be a number of seconds from 0 to 86400, not "soon"/],
    [['--dedup-window=-1'], /--dedup-window must be a number of seconds from 0 to 86400, not "-1"/],
    [['--dedup-window', ''], /--dedup-window must be a number of seconds from 0 to 86400, not ""/],
    [['--dedup-window', '86401'], /--dedup-window must be a number of seconds from 0 to 86400, not "86401"/],
    [['--body-limit', '0'], /--body-limit must be a whole number of bytes from 1 to 67108864, not "0"/],
    [['--body-limit', '67108865'], /--body-limit must be a whole number of bytes from 1 to 67108864, not "67108865"/],
  ] as const) assertRunRefuses(args, message);
});

// The wiki's answers put the phrases past their first 80 decoded bytes (`hark scan --body-limit 80`
// finds one of the two, 90 both): with 16 only the typed searches are left.
const TYPED_ROWS = SCHOOL_SEARCH_ROWS.filter((r) => r.source === 'typed');

for (const workers of ['0', '1']) {
  test(`hark run --body-limit reaches the packet path with --workers ${workers}: the viewed captures past it are gone, the typed ones stay`, () =>
    replayIntoRun(`sb${workers}`, ['--workers', workers, '--body-limit', '16', '--no-api', '--warm-up', '0'], 'SIGTERM', ({ err, rows }) => {
      assert.match(err, /stopped \(signal\); 2 captures stored/);
      assert.deepEqual(rows, TYPED_ROWS);
    }));
}

test('hark run --workers 0 warms its one packet thread up too, and stores the same captures', () =>
  replayIntoRun('w0', ['--workers', '0', '--no-api', '--warm-up', '200'], 'SIGTERM', ({ err, rows }) => {
    assert.match(err, /hark: warmed up: 1 thread, \d+ rounds, [0-9.]+ MB of frames in [0-9,]+ ms\n[^]*hark: listening on/);
    assert.deepEqual(rows, SCHOOL_SEARCH_ROWS);
  }));

test('hark run --workers 2 spreads the packet work over worker threads and stores the same captures', () =>
  replayIntoRun('w', ['--workers', '2', '--no-api'], 'SIGTERM', ({ err, rows }) => {
    assert.match(err, /2 worker threads/);
    // each worker ran synthetic traffic before the interface opened (--warm-up, default 1000 ms)
    assert.match(err, /hark: warmed up: 2 threads, \d+ rounds, [0-9.]+ MB of frames in [0-9,]+ ms\n[^]*hark: listening on/);
    assert.match(err, /stopped \(signal\); 4 captures stored/);
    assert.deepEqual(rows, SCHOOL_SEARCH_ROWS);
  }));

test('hark run --workers 2: the capture thread\'s young generation starts small, each worker\'s at its full size', async () => {
  // bin/hark leaves the young generation's start to V8 (1 MiB, growing only with what survives); the
  // pool starts each worker's at its full 64 MiB semi-space. Read from the status file's memory part
  // as soon as every thread has reported, before any packet: an idle capture thread stays below it.
  const FULL = 64 << 20;
  assert.equal(process.getuid?.(), 0, 'the live capture test needs root (CI runs as root)');
  const dir = mkdtempSync(join(tmpdir(), 'hark-run-young-'));
  const child = spawn(HARK, ['run', '-i', 'lo', '--data-dir', dir, '--workers', '2', '--no-api', '--warm-up', '0', '--status-interval', '0.2', '--stats-interval', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = once(child, 'exit');
  type Memory = { capture: { young_generation_size_bytes?: number }; workers: Array<{ young_generation_size_bytes?: number }> };
  const memory = (): Memory | undefined => (status(dir) as { memory?: Memory } | undefined)?.memory;
  const reported = (m: Memory | undefined): m is Memory => m?.capture.young_generation_size_bytes !== undefined && m.workers.length === 2 && m.workers.every((w) => w.young_generation_size_bytes !== undefined);
  try {
    let m = memory();
    for (let i = 0; i < 300 && !reported(m) && child.exitCode === null; i++) {
      await new Promise((r) => setTimeout(r, 100));
      m = memory();
    }
    assert.ok(reported(m), `the status file reports every thread's young generation: ${JSON.stringify(m)}\n${err}`);
    assert.ok(m.capture.young_generation_size_bytes! < FULL, `capture thread's young generation ${m.capture.young_generation_size_bytes} bytes, a worker's ${FULL}`);
    m.workers.forEach((w, k) => assert.ok(w.young_generation_size_bytes! >= FULL, `worker ${k}'s young generation ${w.young_generation_size_bytes} bytes`));
  } finally {
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
});

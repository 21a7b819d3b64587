/**
 * `hark status` with real processes: a child that writes a status file and keeps running (0), the
 * same child killed (1), stopped cleanly (3), a stale file (1), no file (3), an unreadable or
 * foreign file (4). The command's run() is executed in a child node so exit codes are real.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { formatMemoryLine, formatStatus, judgeStatusFile, statusCommand, STATUS_STALE_INTERVALS } from '../../sensor/health/status-command.js';
import type { StatusFileContent } from '../../sensor/health/status-file.js';

const MIB = 1024 * 1024;
const CHILD = fileURLToPath(new URL('./status-child.js', import.meta.url));
const COMMAND = new URL('../../sensor/health/status-command.js', import.meta.url).href;
const root = mkdtempSync(join(tmpdir(), 'hark-status-cmd-'));
after(() => rmSync(root, { recursive: true, force: true }));

let dirs = 0;
function dataDir(): string {
  const d = join(root, `d${dirs++}`);
  mkdirSync(d);
  return d;
}

/** Runs `hark status ARGS` through the command's run() in its own process. */
function status(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const script = `import { statusCommand } from ${JSON.stringify(COMMAND)}; process.exitCode = await statusCommand.run(process.argv.slice(1));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, '--', ...args], { encoding: 'utf8', env });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Starts the stand-in sensor; resolves once it has written its first status file. */
async function startSensor(dir: string): Promise<{ child: ChildProcess; exited: Promise<void> }> {
  const child = spawn(process.execPath, [CHILD, 'run', join(dir, 'status.json'), '60000'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve(); });
    child.on('exit', (code) => reject(new Error(`status child exited early with ${code}`)));
  });
  return { child, exited };
}

function content(over: Partial<StatusFileContent>): StatusFileContent {
  const now = new Date().toISOString();
  return {
    pid: process.pid, version: '1.0.0', started_at: now, updated_at: now,
    interfaces: [{ name: 'eth1', packets: 1234, bytes: 2_500_000, kernel_drops: 2, interface_drops: 5, handoff_drops: 8, last_packet_at: now, pps: 50, bps: 8_100_000 }],
    counters: {}, flows_active: 31, captures: 4, anomalies: { 'a.b': 2, 'c.d': 3 },
    handoff_backlog: { bytes: 16_000_000, capacity: 64_000_000 },
    threads: {
      process: { cpu_seconds: 90, cpu_pct: 181.4 }, capture: { cpu_seconds: 12, cpu_pct: 26.2 },
      workers: [{ cpu_seconds: 33, cpu_pct: 66, tid: 101 }, { cpu_seconds: 32, cpu_pct: 64.6, tid: 102 }], other: { cpu_seconds: 13, cpu_pct: 24.6 },
    },
    memory: {
      rss_bytes: 1210 * MIB, peak_rss_bytes: 1388 * MIB,
      capture: { heap_used_bytes: 40 * MIB, heap_committed_bytes: 152 * MIB, young_generation_bytes: 128 * MIB, external_bytes: 4 * MIB },
      workers: [{ heap_used_bytes: 60 * MIB, heap_committed_bytes: 161 * MIB, young_generation_bytes: 128 * MIB, external_bytes: 3 * MIB }, { heap_used_bytes: 58 * MIB, heap_committed_bytes: 158 * MIB, young_generation_bytes: 128 * MIB, external_bytes: 2 * MIB }],
      shared: { capture_rings: 64 * MIB, handoff_rings: 64 * MIB, bypass_tables: 7 * MIB },
      other_bytes: 585 * MIB,
    },
    upload: { queue: 6, home: 'https://home.example' }, config: { source: 'home', version: '12', age_s: 3600 },
    health: [{ event_type: 'health', timestamp: now, name: 'capture.no_packets', severity: 'warning', state: 'raised', message: 'No packets on interface "eth2" for 5 minutes' }],
    stopped: false, interval_ms: 5000, ...over,
  };
}

describe('statusCommand', () => {
  test('statusCommand exits 0 for a running sensor, 1 once it is killed', async () => {
    const dir = dataDir();
    const { child, exited } = await startSensor(dir);
    try {
      const r = status(['--data-dir', dir]);
      assert.equal(r.code, 0, r.out + r.err);
      assert.match(r.out, /^hark: running \(pid \d+\)/);
      assert.ok(r.out.includes(`pid ${child.pid}`));
      assert.match(r.out, /interface eth1: \d+ packets/);
      const j = status(['--data-dir', dir, '--json']);
      assert.equal(j.code, 0);
      const parsed = JSON.parse(j.out) as { state: string; status: { pid: number } };
      assert.equal(parsed.state, 'running');
      assert.equal(parsed.status.pid, child.pid);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    const r = status(['--data-dir', dir]);
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.out, /^hark: dead \(pid \d+ is gone/);
  });

  test('statusCommand exits 3 after the sensor stopped cleanly', async () => {
    const dir = dataDir();
    const { child, exited } = await startSensor(dir);
    child.kill('SIGTERM');
    await exited;
    assert.equal(child.exitCode, 0);
    const r = status(['--data-dir', dir]);
    assert.equal(r.code, 3, r.out + r.err);
    assert.match(r.out, /^hark: not running \(stopped at /);
  });

  test('statusCommand exits 3 when there is no status file, reading $HARK_DATA_DIR by default', () => {
    const dir = dataDir();
    const r = status([], { ...process.env, HARK_DATA_DIR: dir });
    assert.equal(r.code, 3);
    assert.ok(r.out.includes(join(dir, 'status.json')), r.out);
    assert.match(r.out, /not running/);
  });

  test('statusCommand exits 1 for a stale file whose pid still exists (a hung sensor)', () => {
    const dir = dataDir();
    const old = new Date(Date.now() - (STATUS_STALE_INTERVALS + 1) * 5000).toISOString();
    // The pid is this test process: alive, but the file was not rewritten for 4 intervals.
    writeFileSync(join(dir, 'status.json'), JSON.stringify(content({ updated_at: old })));
    const r = status(['--data-dir', dir]);
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.out, /last updated 2\d seconds ago \(expected every 5 seconds\).*hung/);
    writeFileSync(join(dir, 'status.json'), JSON.stringify(content({})));
    assert.equal(status(['--data-dir', dir]).code, 0, 'the same file, fresh, is running');
  });

  test('statusCommand exits 4 for an unreadable or foreign status file', () => {
    const garbage = dataDir();
    writeFileSync(join(garbage, 'status.json'), '{"pid": 12, "upd');
    let r = status(['--data-dir', garbage]);
    assert.equal(r.code, 4);
    assert.match(r.err, /status unknown .*not a Hark status file/);
    const foreign = dataDir();
    writeFileSync(join(foreign, 'status.json'), JSON.stringify({ hello: 'world' }));
    assert.equal(status(['--data-dir', foreign]).code, 4);
    const array = dataDir();
    writeFileSync(join(array, 'status.json'), '[1,2]');
    assert.equal(status(['--data-dir', array]).code, 4);
    const isDir = dataDir();
    mkdirSync(join(isDir, 'status.json'));
    r = status(['--data-dir', isDir, '--json']);
    assert.equal(r.code, 4);
    assert.equal((JSON.parse(r.out) as { state: string }).state, 'unknown');
  });

  test('statusCommand --help documents the exit codes; a bad option is a usage error', () => {
    const r = status(['--help']);
    assert.equal(r.code, 0);
    for (const s of ['--data-dir DIR', '--json', '0  running', '1  dead', '3  not running', '4  unknown']) assert.ok(r.out.includes(s), s);
    assert.equal(statusCommand.name, 'status');
    assert.throws(() => statusCommand.run(['--frob']), /--frob/);
  });
});

describe('judgeStatusFile and formatStatus', () => {
  test('formatStatus summarises interfaces, drops, flows, captures, duplicates, gaps, memcap hits, upload, config and health', () => {
    const dir = dataDir();
    const path = join(dir, 'status.json');
    const now = Date.now();
    const counters = { 'decoder.duplicates': 11, 'tcp.reassembly_gap': 3, 'tcp.reassembly_gap_bytes': 12_345, 'flow.memcap_evicted': 2, 'tcp.reassembly_memcap': 1, 'defrag.memcap_evicted': 4 };
    writeFileSync(path, JSON.stringify(content({ started_at: new Date(now - 3 * 3600_000).toISOString(), counters })));
    const v = judgeStatusFile(path, now);
    assert.equal(v.state, 'running');
    const text = formatStatus(v, now);
    assert.match(text, /version 1\.0\.0, pid \d+, started .*, up 3 hours/);
    assert.match(text, /interface eth1: 1234 packets \(2\.5 MB\), kernel drops 2, interface drops 5, worker hand-off drops 8, 50 pps, 8\.1 Mbit\/s, last packet 0 seconds ago/);
    assert.match(text, /worker hand-off backlog 16\.0 MB of 64\.0 MB \(25%\)/);
    assert.match(text, /CPU \(% of one core\): capture thread 26%, workers 66% 65%, other threads 25%; process 181%/);
    assert.ok(text.includes('  memory (MiB): RSS 1210, peak 1388; heap committed: capture 152, workers 161 158 (young generation 384 of it); external 9.0; shared 135; other 585\n'), text);
    assert.match(text, /flows active 31; captures 4; anomalies 5/);
    assert.ok(text.includes('  mirror-port duplicates dropped 11; reassembly gaps 3 (12.3 KB lost); memcap hits: flows evicted 2, reassembly 1, fragments 4\n'), text);
    assert.match(text, /upload queue 6 to https:\/\/home\.example/);
    assert.match(text, /config from home \(version 12\), fetched 1 hour ago/);
    assert.match(text, /health WARNING capture\.no_packets: No packets on interface "eth2"/);
  });

  test('formatStatus shows the inspection settings in force and where each came from; none from an older sensor', () => {
    const dir = dataDir();
    const path = join(dir, 'status.json');
    const inspection = { dedup_window_s: 0, dedup_window_from: 'home', body_limit_bytes: 8388608, body_limit_from: 'default' };
    writeFileSync(path, JSON.stringify(content({ config: { source: 'home', version: '12', age_s: 5, inspection } })));
    assert.ok(formatStatus(judgeStatusFile(path)).includes('  inspection: merge window 0 s (home), body limit 8388608 bytes (default)\n'));
    writeFileSync(path, JSON.stringify(content({ config: { source: 'home', version: '12', age_s: 5 } })));
    assert.doesNotMatch(formatStatus(judgeStatusFile(path)), /inspection/);
  });

  test('formatStatus prints what it can of a file with odd fields, without throwing', () => {
    const dir = dataDir();
    const path = join(dir, 'status.json');
    writeFileSync(path, JSON.stringify({ pid: process.pid, updated_at: new Date().toISOString(), interval_ms: 5000, stopped: false, interfaces: [null, 5, { name: 7 }], upload: 'x', health: 'y' }));
    const v = judgeStatusFile(path);
    assert.equal(v.state, 'running');
    const text = formatStatus(v);
    assert.match(text, /interface \?: 0 packets/);
    assert.match(text, /health: no active problems/);
    assert.doesNotMatch(text, /memory/, 'no memory section: no memory line');
    assert.ok(text.includes('  mirror-port duplicates dropped 0; reassembly gaps 0 (0 B lost); memcap hits: flows evicted 0, reassembly 0, fragments 0\n'), 'no counters: each at 0');
  });

  test('formatMemoryLine prints what a partial memory section has, "?" for the rest', () => {
    assert.equal(formatMemoryLine(undefined), undefined);
    assert.equal(formatMemoryLine({ capture: { heap_committed_bytes: 5.5 * MIB }, workers: [{}], shared: {} }),
      'memory (MiB): RSS ?, peak ?; heap committed: capture 5.5, workers 0.0 (young generation 0.0 of it); external 0.0; shared 0.0; other ?');
    assert.equal(formatMemoryLine({ rss_bytes: 300 * MIB, workers: 'x' }),
      'memory (MiB): RSS 300, peak ?; heap committed: capture ? (young generation 0.0 of it); external 0.0; shared 0.0; other ?');
  });
});

/**
 * Issue 8's proof with real parts only: `hark home` child processes (one CA; a second home made
 * from the first's data directory for fail-over), sensors enrolled with `hark enrol` (by code and
 * by an operator's account), and live sensors (`hark run`) on a veth pair fed by tcpreplay.
 * Checked: a wrong site key is refused and logged; a sensor whose home is down starts from its
 * last-known-good copy and says so in status; a dictionary change at home reaches a running sensor
 * without a restart and the next capture uses it; a killed primary home -> the secondary, and back
 * after the hold-down; inspection settings set at home (merge window, body limit) shape what the
 * sensor captures, a command-line option wins over them, and a change waits for a restart and says
 * so. Bundle tampering and foreign / expired / revoked certificates are refused in
 * test/home-client/config.test.ts and test/home/sensor-api.test.ts against real TLS servers.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { conversationPath, httpTrafficPcap } from '../helpers/http-traffic.js';
import {
  enrolByCredentials, freePort, hark, makeVeth, Operator, removeVeth, replay, startHomeProcess, status, waitFor, type HomeProcess, type Proc,
} from '../helpers/system.js';

const require = createRequire(import.meta.url);
type Db = { prepare(sql: string): { all(...p: unknown[]): any[] }; close(): void };
const Sqlite = require('better-sqlite3') as new (file: string, opts?: object) => Db;

const PASSWORD = 'home system test password';

function homeCaptures(home: HomeProcess): Array<{ phrase: string; url: string; sensor_id: number }> {
  const db = new Sqlite(join(home.dataDir, 'home.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT phrase, url, sensor_id FROM captures').all();
  } finally {
    db.close();
  }
}

/** The captures in a sensor's own store whose URL is conversation `i`'s (read-only: the sensor may still run). */
function sensorCaptures(dir: string, i: number): Array<{ id: string; phrase: string; source: string }> {
  const db = new Sqlite(join(dir, 'captures.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT id, phrase, source FROM captures WHERE url LIKE ? ORDER BY source, id').all(`%${conversationPath(i)}`);
  } finally {
    db.close();
  }
}

function sensorArgs(dir: string, extra: string[] = []): string[] {
  return ['run', '--data-dir', dir, '--heartbeat-interval', '1', '--status-interval', '0.5', '--stats-interval', '0', '--no-api', ...extra];
}

async function listening(p: Proc): Promise<void> {
  await waitFor('the sensor to listen', 60_000, () => {
    if (!p.alive) throw new Error(`hark run exited: ${p.err}`);
    return p.err.includes('listening on');
  });
}

describe('home and phone-home, end to end', { timeout: 300_000 }, () => {
  let root: string;
  let home: HomeProcess;
  let op: Operator;
  let veth: { send: string; recv: string };
  const running: Proc[] = [];

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'the live test needs root (CI runs as root)');
    root = mkdtempSync(join(tmpdir(), 'hark-home-sys-'));
    veth = makeVeth('h');
    home = await startHomeProcess(join(root, 'home'), await freePort());
    op = await Operator.firstAdmin(home, PASSWORD);
  });

  after(async () => {
    for (const p of running) await p.stop('SIGKILL');
    await op?.close();
    await home?.proc.stop('SIGKILL');
    if (veth !== undefined) removeVeth(veth);
    rmSync(root, { recursive: true, force: true });
  });

  test('enrolment by code: the sensor shows a code, an operator approves it at home', async () => {
    const def = await op.ok('POST', '/v1/sensors', { name: 'by-code', site: 'Hilltop', interfaces: [veth.recv], dictionary: 'starter' });
    const dir = join(root, 's-code');
    const p = hark(['enrol', '--home', home.url, '--ca-fingerprint', home.fingerprint, '--code', '--data-dir', dir]);
    running.push(p);
    await waitFor('the enrolment code', 30_000, () => /[A-Z2-9]{4}-[A-Z2-9]{4}/.test(p.out));
    const code = /([A-Z2-9]{4}-[A-Z2-9]{4})/.exec(p.out)![1];
    await op.ok('POST', `/v1/enrolments/${code}/approve`, { sensor_id: def.id });
    assert.equal(await p.exited, 0, p.err + p.out);
    const st = hark(['enrol', '--status', '--data-dir', dir]);
    assert.equal(await st.exited, 0);
    assert.match(st.out, new RegExp(`sensor id\\s*:?\\s*${def.id}`, 'i'));
    assert.match(readFileSync(join(home.dataDir, 'home.log'), 'utf8'), /enrol/);
  });

  test('enrolment by credentials: a wrong site key is refused and logged with the peer; the right one enrols', async () => {
    await op.ok('POST', '/v1/site-keys', { key: 'hilltop-site-key', label: 'Hilltop' });
    const def = await op.ok('POST', '/v1/sensors', { name: 'by-account', site: 'Hilltop', interfaces: [veth.recv], dictionary: 'starter' });
    const dir = join(root, 's-account');
    const bad = await enrolByCredentials([home.url], home.fingerprint, dir, def.id, PASSWORD, ['--site-key', 'not-the-key']);
    assert.equal(await bad.exited, 1);
    assert.match(bad.err + bad.out, /site key/i);
    const log = readFileSync(join(home.dataDir, 'home.log'), 'utf8');
    assert.match(log, /site.?key.*peer=127\.0\.0\.1|peer=127\.0\.0\.1.*site.?key/i);
    const good = await enrolByCredentials([home.url], home.fingerprint, dir, def.id, PASSWORD, ['--site-key', 'hilltop-site-key']);
    assert.equal(await good.exited, 0, good.err + good.out);
    // later enrolments in this file use no site key
    const keys = await op.ok('GET', '/v1/site-keys');
    for (const k of (keys.site_keys ?? keys.keys ?? keys) as Array<{ id: number }>) await op.ok('DELETE', `/v1/site-keys/${k.id}`);
  });

  test('home down at start: the sensor runs its last-known-good configuration, says so, and takes home\'s again when it answers', async () => {
    const def = await op.ok('POST', '/v1/sensors', { name: 'lkg', site: 'Hilltop', interfaces: [veth.recv], dictionary: 'starter' });
    const dir = join(root, 's-lkg');
    assert.equal(await (await enrolByCredentials([home.url], home.fingerprint, dir, def.id, PASSWORD)).exited, 0);
    const first = hark(sensorArgs(dir));
    running.push(first);
    await listening(first);
    assert.match(first.err, /configuration from home, version/);
    assert.equal(await first.stop('SIGTERM'), 0);

    await home.proc.stop('SIGTERM');
    const second = hark(sensorArgs(dir));
    running.push(second);
    await listening(second);
    assert.match(second.err, /last-known-good/);
    await waitFor('status to report last-known-good', 10_000, () => status(dir)?.config?.source === 'last-known-good');
    const st = status(dir);
    assert.ok(st.health.some((h: { name: string }) => h.name === 'config.last_known_good'), JSON.stringify(st.health));
    assert.ok(st.config.age_s >= 0);

    home = await startHomeProcess(home.dataDir, home.port);
    await waitFor('the sensor to take home\'s configuration again', 30_000, () => status(dir)?.config?.source === 'home');
    assert.equal(await second.stop('SIGTERM'), 0);
  });

  test('a dictionary change at home reaches a running sensor without a restart; the next capture uses it', async () => {
    const def = await op.ok('POST', '/v1/sensors', { name: 'live-dict', site: 'Hilltop', interfaces: [veth.recv], dictionary: 'starter' });
    const dir = join(root, 's-dict');
    assert.equal(await (await enrolByCredentials([home.url], home.fingerprint, dir, def.id, PASSWORD)).exited, 0);
    const sensor = hark(sensorArgs(dir));
    running.push(sensor);
    await listening(sensor);
    const pid = sensor.child.pid;

    await op.ok('PUT', '/v1/dictionaries/hilltop', { format: 'csv', text: 'phrase,category,severity,embedded\npurple elephant,bullying,5,false\n' });
    await op.ok('PATCH', `/v1/sensors/${def.id}`, { dictionary: 'hilltop' });
    await waitFor('the sensor to reload', 30_000, () => /reloaded \(home has configuration version/.test(sensor.err));
    assert.ok(sensor.alive);
    assert.equal(sensor.child.pid, pid, 'no restart');

    const pcap = join(root, 'elephant.pcap');
    writeFileSync(pcap, httpTrafficPcap({ conversations: 3, offset: 5000, phrase: 'purple elephant' }));
    replay(veth.send, pcap, 1000);
    await waitFor('the new phrase at home', 30_000, () => homeCaptures(home).some((c) => c.phrase === 'purple elephant' && c.sensor_id === def.id));
    const mine = homeCaptures(home).filter((c) => c.sensor_id === def.id);
    assert.equal(mine.filter((c) => c.phrase === 'purple elephant').length, 3);
    assert.equal(await sensor.stop('SIGTERM'), 0);
  });

  test('inspection settings from home reach the pipeline; a command-line option wins; a change waits for a restart and says so', async () => {
    const def = await op.ok('POST', '/v1/sensors', {
      name: 'inspection', site: 'Hilltop', interfaces: [veth.recv], dictionary: 'starter', inspection: { dedup_window_seconds: 0, body_limit_bytes: 16 },
    });
    const dir = join(root, 's-inspect');
    assert.equal(await (await enrolByCredentials([home.url], home.fingerprint, dir, def.id, PASSWORD)).exited, 0);
    // One worker: repeats by a device on a URL can only merge within one worker's collector.
    const args = ['--workers', '1', '--warm-up', '0'];
    /** One device searching twice on the same URL (conversation `i`); the answer shows the phrase past its 16th byte. */
    const searchTwice = async (sensor: Proc, i: number): Promise<Record<string, number>> => {
      const pcap = join(root, `twice-${i}.pcap`);
      writeFileSync(pcap, httpTrafficPcap({ conversations: 1, offset: i, echo: true, repeats: 2 }));
      const before = status(dir)?.counters?.['http.responses'] ?? 0;
      replay(veth.send, pcap, 1000);
      await waitFor('both answers inspected', 30_000, () => (status(dir)?.counters?.['http.responses'] ?? 0) >= before + 2);
      assert.ok(sensor.alive, sensor.err);
      return status(dir).counters;
    };

    // Home sets no merging and a 16-byte body limit: two typed captures, and no viewed one (its phrase is past the limit).
    const first = hark(sensorArgs(dir, args));
    running.push(first);
    await listening(first);
    const counters = await searchTwice(first, 7000);
    assert.ok(counters['http.body_truncated'] >= 2, `bodies cut at home's limit: ${JSON.stringify(counters)}`);
    assert.deepEqual(status(dir).config.inspection, { dedup_window_s: 0, dedup_window_from: 'home', body_limit_bytes: 16, body_limit_from: 'home' });

    // Changed at home while running: the running values stay, and the sensor says a restart applies them.
    // The capture filter is opened at start too: changed with them, it waits the same way.
    await op.ok('PATCH', `/v1/sensors/${def.id}`, { inspection: { dedup_window_seconds: 60, body_limit_bytes: 16 }, bpf: 'tcp' });
    await waitFor('the sensor to reload', 30_000, () => /reloaded \(home has configuration version/.test(first.err));
    assert.match(first.err, /Home changed settings that apply from the next start \(home's restart action, or hark\.sh restart\): capture filter "tcp" instead of none; inspection settings merge window 60 s \(home\), body limit 16 bytes \(home\) instead of merge window 0 s \(home\), body limit 16 bytes \(home\)\n/);
    await waitFor('the restart warning in status', 10_000, () => (status(dir)?.health ?? []).some((h: { name: string }) => h.name === 'config.restart_needed'));
    const warning = status(dir).health.find((h: { name: string }) => h.name === 'config.restart_needed');
    assert.equal(warning.detail?.settings, 'capture filter, inspection settings', JSON.stringify(warning));
    assert.equal(status(dir).config.inspection.dedup_window_s, 0, 'the values in force are the running ones');
    assert.equal(await first.stop('SIGTERM'), 0);
    const unmerged = sensorCaptures(dir, 7000);
    assert.deepEqual(unmerged.map((c) => `${c.phrase} ${c.source}`), ['AK47 typed', 'AK47 typed'], JSON.stringify(unmerged));
    assert.notEqual(unmerged[0].id, unmerged[1].id);

    // Restarted with --body-limit: the command line wins for it; home's new 60 s window now merges the repeats.
    const second = hark(sensorArgs(dir, [...args, '--body-limit', '100000']));
    running.push(second);
    await listening(second);
    await waitFor('status to show the settings in force', 10_000, () => status(dir)?.config?.inspection?.dedup_window_s === 60);
    assert.deepEqual(status(dir).config.inspection, { dedup_window_s: 60, dedup_window_from: 'home', body_limit_bytes: 100000, body_limit_from: 'command line' });
    assert.ok(!(status(dir).health ?? []).some((h: { name: string }) => h.name === 'config.restart_needed'), 'the restart applied them');
    await searchTwice(second, 7001);
    assert.equal(await second.stop('SIGTERM'), 0);
    assert.deepEqual(sensorCaptures(dir, 7001).map((c) => `${c.phrase} ${c.source}`), ['AK47 typed', 'AK47 viewed']);
  });

  test('fail-over: the preferred home killed -> the other; preferred back -> switch back only after the hold-down', async () => {
    const def = await op.ok('POST', '/v1/sensors', { name: 'fail-over', site: 'Hilltop', interfaces: [veth.recv], dictionary: 'starter' });
    const dir = join(root, 's-fo');
    // The secondary shares the primary's CA and sensor records: a copy of its data directory.
    const secondaryDir = join(root, 'home2');
    const secondaryPort = await freePort();
    const secondaryUrl = `https://127.0.0.1:${secondaryPort}`;
    assert.equal(await (await enrolByCredentials([home.url, secondaryUrl], home.fingerprint, dir, def.id, PASSWORD)).exited, 0);
    await home.proc.stop('SIGTERM');
    cpSync(home.dataDir, secondaryDir, { recursive: true });
    home = await startHomeProcess(home.dataDir, home.port);
    const secondary = await startHomeProcess(secondaryDir, secondaryPort);
    running.push(secondary.proc);

    const sensor = hark(sensorArgs(dir, ['--home-recheck', '0.5', '--home-hold-down', '3']));
    running.push(sensor);
    await listening(sensor);
    // The preferred home is the one that answered fastest at start (ties: list order): either.
    await waitFor('heartbeats to a home', 15_000, () => [home.url, secondaryUrl].includes(status(dir)?.upload?.home));
    const preferredIsPrimary = status(dir).upload.home === home.url;
    const preferred = preferredIsPrimary ? home : secondary;
    const other = preferredIsPrimary ? secondaryUrl : home.url;

    await preferred.proc.stop('SIGKILL');
    await waitFor('the switch to the other home', 30_000, () => status(dir)?.upload?.home === other);
    const switchedAt = Date.now();
    const back = await startHomeProcess(preferred.dataDir, preferred.port);
    running.push(back.proc);
    if (preferredIsPrimary) home = back;
    await waitFor('the switch back to the preferred home', 60_000, () => status(dir)?.upload?.home === back.url);
    const heldMs = Date.now() - switchedAt;
    assert.ok(heldMs >= 3000, `switched back after ${heldMs} ms, before the 3 s hold-down`);
    assert.match(sensor.err, new RegExp(`home ${back.url.replace(/[.]/g, '\\.')} -> ${other.replace(/[.]/g, '\\.')}`));
    assert.equal(await sensor.stop('SIGTERM'), 0);
    if (!preferredIsPrimary) await back.proc.stop('SIGTERM');
    await secondary.proc.stop('SIGTERM');
  });
});

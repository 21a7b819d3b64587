/**
 * The live sensor decrypts TLS with keys that arrive after the traffic: real TLS 1.2 and 1.3
 * traffic (made on loopback, see helpers/tls-traffic.ts) is replayed with tcpreplay onto a veth
 * pair that `hark run` listens on; only then are the keys pushed with `hark keys push` over the
 * local API. The held records are decrypted and the phrases stored as captures. Needs root.
 * Removes its interfaces.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { makeTlsTraffic, type TlsCapture, type TlsScenario } from '../helpers/tls-traffic.js';

const HARK = fileURLToPath(new URL('../../../bin/hark', import.meta.url));
const IF_SEND = `hkk${process.pid % 10000}a`;
const IF_RECV = `hkk${process.pid % 10000}b`;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

interface LiveSensor {
  readonly data: string;
  /** What the sensor printed on stderr so far. */
  stderr(): string;
  /** Stops it (SIGINT) and returns its exit code. */
  stop(): Promise<number | null>;
}

/**
 * Makes `traffic` in a fresh directory, a veth pair, and `hark run` listening on its far end with
 * `args`; runs `body`, then removes the interfaces and the directory.
 */
async function withLiveSensor(scenarios: TlsScenario[], args: string[], body: (traffic: TlsCapture, sensor: LiveSensor) => Promise<void>): Promise<void> {
  assert.equal(process.getuid?.(), 0, 'the live capture test needs root (CI runs as root)');
  const dir = mkdtempSync(join(tmpdir(), 'hark-run-tls-'));
  const traffic = await makeTlsTraffic(dir, scenarios);
  const data = join(dir, 'data');
  ip('link', 'add', IF_SEND, 'type', 'veth', 'peer', 'name', IF_RECV);
  try {
    ip('link', 'set', IF_SEND, 'up');
    ip('link', 'set', IF_RECV, 'up');
    const child = spawn(HARK, ['run', '-i', IF_RECV, '--data-dir', data, '--stats-interval', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const exited = once(child, 'exit');
    for (let i = 0; i < 100 && !err.includes('listening on'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(err, new RegExp(`listening on ${IF_RECV}`));
    await body(traffic, {
      data,
      stderr: () => err,
      stop: async () => {
        child.kill('SIGINT');
        return ((await exited) as [number | null])[0];
      },
    });
  } finally {
    try {
      ip('link', 'del', IF_SEND);
    } catch {
      // already gone with its peer
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

test('hark run holds TLS records until keys pushed over the local API arrive, then finds the phrases', async () => {
  const scenarios: TlsScenario[] = [
    { name: 'late12', version: 'TLSv1.2', protocol: 'http/1.1', encoding: 'gzip', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256', typed: 'AK47', viewed: 'our secret' },
    { name: 'late13', version: 'TLSv1.3', protocol: 'h2', encoding: 'br', typed: 'our secret', viewed: 'AK47' },
  ];
  await withLiveSensor(scenarios, ['--key-wait', '60'], async (traffic, sensor) => {
    const { data } = sensor;
    const socket = join(data, 'api.sock');
    for (let i = 0; i < 50 && !existsSock(socket); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(statSync(socket).mode & 0o077, 0, 'the API socket is private');
    assert.equal(statSync(join(data, 'api.token')).mode & 0o077, 0, 'the API token is private');

    execFileSync('tcpreplay', ['-i', IF_SEND, traffic.pcap], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 1000));
    // Without the token the API refuses.
    const wrongToken = join(data, '..', 'wrong.token');
    writeFileSync(wrongToken, `${'0'.repeat(64)}\n`, { mode: 0o600 });
    const refused = spawnSync(HARK, ['keys', 'push', '--socket', socket, '--token-file', wrongToken, traffic.keylog], { encoding: 'utf8' });
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /HTTP 401/);
    const pushed = spawnSync(HARK, ['keys', 'push', '--socket', socket, traffic.keylog], { encoding: 'utf8' });
    assert.equal(pushed.status, 0, pushed.stderr);
    assert.match(pushed.stdout, /^\d+ keys accepted, \d+ lines ignored, 0 bad/);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await sensor.stop(), 0, sensor.stderr());

    const eve = readFileSync(join(data, 'eve.json'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    for (const s of traffic.results) {
      const tls = eve.filter((e) => e.event_type === 'tls' && e.dest_port === s.port);
      assert.equal(tls.length, 1, `${s.name}: one tls event`);
      assert.equal(tls[0].tls.decrypted, true, `${s.name}: ${JSON.stringify(tls[0].tls)}`);
      assert.equal(tls[0].tls.sni, s.host);
      const caps = eve.filter((e) => e.event_type === 'capture' && (e.dest_port === s.port || e.src_port === s.port));
      assert.ok(caps.some((c) => c.phrase === s.typed && c.source === 'typed' && c.host === s.host && c.url === s.path && c.decrypted === true), `${s.name}: typed`);
      assert.ok(caps.some((c) => c.phrase === s.viewed && c.source === 'viewed' && c.host === s.host), `${s.name}: viewed`);
    }
    assert.match(sensor.stderr(), /stopped \(signal\); [1-9]\d* captures stored/);
  });
});

test('hark run without --keylog or --key-wait holds no TLS records for keys nobody gives it: decided at its handshake, bypassed', async () => {
  const scenarios: TlsScenario[] = [{ name: 'nokeys13', version: 'TLSv1.3', protocol: 'http/1.1', encoding: 'gzip', typed: 'AK47', viewed: 'our secret' }];
  await withLiveSensor(scenarios, ['--status-interval', '0.2'], async (traffic, sensor) => {
    execFileSync('tcpreplay', ['-i', IF_SEND, traffic.pcap], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 1500));
    const counters = (JSON.parse(readFileSync(join(sensor.data, 'status.json'), 'utf8')) as { counters: Record<string, number> }).counters;
    assert.equal(await sensor.stop(), 0, sensor.stderr());
    const eve = readFileSync(join(sensor.data, 'eve.json'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    const tls = eve.filter((e) => e.event_type === 'tls' && e.dest_port === traffic.results[0].port);
    assert.equal(tls.length, 1);
    assert.equal(tls[0].tls.decrypted, false);
    assert.equal(tls[0].tls.not_decrypted_reason, 'no_keys');
    assert.equal(counters['tls.pending_records'] ?? 0, 0, 'no record held for keys');
    assert.ok((counters['flow.bypassed'] ?? 0) >= 1, `bypassed: ${JSON.stringify(counters['flow.bypassed'])}`);
  });
});

function existsSock(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

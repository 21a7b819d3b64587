/**
 * End to end: real TLS traffic made on loopback by node:https and node:http2 (TLS 1.2 and 1.3,
 * HTTP/1.1 and h2, gzip and br, ECDHE with the key log, RSA key exchange with the server key),
 * captured by tcpdump, then `hark scan --keylog --rsa-key`: every phrase typed and viewed is a
 * capture with its host and URL, and every connection has a tls event saying it was decrypted.
 * Needs root (tcpdump on lo), as the live-capture tests do.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { assertCapture, assertTlsEvent } from '../../helpers/schema.js';
import { makeTlsTraffic, type TlsCapture, type TlsScenario } from '../../helpers/tls-traffic.js';

const HARK = fileURLToPath(new URL('../../../../bin/hark', import.meta.url));

const SCENARIOS: TlsScenario[] = [
  { name: 'gcm12', version: 'TLSv1.2', protocol: 'http/1.1', encoding: 'gzip', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256', typed: 'AK47', viewed: 'our secret' },
  { name: 'chacha12', version: 'TLSv1.2', protocol: 'h2', encoding: 'br', ciphers: 'ECDHE-RSA-CHACHA20-POLY1305', typed: 'cocaine', viewed: 'kill myself' },
  { name: 'cbc12', version: 'TLSv1.2', protocol: 'http/1.1', encoding: 'br', ciphers: 'ECDHE-RSA-AES256-SHA384', typed: 'suicide note', viewed: 'AK47' },
  { name: 'aes13', version: 'TLSv1.3', protocol: 'http/1.1', encoding: 'br', ciphers: 'TLS_AES_256_GCM_SHA384', typed: 'our secret', viewed: 'cocaine' },
  { name: 'h2tls13', version: 'TLSv1.3', protocol: 'h2', encoding: 'gzip', ciphers: 'TLS_CHACHA20_POLY1305_SHA256', typed: 'kill myself', viewed: 'suicide note' },
  { name: 'rsa12', version: 'TLSv1.2', protocol: 'http/1.1', encoding: 'gzip', ciphers: 'AES256-GCM-SHA384', rsaOnly: true, typed: 'AK47', viewed: 'our secret' },
];

let dir: string;
let traffic: TlsCapture;

interface Scan {
  captures: Array<Record<string, unknown>>;
  tls: Array<Record<string, unknown> & { tls: Record<string, unknown> }>;
  stderr: string;
}

function scan(...args: string[]): Scan {
  const out = join(dir, `out-${Math.random().toString(36).slice(2)}.jsonl`);
  const r = spawnSync(HARK, ['scan', traffic.pcap, '--out', out, '--no-progress', ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const events = readFileSync(out, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    captures: events.filter((e) => e.event_type === 'capture'),
    tls: events.filter((e) => e.event_type === 'tls') as Scan['tls'],
    stderr: r.stderr,
  };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hark-tls-e2e-'));
  traffic = await makeTlsTraffic(dir, SCENARIOS);
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('hark scan --keylog --rsa-key finds every phrase typed and viewed over TLS 1.2 and 1.3, HTTP/1.1 and h2', () => {
  const { captures, tls } = scan('--keylog', traffic.keylog, '--rsa-key', traffic.rsaKey);
  for (const c of captures) assertCapture(c);
  for (const e of tls) assertTlsEvent(e);
  for (const s of traffic.results) {
    assert.ok(s.body.includes(s.viewed), `${s.name}: the client received the page`);
    const mine = captures.filter((c) => c.dest_port === s.port || c.src_port === s.port);
    const typed = mine.find((c) => c.phrase === s.typed && c.source === 'typed');
    assert.ok(typed, `${s.name}: typed "${s.typed}" found (captures: ${JSON.stringify(mine.map((c) => [c.phrase, c.source, c.field]))})`);
    assert.equal(typed.field, 'search');
    assert.equal(typed.host, s.host);
    assert.equal(typed.url, s.path);
    assert.equal(typed.app_proto, s.protocol === 'h2' ? 'http2' : 'http');
    const viewed = mine.find((c) => c.phrase === s.viewed && c.source === 'viewed');
    assert.ok(viewed, `${s.name}: viewed "${s.viewed}" found`);
    assert.equal(viewed.field, 'response_body');
    assert.equal(viewed.host, s.host);
    assert.equal(viewed.url, s.path);
    assert.equal(viewed.status, 200);
    const ev = tls.filter((e) => e.dest_port === s.port);
    assert.equal(ev.length, 1, `${s.name}: one tls event`);
    const t = ev[0].tls;
    assert.equal(t.sni, s.host);
    assert.equal(t.version, s.version === 'TLSv1.2' ? 'TLS 1.2' : 'TLS 1.3');
    assert.equal(t.decrypted, true, `${s.name}: ${JSON.stringify(t)}`);
    assert.equal(t.inner_app_proto, s.protocol === 'h2' ? 'http2' : 'http');
    assert.equal(t.subject, `O=Hark test,CN=${traffic.results[0].host}`);
    assert.ok((t.decrypted_bytes as number) > 0 && (t.decrypted_bytes as number) <= (t.app_bytes as number));
    if (s.protocol === 'h2') assert.equal(t.server_alpn, 'h2');
  }
});

test('hark scan without keys names every TLS connection, decrypts none and says why', () => {
  const { captures, tls } = scan();
  assert.deepEqual(captures, []);
  assert.equal(tls.length, SCENARIOS.length);
  for (const e of tls) {
    assertTlsEvent(e);
    assert.equal(e.tls.decrypted, false);
    assert.equal(e.tls.not_decrypted_reason, 'no_keys');
    assert.match(String(e.tls.ja4), /^t1[23]d/);
  }
});

test('hark scan with only the RSA key decrypts the RSA key-exchange connection and refuses the ECDHE ones', () => {
  const { captures, tls } = scan('--rsa-key', traffic.rsaKey);
  const rsa = traffic.results.find((s) => s.rsaOnly)!;
  assert.equal(tls.length, SCENARIOS.length, 'a tls event for every connection');
  assert.equal(tls.filter((e) => e.dest_port === rsa.port).length, 1, 'one of them the RSA key-exchange connection');
  for (const e of tls) {
    if (e.dest_port === rsa.port) assert.equal(e.tls.decrypted, true);
    else {
      assert.equal(e.tls.decrypted, false);
      assert.equal(e.tls.not_decrypted_reason, 'non_rsa_key_exchange');
    }
  }
  assert.ok(captures.length >= 2);
  assert.ok(captures.every((c) => c.dest_port === rsa.port || c.src_port === rsa.port));
});

/**
 * The two matching engines (native Hyperscan and the pure-TypeScript DFA) over every capture under
 * test/fixtures: the whole sensor, as `hark scan` runs it with every key log and RSA key of the
 * fixtures and a blocklist, must write the same output lines (captures and events, in order) with
 * either engine. The recorded TCP streams (http/*.json, http2/*.json) are replayed as connections
 * too. The dictionary is the starter pack plus phrases these captures contain (whole-word and
 * embedded, one with an exclusion), so that most files give captures.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { Counters } from '../../sensor/events/counters.js';
import { DEFAULT_DICTIONARY, loadMatching, Sensor, type Matching } from '../../sensor/main.js';
import { ethTcp, TCP_FLAGS } from '../helpers/packets.js';
import { fixture } from '../helpers/replay.js';
import { scratchDir } from '../helpers/scratch.js';

const { SYN, ACK, FIN, PSH } = TCP_FLAGS;
const FIXTURES = fixture();
const dir = scratchDir('hark-engine-parity-');

/** Every file under test/fixtures whose name ends in one of `exts`, sorted. */
function fixtureFiles(...exts: string[]): string[] {
  return readdirSync(FIXTURES, { recursive: true, encoding: 'utf8' })
    .filter((f) => exts.some((e) => f.endsWith(e)))
    .map((f) => join(FIXTURES, f))
    .sort();
}

const CAPTURES = fixtureFiles('.pcap', '.pcapng');
/** Recorded TCP streams: `{"segments": [[dir, "hex"], ...]}` (see test/fixtures/http/README.md). */
const STREAMS = fixtureFiles('.json').filter((f) => readFileSync(f, 'utf8').includes('"segments"'));

/** Phrases the fixtures carry, beside the starter pack's, planted ones and a few that test whole words, embedding and exclusions. */
const EXTRA_PHRASES = [
  ...['eicar', 'john dauny mladshiy', 'brotli decompression', 'get qualified', 'curl', 'ass'].map((phrase) => ({ phrase, category: 'test', severity: 2 })),
  ...['AK47', 'our secret', 'script', 'alert', 'document', 'google', 'mozilla', 'example', 'apache', 'heise', 'httpbin', 'gzip', 'the', 'test', 'hello',
    'welcome', 'index', 'wireshark', 'localhost', 'data']
    .map((phrase) => ({ phrase, category: 'test', severity: 1 })),
  { phrase: 'ript', category: 'test', severity: 1, embedded: true },
  { phrase: 'ozill', category: 'test', severity: 1, embedded: true },
  { phrase: 'page', category: 'test', severity: 1, exclusions: ['placeholder page'] },
];

function writeDictionary(): string {
  const pack = JSON.parse(readFileSync(DEFAULT_DICTIONARY, 'utf8')) as { categories: Record<string, unknown>; phrases: Array<{ phrase: string }> };
  pack.categories.test = { description: 'phrases the test fixtures contain' };
  const known = new Set(pack.phrases.map((p) => p.phrase.toLowerCase()));
  pack.phrases.push(...EXTRA_PHRASES.filter((p) => !known.has(p.phrase.toLowerCase())));
  const path = join(dir, 'parity.json');
  writeFileSync(path, JSON.stringify(pack));
  return path;
}

/** Names the fixtures' DNS, TLS and HTTP traffic shows, so that the blocklist gives dns events. */
function writeBlocklist(): string {
  const path = join(dir, 'blocklist.txt');
  writeFileSync(path, ['weberlab.de', 'heise.de', 'google.com', 'example.com', 'example.net', 'httpbin.org', 'mozilla.org', 'msn.com', 'github.com', 'aol.com'].join('\n') + '\n');
  return path;
}

const KEY_LOGS = fixtureFiles('.keys');
const RSA_KEYS = fixtureFiles('.key');

/** Frames of one connection carrying a recorded stream: handshake, the segments (at most 1400 bytes a frame), FIN both ways. */
function streamFrames(path: string): Uint8Array[] {
  const segments = (JSON.parse(readFileSync(path, 'utf8')) as { segments: Array<[number, string]> }).segments;
  const C = { src: '10.20.0.7', dst: '192.0.2.80', sport: 50123, dport: 80 };
  const S = { src: C.dst, dst: C.src, sport: C.dport, dport: C.sport };
  const seq = [1001, 5001];
  const frames = [ethTcp({ ...C, seq: 1000, flags: SYN }), ethTcp({ ...S, seq: 5000, ack: 1001, flags: SYN | ACK }), ethTcp({ ...C, seq: 1001, ack: 5001, flags: ACK })];
  for (const [d, hex] of segments) {
    const data = Buffer.from(hex, 'hex');
    for (let at = 0; at < data.length; at += 1400) {
      const part = data.subarray(at, at + 1400);
      frames.push(ethTcp({ ...(d === 0 ? C : S), seq: seq[d], ack: seq[1 - d], flags: PSH | ACK }, part));
      seq[d] += part.length;
    }
  }
  frames.push(ethTcp({ ...C, seq: seq[0], ack: seq[1], flags: FIN | ACK }), ethTcp({ ...S, seq: seq[1], ack: seq[0] + 1, flags: FIN | ACK }));
  return frames;
}

/** What `hark scan` writes for one input: every capture and event as its JSON line, in order. */
function scanLines(input: string, matching: Matching, blocklist: string): string[] {
  const lines: string[] = [];
  const sensor = new Sensor({
    matching,
    keyLogs: KEY_LOGS,
    rsaKeys: RSA_KEYS,
    site: { blocklists: [blocklist] },
    onCapture: (c) => lines.push(JSON.stringify(c)),
    onEvent: (e) => lines.push(JSON.stringify(e)),
  });
  if (input.endsWith('.json')) {
    streamFrames(input).forEach((f, i) => sensor.pipeline.packet(1, f, 0, f.length, f.length, 1_700_000_000_000_000 + i * 1000, 0));
    sensor.pipeline.finish();
  } else {
    assert.equal(sensor.pipeline.runFile(input).problem, undefined, input);
  }
  sensor.collector.flush();
  return lines;
}

test('the Hyperscan and JS engines write the same captures and events for every capture file in test/fixtures', () => {
  assert.ok(CAPTURES.length >= 40, `the capture files were found: ${CAPTURES.length}`);
  assert.ok(STREAMS.length >= 10, `the recorded streams were found: ${STREAMS.length}`);
  assert.ok(KEY_LOGS.length >= 5 && RSA_KEYS.length >= 2, `key logs ${KEY_LOGS.length}, RSA keys ${RSA_KEYS.length}`);
  const dictionary = writeDictionary();
  const blocklist = writeBlocklist();
  const counters = new Counters();
  const hyperscan = loadMatching(dictionary, 'hyperscan', counters);
  const js = loadMatching(dictionary, 'js', counters);
  assert.equal(hyperscan.engine, 'hyperscan');
  assert.equal(js.engine, 'js');
  const withCaptures: string[] = [];
  const lines = new Map<string, string[]>();
  let captures = 0;
  let events = 0;
  for (const input of [...CAPTURES, ...STREAMS]) {
    const name = relative(FIXTURES, input);
    const a = scanLines(input, hyperscan, blocklist);
    const b = scanLines(input, js, blocklist);
    assert.deepEqual(b, a, `${name}: js engine output differs from hyperscan's`);
    lines.set(name, a);
    const caps = a.filter((l) => l.includes('"event_type":"capture"')).length;
    if (caps > 0) withCaptures.push(name);
    captures += caps;
    events += a.length - caps;
  }
  // not vacuous: many files give captures, and events (tls, dns) are compared too
  assert.ok(withCaptures.length >= 30, `files with captures: ${withCaptures.length} (${withCaptures.join(', ')})`);
  assert.ok(captures > 1000 && events > 50, `${captures} captures, ${events} events`);
  const all = [...lines.values()].flat();
  for (const type of ['tls', 'dns']) assert.ok(all.some((l) => l.startsWith(`{"event_type":"${type}"`)), `${type} events are among them`);
  // ... among them text decrypted with an RSA key and a key log, HTTP/2, and a capture naming its NTLM user
  for (const name of ['tls-crypto/ws-rsasnakeoil2.pcap', 'tls-crypto/ws-tls12-chacha20poly1305.pcap', 'http2/node-h2c-small.json', 'identity/ntlm-http.pcap']) {
    assert.ok(withCaptures.includes(name), `${name} gives captures`);
  }
  assert.ok(lines.get('identity/ntlm-http.pcap')!.some((l) => l.includes('"user":"jsmith"')), 'the NTLM user is on its captures');
});

/**
 * TlsSession through the real pipeline (file reader, decoder, flow table, reassembly) over the corpus
 * captures in test/fixtures/tls-crypto/ (provenance there), keyed by their key logs or RSA server keys.
 * Expected plaintext is the ground truth of /work/shared/corpus/MANIFEST.md (what Wireshark decrypts);
 * expected tls event fields come from the captures' handshakes as tshark shows them (IANA suite names),
 * and app_bytes from an independent record split of the raw streams (test/helpers/tls-records.ts).
 * Failure modes are made by editing the input on its way in: a flipped key, dropped or delayed packets.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { readCaptureFile } from '../../../sensor/capture/file-reader.js';
import { Counters } from '../../../sensor/events/counters.js';
import { tlsEventFor, type TlsFields } from '../../../sensor/events/tls.js';
import type { Direction, FlowInfo, StreamConsumer } from '../../../sensor/flow/stream.js';
import { Pipeline } from '../../../sensor/pipeline.js';
import { TlsSessionCache, TLS_SESSION_CACHE_MAX_ENTRIES } from '../../../sensor/app-layer/tls/decryption.js';
import { KeyStore, parseKeyLog, type KeyLogEntry } from '../../../sensor/app-layer/tls/keylog.js';
import { RsaKeyRing } from '../../../sensor/app-layer/tls/rsa.js';
import {
  HELD_RECORD_OVERHEAD_BYTES, PendingBudget, TlsSession, TLS_KEY_WAIT_US, TLS_PENDING_MAX_BYTES_PER_FLOW,
  TLS_PENDING_MAX_BYTES_TOTAL, type TlsKeySources, type TlsSessionContext,
} from '../../../sensor/app-layer/tls/session.js';
import { memoryInUse } from '../../../sensor/events/memuse.js';
import { clientHello } from '../../fixtures/quic/quic-encoder.js';
import { fixture, replay } from '../../helpers/replay.js';
import { assertTlsEvent } from '../../helpers/schema.js';
import { CT_APPLICATION_DATA, splitRecords } from '../../helpers/tls-records.js';

const CRYPTO = (name: string): string => fixture('tls-crypto', name);

// --- driver ----------------------------------------------------------------------------------------

interface Conn {
  readonly flow: FlowInfo;
  event: TlsFields | undefined;
  eventTsUs: number;
  events: number;
  /** Decrypted application data per direction, as the inner consumer received it. */
  readonly plain: [Buffer[], Buffer[]];
  /** Gaps the inner consumer was told of, per direction. */
  readonly gaps: [number[], number[]];
  innerEnded: boolean;
  innerOpened: number;
}

interface Run {
  readonly conns: Conn[];
  readonly counters: Counters;
  readonly pending: PendingBudget;
  /** Timestamp given to each frame (1-based), shift included. */
  readonly frameTsUs: number[];
  text(i: number, dir: Direction): string;
  counter(name: string): number;
}

interface RunOptions {
  readonly keyStore?: KeyStore;
  readonly rsaKeys?: RsaKeyRing;
  readonly keyWaitUs?: number;
  readonly waitOnlyOnceKeys?: boolean;
  readonly sessionCache?: TlsSessionCache;
  readonly pending?: PendingBudget;
  /** Packets (1-based, as tshark numbers them) left out. */
  readonly drop?: (frame: number) => boolean;
  /** Microseconds added to a packet's timestamp. */
  readonly shiftUs?: (frame: number) => number;
  /** Called before a packet enters the pipeline (e.g. to add keys "now"). */
  readonly before?: (frame: number) => void;
  /** May edit a packet's bytes before the pipeline sees them. */
  readonly edit?: (frame: number, bytes: Uint8Array) => void;
  readonly counters?: Counters;
  /** False: a session's BYPASS is not passed on, so the flow is reassembled to its end (a reference run). */
  readonly bypass?: boolean;
}

/** Runs a capture through Pipeline -> TlsSession with a recording inner consumer and event sink. */
function runTls(pcap: string, o: RunOptions = {}): Run {
  const counters = o.counters ?? new Counters();
  const pending = o.pending ?? new PendingBudget();
  const conns: Conn[] = [];
  const byFlow = new Map<FlowInfo, Conn>();
  const keys: TlsKeySources = { keyStore: o.keyStore, rsaKeys: o.rsaKeys, keyWaitUs: o.keyWaitUs ?? 0, waitOnlyOnceKeys: o.waitOnlyOnceKeys, sessionCache: o.sessionCache };
  const ctx = {
    counters,
    keys,
    pending,
    inner: (flow: FlowInfo): StreamConsumer => {
      const c = byFlow.get(flow) as Conn;
      c.innerOpened++;
      return {
        data: (dir, bytes) => void c.plain[dir].push(Buffer.from(bytes)),
        gap: (dir, len) => void c.gaps[dir].push(len),
        end: () => {
          c.innerEnded = true;
        },
      };
    },
    onEvent: (flow: FlowInfo, tsUs: number, fields: TlsFields): void => {
      const c = byFlow.get(flow) as Conn;
      c.events++;
      c.eventTsUs = tsUs;
      c.event = structuredClone(fields);
      assertTlsEvent(tlsEventFor(flow, tsUs, 'tls', fields));
    },
  };
  const pipeline = new Pipeline({
    counters,
    streams: {
      open(flow) {
        const c: Conn = { flow, event: undefined, eventTsUs: 0, events: 0, plain: [[], []], gaps: [[], []], innerEnded: false, innerOpened: 0 };
        conns.push(c);
        byFlow.set(flow, c);
        const session = new TlsSession(flow, ctx);
        if (o.bypass !== false) return session;
        return {
          data: (dir, bytes, tsUs) => void session.data(dir, bytes, tsUs),
          gap: (dir, len, tsUs) => void session.gap(dir, len, tsUs),
          end: (reason, tsUs, bypassed) => session.end(reason, tsUs, bypassed),
        };
      },
    },
  });
  let frame = 0;
  const frameTsUs: number[] = [];
  const summary = readCaptureFile(pcap, (linkType, buf, off, capLen, origLen, tsUs, ifIndex) => {
    frame++;
    const ts = tsUs + (o.shiftUs?.(frame) ?? 0);
    frameTsUs[frame] = ts;
    if (o.drop?.(frame)) return;
    o.before?.(frame);
    if (o.edit !== undefined) {
      const copy = Uint8Array.from(buf.subarray(off, off + capLen));
      o.edit(frame, copy);
      pipeline.packet(linkType, copy, 0, capLen, origLen, ts, ifIndex);
      return;
    }
    pipeline.packet(linkType, buf, off, capLen, origLen, ts, ifIndex);
  });
  if (summary.problem) throw new Error(`${pcap}: ${summary.problem.message}`);
  pipeline.finish();
  // Every connection says exactly once what it was, and nothing stays held once flows are over.
  for (const c of conns) assert.equal(c.events, 1, `one tls event for port ${c.flow.srcPort}`);
  assert.equal(pending.used, 0, 'held bytes all released');
  assert.equal(memoryInUse(counters), 0, 'what the held records charged to the flow memcap all given back');
  conns.sort((a, b) => a.flow.startUs - b.flow.startUs);
  return {
    conns, counters, pending, frameTsUs,
    text: (i, dir) => Buffer.concat(conns[i].plain[dir]).toString('latin1'),
    counter: (name) => counters.get(name),
  };
}

function keyEntries(...files: string[]): KeyLogEntry[] {
  return files.flatMap((f) => {
    const r = parseKeyLog(readFileSync(CRYPTO(f), 'utf8'));
    assert.equal(r.bad.length, 0);
    return r.entries;
  });
}

function keyStore(entries: readonly KeyLogEntry[]): KeyStore {
  const s = new KeyStore();
  s.addEntries(entries);
  return s;
}

const rsaKey = (name: string): RsaKeyRing => RsaKeyRing.load([CRYPTO(name)]);

/** Ciphertext bytes of application_data records per connection (by client port), from a record split of
 * the reassembled streams that does not use the sensor's record reader. */
function appDataBytes(pcap: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const f of replay(pcap).flows) {
    let n = 0;
    for (const dir of [0, 1] as const) {
      const bytes = Buffer.from(f.streams[dir], 'latin1');
      // An SSLv2-format ClientHello has a 2-byte header: skip it before splitting 5-byte-header records.
      const start = dir === 0 && bytes.length > 0 && (bytes[0] & 0x80) !== 0 ? 2 + (((bytes[0] & 0x7f) << 8) | bytes[1]) : 0;
      for (const r of splitRecords(bytes.subarray(start))) if (r.type === CT_APPLICATION_DATA) n += r.fragment.length;
    }
    out.set(f.info.srcPort, n);
  }
  return out;
}

/** The event of a connection that decrypted: app_bytes as on the wire, decrypted_bytes what the inner consumer got. */
function assertDecryptedEvent(run: Run, i: number, wireAppBytes: Map<number, number>): TlsFields {
  const c = run.conns[i];
  const e = c.event;
  assert.ok(e !== undefined);
  assert.equal(e.decrypted, true, JSON.stringify(e));
  assert.equal(e.not_decrypted_reason, undefined);
  const plainBytes = [...c.plain[0], ...c.plain[1]].reduce((n, b) => n + b.length, 0);
  assert.equal(e.decrypted_bytes, plainBytes);
  assert.equal(e.app_bytes, wireAppBytes.get(c.flow.srcPort));
  assert.ok(e.decrypted_bytes > 0 && e.decrypted_bytes < e.app_bytes);
  assert.equal(c.innerOpened, 1);
  assert.equal(c.innerEnded, true);
  return e;
}

function requestUris(text: string): string[] {
  return [...text.matchAll(/^(?:GET|HEAD|POST) (\S+) HTTP\/1\.[01]\r\n/gm)].map((m) => m[1]);
}

/** Status codes of HTTP/1.x responses; a status line may follow a binary body without a line break. */
function statusCodes(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.[01] (\d{3}) [A-Z]/g)].map((m) => Number(m[1]));
}

/** Bodies of HTTP/1.x responses framed by Content-Length. */
function responseBodies(text: string): string[] {
  const out: string[] = [];
  let off = 0;
  while (off < text.length) {
    const end = text.indexOf('\r\n\r\n', off);
    assert.ok(end > 0, 'response header end');
    const len = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(off, end))?.[1]);
    assert.ok(Number.isInteger(len), 'Content-Length');
    out.push(text.slice(end + 4, end + 4 + len));
    off = end + 4 + len;
  }
  return out;
}

/** Frame numbers (1-based) of the zeek-tls12-decryption capture, from tshark: 4 ClientHello, 6 server
 * flight ServerHello..ServerHelloDone, 8 ClientKeyExchange + CCS + Finished, 9 server CCS + Finished,
 * 10 the request (352 bytes), 11 the response (631 bytes), 13 close_notify. */
const ZEEK = CRYPTO('zeek-tls12-decryption.pcap');
const ZEEK_CLIENT_HELLO = 4;
const ZEEK_SERVER_FLIGHT = 6;
const ZEEK_REQUEST = 10;
const ZEEK_RESPONSE = 11;

function assertHeiseRequest(text: string): void {
  assert.match(text, /^GET \/ HTTP\/1\.1\r\n/);
  assert.match(text, /\r\nHost: heise\.de\r\n/);
  assert.match(text, /\r\nUser-Agent: Mozilla\/5\.0 \(X11; Linux x86_64; rv:78\.0\) Gecko\/20100101 Firefox\/78\.0\r\n/);
}

function assertHeiseResponse(text: string): void {
  assert.deepEqual(statusCodes(text), [301]);
  assert.match(text, /\r\nLocation: https:\/\/www\.heise\.de\/\r\n/);
}

// --- real captures, keys present -----------------------------------------------------------------------

test('TlsSession decrypts the seven TLS 1.2 ChaCha20-Poly1305 sessions of ws-tls12-chacha20poly1305 with its key log', () => {
  const pcap = CRYPTO('ws-tls12-chacha20poly1305.pcap');
  const run = runTls(pcap, { keyStore: keyStore(keyEntries('ws-tls12-chacha20poly1305.keys')) });
  // ServerHello suites 0xcca9, 0xcca8, 0xccaa, 0xccae, 0xccad, 0xccac, 0xccab (IANA names), and the
  // OpenSSL names s_server prints in each status page (MANIFEST row 1).
  const expected: Array<[string, string]> = [
    ['TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256', 'ECDHE-ECDSA-CHACHA20-POLY1305'],
    ['TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256', 'ECDHE-RSA-CHACHA20-POLY1305'],
    ['TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256', 'DHE-RSA-CHACHA20-POLY1305'],
    ['TLS_RSA_PSK_WITH_CHACHA20_POLY1305_SHA256', 'RSA-PSK-CHACHA20-POLY1305'],
    ['TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256', 'DHE-PSK-CHACHA20-POLY1305'],
    ['TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256', 'ECDHE-PSK-CHACHA20-POLY1305'],
    ['TLS_PSK_WITH_CHACHA20_POLY1305_SHA256', 'PSK-CHACHA20-POLY1305'],
  ];
  assert.equal(run.conns.length, 7);
  const wire = appDataBytes(pcap);
  expected.forEach(([iana, openssl], i) => {
    const client = run.text(i, 0);
    const server = run.text(i, 1);
    assert.equal(client, 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    assert.match(server, /^HTTP\/1\.0 200 ok\r\n/);
    assert.ok(server.includes('s_server -www -accept 443 -dcert serverd.pem -dkey serverd.pem -psk 0102030405060708091011121314151617181920'));
    assert.ok(server.includes(`New, TLSv1.2, Cipher is ${openssl}`), `session ${i}: ${openssl}`);
    const e = assertDecryptedEvent(run, i, wire);
    assert.equal(e.version, 'TLS 1.2');
    assert.equal(e.cipher_suite, iana);
    // The ClientHellos carry server_name "10.42.0.243" (s_client of the time sent the IP literal; tshark
    // shows it too, although the MANIFEST row says "no SNI").
    assert.equal(e.sni, '10.42.0.243');
    assert.equal(e.resumed, false);
  });
  assert.equal(run.counter('tls.decrypted_flows'), 7);
  assert.equal(run.counter('tls.undecrypted_bytes'), 0);
});

test('TlsSession decrypts ws-tls13-rfc8446 including the 0-RTT request, with the exact response bodies', () => {
  const pcap = CRYPTO('ws-tls13-rfc8446.pcap');
  const run = runTls(pcap, { keyStore: keyStore(keyEntries('ws-tls13-rfc8446.keys')) });
  assert.equal(run.conns.length, 2);
  assert.deepEqual(requestUris(run.text(0, 0)), ['/first']);
  assert.deepEqual(requestUris(run.text(1, 0)), ['/early', '/second']);
  assert.deepEqual(responseBodies(run.text(0, 1)), ['Request for /first, version TLSv1.3, Early data: no\n']);
  assert.deepEqual(responseBodies(run.text(1, 1)), [
    'Request for /early, version TLSv1.3, Early data: yes\n',
    'Request for /second, version TLSv1.3, Early data: yes\n',
  ]);
  const wire = appDataBytes(pcap);
  for (const i of [0, 1]) {
    const e = assertDecryptedEvent(run, i, wire);
    assert.equal(e.version, 'TLS 1.3');
    assert.equal(e.cipher_suite, 'TLS_AES_128_GCM_SHA256');
    assert.equal(e.sni, undefined);
  }
  assert.equal(run.conns[0].event?.subject, 'O=BoringSSL,C=US', 'certificate from the protected server flight');
  // The second connection is a PSK resumption (pre_shared_key in its ServerHello).
  assert.equal(run.conns[0].event?.resumed, false);
  assert.equal(run.conns[1].event?.resumed, true);
  assert.equal(run.counter('tls.early_data_undecryptable'), 0);
});

test('TlsSession without CLIENT_EARLY_TRAFFIC_SECRET skips the 0-RTT request and still decrypts the rest', () => {
  const entries = keyEntries('ws-tls13-rfc8446.keys').filter((e) => e.label !== 'CLIENT_EARLY_TRAFFIC_SECRET');
  const run = runTls(CRYPTO('ws-tls13-rfc8446.pcap'), { keyStore: keyStore(entries) });
  assert.deepEqual(requestUris(run.text(1, 0)), ['/second']);
  assert.equal(responseBodies(run.text(1, 1)).length, 2, 'the server direction needs no early secret');
  assert.equal(run.conns[1].event?.decrypted, true);
  assert.ok(run.counter('tls.early_data_undecryptable') >= 1);
});

test('TlsSession decrypts zeek-tls12-decryption: GET / to heise.de and its 301', () => {
  const run = runTls(ZEEK, { keyStore: keyStore(keyEntries('zeek-tls12-decryption.keys')) });
  assert.equal(run.conns.length, 1);
  assertHeiseRequest(run.text(0, 0));
  assertHeiseResponse(run.text(0, 1));
  const e = assertDecryptedEvent(run, 0, appDataBytes(ZEEK));
  assert.equal(e.sni, 'heise.de');
  assert.equal(e.version, 'TLS 1.2');
  assert.equal(e.cipher_suite, 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384');
  assert.deepEqual(e.client_alpns, ['h2', 'http/1.1']);
  assert.equal(e.server_alpn, 'http/1.1');
  assert.equal(e.subject, 'CN=heise.de');
});

test('TlsSession decrypts both sessions of ws-tls12-dsb.pcapng with the two key files', () => {
  const pcap = CRYPTO('ws-tls12-dsb.pcapng');
  const run = runTls(pcap, { keyStore: keyStore(keyEntries('ws-tls12-dsb-1.keys', 'ws-tls12-dsb-2.keys')) });
  assert.equal(run.conns.length, 2);
  const wire = appDataBytes(pcap);
  ['example.com', 'example.net'].forEach((host, i) => {
    const client = run.text(i, 0);
    assert.match(client, /^HEAD \/ HTTP\/1\.1\r\n/);
    assert.ok(client.includes(`\r\nHost: ${host}\r\n`));
    assert.deepEqual(statusCodes(run.text(i, 1)), [200]);
    assert.ok(run.text(i, 1).includes('\r\nContent-Encoding: gzip\r\n'));
    const e = assertDecryptedEvent(run, i, wire);
    assert.equal(e.sni, host);
    assert.equal(e.cipher_suite, 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256');
  });
});

test('TlsSession decrypts ws-rsa-p-lt-q with its RSA server key', () => {
  const pcap = CRYPTO('ws-rsa-p-lt-q.pcap');
  const run = runTls(pcap, { rsaKeys: rsaKey('ws-rsa-p-lt-q.key') });
  const client = run.text(0, 0);
  assert.match(client, /^GET \/ HTTP\/1\.1\r\n/);
  assert.ok(client.includes('\r\nHost: 10.9.0.2\r\n'));
  assert.ok(client.includes('\r\nUser-Agent: curl/7.43.0\r\n'));
  const server = run.text(0, 1);
  assert.match(server, /^HTTP\/1\.0 200 ok\r\n/);
  assert.ok(server.includes("Error opening ''"));
  const e = assertDecryptedEvent(run, 0, appDataBytes(pcap));
  assert.equal(e.version, 'TLS 1.2');
  assert.equal(e.cipher_suite, 'TLS_RSA_WITH_AES_256_CBC_SHA');
  assert.equal(run.counter('tls.session_cache.stored'), 1, 'the RSA-keyed session is kept for resumption');
});

/** MANIFEST row 10: the requests of each connection in order, and the statuses (6x200, 1x301, 4x404). */
const SNAKEOIL_URIS: [string[], string[]] = [
  ['/', '/icons/jhe061.png', '/test', '/test2/', '/icons/back.gif', '/test3/'],
  ['/icons/debian/openlogo-25.jpg', '/icons/apache_pb.png', '/favicon.ico', '/test/', '/icons/blank.gif'],
];
/** The responses in order per connection (tshark -Y http.response with the RSA key). */
const SNAKEOIL_STATUSES: [number[], number[]] = [[200, 404, 301, 200, 200, 404], [404, 200, 404, 200, 200]];
/** Frame of connection 0's response to /icons/back.gif (tshark). */
const SNAKEOIL_BACK_GIF_RESPONSE = 52;

test('TlsSession follows ws-rsasnakeoil2: SSLv2-format ClientHello, SSL 3.0, a renegotiation and a resumed session', () => {
  const pcap = CRYPTO('ws-rsasnakeoil2.pcap');
  const run = runTls(pcap, { rsaKeys: rsaKey('ws-rsasnakeoil2.key') });
  assert.equal(run.conns.length, 2);
  for (const i of [0, 1]) assert.deepEqual(requestUris(run.text(i, 0)), SNAKEOIL_URIS[i]);
  assert.deepEqual(statusCodes(run.text(0, 1)), SNAKEOIL_STATUSES[0]);
  assert.deepEqual(statusCodes(run.text(1, 1)), SNAKEOIL_STATUSES[1]);
  const statuses = [...statusCodes(run.text(0, 1)), ...statusCodes(run.text(1, 1))].sort();
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 301, 404, 404, 404, 404]);
  const page = run.text(0, 1);
  assert.ok(page.includes('<TITLE>Placeholder page</TITLE>'));
  assert.ok(page.includes('\r\nServer: Apache/2.0.55 (Debian) mod_ssl/2.0.55 OpenSSL/0.9.8a\r\n'));
  const wire = appDataBytes(pcap);
  const first = assertDecryptedEvent(run, 0, wire);
  const second = assertDecryptedEvent(run, 1, wire);
  assert.equal(first.version, 'SSL 3.0');
  assert.equal(second.version, 'SSL 3.0');
  // The event names the first handshake's suite; the renegotiation moved connection 0 to 3DES, and
  // connection 1 resumes that renegotiated session.
  assert.equal(first.cipher_suite, 'TLS_RSA_WITH_AES_256_CBC_SHA');
  assert.equal(second.cipher_suite, 'TLS_RSA_WITH_3DES_EDE_CBC_SHA');
  assert.equal(first.resumed, false);
  assert.equal(second.resumed, true);
  assert.equal(run.counter('tls.sslv2_client_hello'), 1);
  assert.equal(run.counter('tls.renegotiations'), 1);
  assert.equal(run.counter('tls.renegotiations_decrypted'), 1);
  assert.equal(run.counter('tls.session_cache.stored'), 2, 'the first session and the renegotiated one');
  assert.equal(run.counter('tls.session_cache.hits'), 1);
  assert.equal(run.counter('tls.undecrypted_bytes'), 0);
});

test('TlsSessionCache evicts its oldest session past maxEntries and counts it; a resumed session it lost is no_keys', () => {
  const pcap = CRYPTO('ws-rsasnakeoil2.pcap');
  const oneCounters = new Counters();
  const one = new TlsSessionCache(oneCounters, 1);
  const run = runTls(pcap, { rsaKeys: rsaKey('ws-rsasnakeoil2.key'), sessionCache: one, counters: oneCounters });
  // The renegotiated session replaced the first one, and is the one connection 1 resumes.
  assert.equal(one.evicted, 1);
  assert.equal(one.size, 1);
  assert.equal(run.counter('tls.session_cache.evicted'), 1);
  assert.equal(run.conns[1].event?.decrypted, true);

  const none = runTls(pcap, { rsaKeys: rsaKey('ws-rsasnakeoil2.key'), sessionCache: new TlsSessionCache(undefined, 0) });
  assert.equal(none.conns[0].event?.decrypted, true);
  assert.equal(none.conns[1].event?.decrypted, false);
  assert.equal(none.conns[1].event?.not_decrypted_reason, 'no_keys');
  assert.equal(none.conns[1].plain[0].length, 0);
  assert.equal(none.counter('tls.not_decrypted.no_keys'), 1);
  assert.equal(new TlsSessionCache().maxEntries, TLS_SESSION_CACHE_MAX_ENTRIES);
});

test('TlsSession loses only the renegotiated part when the renegotiation cannot be keyed', () => {
  // A key ring that opens the first ClientKeyExchange only: the renegotiation's keys are unknown.
  const ring = rsaKey('ws-rsasnakeoil2.key');
  let opened = 0;
  const once = {
    forModulus: (m: string) => ring.forModulus(m),
    all: () => ring.all(),
    decryptPremaster: (k: Parameters<RsaKeyRing['decryptPremaster']>[0], enc: Uint8Array) => (opened++ === 0 ? ring.decryptPremaster(k, enc) : undefined),
  } as unknown as RsaKeyRing;
  const run = runTls(CRYPTO('ws-rsasnakeoil2.pcap'), { rsaKeys: once, sessionCache: new TlsSessionCache(undefined, 0) });
  const c = run.conns[0];
  assert.equal(c.event?.decrypted, true);
  // Before the renegotiation: the first request; after it nothing more in either direction, and the inner
  // consumer is told of the loss in each.
  assert.deepEqual(requestUris(run.text(0, 0)), ['/']);
  assert.equal(run.text(0, 1), '');
  assert.equal(run.counter('tls.renegotiations'), 1);
  assert.equal(run.counter('tls.renegotiation_undecryptable'), 2);
  assert.equal(c.gaps[0].length, 1);
  assert.equal(c.gaps[1].length, 1);
  assert.ok(c.gaps[0][0] > 0 && c.gaps[1][0] > 0);
});

// --- failure modes ---------------------------------------------------------------------------------------

test('TlsSession with a wrong key says bad_key and hands nothing on', () => {
  const [entry] = keyEntries('zeek-tls12-decryption.keys');
  const secret = Buffer.from(entry.secret);
  secret[0] ^= 0x01;
  const store = new KeyStore();
  store.add(entry.label, entry.clientRandom, secret);
  const run = runTls(ZEEK, { keyStore: store });
  const e = run.conns[0].event;
  assert.equal(e?.decrypted, false);
  assert.equal(e?.not_decrypted_reason, 'bad_key');
  assert.equal(e?.decrypted_bytes, 0);
  assert.equal(run.conns[0].innerOpened, 0);
  assert.equal(run.counter('tls.not_decrypted.bad_key'), 1);
});

test('TlsSession without keys says no_keys, and with only an RSA key for an ECDHE suite non_rsa_key_exchange', () => {
  const noKeys = runTls(ZEEK, { keyStore: new KeyStore() });
  assert.equal(noKeys.conns[0].event?.not_decrypted_reason, 'no_keys');
  assert.equal(noKeys.conns[0].event?.sni, 'heise.de');
  assert.equal(noKeys.counter('tls.not_decrypted.no_keys'), 1);
  const rsaOnly = runTls(ZEEK, { rsaKeys: rsaKey('ws-rsa-p-lt-q.key') });
  assert.equal(rsaOnly.conns[0].event?.not_decrypted_reason, 'non_rsa_key_exchange');
  assert.equal(rsaOnly.counter('tls.client_key_exchange_invalid'), 0, 'an ECDHE ClientKeyExchange is not read as RSA');
});

test('TlsSession joined mid-stream (ClientHello never seen) says missing_client_hello as soon as it knows', () => {
  const keys = keyStore(keyEntries('zeek-tls12-decryption.keys'));
  // From the server's flight on: the ServerHello shows there is no ClientHello to key it.
  const fromServerHello = runTls(ZEEK, { keyStore: keys, drop: (f) => f <= ZEEK_CLIENT_HELLO });
  // From the request on: application data with no handshake at all.
  const fromRequest = runTls(ZEEK, { keyStore: keys, drop: (f) => f < ZEEK_REQUEST });
  for (const [run, decidedAt] of [[fromServerHello, ZEEK_SERVER_FLIGHT], [fromRequest, ZEEK_REQUEST]] as const) {
    assert.equal(run.conns.length, 1);
    const c = run.conns[0];
    assert.equal(c.event?.decrypted, false);
    assert.equal(c.event?.not_decrypted_reason, 'missing_client_hello');
    assert.equal(c.event?.sni, undefined);
    assert.equal(c.eventTsUs, run.frameTsUs[decidedAt]);
    assert.equal(c.innerOpened, 0);
    assert.equal(run.counter('tls.not_decrypted.missing_client_hello'), 1);
  }
  assert.equal(fromServerHello.conns[0].event?.cipher_suite, 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384');
});

test('TlsSession holds records for keys that arrive after the handshake within keyWaitUs, then decrypts them', () => {
  const store = new KeyStore();
  const entries = keyEntries('zeek-tls12-decryption.keys');
  const run = runTls(ZEEK, {
    keyStore: store,
    keyWaitUs: TLS_KEY_WAIT_US,
    // Both application records are held; the key comes just before the close_notify.
    before: (f) => {
      if (f === ZEEK_RESPONSE + 1) store.addEntries(entries);
    },
  });
  assertHeiseRequest(run.text(0, 0));
  assertHeiseResponse(run.text(0, 1));
  assert.equal(run.conns[0].event?.decrypted, true);
  assert.equal(run.counter('tls.keys_arrived_late'), 1);
  assert.equal(run.counter('tls.pending_records'), 4, 'client Finished, server Finished, request, response');
});

test('TlsSession waits for a TLS 1.3 key log arriving line by line until every traffic secret is there', () => {
  const store = new KeyStore();
  // Handshake (and early) secrets of both connections first, then the application traffic secrets: when
  // connection 0's ServerHello is read, the key log holds its handshake secrets only. Starting then would
  // leave its application records without keys.
  const all = keyEntries('ws-tls13-rfc8446.keys');
  const isTraffic = (e: KeyLogEntry): boolean => e.label === 'CLIENT_TRAFFIC_SECRET_0' || e.label === 'SERVER_TRAFFIC_SECRET_0';
  const entries = [...all.filter((e) => !isTraffic(e)), ...all.filter(isTraffic)];
  let added = 0;
  const run = runTls(CRYPTO('ws-tls13-rfc8446.pcap'), {
    keyStore: store,
    keyWaitUs: TLS_KEY_WAIT_US,
    before: () => {
      if (added < entries.length) store.add(entries[added].label, entries[added].clientRandom, entries[added++].secret);
    },
  });
  assert.equal(added, 9);
  assert.deepEqual(requestUris(run.text(0, 0)), ['/first']);
  assert.deepEqual(responseBodies(run.text(0, 1)), ['Request for /first, version TLSv1.3, Early data: no\n']);
  assert.deepEqual(requestUris(run.text(1, 0)), ['/early', '/second']);
  assert.equal(responseBodies(run.text(1, 1)).length, 2);
  assert.equal(run.conns[0].event?.decrypted, true);
  assert.equal(run.conns[1].event?.decrypted, true);
  // Connection 0 started when its last secret came; connection 1's were all there at its ServerHello.
  assert.equal(run.counter('tls.keys_arrived_late'), 1);
  assert.equal(run.counter('tls.undecrypted_bytes'), 0);
});

test('TlsSession with waitOnlyOnceKeys holds nothing until the key store has had a key, then waits as asked', () => {
  // nobody has given this sensor a key: decided at once, nothing held, bypassed after the handshake
  const none = runTls(ZEEK, { keyStore: new KeyStore(), keyWaitUs: TLS_KEY_WAIT_US, waitOnlyOnceKeys: true });
  assert.equal(none.conns[0].event?.not_decrypted_reason, 'no_keys');
  assert.equal(none.counter('tls.pending_records'), 0, 'no record held');
  assert.equal(none.counter('tls.keys_never_arrived'), 0);
  assert.equal(none.counter('flow.bypassed'), 1);
  // the same wait with keys already flowing for other sessions: records held, late keys decrypt
  const store = new KeyStore();
  assert.equal(store.hasHadKeys, false);
  store.add('CLIENT_RANDOM', 'ab'.repeat(32), 'cd'.repeat(48));
  assert.equal(store.hasHadKeys, true);
  const entries = keyEntries('zeek-tls12-decryption.keys');
  const late = runTls(ZEEK, {
    keyStore: store,
    keyWaitUs: TLS_KEY_WAIT_US,
    waitOnlyOnceKeys: true,
    before: (f) => {
      if (f === ZEEK_RESPONSE + 1) store.addEntries(entries);
    },
  });
  assert.equal(late.conns[0].event?.decrypted, true);
  assert.equal(late.counter('tls.keys_arrived_late'), 1);
  assertHeiseRequest(late.text(0, 0));
});

test('TlsSession gives up on keys that come after keyWaitUs: no_keys, counted as never arrived', () => {
  const store = new KeyStore();
  const entries = keyEntries('zeek-tls12-decryption.keys');
  const run = runTls(ZEEK, {
    keyStore: store,
    keyWaitUs: 1_000_000,
    // The response comes 30 s (capture time) after the request was held: past the wait (and past
    // TLS_HANDSHAKE_WAIT_US); the key shows up after that.
    shiftUs: (f) => (f >= ZEEK_RESPONSE ? 30_000_000 : 0),
    before: (f) => {
      if (f === ZEEK_RESPONSE + 2) store.addEntries(entries);
    },
  });
  const e = run.conns[0].event;
  assert.equal(e?.decrypted, false);
  assert.equal(e?.not_decrypted_reason, 'no_keys');
  assert.equal(run.conns[0].innerOpened, 0);
  assert.equal(run.counter('tls.keys_never_arrived'), 1);
  assert.equal(run.counter('tls.keys_arrived_late'), 0);
});

test('TlsSession counts keys that never arrive by the end of the flow', () => {
  const run = runTls(ZEEK, { keyStore: new KeyStore(), keyWaitUs: TLS_KEY_WAIT_US });
  assert.equal(run.conns[0].event?.not_decrypted_reason, 'no_keys');
  assert.equal(run.counter('tls.keys_never_arrived'), 1);
  assert.ok(run.counter('tls.undecrypted_bytes') > 0);
});

test('TlsSession gives up when held records pass the per-flow or the overall pending budget', () => {
  const perFlow = runTls(ZEEK, { keyStore: new KeyStore(), keyWaitUs: TLS_KEY_WAIT_US, pending: new PendingBudget(TLS_PENDING_MAX_BYTES_TOTAL, 300) });
  assert.equal(perFlow.conns[0].event?.not_decrypted_reason, 'no_keys');
  assert.equal(perFlow.counter('tls.pending_overflow'), 1);
  assert.equal(perFlow.counter('tls.keys_never_arrived'), 1);

  const budget = new PendingBudget(300);
  const total = runTls(ZEEK, { keyStore: new KeyStore(), keyWaitUs: TLS_KEY_WAIT_US, pending: budget });
  assert.equal(total.counter('tls.pending_overflow'), 1);
  assert.equal(budget.used, 0);

  // The default bounds are the named constants.
  const d = new PendingBudget();
  assert.equal(d.maxBytes, TLS_PENDING_MAX_BYTES_TOTAL);
  assert.equal(d.maxBytesPerFlow, TLS_PENDING_MAX_BYTES_PER_FLOW);
});

// --- empty records held before the ServerHello ------------------------------------------------------

/** One TLS 1.2-framed record: type(1) version(2) length(2) fragment. */
function tlsRecord(type: number, fragment: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([type, 3, 3, fragment.length >> 8, fragment.length & 0xff]), fragment]);
}

const FLOW: FlowInfo = { flowId: 1, proto: 6, srcIp: '10.0.0.1', srcPort: 40000, dstIp: '10.0.0.2', dstPort: 443, vlan: [], startUs: 0 };

/** A client that sends its ClientHello, then `records` application-data records with `fragmentBytes` each; the server never answers. */
function feedHeldRecords(session: TlsSession, records: number, fragmentBytes: number, tsUs: number, watch?: () => void): void {
  session.data(0, tlsRecord(22, clientHello({ sni: 'held.example' })), tsUs);
  const batch = Buffer.concat(Array<Buffer>(1000).fill(tlsRecord(CT_APPLICATION_DATA, Buffer.alloc(fragmentBytes, 0x55))));
  for (let sent = 0; sent < records; sent += 1000) {
    session.data(0, batch, tsUs + 1 + sent / 1000);
    watch?.();
  }
}

function heldRecordsContext(counters: Counters, pending: PendingBudget, events: TlsFields[]): TlsSessionContext {
  return {
    counters, pending, keys: { keyWaitUs: 0 }, inner: () => undefined,
    onEvent: (_flow, _tsUs, fields) => void events.push(structuredClone(fields)),
  };
}

test('TlsSession charges each held record its overhead: 300,000 empty records before the ServerHello overflow the per-flow budget', () => {
  // Zero-length records cost nothing by their fragment, but each held one takes ~0.5 KB of heap: counted
  // by fragment bytes only, a client could park any number of them until its ServerHello came.
  const counters = new Counters();
  const pending = new PendingBudget();
  const events: TlsFields[] = [];
  const session = new TlsSession(FLOW, heldRecordsContext(counters, pending, events));
  let peak = 0;
  feedHeldRecords(session, 300_000, 0, 1_000_000, () => {
    assert.equal(memoryInUse(counters), pending.used, 'the flow memcap sees what the pending budget holds');
    peak = Math.max(peak, pending.used);
  });
  const perFlowRecords = Math.floor(TLS_PENDING_MAX_BYTES_PER_FLOW / HELD_RECORD_OVERHEAD_BYTES);
  assert.equal(counters.get('tls.pending_overflow'), 1);
  assert.equal(counters.get('tls.keys_never_arrived'), 1);
  assert.equal(counters.get('tls.pending_records'), perFlowRecords, 'held up to the per-flow bound, then given up');
  assert.ok(peak > 0 && peak <= TLS_PENDING_MAX_BYTES_PER_FLOW, `peak ${peak}`);
  assert.equal(pending.used, 0, 'the overflow let go of every held record');
  assert.equal(memoryInUse(counters), 0);
  session.end('fin', 2_000_000);
  assert.equal(events.length, 1);
  assert.equal(events[0].not_decrypted_reason, 'no_keys');
  assert.equal(memoryInUse(counters), 0);
});

test('TlsSession charges 1-byte held records to the total budget across flows, and gives it all back at the end', () => {
  const counters = new Counters();
  const total = 3 << 19;
  const pending = new PendingBudget(total);
  const events: TlsFields[] = [];
  const perRecord = 1 + HELD_RECORD_OVERHEAD_BYTES;
  const sessions: TlsSession[] = [];
  // each flow holds 1,000 records (~0.5 MiB): the third goes past 1.5 MiB in all
  for (let i = 0; i < 3; i++) {
    const session = new TlsSession({ ...FLOW, flowId: 1 + i, srcPort: 40000 + i }, heldRecordsContext(counters, pending, events));
    feedHeldRecords(session, 1000, 1, 1_000_000);
    sessions.push(session);
    assert.ok(pending.used <= total, `flow ${i}: ${pending.used} held`);
    assert.equal(memoryInUse(counters), pending.used);
  }
  assert.equal(counters.get('tls.pending_overflow'), 1);
  assert.equal(pending.used, 2 * 1000 * perRecord, 'two flows still hold all of theirs; the third gave up');
  for (const s of sessions) s.end('eof', 2_000_000);
  assert.equal(events.length, 3);
  assert.equal(counters.get('tls.keys_never_arrived'), 3);
  assert.equal(counters.get('tls.undecrypted_bytes'), 3 * 1000, 'fragment bytes, not their charged cost');
  assert.equal(pending.used, 0);
  assert.equal(memoryInUse(counters), 0);
});

test('TlsSession with a gap in the handshake says gap; a gap later keeps what was decrypted and tells the inner consumer', () => {
  const keys = keyEntries('zeek-tls12-decryption.keys');
  const early = runTls(ZEEK, { keyStore: keyStore(keys), drop: (f) => f === ZEEK_SERVER_FLIGHT });
  assert.equal(early.conns[0].event?.decrypted, false);
  assert.equal(early.conns[0].event?.not_decrypted_reason, 'gap');
  assert.equal(early.counter('tls.not_decrypted.gap'), 1);

  // ws-rsasnakeoil2 connection 0: lose the response to /icons/back.gif; what came before stays exact, the
  // client direction is whole, and the inner consumer hears of the gap.
  const pcap = CRYPTO('ws-rsasnakeoil2.pcap');
  const full = runTls(pcap, { rsaKeys: rsaKey('ws-rsasnakeoil2.key') });
  const late = runTls(pcap, { rsaKeys: rsaKey('ws-rsasnakeoil2.key'), drop: (f) => f === SNAKEOIL_BACK_GIF_RESPONSE });
  const c = late.conns[0];
  assert.equal(c.event?.decrypted, true);
  assert.deepEqual(requestUris(late.text(0, 0)), SNAKEOIL_URIS[0]);
  const partial = late.text(0, 1);
  assert.deepEqual(statusCodes(partial), SNAKEOIL_STATUSES[0].slice(0, 4));
  assert.ok(full.text(0, 1).startsWith(partial), 'what came before the gap is exact');
  assert.equal(c.gaps[1].length, 1);
  assert.equal(c.gaps[0].length, 0);
  assert.equal(late.conns[1].event?.decrypted, true, 'the other connection is untouched');
  assert.deepEqual(statusCodes(late.text(1, 1)), SNAKEOIL_STATUSES[1]);
});

test('TlsSession stops a direction whose record fails after decryption began, and tells the inner consumer', () => {
  // Frame 11 is one application_data record (631 TCP payload bytes: 5 header + 626); its last byte is
  // the end of the GCM tag.
  const run = runTls(ZEEK, {
    keyStore: keyStore(keyEntries('zeek-tls12-decryption.keys')),
    edit: (f, bytes) => {
      if (f === ZEEK_RESPONSE) bytes[bytes.length - 1] ^= 0x01;
    },
  });
  const c = run.conns[0];
  assert.equal(c.event?.decrypted, true);
  assertHeiseRequest(run.text(0, 0));
  assert.equal(run.text(0, 1), '');
  assert.deepEqual(c.gaps[1], [626]);
  assert.deepEqual(c.gaps[0], []);
  assert.equal(run.counter('tls.direction_lost'), 1);
  assert.equal(run.counter('tls.undecrypted_bytes'), 626);
});

test('TlsSession treats a session that negotiated compression as unsupported and passes nothing on', () => {
  // Frame 6 of the zeek capture starts with the ServerHello record: type(1) version(2) length(2), then
  // msg_type(1) length(3) version(2) random(32) session_id<1> suite(2) compression(1). Setting compression to
  // DEFLATE (1) makes the session one whose records would need inflating.
  const run = runTls(ZEEK, {
    keyStore: keyStore(keyEntries('zeek-tls12-decryption.keys')),
    edit: (f, bytes) => {
      if (f !== ZEEK_SERVER_FLIGHT) return;
      const ip = 14;
      const tcp = ip + (bytes[ip] & 0x0f) * 4;
      const rec = tcp + (bytes[tcp + 12] >> 4) * 4;
      assert.deepEqual([bytes[rec], bytes[rec + 5]], [22, 2], 'ServerHello at the start of the payload');
      const sidLen = bytes[rec + 5 + 4 + 2 + 32];
      const comp = rec + 5 + 4 + 2 + 32 + 1 + sidLen + 2;
      assert.equal(bytes[comp], 0);
      bytes[comp] = 1;
    },
  });
  const e = run.conns[0].event;
  assert.equal(e?.decrypted, false);
  assert.equal(e?.not_decrypted_reason, 'unsupported_suite');
  assert.equal(run.conns[0].innerOpened, 0);
  assert.equal(run.counter('tls.compression_unsupported'), 1);
});

test('TlsSession that will not decrypt asks for bypass once the server leaves the clear: the same events, app_bytes from the TCP payload after it', () => {
  for (const name of ['zeek-tls12-decryption.pcap', 'arkime-tls-split-client-hello.pcap']) {
    const pcap = fixture('tls', name);
    const full = runTls(pcap, { bypass: false });
    const cut = runTls(pcap);
    assert.equal(full.counter('flow.bypassed'), 0, name);
    assert.ok(cut.counter('flow.bypassed') > 0, `${name}: some connection bypassed`);
    assert.ok(cut.counter('tcp.reassembled_bytes') < full.counter('tcp.reassembled_bytes'), `${name}: fewer bytes reassembled`);
    assert.equal(cut.conns.length, full.conns.length, name);
    for (let i = 0; i < full.conns.length; i++) {
      const a = full.conns[i].event!;
      const b = cut.conns[i].event!;
      assert.equal(cut.conns[i].events, 1, name);
      // Every field is the same (a TLS 1.2 certificate is read before the bypass) but app_bytes,
      // which after it counts record headers (5 bytes a record) and the last handshake records too.
      assert.deepEqual({ ...b, app_bytes: 0 }, { ...a, app_bytes: 0 }, `${name} connection ${i}`);
      assert.ok(b.app_bytes >= a.app_bytes && b.app_bytes <= a.app_bytes * 1.05 + 128, `${name} connection ${i}: app_bytes ${b.app_bytes} against ${a.app_bytes}`);
    }
  }
});

test('TlsSession charges a record and a handshake message parked half-way to app_layer.memuse, and gives them back at the end', () => {
  // The server sends a ServerHello-less Certificate of 200 KB in full records and stops 6 KB into the
  // fourth: the handshake reassembler holds what came of the message, the record reader the partial record.
  const cert = Buffer.alloc(4 + 200_000, 0x30);
  cert[0] = 11;
  cert.writeUIntBE(200_000, 1, 3);
  const records = [0, 1, 2].map((i) => tlsRecord(22, cert.subarray(i * 16384, (i + 1) * 16384)));
  const partial = tlsRecord(22, cert.subarray(3 * 16384, 4 * 16384)).subarray(0, 5 + 6000);
  for (const close of ['end', 'gap'] as const) {
    const counters = new Counters();
    const session = new TlsSession(FLOW, heldRecordsContext(counters, new PendingBudget(), []));
    session.data(0, tlsRecord(22, clientHello({ sni: 'parked.example' })), 1);
    for (const r of records) session.data(1, r, 2);
    session.data(1, partial, 3);
    const held = memoryInUse(counters);
    // at least the 48 KiB of message and 6,000 bytes of record received; at most twice that
    assert.ok(held >= 3 * 16384 + 6000 && held <= 2 * (3 * 16384 + 6000), `${close}: ${held} charged while parked`);
    if (close === 'gap') session.gap(1, 100, 4);
    session.end('timeout', 5);
    assert.equal(memoryInUse(counters), 0, `${close}: all of it given back`);
  }
});

test('TlsSession lets go of a record and a handshake message cut by a gap at the gap, not at the flow end', () => {
  // As above, the server parks 48 KiB of Certificate message and 6,000 bytes of its fourth record; the
  // client parks 3,000 bytes of a 10,000-byte record. The bytes a gap takes can never complete either
  // partial of its direction, so they go at the gap; the other direction keeps what it holds.
  const cert = Buffer.alloc(4 + 200_000, 0x30);
  cert[0] = 11;
  cert.writeUIntBE(200_000, 1, 3);
  const counters = new Counters();
  const session = new TlsSession(FLOW, heldRecordsContext(counters, new PendingBudget(), []));
  session.data(0, tlsRecord(22, clientHello({ sni: 'cut.example' })), 1);
  session.data(0, tlsRecord(22, Buffer.alloc(10_000, 0x30)).subarray(0, 5 + 3000), 1);
  const client = memoryInUse(counters);
  assert.ok(client >= 3000, `client: ${client} charged`);
  for (let i = 0; i < 3; i++) session.data(1, tlsRecord(22, cert.subarray(i * 16384, (i + 1) * 16384)), 2);
  session.data(1, tlsRecord(22, cert.subarray(3 * 16384, 4 * 16384)).subarray(0, 5 + 6000), 3);
  assert.ok(memoryInUse(counters) >= client + 3 * 16384 + 6000);
  session.gap(1, 100, 4);
  assert.equal(memoryInUse(counters), client, 'the server side gave back all it held; the client side holds on');
  assert.equal(counters.get('tls.gap_partial_dropped'), 1);
  session.gap(0, 100, 5);
  assert.equal(memoryInUse(counters), 0);
  assert.equal(counters.get('tls.gap_partial_dropped'), 2);
  session.gap(0, 100, 6); // a direction already stopped: nothing more to let go, nothing counted
  assert.equal(counters.get('tls.gap_partial_dropped'), 2);
  session.end('timeout', 7);
  assert.equal(memoryInUse(counters), 0);
});

test('TlsSession counts no partial dropped for a gap between whole records', () => {
  const counters = new Counters();
  const session = new TlsSession(FLOW, heldRecordsContext(counters, new PendingBudget(), []));
  session.data(0, tlsRecord(22, clientHello({ sni: 'whole.example' })), 1);
  session.gap(0, 100, 2);
  assert.equal(counters.get('tls.gap_partial_dropped'), 0);
  assert.equal(memoryInUse(counters), 0);
  session.end('timeout', 3);
});

test('TlsSession lets go of a partial handshake message when an invalid record stops its direction', () => {
  // 48 KiB of a 200 KB Certificate, then a record header of content type 0x99: the message can never complete.
  const cert = Buffer.alloc(4 + 200_000, 0x30);
  cert[0] = 11;
  cert.writeUIntBE(200_000, 1, 3);
  const counters = new Counters();
  const session = new TlsSession(FLOW, heldRecordsContext(counters, new PendingBudget(), []));
  session.data(0, tlsRecord(22, clientHello({ sni: 'invalid.example' })), 1);
  for (let i = 0; i < 3; i++) session.data(1, tlsRecord(22, cert.subarray(i * 16384, (i + 1) * 16384)), 2);
  assert.ok(memoryInUse(counters) >= 3 * 16384);
  session.data(1, Buffer.from([0x99, 3, 3, 0, 10]), 3);
  assert.equal(counters.get('tls.stream_invalid'), 1);
  assert.equal(memoryInUse(counters), 0);
  session.end('timeout', 4);
  assert.equal(memoryInUse(counters), 0);
});

test('TlsSession holds nothing for a direction stopped in the middle of a push, whatever the push goes on to carry', () => {
  // One push: a handshake record whose message type (0xee) is none, which stops the direction, then the
  // first 100 bytes of a 16,000-byte record. Nothing of the stopped direction can be read any more.
  const counters = new Counters();
  const session = new TlsSession(FLOW, heldRecordsContext(counters, new PendingBudget(), []));
  session.data(0, tlsRecord(22, clientHello({ sni: 'stopped.example' })), 1);
  const bad = tlsRecord(22, Buffer.from([0xee, 0, 0, 2, 0, 0]));
  const next = tlsRecord(22, Buffer.alloc(16_000, 0x30)).subarray(0, 5 + 100);
  session.data(1, Buffer.concat([bad, next]), 2);
  assert.equal(counters.get('tls.handshake_invalid'), 1);
  assert.equal(memoryInUse(counters), 0);
  session.end('timeout', 3);
});

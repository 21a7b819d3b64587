import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counters } from '../../../sensor/events/counters.js';
import {
  CONTENT_TYPE_ALERT, CONTENT_TYPE_APPLICATION_DATA, CONTENT_TYPE_CHANGE_CIPHER_SPEC, CONTENT_TYPE_HANDSHAKE,
  CONTENT_TYPE_SSL2_CLIENT_HELLO, MAX_RECORD_PAYLOAD_BYTES, parseAlert, probeTls, RECORD_HEADER_BYTES, RESYNC_RECORDS, TlsRecordReader,
  TlsStartTracker, type TlsRecord,
} from '../../../sensor/app-layer/tls/record.js';
import { PARTIAL_BUFFER_MIN_BYTES } from '../../../sensor/app-layer/partial-buffer.js';
import { tlsFlows, type TlsFlow } from './corpus.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

interface Seen {
  type: number;
  version: number;
  header: string;
  fragment: string;
  tsUs: number;
}

/** Pushes `chunks` (with timestamps 1, 2, 3, ...) and copies out every record while it is valid. */
function read(chunks: readonly Uint8Array[], counters = new Counters()): { recs: Seen[]; results: string[]; reader: TlsRecordReader } {
  const reader = new TlsRecordReader(counters);
  const recs: Seen[] = [];
  const results: string[] = [];
  chunks.forEach((c, i) => {
    results.push(reader.push(c, i + 1, (r: TlsRecord) => {
      recs.push({ type: r.type, version: r.version, header: Buffer.from(r.header).toString('hex'), fragment: Buffer.from(r.fragment).toString('hex'), tsUs: r.tsUs });
    }));
  });
  return { recs, results, reader };
}

const withoutTs = (recs: Seen[]): Omit<Seen, 'tsUs'>[] => recs.map(({ tsUs: _ts, ...rest }) => rest);

// zeek-tls12-decryption.pcap, records as tshark 4.0.17 lists them:
//   tshark -r zeek-tls12-decryption.pcap -Y tls -T fields -e tcp.srcport -e tls.record.content_type -e tls.record.version -e tls.record.length
// 48216 (client): 22/0x0301/512, 22/37, 20/1, 22/40, 23/347, 21/26 (all later ones 0x0303)
// 443 (server):   22/84, 22/2448, 22/300, 22/4, 22/218, 20/1, 22/40, 23/626
test('TlsRecordReader splits both directions of a real TLS 1.2 session into the records tshark lists', () => {
  const [flow] = tlsFlows('zeek-tls12-decryption.pcap');
  assert.deepEqual(flow.records[0].map((r) => `${r.type}/${r.version.toString(16)}/${r.length}`),
    ['22/301/512', '22/303/37', '20/303/1', '22/303/40', '23/303/347', '21/303/26']);
  assert.deepEqual(flow.records[1].map((r) => `${r.type}/${r.length}`),
    ['22/84', '22/2448', '22/300', '22/4', '22/218', '20/1', '22/40', '23/626']);
  assert.equal(flow.counters.anomalyTotal(), 0);
});

// arkime-tls-split-client-hello.pcap: the 1724-byte ClientHello record arrives in 2 TCP segments (frames 4+5);
// tshark lists client records 22/1724, 20/1, then 23/63, 23/87, 23/551, 23/26, 23/34 (TLS 1.3 protected).
test('TlsRecordReader reassembles the ClientHello record split across two TCP segments', () => {
  const [flow] = tlsFlows('arkime-tls-split-client-hello.pcap');
  assert.deepEqual(flow.records[0].map((r) => `${r.type}/${r.length}`), ['22/1724', '20/1', '23/63', '23/87', '23/551', '23/26', '23/34']);
  assert.equal(flow.records[1].length, 10);
});

test('TlsRecordReader gives the same records however a real stream is cut (every offset, and byte by byte)', () => {
  const [flow] = tlsFlows('zeek-tls12-decryption.pcap');
  for (const dir of [0, 1] as const) {
    const stream = flow.streams[dir];
    const whole = read([stream]).recs;
    assert.equal(whole.length, flow.records[dir].length);
    for (let cut = 0; cut <= stream.length; cut++) {
      const { recs, results } = read([stream.subarray(0, cut), stream.subarray(cut)]);
      assert.deepEqual(withoutTs(recs), withoutTs(whole), `dir ${dir} cut at ${cut}`);
      assert.deepEqual(results, ['ok', 'ok']);
    }
    const bytewise: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i++) bytewise.push(stream.subarray(i, i + 1));
    assert.deepEqual(withoutTs(read(bytewise).recs), withoutTs(whole), `dir ${dir} byte by byte`);
  }
});

test('TlsRecordReader stamps a record with the time of the push that completed it', () => {
  const rec = hex('17 0303 0004 deadbeef');
  const { recs } = read([rec.subarray(0, 2), rec.subarray(2, 7), rec.subarray(7), rec]);
  assert.deepEqual(recs.map((r) => r.tsUs), [3, 4]);
});

test('TlsRecordReader hands out views of the pushed bytes for a record inside one push, copies otherwise', () => {
  const counters = new Counters();
  const reader = new TlsRecordReader(counters);
  const bytes = hex('17 0303 0002 aabb 17 0303 0003 ccdd');
  const got: TlsRecord[] = [];
  reader.push(bytes, 1, (r) => got.push(r));
  assert.equal(got.length, 1);
  assert.equal(got[0].fragment.buffer, bytes.buffer);
  assert.equal(got[0].fragment.byteOffset, bytes.byteOffset + 5);
  assert.equal(reader.pendingBytes(), 7);
  reader.push(hex('ee'), 2, (r) => got.push(r));
  assert.equal(got.length, 2);
  assert.notEqual(got[1].fragment.buffer, bytes.buffer);
  assert.equal(Buffer.from(got[1].fragment).toString('hex'), 'ccddee');
  assert.equal(Buffer.from(got[1].header).toString('hex'), '1703030003');
  assert.equal(reader.pendingBytes(), 0);
  assert.equal(counters.get('tls.records'), 2);
  assert.equal(counters.get('tls.records_spanning_pushes'), 1);
});

test('TlsRecordReader emits zero-length records (an empty application data fragment is legal)', () => {
  const { recs, results } = read([hex('17 0303 0000 15 0303 0002 0100')]);
  assert.deepEqual(results, ['ok']);
  assert.deepEqual(recs.map((r) => [r.type, r.fragment]), [[CONTENT_TYPE_APPLICATION_DATA, ''], [CONTENT_TYPE_ALERT, '0100']]);
  const split = read([hex('17 03'), hex('03 0000'), hex('15 0303 0002 0100')]);
  assert.deepEqual(withoutTs(split.recs), withoutTs(recs));
});

test('TlsRecordReader accepts a record of exactly MAX_RECORD_PAYLOAD_BYTES and rejects one byte more', () => {
  const counters = new Counters();
  const max = Buffer.alloc(5 + MAX_RECORD_PAYLOAD_BYTES, 0x41);
  max.set([0x17, 0x03, 0x03, MAX_RECORD_PAYLOAD_BYTES >> 8, MAX_RECORD_PAYLOAD_BYTES & 0xff]);
  const ok = read([max], counters);
  assert.deepEqual(ok.results, ['ok']);
  assert.equal(ok.recs[0].fragment.length, 2 * MAX_RECORD_PAYLOAD_BYTES);
  const over = MAX_RECORD_PAYLOAD_BYTES + 1;
  const bad = read([Buffer.from([0x17, 0x03, 0x03, over >> 8, over & 0xff])], counters);
  assert.deepEqual(bad.results, ['invalid']);
  assert.equal(counters.get('tls.invalid_record_length'), 1);
});

test('TlsRecordReader holds buffer in proportion to the payload bytes received, not to the record length announced', () => {
  // Many flows' worth of a header announcing the longest record and one payload byte: that used to hold
  // 18 KiB a direction.
  const announce = Buffer.from([0x17, 0x03, 0x03, MAX_RECORD_PAYLOAD_BYTES >> 8, MAX_RECORD_PAYLOAD_BYTES & 0xff, 0x00]);
  const readers: TlsRecordReader[] = [];
  for (let i = 0; i < 1000; i++) {
    const r = read([announce]);
    assert.deepEqual(r.results, ['ok']);
    assert.equal(r.reader.pendingBytes(), 6);
    readers.push(r.reader);
  }
  const held = readers.reduce((sum, r) => sum + r.heldBytes(), 0);
  assert.ok(held <= readers.length * PARTIAL_BUFFER_MIN_BYTES, `${held} bytes held for ${readers.length} one-byte partial records`);
  // As the payload arrives, the buffer stays within twice what came (or the minimum).
  const reader = readers[0];
  let received = 1;
  for (const piece of [100, 1000, 5000]) {
    reader.push(Buffer.alloc(piece), 2, () => assert.fail('the record is not complete'));
    received += piece;
    assert.ok(reader.heldBytes() <= Math.max(PARTIAL_BUFFER_MIN_BYTES, 2 * received), `${reader.heldBytes()} held after ${received} received`);
  }
});

test('TlsRecordReader gives the same long records whole or cut every few bytes, and holds nothing after them', () => {
  const record = (type: number, len: number, fill: number) => {
    const r = Buffer.alloc(5 + len, fill);
    r.set([type, 0x03, 0x03, len >> 8, len & 0xff]);
    return r;
  };
  const stream = Buffer.concat([
    record(CONTENT_TYPE_HANDSHAKE, 9000, 0x42), record(CONTENT_TYPE_APPLICATION_DATA, MAX_RECORD_PAYLOAD_BYTES, 0x43),
    record(CONTENT_TYPE_ALERT, 2, 0x01), record(CONTENT_TYPE_APPLICATION_DATA, 300, 0x44),
  ]);
  const whole = read([stream]);
  assert.deepEqual(whole.recs.map((r) => [r.type, r.fragment.length / 2]), [[22, 9000], [23, MAX_RECORD_PAYLOAD_BYTES], [21, 2], [23, 300]]);
  for (const every of [1, 3, 1448]) {
    const pieces: Uint8Array[] = [];
    for (let at = 0; at < stream.length; at += every) pieces.push(stream.subarray(at, at + every));
    const cut = read(pieces);
    assert.deepEqual(withoutTs(cut.recs), withoutTs(whole.recs), `cut every ${every}`);
    assert.equal(cut.reader.heldBytes(), 0, `cut every ${every}`);
  }
});

test('TlsRecordReader rejects an unknown content type, counted once, and stays invalid', () => {
  const counters = new Counters();
  const { recs, results } = read([hex('16 0301 0001 01'), hex('63 0303 0001 00'), hex('17 0303 0001 00')], counters);
  assert.equal(recs.length, 1);
  assert.deepEqual(results, ['ok', 'invalid', 'invalid']);
  assert.equal(counters.get('tls.invalid_record_type'), 1);
});

test('TlsRecordReader rejects a record version that is not 3.0 .. 3.4', () => {
  for (const v of ['0200', '0305', '7f12', 'fefd']) {
    const counters = new Counters();
    assert.deepEqual(read([hex(`17 ${v} 0001 00`)], counters).results, ['invalid'], v);
    assert.equal(counters.get('tls.invalid_record_version'), 1, v);
  }
  const counters = new Counters();
  assert.deepEqual(read([hex('17 03'), hex('05 0001 00')], counters).results, ['ok', 'invalid']);
  assert.equal(counters.get('tls.invalid_record_version'), 1);
});

test('TlsRecordReader detects a bad header split across pushes (slow path)', () => {
  const counters = new Counters();
  assert.deepEqual(read([hex('17 0303 00'), hex('0a 0102030405060708090a'), hex('40 03')], counters).results, ['ok', 'ok', 'invalid']);
  assert.equal(counters.get('tls.invalid_record_type'), 1);
});

test('TlsRecordReader.reset forgets a partial record and the invalid state', () => {
  const counters = new Counters();
  const reader = new TlsRecordReader(counters);
  const got: number[] = [];
  reader.push(hex('17 0303 0010 00'), 1, (r) => got.push(r.type));
  assert.equal(reader.pendingBytes(), 6);
  reader.reset();
  assert.equal(reader.pendingBytes(), 0);
  assert.equal(reader.push(hex('ff'), 2, (r) => got.push(r.type)), 'invalid');
  reader.reset();
  assert.equal(reader.push(hex('15 0303 0002 0228'), 3, (r) => got.push(r.type)), 'ok');
  assert.deepEqual(got, [CONTENT_TYPE_ALERT]);
});

// SSLv2-compatible ClientHello (RFC 5246 Appendix E.2), written by hand: 2-byte header 0x8022 (34 bytes),
// msg_type 1, version 3.1, cipher_spec_length 9, session_id_length 0, challenge_length 16,
// specs 00002f (TLS_RSA_WITH_AES_128_CBC_SHA) 010080 (SSL2_RC4_128_WITH_MD5) 0000ff, challenge 00..0f.
const SSL2_HELLO = hex('8022 01 0301 0009 0000 0010 00002f 010080 0000ff 000102030405060708090a0b0c0d0e0f');

test('TlsRecordReader hands out an SSLv2-compatible ClientHello at the stream start, then TLS records', () => {
  const stream = Buffer.concat([SSL2_HELLO, hex('16 0301 0004 10000000')]);
  const whole = read([stream]);
  assert.deepEqual(whole.results, ['ok']);
  assert.deepEqual(whole.recs.map((r) => [r.type, r.version, r.header]), [
    [CONTENT_TYPE_SSL2_CLIENT_HELLO, 0x0301, '8022'], [CONTENT_TYPE_HANDSHAKE, 0x0301, '1603010004'],
  ]);
  assert.equal(whole.recs[0].fragment, SSL2_HELLO.subarray(2).toString('hex'));
  for (let cut = 0; cut <= stream.length; cut++) {
    assert.deepEqual(withoutTs(read([stream.subarray(0, cut), stream.subarray(cut)]).recs), withoutTs(whole.recs), `cut ${cut}`);
  }
});

test('TlsRecordReader rejects an SSLv2 record that is not a 3.x ClientHello', () => {
  const notHello = Buffer.from(SSL2_HELLO);
  notHello[2] = 4; // SSLv2 SERVER-HELLO
  const counters = new Counters();
  assert.deepEqual(read([notHello], counters).results, ['invalid']);
  const ssl2Only = Buffer.from(SSL2_HELLO);
  ssl2Only[3] = 0; ssl2Only[4] = 2; // version 0x0002: SSL 2.0 proper
  assert.deepEqual(read([ssl2Only], counters).results, ['invalid']);
  assert.deepEqual(read([hex('8003 010301')], counters).results, ['invalid']); // shorter than any hello
  assert.equal(counters.get('tls.invalid_sslv2_header'), 3);
});

// First 11 bytes of real hellos (ws-tls12-dsb.pcapng stream 0; arkime-tls13.pcap draft-18 ServerHello):
//   client 16 0301 00e0 01 0000dc 0303      server 16 0303 0070 02 00006c 0303      draft 16 0301 0052 02 00004e 7f12
const CLIENT_START = hex('16 0301 00e0 01 0000dc 0303');
const SERVER_START = hex('16 0303 0070 02 00006c 0303');
const DRAFT_SERVER_START = hex('16 0301 0052 02 00004e 7f12');

test('probeTls matches a ClientHello on direction 0 and a ServerHello on direction 1 after 11 bytes, not before', () => {
  for (const [dir, start] of [[0, CLIENT_START], [1, SERVER_START], [1, DRAFT_SERVER_START]] as const) {
    for (let n = 0; n < 11; n++) assert.equal(probeTls(dir, start.subarray(0, n)), 'need-more', `dir ${dir}, ${n} bytes`);
    assert.equal(probeTls(dir, start), 'match');
    assert.equal(probeTls(dir, Buffer.concat([start, Buffer.alloc(100)])), 'match');
  }
});

test('probeTls agrees with the corpus: every flow starting with a hello matches', () => {
  const names = ['arkime-tls-split-client-hello.pcap', 'arkime-tls13.pcap', 'zeek-tls13-ech.pcap', 'ndpi-http_ipv6.pcap',
    'zeek-tls12-decryption.pcap', 'ws-tls12-dsb.pcapng'];
  let flows = 0;
  for (const name of names) {
    for (const f of tlsFlows(name)) {
      flows++;
      assert.equal(probeTls(0, f.streams[0].subarray(0, 11)), 'match', name);
      // ntop.org's server opens with a warning alert (unrecognized_name) before its ServerHello: not a hello start.
      const serverFirst = f.streams[1][0];
      assert.equal(probeTls(1, f.streams[1].subarray(0, 11)), serverFirst === CONTENT_TYPE_ALERT ? 'no-match' : 'match', name);
    }
  }
  assert.equal(flows, 1 + 1 + 2 + 6 + 1 + 2);
});

test('probeTls refuses a hello in the wrong direction, and other protocols, at the first differing byte', () => {
  assert.equal(probeTls(1, CLIENT_START.subarray(0, 6)), 'no-match');
  assert.equal(probeTls(0, SERVER_START.subarray(0, 6)), 'no-match');
  assert.equal(probeTls(0, Buffer.from('GET / HTTP/1.1\r\n')), 'no-match');
  assert.equal(probeTls(1, Buffer.from('HTTP/1.1 200 OK\r\n')), 'no-match');
  assert.equal(probeTls(0, Buffer.from('SSH-2.0-OpenSSH_9.6\r\n')), 'no-match');
  assert.equal(probeTls(0, hex('17 0303 0010')), 'no-match'); // application data: a midstream pickup
  assert.equal(probeTls(0, hex('16 02')), 'no-match');
  assert.equal(probeTls(0, hex('16 0305')), 'no-match');
  assert.equal(probeTls(0, hex('16 0301 4001')), 'no-match'); // record longer than 2^14
  assert.equal(probeTls(0, hex('16 0301 0003')), 'no-match'); // too short for a handshake header
  assert.equal(probeTls(0, hex('16 0301 00e0 01 000020')), 'no-match'); // a 32-byte ClientHello cannot hold its fields
  assert.equal(probeTls(0, hex('16 0301 00e0 01 0000dc 0203')), 'no-match'); // hello version 2.3
  assert.equal(probeTls(0, hex('16 0301 00e0 01 0000dc 0305')), 'no-match');
  assert.equal(probeTls(0, hex('16 0301 00e0 01 0000dc 7f12')), 'no-match'); // drafts only changed the ServerHello
});

test('probeTls matches an SSLv2-compatible ClientHello on direction 0 only, after 11 bytes', () => {
  for (let n = 0; n < 11; n++) assert.equal(probeTls(0, SSL2_HELLO.subarray(0, n)), 'need-more', `${n} bytes`);
  assert.equal(probeTls(0, SSL2_HELLO), 'match');
  assert.equal(probeTls(1, SSL2_HELLO), 'no-match');
  const badLength = Buffer.from(SSL2_HELLO);
  badLength[1] = 0x26; // the header no longer equals 9 + specs + session id + challenge
  assert.equal(probeTls(0, badLength), 'no-match');
  const badSpecs = Buffer.from(SSL2_HELLO);
  badSpecs[6] = 0x08; // not a multiple of 3
  assert.equal(probeTls(0, badSpecs.subarray(0, 7)), 'no-match');
  const shortChallenge = Buffer.from(SSL2_HELLO);
  shortChallenge[10] = 0x0f;
  assert.equal(probeTls(0, shortChallenge), 'no-match');
});

test('parseAlert reads level and description of a plaintext alert only', () => {
  assert.deepEqual(parseAlert(hex('0270')), { level: 2, description: 0x70 });
  assert.equal(parseAlert(hex('02')), undefined);
  assert.equal(parseAlert(hex('0102030405')), undefined);
});

test('TlsRecordReader leaves ChangeCipherSpec and handshake types as on the wire', () => {
  const { recs } = read([hex('14 0303 0001 01 16 0303 0004 0e000000')]);
  assert.deepEqual(recs.map((r) => r.type), [CONTENT_TYPE_CHANGE_CIPHER_SPEC, CONTENT_TYPE_HANDSHAKE]);
});

test('TlsRecordReader survives seeded mutations of a real stream: no throw, bounded pending bytes', () => {
  const [flow] = tlsFlows('zeek-tls12-decryption.pcap');
  let s = 0x2545f491;
  const next = (): number => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s;
  };
  for (let i = 0; i < 400; i++) {
    const stream = Buffer.from(flow.streams[i % 2]);
    for (let k = 0; k < 1 + (next() % 4); k++) stream[next() % stream.length] = next() & 0xff;
    const reader = new TlsRecordReader(new Counters());
    let off = 0;
    while (off < stream.length) {
      const n = 1 + (next() % 1500);
      reader.push(stream.subarray(off, off + n), off, () => undefined);
      assert.ok(reader.pendingBytes() <= 5 + MAX_RECORD_PAYLOAD_BYTES, `iteration ${i}`);
      off += n;
    }
  }
});

/** Offsets where each record of a direction starts, and the stream's end. */
function boundaries(flow: TlsFlow, dir: 0 | 1): number[] {
  const at = [0];
  for (const r of flow.records[dir]) at.push(at[at.length - 1] + RECORD_HEADER_BYTES + r.length);
  return at;
}

/** A tracker shown `stream` from `from` on in `chunks` pieces: the absolute offset it answered, or -1. */
function track(stream: Uint8Array, from: number, cuts: readonly number[] = []): number {
  const t = new TlsStartTracker();
  let at = from;
  for (const end of [...cuts.filter((c) => c > from && c < stream.length), stream.length]) {
    const k = t.next(stream.subarray(at, end));
    if (k >= 0) return at + k;
    at = end;
  }
  return -1;
}

test('TlsStartTracker, picked up anywhere in real TLS streams, answers a record boundary that RESYNC_RECORDS records before it vouch for', () => {
  let found = 0;
  let fromBoundary = 0;
  for (const name of ['zeek-tls12-decryption.pcap', 'zeek-tls13-ech.pcap', 'arkime-tls13.pcap']) {
    for (const flow of tlsFlows(name)) {
      for (const dir of [0, 1] as const) {
        const stream = flow.streams[dir];
        const starts = boundaries(flow, dir);
        // the last start may be that of a record the capture cut short
        assert.ok(starts[starts.length - 1] <= stream.length);
        for (let from = 0; from < stream.length; from++) {
          const got = track(stream, from);
          if (got < 0) {
            // only where fewer than RESYNC_RECORDS + 1 record starts follow
            assert.ok(starts.filter((s) => s >= from && s < stream.length).length <= RESYNC_RECORDS, `${name} dir ${dir} from ${from}: none found`);
            continue;
          }
          found++;
          const i = starts.indexOf(got);
          assert.ok(i >= RESYNC_RECORDS && got < stream.length, `${name} dir ${dir} from ${from}: ${got} is a record start`);
          assert.ok(starts[i - RESYNC_RECORDS] >= from, `${name} dir ${dir} from ${from}: vouched for by records after the pickup`);
          const r = starts.indexOf(from);
          const versions = new Set(flow.records[dir].slice(r, r + RESYNC_RECORDS).map((rec) => rec.version));
          if (r >= 0 && versions.size === 1) {
            // from a record start, with one record-layer version in the records that vouch
            fromBoundary++;
            assert.equal(got, starts[r + RESYNC_RECORDS], `${name} dir ${dir} from the record start ${from}`);
          }
        }
      }
    }
  }
  assert.ok(found > 1000 && fromBoundary > 10, `pickups resynced: ${found}, from a record start: ${fromBoundary}`);
});

test('TlsStartTracker answers the same however the stream is cut (every offset, and byte by byte)', () => {
  const [flow] = tlsFlows('zeek-tls12-decryption.pcap');
  for (const dir of [0, 1] as const) {
    const stream = flow.streams[dir];
    for (const from of [0, 1, 7, 100, 333]) {
      const whole = track(stream, from);
      assert.ok(whole > from, `dir ${dir} from ${from}`);
      for (let cut = from + 1; cut < stream.length; cut++) assert.equal(track(stream, from, [cut]), whole, `dir ${dir} from ${from} cut at ${cut}`);
      const bytewise = Array.from({ length: stream.length - from }, (_, i) => from + i + 1);
      assert.equal(track(stream, from, bytewise), whole, `dir ${dir} from ${from} byte by byte`);
    }
  }
});

test('TlsStartTracker finds nothing in random bytes, in text, or across a chain whose version changes', () => {
  // xorshift32: the same 4 MB every run
  let x = 0x9e3779b9;
  const random = new Uint8Array(4 << 20);
  for (let i = 0; i < random.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    random[i] = x & 0xff;
  }
  assert.equal(track(random, 0, [1460, 70_000, 1 << 20]), -1);
  assert.equal(track(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(10_000)), 0), -1);
  // headers with lengths that chain, but TLS 1.2 then 1.0: a record layer keeps one version
  const rec = (minor: number, len: number): Buffer => Buffer.concat([Buffer.from([CONTENT_TYPE_APPLICATION_DATA, 3, minor, len >> 8, len & 0xff]), Buffer.alloc(len, 0x41)]);
  assert.equal(track(Buffer.concat([rec(3, 100), rec(3, 200), rec(1, 50), rec(1, 60)]), 0), -1);
  const same = Buffer.concat([rec(3, 100), rec(3, 200), rec(3, 0), rec(3, 60)]);
  assert.equal(track(same, 0), 105 + 205 + 5, 'an empty record is a record');
  assert.equal(track(Buffer.concat([Buffer.from('junk'), same]), 0), 4 + 105 + 205 + 5);
});

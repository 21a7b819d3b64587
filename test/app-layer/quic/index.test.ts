import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Counters } from '../../../sensor/events/counters.js';
import type { Direction, FlowInfo } from '../../../sensor/flow/stream.js';
import { Pipeline } from '../../../sensor/pipeline.js';
import {
  MAX_CRYPTO_STREAM_BYTES, MAX_INITIAL_PACKETS_PER_FLOW, MAX_TRACKED_FLOWS, QUIC_INITIAL_KEYS_BYTES, QuicTracker, type QuicHelloInfo,
} from '../../../sensor/app-layer/quic/index.js';
import { memoryInUse } from '../../../sensor/events/memuse.js';
import { fixture } from '../../helpers/replay.js';
import { hex } from '../../helpers/packets.js';
import {
  ackFrame, clientHello, cryptoFrame, keysFor, paddingFrame, pingFrame, protectLong, seededBytes, shortHeader, V1,
} from '../../fixtures/quic/quic-encoder.js';
import { SPLIT_HELLO, splitHelloPcap } from '../../fixtures/quic/make-split-hello.js';
import { RFC_CLIENT_CRYPTO_FRAME, RFC9001_RETRY, vector } from '../../fixtures/quic/vectors.js';

function flowInfo(flowId = 1): FlowInfo {
  return { flowId, proto: 17, srcIp: '10.0.0.1', srcPort: 50000 + (flowId % 10000), dstIp: '192.0.2.10', dstPort: 443, vlan: [], startUs: 0 };
}

interface Harness {
  tracker: QuicTracker;
  counters: Counters;
  hellos: QuicHelloInfo[];
  /** Feeds datagrams on one flow; returns what `datagram` returned for each. */
  feed(datagrams: Uint8Array[], dir?: Direction, flowId?: number): boolean[];
}

function harness(): Harness {
  const counters = new Counters();
  const hellos: QuicHelloInfo[] = [];
  const tracker = new QuicTracker(counters, (h) => hellos.push(h));
  return {
    tracker, counters, hellos,
    feed: (datagrams, dir = 0, flowId = 1) => datagrams.map((d, i) => tracker.datagram(flowInfo(flowId), dir, d, 1000 + i)),
  };
}

/** The hello without the flow, with bytes as hex, for deepEqual. */
function plain(h: QuicHelloInfo): Record<string, unknown> {
  return {
    tsUs: h.tsUs, version: h.version.name, number: h.version.number, handshake: h.handshake, dcid: h.dcid,
    body: Buffer.from(h.clientHelloBody).toString('hex'), sni: h.sni, alpn: h.clientHello?.alpn, userAgent: h.userAgent,
  };
}

/** The `quic.*` counters (the TLS parser may count its own). */
function quicCounters(c: Counters): Record<string, number> {
  return Object.fromEntries(Object.entries(c.snapshot()).filter(([k]) => k.startsWith('quic.')));
}

const RFC_HELLO_BODY = RFC_CLIENT_CRYPTO_FRAME.subarray(8).toString('hex'); // after frame header (4) and handshake header (4)

test('QuicTracker reports the RFC 9001 A.2 ClientHello once, with SNI example.com, and counts the datagram', () => {
  const h = harness();
  assert.deepEqual(h.feed([vector('rfc9001-a2-client-initial')]), [true]);
  assert.deepEqual(h.hellos.map(plain), [{
    tsUs: 1000, version: 'v1', number: 1, handshake: 'tls', dcid: '8394c8f03e515708', body: RFC_HELLO_BODY, sni: 'example.com', alpn: ['alpn'], userAgent: undefined,
  }]);
  assert.equal(h.hellos[0].flow.flowId, 1);
  assert.deepEqual(quicCounters(h.counters), {
    'quic.bytes_uninspectable': 1200, 'quic.client_hello': 1, 'quic.client_hello_sni': 1, 'quic.flows': 1, 'quic.flows_tracked': 1, 'quic.packets_uninspectable': 1,
  });
});

test('QuicTracker reports the RFC 9369 A.2 (QUIC v2) ClientHello', () => {
  const h = harness();
  h.feed([vector('rfc9369-a2-client-initial')]);
  assert.deepEqual(h.hellos.map(plain), [{
    tsUs: 1000, version: 'v2', number: 0x6b3343cf, handshake: 'tls', dcid: '8394c8f03e515708', body: RFC_HELLO_BODY, sni: 'example.com', alpn: ['alpn'], userAgent: undefined,
  }]);
});

test('QuicTracker reports once per connection: a retransmitted Initial adds nothing but bytes', () => {
  const h = harness();
  h.feed([vector('rfc9001-a2-client-initial'), vector('rfc9001-a2-client-initial')]);
  assert.equal(h.hellos.length, 1);
  assert.equal(h.counters.get('quic.bytes_uninspectable'), 2400);
  assert.equal(h.counters.get('quic.packets_uninspectable'), 2);
});

test('QuicTracker reassembles a ClientHello split over two datagrams arriving out of order (generated connection)', () => {
  const h = harness();
  for (const [i, d] of SPLIT_HELLO.datagrams.entries()) assert.equal(h.tracker.datagram(flowInfo(), d.dir, d.payload, d.tsUs), true, `datagram ${i}`);
  assert.deepEqual(h.hellos.map(plain), [{
    tsUs: SPLIT_HELLO.helloTsUs, version: 'v1', number: 1, handshake: 'tls', dcid: SPLIT_HELLO.odcidHex,
    body: Buffer.from(SPLIT_HELLO.helloBody).toString('hex'), sni: SPLIT_HELLO.sni, alpn: SPLIT_HELLO.alpn, userAgent: undefined,
  }]);
  assert.equal(h.counters.get('quic.bytes_uninspectable'), SPLIT_HELLO.quicBytes);
  assert.equal(h.counters.get('quic.packets_uninspectable'), SPLIT_HELLO.datagrams.length);
  assert.deepEqual(h.counters.snapshot('anomaly'), {});
  assert.equal(h.tracker.bufferedCryptoBytes, 0, 'the reassembly buffer is freed after the hello');
});

test('QuicTracker finds the split hello in split-client-hello.pcap replayed through the pipeline', () => {
  assert.deepEqual(readFileSync(fixture('quic', 'split-client-hello.pcap')), splitHelloPcap(), 'the fixture is the generator output');
  const counters = new Counters();
  const hellos: QuicHelloInfo[] = [];
  const tracker = new QuicTracker(counters, (i) => hellos.push(i));
  const p = new Pipeline({ datagrams: tracker, flowEnded: { flowEnded: (r) => tracker.end(r.flowId) } });
  p.runFile(fixture('quic', 'split-client-hello.pcap'));
  assert.deepEqual(hellos.map((i) => [i.sni, i.flow.srcIp, i.flow.dstPort, Buffer.from(i.clientHelloBody).equals(SPLIT_HELLO.helloBody)]), [
    [SPLIT_HELLO.sni, '10.0.0.1', 443, true],
  ]);
  assert.equal(counters.get('quic.bytes_uninspectable'), 5288); // tshark: sum of UDP payloads (README)
  assert.equal(tracker.size, 0, 'flow end dropped the state');
});

/** A client hello cut into CRYPTO chunks, each in its own Initial packet and datagram. */
function splitInitials(version: number, dcid: Buffer, hello: Buffer, cuts: number[], first = 0): Buffer[] {
  const bounds = [0, ...cuts, hello.length];
  return bounds.slice(0, -1).map((from, i) =>
    protectLong({ version, dcid, scid: seededBytes(8, 99), pn: first + i, padTo: 1200, frames: cryptoFrame(from, hello.subarray(from, bounds[i + 1])) }));
}

test('QuicTracker reassembles every arrival order of a hello cut into three datagrams', () => {
  const hello = clientHello({ sni: 'three.example', alpn: ['h3'], postQuantum: true, seed: 3 });
  const dgrams = splitInitials(V1, seededBytes(8, 60), hello, [700, 1300]);
  for (const order of [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]) {
    const h = harness();
    h.feed(order.map((i) => dgrams[i]));
    assert.deepEqual(h.hellos.map((i) => [i.sni, i.tsUs]), [['three.example', 1002]], `order ${order}`);
    assert.deepEqual(h.counters.snapshot('anomaly'), {}, `order ${order}`);
  }
});

test('QuicTracker keeps the first DCID keys after the client switches to the server connection id', () => {
  const hello = clientHello({ sni: 'switch.example', seed: 4 });
  const odcid = seededBytes(8, 61);
  const serverCid = seededBytes(8, 62);
  const h = harness();
  h.feed([protectLong({ version: V1, dcid: odcid, pn: 0, padTo: 1200, frames: cryptoFrame(0, hello.subarray(0, 100)) })]);
  h.tracker.datagram(flowInfo(), 1, protectLong({ version: V1, side: 'server', dcid: Buffer.alloc(0), scid: serverCid, pn: 0, keys: keysFor(V1, odcid, 'server'), frames: ackFrame(0) }), 1500);
  h.feed([protectLong({ version: V1, dcid: serverCid, pn: 1, padTo: 1200, keys: keysFor(V1, odcid), frames: cryptoFrame(100, hello.subarray(100)) })]);
  assert.deepEqual(h.hellos.map((i) => [i.sni, i.dcid]), [['switch.example', odcid.toString('hex')]]);
  assert.deepEqual(h.counters.snapshot('anomaly'), {});
});

test('QuicTracker starts over with keys from the new DCID after a Retry', () => {
  const hello = clientHello({ sni: 'retry.example', seed: 5 });
  const first = seededBytes(8, 63);
  const retryCid = seededBytes(8, 64);
  const h = harness();
  h.feed([protectLong({ version: V1, dcid: first, pn: 0, padTo: 1200, frames: cryptoFrame(0, hello.subarray(0, 50)) })]);
  h.tracker.datagram(flowInfo(), 1, RFC9001_RETRY, 1500);
  h.feed(splitInitials(V1, retryCid, hello, [60], 1));
  assert.deepEqual(h.hellos.map((i) => [i.sni, i.dcid]), [['retry.example', retryCid.toString('hex')]]);
  assert.deepEqual(h.counters.snapshot('anomaly'), {});
});

test('QuicTracker walks coalesced Initial, 0-RTT and 1-RTT packets in one datagram', () => {
  const dcid = seededBytes(8, 65);
  const hello = clientHello({ sni: 'coalesced.example', seed: 6 });
  const initial = protectLong({ version: V1, dcid, pn: 0, frames: Buffer.concat([cryptoFrame(0, hello), paddingFrame(200)]) });
  const zeroRtt = protectLong({ version: V1, type: '0rtt', dcid, pn: 0, keys: { key: seededBytes(16, 1), iv: seededBytes(12, 2), hp: seededBytes(16, 3) }, frames: seededBytes(300, 4) });
  const h = harness();
  assert.deepEqual(h.feed([Buffer.concat([initial, zeroRtt, shortHeader(dcid, seededBytes(100, 5))])]), [true]);
  assert.deepEqual(h.hellos.map((i) => i.sni), ['coalesced.example']);
  assert.deepEqual(h.counters.snapshot('anomaly'), {});
});

test('QuicTracker counts a version-negotiated flow and QUIC versions it cannot decrypt, without a hello', () => {
  const h = harness();
  const draft27 = Buffer.from(vector('rfc9001-a2-client-initial'));
  draft27.writeUInt32BE(0xff00001b, 1);
  assert.deepEqual(h.feed([draft27]), [true]);
  assert.deepEqual(h.feed([hex('80 00000000 00 08 8394c8f03e515708 00000001 6b3343cf')], 1), [true]);
  assert.equal(h.hellos.length, 0);
  assert.equal(h.counters.get('quic.undecryptable_version'), 1);
  assert.equal(h.counters.get('quic.version_negotiation'), 1);
  assert.equal(h.counters.get('quic.packets_uninspectable'), 2);
});

test('QuicTracker counts short-header datagrams only on flows already known to be QUIC', () => {
  const h = harness();
  const short = shortHeader(seededBytes(8, 1), seededBytes(60, 2));
  assert.deepEqual(h.feed([short], 1, 7), [false]);
  h.feed([vector('rfc9001-a2-client-initial')], 0, 7);
  assert.deepEqual(h.feed([short, short], 1, 7), [true, true]);
  assert.equal(h.counters.get('quic.bytes_uninspectable'), 1200 + 2 * short.length);
  assert.equal(h.tracker.isQuic(7), true);
  h.tracker.end(7);
  assert.equal(h.tracker.isQuic(7), false);
  assert.deepEqual(h.feed([short], 1, 7), [false]);
});

test('QuicTracker ignores non-QUIC UDP on port 443: nothing counted, nothing tracked', () => {
  const h = harness();
  const dns = hex('12 34 01 00 00 01 00 00 00 00 00 00 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00 01');
  const dtls = hex('16 fefd 0000 000000000000 0040 01 000034 0000 000000 000034 fefd');
  const stun = hex('0001 0000 2112a442 000000000000000000000000');
  assert.deepEqual(h.feed([dns, dtls, stun, seededBytes(1200, 8), hex(''), hex('c0 00')]), [false, false, false, false, false, false]);
  assert.deepEqual(h.counters.snapshot(), {});
  assert.equal(h.tracker.size, 0);
});

test('QuicTracker failure modes on a known QUIC flow: short datagram, DCID > 20, bad Length varint', () => {
  const h = harness();
  h.feed([vector('rfc9001-a3-server-initial')], 1); // a server Initial makes the flow known; not decrypted
  const dcid21 = Buffer.concat([hex('c0 00000001 15'), seededBytes(21, 5), hex('00 00 4010'), Buffer.alloc(16)]);
  const badLength = Buffer.concat([hex('c0 00000001 04 01020304 00 00'), hex('c0 00 00 00 00 00 ff ff'), Buffer.alloc(30)]);
  assert.deepEqual(h.feed([hex('c0 00 00'), dcid21, badLength]), [true, true, true]);
  assert.deepEqual(h.counters.snapshot('anomaly'), {
    'quic.header.cid_too_long': 1, 'quic.header.length_beyond_datagram': 1, 'quic.header.truncated': 1,
  });
  assert.equal(h.hellos.length, 0);
  // On an unknown flow a cut header or an over-long DCID is not taken for QUIC; a Length past the end
  // is (a snap length can cut a real Initial), with its anomaly.
  const fresh = harness();
  assert.deepEqual(fresh.feed([hex('c0 00 00'), dcid21, badLength]), [false, false, true]);
  assert.deepEqual(fresh.counters.snapshot('anomaly'), { 'quic.header.length_beyond_datagram': 1 });
});

test('QuicTracker on every cut of the RFC datagram: no hello, never a throw; cut Initials count once the header is whole', () => {
  const b = vector('rfc9001-a2-client-initial');
  for (let n = 0; n < b.length; n++) {
    const h = harness();
    assert.deepEqual(h.feed([b.subarray(0, n)]), [n >= 18], `cut ${n}`);
    assert.equal(h.hellos.length, 0);
    assert.deepEqual(h.counters.snapshot('anomaly'), n >= 18 ? { 'quic.header.length_beyond_datagram': 1 } : {}, `cut ${n}`);
  }
});

test('QuicTracker counts an authentication failure (DCID changed in flight) and reports no hello', () => {
  const b = Buffer.from(vector('rfc9001-a2-client-initial'));
  b[13] ^= 0xff; // last DCID byte: keys and associated data both change
  const h = harness();
  assert.deepEqual(h.feed([b]), [true]);
  assert.equal(h.hellos.length, 0);
  assert.deepEqual(h.counters.snapshot('anomaly'), { 'quic.initial.decrypt_failed': 1 });
  assert.equal(h.counters.get('quic.bytes_uninspectable'), 1200);
});

test('QuicTracker gives up on CRYPTO data beyond MAX_CRYPTO_STREAM_BYTES and on a hello declared larger', () => {
  const dcid = seededBytes(8, 66);
  const h = harness();
  h.feed([
    protectLong({ version: V1, dcid, pn: 0, padTo: 1200, frames: cryptoFrame(MAX_CRYPTO_STREAM_BYTES - 5, seededBytes(10, 1)) }),
    ...splitInitials(V1, dcid, clientHello({ sni: 'late.example' }), [], 1),
  ]);
  assert.equal(h.hellos.length, 0);
  assert.equal(h.counters.get('quic.crypto_beyond_limit'), 1);
  const big = harness();
  big.feed([protectLong({ version: V1, dcid, pn: 0, padTo: 1200, frames: cryptoFrame(0, hex('01 010000 0303')) })]);
  assert.equal(big.hellos.length, 0);
  assert.equal(big.counters.get('quic.crypto_beyond_limit'), 1);
  assert.equal(big.tracker.bufferedCryptoBytes, 0);
});

test('QuicTracker flags Initial frames that are not allowed and CRYPTO data that is not a ClientHello', () => {
  const dcid = seededBytes(8, 67);
  const h = harness();
  h.feed([protectLong({ version: V1, dcid, pn: 0, padTo: 1200, frames: hex('08 00 01 41') })], 0, 1);
  h.feed([protectLong({ version: V1, dcid, pn: 0, padTo: 1200, frames: cryptoFrame(0, hex('02 000004 01020304')) })], 0, 2);
  assert.deepEqual(h.counters.snapshot('anomaly'), { 'quic.initial.frame_not_allowed': 1, 'quic.initial.not_client_hello': 1 });
  assert.equal(h.hellos.length, 0);
});

test('QuicTracker stops decrypting after MAX_INITIAL_PACKETS_PER_FLOW Initials without a hello', () => {
  const dcid = seededBytes(8, 68);
  const pings = Array.from({ length: MAX_INITIAL_PACKETS_PER_FLOW + 2 }, (_, pn) => protectLong({ version: V1, dcid, pn, padTo: 1200, frames: pingFrame() }));
  const h = harness();
  h.feed(pings);
  assert.equal(h.counters.get('quic.initial_limit'), 1);
  assert.equal(h.counters.get('quic.packets_uninspectable'), MAX_INITIAL_PACKETS_PER_FLOW + 2);
});

test('QuicTracker.end drops a half-reassembled hello, frees its buffer and counts it incomplete', () => {
  const hello = clientHello({ sni: 'half.example', seed: 9 });
  const h = harness();
  h.feed(splitInitials(V1, seededBytes(8, 69), hello, [100]).slice(0, 1));
  assert.ok(h.tracker.bufferedCryptoBytes > 0);
  h.tracker.end(1);
  assert.equal(h.tracker.bufferedCryptoBytes, 0);
  assert.equal(h.counters.get('quic.client_hello_incomplete'), 1);
  assert.equal(h.tracker.size, 0);
  h.tracker.end(1); // unknown flow: nothing happens
});

test('QuicTracker evicts the least recently seen flow past MAX_TRACKED_FLOWS', () => {
  const h = harness();
  // Handshake packets: recognised and tracked, no decryption work.
  const pkt = protectLong({ version: V1, type: 'handshake', dcid: seededBytes(8, 1), pn: 0, keys: keysFor(V1, seededBytes(8, 2)), frames: seededBytes(40, 3) });
  const quarter = MAX_TRACKED_FLOWS / 4;
  for (let id = 0; id < quarter + 2; id++) h.tracker.datagram(flowInfo(id), 0, pkt, id);
  h.tracker.datagram(flowInfo(0), 0, pkt, 0); // flow 0 is seen again: it moves to the young end
  for (let id = quarter + 2; id < MAX_TRACKED_FLOWS; id++) h.tracker.datagram(flowInfo(id), 0, pkt, id);
  assert.equal(h.tracker.size, MAX_TRACKED_FLOWS);
  h.tracker.datagram(flowInfo(MAX_TRACKED_FLOWS), 0, pkt, 0);
  assert.equal(h.tracker.size, MAX_TRACKED_FLOWS);
  assert.equal(h.counters.get('quic.flows_evicted'), 1);
  assert.equal(h.tracker.isQuic(0), true);
  assert.equal(h.tracker.isQuic(1), false);
  assert.equal(h.tracker.isQuic(MAX_TRACKED_FLOWS), true);
});

test('QuicTracker reads the Google QUIC Q025 CHLO of ndpi-http_ipv6.pcap and counts the gQUIC flow', () => {
  const counters = new Counters();
  const hellos: QuicHelloInfo[] = [];
  const tracker = new QuicTracker(counters, (i) => hellos.push(i));
  new Pipeline({ datagrams: tracker, flowEnded: { flowEnded: (r) => tracker.end(r.flowId) } }).runFile(fixture('quic', 'ndpi-http_ipv6.pcap'));
  assert.deepEqual(hellos.map((i) => ({ ...plain(i), src: i.flow.srcIp, sport: i.flow.srcPort })), [{
    tsUs: 1448269127400446, version: 'Q025', number: 0x51303235, handshake: 'gquic-chlo', dcid: '49bee2d3f0edccd6', body: '',
    sni: 'www.google.it', alpn: undefined, userAgent: 'Chrome/46.0.2490.80 Linux x86_64', src: '2a00:d40:1:3:7aac:c0ff:fea7:d4c', sport: 45931,
  }]);
  // tshark (README): frame 5 at 1448269127.400446; 62 gQUIC datagrams, 12,133 payload bytes; the mid-connection flow from port 55145 is not QUIC to either.
  assert.equal(counters.get('quic.packets_uninspectable'), 62);
  assert.equal(counters.get('quic.bytes_uninspectable'), 12133);
  assert.equal(counters.get('quic.flows_gquic'), 1);
  assert.deepEqual(counters.snapshot('anomaly'), {});
});

test('QuicTracker survives seeded mutations of QUIC datagrams without throwing or leaking state', () => {
  const base = [vector('rfc9001-a2-client-initial'), vector('rfc9369-a2-client-initial'), ...SPLIT_HELLO.datagrams.map((d) => d.payload)];
  const rnd = seededBytes(4 * 4000, 1234);
  const h = harness();
  for (let i = 0; i < 4000; i++) {
    const src = base[rnd[i * 4] % base.length];
    const b = Buffer.from(src.subarray(0, rnd[i * 4 + 1] % 2 === 0 ? src.length : (rnd[i * 4 + 2] * 5) % src.length));
    for (let k = 0; k < 1 + (rnd[i * 4 + 3] % 4); k++) b[(rnd[(i * 4 + k * 7) % rnd.length] * 31 + k * 977) % Math.max(1, b.length)] ^= 1 << k;
    h.tracker.datagram(flowInfo(i % 50), (i % 3 === 0 ? 1 : 0) as Direction, b, i);
    if (i % 200 === 199) for (let f = 0; f < 50; f++) h.tracker.end(f);
  }
  assert.equal(h.tracker.size, 0);
  assert.equal(h.tracker.bufferedCryptoBytes, 0);
  assert.equal(memoryInUse(h.counters), 0, 'every charge given back');
});

test('QuicTracker charges a flow\'s Initial keys and CRYPTO buffer to app_layer.memuse while its hello is incomplete', () => {
  // Two flows each send the first of two Initials of their hello: each holds keys and part of the hello.
  // One completes its hello (keys and buffer dropped at once), the other ends without it.
  const h = harness();
  const first = splitInitials(V1, seededBytes(8, 70), clientHello({ sni: 'one.example', seed: 10 }), [100]);
  const second = splitInitials(V1, seededBytes(8, 71), clientHello({ sni: 'two.example', seed: 11 }), [100]);
  h.feed(first.slice(0, 1), 0, 1);
  h.feed(second.slice(0, 1), 0, 2);
  assert.ok(h.tracker.bufferedCryptoBytes > 0);
  assert.equal(memoryInUse(h.counters), 2 * QUIC_INITIAL_KEYS_BYTES + h.tracker.bufferedCryptoBytes);
  h.feed(first.slice(1), 0, 1);
  assert.deepEqual(h.hellos.map((i) => i.sni), ['one.example']);
  assert.equal(memoryInUse(h.counters), QUIC_INITIAL_KEYS_BYTES + h.tracker.bufferedCryptoBytes, 'flow 1 gave back all it held with its hello');
  h.tracker.end(2);
  assert.equal(memoryInUse(h.counters), 0);
  h.tracker.end(1);
  assert.equal(memoryInUse(h.counters), 0);
});

test('QuicTracker gives back the charge of Initial keys when it gives up on the hello', () => {
  const dcid = seededBytes(8, 72);
  const pings = Array.from({ length: MAX_INITIAL_PACKETS_PER_FLOW + 1 }, (_, pn) => protectLong({ version: V1, dcid, pn, padTo: 1200, frames: pingFrame() }));
  const h = harness();
  h.feed(pings.slice(0, 1));
  assert.equal(memoryInUse(h.counters), QUIC_INITIAL_KEYS_BYTES, 'keys, no CRYPTO data');
  h.feed(pings.slice(1));
  assert.equal(h.counters.get('quic.initial_limit'), 1);
  assert.equal(memoryInUse(h.counters), 0, 'the keys went with the hello given up, before the flow ends');
  assert.equal(h.tracker.size, 1);
});

test('QuicTracker gives back the charge of a flow evicted past MAX_TRACKED_FLOWS', () => {
  const h = harness();
  h.feed(splitInitials(V1, seededBytes(8, 73), clientHello({ sni: 'evicted.example', seed: 12 }), [100]).slice(0, 1), 0, 0);
  assert.ok(memoryInUse(h.counters) > QUIC_INITIAL_KEYS_BYTES);
  const pkt = protectLong({ version: V1, type: 'handshake', dcid: seededBytes(8, 1), pn: 0, keys: keysFor(V1, seededBytes(8, 2)), frames: seededBytes(40, 3) });
  for (let id = 1; id <= MAX_TRACKED_FLOWS; id++) h.tracker.datagram(flowInfo(id), 0, pkt, id);
  assert.equal(h.counters.get('quic.flows_evicted'), 1);
  assert.equal(h.tracker.isQuic(0), false);
  assert.equal(memoryInUse(h.counters), 0);
});

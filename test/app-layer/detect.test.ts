/**
 * Protocol detection and flow bypass: a flow no protocol takes is bypassed (its later bytes are
 * neither reassembled nor held, only counted), and so is a flow whose chosen protocol asks for it,
 * even while the bytes held during detection are replayed to it. Byte counters stay whole.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppLayerFactory, MAX_HELD_BYTES, MAX_HELD_RUNS, PROBE_MAX_BYTES, RESYNC_MAX_BYTES, type AppLayerProtocol } from '../../sensor/app-layer/detect.js';
import { HOLD_RUN_OVERHEAD_BYTES } from '../../sensor/app-layer/stream-hold.js';
import { memoryInUse } from '../../sensor/events/memuse.js';
import { findHttpStart, httpAppLayer } from '../../sensor/app-layer/http/index.js';
import type { HttpParserEvent, HttpSink } from '../../sensor/app-layer/http/session.js';
import { Counters } from '../../sensor/events/counters.js';
import { BYPASS, type Direction, type FlowInfo, type StreamConsumer } from '../../sensor/flow/stream.js';
import { Pipeline } from '../../sensor/pipeline.js';
import { ethTcp, TCP_FLAGS } from '../helpers/packets.js';

const { SYN, ACK, PSH, FIN } = TCP_FLAGS;
const C = { src: '10.1.0.5', dst: '192.0.2.22', sport: 40000, dport: 22 };
const S = { src: C.dst, dst: C.src, sport: C.dport, dport: C.sport };

/** A protocol recognised by its first bytes, "HELO"; its consumer asks for bypass after `enough` bytes. */
function helo(seen: string[], enough: number): AppLayerProtocol {
  return {
    name: 'helo',
    probe: (_dir: Direction, b: Uint8Array) => (b.length < 4 ? 'need-more' : Buffer.from(b.subarray(0, 4)).toString() === 'HELO' ? 'match' : 'no-match'),
    create: () => {
      let n = 0;
      return {
        data: (dir: Direction, b: Uint8Array) => {
          seen.push(`${dir}:${Buffer.from(b).toString()}`);
          n += b.length;
          return n >= enough ? BYPASS : undefined;
        },
        gap: () => undefined,
        end: () => undefined,
      };
    },
  };
}

/** A connection: handshake (unless picked up `midstream`), then each [dir, text] as one segment, then FIN both ways. */
function converse(protocols: AppLayerProtocol[], segments: Array<[Direction, string]>, counters = new Counters(), midstream = false): Pipeline {
  const pipeline = new Pipeline({ counters, streams: new AppLayerFactory(protocols, counters) });
  const send = (f: Uint8Array, ts: number): void => pipeline.packet(1, f, 0, f.length, f.length, ts, 0);
  let cs = 1001;
  let ss = 5001;
  if (!midstream) {
    send(ethTcp({ ...C, seq: 1000, flags: SYN }), 1);
    send(ethTcp({ ...S, seq: 5000, ack: 1001, flags: SYN | ACK }), 2);
  }
  let t = 3;
  for (const [dir, text] of segments) {
    const b = Buffer.from(text);
    if (dir === 0) {
      send(ethTcp({ ...C, seq: cs, ack: ss, flags: PSH | ACK }, b), t++);
      cs += b.length;
    } else {
      send(ethTcp({ ...S, seq: ss, ack: cs, flags: PSH | ACK }, b), t++);
      ss += b.length;
    }
  }
  send(ethTcp({ ...C, seq: cs, ack: ss, flags: FIN | ACK }), t++);
  send(ethTcp({ ...S, seq: ss, ack: cs + 1, flags: FIN | ACK }), t++);
  pipeline.finish();
  return pipeline;
}

describe('protocol detection and bypass', () => {
  test('a flow no protocol takes is bypassed, and every byte of it is still counted as unknown', () => {
    const seen: string[] = [];
    const p = converse([helo(seen, 1e9)], [[1, 'SSH-2.0-OpenSSH_9.2\r\n'], [0, 'SSH-2.0-client\r\n'], [0, 'x'.repeat(500)], [1, 'y'.repeat(700)]]);
    assert.deepEqual(seen, []);
    const c = p.counters;
    assert.equal(c.get('app_layer.unknown'), 1);
    assert.equal(c.get('flow.bypassed'), 1);
    assert.equal(c.get('app_layer.bytes.unknown'), 21 + 16 + 500 + 700);
    assert.ok(c.get('tcp.reassembled_bytes') < 21 + 16 + 500 + 700, 'the rest was not reassembled');
  });

  test('a protocol that asks for bypass while its held bytes are replayed has its flow bypassed', () => {
    const seen: string[] = [];
    const p = converse([helo(seen, 4)], [[0, 'HE'], [0, 'LO there'], [1, 'ignored'], [0, 'more']]);
    // 'HE' is held (need-more), then 'LO there' decides; both go to the protocol (one run of held
    // bytes, replayed as one piece), which has enough.
    assert.deepEqual(seen, ['0:HELO there']);
    const c = p.counters;
    assert.equal(c.get('app_layer.flow.helo'), 1);
    assert.equal(c.get('flow.bypassed'), 1);
    assert.equal(c.get('app_layer.bytes.helo'), 10 + 7 + 4, 'bytes after the bypass still count for the protocol');
  });

  test('HTTP is bypassed once both directions have stopped: after CONNECT 2xx and 101 Switching Protocols, not before', () => {
    for (const [request, response, reason] of [
      ['CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n', 'HTTP/1.1 200 Connection established\r\n\r\n', 'connect'],
      ['GET /chat HTTP/1.1\r\nHost: example.org\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', 'upgrade'],
    ] as const) {
      const events: HttpParserEvent[] = [];
      const sink: HttpSink = { onRequest: () => undefined, onResponse: () => undefined, onBody: () => undefined, onMessageEnd: () => undefined, onParserEvent: (e) => void events.push(e) };
      const counters = new Counters();
      const http: AppLayerProtocol = { name: 'http', probe: httpAppLayer.probe, create: (flow) => httpAppLayer.create(flow, sink, counters) };
      const p = converse([http], [[0, request], [1, response], [0, '\x16\x03\x01 tunnelled bytes'], [1, 'y'.repeat(900)], [0, 'z'.repeat(300)]], counters);
      assert.deepEqual(events.map((e) => [e.kind, e.reason]), [['tunnel', reason]], reason);
      assert.equal(p.counters.get('flow.bypassed'), 1, reason);
      assert.equal(p.counters.get('tcp.reassembled_bytes'), request.length + response.length, `${reason}: bypassed from the response that opened the tunnel`);
    }
    // a plain exchange keeps every byte
    const counters = new Counters();
    const sink: HttpSink = { onRequest: () => undefined, onResponse: () => undefined, onBody: () => undefined, onMessageEnd: () => undefined };
    const http: AppLayerProtocol = { name: 'http', probe: httpAppLayer.probe, create: (flow) => httpAppLayer.create(flow, sink, counters) };
    const p = converse([http], [[0, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'], [1, 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc'], [0, 'GET /2 HTTP/1.1\r\nHost: a\r\n\r\n']], counters);
    assert.equal(p.counters.get('flow.bypassed'), 0);
  });

  test('a protocol that keeps asking for bytes gets all of them', () => {
    const seen: string[] = [];
    const p = converse([helo(seen, 1e9)], [[0, 'HELO'], [1, 'hi'], [0, 'bye']]);
    assert.deepEqual(seen, ['0:HELO', '1:hi', '0:bye']);
    assert.equal(p.counters.get('flow.bypassed'), 0);
  });

  /** HTTP with the real parser, recording the request targets and response statuses it read. */
  function recordingHttp(counters: Counters): { http: AppLayerProtocol; seen: string[] } {
    const seen: string[] = [];
    const sink: HttpSink = {
      onRequest: (r) => void seen.push(`${r.method} ${r.uri}`),
      onResponse: (r) => void seen.push(`${r.status}`),
      onBody: () => undefined,
      onMessageEnd: () => undefined,
    };
    return { http: { name: 'http', probe: httpAppLayer.probe, findStart: findHttpStart, create: (flow) => httpAppLayer.create(flow, sink, counters) }, seen };
  }
  const PAGE_TAIL = `${'word '.repeat(4000)}</p></body></html>`; // 20 kB: more than detection holds

  test('a connection picked up inside a response body is HTTP from its next request on', () => {
    const counters = new Counters();
    const { http, seen } = recordingHttp(counters);
    const next = 'GET /two HTTP/1.1\r\nHost: a\r\n\r\n';
    const p = converse([http], [[1, PAGE_TAIL], [0, next], [1, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'], [0, 'GET /three HTTP/1.1\r\nHost: a\r\n\r\n']], counters, true);
    assert.deepEqual(seen, ['GET /two', '200', 'GET /three']);
    const c = p.counters;
    assert.equal(c.get('tcp.midstream_pickup'), 1);
    assert.equal(c.get('app_layer.resynced'), 1);
    assert.equal(c.get('app_layer.flow.http'), 1);
    assert.equal(c.get('flow.bypassed'), 0);
    assert.equal(c.get('app_layer.bytes.unknown'), PAGE_TAIL.length, 'the body no parser read');
    // the same bytes on a connection seen from its SYN: a server that speaks first, not HTTP
    const fromSyn = recordingHttp(new Counters());
    const q = converse([fromSyn.http], [[1, PAGE_TAIL], [0, next]], new Counters(), false);
    assert.deepEqual(fromSyn.seen, []);
    assert.equal(q.counters.get('app_layer.resynced'), 0);
    assert.equal(q.counters.get('flow.bypassed'), 1);
  });

  test('a start line cut in two across segments is found; what came before it is a gap to the parser', () => {
    const counters = new Counters();
    const { http, seen } = recordingHttp(counters);
    const p = converse([http], [[0, 'tail of an upload\r\nGE'], [1, PAGE_TAIL], [0, 'T /four HTTP/1.1\r\nHost: a\r\n\r\n']], counters, true);
    assert.deepEqual(seen, ['GET /four']);
    assert.equal(p.counters.get('app_layer.resynced'), 1);
    assert.equal(p.counters.get('app_layer.bytes.unknown'), 'tail of an upload\r\n'.length + PAGE_TAIL.length);
  });

  test('a midstream connection with no message start in its first RESYNC_MAX_BYTES is bypassed, every byte counted', () => {
    const counters = new Counters();
    const { http, seen } = recordingHttp(counters);
    const noise = 'z'.repeat(60_000);
    const segments: Array<[Direction, string]> = [];
    for (let i = 0; i < Math.ceil(RESYNC_MAX_BYTES / noise.length) + 2; i++) segments.push([(i % 2) as Direction, noise]);
    segments.push([0, 'GET /late HTTP/1.1\r\nHost: a\r\n\r\n']);
    const p = converse([http], segments, counters, true);
    assert.deepEqual(seen, [], 'given up before the late request');
    const c = p.counters;
    assert.equal(c.get('app_layer.resynced'), 0);
    assert.equal(c.get('app_layer.unknown'), 1);
    assert.equal(c.get('flow.bypassed'), 1);
    const total = segments.reduce((n, [, t]) => n + t.length, 0);
    assert.equal(c.get('app_layer.bytes.unknown'), total);
    assert.ok(c.get('tcp.reassembled_bytes') < RESYNC_MAX_BYTES + 2 * noise.length, 'bypassed once the budget was spent');
  });
});

/**
 * A protocol that waits for the server's first bytes ("GO") and then takes the flow; its consumer
 * records what it is given, and can be made to throw at its first bytes.
 */
function waitsForServer(log: string[], fail = false): AppLayerProtocol {
  return {
    name: 'go',
    probe: (dir: Direction, b: Uint8Array) => (dir === 0 ? 'need-more' : b.length < 2 ? 'need-more' : b[0] === 0x47 && b[1] === 0x4f ? 'match' : 'no-match'),
    create: () => ({
      data: (dir: Direction, b: Uint8Array, ts: number) => {
        if (fail) throw new Error('consumer bug');
        log.push(`${dir}:${Buffer.from(b).toString('latin1')}@${ts}`);
      },
      gap: (dir: Direction, len: number, ts: number) => void log.push(`${dir}:<gap ${len}>@${ts}`),
      end: () => undefined,
    }),
  };
}

const FLOW: FlowInfo = { flowId: 1, proto: 6, srcIp: '10.1.0.5', srcPort: 40000, dstIp: '192.0.2.22', dstPort: 7000, vlan: [], startUs: 0 };

/** What the probing consumer holds (an internal view for tests). */
function holding(c: StreamConsumer): { runs: number; bytes: number; memory: number } {
  return (c as unknown as { holding: { runs: number; bytes: number; memory: number } }).holding;
}

describe('bytes held during detection', () => {
  test('16,000 1-byte segments are held as one run, charged about their size, and replayed whole with the first timestamp', () => {
    const counters = new Counters();
    const log: string[] = [];
    const c = new AppLayerFactory([waitsForServer(log)], counters).open(FLOW)!;
    const n = 16_000;
    for (let i = 0; i < n; i++) assert.equal(c.data(0, Buffer.from([0x61 + (i % 26)]), 100 + i), undefined);
    const charged = memoryInUse(counters);
    // one array per segment held ~5 MB and charged nothing
    assert.ok(charged >= n, `${charged} charged for ${n} bytes held`);
    assert.ok(charged <= MAX_HELD_BYTES + HOLD_RUN_OVERHEAD_BYTES, `${charged} charged for ${n} bytes held`);
    assert.deepEqual(holding(c), { runs: 1, bytes: n, memory: charged });
    c.data(1, Buffer.from('GO'), 50_000);
    const text = Array.from({ length: n }, (_, i) => String.fromCharCode(0x61 + (i % 26))).join('');
    assert.deepEqual(log, [`0:${text}@100`, '1:GO@50000']);
    assert.equal(memoryInUse(counters), 0, 'given back when the protocol was chosen');
    assert.equal(counters.get('app_layer.bytes.go'), n + 2);
    c.end('fin', 60_000);
    assert.equal(memoryInUse(counters), 0);
  });

  test('runs of each direction and gaps are replayed in their place', () => {
    const counters = new Counters();
    const log: string[] = [];
    const c = new AppLayerFactory([waitsForServer(log)], counters).open(FLOW)!;
    c.data(0, Buffer.from('a'), 1);
    c.data(0, Buffer.from('b'), 2);
    c.gap(0, 5, 3);
    c.data(0, Buffer.from('c'), 4);
    c.data(0, Buffer.from('d'), 5);
    c.data(1, Buffer.from('G'), 6);
    assert.equal(holding(c).runs, 4);
    c.data(1, Buffer.from('O'), 7);
    assert.deepEqual(log, ['0:ab@1', '0:<gap 5>@3', '0:cd@4', '1:GO@6']);
    c.end('fin', 8);
    assert.equal(memoryInUse(counters), 0);
  });

  test('directions taking turns a byte at a time stop at MAX_HELD_RUNS: refused, counted, and given back', () => {
    const counters = new Counters();
    const never: AppLayerProtocol = { name: 'never', probe: () => 'need-more', create: () => assert.fail('never chosen') };
    const c = new AppLayerFactory([never], counters).open(FLOW)!;
    let i = 0;
    for (; i < 10 * MAX_HELD_RUNS; i++) {
      if (c.data((i % 2) as Direction, Buffer.from('x'), i) === BYPASS) break;
      assert.ok(holding(c).runs <= MAX_HELD_RUNS);
      assert.equal(memoryInUse(counters), holding(c).memory);
    }
    assert.equal(i, MAX_HELD_RUNS, 'refused at the first run past the bound');
    assert.equal(counters.get('app_layer.detection_hold_overflow'), 1);
    assert.equal(counters.get('app_layer.unknown'), 1);
    assert.equal(counters.get('app_layer.bytes.unknown'), MAX_HELD_RUNS + 1);
    assert.equal(memoryInUse(counters), 0);
    c.end('fin', i);
    assert.equal(memoryInUse(counters), 0);
  });

  test('gaps count against MAX_HELD_RUNS; a midstream flow then looks for a message start, holding nothing', () => {
    const counters = new Counters();
    const lines: AppLayerProtocol = { name: 'lines', probe: () => 'need-more', findStart: () => -1, create: () => assert.fail('never chosen') };
    const c = new AppLayerFactory([lines], counters).open({ ...FLOW, midstream: true })!;
    for (let i = 0; i < MAX_HELD_RUNS; i++) c.gap(1, 10, i);
    assert.equal(holding(c).runs, MAX_HELD_RUNS);
    assert.equal(memoryInUse(counters), MAX_HELD_RUNS * HOLD_RUN_OVERHEAD_BYTES);
    c.gap(1, 10, MAX_HELD_RUNS);
    assert.equal(counters.get('app_layer.detection_hold_overflow'), 1);
    assert.equal(holding(c).runs, 0);
    assert.equal(memoryInUse(counters), 0);
    c.end('eof', 1000);
    assert.equal(memoryInUse(counters), 0);
  });

  test('a flow ending while bytes are held, or whose chosen consumer fails at their replay, gives back the charge', () => {
    const counters = new Counters();
    const factory = new AppLayerFactory([waitsForServer([])], counters);
    const ended = factory.open(FLOW)!;
    for (let i = 0; i < 100; i++) ended.data(0, Buffer.from('y'), i);
    assert.ok(memoryInUse(counters) >= 100);
    ended.end('timeout', 100);
    assert.equal(memoryInUse(counters), 0);
    assert.equal(counters.get('app_layer.bytes.unknown'), 100);

    const failing = new AppLayerFactory([waitsForServer([], true)], counters);
    const pipeline = new Pipeline({ counters, streams: failing });
    const send = (f: Uint8Array, ts: number): void => pipeline.packet(1, f, 0, f.length, f.length, ts, 0);
    send(ethTcp({ ...C, seq: 1000, flags: SYN }), 1);
    send(ethTcp({ ...S, seq: 5000, ack: 1001, flags: SYN | ACK }), 2);
    for (let i = 0; i < 100; i++) send(ethTcp({ ...C, seq: 1001 + i, ack: 5001, flags: PSH | ACK }, Buffer.from('z')), 3 + i);
    assert.ok(memoryInUse(counters) >= 100);
    send(ethTcp({ ...S, seq: 5001, ack: 1101, flags: PSH | ACK }, Buffer.from('GO')), 200);
    assert.equal(counters.get('flow.consumer_error'), 1);
    assert.equal(memoryInUse(counters), 0);
    pipeline.finish();
    assert.equal(memoryInUse(counters), 0);
  });
});

/**
 * HTTP found by `findHttpStart` in a flow picked up midstream; its consumer records the gaps it is told
 * of and the bytes it is given (each direction's bytes joined, whatever the segments were).
 */
function loggingHttp(log: { gaps: string[]; data: [string, string] }, failing = { find: false }): AppLayerProtocol {
  return {
    name: 'http',
    probe: httpAppLayer.probe,
    findStart: (dir, bytes, atLineStart) => {
      if (failing.find) throw new Error('findStart bug');
      return findHttpStart(dir, bytes, atLineStart);
    },
    create: () => ({
      data: (dir: Direction, b: Uint8Array) => void (log.data[dir] += Buffer.from(b).toString('latin1')),
      gap: (dir: Direction, len: number) => void log.gaps.push(`${dir}:${len}`),
      end: () => undefined,
    }),
  };
}

/** Gives `text` to `c` in direction `dir` as segments of `size` bytes; true when one of them was answered with BYPASS. */
function feed(c: StreamConsumer, dir: Direction, text: string, size: number, ts = 1): boolean {
  const b = Buffer.from(text, 'latin1');
  let bypass = false;
  for (let i = 0; i < b.length; i += size) if (c.data(dir, b.subarray(i, i + size), ts) === BYPASS) bypass = true;
  return bypass;
}

describe('the line tail kept while looking for a message start', () => {
  const MIDSTREAM: FlowInfo = { ...FLOW, dstPort: 80, midstream: true };
  const REQUEST = 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n';

  test('a start after 20 kB with no line feed is found at the same offset whatever the segment size, 1 byte included', () => {
    const before = `${'z'.repeat(20_000)}\n${'q'.repeat(PROBE_MAX_BYTES - 1)}\n${'r'.repeat(PROBE_MAX_BYTES + 1)}\n`;
    for (const size of [1, 3, PROBE_MAX_BYTES - 1, PROBE_MAX_BYTES, PROBE_MAX_BYTES + 1, 1e6]) {
      const counters = new Counters();
      const log = { gaps: [] as string[], data: ['', ''] as [string, string] };
      const c = new AppLayerFactory([loggingHttp(log)], counters).open(MIDSTREAM)!;
      feed(c, 0, before + REQUEST, size);
      assert.deepEqual(log, { gaps: [`0:${before.length}`], data: [REQUEST, ''] }, `segments of ${size}`);
      assert.equal(counters.get('app_layer.resynced'), 1, `segments of ${size}`);
      assert.equal(counters.get('app_layer.bytes.unknown'), before.length, `segments of ${size}`);
      assert.equal(counters.get('app_layer.bytes.http'), REQUEST.length, `segments of ${size}`);
      assert.equal(memoryInUse(counters), 0, `segments of ${size}: the tail was given back when the start was found`);
      c.end('fin', 2);
      assert.equal(memoryInUse(counters), 0);
    }
  });

  test('a start line cut at every offset is found at the same offset; the gauge shows the tail while it is held', () => {
    const before = `${'x'.repeat(MAX_HELD_BYTES)}\r\n`;
    for (let k = 1; k < REQUEST.length; k++) {
      const counters = new Counters();
      const log = { gaps: [] as string[], data: ['', ''] as [string, string] };
      const c = new AppLayerFactory([loggingHttp(log)], counters).open(MIDSTREAM)!;
      c.data(0, Buffer.from(before), 1);
      c.data(0, Buffer.from(REQUEST.slice(0, k)), 2);
      if ((c as unknown as { protocol: string | undefined }).protocol === undefined) {
        const held = memoryInUse(counters);
        assert.ok(held >= k && held <= PROBE_MAX_BYTES, `cut at ${k}: ${held} bytes charged for the tail held`);
      }
      c.data(0, Buffer.from(REQUEST.slice(k)), 3);
      assert.deepEqual(log, { gaps: [`0:${before.length}`], data: [REQUEST, ''] }, `cut at ${k}`);
      assert.equal(counters.get('app_layer.bytes.unknown'), before.length, `cut at ${k}`);
      assert.equal(memoryInUse(counters), 0, `cut at ${k}`);
      c.end('fin', 4);
    }
  });

  /** A midstream flow resyncing, with `held` kept as the start of a line in direction `dir`. */
  function holdingTail(counters: Counters, dir: Direction, held: string, failing = { find: false }): StreamConsumer {
    const log = { gaps: [] as string[], data: ['', ''] as [string, string] };
    const c = new AppLayerFactory([loggingHttp(log, failing)], counters).open(MIDSTREAM)!;
    c.data(0, Buffer.from(`${'x'.repeat(MAX_HELD_BYTES)}\n`), 1);
    if (dir === 1) c.data(1, Buffer.from('\n'), 2);
    feed(c, dir, held, 1, 3);
    assert.equal(log.gaps.length, 0, 'no start found');
    return c;
  }

  test('a tail held a byte at a time is charged, at most PROBE_MAX_BYTES per direction', () => {
    const counters = new Counters();
    const c = holdingTail(counters, 0, 'y'.repeat(PROBE_MAX_BYTES));
    assert.equal(memoryInUse(counters), PROBE_MAX_BYTES);
    feed(c, 1, '\n', 1);
    feed(c, 1, 'G'.repeat(PROBE_MAX_BYTES), 1);
    assert.equal(memoryInUse(counters), 2 * PROBE_MAX_BYTES);
    // one byte more and the line is too long to be a start line: passed over, the buffer kept for the next
    feed(c, 0, 'y', 1);
    assert.equal(counters.get('app_layer.bytes.unknown'), MAX_HELD_BYTES + 1 + PROBE_MAX_BYTES + 1 + 1);
    assert.ok(memoryInUse(counters) <= 2 * PROBE_MAX_BYTES);
    c.end('fin', 4);
    assert.equal(memoryInUse(counters), 0);
  });

  test('the tail is given back at a gap, at the give-up, at the flow end, and when the search fails', () => {
    const gap = new Counters();
    const c = holdingTail(gap, 0, 'GE');
    assert.ok(memoryInUse(gap) > 0, 'the tail is charged');
    c.gap(0, 10, 4);
    assert.equal(memoryInUse(gap), 0, 'at a gap');
    assert.equal(gap.get('app_layer.bytes.unknown'), MAX_HELD_BYTES + 1 + 2);
    c.end('fin', 5);
    assert.equal(memoryInUse(gap), 0);

    const giveUp = new Counters();
    const d = holdingTail(giveUp, 1, 'GE');
    assert.ok(memoryInUse(giveUp) > 0);
    let bypassed = false;
    for (let i = 0; i < RESYNC_MAX_BYTES / 60_000 + 1 && !bypassed; i++) bypassed = feed(d, 0, 'z'.repeat(60_000), 60_000);
    assert.ok(bypassed, 'given up');
    assert.equal(giveUp.get('app_layer.unknown'), 1);
    assert.equal(memoryInUse(giveUp), 0, 'at the give-up');
    d.end('fin', 6);
    assert.equal(memoryInUse(giveUp), 0);

    const ended = new Counters();
    const e = holdingTail(ended, 1, 'GE');
    assert.ok(memoryInUse(ended) > 0);
    e.end('timeout', 4);
    assert.equal(memoryInUse(ended), 0, 'at the flow end');
    assert.equal(ended.get('app_layer.bytes.unknown'), MAX_HELD_BYTES + 1 + 1 + 2, 'the tail counted as unknown');

    const failed = new Counters();
    const failing = { find: false };
    const f = holdingTail(failed, 0, 'G', failing);
    failing.find = true;
    assert.throws(() => f.data(0, Buffer.from('E'), 4), /findStart bug/);
    // the flow table ends a consumer that threw (flow-table.ts)
    f.end('eof', 5);
    assert.equal(memoryInUse(failed), 0, 'after a failed search');
  });
});

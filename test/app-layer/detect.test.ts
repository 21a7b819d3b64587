/**
 * Protocol detection and flow bypass: a flow no protocol takes is bypassed (its later bytes are
 * neither reassembled nor held, only counted), and so is a flow whose chosen protocol asks for it,
 * even while the bytes held during detection are replayed to it. Byte counters stay whole.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppLayerFactory, type AppLayerProtocol } from '../../sensor/app-layer/detect.js';
import { httpAppLayer } from '../../sensor/app-layer/http/index.js';
import type { HttpParserEvent, HttpSink } from '../../sensor/app-layer/http/session.js';
import { Counters } from '../../sensor/events/counters.js';
import { BYPASS, type Direction } from '../../sensor/flow/stream.js';
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

/** A connection: handshake, then each [dir, text] as one segment, then FIN both ways. */
function converse(protocols: AppLayerProtocol[], segments: Array<[Direction, string]>, counters = new Counters()): Pipeline {
  const pipeline = new Pipeline({ counters, streams: new AppLayerFactory(protocols, counters) });
  const send = (f: Uint8Array, ts: number): void => pipeline.packet(1, f, 0, f.length, f.length, ts, 0);
  let cs = 1001;
  let ss = 5001;
  send(ethTcp({ ...C, seq: 1000, flags: SYN }), 1);
  send(ethTcp({ ...S, seq: 5000, ack: 1001, flags: SYN | ACK }), 2);
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
    // 'HE' is held (need-more), then 'LO there' decides; both go to the protocol, which has enough.
    assert.deepEqual(seen, ['0:HE', '0:LO there']);
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
});

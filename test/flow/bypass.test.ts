/**
 * Flow bypass: a consumer that can learn nothing more from a flow returns BYPASS, and the flow
 * table stops reassembling it. Later packets still count and still close the flow; nothing more is
 * delivered, held or retained; `end` says how many stream bytes went by. A consumer that throws,
 * and a factory that wants no consumer, are bypassed the same way instead of being fed again.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FlowRecord } from '../../sensor/flow/flow-table.js';
import { BYPASS, type BypassedBytes, type CloseReason, type Direction, type StreamConsumer, type StreamFactory } from '../../sensor/flow/stream.js';
import type { Counters } from '../../sensor/events/counters.js';
import { chargeMemory, memoryInUse } from '../../sensor/events/memuse.js';
import { Pipeline } from '../../sensor/pipeline.js';
import { ethTcp, TCP_FLAGS } from '../helpers/packets.js';

const { SYN, ACK, FIN, PSH } = TCP_FLAGS;
const C = { src: '10.1.0.5', dst: '192.0.2.80', sport: 40000, dport: 443 };
const S = { src: C.dst, dst: C.src, sport: C.dport, dport: C.sport };
const ISN = 1000;
const SISN = 5000;

interface Seen {
  data: string[];
  ends: Array<{ reason: CloseReason; bypassed: BypassedBytes | undefined }>;
}

/** A consumer that records what it is given and asks for bypass once it has seen `enough` bytes. */
function recorder(seen: Seen, enough: number): StreamConsumer {
  let bytes = 0;
  return {
    data(d: Direction, b: Uint8Array) {
      seen.data.push(`${d}:${Buffer.from(b).toString('latin1')}`);
      bytes += b.length;
      return bytes >= enough ? BYPASS : undefined;
    },
    gap(d: Direction, n: number) {
      seen.data.push(`${d}:[${n}]`);
    },
    end(reason: CloseReason, _ts: number, bypassed?: BypassedBytes) {
      seen.ends.push({ reason, bypassed });
    },
  };
}

function run(streams: StreamFactory, send: (s: (frame: Uint8Array, ts: number) => void, pipeline: Pipeline) => void): { pipeline: Pipeline; records: FlowRecord[] } {
  const records: FlowRecord[] = [];
  const pipeline = new Pipeline({ streams, flowEnded: { flowEnded: (r) => records.push(r) } });
  send((f, ts) => pipeline.packet(1, f, 0, f.length, f.length, ts, 0), pipeline);
  pipeline.finish();
  return { pipeline, records };
}

function handshake(send: (frame: Uint8Array, ts: number) => void, sport = C.sport): void {
  send(ethTcp({ ...C, sport, seq: ISN, flags: SYN }), 1);
  send(ethTcp({ ...S, dport: sport, seq: SISN, ack: ISN + 1, flags: SYN | ACK }), 2);
  send(ethTcp({ ...C, sport, seq: ISN + 1, ack: SISN + 1, flags: ACK }), 3);
}

const text = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('flow bypass', () => {
  test('after BYPASS nothing more is delivered, the flow still closes by FIN, and end gives the bytes that went by', () => {
    const seen: Seen = { data: [], ends: [] };
    let opened = 0;
    const { pipeline, records } = run({ open: () => (opened++, recorder(seen, 5)) }, (send) => {
      handshake(send);
      send(ethTcp({ ...C, seq: ISN + 1, ack: SISN + 1, flags: PSH | ACK }, text('hello')), 4); // 5 bytes: bypass
      send(ethTcp({ ...S, seq: SISN + 1, ack: ISN + 6, flags: PSH | ACK }, text('0123456789')), 5);
      send(ethTcp({ ...C, seq: ISN + 6, ack: SISN + 11, flags: PSH | ACK }, text('abc')), 6);
      send(ethTcp({ ...C, seq: ISN + 6, ack: SISN + 11, flags: PSH | ACK }, text('XYZ')), 7); // a retransmission that differs
      send(ethTcp({ ...S, seq: SISN + 21, ack: ISN + 9, flags: PSH | ACK }, text('later')), 8); // after a hole of 10
      send(ethTcp({ ...C, seq: ISN + 9, ack: SISN + 26, flags: FIN | ACK }), 9);
      send(ethTcp({ ...S, seq: SISN + 26, ack: ISN + 10, flags: FIN | ACK }), 10);
    });
    assert.equal(opened, 1);
    assert.deepEqual(seen.data, ['0:hello']);
    // client: 'abc' (3); server: 10 + a hole of 10 + 5 = 25 of sequence space
    assert.deepEqual(seen.ends, [{ reason: 'fin', bypassed: [3, 25] }]);
    assert.equal(records.length, 1);
    assert.equal(records[0].state, 'closed');
    assert.equal(records[0].closeReason, 'fin');
    assert.deepEqual(records[0].dataBytes, [5, 0]);
    assert.deepEqual(records[0].pkts, [6, 4]);
    const c = pipeline.counters;
    assert.equal(c.get('flow.bypassed'), 1);
    assert.equal(c.get('flow.bypassed_bytes'), 28);
    assert.equal(c.get('tcp.reassembled_bytes'), 5);
    assert.equal(c.get('stream.tcp.overlap_mismatch'), 0, 'a bypassed flow compares nothing');
    assert.equal(c.get('tcp.reassembly_gap'), 0, 'nor declares gaps');
  });

  test('bytes held out of order when the flow is bypassed are dropped and their memory released', () => {
    const seen: Seen = { data: [], ends: [] };
    const { pipeline } = run({ open: () => recorder(seen, 4) }, (send, p) => {
      handshake(send);
      send(ethTcp({ ...S, seq: SISN + 11, ack: ISN + 1, flags: PSH | ACK }, text('held back')), 4); // out of order: 10 missing
      assert.equal(p.flows.heldBytes(), 9);
      send(ethTcp({ ...C, seq: ISN + 1, ack: SISN + 1, flags: PSH | ACK }, text('ping')), 5); // bypass
      assert.equal(p.flows.heldBytes(), 0);
      send(ethTcp({ ...S, seq: SISN + 1, ack: ISN + 5, flags: PSH | ACK }, text('0123456789')), 6);
    });
    assert.deepEqual(seen.data, ['0:ping']);
    // server: the 9 held bytes (dropped at bypass) and the 10 of the hole before them went by
    assert.deepEqual(seen.ends, [{ reason: 'eof', bypassed: [0, 19] }]);
    assert.equal(pipeline.counters.get('tcp.reassembly_gap'), 0);
  });

  test('a consumer that throws is not fed again, nor replaced by a new one mid-stream; it is ended so it lets go of what it holds', () => {
    let opened = 0;
    let calls = 0;
    let ended = 0;
    let counters: Counters | undefined;
    const { pipeline, records } = run({
      open: () => {
        opened++;
        return {
          data: () => {
            calls++;
            chargeMemory(counters!, 4096);
            throw new Error('consumer bug');
          },
          gap: () => undefined,
          end: () => {
            ended++;
            chargeMemory(counters!, -4096);
          },
        };
      },
    }, (send, p) => {
      counters = p.counters;
      handshake(send);
      send(ethTcp({ ...C, seq: ISN + 1, ack: SISN + 1, flags: PSH | ACK }, text('one')), 4);
      send(ethTcp({ ...C, seq: ISN + 4, ack: SISN + 1, flags: PSH | ACK }, text('two')), 5);
      send(ethTcp({ ...S, seq: SISN + 1, ack: ISN + 7, flags: PSH | ACK }, text('three')), 6);
    });
    assert.equal(opened, 1);
    assert.equal(calls, 1);
    assert.equal(records.length, 1);
    const c = pipeline.counters;
    assert.equal(c.get('flow.consumer_error'), 1);
    assert.equal(c.get('flow.bypassed'), 1);
    assert.equal(c.get('flow.bypassed_bytes'), 8);
    assert.equal(ended, 1, 'ended once, when it failed, not again when the flow ended');
    assert.equal(memoryInUse(c), 0);
  });

  test('a flow whose factory wants no consumer is asked once and bypassed', () => {
    let opened = 0;
    const { pipeline } = run({ open: () => void opened++ }, (send) => {
      handshake(send);
      for (let i = 0; i < 5; i++) send(ethTcp({ ...C, seq: ISN + 1 + 4 * i, ack: SISN + 1, flags: PSH | ACK }, text('data')), 4 + i);
    });
    assert.equal(opened, 1);
    assert.equal(pipeline.counters.get('flow.bypassed'), 1);
    assert.equal(pipeline.counters.get('tcp.reassembled_bytes'), 4);
    assert.equal(pipeline.counters.get('flow.bypassed_bytes'), 16);
  });

  test('a pipeline with bypass off (--no-bypass) feeds every byte to a consumer that asks for bypass', () => {
    const seen: Seen = { data: [], ends: [] };
    const pipeline = new Pipeline({ bypass: false, streams: { open: () => recorder(seen, 1) } });
    const send = (f: Uint8Array, ts: number): void => pipeline.packet(1, f, 0, f.length, f.length, ts, 0);
    handshake(send);
    send(ethTcp({ ...C, seq: ISN + 1, ack: SISN + 1, flags: PSH | ACK }, text('one')), 4);
    send(ethTcp({ ...C, seq: ISN + 4, ack: SISN + 1, flags: PSH | ACK }, text('two')), 5);
    pipeline.finish();
    assert.deepEqual(seen.data, ['0:one', '0:two']);
    assert.deepEqual(seen.ends, [{ reason: 'eof', bypassed: undefined }]);
    assert.equal(pipeline.counters.get('flow.bypassed'), 0);
  });

  test('a new connection on the same ports after a bypassed one is reassembled again', () => {
    const seen: Seen = { data: [], ends: [] };
    run({ open: () => recorder(seen, 2) }, (send) => {
      handshake(send);
      send(ethTcp({ ...C, seq: ISN + 1, ack: SISN + 1, flags: PSH | ACK }, text('ab')), 4);
      send(ethTcp({ ...C, seq: ISN + 3, ack: SISN + 1, flags: PSH | ACK }, text('cd')), 5);
      // port reuse: a new SYN with a new ISN after the old connection was reset
      send(ethTcp({ ...C, seq: 90_000, flags: SYN }), 20_000_000);
      send(ethTcp({ ...S, seq: 70_000, ack: 90_001, flags: SYN | ACK }), 20_000_001);
      send(ethTcp({ ...C, seq: 90_001, ack: 70_001, flags: PSH | ACK }, text('e')), 20_000_002);
      send(ethTcp({ ...C, seq: 90_002, ack: 70_001, flags: PSH | ACK }, text('f')), 20_000_003);
    });
    assert.deepEqual(seen.data, ['0:ab', '0:e', '0:f']);
    assert.deepEqual(seen.ends.map((e) => e.bypassed), [[2, 0], [0, 0]]);
  });
});

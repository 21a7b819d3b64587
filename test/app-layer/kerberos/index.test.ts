import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counters } from '../../../sensor/events/counters.js';
import { BYPASS, type FlowInfo } from '../../../sensor/flow/stream.js';
import type { IdentityObservation } from '../../../sensor/identity/observation.js';
import {
  KerberosTcpSession, MAX_KERBEROS_TCP_RECORD_BYTES, interpretPrincipal, kerberosObservation, kerberosTcpAppLayer, probeKerberosTcp,
} from '../../../sensor/app-layer/kerberos/index.js';
import { AppLayerFactory } from '../../../sensor/app-layer/detect.js';
import { Pipeline } from '../../../sensor/pipeline.js';
import { ethTcp, TCP_FLAGS } from '../../helpers/packets.js';
import { PARTIAL_BUFFER_MIN_BYTES } from '../../../sensor/app-layer/partial-buffer.js';
import { memoryInUse } from '../../../sensor/events/memuse.js';
import { fixture, replay } from '../../helpers/replay.js';

test('interpretPrincipal: users, AD machine accounts, host/ principals; other services are nobody', () => {
  assert.deepEqual(interpretPrincipal({ nameType: 1, parts: ['jsmith'] }, 'SCHOOL'), { user: 'jsmith', domain: 'SCHOOL' });
  assert.deepEqual(interpretPrincipal({ nameType: 1, parts: ['LAPTOP-7F3$'] }, 'SCHOOL'), { hostname: 'LAPTOP-7F3', domain: 'SCHOOL' });
  assert.deepEqual(interpretPrincipal({ nameType: 3, parts: ['host', 'pc1.school.example'] }, 'SCHOOL'), { hostname: 'pc1.school.example', domain: 'SCHOOL' });
  assert.deepEqual(interpretPrincipal({ nameType: 2, parts: ['krbtgt', 'SCHOOL'] }, 'SCHOOL'), {});
});

test('kerberosObservation binds an AS-REQ to its sender and an AS-REP to its receiver; a TGS-REQ to nobody', () => {
  const m = { msgType: 10, cname: { nameType: 1, parts: ['jsmith'] }, realm: 'R', netbiosNames: [] };
  assert.equal(kerberosObservation(m, '10.0.0.5', '10.0.0.1', 1)?.ip, '10.0.0.5');
  assert.equal(kerberosObservation({ ...m, msgType: 11 }, '10.0.0.1', '10.0.0.5', 1)?.ip, '10.0.0.5');
  assert.equal(kerberosObservation({ ...m, msgType: 12 }, '10.0.0.5', '10.0.0.1', 1), undefined);
  assert.deepEqual(kerberosObservation({ msgType: 10, netbiosNames: ['PC7'] }, '10.0.0.5', '10.0.0.1', 1), { ip: '10.0.0.5', hostname: 'PC7', source: 'kerberos', tsUs: 1 });
});

const tcpFlows = (() => {
  const r = replay(fixture('identity', 'kerberos-as-req.pcap'));
  return r.flows.filter((f) => f.info.proto === 6).map((f) => ({ info: f.info, c2s: Buffer.from(f.streams[0], 'latin1'), s2c: Buffer.from(f.streams[1], 'latin1') }));
})();

function run(info: FlowInfo, feed: (s: KerberosTcpSession) => void): { obs: IdentityObservation[]; c: Counters } {
  const obs: IdentityObservation[] = [];
  const c = new Counters();
  const s = new KerberosTcpSession(info, { observe: (o) => obs.push(o) }, c);
  feed(s);
  s.end('fin', 0);
  return { obs, c };
}

test('KerberosTcpSession yields the same observations whatever byte the stream is cut at', () => {
  assert.equal(tcpFlows.length, 4);
  const f = tcpFlows[1]; // LAPTOP-7F3$'s pre-authenticated AS-REQ and the AS-REP
  const whole = run(f.info, (s) => {
    s.data(0, f.c2s, 5);
    s.data(1, f.s2c, 5);
  }).obs;
  assert.deepEqual(whole.map((o) => [o.ip, o.hostname, o.domain]), [['127.0.0.1', 'LAPTOP-7F3', 'HARK.TEST'], ['127.0.0.1', 'LAPTOP-7F3', 'HARK.TEST']]);
  for (let cut = 1; cut < f.c2s.length; cut++) {
    const got = run(f.info, (s) => {
      s.data(0, f.c2s.subarray(0, cut), 5);
      s.data(0, f.c2s.subarray(cut), 5);
      s.data(1, f.s2c.subarray(0, cut % f.s2c.length), 5);
      s.data(1, f.s2c.subarray(cut % f.s2c.length), 5);
    }).obs;
    assert.deepEqual(got, whole, `cut at ${cut}`);
  }
  const oneByte = run(f.info, (s) => {
    for (let i = 0; i < f.c2s.length; i++) s.data(0, f.c2s.subarray(i, i + 1), 5);
  }).obs;
  assert.deepEqual(oneByte, whole.slice(0, 1));
});

test('KerberosTcpSession stops a direction after a gap and skips an over-long record', () => {
  const f = tcpFlows[1];
  const gap = run(f.info, (s) => {
    s.gap(0, 10, 1);
    s.data(0, f.c2s, 1);
  });
  assert.equal(gap.obs.length, 0);
  assert.equal(gap.c.get('kerberos.tcp_gap'), 1);
  const big = MAX_KERBEROS_TCP_RECORD_BYTES + 1;
  const hdr = Buffer.from([big >>> 24, (big >>> 16) & 255, (big >>> 8) & 255, big & 255]);
  const skipped = run(f.info, (s) => {
    s.data(0, Buffer.concat([hdr, Buffer.alloc(big)]), 1);
    s.data(0, f.c2s, 1);
  });
  assert.equal(skipped.c.get('kerberos.tcp_record_too_large'), 1);
  assert.equal(skipped.obs.length, 1, 'the record after the skipped one is read');
  const reserved = run(f.info, (s) => s.data(0, Buffer.concat([Buffer.from([0x80, 0, 0, 4]), f.c2s]), 1));
  assert.equal(reserved.c.get('kerberos.tcp.reserved_length_bit'), 1);
  assert.equal(reserved.obs.length, 0);
});

test('probeKerberosTcp recognises KDC records by length and APPLICATION tag', () => {
  const f = tcpFlows[0];
  assert.equal(probeKerberosTcp(0, f.c2s), 'match');
  assert.equal(probeKerberosTcp(1, f.s2c), 'match');
  assert.equal(probeKerberosTcp(0, f.c2s.subarray(0, 3)), 'need-more');
  assert.equal(probeKerberosTcp(0, Buffer.from('GET / HTTP/1.1\r\n')), 'no-match');
  assert.equal(probeKerberosTcp(1, f.c2s), 'no-match', 'an AS-REQ does not come from the server');
});

/** A 4-byte record length (RFC 4120 §7.2.2). */
function recordLength(len: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(len);
  return h;
}

/** DER `der` with `extra` bytes appended to its last primitive value (in an AS-REP, enc-part's cipher), every
 * enclosing length rewritten: a reply as large as one carrying a big PAC. Single-byte tags only. */
function enlargeLastValue(der: Buffer, extra: number): Buffer {
  const tag = der[0];
  let len = der[1];
  let at = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = der.readUIntBE(2, n);
    at = 2 + n;
  }
  let value = der.subarray(at, at + len);
  if (tag & 0x20) {
    const kids: Buffer[] = [];
    for (let p = 0; p < value.length;) {
      const l = value[p + 1] & 0x80 ? value.readUIntBE(p + 2, value[p + 1] & 0x7f) + 2 + (value[p + 1] & 0x7f) : value[p + 1] + 2;
      kids.push(value.subarray(p, p + l));
      p += l;
    }
    kids[kids.length - 1] = enlargeLastValue(kids[kids.length - 1], extra);
    value = Buffer.concat(kids);
  } else value = Buffer.concat([value, Buffer.alloc(extra, 0x5a)]);
  const lenBytes = value.length < 0x80 ? Buffer.from([value.length]) : Buffer.concat([Buffer.from([0x83]), Buffer.from([value.length >> 16, (value.length >> 8) & 255, value.length & 255])]);
  return Buffer.concat([Buffer.from([tag]), lenBytes, value]);
}

test('KerberosTcpSession holds buffer in proportion to the record bytes received, not to the length announced', () => {
  // Many flows' worth of a 65,536-byte record length and one byte each way: that used to hold 128 KiB a flow.
  const announce = Buffer.concat([recordLength(MAX_KERBEROS_TCP_RECORD_BYTES), Buffer.from([0x6a])]);
  const flows = 500;
  let held = 0;
  for (let i = 0; i < flows; i++) {
    const s = new KerberosTcpSession(tcpFlows[0].info, { observe: () => {} }, new Counters());
    s.data(0, announce, 1);
    s.data(1, announce, 1);
    held += s.heldBytes;
  }
  assert.ok(held <= flows * 2 * PARTIAL_BUFFER_MIN_BYTES, `${held} bytes held for ${flows} flows of ${2 * announce.length} stream bytes`);
  // As the record arrives, the buffer stays within twice what came (or the minimum).
  const s = new KerberosTcpSession(tcpFlows[0].info, { observe: () => {} }, new Counters());
  s.data(0, announce, 1);
  let received = 1;
  for (const piece of [100, 1000, 5000, 40_000]) {
    s.data(0, new Uint8Array(piece), 2);
    received += piece;
    assert.ok(s.heldBytes <= Math.max(PARTIAL_BUFFER_MIN_BYTES, 2 * received), `${s.heldBytes} held after ${received} received`);
  }
});

test('KerberosTcpSession reads a 40 KB AS-REP whole or cut every few bytes alike', () => {
  const f = tcpFlows[1];
  const rep = enlargeLastValue(f.s2c.subarray(4), 40_000);
  const s2c = Buffer.concat([recordLength(rep.length), rep]);
  assert.ok(s2c.length > 40_000);
  const whole = run(f.info, (s) => s.data(1, s2c, 5));
  assert.deepEqual(whole.obs.map((o) => [o.ip, o.hostname, o.domain]), [['127.0.0.1', 'LAPTOP-7F3', 'HARK.TEST']]);
  for (const every of [1, 3, 1448]) {
    let held = 0;
    const cut = run(f.info, (s) => {
      for (let at = 0; at < s2c.length; at += every) s.data(1, s2c.subarray(at, at + every), 5);
      held = s.heldBytes;
    });
    assert.deepEqual(cut.obs, whole.obs, `cut every ${every}`);
    assert.equal(held, 0, `cut every ${every}: nothing held after the record`);
  }
});

test('KerberosTcpSession asks for bypass once both directions have stopped, not before', () => {
  const f = tcpFlows[1];
  const s = new KerberosTcpSession(f.info, { observe: () => {} }, new Counters());
  assert.equal(s.data(0, f.c2s, 1), undefined);
  // The client's next record has the reserved bit: that direction stops; the server's is still read.
  assert.equal(s.data(0, Buffer.from([0x80, 0, 0, 4, 1, 2, 3, 4]), 2), undefined);
  assert.equal(s.data(1, f.s2c, 3), undefined);
  assert.equal(s.gap(1, 100, 4), BYPASS);
  assert.equal(s.data(0, f.c2s, 5), BYPASS);
});

test('a Kerberos flow whose directions have both stopped is bypassed by the flow table, not reassembled to its end', () => {
  const f = tcpFlows[1];
  const counters = new Counters();
  const obs: IdentityObservation[] = [];
  const pipeline = new Pipeline({ counters, streams: new AppLayerFactory([kerberosTcpAppLayer({ observe: (o) => obs.push(o) }, counters)], counters) });
  const C = { src: '10.1.0.5', dst: '192.0.2.88', sport: 40000, dport: 88 };
  const S = { src: C.dst, dst: C.src, sport: C.dport, dport: C.sport };
  const reserved = Buffer.from([0x80, 0, 0, 4, 1, 2, 3, 4]);
  const later = Buffer.alloc(3000, 0x61);
  let ts = 1;
  const send = (frame: Uint8Array) => pipeline.packet(1, frame, 0, frame.length, frame.length, ts++, 0);
  let cseq = 1000;
  let sseq = 5000;
  send(ethTcp({ ...C, seq: cseq++, flags: TCP_FLAGS.SYN }));
  send(ethTcp({ ...S, seq: sseq++, ack: cseq, flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK }));
  for (const [side, payload] of [[0, f.c2s], [1, f.s2c], [0, reserved], [1, reserved], [0, later], [1, later]] as const) {
    if (side === 0) send(ethTcp({ ...C, seq: cseq, ack: sseq, flags: TCP_FLAGS.PSH | TCP_FLAGS.ACK }, payload));
    else send(ethTcp({ ...S, seq: sseq, ack: cseq, flags: TCP_FLAGS.PSH | TCP_FLAGS.ACK }, payload));
    if (side === 0) cseq += payload.length;
    else sseq += payload.length;
  }
  pipeline.finish();
  assert.equal(obs.length, 2, 'the AS-REQ and AS-REP were read');
  assert.equal(counters.get('kerberos.tcp.reserved_length_bit'), 2);
  assert.equal(counters.get('flow.bypassed'), 1);
  assert.equal(counters.get('flow.bypassed_bytes'), 2 * later.length);
});

test('KerberosTcpSession charges a record parked half-way to app_layer.memuse, and gives it back at the end or a gap', () => {
  const parked = Buffer.concat([recordLength(60_000), Buffer.alloc(30_000, 0x6a)]);
  for (const close of ['end', 'gap'] as const) {
    const counters = new Counters();
    const s = new KerberosTcpSession(tcpFlows[0].info, { observe: () => {} }, counters);
    s.data(0, parked, 1);
    s.data(1, parked.subarray(0, 100), 1);
    assert.ok(s.heldBytes >= 30_000);
    assert.equal(memoryInUse(counters), s.heldBytes, `${close}: parked, the gauge shows what is held`);
    if (close === 'end') s.end('timeout', 2);
    else {
      s.gap(0, 10, 2);
      s.gap(1, 10, 2);
    }
    assert.equal(s.heldBytes, 0);
    assert.equal(memoryInUse(counters), 0, `${close}: all of it given back`);
  }
});

/**
 * FlowTable behaviours driven with built frames through the real decoder: one key for both
 * directions, who the originator is, VLANs in the key, idle timeouts per state, the flow memcap,
 * port reuse, data on SYN, FIN/RST closing, one-sided flows, and stable flow ids; packets and bytes
 * of fragmented datagrams (every fragment frame at its wire length).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chargeMemory, memoryInUse } from '../../sensor/events/memuse.js';
import { DEFAULT_FLOW_LIMITS, type FlowLimits, type FlowRecord } from '../../sensor/flow/flow-table.js';
import type { FlowInfo } from '../../sensor/flow/stream.js';
import { Pipeline } from '../../sensor/pipeline.js';
import { readCaptureFile } from '../../sensor/capture/file-reader.js';
import { counting, ETHERTYPE, ethernet, ethTcp, ethUdp, fragmentIpv4, IPPROTO, TCP_FLAGS, udp } from '../helpers/packets.js';
import { withTempFile, writePcap } from '../helpers/pcap-writer.js';

const { SYN, ACK, FIN, RST, PSH } = TCP_FLAGS;
const C = { src: '10.1.0.5', dst: '192.0.2.80', sport: 40000, dport: 80 };
const S = { src: C.dst, dst: C.src, sport: C.dport, dport: C.sport };

interface Harness {
  send(frame: Uint8Array, tsUs: number): void;
  records: FlowRecord[];
  opened: FlowInfo[];
  streams: Map<number, [string, string]>;
  pipeline: Pipeline;
}

function harness(limits: Partial<FlowLimits> = {}): Harness {
  const records: FlowRecord[] = [];
  const opened: FlowInfo[] = [];
  const streams = new Map<number, [string, string]>();
  const pipeline = new Pipeline({
    flowLimits: { ...DEFAULT_FLOW_LIMITS, ...limits },
    flowEnded: { flowEnded: (r) => records.push(r) },
    streams: {
      open(info) {
        opened.push(info);
        const s: [string, string] = ['', ''];
        streams.set(info.flowId, s);
        return { data: (d, b) => void (s[d] += Buffer.from(b).toString('latin1')), gap: (d, n) => void (s[d] += `[${n}]`), end: () => {} };
      },
    },
  });
  return { send: (f, ts) => pipeline.packet(1, f, 0, f.length, f.length, ts, 0), records, opened, streams, pipeline };
}

/** A whole connection: handshake, one request, one response, FIN both ways. */
function connection(h: Harness, t0: number, isn = 1000, sisn = 5000): void {
  h.send(ethTcp({ ...C, seq: isn, flags: SYN }), t0);
  h.send(ethTcp({ ...S, seq: sisn, ack: isn + 1, flags: SYN | ACK }), t0 + 1);
  h.send(ethTcp({ ...C, seq: isn + 1, ack: sisn + 1, flags: ACK }), t0 + 2);
  h.send(ethTcp({ ...C, seq: isn + 1, ack: sisn + 1, flags: PSH | ACK }, Buffer.from('GET / HTTP/1.1\r\n\r\n')), t0 + 3);
  h.send(ethTcp({ ...S, seq: sisn + 1, ack: isn + 19, flags: PSH | ACK }, Buffer.from('HTTP/1.1 200 OK\r\n\r\n')), t0 + 4);
  h.send(ethTcp({ ...C, seq: isn + 19, ack: sisn + 20, flags: FIN | ACK }), t0 + 5);
  h.send(ethTcp({ ...S, seq: sisn + 20, ack: isn + 20, flags: FIN | ACK }), t0 + 6);
  h.send(ethTcp({ ...C, seq: isn + 20, ack: sisn + 21, flags: ACK }), t0 + 7);
}

describe('FlowTable', () => {
  test('keys both directions to one flow and reassembles each', () => {
    const h = harness();
    connection(h, 1_000_000);
    h.pipeline.finish();
    assert.equal(h.records.length, 1);
    const r = h.records[0];
    assert.equal(r.srcIp, C.src);
    assert.equal(r.srcPort, C.sport);
    assert.deepEqual(r.pkts, [5, 3]);
    assert.deepEqual(r.dataBytes, [18, 19]);
    assert.equal(r.state, 'closed');
    assert.equal(r.closeReason, 'fin');
    assert.deepEqual(h.streams.get(r.flowId), ['GET / HTTP/1.1\r\n\r\n', 'HTTP/1.1 200 OK\r\n\r\n']);
  });

  test('a SYN-ACK seen first makes its receiver the originator (missed SYN)', () => {
    const h = harness();
    h.send(ethTcp({ ...S, seq: 5000, ack: 1001, flags: SYN | ACK }), 1);
    h.send(ethTcp({ ...C, seq: 1001, ack: 5001, flags: PSH | ACK }, Buffer.from('hi')), 2);
    h.pipeline.finish();
    assert.equal(h.records[0].srcIp, C.src);
    assert.equal(h.records[0].midstream, true);
    assert.deepEqual(h.records[0].dataBytes, [2, 0]);
  });

  test('midstream pickup from the server side uses the well-known port to find the client', () => {
    const h = harness();
    h.send(ethTcp({ ...S, seq: 9000, ack: 3000, flags: PSH | ACK }, Buffer.from('HTTP/1.1 200 OK\r\n')), 1);
    h.pipeline.finish();
    assert.equal(h.records[0].srcIp, C.src, 'the side on port 80 is the server');
    assert.deepEqual(h.records[0].dataBytes, [0, 17]);
    assert.equal(h.pipeline.counters.get('flow.one_sided'), 1);
  });

  test('VLAN tags are part of the key: the same 5-tuple on two VLANs is two flows', () => {
    const h = harness();
    // 5 ms apart: closer, the second would be taken for a mirror port's copy of the first.
    h.send(ethTcp({ ...C, seq: 1, flags: SYN, vlans: [{ vid: 10 }] }), 1);
    h.send(ethTcp({ ...C, seq: 1, flags: SYN, vlans: [{ vid: 20 }] }), 5000);
    h.pipeline.finish();
    assert.deepEqual(h.records.map((r) => r.vlan).sort(), [[10], [20]]);
  });

  test('data on SYN is delivered', () => {
    const h = harness();
    h.send(ethTcp({ ...C, seq: 100, flags: SYN }, Buffer.from('early')), 1);
    h.send(ethTcp({ ...S, seq: 700, ack: 106, flags: SYN | ACK }), 2);
    h.pipeline.finish();
    assert.equal(h.streams.get(h.records[0].flowId)?.[0], 'early');
    assert.equal(h.pipeline.counters.get('tcp.syn_with_data'), 1);
  });

  test('a new SYN on a closed flow (port reuse) ends it and starts another with a new id', () => {
    const h = harness();
    connection(h, 1_000_000, 1000);
    connection(h, 2_000_000, 777_000);
    h.pipeline.finish();
    assert.equal(h.records.length, 2);
    assert.notEqual(h.records[0].flowId, h.records[1].flowId);
    assert.equal(h.records[0].closeReason, 'fin');
    assert.equal(h.pipeline.counters.get('tcp.port_reuse'), 1);
    assert.deepEqual(h.records.map((r) => r.dataBytes), [[18, 19], [18, 19]]);
  });

  test('RST ends the flow after the closed timeout; an idle established flow times out', () => {
    const h = harness();
    h.send(ethTcp({ ...C, seq: 1, flags: SYN }), 0);
    h.send(ethTcp({ ...S, seq: 50, ack: 2, flags: SYN | ACK }), 1);
    h.send(ethTcp({ ...C, seq: 2, ack: 51, flags: RST | ACK }), 2);
    const other = { ...C, sport: 40001 };
    h.send(ethTcp({ ...other, seq: 1, flags: SYN }), 3);
    h.send(ethTcp({ ...S, sport: 80, dport: 40001, seq: 50, ack: 2, flags: SYN | ACK }), 4);
    // Time passes: a packet of an unrelated flow moves the clock beyond the timeouts.
    const late = { src: '10.9.9.9', dst: '192.0.2.1', sport: 5555, dport: 53 };
    h.send(ethUdp(late, Buffer.from('x')), DEFAULT_FLOW_LIMITS.tcpClosedTimeoutUs + 10_000);
    assert.deepEqual(h.records.map((r) => r.closeReason), ['rst']);
    h.send(ethUdp(late, Buffer.from('y')), DEFAULT_FLOW_LIMITS.tcpEstablishedTimeoutUs + 2_000_000);
    // The established TCP flow (600 s) and the UDP flow (idle 592 s > 120 s) both timed out.
    const timedOut = h.records.filter((r) => r.closeReason === 'timeout').map((r) => `${r.proto}:${r.srcPort}`).sort();
    assert.deepEqual(timedOut, ['17:5555', '6:40001']);
    assert.equal(h.pipeline.counters.get('flow.timeout'), 2);
  });

  test('DNS flows (UDP port 53) end after 10 s idle, other UDP after 120 s; the memcap takes DNS first', () => {
    const h = harness();
    const dns = { src: '10.1.0.5', dst: '10.0.0.53', sport: 40053, dport: 53 };
    const ntp = { src: '10.1.0.5', dst: '10.0.0.123', sport: 40123, dport: 123 };
    const tick = { src: '10.9.9.9', dst: '192.0.2.1', sport: 7000, dport: 7001 };
    h.send(ethUdp(dns, Buffer.from('query')), 0);
    h.send(ethUdp({ src: dns.dst, dst: dns.src, sport: 53, dport: 40053 }, Buffer.from('answer')), 1000);
    h.send(ethUdp(ntp, Buffer.from('time?')), 0);
    // an unrelated flow's packets move the clock
    h.send(ethUdp(tick, Buffer.from('a')), DEFAULT_FLOW_LIMITS.dnsTimeoutUs - 1_000_000);
    assert.equal(h.records.length, 0, 'idle 9 s: the lookup is still open');
    h.send(ethUdp(tick, Buffer.from('b')), DEFAULT_FLOW_LIMITS.dnsTimeoutUs + 2_000_000);
    assert.deepEqual(h.records.map((r) => `${r.closeReason}:${r.dstPort}:${r.pkts.join('/')}`), ['timeout:53:1/1']);
    h.send(ethUdp(tick, Buffer.from('c')), DEFAULT_FLOW_LIMITS.udpTimeoutUs + 2_000_000);
    assert.deepEqual(h.records.map((r) => `${r.closeReason}:${r.dstPort}`), ['timeout:53', 'timeout:123']);
    assert.equal(h.pipeline.flows.active, 1, 'the clock flow itself was never idle that long');

    // Over the flow limit, a finished DNS lookup goes before an older flow of another UDP service.
    const m = harness({ maxFlows: 2 });
    m.send(ethUdp(ntp, Buffer.from('time?')), 0);
    m.send(ethUdp(dns, Buffer.from('query')), 1);
    m.send(ethUdp({ ...dns, sport: 40054 }, Buffer.from('query 2')), 2);
    assert.deepEqual(m.records.map((r) => `${r.closeReason}:${r.srcPort}`), ['memcap:40053']);
  });

  test('the flow limit evicts the least recently active flows and counts them', () => {
    const h = harness({ maxFlows: 10 });
    for (let i = 0; i < 25; i++) h.send(ethTcp({ ...C, sport: 20000 + i, seq: 1, flags: SYN }), i);
    assert.ok(h.pipeline.flows.active <= 10);
    assert.equal(h.pipeline.counters.get('flow.memcap_evicted'), 15);
    assert.ok(h.records.every((r) => r.closeReason === 'memcap'));
    assert.deepEqual(h.records.map((r) => r.srcPort).slice(0, 3), [20000, 20001, 20002]);
  });

  test('inspection memory counts against the memcap: past half of it, idle established flows go first, not new ones', () => {
    // Each consumer holds 1 MiB of "inspection state" from its first byte until its flow ends, as a
    // decoder or a text arena does (events/memuse.ts); the memcap is 8 MiB.
    const records: FlowRecord[] = [];
    const pipeline = new Pipeline({
      flowLimits: { ...DEFAULT_FLOW_LIMITS, memcapBytes: 8 << 20 },
      flowEnded: { flowEnded: (r) => records.push(r) },
      streams: {
        open() {
          let held = 0;
          return {
            data: () => {
              if (held === 0) chargeMemory(pipeline.counters, (held = 1 << 20));
            },
            gap: () => {},
            end: () => chargeMemory(pipeline.counters, -held),
          };
        },
      },
    });
    const send = (f: Uint8Array, ts: number): void => pipeline.packet(1, f, 0, f.length, f.length, ts, 0);
    const open = (sport: number, t: number): void => {
      const c = { ...C, sport };
      const s = { ...S, dport: sport };
      send(ethTcp({ ...c, seq: 1, flags: SYN }), t);
      send(ethTcp({ ...s, seq: 100, ack: 2, flags: SYN | ACK }), t + 1);
      send(ethTcp({ ...c, seq: 2, ack: 101, flags: PSH | ACK }, Buffer.from('GET / HTTP/1.1\r\n')), t + 2);
    };
    // ten connections parked mid-message, seconds apart (the LRU order has 1 s granularity)
    for (let i = 0; i < 10; i++) open(30000 + i, i * 2_000_000);
    // the eighth parked message takes the estimate over 8 MiB (entries count too): one evicted each time since
    assert.equal(memoryInUse(pipeline.counters), 7 << 20);
    assert.deepEqual(records.map((r) => `${r.closeReason}:${r.srcPort}`), ['memcap:30000', 'memcap:30001', 'memcap:30002']);
    assert.equal(pipeline.counters.get('flow.memcap_evicted'), 3);
    // half-open connections hold nothing: they are not what the memcap takes for inspection memory
    for (let i = 0; i < 20; i++) send(ethTcp({ ...C, sport: 50000 + i, seq: 1, flags: SYN }), 30_000_000 + i);
    open(31000, 31_000_000);
    assert.equal(records.filter((r) => r.srcPort >= 50000).length, 0, 'a half-open flow was evicted');
    assert.equal(records.at(-1)?.srcPort, 30003, 'the least recently active parked flow went');
    pipeline.finish();
    assert.equal(memoryInUse(pipeline.counters), 0, 'every flow gave back what it held');
  });

  test('flow ids are the same for the same input and differ between flows', () => {
    const ids = () => {
      const h = harness();
      connection(h, 1_000_000);
      h.send(ethTcp({ ...C, sport: 41000, seq: 1, flags: SYN }), 2_000_000);
      h.pipeline.finish();
      return h.records.map((r) => r.flowId);
    };
    const a = ids();
    assert.deepEqual(ids(), a);
    assert.equal(new Set(a).size, 2);
    assert.ok(a.every((id) => Number.isSafeInteger(id) && id >= 0));
  });

  test('the originator MAC is on the flow info', () => {
    const h = harness();
    connection(h, 1);
    assert.match(h.opened[0].srcMac ?? '', /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  });

  test('UDP datagrams form flows with a direction', () => {
    const seen: Array<[number, string]> = [];
    const p = new Pipeline({ datagrams: { datagram: (_i, d, b) => seen.push([d, Buffer.from(b).toString()]) } });
    const q = ethUdp({ src: '10.1.0.5', dst: '10.0.0.53', sport: 5353, dport: 53 }, Buffer.from('query'));
    const a = ethUdp({ src: '10.0.0.53', dst: '10.1.0.5', sport: 53, dport: 5353 }, Buffer.from('answer'));
    p.packet(1, q, 0, q.length, q.length, 1, 0);
    p.packet(1, a, 0, a.length, a.length, 2, 0);
    assert.deepEqual(seen, [[0, 'query'], [1, 'answer']]);
    assert.equal(p.flows.active, 1);
  });
});

describe('FlowTable retention by reference (Pipeline.runFile)', () => {
  test('reading a file, where reassembly keeps source bytes by reference, judges every retransmission as copying does', () => {
    // 60 interleaved connections send ~4 MiB through a 1 MiB read buffer; some segments come again
    // later, soon or after the buffer has wrapped, a third of them with altered bytes.
    let s = 0xfeed;
    const rnd = () => {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      return s;
    };
    const packets: Array<{ data: Uint8Array; tsUs: number }> = [];
    let ts = 1_000_000;
    const conns = Array.from({ length: 60 }, (_, i) => ({ c: { ...C, sport: 30000 + i }, sseq: 5000 + i * 100_000, sent: [] as Array<{ seq: number; bytes: Buffer }> }));
    for (const k of conns) {
      const sv = { src: k.c.dst, dst: k.c.src, sport: k.c.dport, dport: k.c.sport };
      packets.push({ data: ethTcp({ ...k.c, seq: 100, flags: SYN }), tsUs: ts++ });
      packets.push({ data: ethTcp({ ...sv, seq: k.sseq, ack: 101, flags: SYN | ACK }), tsUs: ts++ });
      packets.push({ data: ethTcp({ ...k.c, seq: 101, ack: k.sseq + 1, flags: ACK }, Buffer.from('GET / HTTP/1.1\r\n\r\n')), tsUs: ts++ });
      k.sseq++;
    }
    for (let i = 0; i < 5000; i++) {
      // In the second half only ten connections send new data: the others go quiet for longer
      // than the buffer takes to wrap, and only see their last segments come again.
      const quiet = i >= 2500;
      const idx = quiet && rnd() % 100 < 10 ? 10 + (rnd() % 50) : rnd() % (quiet ? 10 : conns.length);
      const k = conns[idx];
      const sv = { src: k.c.dst, dst: k.c.src, sport: k.c.dport, dport: k.c.sport };
      if (k.sent.length > 0 && ((quiet && idx >= 10) || rnd() % 100 < 8)) {
        // Mostly one of the last few segments (still retained), sometimes any earlier one.
        const old = k.sent[rnd() % 4 === 0 ? rnd() % k.sent.length : Math.max(0, k.sent.length - 1 - (rnd() % 3))];
        const bytes = Buffer.from(old.bytes);
        if (rnd() % 3 === 0) bytes[rnd() % bytes.length] ^= 0x40;
        packets.push({ data: ethTcp({ ...sv, seq: old.seq, ack: 119, flags: ACK | PSH, id: rnd() & 0xffff }, bytes), tsUs: (ts += 1000) });
        continue;
      }
      const bytes = Buffer.alloc(rnd() % 100 < 30 ? 1 + (rnd() % 300) : 1460);
      for (let j = 0; j < bytes.length; j++) bytes[j] = rnd() & 0xff;
      k.sent.push({ seq: k.sseq, bytes });
      packets.push({ data: ethTcp({ ...sv, seq: k.sseq, ack: 119, flags: ACK | PSH, id: rnd() & 0xffff }, bytes), tsUs: (ts += 1000) });
      k.sseq += bytes.length;
    }
    /** Each connection's deliveries in order (connections in order of first delivery). */
    const run = (mode: 'copied' | 'referenced' | 'referenced, grouped') => {
      const out = new Map<number, string[]>();
      const p = new Pipeline({
        localityFrames: mode === 'referenced' ? 0 : 32768,
        streams: {
          open: (info) => {
            const mine = out.get(info.srcPort) ?? [];
            out.set(info.srcPort, mine);
            return { data: (d, b) => void mine.push(`${d}:${Buffer.from(b).toString('hex')}`), gap: (d, n) => void mine.push(`${d}:[${n}]`), end: () => {} };
          },
        },
      });
      withTempFile(writePcap(packets), (file) => {
        if (mode !== 'copied') p.runFile(file, { windowBytes: 1 << 20 });
        else {
          readCaptureFile(file, p.packet);
          p.finish();
        }
      });
      return { out: [...out].sort((a, b) => a[0] - b[0]), counters: p.counters.snapshot() };
    };
    const copied = run('copied');
    // By reference, in file order and in connection-grouped batches (workers/locality.ts), which
    // deliver from the read buffer out of its order.
    for (const mode of ['referenced', 'referenced, grouped'] as const) {
      const referenced = run(mode);
      assert.deepEqual(referenced.counters, copied.counters, mode);
      assert.deepEqual(referenced.out, copied.out, mode);
    }
    assert.ok((copied.counters['stream.tcp.overlap_mismatch'] ?? 0) > 50, `altered retransmissions were caught (${JSON.stringify(copied.counters)})`);
    assert.ok((copied.counters['tcp.overlap'] ?? 0) > 200);
    assert.ok((copied.counters['tcp.retransmission_unverified'] ?? 0) > 10);
  });
});

describe('FlowTable packets and bytes of fragmented datagrams', () => {
  const fixture = (name: string): string => fileURLToPath(new URL(`../../../test/fixtures/${name}`, import.meta.url));

  /** Every flow record of a capture file, read as `hark flows` reads it (or in connection-grouped batches). */
  function flowsOf(file: string, localityFrames = 0): FlowRecord[] {
    const records: FlowRecord[] = [];
    new Pipeline({ flowEnded: { flowEnded: (r) => records.push(r) }, localityFrames }).runFile(file);
    return records;
  }

  /** Frames in a capture file and the sum of their wire (original) lengths. */
  function wireTotals(file: string): { frames: number; bytes: number } {
    const t = { frames: 0, bytes: 0 };
    readCaptureFile(file, (_l, _b, _o, _c, origLen) => {
      t.frames++;
      t.bytes += origLen;
    });
    return t;
  }

  test('an IPv6 TCP segment in three fragments counts three packets and their 1,218 wire bytes (sv-defrag fixture)', () => {
    const file = fixture('decode/sv-defrag-eth-vlan-ipv6-tcp.pcap');
    for (const localityFrames of [0, 64]) {
      const records = flowsOf(file, localityFrames);
      assert.equal(records.length, 1);
      const r = records[0];
      assert.deepEqual(r.pkts, [3, 0], 'frames 506 + 506 + 206 bytes long');
      assert.deepEqual(r.bytes, [1218, 0], 'not only the last fragment');
      assert.deepEqual(r.dataBytes, [1000, 0]);
    }
  });

  test('fragmented IPv4 and IPv6 DNS answers: every frame of the capture is counted once, in its flow (ndpi-dns_fragmented)', () => {
    const file = fixture('dns/ndpi-dns_fragmented.pcap');
    const wire = wireTotals(file);
    for (const localityFrames of [0, 64]) {
      const records = flowsOf(file, localityFrames);
      const sum = (pick: (r: FlowRecord) => readonly number[]): number => records.reduce((n, r) => n + pick(r)[0] + pick(r)[1], 0);
      assert.deepEqual({ frames: sum((r) => r.pkts), bytes: sum((r) => r.bytes) }, wire);
      // frames 2 and 3: a DNSKEY answer of 1702 bytes in two IPv4 fragments (IP lengths 1500 + 250)
      const v4 = records.find((r) => r.srcIp === '172.217.40.76' && r.srcPort === 56680);
      assert.ok(v4 !== undefined);
      assert.deepEqual(v4.pkts, [1, 2]);
      assert.deepEqual(v4.bytes, [82, 1514 + 264]);
      assert.deepEqual(v4.dataBytes, [40, 1702]);
      // frames 5 and 6: an AAAA answer in two IPv6 fragments
      const v6 = records.find((r) => r.srcIp === '2a00:1450:4013:c03::10a' && r.srcPort === 46433);
      assert.ok(v6 !== undefined);
      assert.deepEqual(v6.pkts, [1, 2]);
      assert.deepEqual(v6.bytes, [120, 1510 + 123]);
    }
  });

  test('counts the wire length, not the captured one, and leaves out the fragments of a datagram that never completes', () => {
    const h = harness();
    const FCS = 4; // captured without the Ethernet frame check sequence: on the wire 4 bytes longer
    const send = (f: Uint8Array, ts: number): void => h.pipeline.packet(1, f, 0, f.length, f.length + FCS, ts, 0);
    const ip = { proto: IPPROTO.UDP, src: S.src, dst: S.dst };
    const query = ethUdp({ ...C, dport: 53 });
    const answer = fragmentIpv4({ ...ip, id: 1 }, udp({ sport: 53, dport: C.sport }, counting(2000)), 800).map((x) => ethernet({ type: ETHERTYPE.IPV4 }, x));
    const lost = fragmentIpv4({ ...ip, id: 2 }, udp({ sport: 53, dport: C.sport }, counting(2000)), 800).map((x) => ethernet({ type: ETHERTYPE.IPV4 }, x));
    assert.equal(answer.length, 3);
    send(query, 1);
    send(answer[2], 2);
    send(lost[0], 3); // its middle fragment never comes
    send(answer[0], 4);
    send(lost[2], 5);
    send(answer[1], 6);
    h.pipeline.finish();
    assert.equal(h.records.length, 1);
    const r = h.records[0];
    assert.deepEqual(r.pkts, [1, 3]);
    assert.deepEqual(r.bytes, [query.length + FCS, answer.reduce((n, f) => n + f.length + FCS, 0)]);
    assert.deepEqual(r.dataBytes, [0, 2000]);
    const c = h.pipeline.counters;
    assert.deepEqual([c.get('decoder.pkts'), c.get('defrag.fragments'), c.get('defrag.reassembled'), c.get('defrag.in_progress')], [6, 5, 1, 1], 'the lost datagram\'s two fragments are counted by the decoder and the defragmenter only');
  });
});

/**
 * Flow bypass in the capture thread (workers/bypass-table.ts): the 64-bit connection key is the
 * same both directions and differs for any other connection (ports, VLANs, IPv6); the table drops
 * a bypassed connection's frames and counts them each way, passes SYN / FIN / RST and a keepalive,
 * refuses entries beyond half its size, survives rebuilds, tells a mirror port's copies apart from
 * retransmissions; and on real captures, a pipeline whose frames go through the table first (as the
 * capture thread does) ends every flow with the same record and the same bypassed bytes as one
 * that saw every frame, also when a mirror port delivers every frame twice.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readCaptureFile } from '../../sensor/capture/file-reader.js';
import type { FlowRecord } from '../../sensor/flow/flow-table.js';
import { BYPASS, type BypassedBytes, type FlowInfo, type StreamConsumer } from '../../sensor/flow/stream.js';
import { Pipeline } from '../../sensor/pipeline.js';
import { BypassTable, createBypassBuffer, dropBypassed, DROPPED, DUPLICATE, PASS, WorkerCaptureBypass } from '../../sensor/workers/bypass-table.js';
import { FlowHasher } from '../../sensor/workers/dispatch.js';
import { Counters } from '../../sensor/events/counters.js';
import { ethTcp, ethUdp, fragmentIpv4, ethernet, ETHERTYPE, IPPROTO, LINKTYPE, tcp, TCP_FLAGS, type FlowFrameOptions } from '../helpers/packets.js';
import { fixture } from '../helpers/replay.js';

const CLIENT: FlowFrameOptions = { src: '10.1.2.3', dst: '192.0.2.80', sport: 51515, dport: 443 };
const SERVER: FlowFrameOptions = { src: '192.0.2.80', dst: '10.1.2.3', sport: 443, dport: 51515 };
const CLIENT6: FlowFrameOptions = { src: '2001:db8::a', dst: '2001:db8:ffff::50', sport: 40000, dport: 443 };
const SERVER6: FlowFrameOptions = { src: '2001:db8:ffff::50', dst: '2001:db8::a', sport: 443, dport: 40000 };

const hasher = new FlowHasher();
/** The key of a frame: [key1, key2, srcTag, dstTag], or undefined when it has none. */
function keyOf(frame: Uint8Array): [number, number, number, number] | undefined {
  hasher.hash(LINKTYPE.ETHERNET, frame, 0, frame.length);
  return hasher.bypassKey(frame) ? [hasher.key1, hasher.key2, hasher.srcTag, hasher.dstTag] : undefined;
}

test('bypassKey: one key for both directions of a connection, another for every other connection', () => {
  for (const [c, s] of [[CLIENT, SERVER], [CLIENT6, SERVER6]]) {
    const a = keyOf(ethTcp(c))!;
    const b = keyOf(ethTcp(s))!;
    assert.ok(a !== undefined && b !== undefined);
    assert.deepEqual(b.slice(0, 2), a.slice(0, 2), 'same key both ways');
    assert.equal(b[2], a[3], "the server's source tag is the client's destination tag");
    assert.notEqual(a[2], a[3], 'the two ends are told apart');
    const others = [
      ethTcp({ ...c, sport: c.sport + 1 }),
      ethTcp({ ...c, dport: c.dport + 1 }),
      ethTcp({ ...c, vlans: [{ vid: 10 }] }),
      ethTcp({ ...c, vlans: [{ vid: 10 }, { vid: 20 }] }),
      ethTcp({ ...c, vlans: [{ vid: 20 }, { vid: 10 }] }),
    ];
    const keys = new Set(others.map((f) => keyOf(f)!.slice(0, 2).join()));
    keys.add(a.slice(0, 2).join());
    assert.equal(keys.size, others.length + 1, 'every other connection has a key of its own');
  }
  assert.deepEqual(keyOf(ethTcp({ ...CLIENT, vlans: [{ vid: 10 }] }))!.slice(0, 2), keyOf(ethTcp({ ...SERVER, vlans: [{ vid: 10 }] }))!.slice(0, 2), 'VLAN-tagged both ways alike');
  // a table's random seed keys them: the same both ways under one seed, another key under another
  const seeded = (frame: Uint8Array, seed: number): string => {
    hasher.hash(LINKTYPE.ETHERNET, frame, 0, frame.length);
    assert.ok(hasher.bypassKey(frame, seed));
    return `${hasher.key1},${hasher.key2}`;
  };
  const seedA = new BypassTable(createBypassBuffer(16)).seed;
  const seedB = new BypassTable(createBypassBuffer(16)).seed;
  assert.notEqual(seedA, seedB, 'each table draws its own seed');
  assert.equal(seeded(ethTcp(CLIENT), seedA), seeded(ethTcp(SERVER), seedA));
  assert.notEqual(seeded(ethTcp(CLIENT), seedA), seeded(ethTcp(CLIENT), seedB));
  // the segment's flags and the sequence number after its payload
  keyOf(ethTcp({ ...CLIENT, seq: 0xfffffff0, flags: TCP_FLAGS.ACK | TCP_FLAGS.PSH }, Buffer.alloc(100)));
  assert.equal(hasher.tcpFlags, TCP_FLAGS.ACK | TCP_FLAGS.PSH);
  assert.equal(hasher.seqEnd, (0xfffffff0 + 100) >>> 0);
  // no key: UDP, a fragment, a truncated TCP header
  assert.equal(keyOf(ethUdp(CLIENT)), undefined);
  const frags = fragmentIpv4({ proto: IPPROTO.TCP, src: CLIENT.src, dst: CLIENT.dst, id: 7 }, tcp({ sport: 1, dport: 2 }, Buffer.alloc(2000)), 1000);
  for (const f of frags) assert.equal(keyOf(ethernet({ type: ETHERTYPE.IPV4 }, f)), undefined);
  const whole = ethTcp(CLIENT);
  assert.equal(keyOf(whole.subarray(0, whole.length - 1)), undefined);
});

/** Inserts the connection of `frame` into `t` for flow slot `flow` (originator: the frame's sender). */
function insertFrame(t: BypassTable, frame: Uint8Array, flow: number, tsUs = 0, moved: (f: number, e: number) => void = () => undefined): number {
  const k = keyOf(frame)!;
  return t.insert(k[0], k[1], k[2], flow, tsUs, hasher.duplicateSig(frame), moved);
}

/** What the capture thread decides for one frame (PASS, DROPPED or DUPLICATE). */
function decide(t: BypassTable, frame: Uint8Array, tsUs: number, dedup = true): number {
  hasher.hash(LINKTYPE.ETHERNET, frame, 0, frame.length);
  return hasher.bypassKey(frame) ? t.drop(hasher, frame, frame.length, tsUs, dedup) : PASS;
}

/** Whether the capture thread drops one frame. */
function drops(t: BypassTable, frame: Uint8Array, tsUs: number, dedup = true): boolean {
  return decide(t, frame, tsUs, dedup) !== PASS;
}

test('BypassTable drops a bypassed connection\'s frames, counts them each way, and passes SYN, FIN, RST and a keepalive', () => {
  const t = new BypassTable(createBypassBuffer(64));
  const data = (o: FlowFrameOptions, seq: number, n: number): Buffer => ethTcp({ ...o, seq }, Buffer.alloc(n));
  assert.equal(drops(t, data(CLIENT, 1, 10), 0), false, 'nothing bypassed yet');
  const e = insertFrame(t, data(CLIENT, 1, 10), 3, 1_000);
  assert.ok(e >= 0);
  assert.equal(t.live, 1);
  assert.equal(t.flowAt(e), 3);
  assert.equal(drops(t, data(CLIENT, 11, 100), 2_000), true);
  assert.equal(drops(t, data(SERVER, 500, 1000), 3_000), true);
  assert.equal(drops(t, data(SERVER, 1500, 1000), 4_000), true);
  assert.equal(drops(t, data({ ...CLIENT, sport: 1 }, 1, 10), 4_000), false, 'another connection passes');
  for (const flags of [TCP_FLAGS.SYN, TCP_FLAGS.FIN | TCP_FLAGS.ACK, TCP_FLAGS.RST]) {
    assert.equal(drops(t, ethTcp({ ...CLIENT, flags }), 5_000), false, `flags ${flags} pass`);
  }
  assert.equal(drops(t, data(CLIENT, 111, 10), 6_000), true);
  assert.equal(drops(t, data(CLIENT, 121, 10), 1_006_000), false, 'one frame a second passes');
  assert.equal(drops(t, data(CLIENT, 131, 10), 1_007_000), true);
  const got = t.remove(e);
  const len = (n: number): number => ethTcp(CLIENT, Buffer.alloc(n)).length;
  assert.deepEqual(got.pkts, [3, 2]);
  assert.deepEqual(got.bytes, [len(100) + 2 * len(10), 2 * len(1000)]);
  assert.deepEqual(got.seqEnd, [141, 2500]);
  assert.equal(got.lastUs, 1_007_000);
  assert.equal(t.live, 0);
  assert.equal(drops(t, data(CLIENT, 141, 10), 1_008_000), false, 'taken out: its frames pass again');
  // 256 MiB without a frame passed: the next one passes (the sequence space never runs ahead unseen)
  const e2 = insertFrame(t, data(CLIENT, 1, 10), 4, 0);
  const big = data(CLIENT, 1, 60_000);
  let dropped = 0;
  while (drops(t, big, 10, false)) dropped++;
  assert.equal(dropped, Math.ceil((256 * 1024 * 1024) / big.length));
  t.remove(e2);
});

test('BypassTable drops a mirror port\'s copies as duplicates, uncounted, and counts retransmissions', () => {
  const t = new BypassTable(createBypassBuffer(64));
  const seg = (o: FlowFrameOptions, seq: number, n: number, id = 0x1234): Buffer => ethTcp({ ...o, seq, id }, Buffer.alloc(n, seq & 0xff));
  const e = insertFrame(t, seg(CLIENT, 1, 10), 3, 1_000);
  assert.equal(decide(t, seg(CLIENT, 1, 10), 1_002), DUPLICATE, 'the copy of the frame that made the worker bypass');
  assert.equal(decide(t, seg(CLIENT, 11, 100), 2_000), DROPPED);
  assert.equal(decide(t, seg(SERVER, 500, 1000), 2_001), DROPPED);
  assert.equal(decide(t, seg(CLIENT, 111, 100), 2_002), DROPPED);
  // copies a few frames behind their originals, from either direction
  assert.equal(decide(t, seg(CLIENT, 11, 100), 2_003), DUPLICATE);
  assert.equal(decide(t, seg(SERVER, 500, 1000), 2_004), DUPLICATE);
  assert.equal(decide(t, seg(CLIENT, 111, 100), 2_005), DUPLICATE);
  // the same segment sent again (a new IPv4 id), or a copy later than the window: traffic
  assert.equal(decide(t, seg(CLIENT, 11, 100, 0x2222), 2_500), DROPPED, 'a retransmission');
  assert.equal(decide(t, seg(SERVER, 500, 1000), 3_100), DROPPED, 'over 1 ms after the original');
  // a keepalive that passes to the worker: its copy is the worker's duplicate, dropped here
  assert.equal(decide(t, seg(CLIENT, 211, 10), 1_100_000), PASS);
  assert.equal(decide(t, seg(CLIENT, 211, 10), 1_100_001), DUPLICATE);
  // with the workers keeping duplicates (--keep-duplicates), copies count as traffic
  assert.equal(decide(t, seg(CLIENT, 221, 10), 1_100_002, false), DROPPED);
  assert.equal(decide(t, seg(CLIENT, 221, 10), 1_100_003, false), DROPPED);
  const len = (n: number): number => seg(CLIENT, 0, n).length;
  const got = t.remove(e);
  assert.deepEqual(got.pkts, [5, 2]);
  assert.deepEqual(got.bytes, [3 * len(100) + 2 * len(10), 2 * len(1000)]);
  // what the capture thread counts: every dropped frame, and the copies among them as duplicates
  const counters = new Counters();
  const u = new BypassTable(createBypassBuffer(64));
  const first = seg(CLIENT, 1, 10);
  hasher.hash(LINKTYPE.ETHERNET, first, 0, first.length);
  assert.ok(hasher.bypassKey(first, u.seed));
  u.insert(hasher.key1, hasher.key2, hasher.srcTag, 3, 1_000, hasher.duplicateSig(first), () => undefined);
  const step = (frame: Buffer, tsUs: number): boolean => {
    hasher.hash(LINKTYPE.ETHERNET, frame, 0, frame.length);
    return dropBypassed(u, hasher, frame, frame.length, frame.length, tsUs, true, counters);
  };
  assert.equal(step(seg(CLIENT, 11, 100), 2_000), true);
  assert.equal(step(seg(CLIENT, 11, 100), 2_001), true);
  assert.equal(step(ethTcp({ ...CLIENT, flags: TCP_FLAGS.RST }), 2_002), false);
  assert.equal(step(ethUdp(CLIENT), 2_003), false, 'no TCP, no key');
  assert.equal(counters.get('workers.bypass_dropped'), 2);
  assert.equal(counters.get('workers.bypass_dropped_bytes'), 2 * len(100));
  assert.equal(counters.get('decoder.duplicates'), 1);
});

test('BypassTable holds at most half its entries, rebuilds over tombstones, and a restarted worker clears it', () => {
  const t = new BypassTable(createBypassBuffer(16));
  const frame = (port: number): Buffer => ethTcp({ ...CLIENT, sport: port });
  const entry = new Map<number, number>();
  const moved = (f: number, e: number): void => void entry.set(f, e);
  for (let f = 0; f < 8; f++) entry.set(f, insertFrame(t, frame(1000 + f), f, 0, moved));
  assert.equal(insertFrame(t, frame(2000), 99), -1, 'full at half its entries');
  // churn: take one out and put another in, many times over (tombstones force rebuilds)
  for (let round = 0; round < 200; round++) {
    const f = round % 8;
    t.remove(entry.get(f)!);
    const port = 3000 + round;
    entry.set(f, insertFrame(t, frame(port), f, 0, moved));
    assert.ok(entry.get(f)! >= 0);
    for (let g = 0; g < 8; g++) assert.equal(t.flowAt(entry.get(g)!), g, `round ${round}: flow ${g} where the table said`);
    assert.equal(drops(t, frame(port), 1), true, 'the new one is found');
  }
  assert.equal(t.live, 8);
  assert.throws(() => createBypassBuffer(100), /power of two/);
  t.clear();
  assert.equal(t.live, 0);
  assert.equal(drops(t, frame(3199), 1), false);
});

/** Counts bytes and asks for bypass after the first `after` bytes of each direction. */
function bypassingFactory(after: number, ends: Map<number, BypassedBytes | undefined>): { open(info: FlowInfo): StreamConsumer } {
  return {
    open(info) {
      const seen = [0, 0];
      return {
        data(dir, bytes) {
          seen[dir] += bytes.length;
          return seen[dir] > after ? BYPASS : undefined;
        },
        gap: () => undefined,
        end(_reason, _ts, bypassed) {
          ends.set(info.flowId, bypassed);
        },
      };
    },
  };
}

interface Run {
  records: FlowRecord[];
  ends: Map<number, BypassedBytes | undefined>;
  counters: Counters;
  /** The capture thread's own counters (dropBypassed). */
  capture: Counters;
  dropped: number;
}

/**
 * A pipeline over `file`; with `inCapture`, every frame first meets the table, as the capture thread's
 * dispatch does. `doubled`: each frame comes twice, the copy 3 us later (a SPAN session mirroring
 * ingress and egress).
 */
function run(file: string, inCapture: boolean, doubled = false): Run {
  const records: FlowRecord[] = [];
  const ends = new Map<number, BypassedBytes | undefined>();
  const counters = new Counters();
  const buffer = createBypassBuffer(1024);
  const table = new BypassTable(buffer);
  const pipeline = new Pipeline({
    counters,
    streams: bypassingFactory(300, ends),
    flowEnded: { flowEnded: (r) => records.push(r) },
    captureBypass: inCapture ? new WorkerCaptureBypass(buffer, counters) : undefined,
  });
  const h = new FlowHasher();
  const capture = new Counters();
  let dropped = 0;
  const frame = (linkType: number, buf: Uint8Array, off: number, capLen: number, origLen: number, tsUs: number, ifIndex: number): void => {
    h.hash(linkType, buf, off, capLen);
    if (dropBypassed(table, h, buf, capLen, origLen, tsUs, true, capture)) {
      dropped++;
      return;
    }
    pipeline.packet(linkType, buf, off, capLen, origLen, tsUs, ifIndex);
  };
  readCaptureFile(file, (linkType, buf, off, capLen, origLen, tsUs, ifIndex) => {
    frame(linkType, buf, off, capLen, origLen, tsUs, ifIndex);
    if (doubled) frame(linkType, buf, off, capLen, origLen, tsUs + 3, ifIndex);
  });
  pipeline.finish();
  assert.equal(table.live, 0, 'every entry taken out when its flow ended');
  return { records: records.sort((a, b) => a.flowId - b.flowId), ends, counters, capture, dropped };
}

test('On real captures, flows bypassed in the capture thread end with the records and bypassed bytes of flows that saw every frame', () => {
  const files = [
    fixture('tls', 'zeek-tls12-decryption.pcap'),
    fixture('tls', 'arkime-tls13.pcap'),
    fixture('tls', 'zeek-tls13-ech.pcap'),
    fixture('tcp', 'ndpi-WebattackXSS.pcap'),
  ];
  let droppedTotal = 0;
  for (const file of files) {
    const all = run(file, false);
    const cut = run(file, true);
    assert.ok(all.counters.get('flow.bypassed') > 0, `${file}: flows bypassed`);
    assert.deepEqual(cut.records, all.records, `${file}: flow records`);
    assert.deepEqual([...cut.ends].sort((a, b) => a[0] - b[0]), [...all.ends].sort((a, b) => a[0] - b[0]), `${file}: bypassed bytes at each flow's end`);
    assert.equal(cut.counters.get('flow.bypassed_bytes'), all.counters.get('flow.bypassed_bytes'));
    assert.equal(cut.counters.get('decoder.pkts') + cut.dropped, all.counters.get('decoder.pkts'), `${file}: every frame decoded or dropped`);
    assert.equal(cut.counters.get('workers.bypass_installed'), cut.counters.get('flow.bypassed'), `${file}: each bypassed connection installed`);
    droppedTotal += cut.dropped;
  }
  assert.ok(droppedTotal > 100, `frames dropped before the flow table: ${droppedTotal}`);
});

test('On real captures whose every frame a mirror port doubled, flows bypassed in the capture thread end with the records of flows that saw every frame', () => {
  const files = [
    fixture('tls', 'zeek-tls12-decryption.pcap'),
    fixture('tls', 'arkime-tls13.pcap'),
    fixture('tcp', 'ndpi-WebattackXSS.pcap'),
  ];
  let copiesDropped = 0;
  for (const file of files) {
    const all = run(file, false, true);
    const cut = run(file, true, true);
    const once = run(file, false);
    assert.deepEqual(all.records, once.records, `${file}: the workers' duplicate filter drops every copy`);
    assert.deepEqual(cut.records, all.records, `${file}: flow records`);
    assert.deepEqual([...cut.ends].sort((a, b) => a[0] - b[0]), [...all.ends].sort((a, b) => a[0] - b[0]), `${file}: bypassed bytes at each flow's end`);
    assert.equal(cut.counters.get('decoder.duplicates') + cut.capture.get('decoder.duplicates'), all.counters.get('decoder.duplicates'), `${file}: every copy counted as a duplicate`);
    assert.equal(all.counters.get('decoder.duplicates'), once.counters.get('decoder.pkts'), `${file}: one copy per frame`);
    assert.equal(cut.counters.get('decoder.pkts') + cut.dropped, all.counters.get('decoder.pkts'), `${file}: every frame decoded or dropped`);
    assert.equal(cut.capture.get('workers.bypass_dropped'), cut.dropped);
    copiesDropped += cut.capture.get('decoder.duplicates');
  }
  assert.ok(copiesDropped > 50, `copies dropped in the capture thread: ${copiesDropped}`);
});

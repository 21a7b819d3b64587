/**
 * The dispatcher's flow hash: both directions of a flow hash alike, through every encapsulation
 * the decoder looks through (to the inner flow, whatever the outer tunnel endpoints), fragments
 * follow their datagram's addresses, non-IP goes to worker 0, and no byte pattern throws.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlowHasher, HASH_ADDRESSES, HASH_FRAGMENT, HASH_NOT_IP, HASH_PORTS, workerForHash } from '../../sensor/workers/dispatch.js';
import {
  ascii, erspan2, erspan3, ETHERTYPE, ethernet, ethTcp, ethUdp, fragmentIpv4, fragmentIpv6, geneve, gre, IPPROTO, ipv4, ipv6,
  LINKTYPE, mpls, pppoeSession, PPP, pwControlWord, sll, tcp, udp, vxlan,
} from '../helpers/packets.js';

/** `flows` balance: TCP ports count too, so the tests can see the walk reached them. */
const hasher = new FlowHasher('flows');
const hashOf = (frame: Uint8Array, linkType: number = LINKTYPE.ETHERNET): number => hasher.hash(linkType, frame, 0, frame.length);

interface Dir {
  src: string;
  dst: string;
  sport: number;
  dport: number;
}
const CLIENT: Dir = { src: '10.1.2.3', dst: '192.0.2.80', sport: 51515, dport: 443 };
const SERVER: Dir = { src: '192.0.2.80', dst: '10.1.2.3', sport: 443, dport: 51515 };
const CLIENT6: Dir = { src: '2001:db8::a', dst: '2001:db8:ffff::50', sport: 40000, dport: 80 };
const SERVER6: Dir = { src: '2001:db8:ffff::50', dst: '2001:db8::a', sport: 80, dport: 40000 };

/** IPv4 TCP packet (no link layer) of one direction. */
function ipTcp(d: Dir): Buffer {
  return ipv4({ proto: IPPROTO.TCP, src: d.src, dst: d.dst }, tcp({ sport: d.sport, dport: d.dport }, ascii('x')));
}

test('FlowHasher gives both directions of a TCP flow the same hash, IPv4 and IPv6, from the ports too', () => {
  for (const [a, b] of [[CLIENT, SERVER], [CLIENT6, SERVER6]]) {
    const h = hashOf(ethTcp(a));
    assert.equal(hasher.kind, HASH_PORTS);
    assert.equal(hashOf(ethTcp(b)), h);
    assert.notEqual(hashOf(ethTcp({ ...a, sport: a.sport + 1 })), h, 'another connection of the same hosts hashes differently');
  }
});

test('FlowHasher with the default hosts balance puts every connection of two hosts, and its fragments, on one hash', () => {
  const hosts = new FlowHasher();
  const of = (f: Buffer): number => hosts.hash(LINKTYPE.ETHERNET, f, 0, f.length);
  const h = of(ethTcp(CLIENT));
  assert.equal(hosts.kind, HASH_ADDRESSES);
  assert.equal(of(ethTcp(SERVER)), h);
  assert.equal(of(ethTcp({ ...CLIENT, sport: 1 })), h);
  assert.equal(of(ethUdp({ ...CLIENT, dport: 53 })), h);
  assert.notEqual(of(ethTcp({ ...CLIENT, dst: '192.0.2.81' })), h, 'another server hashes differently');
  const frags = fragmentIpv4({ proto: IPPROTO.TCP, src: SERVER.src, dst: SERVER.dst, id: 9 }, tcp({ sport: 443, dport: 51515 }, Buffer.alloc(2000)), 1000);
  for (const f of frags) assert.equal(of(ethernet({ type: ETHERTYPE.IPV4 }, f)), h);
  assert.equal(of(ENCAPSULATIONS[9][1](CLIENT, true)), h, 'through ERSPAN III too');
});

test('FlowHasher hashes UDP on addresses only (so fragmented and whole datagrams of a flow meet)', () => {
  const h = hashOf(ethUdp({ ...CLIENT, dport: 53 }));
  assert.equal(hasher.kind, HASH_ADDRESSES);
  assert.equal(hashOf(ethUdp({ ...SERVER, sport: 53 })), h);
  assert.equal(hashOf(ethUdp({ ...CLIENT, sport: 1234, dport: 53 })), h);
});

test('workerForHash spreads connections of one host pair over the workers and stays in range', () => {
  for (const n of [2, 3, 8]) {
    const seen = new Set<number>();
    for (let port = 1024; port < 1024 + 256; port++) {
      const w = workerForHash(hashOf(ethTcp({ ...CLIENT, sport: port })), n);
      assert.ok(w >= 0 && w < n);
      seen.add(w);
    }
    assert.equal(seen.size, n, `256 connections reach all ${n} workers`);
  }
  assert.equal(workerForHash(0xffffffff, 3), 2);
  assert.equal(workerForHash(0, 3), 0);
});

/** Encapsulations: each turns an inner Ethernet frame (or IP packet) into the frame on the wire. */
const ENCAPSULATIONS: Array<[string, (d: Dir, outerFromA: boolean) => Buffer]> = [
  ['802.1Q VLAN', (d) => ethernet({ type: ETHERTYPE.IPV4, vlans: [{ vid: 42 }] }, ipTcp(d))],
  ['QinQ (802.1ad + 802.1Q)', (d) => ethernet({ type: ETHERTYPE.IPV4, vlans: [{ vid: 100, tpid: ETHERTYPE.QINQ }, { vid: 42 }] }, ipTcp(d))],
  ['MPLS', (d) => ethernet({ type: ETHERTYPE.MPLS }, mpls({ labels: [16, 17] }, ipTcp(d)))],
  ['MPLS pseudowire (Ethernet over MPLS)', (d) => ethernet({ type: ETHERTYPE.MPLS }, mpls({ labels: [20] }, pwControlWord(ethernet({ type: ETHERTYPE.IPV4 }, ipTcp(d)))))],
  ['PPPoE', (d) => ethernet({ type: ETHERTYPE.PPPOE_SESS }, pppoeSession({ proto: PPP.IPV4 }, ipTcp(d)))],
  ['GRE (IPv4 inside)', (d, a) => ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ proto: IPPROTO.GRE, src: a ? '203.0.113.1' : '203.0.113.2', dst: a ? '203.0.113.2' : '203.0.113.1' }, gre({ proto: ETHERTYPE.IPV4, key: 7 }, ipTcp(d))))],
  ['GRE transparent Ethernet bridging', (d, a) => ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ proto: IPPROTO.GRE, src: a ? '203.0.113.1' : '203.0.113.9' }, gre({ proto: ETHERTYPE.TEB }, ethernet({ type: ETHERTYPE.IPV4 }, ipTcp(d)))))],
  ['ERSPAN type I', (d, a) => ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ proto: IPPROTO.GRE, src: a ? '198.51.100.1' : '198.51.100.7' }, gre({ proto: ETHERTYPE.ERSPAN2 }, ethernet({ type: ETHERTYPE.IPV4 }, ipTcp(d)))))],
  ['ERSPAN type II', (d, a) => ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ proto: IPPROTO.GRE, src: a ? '198.51.100.1' : '198.51.100.7' }, gre({ proto: ETHERTYPE.ERSPAN2, seq: a ? 1 : 99 }, erspan2({ session: 3 }, ethernet({ type: ETHERTYPE.IPV4, vlans: [{ vid: 9 }] }, ipTcp(d))))))],
  ['ERSPAN type III with sub-header', (d, a) => ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ proto: IPPROTO.GRE, src: a ? '198.51.100.1' : '198.51.100.7' }, gre({ proto: ETHERTYPE.ERSPAN3, seq: 5 }, erspan3({ subHeader: Buffer.alloc(8, 1) }, ethernet({ type: ETHERTYPE.IPV4 }, ipTcp(d))))))],
  ['VXLAN', (d, a) => ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ proto: IPPROTO.UDP, src: a ? '203.0.113.10' : '203.0.113.20', dst: '203.0.113.30' }, udp({ sport: a ? 33333 : 44444, dport: 4789 }, vxlan({ vni: 5001 }, ethernet({ type: ETHERTYPE.IPV4 }, ipTcp(d))))))],
  ['Geneve', (d, a) => ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ proto: IPPROTO.UDP, src: a ? '203.0.113.10' : '203.0.113.20' }, udp({ sport: 1000, dport: 6081 }, geneve({ vni: 9 }, ethernet({ type: ETHERTYPE.IPV4 }, ipTcp(d))))))],
  ['IP-in-IP', (d, a) => ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ proto: IPPROTO.IPIP, src: a ? '203.0.113.1' : '203.0.113.2' }, ipTcp(d)))],
  ['VXLAN inside a VLAN', (d, a) => ethernet({ type: ETHERTYPE.IPV4, vlans: [{ vid: 3 }] }, ipv4({ proto: IPPROTO.UDP, src: a ? '203.0.113.10' : '203.0.113.20' }, udp({ sport: 5, dport: 4789 }, vxlan({ vni: 1 }, ethernet({ type: ETHERTYPE.IPV4, vlans: [{ vid: 7 }] }, ipTcp(d))))))],
];

test('FlowHasher looks through every encapsulation to the inner flow: same hash both directions, and as the bare inner frame', () => {
  const bare = hashOf(ethTcp(CLIENT));
  for (const [name, wrap] of ENCAPSULATIONS) {
    // The two directions may come from different tunnel endpoints (two mirror sessions): the inner flow decides.
    assert.equal(hashOf(wrap(CLIENT, true)), bare, `${name}: client side`);
    assert.equal(hasher.kind, HASH_PORTS, `${name}: reached the ports`);
    assert.equal(hashOf(wrap(SERVER, false)), bare, `${name}: server side`);
  }
});

test('FlowHasher reads Linux cooked (SLL) and raw IP captures the same as Ethernet', () => {
  const bare = hashOf(ethTcp(CLIENT));
  assert.equal(hashOf(sll({ protocol: ETHERTYPE.IPV4 }, ipTcp(SERVER)), LINKTYPE.LINUX_SLL), bare);
  assert.equal(hashOf(ipTcp(SERVER), LINKTYPE.RAW), bare);
});

test('FlowHasher sends every IPv4 fragment, the first (with ports) included, where its unfragmented flow goes', () => {
  const payload = udp({ sport: 53, dport: 40000 }, Buffer.alloc(3000, 0x61));
  const frags = fragmentIpv4({ proto: IPPROTO.UDP, src: '192.0.2.53', dst: '10.1.2.3', id: 0x4242 }, payload, 1400);
  assert.equal(frags.length, 3);
  const query = hashOf(ethUdp({ src: '10.1.2.3', dst: '192.0.2.53', sport: 40000, dport: 53 }));
  for (const f of frags) {
    assert.equal(hashOf(ethernet({ type: ETHERTYPE.IPV4 }, f)), query);
    assert.equal(hasher.kind, HASH_FRAGMENT);
  }
});

test('FlowHasher sends every IPv6 fragment where its first fragment goes, an atomic fragment to its flow', () => {
  const payload = tcp({ sport: 80, dport: 40000 }, Buffer.alloc(3000, 0x62));
  const frags = fragmentIpv6({ proto: IPPROTO.TCP, src: SERVER6.src, dst: SERVER6.dst }, payload, 1200, 77);
  assert.equal(frags.length, 3);
  const first = hashOf(ethernet({ type: ETHERTYPE.IPV6 }, frags[0]));
  assert.equal(hasher.kind, HASH_FRAGMENT);
  for (const f of frags.slice(1)) assert.equal(hashOf(ethernet({ type: ETHERTYPE.IPV6 }, f)), first);
  const atomic = ethernet({ type: ETHERTYPE.IPV6 }, ipv6({ proto: IPPROTO.TCP, src: CLIENT6.src, dst: CLIENT6.dst, ext: [{ type: 44, fragOffset: 0, more: false, id: 1 }] }, tcp({ sport: CLIENT6.sport, dport: CLIENT6.dport })));
  assert.equal(hashOf(atomic), hashOf(ethTcp(SERVER6)));
  assert.equal(hasher.kind, HASH_PORTS);
});

test('FlowHasher walks IPv6 extension headers to the ports', () => {
  const f = ethernet({ type: ETHERTYPE.IPV6 }, ipv6({ proto: IPPROTO.TCP, src: CLIENT6.src, dst: CLIENT6.dst, ext: [{ type: 0 }, { type: 60 }, { type: 51 }] }, tcp({ sport: CLIENT6.sport, dport: CLIENT6.dport })));
  assert.equal(hashOf(f), hashOf(ethTcp(SERVER6)));
  assert.equal(hasher.kind, HASH_PORTS);
});

test('FlowHasher gives non-IP frames (ARP, unknown ethertypes, unknown link types) hash 0: worker 0', () => {
  assert.equal(hashOf(ethernet({ type: ETHERTYPE.ARP }, Buffer.alloc(28, 1))), 0);
  assert.equal(hasher.kind, HASH_NOT_IP);
  assert.equal(hashOf(ethernet({ type: 0x88cc }, Buffer.alloc(40, 1))), 0);
  assert.equal(hashOf(ethTcp(CLIENT), 9999), 0);
  assert.equal(workerForHash(0, 4), 0);
});

test('FlowHasher never throws on truncated or random frames and stays inside the frame', () => {
  const frames = ENCAPSULATIONS.map(([, wrap]) => wrap(CLIENT, true));
  for (const f of frames) {
    for (let cut = 0; cut <= f.length; cut++) {
      // A view over a larger buffer: the walk must stop at `len`, not at the buffer's end.
      const big = Buffer.concat([f.subarray(0, cut), Buffer.alloc(64, 0xff)]);
      const h = hasher.hash(LINKTYPE.ETHERNET, big, 0, cut);
      assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff);
    }
  }
  let seed = 12345;
  const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
  for (let i = 0; i < 3000; i++) {
    const f = Buffer.from(frames[i % frames.length]);
    for (let k = 0; k < 4; k++) f[rnd() % f.length] = rnd();
    for (const lt of [LINKTYPE.ETHERNET, LINKTYPE.RAW, LINKTYPE.LINUX_SLL, 0, 108, 276, 228, 229]) {
      const h = hasher.hash(lt, f, 0, f.length);
      assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff);
    }
  }
});

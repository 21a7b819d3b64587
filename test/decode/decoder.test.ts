/**
 * Tests for sensor/decode/decoder.ts: the dispatch loop (unsupported link types, the per-frame
 * layer bound, per-packet state reset, stat counters) and the anomaly registry of the decode stage:
 * every code a sensor/decode module registers must be listed here and asserted by some test in
 * this folder, so a new code without a test fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Counters, counterId, counterName } from '../../sensor/events/counters.js';
import { Decoder } from '../../sensor/decode/decoder.js';
// Every decode module, so all of their codes are registered in this process.
import '../../sensor/decode/dispatch.js';
import '../../sensor/decode/ip.js';
import { DEFAULT_DEFRAG_LIMITS, Defragmenter } from '../../sensor/decode/ip-fragments.js';
import '../../sensor/decode/link.js';
import '../../sensor/decode/packet.js';
import '../../sensor/decode/transport.js';
import '../../sensor/decode/tunnel.js';
import { decodeOne } from '../helpers/decode.js';
import { ascii, ETHERTYPE, ethernet, ethTcp, IPPROTO, ipv4, LINKTYPE, tcp, type VlanTag } from '../helpers/packets.js';

/** Every anomaly code of the decode stage. Adding a code to sensor/decode means adding it here and a test. */
const DECODE_ANOMALIES = [
  'decoder.unsupported_linktype',
  'decoder.too_many_layers',
  'decoder.ethernet.pkt_too_small',
  'decoder.vlan.pkt_too_small',
  'decoder.vlan.too_many_layers',
  'decoder.mpls.pkt_too_small',
  'decoder.mpls.too_many_labels',
  'decoder.mpls.unknown_payload',
  'decoder.pppoe.pkt_too_small',
  'decoder.pppoe.malformed',
  'decoder.sll.pkt_too_small',
  'decoder.null.pkt_too_small',
  'decoder.null.unsupported_family',
  'decoder.raw.invalid_ip_version',
  'decoder.ipv4.pkt_too_small',
  'decoder.ipv4.wrong_ip_version',
  'decoder.ipv4.hlen_too_small',
  'decoder.ipv4.iplen_smaller_than_hlen',
  'decoder.ipv4.trunc_pkt',
  'decoder.ipv4.opt_malformed',
  'decoder.ipv6.pkt_too_small',
  'decoder.ipv6.wrong_ip_version',
  'decoder.ipv6.trunc_pkt',
  'decoder.ipv6.exthdr_trunc',
  'decoder.ipv6.exthdr_too_many',
  'decoder.ipv6.zero_len_pl',
  'decoder.tunnel.too_deep',
  'defrag.overlap_mismatch',
  'defrag.datagram_too_large',
  'defrag.too_many_fragments',
  'defrag.inconsistent_last_fragment',
  'defrag.fragment_not_multiple_of_8',
  'decoder.tcp.pkt_too_small',
  'decoder.tcp.hlen_too_small',
  'decoder.tcp.invalid_optlen',
  'decoder.tcp.hlen_exceeds_packet',
  'decoder.udp.pkt_too_small',
  'decoder.udp.len_invalid',
  'decoder.icmp.pkt_too_small',
  'decoder.gre.pkt_too_small',
  'decoder.gre.version_unsupported',
  'decoder.erspan.pkt_too_small',
  'decoder.erspan.unsupported_version',
];

/** Names of every anomaly registered in this process (only sensor/decode and counters are loaded). */
function registeredAnomalies(): string[] {
  const all = new Counters();
  all.values.fill(1);
  return Object.keys(all.snapshot('anomaly')).sort();
}

test('defineAnomaly: the codes sensor/decode registers are exactly DECODE_ANOMALIES', () => {
  const registered = registeredAnomalies();
  assert.deepEqual(registered, [...DECODE_ANOMALIES].sort(), 'a code was added or removed: update DECODE_ANOMALIES and add a test');
  for (const code of DECODE_ANOMALIES) {
    const id = counterId(code);
    assert.notEqual(id, undefined, code);
    assert.equal(counterName(id as number), code);
  }
});

test('DECODE_ANOMALIES: every code is expected by at least one test in test/decode', () => {
  // The compiled test files sit beside this one; string literals survive compilation unchanged.
  const here = path.dirname(fileURLToPath(import.meta.url));
  const self = path.basename(fileURLToPath(import.meta.url));
  const sources = readdirSync(here).filter((f) => f.endsWith('.test.js'));
  assert.ok(sources.length >= 8, `expected the decode test files beside ${self}, found ${sources.join(', ')}`);
  const text = sources.map((f) => {
    const src = readFileSync(path.join(here, f), 'utf8');
    // In this file only the tests below the list count, not the list itself.
    return f === self ? src.slice(src.indexOf('function registeredAnomalies')) : src;
  }).join('\n');
  const untested = DECODE_ANOMALIES.filter((code) => !new RegExp(`['"\`]${code.replace(/\./g, '\\.')}['"\`]: \\d`).test(text));
  assert.deepEqual(untested, [], 'codes with no `{ "<code>": n }` expectation in any test');
});

// ---------------------------------------------------------------------------------------------

test('Decoder.decodeFrame flags an unsupported link type', () => {
  const r = decodeOne(ethTcp({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2 }), 147 /* LINKTYPE_USER0 */);
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.unsupported_linktype': 1 });
  assert.equal(r.counters.get('decoder.pkts'), 1);
});

test('Decoder.decodeFrame stops after 32 layers (decoder.too_many_layers)', () => {
  // Ethernet + 29 tags + IPv4 + TCP = 32 layers; one more tag makes TCP the 33rd.
  const tags = (n: number): VlanTag[] => Array.from({ length: n }, (_, i) => ({ vid: i + 1 }));
  const seg = ipv4({ proto: IPPROTO.TCP }, tcp({ sport: 1, dport: 2 }));
  const ok = decodeOne(ethernet({ type: ETHERTYPE.IPV4, vlans: tags(29) }, seg));
  assert.equal(ok.ok, true, '1 + 29 + IPv4 + TCP = 32 layers is within the bound');
  assert.deepEqual(ok.anomalies, { 'decoder.vlan.too_many_layers': 1 });
  const r = decodeOne(ethernet({ type: ETHERTYPE.IPV4, vlans: tags(30) }, seg));
  assert.equal(r.ok, false);
  assert.deepEqual(r.anomalies, { 'decoder.vlan.too_many_layers': 1, 'decoder.too_many_layers': 1 });
});

test('Decoder.decodeFrame counts packets and bytes', () => {
  const d = new Decoder(new Counters());
  const f = ethTcp({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2 }, ascii('abc'));
  d.decodeFrame(LINKTYPE.ETHERNET, f, 0, f.length, 1);
  d.decodeFrame(LINKTYPE.ETHERNET, f, 0, f.length, 2);
  assert.equal(d.counters.get('decoder.pkts'), 2);
  assert.equal(d.counters.get('decoder.bytes'), 2 * f.length);
  assert.equal(d.counters.get('decoder.tcp'), 2);
});

test('Decoder.decodeFrame resets per-packet state: a tagged TCP frame then an untagged ARP frame', () => {
  const d = new Decoder(new Counters());
  const tcpFrame = ethTcp({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, vlans: [{ vid: 5 }] }, ascii('x'));
  assert.equal(d.decodeFrame(LINKTYPE.ETHERNET, tcpFrame, 0, tcpFrame.length, 1, 3), true);
  assert.deepEqual([d.packet.vlanCount, d.packet.transport, d.packet.ifIndex, d.packet.tsUs], [1, IPPROTO.TCP, 3, 1]);
  const arp = ethernet({ type: ETHERTYPE.ARP, padTo: 60 });
  assert.equal(d.decodeFrame(LINKTYPE.ETHERNET, arp, 0, arp.length, 2, 0), false);
  const p = d.packet;
  assert.deepEqual([p.vlanCount, p.vlan0, p.transport, p.ipVersion, p.srcPort, p.payloadLen, p.tunnelDepth, p.ifIndex, p.tsUs], [0, 0, 0, 0, 0, 0, 0, 0, 2]);
});

test('Decoder uses the defragmenter it is given (shared limits across decoders)', () => {
  const c = new Counters();
  const defrag = new Defragmenter(c, { ...DEFAULT_DEFRAG_LIMITS, maxDatagrams: 1 });
  const d = new Decoder(c, defrag);
  assert.equal(d.defrag, defrag);
  const frag = (id: number) => ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ proto: IPPROTO.UDP, id, mf: true }, Buffer.alloc(8)));
  for (const id of [1, 2]) d.decodeFrame(LINKTYPE.ETHERNET, frag(id), 0, frag(id).length, id);
  assert.equal(c.get('defrag.memcap_evicted'), 1, 'the limit of the given defragmenter applied');
});

/**
 * Golden replays of real DNS captures (test/fixtures/dns/, copied from the shared corpus; see the README
 * there) through the real pipeline: file reader, decoder, IP defragmentation, flow table, TCP reassembly,
 * then DnsDatagramHandler for UDP and DnsTcpSession for TCP port 53. Expected values are quoted from the
 * MANIFEST rows (and, where the row summarises, from the tshark fields command in the README).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counters } from '../../../sensor/events/counters.js';
import { Pipeline } from '../../../sensor/pipeline.js';
import { DnsDatagramHandler, DnsTcpSessionFactory, type DnsQuery, type DnsResponse, type DnsSink } from '../../../sensor/app-layer/dns/index.js';
import { fixture } from '../../helpers/replay.js';

interface DnsReplay {
  queries: DnsQuery[];
  responses: DnsResponse[];
  counters: Counters;
}

function replayDns(file: string): DnsReplay {
  const queries: DnsQuery[] = [];
  const responses: DnsResponse[] = [];
  const sink: DnsSink = { query: (q) => queries.push(q), response: (r) => responses.push(r) };
  const counters = new Counters();
  const udp = new DnsDatagramHandler(sink, counters);
  const tcp = new DnsTcpSessionFactory(sink, counters, udp.transactions);
  const pipeline = new Pipeline({
    counters,
    datagrams: udp,
    streams: { open: (info) => (info.dstPort === 53 || info.srcPort === 53 ? tcp.open(info) : undefined) },
  });
  const summary = pipeline.runFile(fixture('dns', file));
  assert.equal(summary.problem, undefined);
  // Real, well-formed traffic: nothing malformed, no exception anywhere.
  assert.equal(counters.get('dns.malformed'), 0, `${file}: malformed`);
  assert.equal(counters.anomalyTotal() - decoderAnomalies(counters), 0, `${file}: DNS anomalies`);
  assert.equal(counters.get('pipeline.exception'), 0);
  return { queries, responses, counters };
}

function decoderAnomalies(c: Counters): number {
  let n = 0;
  for (const [name, v] of Object.entries(c.snapshot('anomaly'))) if (!name.startsWith('dns.')) n += v;
  return n;
}

const addresses = (r: DnsResponse): string[] => r.answers.flatMap((a) => (a.rdata.kind === 'a' || a.rdata.kind === 'aaaa' ? [a.rdata.address] : []));

test('corpus arkime-dns-udp: www.github.com A -> CNAME github.com, A 192.30.252.128 / .130; an ANY PTR-name query', () => {
  const { queries, responses, counters } = replayDns('arkime-dns-udp.pcap');
  assert.deepEqual(queries.map((q) => [q.name, q.qtype, q.transport]), [
    ['www.github.com', 1, 'udp'], ['www.github.com', 1, 'udp'], ['10.100.10.10.in-addr.arpa', 255, 'udp'],
  ]);
  assert.equal(responses.length, 2);
  for (const [i, addr] of [[0, '192.30.252.128'], [1, '192.30.252.130']] as const) {
    const r = responses[i];
    assert.equal(r.name, 'www.github.com');
    assert.equal(r.rcodeName, 'NOERROR');
    assert.deepEqual(r.answers.map((a) => a.rdata), [{ kind: 'name', target: 'github.com', ltarget: 'github.com' }, { kind: 'a', address: addr }]);
    assert.equal(r.queryTsUs, queries[i].tsUs, 'paired with its own query (same id, another server)');
    assert.equal(r.flow.flowId, queries[i].flow.flowId);
  }
  assert.equal(counters.get('dns.response.unmatched'), 0);
});

test('corpus arkime-dns-tcp: google.com A -> 11 answers incl. 74.125.228.46; aol.com A -> 5 incl. 205.188.100.58', () => {
  const { queries, responses, counters } = replayDns('arkime-dns-tcp.pcap');
  assert.deepEqual(queries.map((q) => [q.name, q.qtype, q.transport, q.dir]), [['google.com', 1, 'tcp', 0], ['aol.com', 1, 'tcp', 0]]);
  assert.deepEqual(responses.map((r) => [r.name, r.answers.length, r.dir]), [['google.com', 11, 1], ['aol.com', 5, 1]]);
  assert.ok(addresses(responses[0]).includes('74.125.228.46'));
  assert.ok(addresses(responses[1]).includes('205.188.100.58'));
  assert.equal(responses[0].queryTsUs, queries[0].tsUs);
  assert.equal(responses[1].queryTsUs, queries[1].tsUs);
  assert.equal(counters.get('dns.tcp.messages'), 4);
  assert.equal(counters.get('dns.tcp.gap'), 0);
});

test('corpus ws-dns-ooo: a one-sided TCP stream whose first byte arrives last still gives example.com A 93.184.216.34', () => {
  const { queries, responses, counters } = replayDns('ws-dns-ooo.pcap');
  assert.deepEqual(queries, []);
  assert.equal(responses.length, 1);
  const r = responses[0];
  assert.equal(r.name, 'example.com');
  assert.equal(r.transport, 'tcp');
  assert.deepEqual(addresses(r), ['93.184.216.34']);
  assert.equal(r.queryTsUs, undefined);
  assert.equal(counters.get('dns.response.unmatched'), 1);
  assert.equal(counters.get('dns.tcp.gap'), 0);
});

test('corpus ndpi-dns_fragmented: 21 responses incl. the IP-fragmented ones, over IPv4, IPv6, UDP and TCP', () => {
  const { queries, responses, counters } = replayDns('ndpi-dns_fragmented.pcap');
  // tshark -Y "dns.flags.response==1" -T fields -e dns.id -e dns.qry.name -e dns.qry.type -e dns.count.answers -e dns.flags.rcode
  const expected = [
    [0xd43f, 'weberlab.de', 48, 4, 0], [0xe9c4, 'pa.weberlab.de', 28, 2, 0], [0x0a32, 'fg2.weberlab.de', 1, 2, 0],
    [0xa17d, 'fg2.weberlab.de', 1, 2, 0], [0xa438, 'fg2.weberlab.de', 28, 0, 0], [0x15a8, 'weberlab.de', 48, 4, 0],
    [0x9e06, 'fg2.weberlab.de', 28, 0, 0], [0xb9c8, 'fg2-mgmt.weberlab.de', 28, 1, 0], [0xbda9, 'fg2-mgmt.weberlab.de', 28, 1, 0],
    [0xdd84, 'fg2-mgmt.weberlab.de', 28, 1, 0], [0xea02, 'fg2-mgmt.weberlab.de', 28, 1, 0], [0x91df, 'sigok.verteiltesysteme.net', 1, 1, 0],
    [0xfac7, 'sigfail.verteiltesysteme.net', 1, 0, 2], [0x06e4, 'formel1.de', 1, 1, 0], [0x8cec, 'erfpop.de', 28, 2, 0],
    [0xc2a0, 'weberlab.de', 48, 4, 0], [0x89ce, 'weberlab.de', 48, 4, 0], [0x3f7f, 'ns2.weberdns.de', 28, 1, 0],
    [0x80e4, 'weberlab.de', 48, 4, 0], [0xe8df, 'ns2.weberdns.de', 1, 1, 0], [0x06da, 'weberlab.de', 48, 4, 0],
  ];
  const got = responses.map((r) => [r.id, r.name, r.qtype, r.answers.length, r.rcode]);
  const key = (x: unknown[]): string => JSON.stringify(x);
  assert.deepEqual(got.map(key).sort(), expected.map(key).sort());
  const byId = new Map(responses.map((r) => [r.id, r]));
  // Frame 3 (IPv4, 2 fragments): weberlab.de DNSKEY, 4 answers (DNSKEY and RRSIG, kept raw), then OPT
  // (tshark -Y frame.number==3 -T fields -e dns.resp.type: 48,48,46,46,41).
  const dnskey = byId.get(0xd43f) as DnsResponse;
  assert.deepEqual([...dnskey.answers, ...dnskey.additional].map((a) => a.type), [48, 48, 46, 46, 41]);
  assert.deepEqual(dnskey.answers.map((a) => a.rdata.kind), ['raw', 'raw', 'raw', 'raw']);
  assert.equal(dnskey.message?.edns?.dnssecOk, true);
  // Frame 6 (IPv6, 2 fragments): pa.weberlab.de AAAA 2001:470:1f0b:1024::2.
  assert.deepEqual(addresses(byId.get(0xe9c4) as DnsResponse), ['2001:470:1f0b:1024::2']);
  // Frames 9 (IPv6) and 12 (IPv4), 2 fragments each: fg2.weberlab.de A 194.247.4.10.
  assert.deepEqual(addresses(byId.get(0x0a32) as DnsResponse), ['194.247.4.10']);
  assert.deepEqual(addresses(byId.get(0xa17d) as DnsResponse), ['194.247.4.10']);
  assert.equal(byId.get(0xfac7)?.rcodeName, 'SERVFAIL');
  assert.deepEqual(responses.filter((r) => r.transport === 'tcp').map((r) => r.id).sort(), [0x06da, 0x80e4]);
  assert.equal(counters.get('defrag.reassembled'), 7);
  // 22 queries (one retransmitted, frames 36-37); every response found its query.
  assert.equal(queries.length, 22);
  assert.equal(counters.get('dns.response.unmatched'), 0);
});

/**
 * Golden replays: real captures from other projects' test suites (test/fixtures/tcp/README.md has
 * their provenance) through the whole stream engine, against the ground truth in shared/corpus's
 * MANIFEST.md. First-received data wins on overlaps, as there.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fixture, replay } from '../helpers/replay.js';

describe('corpus replays', () => {
  test('ws-tcp-badsegments: swapped, overlapping, retransmitted and lost-but-acked segments give Wireshark\'s stream', () => {
    const r = replay(fixture('tcp', 'ws-tcp-badsegments.pcap'));
    assert.equal(r.flows.length, 1);
    const expected =
      'GET / HTTP/1.1\r\nHost:localhost\r\nX-Swapped: 1st\r\nX-Swapped: 2nd\r\nX-Overlap-Packet: extra data--\r\n' +
      'X-OoO-Overlap: this is delayed\r\nX-OoO-Overlap2: second delayed\r\nX-OoO-Overlap3:extend fragment\r\n' +
      '[32 missing]X-Missing-But-Acked-Previous:1\r\n[16 missing]:[13 missing]\r[1 missing]X-Missing-3-Out-Of-5-But-ACK:Y\r\n\r\n';
    assert.equal(r.flows[0].streams[0], expected);
    assert.doesNotMatch(r.flows[0].streams[0], /X-Overlap-IGNORE|X-BADOVERLAPHEAD/);
    assert.ok(r.counter('stream.tcp.overlap_mismatch') >= 1, 'overlaps with different bytes are an anomaly');
    assert.equal(r.counter('tcp.reassembly_gap_bytes'), 62);
  });

  test('sv-eve-payload-01: two segments with the same sequence number keep the first (GOOD, not EVIL)', () => {
    const r = replay(fixture('tcp', 'sv-eve-payload-01-tcp-overlap.pcap'));
    assert.equal(r.flows[0].streams[0], 'GOOD');
    assert.deepEqual(r.flows[0].info.vlan, [6]);
    assert.equal(r.counter('stream.tcp.overlap_mismatch'), 1);
  });

  test('sv-eve-payload-05: a 4-byte hole is reported as a gap between VERY and DATA', () => {
    const r = replay(fixture('tcp', 'sv-eve-payload-05-tcp-simple-gap2.pcap'));
    assert.equal(r.flows[0].streams[0], 'VERY[4 missing]DATA');
    assert.equal(r.records[0].gaps[0], 1);
  });

  test('ws-http-ooo: five requests with out-of-order segments come out in order', () => {
    const r = replay(fixture('tcp', 'ws-http-ooo.pcap'));
    const s = r.flows[0].streams[0];
    const order = ['PUT /1 ', 'GET /2 ', 'PUT /3 ', 'PUT /4 ', 'PUT /5 '].map((x) => s.indexOf(x));
    assert.ok(order.every((i) => i >= 0), `all five requests present: ${order}`);
    assert.deepEqual([...order].sort((a, b) => a - b), order);
    assert.match(s, /\r\n\r\n1\n2\n/);
    assert.match(s, /after\n/);
    assert.match(s, /four\n/);
    assert.match(s, /X-Info: based on https:\/\/bugs\.wireshark\.org\/bugzilla\/attachment\.cgi\?id=14236/);
    assert.doesNotMatch(s, /missing\]/);
  });

  test('ws-dns-ooo: a one-sided capture starting at the SYN-ACK, first byte arriving last', () => {
    const r = replay(fixture('tcp', 'ws-dns-ooo.pcap'));
    assert.equal(r.flows.length, 1);
    const resp = Buffer.from(r.flows[0].streams[1], 'latin1');
    assert.equal(resp.readUInt16BE(0), resp.length - 2, 'DNS over TCP length prefix covers the message');
    assert.ok(resp.includes(Buffer.from('\x07example\x03com', 'latin1')));
    assert.ok(resp.includes(Buffer.from([93, 184, 216, 34])), 'A 93.184.216.34');
    assert.equal(r.records[0].gaps[1], 0);
  });

  test('sv-bug-3286-02: injected RST and FIN before the SYN-ACK do not end the flow', () => {
    const r = replay(fixture('tcp', 'sv-bug-3286-02-with_evasion_linux.pcap'));
    const f = r.flows.find((x) => x.streams[0].includes('GET /'));
    assert.ok(f, 'the HTTP request was reassembled');
    assert.match(f.streams[0], /Host: 192\.168\.1\.90/);
    assert.match(f.streams[1], /^HTTP\/1\.1 200/);
    assert.match(f.streams[1], /THIS_IS_A_TEST$/);
  });

  test('zeek-tcp-missing-syn: the client is inferred from the SYN-ACK; Zeek\'s byte counts', () => {
    const r = replay(fixture('tcp', 'zeek-tcp-missing-syn.pcap'));
    const rec = r.records[0];
    assert.equal(rec.srcIp, '141.42.64.125');
    assert.equal(rec.srcPort, 56730);
    assert.equal(rec.dataBytes[0], 98);
    assert.equal(rec.dataBytes[1], 9417);
    assert.match(r.flows[0].streams[0], /^GET \/ HTTP\/1\.0\r\n/);
    assert.match(r.flows[0].streams[1], /<TITLE>ICIR<\/TITLE>/);
  });

  test('zeek-http-qinq-0: double 802.1Q tags are decoded and kept as the flow\'s VLANs', () => {
    const r = replay(fixture('tcp', 'zeek-http-qinq-0.pcap'));
    const f = r.flows[0];
    assert.deepEqual(f.info.vlan, [0, 0]);
    assert.equal(f.info.srcIp, '141.142.228.5');
    assert.match(f.streams[0], /^GET \/download\/CHANGES\.bro-aux\.txt/);
    assert.match(f.streams[1], /\n0\.26 \| 2012-08-24 15:10:04 -0700\n\n {2}\* Fixing update-changes/);
  });

  test('arkime-v6-http: HTTP over IPv6 with RFC 5952 addresses', () => {
    const r = replay(fixture('tcp', 'arkime-v6-http.pcap'));
    const f = r.flows.find((x) => x.info.dstPort === 80);
    assert.ok(f);
    assert.equal(f.info.srcIp, '2001:6f8:102d:0:2d0:9ff:fee3:e8de');
    assert.equal(f.info.dstIp, '2001:6f8:900:7c0::2');
    assert.match(f.streams[0], /Host: cl-1985\.ham-01\.de\.sixxs\.net/);
    assert.match(f.streams[1], /<title>Index of \/<\/title>/);
  });

  test('ndpi-dns_fragmented: IPv4 and IPv6 fragmented DNS responses are reassembled', () => {
    const r = replay(fixture('tcp', 'ndpi-dns_fragmented.pcap'));
    // 21 DNS responses: 19 over UDP (7 of them fragmented) and 2 over TCP (frames 50 and 62).
    const responses = r.datagrams.filter((d) => d.dir === 1 && d.info.dstPort === 53);
    assert.equal(responses.length, 19);
    const tcp = r.flows.filter((f) => f.info.dstPort === 53 && f.streams[1].includes('\x08weberlab\x02de'));
    assert.equal(tcp.length, 2);
    assert.equal(r.counter('defrag.reassembled'), 7, '14 fragment frames make 7 datagrams');
    const v6 = responses.filter((d) => d.info.srcIp.includes(':'));
    assert.ok(v6.some((d) => d.payload.includes(Buffer.from('\x02pa\x08weberlab\x02de', 'latin1'))));
    // AAAA 2001:470:1f0b:1024::2 in the reassembled pa.weberlab.de answer
    assert.ok(v6.some((d) => d.payload.includes(Buffer.from('20010470 1f0b1024 00000000 00000002'.replace(/ /g, ''), 'hex'))));
    assert.equal(r.pipeline.decoder.defrag.inProgress, 0);
  });
});

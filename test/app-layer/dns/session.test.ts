import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counters } from '../../../sensor/events/counters.js';
import { BYPASS, type Direction, type FlowInfo } from '../../../sensor/flow/stream.js';
import {
  DNS_QUERY_TIMEOUT_US, DnsDatagramHandler, DnsTcpSession, DnsTransactions, MAX_DNS_TCP_MALFORMED_RUN, MAX_PENDING_DNS_QUERIES,
  dnsServiceForPorts, type DnsQuery, type DnsResponse, type DnsSink,
} from '../../../sensor/app-layer/dns/session.js';
import { PARTIAL_BUFFER_MIN_BYTES } from '../../../sensor/app-layer/partial-buffer.js';
import { memoryInUse } from '../../../sensor/events/memuse.js';
import { header, ipv4, message, name, ptr, question, rr, tcpFrame } from './dns-bytes.js';

const UDP_FLOW: FlowInfo = { flowId: 7, proto: 17, srcIp: '10.0.0.5', srcPort: 40000, dstIp: '10.0.0.1', dstPort: 53, vlan: [], startUs: 0 };
const TCP_FLOW: FlowInfo = { ...UDP_FLOW, flowId: 8, proto: 6 };

class Recorder implements DnsSink {
  readonly records: (DnsQuery | DnsResponse)[] = [];
  query(q: DnsQuery): void {
    this.records.push(q);
  }
  response(r: DnsResponse): void {
    this.records.push(r);
  }
  /** A plain summary, comparable across runs. */
  summary(): unknown[] {
    return this.records.map((r) => r.kind === 'query'
      ? ['Q', r.dir, r.id, r.name, r.qtype, r.malformed ?? '', r.tsUs]
      : ['R', r.dir, r.id, r.name, r.rcodeName, r.answers.map((a) => (a.rdata.kind === 'a' ? a.rdata.address : a.rdata.kind)), r.queryTsUs ?? -1, r.malformed ?? '', r.tsUs]);
  }
}

function setup(): { rec: Recorder; counters: Counters; udp: DnsDatagramHandler } {
  const rec = new Recorder();
  const counters = new Counters();
  return { rec, counters, udp: new DnsDatagramHandler(rec, counters) };
}

const query = (id: number, qname: string, type = 1): Buffer => message({ id }, { qd: [question(qname, type)] });
const answer = (id: number, qname: string, addr: string, rcodeFlags = 0x8180): Buffer =>
  message({ id, flags: rcodeFlags }, { qd: [question(qname, 1)], an: [rr(ptr(12), 1, ipv4(addr))] });

test('DnsDatagramHandler pairs a response with its query by flow, id and name', () => {
  const { rec, counters, udp } = setup();
  assert.equal(udp.datagram(UDP_FLOW, 0, query(0x1111, 'www.Example.com'), 1000), true);
  udp.datagram(UDP_FLOW, 1, answer(0x1111, 'www.example.com', '93.184.216.34'), 1500);
  assert.deepEqual(rec.summary(), [
    ['Q', 0, 0x1111, 'www.Example.com', 1, '', 1000],
    ['R', 1, 0x1111, 'www.example.com', 'NOERROR', ['93.184.216.34'], 1000, '', 1500],
  ]);
  const q = rec.records[0] as DnsQuery;
  assert.equal(q.lname, 'www.example.com');
  assert.equal(q.transport, 'udp');
  assert.equal(q.service, 'dns');
  assert.equal(q.flow, UDP_FLOW);
  assert.equal(counters.get('dns.queries'), 1);
  assert.equal(counters.get('dns.responses'), 1);
  assert.equal(counters.get('dns.response.unmatched'), 0);
  assert.equal(udp.transactions.pendingCount, 0);
});

test('DnsDatagramHandler does not pair a response with a different id, name or flow', () => {
  const { rec, counters, udp } = setup();
  udp.datagram(UDP_FLOW, 0, query(1, 'a.example'), 10);
  udp.datagram(UDP_FLOW, 1, answer(2, 'a.example', '192.0.2.1'), 20);
  udp.datagram(UDP_FLOW, 1, answer(1, 'b.example', '192.0.2.1'), 30);
  udp.datagram({ ...UDP_FLOW, flowId: 99 }, 1, answer(1, 'a.example', '192.0.2.1'), 40);
  assert.deepEqual(rec.records.filter((r) => r.kind === 'response').map((r) => (r as DnsResponse).queryTsUs), [undefined, undefined, undefined]);
  assert.equal(counters.get('dns.response.unmatched'), 3);
  udp.datagram(UDP_FLOW, 1, answer(1, 'A.EXAMPLE', '192.0.2.1'), 50);
  assert.equal((rec.records.at(-1) as DnsResponse).queryTsUs, 10);
});

test('DnsDatagramHandler ignores datagrams on other ports and tells the caller', () => {
  const { rec, counters, udp } = setup();
  assert.equal(udp.datagram({ ...UDP_FLOW, dstPort: 123 }, 0, query(1, 'a.example'), 1), false);
  assert.deepEqual(rec.records, []);
  assert.equal(counters.get('dns.queries'), 0);
});

test('dnsServiceForPorts tells DNS, mDNS and LLMNR apart, plain DNS first', () => {
  assert.equal(dnsServiceForPorts(5353, 53), 'dns');
  assert.equal(dnsServiceForPorts(5353, 5353), 'mdns');
  assert.equal(dnsServiceForPorts(50000, 5355), 'llmnr');
  assert.equal(dnsServiceForPorts(50000, 443), undefined);
});

test('DnsDatagramHandler parses mDNS and LLMNR with the same code and names the service', () => {
  const { rec, counters, udp } = setup();
  const mdnsFlow: FlowInfo = { ...UDP_FLOW, srcPort: 5353, dstPort: 5353, dstIp: '224.0.0.251' };
  // An unsolicited mDNS announcement: no question, an A record with the cache-flush bit.
  const announce = message({ id: 0, flags: 0x8400 }, { an: [rr('printer.local', 1, ipv4('10.0.0.9'), { klass: 0x8001, ttl: 120 })] });
  udp.datagram(mdnsFlow, 0, announce, 5);
  udp.datagram({ ...UDP_FLOW, dstPort: 5355 }, 0, query(9, 'fileserver'), 6);
  const r = rec.records[0] as DnsResponse;
  assert.equal(r.kind, 'response');
  assert.equal(r.service, 'mdns');
  assert.equal(r.name, 'printer.local');
  assert.equal(r.qtype, undefined);
  assert.equal(r.answers[0].class, 0x8001);
  assert.equal(rec.records[1].service, 'llmnr');
  assert.equal(counters.get('dns.mdns_messages'), 1);
  assert.equal(counters.get('dns.response.unmatched'), 0);
  assert.equal(counters.get('dns.llmnr_messages'), 1);
});

test('DnsResponse lists PTR answers as address -> host name for the identity table', () => {
  const { rec, udp } = setup();
  const reverse = '9.0.0.10.in-addr.arpa';
  const msg = message({ id: 5, flags: 0x8180 }, {
    qd: [question(reverse, 12)],
    an: [rr(ptr(12), 12, name('Laptop-7.school.lan')), rr('_http._tcp.local', 12, name('x._http._tcp.local'))],
  });
  udp.datagram(UDP_FLOW, 1, msg, 1);
  assert.deepEqual((rec.records[0] as DnsResponse).ptrs, [{ address: '10.0.0.9', hostname: 'Laptop-7.school.lan' }]);
});

test('DnsDatagramHandler counts a malformed message by code and emits nothing without a question', () => {
  const { rec, counters, udp } = setup();
  udp.datagram(UDP_FLOW, 0, Buffer.from([1, 2, 3]), 1);
  udp.datagram(UDP_FLOW, 0, Buffer.concat([header({ qd: 1 }), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]), 2);
  assert.deepEqual(rec.records, []);
  assert.equal(counters.get('dns.malformed'), 2);
  assert.equal(counters.get('dns.malformed.header_truncated'), 1);
  assert.equal(counters.get('dns.malformed.pointer_loop'), 1);
});

test('DnsDatagramHandler still emits a query whose later sections are malformed, with its question and code', () => {
  const { rec, counters, udp } = setup();
  const bytes = message({ id: 3 }, { qd: [question('evil.example', 1)], ar: [rr('.', 41, Buffer.alloc(0))] });
  udp.datagram(UDP_FLOW, 0, bytes.subarray(0, bytes.length - 3), 1);
  const q = rec.records[0] as DnsQuery;
  assert.equal(q.lname, 'evil.example');
  assert.equal(q.malformed, 'dns.malformed.record_truncated');
  assert.equal(q.message, undefined);
  assert.equal(counters.get('dns.malformed.record_truncated'), 1);
});

test('DnsDatagramHandler counts non-fatal anomalies and kept-short raw rdata', () => {
  const { counters, udp } = setup();
  const msg = message({ id: 4, flags: 0x8180 }, { qd: [question('a.example', 1)], an: [rr(ptr(12), 1, Buffer.from([1, 2])), rr(ptr(12), 48, Buffer.alloc(600))] });
  udp.datagram(UDP_FLOW, 1, msg, 1);
  assert.equal(counters.get('dns.malformed.rdata_length'), 1);
  assert.equal(counters.get('dns.rdata_raw_truncated'), 1);
  assert.equal(counters.get('dns.malformed'), 0);
});

test(`DnsTransactions forgets queries unanswered for DNS_QUERY_TIMEOUT_US (${DNS_QUERY_TIMEOUT_US} us)`, () => {
  const { rec, counters, udp } = setup();
  udp.datagram(UDP_FLOW, 0, query(1, 'old.example'), 0);
  udp.datagram(UDP_FLOW, 0, query(2, 'new.example'), DNS_QUERY_TIMEOUT_US + 1);
  assert.equal(counters.get('dns.query.unanswered'), 1);
  udp.datagram(UDP_FLOW, 1, answer(1, 'old.example', '192.0.2.1'), DNS_QUERY_TIMEOUT_US + 2);
  udp.datagram(UDP_FLOW, 1, answer(2, 'new.example', '192.0.2.2'), DNS_QUERY_TIMEOUT_US + 3);
  assert.deepEqual(rec.records.filter((r) => r.kind === 'response').map((r) => (r as DnsResponse).queryTsUs), [undefined, DNS_QUERY_TIMEOUT_US + 1]);
});

test(`DnsTransactions keeps at most MAX_PENDING_DNS_QUERIES (${MAX_PENDING_DNS_QUERIES}), dropping the oldest`, () => {
  const counters = new Counters();
  const t = new DnsTransactions({ query() {}, response() {} }, counters);
  const q = query(1, 'x.example');
  for (let i = 0; i <= MAX_PENDING_DNS_QUERIES; i++) t.message({ ...UDP_FLOW, flowId: i }, 0, 'udp', 'dns', q, i);
  assert.equal(t.pendingCount, MAX_PENDING_DNS_QUERIES);
  assert.equal(counters.get('dns.pending_overflow'), 1);
});

test('DnsDatagramHandler.finish counts the queries still waiting as unanswered', () => {
  const { counters, udp } = setup();
  udp.datagram(UDP_FLOW, 0, query(1, 'a.example'), 1);
  udp.datagram(UDP_FLOW, 0, query(2, 'b.example'), 2);
  udp.datagram(UDP_FLOW, 1, answer(2, 'b.example', '192.0.2.1'), 3);
  udp.finish();
  assert.equal(counters.get('dns.query.unanswered'), 1);
  assert.equal(udp.transactions.pendingCount, 0);
});

test('DnsTransactions keeps the first time of a retransmitted query', () => {
  const { rec, udp } = setup();
  udp.datagram(UDP_FLOW, 0, query(1, 'a.example'), 100);
  udp.datagram(UDP_FLOW, 0, query(1, 'a.example'), 200);
  udp.datagram(UDP_FLOW, 1, answer(1, 'a.example', '192.0.2.1'), 300);
  assert.equal((rec.records[2] as DnsResponse).queryTsUs, 100);
});

// ---------------------------------------------------------------------------------------------
// TCP

type Step = [Direction, Uint8Array, number] | ['gap', Direction, number];

function runTcp(steps: Step[], end = true): { rec: Recorder; counters: Counters; session: DnsTcpSession } {
  const rec = new Recorder();
  const counters = new Counters();
  const session = new DnsTcpSession(TCP_FLOW, new DnsTransactions(rec, counters));
  const scratch = new Uint8Array(70000);
  for (const s of steps) {
    if (s[0] === 'gap') session.gap(s[1], s[2], 0);
    else {
      // As the flow stage does: a view into a reused buffer, overwritten after the call.
      scratch.set(s[1]);
      session.data(s[0], scratch.subarray(0, s[1].length), s[2]);
      scratch.fill(0xee, 0, s[1].length);
    }
  }
  if (end) session.end('fin', 0);
  return { rec, counters, session };
}

const CLIENT = Buffer.concat([tcpFrame(query(0x5e63, 'google.com')), tcpFrame(query(0x5e64, 'aol.com', 28)), tcpFrame(query(0x5e65, 'example.org', 65))]);
const SERVER = Buffer.concat([tcpFrame(answer(0x5e63, 'google.com', '74.125.228.46')), tcpFrame(answer(0x5e64, 'aol.com', '205.188.100.58', 0x8183))]);

test('DnsTcpSession decodes several length-prefixed messages per direction and pairs them', () => {
  const { rec, counters } = runTcp([[0, CLIENT, 1], [1, SERVER, 2]]);
  assert.deepEqual(rec.summary(), [
    ['Q', 0, 0x5e63, 'google.com', 1, '', 1],
    ['Q', 0, 0x5e64, 'aol.com', 28, '', 1],
    ['Q', 0, 0x5e65, 'example.org', 65, '', 1],
    ['R', 1, 0x5e63, 'google.com', 'NOERROR', ['74.125.228.46'], 1, '', 2],
    ['R', 1, 0x5e64, 'aol.com', 'NXDOMAIN', ['205.188.100.58'], 1, '', 2],
  ]);
  assert.equal(rec.records[0].transport, 'tcp');
  assert.equal(counters.get('dns.tcp.messages'), 5);
  assert.equal(counters.get('dns.tcp.message_incomplete'), 0);
});

test('DnsTcpSession gives the same records for a stream cut at every offset, and byte by byte', () => {
  const whole = runTcp([[0, CLIENT, 1], [1, SERVER, 1]]).rec.summary();
  for (const [dir, bytes] of [[0, CLIENT], [1, SERVER]] as const) {
    const other: Step = dir === 0 ? [1, SERVER, 1] : [0, CLIENT, 1];
    for (let cut = 1; cut < bytes.length; cut++) {
      const steps: Step[] = [[dir, bytes.subarray(0, cut), 1], [dir, bytes.subarray(cut), 1]];
      const got = runTcp(dir === 0 ? [...steps, other] : [other, ...steps]).rec.summary();
      assert.deepEqual(got, whole, `dir ${dir} cut at ${cut}`);
    }
    const single: Step[] = [...bytes].map((b) => [dir, Uint8Array.of(b), 1] as Step);
    assert.deepEqual(runTcp(dir === 0 ? [...single, other] : [other, ...single]).rec.summary(), whole, `dir ${dir} byte by byte`);
  }
});

test('DnsTcpSession stamps a split message with the time of its first byte', () => {
  const first = tcpFrame(query(1, 'a.example'));
  const { rec } = runTcp([[0, first.subarray(0, 5), 100], [0, first.subarray(5), 200]]);
  assert.equal(rec.records[0].tsUs, 100);
});

test('DnsTcpSession stops a direction after a gap and counts it; the other direction goes on', () => {
  const f1 = tcpFrame(query(1, 'a.example'));
  const f2 = tcpFrame(query(2, 'b.example'));
  const { rec, counters, session } = runTcp([
    [0, f1, 1], [0, f2.subarray(0, 4), 2], ['gap', 0, 10], [0, tcpFrame(query(3, 'c.example')), 3],
    [1, tcpFrame(answer(1, 'a.example', '192.0.2.1')), 4],
  ]);
  assert.deepEqual(rec.summary().map((r) => (r as unknown[]).slice(0, 4)), [['Q', 0, 1, 'a.example'], ['R', 1, 1, 'a.example']]);
  assert.equal(counters.get('dns.tcp.gap'), 1);
  assert.equal(counters.get('dns.tcp.message_incomplete'), 1);
  assert.equal(session.stopped(0), true);
});

test(`DnsTcpSession gives up on a direction after MAX_DNS_TCP_MALFORMED_RUN (${MAX_DNS_TCP_MALFORMED_RUN}) undecodable messages`, () => {
  const junk = tcpFrame(Buffer.from('not a dns message at all'));
  const steps: Step[] = [];
  for (let i = 0; i < MAX_DNS_TCP_MALFORMED_RUN; i++) steps.push([0, junk, i]);
  steps.push([0, tcpFrame(query(1, 'late.example')), 9]);
  const { rec, counters, session } = runTcp(steps, false);
  assert.deepEqual(rec.records, []);
  assert.equal(counters.get('dns.tcp.parser_disabled'), 1);
  assert.equal(counters.get('dns.malformed'), MAX_DNS_TCP_MALFORMED_RUN);
  assert.equal(session.stopped(0), true);
  // Fewer in a row, then a good one: the count starts again.
  const ok = runTcp([[0, junk, 1], [0, junk, 2], [0, tcpFrame(query(1, 'x.example')), 3], [0, junk, 4], [0, junk, 5], [0, tcpFrame(query(2, 'y.example')), 6]]);
  assert.equal(ok.rec.records.length, 2);
  assert.equal(ok.counters.get('dns.tcp.parser_disabled'), 0);
});

test('DnsTcpSession counts a zero-length frame as a truncated header and goes on', () => {
  const { rec, counters } = runTcp([[0, Buffer.concat([Buffer.from([0, 0]), tcpFrame(query(1, 'a.example'))]), 1]]);
  assert.equal(counters.get('dns.malformed.header_truncated'), 1);
  assert.equal(rec.records.length, 1);
});

test('DnsTcpSession counts a message cut by the end of the flow', () => {
  const f = tcpFrame(query(1, 'a.example'));
  const { rec, counters } = runTcp([[0, f.subarray(0, f.length - 1), 1]]);
  assert.deepEqual(rec.records, []);
  assert.equal(counters.get('dns.tcp.message_incomplete'), 1);
});

test('DnsTcpSession holds buffer in proportion to the message bytes received, not to the length prefix', () => {
  // Many flows' worth of a 65,535-byte length and a 12-byte header each way: that used to hold 128 KiB a flow.
  const q = Buffer.concat([Buffer.from([0xff, 0xff]), header({ id: 0x1234, qd: 0 })]);
  const r = Buffer.concat([Buffer.from([0xff, 0xff]), header({ id: 0x1234, flags: 0x8000, qd: 0 })]);
  const flows = 500;
  let held = 0;
  for (let i = 0; i < flows; i++) held += runTcp([[0, q, 1], [1, r, 2]], false).session.heldBytes();
  assert.ok(held <= flows * 2 * PARTIAL_BUFFER_MIN_BYTES, `${held} bytes held for ${flows} flows of ${q.length + r.length} stream bytes`);
  // As the message arrives, the buffer stays within twice what came (or the minimum).
  const { session } = runTcp([[0, q, 1]], false);
  let received = q.length - 2;
  for (const piece of [100, 1000, 5000, 20_000]) {
    session.data(0, new Uint8Array(piece), 2);
    received += piece;
    assert.ok(session.heldBytes() <= Math.max(PARTIAL_BUFFER_MIN_BYTES, 2 * received), `${session.heldBytes()} held after ${received} received`);
  }
});

test('DnsTcpSession gives the same records for a 60 KB response whole or cut every few bytes', () => {
  const txt = Buffer.concat([Buffer.from([255]), Buffer.alloc(255, 0x61)]);
  const big = message({ id: 9, flags: 0x8180 }, { qd: [question('big.example', 16)], an: Array.from({ length: 230 }, () => rr(ptr(12), 16, txt)) });
  assert.ok(big.length > 60_000);
  const stream = Buffer.concat([tcpFrame(big), tcpFrame(answer(10, 'after.example', '192.0.2.10'))]);
  const whole = runTcp([[0, tcpFrame(query(9, 'big.example', 16)), 1], [1, stream, 2]]);
  assert.deepEqual(whole.rec.summary().map((x) => (x as unknown[]).slice(0, 4)), [['Q', 0, 9, 'big.example'], ['R', 1, 9, 'big.example'], ['R', 1, 10, 'after.example']]);
  assert.equal((whole.rec.records[1] as DnsResponse).answers.length, 230);
  for (const every of [1, 3, 1448]) {
    const steps: Step[] = [[0, tcpFrame(query(9, 'big.example', 16)), 1]];
    for (let at = 0; at < stream.length; at += every) steps.push([1, stream.subarray(at, at + every), 2]);
    const cut = runTcp(steps, false);
    assert.deepEqual(cut.rec.summary(), whole.rec.summary(), `cut every ${every}`);
    assert.deepEqual((cut.rec.records[1] as DnsResponse).answers, (whole.rec.records[1] as DnsResponse).answers, `cut every ${every}`);
    assert.equal(cut.session.heldBytes(), 0, `cut every ${every}: nothing held after the last message`);
  }
});

test('DnsTcpSession asks for bypass once both directions have stopped, not before', () => {
  const { session } = runTcp([], false);
  assert.equal(session.data(0, tcpFrame(query(1, 'a.example')), 1), undefined);
  assert.equal(session.gap(0, 10, 2), undefined, 'the responses can still be read');
  assert.equal(session.data(1, tcpFrame(answer(1, 'a.example', '192.0.2.1')), 3), undefined);
  const junk = tcpFrame(Buffer.from('not a dns message at all'));
  for (let i = 1; i < MAX_DNS_TCP_MALFORMED_RUN; i++) assert.equal(session.data(1, junk, 4), undefined);
  assert.equal(session.data(1, junk, 5), BYPASS);
  assert.equal(session.data(0, tcpFrame(query(2, 'b.example')), 6), BYPASS);
  assert.equal(session.gap(1, 10, 7), BYPASS);
});

test('DnsTcpSession charges a message parked half-way to app_layer.memuse, and gives it back at the end or a gap', () => {
  // each direction: a prefix announcing 40,000 bytes and the first part of the message
  const parked = (n: number): Buffer => Buffer.concat([Buffer.from([0x9c, 0x40]), Buffer.alloc(n, 1)]);
  for (const close of ['end', 'gap'] as const) {
    const { counters, session } = runTcp([[0, parked(20_000), 1], [1, parked(10), 2]], false);
    assert.ok(session.heldBytes() >= 20_000);
    assert.equal(memoryInUse(counters), session.heldBytes(), `${close}: parked, the gauge shows what is held`);
    if (close === 'end') session.end('timeout', 3);
    else {
      session.gap(0, 100, 3);
      session.gap(1, 100, 3);
    }
    assert.equal(session.heldBytes(), 0);
    assert.equal(memoryInUse(counters), 0, `${close}: all of it given back`);
  }
  // a message completed gives its buffer back too
  const { counters } = runTcp([[0, CLIENT.subarray(0, 7), 1], [0, CLIENT.subarray(7), 2]], false);
  assert.equal(memoryInUse(counters), 0);
});

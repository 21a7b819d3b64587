import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counters } from '../../../sensor/events/counters.js';
import type { FlowInfo } from '../../../sensor/flow/stream.js';
import {
  DnsTcpSession, DnsTcpSessionFactory, createDnsTcpSession, dnsAppLayer, probeDnsTcp, type DnsQuery, type DnsResponse, type DnsSink,
} from '../../../sensor/app-layer/dns/index.js';
import { header, ipv4, message, name, ptr, question, rr, tcpFrame } from './dns-bytes.js';

const FLOW: FlowInfo = { flowId: 1, proto: 6, srcIp: '10.0.0.5', srcPort: 40000, dstIp: '10.0.0.1', dstPort: 53, vlan: [], startUs: 0 };
const QUERY = tcpFrame(message({ id: 0x5e63 }, { qd: [question('google.com', 1)] }));
const RESPONSE = tcpFrame(message({ id: 0x5e63, flags: 0x8180 }, { qd: [question('google.com', 1)], an: [rr(ptr(12), 1, ipv4('74.125.228.46'))] }));

test('probeDnsTcp matches a whole query from the originator and a whole response from the responder', () => {
  assert.equal(probeDnsTcp(0, QUERY), 'match');
  assert.equal(probeDnsTcp(1, RESPONSE), 'match');
});

test('probeDnsTcp refuses the wrong QR bit for the direction', () => {
  assert.equal(probeDnsTcp(1, QUERY), 'no-match');
  assert.equal(probeDnsTcp(0, RESPONSE), 'no-match');
});

test('probeDnsTcp waits for the length, the header and the first question name', () => {
  assert.equal(probeDnsTcp(0, QUERY.subarray(0, 1)), 'need-more');
  assert.equal(probeDnsTcp(0, QUERY.subarray(0, 10)), 'need-more');
  assert.equal(probeDnsTcp(0, QUERY.subarray(0, 2 + 12 + 4)), 'need-more'); // inside "google"
  assert.equal(probeDnsTcp(0, QUERY.subarray(0, 2 + 12 + 12)), 'match'); // name complete, type/class not yet
});

test('probeDnsTcp refuses other protocols and implausible headers', () => {
  assert.equal(probeDnsTcp(0, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), 'no-match');
  assert.equal(probeDnsTcp(0, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0, 0, 0, 0, 0])), 'no-match');
  assert.equal(probeDnsTcp(0, Buffer.from('SSH-2.0-OpenSSH_9.6\r\n')), 'no-match');
  assert.equal(probeDnsTcp(0, Buffer.from([0, 5, 1, 2, 3, 4, 5])), 'no-match'); // shorter than a header
  // Opcode 3 (unassigned) and a QUERY with two questions.
  assert.equal(probeDnsTcp(0, tcpFrame(message({ flags: 0x1800 }, { qd: [question('a.example', 1)] }))), 'no-match');
  assert.equal(probeDnsTcp(0, tcpFrame(message({}, { qd: [question('a.example', 1), question('b.example', 1)] }))), 'no-match');
  // Counts that cannot fit the length.
  assert.equal(probeDnsTcp(0, tcpFrame(Buffer.concat([header({ qd: 1, an: 40 }), name('a.example'), Buffer.alloc(4)]))), 'no-match');
  // A malformed first name in a partial message.
  assert.equal(probeDnsTcp(0, Buffer.concat([Buffer.from([1, 0]), header({ qd: 1 }), Buffer.from([0x41, 0x61])])), 'no-match');
});

class Sink implements DnsSink {
  readonly got: string[] = [];
  query(q: DnsQuery): void {
    this.got.push(`Q ${q.flow.flowId} ${q.name}`);
  }
  response(r: DnsResponse): void {
    this.got.push(`R ${r.flow.flowId} ${r.name} ${r.queryTsUs}`);
  }
}

test('DnsTcpSessionFactory opens one DnsTcpSession per flow sharing one DnsTransactions', () => {
  const sink = new Sink();
  const factory = new DnsTcpSessionFactory(sink, new Counters());
  const a = factory.open(FLOW);
  const b = factory.open({ ...FLOW, flowId: 2 });
  assert.ok(a instanceof DnsTcpSession);
  assert.notEqual(a, b);
  a.data(0, QUERY, 5);
  b.data(1, RESPONSE, 6); // another flow: not paired
  a.data(1, RESPONSE, 7);
  assert.deepEqual(sink.got, ['Q 1 google.com', 'R 2 google.com undefined', 'R 1 google.com 5']);
  assert.equal(factory.transactions.pendingCount, 0);
});

test('dnsAppLayer is the descriptor a dispatcher registers: name, probe, create', () => {
  assert.equal(dnsAppLayer.name, 'dns');
  assert.equal(dnsAppLayer.probe, probeDnsTcp);
  assert.equal(dnsAppLayer.create, createDnsTcpSession);
  const sink = new Sink();
  const s = dnsAppLayer.create(FLOW, sink, new Counters());
  s.data(0, QUERY, 1);
  assert.deepEqual(sink.got, ['Q 1 google.com']);
});

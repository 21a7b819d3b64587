import assert from 'node:assert/strict';
import { test } from 'node:test';
import { counterName } from '../../../sensor/events/counters.js';
import { decodeFirstLevel, encodeFirstLevel, isNbnsError, parseNbns, type NbnsPacket } from '../../../sensor/app-layer/netbios/parser.js';
import { netbiosObservations } from '../../../sensor/app-layer/netbios/index.js';
import { fixture, replay } from '../../helpers/replay.js';

function ok(b: Uint8Array): NbnsPacket {
  const r = parseNbns(b);
  if (isNbnsError(r)) assert.fail(`unexpected anomaly ${counterName(r.anomaly)}`);
  return r;
}
const name = (n: string, suffix: number): Buffer => Buffer.concat([Buffer.from([32]), Buffer.from(encodeFirstLevel(n, suffix), 'latin1'), Buffer.from([0])]);
const header = (flags: number, qd: number, an: number, ar: number): Buffer => Buffer.from([0x12, 0x34, flags >> 8, flags & 255, 0, qd, 0, an, 0, 0, 0, ar]);

test('decodeFirstLevel undoes RFC 1001 §14.1\'s example: "FRED" is EGFCEFEECACACACACACACACACACACACA', () => {
  assert.deepEqual(decodeFirstLevel(Buffer.from('EGFCEFEECACACACACACACACACACACACA', 'latin1'), 0), { name: 'FRED', suffix: 0x20 });
  assert.equal(encodeFirstLevel('FRED', 0x20), 'EGFCEFEECACACACACACACACACACACACA');
  assert.equal(decodeFirstLevel(Buffer.from('EGFCEFEECACACACACACACACACACACACZ', 'latin1'), 0), undefined, 'Z is not A-P');
});

test('parseNbns reads netbios-ns.pcap: registration, query, answer and node status as tshark shows them', () => {
  const d = replay(fixture('identity', 'netbios-ns.pcap')).datagrams.map((x) => ok(x.payload));
  assert.equal(d[0].opcode, 5);
  assert.equal(d[0].response, false);
  assert.equal(d[0].broadcast, true);
  assert.deepEqual(d[0].questions, [{ name: { name: 'LAPTOP-7F3', suffix: 0 }, type: 0x20 }]);
  assert.deepEqual(d[0].records, [{
    section: 'additional', name: { name: 'LAPTOP-7F3', suffix: 0 }, type: 0x20, ttlSeconds: 300000,
    addresses: [{ group: false, nodeType: 0, address: '192.168.1.23' }],
  }]);
  assert.equal(d[1].records[0].addresses[0].group, true);
  assert.deepEqual(d[2].records, []);
  assert.equal(d[3].response, true);
  assert.equal(d[3].records[0].name.name, 'PRINTER01');
  assert.equal(d[3].records[0].name.suffix, 0x20);
  assert.deepEqual(d[5].records[0].nodeStatus, {
    names: [{ name: 'DESKTOP-9Q2', suffix: 0, group: false }, { name: 'SCHOOL', suffix: 0, group: true }, { name: 'DESKTOP-9Q2', suffix: 0x20, group: false }],
    unitId: '00:1c:42:aa:bb:cc',
  });
});

test('parseNbns keeps a scope id and follows a compression pointer', () => {
  const scoped = Buffer.concat([Buffer.from([32]), Buffer.from(encodeFirstLevel('PC1', 0), 'latin1'), Buffer.from('\x06school\x03lan\x00', 'latin1')]);
  const m = ok(Buffer.concat([header(0x2910, 1, 0, 1), scoped, Buffer.from([0, 0x20, 0, 1]),
    Buffer.from([0xc0, 12, 0, 0x20, 0, 1, 0, 0, 0, 60, 0, 6, 0x60, 0, 10, 0, 0, 9])]));
  assert.deepEqual(m.questions[0].name, { name: 'PC1', suffix: 0, scope: 'school.lan' });
  assert.deepEqual(m.records[0].addresses, [{ group: false, nodeType: 3, address: '10.0.0.9' }]);
  assert.deepEqual(netbiosObservations(m, '10.0.0.9', 0), [{ ip: '10.0.0.9', hostname: 'PC1', source: 'netbios', tsUs: 0, expiresUs: 60_000_000 }]);
});

test('parseNbns refuses a short packet and a bad question name; flags truncated records', () => {
  const short = parseNbns(Buffer.alloc(8));
  assert.ok(isNbnsError(short) && counterName(short.anomaly) === 'netbios.ns.too_short');
  const badName = parseNbns(Buffer.concat([header(0, 1, 0, 0), Buffer.from([3, 65, 66, 67, 0, 0, 0x20, 0, 1])]));
  assert.ok(isNbnsError(badName) && counterName(badName.anomaly) === 'netbios.ns.bad_name');
  const loop = parseNbns(Buffer.concat([header(0, 1, 0, 0), Buffer.from([0xc0, 12, 0, 0x20, 0, 1])]));
  assert.ok(isNbnsError(loop), 'a pointer to itself');
  const trunc = ok(Buffer.concat([header(0x8500, 0, 1, 0), name('PC', 0), Buffer.from([0, 0x20, 0, 1, 0, 0])]));
  assert.deepEqual(trunc.anomalies.map(counterName), ['netbios.ns.truncated']);
});

test('netbiosObservations ignores a negative answer and a query', () => {
  const neg = ok(Buffer.concat([header(0x8503, 0, 1, 0), name('PC', 0), Buffer.from([0, 0x20, 0, 1, 0, 0, 0, 60, 0, 6, 0, 0, 10, 0, 0, 1])]));
  assert.deepEqual(netbiosObservations(neg, '10.0.0.1', 0), []);
});

test('parseNbns never throws on any truncation or on seeded byte mutations', () => {
  for (const x of replay(fixture('identity', 'netbios-ns.pcap')).datagrams) {
    const base = x.payload;
    for (let n = 0; n <= base.length; n++) parseNbns(base.subarray(0, n));
    let seed = base.length;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xffff;
    for (let i = 0; i < 500; i++) {
      const b = Buffer.from(base);
      for (let k = 0; k < 3; k++) b[rnd() % b.length] = rnd() & 255;
      parseNbns(b);
    }
  }
});

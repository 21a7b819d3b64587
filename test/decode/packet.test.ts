/**
 * Tests for sensor/decode/packet.ts: `Packet.reset` clears every per-packet field the flow stage
 * reads, and the address formatters follow dotted-quad and RFC 5952 text forms.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIpv4, formatIpv6, Packet } from '../../sensor/decode/packet.js';
import { ipv6Bytes } from '../helpers/packets.js';

function words(text: string): Uint32Array {
  const b = ipv6Bytes(text);
  return new Uint32Array([b.readUInt32BE(0), b.readUInt32BE(4), b.readUInt32BE(8), b.readUInt32BE(12)]);
}

test('Packet.reset clears layer state and sets the frame window', () => {
  const p = new Packet();
  Object.assign(p, {
    nextType: 0x800, vlanCount: 3, vlan0: 1, vlan1: 2, tunnelDepth: 2, ipVersion: 4, ipProto: 6, transport: 6,
    srcPort: 1, dstPort: 2, tcpFlags: 0x12, payloadOff: 54, payloadLen: 10, frames: 3, wireLen: 4000,
  });
  const buf = new Uint8Array(100);
  p.reset(buf, 4, 90, 123456, 7, 1514);
  assert.equal(p.buf, buf);
  assert.deepEqual(
    [p.off, p.end, p.tsUs, p.ifIndex, p.frames, p.wireLen, p.nextType, p.vlanCount, p.vlan0, p.vlan1, p.tunnelDepth, p.ipVersion, p.ipProto, p.transport, p.srcPort, p.dstPort, p.tcpFlags, p.payloadOff, p.payloadLen],
    [4, 90, 123456, 7, 1, 1514, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  );
});

test('formatIpv4 prints the unsigned word as a dotted quad', () => {
  assert.equal(formatIpv4(0xc0000201), '192.0.2.1');
  assert.equal(formatIpv4(0xffffffff), '255.255.255.255');
  assert.equal(formatIpv4(0), '0.0.0.0');
});

test('formatIpv6 compresses the longest zero run, lower case (RFC 5952 section 4)', () => {
  const cases: Array<[string, string]> = [
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['fe80:0:0:0:0:0:0:0', 'fe80::'],
    // A single zero group is not compressed (section 4.2.2).
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    // The longer run wins; on a tie the first (section 4.2.3).
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['ABCD:EF01:2345:6789:ABCD:EF01:2345:6789', 'abcd:ef01:2345:6789:abcd:ef01:2345:6789'],
  ];
  for (const [input, expected] of cases) assert.equal(formatIpv6(words(input), 0), expected, input);
});

test('formatIpv6 reads the four words starting at base (destination = 4)', () => {
  const w = new Uint32Array(8);
  w.set(words('2001:db8::1'), 0);
  w.set(words('2001:db8::2'), 4);
  assert.equal(formatIpv6(w, 0), '2001:db8::1');
  assert.equal(formatIpv6(w, 4), '2001:db8::2');
});

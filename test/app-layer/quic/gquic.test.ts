import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findGquicClientHello, MAX_CHLO_TAGS } from '../../../sensor/app-layer/quic/gquic.js';
import { fixture, replay } from '../../helpers/replay.js';
import { hex } from '../../helpers/packets.js';

/** A CHLO message: tag, count, padding, (tag, end offset LE) entries, values. */
function chlo(entries: [string, Uint8Array][]): Buffer {
  const head = Buffer.alloc(8);
  head.write('CHLO', 0, 'latin1');
  head.writeUInt16LE(entries.length, 4);
  const index = Buffer.alloc(entries.length * 8);
  let end = 0;
  entries.forEach(([tag, value], i) => {
    index.write(tag.padEnd(4, '\0'), i * 8, 'latin1');
    end += value.length;
    index.writeUInt32LE(end, i * 8 + 4);
  });
  return Buffer.concat([head, index, ...entries.map(([, v]) => v)]);
}

test('findGquicClientHello reads SNI, UAID and VER from the Q025 CHLO in ndpi-http_ipv6.pcap', () => {
  const r = replay(fixture('quic', 'ndpi-http_ipv6.pcap'));
  const client = r.datagrams.filter((d) => d.info.srcPort === 45931 && d.dir === 0);
  assert.equal(client.length, 33);
  // tshark: frame 5, the flow's first datagram, carries the CHLO (23 tags).
  assert.deepEqual(findGquicClientHello(client[0].payload), {
    sni: 'www.google.it', userAgent: 'Chrome/46.0.2490.80 Linux x86_64', version: 'Q025', tagCount: 23,
  });
  // The later client datagrams are encrypted: no CHLO is found in them.
  for (const d of client.slice(1)) assert.equal(findGquicClientHello(d.payload), undefined);
});

test('findGquicClientHello finds a CHLO after any prefix and skips a false "CHLO" match', () => {
  const msg = chlo([['PAD', Buffer.alloc(20, 0x2d)], ['SNI', Buffer.from('a.example')], ['VER', Buffer.from('Q043')]]);
  const fake = Buffer.concat([Buffer.from('CHLO'), hex('0000')]); // zero tags: not a CHLO
  const dgram = Buffer.concat([hex('0d 0102030405060708'), Buffer.from('Q043'), hex('01'), fake, msg]);
  assert.deepEqual(findGquicClientHello(dgram), { sni: 'a.example', version: 'Q043', tagCount: 3 });
});

test('findGquicClientHello keeps the tags whose values are in this datagram when the message is cut', () => {
  const msg = chlo([['SNI', Buffer.from('b.example')], ['UAID', Buffer.from('x'.repeat(50))]]);
  assert.deepEqual(findGquicClientHello(msg.subarray(0, msg.length - 10)), { sni: 'b.example', tagCount: 2 });
  // Cut inside the tag index: nothing to read.
  assert.equal(findGquicClientHello(msg.subarray(0, 12)), undefined);
});

test('findGquicClientHello refuses decreasing end offsets, too many tags and non-text names', () => {
  const msg = chlo([['SNI', Buffer.from('c.example')], ['VER', Buffer.from('Q043')]]);
  const bad = Buffer.from(msg);
  bad.writeUInt32LE(2, 8 + 8 + 4); // second entry ends before the first
  assert.equal(findGquicClientHello(bad), undefined);
  const many = Buffer.from(msg);
  many.writeUInt16LE(MAX_CHLO_TAGS + 1, 4);
  assert.equal(findGquicClientHello(many), undefined);
  const binary = chlo([['SNI', hex('00 01 02 ff')]]);
  assert.deepEqual(findGquicClientHello(binary), { tagCount: 1 });
  assert.equal(findGquicClientHello(hex('')), undefined);
  assert.equal(findGquicClientHello(Buffer.from('CHL')), undefined);
});

test('findGquicClientHello never throws on any cut of the real CHLO datagram', () => {
  const r = replay(fixture('quic', 'ndpi-http_ipv6.pcap'));
  const first = r.datagrams.find((d) => d.info.srcPort === 45931 && d.dir === 0);
  if (first === undefined) return assert.fail('no gQUIC datagram');
  let withSni = 0;
  for (let n = 0; n <= first.payload.length; n++) if (findGquicClientHello(first.payload.subarray(0, n))?.sni === 'www.google.it') withSni++;
  // Found in exactly the cuts that keep the whole SNI value.
  const sniEnd = first.payload.indexOf('www.google.it') + 'www.google.it'.length;
  assert.equal(withSni, first.payload.length + 1 - sniEnd);
});

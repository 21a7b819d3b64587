/**
 * Tests for sensor/capture/file-reader.ts: files from test/helpers/pcap-writer.ts read back field
 * for field (both byte orders, micro/nano/binary resolutions, if_tsoffset, several interfaces and
 * sections), real pcapng captures against tshark's view of them, classic pcap against the
 * `pcap-parser` package as an independent oracle, and every truncation / corruption stopping at
 * the exact offset of the bad record after delivering all packets before it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { statSync, truncateSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pcapParser from 'pcap-parser';
import { CaptureFileError, CHUNK_BYTES, readCaptureFile, type ReadSummary } from '../../sensor/capture/file-reader.js';
import { Decoder } from '../../sensor/decode/decoder.js';
import { Counters } from '../../sensor/events/counters.js';
import { ascii, counting, ethTcp, LINKTYPE } from '../helpers/packets.js';
import {
  encodePcap, encodePcapng, PCAPNG_OPT, withTempFile, writePcap, writePcapng, type PcapngBlock, type PcapPacket,
} from '../helpers/pcap-writer.js';

function fixture(name: string): string {
  return fileURLToPath(new URL(`../../../test/fixtures/capture/${name}`, import.meta.url));
}

interface Got {
  linkType: number;
  data: Buffer;
  origLen: number;
  tsUs: number;
  ifIndex: number;
}

/** Reads a file, copying every packet out of the reader's reused buffer. */
function readFile(file: string): { packets: Got[]; summary: ReadSummary } {
  const packets: Got[] = [];
  const summary = readCaptureFile(file, (linkType, buf, off, capLen, origLen, tsUs, ifIndex) => {
    packets.push({ linkType, data: Buffer.from(buf.subarray(off, off + capLen)), origLen, tsUs, ifIndex });
  });
  return { packets, summary };
}

function readBytes(content: Uint8Array, name = 'capture.pcap'): { packets: Got[]; summary: ReadSummary } {
  return withTempFile(content, readFile, name);
}

function captureError(fn: () => unknown): CaptureFileError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CaptureFileError, `expected CaptureFileError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a CaptureFileError');
}

const FRAMES = [
  ethTcp({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1234, dport: 80 }, ascii('first')),
  ethTcp({ src: '2001:db8::1', dst: '2001:db8::2', sport: 1, dport: 2 }, counting(300)),
  Buffer.alloc(0),
  counting(61, 9),
];

// ---------------------------------------------------------------------------------------------
// Classic pcap written by the helper

const PCAP_PACKETS: PcapPacket[] = [
  { data: FRAMES[0], tsUs: 1_700_000_000_000_001 },
  { data: FRAMES[1], tsUs: 1_700_000_000_999_999, origLen: 1514 },
  { data: FRAMES[2], tsUs: 0 },
  { data: FRAMES[3], tsUs: 4_294_967_295_000_000 },
];

for (const byteOrder of ['le', 'be'] as const) {
  for (const nanosecond of [false, true]) {
    test(`readCaptureFile reads a ${byteOrder.toUpperCase()} ${nanosecond ? 'nanosecond' : 'microsecond'} pcap back exactly`, () => {
      const buf = writePcap(PCAP_PACKETS, { byteOrder, nanosecond, linkType: LINKTYPE.ETHERNET });
      const { packets, summary } = readBytes(buf);
      assert.deepEqual(summary, { format: 'pcap', packets: 4, bytesRead: buf.length, fileSize: buf.length, problem: undefined });
      assert.deepEqual(packets.map((p) => p.tsUs), PCAP_PACKETS.map((p) => p.tsUs));
      assert.deepEqual(packets.map((p) => p.origLen), [FRAMES[0].length, 1514, 0, 61]);
      packets.forEach((p, i) => {
        assert.equal(p.linkType, LINKTYPE.ETHERNET);
        assert.equal(p.ifIndex, 0);
        assert.ok(p.data.equals(FRAMES[i]), `packet ${i} bytes`);
      });
    });
  }
}

test('readCaptureFile truncates nanosecond timestamps to microseconds', () => {
  const buf = writePcap([{ data: FRAMES[0], sec: 1_700_000_000, frac: 123_456_789 }, { data: FRAMES[0], sec: 1, frac: 999_999_999 }], { nanosecond: true });
  assert.deepEqual(readBytes(buf).packets.map((p) => p.tsUs), [1_700_000_000_123_456, 1_999_999]);
});

test('readCaptureFile reports the link type of the file header', () => {
  for (const lt of [LINKTYPE.RAW, LINKTYPE.LINUX_SLL, LINKTYPE.LINUX_SLL2, LINKTYPE.NULL, 147]) {
    const { packets } = readBytes(writePcap([{ data: FRAMES[3] }], { linkType: lt, byteOrder: 'be' }));
    assert.equal(packets[0].linkType, lt);
  }
});

test('readCaptureFile ignores the FCS bits in the upper half of the link type field', () => {
  // LT_FCS_DATALINK_EXT(2) | Ethernet: FCS length 2 (x 16 bits) in bits 28-31, flag bit 26.
  const { packets } = readBytes(writePcap([{ data: FRAMES[0] }], { linkType: 0x24000001 }));
  assert.equal(packets[0].linkType, LINKTYPE.ETHERNET);
});

test('readCaptureFile accepts records up to the snap length when it exceeds 262144', () => {
  const big = counting(300_000);
  const ok = readBytes(writePcap([{ data: big }], { snaplen: 400_000 }));
  assert.equal(ok.summary.problem, undefined);
  assert.ok(ok.packets[0].data.equals(big));
  const bad = readBytes(writePcap([{ data: FRAMES[0] }, { data: big }], { snaplen: 65535 }));
  assert.equal(bad.packets.length, 1);
  assert.equal(bad.summary.problem?.offset, 24 + 16 + FRAMES[0].length);
});

test('readCaptureFile delivers packets straddling its read chunks intact and reports progress', () => {
  // Records of 1500 bytes filling more than a read chunk: records cross the chunk boundaries.
  const count = Math.ceil((CHUNK_BYTES * 1.2) / 1516);
  const frames = Array.from({ length: count }, (_, i) => counting(1500, i));
  const buf = writePcap(frames.map((data, i) => ({ data, tsUs: i })));
  const progress: number[] = [];
  withTempFile(buf, (file) => {
    let n = 0;
    const summary = readCaptureFile(file, (_lt, b, off, capLen, _o, tsUs) => {
      assert.equal(tsUs, n);
      assert.equal(capLen, 1500);
      assert.equal(b[off], n & 0xff);
      assert.equal(b[off + capLen - 1], (n + 1499) & 0xff);
      n++;
    }, { onProgress: (bytesRead, fileSize) => progress.push(bytesRead, fileSize) });
    assert.equal(n, count);
    assert.equal(summary.packets, count);
    assert.equal(summary.problem, undefined);
  });
  assert.ok(progress.length >= 2, 'onProgress was called');
  assert.ok(progress[0] >= CHUNK_BYTES && progress[0] <= buf.length);
  assert.equal(progress[1], buf.length);
});

test('readCaptureFile grows its buffer for a record larger than a read chunk', () => {
  const huge = counting(CHUNK_BYTES * 2 + 12345, 3);
  const buf = writePcapng([{ type: 'shb' }, { type: 'idb', linkType: 1 }, { type: 'epb', data: FRAMES[0] }, { type: 'epb', data: huge }, { type: 'epb', data: FRAMES[1] }]);
  const { packets, summary } = readBytes(buf, 'big.pcapng');
  assert.equal(summary.problem, undefined);
  assert.equal(packets.length, 3);
  assert.ok(packets[1].data.equals(huge));
  assert.ok(packets[2].data.equals(FRAMES[1]));
});

test('readCaptureFile with a larger buffer keeps packets in place until onOverwrite announces their bytes', () => {
  // About 4 MiB of records of varied sizes through a 1 MiB buffer: it wraps to its start repeatedly.
  const frames = Array.from({ length: 5000 }, (_, i) => counting(60 + ((i * 7919) % 1400), i));
  const buf = writePcap(frames.map((data, i) => ({ data, tsUs: i })));
  const live: Array<{ b: Uint8Array; off: number; i: number }> = [];
  const calls: Array<[number, number]> = [];
  let checked = 0;
  const intact = (p: { b: Uint8Array; off: number; i: number }) => Buffer.from(p.b.subarray(p.off, p.off + frames[p.i].length)).equals(frames[p.i]);
  withTempFile(buf, (file) => {
    let n = 0;
    const summary = readCaptureFile(
      file,
      (_lt, b, off, capLen) => {
        assert.equal(capLen, frames[n].length);
        live.push({ b, off, i: n++ });
      },
      {
        windowBytes: 1 << 20,
        onOverwrite: (b, from, to) => {
          calls.push([from, to]);
          // Every packet handed out earlier is intact up to this call; those in [from, to) are then given up.
          for (let k = live.length - 1; k >= 0; k--) {
            const p = live[k];
            assert.ok(intact(p), `packet ${p.i} intact until its bytes are announced`);
            checked++;
            if (p.b !== b || (p.off < to && p.off + frames[p.i].length > from)) live.splice(k, 1);
          }
        },
      },
    );
    assert.equal(summary.problem, undefined);
    assert.equal(n, frames.length);
  });
  assert.ok(live.every(intact));
  const wraps = calls.filter(([from], k) => k > 0 && from < calls[k - 1][0]).length;
  assert.ok(wraps >= 2, `the buffer wrapped (${wraps} times)`);
  assert.ok(calls.every(([from, to]) => to - from <= CHUNK_BYTES && from >= 0 && to <= 1 << 20), 'each write is one read chunk within the buffer');
  assert.ok(checked > frames.length);
});

// ---------------------------------------------------------------------------------------------
// pcapng written by the helper

// Section 1 (little-endian): three interfaces with different link types and resolutions.
// Section 2 (big-endian): interface numbering continues at 3.
const NG_BLOCKS: PcapngBlock[] = [
  { type: 'shb', options: [{ code: PCAPNG_OPT.COMMENT, value: ascii('made by pcap-writer') }] },
  { type: 'idb', linkType: LINKTYPE.ETHERNET, snaplen: 262144, tsresol: 9, name: 'eth0' },
  { type: 'idb', linkType: LINKTYPE.RAW, tsresol: 0x80 | 20, tsoffset: 100 },
  { type: 'idb', linkType: LINKTYPE.LINUX_SLL, tsoffset: -1, options: [{ code: 0x7fff, value: ascii('unknown option') }] },
  { type: 'epb', ifId: 0, ts: 1_700_000_000_123_456_789n, data: FRAMES[0], options: [{ code: PCAPNG_OPT.EPB_FLAGS, value: Buffer.alloc(4) }] },
  // 2^-20 s units: 1700000000.5 s exactly, plus the 100 s offset.
  { type: 'epb', ifId: 1, ts: (1_700_000_000n << 20n) | (1n << 19n), data: FRAMES[1], origLen: 9000 },
  { type: 'raw', blockType: 0x0a, body: ascii('TLSK....secrets') },
  { type: 'epb', ifId: 2, tsUs: 1_700_000_001_000_001, data: FRAMES[3] },
  { type: 'spb', data: FRAMES[3] },
  { type: 'raw', blockType: 0xbad, body: counting(33) },
  { type: 'pb', ifId: 0, drops: 3, ts: 2_000_000_000_000_000_999n, data: FRAMES[0] },
  { type: 'raw', blockType: 5, body: Buffer.alloc(20) },
  { type: 'shb', byteOrder: 'be' },
  { type: 'idb', linkType: LINKTYPE.RAW, tsresol: 3, tsoffset: -3600 },
  { type: 'idb', linkType: LINKTYPE.ETHERNET },
  { type: 'epb', ifId: 1, tsUs: 1_600_000_000_000_007, data: FRAMES[0] },
  { type: 'epb', ifId: 0, ts: 1_600_000_000_123n, data: FRAMES[1] },
];

test('readCaptureFile reads pcapng interfaces, resolutions, offsets and sections back exactly', () => {
  const buf = writePcapng(NG_BLOCKS);
  const { packets, summary } = readBytes(buf, 'capture.pcapng');
  assert.deepEqual(summary, { format: 'pcapng', packets: 7, bytesRead: buf.length, fileSize: buf.length, problem: undefined });
  const view = packets.map((p) => [p.linkType, p.ifIndex, p.tsUs, p.origLen, p.data.length]);
  assert.deepEqual(view, [
    [LINKTYPE.ETHERNET, 0, 1_700_000_000_123_456, FRAMES[0].length, FRAMES[0].length], // nanoseconds
    [LINKTYPE.RAW, 1, 1_700_000_100_500_000, 9000, FRAMES[1].length], // 2^-20 + if_tsoffset
    [LINKTYPE.LINUX_SLL, 2, 1_700_000_000_000_001, 61, 61], // default microseconds, offset -1 s
    [LINKTYPE.ETHERNET, 0, 0, 61, 61], // simple packet block: interface 0, no timestamp
    [LINKTYPE.ETHERNET, 0, 2_000_000_000_000_000, FRAMES[0].length, FRAMES[0].length], // obsolete PB
    [LINKTYPE.ETHERNET, 4, 1_600_000_000_000_007, FRAMES[0].length, FRAMES[0].length], // section 2, BE
    [LINKTYPE.RAW, 3, 1_600_000_000_123_000 - 3_600_000_000, FRAMES[1].length, FRAMES[1].length], // ms, negative offset
  ]);
  const frames = [FRAMES[0], FRAMES[1], FRAMES[3], FRAMES[3], FRAMES[0], FRAMES[0], FRAMES[1]];
  packets.forEach((p, i) => assert.ok(p.data.equals(frames[i]), `packet ${i} bytes`));
});

test('readCaptureFile: a simple packet block is cut to the interface snap length and its original length', () => {
  const buf = writePcapng([
    { type: 'shb' }, { type: 'idb', linkType: 1, snaplen: 64 },
    { type: 'spb', data: counting(100) },
    { type: 'spb', data: counting(60), origLen: 1514 },
    { type: 'spb', data: counting(62), origLen: 61 },
  ]);
  const { packets } = readBytes(buf, 'spb.pcapng');
  assert.deepEqual(packets.map((p) => [p.data.length, p.origLen]), [[64, 100], [60, 1514], [61, 61]]);
  assert.ok(packets[0].data.equals(counting(64)));
});

// ---------------------------------------------------------------------------------------------
// Real captures

test('readCaptureFile reads ws-http-brotli.pcapng: 10 packets at nanosecond resolution', () => {
  const file = fixture('ws-http-brotli.pcapng');
  const { packets, summary } = readFile(file);
  assert.equal(summary.format, 'pcapng');
  assert.equal(summary.packets, 10);
  assert.equal(summary.problem, undefined);
  assert.equal(summary.bytesRead, statSync(file).size);
  // tshark -T fields -e frame.time_epoch -e frame.cap_len, truncated to microseconds.
  const us = [302443, 302735, 302771, 302831, 302903, 303114, 303134, 303329, 303556, 303577];
  assert.deepEqual(packets.map((p) => p.tsUs), us.map((x) => 1554560767_000000 + x));
  assert.deepEqual(packets.map((p) => p.data.length), [74, 74, 66, 173, 66, 386, 66, 66, 66, 66]);
  assert.deepEqual(packets.map((p) => p.origLen), [74, 74, 66, 173, 66, 386, 66, 66, 66, 66]);
  assert.ok(packets.every((p) => p.linkType === LINKTYPE.ETHERNET && p.ifIndex === 0));
  const d = new Decoder(new Counters());
  assert.ok(packets.every((p) => d.decodeFrame(p.linkType, p.data, 0, p.data.length, p.tsUs)), 'every frame is TCP');
  assert.deepEqual(d.counters.snapshot('anomaly'), {});
});

test('readCaptureFile skips the Decryption Secrets Blocks of ws-tls12-dsb.pcapng', () => {
  const file = fixture('ws-tls12-dsb.pcapng');
  const { packets, summary } = readFile(file);
  assert.equal(summary.format, 'pcapng');
  assert.equal(summary.packets, 17);
  assert.equal(summary.problem, undefined);
  assert.equal(summary.bytesRead, statSync(file).size);
  const us = [420067, 420408, 420686, 420960, 421217, 421485, 421748, 422004, 422260, 422507, 422771, 423739, 424014, 424274, 424534, 424792, 425052];
  assert.deepEqual(packets.map((p) => p.tsUs), us.map((x) => 1542465083_000000 + x));
  assert.deepEqual(packets.map((p) => p.data.length), [281, 1500, 1817, 178, 103, 157, 419, 83, 83, 281, 3265, 178, 103, 157, 419, 83, 83]);
  assert.ok(packets.every((p) => p.linkType === LINKTYPE.IPV4 && p.data[0] === 0x45), 'LINKTYPE_IPV4, no secrets block bytes');
  const d = new Decoder(new Counters());
  assert.ok(packets.every((p) => d.decodeFrame(p.linkType, p.data, 0, p.data.length, p.tsUs)));
  assert.deepEqual(d.counters.snapshot('anomaly'), {});
});

interface OraclePacket {
  tsUs: number;
  origLen: number;
  data: Buffer;
}

/** The same file through the `pcap-parser` package (stream + EventEmitter). */
function readWithPcapParser(file: string): Promise<{ linkType: number; packets: OraclePacket[] }> {
  return new Promise((resolve, reject) => {
    const packets: OraclePacket[] = [];
    let linkType = -1;
    const parser = pcapParser.parse(file);
    parser.on('globalHeader', (h: pcapParser.GlobalHeader) => {
      linkType = h.linkLayerType;
    });
    parser.on('packet', (p: pcapParser.Packet) => {
      packets.push({ tsUs: p.header.timestampSeconds * 1e6 + p.header.timestampMicroseconds, origLen: p.header.originalLength, data: Buffer.from(p.data) });
    });
    parser.on('error', reject);
    parser.on('end', () => resolve({ linkType, packets }));
  });
}

async function assertAgreesWithPcapParser(file: string, expectedPackets: number): Promise<void> {
  const oracle = await readWithPcapParser(file);
  const ours = readFile(file);
  assert.equal(oracle.packets.length, expectedPackets);
  assert.equal(ours.summary.packets, oracle.packets.length);
  assert.equal(ours.summary.problem, undefined);
  ours.packets.forEach((p, i) => {
    const o = oracle.packets[i];
    assert.equal(p.linkType, oracle.linkType, `packet ${i} link type`);
    assert.equal(p.tsUs, o.tsUs, `packet ${i} timestamp`);
    assert.equal(p.origLen, o.origLen, `packet ${i} original length`);
    assert.ok(p.data.equals(o.data), `packet ${i} bytes`);
  });
}

test('readCaptureFile agrees with pcap-parser on zeek-http-qinq-0.pcap (count, bytes, timestamps)', async () => {
  await assertAgreesWithPcapParser(fixture('zeek-http-qinq-0.pcap'), 14);
  // And the frames are what the MANIFEST row says: QinQ with both VLAN IDs 0.
  const d = new Decoder(new Counters());
  for (const p of readFile(fixture('zeek-http-qinq-0.pcap')).packets) {
    assert.equal(d.decodeFrame(p.linkType, p.data, 0, p.data.length, p.tsUs), true);
    assert.deepEqual([d.packet.vlanCount, d.packet.vlan0, d.packet.vlan1], [2, 0, 0]);
  }
});

test('readCaptureFile agrees with pcap-parser on big-endian pcap-writer output', async () => {
  const buf = writePcap(PCAP_PACKETS, { byteOrder: 'be' });
  await withTempFile(buf, (file) => assertAgreesWithPcapParser(file, 4));
});

// ---------------------------------------------------------------------------------------------
// Truncation: every cut position

/**
 * Cuts `buf` at every length from 4 bytes up and checks the reader delivers exactly the records
 * that end at or before the cut and reports the record the cut falls in (none at a boundary).
 */
function assertEveryCut(buf: Buffer, recordOffsets: number[], packetRecords: Set<number>, name: string): void {
  const ends = recordOffsets.slice(1).concat(buf.length);
  withTempFile(buf, (file) => {
    // Longest first, shortening in place: truncate is far cheaper than rewriting the file.
    for (let cut = buf.length; cut >= 4; cut--) {
      truncateSync(file, cut);
      let delivered = 0;
      const summary = readCaptureFile(file, () => {
        delivered++;
      });
      const complete = recordOffsets.filter((_, i) => ends[i] <= cut);
      const expectedPackets = complete.filter((_, i) => packetRecords.has(i)).length;
      const inside = recordOffsets.findIndex((start, i) => start < cut && cut < ends[i]);
      // Before the first record (inside a pcap global header) the problem is at offset 0.
      const expectedOffset = inside >= 0 ? recordOffsets[inside] : cut < (recordOffsets[0] ?? 0) ? 0 : undefined;
      assert.equal(delivered, expectedPackets, `${name} cut at ${cut}: packets delivered`);
      assert.equal(summary.packets, expectedPackets, `${name} cut at ${cut}: summary.packets`);
      assert.equal(summary.problem?.offset, expectedOffset, `${name} cut at ${cut}: problem offset (${summary.problem?.message})`);
    }
  }, name);
}

test('readCaptureFile stops at the exact record a pcap is cut in (global header, record header, data)', () => {
  const { buf, offsets } = encodePcap(PCAP_PACKETS);
  assertEveryCut(buf, offsets, new Set([0, 1, 2, 3]), 'cut.pcap');
});

test('readCaptureFile stops at the exact block a pcapng is cut in (any block, either section)', () => {
  const { buf, offsets } = encodePcapng(NG_BLOCKS);
  const packetBlocks = new Set(NG_BLOCKS.flatMap((b, i) => (['epb', 'spb', 'pb'].includes(b.type) ? [i] : [])));
  assert.equal(packetBlocks.size, 7);
  assertEveryCut(buf, offsets, packetBlocks, 'cut.pcapng');
});

test('readCaptureFile: a pcap cut inside the global header reports offset 0 and no packets', () => {
  const { summary, packets } = readBytes(writePcap(PCAP_PACKETS).subarray(0, 10));
  assert.equal(packets.length, 0);
  assert.equal(summary.problem?.offset, 0);
  assert.match(summary.problem?.message ?? '', /truncated pcap global header: 10 of 24 bytes/);
});

test('readCaptureFile: a pcap cut inside a record header reports that record after the packets before it', () => {
  const { buf, offsets } = encodePcap(PCAP_PACKETS);
  const r = readBytes(buf.subarray(0, offsets[3] + 10));
  assert.equal(r.packets.length, 3);
  assert.equal(r.summary.problem?.offset, offsets[3]);
  assert.match(r.summary.problem?.message ?? '', /truncated packet record header: 10 of 16 bytes/);
});

test('readCaptureFile: a pcap cut inside packet data reports that record after the packets before it', () => {
  const { buf, offsets } = encodePcap(PCAP_PACKETS);
  const r = readBytes(buf.subarray(0, offsets[1] + 16 + 100));
  assert.equal(r.packets.length, 1);
  assert.ok(r.packets[0].data.equals(FRAMES[0]));
  assert.equal(r.summary.problem?.offset, offsets[1]);
  assert.match(r.summary.problem?.message ?? '', /truncated packet record 2: header says 374 bytes, file ends after 100/);
});

test('readCaptureFile: a pcapng cut inside a block reports that block after the packets before it', () => {
  const { buf, offsets } = encodePcapng(NG_BLOCKS);
  const r = readBytes(buf.subarray(0, offsets[5] + 30), 'cut.pcapng');
  assert.equal(r.packets.length, 1);
  assert.equal(r.summary.problem?.offset, offsets[5]);
  assert.match(r.summary.problem?.message ?? '', /truncated block \(type 0x6\)/);
});

// ---------------------------------------------------------------------------------------------
// Corruption

test('readCaptureFile stops at a record whose captured length is corrupt', () => {
  const packets: PcapPacket[] = [PCAP_PACKETS[0], PCAP_PACKETS[1], { data: FRAMES[0], capLen: 0x7fffffff }, PCAP_PACKETS[0]];
  const { buf, offsets } = encodePcap(packets);
  const r = readBytes(buf);
  assert.equal(r.packets.length, 2);
  assert.equal(r.summary.problem?.offset, offsets[2]);
  assert.match(r.summary.problem?.message ?? '', /corrupt packet record 3: captured length 2147483647/);
});

test('readCaptureFile stops at a record whose fractional timestamp is out of range', () => {
  const { buf, offsets } = encodePcap([PCAP_PACKETS[0], { data: FRAMES[0], sec: 1, frac: 1_000_000 }]);
  const r = readBytes(buf);
  assert.equal(r.packets.length, 1);
  assert.equal(r.summary.problem?.offset, offsets[1]);
  const ns = encodePcap([PCAP_PACKETS[0], { data: FRAMES[0], sec: 1, frac: 999_999_999 }, { data: FRAMES[0], sec: 1, frac: 1_000_000_000 }], { nanosecond: true });
  const rn = readBytes(ns.buf);
  assert.equal(rn.packets.length, 2);
  assert.equal(rn.summary.problem?.offset, ns.offsets[2]);
});

test('readCaptureFile stops at a pcapng block whose trailing length differs', () => {
  const blocks: PcapngBlock[] = [{ type: 'shb' }, { type: 'idb', linkType: 1 }, { type: 'epb', data: FRAMES[0] }, { type: 'epb', data: FRAMES[1], trailerLength: 12 }, { type: 'epb', data: FRAMES[0] }];
  const { buf, offsets } = encodePcapng(blocks);
  const r = readBytes(buf, 'trailer.pcapng');
  assert.equal(r.packets.length, 1);
  assert.equal(r.summary.problem?.offset, offsets[3]);
  assert.match(r.summary.problem?.message ?? '', /leading length \d+ differs from trailing length 12/);
});

for (const [why, totalLength] of [['below 12', 8], ['not a multiple of 4', 30], ['above 16 MiB', 32 << 20]] as const) {
  test(`readCaptureFile stops at a pcapng block whose total length is ${why}`, () => {
    const { buf, offsets } = encodePcapng([{ type: 'shb' }, { type: 'idb', linkType: 1 }, { type: 'epb', data: FRAMES[0] }, { type: 'raw', blockType: 0xbad, body: Buffer.alloc(20), totalLength }]);
    const r = readBytes(buf, 'len.pcapng');
    assert.equal(r.packets.length, 1);
    assert.equal(r.summary.problem?.offset, offsets[3]);
    assert.match(r.summary.problem?.message ?? '', new RegExp(`total length ${totalLength} is invalid`));
  });
}

test('readCaptureFile stops at a simple packet block too short to hold its original length', () => {
  const { buf, offsets } = encodePcapng([{ type: 'shb' }, { type: 'idb', linkType: 1 }, { type: 'spb', data: FRAMES[0] }, { type: 'raw', blockType: 3, body: Buffer.alloc(0) }, { type: 'spb', data: FRAMES[1] }]);
  const r = readBytes(buf, 'spb12.pcapng');
  assert.deepEqual(r.packets.map((p) => p.data.length), [FRAMES[0].length], 'no frame of a negative (or 4 GiB) length');
  assert.equal(r.summary.problem?.offset, offsets[3]);
  assert.match(r.summary.problem?.message ?? '', /corrupt simple packet block: length 12/);
});

test('readCaptureFile stops at a packet block whose timestamp lies outside 1970-9999', () => {
  for (const [why, blocks] of [
    ['2^63 microseconds', [{ type: 'idb', linkType: 1 }, { type: 'epb', ts: 1n << 63n, data: FRAMES[1] }]],
    ['a negative interface offset', [{ type: 'idb', linkType: 1, tsoffset: -2_000_000_000 }, { type: 'epb', tsUs: 1_700_000_000_000_000, data: FRAMES[1] }]],
  ] as const) {
    const { buf, offsets } = encodePcapng([{ type: 'shb' }, ...blocks, { type: 'epb', data: FRAMES[0] }]);
    const r = readBytes(buf, 'far.pcapng');
    assert.equal(r.packets.length, 0, why);
    assert.equal(r.summary.problem?.offset, offsets[2], why);
    assert.match(r.summary.problem?.message ?? '', /corrupt packet block: timestamp -?\d+ µs is outside 1970-9999/, why);
  }
});

test('readCaptureFile stops at a packet block for an interface never described', () => {
  const { buf, offsets } = encodePcapng([{ type: 'shb' }, { type: 'idb', linkType: 1 }, { type: 'epb', data: FRAMES[0] }, { type: 'epb', ifId: 1, data: FRAMES[0] }]);
  const r = readBytes(buf, 'if.pcapng');
  assert.equal(r.packets.length, 1);
  assert.equal(r.summary.problem?.offset, offsets[3]);
  assert.match(r.summary.problem?.message ?? '', /interface 1 was never described/);
  // A new section forgets the interfaces of the previous one.
  const s2 = encodePcapng([{ type: 'shb' }, { type: 'idb', linkType: 1 }, { type: 'shb' }, { type: 'spb', data: FRAMES[0] }]);
  assert.equal(readBytes(s2.buf, 'if2.pcapng').summary.problem?.offset, s2.offsets[3]);
});

test('readCaptureFile stops at an enhanced packet block whose captured length exceeds the block', () => {
  const { buf, offsets } = encodePcapng([{ type: 'shb' }, { type: 'idb', linkType: 1 }, { type: 'epb', data: FRAMES[0], capLen: FRAMES[0].length + 8 }]);
  const r = readBytes(buf, 'cap.pcapng');
  assert.equal(r.packets.length, 0);
  assert.equal(r.summary.problem?.offset, offsets[2]);
});

test('readCaptureFile stops at an interface option that overruns its block, naming the option offset', () => {
  const { buf, offsets } = encodePcapng([{ type: 'shb' }, { type: 'idb', linkType: 1, options: [{ code: 2, value: ascii('eth0') }] }]);
  // Make the if_name option claim 200 bytes.
  buf.writeUInt16LE(200, offsets[1] + 16 + 2);
  const r = readBytes(buf, 'opt.pcapng');
  assert.equal(r.summary.problem?.offset, offsets[1] + 16);
  assert.match(r.summary.problem?.message ?? '', /option overruns block/);
});

test('readCaptureFile stops at a section header with a bad byte-order magic', () => {
  const { buf, offsets } = encodePcapng([{ type: 'shb' }, { type: 'idb', linkType: 1 }, { type: 'epb', data: FRAMES[0] }, { type: 'shb' }]);
  buf.writeUInt32LE(0x12345678, offsets[3] + 8);
  const r = readBytes(buf, 'bom.pcapng');
  assert.equal(r.packets.length, 1);
  assert.equal(r.summary.problem?.offset, offsets[3]);
});

// ---------------------------------------------------------------------------------------------
// Not a capture at all

test('readCaptureFile throws E_CAPTURE_FORMAT for an empty file', () => {
  const err = captureError(() => readBytes(Buffer.alloc(0)));
  assert.equal(err.code, 'E_CAPTURE_FORMAT');
  assert.match(err.message, /the file is empty/);
});

test('readCaptureFile throws E_CAPTURE_FORMAT for a file shorter than any magic number', () => {
  const err = captureError(() => readBytes(Buffer.from([0xd4, 0xc3, 0xb2])));
  assert.equal(err.code, 'E_CAPTURE_FORMAT');
});

test('readCaptureFile throws E_CAPTURE_FORMAT for a file that is not a capture', () => {
  const err = captureError(() => readBytes(ascii('GET / HTTP/1.1\r\nHost: example\r\n\r\n'), 'notes.txt'));
  assert.equal(err.code, 'E_CAPTURE_FORMAT');
  assert.match(err.message, /notes\.txt.*not a pcap or pcapng file \(magic 0x47455420\)/);
});

test('readCaptureFile throws E_CAPTURE_OPEN for a missing file, naming it', () => {
  const missing = fixture('does-not-exist.pcap');
  const err = captureError(() => readCaptureFile(missing, () => undefined));
  assert.equal(err.code, 'E_CAPTURE_OPEN');
  assert.ok(err.message.includes(missing));
  assert.match(err.message, /no such file/);
  assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOENT');
});

test('readCaptureFile throws E_CAPTURE_OPEN for a directory, saying so', () => {
  const dir = fileURLToPath(new URL('../../../test/fixtures/capture/', import.meta.url));
  const err = captureError(() => readCaptureFile(dir, () => undefined));
  assert.equal(err.code, 'E_CAPTURE_OPEN');
  assert.equal(err.message, `Cannot open capture file "${dir}": is a directory`);
});

test('readCaptureFile reads a named pipe to its end (sequential reads, no size known)', () =>
  withTempFile(writePcap(PCAP_PACKETS), (file) => {
    const fifo = `${file}.fifo`;
    execFileSync('mkfifo', [fifo]);
    // Opening a FIFO blocks until a writer opens it: the writer is another process.
    const writer = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', file, fifo], { stdio: 'ignore' });
    try {
      const { packets, summary } = readFile(fifo);
      assert.equal(packets.length, PCAP_PACKETS.length);
      assert.equal(summary.problem, undefined);
    } finally {
      writer.kill();
    }
  }));

test('readCaptureFile throws E_CAPTURE_READ when a read fails, naming the file and the byte offset', () => {
  // /proc/self/mem opens as a regular file, but reading address 0 (never mapped) fails with EIO.
  const err = captureError(() => readCaptureFile('/proc/self/mem', () => undefined));
  assert.equal(err.code, 'E_CAPTURE_READ');
  assert.match(err.message, /^Cannot read capture file "\/proc\/self\/mem" at byte offset 0: EIO/);
  assert.equal((err.cause as NodeJS.ErrnoException).code, 'EIO');
});

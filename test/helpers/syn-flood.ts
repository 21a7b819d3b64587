/**
 * SYN flood capture for the resource-bound tests: `count` TCP SYNs (Ethernet, IPv4, 20-byte TCP
 * header), each from its own source address and port to 192.0.2.80:80, so every one opens a new
 * flow. Output: a classic little-endian microsecond pcap in one preallocated Buffer (a million SYNs
 * is 70 MB and takes well under a second), checksums correct. Packet i's source is 10.a.b.c with
 * a.b.c = i + 1 and port 1024 + i % 64000.
 */

const PCAP_HEADER_BYTES = 24;
const RECORD_HEADER_BYTES = 16;
const ETH_BYTES = 14;
const IPV4_BYTES = 20;
const TCP_BYTES = 20;
const FRAME_BYTES = ETH_BYTES + IPV4_BYTES + TCP_BYTES;
/** Beyond this the 10.a.b.c source addresses would repeat (24 bits). */
export const MAX_SYN_FLOOD_PACKETS = (1 << 24) - 2;

/** Ones' complement sum of big-endian 16-bit words of buf[from, to). */
function sum16(buf: Buffer, from: number, to: number, acc: number): number {
  for (let i = from; i < to; i += 2) acc += (buf[i] << 8) | buf[i + 1];
  return acc;
}

function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + (acc >>> 16);
  return ~acc & 0xffff;
}

export function synFloodPcap(count: number, startTsUs = 1_700_000_000_000_000): Buffer {
  if (!Number.isInteger(count) || count < 0 || count > MAX_SYN_FLOOD_PACKETS) throw new RangeError(`synFloodPcap: count ${count} out of range`);
  const rec = RECORD_HEADER_BYTES + FRAME_BYTES;
  const buf = Buffer.alloc(PCAP_HEADER_BYTES + count * rec);
  buf.writeUInt32LE(0xa1b2c3d4, 0);
  buf.writeUInt16LE(2, 4);
  buf.writeUInt16LE(4, 6);
  buf.writeUInt32LE(65535, 16);
  buf.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
  // one template frame, copied then patched per packet
  const t = Buffer.alloc(FRAME_BYTES);
  Buffer.from([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]).copy(t, 0);
  const ip = ETH_BYTES;
  t[ip] = 0x45;
  t.writeUInt16BE(IPV4_BYTES + TCP_BYTES, ip + 2);
  t[ip + 8] = 64; // TTL
  t[ip + 9] = 6; // TCP
  t[ip + 12] = 10;
  t.writeUInt32BE(0xc0000250, ip + 16); // 192.0.2.80
  const tcp = ip + IPV4_BYTES;
  t.writeUInt16BE(80, tcp + 2);
  t[tcp + 12] = 0x50; // data offset 5 words
  t[tcp + 13] = 0x02; // SYN
  t.writeUInt16BE(64240, tcp + 14);
  let at = PCAP_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const ts = startTsUs + i;
    buf.writeUInt32LE(Math.floor(ts / 1e6), at);
    buf.writeUInt32LE(ts % 1e6, at + 4);
    buf.writeUInt32LE(FRAME_BYTES, at + 8);
    buf.writeUInt32LE(FRAME_BYTES, at + 12);
    const f = at + RECORD_HEADER_BYTES;
    t.copy(buf, f);
    const host = i + 1;
    buf.writeUInt16BE(i & 0xffff, f + ip + 4); // IP id
    buf[f + ip + 13] = (host >>> 16) & 0xff;
    buf[f + ip + 14] = (host >>> 8) & 0xff;
    buf[f + ip + 15] = host & 0xff;
    buf.writeUInt16BE(fold(sum16(buf, f + ip, f + ip + IPV4_BYTES, 0)), f + ip + 10);
    buf.writeUInt16BE(1024 + (i % 64000), f + tcp);
    buf.writeUInt32BE((i * 2654435761) >>> 0, f + tcp + 4); // ISN
    // pseudo-header: addresses, protocol, TCP length
    const pseudo = sum16(buf, f + ip + 12, f + ip + 20, 6 + TCP_BYTES);
    buf.writeUInt16BE(fold(sum16(buf, f + tcp, f + tcp + TCP_BYTES, pseudo)), f + tcp + 16);
    at += rec;
  }
  return buf;
}

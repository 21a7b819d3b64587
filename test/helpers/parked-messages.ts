/**
 * Connections parked in the middle of a compressed response, for the inspection-memory tests: each
 * of N HTTP/1.1 conversations (handshake, GET, a 200 answer whose body is coded `br` or `gzip`)
 * sends its body but the last bytes and then goes quiet, so the sensor holds the message's decoder
 * and text state until the flow times out or is evicted. The brotli body is one meta-block of
 * `bodyBytes` with a 16 MiB window (the ring buffer the decoder fills before it hands anything
 * out); its content is a deterministic 256 KiB block of letters, repeated, so it compresses ~60:1
 * and stays under the ratio guard. Content-Type application/octet-stream: the body is decoded but
 * not scanned as text, so the tests measure holding, not matching. Output: frames (Ethernet, IPv4)
 * 20 µs apart from `startUs`.
 */
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { ascii, ETHERTYPE, ethernet, IPPROTO, ipv4, tcp, TCP_FLAGS } from './packets.js';
import type { PcapPacket } from './pcap-writer.js';

export interface ParkedMessagesOptions {
  readonly connections: number;
  readonly coding: 'br' | 'gzip';
  /** Decoded size of each body (default 7.5 MB: under the 8 MiB body limit). */
  readonly bodyBytes?: number;
  readonly startUs?: number;
}

const SEGMENT_BYTES = 1400;
/** The tail of each body never sent: the decoder stays open, waiting for it. */
const HELD_BACK_BYTES = 1000;

function body(bytes: number): Buffer {
  const block = Buffer.alloc(256 * 1024);
  for (let i = 0, x = 2463534242; i < block.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    block[i] = 97 + (x % 26);
  }
  const out = Buffer.alloc(bytes);
  for (let o = 0; o < bytes; o += block.length) block.copy(out, o);
  return out;
}

export function parkedMessagesPackets(o: ParkedMessagesOptions): PcapPacket[] {
  const plain = body(o.bodyBytes ?? 7_500_000);
  const wire = o.coding === 'br'
    ? brotliCompressSync(plain, { params: { [constants.BROTLI_PARAM_LGWIN]: 24, [constants.BROTLI_PARAM_QUALITY]: 5, [constants.BROTLI_PARAM_SIZE_HINT]: plain.length } })
    : gzipSync(plain);
  const sent = wire.subarray(0, wire.length - HELD_BACK_BYTES);
  const packets: PcapPacket[] = [];
  let ts = o.startUs ?? 1_700_000_000_000_000;
  for (let i = 0; i < o.connections; i++) {
    const client = `10.77.${(i >> 8) & 0xff}.${(i & 0xff) + 1 > 254 ? 254 : (i & 0xff) + 1}`;
    const server = '192.0.2.81';
    const sport = 30000 + (i % 30000);
    let cseq = 1;
    let sseq = 1;
    const send = (fromClient: boolean, flags: number, data: Uint8Array): void => {
      const seg = tcp({ sport: fromClient ? sport : 80, dport: fromClient ? 80 : sport, seq: fromClient ? cseq : sseq, ack: fromClient ? sseq : cseq, flags }, data);
      packets.push({
        data: ethernet({ type: ETHERTYPE.IPV4, src: fromClient ? '02:00:00:00:00:01' : '02:00:00:00:00:02', dst: fromClient ? '02:00:00:00:00:02' : '02:00:00:00:00:01' },
          ipv4({ proto: IPPROTO.TCP, src: fromClient ? client : server, dst: fromClient ? server : client }, seg)),
        tsUs: (ts += 20),
      });
      const adv = data.length + (flags & (TCP_FLAGS.SYN | TCP_FLAGS.FIN) ? 1 : 0);
      if (fromClient) cseq += adv;
      else sseq += adv;
    };
    send(true, TCP_FLAGS.SYN, new Uint8Array(0));
    send(false, TCP_FLAGS.SYN | TCP_FLAGS.ACK, new Uint8Array(0));
    send(true, TCP_FLAGS.ACK, new Uint8Array(0));
    send(true, TCP_FLAGS.ACK | TCP_FLAGS.PSH, ascii(`GET /parked/${i} HTTP/1.1\r\nHost: parked.example.test\r\n\r\n`));
    send(false, TCP_FLAGS.ACK | TCP_FLAGS.PSH, ascii(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Encoding: ${o.coding}\r\nContent-Length: ${wire.length}\r\n\r\n`));
    for (let at = 0; at < sent.length; at += SEGMENT_BYTES) send(false, TCP_FLAGS.ACK, sent.subarray(at, at + SEGMENT_BYTES));
  }
  return packets;
}

/**
 * One HTTP/1.1 client (handshake, then `headBytes` of a GET head in 1,400-byte segments, without the
 * blank line that would end it) that then goes quiet: the sensor holds the head so far until the flow
 * times out or is evicted. Connection `i` has its own client address and port; frames 20 µs apart
 * from `startUs`. For the inspection-memory measurements of heads parked by the thousand.
 */
export function parkedHeadPackets(i: number, headBytes: number, startUs: number): PcapPacket[] {
  const client = `10.78.${(i >> 8) & 0xff}.${(i & 0xff) + 1 > 254 ? 254 : (i & 0xff) + 1}`;
  const server = '192.0.2.82';
  const sport = 30000 + (i % 30000);
  let seq = 1;
  let ts = startUs;
  const packets: PcapPacket[] = [];
  const send = (flags: number, data: Uint8Array, fromClient = true): void => {
    const seg = tcp({ sport: fromClient ? sport : 80, dport: fromClient ? 80 : sport, seq: fromClient ? seq : 1, ack: fromClient ? 1 : seq, flags }, data);
    packets.push({
      data: ethernet({ type: ETHERTYPE.IPV4, src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' },
        ipv4({ proto: IPPROTO.TCP, src: fromClient ? client : server, dst: fromClient ? server : client }, seg)),
      tsUs: (ts += 20),
    });
    if (fromClient) seq += data.length + (flags & TCP_FLAGS.SYN ? 1 : 0);
  };
  send(TCP_FLAGS.SYN, new Uint8Array(0));
  send(TCP_FLAGS.SYN | TCP_FLAGS.ACK, new Uint8Array(0), false);
  send(TCP_FLAGS.ACK, new Uint8Array(0));
  let head = `GET /parked/${i} HTTP/1.1\r\nHost: parked.example.test\r\n`;
  for (let f = 0; head.length < headBytes; f++) head += `X-Parked-${f}: ${'v'.repeat(200)}\r\n`;
  const bytes = ascii(head.slice(0, headBytes));
  for (let at = 0; at < bytes.length; at += SEGMENT_BYTES) send(TCP_FLAGS.ACK | TCP_FLAGS.PSH, bytes.subarray(at, at + SEGMENT_BYTES));
  return packets;
}

/**
 * Synthetic mirror-port traffic for the system tests: N complete HTTP/1.1 conversations (handshake,
 * one GET whose search terms carry a dictionary phrase, a 200 answer, FIN both ways), each from its
 * own client port, as an Ethernet pcap. Every conversation gives exactly one typed capture with the
 * starter dictionary ("AK47" in the query) whose URL names the conversation, so counts are exact.
 */
import { ascii, ETHERTYPE, ethernet, IPPROTO, ipv4, tcp, TCP_FLAGS } from './packets.js';
import { writePcap, type PcapPacket } from './pcap-writer.js';

export interface HttpTrafficOptions {
  /** Conversations to generate. */
  readonly conversations: number;
  /** Added to the client port and the URL so several files do not repeat each other. */
  readonly offset?: number;
  /** The phrase put in each query (default "ak47", category weapons in the starter dictionary). */
  readonly phrase?: string;
  /** The answer repeats the phrase too: each conversation then gives a viewed capture as well. */
  readonly echo?: boolean;
  /** Microseconds between packets (default 200). */
  readonly gapUs?: number;
  /**
   * Each conversation is made this many times (default 1), each time on a new connection from the
   * same device to the same URL: within a merge window the repeats are one capture, not several.
   */
  readonly repeats?: number;
}

/** The URL path of conversation `i` (what its capture's `url` starts with). */
export function conversationPath(i: number): string {
  return `/search?q=buy+ak47+number+${i}`;
}

export function httpTrafficPcap(o: HttpTrafficOptions): Buffer {
  return writePcap(httpTrafficPackets(o));
}

/** The same conversations as packets, each marked with the side that sent it (to split a TAP's two outputs). */
export function httpTrafficPackets(o: HttpTrafficOptions): Array<PcapPacket & { fromClient: boolean }> {
  const packets: Array<PcapPacket & { fromClient: boolean }> = [];
  let ts = 1_700_000_000_000_000;
  const off = o.offset ?? 0;
  for (let k = 0; k < o.conversations; k++) {
    for (let r = 0; r < (o.repeats ?? 1); r++) {
      const i = off + k;
      const client = `10.20.${(i >> 8) & 0xff}.${(i & 0xff) + 1 > 254 ? 254 : (i & 0xff) + 1}`;
      const server = '192.0.2.80';
      // each repeat on a client port of its own (the device and URL stay the same)
      const sport = 20000 + ((i + r * 7919) % 40000);
      let cseq = 1000;
      let sseq = 9000;
      const send = (fromClient: boolean, flags: number, text: string): void => {
        const seg = tcp({ sport: fromClient ? sport : 80, dport: fromClient ? 80 : sport, seq: fromClient ? cseq : sseq, ack: fromClient ? sseq : cseq, flags }, ascii(text));
        const frame = ethernet({ type: ETHERTYPE.IPV4, src: fromClient ? '02:00:00:00:00:01' : '02:00:00:00:00:02', dst: fromClient ? '02:00:00:00:00:02' : '02:00:00:00:00:01' },
          ipv4({ proto: IPPROTO.TCP, src: fromClient ? client : server, dst: fromClient ? server : client }, seg));
        ts += o.gapUs ?? 200;
        packets.push({ data: frame, tsUs: ts, fromClient });
        const adv = text.length + (flags & (TCP_FLAGS.SYN | TCP_FLAGS.FIN) ? 1 : 0);
        if (fromClient) cseq += adv;
        else sseq += adv;
      };
      const body = o.echo === true ? `<html><body><p>Results for ${o.phrase ?? 'ak47'} number ${i}</p></body></html>` : '<html><body><p>Nothing to see here.</p></body></html>';
      const query = (o.phrase ?? 'ak47') === 'ak47' ? conversationPath(i) : `/search?q=${encodeURIComponent(o.phrase!)}+number+${i}`;
      send(true, TCP_FLAGS.SYN, '');
      send(false, TCP_FLAGS.SYN | TCP_FLAGS.ACK, '');
      send(true, TCP_FLAGS.ACK, '');
      send(true, TCP_FLAGS.ACK | TCP_FLAGS.PSH, `GET ${query} HTTP/1.1\r\nHost: search.example.test\r\nUser-Agent: hark-test\r\n\r\n`);
      send(false, TCP_FLAGS.ACK | TCP_FLAGS.PSH, `HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      send(true, TCP_FLAGS.FIN | TCP_FLAGS.ACK, '');
      send(false, TCP_FLAGS.FIN | TCP_FLAGS.ACK, '');
      send(true, TCP_FLAGS.ACK, '');
    }
  }
  return packets;
}

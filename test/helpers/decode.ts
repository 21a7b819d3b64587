/**
 * Decode-stage test helpers: run one frame (or a sequence) through a fresh `Decoder` and read back
 * the anomaly counters and the decoded fields in comparable form (text addresses, payload bytes).
 * Anomaly expectations compare the whole anomaly snapshot, so an extra anomaly fails the test.
 */
import { Counters } from '../../sensor/events/counters.js';
import { Decoder } from '../../sensor/decode/decoder.js';
import { Defragmenter, type DefragLimits } from '../../sensor/decode/ip-fragments.js';
import { formatIpv4, formatIpv6, type Packet } from '../../sensor/decode/packet.js';

export interface DecodeResult {
  /** decodeFrame's return value: the packet reached TCP or UDP. */
  ok: boolean;
  p: Packet;
  counters: Counters;
  decoder: Decoder;
  /** Non-zero anomaly counters by dotted name (cumulative when a `decoder` is passed in). */
  anomalies: Record<string, number>;
}

/** A decoder with its own counters (and defragmenter limits when given). */
export function newDecoder(limits?: DefragLimits): Decoder {
  const counters = new Counters();
  return new Decoder(counters, limits === undefined ? undefined : new Defragmenter(counters, limits));
}

/** Decodes one frame with a fresh decoder (or `decoder`, to continue a sequence). */
export function decodeOne(frame: Uint8Array, linkType = 1, opts: { tsUs?: number; decoder?: Decoder; ifIndex?: number } = {}): DecodeResult {
  const decoder = opts.decoder ?? newDecoder();
  const ok = decoder.decodeFrame(linkType, frame, 0, frame.length, opts.tsUs ?? 0, opts.ifIndex ?? 0);
  return { ok, p: decoder.packet, counters: decoder.counters, decoder, anomalies: decoder.counters.snapshot('anomaly') };
}

/** Decodes frames in order with one decoder; returns the result of the last. */
export function decodeAll(frames: Uint8Array[], linkType = 1, decoder: Decoder = newDecoder()): DecodeResult {
  let r: DecodeResult | undefined;
  frames.forEach((f, i) => {
    r = decodeOne(f, linkType, { decoder, tsUs: i });
  });
  if (r === undefined) throw new Error('decodeAll needs at least one frame');
  return r;
}

export function srcAddr(p: Packet): string {
  return p.ipVersion === 6 ? formatIpv6(p.addr, 0) : formatIpv4(p.addr[0]);
}

export function dstAddr(p: Packet): string {
  return p.ipVersion === 6 ? formatIpv6(p.addr, 4) : formatIpv4(p.addr[4]);
}

/** A copy of the transport payload window `buf[payloadOff, payloadOff + payloadLen)`. */
export function payloadOf(p: Packet): Buffer {
  return Buffer.from(p.buf.subarray(p.payloadOff, p.payloadOff + p.payloadLen));
}

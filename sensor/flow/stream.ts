/**
 * Stream consumer contract: what the flow stage hands to the app layer.
 * The flow table asks a `StreamFactory` for one consumer per flow when the flow is created, then
 * calls, for each direction independently and in stream order: `data` (ordered bytes) and `gap`
 * (bytes that were lost), and finally `end` once. No call follows `end`.
 * Direction 0 is the originator (client -> server), 1 the responder (server -> client).
 */

export type Direction = 0 | 1;

export type CloseReason = 'fin' | 'rst' | 'timeout' | 'memcap' | 'port_reuse' | 'eof';

/** What a consumer may know about its flow. Addresses are printable strings. */
export interface FlowInfo {
  /** Stable for the same input: derived from the 5-tuple, VLANs and first timestamp. */
  readonly flowId: number;
  readonly proto: number; // 6 TCP, 17 UDP
  readonly srcIp: string; // originator
  readonly srcPort: number;
  readonly dstIp: string; // responder
  readonly dstPort: number;
  readonly vlan: readonly number[];
  /** The originator's Ethernet source address as first seen (the device, or its router), when known. */
  readonly srcMac?: string;
  /** Microseconds since the epoch of the first packet. */
  readonly startUs: number;
  /**
   * TCP picked up midstream: the flow's first packet was not its SYN (the sensor started, or the
   * capture lost it), so its streams may begin inside a message. Absent otherwise.
   */
  readonly midstream?: boolean;
}

/**
 * What `data` or `gap` returns to say that nothing more can be learned from the flow (an unknown
 * protocol, TLS that will not be decrypted): the flow table then bypasses it. Its later packets
 * still count and still close it, but are neither reassembled nor delivered; `end` still comes,
 * with the stream bytes that went by undelivered. Returning nothing (or false) asks for more.
 */
export const BYPASS = true;

/** Stream bytes (sequence space) of each direction that went by after the flow was bypassed. */
export type BypassedBytes = readonly [number, number];

export interface StreamConsumer {
  /** In-order bytes. `bytes` is a view into a reused buffer, valid only during the call: copy to keep. */
  data(dir: Direction, bytes: Uint8Array, tsUs: number): boolean | void;
  /** `len` bytes of this direction were never seen; the next `data` follows the hole. */
  gap(dir: Direction, len: number, tsUs: number): boolean | void;
  /** The flow is over. `bypassed`: it was bypassed (see BYPASS), with what went by since. */
  end(reason: CloseReason, tsUs: number, bypassed?: BypassedBytes): void;
}

export interface StreamFactory {
  /** A consumer for a new TCP flow, or undefined to ignore its bytes (the flow is then bypassed). */
  open(flow: FlowInfo): StreamConsumer | undefined;
}

/** UDP: one call per datagram, in capture order. */
export interface DatagramSink {
  datagram(flow: FlowInfo, dir: Direction, payload: Uint8Array, tsUs: number): void;
}

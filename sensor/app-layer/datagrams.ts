/**
 * UDP dispatch: which app-layer handler gets a datagram. Input: each UDP datagram with its flow.
 * Output: the datagram handed to the handler registered for the flow's responder port, else for
 * its originator port (a reply seen first), else counted as unclaimed. UDP has no handshake to
 * probe, so well-known ports decide, as in Suricata's and Zeek's UDP analyzers.
 */
import { Counters, defineCounter } from '../events/counters.js';
import type { DatagramSink, Direction, FlowInfo } from '../flow/stream.js';

export interface DatagramProtocol {
  readonly name: string;
  readonly ports: readonly number[];
  readonly sink: DatagramSink;
  /** Told when a flow it handled ends, to drop per-flow state. */
  readonly flowEnded?: (flowId: number) => void;
}

const C_UNCLAIMED = defineCounter('app_layer.udp_unclaimed');
const byteCounters = new Map<string, number>();

export class DatagramDispatcher implements DatagramSink {
  private readonly byPort = new Map<number, { p: DatagramProtocol; bytes: number }>();

  constructor(protocols: readonly DatagramProtocol[], private readonly counters: Counters) {
    for (const p of protocols) {
      let bytes = byteCounters.get(p.name);
      if (bytes === undefined) {
        bytes = defineCounter(`app_layer.udp_bytes.${p.name}`);
        byteCounters.set(p.name, bytes);
      }
      for (const port of p.ports) if (!this.byPort.has(port)) this.byPort.set(port, { p, bytes });
    }
  }

  datagram(flow: FlowInfo, dir: Direction, payload: Uint8Array, tsUs: number): void {
    const e = this.byPort.get(flow.dstPort) ?? this.byPort.get(flow.srcPort);
    if (e === undefined) {
      this.counters.inc(C_UNCLAIMED);
      return;
    }
    this.counters.inc(e.bytes, payload.length);
    e.p.sink.datagram(flow, dir, payload, tsUs);
  }

  /** A UDP flow ended: handlers drop its state. */
  flowEnded(flow: FlowInfo): void {
    if (flow.proto !== 17) return;
    const e = this.byPort.get(flow.dstPort) ?? this.byPort.get(flow.srcPort);
    e?.p.flowEnded?.(flow.flowId);
  }
}

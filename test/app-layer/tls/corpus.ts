/**
 * Test support for the TLS parsing tests: replays a capture from test/fixtures/tls/ through the real
 * pipeline (test/helpers/replay.ts) and hands back, per TCP flow that starts with TLS, each direction's
 * reassembled bytes, its records and its plaintext handshake messages (handshake records before that
 * direction's first ChangeCipherSpec; TLS 1.3 protected records have the outer type 23 and are not fed).
 */
import { fixture, replay } from '../../helpers/replay.js';
import { Counters } from '../../../sensor/events/counters.js';
import type { FlowInfo } from '../../../sensor/flow/stream.js';
import { CONTENT_TYPE_CHANGE_CIPHER_SPEC, CONTENT_TYPE_HANDSHAKE, TlsRecordReader } from '../../../sensor/app-layer/tls/record.js';
import { HandshakeReassembler, type HandshakeMessage } from '../../../sensor/app-layer/tls/handshake.js';

export interface RecordSummary {
  readonly type: number;
  readonly version: number;
  readonly length: number;
}

export interface TlsFlow {
  readonly info: FlowInfo;
  readonly streams: [Buffer, Buffer];
  readonly records: [RecordSummary[], RecordSummary[]];
  readonly messages: [HandshakeMessage[], HandshakeMessage[]];
  readonly counters: Counters;
}

export function tlsFlows(name: string): TlsFlow[] {
  const out: TlsFlow[] = [];
  for (const f of replay(fixture('tls', name)).flows) {
    const streams: [Buffer, Buffer] = [Buffer.from(f.streams[0], 'latin1'), Buffer.from(f.streams[1], 'latin1')];
    if (streams[0][0] !== CONTENT_TYPE_HANDSHAKE) continue; // midstream pickups and empty flows
    const counters = new Counters();
    const flow: TlsFlow = { info: f.info, streams, records: [[], []], messages: [[], []], counters };
    for (const dir of [0, 1] as const) {
      const reader = new TlsRecordReader(counters);
      const reassembler = new HandshakeReassembler(counters);
      let clear = true;
      const r = reader.push(streams[dir], 0, (rec) => {
        flow.records[dir].push({ type: rec.type, version: rec.version, length: rec.fragment.length });
        if (rec.type === CONTENT_TYPE_CHANGE_CIPHER_SPEC) clear = false;
        if (clear && rec.type === CONTENT_TYPE_HANDSHAKE) {
          if (reassembler.push(rec.fragment, (m) => flow.messages[dir].push(m)) !== 'ok') throw new Error(`${name}: handshake invalid`);
        }
      });
      if (r !== 'ok') throw new Error(`${name}: records invalid in direction ${dir}`);
    }
    out.push(flow);
  }
  return out;
}

export function messagesOfType(flows: readonly TlsFlow[], dir: 0 | 1, type: number): HandshakeMessage[] {
  return flows.flatMap((f) => f.messages[dir].filter((m) => m.type === type));
}

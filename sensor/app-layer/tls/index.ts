/**
 * App layer, TLS: protocol probe and session factory for the detection stage.
 * Input: the first bytes of each direction. Output: `TlsSession`s for flows judged TLS (a
 * handshake record starting with a ClientHello or ServerHello, never a guess on fewer bytes), and
 * for a stream picked up midstream, a chain of record headers (`TlsStartTracker`).
 */
import type { Direction, FlowInfo } from '../../flow/stream.js';
import { probeTls, TlsStartTracker } from './record.js';
import { TlsSession, type TlsSessionContext } from './session.js';

export { TlsSession, PendingBudget, TLS_KEY_WAIT_US, type TlsKeySources, type TlsSessionContext } from './session.js';
export { probeTls, TlsStartTracker } from './record.js';

/** The descriptor the protocol detector registers. */
export function tlsAppLayer(ctx: TlsSessionContext) {
  return { name: 'tls', probe: probeTls, trackStart: (_dir: Direction) => new TlsStartTracker(), create: (flow: FlowInfo) => new TlsSession(flow, ctx) } as const;
}

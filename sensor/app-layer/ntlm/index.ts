/**
 * App layer, NTLM authentication seen in HTTP (or any carrier that hands over NTLMSSP bytes):
 * AUTHENTICATE (type 3) messages -> identity observations (source `ntlm`).
 * Input: an HTTP request's headers (`Authorization`, `Proxy-Authorization`) or raw NTLMSSP bytes with
 * the flow and direction. Output: { ip: the sender, user, domain, hostname: the workstation } to a sink.
 * Anonymous logons bind nothing; a user name ending in `$` is a machine account (a host name).
 */

import type { Direction, FlowInfo } from '../../flow/stream.js';
import { Counters, defineCounter } from '../../events/counters.js';
import type { IdentityObservation, IdentitySink } from '../../identity/observation.js';
import { isNtlmError, ntlmFromAuthorizationHeader, parseNtlmMessage, type NtlmAuthenticate } from './parser.js';

export * from './parser.js';

const C_MESSAGES = defineCounter('ntlm.messages');
const C_AUTHENTICATE = defineCounter('ntlm.authenticate');
const C_ANONYMOUS = defineCounter('ntlm.anonymous');
const C_OBSERVATIONS = defineCounter('ntlm.identity_observations');

/** Observation for one AUTHENTICATE message sent from `clientIp`, or undefined (anonymous, no names). */
export function ntlmObservation(m: NtlmAuthenticate, clientIp: string, tsUs: number): IdentityObservation | undefined {
  if (m.anonymous || m.user === '') return undefined;
  const machine = m.user.length > 1 && m.user.endsWith('$');
  const hostname = machine ? m.user.slice(0, -1) : m.workstation !== '' ? m.workstation : undefined;
  return {
    ip: clientIp,
    ...(machine ? {} : { user: m.user }),
    ...(hostname !== undefined ? { hostname } : {}),
    ...(m.domain !== '' ? { domain: m.domain } : {}),
    source: 'ntlm',
    tsUs,
  };
}

/** The request fields this needs (an HttpRequest from sensor/app-layer/http fits). */
export interface HttpRequestLike {
  readonly flow: FlowInfo;
  readonly headers: readonly (readonly [string, string])[];
  readonly tsUs: number;
}

export class NtlmIdentity {
  constructor(private readonly sink: IdentitySink, private readonly counters: Counters) {}

  /** NTLMSSP bytes sent in direction `dir` of `flow`. */
  message(flow: FlowInfo, dir: Direction, bytes: Uint8Array, tsUs: number): void {
    const r = parseNtlmMessage(bytes);
    if (isNtlmError(r)) {
      this.counters.inc(r.anomaly);
      return;
    }
    this.counters.inc(C_MESSAGES);
    for (const a of r.anomalies) this.counters.inc(a);
    if (r.type !== 3) return;
    this.counters.inc(C_AUTHENTICATE);
    const obs = ntlmObservation(r, dir === 0 ? flow.srcIp : flow.dstIp, tsUs);
    if (obs === undefined) {
      this.counters.inc(C_ANONYMOUS);
      return;
    }
    this.counters.inc(C_OBSERVATIONS);
    this.sink.observe(obs);
  }

  /** One HTTP request header value (`Authorization` / `Proxy-Authorization`), sent by the client. */
  authorizationHeader(flow: FlowInfo, value: string, tsUs: number): void {
    const bytes = ntlmFromAuthorizationHeader(value);
    if (bytes !== undefined) this.message(flow, 0, bytes, tsUs);
  }

  /** Call from an HttpSink's onRequest. */
  onHttpRequest(req: HttpRequestLike): void {
    for (const [name, value] of req.headers) {
      const n = name.toLowerCase();
      if (n === 'authorization' || n === 'proxy-authorization') this.authorizationHeader(req.flow, value, req.tsUs);
    }
  }
}

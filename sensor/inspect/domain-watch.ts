/**
 * The domain policy applied to names users reach for: DNS queries, TLS and QUIC server names, HTTP
 * Host headers. Input: those names with their flow and time. Output: a `dns` policy event per
 * match (which list, category and threat level, and the device that asked), counted per place.
 */
import type { DnsQuery } from '../app-layer/dns/index.js';
import type { HttpRequest } from '../app-layer/http/index.js';
import { dnsPolicyEvent, type DnsPolicyEvent, type PolicyMatchedOn } from '../events/dns.js';
import { Counters, defineCounter } from '../events/counters.js';
import type { FlowInfo } from '../flow/stream.js';
import type { DomainPolicy } from '../policy/domain-policy.js';
import { deviceOf, type CaptureAttribution } from './captures.js';

const C_MATCHES = defineCounter('policy.domain_matches');

export class DomainWatch {
  constructor(
    private readonly policy: DomainPolicy,
    private readonly attribution: CaptureAttribution,
    private readonly emit: (event: DnsPolicyEvent) => void,
    private readonly counters: Counters,
  ) {}

  /** A DNS query (mDNS and LLMNR are local names: not checked). */
  query(q: DnsQuery): void {
    if (q.service !== 'dns' || q.lname === undefined) return;
    this.check(q.flow, q.tsUs, q.lname, 'dns_query', 'dns', { rrname: q.lname, rrtype: q.qtype ?? 0 });
  }

  sni(flow: FlowInfo, tsUs: number, name: string, quic: boolean): void {
    this.check(flow, tsUs, name, quic ? 'quic_sni' : 'tls_sni', quic ? 'quic' : 'tls');
  }

  request(req: HttpRequest): void {
    if (req.host !== undefined) this.check(req.flow, req.tsUs, req.host, 'http_host', req.version === 'HTTP/2' ? 'http2' : 'http');
  }

  private check(flow: FlowInfo, tsUs: number, name: string, on: PolicyMatchedOn, appProto: DnsPolicyEvent['app_proto'], query?: { rrname: string; rrtype: number }): void {
    const m = this.policy.match(name);
    if (m === undefined) return;
    const side = this.attribution.userSide?.(flow.srcIp, flow.dstIp) ?? 'src';
    if (side === 'ignore') return;
    this.counters.inc(C_MATCHES);
    const policy = { matched_on: on, name: name.toLowerCase(), domain: m.domain, category: m.category, threat_level: m.threatLevel, list: m.list };
    this.emit(dnsPolicyEvent(flow, tsUs, appProto, policy, deviceOf(flow, side, tsUs, this.attribution), query));
  }
}

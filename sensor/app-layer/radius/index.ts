/**
 * App layer, RADIUS (UDP 1812/1813, legacy 1645/1646): datagrams -> identity observations.
 * Input: UDP payloads with their flow. Output: `IdentityObservation`s (source `radius`) to a sink.
 *  Accounting-Request Start / Interim-Update: Framed-IP(v6)-Address <-> Calling-Station-Id MAC and
 *    User-Name (how Wi-Fi controllers announce who holds which address); Stop: the address is released.
 *  Access-Request: remembered (bounded, by flow + identifier) until its answer. Access-Accept: the user
 *    (the Accept's User-Name, else the Request's) is bound to the Accept's Framed-IP-Address, else to the
 *    Request's Calling-Station-Id MAC. A Request alone binds nothing: its IP header names the NAS, not
 *    the user, it carries no Framed-IP, and the credentials may yet be rejected.
 * User names: `DOMAIN\user` is split; `host/name` (machine authentication) is a host name; a MAC as
 * user name (MAC authentication bypass) and EAP outer identities (`anonymous...`) are not users.
 */

import type { Direction, FlowInfo, DatagramSink } from '../../flow/stream.js';
import { Counters, defineCounter } from '../../events/counters.js';
import { normaliseMac } from '../../identity/address.js';
import type { IdentityObservation, IdentitySink } from '../../identity/observation.js';
import { isRadiusError, parseRadius, type RadiusPacket } from './parser.js';

export * from './parser.js';

export const RADIUS_PORTS: readonly number[] = [1812, 1813, 1645, 1646];

/** Access-Requests awaiting an answer: a busy NAS has a few hundred in flight; oldest dropped beyond. */
export const MAX_PENDING_ACCESS_REQUESTS = 4096;
/** An answer later than this is not paired (RFC 5080 §2.2.1: clients retransmit within seconds). */
export const PENDING_ACCESS_REQUEST_TIMEOUT_US = 30_000_000;

const C_PACKETS = defineCounter('radius.packets');
const C_OBSERVATIONS = defineCounter('radius.identity_observations');
const C_PENDING_OVERFLOW = defineCounter('radius.pending_requests_overflow');
const C_ACCEPT_UNPAIRED = defineCounter('radius.accept_unpaired');
const C_REJECT = defineCounter('radius.access_reject');
const C_USER_UNBOUND = defineCounter('radius.user_unbound');
const C_NOT_A_USER = defineCounter('radius.user_name_not_a_person');
const C_ACCT_ON_OFF = defineCounter('radius.accounting_on_off');

const SECOND_US = 1_000_000;

export interface RadiusUserName {
  readonly user?: string;
  readonly domain?: string;
  readonly hostname?: string;
}

/** What a User-Name says about a person or a machine (see the file header). */
export function interpretUserName(name: string): RadiusUserName {
  if (normaliseMac(name) !== undefined) return {};
  if (/^anonymous($|@)/i.test(name) || name.startsWith('@')) return {};
  if (/^host\//i.test(name)) {
    const host = name.slice(5);
    return host.length > 0 ? { hostname: host } : {};
  }
  const bs = name.indexOf('\\');
  if (bs > 0 && bs < name.length - 1) return { domain: name.slice(0, bs), user: name.slice(bs + 1) };
  return { user: name };
}

interface Pending {
  user?: string;
  mac?: string;
  tsUs: number;
}

export class RadiusIdentity implements DatagramSink {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly sink: IdentitySink, private readonly counters: Counters) {}

  datagram(flow: FlowInfo, _dir: Direction, payload: Uint8Array, tsUs: number): void {
    const r = parseRadius(payload);
    if (isRadiusError(r)) {
      this.counters.inc(r.anomaly);
      return;
    }
    this.counters.inc(C_PACKETS);
    for (const a of r.anomalies) this.counters.inc(a);
    const key = `${flow.flowId}:${r.identifier}`;
    switch (r.code) {
      case 1: { // Access-Request
        if (this.pending.has(key)) this.pending.delete(key);
        else if (this.pending.size >= MAX_PENDING_ACCESS_REQUESTS) {
          this.pending.delete(this.pending.keys().next().value as string);
          this.counters.inc(C_PENDING_OVERFLOW);
        }
        this.pending.set(key, { user: r.userName, mac: r.callingStationMac, tsUs });
        break;
      }
      case 2: { // Access-Accept
        const req = this.pending.get(key);
        this.pending.delete(key);
        const fresh = req !== undefined && tsUs - req.tsUs <= PENDING_ACCESS_REQUEST_TIMEOUT_US ? req : undefined;
        if (fresh === undefined) this.counters.inc(C_ACCEPT_UNPAIRED);
        this.bind(r, r.userName ?? fresh?.user, r.callingStationMac ?? fresh?.mac, tsUs, false);
        break;
      }
      case 3: // Access-Reject
        this.pending.delete(key);
        this.counters.inc(C_REJECT);
        break;
      case 4: { // Accounting-Request
        const st = r.acctStatusType;
        if (st === 1 || st === 3) this.bind(r, r.userName, r.callingStationMac, tsUs, false);
        else if (st === 2) this.bind(r, r.userName, r.callingStationMac, tsUs, true);
        else if (st === 7 || st === 8) this.counters.inc(C_ACCT_ON_OFF);
        break;
      }
      default:
        break;
    }
  }

  private bind(r: RadiusPacket, userName: string | undefined, mac: string | undefined, tsUs: number, release: boolean): void {
    const who = userName === undefined ? {} : interpretUserName(userName);
    if (userName !== undefined && who.user === undefined && who.hostname === undefined) this.counters.inc(C_NOT_A_USER);
    const names = {
      ...(who.user !== undefined ? { user: who.user } : {}),
      ...(who.domain !== undefined ? { domain: who.domain } : {}),
      ...(who.hostname !== undefined ? { hostname: who.hostname } : {}),
    };
    const macPart = mac !== undefined ? { mac } : {};
    const expires = r.sessionTimeoutSeconds !== undefined && r.sessionTimeoutSeconds > 0
      ? { expiresUs: tsUs + r.sessionTimeoutSeconds * SECOND_US } : {};
    const out: IdentityObservation[] = [];
    const says = Object.keys(names).length > 0 || mac !== undefined;
    for (const ip of [r.framedIp, r.framedIpv6]) {
      if (ip === undefined || (!release && !says)) continue;
      out.push(release ? { ip, ...macPart, source: 'radius', tsUs, release: true }
        : { ip, ...macPart, ...names, source: 'radius', tsUs, ...expires });
    }
    if (out.length === 0 && mac !== undefined && (release || Object.keys(names).length > 0)) {
      out.push(release ? { mac, source: 'radius', tsUs, release: true } : { mac, ...names, source: 'radius', tsUs, ...expires });
    }
    if (out.length === 0) {
      if (Object.keys(names).length > 0) this.counters.inc(C_USER_UNBOUND);
      return;
    }
    for (const o of out) {
      this.counters.inc(C_OBSERVATIONS);
      this.sink.observe(o);
    }
  }
}

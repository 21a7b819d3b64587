/**
 * Identity table: IP -> { MAC, hostname, user, domain }, each value with its source, first / last seen
 * and expiry. Input: `IdentityObservation`s from passive parsers and administrative sources.
 * Output: `lookup(ip, tsUs)`, the identity valid AT a timestamp (with which source said each value),
 * and `snapshot()` for printing. Bounded: MAX_IPS / MAX_MACS records (LRU by observation), a short
 * history per field, a static section of MAX_STATIC_ADDRESSES that is never evicted.
 *
 * Conflict policy (per field, per address; SOURCE_STRENGTH in observation.ts, strongest first:
 * static > api > radius > kerberos = ntlm > dhcp = dhcpv6 > netbios = mdns > dns-ptr):
 *  - A value is valid from its first observation until the earliest of its expiry (the lease, TTL, or
 *    the source's DEFAULT_TTL_US), a release of the address, or its replacement.
 *  - A newer observation from an equal or stronger source replaces the value valid at that time (the old
 *    one ends there and stays in the history); the same value refreshes it (last seen, and expiry and
 *    source when the confirming source is at least as strong).
 *  - A weaker source fills an empty (or expired / ended) field only; otherwise it is ignored and counted.
 *  - MAC-keyed facts (a DHCP host name by chaddr, a RADIUS user by Calling-Station-Id) reach an IP
 *    through the IP's MAC binding valid at the lookup time. When the IP and its MAC both hold a value,
 *    the stronger source wins, then the more recent first sighting.
 *  - When an IP's MAC binding is replaced by another MAC (a new device), the IP's own names end too.
 *  - A release (DHCP RELEASE, RADIUS Stop) ends every non-administrative value of the IP at that time,
 *    unless it names a MAC other than the one the IP is bound to (a stale release is ignored), and ends
 *    the releasing source's values on that MAC.
 *  - Observations older than the field's newest value are ignored (counted), except a same-value one,
 *    which moves the first sighting back.
 * Static (CSV) facts live in their own section, never evicted, and beat everything (they are the
 * strongest source), valid from their `tsUs` (0 for a file) for ever.
 */

import { Counters, defineCounter } from '../events/counters.js';
import { normaliseIp, normaliseMac } from './address.js';
import {
  DEFAULT_TTL_US, SOURCE_STRENGTH, cleanIdentityText, isAdministrative,
  type IdentityObservation, type IdentitySink, type IdentitySource,
} from './observation.js';

/** IP addresses tracked: a /16 of clients, far above a school site's few thousand; LRU beyond. */
export const MAX_IPS = 65_536;
/** Devices (MACs) tracked for MAC-keyed facts; LRU beyond. */
export const MAX_MACS = 65_536;
/** Values kept per field per address: enough to answer for a capture processed after a lease change or
 * two; the oldest is dropped beyond. */
export const MAX_HISTORY_PER_FIELD = 8;
/** Addresses in the static section (a CSV export of a whole district fits). */
export const MAX_STATIC_ADDRESSES = 200_000;

const C_OBSERVATIONS = defineCounter('identity.observations');
const C_INVALID = defineCounter('identity.observation_invalid');
const C_RELEASE = defineCounter('identity.release');
const C_RELEASE_MISMATCH = defineCounter('identity.release_mac_mismatch');
const C_REPLACED = defineCounter('identity.conflict_replaced');
const C_WEAKER_IGNORED = defineCounter('identity.conflict_weaker_ignored');
const C_OUT_OF_ORDER = defineCounter('identity.out_of_order');
const C_IP_EVICTED = defineCounter('identity.ip_evicted');
const C_MAC_EVICTED = defineCounter('identity.mac_evicted');
const C_HISTORY_TRIMMED = defineCounter('identity.history_trimmed');
const C_STATIC_FULL = defineCounter('identity.static_full');

export type IdentityField = 'mac' | 'hostname' | 'user' | 'domain';
const FIELDS: readonly IdentityField[] = ['mac', 'hostname', 'user', 'domain'];
const F_MAC = 0;
const NAME_FIELDS = [1, 2, 3] as const;

/** One value of one field as the table holds it. Times in microseconds since the epoch. */
export interface IdentityValue {
  readonly value: string;
  readonly source: IdentitySource;
  readonly firstUs: number;
  readonly lastUs: number;
  /** Infinity: never expires. */
  readonly expiresUs: number;
  /** When a release or a replacement ended it; Infinity while not ended. */
  readonly endedUs: number;
}

interface Claim {
  value: string;
  key: string; // lower-cased value: names compare case-insensitively
  source: IdentitySource;
  strength: number;
  firstUs: number;
  lastUs: number;
  expiresUs: number;
  endedUs: number;
}

class Rec {
  readonly claims: Claim[][] = [[], [], [], []];
  firstUs = Infinity;
  lastUs = -Infinity;
}

/** The identity valid for one IP at one time. */
export interface IdentityAt {
  readonly ip: string;
  readonly mac?: string;
  readonly hostname?: string;
  readonly user?: string;
  readonly domain?: string;
  /** Which source said each value present. */
  readonly sources: Readonly<Partial<Record<IdentityField, IdentitySource>>>;
}

export interface IdentityEntry {
  readonly key: string;
  /** The value of each field valid at the snapshot time, with its provenance. */
  readonly current: Readonly<Partial<Record<IdentityField, IdentityValue>>>;
  /** Every value the table still holds for this address (its own, not those joined from the MAC), oldest first. */
  readonly history: readonly (IdentityValue & { readonly field: IdentityField })[];
}

export interface IdentitySnapshot {
  readonly atUs: number;
  readonly ips: readonly IdentityEntry[];
  /** Devices with MAC-keyed facts. */
  readonly macs: readonly IdentityEntry[];
}

function isValidAt(c: Claim, ts: number): boolean {
  return c.firstUs <= ts && ts < c.expiresUs && ts < c.endedUs;
}

function validAt(claims: readonly Claim[], ts: number): Claim | undefined {
  for (let i = claims.length - 1; i >= 0; i--) if (isValidAt(claims[i], ts)) return claims[i];
  return undefined;
}

/** The better of two candidate values: stronger source, then the more recent first sighting. */
function better(a: Claim | undefined, b: Claim | undefined): Claim | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  if (a.strength !== b.strength) return a.strength > b.strength ? a : b;
  return b.firstUs > a.firstUs ? b : a;
}

function publicValue(c: Claim): IdentityValue {
  return { value: c.value, source: c.source, firstUs: c.firstUs, lastUs: c.lastUs, expiresUs: c.expiresUs, endedUs: c.endedUs };
}

const byAddress = new Intl.Collator('en', { numeric: true });

export class IdentityTable implements IdentitySink {
  private readonly byIp = new Map<string, Rec>();
  private readonly byMac = new Map<string, Rec>();
  private readonly staticByIp = new Map<string, Rec>();
  private readonly staticByMac = new Map<string, Rec>();
  private latestUs = -Infinity;

  constructor(
    private readonly counters: Counters = new Counters(),
    private readonly limits: { maxIps?: number; maxMacs?: number } = {},
  ) {}

  get size(): { ips: number; macs: number; staticAddresses: number } {
    return { ips: this.byIp.size, macs: this.byMac.size, staticAddresses: this.staticByIp.size + this.staticByMac.size };
  }

  observe(obs: IdentityObservation): void {
    this.counters.inc(C_OBSERVATIONS);
    const ip = obs.ip === undefined ? undefined : normaliseIp(obs.ip);
    const mac = obs.mac === undefined ? undefined : normaliseMac(obs.mac);
    const ts = obs.tsUs;
    if ((ip === undefined && mac === undefined) || (obs.ip !== undefined && ip === undefined)
      || (obs.mac !== undefined && mac === undefined) || !Number.isFinite(ts) || SOURCE_STRENGTH[obs.source] === undefined) {
      this.counters.inc(C_INVALID);
      return;
    }
    if (ts > this.latestUs) this.latestUs = ts;
    if (obs.release === true) {
      this.release(ip, mac, obs.source, ts);
      return;
    }
    const until = obs.expiresUs ?? ts + DEFAULT_TTL_US[obs.source];
    const names: (string | undefined)[] = [
      undefined,
      obs.hostname === undefined ? undefined : cleanIdentityText(obs.hostname),
      obs.user === undefined ? undefined : cleanIdentityText(obs.user),
      obs.domain === undefined ? undefined : cleanIdentityText(obs.domain),
    ];
    const isStatic = obs.source === 'static';
    if (ip !== undefined) {
      const rec = isStatic ? this.staticRec(this.staticByIp, ip) : this.touch(this.byIp, ip, this.limits.maxIps ?? MAX_IPS, C_IP_EVICTED);
      if (rec !== undefined) {
        if (mac !== undefined && this.apply(rec, F_MAC, mac, obs.source, ts, until)) this.deviceChanged(rec, ts);
        for (const f of NAME_FIELDS) if (names[f] !== undefined) this.apply(rec, f, names[f] as string, obs.source, ts, until);
      }
    }
    if (mac !== undefined && (names[1] !== undefined || names[2] !== undefined || names[3] !== undefined)) {
      const rec = isStatic ? this.staticRec(this.staticByMac, mac) : this.touch(this.byMac, mac, this.limits.maxMacs ?? MAX_MACS, C_MAC_EVICTED);
      if (rec !== undefined) {
        for (const f of NAME_FIELDS) if (names[f] !== undefined) this.apply(rec, f, names[f] as string, obs.source, ts, until);
      }
    }
  }

  /**
   * The identity of `ip` (canonical text, as FlowInfo prints it) valid at `tsUs`, or undefined when
   * nothing is known then. Reading does not refresh the LRU order.
   */
  lookup(ip: string, tsUs: number): IdentityAt | undefined {
    const found = this.resolve(ip, tsUs);
    if (found === undefined) return undefined;
    const out: { ip: string; mac?: string; hostname?: string; user?: string; domain?: string; sources: Partial<Record<IdentityField, IdentitySource>> } = { ip, sources: {} };
    for (let f = 0; f < 4; f++) {
      const c = found[f];
      if (c === undefined) continue;
      out[FIELDS[f]] = c.value;
      out.sources[FIELDS[f]] = c.source;
    }
    return out;
  }

  /** Every address and device with its values valid at `atUs` (default: the newest observation time). */
  snapshot(atUs: number = this.latestUs): IdentitySnapshot {
    const ipKeys = new Set<string>([...this.byIp.keys(), ...this.staticByIp.keys()]);
    const macKeys = new Set<string>([...this.byMac.keys(), ...this.staticByMac.keys()]);
    const entry = (key: string, found: (Claim | undefined)[], recs: (Rec | undefined)[]): IdentityEntry => {
      const current: Partial<Record<IdentityField, IdentityValue>> = {};
      for (let f = 0; f < 4; f++) if (found[f] !== undefined) current[FIELDS[f]] = publicValue(found[f] as Claim);
      const history: (IdentityValue & { field: IdentityField })[] = [];
      for (const rec of recs) {
        if (rec === undefined) continue;
        for (let f = 0; f < 4; f++) for (const c of rec.claims[f]) history.push({ field: FIELDS[f], ...publicValue(c) });
      }
      history.sort((a, b) => a.firstUs - b.firstUs);
      return { key, current, history };
    };
    const ips = [...ipKeys].sort(byAddress.compare).map((ip) =>
      entry(ip, this.resolve(ip, atUs) ?? [], [this.staticByIp.get(ip), this.byIp.get(ip)]));
    const macs = [...macKeys].sort(byAddress.compare).map((mac) => {
      const found: (Claim | undefined)[] = [undefined];
      for (const f of NAME_FIELDS) found[f] = this.nameAt(undefined, undefined, mac, f, atUs);
      return entry(mac, found, [this.staticByMac.get(mac), this.byMac.get(mac)]);
    });
    return { atUs, ips, macs };
  }

  private resolve(ip: string, ts: number): (Claim | undefined)[] | undefined {
    const rec = this.byIp.get(ip);
    const st = this.staticByIp.get(ip);
    if (rec === undefined && st === undefined) return undefined;
    const mac = better(st === undefined ? undefined : validAt(st.claims[F_MAC], ts), rec === undefined ? undefined : validAt(rec.claims[F_MAC], ts));
    const found: (Claim | undefined)[] = [mac];
    let any = mac !== undefined;
    for (const f of NAME_FIELDS) {
      found[f] = this.nameAt(rec, st, mac?.value, f, ts);
      if (found[f] !== undefined) any = true;
    }
    return any ? found : undefined;
  }

  private nameAt(rec: Rec | undefined, st: Rec | undefined, mac: string | undefined, f: number, ts: number): Claim | undefined {
    let best = rec === undefined ? undefined : validAt(rec.claims[f], ts);
    if (st !== undefined) best = better(best, validAt(st.claims[f], ts));
    if (mac !== undefined) {
      const m = this.byMac.get(mac);
      if (m !== undefined) best = better(best, validAt(m.claims[f], ts));
      const sm = this.staticByMac.get(mac);
      if (sm !== undefined) best = better(best, validAt(sm.claims[f], ts));
    }
    return best;
  }

  private release(ip: string | undefined, mac: string | undefined, source: IdentitySource, ts: number): void {
    if (ip !== undefined) {
      const rec = this.byIp.get(ip);
      if (rec !== undefined) {
        const bound = validAt(rec.claims[F_MAC], ts);
        if (mac !== undefined && bound !== undefined && bound.key !== mac) {
          this.counters.inc(C_RELEASE_MISMATCH);
          return;
        }
        this.counters.inc(C_RELEASE);
        for (const claims of rec.claims) {
          for (const c of claims) if (!isAdministrative(c.source) && isValidAt(c, ts)) c.endedUs = ts;
        }
      }
    }
    if (mac !== undefined) {
      const rec = this.byMac.get(mac);
      if (rec === undefined) return;
      for (const claims of rec.claims) for (const c of claims) if (c.source === source && isValidAt(c, ts)) c.endedUs = ts;
    }
  }

  /** A new MAC replaced the IP's binding: the old device's names on this IP end with it. */
  private deviceChanged(rec: Rec, ts: number): void {
    for (const f of NAME_FIELDS) {
      for (const c of rec.claims[f]) if (!isAdministrative(c.source) && isValidAt(c, ts)) c.endedUs = ts;
    }
  }

  /** Records one value; true when it replaced a different valid value. */
  private apply(rec: Rec, f: number, value: string, source: IdentitySource, ts: number, until: number): boolean {
    if (ts < rec.firstUs) rec.firstUs = ts;
    if (ts > rec.lastUs) rec.lastUs = ts;
    const claims = rec.claims[f];
    const key = value.toLowerCase();
    const strength = SOURCE_STRENGTH[source];
    const last = claims.length > 0 ? claims[claims.length - 1] : undefined;
    if (last !== undefined && ts < last.firstUs) {
      if (last.key === key && strength >= last.strength) last.firstUs = ts;
      else this.counters.inc(C_OUT_OF_ORDER);
      return false;
    }
    let replaced = false;
    if (last !== undefined && isValidAt(last, ts)) {
      if (last.key === key) {
        if (ts > last.lastUs) last.lastUs = ts;
        if (strength >= last.strength) {
          last.source = source;
          last.strength = strength;
          last.expiresUs = until;
        }
        return false;
      }
      if (strength < last.strength) {
        this.counters.inc(C_WEAKER_IGNORED);
        return false;
      }
      last.endedUs = ts;
      this.counters.inc(C_REPLACED);
      replaced = true;
    }
    claims.push({ value, key, source, strength, firstUs: ts, lastUs: ts, expiresUs: until, endedUs: Infinity });
    if (claims.length > MAX_HISTORY_PER_FIELD) {
      claims.shift();
      this.counters.inc(C_HISTORY_TRIMMED);
    }
    return replaced;
  }

  private touch(map: Map<string, Rec>, key: string, max: number, evictedCounter: number): Rec {
    let rec = map.get(key);
    if (rec !== undefined) {
      map.delete(key);
      map.set(key, rec);
      return rec;
    }
    if (map.size >= max) {
      const oldest = map.keys().next().value as string;
      map.delete(oldest);
      this.counters.inc(evictedCounter);
    }
    rec = new Rec();
    map.set(key, rec);
    return rec;
  }

  private staticRec(map: Map<string, Rec>, key: string): Rec | undefined {
    let rec = map.get(key);
    if (rec !== undefined) return rec;
    if (this.staticByIp.size + this.staticByMac.size >= MAX_STATIC_ADDRESSES) {
      this.counters.inc(C_STATIC_FULL);
      return undefined;
    }
    rec = new Rec();
    map.set(key, rec);
    return rec;
  }
}

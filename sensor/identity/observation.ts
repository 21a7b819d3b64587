/**
 * Identity, the observation contract: what a passive source (DHCP, RADIUS, Kerberos, NTLM, DNS,
 * NetBIOS) or an administrative one (static file, push API) says about an address.
 * App-layer handlers push `IdentityObservation`s into an `IdentitySink` (the `IdentityTable` is one);
 * this module holds only types and the source ranking, so producers import nothing stateful.
 */

import { ownedString } from '../events/owned-string.js';

export type IdentitySource =
  | 'static' | 'api' | 'radius' | 'kerberos' | 'ntlm' | 'dhcp' | 'dhcpv6' | 'netbios' | 'mdns' | 'dns-ptr';

/** One fact, or a bundle of facts, seen at one moment. At least `ip` or `mac` is set. */
export interface IdentityObservation {
  /** Canonical IPv4 / IPv6 text (sensor/identity/address.ts). */
  readonly ip?: string;
  /** `aa:bb:cc:dd:ee:ff`. With `ip`: the two are bound. Alone: the other fields describe the device. */
  readonly mac?: string;
  readonly hostname?: string;
  readonly user?: string;
  /** Windows / Kerberos domain or realm, NetBIOS workgroup. */
  readonly domain?: string;
  readonly source: IdentitySource;
  /** Microseconds since the epoch: the packet's time. */
  readonly tsUs: number;
  /** When the facts stop being valid (a DHCP lease end, a record TTL); the source's default otherwise. */
  readonly expiresUs?: number;
  /** The binding of `ip` ends at `tsUs` (DHCP RELEASE, RADIUS Accounting Stop); the other fields are ignored. */
  readonly release?: boolean;
}

export interface IdentitySink {
  observe(obs: IdentityObservation): void;
}

/**
 * Source strength, higher wins (the conflict policy in table.ts). Administrative sources beat
 * anything on the wire; an authenticated session (RADIUS accounting from the controller that
 * authenticated the user, a Kerberos / NTLM logon) beats what a device says about itself (DHCP
 * host name), which beats broadcast names (NetBIOS, mDNS), which beat reverse DNS (often stale
 * or generic, and written by whoever runs the zone).
 */
export const SOURCE_STRENGTH: Readonly<Record<IdentitySource, number>> = {
  static: 100,
  api: 90,
  radius: 80,
  kerberos: 70,
  ntlm: 70,
  dhcp: 60,
  dhcpv6: 60,
  netbios: 50,
  mdns: 50,
  'dns-ptr': 40,
};

/** The same ranking as a list, strongest first; sources in one inner list are equal. */
export const SOURCE_RANKING: readonly (readonly IdentitySource[])[] = [
  ['static'], ['api'], ['radius'], ['kerberos', 'ntlm'], ['dhcp', 'dhcpv6'], ['netbios', 'mdns'], ['dns-ptr'],
];

const HOUR_US = 3_600_000_000;

/**
 * How long a fact lives when its source gave no expiry. Addresses get reused, so nothing passive
 * lives forever: a Kerberos TGT lasts 10 h by default (MIT and AD), an NTLM logon is taken as a
 * working day, a RADIUS session without Stop a day (controllers send Interim-Updates far more often),
 * a DHCP fact without a lease time a day (common lease length), NetBIOS names 3 days (Windows' default
 * registration TTL, RFC 1002 leaves it to the server), mDNS / PTR an hour (typical record TTLs).
 */
export const DEFAULT_TTL_US: Readonly<Record<IdentitySource, number>> = {
  static: Infinity,
  api: Infinity,
  radius: 24 * HOUR_US,
  kerberos: 10 * HOUR_US,
  ntlm: 8 * HOUR_US,
  dhcp: 24 * HOUR_US,
  dhcpv6: 24 * HOUR_US,
  netbios: 72 * HOUR_US,
  mdns: HOUR_US,
  'dns-ptr': HOUR_US,
};

/** Sources whose facts a release does not end (an administrator said so). */
export function isAdministrative(source: IdentitySource): boolean {
  return source === 'static' || source === 'api';
}

/** Longest host / user / domain text kept: DNS names stop at 253, AD user principal names at 1024. */
export const MAX_IDENTITY_TEXT_LEN = 256;

/**
 * Printable identity text: C0/C1 controls and DEL replaced by `?`, trailing NULs and spaces dropped,
 * cut at MAX_IDENTITY_TEXT_LEN (never between the halves of a surrogate pair). Returns undefined for
 * an empty result. The result is an owned copy (ownedString): identity claims live for hours, and a
 * cut name would otherwise keep the whole packet text it was sliced from (15.9 KB per claim measured).
 */
export function cleanIdentityText(s: string): string | undefined {
  let end = s.length;
  while (end > 0 && (s.charCodeAt(end - 1) === 0 || s.charCodeAt(end - 1) === 32)) end--;
  let t = ownedString(s, Math.min(end, MAX_IDENTITY_TEXT_LEN));
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(t)) t = t.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return t.length > 0 ? t : undefined;
}

/**
 * Console menu input checks. Input: one line a user typed. Output: undefined when the value is
 * acceptable, else the message to show before asking again (it names the value and the right form).
 * Pure functions: no I/O, never throw.
 */
import { parse as parseDomain } from 'tldts';

/** Linux IFNAMSIZ is 16 including the terminating NUL. */
const MAX_INTERFACE_NAME_LEN = 15;
/** Shortest root password accepted on the console. */
export const MIN_ROOT_PASSWORD_LEN = 8;
/** Sensor numbers are listed by home as small positive integers. */
const MAX_SENSOR_NUMBER = 1_000_000;
/** Home accepts site keys of 8 to 256 characters (home/auth.ts MIN_SITE_KEY_CHARS, MAX_SITE_KEY_CHARS). */
export const MIN_SITE_KEY_CHARS = 8;
export const MAX_SITE_KEY_CHARS = 256;

export type Check = (value: string) => string | undefined;

export function parseIpv4(value: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(value);
  if (m === null) return undefined;
  const octets = m.slice(1).map(Number);
  if (octets.some((o, i) => o > 255 || (m[i + 1].length > 1 && m[i + 1].startsWith('0')))) return undefined;
  return octets;
}

export const checkIpv4: Check = (value) => {
  const o = parseIpv4(value);
  if (o === undefined) return `"${value}" is not an IPv4 address; type four numbers 0-255 separated by dots, for example 192.168.1.20`;
  if (o[0] === 0 || o[0] === 127 || o[0] >= 224) return `"${value}" cannot be used as a host address (it is a loopback, multicast or reserved address)`;
  return undefined;
};

/** Netmask in CIDR form: "/24" or "24". A dotted mask is refused with its CIDR equivalent. */
export function parseCidr(value: string): number | undefined {
  const m = /^\/?(\d{1,2})$/.exec(value);
  if (m === null) return undefined;
  const n = Number(m[1]);
  return n >= 1 && n <= 32 ? n : undefined;
}

export const checkCidr: Check = (value) => {
  if (parseCidr(value) !== undefined) return undefined;
  const dotted = parseIpv4(value);
  if (dotted !== undefined) {
    const bits = dotted.reduce((acc, o) => acc * 256 + o, 0);
    const ones = bits.toString(2).padStart(32, '0');
    const prefix = ones.indexOf('0') === -1 ? 32 : ones.indexOf('0');
    const contiguous = !ones.slice(prefix).includes('1');
    return contiguous && prefix > 0
      ? `Type the netmask in CIDR form, not as an address: for ${value} type /${prefix}`
      : `Type the netmask in CIDR form such as /24 or /22; "${value}" is not a netmask`;
  }
  return `"${value}" is not a netmask in CIDR form; type a slash and the prefix length, for example /24 or /22`;
}

/** True when both addresses are in the same prefix-length network. */
export function sameNetwork(a: string, b: string, prefix: number): boolean {
  const x = parseIpv4(a);
  const y = parseIpv4(b);
  if (x === undefined || y === undefined) return false;
  const toInt = (o: number[]) => ((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]) >>> 0;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return ((toInt(x) & mask) >>> 0) === ((toInt(y) & mask) >>> 0);
}

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

export const checkHost: Check = (value) => {
  if (parseIpv4(value) !== undefined || HOSTNAME.test(value)) return undefined;
  return `"${value}" is not a host name or IPv4 address`;
};

/** Upstream proxy as host:port (no scheme; authenticated proxies are not supported). */
export const checkHostPort: Check = (value) => {
  const m = /^([^:\s/@]+):(\d{1,5})$/.exec(value);
  if (m === null) return `Type the proxy as address:port, for example 10.0.0.5:8080 or proxy.school.local:3128 (not "${value}")`;
  const hostErr = checkHost(m[1]);
  if (hostErr !== undefined) return hostErr;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return `Port ${m[2]} is out of range; use 1-65535`;
  return undefined;
};

/** Home server address: https://host[:port], or a bare host that gets https:// in front. */
export function normaliseHomeUrl(value: string): string | undefined {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `https://${value}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined;
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') return undefined;
  if (checkHost(u.hostname) !== undefined) return undefined;
  return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '')}`;
}

export const checkHomeUrl: Check = (value) =>
  normaliseHomeUrl(value) === undefined ? `"${value}" is not a server address; type for example https://home.example.org or home.example.org:8443` : undefined;

export const checkSensorNumber: Check = (value) => {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_SENSOR_NUMBER) return `"${value}" is not a sensor number; type the number shown beside the sensor in home's sensor list, for example 3`;
  return undefined;
};

/**
 * Home's site key, exactly as typed (home compares it exactly: spaces count). The messages never
 * repeat the key: it is a secret, and the console may be watched.
 */
export const checkSiteKey: Check = (value) => {
  if (value === '') return "Type the site key (home's administrator has it)";
  // a line break would end the key where `hark enrol --site-key-file` reads its first line
  if (/[\x00-\x1f\x7f]/.test(value)) return 'The site key cannot contain control characters or line breaks; type it as home shows it';
  const chars = [...value].length;
  if (chars < MIN_SITE_KEY_CHARS) return `A site key has at least ${MIN_SITE_KEY_CHARS} characters; the one typed has ${chars}`;
  if (value.length > MAX_SITE_KEY_CHARS) return `A site key has at most ${MAX_SITE_KEY_CHARS} characters; the one typed has ${value.length}`;
  return undefined;
};

export const checkNotEmpty = (what: string): Check => (value) => (value === '' ? `Type ${what}` : undefined);

export const checkInterfaceName: Check = (value) =>
  /^[A-Za-z0-9_.:@-]+$/.test(value) && value.length <= MAX_INTERFACE_NAME_LEN && value !== '.' && value !== '..' ? undefined : `"${value}" is not an interface name`;

/**
 * Allow-list entry: a domain with at least a registrable (second-level) part, such as youtube.com;
 * a public suffix alone (com, co.uk) would allow a whole country or the whole web.
 */
export function normaliseAllowDomain(value: string): string | undefined {
  const v = value.trim().toLowerCase().replace(/\.$/, '');
  if (!HOSTNAME.test(v) || parseIpv4(v) !== undefined) return undefined;
  const p = parseDomain(v, { allowPrivateDomains: false });
  if (p.domain === null || p.hostname !== v) return undefined;
  return v;
}

export const checkAllowDomain: Check = (value) => {
  if (/^[a-z]+:\/\//i.test(value) || value.includes('/')) return `Type only the domain, without http:// or a path: for example youtube.com`;
  return normaliseAllowDomain(value) === undefined
    ? `"${value}" is not a domain that can be allowed; it needs at least a second-level domain, for example youtube.com`
    : undefined;
};

/**
 * Identity, address text: one printable form per address so facts from every source meet.
 * Input: bytes (IPv4 / IPv6 / MAC) or loosely written text (CSV, API, RADIUS Calling-Station-Id).
 * Output: `a.b.c.d`, RFC 5952-style IPv6 (lower case, longest zero run compressed, the same form the
 * flow stage prints), `aa:bb:cc:dd:ee:ff`; `undefined` for anything that is not one. Never throws.
 */
import { formatIpv6Bytes, formatIpv6Groups } from '../net/ipv6-text.js';

const HEX = '0123456789abcdef';

/** `a.b.c.d` from four bytes at `off` (the caller checked the length). */
export function ipv4FromBytes(b: Uint8Array, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** IPv6 text from sixteen bytes at `off`, formatted exactly as the flow stage formats addresses. */
export function ipv6FromBytes(b: Uint8Array, off: number): string {
  return formatIpv6Bytes(b, off);
}

/** `aa:bb:cc:dd:ee:ff` from six bytes at `off`. */
export function macFromBytes(b: Uint8Array, off: number): string {
  let s = '';
  for (let i = 0; i < 6; i++) {
    const v = b[off + i];
    s += (i > 0 ? ':' : '') + HEX[v >> 4] + HEX[v & 15];
  }
  return s;
}

/** Lower-case hex of `len` bytes at `off` (identifiers that are not MACs: DUIDs, client ids). */
export function hexFromBytes(b: Uint8Array, off: number, len: number): string {
  let s = '';
  for (let i = off; i < off + len; i++) s += HEX[b[i] >> 4] + HEX[b[i] & 15];
  return s;
}

/** Canonical IPv4 text, or undefined: four decimal octets without leading zeros beyond one digit. */
export function normaliseIpv4(text: string): string | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    out.push(v);
  }
  return out.join('.');
}

/** Canonical IPv6 text (see `ipv6FromBytes`), or undefined. Accepts `::`, an embedded IPv4 tail and a `%zone` (dropped). */
export function normaliseIpv6(text: string): string | undefined {
  let t = text.trim();
  const zone = t.indexOf('%');
  if (zone >= 0) t = t.slice(0, zone);
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1);
  if (t.length === 0 || t.length > 45 || !/^[0-9a-fA-F:.]+$/.test(t)) return undefined;
  const dbl = t.indexOf('::');
  if (dbl >= 0 && t.indexOf('::', dbl + 1) >= 0) return undefined;
  const parseSide = (s: string): number[] | undefined => {
    if (s.length === 0) return [];
    const out: number[] = [];
    const items = s.split(':');
    for (let i = 0; i < items.length; i++) {
      const it = items[i];
      if (it.includes('.')) {
        if (i !== items.length - 1) return undefined;
        const v4 = normaliseIpv4(it);
        if (v4 === undefined) return undefined;
        const o = v4.split('.').map(Number);
        out.push((o[0] << 8) | o[1], (o[2] << 8) | o[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(it)) return undefined;
        out.push(parseInt(it, 16));
      }
    }
    return out;
  };
  let groups: number[];
  if (dbl >= 0) {
    const head = parseSide(t.slice(0, dbl));
    const tail = parseSide(t.slice(dbl + 2));
    if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = parseSide(t);
    if (all === undefined || all.length !== 8) return undefined;
    groups = all;
  }
  return formatIpv6Groups(groups);
}

/** Canonical text of an IPv4 or IPv6 address, or undefined. */
export function normaliseIp(text: string): string | undefined {
  const t = text.trim();
  return t.includes(':') ? normaliseIpv6(t) : normaliseIpv4(t);
}

/**
 * A MAC written in any common way -> `aa:bb:cc:dd:ee:ff`, or undefined. Accepted: 12 hex digits alone
 * (`985AEB898000`), or split evenly by one kind of separator among `:`, `-`, `.`, space into groups of
 * 2 (`98:5a:...`, `98-5A-...`), 4 (Cisco `985a.eb89.8000`) or 6 (`985aeb-898000`) digits.
 */
export function normaliseMac(text: string): string | undefined {
  const t = text.trim();
  if (t.length < 12 || t.length > 17) return undefined;
  let digits = '';
  let sep = '';
  let group = 0;
  let groupLen = -1;
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (/[0-9a-fA-F]/.test(c)) {
      digits += c;
      group++;
      continue;
    }
    if (c !== ':' && c !== '-' && c !== '.' && c !== ' ') return undefined;
    if (sep === '') sep = c;
    else if (c !== sep) return undefined;
    if (groupLen < 0) groupLen = group;
    else if (group !== groupLen) return undefined;
    group = 0;
  }
  if (digits.length !== 12) return undefined;
  if (sep !== '' && (group !== groupLen || (groupLen !== 2 && groupLen !== 4 && groupLen !== 6))) return undefined;
  const d = digits.toLowerCase();
  return `${d.slice(0, 2)}:${d.slice(2, 4)}:${d.slice(4, 6)}:${d.slice(6, 8)}:${d.slice(8, 10)}:${d.slice(10, 12)}`;
}

/**
 * IPv6 addresses as text, RFC 5952 section 4: lower-case hex, no leading zeros, the longest run of
 * two or more zero groups compressed to `::` (the first such run on a tie). One implementation for
 * every stage that prints an address (decode, DNS, identity, policy), so the same address is
 * always the same string and lookups across stages agree.
 */

/** Text of eight 16-bit groups. */
export function formatIpv6Groups(g: ArrayLike<number>): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      s += i === 0 ? '::' : ':';
      i += bestLen - 1;
      continue;
    }
    s += g[i].toString(16);
    if (i < 7) s += ':';
  }
  return s;
}

const groups = new Array<number>(8);

/** Text of sixteen network-order bytes at `off`. */
export function formatIpv6Bytes(b: Uint8Array, off: number): string {
  for (let i = 0; i < 8; i++) groups[i] = (b[off + 2 * i] << 8) | b[off + 2 * i + 1];
  return formatIpv6Groups(groups);
}

/** Text of four 32-bit words (each holding two groups, high first) at `base`. */
export function formatIpv6Words(w: ArrayLike<number>, base: number): string {
  for (let i = 0; i < 4; i++) {
    groups[2 * i] = w[base + i] >>> 16;
    groups[2 * i + 1] = w[base + i] & 0xffff;
  }
  return formatIpv6Groups(groups);
}

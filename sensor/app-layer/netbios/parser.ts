/**
 * App layer, NetBIOS name service (RFC 1001 / 1002, UDP 137): pure parser for one NBNS packet.
 * Input: the UDP payload. Output: a readonly `NbnsPacket`: header (response bit, opcode, rcode),
 * questions, and resource records of every section with decoded names (first-level encoding undone:
 * 15-character name + suffix type, scope kept), NB addresses, and node-status names with the unit ID;
 * or `{ anomaly }`. Compression pointers are followed a bounded number of times. Never throws.
 */

import { defineAnomaly } from '../../events/counters.js';
import { ipv4FromBytes, macFromBytes } from '../../identity/address.js';

export const NBNS_HEADER_LEN = 12;
export const NBNS_OPCODES: Readonly<Record<number, string>> = {
  0: 'query', 5: 'registration', 6: 'release', 7: 'wack', 8: 'refresh', 9: 'refresh', 15: 'multihomed-registration',
};
export const NBNS_TYPE = { NB: 0x20, NBSTAT: 0x21 } as const;
/** Well-known suffix types (the 16th byte of a name). */
export const NETBIOS_SUFFIX = { WORKSTATION: 0x00, MESSENGER: 0x03, SERVER: 0x20, DOMAIN_MASTER_BROWSER: 0x1b, DOMAIN_CONTROLLERS: 0x1c, MASTER_BROWSER: 0x1d, BROWSER_ELECTION: 0x1e } as const;

/** Encoded NetBIOS name: 16 bytes as 32 half-byte letters (RFC 1001 §14.1). */
const ENCODED_NAME_LEN = 32;
/** Pointer hops followed while reading one name (RFC 1002 answers point back to the question). */
const MAX_POINTER_HOPS = 4;
/** Scope labels read after the name (scopes are rare and short). */
const MAX_SCOPE_LABELS = 16;
/** Records read per section: real packets carry one; the counts come from the sender. */
export const MAX_NBNS_RECORDS = 16;
/** NB address entries read per record (a multi-homed host has a few). */
export const MAX_NB_ADDRESSES = 16;

export const A_NBNS_TOO_SHORT = defineAnomaly('netbios.ns.too_short');
export const A_NBNS_BAD_NAME = defineAnomaly('netbios.ns.bad_name');
export const A_NBNS_TRUNCATED = defineAnomaly('netbios.ns.truncated');
export const A_NBNS_BAD_RDATA = defineAnomaly('netbios.ns.bad_rdata');

export interface NetbiosName {
  /** Up to 15 characters, trailing spaces and NULs removed. */
  readonly name: string;
  readonly suffix: number;
  /** Scope id (dotted), usually absent. */
  readonly scope?: string;
}

export interface NbAddress {
  /** G bit: a group name. */
  readonly group: boolean;
  /** Owner node type: 0 B, 1 P, 2 M, 3 H. */
  readonly nodeType: number;
  readonly address: string;
}

export interface NodeStatusName {
  readonly name: string;
  readonly suffix: number;
  readonly group: boolean;
}

export interface NbnsRecord {
  readonly section: 'answer' | 'authority' | 'additional';
  readonly name: NetbiosName;
  readonly type: number;
  readonly ttlSeconds: number;
  readonly addresses: readonly NbAddress[];
  readonly nodeStatus?: { readonly names: readonly NodeStatusName[]; readonly unitId?: string };
}

export interface NbnsPacket {
  readonly id: number;
  readonly response: boolean;
  readonly opcode: number;
  readonly rcode: number;
  readonly broadcast: boolean;
  readonly questions: readonly { readonly name: NetbiosName; readonly type: number }[];
  readonly records: readonly NbnsRecord[];
  readonly anomalies: readonly number[];
}

export type NbnsResult = NbnsPacket | { readonly anomaly: number };

const u16 = (b: Uint8Array, o: number): number => (b[o] << 8) | b[o + 1];

/** Undoes the first-level encoding of 32 letters at `off` (RFC 1001 §14.1): undefined if not A-P. */
export function decodeFirstLevel(b: Uint8Array, off: number): { name: string; suffix: number } | undefined {
  const raw = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const hi = b[off + 2 * i] - 0x41;
    const lo = b[off + 2 * i + 1] - 0x41;
    if (hi < 0 || hi > 15 || lo < 0 || lo > 15) return undefined;
    raw[i] = (hi << 4) | lo;
  }
  let end = 15;
  while (end > 0 && (raw[end - 1] === 0x20 || raw[end - 1] === 0)) end--;
  return { name: Buffer.from(raw.buffer, 0, end).toString('latin1'), suffix: raw[15] };
}

/** Encodes a name + suffix to the 32 letters (for tests and generators). */
export function encodeFirstLevel(name: string, suffix: number): string {
  const raw = Buffer.alloc(16, 0x20);
  raw.write(name.slice(0, 15), 'latin1');
  raw[15] = suffix;
  let s = '';
  for (const v of raw) s += String.fromCharCode(0x41 + (v >> 4), 0x41 + (v & 15));
  return s;
}

/** Reads a name at `pos`; returns it and the offset after it in the packet. */
function readName(b: Uint8Array, pos: number): { name: NetbiosName; next: number } | undefined {
  let p = pos;
  let next = -1;
  let hops = 0;
  let first: { name: string; suffix: number } | undefined;
  const scope: string[] = [];
  for (let labels = 0; labels <= MAX_SCOPE_LABELS; labels++) {
    if (p >= b.length) return undefined;
    const len = b[p];
    if ((len & 0xc0) === 0xc0) {
      if (p + 2 > b.length || ++hops > MAX_POINTER_HOPS) return undefined;
      if (next < 0) next = p + 2;
      p = ((len & 0x3f) << 8) | b[p + 1];
      labels--;
      continue;
    }
    if (len & 0xc0) return undefined;
    if (len === 0) {
      if (first === undefined) return undefined;
      return { name: { ...first, ...(scope.length > 0 ? { scope: scope.join('.') } : {}) }, next: next >= 0 ? next : p + 1 };
    }
    if (p + 1 + len > b.length) return undefined;
    if (first === undefined) {
      if (len !== ENCODED_NAME_LEN) return undefined;
      first = decodeFirstLevel(b, p + 1);
      if (first === undefined) return undefined;
    } else {
      scope.push(Buffer.from(b.buffer, b.byteOffset + p + 1, len).toString('latin1'));
    }
    p += 1 + len;
  }
  return undefined;
}

/** Parses one NBNS packet. */
export function parseNbns(b: Uint8Array): NbnsResult {
  if (b.length < NBNS_HEADER_LEN) return { anomaly: A_NBNS_TOO_SHORT };
  const flags = u16(b, 2);
  const anomalies: number[] = [];
  const questions: { name: NetbiosName; type: number }[] = [];
  const records: NbnsRecord[] = [];
  let p = NBNS_HEADER_LEN;
  const qd = Math.min(u16(b, 4), MAX_NBNS_RECORDS);
  for (let i = 0; i < qd; i++) {
    const n = readName(b, p);
    if (n === undefined) return { anomaly: A_NBNS_BAD_NAME };
    if (n.next + 4 > b.length) return { anomaly: A_NBNS_TRUNCATED };
    questions.push({ name: n.name, type: u16(b, n.next) });
    p = n.next + 4;
  }
  const sections: [NbnsRecord['section'], number][] = [['answer', u16(b, 6)], ['authority', u16(b, 8)], ['additional', u16(b, 10)]];
  outer: for (const [section, count] of sections) {
    for (let i = 0; i < Math.min(count, MAX_NBNS_RECORDS); i++) {
      const n = readName(b, p);
      if (n === undefined) {
        anomalies.push(A_NBNS_BAD_NAME);
        break outer;
      }
      const h = n.next;
      if (h + 10 > b.length) {
        anomalies.push(A_NBNS_TRUNCATED);
        break outer;
      }
      const type = u16(b, h);
      const ttlSeconds = ((b[h + 4] << 24) | (b[h + 5] << 16) | (b[h + 6] << 8) | b[h + 7]) >>> 0;
      const rdlen = u16(b, h + 8);
      const rd = h + 10;
      if (rd + rdlen > b.length) {
        anomalies.push(A_NBNS_TRUNCATED);
        break outer;
      }
      p = rd + rdlen;
      const addresses: NbAddress[] = [];
      let nodeStatus: NbnsRecord['nodeStatus'];
      if (type === NBNS_TYPE.NB) {
        if (rdlen % 6 !== 0) anomalies.push(A_NBNS_BAD_RDATA);
        for (let q = rd; q + 6 <= rd + rdlen && addresses.length < MAX_NB_ADDRESSES; q += 6) {
          const f = u16(b, q);
          addresses.push({ group: (f & 0x8000) !== 0, nodeType: (f >> 13) & 3, address: ipv4FromBytes(b, q + 2) });
        }
      } else if (type === NBNS_TYPE.NBSTAT && rdlen >= 1) {
        // RFC 1002 §4.2.18: NUM_NAMES, then 18-byte entries (15 name + suffix + 2 flags), then statistics
        // starting with the 6-byte UNIT_ID.
        const num = b[rd];
        const names: NodeStatusName[] = [];
        let q = rd + 1;
        for (let k = 0; k < num; k++, q += 18) {
          if (q + 18 > rd + rdlen) {
            anomalies.push(A_NBNS_BAD_RDATA);
            break;
          }
          let end = q + 15;
          while (end > q && (b[end - 1] === 0x20 || b[end - 1] === 0)) end--;
          names.push({ name: Buffer.from(b.buffer, b.byteOffset + q, end - q).toString('latin1'), suffix: b[q + 15], group: (b[q + 16] & 0x80) !== 0 });
        }
        let unitId: string | undefined;
        if (q + 6 <= rd + rdlen) {
          let zero = true;
          for (let k = 0; k < 6; k++) if (b[q + k] !== 0) zero = false;
          if (!zero) unitId = macFromBytes(b, q);
        }
        nodeStatus = { names, ...(unitId !== undefined ? { unitId } : {}) };
      }
      records.push({ section, name: n.name, type, ttlSeconds, addresses, ...(nodeStatus !== undefined ? { nodeStatus } : {}) });
    }
  }
  return {
    id: u16(b, 0),
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    rcode: flags & 0xf,
    broadcast: (flags & 0x0010) !== 0,
    questions,
    records,
    anomalies,
  };
}

export function isNbnsError(r: NbnsResult): r is { readonly anomaly: number } {
  return (r as { anomaly?: number }).anomaly !== undefined;
}

/**
 * App layer, DNS: one message's bytes -> a typed record (RFC 1035, 3596, 2782, 6891, 9460). Pure.
 * Input: a whole DNS message (a UDP payload, or one TCP frame without its length prefix).
 * Output: header, questions and the three record sections with typed rdata, or `{ error }` with a
 * dotted `dns.malformed.*` code. Compressed names are followed only backwards (strictly decreasing
 * targets) and at most MAX_DNS_POINTER_JUMPS times, so no input loops. Never throws on packet bytes.
 */
import { formatIpv6Bytes } from '../../net/ipv6-text.js';

export { formatIpv6Bytes };

/** RFC 1035 §4.1.1. */
export const DNS_HEADER_LEN = 12;
/** Largest message: the TCP length prefix is 16 bits (RFC 1035 §4.2.2) and so is the UDP length. */
export const MAX_DNS_MESSAGE_LEN = 65535;
/** RFC 1035 §2.3.4: a label is at most 63 octets (the length byte's two top bits are its type). */
export const MAX_DNS_LABEL_LEN = 63;
/** RFC 1035 §2.3.4: a name is at most 255 octets on the wire, length bytes and root included. */
export const MAX_DNS_NAME_WIRE_LEN = 255;
/** A name as text, `\DDD` escapes included: what resolvers accept. The wire limit keeps real text under it. */
export const MAX_DNS_NAME_LEN = 1025;
/** Compression pointers followed for one name: a 255-octet name has at most 127 labels, and no honest
 * encoder needs more jumps than labels. Strictly decreasing targets already stop loops; this bounds work. */
export const MAX_DNS_POINTER_JUMPS = 127;
/** Resource records decoded per message (all sections). A 64 KiB zone-transfer frame can hold ~6,000
 * tiny records; a sensor needs the first few hundred. The rest are skipped: `recordsTruncated`. */
export const MAX_DNS_RECORDS = 1000;
/** Rdata bytes kept for a type decoded as raw (DNSKEY and RRSIG run to kilobytes): `rawTruncated` on the
 * record says when this bit. */
export const MAX_DNS_RAW_RDATA_BYTES = 512;

/** Fatal (`error`) and non-fatal (`anomalies`) codes. Record-level codes keep the message, the record
 * becomes `raw`. */
export const DNS_ANOMALY = {
  /** Fewer than 12 bytes. */
  HEADER_TRUNCATED: 'dns.malformed.header_truncated',
  /** The section counts claim more entries than the message can hold, or the message ends between entries. */
  COUNT_OVERFLOW: 'dns.malformed.count_overflow',
  /** The message ends inside a question's type/class. */
  QUESTION_TRUNCATED: 'dns.malformed.question_truncated',
  /** The message ends inside a record's fixed fields (type, class, ttl, rdlength). */
  RECORD_TRUNCATED: 'dns.malformed.record_truncated',
  /** rdlength runs past the end of the message. */
  RDATA_TRUNCATED: 'dns.malformed.rdata_truncated',
  /** A name runs past the end of the message (or of its rdata). */
  NAME_TRUNCATED: 'dns.malformed.name_truncated',
  /** A label length byte 0x40-0xBF: longer than 63, i.e. the reserved/obsolete label types (RFC 6891 §5). */
  LABEL_TOO_LONG: 'dns.malformed.label_too_long',
  /** More than 255 octets on the wire once pointers are followed. */
  NAME_TOO_LONG: 'dns.malformed.name_too_long',
  /** A compression pointer to a later offset than its own. */
  POINTER_FORWARD: 'dns.malformed.pointer_forward',
  /** A compression pointer to itself or back into bytes this name already read (would loop). */
  POINTER_LOOP: 'dns.malformed.pointer_loop',
  /** More than MAX_DNS_POINTER_JUMPS pointers in one name. */
  TOO_MANY_POINTERS: 'dns.malformed.too_many_pointers',
  /** Rdata that does not fit its type (A not 4 bytes, a name not ending at rdlength, ...): record kept raw. */
  RDATA_LENGTH: 'dns.malformed.rdata_length',
  /** SVCB/HTTPS parameters out of order, overrunning, or with a bad value (RFC 9460 §2.2): record kept raw. */
  SVCB_PARAMS: 'dns.malformed.svcb_params',
  /** An OPT record outside the additional section, a second one, or one with a non-root name (RFC 6891 §6.1.1). */
  OPT_INVALID: 'dns.malformed.opt',
  /** Bytes after the last record (UDP padding or junk): not fatal. */
  TRAILING_BYTES: 'dns.trailing_bytes',
} as const;

export type DnsAnomalyCode = (typeof DNS_ANOMALY)[keyof typeof DNS_ANOMALY];

/** Every code above, for registering counters. */
export const DNS_ANOMALY_CODES: readonly DnsAnomalyCode[] = Object.values(DNS_ANOMALY);

/** Record types decoded here (IANA "Resource Record (RR) TYPEs"). */
export const DNS_TYPE = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, SVCB: 64, HTTPS: 65, ANY: 255,
} as const;

const TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 13: 'HINFO', 15: 'MX', 16: 'TXT', 17: 'RP', 18: 'AFSDB', 24: 'SIG',
  25: 'KEY', 28: 'AAAA', 29: 'LOC', 33: 'SRV', 35: 'NAPTR', 36: 'KX', 37: 'CERT', 39: 'DNAME', 41: 'OPT', 42: 'APL',
  43: 'DS', 44: 'SSHFP', 45: 'IPSECKEY', 46: 'RRSIG', 47: 'NSEC', 48: 'DNSKEY', 49: 'DHCID', 50: 'NSEC3',
  51: 'NSEC3PARAM', 52: 'TLSA', 53: 'SMIMEA', 55: 'HIP', 59: 'CDS', 60: 'CDNSKEY', 61: 'OPENPGPKEY', 62: 'CSYNC',
  63: 'ZONEMD', 64: 'SVCB', 65: 'HTTPS', 99: 'SPF', 108: 'EUI48', 109: 'EUI64', 249: 'TKEY', 250: 'TSIG', 251: 'IXFR',
  252: 'AXFR', 255: 'ANY', 256: 'URI', 257: 'CAA',
};

/** `A`, `HTTPS`, or `TYPE1234` for an unknown type (RFC 3597 §5). */
export function dnsTypeName(type: number): string {
  return TYPE_NAMES[type] ?? `TYPE${type}`;
}

const RCODE_NAMES: readonly string[] = [
  'NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE',
  'DSOTYPENI',
];

/** `NXDOMAIN`, `BADVERS` (16, EDNS), or `RCODE23` (IANA "DNS RCODEs"). */
export function dnsRcodeName(rcode: number): string {
  if (rcode < RCODE_NAMES.length) return RCODE_NAMES[rcode];
  if (rcode === 16) return 'BADVERS';
  return `RCODE${rcode}`;
}

export interface DnsQuestion {
  /** As sent, in presentation form (`\DDD` for bytes outside 0x21-0x7E, `\.` for a dot inside a label); `.` is the root. */
  readonly name: string;
  /** `name` with ASCII letters lower-cased: the form to match on (the same string when nothing changed). */
  readonly lname: string;
  readonly type: number;
  /** As sent: in mDNS the top bit is the unicast-response flag (RFC 6762 §5.4). */
  readonly class: number;
}

export interface SvcbRdata {
  readonly kind: 'svcb';
  /** 0 is AliasMode (RFC 9460 §2.4.2). */
  readonly priority: number;
  readonly target: string;
  readonly ltarget: string;
  readonly alpn: readonly string[];
  readonly noDefaultAlpn: boolean;
  readonly port: number | undefined;
  readonly ipv4hint: readonly string[];
  readonly ipv6hint: readonly string[];
  /** An ECHConfigList is present (key 5): the client may encrypt its ClientHello, hiding the SNI. */
  readonly ech: boolean;
  readonly mandatory: readonly number[];
  /** Every SvcParamKey present, in order. */
  readonly keys: readonly number[];
}

export type DnsRdata =
  | { readonly kind: 'a'; readonly address: string }
  | { readonly kind: 'aaaa'; readonly address: string }
  | { readonly kind: 'name'; readonly target: string; readonly ltarget: string } // CNAME, NS, PTR
  | { readonly kind: 'mx'; readonly preference: number; readonly exchange: string; readonly lexchange: string }
  | { readonly kind: 'txt'; readonly strings: readonly string[] }
  | {
    readonly kind: 'soa'; readonly mname: string; readonly rname: string; readonly serial: number; readonly refresh: number;
    readonly retry: number; readonly expire: number; readonly minimum: number;
  }
  | { readonly kind: 'srv'; readonly priority: number; readonly weight: number; readonly port: number; readonly target: string; readonly ltarget: string }
  | SvcbRdata
  | { readonly kind: 'opt'; readonly options: readonly number[] }
  /** Any other type, or a known type whose rdata was malformed (see the message's anomalies). `bytes` is a
   * copy of at most MAX_DNS_RAW_RDATA_BYTES; `length` is the real rdlength. */
  | { readonly kind: 'raw'; readonly length: number; readonly bytes: Uint8Array; readonly malformed: DnsAnomalyCode | undefined };

export interface DnsResourceRecord {
  readonly name: string;
  readonly lname: string;
  readonly type: number;
  /** As sent: in mDNS the top bit is cache-flush (RFC 6762 §10.2); in OPT it is the UDP payload size. */
  readonly class: number;
  readonly ttl: number;
  readonly rdata: DnsRdata;
}

/** From the OPT pseudo-record (RFC 6891 §6.1.3). */
export interface DnsEdns {
  readonly udpPayloadSize: number;
  readonly version: number;
  readonly dnssecOk: boolean;
  /** Option codes present (e.g. 10 cookie, 12 padding, 15 extended error). */
  readonly options: readonly number[];
}

export interface DnsMessage {
  readonly id: number;
  /** QR: false query, true response. */
  readonly response: boolean;
  readonly opcode: number;
  readonly aa: boolean;
  readonly tc: boolean;
  readonly rd: boolean;
  readonly ra: boolean;
  readonly ad: boolean;
  readonly cd: boolean;
  /** The 12-bit code when an OPT record extends the header's 4 bits (RFC 6891 §6.1.3), else the header's. */
  readonly rcode: number;
  readonly questions: readonly DnsQuestion[];
  readonly answers: readonly DnsResourceRecord[];
  readonly authority: readonly DnsResourceRecord[];
  readonly additional: readonly DnsResourceRecord[];
  readonly edns: DnsEdns | undefined;
  /** More than MAX_DNS_RECORDS records: the rest were not decoded. */
  readonly recordsTruncated: boolean;
  /** Non-fatal codes: a record whose rdata did not fit its type (kept raw), trailing bytes. */
  readonly anomalies: readonly DnsAnomalyCode[];
  /** Message length in bytes. */
  readonly length: number;
}

/** A message that could not be decoded to the end. What came before the fault is kept, so a query's name
 * can still be matched. */
export interface DnsParseError {
  readonly error: DnsAnomalyCode;
  /** Byte offset of the fault. */
  readonly offset: number;
  /** Present when the 12-byte header was. */
  readonly header: { readonly id: number; readonly response: boolean; readonly opcode: number; readonly rcode: number } | undefined;
  readonly questions: readonly DnsQuestion[];
}

export type DnsParseResult = DnsMessage | DnsParseError;

export function isDnsParseError(r: DnsParseResult): r is DnsParseError {
  return (r as DnsParseError).error !== undefined;
}

// Header field offsets (RFC 1035 §4.1.1).
const H_ID = 0;
const H_FLAGS = 2;
const H_QDCOUNT = 4;
const H_ANCOUNT = 6;
const H_NSCOUNT = 8;
const H_ARCOUNT = 10;
/** Smallest question: root name (1) + type (2) + class (2). */
const MIN_QUESTION_LEN = 5;
/** Smallest record: root name (1) + type, class (4) + ttl (4) + rdlength (2). */
const MIN_RECORD_LEN = 11;
/** Bytes after a record's name: type, class, ttl, rdlength. */
const RR_FIXED_LEN = 10;

const NO_ANOMALIES: readonly DnsAnomalyCode[] = Object.freeze([]);
const NO_RECORDS: readonly DnsResourceRecord[] = Object.freeze([]);
const NO_STRINGS: readonly string[] = Object.freeze([]);
const NO_NUMBERS: readonly number[] = Object.freeze([]);

// ---------------------------------------------------------------------------------------------
// Names

/** Text of the name being decoded (escapes written out) and its lower-cased twin; reused (the parser is
 * synchronous). Sized for the worst case the wire limit allows. Escapes hold digits and `\`, so
 * lower-casing the text letter by letter is the same as lower-casing the name. */
const textBuf = Buffer.alloc(MAX_DNS_NAME_LEN + 8);
const lowerBuf = Buffer.alloc(MAX_DNS_NAME_LEN + 8);

/** Result of the last `decodeName`: reused to avoid an object per name. */
const nameOut = { name: '', lname: '', end: 0, error: undefined as DnsAnomalyCode | undefined, errorAt: 0 };

/** Names already decoded in the current message, by the offset they start at: owner names that are a
 * bare pointer (`c0 0c`, the usual case) reuse the text instead of decoding it again. Reset per message. */
const NAME_CACHE_SIZE = 16;
const cacheOffset = new Int32Array(NAME_CACHE_SIZE);
const cacheJumps = new Int32Array(NAME_CACHE_SIZE);
const cacheName: string[] = new Array<string>(NAME_CACHE_SIZE).fill('');
const cacheLname: string[] = new Array<string>(NAME_CACHE_SIZE).fill('');
let cacheCount = 0;

function cacheFind(offset: number): number {
  for (let i = 0; i < cacheCount; i++) if (cacheOffset[i] === offset) return i;
  return -1;
}

function cacheStore(offset: number, jumps: number): void {
  if (cacheCount >= NAME_CACHE_SIZE || cacheFind(offset) >= 0) return;
  cacheOffset[cacheCount] = offset;
  cacheJumps[cacheCount] = jumps;
  cacheName[cacheCount] = nameOut.name;
  cacheLname[cacheCount] = nameOut.lname;
  cacheCount++;
}

/** Does a label byte need a `\` escape in presentation form (RFC 1035 §5.1)? */
function needsEscape(c: number): boolean {
  return c < 0x21 || c > 0x7e || c === 0x2e /* . */ || c === 0x5c /* \ */;
}

/**
 * Decodes the name at `off`. Its in-place part must end by `limit` (the message end, or the rdata end for
 * names inside rdata); pointers may reach anywhere before the bytes already read. Sets `nameOut`:
 * `end` is the offset after the in-place part; `error` is set on a fault (and `errorAt` its offset).
 */
function decodeName(buf: Uint8Array, off: number, limit: number): boolean {
  let pos = off;
  let end = -1; // after the in-place part, fixed at the first pointer
  let runStart = off; // lowest offset read so far: a pointer must land strictly before it
  let wire = 0;
  let jumps = 0;
  let n = 0; // text length
  let lowerFrom = -1; // first upper-case letter in the text, if any
  nameOut.error = undefined;
  // A bare pointer to a name decoded before in this message: the same text, one more jump.
  if (off + 1 < limit && buf[off] >= 0xc0) {
    const target = ((buf[off] & 0x3f) << 8) | buf[off + 1];
    const hit = target < off ? cacheFind(target) : -1;
    if (hit >= 0 && cacheJumps[hit] < MAX_DNS_POINTER_JUMPS) {
      nameOut.name = cacheName[hit];
      nameOut.lname = cacheLname[hit];
      nameOut.end = off + 2;
      return true;
    }
  }
  for (;;) {
    const lim = end < 0 ? limit : buf.length;
    if (pos >= lim) return nameFail(DNS_ANOMALY.NAME_TRUNCATED, pos);
    const len = buf[pos];
    if (len >= 0xc0) {
      if (pos + 1 >= lim) return nameFail(DNS_ANOMALY.NAME_TRUNCATED, pos);
      const target = ((len & 0x3f) << 8) | buf[pos + 1];
      if (target > pos) return nameFail(DNS_ANOMALY.POINTER_FORWARD, pos);
      if (target >= runStart) return nameFail(DNS_ANOMALY.POINTER_LOOP, pos);
      if (++jumps > MAX_DNS_POINTER_JUMPS) return nameFail(DNS_ANOMALY.TOO_MANY_POINTERS, pos);
      if (end < 0) end = pos + 2;
      pos = target;
      runStart = target;
      continue;
    }
    if (len >= 0x40) return nameFail(DNS_ANOMALY.LABEL_TOO_LONG, pos);
    wire += len + 1;
    if (wire > MAX_DNS_NAME_WIRE_LEN) return nameFail(DNS_ANOMALY.NAME_TOO_LONG, pos);
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    if (pos + 1 + len > lim) return nameFail(DNS_ANOMALY.NAME_TRUNCATED, pos);
    if (n > 0) textBuf[n++] = 0x2e;
    for (let i = pos + 1, e = pos + 1 + len; i < e; i++) {
      const c = buf[i];
      if (needsEscape(c)) {
        textBuf[n] = 0x5c;
        if (c === 0x2e || c === 0x5c) {
          textBuf[n + 1] = c;
          n += 2;
        } else {
          textBuf[n + 1] = 0x30 + ((c / 100) | 0);
          textBuf[n + 2] = 0x30 + (((c / 10) | 0) % 10);
          textBuf[n + 3] = 0x30 + (c % 10);
          n += 4;
        }
      } else {
        // The lower-case twin is only made once an upper-case letter shows up (most names have none).
        if (c >= 0x41 && c <= 0x5a && lowerFrom < 0) lowerFrom = n;
        textBuf[n++] = c;
      }
    }
    pos += 1 + len;
  }
  // Cannot exceed MAX_DNS_NAME_LEN: 255 wire octets give at most ~1010 text bytes.
  if (n === 0) {
    nameOut.name = nameOut.lname = '.';
  } else {
    nameOut.name = textBuf.toString('latin1', 0, n);
    if (lowerFrom < 0) nameOut.lname = nameOut.name;
    else {
      lowerBuf.set(textBuf.subarray(0, n));
      for (let i = lowerFrom; i < n; i++) {
        const c = lowerBuf[i];
        if (c >= 0x41 && c <= 0x5a) lowerBuf[i] = c | 0x20;
      }
      nameOut.lname = lowerBuf.toString('latin1', 0, n);
    }
  }
  nameOut.end = end;
  if (buf[off] < 0xc0) cacheStore(off, jumps);
  else cacheStore(((buf[off] & 0x3f) << 8) | buf[off + 1], jumps - 1);
  return true;
}

function nameFail(code: DnsAnomalyCode, at: number): false {
  nameOut.error = code;
  nameOut.errorAt = at;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Addresses

function formatIpv4At(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}


// ---------------------------------------------------------------------------------------------
// Rdata

/** Set by `decodeRdata` when a known type's rdata is malformed. */
let rdataFault: DnsAnomalyCode | undefined;

function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

function raw(buf: Uint8Array, off: number, len: number, malformed: DnsAnomalyCode | undefined): DnsRdata {
  const keep = Math.min(len, MAX_DNS_RAW_RDATA_BYTES);
  // A copy (Buffer#slice would be a view into the caller's reused buffer).
  return { kind: 'raw', length: len, bytes: new Uint8Array(buf.subarray(off, off + keep)), malformed };
}

/** After a name inside rdata failed: running past rdlength is a length fault, anything else keeps its code. */
function rdataNameFault(): undefined {
  rdataFault = nameOut.error === undefined || nameOut.error === DNS_ANOMALY.NAME_TRUNCATED ? DNS_ANOMALY.RDATA_LENGTH : nameOut.error;
  return undefined;
}

/** A name that must end exactly at `end` (CNAME, NS, PTR, and the last name of MX/SRV). */
function nameFilling(buf: Uint8Array, off: number, end: number): boolean {
  if (!decodeName(buf, off, end)) {
    rdataNameFault();
    return false;
  }
  if (nameOut.end !== end) {
    rdataFault = DNS_ANOMALY.RDATA_LENGTH;
    return false;
  }
  return true;
}

function decodeRdata(buf: Uint8Array, type: number, off: number, len: number): DnsRdata | undefined {
  const end = off + len;
  rdataFault = undefined;
  switch (type) {
    case DNS_TYPE.A:
      if (len !== 4) break;
      return { kind: 'a', address: formatIpv4At(buf, off) };
    case DNS_TYPE.AAAA:
      if (len !== 16) break;
      return { kind: 'aaaa', address: formatIpv6Bytes(buf, off) };
    case DNS_TYPE.CNAME:
    case DNS_TYPE.NS:
    case DNS_TYPE.PTR:
      if (!nameFilling(buf, off, end)) return undefined;
      return { kind: 'name', target: nameOut.name, ltarget: nameOut.lname };
    case DNS_TYPE.MX:
      if (len < 3) break;
      if (!nameFilling(buf, off + 2, end)) return undefined;
      return { kind: 'mx', preference: u16(buf, off), exchange: nameOut.name, lexchange: nameOut.lname };
    case DNS_TYPE.SRV:
      if (len < 7) break;
      if (!nameFilling(buf, off + 6, end)) return undefined;
      return { kind: 'srv', priority: u16(buf, off), weight: u16(buf, off + 2), port: u16(buf, off + 4), target: nameOut.name, ltarget: nameOut.lname };
    case DNS_TYPE.TXT: {
      // RFC 1035 §3.3.14: one or more <character-string>s, each a length byte and that many bytes.
      if (len === 0) break;
      const strings: string[] = [];
      for (let p = off; p < end;) {
        const n = buf[p];
        if (p + 1 + n > end) {
          rdataFault = DNS_ANOMALY.RDATA_LENGTH;
          return undefined;
        }
        strings.push(Buffer.from(buf.buffer, buf.byteOffset + p + 1, n).toString('latin1'));
        p += 1 + n;
      }
      return { kind: 'txt', strings };
    }
    case DNS_TYPE.SOA: {
      if (!decodeName(buf, off, end)) return rdataNameFault();
      const mname = nameOut.name;
      if (!decodeName(buf, nameOut.end, end)) return rdataNameFault();
      const rname = nameOut.name;
      const p = nameOut.end;
      if (end - p !== 20) break;
      return {
        kind: 'soa', mname, rname, serial: u32(buf, p), refresh: u32(buf, p + 4), retry: u32(buf, p + 8),
        expire: u32(buf, p + 12), minimum: u32(buf, p + 16),
      };
    }
    case DNS_TYPE.SVCB:
    case DNS_TYPE.HTTPS:
      return decodeSvcb(buf, off, end);
    case DNS_TYPE.OPT: {
      const options: number[] = [];
      for (let p = off; p < end;) {
        if (p + 4 > end || p + 4 + u16(buf, p + 2) > end) {
          rdataFault = DNS_ANOMALY.RDATA_LENGTH;
          return undefined;
        }
        options.push(u16(buf, p));
        p += 4 + u16(buf, p + 2);
      }
      return { kind: 'opt', options };
    }
    default:
      return raw(buf, off, len, undefined);
  }
  rdataFault = DNS_ANOMALY.RDATA_LENGTH;
  return undefined;
}

// SvcParamKeys (RFC 9460 §14.3.2).
const SVC_MANDATORY = 0;
const SVC_ALPN = 1;
const SVC_NO_DEFAULT_ALPN = 2;
const SVC_PORT = 3;
const SVC_IPV4HINT = 4;
const SVC_ECH = 5;
const SVC_IPV6HINT = 6;

function svcbFault(): undefined {
  rdataFault = DNS_ANOMALY.SVCB_PARAMS;
  return undefined;
}

/** RFC 9460 §2.2: SvcPriority, TargetName (uncompressed), then SvcParams in strictly increasing key order. */
function decodeSvcb(buf: Uint8Array, off: number, end: number): DnsRdata | undefined {
  if (end - off < 3) {
    rdataFault = DNS_ANOMALY.RDATA_LENGTH;
    return undefined;
  }
  const priority = u16(buf, off);
  if (!decodeName(buf, off + 2, end)) return rdataNameFault();
  const target = nameOut.name;
  const ltarget = nameOut.lname;
  let alpn: string[] | undefined;
  let noDefaultAlpn = false;
  let port: number | undefined;
  let ipv4hint: string[] | undefined;
  let ipv6hint: string[] | undefined;
  let ech = false;
  let mandatory: number[] | undefined;
  const keys: number[] = [];
  let last = -1;
  for (let p = nameOut.end; p < end;) {
    if (p + 4 > end) return svcbFault();
    const key = u16(buf, p);
    const vlen = u16(buf, p + 2);
    const v = p + 4;
    const ve = v + vlen;
    if (ve > end || key <= last) return svcbFault();
    last = key;
    keys.push(key);
    switch (key) {
      case SVC_MANDATORY:
        if (vlen === 0 || vlen % 2 !== 0) return svcbFault();
        mandatory = [];
        for (let q = v; q < ve; q += 2) mandatory.push(u16(buf, q));
        break;
      case SVC_ALPN:
        if (vlen === 0) return svcbFault();
        alpn = [];
        for (let q = v; q < ve;) {
          const n = buf[q];
          if (n === 0 || q + 1 + n > ve) return svcbFault();
          alpn.push(Buffer.from(buf.buffer, buf.byteOffset + q + 1, n).toString('latin1'));
          q += 1 + n;
        }
        break;
      case SVC_NO_DEFAULT_ALPN:
        if (vlen !== 0) return svcbFault();
        noDefaultAlpn = true;
        break;
      case SVC_PORT:
        if (vlen !== 2) return svcbFault();
        port = u16(buf, v);
        break;
      case SVC_IPV4HINT:
        if (vlen === 0 || vlen % 4 !== 0) return svcbFault();
        ipv4hint = [];
        for (let q = v; q < ve; q += 4) ipv4hint.push(formatIpv4At(buf, q));
        break;
      case SVC_ECH:
        ech = true;
        break;
      case SVC_IPV6HINT:
        if (vlen === 0 || vlen % 16 !== 0) return svcbFault();
        ipv6hint = [];
        for (let q = v; q < ve; q += 16) ipv6hint.push(formatIpv6Bytes(buf, q));
        break;
      default:
        break;
    }
    p = ve;
  }
  return {
    kind: 'svcb', priority, target, ltarget, alpn: alpn ?? NO_STRINGS, noDefaultAlpn, port,
    ipv4hint: ipv4hint ?? NO_STRINGS, ipv6hint: ipv6hint ?? NO_STRINGS, ech, mandatory: mandatory ?? NO_NUMBERS, keys,
  };
}

// ---------------------------------------------------------------------------------------------
// Message

interface ParseState {
  anomalies: DnsAnomalyCode[] | undefined;
  edns: DnsEdns | undefined;
  extRcode: number;
  records: number;
}

function addAnomaly(st: ParseState, code: DnsAnomalyCode): void {
  (st.anomalies ??= []).push(code);
}

/** Why the last `parseRecords` failed. */
let sectionFault: DnsAnomalyCode = DNS_ANOMALY.COUNT_OVERFLOW;

/**
 * Decodes `count` records from `off` into `out` (section 1 answer, 2 authority, 3 additional). Returns the
 * offset after them, or a negative value (-1 - offset) with `sectionFault` set. Stops decoding (without a
 * fault) after MAX_DNS_RECORDS in the message.
 */
function parseRecords(buf: Uint8Array, off: number, count: number, out: DnsResourceRecord[], st: ParseState, section: 1 | 2 | 3): number {
  const len = buf.length;
  for (let i = 0; i < count; i++) {
    if (st.records >= MAX_DNS_RECORDS) return off;
    if (off >= len) {
      sectionFault = DNS_ANOMALY.COUNT_OVERFLOW;
      return -1 - off;
    }
    if (!decodeName(buf, off, len)) {
      sectionFault = nameOut.error ?? DNS_ANOMALY.NAME_TRUNCATED;
      return -1 - nameOut.errorAt;
    }
    const name = nameOut.name;
    const lname = nameOut.lname;
    const p = nameOut.end;
    if (p + RR_FIXED_LEN > len) {
      sectionFault = DNS_ANOMALY.RECORD_TRUNCATED;
      return -1 - p;
    }
    const type = u16(buf, p);
    const klass = u16(buf, p + 2);
    const ttl = u32(buf, p + 4);
    const rdlen = u16(buf, p + 8);
    const rd = p + RR_FIXED_LEN;
    if (rd + rdlen > len) {
      sectionFault = DNS_ANOMALY.RDATA_TRUNCATED;
      return -1 - (p + 8);
    }
    let rdata = decodeRdata(buf, type, rd, rdlen);
    if (rdata === undefined) {
      const code = rdataFault ?? DNS_ANOMALY.RDATA_LENGTH;
      addAnomaly(st, code);
      rdata = raw(buf, rd, rdlen, code);
    }
    if (type === DNS_TYPE.OPT && rdata.kind === 'opt') {
      // RFC 6891 §6.1.1: one OPT, in the additional section, owned by the root.
      if (section !== 3 || st.edns !== undefined || lname !== '.') addAnomaly(st, DNS_ANOMALY.OPT_INVALID);
      else {
        st.edns = { udpPayloadSize: klass, version: (ttl >>> 16) & 0xff, dnssecOk: (ttl & 0x8000) !== 0, options: rdata.options };
        st.extRcode = ttl >>> 24;
      }
    }
    out.push({ name, lname, type, class: klass, ttl, rdata });
    st.records++;
    off = rd + rdlen;
  }
  return off;
}

/** Decodes one DNS message. Never throws; `bytes` is not kept (everything returned is copied). */
export function parseDnsMessage(bytes: Uint8Array): DnsParseResult {
  cacheCount = 0;
  const len = bytes.length;
  if (len < DNS_HEADER_LEN) return { error: DNS_ANOMALY.HEADER_TRUNCATED, offset: 0, header: undefined, questions: [] };
  const id = u16(bytes, H_ID);
  const flags = u16(bytes, H_FLAGS);
  const qd = u16(bytes, H_QDCOUNT);
  const an = u16(bytes, H_ANCOUNT);
  const ns = u16(bytes, H_NSCOUNT);
  const ar = u16(bytes, H_ARCOUNT);
  const header = { id, response: (flags & 0x8000) !== 0, opcode: (flags >>> 11) & 0xf, rcode: flags & 0xf };
  const questions: DnsQuestion[] = [];
  // Counts are checked against the smallest encodings first: no work (or allocation) for a 12-byte
  // message claiming 65535 records.
  if (DNS_HEADER_LEN + qd * MIN_QUESTION_LEN + (an + ns + ar) * MIN_RECORD_LEN > len) {
    return { error: DNS_ANOMALY.COUNT_OVERFLOW, offset: H_QDCOUNT, header, questions };
  }
  let off = DNS_HEADER_LEN;
  for (let i = 0; i < qd; i++) {
    if (!decodeName(bytes, off, len)) return { error: nameOut.error ?? DNS_ANOMALY.NAME_TRUNCATED, offset: nameOut.errorAt, header, questions };
    const p = nameOut.end;
    if (p + 4 > len) return { error: DNS_ANOMALY.QUESTION_TRUNCATED, offset: p, header, questions };
    questions.push({ name: nameOut.name, lname: nameOut.lname, type: u16(bytes, p), class: u16(bytes, p + 2) });
    off = p + 4;
  }
  const st: ParseState = { anomalies: undefined, edns: undefined, extRcode: 0, records: 0 };
  const answers: DnsResourceRecord[] = [];
  const authority: DnsResourceRecord[] = [];
  const additional: DnsResourceRecord[] = [];
  off = parseRecords(bytes, off, an, answers, st, 1);
  if (off >= 0) off = parseRecords(bytes, off, ns, authority, st, 2);
  if (off >= 0) off = parseRecords(bytes, off, ar, additional, st, 3);
  if (off < 0) return { error: sectionFault, offset: -1 - off, header, questions };
  const recordsTruncated = st.records >= MAX_DNS_RECORDS && st.records < an + ns + ar;
  if (!recordsTruncated && off < len) addAnomaly(st, DNS_ANOMALY.TRAILING_BYTES);
  return {
    id,
    response: header.response,
    opcode: header.opcode,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    ad: (flags & 0x0020) !== 0,
    cd: (flags & 0x0010) !== 0,
    rcode: (st.extRcode << 4) | header.rcode,
    questions,
    answers: answers.length > 0 ? answers : NO_RECORDS,
    authority: authority.length > 0 ? authority : NO_RECORDS,
    additional: additional.length > 0 ? additional : NO_RECORDS,
    edns: st.edns,
    recordsTruncated,
    anomalies: st.anomalies ?? NO_ANOMALIES,
    length: len,
  };
}

// ---------------------------------------------------------------------------------------------
// Reverse names (PTR)

/**
 * The address a reverse-lookup name stands for: `34.216.184.93.in-addr.arpa` -> `93.184.216.34`,
 * a 32-nibble `ip6.arpa` name -> its IPv6 text (RFC 3596 §2.5). Undefined for anything else (partial
 * names such as `10.in-addr.arpa` included). `lname` must be lower case.
 */
export function reverseNameToAddress(lname: string): string | undefined {
  if (lname.endsWith('.in-addr.arpa')) {
    const parts = lname.slice(0, -'.in-addr.arpa'.length).split('.');
    if (parts.length !== 4) return undefined;
    for (const p of parts) {
      if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    }
    return `${parts[3]}.${parts[2]}.${parts[1]}.${parts[0]}`;
  }
  if (lname.endsWith('.ip6.arpa')) {
    const nibbles = lname.slice(0, -'.ip6.arpa'.length).split('.');
    if (nibbles.length !== 32) return undefined;
    const b = new Uint8Array(16);
    for (let i = 0; i < 32; i++) {
      const s = nibbles[31 - i];
      if (s.length !== 1) return undefined;
      const v = parseInt(s, 16);
      if (Number.isNaN(v)) return undefined;
      b[i >> 1] |= i % 2 === 0 ? v << 4 : v;
    }
    return formatIpv6Bytes(b, 0);
  }
  return undefined;
}

/**
 * For protocol probes: does a well-formed name start at `off`? Returns the offset after its in-place
 * part, -1 when `bytes` ends inside it (more bytes could tell), -2 when it is malformed.
 */
export function checkDnsName(bytes: Uint8Array, off: number): number {
  cacheCount = 0;
  if (decodeName(bytes, off, bytes.length)) return nameOut.end;
  return nameOut.error === DNS_ANOMALY.NAME_TRUNCATED ? -1 : -2;
}

/**
 * Test support for the DNS app layer (no tests here): builds DNS messages byte by byte, independently
 * of sensor/ (constants written out from RFC 1035 / 9460), so parser tests compare against bytes made
 * another way. Names are written uncompressed unless a pointer is given explicitly with `ptr`.
 */

/** One label sequence: `name('www.example.com')` -> 03 www 07 example 03 com 00; `name('.')` is the root. */
export function name(text: string): Buffer {
  if (text === '.' || text === '') return Buffer.from([0]);
  const parts: Buffer[] = [];
  for (const label of text.split('.')) {
    const b = Buffer.from(label, 'latin1');
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/** Labels followed by a compression pointer: `labelsThenPtr('www', 12)`. */
export function labelsThenPtr(labels: string, target: number): Buffer {
  const parts: Buffer[] = [];
  if (labels.length > 0) {
    for (const label of labels.split('.')) {
      const b = Buffer.from(label, 'latin1');
      parts.push(Buffer.from([b.length]), b);
    }
  }
  parts.push(ptr(target));
  return Buffer.concat(parts);
}

/** A bare compression pointer (RFC 1035 §4.1.4). */
export function ptr(target: number): Buffer {
  return Buffer.from([0xc0 | (target >> 8), target & 0xff]);
}

export function u16(v: number): Buffer {
  return Buffer.from([(v >> 8) & 0xff, v & 0xff]);
}

export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

export interface HeaderFields {
  id?: number;
  /** The whole 16-bit flags word (default: a query with RD, 0x0100). */
  flags?: number;
  qd?: number;
  an?: number;
  ns?: number;
  ar?: number;
}

export function header(h: HeaderFields): Buffer {
  return Buffer.concat([u16(h.id ?? 0x1234), u16(h.flags ?? 0x0100), u16(h.qd ?? 0), u16(h.an ?? 0), u16(h.ns ?? 0), u16(h.ar ?? 0)]);
}

export function question(qname: Buffer | string, type: number, klass = 1): Buffer {
  return Buffer.concat([typeof qname === 'string' ? name(qname) : qname, u16(type), u16(klass)]);
}

/** A resource record; `rdlength` defaults to the rdata's length (override it for malformed cases). */
export function rr(owner: Buffer | string, type: number, rdata: Buffer, opts: { klass?: number; ttl?: number; rdlength?: number } = {}): Buffer {
  return Buffer.concat([
    typeof owner === 'string' ? name(owner) : owner, u16(type), u16(opts.klass ?? 1), u32(opts.ttl ?? 300),
    u16(opts.rdlength ?? rdata.length), rdata,
  ]);
}

export function ipv4(text: string): Buffer {
  return Buffer.from(text.split('.').map(Number));
}

/** Full 8-group IPv6 text only (tests spell addresses out). */
export function ipv6Full(text: string): Buffer {
  const groups = text.split(':');
  if (groups.length !== 8) throw new Error(`ipv6Full needs 8 groups: ${text}`);
  return Buffer.concat(groups.map((g) => u16(parseInt(g, 16))));
}

/** One SvcParam (RFC 9460 §2.2): key, length, value. */
export function svcParam(key: number, value: Buffer): Buffer {
  return Buffer.concat([u16(key), u16(value.length), value]);
}

/** The RFC 9460 alpn value: length-prefixed protocol ids. */
export function alpnValue(...ids: string[]): Buffer {
  return Buffer.concat(ids.map((id) => Buffer.concat([Buffer.from([id.length]), Buffer.from(id, 'latin1')])));
}

/** A DNS-over-TCP frame: 2-byte length, then the message (RFC 1035 §4.2.2). */
export function tcpFrame(message: Buffer): Buffer {
  return Buffer.concat([u16(message.length), message]);
}

/** A whole message from sections, counts filled in from the arrays. */
export function message(h: Omit<HeaderFields, 'qd' | 'an' | 'ns' | 'ar'>, sections: { qd?: Buffer[]; an?: Buffer[]; ns?: Buffer[]; ar?: Buffer[] }): Buffer {
  const qd = sections.qd ?? [];
  const an = sections.an ?? [];
  const ns = sections.ns ?? [];
  const ar = sections.ar ?? [];
  return Buffer.concat([header({ ...h, qd: qd.length, an: an.length, ns: ns.length, ar: ar.length }), ...qd, ...an, ...ns, ...ar]);
}

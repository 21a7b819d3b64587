/**
 * Test capture-file writer: classic pcap (either byte order, micro- or nanosecond) and pcapng
 * (sections, interfaces with if_tsresol / if_tsoffset, EPB, SPB, obsolete PB, any other block)
 * into a Buffer, plus each record's byte offset so truncation tests can cut exactly. Every length
 * field can be overridden to build corrupt files (draft-ietf-opsawg-pcap, draft-ietf-opsawg-pcapng).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

type ByteOrder = 'le' | 'be';

// ---------------------------------------------------------------------------------------------
// Classic pcap

export interface PcapPacket {
  data: Uint8Array;
  /** Timestamp in microseconds since the epoch (converted to sec + usec/nsec). Default 0. */
  tsUs?: number;
  /** Raw timestamp fields, overriding `tsUs`: seconds and the fraction in the file's unit. */
  sec?: number;
  frac?: number;
  /** Original length on the wire (default data length). */
  origLen?: number;
  /** Override the captured-length field (the data written is still `data`). */
  capLen?: number;
}

export interface PcapFileOptions {
  /** Link type (default 1, Ethernet); the whole 32-bit field, so FCS bits can be set too. */
  linkType?: number;
  byteOrder?: ByteOrder;
  /** Nanosecond magic 0xa1b23c4d (default microsecond 0xa1b2c3d4). */
  nanosecond?: boolean;
  snaplen?: number;
}

export interface EncodedCapture {
  buf: Buffer;
  /** Byte offset of each packet record (pcap) or block (pcapng), in input order. */
  offsets: number[];
}

/** Classic pcap file: 24-byte global header, then a 16-byte header + data per packet. */
export function encodePcap(packets: PcapPacket[], o: PcapFileOptions = {}): EncodedCapture {
  const le = (o.byteOrder ?? 'le') === 'le';
  const nano = o.nanosecond === true;
  const w32 = (b: Buffer, v: number, at: number) => (le ? b.writeUInt32LE(v >>> 0, at) : b.writeUInt32BE(v >>> 0, at));
  const w16 = (b: Buffer, v: number, at: number) => (le ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));
  const g = Buffer.alloc(24);
  w32(g, nano ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  w16(g, 2, 4);
  w16(g, 4, 6);
  w32(g, o.snaplen ?? 262144, 16);
  w32(g, o.linkType ?? 1, 20);
  const parts: Buffer[] = [g];
  const offsets: number[] = [];
  let at = 24;
  for (const p of packets) {
    const ts = p.tsUs ?? 0;
    const sec = p.sec ?? Math.floor(ts / 1e6);
    const frac = p.frac ?? (nano ? (ts % 1e6) * 1000 : ts % 1e6);
    const h = Buffer.alloc(16);
    w32(h, sec, 0);
    w32(h, frac, 4);
    w32(h, p.capLen ?? p.data.length, 8);
    w32(h, p.origLen ?? p.data.length, 12);
    offsets.push(at);
    parts.push(h, Buffer.from(p.data));
    at += 16 + p.data.length;
  }
  return { buf: Buffer.concat(parts), offsets };
}

/** `encodePcap(...).buf`. */
export function writePcap(packets: PcapPacket[], o: PcapFileOptions = {}): Buffer {
  return encodePcap(packets, o).buf;
}

// ---------------------------------------------------------------------------------------------
// pcapng

export interface PcapngOption {
  code: number;
  value: Uint8Array;
}

interface BlockOverrides {
  /** Override the leading total-length field. */
  totalLength?: number;
  /** Override the trailing total-length field. */
  trailerLength?: number;
}

export interface ShbBlock extends BlockOverrides {
  type: 'shb';
  /** Byte order of this section (default 'le'); every later block follows it. */
  byteOrder?: ByteOrder;
  options?: PcapngOption[];
}

export interface IdbBlock extends BlockOverrides {
  type: 'idb';
  linkType: number;
  snaplen?: number;
  /** Raw if_tsresol byte: 6 = microseconds (default, option omitted), 9 = ns, 0x80 | k = 2^-k s. */
  tsresol?: number;
  /** if_tsoffset in seconds, signed (added to every timestamp of the interface). */
  tsoffset?: number;
  /** if_name option. */
  name?: string;
  options?: PcapngOption[];
}

export interface EpbBlock extends BlockOverrides {
  type: 'epb';
  /** Interface id within the section (default 0). */
  ifId?: number;
  /** Timestamp in interface units (raw 64 bits), or `tsUs` converted with the interface's resolution. */
  ts?: bigint;
  tsUs?: number;
  data: Uint8Array;
  origLen?: number;
  /** Override the captured-length field. */
  capLen?: number;
  options?: PcapngOption[];
}

export interface PbBlock extends BlockOverrides {
  type: 'pb';
  ifId?: number;
  ts?: bigint;
  tsUs?: number;
  data: Uint8Array;
  origLen?: number;
  drops?: number;
}

export interface SpbBlock extends BlockOverrides {
  type: 'spb';
  data: Uint8Array;
  /** Original length (default data length); the reader takes min(origLen, body) as captured. */
  origLen?: number;
}

/** Any other block (name resolution 4, statistics 5, decryption secrets 0x0a, custom...). */
export interface RawBlock extends BlockOverrides {
  type: 'raw';
  blockType: number;
  body: Uint8Array;
}

export type PcapngBlock = ShbBlock | IdbBlock | EpbBlock | PbBlock | SpbBlock | RawBlock;

export const PCAPNG_OPT = { ENDOFOPT: 0, COMMENT: 1, IF_NAME: 2, IF_TSRESOL: 9, IF_TSOFFSET: 14, EPB_FLAGS: 2 } as const;

function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** Timestamp in interface units for `tsUs` at resolution byte `tsresol` (rounded down). */
export function pcapngUnits(tsUs: number, tsresol = 6): bigint {
  const us = BigInt(Math.round(tsUs));
  if (tsresol & 0x80) return (us << BigInt(tsresol & 0x7f)) / 1000000n;
  if (tsresol >= 6) return us * 10n ** BigInt(tsresol - 6);
  return us / 10n ** BigInt(6 - tsresol);
}

/** pcapng file from blocks in order; the first block should be an 'shb'. */
export function encodePcapng(blocks: PcapngBlock[]): EncodedCapture {
  let le = true;
  let resolutions: number[] = [];
  const parts: Buffer[] = [];
  const offsets: number[] = [];
  let at = 0;

  const optionBytes = (opts: PcapngOption[]): Buffer => {
    if (opts.length === 0) return Buffer.alloc(0);
    const out: Buffer[] = [];
    for (const op of opts) {
      const h = Buffer.alloc(4);
      if (le) {
        h.writeUInt16LE(op.code, 0);
        h.writeUInt16LE(op.value.length, 2);
      } else {
        h.writeUInt16BE(op.code, 0);
        h.writeUInt16BE(op.value.length, 2);
      }
      out.push(h, Buffer.from(op.value), Buffer.alloc(pad4(op.value.length) - op.value.length));
    }
    out.push(Buffer.alloc(4)); // opt_endofopt
    return Buffer.concat(out);
  };
  const u32 = (v: number): Buffer => {
    const b = Buffer.alloc(4);
    if (le) b.writeUInt32LE(v >>> 0);
    else b.writeUInt32BE(v >>> 0);
    return b;
  };
  const u16pair = (a: number, b2: number): Buffer => {
    const b = Buffer.alloc(4);
    if (le) {
      b.writeUInt16LE(a, 0);
      b.writeUInt16LE(b2, 2);
    } else {
      b.writeUInt16BE(a, 0);
      b.writeUInt16BE(b2, 2);
    }
    return b;
  };
  const u64 = (v: bigint): Buffer => {
    const b = Buffer.alloc(8);
    if (le) b.writeBigUInt64LE(v);
    else b.writeBigUInt64BE(v);
    return b;
  };
  const tsOf = (blk: EpbBlock | PbBlock): bigint => {
    if (blk.ts !== undefined) return blk.ts;
    return pcapngUnits(blk.tsUs ?? 0, resolutions[blk.ifId ?? 0] ?? 6);
  };
  const packetData = (data: Uint8Array): Buffer => Buffer.concat([Buffer.from(data), Buffer.alloc(pad4(data.length) - data.length)]);

  for (const blk of blocks) {
    let type: number;
    let body: Buffer;
    switch (blk.type) {
      case 'shb': {
        le = (blk.byteOrder ?? 'le') === 'le';
        resolutions = [];
        type = 0x0a0d0d0a;
        const sectionLen = Buffer.alloc(8, 0xff); // -1: not specified
        body = Buffer.concat([u32(0x1a2b3c4d), u16pair(1, 0), sectionLen, optionBytes(blk.options ?? [])]);
        break;
      }
      case 'idb': {
        type = 1;
        const opts: PcapngOption[] = [];
        if (blk.name !== undefined) opts.push({ code: PCAPNG_OPT.IF_NAME, value: Buffer.from(blk.name) });
        if (blk.tsresol !== undefined) opts.push({ code: PCAPNG_OPT.IF_TSRESOL, value: Buffer.from([blk.tsresol]) });
        if (blk.tsoffset !== undefined) opts.push({ code: PCAPNG_OPT.IF_TSOFFSET, value: u64(BigInt.asUintN(64, BigInt(blk.tsoffset))) });
        opts.push(...(blk.options ?? []));
        resolutions.push(blk.tsresol ?? 6);
        body = Buffer.concat([u16pair(blk.linkType, 0), u32(blk.snaplen ?? 0), optionBytes(opts)]);
        break;
      }
      case 'epb': {
        type = 6;
        const ts = tsOf(blk);
        body = Buffer.concat([
          u32(blk.ifId ?? 0), u32(Number(ts >> 32n)), u32(Number(ts & 0xffffffffn)),
          u32(blk.capLen ?? blk.data.length), u32(blk.origLen ?? blk.data.length),
          packetData(blk.data), optionBytes(blk.options ?? []),
        ]);
        break;
      }
      case 'pb': {
        type = 2;
        const ts = tsOf(blk);
        body = Buffer.concat([
          u16pair(blk.ifId ?? 0, blk.drops ?? 0), u32(Number(ts >> 32n)), u32(Number(ts & 0xffffffffn)),
          u32(blk.data.length), u32(blk.origLen ?? blk.data.length), packetData(blk.data),
        ]);
        break;
      }
      case 'spb':
        type = 3;
        body = Buffer.concat([u32(blk.origLen ?? blk.data.length), packetData(blk.data)]);
        break;
      case 'raw':
        type = blk.blockType;
        body = Buffer.concat([Buffer.from(blk.body), Buffer.alloc(pad4(blk.body.length) - blk.body.length)]);
        break;
    }
    const total = 12 + body.length;
    offsets.push(at);
    parts.push(u32(type), u32(blk.totalLength ?? total), body, u32(blk.trailerLength ?? total));
    at += total;
  }
  return { buf: Buffer.concat(parts), offsets };
}

/** `encodePcapng(...).buf`. */
export function writePcapng(blocks: PcapngBlock[]): Buffer {
  return encodePcapng(blocks).buf;
}

// ---------------------------------------------------------------------------------------------
// Files

/**
 * Writes `content` to a fresh temporary directory, calls `fn(path)` and removes the directory
 * afterwards (also when `fn` throws; after the promise settles when `fn` returns one).
 * `name` sets the file name (default capture.pcap).
 */
export function withTempFile<T>(content: Uint8Array | string, fn: (file: string) => T, name = 'capture.pcap'): T {
  const dir = mkdtempSync(path.join(tmpdir(), 'hark-test-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  let deferred = false;
  try {
    const file = path.join(dir, name);
    writeFileSync(file, content);
    const result = fn(file);
    if (result instanceof Promise) {
      deferred = true;
      return result.finally(cleanup) as T;
    }
    return result;
  } finally {
    if (!deferred) cleanup();
  }
}

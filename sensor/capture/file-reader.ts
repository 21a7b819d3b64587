/**
 * Capture file source: classic pcap (both byte orders, micro- and nanosecond) and pcapng (any number
 * of sections and interfaces, each with its own link type and timestamp resolution; EPB, SPB and the
 * obsolete PB; unknown blocks skipped). Input: a file path. Output: one `PacketHandler` call per
 * packet, in file order, with a view into a reused read buffer (valid only during the call, or
 * until `ReadOptions.onOverwrite` announces its bytes, for a consumer that asked to be told).
 * A truncated or corrupt file stops at the first bad record with a `CaptureFileProblem` naming the
 * byte offset and what was wrong; every packet before it has been delivered. Never throws on file
 * content; throws `CaptureFileError` only when the file cannot be opened (missing, a directory), is
 * not a capture at all, or a read fails (EIO): the error names the file and what happened.
 * Reads are sequential, so a named pipe or character device (`/dev/stdin`) works as well as a file.
 *
 * Why not pcap-parser: it rejects nanosecond files (magic a1b23c4d), reports no truncation or
 * offsets, and emits an object per packet through an EventEmitter, which alone costs more than
 * the 1 GB/s budget. It stays as a test oracle (test/capture/file-reader.test.ts).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export type PacketHandler = (
  linkType: number,
  buf: Uint8Array,
  off: number,
  capLen: number,
  origLen: number,
  tsUs: number,
  ifIndex: number,
) => void;

export interface CaptureFileProblem {
  /** Byte offset in the file of the record (or header) that could not be read. */
  readonly offset: number;
  readonly message: string;
}

export interface ReadSummary {
  readonly format: 'pcap' | 'pcapng';
  readonly packets: number;
  readonly bytesRead: number;
  readonly fileSize: number;
  readonly problem?: CaptureFileProblem;
}

export interface ReadOptions {
  /** Called about every `CHUNK_BYTES` with the bytes consumed so far. */
  onProgress?: (bytesRead: number, fileSize: number) => void;
  /**
   * Size of the read buffer (default `CHUNK_BYTES`). The file is still read `CHUNK_BYTES` at a
   * time, appended until the buffer is full; a larger buffer only keeps packets that were handed
   * out in place for longer (see `onOverwrite`).
   */
  windowBytes?: number;
  /**
   * Called before the reader writes `buf[from..to)`: views of those bytes handed out earlier are
   * about to change. Until then they stay valid, which lets a consumer defer copying them.
   * Calls come in write order: `from` restarts at 0 each time the reader wraps to the buffer's
   * start, and `buf` changes when a record outgrows the buffer.
   */
  onOverwrite?: (buf: Uint8Array, from: number, to: number) => void;
}

export class CaptureFileError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * Read size (and the default buffer size). Small on purpose: the bytes read stream through the CPU
 * caches, and 4 MiB reads evicted the flow table and reassembly state on every fill (the engine ran
 * 30% slower than with 512 KiB on the benchmark workload; 64 KiB costs more in read calls). A larger
 * buffer (`windowBytes`) is still filled one read of this size at a time.
 */
export const CHUNK_BYTES = 512 << 10;
/**
 * Latest packet time accepted from a pcapng file (9999-12-31T23:59:59Z): its 64-bit timestamps,
 * resolution and offset can name any time, but events carry ISO 8601 times with four-digit years,
 * so a time beyond this (or before 1970) can only come from a corrupt block.
 */
const MAX_TIMESTAMP_US = 253_402_300_799_999_999;
/** A simple packet block: type, length, original length, trailing length. */
const SPB_MIN_BYTES = 16;
/** Largest record accepted: libpcap's MAXIMUM_SNAPLEN is 262144; pcapng blocks may carry options. */
const MAX_RECORD_BYTES = 16 << 20;
const MAX_SNAPLEN = 262144;

const PCAP_MAGIC_US = 0xa1b2c3d4;
const PCAP_MAGIC_NS = 0xa1b23c4d;
const PCAP_MAGIC_US_SWAPPED = 0xd4c3b2a1;
const PCAP_MAGIC_NS_SWAPPED = 0x4d3cb2a1;
const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;

const PCAP_GLOBAL_HEADER = 24;
const PCAP_RECORD_HEADER = 16;
// pcap global header field offsets
const PCAP_OFF_SNAPLEN = 16;
const PCAP_OFF_LINKTYPE = 20;
// pcap record header field offsets
const REC_OFF_TS_SEC = 0;
const REC_OFF_TS_FRAC = 4;
const REC_OFF_CAPLEN = 8;
const REC_OFF_ORIGLEN = 12;

// pcapng block types (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html section 10.1)
const BT_IDB = 0x00000001;
const BT_PB = 0x00000002;
const BT_SPB = 0x00000003;
const BT_EPB = 0x00000006;
const OPT_ENDOFOPT = 0;
const OPT_IF_TSRESOL = 9;
const OPT_IF_TSOFFSET = 14;

function rd32le(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}
function rd32be(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}
function rd16le(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}
function rd16be(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

/**
 * Buffered sequential reader over a file descriptor. Reads of at most CHUNK_BYTES are appended to
 * the buffer until a record no longer fits before its end; the unread remainder then moves to the
 * front and filling starts over there. Packets are handed out as views of a plain Uint8Array over
 * the same memory: subarrays of it are much cheaper than Buffer subarrays, and consumers never
 * need Buffer methods.
 */
class Window {
  buf: Buffer;
  u8: Uint8Array;
  start = 0; // index in buf of file offset `base`
  end = 0; // valid bytes end in buf
  base = 0; // file offset of buf[start]
  eof = false;
  constructor(
    private readonly fd: number,
    private readonly path: string,
    size: number,
    private readonly onOverwrite: ((buf: Uint8Array, from: number, to: number) => void) | undefined,
  ) {
    // `need` replaces buf and u8 when a record outgrows them; writing them twice now keeps V8 from
    // treating them as constants and deoptimising the reader loop at that moment.
    this.buf = Buffer.allocUnsafe(0);
    this.u8 = new Uint8Array(0);
    this.buf = Buffer.allocUnsafe(size);
    this.u8 = new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  }

  /** Ensures `n` bytes are available at `start`; false at end of file. */
  need(n: number): boolean {
    return this.end - this.start >= n || this.fill(n);
  }

  /**
   * Reads until `n` bytes are available at `start`. Kept apart from `need`, which the record loop
   * inlines: V8 then recompiles only this small function when the wrap to the buffer's start is
   * first taken, not the whole loop.
   */
  private fill(n: number): boolean {
    if (this.eof) return false;
    if (this.start + n > this.buf.length) {
      // The record does not fit before the end: move the remainder to the front, or to a bigger
      // buffer if a single record is larger than this one.
      const have = this.end - this.start;
      if (n > this.buf.length) {
        const bigger = Buffer.allocUnsafe(Math.max(n, this.buf.length * 2));
        const u8 = new Uint8Array(bigger.buffer, bigger.byteOffset, bigger.length);
        this.onOverwrite?.(u8, 0, have);
        this.buf.copy(bigger, 0, this.start, this.end);
        this.buf = bigger;
        this.u8 = u8;
      } else {
        this.onOverwrite?.(this.u8, 0, have);
        this.buf.copy(this.buf, 0, this.start, this.end);
      }
      this.start = 0;
      this.end = have;
    }
    while (this.end - this.start < n) {
      const want = Math.min(CHUNK_BYTES, this.buf.length - this.end);
      this.onOverwrite?.(this.u8, this.end, this.end + want);
      let got: number;
      try {
        got = readSync(this.fd, this.buf, this.end, want, null);
      } catch (err) {
        const offset = this.base + (this.end - this.start);
        throw new CaptureFileError('E_CAPTURE_READ', `Cannot read capture file "${this.path}" at byte offset ${offset}: ${(err as Error).message}`, { cause: err });
      }
      if (got === 0) {
        this.eof = true;
        return false;
      }
      this.end += got;
    }
    return true;
  }

  skip(n: number): void {
    this.start += n;
    this.base += n;
  }
}

/** Reads a whole capture file, calling `onPacket` for each packet. */
export function readCaptureFile(path: string, onPacket: PacketHandler, opts: ReadOptions = {}): ReadSummary {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CaptureFileError('E_CAPTURE_OPEN', `Cannot open capture file "${path}": ${e.code === 'ENOENT' ? 'no such file' : e.message}`, { cause: err });
  }
  try {
    const st = fstatSync(fd);
    // Sequential reads serve a pipe or a character device too; a directory opens but every read
    // fails (EISDIR), and a block device is a disk, not a capture.
    if (!(st.isFile() || st.isFIFO() || st.isCharacterDevice())) {
      throw new CaptureFileError('E_CAPTURE_OPEN', `Cannot open capture file "${path}": ${st.isDirectory() ? 'is a directory' : 'not a file, pipe or character device'}`);
    }
    const fileSize = st.size;
    const w = new Window(fd, path, Math.max(CHUNK_BYTES, opts.windowBytes ?? CHUNK_BYTES), opts.onOverwrite);
    if (!w.need(4)) {
      throw new CaptureFileError('E_CAPTURE_FORMAT', `Cannot read capture file "${path}": ${fileSize === 0 ? 'the file is empty' : 'the file is shorter than any capture header'}`);
    }
    const magicLE = w.buf.readUInt32LE(w.start);
    const magicBE = w.buf.readUInt32BE(w.start);
    if (magicBE === PCAPNG_SHB) return readPcapng(w, fileSize, onPacket, opts);
    if (magicLE === PCAP_MAGIC_US || magicLE === PCAP_MAGIC_NS || magicBE === PCAP_MAGIC_US || magicBE === PCAP_MAGIC_NS) {
      return readPcap(w, fileSize, onPacket, opts);
    }
    if (magicLE === PCAP_MAGIC_US_SWAPPED || magicLE === PCAP_MAGIC_NS_SWAPPED) {
      return readPcap(w, fileSize, onPacket, opts);
    }
    throw new CaptureFileError('E_CAPTURE_FORMAT', `Cannot read capture file "${path}": not a pcap or pcapng file (magic 0x${magicBE.toString(16).padStart(8, '0')})`);
  } finally {
    closeSync(fd);
  }
}

function readPcap(w: Window, fileSize: number, onPacket: PacketHandler, opts: ReadOptions): ReadSummary {
  const onProgress = opts.onProgress;
  let packets = 0;
  const done = (problem?: CaptureFileProblem): ReadSummary => ({ format: 'pcap', packets, bytesRead: w.base, fileSize, problem });
  if (!w.need(PCAP_GLOBAL_HEADER)) {
    return done({ offset: 0, message: `truncated pcap global header: ${fileSize} of ${PCAP_GLOBAL_HEADER} bytes` });
  }
  const b0 = w.u8;
  const magic = rd32le(b0, w.start);
  const le = magic === PCAP_MAGIC_US || magic === PCAP_MAGIC_NS;
  const nano = le ? magic === PCAP_MAGIC_NS : rd32be(b0, w.start) === PCAP_MAGIC_NS;
  const u32 = le ? rd32le : rd32be;
  const snaplen = u32(b0, w.start + PCAP_OFF_SNAPLEN);
  // The upper 16 bits of the link type field may carry FCS information (pcap-linktype(7)):
  // FCS length in bits 28-31 and its flag in bit 26 (draft-ietf-opsawg-pcap section 4).
  const linkType = u32(b0, w.start + PCAP_OFF_LINKTYPE) & 0xffff;
  const maxCap = Math.max(MAX_SNAPLEN, snaplen > MAX_RECORD_BYTES ? MAX_SNAPLEN : snaplen);
  w.skip(PCAP_GLOBAL_HEADER);
  let nextProgress = CHUNK_BYTES;
  for (;;) {
    if (!w.need(PCAP_RECORD_HEADER)) {
      const left = w.end - w.start;
      return done(left === 0 ? undefined : { offset: w.base, message: `truncated packet record header: ${left} of ${PCAP_RECORD_HEADER} bytes before end of file` });
    }
    const b = w.u8;
    const s = w.start;
    const tsSec = le ? rd32le(b, s + REC_OFF_TS_SEC) : rd32be(b, s + REC_OFF_TS_SEC);
    const tsFrac = le ? rd32le(b, s + REC_OFF_TS_FRAC) : rd32be(b, s + REC_OFF_TS_FRAC);
    const capLen = le ? rd32le(b, s + REC_OFF_CAPLEN) : rd32be(b, s + REC_OFF_CAPLEN);
    const origLen = le ? rd32le(b, s + REC_OFF_ORIGLEN) : rd32be(b, s + REC_OFF_ORIGLEN);
    if (capLen > maxCap) {
      return done({ offset: w.base, message: `corrupt packet record ${packets + 1}: captured length ${capLen} exceeds the maximum ${maxCap}` });
    }
    if ((nano ? tsFrac >= 1e9 : tsFrac >= 1e6)) {
      return done({ offset: w.base, message: `corrupt packet record ${packets + 1}: fractional timestamp ${tsFrac} out of range` });
    }
    const recLen = PCAP_RECORD_HEADER + capLen;
    if (!w.need(recLen)) {
      const left = w.end - w.start;
      return done({ offset: w.base, message: `truncated packet record ${packets + 1}: header says ${capLen} bytes, file ends after ${left - PCAP_RECORD_HEADER}` });
    }
    const tsUs = tsSec * 1e6 + (nano ? Math.floor(tsFrac / 1000) : tsFrac);
    packets++;
    onPacket(linkType, w.u8, w.start + PCAP_RECORD_HEADER, capLen, origLen < capLen ? capLen : origLen, tsUs, 0);
    w.skip(recLen);
    if (onProgress !== undefined && w.base >= nextProgress) {
      onProgress(w.base, fileSize);
      nextProgress = w.base + CHUNK_BYTES;
    }
  }
}

interface PcapngInterface {
  linkType: number;
  snaplen: number;
  /** Timestamp units per second as a power: 10^-k (decimal) or 2^-k. */
  unitsPerSecond: number;
  decimalDigits: number; // k when decimal, -1 when binary
  offsetSec: number;
}

function readPcapng(w: Window, fileSize: number, onPacket: PacketHandler, opts: ReadOptions): ReadSummary {
  const onProgress = opts.onProgress;
  let packets = 0;
  let le = true;
  let ifaces: PcapngInterface[] = [];
  let globalIfBase = 0; // interface numbering across sections, for the merged view
  let nextProgress = CHUNK_BYTES;
  const done = (problem?: CaptureFileProblem): ReadSummary => ({ format: 'pcapng', packets, bytesRead: w.base, fileSize, problem });
  for (;;) {
    if (!w.need(8)) {
      const left = w.end - w.start;
      return done(left === 0 ? undefined : { offset: w.base, message: `truncated block header: ${left} of 8 bytes before end of file` });
    }
    let b = w.u8;
    let s = w.start;
    const typeBE = rd32be(b, s);
    if (typeBE === PCAPNG_SHB) {
      if (!w.need(12)) return done({ offset: w.base, message: 'truncated section header block' });
      b = w.u8;
      s = w.start;
      const bom = rd32le(b, s + 8);
      if (bom === PCAPNG_BYTE_ORDER_MAGIC) le = true;
      else if (rd32be(b, s + 8) === PCAPNG_BYTE_ORDER_MAGIC) le = false;
      else return done({ offset: w.base, message: `corrupt section header block: byte-order magic 0x${bom.toString(16)}` });
      globalIfBase += ifaces.length;
      ifaces = [];
    }
    const u32 = le ? rd32le : rd32be;
    const u16 = le ? rd16le : rd16be;
    const type = le ? rd32le(b, s) : typeBE;
    const blockLen = u32(b, s + 4);
    if (blockLen < 12 || blockLen % 4 !== 0 || blockLen > MAX_RECORD_BYTES) {
      return done({ offset: w.base, message: `corrupt block (type 0x${type.toString(16)}): total length ${blockLen} is invalid` });
    }
    if (!w.need(blockLen)) {
      return done({ offset: w.base, message: `truncated block (type 0x${type.toString(16)}): length ${blockLen}, file ends after ${w.end - w.start} bytes` });
    }
    b = w.u8;
    s = w.start;
    const trailer = u32(b, s + blockLen - 4);
    if (trailer !== blockLen) {
      return done({ offset: w.base, message: `corrupt block (type 0x${type.toString(16)}): leading length ${blockLen} differs from trailing length ${trailer}` });
    }
    const bodyEnd = blockLen - 4;
    if (type === BT_IDB) {
      if (blockLen < 20) return done({ offset: w.base, message: `corrupt interface description block: length ${blockLen}` });
      const iface: PcapngInterface = { linkType: u16(b, s + 8), snaplen: u32(b, s + 12), unitsPerSecond: 1e6, decimalDigits: 6, offsetSec: 0 };
      // Options: code(2) len(2) value padded to 4.
      let o = 16;
      while (o + 4 <= bodyEnd) {
        const code = u16(b, s + o);
        const len = u16(b, s + o + 2);
        if (code === OPT_ENDOFOPT) break;
        if (o + 4 + len > bodyEnd) return done({ offset: w.base + o, message: 'corrupt interface description block: option overruns block' });
        if (code === OPT_IF_TSRESOL && len >= 1) {
          const v = b[s + o + 4];
          if (v & 0x80) {
            iface.decimalDigits = -1;
            iface.unitsPerSecond = 2 ** (v & 0x7f);
          } else {
            iface.decimalDigits = v;
            iface.unitsPerSecond = 10 ** v;
          }
        } else if (code === OPT_IF_TSOFFSET && len >= 8) {
          const hi = u32(b, s + o + 4);
          const lo = u32(b, s + o + 8);
          // A signed 64-bit count of seconds (pcapng section 4.2): the high word carries the sign.
          iface.offsetSec = le ? (lo | 0) * 4294967296 + hi : (hi | 0) * 4294967296 + lo;
        }
        o += 4 + ((len + 3) & ~3);
      }
      ifaces.push(iface);
    } else if (type === BT_EPB || type === BT_PB) {
      if (blockLen < 32) return done({ offset: w.base, message: `corrupt packet block: length ${blockLen}` });
      const ifId = type === BT_EPB ? u32(b, s + 8) : u16(b, s + 8);
      const iface = ifaces[ifId];
      if (iface === undefined) return done({ offset: w.base, message: `corrupt packet block: interface ${ifId} was never described` });
      const capLen = u32(b, s + 20);
      const origLen = u32(b, s + 24);
      if (28 + capLen > bodyEnd) return done({ offset: w.base, message: `corrupt packet block: captured length ${capLen} exceeds block length ${blockLen}` });
      const tsUs = pcapngTimestampUs(iface, u32(b, s + 12), u32(b, s + 16));
      if (!(tsUs >= 0 && tsUs <= MAX_TIMESTAMP_US)) {
        return done({ offset: w.base, message: `corrupt packet block: timestamp ${tsUs} µs is outside 1970-9999 (resolution or time offset of interface ${ifId} corrupt?)` });
      }
      packets++;
      onPacket(iface.linkType, b, s + 28, capLen, origLen < capLen ? capLen : origLen, tsUs, globalIfBase + ifId);
    } else if (type === BT_SPB) {
      if (blockLen < SPB_MIN_BYTES) return done({ offset: w.base, message: `corrupt simple packet block: length ${blockLen}` });
      const iface = ifaces[0];
      if (iface === undefined) return done({ offset: w.base, message: 'corrupt simple packet block: no interface described' });
      const origLen = u32(b, s + 8);
      let capLen = Math.min(origLen, bodyEnd - 12);
      if (iface.snaplen > 0 && capLen > iface.snaplen) capLen = iface.snaplen;
      packets++;
      // A simple packet block carries no timestamp.
      onPacket(iface.linkType, b, s + 12, capLen, origLen, 0, globalIfBase);
    }
    // Other blocks (name resolution, statistics, decryption secrets, custom) are skipped.
    w.skip(blockLen);
    if (onProgress !== undefined && w.base >= nextProgress) {
      onProgress(w.base, fileSize);
      nextProgress = w.base + CHUNK_BYTES;
    }
  }
}

function pcapngTimestampUs(iface: PcapngInterface, hi: number, lo: number): number {
  const offUs = iface.offsetSec * 1e6;
  if (iface.decimalDigits === 6) return hi * 4294967296 + lo + offUs;
  // Other resolutions: exact integer arithmetic (nanosecond counts exceed 2^53).
  const units = (BigInt(hi) << 32n) | BigInt(lo);
  if (iface.decimalDigits >= 0) {
    const k = iface.decimalDigits;
    const us = k > 6 ? units / 10n ** BigInt(k - 6) : units * 10n ** BigInt(6 - k);
    return Number(us) + offUs;
  }
  return Number((units * 1000000n) / BigInt(iface.unitsPerSecond)) + offUs;
}

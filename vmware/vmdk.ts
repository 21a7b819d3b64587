/**
 * Reads the header of a hosted sparse VMDK extent (monolithicSparse, streamOptimized): the first
 * 512-byte sector ("KDMV" SparseExtentHeader, VMDK spec 5.0 section "Hosted Sparse Extent Header")
 * plus the embedded text descriptor. Input: the first bytes of the file; output: virtual size and
 * create type, or undefined plus a reason. Never throws on the bytes.
 */

export interface VmdkInfo {
  /** Virtual disk size in bytes (capacity sectors x 512). */
  readonly capacityBytes: number;
  readonly version: number;
  /** createType from the embedded descriptor, e.g. "streamOptimized"; '' when absent. */
  readonly createType: string;
  /** 1 = deflate (streamOptimized), 0 = none. */
  readonly compressAlgorithm: number;
}

export const VMDK_SECTOR = 512;
/** Bytes to read from the start of a file: header sector plus a descriptor of the usual size. */
export const VMDK_HEAD_BYTES = 64 * 1024;
/** The descriptor is text of a few hundred bytes; anything larger is not from qemu-img or VMware. */
const MAX_DESCRIPTOR_BYTES = 64 * 1024;

const MAGIC = 0x564d444b; // "KDMV" read as a little-endian uint32
// SparseExtentHeader field offsets (all little-endian).
const OFF = { magic: 0, version: 4, flags: 8, capacity: 12, grainSize: 20, descriptorOffset: 28, descriptorSize: 36, compressAlgorithm: 77 } as const;
const HEADER_LEN = 79;

export function readVmdkHeader(head: Uint8Array): { ok: true; info: VmdkInfo } | { ok: false; reason: string } {
  if (head.length < HEADER_LEN) return { ok: false, reason: `only ${head.length} bytes: a VMDK sparse header needs ${HEADER_LEN}` };
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (dv.getUint32(OFF.magic, true) !== MAGIC) return { ok: false, reason: 'no "KDMV" magic: not a hosted sparse VMDK' };
  const version = dv.getUint32(OFF.version, true);
  if (version < 1 || version > 3) return { ok: false, reason: `unknown sparse header version ${version}` };
  const capacity = dv.getBigUint64(OFF.capacity, true);
  const capacityBytes = capacity * BigInt(VMDK_SECTOR);
  if (capacityBytes > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, reason: `capacity ${capacity} sectors is out of range` };
  const descOff = Number(dv.getBigUint64(OFF.descriptorOffset, true) & 0xffffffffn) * VMDK_SECTOR;
  const descLen = Math.min(Number(dv.getBigUint64(OFF.descriptorSize, true) & 0xffffffffn) * VMDK_SECTOR, MAX_DESCRIPTOR_BYTES);
  let createType = '';
  if (descOff > 0 && descLen > 0 && descOff < head.length) {
    const end = Math.min(descOff + descLen, head.length);
    const slice = head.subarray(descOff, end);
    const nul = slice.indexOf(0);
    const text = new TextDecoder('latin1').decode(nul === -1 ? slice : slice.subarray(0, nul));
    createType = /^createType\s*=\s*"([^"]*)"/m.exec(text)?.[1] ?? '';
  }
  return { ok: true, info: { capacityBytes: Number(capacityBytes), version, createType, compressAlgorithm: dv.getUint16(OFF.compressAlgorithm, true) } };
}

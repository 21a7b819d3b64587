/**
 * Reads the Workstation bundle's zip: the central directory (PKWARE APPNOTE 4.3.12/4.3.16) as a list
 * of members, and the bytes of a small member (stored or deflated). Input: a read-at-offset function
 * and the file size; output: members or a problem string. No zip64 (the bundle's disk is < 4 GiB).
 */
import { inflateRawSync } from 'node:zlib';

export interface ZipMember {
  readonly name: string;
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localHeaderOffset: number;
}

type ReadAt = (offset: number, len: number) => Promise<Uint8Array>;

/** Largest trailing comment a zip may carry (16-bit length) plus the 22-byte end record. */
const MAX_EOCD_SEARCH = 0xffff + 22;
/** Members we inflate into memory: the .vmx and such, never the disk. */
export const MAX_ZIP_EXTRACT_BYTES = 1 << 20;

const SIG_EOCD = 0x06054b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

export async function listZip(read: ReadAt, totalSize: number): Promise<{ ok: true; members: ZipMember[] } | { ok: false; problem: string }> {
  const tailLen = Math.min(totalSize, MAX_EOCD_SEARCH);
  const tail = await read(totalSize - tailLen, tailLen);
  const dvT = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) if (dvT.getUint32(i, true) === SIG_EOCD) { eocd = i; break; }
  if (eocd === -1) return { ok: false, problem: 'no end-of-central-directory record: not a zip file' };
  const count = dvT.getUint16(eocd + 10, true);
  const cdSize = dvT.getUint32(eocd + 12, true);
  const cdOffset = dvT.getUint32(eocd + 16, true);
  if (cdOffset === 0xffffffff || count === 0xffff) return { ok: false, problem: 'zip64 archives are not supported' };
  if (cdOffset + cdSize > totalSize) return { ok: false, problem: `central directory (${cdOffset}+${cdSize}) runs past the end of the file (${totalSize})` };
  const cd = await read(cdOffset, cdSize);
  const dv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  const members: ZipMember[] = [];
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + 46 > cd.length || dv.getUint32(p, true) !== SIG_CENTRAL) return { ok: false, problem: `central directory entry ${n} is damaged` };
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    if (p + 46 + nameLen > cd.length) return { ok: false, problem: `central directory entry ${n} is truncated` };
    members.push({
      name: Buffer.from(cd.subarray(p + 46, p + 46 + nameLen)).toString('utf8'),
      method: dv.getUint16(p + 10, true),
      compressedSize: dv.getUint32(p + 20, true),
      size: dv.getUint32(p + 24, true),
      localHeaderOffset: dv.getUint32(p + 42, true),
    });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return { ok: true, members };
}

/** The uncompressed bytes of a small member, or a problem string. */
export async function readZipMember(read: ReadAt, m: ZipMember): Promise<{ ok: true; data: Buffer } | { ok: false; problem: string }> {
  if (m.size > MAX_ZIP_EXTRACT_BYTES) return { ok: false, problem: `"${m.name}" is ${m.size} bytes: over the ${MAX_ZIP_EXTRACT_BYTES}-byte extraction limit` };
  const lh = await read(m.localHeaderOffset, 30);
  const dv = new DataView(lh.buffer, lh.byteOffset, lh.byteLength);
  if (lh.length < 30 || dv.getUint32(0, true) !== SIG_LOCAL) return { ok: false, problem: `local header of "${m.name}" is damaged` };
  const start = m.localHeaderOffset + 30 + dv.getUint16(26, true) + dv.getUint16(28, true);
  const raw = Buffer.from(await read(start, m.compressedSize));
  try {
    if (m.method === 0) return { ok: true, data: raw };
    if (m.method === 8) return { ok: true, data: inflateRawSync(raw, { maxOutputLength: MAX_ZIP_EXTRACT_BYTES }) };
  } catch (err) {
    return { ok: false, problem: `cannot inflate "${m.name}": ${(err as Error).message}` };
  }
  return { ok: false, problem: `"${m.name}" uses compression method ${m.method} (only stored and deflate are read)` };
}

/**
 * OVA packaging: writes a POSIX ustar archive of plain files in the exact order given (DSP0243
 * section 5.3: the descriptor first, then the manifest, then the files in References order), and
 * reads one back as a list of members with their data offsets. Reading never throws on bad bytes:
 * it returns the members it could read plus a problem string.
 */
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';

export const TAR_BLOCK = 512;
/** ustar's name field; OVA member names are short file names, no folders. */
export const MAX_TAR_NAME_LEN = 100;
/** ustar's 11 octal digits of size field: 8 GiB - 1. Larger disks would need a pax header. */
export const MAX_TAR_MEMBER_BYTES = 0o77777777777;

export interface TarMember {
  readonly name: string;
  readonly size: number;
  /** Byte offset of the member's data in the archive. */
  readonly dataOffset: number;
  /** '0' (or NUL) for a regular file. */
  readonly type: string;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** One ustar header block for a regular file. */
export function tarHeader(name: string, size: number, mtimeSec: number): Buffer {
  if (Buffer.byteLength(name) > MAX_TAR_NAME_LEN) throw new Error(`Cannot put "${name}" in a tar: the name is longer than ${MAX_TAR_NAME_LEN} bytes`);
  if (size > MAX_TAR_MEMBER_BYTES) throw new Error(`Cannot put "${name}" in a ustar archive: ${size} bytes is over the 8 GiB member limit`);
  const h = Buffer.alloc(TAR_BLOCK);
  h.write(name, 0, 'utf8');
  h.write(octal(0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(Math.max(0, Math.floor(mtimeSec)), 12), 136, 'ascii');
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  h.write('0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write('root', 265, 'ascii');
  h.write('root', 297, 'ascii');
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += h[i] ?? 0;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/** Writes `out` as a ustar archive holding `files` (paths) in that order, under their base names. */
export async function writeTar(out: string, files: readonly string[], mtimeSec = Date.now() / 1000): Promise<void> {
  const ws = createWriteStream(out);
  async function* chunks(): AsyncGenerator<Buffer> {
    for (const f of files) {
      const size = statSync(f).size;
      yield tarHeader(basename(f), size, mtimeSec);
      let written = 0;
      for await (const c of createReadStream(f, { highWaterMark: 1 << 20 })) {
        written += (c as Buffer).length;
        yield c as Buffer;
      }
      if (written !== size) throw new Error(`Cannot archive "${f}": it changed size while being read (${size} -> ${written})`);
      const pad = (TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK;
      if (pad > 0) yield Buffer.alloc(pad);
    }
    yield Buffer.alloc(TAR_BLOCK * 2);
  }
  await pipeline(Readable.from(chunks()), ws);
}

function readOctal(h: Uint8Array, off: number, len: number): number {
  let v = 0;
  let seen = false;
  for (let i = off; i < off + len; i++) {
    const c = h[i] ?? 0;
    if (c === 0 || c === 0x20) { if (seen) break; continue; }
    if (c < 0x30 || c > 0x37) return -1;
    v = v * 8 + (c - 0x30);
    seen = true;
  }
  return seen ? v : -1;
}

/**
 * Lists an archive's members given a way to read `len` bytes at `offset` (a file handle or a
 * buffer). Stops at the end-of-archive blocks; `problem` says why it stopped early, if it did.
 */
export async function listTar(read: (offset: number, len: number) => Promise<Uint8Array>, totalSize: number): Promise<{ members: TarMember[]; problem?: string }> {
  const members: TarMember[] = [];
  let off = 0;
  while (off + TAR_BLOCK <= totalSize) {
    const h = await read(off, TAR_BLOCK);
    if (h.length < TAR_BLOCK) return { members, problem: `short read at offset ${off}` };
    if (h.every((b) => b === 0)) return { members };
    let sum = 0;
    for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] ?? 0);
    const stored = readOctal(h, 148, 8);
    if (stored !== sum) return { members, problem: `bad header checksum at offset ${off} (stored ${stored}, computed ${sum})` };
    const magic = Buffer.from(h.subarray(257, 262)).toString('latin1');
    if (magic !== 'ustar') return { members, problem: `member at offset ${off} is not ustar (magic "${magic}")` };
    const nameEnd = h.subarray(0, 100).indexOf(0);
    const name = Buffer.from(h.subarray(0, nameEnd === -1 ? 100 : nameEnd)).toString('utf8');
    const prefixEnd = h.subarray(345, 500).indexOf(0);
    const prefix = Buffer.from(h.subarray(345, prefixEnd === -1 ? 500 : 345 + prefixEnd)).toString('utf8');
    const size = readOctal(h, 124, 12);
    if (size < 0) return { members, problem: `bad size field at offset ${off}` };
    if (off + TAR_BLOCK + size > totalSize) return { members, problem: `member "${name}" is truncated: ${size} bytes declared, ${totalSize - off - TAR_BLOCK} present` };
    const typeByte = h[156] ?? 0;
    members.push({ name: prefix ? `${prefix}/${name}` : name, size, dataOffset: off + TAR_BLOCK, type: typeByte === 0 ? '0' : String.fromCharCode(typeByte) });
    off += TAR_BLOCK + Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
  }
  return { members, problem: 'no end-of-archive blocks' };
}

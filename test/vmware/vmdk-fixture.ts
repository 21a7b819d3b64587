// Test helper: a synthetic hosted sparse VMDK (header sector + embedded descriptor, no grains), laid
// out as qemu-img writes it (VMDK 5.0 SparseExtentHeader), for the packaging and validator tests.
export function fakeVmdk(capacityBytes: number, createType: 'streamOptimized' | 'monolithicSparse'): Buffer {
  const sectors = BigInt(Math.ceil(capacityBytes / 512));
  const buf = Buffer.alloc(512 * 3);
  buf.writeUInt32LE(0x564d444b, 0); // "KDMV"
  buf.writeUInt32LE(createType === 'streamOptimized' ? 3 : 1, 4);
  buf.writeUInt32LE(createType === 'streamOptimized' ? 0x30003 : 0x3, 8);
  buf.writeBigUInt64LE(sectors, 12);
  buf.writeBigUInt64LE(128n, 20); // grain size
  buf.writeBigUInt64LE(1n, 28); // descriptor at sector 1
  buf.writeBigUInt64LE(2n, 36); // 2 sectors long
  buf.writeUInt16LE(createType === 'streamOptimized' ? 1 : 0, 77);
  const desc = `# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="${createType}"\n\n# Extent description\nRW ${sectors} SPARSE "x.vmdk"\n`;
  buf.write(desc, 512, 'latin1');
  return buf;
}

// vmware/validate.ts: the OVF, manifest, OVA and VMX checks, each with the failure it must catch.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { HARK_APPLIANCE, renderManifest, renderOvf, renderVmx } from '../../vmware/ovf.js';
import { packageOva, sha256File } from '../../vmware/package.js';
import { writeTar } from '../../vmware/tar.js';
import { type ReferencedFile, allocationUnitBytes, validateOva, validateOvfFile, validateOvfText, validateVmxText, validateVmxZip } from '../../vmware/validate.js';
import { fakeVmdk } from './vmdk-fixture.js';

const GIB = 1024 ** 3;
const DISK = { href: 'hark-appliance-disk1.vmdk', fileSize: 1000, capacityBytes: 16 * GIB };
const GOOD = renderOvf(HARK_APPLIANCE, DISK);
const FILES = new Map<string, ReferencedFile>([[DISK.href, { size: 1000, vmdk: { capacityBytes: 16 * GIB, version: 3, createType: 'streamOptimized', compressAlgorithm: 1 } }]]);
const codes = (text: string, files: ReadonlyMap<string, ReferencedFile> = FILES) => validateOvfText(text, { files }).map((p) => p.code);

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hark-vmware-val-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('validateOvfText accepts the generated descriptor', () => {
  assert.deepEqual(codes(GOOD), []);
});

test('validateOvfText reports XML that is not well-formed', () => {
  assert.deepEqual(codes(GOOD.replace('</References>', '')), ['ovf.xml']);
});

test('validateOvfText reports rasd children out of schema order', () => {
  const bad = GOOD.replace(/(\s*<rasd:Description>Number of virtual CPUs<\/rasd:Description>)(\s*<rasd:ElementName>[^<]*<\/rasd:ElementName>)/, '$2$1');
  assert.notEqual(bad, GOOD);
  assert.deepEqual(codes(bad), ['ovf.order']);
});

test('validateOvfText reports a section before References and vmw:Config before an Item', () => {
  const disk = /  <DiskSection>[\s\S]*?<\/DiskSection>\n/.exec(GOOD)?.[0] ?? '';
  const sectionFirst = GOOD.replace(disk, '').replace('  <References>', `${disk}  <References>`);
  assert.ok(codes(sectionFirst).includes('ovf.order'));
  const config = '      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>\n';
  const early = GOOD.replace(config, '').replace('      <Item>', `${config}      <Item>`);
  const got = codes(early);
  assert.ok(got.length > 0 && got.every((c) => c === 'ovf.order'), got.join());
});

test('validateOvfText reports a File no Disk references and a Disk naming an unknown file', () => {
  const extra = GOOD.replace('</References>', '  <File ovf:href="extra.iso" ovf:id="file2" ovf:size="10"/>\n  </References>');
  assert.deepEqual(codes(extra, new Map([...FILES, ['extra.iso', { size: 10 }]])), ['ovf.references']);
  assert.ok(codes(GOOD.replace('ovf:fileRef="file1"', 'ovf:fileRef="file9"')).includes('ovf.references'));
});

test('validateOvfText reports a referenced file that is missing or has another size', () => {
  assert.deepEqual(codes(GOOD, new Map()), ['ovf.missing_file']);
  assert.deepEqual(codes(GOOD, new Map([[DISK.href, { ...FILES.get(DISK.href), size: 999 }]])), ['ovf.file_size']);
});

test('validateOvfText reports a capacity smaller than the VMDK virtual size, and a format mismatch', () => {
  assert.deepEqual(codes(GOOD.replace('ovf:capacity="16"', 'ovf:capacity="8"')), ['ovf.disk_capacity']);
  const hosted = new Map([[DISK.href, { size: 1000, vmdk: { capacityBytes: 16 * GIB, version: 1, createType: 'monolithicSparse', compressAlgorithm: 0 } }]]);
  assert.deepEqual(codes(GOOD, hosted), ['ovf.disk_format']);
});

test('validateOvfText reports an unknown ResourceType, a NIC on an undeclared network, and a missing EFI setting', () => {
  assert.ok(codes(GOOD.replace('<rasd:ResourceType>4</rasd:ResourceType>', '<rasd:ResourceType>99</rasd:ResourceType>')).includes('ovf.resource_type'));
  assert.deepEqual(codes(GOOD.replace('<rasd:Connection>Mirror</rasd:Connection>', '<rasd:Connection>Span</rasd:Connection>')), ['ovf.network']);
  assert.deepEqual(codes(GOOD.replace('vmw:value="efi"', 'vmw:value="bios"')), ['ovf.firmware']);
});

test('validateOvfText reports a disk item whose parent is not a controller', () => {
  const bad = GOOD.replace('<rasd:Parent>3</rasd:Parent>', '<rasd:Parent>1</rasd:Parent>');
  assert.notEqual(bad, GOOD);
  assert.deepEqual(codes(bad), ['ovf.item']);
});

test('allocationUnitBytes reads DMTF programmatic units', () => {
  assert.equal(allocationUnitBytes('byte * 2^30'), GIB);
  assert.equal(allocationUnitBytes('byte'), 1);
  assert.equal(allocationUnitBytes(undefined), 1);
  assert.equal(allocationUnitBytes('KiloBytes'), undefined);
});

async function goodOva(dir: string): Promise<{ ova: string; ovf: string; mf: string; disk: string }> {
  const disk = join(dir, DISK.href);
  writeFileSync(disk, fakeVmdk(2 * GIB, 'streamOptimized'));
  const r = await packageOva(disk, dir);
  return { ...r, disk };
}

test('validateOva accepts a packaged OVA and reports members out of DSP0243 order', () => withDir(async (dir) => {
  const { ova, ovf, mf, disk } = await goodOva(dir);
  assert.deepEqual(await validateOva(ova), []);
  const wrong = join(dir, 'wrong.ova');
  await writeTar(wrong, [ovf, disk, mf]);
  assert.ok((await validateOva(wrong)).some((p) => p.code === 'ova.member_order'));
  await writeTar(wrong, [mf, ovf, disk]);
  assert.deepEqual((await validateOva(wrong)).map((p) => p.code), ['ova.member_order']);
}));

test('validateOva reports a disk whose digest differs from the manifest', () => withDir(async (dir) => {
  const { ovf, mf, disk } = await goodOva(dir);
  const text = renderManifest([{ name: 'hark-appliance.ovf', sha256: await sha256File(ovf) }, { name: DISK.href, sha256: '0'.repeat(64) }]);
  writeFileSync(mf, text);
  const ova = join(dir, 'bad.ova');
  await writeTar(ova, [ovf, mf, disk]);
  assert.deepEqual((await validateOva(ova)).map((p) => p.code), ['manifest.digest']);
}));

test('validateOva reports a disk member that is missing', () => withDir(async (dir) => {
  const { ovf, mf } = await goodOva(dir);
  const ova = join(dir, 'nodisk.ova');
  await writeTar(ova, [ovf, mf]);
  const got = (await validateOva(ova)).map((p) => p.code);
  assert.ok(got.includes('ova.member_order'));
  assert.ok(got.includes('ovf.missing_file'));
  assert.ok(got.includes('manifest.missing_file'));
}));

test('validateOvfFile checks the manifest beside the descriptor and notices a changed descriptor', () => withDir(async (dir) => {
  const { ovf } = await goodOva(dir);
  assert.deepEqual(await validateOvfFile(ovf), []);
  writeFileSync(ovf, renderOvf(HARK_APPLIANCE, { ...DISK, fileSize: 3 * 512, capacityBytes: 2 * GIB }).replace('A virtual machine', 'A VM'));
  assert.deepEqual((await validateOvfFile(ovf)).map((p) => p.code), ['manifest.digest']);
}));

const VMX = renderVmx(HARK_APPLIANCE, 'hark-appliance.vmdk');
const vmxCodes = (text: string) => validateVmxText(text, (n) => n === 'hark-appliance.vmdk').map((p) => p.code);

test('validateVmxText accepts the generated .vmx', () => {
  assert.deepEqual(vmxCodes(VMX), []);
});

test('validateVmxText reports BIOS firmware, a missing second adapter and a missing disk file', () => {
  assert.deepEqual(vmxCodes(VMX.replace('firmware = "efi"', 'firmware = "bios"')), ['vmx.bad_value']);
  assert.deepEqual(vmxCodes(VMX.replace(/^ethernet1\.virtualDev.*\n/m, '')), ['vmx.missing_key']);
  assert.deepEqual(validateVmxText(VMX, () => false).map((p) => p.code), ['vmx.missing_file']);
});

test('validateVmxText reports .encoding not first and a key set twice', () => {
  const moved = VMX.replace('.encoding = "UTF-8"\n', '') + '.encoding = "UTF-8"\n';
  assert.deepEqual(vmxCodes(moved), ['vmx.encoding']);
  assert.deepEqual(vmxCodes(`${VMX}memsize = "2048"\n`), ['vmx.syntax']);
});

test('validateVmxZip accepts a bundle and reports one whose disk is missing', () => withDir(async (dir) => {
  const b = join(dir, 'hark-appliance-vmware');
  mkdirSync(b);
  writeFileSync(join(b, 'hark-appliance.vmx'), VMX);
  writeFileSync(join(b, 'hark-appliance.vmdk'), fakeVmdk(GIB, 'monolithicSparse'));
  execFileSync('zip', ['-q', '-r', 'ok.zip', 'hark-appliance-vmware'], { cwd: dir });
  assert.deepEqual(await validateVmxZip(join(dir, 'ok.zip')), []);
  execFileSync('zip', ['-q', '-r', 'nodisk.zip', 'hark-appliance-vmware', '-x', '*.vmdk'], { cwd: dir });
  assert.deepEqual((await validateVmxZip(join(dir, 'nodisk.zip'))).map((p) => p.code), ['vmx.missing_file']);
}));

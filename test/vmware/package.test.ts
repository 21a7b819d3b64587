// vmware/package.ts: the OVA writer end to end on a small fake streamOptimized VMDK (header only).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { packageOva, sha256File, writeVmx } from '../../vmware/package.js';
import { validateOva, validateVmxFile } from '../../vmware/validate.js';
import { fakeVmdk } from './vmdk-fixture.js';

test('packageOva writes an OVA that validateOva accepts, with the disk capacity from the VMDK header', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hark-vmware-pkg-'));
  try {
    const disk = join(dir, 'hark-appliance-disk1.vmdk');
    writeFileSync(disk, fakeVmdk(3 * 1024 ** 3, 'streamOptimized'));
    const r = await packageOva(disk, dir);
    assert.deepEqual(await validateOva(r.ova), []);
    const ovf = readFileSync(r.ovf, 'utf8');
    assert.match(ovf, /ovf:capacity="3" ovf:capacityAllocationUnits="byte \* 2\^30"/);
    assert.match(readFileSync(r.mf, 'utf8'), new RegExp(`SHA256\\(hark-appliance-disk1.vmdk\\)= ${await sha256File(disk)}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('packageOva refuses a VMDK that is not streamOptimized', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hark-vmware-pkg-'));
  try {
    const disk = join(dir, 'd.vmdk');
    writeFileSync(disk, fakeVmdk(1024 ** 3, 'monolithicSparse'));
    await assert.rejects(packageOva(disk, dir), /streamOptimized/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeVmx names the disk beside it and passes validateVmxFile only once the disk exists', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hark-vmware-vmx-'));
  try {
    const vmx = writeVmx(dir, 'hark-appliance.vmdk');
    assert.deepEqual(validateVmxFile(vmx).map((p) => p.code), ['vmx.missing_file']);
    writeFileSync(join(dir, 'hark-appliance.vmdk'), fakeVmdk(1024 ** 3, 'monolithicSparse'));
    assert.deepEqual(validateVmxFile(vmx), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// vmware/ovf.ts: the OVF 1.0 descriptor, manifest and .vmx texts, read back with the parsers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HARK_APPLIANCE, OVF_NS, RASD_NS, renderManifest, renderOvf, renderVmx } from '../../vmware/ovf.js';
import { parseManifest, parseVmx, validateOvfText } from '../../vmware/validate.js';
import { type XmlElement, parseXml } from '../../vmware/xml.js';

const DISK = { href: 'hark-appliance-disk1.vmdk', fileSize: 123456, capacityBytes: 16 * 1024 ** 3 };

function descriptor(): XmlElement {
  const r = parseXml(renderOvf(HARK_APPLIANCE, DISK));
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  return r.root;
}
const child = (el: XmlElement | undefined, local: string) => el?.children.find((c) => c.local === local);
const rasd = (item: XmlElement, local: string) => item.children.find((c) => c.ns === RASD_NS && c.local === local)?.text;

test('renderOvf passes validateOvfText with the disk it describes', () => {
  const files = new Map([[DISK.href, { size: DISK.fileSize, vmdk: { capacityBytes: DISK.capacityBytes, version: 3, createType: 'streamOptimized', compressAlgorithm: 1 } }]]);
  assert.deepEqual(validateOvfText(renderOvf(HARK_APPLIANCE, DISK), { files }), []);
});

test('renderOvf puts References, DiskSection, NetworkSection, VirtualSystem in that order', () => {
  const env = descriptor();
  assert.equal(env.ns, OVF_NS);
  assert.deepEqual(env.children.map((c) => c.local), ['References', 'DiskSection', 'NetworkSection', 'VirtualSystem']);
});

test('renderOvf declares 2 CPUs, 4096 MiB, an lsilogic controller with the disk, and two NICs named Management and Mirror', () => {
  const hw = child(child(descriptor(), 'VirtualSystem'), 'VirtualHardwareSection');
  assert.ok(hw);
  const items = hw.children.filter((c) => c.local === 'Item');
  const byType = (t: number) => items.filter((i) => rasd(i, 'ResourceType') === String(t));
  assert.equal(rasd(byType(3)[0] as XmlElement, 'VirtualQuantity'), '2');
  assert.equal(rasd(byType(4)[0] as XmlElement, 'VirtualQuantity'), '4096');
  assert.equal(rasd(byType(4)[0] as XmlElement, 'AllocationUnits'), 'byte * 2^20');
  const ctrl = byType(6)[0] as XmlElement;
  assert.equal(rasd(ctrl, 'ResourceSubType'), 'lsilogic');
  assert.equal(rasd(byType(17)[0] as XmlElement, 'Parent'), rasd(ctrl, 'InstanceID'));
  assert.deepEqual(byType(10).map((i) => [rasd(i, 'Connection'), rasd(i, 'ResourceSubType')]), [['Management', 'VmxNet3'], ['Mirror', 'VmxNet3']]);
  const fw = hw.children.find((c) => c.local === 'Config' && c.attrs.get('vmw:key') === 'firmware');
  assert.equal(fw?.attrs.get('vmw:value'), 'efi');
  assert.equal(hw.children.at(-1)?.local, 'Config');
});

test('renderOvf writes a capacity in GiB when it divides evenly, else in bytes', () => {
  assert.match(renderOvf(HARK_APPLIANCE, DISK), /ovf:capacity="16" ovf:capacityAllocationUnits="byte \* 2\^30"/);
  assert.match(renderOvf(HARK_APPLIANCE, { ...DISK, capacityBytes: 1536 * 1024 ** 2 + 512 }), /ovf:capacity="1610613248" ovf:capacityAllocationUnits="byte"/);
});

test('renderOvf escapes names that carry XML metacharacters', () => {
  const r = parseXml(renderOvf({ ...HARK_APPLIANCE, product: 'A <b> & "c"' }, DISK));
  assert.ok(r.ok);
});

test('renderManifest writes one SHA256(name)= line per file that parseManifest reads back', () => {
  const text = renderManifest([{ name: 'a.ovf', sha256: 'ab'.repeat(32) }, { name: 'b.vmdk', sha256: 'cd'.repeat(32) }]);
  assert.equal(text.split('\n')[0], `SHA256(a.ovf)= ${'ab'.repeat(32)}`);
  const m = parseManifest(text);
  assert.deepEqual(m.problems, []);
  assert.equal(m.entries.get('b.vmdk')?.digest, 'cd'.repeat(32));
});

test('renderVmx starts with .encoding and sets EFI, CPUs, memory, two vmxnet3 adapters and the disk', () => {
  const text = renderVmx(HARK_APPLIANCE, 'hark-appliance.vmdk');
  assert.ok(text.startsWith('.encoding = "UTF-8"\n'));
  const { keys, problems } = parseVmx(text);
  assert.deepEqual(problems, []);
  assert.equal(keys.get('firmware'), 'efi');
  assert.equal(keys.get('numvcpus'), '2');
  assert.equal(keys.get('memsize'), '4096');
  assert.equal(keys.get('ethernet0.virtualdev'), 'vmxnet3');
  assert.equal(keys.get('ethernet1.virtualdev'), 'vmxnet3');
  assert.equal(keys.get('ethernet1.displayname'), 'Mirror');
  assert.equal(keys.get('scsi0:0.filename'), 'hark-appliance.vmdk');
});

test('renderVmx uses e1000 for an E1000 spec', () => {
  assert.equal(parseVmx(renderVmx({ ...HARK_APPLIANCE, nic: 'E1000' }, 'd.vmdk')).keys.get('ethernet0.virtualdev'), 'e1000');
});

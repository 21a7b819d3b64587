/**
 * The appliance's VMware packaging texts: an OVF 1.0 descriptor (DSP0243 1.0.0, with VMware's vmw:
 * extensions for EFI firmware), the SHA-256 manifest, and a Workstation/Player .vmx. Input: an
 * ApplianceSpec (hardware plus the disk file's size and virtual capacity); output: strings. Pure:
 * no file access here (package.ts writes the files).
 */
import { escapeXml } from './xml.js';

export const OVF_NS = 'http://schemas.dmtf.org/ovf/envelope/1';
export const RASD_NS = 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData';
export const VSSD_NS = 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData';
export const VMW_NS = 'http://www.vmware.com/schema/ovf';
export const STREAM_OPTIMIZED_FORMAT = 'http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized';

/** CIM ResourceType values (CIM_ResourceAllocationSettingData.ResourceType) used in the descriptor. */
export const RESOURCE_TYPE = { processor: 3, memory: 4, ideController: 5, scsiController: 6, ethernet: 10, disk: 17, sataController: 20 } as const;

export type NicType = 'VmxNet3' | 'E1000';

export interface ApplianceNetwork {
  /** Network name shown by the import wizard, e.g. "Mirror". */
  readonly name: string;
  readonly description: string;
}

export interface ApplianceSpec {
  /** VM name and VirtualSystem id: letters, digits, '-', '_', '.'. */
  readonly name: string;
  readonly product: string;
  readonly vendor: string;
  readonly version: string;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly nic: NicType;
  /** Adapters in order: the first is ethernet0 / the management port, the second the mirror port. */
  readonly networks: readonly ApplianceNetwork[];
  /**
   * VMware guest id. debian10_64Guest is known to ESXi 6.5 and later and Workstation 14 and later;
   * the newer debian11/12 ids would make older hosts refuse the import.
   */
  readonly vmwareGuestId: string;
  /** Guest OS name for the .vmx (Workstation spells it differently from the OVF id). */
  readonly vmxGuestOs: string;
  /** Virtual hardware version: 14 = ESXi 6.7 / Workstation 15 and later can run it. */
  readonly hardwareVersion: number;
}

export interface DiskFile {
  /** File name as it appears beside the descriptor (no folders). */
  readonly href: string;
  /** Size of the file in bytes (References/File ovf:size). */
  readonly fileSize: number;
  /** Virtual disk size in bytes, from the VMDK header. */
  readonly capacityBytes: number;
}

/** CIM OperatingSystem id for "Debian 64-bit" (CIM_OperatingSystem.OsType). */
const CIM_OS_DEBIAN_64 = 96;
const GIB = 1024 ** 3;

export const HARK_APPLIANCE: ApplianceSpec = {
  name: 'hark-appliance',
  product: 'Hark passive network sensor',
  vendor: 'Hark',
  version: '0.1.0',
  cpus: 2,
  memoryMiB: 4096,
  nic: 'VmxNet3',
  networks: [
    { name: 'Management', description: 'Management network: an address (DHCP by default), SSH, the path to the Hark home server' },
    { name: 'Mirror', description: 'Mirror traffic: a port group with promiscuous mode accepted (a physical SPAN port, or VLAN 4095 on a vSwitch)' },
  ],
  vmwareGuestId: 'debian10_64Guest',
  vmxGuestOs: 'debian10-64',
  hardwareVersion: 14,
};

/** Capacity in whole GiB when it divides evenly (what importers show), else bytes. */
function capacityFields(bytes: number): { capacity: string; units: string } {
  return bytes % GIB === 0 ? { capacity: String(bytes / GIB), units: 'byte * 2^30' } : { capacity: String(bytes), units: 'byte' };
}

/**
 * One rasd Item. Children are written in the order of the CIM RASD schema's sequence (alphabetical),
 * which strict importers (ovftool, vCenter) enforce.
 */
function item(fields: Record<string, string | number>, attrs = ''): string {
  const order = ['Address', 'AddressOnParent', 'AllocationUnits', 'AutomaticAllocation', 'AutomaticDeallocation', 'Caption', 'Connection', 'ConsumerVisibility', 'Description', 'ElementName', 'HostResource', 'InstanceID', 'Limit', 'MappingBehavior', 'OtherResourceType', 'Parent', 'PoolID', 'Reservation', 'ResourceSubType', 'ResourceType', 'VirtualQuantity', 'Weight'];
  const lines = order.filter((k) => fields[k] !== undefined).map((k) => `        <rasd:${k}>${escapeXml(String(fields[k]))}</rasd:${k}>`);
  return `      <Item${attrs}>\n${lines.join('\n')}\n      </Item>`;
}

/** The OVF 1.0 descriptor for one virtual system with one disk. */
export function renderOvf(spec: ApplianceSpec, disk: DiskFile): string {
  const cap = capacityFields(disk.capacityBytes);
  const e = escapeXml;
  const items: string[] = [];
  let id = 1;
  items.push(item({ AllocationUnits: 'hertz * 10^6', Description: 'Number of virtual CPUs', ElementName: `${spec.cpus} virtual CPU(s)`, InstanceID: id++, ResourceType: RESOURCE_TYPE.processor, VirtualQuantity: spec.cpus }));
  items.push(item({ AllocationUnits: 'byte * 2^20', Description: 'Memory size', ElementName: `${spec.memoryMiB} MB of memory`, InstanceID: id++, ResourceType: RESOURCE_TYPE.memory, VirtualQuantity: spec.memoryMiB }));
  const controllerId = id++;
  items.push(item({ Address: 0, Description: 'SCSI controller', ElementName: 'SCSI controller 0', InstanceID: controllerId, ResourceSubType: 'lsilogic', ResourceType: RESOURCE_TYPE.scsiController }));
  items.push(item({ AddressOnParent: 0, ElementName: 'Hard disk 1', HostResource: 'ovf:/disk/vmdisk1', InstanceID: id++, Parent: controllerId, ResourceType: RESOURCE_TYPE.disk }));
  spec.networks.forEach((n, i) => {
    items.push(item(
      { AddressOnParent: 7 + i, AutomaticAllocation: 'true', Connection: n.name, Description: `${spec.nic} ethernet adapter on "${n.name}"`, ElementName: `Network adapter ${i + 1} (${n.name})`, InstanceID: id++, ResourceSubType: spec.nic, ResourceType: RESOURCE_TYPE.ethernet },
    ));
  });
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Hark appliance: OVF 1.0 descriptor written by vmware/package.ts. -->
<Envelope xmlns="${OVF_NS}" xmlns:ovf="${OVF_NS}" xmlns:rasd="${RASD_NS}" xmlns:vssd="${VSSD_NS}" xmlns:vmw="${VMW_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:href="${e(disk.href)}" ovf:id="file1" ovf:size="${disk.fileSize}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="${cap.capacity}" ovf:capacityAllocationUnits="${cap.units}" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="${STREAM_OPTIMIZED_FORMAT}"/>
  </DiskSection>
  <NetworkSection>
    <Info>The logical networks used by the appliance</Info>
${spec.networks.map((n) => `    <Network ovf:name="${e(n.name)}">\n      <Description>${e(n.description)}</Description>\n    </Network>`).join('\n')}
  </NetworkSection>
  <VirtualSystem ovf:id="${e(spec.name)}">
    <Info>A virtual machine</Info>
    <Name>${e(spec.name)}</Name>
    <ProductSection>
      <Info>Information about the installed software</Info>
      <Product>${e(spec.product)}</Product>
      <Vendor>${e(spec.vendor)}</Vendor>
      <Version>${e(spec.version)}</Version>
    </ProductSection>
    <OperatingSystemSection ovf:id="${CIM_OS_DEBIAN_64}" vmw:osType="${e(spec.vmwareGuestId)}">
      <Info>The kind of installed guest operating system</Info>
      <Description>Debian GNU/Linux 12 (64-bit)</Description>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>${e(spec.name)}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-${spec.hardwareVersion}</vssd:VirtualSystemType>
      </System>
${items.join('\n')}
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>
      <vmw:Config ovf:required="false" vmw:key="bootOptions.efiSecureBootEnabled" vmw:value="false"/>
      <vmw:Config ovf:required="false" vmw:key="tools.syncTimeWithHost" vmw:value="false"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`;
}

/** `SHA256(name)= hex` lines, the format ovftool writes and checks. */
export function renderManifest(entries: readonly { name: string; sha256: string }[]): string {
  return entries.map((x) => `SHA256(${x.name})= ${x.sha256}\n`).join('');
}

/** A Workstation / Player .vmx for the same hardware; the disk must be a hosted (not stream) VMDK. */
export function renderVmx(spec: ApplianceSpec, diskFileName: string): string {
  const dev = spec.nic === 'VmxNet3' ? 'vmxnet3' : 'e1000';
  const kv: [string, string][] = [
    ['.encoding', 'UTF-8'],
    ['config.version', '8'],
    ['virtualHW.version', String(spec.hardwareVersion)],
    ['displayName', spec.name],
    ['annotation', `${spec.product} ${spec.version}|0AAdapter 1 = Management, adapter 2 = Mirror (promiscuous).`],
    ['guestOS', spec.vmxGuestOs],
    ['firmware', 'efi'],
    ['uefi.secureBoot.enabled', 'FALSE'],
    ['numvcpus', String(spec.cpus)],
    ['memsize', String(spec.memoryMiB)],
    // PCIe root ports: vmxnet3 adapters sit behind them on virtual hardware 7 and later.
    ['pciBridge0.present', 'TRUE'],
    ['pciBridge4.present', 'TRUE'],
    ['pciBridge4.virtualDev', 'pcieRootPort'],
    ['pciBridge4.functions', '8'],
    ['pciBridge5.present', 'TRUE'],
    ['pciBridge5.virtualDev', 'pcieRootPort'],
    ['pciBridge5.functions', '8'],
    ['scsi0.present', 'TRUE'],
    ['scsi0.virtualDev', 'lsilogic'],
    ['scsi0:0.present', 'TRUE'],
    ['scsi0:0.fileName', diskFileName],
    ['scsi0:0.deviceType', 'scsi-hardDisk'],
  ];
  spec.networks.forEach((n, i) => {
    kv.push(
      [`ethernet${i}.present`, 'TRUE'],
      [`ethernet${i}.virtualDev`, dev],
      // Management bridged to the host's LAN; the mirror port bridged too: pick the host adapter
      // that carries the SPAN traffic in Virtual Network Editor (Workstation) or VM settings.
      [`ethernet${i}.connectionType`, 'bridged'],
      [`ethernet${i}.addressType`, 'generated'],
      [`ethernet${i}.startConnected`, 'TRUE'],
      [`ethernet${i}.displayName`, n.name],
    );
  });
  kv.push(['tools.syncTime', 'FALSE'], ['serial0.present', 'FALSE'], ['floppy0.present', 'FALSE']);
  const q = (v: string) => v.replace(/"/g, '|22');
  return kv.map(([k, v]) => `${k} = "${q(v)}"\n`).join('');
}

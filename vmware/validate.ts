/**
 * Validates the appliance's VMware deliverables the way importers do: the OVF 1.0 descriptor
 * (well-formed XML, DSP0243 element order, references, disk capacity against the VMDK header, CIM
 * ResourceType values), the SHA-256 manifest, the OVA's member order, and the .vmx keys (alone, in
 * a folder, or inside the Workstation zip). Input: files; output: a list of problems (empty = valid).
 * Never throws on file contents. CLI: node dist/vmware/validate.js FILE.ova|.ovf|.vmx|.zip ...
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OVF_NS, RASD_NS, RESOURCE_TYPE, VMW_NS, VSSD_NS } from './ovf.js';
import { listTar } from './tar.js';
import { VMDK_HEAD_BYTES, type VmdkInfo, readVmdkHeader } from './vmdk.js';
import { type XmlElement, parseXml } from './xml.js';
import { listZip, readZipMember } from './zip.js';

export interface Problem {
  /** Dotted code, e.g. `ovf.order`, `manifest.digest`, `ova.member_order`, `vmx.missing_key`. */
  readonly code: string;
  readonly message: string;
}

/** What the descriptor's References point at, as far as the caller could read it. */
export interface ReferencedFile {
  readonly size: number;
  /** Header of the file when it is a VMDK; undefined when not read or not a VMDK. */
  readonly vmdk?: VmdkInfo;
  readonly vmdkProblem?: string;
}

export interface OvfCheckOptions {
  /** Files beside the descriptor by href; a referenced href missing here is a problem. */
  readonly files?: ReadonlyMap<string, ReferencedFile>;
  /** Require `vmw:Config firmware=efi` (the Hark appliance boots only with EFI). Default true. */
  readonly requireEfi?: boolean;
}

/** A descriptor is a few kilobytes; refuse to parse anything absurd. */
export const MAX_OVF_BYTES = 4 * 1024 * 1024;
const MAX_MANIFEST_BYTES = 1024 * 1024;
const MAX_VMX_BYTES = 1024 * 1024;

/**
 * Child order of each rasd:Item / vssd:System: the CIM schemas' xs:sequence (alphabetical). ovftool
 * and vCenter reject a descriptor whose Item children are out of this order.
 */
export const RASD_ORDER = ['Address', 'AddressOnParent', 'AllocationUnits', 'AutomaticAllocation', 'AutomaticDeallocation', 'Caption', 'Connection', 'ConsumerVisibility', 'Description', 'ElementName', 'HostResource', 'InstanceID', 'Limit', 'MappingBehavior', 'OtherResourceType', 'Parent', 'PoolID', 'Reservation', 'ResourceSubType', 'ResourceType', 'VirtualQuantity', 'Weight'];
export const VSSD_ORDER = ['AutomaticRecoveryAction', 'AutomaticShutdownAction', 'AutomaticStartupAction', 'AutomaticStartupActionDelay', 'AutomaticStartupActionSequenceNumber', 'Caption', 'ConfigurationDataRoot', 'ConfigurationFile', 'ConfigurationID', 'CreationTime', 'Description', 'ElementName', 'InstanceID', 'LogDataRoot', 'RecoveryFile', 'SnapshotDataRoot', 'SuspendDataRoot', 'SwapFileDataRoot', 'VirtualSystemIdentifier', 'VirtualSystemType'];
/** DSP0243 1.0 ProductSection children after Info. */
const PRODUCT_ORDER = ['Product', 'Vendor', 'Version', 'FullVersion', 'ProductUrl', 'VendorUrl', 'AppUrl', 'Icon', 'Category', 'Property'];
const CONTROLLER_TYPES: ReadonlySet<number> = new Set([RESOURCE_TYPE.ideController, RESOURCE_TYPE.scsiController, RESOURCE_TYPE.sataController]);
/** ResourceType values this appliance's importers are expected to meet (plus CD/DVD 15, 16 and USB 23). */
const KNOWN_RESOURCE_TYPES: ReadonlySet<number> = new Set([1, 3, 4, 5, 6, 10, 14, 15, 16, 17, 20, 23, 24]);

const ovfAttr = (el: XmlElement, name: string) => el.nsAttrs.get(`{${OVF_NS}}${name}`);
const isOvf = (el: XmlElement, local: string) => el.ns === OVF_NS && el.local === local;
const kids = (el: XmlElement, ns: string, local: string) => el.children.filter((c) => c.ns === ns && c.local === local);

/** Bytes per unit of a DMTF programmatic unit such as "byte * 2^30" (DSP0004 annex C), or undefined. */
export function allocationUnitBytes(units: string | undefined): number | undefined {
  if (units === undefined || units.trim() === '') return 1;
  const m = /^\s*byte\s*(?:\*\s*(\d+)\s*\^\s*(\d+))?\s*$/i.exec(units);
  if (m === null) return undefined;
  if (m[1] === undefined) return 1;
  return Number(m[1]) ** Number(m[2]);
}

function checkOrder(where: string, children: readonly XmlElement[], order: readonly string[], ns: string, out: Problem[]): void {
  let last = -1;
  for (const c of children) {
    if (c.ns !== ns) { out.push({ code: 'ovf.unexpected_element', message: `${where}: <${c.qname}> (line ${c.line}) is not in the ${ns} namespace` }); continue; }
    const i = order.indexOf(c.local);
    if (i === -1) { out.push({ code: 'ovf.unexpected_element', message: `${where}: unknown element <${c.qname}> (line ${c.line})` }); continue; }
    if (i < last) out.push({ code: 'ovf.order', message: `${where}: <${c.qname}> (line ${c.line}) comes after <${order[last]}>; the schema puts it before` });
    if (i === last) out.push({ code: 'ovf.order', message: `${where}: <${c.qname}> (line ${c.line}) appears twice` });
    last = Math.max(last, i);
  }
}

/** Checks the section's first child is ovf:Info (every DSP0243 Section_Type starts with it). */
function checkInfoFirst(sec: XmlElement, out: Problem[]): void {
  const first = sec.children[0];
  if (first === undefined || !isOvf(first, 'Info')) out.push({ code: 'ovf.order', message: `<${sec.qname}> (line ${sec.line}) must start with <Info>` });
}

function intText(el: XmlElement | undefined): number | undefined {
  if (el === undefined || !/^\s*\d+\s*$/.test(el.text)) return undefined;
  return Number(el.text.trim());
}

/** The descriptor's checks; `files` supplies sizes and VMDK headers of the referenced files. */
export function validateOvfText(text: string, opts: OvfCheckOptions = {}): Problem[] {
  const out: Problem[] = [];
  if (text.length > MAX_OVF_BYTES) return [{ code: 'ovf.too_large', message: `descriptor is ${text.length} bytes, over ${MAX_OVF_BYTES}` }];
  const parsed = parseXml(text);
  if (!parsed.ok) return parsed.errors.map((m) => ({ code: 'ovf.xml', message: `not well-formed XML: ${m}` }));
  const env = parsed.root;
  if (!isOvf(env, 'Envelope')) return [{ code: 'ovf.root', message: `root element is <${env.qname}> in "${env.ns}", not <Envelope> in ${OVF_NS} (OVF 1.0)` }];

  // Envelope: References, Section*, one VirtualSystem (or Collection), Strings* (DSP0243 1.0 7.1).
  const SECTION_NAMES = new Set(['DiskSection', 'NetworkSection', 'DeploymentOptionSection', 'ResourceAllocationSection', 'AnnotationSection', 'ProductSection', 'EulaSection', 'StartupSection', 'OperatingSystemSection', 'InstallSection', 'VirtualHardwareSection']);
  let phase = 0; // 0 References, 1 sections, 2 content, 3 strings
  let content: XmlElement | undefined;
  for (const c of env.children) {
    const step = isOvf(c, 'References') ? 0 : c.ns === OVF_NS && SECTION_NAMES.has(c.local) ? 1 : isOvf(c, 'VirtualSystem') || isOvf(c, 'VirtualSystemCollection') ? 2 : isOvf(c, 'Strings') ? 3 : c.ns === OVF_NS ? -1 : 1;
    if (step === -1) { out.push({ code: 'ovf.unexpected_element', message: `Envelope: unknown element <${c.qname}> (line ${c.line})` }); continue; }
    if (step < phase) {
      out.push({ code: 'ovf.order', message: `Envelope: <${c.qname}> (line ${c.line}) is out of order; the order is References, sections, VirtualSystem, Strings` });
    }
    if (step === 2) { if (content !== undefined) out.push({ code: 'ovf.order', message: `Envelope: a second virtual system <${c.qname}> (line ${c.line})` }); content ??= c; }
    phase = Math.max(phase, step);
  }
  const refs = kids(env, OVF_NS, 'References');
  if (refs.length !== 1) out.push({ code: 'ovf.references', message: `Envelope needs exactly one <References>, found ${refs.length}` });
  else if (env.children[0] !== refs[0]) out.push({ code: 'ovf.order', message: 'Envelope: <References> must be its first child' });
  if (content === undefined) { out.push({ code: 'ovf.content', message: 'Envelope has no <VirtualSystem>' }); return out; }

  // References / File.
  const fileIds = new Map<string, XmlElement>();
  const hrefs: string[] = [];
  for (const f of refs[0]?.children ?? []) {
    if (!isOvf(f, 'File')) { out.push({ code: 'ovf.unexpected_element', message: `References: <${f.qname}> (line ${f.line}) is not <File>` }); continue; }
    const id = ovfAttr(f, 'id');
    const href = ovfAttr(f, 'href');
    if (!id || !href) { out.push({ code: 'ovf.references', message: `File (line ${f.line}) needs ovf:id and ovf:href` }); continue; }
    if (fileIds.has(id)) out.push({ code: 'ovf.references', message: `File id "${id}" is used twice` });
    fileIds.set(id, f);
    hrefs.push(href);
    if (href.includes('/') || href.includes('\\') || href === '..') out.push({ code: 'ovf.references', message: `File href "${href}" must be a plain file name beside the descriptor` });
    const sizeAttr = ovfAttr(f, 'size');
    if (sizeAttr !== undefined && !/^\d+$/.test(sizeAttr)) out.push({ code: 'ovf.references', message: `File "${href}" has a non-integer ovf:size "${sizeAttr}"` });
    const actual = opts.files?.get(href);
    if (opts.files !== undefined && actual === undefined) out.push({ code: 'ovf.missing_file', message: `File "${href}" (id ${id}) is not beside the descriptor` });
    if (actual !== undefined && sizeAttr !== undefined && Number(sizeAttr) !== actual.size) out.push({ code: 'ovf.file_size', message: `File "${href}": ovf:size is ${sizeAttr} but the file has ${actual.size} bytes` });
  }

  // DiskSection / Disk.
  const diskSections = kids(env, OVF_NS, 'DiskSection');
  const diskIds = new Set<string>();
  const fileRefsUsed = new Set<string>();
  for (const ds of diskSections) {
    checkInfoFirst(ds, out);
    for (const d of kids(ds, OVF_NS, 'Disk')) {
      const diskId = ovfAttr(d, 'diskId');
      const capAttr = ovfAttr(d, 'capacity');
      const fileRef = ovfAttr(d, 'fileRef');
      if (!diskId) { out.push({ code: 'ovf.disk', message: `Disk (line ${d.line}) has no ovf:diskId` }); continue; }
      if (diskIds.has(diskId)) out.push({ code: 'ovf.disk', message: `Disk id "${diskId}" is used twice` });
      diskIds.add(diskId);
      const unit = allocationUnitBytes(ovfAttr(d, 'capacityAllocationUnits'));
      if (capAttr === undefined || !/^\d+$/.test(capAttr)) { out.push({ code: 'ovf.disk', message: `Disk "${diskId}" needs an integer ovf:capacity (found "${capAttr ?? ''}")` }); continue; }
      if (unit === undefined) { out.push({ code: 'ovf.disk', message: `Disk "${diskId}": unknown capacityAllocationUnits "${ovfAttr(d, 'capacityAllocationUnits')}"` }); continue; }
      const capacityBytes = Number(capAttr) * unit;
      if (fileRef === undefined) continue; // an empty disk created at import
      fileRefsUsed.add(fileRef);
      const file = fileIds.get(fileRef);
      if (file === undefined) { out.push({ code: 'ovf.references', message: `Disk "${diskId}" refers to file id "${fileRef}", which References does not list` }); continue; }
      const format = ovfAttr(d, 'format') ?? '';
      const actual = opts.files?.get(ovfAttr(file, 'href') ?? '');
      if (actual?.vmdkProblem !== undefined) out.push({ code: 'ovf.disk_file', message: `Disk "${diskId}": ${actual.vmdkProblem}` });
      if (actual?.vmdk !== undefined) {
        if (capacityBytes < actual.vmdk.capacityBytes) out.push({ code: 'ovf.disk_capacity', message: `Disk "${diskId}": ovf:capacity is ${capacityBytes} bytes, smaller than the VMDK's virtual size ${actual.vmdk.capacityBytes}` });
        const wantStream = format.endsWith('#streamOptimized');
        if (wantStream !== (actual.vmdk.createType === 'streamOptimized')) out.push({ code: 'ovf.disk_format', message: `Disk "${diskId}": ovf:format "${format}" but the VMDK is "${actual.vmdk.createType}"` });
      }
    }
  }
  for (const [id, f] of fileIds) {
    if (!fileRefsUsed.has(id)) out.push({ code: 'ovf.references', message: `File "${ovfAttr(f, 'href')}" (id ${id}) is not referenced by any Disk` });
  }

  // NetworkSection.
  const networks = new Set<string>();
  for (const ns of kids(env, OVF_NS, 'NetworkSection')) {
    checkInfoFirst(ns, out);
    for (const n of kids(ns, OVF_NS, 'Network')) {
      const name = ovfAttr(n, 'name');
      if (!name) out.push({ code: 'ovf.network', message: `Network (line ${n.line}) has no ovf:name` });
      else if (networks.has(name)) out.push({ code: 'ovf.network', message: `Network "${name}" is declared twice` });
      else networks.add(name);
    }
  }

  // VirtualSystem: Info, Name?, sections.
  const vs = content;
  if (!ovfAttr(vs, 'id')) out.push({ code: 'ovf.virtual_system', message: 'VirtualSystem has no ovf:id' });
  checkInfoFirst(vs, out);
  vs.children.forEach((c, i) => {
    if (isOvf(c, 'Name') && i !== 1) out.push({ code: 'ovf.order', message: `VirtualSystem: <Name> (line ${c.line}) must follow <Info> directly` });
    if (i > 0 && c.ns === OVF_NS && !isOvf(c, 'Name') && !c.local.endsWith('Section')) out.push({ code: 'ovf.unexpected_element', message: `VirtualSystem: unknown element <${c.qname}> (line ${c.line})` });
  });
  for (const ps of kids(vs, OVF_NS, 'ProductSection')) {
    checkInfoFirst(ps, out);
    checkOrder('ProductSection', ps.children.slice(1), PRODUCT_ORDER, OVF_NS, out);
  }
  const oss = kids(vs, OVF_NS, 'OperatingSystemSection');
  if (oss.length !== 1) out.push({ code: 'ovf.os', message: `VirtualSystem needs one <OperatingSystemSection>, found ${oss.length}` });
  for (const os of oss) {
    checkInfoFirst(os, out);
    const id = ovfAttr(os, 'id');
    if (id === undefined || !/^\d+$/.test(id)) out.push({ code: 'ovf.os', message: `OperatingSystemSection needs a numeric ovf:id (CIM OsType), found "${id ?? ''}"` });
  }
  const vhs = kids(vs, OVF_NS, 'VirtualHardwareSection');
  if (vhs.length === 0) out.push({ code: 'ovf.hardware', message: 'VirtualSystem has no <VirtualHardwareSection>' });
  for (const hw of vhs) checkHardware(hw, diskIds, networks, opts, out);
  return out;
}

/** VirtualHardwareSection: Info, System?, Item*, then extensions (vmw:Config); item references. */
function checkHardware(hw: XmlElement, diskIds: ReadonlySet<string>, networks: ReadonlySet<string>, opts: OvfCheckOptions, out: Problem[]): void {
  checkInfoFirst(hw, out);
  let phase = 0; // 0 Info, 1 System, 2 Item, 3 extensions
  for (const c of hw.children) {
    const step = isOvf(c, 'Info') ? 0 : isOvf(c, 'System') ? 1 : isOvf(c, 'Item') ? 2 : c.ns === OVF_NS ? -1 : 3;
    if (step === -1) { out.push({ code: 'ovf.unexpected_element', message: `VirtualHardwareSection: unknown element <${c.qname}> (line ${c.line})` }); continue; }
    if (step < phase) out.push({ code: 'ovf.order', message: `VirtualHardwareSection: <${c.qname}> (line ${c.line}) is out of order; the order is Info, System, Item..., then extensions such as vmw:Config` });
    phase = Math.max(phase, step);
  }
  for (const sys of kids(hw, OVF_NS, 'System')) {
    checkOrder('System', sys.children, VSSD_ORDER, VSSD_NS, out);
    if (kids(sys, VSSD_NS, 'VirtualSystemType').length === 0) out.push({ code: 'ovf.hardware', message: 'System has no vssd:VirtualSystemType (e.g. vmx-14)' });
  }
  const items = kids(hw, OVF_NS, 'Item');
  const byInstance = new Map<string, { type: number; el: XmlElement }>();
  const counts = new Map<number, number>();
  for (const it of items) {
    const where = `Item (line ${it.line})`;
    checkOrder(where, it.children, RASD_ORDER, RASD_NS, out);
    const inst = kids(it, RASD_NS, 'InstanceID')[0]?.text.trim();
    const type = intText(kids(it, RASD_NS, 'ResourceType')[0]);
    if (!inst) out.push({ code: 'ovf.item', message: `${where} has no rasd:InstanceID` });
    if (kids(it, RASD_NS, 'ElementName').length === 0) out.push({ code: 'ovf.item', message: `${where} has no rasd:ElementName` });
    if (type === undefined) { out.push({ code: 'ovf.item', message: `${where} has no numeric rasd:ResourceType` }); continue; }
    if (!KNOWN_RESOURCE_TYPES.has(type)) out.push({ code: 'ovf.resource_type', message: `${where}: ResourceType ${type} is not one importers map (3 CPU, 4 memory, 5/6/20 controllers, 10 ethernet, 17 disk, ...)` });
    counts.set(type, (counts.get(type) ?? 0) + 1);
    if (inst) {
      if (byInstance.has(inst)) out.push({ code: 'ovf.item', message: `${where}: InstanceID ${inst} is used twice` });
      byInstance.set(inst, { type, el: it });
    }
    const quantity = intText(kids(it, RASD_NS, 'VirtualQuantity')[0]);
    if ((type === RESOURCE_TYPE.processor || type === RESOURCE_TYPE.memory) && (quantity === undefined || quantity < 1)) out.push({ code: 'ovf.item', message: `${where}: ${type === 3 ? 'CPU' : 'memory'} item needs a positive rasd:VirtualQuantity` });
    if (type === RESOURCE_TYPE.memory && allocationUnitBytes(kids(it, RASD_NS, 'AllocationUnits')[0]?.text) === undefined) out.push({ code: 'ovf.item', message: `${where}: unknown memory AllocationUnits` });
    if (type === RESOURCE_TYPE.ethernet) {
      const conn = kids(it, RASD_NS, 'Connection')[0]?.text.trim();
      if (!conn) out.push({ code: 'ovf.network', message: `${where}: ethernet adapter has no rasd:Connection` });
      else if (!networks.has(conn)) out.push({ code: 'ovf.network', message: `${where}: ethernet adapter connects to "${conn}", which NetworkSection does not declare` });
    }
  }
  const usedDisks = new Set<string>();
  for (const [inst, { type, el }] of byInstance) {
    const parent = kids(el, RASD_NS, 'Parent')[0]?.text.trim();
    if (parent !== undefined) {
      const p = byInstance.get(parent);
      if (p === undefined) out.push({ code: 'ovf.item', message: `Item ${inst}: rasd:Parent ${parent} is no Item's InstanceID` });
      else if (type === RESOURCE_TYPE.disk && !CONTROLLER_TYPES.has(p.type)) out.push({ code: 'ovf.item', message: `Item ${inst}: the disk's parent ${parent} is not a disk controller (ResourceType 5, 6 or 20)` });
    }
    if (type === RESOURCE_TYPE.disk) {
      if (parent === undefined) out.push({ code: 'ovf.item', message: `Item ${inst}: a disk needs rasd:Parent (its controller)` });
      const host = kids(el, RASD_NS, 'HostResource')[0]?.text.trim() ?? '';
      const m = /^ovf:\/disk\/(.+)$/.exec(host);
      if (m === null || !diskIds.has(m[1] ?? '')) out.push({ code: 'ovf.references', message: `Item ${inst}: HostResource "${host}" names no Disk of the DiskSection` });
      else usedDisks.add(m[1] ?? '');
    }
  }
  for (const d of diskIds) if (!usedDisks.has(d)) out.push({ code: 'ovf.references', message: `Disk "${d}" is attached to no Item` });
  if ((counts.get(RESOURCE_TYPE.processor) ?? 0) !== 1) out.push({ code: 'ovf.hardware', message: `need one CPU Item (ResourceType 3), found ${counts.get(3) ?? 0}` });
  if ((counts.get(RESOURCE_TYPE.memory) ?? 0) !== 1) out.push({ code: 'ovf.hardware', message: `need one memory Item (ResourceType 4), found ${counts.get(4) ?? 0}` });
  if ((counts.get(RESOURCE_TYPE.ethernet) ?? 0) < 2) out.push({ code: 'ovf.hardware', message: `the appliance needs two ethernet Items (ResourceType 10: management and mirror), found ${counts.get(10) ?? 0}` });
  if (opts.requireEfi ?? true) {
    const fw = hw.children.find((c) => c.ns === VMW_NS && c.local === 'Config' && c.nsAttrs.get(`{${VMW_NS}}key`) === 'firmware');
    const value = fw?.nsAttrs.get(`{${VMW_NS}}value`);
    if (value !== 'efi') out.push({ code: 'ovf.firmware', message: `VirtualHardwareSection needs <vmw:Config vmw:key="firmware" vmw:value="efi"/> (found ${value === undefined ? 'none' : `"${value}"`}): the disk has only an EFI boot loader` });
  }
}

// ---- manifest -------------------------------------------------------------------------------------

/** Parses `SHA256(name)= hex` (and SHA1/SHA512) lines; bad lines are problems. */
export function parseManifest(text: string): { entries: Map<string, { algo: string; digest: string }>; problems: Problem[] } {
  const entries = new Map<string, { algo: string; digest: string }>();
  const problems: Problem[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    const m = /^(SHA1|SHA256|SHA512)\((.+)\)\s?=\s*([0-9a-fA-F]+)$/.exec(line);
    if (m === null) { problems.push({ code: 'manifest.syntax', message: `manifest line ${i + 1} is not "SHA256(file)= digest": "${line.slice(0, 80)}"` }); return; }
    const [, algo = '', name = '', digest = ''] = m;
    const want = algo === 'SHA1' ? 40 : algo === 'SHA256' ? 64 : 128;
    if (digest.length !== want) problems.push({ code: 'manifest.syntax', message: `manifest line ${i + 1}: a ${algo} digest has ${want} hex digits, this one ${digest.length}` });
    if (entries.has(name)) problems.push({ code: 'manifest.syntax', message: `manifest lists "${name}" twice` });
    entries.set(name, { algo, digest: digest.toLowerCase() });
  });
  return { entries, problems };
}

/**
 * Checks a manifest against the files: every listed file has that digest, and every file in
 * `mustCover` (descriptor and disks) is listed. `digestOf` returns undefined for a missing file.
 */
export async function validateManifest(text: string, mustCover: readonly string[], digestOf: (name: string, algo: string) => Promise<string | undefined>): Promise<Problem[]> {
  if (text.length > MAX_MANIFEST_BYTES) return [{ code: 'manifest.too_large', message: `manifest is ${text.length} bytes` }];
  const { entries, problems } = parseManifest(text);
  for (const [name, { algo, digest }] of entries) {
    const actual = await digestOf(name, algo);
    if (actual === undefined) problems.push({ code: 'manifest.missing_file', message: `manifest lists "${name}", which is not there` });
    else if (actual !== digest) problems.push({ code: 'manifest.digest', message: `${algo} of "${name}" is ${actual}, the manifest says ${digest}` });
  }
  for (const name of mustCover) if (!entries.has(name)) problems.push({ code: 'manifest.incomplete', message: `manifest does not list "${name}"` });
  return problems;
}

async function hashRange(path: string, algo: string, start = 0, len?: number): Promise<string> {
  const h = createHash(algo.toLowerCase());
  const end = len === undefined ? undefined : start + len - 1;
  if (len === 0) return h.digest('hex');
  for await (const c of createReadStream(path, { start, end, highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}

async function readAt(path: string, offset: number, len: number): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function vmdkFacts(head: Uint8Array, size: number): ReferencedFile {
  const r = readVmdkHeader(head);
  return r.ok ? { size, vmdk: r.info } : { size, vmdkProblem: r.reason };
}

// ---- OVF folder and OVA ---------------------------------------------------------------------------

/** A descriptor with its manifest (same base name, .mf) and files beside it. */
export async function validateOvfFile(ovfPath: string, opts: Omit<OvfCheckOptions, 'files'> = {}): Promise<Problem[]> {
  const dir = dirname(ovfPath);
  const text = readFileSync(ovfPath, 'utf8');
  const files = new Map<string, ReferencedFile>();
  const parsed = parseXml(text);
  if (parsed.ok) {
    for (const f of parsed.root.children.filter((c) => isOvf(c, 'References')).flatMap((r) => r.children)) {
      const href = ovfAttr(f, 'href');
      if (!href || href.includes('/')) continue;
      const p = join(dir, href);
      if (existsSync(p)) files.set(href, vmdkFacts(await readAt(p, 0, VMDK_HEAD_BYTES), statSync(p).size));
    }
  }
  const out = validateOvfText(text, { ...opts, files });
  const mf = ovfPath.replace(/\.ovf$/i, '.mf');
  if (existsSync(mf)) {
    out.push(...await validateManifest(readFileSync(mf, 'utf8'), [basename(ovfPath), ...files.keys()], async (name, algo) => {
      const p = join(dir, name);
      return name.includes('/') || !existsSync(p) ? undefined : hashRange(p, algo);
    }));
  }
  return out;
}

/**
 * An OVA: ustar members in DSP0243 5.3 order (descriptor first, manifest next, then the files in
 * References order, nothing else), manifest digests of the members, and the descriptor's checks.
 */
export async function validateOva(ovaPath: string, opts: Omit<OvfCheckOptions, 'files'> = {}): Promise<Problem[]> {
  const out: Problem[] = [];
  const total = statSync(ovaPath).size;
  const { members, problem } = await listTar((o, l) => readAt(ovaPath, o, l), total);
  if (problem !== undefined) out.push({ code: 'ova.tar', message: `${basename(ovaPath)}: ${problem}` });
  if (members.length === 0) return out.length > 0 ? out : [{ code: 'ova.tar', message: `${basename(ovaPath)} has no members` }];
  const first = members[0];
  if (first === undefined || !first.name.toLowerCase().endsWith('.ovf')) return [...out, { code: 'ova.member_order', message: `the first member is "${first?.name}", the OVF descriptor must come first` }];
  for (const m of members) {
    if (m.type !== '0') out.push({ code: 'ova.tar', message: `member "${m.name}" is not a regular file (type ${m.type})` });
    if (m.name.includes('/')) out.push({ code: 'ova.tar', message: `member "${m.name}" is in a folder; OVA members sit at the top level` });
  }
  const text = Buffer.from(await readAt(ovaPath, first.dataOffset, Math.min(first.size, MAX_OVF_BYTES + 1))).toString('utf8');
  const parsed = parseXml(text);
  const hrefs = parsed.ok ? parsed.root.children.filter((c) => isOvf(c, 'References')).flatMap((r) => r.children).map((f) => ovfAttr(f, 'href') ?? '') : [];
  const base = first.name.replace(/\.ovf$/i, '');
  const expected = [first.name];
  const hasMf = members[1]?.name === `${base}.mf`;
  if (hasMf) expected.push(`${base}.mf`);
  if (members.some((m, i) => i > 1 && m.name === `${base}.mf`)) out.push({ code: 'ova.member_order', message: `"${base}.mf" must come right after the descriptor` });
  if (members[expected.length]?.name === `${base}.cert`) expected.push(`${base}.cert`);
  expected.push(...hrefs);
  const actualNames = members.map((m) => m.name);
  if (expected.join('\n') !== actualNames.join('\n')) out.push({ code: 'ova.member_order', message: `members are [${actualNames.join(', ')}]; DSP0243 5.3 wants [${expected.join(', ')}]` });
  const byName = new Map(members.map((m) => [m.name, m]));
  const files = new Map<string, ReferencedFile>();
  for (const h of hrefs) {
    const m = byName.get(h);
    if (m !== undefined) files.set(h, vmdkFacts(await readAt(ovaPath, m.dataOffset, Math.min(m.size, VMDK_HEAD_BYTES)), m.size));
  }
  out.push(...validateOvfText(text, { ...opts, files }));
  const mfMember = byName.get(`${base}.mf`);
  if (mfMember === undefined) out.push({ code: 'ova.manifest', message: `no manifest "${base}.mf" in the OVA` });
  else {
    const mfText = Buffer.from(await readAt(ovaPath, mfMember.dataOffset, Math.min(mfMember.size, MAX_MANIFEST_BYTES + 1))).toString('utf8');
    out.push(...await validateManifest(mfText, [first.name, ...hrefs], async (name, algo) => {
      const m = byName.get(name);
      return m === undefined ? undefined : hashRange(ovaPath, algo, m.dataOffset, m.size);
    }));
  }
  return out;
}

// ---- VMX --------------------------------------------------------------------------------------------

/** Parses `key = "value"` lines (keys lower-cased: VMware's keys are case-insensitive). */
export function parseVmx(text: string): { keys: Map<string, string>; problems: Problem[] } {
  const keys = new Map<string, string>();
  const problems: Problem[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    const m = /^([A-Za-z0-9_.:]+)\s*=\s*"([^"]*)"$/.exec(t);
    if (m === null) { problems.push({ code: 'vmx.syntax', message: `vmx line ${i + 1} is not key = "value": "${t.slice(0, 80)}"` }); return; }
    const k = (m[1] ?? '').toLowerCase();
    if (keys.has(k)) problems.push({ code: 'vmx.syntax', message: `vmx key "${m[1]}" is set twice (line ${i + 1})` });
    keys.set(k, m[2] ?? '');
  });
  return { keys, problems };
}

const NIC_DEVICES = new Set(['vmxnet3', 'e1000', 'e1000e']);

/** The .vmx keys an importer or Workstation needs; `hasFile` says whether a disk file name exists. */
export function validateVmxText(text: string, hasFile: (name: string) => boolean): Problem[] {
  if (text.length > MAX_VMX_BYTES) return [{ code: 'vmx.too_large', message: `vmx is ${text.length} bytes` }];
  const { keys, problems: out } = parseVmx(text);
  const need = (k: string, check: (v: string) => boolean, why: string) => {
    const v = keys.get(k.toLowerCase());
    if (v === undefined) out.push({ code: 'vmx.missing_key', message: `vmx has no ${k} (${why})` });
    else if (!check(v)) out.push({ code: 'vmx.bad_value', message: `vmx ${k} = "${v}": ${why}` });
  };
  const posInt = (v: string) => /^[1-9]\d*$/.test(v);
  if (!text.trimStart().startsWith('.encoding')) out.push({ code: 'vmx.encoding', message: 'the first vmx key must be .encoding' });
  need('.encoding', (v) => v.toUpperCase() === 'UTF-8', 'must be "UTF-8"');
  need('config.version', (v) => v === '8', 'must be "8"');
  need('virtualHW.version', (v) => posInt(v) && Number(v) >= 7, 'a hardware version of 7 or later');
  need('firmware', (v) => v === 'efi', 'must be "efi": the disk has only an EFI boot loader');
  need('numvcpus', posInt, 'a positive integer');
  need('memsize', (v) => posInt(v) && Number(v) % 4 === 0, 'a positive multiple of 4 (MiB)');
  need('guestOS', (v) => v !== '', 'the guest OS id');
  for (const n of [0, 1]) {
    need(`ethernet${n}.present`, (v) => v.toUpperCase() === 'TRUE', `adapter ${n + 1} must be present`);
    need(`ethernet${n}.virtualDev`, (v) => NIC_DEVICES.has(v.toLowerCase()), 'one of vmxnet3, e1000, e1000e');
  }
  const buses = ['scsi0', 'sata0', 'nvme0'].filter((b) => keys.get(`${b}.present`)?.toUpperCase() === 'TRUE');
  if (buses.length === 0) out.push({ code: 'vmx.missing_key', message: 'vmx has no disk controller (scsi0.present, sata0.present or nvme0.present = "TRUE")' });
  const disks = [...keys].filter(([k, v]) => /^(scsi|sata|nvme)\d+:\d+\.filename$/.test(k) && v.toLowerCase().endsWith('.vmdk'));
  if (disks.length === 0) out.push({ code: 'vmx.missing_key', message: 'vmx names no disk (scsi0:0.fileName = "x.vmdk")' });
  for (const [k, v] of disks) {
    const bus = k.slice(0, k.indexOf(':'));
    if (!buses.includes(bus)) out.push({ code: 'vmx.bad_value', message: `vmx ${k} sits on ${bus}, which is not present` });
    if (keys.get(k.replace(/filename$/, 'present'))?.toUpperCase() !== 'TRUE') out.push({ code: 'vmx.missing_key', message: `vmx ${k.replace(/filename$/, 'present')} is not "TRUE"` });
    if (!hasFile(v)) out.push({ code: 'vmx.missing_file', message: `vmx ${k} = "${v}", which is not beside the .vmx` });
  }
  return out;
}

/** A .vmx beside its disk. */
export function validateVmxFile(vmxPath: string): Problem[] {
  const dir = dirname(vmxPath);
  return validateVmxText(readFileSync(vmxPath, 'utf8'), (n) => !n.includes('/') && existsSync(join(dir, n)));
}

/** The Workstation zip: exactly one .vmx, its keys, and the disk it names present as a hosted VMDK. */
export async function validateVmxZip(zipPath: string): Promise<Problem[]> {
  const total = statSync(zipPath).size;
  const read = (o: number, l: number) => readAt(zipPath, o, l);
  const listed = await listZip(read, total);
  if (!listed.ok) return [{ code: 'zip.format', message: `${basename(zipPath)}: ${listed.problem}` }];
  const vmxs = listed.members.filter((m) => m.name.toLowerCase().endsWith('.vmx'));
  if (vmxs.length !== 1) return [{ code: 'zip.vmx', message: `${basename(zipPath)} holds ${vmxs.length} .vmx files; it needs exactly one` }];
  const vmx = vmxs[0];
  if (vmx === undefined) return [];
  const dir = vmx.name.includes('/') ? vmx.name.slice(0, vmx.name.lastIndexOf('/') + 1) : '';
  const data = await readZipMember(read, vmx);
  if (!data.ok) return [{ code: 'zip.vmx', message: data.problem }];
  const names = new Map(listed.members.map((m) => [m.name, m]));
  return validateVmxText(data.data.toString('utf8'), (n) => {
    const m = names.get(dir + n);
    return m !== undefined && m.size > 0;
  });
}

/** Dispatches on the file extension. */
export async function validateFile(path: string): Promise<Problem[]> {
  if (!existsSync(path)) return [{ code: 'file.missing', message: `"${path}" does not exist` }];
  const lower = path.toLowerCase();
  if (lower.endsWith('.ova')) return validateOva(path);
  if (lower.endsWith('.ovf')) return validateOvfFile(path);
  if (lower.endsWith('.vmx')) return validateVmxFile(path);
  if (lower.endsWith('.zip')) return validateVmxZip(path);
  return [{ code: 'file.kind', message: `"${path}": expected a .ova, .ovf, .vmx or .zip file` }];
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write('Usage: node dist/vmware/validate.js FILE.ova|FILE.ovf|FILE.vmx|FILE.zip ...\nChecks the VMware deliverables; exit status 1 when any problem is found.\n');
    return argv.length === 0 ? 2 : 0;
  }
  let bad = 0;
  for (const f of argv) {
    const problems = await validateFile(f);
    if (problems.length === 0) process.stdout.write(`ok    ${f}\n`);
    else {
      bad++;
      process.stdout.write(`FAIL  ${f}\n`);
      for (const p of problems) process.stdout.write(`      ${p.code}: ${p.message}\n`);
    }
  }
  return bad === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
    process.stderr.write(`validate: ${(err as Error).message}\n`);
    process.exitCode = 2;
  });
}

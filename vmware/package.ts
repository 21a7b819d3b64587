/**
 * Packaging step of vmware/build.sh: from the streamOptimized VMDK, writes NAME.ovf, NAME.mf and
 * NAME.ova (ustar: descriptor, manifest, disk) into --out, and NAME.vmx into --vmx-dir beside the
 * hosted VMDK named by --vmx-disk. The disk's virtual size comes from its own header.
 * CLI: node dist/vmware/package.js --disk D.vmdk --out DIR [--vmx-dir DIR --vmx-disk F.vmdk] [--name N]
 */
import { createHash } from 'node:crypto';
import { createReadStream, writeFileSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ApplianceSpec, HARK_APPLIANCE, renderManifest, renderOvf, renderVmx } from './ovf.js';
import { writeTar } from './tar.js';
import { VMDK_HEAD_BYTES, readVmdkHeader } from './vmdk.js';

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}

async function readHead(path: string): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(VMDK_HEAD_BYTES);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export interface PackageResult {
  readonly ovf: string;
  readonly mf: string;
  readonly ova: string;
}

/** Writes the descriptor, manifest and OVA for `diskPath` (a streamOptimized VMDK) into `outDir`. */
export async function packageOva(diskPath: string, outDir: string, spec: ApplianceSpec = HARK_APPLIANCE): Promise<PackageResult> {
  const head = readVmdkHeader(await readHead(diskPath));
  if (!head.ok) throw new Error(`Cannot package "${diskPath}": ${head.reason}`);
  if (head.info.createType !== 'streamOptimized') throw new Error(`Cannot package "${diskPath}": an OVA needs a streamOptimized VMDK, this one is "${head.info.createType}"`);
  const href = basename(diskPath);
  const ovf = join(outDir, `${spec.name}.ovf`);
  const mf = join(outDir, `${spec.name}.mf`);
  const ova = join(outDir, `${spec.name}.ova`);
  writeFileSync(ovf, renderOvf(spec, { href, fileSize: (await stat(diskPath)).size, capacityBytes: head.info.capacityBytes }));
  writeFileSync(mf, renderManifest([
    { name: basename(ovf), sha256: await sha256File(ovf) },
    { name: href, sha256: await sha256File(diskPath) },
  ]));
  await writeTar(ova, [ovf, mf, diskPath]);
  return { ovf, mf, ova };
}

/** Writes `<vmxDir>/<name>.vmx` naming `diskFile` (a hosted VMDK in the same folder). */
export function writeVmx(vmxDir: string, diskFile: string, spec: ApplianceSpec = HARK_APPLIANCE): string {
  const path = join(vmxDir, `${spec.name}.vmx`);
  writeFileSync(path, renderVmx(spec, diskFile));
  return path;
}

function parseArgs(argv: string[]): Map<string, string> {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i] ?? '';
    const v = argv[i + 1];
    if (!k.startsWith('--') || v === undefined) throw new Error(`Cannot read the arguments at "${k}": expected --option value pairs`);
    args.set(k.slice(2), v);
  }
  return args;
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const disk = args.get('disk');
  const out = args.get('out');
  if (disk === undefined || out === undefined) {
    process.stderr.write('Usage: node dist/vmware/package.js --disk D.vmdk --out DIR [--vmx-dir DIR --vmx-disk F.vmdk] [--name N]\n');
    return 2;
  }
  const name = args.get('name');
  const spec = name === undefined ? HARK_APPLIANCE : { ...HARK_APPLIANCE, name };
  const r = await packageOva(disk, out, spec);
  process.stdout.write(`package: wrote ${r.ovf}, ${r.mf}, ${r.ova}\n`);
  const vmxDir = args.get('vmx-dir');
  if (vmxDir !== undefined) process.stdout.write(`package: wrote ${writeVmx(vmxDir, args.get('vmx-disk') ?? `${spec.name}.vmdk`, spec)}\n`);
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
    process.stderr.write(`package: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}

/**
 * Appliance boot test (opt-in, `npm run test:appliance`; about 1-2 minutes with KVM, 5-10 with
 * software emulation): boots vmware/out/hark-appliance.raw in qemu-system-x86_64 -machine q35 with
 * OVMF, two vmxnet3 NICs and -snapshot (the image is not changed), reads the serial console until
 * the first-boot report (hark-boot-report.service) and checks: the console menu is on tty1 (at
 * first boot it asks for the root password to set, then runs its wizard), the mirror NIC (eth1) is
 * UP + PROMISC with no address, root is locked, and the root filesystem grew into a disk made
 * GROW_BYTES larger than the image (a qcow2 overlay).
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, copyFileSync, createWriteStream, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPORT_BEGIN = 'HARK-BOOT-REPORT begin';
export const REPORT_END = 'HARK-BOOT-REPORT end';
/** Software emulation boots Debian in a few minutes on a shared 2-core host; 15 leaves a margin. */
export const BOOT_TIMEOUT_TCG_MS = 15 * 60 * 1000;
export const BOOT_TIMEOUT_KVM_MS = 5 * 60 * 1000;
/** What the menu draws on tty1: its banner (menu/console-auth.ts lockScreen, menu/main.ts banner), or the wizard (menu/wizard.ts runWizard). */
export const WIZARD_TEXT = 'Hark sensor setup';
export const MENU_TEXT = 'Hark Sensor Control Menu';

export interface BootReport {
  readonly menuUnit: string;
  readonly mirrorUnit: string;
  /** Link flags of the mirror NIC, e.g. ['BROADCAST', 'NOARP', 'PROMISC', 'UP', 'LOWER_UP']. */
  readonly mirrorFlags: readonly string[];
  readonly mirrorAddresses: number;
  readonly promiscuity: number;
  /** passwd -S status letter of root: L locked, P usable password, NP none. */
  readonly rootPassword: string;
  readonly tty1: readonly string[];
  /** Size of the mounted root filesystem (df), NaN when absent. */
  readonly rootFsBytes: number;
}

/** The boot disk is the image plus this much, so hark-growroot has something to grow into. */
export const GROW_BYTES = 4 * 1024 ** 3;

/** Finds the report between its markers in the serial output (ANSI escapes and CRs removed). */
export function parseBootReport(serial: string): BootReport | undefined {
  const clean = serial.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
  const start = clean.lastIndexOf(REPORT_BEGIN);
  if (start === -1) return undefined;
  const end = clean.indexOf(REPORT_END, start);
  if (end === -1) return undefined;
  const lines = clean.slice(start + REPORT_BEGIN.length, end).split('\n');
  const field = (prefix: string) => lines.find((l) => l.startsWith(prefix))?.slice(prefix.length).trim() ?? '';
  const link = field('mirror-link:');
  return {
    menuUnit: field('hark-menu.service:'),
    mirrorUnit: lines.find((l) => l.startsWith('hark-mirror@'))?.replace(/^[^:]*:/, '').trim() ?? '',
    mirrorFlags: /<([^>]*)>/.exec(link)?.[1]?.split(',').filter((f) => f !== '') ?? [],
    mirrorAddresses: Number.parseInt(field('mirror-addr:'), 10),
    promiscuity: Number.parseInt(/promiscuity (\d+)/.exec(field('mirror-promiscuity:'))?.[1] ?? 'NaN', 10),
    rootPassword: field('root-password:'),
    tty1: lines.filter((l) => l.startsWith('tty1: ')).map((l) => l.slice(6)),
    rootFsBytes: Number.parseInt(field('root-fs-bytes:'), 10),
  };
}

/**
 * The appliance's promises, as failures (empty = all kept). `imageBytes`: size of the disk image;
 * the root partition starts inside it, so a root filesystem larger than it has grown.
 */
export function checkBootReport(r: BootReport, imageBytes: number): string[] {
  const problems: string[] = [];
  if (!(r.rootFsBytes > imageBytes)) problems.push(`root filesystem is ${r.rootFsBytes} bytes: it did not grow past the ${imageBytes}-byte image into the larger disk`);
  if (r.menuUnit !== 'active') problems.push(`hark-menu.service is "${r.menuUnit}", not active`);
  const screen = r.tty1.join('\n');
  if (!screen.includes(WIZARD_TEXT) && !screen.includes(MENU_TEXT)) problems.push(`tty1 shows neither "${WIZARD_TEXT}" nor "${MENU_TEXT}": ${JSON.stringify(screen.slice(0, 200))}`);
  for (const flag of ['UP', 'PROMISC', 'LOWER_UP']) if (!r.mirrorFlags.includes(flag)) problems.push(`mirror NIC flags <${r.mirrorFlags.join(',')}> lack ${flag}`);
  if (!(r.promiscuity >= 1)) problems.push(`mirror NIC promiscuity is ${r.promiscuity}, expected >= 1`);
  if (r.mirrorAddresses !== 0) problems.push(`mirror NIC has ${r.mirrorAddresses} addresses, expected none`);
  if (r.rootPassword !== 'L') problems.push(`root password status is "${r.rootPassword}", expected L (locked)`);
  return problems;
}

export const OVMF_CODE_CANDIDATES = ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_CODE.fd'];

/** qemu arguments: q35 + OVMF pflash, virtio disk, two vmxnet3 NICs, serial on stdio. */
export function qemuArgs(o: { image: string; ovmfCode: string; ovmfVars: string; kvm: boolean; memoryMiB?: number }): string[] {
  return [
    '-machine', `q35,accel=${o.kvm ? 'kvm' : 'tcg'}`,
    // Nested KVM hosts often refuse IA32_ARCH_CAPABILITIES (MSR 0x10a); the guest does not need it.
    ...(o.kvm ? ['-cpu', 'host,-arch-capabilities'] : ['-cpu', 'max']),
    '-smp', '2', '-m', String(o.memoryMiB ?? 2048),
    '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${o.ovmfCode}`,
    '-drive', `if=pflash,format=raw,unit=1,file=${o.ovmfVars}`,
    '-drive', `file=${o.image},format=${o.image.endsWith('.qcow2') ? 'qcow2' : 'raw'},if=virtio`,
    '-netdev', 'user,id=mgmt', '-device', 'vmxnet3,netdev=mgmt,mac=52:54:00:00:00:10',
    '-netdev', 'user,id=mirror,restrict=on', '-device', 'vmxnet3,netdev=mirror,mac=52:54:00:00:00:11',
    '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
  ];
}

function kvmUsable(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** KVM that prints nothing on the serial console in this long is taken as not working. */
const KVM_SILENCE_MS = 45 * 1000;

interface BootRun {
  serial: string;
  stderr: string;
  seconds: number;
  /** KVM reported an internal error or stayed silent: worth retrying with emulation. */
  kvmFailed: boolean;
}

/** Runs qemu until the report's end marker, qemu's exit or the timeout; always stops qemu. */
function bootOnce(args: string[], timeoutMs: number, kvm: boolean, onSerial: (c: Buffer) => void): Promise<BootRun> {
  const started = Date.now();
  const qemu = spawn('nice', ['-n', '10', 'qemu-system-x86_64', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const run: BootRun = { serial: '', stderr: '', seconds: 0, kvmFailed: false };
  return new Promise<BootRun>((resolve) => {
    let done = false;
    const finish = (kvmFailed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(silence);
      run.kvmFailed = kvmFailed;
      run.seconds = Math.round((Date.now() - started) / 1000);
      qemu.kill('SIGTERM');
      resolve(run);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    const silence = setTimeout(() => { if (kvm && run.serial === '') finish(true); }, KVM_SILENCE_MS);
    qemu.stdout.on('data', (c: Buffer) => {
      onSerial(c);
      run.serial += c.toString('latin1');
      if (run.serial.includes(REPORT_END)) finish(false);
    });
    qemu.stderr.on('data', (c: Buffer) => {
      run.stderr += c.toString('utf8');
      if (kvm && /KVM internal error|kvm_buf_set_msrs|failed to initialize kvm/i.test(run.stderr)) finish(true);
    });
    qemu.on('exit', () => finish(kvm && !run.serial.includes(REPORT_END) && run.serial === ''));
  });
}

async function main(): Promise<number> {
  const here = dirname(fileURLToPath(import.meta.url));
  const repo = [join(here, '..', '..'), join(here, '..')].find((d) => existsSync(join(d, 'vmware', 'build.sh'))) ?? process.cwd();
  const image = process.env.HARK_APPLIANCE_IMAGE ?? join(repo, 'vmware', 'out', 'hark-appliance.raw');
  const logPath = join(dirname(image), 'boot-serial.log');
  if (!existsSync(image)) { process.stderr.write(`boot-test: no image at "${image}": build it first (npm run build:appliance)\n`); return 2; }
  if (spawnSync('qemu-system-x86_64', ['--version']).status !== 0) { process.stderr.write('boot-test: qemu-system-x86_64 is missing: apt-get install qemu-system-x86\n'); return 2; }
  const ovmfCode = OVMF_CODE_CANDIDATES.find((p) => existsSync(p));
  if (ovmfCode === undefined) { process.stderr.write('boot-test: no OVMF firmware: apt-get install ovmf\n'); return 2; }
  const tmp = mkdtempSync(join(tmpdir(), 'hark-boot-'));
  const ovmfVars = join(tmp, 'OVMF_VARS.fd');
  copyFileSync(ovmfCode.replace('CODE', 'VARS'), ovmfVars);
  // A temporary overlay, larger than the image: the image is never written, and growroot is tested.
  const imageBytes = statSync(image).size;
  const overlay = join(tmp, 'disk.qcow2');
  const mk = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image, '-F', 'raw', overlay, String(imageBytes + GROW_BYTES)], { encoding: 'utf8' });
  if (mk.status !== 0) { process.stderr.write(`boot-test: qemu-img create failed: ${mk.stderr}\n`); return 2; }
  // HARK_BOOT_ACCEL=tcg forces software emulation. KVM is tried first when /dev/kvm is usable; a
  // KVM that fails (nested virtualisation often does) falls back to emulation.
  const accels = process.env.HARK_BOOT_ACCEL === 'tcg' || !kvmUsable() ? [false] : [true, false];
  const log = createWriteStream(logPath);
  let run: BootRun = { serial: '', stderr: '', seconds: 0, kvmFailed: false };
  for (const kvm of accels) {
    const timeoutMs = kvm ? BOOT_TIMEOUT_KVM_MS : BOOT_TIMEOUT_TCG_MS;
    process.stdout.write(`boot-test: booting ${image} (${kvm ? 'KVM' : 'software emulation'}; serial console in ${logPath}; up to ${timeoutMs / 60000} min)\n`);
    run = await bootOnce(qemuArgs({ image: overlay, ovmfCode, ovmfVars, kvm }), timeoutMs, kvm, (c) => log.write(c));
    if (!run.kvmFailed) break;
    process.stdout.write(`boot-test: KVM did not run the guest (${run.stderr.trim().split('\n')[0] ?? 'no output'}); trying software emulation\n`);
  }
  log.end();
  rmSync(tmp, { recursive: true, force: true });
  const report = parseBootReport(run.serial);
  const seconds = run.seconds;
  if (report === undefined) {
    process.stdout.write(`boot-test: FAIL: no first-boot report on the serial console after ${seconds} s${run.stderr ? `; qemu said: ${run.stderr.trim()}` : ''}\n`);
    process.stdout.write(`${run.serial.split('\n').slice(-25).join('\n')}\n`);
    return 1;
  }
  const problems = checkBootReport(report, imageBytes);
  process.stdout.write(`boot-test: report after ${seconds} s: menu ${report.menuUnit}, mirror eth1 <${report.mirrorFlags.join(',')}> promiscuity ${report.promiscuity}, ${report.mirrorAddresses} addresses, root ${report.rootPassword}, root fs ${report.rootFsBytes} bytes (image ${imageBytes})\n`);
  process.stdout.write(`boot-test: tty1: ${report.tty1.slice(0, 4).join(' | ')}\n`);
  for (const p of problems) process.stdout.write(`boot-test: FAIL: ${p}\n`);
  if (problems.length === 0) process.stdout.write('boot-test: ok\n');
  return problems.length === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then((code) => { process.exitCode = code; }, (err: unknown) => {
    process.stderr.write(`boot-test: ${(err as Error).message}\n`);
    process.exitCode = 2;
  });
}

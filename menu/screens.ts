/**
 * The console menu's information screens (system, sensor status, ping, licence, network) and the
 * allow-list editor. Input: the files under $HARK_ROOT and the control script / sensor command.
 * Output: text on the console; the allow-list editor rewrites the list and offers a restart.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, statfsSync } from 'node:fs';
import { cpus, freemem, hostname, loadavg, networkInterfaces, totalmem, uptime } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_ALLOW_LIST,
  DEFAULT_DATA_DIR,
  type MenuPaths,
  identityPath,
  readAllowList,
  readIdentity,
  readSettings,
  underRoot,
  writeAllowList,
} from './config-files.js';
import { ask, pause, yesNo } from './prompts.js';
import { control, runOnConsole, runQuiet, sensorEnv } from './system.js';
import { checkAllowDomain, checkHost, normaliseAllowDomain } from './validate.js';

/** How long the connectivity check waits for home before calling it unreachable. */
const HOME_CHECK_TIMEOUT_MS = 10_000;
/** Echo requests sent by "Ping an address". */
const PING_COUNT = 4;

const say = (text: string) => process.stdout.write(`${text}\n`);

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function duration(s: number): string {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${d > 0 ? `${d} days, ` : ''}${h} h ${m} min`;
}

/** SHA-256 fingerprint of the sensor certificate, from the identity file or the PEM beside it. */
function fingerprint(paths: MenuPaths, fromIdentity: string | undefined): string {
  if (fromIdentity) return fromIdentity;
  const s = readSettings(paths);
  const pem = readText(join(identityPath(paths, s), '..', 'sensor.crt')) ?? readText(join(identityPath(paths, s), '..', 'cert.pem'));
  if (pem === undefined) return 'none (not enrolled)';
  try {
    return new X509Certificate(pem).fingerprint256;
  } catch {
    return 'unreadable certificate';
  }
}

export async function systemInformation(paths: MenuPaths): Promise<void> {
  const s = readSettings(paths);
  const id = readIdentity(paths, s);
  const home = id.home ?? s?.home;
  const dataDir = underRoot(paths, s?.dataDir ?? DEFAULT_DATA_DIR);
  let disk = 'unknown';
  try {
    const st = statfsSync(dataDir);
    disk = `${human(st.bavail * st.bsize)} free of ${human(st.blocks * st.bsize)} (${s?.dataDir ?? DEFAULT_DATA_DIR})`;
  } catch {
    disk = `unknown (${s?.dataDir ?? DEFAULT_DATA_DIR} missing)`;
  }
  const c = cpus();
  say('\nSystem information');
  say(`  Host name:            ${hostname()}`);
  say(`  Sensor type:          ${s === undefined ? 'not configured' : s.mode === 'home' ? 'standard (home server)' : 'standalone'}`);
  say(`  Home server:          ${home ?? 'none'}`);
  say(`  Sensor id:            ${id.sensorId === 0 ? '0 (not enrolled)' : id.sensorId}`);
  say(`  Certificate SHA-256:  ${fingerprint(paths, id.fingerprint)}`);
  say(`  Management URL:       ${id.managementUrl ?? (home && id.sensorId !== 0 ? `${home}/sensors/${id.sensorId}` : 'none')}`);
  say(`  Uptime:               ${duration(uptime())}`);
  say(`  CPU:                  ${c.length} x ${c[0]?.model.trim() ?? 'unknown'}; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  say(`  Memory:               ${human(totalmem() - freemem())} used of ${human(totalmem())}`);
  say(`  Disk:                 ${disk}`);
  await pause();
}

export async function sensorStatus(paths: MenuPaths): Promise<void> {
  say('\nSensor status');
  await control(paths, 'status');
  await pause();
}

export async function pingAddress(): Promise<void> {
  const target = await ask('Address or host name to ping:', checkHost);
  await runOnConsole('ping', ['-c', String(PING_COUNT), '-W', '2', target]);
  await pause();
}

async function checkHome(home: string): Promise<string> {
  try {
    const r = await fetch(home, { method: 'HEAD', signal: AbortSignal.timeout(HOME_CHECK_TIMEOUT_MS), redirect: 'manual' });
    return `reachable (HTTP ${r.status})`;
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return `NOT reachable: ${cause?.code ?? cause?.message ?? (err as Error).message}`;
  }
}

export async function licenceStatus(paths: MenuPaths): Promise<void> {
  const s = readSettings(paths);
  say('\nLicence and enrolment');
  const r = runQuiet(paths.bin, ['enrol', '--status', '--json'], { env: sensorEnv(paths, s) });
  let shown = false;
  if (r.code === 0) {
    try {
      const j = JSON.parse(r.out) as Record<string, unknown>;
      for (const [k, v] of Object.entries(j)) say(`  ${k.replace(/_/g, ' ').padEnd(20)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
      shown = true;
    } catch {
      shown = false;
    }
  }
  if (!shown) {
    const id = readIdentity(paths, s);
    say(`  sensor id            ${id.sensorId}${id.sensorId === 0 ? ' (not enrolled)' : ''}`);
    say(`  home                 ${id.home ?? s?.home ?? 'none'}`);
    if (r.code !== 0 && r.err.trim() !== '') say(`  (hark enrol --status: ${r.err.trim().split('\n')[0]})`);
  }
  const home = readIdentity(paths, s).home ?? s?.home;
  if (home && (await yesNo('Re-check connectivity to home now?', true))) say(`  ${home}: ${await checkHome(home)}`);
  await pause();
}

export async function networkInformation(paths: MenuPaths): Promise<void> {
  const s = readSettings(paths);
  say('\nNetwork information');
  say('  Addresses:');
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) if (!a.internal) say(`    ${name.padEnd(10)} ${a.cidr ?? a.address}`);
  }
  const routes = runQuiet('ip', ['route', 'show']);
  say('  Routes:');
  for (const l of (routes.code === 0 ? routes.out : 'unavailable').trim().split('\n')) say(`    ${l}`);
  const dns = (readText(paths.resolvConf) ?? '').split('\n').filter((l) => l.startsWith('nameserver')).map((l) => l.split(/\s+/)[1]);
  say(`  DNS servers: ${dns.length > 0 ? dns.join(', ') : 'none'}`);
  say('  Mirror interfaces:');
  for (const m of s?.interfaces ?? []) {
    const stat = (f: string) => readText(join(paths.netClassDir, m, 'statistics', f))?.trim() ?? '?';
    const state = readText(join(paths.netClassDir, m, 'operstate'))?.trim() ?? 'missing';
    say(`    ${m.padEnd(10)} ${state}, ${stat('rx_packets')} packets received, ${stat('rx_dropped')} dropped`);
  }
  if ((s?.interfaces ?? []).length === 0) say('    none configured');
  await pause();
}

/** Allow-list editor: list, `new`, a number to edit, `remove`; each change offers a restart. */
export async function allowListChanges(paths: MenuPaths): Promise<void> {
  const s = readSettings(paths);
  const path = underRoot(paths, s?.allowList ?? DEFAULT_ALLOW_LIST);
  for (;;) {
    const entries = readAllowList(path);
    say('\nAllow list');
    if (entries.length === 0) say('  (empty)');
    entries.forEach((e, i) => say(`  ${String(i + 1).padStart(3)}) ${e}`));
    const checkCommand = (v: string): string | undefined => {
      if (v === '' || v === 'new' || v === 'remove') return undefined;
      if (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= entries.length) return undefined;
      return `Type new, remove, the number of an entry (1-${entries.length}), or press Enter to go back`;
    };
    const cmd = (await ask('Type new to add an entry, the number of an entry to edit it, remove to remove one, or Enter to go back:', checkCommand)).toLowerCase();
    if (cmd === '') return;
    let changed: string;
    if (cmd === 'new') {
      const v = normaliseAllowDomain(await ask('Domain to allow (for example youtube.com):', (x) => checkAllowDomain(x) ?? (entries.includes(x.toLowerCase()) ? `${x} is already in the allow list` : undefined))) ?? '';
      writeAllowList(path, [...entries, v]);
      changed = `Added ${v}.`;
    } else if (cmd === 'remove') {
      if (entries.length === 0) {
        say('The allow list is empty.');
        continue;
      }
      const n = Number(await ask('Number of the entry to remove:', (x) => (/^\d+$/.test(x) && Number(x) >= 1 && Number(x) <= entries.length ? undefined : `Type a number from 1 to ${entries.length}`)));
      const gone = entries[n - 1];
      writeAllowList(path, entries.filter((_, i) => i !== n - 1));
      changed = `Removed ${gone}.`;
    } else {
      const n = Number(cmd);
      const v = normaliseAllowDomain(await ask(`Entry ${n}:`, checkAllowDomain, entries[n - 1])) ?? entries[n - 1];
      const next = [...entries];
      next[n - 1] = v;
      writeAllowList(path, next);
      changed = `Entry ${n} is now ${v}.`;
    }
    say(changed);
    if (await yesNo('Restart services now to apply the change?', true)) {
      await control(paths, 'restart');
      return;
    }
  }
}

export async function supportContact(paths: MenuPaths): Promise<void> {
  const custom = readText(underRoot(paths, 'etc/hark/support.txt'));
  say('\nSupport');
  say(custom?.trimEnd() ?? '  Contact your Hark administrator or the team that supplied this sensor.\n  Have the sensor id (menu option i) and the output of "hark.sh status" ready.');
  await pause();
}

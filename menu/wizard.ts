/**
 * First-boot wizard (and the network editor, menu option 2). Asks, section by section: sensor type,
 * home address, site key and enrolment, management network, upstream proxy, mirror interfaces; shows
 * a summary to confirm or go back to a section; then writes hark.env, the site key (0600) and the
 * networkd files, enrols with home (`hark enrol`, with --site-key-file when home needs a key) and
 * starts the sensor. Every answer is validated and asked again when wrong.
 */
import { readdirSync } from 'node:fs';
import {
  DEFAULT_ALLOW_LIST,
  DEFAULT_DATA_DIR,
  DEFAULT_SITE_KEY_FILE,
  type ManagementNetwork,
  type MenuPaths,
  type SensorSettings,
  hasSiteKey,
  readAllowList,
  readManagementNetwork,
  readSettings,
  removeSiteKey,
  underRoot,
  writeAllowList,
  writeNetworkPlan,
  writeSettings,
  writeSiteKey,
} from './config-files.js';
import { ask, askSecret, choose, yesNo } from './prompts.js';
import { applyNetwork, control, runOnConsole, sensorEnv } from './system.js';
import {
  checkCidr,
  checkHomeUrl,
  checkHostPort,
  checkIpv4,
  checkNotEmpty,
  checkSensorNumber,
  checkSiteKey,
  normaliseHomeUrl,
  parseCidr,
  sameNetwork,
} from './validate.js';

type Enrolment = { kind: 'code' } | { kind: 'account'; user: string; password: string; sensor: string };
/** Home needs no site key; keeps the one stored; or this new one. */
type SiteKey = { kind: 'none' } | { kind: 'keep' } | { kind: 'new'; key: string };

interface Answers {
  mode: 'home' | 'standalone';
  home?: string;
  siteKey?: SiteKey;
  enrolment?: Enrolment;
  management: ManagementNetwork;
  proxy?: string;
  mirrors: string[];
}

const say = (text: string) => process.stdout.write(`${text}\n`);

/** Network interfaces of the machine (or of the test root), loopback excluded. */
export function listInterfaces(paths: MenuPaths): string[] {
  try {
    return readdirSync(paths.netClassDir).filter((n) => n !== 'lo').sort();
  } catch {
    return [];
  }
}

async function askMode(current?: 'home' | 'standalone'): Promise<'home' | 'standalone'> {
  say('\nSensor type');
  return choose<'home' | 'standalone'>(`Which type of sensor is this?${current ? ` (now: ${current})` : ''}`, [
    { name: 'Standard Hark sensor, reporting to a Hark home server', value: 'home' },
    { name: 'Standalone sensor (no home server; captures stay on this machine)', value: 'standalone' },
  ]);
}

async function askHome(current?: string): Promise<string> {
  say('\nHome server');
  const v = await ask('Home server address (for example https://home.example.org):', checkHomeUrl, current);
  return normaliseHomeUrl(v) ?? v;
}

/** Where the site key is (or would be) stored, on this machine. */
function siteKeyPath(paths: MenuPaths, s: SensorSettings | undefined): string {
  return underRoot(paths, s?.siteKeyFile ?? DEFAULT_SITE_KEY_FILE);
}

/** A home may require a site key for enrolment; with one stored already, Enter keeps it. */
async function askSiteKey(stored: boolean): Promise<SiteKey> {
  say('\nSite key');
  if (!(await yesNo("Does home require a site key to enrol (home's administrator knows)?", stored))) return { kind: 'none' };
  if (stored) {
    const key = await askSecret('Site key (press Enter to keep the one stored):', (v) => (v === '' ? undefined : checkSiteKey(v)));
    return key === '' ? { kind: 'keep' } : { kind: 'new', key };
  }
  return { kind: 'new', key: await askSecret('Site key:', checkSiteKey) };
}

async function askEnrolment(): Promise<Enrolment> {
  say('\nEnrolment');
  const kind = await choose<'code' | 'account'>('How should this sensor enrol with home?', [
    { name: 'With an enrolment code from home', value: 'code' },
    { name: 'With a home account user name, password and sensor number', value: 'account' },
  ]);
  if (kind === 'code') {
    say("When you confirm the summary, this sensor shows home's certificate fingerprint: answer y only if");
    say("home's console shows the same. It then asks home for an enrolment code and shows it here; an");
    say('administrator approves the code at home, and setup goes on.');
    return { kind };
  }
  const user = await ask('Home account user name:', checkNotEmpty('the user name'));
  const password = await askSecret('Password:', (v) => (v === '' ? 'Type the password' : undefined));
  const sensor = await ask('Sensor number (from the list of sensors configured in home):', checkSensorNumber);
  return { kind, user, password, sensor };
}

async function askInterface(message: string, names: string[], exclude: string[]): Promise<string> {
  const usable = names.filter((n) => !exclude.includes(n));
  if (usable.length === 0) return ask(message, checkNotEmpty('an interface name'));
  return choose<string>(message, usable.map((n) => ({ name: n, value: n })));
}

export async function askManagement(paths: MenuPaths, current?: ManagementNetwork): Promise<ManagementNetwork> {
  say('\nManagement network');
  const names = listInterfaces(paths);
  const iface = await askInterface(`Management interface (the one with an address)${current ? ` (now: ${current.iface})` : ''}:`, names, []);
  const how = await choose<'dhcp' | 'static'>('How does it get its address?', [
    { name: 'DHCP', value: 'dhcp' },
    { name: 'Static address', value: 'static' },
  ]);
  if (how === 'dhcp') return { iface, dhcp: true };
  const old = current && !current.dhcp ? current : undefined;
  const address = await ask('IP address for this sensor (a free, unused address):', checkIpv4, old?.address);
  const prefix = parseCidr(await ask('Netmask in CIDR form (for example /24 or /22):', checkCidr, old ? `/${old.prefix}` : undefined)) ?? 24;
  const gateway = await ask('Gateway:', (v) => checkIpv4(v) ?? (sameNetwork(v, address, prefix) ? undefined : `The gateway ${v} is not in ${address}/${prefix}; check the address, netmask and gateway`), old?.gateway);
  const dns = await ask('DNS server (one address):', (v) => (v.includes(',') || v.includes(' ') ? 'Only one DNS server is supported; type one address' : checkIpv4(v)), old?.dns);
  return { iface, dhcp: false, address, prefix, gateway, dns };
}

async function askProxy(current?: string): Promise<string | undefined> {
  say('\nUpstream proxy');
  if (!(await yesNo('Do you require an upstream proxy to reach the internet?', current !== undefined))) return undefined;
  const v = await ask('Proxy address and port (host:port; authenticated proxies are not supported):', checkHostPort, current?.replace(/^https?:\/\//, ''));
  return `http://${v}`;
}

export async function askMirrors(paths: MenuPaths, management: string, current: string[] = []): Promise<string[]> {
  say('\nMirror interfaces');
  const usable = listInterfaces(paths).filter((n) => n !== management);
  usable.forEach((n, i) => say(`  ${i + 1}) ${n}`));
  const check = (v: string): string | undefined => {
    const parts = v.split(/[,\s]+/).filter((p) => p !== '');
    if (parts.length === 0) return 'Type at least one mirror interface';
    for (const p of parts) {
      const name = /^\d+$/.test(p) ? usable[Number(p) - 1] : p;
      if (p === management) return `${p} is the management interface; a mirror port carries no address`;
      if (name === undefined || !usable.includes(name)) return `"${p}" is not one of the interfaces listed`;
    }
    return undefined;
  };
  const v = await ask('Which interfaces are mirror ports? (numbers or names, separated by commas)', check, current.filter((c) => usable.includes(c)).join(','));
  const names = v.split(/[,\s]+/).filter((p) => p !== '').map((p) => (/^\d+$/.test(p) ? usable[Number(p) - 1] : p));
  return [...new Set(names)];
}

function describeManagement(m: ManagementNetwork): string {
  return m.dhcp ? `${m.iface}, DHCP` : `${m.iface}, ${m.address}/${m.prefix}, gateway ${m.gateway}, DNS ${m.dns}`;
}

/** The site key as the summary shows it: never the key itself. */
function describeSiteKey(k: SiteKey | undefined): string {
  if (k === undefined || k.kind === 'none') return 'none';
  return k.kind === 'keep' ? 'the one stored' : `new (${[...k.key].length} characters)`;
}

function summary(a: Answers): string {
  const enrol = a.enrolment === undefined ? 'none' : a.enrolment.kind === 'code' ? 'enrolment code' : `account ${a.enrolment.user}, sensor ${a.enrolment.sensor}`;
  return [
    '',
    'Summary',
    `  Sensor type:         ${a.mode === 'home' ? 'standard (home server)' : 'standalone'}`,
    ...(a.mode === 'home' ? [`  Home server:         ${a.home}`, `  Site key:            ${describeSiteKey(a.siteKey)}`, `  Enrolment:           ${enrol}`] : []),
    `  Management network:  ${describeManagement(a.management)}`,
    `  Upstream proxy:      ${a.proxy ?? 'none'}`,
    `  Mirror interfaces:   ${a.mirrors.join(', ')}`,
    '',
  ].join('\n');
}

/**
 * `hark enrol` on the console: it shows home's CA fingerprint and asks to confirm it before anything
 * is sent; in code mode it then shows the code and waits for an administrator to approve. The password
 * goes in the environment of that one process, never on the command line.
 */
async function enrol(paths: MenuPaths, s: SensorSettings, home: string, e: Enrolment): Promise<{ ok: boolean; message: string }> {
  const proxy = s.proxy !== undefined ? ['--proxy', s.proxy.includes('://') ? s.proxy : `http://${s.proxy}`] : [];
  // the key stays in its file: on the command line every local user could read it (ps)
  const siteKey = s.siteKeyFile !== undefined ? ['--site-key-file', underRoot(paths, s.siteKeyFile)] : [];
  const args = e.kind === 'code' ? ['enrol', '--home', home, '--code', ...proxy, ...siteKey] : ['enrol', '--home', home, '--user', e.user, '--sensor', e.sensor, ...proxy, ...siteKey];
  const env = sensorEnv(paths, s);
  if (e.kind === 'account') env.HARK_PASSWORD = e.password;
  const code = await runOnConsole(paths.bin, args, env);
  return { ok: code === 0, message: code === 0 ? '' : `hark enrol exited with status ${code}` };
}

/** The first-boot wizard. Resolves true when the sensor was configured and started. */
export async function runWizard(paths: MenuPaths): Promise<boolean> {
  say('\nHark sensor setup\nThis sensor is not configured yet. Answer each question and press Enter; Ctrl-C returns to the menu.');
  const prev = readSettings(paths);
  const mode = await askMode(prev?.mode);
  const a: Answers = { mode, management: { iface: '', dhcp: true }, mirrors: [] };
  const stored = (): boolean => hasSiteKey(siteKeyPath(paths, prev));
  if (mode === 'home') {
    a.home = await askHome(prev?.home);
    a.siteKey = await askSiteKey(stored());
    a.enrolment = await askEnrolment();
  }
  a.management = await askManagement(paths, readManagementNetwork(paths));
  a.proxy = await askProxy(prev?.proxy);
  a.mirrors = await askMirrors(paths, a.management.iface, prev?.interfaces);

  for (;;) {
    say(summary(a));
    const next = await choose<string>('Is this right?', [
      { name: 'Yes: apply these settings and start the sensor', value: 'apply' },
      { name: 'Change the sensor type', value: 'mode' },
      { name: 'Change the home server, site key and enrolment', value: 'home' },
      { name: 'Change the management network', value: 'network' },
      { name: 'Change the upstream proxy', value: 'proxy' },
      { name: 'Change the mirror interfaces', value: 'mirrors' },
      { name: 'Cancel: leave the sensor unconfigured', value: 'cancel' },
    ]);
    if (next === 'cancel') return false;
    if (next === 'mode') {
      a.mode = await askMode(a.mode);
      if (a.mode === 'home' && a.home === undefined) {
        a.home = await askHome();
        a.siteKey = await askSiteKey(stored());
        a.enrolment = await askEnrolment();
      }
      continue;
    }
    if (next === 'home') {
      if (a.mode !== 'home') {
        say('A standalone sensor has no home server; change the sensor type first.');
        continue;
      }
      a.home = await askHome(a.home);
      a.siteKey = await askSiteKey(stored());
      a.enrolment = await askEnrolment();
      continue;
    }
    if (next === 'network') {
      a.management = await askManagement(paths, a.management);
      a.mirrors = a.mirrors.filter((m) => m !== a.management.iface);
      if (a.mirrors.length === 0) a.mirrors = await askMirrors(paths, a.management.iface);
      continue;
    }
    if (next === 'proxy') {
      a.proxy = await askProxy(a.proxy);
      continue;
    }
    if (next === 'mirrors') {
      a.mirrors = await askMirrors(paths, a.management.iface, a.mirrors);
      continue;
    }
    if (await apply(paths, a, prev)) return true;
  }
}

/** Writes everything, enrols, starts. Resolves false to return to the summary. */
async function apply(paths: MenuPaths, a: Answers, prev: SensorSettings | undefined): Promise<boolean> {
  const written = writeNetworkPlan(paths, { management: a.management, mirrors: a.mirrors });
  say(`Network configuration written: ${written.join(', ')}`);
  applyNetwork(paths, a.mirrors, prev?.interfaces ?? []);
  const s: SensorSettings = {
    mode: a.mode,
    interfaces: a.mirrors,
    dataDir: prev?.dataDir ?? DEFAULT_DATA_DIR,
    allowList: prev?.allowList ?? DEFAULT_ALLOW_LIST,
  };
  if (a.mode === 'home' && a.home) s.home = a.home;
  if (a.proxy) s.proxy = a.proxy;
  if (prev?.runArgs) s.runArgs = prev.runArgs;
  const allowPath = underRoot(paths, s.allowList);
  writeAllowList(allowPath, readAllowList(allowPath));
  const keyFile = prev?.siteKeyFile ?? DEFAULT_SITE_KEY_FILE;
  if (a.mode === 'home' && a.siteKey !== undefined && a.siteKey.kind !== 'none') {
    if (a.siteKey.kind === 'new') writeSiteKey(underRoot(paths, keyFile), a.siteKey.key);
    s.siteKeyFile = keyFile;
  } else {
    // no key needed (or a standalone sensor): none is left behind
    removeSiteKey(underRoot(paths, keyFile));
  }
  if (a.mode === 'home' && a.home && a.enrolment) {
    say(`Enrolling with ${a.home} ...`);
    const r = await enrol(paths, s, a.home, a.enrolment);
    if (!r.ok) {
      say(`Enrolment failed: ${r.message || 'no reason given'}`);
      say('Check the home address, the enrolment details and the network, then choose a section to change.');
      return false;
    }
    say('Enrolment: ok');
  }
  writeSettings(paths, s);
  say('Sensor settings written. Starting the sensor: it phones home and builds its configuration.');
  await control(paths, 'restart');
  return true;
}

/** Menu option 2: the management network and mirror ports only, then offers a restart. */
export async function editNetwork(paths: MenuPaths): Promise<void> {
  const s = readSettings(paths);
  const management = await askManagement(paths, readManagementNetwork(paths));
  const mirrors = await askMirrors(paths, management.iface, s?.interfaces);
  say(`\n  Management network:  ${describeManagement(management)}\n  Mirror interfaces:   ${mirrors.join(', ')}\n`);
  if (!(await yesNo('Apply this network configuration?', true))) return;
  writeNetworkPlan(paths, { management, mirrors });
  applyNetwork(paths, mirrors, s?.interfaces ?? []);
  if (s !== undefined) {
    writeSettings(paths, { ...s, interfaces: mirrors });
    if (await yesNo('Restart services now?', true)) await control(paths, 'restart');
  }
  say('Network configuration saved.');
}

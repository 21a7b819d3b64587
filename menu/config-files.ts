/**
 * The files the console menu reads and writes, all under $HARK_ROOT: the sensor settings
 * (etc/hark/hark.env), the local allow list, the site key `hark enrol --site-key-file` reads (0600),
 * the systemd-networkd files for the management and mirror interfaces, and the sensor identity
 * (DATA/identity/sensor.json, read only). Writes are atomic (temporary file + rename) with the
 * mode asked for whatever the umask; readers never throw on a missing or damaged file.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface MenuPaths {
  /** "/" on the appliance; a temporary folder in tests. */
  root: string;
  envFile: string;
  networkDir: string;
  actionsLog: string;
  /** Where interface lists and counters are read (sys/class/net under the root when present). */
  netClassDir: string;
  resolvConf: string;
  /** The control script and the sensor command are programs, not data: never under the root. */
  ctl: string;
  bin: string;
  /** Console sign-in state, root only (0700): the failures file and the first-boot marker. */
  consoleStateDir: string;
  /** Recent wrong console passwords, one time (ms) a line: the lockout outlives a menu restart. */
  consoleFailures: string;
  /**
   * Made by the image build (vmware/build.sh) beside `passwd -l root`: root has never had a
   * password, so whoever first reaches the console chooses one. Deleted once it is set.
   */
  firstBootMarker: string;
  /**
   * Staging roots only ($HARK_ACCOUNTS): the program that stands in for passwd, su and chpasswd,
   * given their real command lines. Ignored on "/", where the real ones always run.
   */
  accounts?: string;
}

/** The console's own state: root's, not the sensor's (the `hark` user owns /var/lib/hark). */
export const CONSOLE_STATE_DIR = 'var/lib/hark-menu';

export function menuPaths(env: NodeJS.ProcessEnv = process.env): MenuPaths {
  const root = env.HARK_ROOT && env.HARK_ROOT !== '' ? env.HARK_ROOT : '/';
  const rooted = (p: string) => join(root, p);
  return {
    root,
    envFile: rooted('etc/hark/hark.env'),
    networkDir: rooted('etc/systemd/network'),
    actionsLog: rooted('var/log/hark/menu-actions.log'),
    netClassDir: existsSync(rooted('sys/class/net')) ? rooted('sys/class/net') : '/sys/class/net',
    resolvConf: rooted('etc/resolv.conf'),
    ctl: env.HARK_CTL ?? '/opt/hark/appliance/hark.sh',
    bin: env.HARK_BIN ?? '/opt/hark/bin/hark',
    consoleStateDir: rooted(CONSOLE_STATE_DIR),
    consoleFailures: rooted(`${CONSOLE_STATE_DIR}/login-failures`),
    firstBootMarker: rooted(`${CONSOLE_STATE_DIR}/root-password-unset`),
    accounts: root !== '/' && env.HARK_ACCOUNTS ? env.HARK_ACCOUNTS : undefined,
  };
}

/** Appliance path (as written in hark.env) -> path on this machine. */
export function underRoot(paths: MenuPaths, p: string): string {
  return join(paths.root, p);
}

export function writeFileAtomic(path: string, text: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  // A temporary file left by a crash keeps its old mode through a plain write: start afresh ('wx'),
  // and set the mode itself, which the umask only narrows at creation.
  rmSync(tmp, { force: true });
  writeFileSync(tmp, text, { mode, flag: 'wx' });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

// ---- hark.env -------------------------------------------------------------------------------------

export interface SensorSettings {
  mode: 'home' | 'standalone';
  /** Mirror ports, in the order the sensor opens them. */
  interfaces: string[];
  home?: string;
  proxy?: string;
  dataDir: string;
  allowList: string;
  /** The file holding home's site key for enrolment (HARK_SITE_KEY_FILE; the key never goes in hark.env). */
  siteKeyFile?: string;
  runArgs?: string;
}

export const DEFAULT_DATA_DIR = '/var/lib/hark';
export const DEFAULT_ALLOW_LIST = '/etc/hark/allow-list.txt';
/** Root's alone (0600) in /etc/hark (0750 root:hark): only `hark enrol`, run by the menu as root, reads it. */
export const DEFAULT_SITE_KEY_FILE = '/etc/hark/site-key';
/** The site key is a secret: nobody but its owner (root) may read the file. */
export const SITE_KEY_FILE_MODE = 0o600;

/** systemd EnvironmentFile syntax: KEY=VALUE, # or ; comments, optional surrounding quotes. */
export function parseEnvFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m === null) continue;
    let v = m[2];
    if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'")))) v = v.slice(1, -1);
    out.set(m[1], v);
  }
  return out;
}

export function settingsFromEnv(vars: Map<string, string>): SensorSettings {
  const s: SensorSettings = {
    mode: vars.get('HARK_MODE') === 'standalone' ? 'standalone' : 'home',
    interfaces: (vars.get('HARK_INTERFACE') ?? '').split(',').map((x) => x.trim()).filter((x) => x !== ''),
    dataDir: vars.get('HARK_DATA_DIR') || DEFAULT_DATA_DIR,
    allowList: vars.get('HARK_ALLOW_LIST') || DEFAULT_ALLOW_LIST,
  };
  if (vars.get('HARK_HOME')) s.home = vars.get('HARK_HOME');
  if (vars.get('HARK_PROXY')) s.proxy = vars.get('HARK_PROXY');
  if (vars.get('HARK_SITE_KEY_FILE')) s.siteKeyFile = vars.get('HARK_SITE_KEY_FILE');
  if (vars.get('HARK_RUN_ARGS')) s.runArgs = vars.get('HARK_RUN_ARGS');
  return s;
}

export function renderEnvFile(s: SensorSettings): string {
  const q = (v: string) => (/[\s"'#;\\]/.test(v) ? `"${v.replace(/["\\]/g, '')}"` : v);
  const lines = [
    '# Hark sensor settings, read by hark.service (EnvironmentFile=) and appliance/hark.sh.',
    '# Written by the console menu; change them there (hark menu) or edit and run hark.sh restart.',
    `HARK_MODE=${s.mode}`,
    `HARK_INTERFACE=${s.interfaces.join(',')}`,
    `HARK_DATA_DIR=${q(s.dataDir)}`,
    `HARK_ALLOW_LIST=${q(s.allowList)}`,
  ];
  if (s.home) lines.push(`HARK_HOME=${q(s.home)}`);
  lines.push(s.proxy ? `HARK_PROXY=${q(s.proxy)}` : '# HARK_PROXY=http://proxy:3128');
  if (s.siteKeyFile) lines.push(`HARK_SITE_KEY_FILE=${q(s.siteKeyFile)}`);
  lines.push(s.runArgs ? `HARK_RUN_ARGS=${q(s.runArgs)}` : 'HARK_RUN_ARGS=');
  return `${lines.join('\n')}\n`;
}

export function readSettings(paths: MenuPaths): SensorSettings | undefined {
  const text = readText(paths.envFile);
  return text === undefined ? undefined : settingsFromEnv(parseEnvFile(text));
}

export function writeSettings(paths: MenuPaths, s: SensorSettings): void {
  // 0640 root:hark on the appliance (setup.sh sets the group); the proxy may name internal hosts.
  writeFileAtomic(paths.envFile, renderEnvFile(s), 0o640);
}

// ---- allow list -----------------------------------------------------------------------------------

export function parseAllowList(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

export function readAllowList(path: string): string[] {
  return parseAllowList(readText(path) ?? '');
}

export function writeAllowList(path: string, entries: readonly string[]): void {
  const header = '# Hark local allow list: one domain per line; a domain allows its subdomains too.\n';
  writeFileAtomic(path, header + entries.map((e) => `${e}\n`).join(''), 0o644);
}

// ---- site key --------------------------------------------------------------------------------------

/** Stores home's site key as the first line of `path`, mode 0600 (hark enrol --site-key-file reads it). */
export function writeSiteKey(path: string, key: string): void {
  writeFileAtomic(path, `${key}\n`, SITE_KEY_FILE_MODE);
}

export function hasSiteKey(path: string): boolean {
  return existsSync(path);
}

export function removeSiteKey(path: string): void {
  rmSync(path, { force: true });
}

// ---- systemd-networkd -----------------------------------------------------------------------------

export type ManagementNetwork =
  | { iface: string; dhcp: true }
  | { iface: string; dhcp: false; address: string; prefix: number; gateway: string; dns: string };

export interface NetworkPlan {
  management: ManagementNetwork;
  mirrors: string[];
}

/** Prefix of every networkd file the menu owns; others in the folder are left alone. */
const NETWORKD_PREFIX = '10-hark-';

export function renderNetworkdFiles(plan: NetworkPlan): { name: string; text: string }[] {
  const m = plan.management;
  const mgmt = ['# Hark management interface: written by the console menu.', '[Match]', `Name=${m.iface}`, '', '[Network]'];
  if (m.dhcp) mgmt.push('DHCP=ipv4');
  else mgmt.push(`Address=${m.address}/${m.prefix}`, `Gateway=${m.gateway}`, `DNS=${m.dns}`);
  const files = [{ name: `${NETWORKD_PREFIX}management.network`, text: `${mgmt.join('\n')}\n` }];
  for (const iface of plan.mirrors) {
    files.push({
      name: `${NETWORKD_PREFIX}mirror-${iface}.network`,
      text: [
        `# Hark mirror port ${iface}: up, promiscuous, no address (hark-mirror@${iface}.service does the same).`,
        '[Match]',
        `Name=${iface}`,
        '',
        '[Link]',
        'Promiscuous=yes',
        'ARP=no',
        'RequiredForOnline=no',
        '',
        '[Network]',
        'DHCP=no',
        'LinkLocalAddressing=no',
        'IPv6AcceptRA=no',
        '',
      ].join('\n'),
    });
  }
  return files;
}

/** Replaces every menu-owned networkd file with the plan's; returns the names written. */
export function writeNetworkPlan(paths: MenuPaths, plan: NetworkPlan): string[] {
  mkdirSync(paths.networkDir, { recursive: true });
  for (const f of readdirSync(paths.networkDir)) {
    if (f.startsWith(NETWORKD_PREFIX) && f.endsWith('.network')) rmSync(join(paths.networkDir, f));
  }
  const files = renderNetworkdFiles(plan);
  for (const f of files) writeFileAtomic(join(paths.networkDir, f.name), f.text);
  return files.map((f) => f.name);
}

/** Reads back the management settings the menu wrote (for pre-filling the network editor). */
export function readManagementNetwork(paths: MenuPaths): ManagementNetwork | undefined {
  const text = readText(join(paths.networkDir, `${NETWORKD_PREFIX}management.network`));
  if (text === undefined) return undefined;
  const get = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(text)?.[1]?.trim();
  const iface = get('Name');
  if (iface === undefined) return undefined;
  if (get('DHCP') === 'ipv4' || get('DHCP') === 'yes') return { iface, dhcp: true };
  const a = /^(.+)\/(\d+)$/.exec(get('Address') ?? '');
  if (a === null) return undefined;
  return { iface, dhcp: false, address: a[1], prefix: Number(a[2]), gateway: get('Gateway') ?? '', dns: get('DNS') ?? '' };
}

// ---- identity -------------------------------------------------------------------------------------

export interface SensorIdentity {
  sensorId: number;
  home?: string;
  fingerprint?: string;
  managementUrl?: string;
}

export function identityPath(paths: MenuPaths, s: SensorSettings | undefined): string {
  return join(underRoot(paths, s?.dataDir ?? DEFAULT_DATA_DIR), 'identity', 'sensor.json');
}

export function readIdentity(paths: MenuPaths, s: SensorSettings | undefined): SensorIdentity {
  const text = readText(identityPath(paths, s));
  if (text === undefined) return { sensorId: 0 };
  try {
    const j = JSON.parse(text) as Record<string, unknown>;
    const str = (k: string) => (typeof j[k] === 'string' ? (j[k] as string) : undefined);
    const id: SensorIdentity = { sensorId: typeof j.sensor_id === 'number' ? j.sensor_id : Number(j.sensor_id) || 0 };
    const home = str('home') ?? str('home_url');
    if (home) id.home = home;
    const fp = str('certificate_fingerprint') ?? str('fingerprint');
    if (fp) id.fingerprint = fp;
    const mu = str('management_url');
    if (mu) id.managementUrl = mu;
    return id;
  } catch {
    return { sensorId: 0 };
  }
}

/** Unconfigured: no settings file, or a home-mode sensor that has no sensor id yet. */
export function isUnconfigured(paths: MenuPaths): boolean {
  const s = readSettings(paths);
  if (s === undefined) return true;
  return s.mode === 'home' && readIdentity(paths, s).sensorId === 0;
}

/**
 * What the console menu does to the machine: the control script, the sensor command (enrol,
 * status), machine actions (reboot, shut down, network reload) and the root account (is there a
 * password, is this it, set it: passwd -S, su through PAM, chpasswd). Machine actions run for real
 * only when HARK_ROOT is "/"; otherwise they are recorded, one line each, in
 * $HARK_ROOT/var/log/hark/menu-actions.log so tests can check them without touching the machine,
 * and the account tools are replaced by the $HARK_ACCOUNTS stand-in.
 */
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DEFAULT_DATA_DIR, type MenuPaths, type SensorSettings, underRoot } from './config-files.js';

/** Longest a status or enrolment query may take before the menu gives up on it. */
const QUERY_TIMEOUT_MS = 60_000;

export function isRealMachine(paths: MenuPaths): boolean {
  return paths.root === '/';
}

export function recordAction(paths: MenuPaths, action: string): void {
  mkdirSync(dirname(paths.actionsLog), { recursive: true });
  appendFileSync(paths.actionsLog, `${new Date().toISOString()} ${action}\n`);
}

/** Runs a program on the console (output straight to the screen); resolves with its exit status. */
export function runOnConsole(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'inherit', env });
    child.on('error', (err) => {
      process.stdout.write(`Cannot run "${cmd}": ${err.message}\n`);
      resolve(127);
    });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** Runs a program quietly; resolves with its status and output. */
export function runQuiet(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): { code: number; out: string; err: string } {
  const r = spawnSync(cmd, args, { env: opts.env ?? process.env, input: opts.input, encoding: 'utf8', timeout: QUERY_TIMEOUT_MS });
  if (r.error) return { code: 127, out: '', err: `Cannot run "${cmd}": ${r.error.message}` };
  return { code: r.status ?? 1, out: r.stdout ?? '', err: r.stderr ?? '' };
}

export function control(paths: MenuPaths, action: 'start' | 'stop' | 'restart' | 'reload' | 'status'): Promise<number> {
  return runOnConsole('bash', [paths.ctl, action]);
}

/** The environment the sensor command sees: its data directory under the root. */
export function sensorEnv(paths: MenuPaths, s: SensorSettings | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HARK_DATA_DIR: underRoot(paths, s?.dataDir ?? DEFAULT_DATA_DIR) };
  if (s?.proxy) env.HARK_PROXY = s.proxy;
  return env;
}

/** Machine actions: real on "/", recorded elsewhere. */
export async function machineAction(paths: MenuPaths, action: 'reboot' | 'poweroff'): Promise<void> {
  if (!isRealMachine(paths)) {
    recordAction(paths, action);
    process.stdout.write(`(test root ${paths.root}: ${action} recorded, not done)\n`);
    return;
  }
  await runOnConsole('systemctl', [action]);
}

// ---- the root account: the system's own tools, never a password hash of ours ----------------

/** `passwd -S`, chpasswd and su answer within this; a hung PAM module must not hold the console. */
const ACCOUNT_TIMEOUT_MS = 30_000;
/** nobody:nogroup on Debian: su is asked by an unprivileged caller, so PAM really authenticates. */
const NOBODY_ID = 65534;

export type RootPasswordState = 'usable' | 'none' | 'unknown';

interface AccountRun {
  code: number;
  out: string;
  err: string;
}

/**
 * Runs one account tool: on "/" the real program; in a staging root the $HARK_ACCOUNTS stand-in
 * with the real command line as its arguments (none: status 127). Input goes on stdin.
 */
function runAccountTool(paths: MenuPaths, argv: readonly string[], input?: string): Promise<AccountRun> {
  let cmd: string;
  let args: string[];
  // A fixed environment: PAM and the tools must not see the console's locale, proxy or HARK_*.
  let env: NodeJS.ProcessEnv = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };
  if (isRealMachine(paths)) {
    [cmd, ...args] = argv;
  } else if (paths.accounts !== undefined) {
    cmd = paths.accounts;
    args = [...argv];
    env = { ...process.env, ...env };
  } else {
    return Promise.resolve({ code: 127, out: '', err: `staging root ${paths.root} without $HARK_ACCOUNTS: no ${argv[0]} to run` });
  }
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'], timeout: ACCOUNT_TIMEOUT_MS });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => resolve({ code: 127, out, err: `Cannot run "${cmd}": ${e.message}` }));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), out, err }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/**
 * Whether root can sign in with a password, from `passwd -S root` (P usable, L locked, NP empty).
 * An empty password counts as none: PAM's nullok would let an empty answer through.
 */
export async function rootPasswordState(paths: MenuPaths): Promise<{ state: RootPasswordState; detail: string }> {
  const r = await runAccountTool(paths, ['passwd', '--status', 'root']);
  const status = r.code === 0 ? r.out.trim().split(/\s+/)[1] : undefined;
  if (status === 'P') return { state: 'usable', detail: 'P' };
  if (status === 'L' || status === 'NP') return { state: 'none', detail: status };
  return { state: 'unknown', detail: r.code === 0 ? `passwd -S root said "${r.out.trim().slice(0, 80)}"` : r.err.trim().split('\n')[0] ?? `status ${r.code}` };
}

/**
 * True when `password` is root's, as PAM says: `su -c true root` run as nobody (setpriv), the
 * password on its stdin. PAM does the hash (yescrypt on Debian 12, whatever /etc/shadow holds),
 * its own failure delay, and logs the failure (auth.log / the journal: "FAILED SU (to root)").
 */
export async function verifyRootPassword(paths: MenuPaths, password: string): Promise<boolean> {
  // su reads one line: a password with a line break (or a NUL) could never be root's.
  if (password === '' || /[\n\r\0]/.test(password)) return false;
  const r = await runAccountTool(paths, ['setpriv', `--reuid=${NOBODY_ID}`, `--regid=${NOBODY_ID}`, '--clear-groups', '--', 'su', '-c', 'true', 'root'], `${password}\n`);
  return r.code === 0;
}

/** Sets root's password with chpasswd (PAM hashes it as the system is configured to). */
export async function setRootPassword(paths: MenuPaths, password: string): Promise<boolean> {
  if (!isRealMachine(paths) && paths.accounts === undefined) {
    recordAction(paths, 'root-password changed');
    return true;
  }
  const r = await runAccountTool(paths, ['chpasswd'], `root:${password}\n`);
  if (r.code !== 0) process.stdout.write(`Setting the root password failed: ${r.err.trim()}\n`);
  return r.code === 0;
}

/** After new networkd files: reload networkd and (re)enable the mirror-port units. */
export function applyNetwork(paths: MenuPaths, mirrors: readonly string[], previous: readonly string[]): void {
  if (!isRealMachine(paths)) {
    recordAction(paths, `network-apply mirrors=${mirrors.join(',')}`);
    return;
  }
  for (const old of previous) if (!mirrors.includes(old)) runQuiet('systemctl', ['disable', '--now', `hark-mirror@${old}.service`]);
  for (const m of mirrors) runQuiet('systemctl', ['enable', '--now', `hark-mirror@${m}.service`]);
  const r = runQuiet('networkctl', ['reload']);
  if (r.code !== 0) process.stdout.write(`networkctl reload failed: ${r.err.trim()}\n`);
}

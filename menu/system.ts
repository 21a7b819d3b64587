/**
 * What the console menu does to the machine: the control script, the sensor command (enrol,
 * status), and machine actions (reboot, shut down, root password, network reload). Machine actions
 * run for real only when HARK_ROOT is "/"; otherwise they are recorded, one line each, in
 * $HARK_ROOT/var/log/hark/menu-actions.log so tests can check them without touching the machine.
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

export function setRootPassword(paths: MenuPaths, password: string): boolean {
  if (!isRealMachine(paths)) {
    recordAction(paths, 'root-password changed');
    return true;
  }
  const r = runQuiet('chpasswd', [], { input: `root:${password}\n` });
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

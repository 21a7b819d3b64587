/**
 * Console sign-in for the appliance menu on tty1: no option runs until the root password is given,
 * checked by PAM (system.ts verifyRootPassword; never a hash of ours). Wrong passwords are counted
 * in a root-only file, so restarting the menu does not reset them: CONSOLE_LOGIN_FAILURES in
 * CONSOLE_LOGIN_WINDOW_MS lock the console until the oldest ages out, and each wrong one costs
 * CONSOLE_FAIL_DELAY_MS on top of PAM's own delay. At the image's first boot (root locked and
 * paths.firstBootMarker present) whoever is at the console must choose the root password first.
 * Input: the console. Output: resolves once the console is unlocked.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { type MenuPaths, writeFileAtomic } from './config-files.js';
import { Cancelled, ask, askSecret, inputClosed } from './prompts.js';
import { recordAction, rootPasswordState, setRootPassword, verifyRootPassword } from './system.js';
import { MIN_ROOT_PASSWORD_LEN } from './validate.js';

/** Wrong console passwords allowed in the window: the same allowance as home's per-user login limit. */
export const CONSOLE_LOGIN_FAILURES = 5;
export const CONSOLE_LOGIN_WINDOW_MS = 15 * 60 * 1000;
/** After each wrong password, as login(1)'s FAIL_DELAY in Debian's /etc/login.defs. */
export const CONSOLE_FAIL_DELAY_MS = 3000;
/** Unanswered question that long locks the console: the CIS ESXi benchmark's DCUI timeout (600 s or less). */
export const DEFAULT_IDLE_TIMEOUT_S = 600;
/** $HARK_MENU_IDLE_S is taken between these (a day at most: an unattended console must lock). */
const MIN_IDLE_TIMEOUT_S = 1;
const MAX_IDLE_TIMEOUT_S = 86_400;
/** The locked-out screen redraws with the time left at least this often. */
const LOCKED_REDRAW_MS = 30_000;

const say = (text: string) => process.stdout.write(`${text}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Raised where a wrong password has just locked the console: the menu goes back to sign-in. */
export class ConsoleLocked extends Error {
  constructor() {
    super('too many wrong passwords');
    this.name = 'ConsoleLocked';
  }
}

/** The idle limit: $HARK_MENU_IDLE_S seconds when it is a whole number in range, else the default. */
export function idleTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.HARK_MENU_IDLE_S);
  const s = Number.isInteger(v) && v >= MIN_IDLE_TIMEOUT_S && v <= MAX_IDLE_TIMEOUT_S ? v : DEFAULT_IDLE_TIMEOUT_S;
  return s * 1000;
}

/** Times (ms) of the wrong passwords still inside the window, oldest first. */
export function readFailures(paths: MenuPaths, now = Date.now()): number[] {
  let text = '';
  try {
    text = readFileSync(paths.consoleFailures, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map(Number)
    .filter((t) => Number.isFinite(t) && t > 0 && now - t < CONSOLE_LOGIN_WINDOW_MS && t <= now + 1000)
    .sort((a, b) => a - b);
}

function writeFailures(paths: MenuPaths, times: readonly number[]): void {
  mkdirSync(paths.consoleStateDir, { recursive: true, mode: 0o700 });
  if ((statSync(paths.consoleStateDir).mode & 0o777) !== 0o700) chmodSync(paths.consoleStateDir, 0o700);
  writeFileAtomic(paths.consoleFailures, times.map((t) => `${t}\n`).join(''), 0o600);
}

/** Milliseconds the console stays locked out, 0 when a password may be tried. */
export function lockedForMs(paths: MenuPaths, now = Date.now()): number {
  const times = readFailures(paths, now);
  if (times.length < CONSOLE_LOGIN_FAILURES) return 0;
  return Math.max(1, times[times.length - CONSOLE_LOGIN_FAILURES] + CONSOLE_LOGIN_WINDOW_MS - now);
}

/**
 * Checks a root password typed on the console. The attempt is written down as a failure before
 * PAM is asked (killing the menu mid-check does not uncount it) and forgotten, with the earlier
 * failures, only when right. A wrong one waits CONSOLE_FAIL_DELAY_MS before answering.
 */
export async function checkRootPassword(paths: MenuPaths, password: string): Promise<'ok' | 'wrong' | 'locked'> {
  const now = Date.now();
  if (lockedForMs(paths, now) > 0) return 'locked';
  writeFailures(paths, [...readFailures(paths, now), now]);
  if (await verifyRootPassword(paths, password)) {
    rmSync(paths.consoleFailures, { force: true });
    return 'ok';
  }
  await sleep(CONSOLE_FAIL_DELAY_MS);
  if (lockedForMs(paths) === 0) return 'wrong';
  recordAction(paths, 'console locked: too many wrong passwords');
  return 'locked';
}

function minutes(ms: number): string {
  const s = Math.ceil(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** Asks for a new root password twice and sets it (chpasswd). True when set. */
export async function chooseRootPassword(paths: MenuPaths, message = 'New root password'): Promise<boolean> {
  const pw = await askSecret(`${message} (at least ${MIN_ROOT_PASSWORD_LEN} characters):`, (v) =>
    v.length < MIN_ROOT_PASSWORD_LEN ? `The password needs at least ${MIN_ROOT_PASSWORD_LEN} characters` : /[:\n\r\0]/.test(v) ? 'The password cannot contain ":" or a line break' : undefined,
  );
  await askSecret('Type it again:', (v) => (v === pw ? undefined : 'The two passwords differ; type the same password again'));
  return setRootPassword(paths, pw);
}

/** Clears the screen (nothing of the last session stays readable) and draws the locked banner. */
export function lockScreen(): void {
  process.stdout.write('\x1b[2J\x1b[H');
  say('Hark Sensor Control Menu');
  say('');
}

/**
 * The locked console. Resolves true once the root password was given (or, at the image's first
 * boot, chosen), false when the console's input has closed. Ctrl-C only asks again.
 */
export async function unlockConsole(paths: MenuPaths): Promise<boolean> {
  lockScreen();
  for (;;) {
    if (inputClosed()) return false;
    const { state, detail } = await rootPasswordState(paths);
    const firstBoot = existsSync(paths.firstBootMarker);
    // A marker left while root has a password must not reopen the first-boot way if root is locked later.
    if (state === 'usable' && firstBoot) rmSync(paths.firstBootMarker, { force: true });
    try {
      if (state === 'none' && firstBoot) {
        say('First start: root has no password yet. Choose one now. It unlocks this console and the');
        say('command prompt (option 3); SSH accepts keys only. Keep it safe: the console menu asks for it.');
        if (await chooseRootPassword(paths, 'Root password for this appliance')) {
          rmSync(paths.firstBootMarker, { force: true });
          recordAction(paths, 'console first root password set');
          say('Root password set.');
          return true;
        }
        say('The root password was NOT set.');
        await ask('Press Enter to try again:');
        continue;
      }
      if (state !== 'usable') {
        say(state === 'none'
          ? `Root has no usable password (passwd -S: ${detail}), so this console cannot check who you are and stays locked.\nSet one from an administrator session (SSH with a key: passwd root), then press Enter.`
          : `Cannot check the root password (${detail}); the console stays locked.`);
        await ask('Press Enter to check again:');
        continue;
      }
      const wait = lockedForMs(paths);
      if (wait > 0) {
        lockScreen();
        say(`Too many wrong passwords: the console is locked for ${minutes(wait)}.`);
        await sleep(Math.min(wait, LOCKED_REDRAW_MS));
        continue;
      }
      say('The console is locked. Type the root password to use the menu.');
      const result = await checkRootPassword(paths, await askSecret('Root password:'));
      if (result === 'ok') return true;
      if (result === 'wrong') say('Wrong password.');
    } catch (err) {
      if (!(err instanceof Cancelled)) throw err;
    }
  }
}

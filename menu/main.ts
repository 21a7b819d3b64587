/**
 * The appliance console menu (`hark menu`, or `node dist/menu/main.js`): numbered actions 1-8 and
 * lettered information screens, on the files under $HARK_ROOT and the control script. Nothing runs
 * before the console is unlocked with the root password (console-auth.ts; at the image's first
 * boot, by choosing it); a question left unanswered for the idle limit locks it again, as does
 * option x. An unconfigured sensor then starts in the first-boot wizard. Ctrl-C anywhere returns
 * to the menu; the menu ends (status 0) only through "Exit to a command prompt" or when its input
 * closes.
 */
import { realpathSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SITE_KEY_FILE, type MenuPaths, isUnconfigured, menuPaths, readIdentity, readSettings, removeSiteKey, underRoot } from './config-files.js';
import { ConsoleLocked, DEFAULT_IDLE_TIMEOUT_S, checkRootPassword, chooseRootPassword, idleTimeoutMs, unlockConsole } from './console-auth.js';
import { Cancelled, IdleTimeout, askSecret, choose, inputClosed, pause, setIdleLimit, yesNo } from './prompts.js';
import { allowListChanges, licenceStatus, networkInformation, pingAddress, sensorStatus, supportContact, systemInformation } from './screens.js';
import { control, machineAction, recordAction, runQuiet, sensorEnv } from './system.js';
import { editNetwork, runWizard } from './wizard.js';

const USAGE = `Usage: hark menu
The appliance console menu. Settings and actions live under $HARK_ROOT (default /); it drives the
control script $HARK_CTL (default /opt/hark/appliance/hark.sh) and the sensor command $HARK_BIN.
It asks for the root password first (checked by PAM through su); $HARK_MENU_IDLE_S (default ${DEFAULT_IDLE_TIMEOUT_S})
is how long a question may wait before the console locks again. In a staging root ($HARK_ROOT not
"/") the program $HARK_ACCOUNTS stands in for passwd, su and chpasswd.`;

type Action = '1' | '2' | '3' | '4' | '5' | '6' | '7' | '8' | 'i' | 's' | 'p' | 'l' | 'n' | 'a' | 'x';

const say = (text: string) => process.stdout.write(`${text}\n`);

function banner(paths: MenuPaths): void {
  const s = readSettings(paths);
  const id = readIdentity(paths, s);
  const state = isUnconfigured(paths) ? 'UNCONFIGURED: choose 1 to configure it' : `${s?.mode === 'standalone' ? 'standalone' : `sensor ${id.sensorId}`}, mirror ports ${s?.interfaces.join(', ') || 'none'}`;
  process.stdout.write('\x1b[2J\x1b[H');
  say('Hark Sensor Control Menu');
  say(`Sensor: ${state}`);
  say('');
}

async function resetSensor(paths: MenuPaths): Promise<void> {
  say('\nThis stops the sensor, forgets its enrolment (sensor id 0), its settings and its site key. The allow list is kept.');
  if (!(await yesNo('Reset the sensor to an unconfigured state?', false))) return;
  await control(paths, 'stop');
  const s = readSettings(paths);
  const r = runQuiet(paths.bin, ['enrol', '--reset'], { env: sensorEnv(paths, s) });
  if (r.code !== 0) say(`hark enrol --reset failed (${r.code}): ${r.err.trim().split('\n')[0] ?? ''}`);
  rmSync(paths.envFile, { force: true });
  removeSiteKey(underRoot(paths, s?.siteKeyFile ?? DEFAULT_SITE_KEY_FILE));
  recordAction(paths, 'reset-unconfigured');
  say('The sensor is now unconfigured. Choose 1 to configure it again.');
  await pause();
}

/** Option 5: the current root password first (it counts towards the lockout), then the new one twice. */
async function newRootPassword(paths: MenuPaths): Promise<void> {
  const current = await askSecret('Current root password:');
  const r = await checkRootPassword(paths, current);
  if (r === 'locked') throw new ConsoleLocked();
  if (r === 'wrong') {
    say('The current password is wrong; the root password was NOT changed.');
    await pause();
    return;
  }
  say((await chooseRootPassword(paths)) ? 'Root password changed.' : 'The root password was NOT changed.');
  await pause();
}

async function runAction(paths: MenuPaths, action: Action): Promise<'exit' | 'stay' | 'lock'> {
  switch (action) {
    case '1':
      if (isUnconfigured(paths)) await runWizard(paths);
      else await control(paths, 'restart');
      await pause();
      return 'stay';
    case '2':
      await editNetwork(paths);
      await pause();
      return 'stay';
    case '3':
      say('Leaving the menu.');
      return 'exit';
    case '4':
      await resetSensor(paths);
      return 'stay';
    case '5':
      await newRootPassword(paths);
      return 'stay';
    case '6':
      if (await yesNo('Reboot the appliance now?', false)) {
        await machineAction(paths, 'reboot');
        await pause();
      }
      return 'stay';
    case '7':
      if (await yesNo('Shut down the appliance now?', false)) {
        await machineAction(paths, 'poweroff');
        await pause();
      }
      return 'stay';
    case '8':
      await supportContact(paths);
      return 'stay';
    case 'i':
      await systemInformation(paths);
      return 'stay';
    case 's':
      await sensorStatus(paths);
      return 'stay';
    case 'p':
      await pingAddress();
      return 'stay';
    case 'l':
      await licenceStatus(paths);
      return 'stay';
    case 'n':
      await networkInformation(paths);
      return 'stay';
    case 'a':
      await allowListChanges(paths);
      return 'stay';
    case 'x':
      return 'lock';
  }
}

const CHOICES: { key: Action; name: string }[] = [
  { key: '1', name: 'Start or restart the sensor' },
  { key: '2', name: 'Edit the network configuration' },
  { key: '3', name: 'Exit to a command prompt' },
  { key: '4', name: 'Reset the sensor to an unconfigured state' },
  { key: '5', name: 'Set a new root password' },
  { key: '6', name: 'Reboot' },
  { key: '7', name: 'Shut down' },
  { key: '8', name: 'Support contact information' },
  { key: 'i', name: 'System information' },
  { key: 's', name: 'Sensor status' },
  { key: 'p', name: 'Ping an address' },
  { key: 'l', name: 'Licence and enrolment status' },
  { key: 'n', name: 'Network information' },
  { key: 'a', name: 'Allow list changes' },
  { key: 'x', name: 'Lock the console' },
];

/**
 * One unlocked session: the wizard when unconfigured, then the menu. Ends with 'exit' (option 3 or
 * the input closed) or 'lock' (option x, the idle limit, or too many wrong passwords in option 5).
 */
async function session(paths: MenuPaths): Promise<'exit' | 'lock'> {
  setIdleLimit(idleTimeoutMs());
  const locking = (err: unknown): boolean => {
    if (err instanceof IdleTimeout) {
      recordAction(paths, 'console locked: idle');
      return true;
    }
    return err instanceof ConsoleLocked;
  };
  try {
    if (isUnconfigured(paths)) {
      try {
        await runWizard(paths);
        await pause();
      } catch (err) {
        if (locking(err)) return 'lock';
        if (!(err instanceof Cancelled)) throw err;
      }
    }
    for (;;) {
      if (inputClosed()) return 'exit';
      banner(paths);
      try {
        const action = await choose<Action>('Type an option and press Enter:', CHOICES.map((c) => ({ key: c.key, name: c.name, value: c.key })));
        const next = await runAction(paths, action);
        if (next !== 'stay') return next;
      } catch (err) {
        if (locking(err)) return 'lock';
        if (!(err instanceof Cancelled)) {
          say(`That action failed: ${(err as Error)?.message ?? String(err)}`);
          try {
            await pause();
          } catch (e) {
            // Ctrl-C on the pause prompt: straight back to the menu. Idle: lock.
            if (locking(e)) return 'lock';
          }
        }
      }
    }
  } finally {
    setIdleLimit(undefined);
  }
}

export async function runMenu(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    say(USAGE);
    return 0;
  }
  const paths = menuPaths();
  // Ctrl-C while a program (ping, the control script) runs must end that program, not the menu;
  // Ctrl-\ and Ctrl-Z neither end nor stop it.
  const ignore = () => undefined;
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGQUIT', 'SIGTSTP'];
  for (const sig of signals) process.on(sig, ignore);
  try {
    for (;;) {
      if (!(await unlockConsole(paths))) return 0;
      if ((await session(paths)) === 'exit') return 0;
    }
  } finally {
    for (const sig of signals) process.off(sig, ignore);
  }
}

function isEntryPoint(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  runMenu(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`hark menu: ${(err as Error)?.message ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

/**
 * `hark enrol`: joins this sensor to a home server (by a code approved at home's console, or with
 * an admin's user ID and password), shows the enrolment (`--status`), or resets the sensor to
 * unconfigured (`--reset`). Credentials live in DATA_DIR/identity/ (0700; run as root on a data
 * directory another user owns, they are written as that user). Prints home's CA
 * fingerprint so the operator can compare it with home's console before trusting it.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CliError, cliErrorOf, type Command } from '../cli/command.js';
import { readSecret, readSecretLine } from '../cli/secret-input.js';
import { actAs, dataDirOwner } from '../store/acting-user.js';
import { chownTreeNoFollow } from '../store/private-dir.js';
import { isSha256Fingerprint, SensorCredentials } from './credentials.js';
import { completeEnrolment, enrolWithCredentials, listSensors, requestCode, waitForApproval, type EnrolContext } from './enrol.js';
import { checkHomeUrl, checkProxy, fetchCa, HomeLink, LinkConfigError } from './link.js';

/** Where a checkout keeps its data when nothing else is configured (gitignored), as `hark run`. */
const CHECKOUT_DATA_DIR = fileURLToPath(new URL('../../../var', import.meta.url));
/** Exit status when enrolment was refused or failed (usage errors are 2). */
const EXIT_FAILED = 1;
/** Most bytes read for a site key: home accepts 256 characters (home/auth.ts), 4 bytes each at most. */
const MAX_SITE_KEY_INPUT_BYTES = 1024;

export const enrolCommand: Command = {
  name: 'enrol',
  summary: 'enrol this sensor with a home server, show the enrolment or reset to unconfigured',
  usage: `Usage: hark enrol --home URL [--home URL2 ...] (--code | --user USER [--sensor N]) [options]
       hark enrol --status [--json] [--data-dir DIR]
       hark enrol --reset [--data-dir DIR]

Joins this sensor to a home server. The sensor first fetches home's CA certificate and prints its
SHA-256 fingerprint and asks on the terminal whether it is the one home's console shows (or give
it with --ca-fingerprint: without a terminal that is required); nothing else is sent to home before
that. From then on that CA is the only certificate authority the sensor trusts for
home, and home gives the sensor a client certificate signed by it.

  --code                 ask for an enrolment code (XXXX-XXXX); an admin approves it at home's
                         console; this command waits for the approval (Ctrl-C to stop)
  --user USER            enrol with an admin's user ID; the password is read from $HARK_PASSWORD,
                         else from the terminal without echo
  --sensor N             with --user: the sensor id to enrol as; without it the sensors are listed
                         by number and you are asked for one
  --home URL             home's address, https://host:port; repeat for fail-over homes (preferred
                         first); all are stored and the fastest answering one is used
  --ca-fingerprint FP    expected SHA-256 fingerprint of home's CA (as the console shows it);
                         enrolment stops if it differs
  --proxy URL            upstream HTTP proxy, http://host:port (CONNECT); stored for later use
  --site-key-file PATH   the site key, when home requires one: the first line of the file PATH
                         (keep it 0600), or of standard input when PATH is "-" (on a terminal it
                         is asked for without echo)
  --site-key KEY         the same on the command line, where every local user can read it (ps)
                         while enrolment waits: prefer --site-key-file
  --hostname NAME        the name home shows for this sensor (default: this machine's hostname)
  --data-dir DIR         data directory; credentials in DIR/identity/ (default: $HARK_DATA_DIR,
                         else ./var in a checkout). Run as root on a directory another user
                         owns (setup.sh's /var/lib/hark is hark's), they are written as that user
  --status               show the UUID, sensor id, homes, CA fingerprint and certificate
  --json                 with --status: one JSON object (what the console menu reads)
  --reset                reset to unconfigured: sensor id 0, a new key pair, home's certificate
                         and CA forgotten (the UUID stays); enrol again afterwards
  -h, --help             this help

Exit status: 0 enrolled (or status/reset done), 1 enrolment refused or failed, 2 bad options.`,
  run(argv) {
    return runEnrol(argv, (text) => process.stdout.write(text), this.usage, (text) => process.stderr.write(text));
  },
};

/**
 * `hark enrol` with its output going to `print` and warnings to `warn` (the command passes stdout
 * and stderr; tests collect them).
 */
export async function runEnrol(argv: string[], print: (text: string) => void, usage = enrolCommand.usage, warn: (text: string) => void = print): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        home: { type: 'string', multiple: true },
        'ca-fingerprint': { type: 'string' },
        proxy: { type: 'string' },
        'site-key': { type: 'string' },
        'site-key-file': { type: 'string' },
        code: { type: 'boolean', default: false },
        user: { type: 'string' },
        sensor: { type: 'string' },
        hostname: { type: 'string' },
        'data-dir': { type: 'string' },
        status: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        reset: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  if (values.help) {
    print(`${usage}\n`);
    return 0;
  }
  const dataDir = values['data-dir'] ?? process.env.HARK_DATA_DIR ?? CHECKOUT_DATA_DIR;
  // Run as root (the console menu, sudo) on the sensor's data directory (setup.sh: hark:hark): the
  // identity is written as the directory's owner, or the sensor running as that user could not read
  // or rewrite it. Files an earlier root run left in identity/ are handed over first, no link followed.
  const owner = dataDirOwner(dataDir);
  const identityDir = join(dataDir, 'identity');
  if (owner !== undefined && existsSync(identityDir)) failing(() => chownTreeNoFollow(identityDir, owner.uid, owner.gid));
  const asOwner = <T>(f: () => T): T => failing(() => actAs(owner, f));
  const creds = asOwner(() => SensorCredentials.loadOrCreate(identityDir));
  if (values.json && !values.status) throw new CliError('--json goes with --status; see hark enrol --help');
  if (values.status) {
    print(values.json ? `${JSON.stringify(statusFields(creds), null, 2)}\n` : statusText(creds));
    return 0;
  }
  if (values.reset) {
    const was = creds.sensorId;
    asOwner(() => creds.reset());
    print(`Reset to unconfigured${was > 0 ? ` (was sensor ${was})` : ''}: new key pair made, home's certificate and CA forgotten. UUID ${creds.uuid}.\n`);
    return 0;
  }
  const homes = values.home ?? [];
  if (homes.length === 0) throw new CliError('hark enrol needs --home URL (or --status, --reset); see hark enrol --help');
  if (values.code === (values.user !== undefined)) throw new CliError('hark enrol needs exactly one of --code or --user USER');
  if (values.sensor !== undefined && values.user === undefined) throw new CliError('--sensor goes with --user');
  let sensorId: number | undefined;
  if (values.sensor !== undefined) {
    sensorId = Number(values.sensor);
    if (!Number.isSafeInteger(sensorId) || sensorId < 1) throw new CliError(`--sensor must be a sensor number, not "${values.sensor}"`);
  }
  // Malformed values are bad options (exit 2), found before anything goes to home or the proxy:
  // fetchCa would refuse them too, but as a failed enrolment (exit 1).
  try {
    for (const home of homes) checkHomeUrl(home, false);
    if (values.proxy !== undefined) checkProxy(values.proxy);
  } catch (err) {
    throw err instanceof LinkConfigError ? new CliError(err.message) : err;
  }
  const expected = values['ca-fingerprint'];
  if (expected !== undefined && !isSha256Fingerprint(expected)) {
    throw new CliError(`--ca-fingerprint must be a SHA-256 fingerprint, 64 hex digits (colons or spaces allowed), not "${expected}"`);
  }
  if (values['site-key'] !== undefined && values['site-key-file'] !== undefined) throw new CliError('Give the site key once: --site-key-file PATH or --site-key KEY, not both');
  if (creds.enrolled) throw new CliError(`This sensor is already enrolled as sensor ${creds.sensorId}: run "hark enrol --reset" first to enrol again`, EXIT_FAILED);
  let siteKey = values['site-key'];
  if (siteKey !== undefined) {
    warn('hark enrol: warning: --site-key puts the site key where every local user can read it (ps); use --site-key-file PATH, or --site-key-file - to give it on standard input\n');
  }
  if (values['site-key-file'] !== undefined) siteKey = await readSiteKey(values['site-key-file']);

  const proxy = values.proxy;
  const ca = await failingAsync(() => fetchCa(homes[0], { expectFingerprint: values['ca-fingerprint'], proxy }));
  print(`Home's CA fingerprint (SHA-256): ${ca.fingerprint}\n`);
  if (values['ca-fingerprint'] !== undefined) print('It matches the fingerprint given.\n');
  else print('Compare it with the fingerprint on home\'s console before approving.\n');
  // Nothing goes to a home whose CA nobody vouched for (the pin is for good): in the middle at
  // enrolment time, a relay could collect the site key, show the real console a matching code, and
  // hand back a grant from its own CA, so the sensor would report to it from then on.
  if (values['ca-fingerprint'] === undefined && !(await confirmFingerprint())) {
    const what = values.code ? 'an enrolment request' + (siteKey !== undefined ? ' and the site key' : '') : 'a password';
    throw new CliError(`Not sending ${what} to a home whose CA fingerprint was not confirmed: give --ca-fingerprint FP (shown on home's console), or run on a terminal to confirm it`, EXIT_FAILED);
  }
  const link = failing(() => new HomeLink({ homes, ca: ca.pem, proxy }));
  const ctx: EnrolContext = { link, creds, hostname: values.hostname, siteKey };
  try {
    let grant;
    if (values.code) {
      const { code, poll } = await failingAsync(() => requestCode(ctx));
      print(`Enrolment code: ${code}\nApprove it at home's console (Enrolments). Waiting for approval; Ctrl-C stops.\n`);
      const stop = new AbortController();
      const onInt = (): void => stop.abort(new CliError('Stopped waiting for approval; the code stays pending at home', EXIT_FAILED));
      process.once('SIGINT', onInt);
      try {
        grant = await failingAsync(() => waitForApproval(ctx, poll, { signal: stop.signal }));
      } finally {
        process.off('SIGINT', onInt);
      }
    } else {
      const user = values.user as string;
      const password = process.env.HARK_PASSWORD ?? (await readSecret(`Password for ${user}: `));
      if (sensorId === undefined) {
        const sensors = await failingAsync(() => listSensors(ctx, user, password));
        if (sensors.length === 0) throw new CliError('Home has no sensors defined: add one in home\'s portal first', EXIT_FAILED);
        print('Sensors on home:\n');
        for (const s of sensors) print(`  ${String(s.id).padStart(4)}  ${s.name}${s.site !== '' ? ` (${s.site})` : ''}${s.enrolled ? '  [enrolled: its certificate will be replaced]' : ''}\n`);
        sensorId = await askNumber('Enrol as sensor number: ', sensors.map((s) => s.id));
      }
      const id = sensorId;
      grant = await failingAsync(() => enrolWithCredentials(ctx, user, password, id));
    }
    asOwner(() => completeEnrolment(creds, grant, homes, ca.pem));
    asOwner(() => creds.setLinkSettings(homes, proxy));
    const until = new X509Certificate(creds.certPem).validTo;
    print(`Enrolled as sensor ${creds.sensorId}; certificate valid until ${until}. Start the sensor in home mode to fetch its configuration.\n`);
    return 0;
  } finally {
    await link.close();
  }
}

/** The enrolment as the console menu shows it: snake_case keys, absent values as null. */
function statusFields(creds: SensorCredentials): Record<string, unknown> {
  const cert = new X509Certificate(creds.certPem);
  return {
    uuid: creds.uuid,
    sensor_id: creds.sensorId,
    enrolled_at: creds.enrolledAt,
    homes: creds.homes,
    proxy: creds.proxy ?? null,
    ca_fingerprint: creds.caFingerprint ?? null,
    certificate: creds.enrolled ? 'from home' : 'self-signed',
    certificate_valid_until: new Date(cert.validTo).toISOString(),
  };
}

/**
 * The site key from `--site-key-file PATH`: the first line of the file, or of `input` when PATH is
 * "-" (asked for without echo when that is the terminal), without its line ending: home compares
 * the key exactly. Reads at most MAX_SITE_KEY_INPUT_BYTES.
 */
export function readSiteKey(path: string, input: NodeJS.ReadableStream = process.stdin): Promise<string> {
  return readSecretLine({ path, what: 'site key', prompt: 'Site key: ', maxBytes: MAX_SITE_KEY_INPUT_BYTES, input });
}

function statusText(creds: SensorCredentials): string {
  const lines = [`UUID:            ${creds.uuid}`, `Sensor id:       ${creds.sensorId}${creds.sensorId === 0 ? ' (unconfigured)' : ''}`];
  if (creds.enrolledAt !== null) lines.push(`Enrolled at:     ${creds.enrolledAt}`);
  lines.push(`Homes:           ${creds.homes.length > 0 ? creds.homes.join(', ') : '(none)'}`);
  if (creds.proxy !== undefined) lines.push(`Proxy:           ${creds.proxy}`);
  lines.push(`CA fingerprint:  ${creds.caFingerprint ?? '(none)'}`);
  const cert = new X509Certificate(creds.certPem);
  lines.push(`Certificate:     ${creds.enrolled ? 'from home' : 'self-signed'}, valid until ${cert.validTo}`);
  return `${lines.join('\n')}\n`;
}

/** Runs `f`, turning typed errors (with an E_ code) into a one-line CLI failure. */
function failing<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw cliErrorOf(err, EXIT_FAILED);
  }
}

async function failingAsync<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw cliErrorOf(err, EXIT_FAILED);
  }
}

async function confirmFingerprint(): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const a = await rl.question('Does this fingerprint match the one on home\'s console? [y/N] ');
    return /^y(es)?$/i.test(a.trim());
  } finally {
    rl.close();
  }
}

async function askNumber(prompt: string, allowed: readonly number[]): Promise<number> {
  if (!process.stdin.isTTY) throw new CliError('No terminal to ask for the sensor number: give --sensor N', 2);
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    for (;;) {
      const n = Number((await rl.question(prompt)).trim());
      if (allowed.includes(n)) return n;
      process.stdout.write(`Choose one of: ${allowed.join(', ')}\n`);
    }
  } finally {
    rl.close();
  }
}


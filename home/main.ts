/**
 * `hark home`: runs Hark's home server until SIGINT / SIGTERM, and `hark home admin add|passwd`
 * to make or reset operators (no default passwords). Input: argv after `home`. Output: exit code;
 * the server's log lines on stderr (the first admin password only in its 0600 file, never printed).
 */

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CliError } from '../sensor/cli/command.js';
import { readSecretLine } from '../sensor/cli/secret-input.js';
import { hashPassword, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, passwordProblem } from './auth.js';
import { INITIAL_PASSWORD_FILE, retireInitialPassword } from './core.js';
import { ensurePrivateDir } from './files.js';
import { HomeLog } from './log.js';
import { startHome } from './server.js';
import { ROLES, HomeStore, type Role } from './store.js';

export { startHome } from './server.js';
export type { HomeOptions, HomeServer } from './server.js';

const HELP = `Usage: hark home [options]
       hark home admin add USER --role admin|lead|readonly [--password-file FILE] [--data-dir DIR]
       hark home admin passwd USER [--password-file FILE] [--data-dir DIR]

Runs Hark's home server: sensors enrol with it, fetch their signed configuration, send heartbeats
and upload captures over mutually authenticated HTTPS; operators use its API.

Options:
  --data-dir DIR            where home keeps its CA, keys, database and home.log (made mode 0700).
                            Default: $HARK_HOME_DIR, else var/home in the Hark checkout.
  --port N                  TCP port to listen on (default 443; 0 picks a free one).
  --listen ADDR             address to listen on (default, or an empty ADDR: all IPv4 and IPv6
                            addresses; hark-home.service passes $HARK_HOME_LISTEN, empty unless set).
  --name DNS                a name or address sensors use to reach home; added to the server
                            certificate beside localhost, 127.0.0.1 and ::1. Repeatable; the
                            certificate is re-issued when the list changes (the CA never is).
  --heartbeat-timeout SECS  a sensor silent this long is logged as disconnected (default 180).
  -h, --help                this text.

On first start home makes its CA (sensors pin its fingerprint, printed at start) and an operator
"admin" with a random password, kept only in DATA/initial-admin-password (its path is printed,
never the password) until it is changed: that account can do nothing else before it changes its password.
The file is deleted once that password no longer works: changed in the portal or API, reset with
"admin passwd admin" or by another admin, or the account deleted.

admin add / passwd read the password from the first line of standard input (typed without echo
on a terminal), or from --password-file FILE. "add" makes an operator who may use the password at once; at least ${MIN_PASSWORD_CHARS}
characters.
`;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function defaultDataDir(): string {
  const env = process.env.HARK_HOME_DIR;
  return env !== undefined && env !== '' ? env : join(ROOT, 'var', 'home');
}

/** Most bytes read for a password: MAX_PASSWORD_CHARS characters of up to 4 bytes, and a line ending. */
const MAX_PASSWORD_INPUT_BYTES = 4 * MAX_PASSWORD_CHARS + 2;

async function runAdmin(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      role: { type: 'string' },
      'password-file': { type: 'string' },
      'data-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [verb, user] = positionals;
  if (values.help === true || (verb !== 'add' && verb !== 'passwd') || user === undefined) {
    process.stderr.write(HELP);
    return values.help === true ? 0 : 2;
  }
  if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(user)) {
    process.stderr.write(`hark home admin: user name "${user}" must be 1-64 of A-Z a-z 0-9 _ . @ -\n`);
    return 2;
  }
  let role: Role | undefined;
  if (verb === 'add') {
    if (values.role === undefined || !(ROLES as readonly string[]).includes(values.role)) {
      process.stderr.write(`hark home admin add: --role must be one of ${ROLES.join(', ')}\n`);
      return 2;
    }
    role = values.role as Role;
  }
  let password: string;
  try {
    // a terminal does not echo it; a file or pipe gives its first line
    password = await readSecretLine({ path: values['password-file'], what: 'password', prompt: 'Password: ', maxBytes: MAX_PASSWORD_INPUT_BYTES });
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    process.stderr.write(`hark home admin: ${err.message}\n`);
    return 2;
  }
  const problem = passwordProblem(password);
  if (problem !== undefined) {
    process.stderr.write(`hark home admin ${verb}: ${problem}\n`);
    return 2;
  }
  const dataDir = values['data-dir'] ?? defaultDataDir();
  ensurePrivateDir(dataDir);
  const store = new HomeStore(join(dataDir, 'home.db'));
  const log = new HomeLog(join(dataDir, 'home.log'));
  try {
    const existing = store.operatorByName(user);
    const hash = await hashPassword(password);
    if (verb === 'add') {
      if (existing !== undefined) {
        process.stderr.write(`hark home admin add: operator "${user}" exists already (use passwd)\n`);
        return 1;
      }
      store.addOperator(user, role as Role, hash, false);
      store.audit('cli', 'operator.add', `operator:${user}`, { role }, 'local');
      log.write('config.operator_added', { user, role, by: 'cli' });
    } else {
      if (existing === undefined) {
        process.stderr.write(`hark home admin passwd: no operator "${user}"\n`);
        return 1;
      }
      store.updateOperator(existing.id, { hash, must_change_password: false });
      store.deleteSessionsOf(existing.id);
      const initialFile = join(dataDir, INITIAL_PASSWORD_FILE);
      const retired = await retireInitialPassword(initialFile, existing.hash);
      store.audit('cli', 'password.change', `operator:${user}`, undefined, 'local');
      log.write('config.password_changed', { user, by: 'cli', initial_password_file: retired ? 'deleted' : undefined });
      if (retired) process.stderr.write(`hark home admin passwd: deleted ${initialFile}: the password it held no longer works\n`);
    }
    return 0;
  } finally {
    store.close();
  }
}

export async function runHome(argv: string[]): Promise<number> {
  if (argv[0] === 'admin') return runAdmin(argv.slice(1));
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'data-dir': { type: 'string' },
        port: { type: 'string', default: '443' },
        listen: { type: 'string' },
        name: { type: 'string', multiple: true },
        'heartbeat-timeout': { type: 'string', default: '180' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`hark home: ${(err as Error).message}\n${HELP}`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const port = Number(values.port);
  const timeout = Number(values['heartbeat-timeout']);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`hark home: --port "${values.port}" is not a port number\n`);
    return 2;
  }
  if (!Number.isInteger(timeout) || timeout < 1) {
    process.stderr.write(`hark home: --heartbeat-timeout "${values['heartbeat-timeout']}" must be a whole number of seconds\n`);
    return 2;
  }
  let home;
  try {
    home = await startHome({
      dataDir: values['data-dir'] ?? defaultDataDir(), port, listen: values.listen === '' ? undefined : values.listen, names: values.name ?? [],
      heartbeatTimeoutSecs: timeout, onLog: (line) => process.stderr.write(`${line}\n`),
    });
  } catch (err) {
    process.stderr.write(`hark home: Cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  process.stderr.write(`hark home: listening on ${home.url} (port ${home.port}); CA fingerprint ${home.caFingerprint}\n`);
  // A parent (the soak benchmark) reads the port from this line.
  if (process.env.HARK_HOME_READY_FD === '1') process.stdout.write(`${JSON.stringify({ port: home.port, fingerprint: home.caFingerprint })}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => { process.off('SIGINT', stop); process.off('SIGTERM', stop); resolve(); };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await home.close();
  return 0;
}

const invoked = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (invoked) runHome(process.argv.slice(2)).then((code) => { process.exitCode = code; });

/**
 * The `hark` command: dispatches to subcommands, prints help, and turns user-facing errors into
 * one-line messages with stable exit codes (never a stack trace for bad input or options).
 */
import { CliError, EXIT_USAGE, type Command } from './command.js';
import { dictionaryCommand } from './dictionary-command.js';
import { flowsCommand } from './flows-command.js';
import { runCommand } from './run-command.js';
import { scanCommand } from './scan-command.js';
import { keysCommand } from './keys-command.js';
import { identityCommand } from './identity-command.js';
import { statusCommand } from '../health/status-command.js';
import { enrolCommand } from '../home-client/enrol-command.js';
import { runHome } from '../../home/main.js';
import { runMenu } from '../../menu/main.js';

const homeCommand: Command = {
  name: 'home',
  summary: "run Hark's home server (sensors enrol, fetch configuration, upload); hark home --help",
  usage: 'see hark home --help',
  run: (argv) => runHome(argv),
};

const menuCommand: Command = {
  name: 'menu',
  summary: 'the appliance console menu (first-boot wizard when unconfigured)',
  usage: 'see hark menu --help',
  run: (argv) => runMenu(argv),
};

const COMMANDS: Command[] = [runCommand, statusCommand, enrolCommand, scanCommand, flowsCommand, identityCommand, dictionaryCommand, keysCommand, homeCommand, menuCommand];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `Usage: hark <command> [options]

Hark is a passive network sensor: it reassembles every TCP conversation a mirror port carries,
decodes the application protocols and matches a safeguarding phrase dictionary.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run 'hark <command> --help' for a command's options.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    if (name === 'help' && rest[0] !== undefined) return main([rest[0], '--help']);
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? EXIT_USAGE : 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (cmd === undefined) {
    process.stderr.write(`hark: unknown command "${name}"\n\n${usage()}\n`);
    return EXIT_USAGE;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`hark ${name}: ${err.message}\n`);
      return err.exitCode;
    }
    const code = (err as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`hark ${name}: ${(err as Error).message}\n(see hark ${name} --help)\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
}

// `hark flows x.pcap | head`: a closed pipe ends the command quietly, as for any Unix tool.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

// Standard error carries log lines, progress and summaries: all best effort. Without a listener a
// write to a reader that went away (`hark run ... 2>&1 | tee log` with tee killed, a journal
// stream that broke) raised EPIPE as an uncaught error and ended the sensor or home on its next
// log line, dropping what it held; a failed login was such a line. Once it fails, stderr is left
// alone (later writes are dropped by the destroyed stream); the data paths never go through it.
process.stderr.on('error', () => {});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`hark: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 70;
  },
);

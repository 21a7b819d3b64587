/**
 * What every `hark` subcommand provides, and the errors and exit codes they share.
 * A `CliError` is a user-facing problem (bad option, unreadable file): printed as one line, exit 2.
 */

export const EXIT_USAGE = 2;
/** The input file was truncated or corrupt: output is complete up to the byte offset reported. */
export const EXIT_INPUT_DAMAGED = 3;

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  run(argv: string[]): number | Promise<number>;
}

export class CliError extends Error {
  constructor(message: string, readonly exitCode = EXIT_USAGE) {
    super(message);
  }
}

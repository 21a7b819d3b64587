/**
 * What every `hark` subcommand provides, and the errors and exit codes they share.
 * A `CliError` is a user-facing problem (bad option, unreadable file): printed as one line, exit 2.
 * Typed operational errors from below (a stable `code` starting `E_`) become CliErrors through
 * `cliErrorOf`; anything else reaching hark.ts is a bug, printed with its stack (exit 70).
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

/**
 * `err` as the one-line CliError the user should see when it is a typed operational error (its
 * `code` starts with `E_`: an unreadable file, a damaged dictionary, a store that cannot open);
 * otherwise `err` unchanged, so that a bug still surfaces as an internal error with its stack.
 */
export function cliErrorOf(err: unknown, exitCode = EXIT_USAGE): unknown {
  if (err instanceof CliError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('E_') ? new CliError((err as Error).message, exitCode) : err;
}

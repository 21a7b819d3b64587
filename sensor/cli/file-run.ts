/**
 * What the file commands (flows, scan) share: reading a capture through a pipeline with a
 * progress bar, turning an unreadable file into a one-line CliError, and the exit status for a
 * truncated or corrupt file (everything before the damage has been processed).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CaptureFileError, type ReadSummary } from '../capture/file-reader.js';
import type { Pipeline } from '../pipeline.js';
import { CliError, EXIT_INPUT_DAMAGED } from './command.js';
import { createProgress } from './progress.js';

/** Options every file command takes (their --help lines are in each command's usage). */
const COMMON_FILE_OPTIONS = {
  'keep-duplicates': { type: 'boolean', default: false },
  'no-progress': { type: 'boolean', default: false },
  quiet: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses a file command's arguments: its own options plus the common ones, exactly one capture
 * file. Returns undefined when --help was asked (the usage has been printed).
 */
export function parseFileCommand<T extends Options>(cmd: { name: string; usage: string }, argv: string[], own: T) {
  const config = { args: argv, allowPositionals: true as const, options: { ...own, ...COMMON_FILE_OPTIONS } };
  const { values, positionals } = parseArgs<typeof config>(config);
  if ((values as { help?: boolean }).help === true) {
    process.stdout.write(`${cmd.usage}\n`);
    return undefined;
  }
  if (positionals.length !== 1) throw new CliError(`hark ${cmd.name} needs exactly one capture file (see hark ${cmd.name} --help)`);
  return { values, file: positionals[0] };
}

export interface FileRun {
  readonly summary: ReadSummary;
  readonly ms: number;
}

/** Reads `file` through `pipeline` (flushing its flows); `cleanup` runs before an error propagates. */
export function readWithProgress(pipeline: Pipeline, file: string, showProgress: boolean, label: string, cleanup: () => void = () => {}): FileRun {
  const progress = createProgress(showProgress, label);
  const t0 = performance.now();
  try {
    const summary = pipeline.runFile(file, { onProgress: (r, t) => progress.update(r, t) });
    return { summary, ms: performance.now() - t0 };
  } catch (err) {
    cleanup();
    if (err instanceof CaptureFileError) throw new CliError(err.message);
    throw err;
  } finally {
    progress.stop();
  }
}

/** Exit status after a run: 0, or EXIT_INPUT_DAMAGED with the byte offset on stderr. */
export function exitStatusFor(file: string, summary: ReadSummary): number {
  if (summary.problem === undefined) return 0;
  process.stderr.write(`hark: ${file}: stopped at byte offset ${summary.problem.offset}: ${summary.problem.message}\n`);
  return EXIT_INPUT_DAMAGED;
}

/**
 * The command line of a bench program (bench/*.ts): parsed strictly by node:util's parseArgs;
 * `--help` (or `-h`) prints the usage to stdout and exits 0 before anything is measured; a bad
 * argument prints one line, `bench/<name>: <problem>`, then the usage, to stderr and exits 2,
 * never a stack trace. Numbers and names are checked here before a bench starts, not found wrong
 * minutes into a run.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** What a bad command line exits with (as bench/ab.ts and bench/stages.ts always have). */
const USAGE_EXIT_CODE = 2;

/** What the benches' parseArgs configurations may set: the parse is always strict. */
type BenchArgsConfig = Omit<ParseArgsConfig, 'strict' | 'tokens'>;

/** A decimal number as typed: digits with an optional fraction (no sign, exponent or hex). */
const DECIMAL = /^(\d+(\.\d*)?|\.\d+)$/;
const WHOLE = /^\d+$/;

export class BenchCommandLine {
  /**
   * @param name  what its messages start with, e.g. `bench/engine`
   * @param usage the usage lines README.md shows, each ending in a newline
   */
  constructor(
    readonly name: string,
    readonly usage: string,
  ) {}

  /** Prints `<name>: <problem>` and the usage to stderr; exits 2. */
  fail(problem: string): never {
    process.stderr.write(`${this.name}: ${problem}\n${this.usage}`);
    process.exit(USAGE_EXIT_CODE);
  }

  /**
   * parseArgs with `strict: true` and a `--help`/`-h` option added: help exits 0 with the usage on
   * stdout, a parse error (unknown option, missing value, unexpected positional) through fail().
   */
  parse<T extends BenchArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
    let parsed;
    try {
      parsed = parseArgs({ ...config, strict: true, options: { ...config.options, help: { type: 'boolean', short: 'h' } } });
    } catch (err) {
      if (!String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS_')) throw err;
      // parseArgs explains some errors over several lines: kept, on the one line
      return this.fail((err as Error).message.replace(/\s*\n\s*/g, ' '));
    }
    if ((parsed.values as { help?: boolean }).help === true) {
      process.stdout.write(this.usage);
      process.exit(0);
    }
    return parsed as ReturnType<typeof parseArgs<T>>;
  }

  /** `raw`, given for `option`, as a whole number of `noun` from `min` to `max`. */
  wholeNumber(option: string, raw: string, noun: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const n = WHOLE.test(raw) ? Number(raw) : NaN;
    if (n >= min && n <= max) return n;
    const range = max < Number.MAX_SAFE_INTEGER ? ` from ${min} to ${max}` : min > 1 ? ` (at least ${min})` : '';
    return this.fail(`${option} takes a number of ${noun}${range}, not "${raw}"`);
  }

  /** `raw`, given for `option`, as a number of `noun` above zero (fractions allowed). */
  positiveNumber(option: string, raw: string, noun: string): number {
    const n = DECIMAL.test(raw) ? Number(raw) : NaN;
    return n > 0 ? n : this.fail(`${option} takes a number of ${noun} above 0, not "${raw}"`);
  }

  /** `path` when it names a file this process can read (`what`: `capture file`). */
  readableFile(what: string, path: string): string {
    try {
      if (statSync(path).isDirectory()) return this.fail(`Cannot open ${what} "${path}": a directory`);
      accessSync(path, constants.R_OK);
      return path;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return this.fail(`Cannot open ${what} "${path}": ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
    }
  }

  /** `raw`, given for `what` (`--bodies`, `the engine`), when it is one of `choices`. */
  oneOf<const C extends string>(what: string, raw: string, choices: readonly C[]): C {
    if ((choices as readonly string[]).includes(raw)) return raw as C;
    const list = choices.length > 1 ? `${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}` : choices[0];
    return this.fail(`${what} must be ${list}, not "${raw}"`);
  }
}

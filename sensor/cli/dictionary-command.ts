/**
 * `hark dictionary check FILE` and `hark dictionary compile FILE [-o OUT]`: validate a phrase
 * dictionary (every bad row with its line number and reason; exit 1 on any error) and compile it
 * into the matcher artifact the sensor loads (.hdict), reporting size per phrase and time.
 */
import { basename, extname, join, dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { compileDictionaryFile } from '../../rules/compile.js';
import { DictionaryError, loadDictionary, runDictionaryCheck } from '../../rules/check.js';
import { COMPILED_DICTIONARY_EXT } from '../main.js';
import { CliError, cliErrorOf, type Command } from './command.js';

/**
 * check and compile: the dictionary has errors or cannot be read. Not EXIT_USAGE (2), which stays
 * for a bad command line and a compiled file that cannot be written, as --help says.
 */
const EXIT_DICTIONARY_ERRORS = 1;

const USAGE = `Usage: hark dictionary check <FILE>
       hark dictionary compile <FILE> [-o OUT${COMPILED_DICTIONARY_EXT}]

check     reads a CSV (phrase,category,severity,embedded[,exclusions,languages]) or JSON pack
          dictionary and prints every problem as FILE:LINE: reason (errors, then a summary);
          exit status 1 when there is any error or the file cannot be read, 0 when there are
          only warnings or none.
compile   checks the dictionary (refusing one with errors) and writes the compiled matcher
          artifact the sensor loads (default: FILE with its extension replaced by ${COMPILED_DICTIONARY_EXT});
          prints phrases, patterns, automaton states, bytes and bytes per phrase, and the time.
          Exit status 0 when written, 1 when the dictionary has errors or cannot be read, 2 when
          the artifact cannot be written.

Options:
  -o, --out FILE   where compile writes the artifact
  -h, --help       this help`;

export const dictionaryCommand: Command = {
  name: 'dictionary',
  summary: 'check a phrase dictionary (CSV or JSON pack) or compile it for the sensor',
  usage: USAGE,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { out: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h', default: false } },
    });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    const [action, file, ...extra] = positionals;
    if (action === undefined || file === undefined || extra.length > 0 || !['check', 'compile'].includes(action)) {
      throw new CliError('usage: hark dictionary check|compile <FILE> (see hark dictionary --help)');
    }
    if (action === 'check') {
      if (values.out !== undefined) throw new CliError('--out is for compile');
      try {
        return runDictionaryCheck(file, (line) => process.stdout.write(`${line}\n`));
      } catch (err) {
        throw cliErrorOf(err, EXIT_DICTIONARY_ERRORS);
      }
    }
    let dict;
    try {
      dict = loadDictionary(file);
    } catch (err) {
      if (err instanceof DictionaryError && err.code === 'E_DICTIONARY_INVALID') {
        throw new CliError(`${err.message} (run: hark dictionary check ${file})`, EXIT_DICTIONARY_ERRORS);
      }
      throw cliErrorOf(err, EXIT_DICTIONARY_ERRORS);
    }
    const out = values.out ?? join(dirname(file), `${basename(file, extname(file))}${COMPILED_DICTIONARY_EXT}`);
    let s;
    try {
      s = await compileDictionaryFile(dict, out);
    } catch (err) {
      throw cliErrorOf(err);
    }
    process.stdout.write(
      `${out}: ${s.phrases} phrases, ${s.patterns} patterns, ${s.states} states (${s.denseStates} dense), ` +
        `${s.bytes} bytes (${s.bytesPerPhrase.toFixed(1)} bytes/phrase), ${s.ms.toFixed(0)} ms\n`,
    );
    for (const sk of s.skipped) process.stderr.write(`warning: ${JSON.stringify(sk)}\n`);
    return 0;
  },
};

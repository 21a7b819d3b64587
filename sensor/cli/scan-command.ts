/**
 * `hark scan <file>`: runs the whole sensor on a capture file: reassembly, HTTP decoding, text
 * extraction, the phrase dictionary; writes captures as JSON lines (stdout or --out) and, with
 * --db, into the SQLite capture store. Progress and a counter summary on stderr. Exit 0 on success
 * even with no captures; 3 when the file is truncated or corrupt (after everything before it).
 */
import type { CaptureEvent } from '../events/capture.js';
import { JsonLinesWriter } from '../output/eve-writer.js';
import { CaptureStore } from '../store/capture-store.js';
import { DEFAULT_DICTIONARY, Sensor, type EngineChoice } from '../main.js';
import { CliError, cliErrorOf, type Command } from './command.js';
import { FLOW_OPTIONS, FLOW_USAGE, flowLimitsFrom, groupFramesFrom } from './flow-options.js';
import { INSPECT_OPTIONS, INSPECT_USAGE, inspectLimitsFrom } from './inspect-options.js';
import { SITE_OPTIONS, SITE_USAGE, siteFilesFrom } from './site-options.js';
import { exitStatusFor, parseFileCommand, readWithProgress } from './file-run.js';
import { formatCoverage, formatSummary } from './summary.js';

const ENGINES: readonly EngineChoice[] = ['auto', 'hyperscan', 'js'];

export const scanCommand: Command = {
  name: 'scan',
  summary: 'run the phrase dictionary over a capture file and print captures as JSON lines',
  usage: `Usage: hark scan [options] <capture.pcap|capture.pcapng>

Reassembles every TCP flow, decodes HTTP (chunked, gzip, deflate, br), extracts what people typed
(URLs, search terms, forms, request bodies) and read (HTML, JSON and text responses), and matches
the phrase dictionary. Each capture is one JSON object per line (schema:
sensor/events/capture.schema.json); so is each TLS connection, as a tls event saying its server
name, version, suite, ALPN, JA3/JA4, certificate, and whether it was decrypted and why not
(sensor/events/tls.schema.json).

Options:
  --dictionary FILE     phrases: a CSV or JSON pack, or a compiled .hdict
                        (default: the starter dictionary, rules/starter.json)
  --keylog FILE         TLS session secrets in NSS key log (SSLKEYLOGFILE) format; repeatable.
                        TLS connections whose keys are there are decrypted and inspected
  --rsa-key FILE        an RSA server private key (PEM) for TLS <= 1.2 RSA key exchange; repeatable
${SITE_USAGE}
  --out FILE            write events to FILE (JSON lines, mode 0600) instead of stdout
  --db FILE             also store captures in this SQLite database (created mode 0600)
  --engine NAME         auto (Hyperscan when available), hyperscan, or js (default: auto)
${INSPECT_USAGE}
${FLOW_USAGE}
  --keep-duplicates     do not drop mirror-port duplicates (identical copies of a packet within 1 ms)
  --no-progress         no progress bar (shown only when stderr is a terminal anyway)
  --quiet               no summary on stderr
  -h, --help            this help

Exit status: 0 on success (also with no captures); 2 on usage errors, an unreadable file, an
--out or --db that cannot be opened, or a bad dictionary; 3 when the file is truncated or corrupt
(captures before the damage are written).`,
  run(argv) {
    const parsed = parseFileCommand(this, argv, {
      dictionary: { type: 'string' },
      keylog: { type: 'string', multiple: true },
      ...SITE_OPTIONS,
      'rsa-key': { type: 'string', multiple: true },
      out: { type: 'string' },
      db: { type: 'string' },
      engine: { type: 'string', default: 'auto' },
      ...INSPECT_OPTIONS,
      ...FLOW_OPTIONS,
    });
    if (parsed === undefined) return 0;
    const { values, file } = parsed;
    const engine = values.engine as EngineChoice;
    if (!ENGINES.includes(engine)) throw new CliError(`--engine must be one of ${ENGINES.join(', ')}, not "${values.engine}"`);
    const inspect = inspectLimitsFrom(values);

    let out: JsonLinesWriter;
    try {
      out = new JsonLinesWriter(values.out ?? '-');
    } catch (err) {
      throw cliErrorOf(err);
    }
    let store: CaptureStore | undefined;
    let sensor: Sensor;
    try {
      store = values.db !== undefined ? new CaptureStore(values.db) : undefined;
      sensor = new Sensor({
        dictionary: values.dictionary ?? DEFAULT_DICTIONARY,
        engine,
        ...inspect,
        dropDuplicates: !values['keep-duplicates'],
        flowLimits: flowLimitsFrom(values),
        localityFrames: groupFramesFrom(values),
        bypass: !values['no-bypass'],
        keyLogs: values.keylog,
        rsaKeys: values['rsa-key'],
        site: siteFilesFrom(values),
        onCapture: (c: CaptureEvent) => {
          store?.add(c);
          out.write(c);
        },
        onEvent: (e) => out.write(e),
      });
    } catch (err) {
      out.close();
      store?.close();
      throw cliErrorOf(err);
    }
    const { summary, ms } = readWithProgress(sensor.pipeline, file, !values['no-progress'], 'scanning', () => {
      out.close();
      store?.close();
    });
    sensor.collector.flush();
    // Stored before anything says it is done.
    store?.close();
    out.close();
    if (!values.quiet) {
      const m = sensor.matching;
      process.stderr.write(`${formatSummary(file, summary, sensor.counters, ms)}\n`);
      process.stderr.write(`  http: ${sensor.counters.get('http.requests')} requests, ${sensor.counters.get('http.responses')} responses, bodies truncated ${sensor.counters.get('http.body_truncated')}\n`);
      process.stderr.write(`${formatCoverage(sensor.counters)}\n`);
      process.stderr.write(`  captures: ${sensor.counters.get('capture.emitted')} (phrase hits ${sensor.counters.get('match.hits')}, merged ${sensor.counters.get('capture.merged')}), engine ${m.engine}${m.note ? ` (${m.note})` : ''}, ${m.matcher.phrases.length} phrases\n`);
      if (store) process.stderr.write(`  stored in ${values.db}\n`);
    }
    return exitStatusFor(file, summary);
  },
};

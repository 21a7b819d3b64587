/**
 * Benchmark child: the full sensor pipeline (read, decode, reassembly, HTTP decoding, text
 * extraction, the workload's 10,000-phrase dictionary, captures) on one capture file, with one
 * engine; prints one JSON line of figures. Run in its own process so peak RSS is its own.
 * Usage: node dist/bench/pipeline.js <capture> <phrases.txt> <hyperscan|js> [--bodies extract|raw|none] [--locality N]
 *        [--no-bypass]
 * `--bodies` is a diagnostic of where the time goes (the counts then differ from the ground truth
 * for `none`): `raw` scans each decoded body as it is, markup and all, without the HTML/JSON/form
 * extraction; `none` neither extracts nor scans bodies (URLs and headers still are).
 * `--locality N` sets the frames per connection-grouped batch (workers/locality.ts; 0 hands the
 * frames over in file order), to compare with the default. `--no-bypass` reassembles every flow to
 * its end (`hark scan --no-bypass`), to measure what bypassing TLS without keys saves.
 */
import { readFileSync } from 'node:fs';
import type { Dictionary, Phrase } from '../rules/dictionary.js';
import { HttpInspector } from '../sensor/inspect/http-inspector.js';
import { Sensor, type EngineChoice } from '../sensor/main.js';
import type { PhraseScanner } from '../sensor/match/scanner.js';
import { BenchCommandLine } from './command-line.js';

const cli: BenchCommandLine = new BenchCommandLine(
  'bench/pipeline',
  'Usage: node dist/bench/pipeline.js <capture> <phrases.txt> hyperscan|js [--bodies extract|raw|none] [--locality N] [--no-bypass]\n',
);
const { values, positionals } = cli.parse({
  options: { bodies: { type: 'string', default: 'extract' }, locality: { type: 'string' }, 'no-bypass': { type: 'boolean', default: false } },
  allowPositionals: true,
});
if (positionals.length !== 3) cli.fail('a capture file, a phrases file and an engine, please');
const file = cli.readableFile('capture file', positionals[0]);
const phrasesFile = cli.readableFile('phrases file', positionals[1]);
const engine: EngineChoice = cli.oneOf('the engine', positionals[2], ['hyperscan', 'js']);
const bodies = cli.oneOf('--bodies', values.bodies, ['extract', 'raw', 'none']);
const localityFrames = values.locality === undefined ? undefined : cli.wholeNumber('--locality', values.locality, 'frames (0: file order)');

function peakRssBytes(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

if (bodies === 'raw' || bodies === 'none') {
  // Diagnostic only: replaces the inspector's body hand-off (its per-message scans are private).
  type Scans = { scans: Map<unknown, { scanner: PhraseScanner }> };
  HttpInspector.prototype.onBody = function (this: HttpInspector, msg, _dir, chunk) {
    if (bodies === 'raw') (this as unknown as Scans).scans.get(msg)?.scanner.writeUtf8(chunk);
  };
}
const phrases: Phrase[] = readFileSync(phrasesFile, 'utf8')
  .split('\n')
  .filter((l) => l.trim().length > 0)
  .map((phrase) => ({ phrase, category: 'bench', severity: 3, embedded: false, exclusions: [], languages: [] }));
const dictionary: Dictionary = { name: 'bench', phrases };

const t0 = process.hrtime.bigint();
// A capture whose window merged repeats is emitted again with the same id and its final count.
const latest = new Map<string, number>();
const sensor = new Sensor({
  dictionary,
  engine,
  localityFrames,
  bypass: !values['no-bypass'],
  onCapture: (c) => {
    latest.set(c.id, c.count);
  },
});
const loadSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
const t1 = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
const summary = sensor.pipeline.runFile(file);
sensor.collector.flush();
const cpu = process.cpuUsage(cpu0);
const seconds = Number(process.hrtime.bigint() - t1) / 1e9;
const c = sensor.counters;
let countSum = 0;
for (const n of latest.values()) countSum += n;
const captures = latest.size;
process.stdout.write(
  `${JSON.stringify({
    engine: sensor.matching.engine,
    loadSeconds,
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    fileBytes: summary.bytesRead,
    packets: summary.packets,
    hits: c.get('match.hits'),
    captures,
    countSum,
    httpRequests: c.get('http.requests'),
    httpResponses: c.get('http.responses'),
    bodyTruncated: c.get('http.body_truncated'),
    reassembled: c.get('tcp.reassembled_bytes'),
    bypassedFlows: c.get('flow.bypassed'),
    bypassedBytes: c.get('flow.bypassed_bytes'),
    peakRss: peakRssBytes(),
  })}\n`,
);

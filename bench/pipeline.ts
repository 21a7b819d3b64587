/**
 * Benchmark child: the full sensor pipeline (read, decode, reassembly, HTTP decoding, text
 * extraction, the workload's 10,000-phrase dictionary, captures) on one capture file, with one
 * engine; prints one JSON line of figures. Run in its own process so peak RSS is its own.
 * Usage: node dist/bench/pipeline.js <capture> <phrases.txt> <hyperscan|js>
 */
import { readFileSync } from 'node:fs';
import type { Dictionary, Phrase } from '../rules/dictionary.js';
import { Sensor, type EngineChoice } from '../sensor/main.js';

function peakRssBytes(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

const [file, phrasesFile, engine] = process.argv.slice(2);
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
  engine: engine as EngineChoice,
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
    peakRss: peakRssBytes(),
  })}\n`,
);

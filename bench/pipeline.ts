/**
 * Benchmark child: the full sensor pipeline (read, decode, reassembly, HTTP decoding, text
 * extraction, the workload's 10,000-phrase dictionary, captures) on one capture file, with one
 * engine; prints one JSON line of figures. Run in its own process so peak RSS is its own.
 * Usage: node dist/bench/pipeline.js <capture> <phrases.txt> <hyperscan|js> [--bodies extract|raw|none] [--regroup N]
 * `--bodies` is a diagnostic of where the time goes (the counts then differ from the ground truth
 * for `none`): `raw` scans each decoded body as it is, markup and all, without the HTML/JSON/form
 * extraction; `none` neither extracts nor scans bodies (URLs and headers still are).
 * `--regroup N` is another diagnostic: see `runRegrouped`.
 */
import { readFileSync } from 'node:fs';
import { readCaptureFile, type ReadSummary } from '../sensor/capture/file-reader.js';
import type { Dictionary, Phrase } from '../rules/dictionary.js';
import { HttpInspector } from '../sensor/inspect/http-inspector.js';
import { Sensor, type EngineChoice } from '../sensor/main.js';
import type { PhraseScanner } from '../sensor/match/scanner.js';

function peakRssBytes(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

const [file, phrasesFile, engine] = process.argv.slice(2);
const bodiesArg = process.argv.indexOf('--bodies');
const bodies = bodiesArg > 0 ? process.argv[bodiesArg + 1] : 'extract';
if (bodies === 'raw' || bodies === 'none') {
  // Diagnostic only: replaces the inspector's body hand-off (its per-message scans are private).
  type Scans = { scans: Map<unknown, { scanner: PhraseScanner }> };
  HttpInspector.prototype.onBody = function (this: HttpInspector, msg, _dir, chunk) {
    if (bodies === 'raw') (this as unknown as Scans).scans.get(msg)?.scanner.writeUtf8(chunk);
  };
} else if (bodies !== 'extract') {
  throw new Error(`--bodies takes extract, raw or none, not ${bodies}`);
}
const phrases: Phrase[] = readFileSync(phrasesFile, 'utf8')
  .split('\n')
  .filter((l) => l.trim().length > 0)
  .map((phrase) => ({ phrase, category: 'bench', severity: 3, embedded: false, exclusions: [], languages: [] }));
const dictionary: Dictionary = { name: 'bench', phrases };
const regroupArg = process.argv.indexOf('--regroup');
const regroup = regroupArg > 0 ? Number(process.argv[regroupArg + 1]) : 0;
if (!Number.isInteger(regroup) || regroup < 0) throw new Error('--regroup takes a number of packets');

/** A connection key for IPv4 over Ethernet, the same both ways (XOR); 0 for any other frame. */
function connectionKey(b: Uint8Array, o: number, capLen: number): number {
  if (capLen < 38 || ((b[o + 12] << 8) | b[o + 13]) !== 0x0800) return 0;
  const ip = o + 14;
  const l4 = ip + (b[ip] & 15) * 4;
  if (l4 + 4 > o + capLen) return 0;
  const addrs = ((b[ip + 12] ^ b[ip + 16]) << 24) | ((b[ip + 13] ^ b[ip + 17]) << 16) | ((b[ip + 14] ^ b[ip + 18]) << 8) | (b[ip + 15] ^ b[ip + 19]);
  const ports = ((b[l4] << 8) | b[l4 + 1]) ^ ((b[l4 + 2] << 8) | b[l4 + 3]);
  return ((Math.imul(addrs, 31) + ports) >>> 0) + 1;
}

/**
 * Diagnostic: the packets of each batch of `n` are copied into a batch buffer and handed to the
 * pipeline grouped by connection (a stable sort: each connection's packets keep their order, and
 * frames without a key come first). The workload interleaves 1,000 connections, so consecutive
 * packets otherwise touch different connections' state; this bounds what locality is worth,
 * copy and sort included. Only for this bench: across connections, packets then go back in time.
 */
function runRegrouped(file: string, n: number): ReadSummary {
  const packet = sensor.pipeline.packet;
  const arena = new Uint8Array(64 << 20);
  let used = 0;
  const keys: number[] = [];
  const offs: number[] = [];
  const lens: number[] = [];
  const origs: number[] = [];
  const times: number[] = [];
  const links: number[] = [];
  const flush = (): void => {
    const order = keys.map((_k, i) => i).sort((x, y) => keys[x] - keys[y] || x - y);
    for (const i of order) packet(links[i], arena, offs[i], lens[i], origs[i], times[i], 0);
    for (const a of [keys, offs, lens, origs, times, links]) a.length = 0;
    used = 0;
  };
  const summary = readCaptureFile(file, (linkType, buf, off, capLen, origLen, tsUs) => {
    if (used + capLen > arena.length || keys.length >= n) flush();
    arena.set(buf.subarray(off, off + capLen), used);
    keys.push(linkType === 1 ? connectionKey(buf, off, capLen) : 0);
    offs.push(used);
    lens.push(capLen);
    origs.push(origLen);
    times.push(tsUs);
    links.push(linkType);
    used += capLen;
  });
  flush();
  sensor.pipeline.finish();
  return summary;
}
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
const summary = regroup > 0 ? runRegrouped(file, regroup) : sensor.pipeline.runFile(file);
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

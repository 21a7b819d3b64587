/**
 * Benchmark: the native Hyperscan engine (sensor/match/hyperscan.ts) alone on the decoded HTTP
 * content of the shared workload (gen-workload.mjs, 20,000 flows, seed 1, in bench/.cache/wl;
 * generated when missing, as for `npm run bench`), with its 10,000 phrases lower-cased. Prints
 * compile cost, sizes, MB/s (1 MB = 10^6 bytes of decoded content) and the match count beside the
 * ground truth. --dir reads (or generates) the workload elsewhere.
 * Usage: node dist/bench/hyperscan.js [--dir DIR] [--chunk 16384] [--runs 5]
 */

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Counters } from '../sensor/events/counters.js';
import { loadHyperscan, type MatchDatabase } from '../sensor/match/hyperscan.js';
import { BenchCommandLine } from './command-line.js';
import { median } from './stats.js';
import { DEFAULT_WORKLOAD_DIR, ensureWorkload } from './workload.js';

const cli: BenchCommandLine = new BenchCommandLine('bench/hyperscan', 'Usage: node dist/bench/hyperscan.js [--dir DIR] [--chunk 16384] [--runs 5]\n');
const { values } = cli.parse({
  options: { dir: { type: 'string', default: DEFAULT_WORKLOAD_DIR }, chunk: { type: 'string', default: '16384' }, runs: { type: 'string', default: '5' } },
});
const DIR = values.dir;
const CHUNK = cli.wholeNumber('--chunk', values.chunk, 'bytes', 1);
const RUNS = cli.wholeNumber('--runs', values.runs, 'runs', 1);
/** Typical TCP segment payload: the granularity a per-segment caller would scan at. */
const SEGMENT_BYTES = 1460;
/** gen-workload.mjs ends every HTTP message in decoded.bin with this separator. */
const SEP = Buffer.from('\n\0\n');

const counters = new Counters();
const load = loadHyperscan(counters);
if (!load.engine) {
  console.error(`${cli.name}: ${load.reason}`);
  process.exit(1);
}
const engine = load.engine;
ensureWorkload(DIR);

const enc = new TextEncoder();
const phrases = readFileSync(path.join(DIR, 'phrases.txt'), 'utf8')
  .split('\n')
  .filter((l) => l.length > 0)
  .map((l) => enc.encode(l.toLowerCase()));

/** decoded.bin with ASCII upper case folded, as the normaliser would hand it to the matcher. */
const content = readFileSync(path.join(DIR, 'decoded.bin'));
for (let i = 0; i < content.length; i++) {
  const c = content[i];
  if (c >= 0x41 && c <= 0x5a) content[i] = c | 0x20;
}
/** [start, end) of every HTTP message (separator included, so no phrase spans two). */
const messages: number[] = [];
for (let start = 0; start < content.length; ) {
  const at = content.indexOf(SEP, start);
  const end = at < 0 ? content.length : at + SEP.length;
  messages.push(start, end);
  start = end;
}
let truth: number | undefined;
try {
  truth = JSON.parse(readFileSync(path.join(DIR, 'truth.json'), 'utf8')).planted?.total;
} catch {
  truth = undefined;
}

const mbps = (bytes: number, ms: number): string => (bytes / 1e6 / (ms / 1000)).toFixed(0);

interface Run {
  ms: number;
  matches: number;
  calls: number;
  callsWithMatches: number;
  outOfOrder: number;
}

/** One stream per HTTP message, fed in `chunk`-byte calls; or one stream for the whole file. */
function scanAll(db: MatchDatabase, chunk: number, perMessage: boolean): Run {
  let matches = 0, calls = 0, callsWithMatches = 0, outOfOrder = 0;
  const bounds = perMessage ? messages : [0, content.length];
  const t0 = performance.now();
  for (let m = 0; m < bounds.length; m += 2) {
    const s = db.openStream();
    for (let pos = bounds[m]; pos < bounds[m + 1]; pos += chunk) {
      const pairs = s.scan(content.subarray(pos, Math.min(pos + chunk, bounds[m + 1])));
      calls++;
      if (pairs.length === 0) continue;
      callsWithMatches++;
      matches += pairs.length >>> 1;
      for (let i = 3; i < pairs.length; i += 2) if (pairs[i] < pairs[i - 2]) outOfOrder++;
    }
    matches += s.close().length >>> 1;
  }
  return { ms: performance.now() - t0, matches, calls, callsWithMatches, outOfOrder };
}

function report(label: string, db: MatchDatabase, chunk: number, perMessage: boolean): void {
  const runs: Run[] = [];
  for (let r = 0; r < RUNS; r++) runs.push(scanAll(db, chunk, perMessage));
  const ms = median(runs.map((r) => r.ms));
  const r0 = runs[0];
  const check = truth === undefined ? '' : r0.matches === truth ? ' (= truth)' : ` (truth ${truth}: MISMATCH)`;
  console.log(
    `${label.padEnd(44)} ${mbps(content.length, ms).padStart(6)} MB/s  median ${ms.toFixed(1)} ms of ${RUNS}` +
      `  matches ${r0.matches}${check}  calls ${r0.calls} (${r0.callsWithMatches} with matches)` +
      (r0.outOfOrder ? `  out-of-order ends ${r0.outOfOrder}` : ''),
  );
}

/** Per-call cost of the binding itself: empty scans (no matches) and a take of one match. */
function callOverhead(db: MatchDatabase): void {
  const N = 1_000_000;
  const s = db.openStream();
  const empty = new Uint8Array(0);
  let t0 = performance.now();
  for (let i = 0; i < N; i++) s.scan(empty);
  const emptyNs = ((performance.now() - t0) * 1e6) / N;
  const hit = enc.encode(new TextDecoder().decode(phrases[0]) + ' ');
  t0 = performance.now();
  for (let i = 0; i < N / 10; i++) s.scan(hit);
  const hitNs = ((performance.now() - t0) * 1e6) / (N / 10);
  s.close();
  console.log(
    `binding overhead: scan() of 0 bytes ${emptyNs.toFixed(0)} ns/call; ` +
      `scan() of ${hit.length} bytes with 1 match ${hitNs.toFixed(0)} ns/call`,
  );
}

console.log(
  `Hyperscan ${engine.version}; ${phrases.length} phrases; decoded content ${(content.length / 1e6).toFixed(1)} MB ` +
    `in ${messages.length / 2} HTTP messages; ${RUNS} runs each`,
);
let t0 = performance.now();
const db = engine.compileLiterals(phrases);
const compileMs = performance.now() - t0;
const bytes = db.serialize();
t0 = performance.now();
const loaded = engine.deserialize(bytes);
const deserializeMs = performance.now() - t0;
console.log(
  `compile ${compileMs.toFixed(0)} ms; database ${db.size} bytes ` +
    `(serialized ${bytes.length}, deserialize ${deserializeMs.toFixed(1)} ms); ` +
    `stream state ${db.streamStateSize} bytes; ${loaded.info}`,
);
t0 = performance.now();
const portable = engine.compileLiterals(phrases, { portable: true });
console.log(`portable compile ${(performance.now() - t0).toFixed(0)} ms; ${portable.info}`);

report(`per message, ${CHUNK}-byte calls`, loaded, CHUNK, true);
report(`per message, ${SEGMENT_BYTES}-byte calls`, loaded, SEGMENT_BYTES, true);
report(`one stream, ${CHUNK}-byte calls`, loaded, CHUNK, false);
report(`per message, ${CHUNK}-byte calls, portable db`, portable, CHUNK, true);
callOverhead(loaded);
const dropped = counters.snapshot()['match.hyperscan.matches_dropped'];
if (dropped) console.log(`matches dropped: ${dropped}`);

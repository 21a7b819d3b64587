/**
 * Benchmark: the phrase matcher with its pure-TS engine, on the decoded HTTP content of the shared
 * workload (gen-workload.mjs, 20,000 flows, seed 1, in bench/.cache/wl; generated when missing) and
 * its 10,000 phrases. Prints compile/load cost and sizes, then MB/s (10^6 bytes per second of CPU
 * time, and of wall time; median and best of --runs) for the normaliser alone (also batched, and
 * with the Hyperscan addon's native fold loop), the engine alone on
 * the normalised skeleton, and the whole PhraseScanner (one per HTTP message, fed 1,460-byte
 * pieces; also with the native Hyperscan engine when it loads), with its match count beside the
 * ground truth; then memory per stream, and the cost of
 * 100,000 phrases from /usr/share/dict/words. Prints figures only; tests never time things.
 *
 *   node dist/bench/match.js [--dir DIR] [--mb 64] [--runs 5] [--full]
 *
 * --mb limits the throughput runs to the first N MB of decoded.bin; --full also scans the whole
 * file once and compares the match count with truth.json (planted.total).
 */
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { Phrase } from '../rules/dictionary.js';
import { SLICE_BYTES, TextNormalizer, type NormalizerOptions } from '../sensor/normalize/text.js';
import { Counters } from '../sensor/events/counters.js';
import { loadHyperscan } from '../sensor/match/hyperscan.js';
import { compileDictionary, loadMatcher, matcherPatterns, serializeMatcher, type CompiledMatcher } from '../sensor/match/matcher.js';
import { PhraseScanner } from '../sensor/match/scanner.js';
import { decodedMessages, DEFAULT_WORKLOAD_DIR, ensureWorkload, workloadPhrase } from './workload.js';
import { median } from './stats.js';
import { BenchCommandLine } from './command-line.js';

/** A TCP segment's payload: the piece size the pipeline typically hands over. */
const SEGMENT_BYTES = 1460;

const cli: BenchCommandLine = new BenchCommandLine('bench/match', 'Usage: node dist/bench/match.js [--dir DIR] [--mb 64] [--runs 5] [--full]\n');
const { values } = cli.parse({
  options: {
    dir: { type: 'string', default: DEFAULT_WORKLOAD_DIR },
    mb: { type: 'string', default: '64' },
    runs: { type: 'string', default: '5' },
    full: { type: 'boolean', default: false },
  },
});
const DIR = values.dir;
const MB = cli.positiveNumber('--mb', values.mb, 'megabytes');
const RUNS = cli.wholeNumber('--runs', values.runs, 'runs', 1);

interface Timing {
  cpuMs: number;
  wallMs: number;
}

function timed(f: () => void): Timing {
  const c = process.cpuUsage();
  const t = performance.now();
  f();
  const u = process.cpuUsage(c);
  return { cpuMs: (u.user + u.system) / 1000, wallMs: performance.now() - t };
}

const fmt = (n: number, digits = 0): string => n.toFixed(digits);

/** Runs f RUNS times; prints MB/s of `bytes` by CPU time and wall time, median and best. */
function rate(label: string, bytes: number, f: () => void): void {
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t = timed(f);
    cpu.push(bytes / 1e3 / t.cpuMs);
    wall.push(bytes / 1e3 / t.wallMs);
  }
  console.log(`${label.padEnd(44)} cpu ${fmt(median(cpu)).padStart(5)} (best ${fmt(Math.max(...cpu)).padStart(5)})   wall ${fmt(median(wall)).padStart(5)} (best ${fmt(Math.max(...wall)).padStart(5)}) MB/s`);
}

const asPhrase = workloadPhrase;

function describeMatcher(label: string, m: CompiledMatcher, compile: Timing): void {
  let bytes: Uint8Array = new Uint8Array(0);
  const ser = timed(() => (bytes = serializeMatcher(m)));
  let back: CompiledMatcher | undefined;
  const load = timed(() => (back = loadMatcher(bytes)));
  const e = back!.engine;
  console.log(`${label}: ${m.phrases.length} phrases, ${m.patternPhrase.length} patterns, ${m.skipped.length} skipped`);
  console.log(`  compile ${fmt(compile.wallMs)} ms wall (${fmt(compile.cpuMs)} ms cpu); serialise ${fmt(ser.wallMs)} ms; load ${fmt(load.wallMs)} ms wall (${fmt(load.cpuMs)} ms cpu)`);
  console.log(`  automaton: ${e.stateCount} states (${e.denseStates} dense rows x ${e.parts.classCount} classes, ${e.stateCount - e.denseStates} sparse records), max depth ${e.maxDepth}, ${fmt(e.size / 2 ** 20, 1)} MiB in memory`);
  console.log(`  artifact: ${bytes.length} bytes, ${fmt(bytes.length / m.phrases.length, 1)} bytes per phrase`);
}

ensureWorkload(DIR);
console.log(`workload ${DIR}; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}; node ${process.version}`);

// ---------- the 10,000-phrase benchmark dictionary ----------
const phraseTexts = readFileSync(join(DIR, 'phrases.txt'), 'utf8').split('\n').filter((l) => l.length > 0);
let m: CompiledMatcher | undefined;
const compile10k = timed(() => (m = compileDictionary({ name: 'benchmark', phrases: phraseTexts.map(asPhrase) })));
const matcher = m!;
describeMatcher('benchmark dictionary', matcher, compile10k);

const decoded = readFileSync(join(DIR, 'decoded.bin'));
const limit = Math.min(decoded.length, Math.floor(MB * 1e6));
const sample = decoded.subarray(0, limit);
const msgs = decodedMessages(sample);
const sampleBytes = msgs.reduce((n, b) => n + b.length, 0);
const pieces: Buffer[][] = msgs.map((b) => {
  const out: Buffer[] = [];
  for (let o = 0; o < b.length; o += SEGMENT_BYTES) out.push(b.subarray(o, Math.min(b.length, o + SEGMENT_BYTES)));
  return out;
});
console.log(`\nthroughput on ${fmt(sampleBytes / 1e6, 1)} MB of decoded HTTP content (${msgs.length} messages), ${RUNS} runs:`);

rate('calibration: a plain byte-sum loop', sampleBytes, () => {
  let s = 0;
  for (const b of msgs) for (let i = 0; i < b.length; i++) s = (s + b[i]) | 0;
  if (s === 0.5) console.log(s);
});

rate('normaliser alone (writeAscii, 1,460-byte pieces)', sampleBytes, () => {
  for (const ps of pieces) {
    const n = new TextNormalizer(() => undefined);
    for (const p of ps) n.writeAscii(p);
    n.finish();
    n.dispose();
  }
});
/** Messages as the extractors hand them over: latin1 strings of ~120 characters. */
const textPieces = msgs.map((b) => {
  const out: string[] = [];
  for (let o = 0; o < b.length; o += 120) out.push(b.toString('latin1', o, Math.min(b.length, o + 120)));
  return out;
});
const normaliserRate = (label: string, options: NormalizerOptions): void =>
  rate(label, sampleBytes, () => {
    for (const ps of textPieces) {
      const n = new TextNormalizer(() => undefined, undefined, options);
      for (const p of ps) n.write(p);
      n.finish();
      n.dispose();
    }
  });
normaliserRate('normaliser alone (write, 120-char strings)', {});
normaliserRate('  the same, batched (as the scanner runs it)', { batch: true });
const folder = loadHyperscan(new Counters()).engine?.textFolder;
if (folder !== undefined) normaliserRate('  the same, batched, native fold loop', { batch: true, folder });

// the skeleton the engine sees, as the scanner's slices
const slices: Uint8Array[] = [];
let skeletonBytes = 0;
for (const ps of pieces) {
  const parts: Uint8Array[] = [];
  const n = new TextNormalizer((bytes, _map, len) => {
    parts.push(bytes.slice(0, len));
    skeletonBytes += len;
  });
  for (const p of ps) n.writeAscii(p);
  n.finish();
  slices.push(...parts);
}
const skeleton = new Uint8Array(skeletonBytes);
{
  let o = 0;
  for (const s of slices) {
    skeleton.set(s, o);
    o += s.length;
  }
}
console.log(`  (skeleton: ${fmt(skeletonBytes / 1e6, 1)} MB, ${fmt(skeletonBytes / sampleBytes, 2)} bytes per input byte)`);

let engineMatches = 0;
rate(`engine alone, skeleton in ${SLICE_BYTES}-byte slices (MB of skeleton)`, skeletonBytes, () => {
  const s = matcher.engine.openStream();
  let found = 0;
  for (const slice of slices) found += s.scan(slice).length >> 1;
  engineMatches = found;
});
rate('engine alone, skeleton in 64 KiB calls (MB of skeleton)', skeletonBytes, () => {
  const s = matcher.engine.openStream();
  for (let o = 0; o < skeleton.length; o += 65536) s.scan(skeleton.subarray(o, Math.min(skeleton.length, o + 65536)));
});
console.log(`  (engine occurrences before the letter-run check: ${engineMatches})`);

let hits = 0;
rate('PhraseScanner (writeUtf8, 1,460-byte pieces)', sampleBytes, () => {
  hits = 0;
  for (const ps of pieces) {
    const s = new PhraseScanner(matcher, () => hits++);
    for (const p of ps) s.writeUtf8(p);
    s.end();
  }
});
rate('PhraseScanner (write of latin1 strings)', sampleBytes, () => {
  const strs = pieces.map((ps) => ps.map((p) => p.toString('latin1')));
  for (const ss of strs) {
    const s = new PhraseScanner(matcher, () => undefined);
    for (const p of ss) s.write(p);
    s.end();
  }
});
console.log(`  (matches in the sample: ${hits})`);
const hs = loadHyperscan(new Counters());
if (hs.engine !== undefined) {
  const database = hs.engine.compileLiterals(matcherPatterns(matcher));
  let hsHits = 0;
  rate('PhraseScanner, Hyperscan (writeUtf8, 1,460 B)', sampleBytes, () => {
    hsHits = 0;
    for (const ps of pieces) {
      const s = new PhraseScanner(matcher, () => hsHits++, { database });
      for (const p of ps) s.writeUtf8(p);
      s.end();
    }
  });
  console.log(`  (matches with Hyperscan: ${hsHits})`);
} else console.log(`  (no Hyperscan run: ${hs.reason})`);

if (values.full) {
  const all = decodedMessages(decoded);
  let found = 0;
  const t = timed(() => {
    for (const b of all) {
      const s = new PhraseScanner(matcher, () => found++);
      for (let o = 0; o < b.length; o += SEGMENT_BYTES) s.writeUtf8(b.subarray(o, Math.min(b.length, o + SEGMENT_BYTES)));
      s.end();
    }
  });
  let truth: number | string = 'no truth.json';
  try {
    truth = (JSON.parse(readFileSync(join(DIR, 'truth.json'), 'utf8')) as { planted: { total: number } }).planted.total;
  } catch {
    // reported as missing
  }
  console.log(`\nwhole file: ${fmt(decoded.length / 1e6, 1)} MB, ${all.length} messages, ${found} matches (planted total ${truth}) in ${fmt(t.wallMs / 1000, 1)} s wall, ${fmt(decoded.length / 1e3 / t.cpuMs)} MB/s cpu`);
}

// ---------- memory per stream ----------
{
  const N = 10_000;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage();
  const keep: PhraseScanner[] = [];
  for (let i = 0; i < N; i++) {
    const s = new PhraseScanner(matcher, () => undefined);
    s.write('some text in flight, kill');
    keep.push(s);
  }
  gc?.();
  const after = process.memoryUsage();
  const per = (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / N;
  console.log(`\nmemory per open stream (${N} scanners mid-text${gc ? '' : ', run with --expose-gc for a cleaner figure'}): ${fmt(per)} bytes`);
  if (keep.length !== N) console.log('unreachable');
}

// ---------- 100,000 phrases ----------
{
  const words = existsSync('/usr/share/dict/words')
    ? readFileSync('/usr/share/dict/words', 'utf8').split('\n').filter((w) => /^[a-z]+$/i.test(w))
    : Array.from({ length: 60_000 }, (_, i) => `w${i.toString(36)}x`);
  let seed = 7;
  const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
  const big: Phrase[] = [];
  for (let i = 0; i < 100_000; i++) {
    const n = 1 + Math.floor(next() * 3);
    big.push(asPhrase(Array.from({ length: n }, () => words[Math.floor(next() * words.length)]).join(' ')));
  }
  let bm: CompiledMatcher | undefined;
  const t = timed(() => (bm = compileDictionary({ name: 'big', phrases: big })));
  console.log('');
  describeMatcher('100,000 phrases (1-3 words from /usr/share/dict/words)', bm!, t);
}

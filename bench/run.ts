/**
 * `npm run bench`: throughput and memory of Hark on the shared workload
 * (../shared/bench/gen-workload.mjs, generated once into bench/.cache), beside other tools on the
 * same file in the same run: the stream engine (read + decode + reassembly) beside `tcpflow -r`,
 * and the full pipeline (+ HTTP decoding + text extraction + the workload's 10,000 phrases, on
 * both engines) beside ngrep with 10 of the phrases, and the pipeline on a real capture that is
 * almost all TLS without keys, with flow bypass and without (--no-bypass). Prints figures; asserts nothing about speed
 * (tests never time things). The counts must equal the generator's ground truth: those are checked
 * (reassembled bytes; phrase matches and the sum of the captures' counts).
 *
 * Then TLS record decryption throughput per suite family (bench/tls.ts), the domain policy's
 * memory and lookup rate (bench/policy.ts), captures committed and uploaded per second
 * (bench/store.ts), a home server under 200 heartbeating, uploading sensors (bench/home-soak.ts),
 * and last the live figure: tcpreplay onto a veth pair at rising rates, Hark beside tcpdump
 * (bench/live.ts, needs root).
 *
 *   npm run bench [-- [--runs N] [--skip-tcpflow] [--skip-pipeline] [--skip-tls] [--skip-policy]
 *                    [--skip-store] [--skip-home] [--skip-live]]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BenchCommandLine } from './command-line.js';
import { median } from './stats.js';
import { DEFAULT_WORKLOAD_DIR, ensureWorkload, plantedTotal, ROOT, runBenchChild, workloadPhrases, type PipelineFigures } from './workload.js';

const CACHE = join(ROOT, 'bench', '.cache');
const WORKLOAD = DEFAULT_WORKLOAD_DIR;
/** Ground truth of gen-workload.mjs with its default options (shared/bench/README.md). */
const EXPECTED_REASSEMBLED = 379_453_566;

interface EngineResult {
  seconds: number;
  cpuSeconds: number;
  /** The second pass in the same process (compiled code warm), and whether it counted the same bytes. */
  warmSeconds: number;
  warmCpuSeconds: number;
  warmSame: boolean;
  fileBytes: number;
  packets: number;
  flows: number;
  reassembled: number;
  gapBytes: number;
  peakRss: number;
}

const cli: BenchCommandLine = new BenchCommandLine(
  'bench/run',
  'Usage: npm run bench [-- [--runs N] [--skip-tcpflow] [--skip-pipeline] [--skip-tls] [--skip-policy]\n' +
    '                        [--skip-store] [--skip-home] [--skip-live]]\n',
);
const { values } = cli.parse({
  options: {
    runs: { type: 'string', default: '3' },
    'skip-tcpflow': { type: 'boolean', default: false },
    'skip-pipeline': { type: 'boolean', default: false },
    'skip-tls': { type: 'boolean', default: false },
    'skip-policy': { type: 'boolean', default: false },
    'skip-store': { type: 'boolean', default: false },
    'skip-home': { type: 'boolean', default: false },
    'skip-live': { type: 'boolean', default: false },
  },
});
const runs = cli.wholeNumber('--runs', values.runs, 'runs', 1);

function runEngine(pcap: string): EngineResult {
  return runBenchChild(join(ROOT, 'dist', 'bench', 'engine.js'), [pcap]) as unknown as EngineResult;
}

function runTcpflow(pcap: string): { seconds: number; bytes: number } | string {
  const base = existsSync('/dev/shm') ? '/dev/shm' : CACHE;
  const dir = mkdtempSync(join(base, 'hark-bench-tcpflow-'));
  try {
    const t0 = process.hrtime.bigint();
    const r = spawnSync('tcpflow', ['-r', pcap, '-o', dir], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.error) return `tcpflow not runnable: ${r.error.message}`;
    const du = execFileSync('du', ['-sb', '--exclude=report.xml', dir], { encoding: 'utf8' });
    return { seconds, bytes: Number(du.split(/\s/)[0]) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const mb = (bytes: number, s: number) => (bytes / 1e6 / s).toFixed(0);
ensureWorkload(WORKLOAD);
const pcap = join(WORKLOAD, 'workload.pcap');
const truth = JSON.parse(readFileSync(join(WORKLOAD, 'truth.json'), 'utf8')) as { packets: number; pcap_file_bytes: number };
const results: EngineResult[] = [];
for (let i = 0; i < runs; i++) results.push(runEngine(pcap));
const wall = median(results.map((r) => r.seconds));
const cpu = median(results.map((r) => r.cpuSeconds));
const rss = Math.max(...results.map((r) => r.peakRss));
const first = results[0];
const rows: string[][] = [['what', 'MB/s (wall)', 'MB/s (cpu)', 'packets/s', 'peak RSS MB', 'reassembled bytes']];
rows.push(['hark: read + decode + flow + TCP reassembly', mb(first.fileBytes, wall), mb(first.fileBytes, cpu), (first.packets / wall / 1e6).toFixed(2) + 'M', (rss / 1048576).toFixed(0), String(first.reassembled)]);
const warmWall = median(results.map((r) => r.warmSeconds));
const warmCpu = median(results.map((r) => r.warmCpuSeconds));
rows.push(['  the same, second pass in the process (warm)', mb(first.fileBytes, warmWall), mb(first.fileBytes, warmCpu), (first.packets / warmWall / 1e6).toFixed(2) + 'M', '', results.every((r) => r.warmSame) ? 'same' : 'DIFFERENT']);
if (!values['skip-tcpflow']) {
  const t = runTcpflow(pcap);
  if (typeof t === 'string') rows.push(['tcpflow -r (to tmpfs)', t, '', '', '', '']);
  else rows.push(['tcpflow -r (to tmpfs)', mb(first.fileBytes, t.seconds), '', (first.packets / t.seconds / 1e6).toFixed(2) + 'M', '', String(t.bytes)]);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
process.stdout.write(`workload: ${pcap} (${truth.pcap_file_bytes} bytes, ${truth.packets} packets); ${runs} runs, median\n`);
for (const r of rows) process.stdout.write(`${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')}\n`);
const tcpflowRow = rows.find((r) => r[0].startsWith('tcpflow') && r[1] !== '');
if (tcpflowRow && /^\d+$/.test(tcpflowRow[1])) process.stdout.write(`hark / tcpflow: ${(Number(rows[1][1]) / Number(tcpflowRow[1])).toFixed(1)}x\n`);
const ok = first.reassembled === EXPECTED_REASSEMBLED && results.every((r) => r.reassembled === first.reassembled && r.warmSame);
process.stdout.write(`reassembled bytes ${ok ? 'match' : 'DO NOT match'} the generator's ground truth (${EXPECTED_REASSEMBLED})\n`);
let allOk = ok;

interface PipelineResult extends PipelineFigures {
  peakRss: number;
  reassembled: number;
  bypassedFlows: number;
  bypassedBytes: number;
}

function runPipeline(engine: string): PipelineResult {
  return runBenchChild(join(ROOT, 'dist', 'bench', 'pipeline.js'), [pcap, join(WORKLOAD, 'phrases.txt'), engine]) as unknown as PipelineResult;
}

/** ngrep -q -I FILE -i 'p1|...|p10': per-packet regex over the payloads, its output discarded. */
function runNgrep(phrases: string[]): { seconds: number } | string {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('ngrep', ['-q', '-I', pcap, '-i', phrases.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.error) return `ngrep not runnable: ${r.error.message}`;
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

if (!values['skip-pipeline']) {
  const planted = plantedTotal(WORKLOAD);
  const prow: string[][] = [['what', 'MB/s (wall)', 'MB/s (cpu)', 'packets/s', 'peak RSS MB', 'matches', 'sum of counts', 'captures']];
  for (const engine of ['hyperscan', 'js']) {
    const r = runPipeline(engine);
    prow.push([`hark full pipeline, 10k phrases, ${r.engine} (load ${r.loadSeconds.toFixed(2)} s)`, mb(r.fileBytes, r.seconds), mb(r.fileBytes, r.cpuSeconds), (r.packets / r.seconds / 1e6).toFixed(2) + 'M', (r.peakRss / 1048576).toFixed(0), String(r.hits), String(r.countSum), String(r.captures)]);
    const exact = r.hits === planted && r.countSum === planted;
    allOk &&= exact;
    process.stderr.write(`${r.engine}: ${exact ? 'matches and counts equal' : 'MISMATCH with'} the planted total ${planted}\n`);
  }
  const ten = workloadPhrases(WORKLOAD).slice(0, 10);
  const n = runNgrep(ten);
  if (typeof n === 'string') prow.push(['ngrep, 10 phrases, per packet', n, '', '', '', '', '', '']);
  else prow.push(['ngrep, 10 phrases, per packet', mb(first.fileBytes, n.seconds), '', (first.packets / n.seconds / 1e6).toFixed(2) + 'M', '', '', '', '']);
  const w = prow[0].map((_, i) => Math.max(...prow.map((r) => r[i].length)));
  process.stdout.write(`\nfull pipeline (planted phrase occurrences in the scanned HTTP content: ${planted})\n`);
  for (const r of prow) process.stdout.write(`${r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ')}\n`);
}
/** A real browser session, almost all TLS (shared/corpus/MANIFEST.md marks it for throughput). */
const TLS_CAPTURE = join(ROOT, '..', 'shared', 'corpus', 'ndpi-pinterest.pcap');
if (!values['skip-pipeline'] && !existsSync(TLS_CAPTURE)) process.stdout.write(`\nTLS without keys: skipped (${TLS_CAPTURE} not found)\n`);
else if (!values['skip-pipeline']) {
  // Alternating, each run in its own process: what bypassing the connections it cannot decrypt saves.
  const runsOf: Record<'bypass' | 'no-bypass', PipelineResult[]> = { bypass: [], 'no-bypass': [] };
  for (let i = 0; i < runs; i++) {
    for (const mode of i % 2 === 0 ? (['bypass', 'no-bypass'] as const) : (['no-bypass', 'bypass'] as const)) {
      const args = [TLS_CAPTURE, join(WORKLOAD, 'phrases.txt'), 'hyperscan', ...(mode === 'no-bypass' ? ['--no-bypass'] : [])];
      runsOf[mode].push(runBenchChild(join(ROOT, 'dist', 'bench', 'pipeline.js'), args) as unknown as PipelineResult);
    }
  }
  process.stdout.write(`\nfull pipeline on a real capture almost all TLS without keys (${TLS_CAPTURE}), ${runs} alternating runs, median\n`);
  for (const mode of ['bypass', 'no-bypass'] as const) {
    const rs = runsOf[mode];
    const r = rs[0];
    const wall = median(rs.map((x) => x.seconds));
    const cpu = median(rs.map((x) => x.cpuSeconds));
    process.stdout.write(`  ${mode === 'bypass' ? 'flow bypass (default)' : '--no-bypass          '}  ${mb(r.fileBytes, wall)} MB/s wall, ${mb(r.fileBytes, cpu)} cpu; reassembled ${(r.reassembled / 1e6).toFixed(1)} MB, bypassed ${r.bypassedFlows} flows (${(r.bypassedBytes / 1e6).toFixed(1)} MB)\n`);
  }
}
if (!values['skip-tls']) {
  // TLS record decryption per core, in its own process (see bench/tls.ts).
  const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'bench', 'tls.js'), '64'], { encoding: 'utf8' });
  process.stdout.write(`\n${r.stdout}`);
  if (r.status !== 0) {
    allOk = false;
    process.stderr.write(r.stderr);
  }
}
if (!values['skip-policy']) {
  // Domain policy memory per 100,000 entries and lookup rate, each size in its own process (bench/policy.ts).
  const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'bench', 'policy.js')], { encoding: 'utf8' });
  process.stdout.write(`\n${r.stdout}`);
  if (r.status !== 0) {
    allOk = false;
    process.stderr.write(r.stderr);
  }
}
/** Runs one of the other benchmarks in its own process, its figures going straight to stdout. */
function child(what: string, script: string, args: string[]): void {
  process.stdout.write(`\n${what}\n`);
  const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'bench', script), ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) {
    allOk = false;
    process.stderr.write(`${script} failed (exit ${r.status})\n`);
  }
}
if (!values['skip-store']) child('capture store and upload (bench/store.ts)', 'store.js', ['--captures', '100000']);
if (!values['skip-home']) child('home server soak (bench/home-soak.ts)', 'home-soak.js', ['--sensors', '200', '--seconds', '30']);
if (!values['skip-live']) {
  if (process.getuid?.() !== 0) process.stdout.write('\nlive capture: skipped (needs root for the veth pair)\n');
  else child('live capture on a veth pair (bench/live.ts)', 'live.js', []);
}
process.exitCode = allOk ? 0 : 1;

/**
 * Benchmark child: reads one capture through read + decode + flow + TCP reassembly, with a
 * consumer that only counts the bytes it is given, and prints one JSON line of figures.
 * Run in its own process so peak RSS (VmHWM) is the engine's alone. A second pass over the same
 * file, through a new pipeline in the same process, gives the warm figure (`warmSeconds`,
 * `warmCpuSeconds`): the compiled code a long-running sensor has, without the first pass's
 * warm-up (V8 compiling and re-optimising the hot functions).
 * Usage: node dist/bench/engine.js <capture> [--retain BYTES] [--group-frames N] [--no-warm]
 * (--group-frames: frames per connection-grouped batch, workers/locality.ts; 0: file order)
 */
import { readFileSync } from 'node:fs';
import type { StreamConsumer } from '../sensor/flow/stream.js';
import { DEFAULT_FLOW_LIMITS } from '../sensor/flow/flow-table.js';
import { DEFAULT_REASSEMBLY_LIMITS } from '../sensor/flow/tcp-reassembly.js';
import { Pipeline } from '../sensor/pipeline.js';
import { BenchCommandLine } from './command-line.js';

const cli: BenchCommandLine = new BenchCommandLine('bench/engine', 'Usage: node dist/bench/engine.js <capture> [--retain BYTES] [--group-frames N] [--no-warm]\n');
const { values, positionals } = cli.parse({
  options: { retain: { type: 'string' }, 'group-frames': { type: 'string' }, 'no-warm': { type: 'boolean', default: false } },
  allowPositionals: true,
});
if (positionals.length !== 1) cli.fail('one capture file, please');
const file = cli.readableFile('capture file', positionals[0]);
// --retain N: bytes kept per direction to verify retransmissions (default: the sensor's default).
const retainBytes = values.retain === undefined ? undefined : cli.wholeNumber('--retain', values.retain, 'bytes');
const localityFrames = values['group-frames'] === undefined ? undefined : cli.wholeNumber('--group-frames', values['group-frames'], 'frames');
const flowLimits = retainBytes === undefined ? undefined : { ...DEFAULT_FLOW_LIMITS, reassembly: { ...DEFAULT_REASSEMBLY_LIMITS, retainBytes } };

function peakRssBytes(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

let reassembled = 0;
let gapBytes = 0;
let flows = 0;
const consumer: StreamConsumer = {
  data(_dir, bytes) {
    reassembled += bytes.length;
  },
  gap(_dir, len) {
    gapBytes += len;
  },
  end() {},
};

/** One pass over the file through a fresh pipeline: wall and CPU seconds. */
function pass(): { pipeline: Pipeline; summary: ReturnType<Pipeline['runFile']>; ns: number; cpuUs: number } {
  const pipeline = new Pipeline({ streams: { open: () => (flows++, consumer) }, flowLimits, localityFrames });
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const summary = pipeline.runFile(file);
  const cpu = process.cpuUsage(cpu0);
  return { pipeline, summary, ns: Number(process.hrtime.bigint() - t0), cpuUs: cpu.user + cpu.system };
}

const cold = pass();
const { summary, ns } = cold;
const c = cold.pipeline.counters;
const counted = { reassembled, gapBytes, flows };
// the engine's own peak, before the warm pass adds a second pipeline's buffers
const peakRss = peakRssBytes();
const warm = values['no-warm'] ? undefined : pass();
process.stdout.write(
  `${JSON.stringify({
    seconds: ns / 1e9,
    cpuSeconds: cold.cpuUs / 1e6,
    ...(warm !== undefined ? { warmSeconds: warm.ns / 1e9, warmCpuSeconds: warm.cpuUs / 1e6, warmSame: reassembled === 2 * counted.reassembled } : {}),
    fileBytes: summary.bytesRead,
    packets: summary.packets,
    flows: counted.flows,
    reassembled: counted.reassembled,
    gapBytes: counted.gapBytes,
    anomalies: c.anomalyTotal(),
    retransmissions: c.get('tcp.retransmission'),
    outOfOrder: c.get('tcp.segments_out_of_order'),
    peakRss,
    problem: summary.problem?.message,
  })}\n`,
);

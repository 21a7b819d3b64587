/**
 * Benchmark child: reads one capture through read + decode + flow + TCP reassembly, with a
 * consumer that only counts the bytes it is given, and prints one JSON line of figures.
 * Run in its own process so peak RSS (VmHWM) is the engine's alone.
 * Usage: node dist/bench/engine.js <capture> [--retain BYTES]
 */
import { readFileSync } from 'node:fs';
import type { StreamConsumer } from '../sensor/flow/stream.js';
import { DEFAULT_FLOW_LIMITS } from '../sensor/flow/flow-table.js';
import { DEFAULT_REASSEMBLY_LIMITS } from '../sensor/flow/tcp-reassembly.js';
import { Pipeline } from '../sensor/pipeline.js';

function peakRssBytes(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

const file = process.argv[2];
// --retain N: bytes kept per direction to verify retransmissions (default: the sensor's default).
const retainArg = process.argv.indexOf('--retain');
const flowLimits = retainArg > 0 ? { ...DEFAULT_FLOW_LIMITS, reassembly: { ...DEFAULT_REASSEMBLY_LIMITS, retainBytes: Number(process.argv[retainArg + 1]) } } : undefined;
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
const pipeline = new Pipeline({ streams: { open: () => (flows++, consumer) }, flowLimits });
const t0 = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
const summary = pipeline.runFile(file);
const cpu = process.cpuUsage(cpu0);
const ns = Number(process.hrtime.bigint() - t0);
const c = pipeline.counters;
process.stdout.write(
  `${JSON.stringify({
    seconds: ns / 1e9,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    fileBytes: summary.bytesRead,
    packets: summary.packets,
    flows,
    reassembled,
    gapBytes,
    anomalies: c.anomalyTotal(),
    retransmissions: c.get('tcp.retransmission'),
    outOfOrder: c.get('tcp.segments_out_of_order'),
    peakRss: peakRssBytes(),
    problem: summary.problem?.message,
  })}\n`,
);

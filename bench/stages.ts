/**
 * Benchmark child: what each stage of the stream engine costs per packet, measured in one process
 * so that the machine's drift falls on every stage alike. The capture's frames are first copied
 * into memory; then each round times, in an order that alternates from round to round:
 *   decode      the decoder alone;
 *   duplicates  the decoder and the mirror-port duplicate filter;
 *   engine      a whole pipeline: decode, duplicates, flow table and TCP reassembly, with a
 *               consumer that only counts the bytes it is given (as bench/engine.ts).
 * Prints one JSON line: the medians over the rounds of nanoseconds per packet for each stage and
 * for the differences (`duplicatesNs`: the filter's own cost; `flowsNs`: flow table and
 * reassembly), with the counts every round must repeat. Frames held in memory are not the file
 * reader's reused window, so reassembly copies the bytes it retains instead of referencing them:
 * use bench/engine.ts for the engine's figure, this to see where its time goes or (through
 * bench/ab.ts, `--bench stages --metric duplicatesNs`) to compare one stage between two builds.
 * Usage: node dist/bench/stages.js <capture> [--rounds N]
 */
import { parseArgs } from 'node:util';
import { readCaptureFile } from '../sensor/capture/file-reader.js';
import { Decoder } from '../sensor/decode/decoder.js';
import { DuplicateFilter } from '../sensor/decode/duplicates.js';
import { Counters } from '../sensor/events/counters.js';
import type { StreamConsumer } from '../sensor/flow/stream.js';
import { Pipeline } from '../sensor/pipeline.js';
import { median } from './stats.js';

const DEFAULT_ROUNDS = 7;
/** Fields per frame in the index: link type, offset, captured length, original length, time. */
const FRAME_FIELDS = 5;

const { values, positionals } = parseArgs({ options: { rounds: { type: 'string', default: String(DEFAULT_ROUNDS) } }, allowPositionals: true });
const rounds = Number(values.rounds);
if (positionals.length !== 1 || !Number.isInteger(rounds) || rounds < 1) {
  process.stderr.write('Usage: node dist/bench/stages.js <capture> [--rounds N]\n');
  process.exit(2);
}

/** Every frame of the capture, packed into one buffer, with an index. */
function loadFrames(file: string): { bytes: Uint8Array; index: Float64Array; count: number } {
  const chunks: Uint8Array[] = [];
  const index: number[] = [];
  let at = 0;
  const summary = readCaptureFile(file, (linkType, buf, off, capLen, origLen, tsUs) => {
    chunks.push(buf.slice(off, off + capLen));
    index.push(linkType, at, capLen, origLen, tsUs);
    at += capLen;
  });
  if (summary.problem !== undefined) throw new Error(summary.problem.message);
  const bytes = new Uint8Array(at);
  let o = 0;
  for (const c of chunks) {
    bytes.set(c, o);
    o += c.length;
  }
  return { bytes, index: Float64Array.from(index), count: index.length / FRAME_FIELDS };
}

const { bytes, index, count } = loadFrames(positionals[0]);

type Handler = (linkType: number, buf: Uint8Array, off: number, capLen: number, origLen: number, tsUs: number, ifIndex: number) => void;

/** Hands every frame to `handler`; nanoseconds per frame. */
function feed(handler: Handler): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < index.length; i += FRAME_FIELDS) handler(index[i], bytes, index[i + 1], index[i + 2], index[i + 3], index[i + 4], 0);
  return Number(process.hrtime.bigint() - t0) / count;
}

interface Counts {
  passed: number;
  reassembled: number;
}

const STAGES = {
  decode(counts: Counts): number {
    const d = new Decoder(new Counters());
    return feed((lt, buf, off, len, _orig, ts) => {
      if (d.decodeFrame(lt, buf, off, len, ts)) counts.passed++;
    });
  },
  duplicates(counts: Counts): number {
    const c = new Counters();
    const d = new Decoder(c);
    const filter = new DuplicateFilter(c);
    return feed((lt, buf, off, len, _orig, ts) => {
      if (d.decodeFrame(lt, buf, off, len, ts) && !filter.isDuplicate(d.packet)) counts.passed++;
    });
  },
  engine(counts: Counts): number {
    const consumer: StreamConsumer = {
      data(_dir, b) {
        counts.reassembled += b.length;
      },
      gap() {},
      end() {},
    };
    const pipeline = new Pipeline({ streams: { open: () => consumer } });
    const t0 = process.hrtime.bigint();
    feed(pipeline.packet);
    pipeline.finish();
    return Number(process.hrtime.bigint() - t0) / count;
  },
};
type Stage = keyof typeof STAGES;
const ORDER: Stage[] = ['decode', 'duplicates', 'engine'];

const ns: Record<Stage, number[]> = { decode: [], duplicates: [], engine: [] };
const reference: Record<Stage, Counts | undefined> = { decode: undefined, duplicates: undefined, engine: undefined };
for (let r = 0; r < rounds; r++) {
  for (const stage of r % 2 === 0 ? ORDER : [...ORDER].reverse()) {
    const counts: Counts = { passed: 0, reassembled: 0 };
    ns[stage].push(STAGES[stage](counts));
    const first = (reference[stage] ??= counts);
    if (counts.passed !== first.passed || counts.reassembled !== first.reassembled) throw new Error(`${stage}: round ${r + 1} counted differently from the first`);
  }
}
const diff = (a: number[], b: number[]): number => median(a.map((x, i) => x - b[i]));
process.stdout.write(
  `${JSON.stringify({
    packets: count,
    rounds,
    decodeNs: median(ns.decode),
    duplicatesStageNs: median(ns.duplicates),
    engineNs: median(ns.engine),
    duplicatesNs: diff(ns.duplicates, ns.decode),
    flowsNs: diff(ns.engine, ns.duplicates),
    decoded: reference.decode!.passed,
    passed: reference.duplicates!.passed,
    reassembled: reference.engine!.reassembled,
  })}\n`,
);

/**
 * Benchmark child: what each stage of the stream engine costs per packet, measured in one process
 * so that the machine's drift falls on every stage alike. The capture's frames are first copied
 * into memory; then each round times, in an order that alternates from round to round:
 *   decode      the decoder alone;
 *   duplicates  the decoder and the mirror-port duplicate filter;
 *   engine      a whole pipeline: decode, duplicates, flow table and TCP reassembly, with a
 *               consumer that only counts the bytes it is given (as bench/engine.ts);
 *   file        the same pipeline reading the capture file itself (`Pipeline.runFile`: read(2)
 *               into its reused window, retention by reference), as the sensor and
 *               bench/engine.ts do.
 * Prints one JSON line: the medians over the rounds of nanoseconds per packet for each stage and
 * for the differences (`duplicatesNs`: the filter's own cost; `flowsNs`: flow table and
 * reassembly), with the counts every round must repeat. Frames held in memory are not the file
 * reader's reused window, so reassembly copies the bytes it retains instead of referencing them
 * there; `fileNs` is the engine as it runs.
 *
 * `--against DIR` loads a second build (DIR/dist, e.g. a worktree of the commit before) into the
 * same process and runs every stage of both builds in each round, alternating which goes first:
 * the JSON line then also has `against` (that build's figures) and `change` (per figure, the
 * median of the rounds' differences over the other build's median, how many rounds this build
 * took less and more, and a sign test). Both builds must count the same, or it fails. Between processes this VM's
 * speed moves by ±15%; within one, a stage's change of a few percent shows.
 * Usage: node dist/bench/stages.js <capture> [--rounds N] [--against DIR]
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Decoder as DecoderClass } from '../sensor/decode/decoder.js';
import type { DuplicateFilter as DuplicateFilterClass } from '../sensor/decode/duplicates.js';
import type { Counters as CountersClass } from '../sensor/events/counters.js';
import type { ReadOptions, ReadSummary, PacketHandler } from '../sensor/capture/file-reader.js';
import type { StreamConsumer } from '../sensor/flow/stream.js';
import type { Pipeline as PipelineClass, PipelineOptions } from '../sensor/pipeline.js';
import { BenchCommandLine } from './command-line.js';
import { median, pairedSummary } from './stats.js';
import { ROOT } from './workload.js';

const DEFAULT_ROUNDS = 7;
/** Fields per frame in the index: link type, offset, captured length, original length, time. */
const FRAME_FIELDS = 5;
const cli: BenchCommandLine = new BenchCommandLine('bench/stages', 'Usage: node dist/bench/stages.js <capture> [--rounds N] [--against DIR]\n');
const { values, positionals } = cli.parse({ options: { rounds: { type: 'string', default: String(DEFAULT_ROUNDS) }, against: { type: 'string' } }, allowPositionals: true });
if (positionals.length !== 1) cli.fail('one capture file, please');
const capture = cli.readableFile('capture file', positionals[0]);
const rounds = cli.wholeNumber('--rounds', values.rounds, 'rounds', 1);

/** The parts of one build the stages use, loaded from its dist/. */
interface Build {
  readonly name: string;
  readonly Counters: new () => CountersClass;
  readonly Decoder: new (c: CountersClass) => DecoderClass;
  readonly DuplicateFilter: new (c: CountersClass) => DuplicateFilterClass;
  readonly Pipeline: new (o: PipelineOptions) => PipelineClass;
  readonly readCaptureFile: (path: string, onPacket: PacketHandler, opts?: ReadOptions) => ReadSummary;
}

async function loadBuild(name: string, root: string): Promise<Build> {
  const mod = async (path: string): Promise<Record<string, unknown>> => {
    const file = join(root, 'dist', 'sensor', path);
    if (!existsSync(file)) cli.fail(`${file} not found: build that checkout first (npm run setup)`);
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  };
  const [counters, decoder, duplicates, pipeline, reader] = await Promise.all([
    mod('events/counters.js'),
    mod('decode/decoder.js'),
    mod('decode/duplicates.js'),
    mod('pipeline.js'),
    mod('capture/file-reader.js'),
  ]);
  return {
    name,
    Counters: counters.Counters as Build['Counters'],
    Decoder: decoder.Decoder as Build['Decoder'],
    DuplicateFilter: duplicates.DuplicateFilter as Build['DuplicateFilter'],
    Pipeline: pipeline.Pipeline as Build['Pipeline'],
    readCaptureFile: reader.readCaptureFile as Build['readCaptureFile'],
  };
}

const builds: Build[] = [await loadBuild('this', ROOT)];
if (values.against !== undefined) builds.push(await loadBuild('against', resolve(values.against)));

/** Every frame of the capture, packed into one buffer, with an index. */
function loadFrames(file: string): { bytes: Uint8Array; index: Float64Array; count: number } {
  const chunks: Uint8Array[] = [];
  const index: number[] = [];
  let at = 0;
  const summary = builds[0].readCaptureFile(file, (linkType, buf, off, capLen, origLen, tsUs) => {
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

const { bytes, index, count } = loadFrames(capture);

/** Hands every frame to `handler`; nanoseconds per frame. */
function feed(handler: PacketHandler): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < index.length; i += FRAME_FIELDS) handler(index[i], bytes, index[i + 1], index[i + 2], index[i + 3], index[i + 4], 0);
  return Number(process.hrtime.bigint() - t0) / count;
}

interface Counts {
  passed: number;
  reassembled: number;
}

/** A pipeline of build `b` whose consumer only counts the bytes it is given (as bench/engine.ts). */
function countingPipeline(b: Build, counts: Counts): PipelineClass {
  const consumer: StreamConsumer = {
    data(_dir, bytes) {
      counts.reassembled += bytes.length;
    },
    gap() {},
    end() {},
  };
  return new b.Pipeline({ streams: { open: () => consumer } });
}

const STAGES = {
  decode(b: Build, counts: Counts): number {
    const d = new b.Decoder(new b.Counters());
    return feed((lt, buf, off, len, _orig, ts) => {
      if (d.decodeFrame(lt, buf, off, len, ts)) counts.passed++;
    });
  },
  duplicates(b: Build, counts: Counts): number {
    const c = new b.Counters();
    const d = new b.Decoder(c);
    const filter = new b.DuplicateFilter(c);
    return feed((lt, buf, off, len, _orig, ts) => {
      if (d.decodeFrame(lt, buf, off, len, ts) && !filter.isDuplicate(d.packet)) counts.passed++;
    });
  },
  engine(b: Build, counts: Counts): number {
    const pipeline = countingPipeline(b, counts);
    const t0 = process.hrtime.bigint();
    feed(pipeline.packet);
    pipeline.finish();
    return Number(process.hrtime.bigint() - t0) / count;
  },
  file(b: Build, counts: Counts): number {
    const pipeline = countingPipeline(b, counts);
    const t0 = process.hrtime.bigint();
    const summary = pipeline.runFile(capture);
    if (summary.packets !== count) throw new Error(`${capture}: the file reader handed over ${summary.packets} frames, ${count} before`);
    return Number(process.hrtime.bigint() - t0) / count;
  },
};
type Stage = keyof typeof STAGES;
const ORDER: Stage[] = ['decode', 'duplicates', 'engine', 'file'];

/** Per build, per stage: nanoseconds a packet in each round. */
const ns = builds.map(() => ({ decode: [] as number[], duplicates: [] as number[], engine: [] as number[], file: [] as number[] }));
const reference: Partial<Record<Stage, Counts>> = {};
for (let r = 0; r < rounds; r++) {
  const buildOrder = r % 2 === 0 ? builds : [...builds].reverse();
  for (const stage of r % 2 === 0 ? ORDER : [...ORDER].reverse()) {
    for (const b of buildOrder) {
      const counts: Counts = { passed: 0, reassembled: 0 };
      ns[builds.indexOf(b)][stage].push(STAGES[stage](b, counts));
      const first = (reference[stage] ??= counts);
      // the file stage counts bytes only (as the engine stage does)
      if (counts.passed !== first.passed || counts.reassembled !== first.reassembled || (stage === 'file' && counts.reassembled !== reference.engine?.reassembled)) {
        throw new Error(`${stage}: round ${r + 1} of the ${b.name} build counted ${JSON.stringify(counts)}, the first run ${JSON.stringify(first)}`);
      }
    }
  }
}

/** Per-round figures of one build: the three stages and the two differences. */
function perRound(k: number): Record<string, number[]> {
  const s = ns[k];
  return {
    decodeNs: s.decode,
    duplicatesStageNs: s.duplicates,
    engineNs: s.engine,
    fileNs: s.file,
    duplicatesNs: s.duplicates.map((x, i) => x - s.decode[i]),
    flowsNs: s.engine.map((x, i) => x - s.duplicates[i]),
  };
}

function medians(figures: Record<string, number[]>): Record<string, number> {
  return Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, median(v)]));
}

const mine = perRound(0);
const out: Record<string, unknown> = {
  packets: count,
  rounds,
  ...medians(mine),
  decoded: reference.decode!.passed,
  passed: reference.duplicates!.passed,
  reassembled: reference.engine!.reassembled,
};
if (builds.length > 1) {
  const theirs = perRound(1);
  out.against = { dir: resolve(values.against!), ...medians(theirs) };
  out.change = Object.fromEntries(
    Object.keys(mine).map((k) => {
      const s = pairedSummary(theirs[k], mine[k]);
      // the median paired difference over the other build's median (differences of stages can be
      // near zero or below in a round, so a per-round ratio would mean nothing)
      return [k, { median: s.medianDifference / s.medianA, less: s.bLess, more: s.bMore, p: s.p }];
    }),
  );
}
process.stdout.write(`${JSON.stringify(out)}\n`);

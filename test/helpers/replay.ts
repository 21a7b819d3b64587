/**
 * Test helper: replays a capture file through the real pipeline (file reader, decoder, flow
 * table, reassembly) and collects, per flow, each direction's stream with gaps rendered as
 * `[n missing]`, the UDP datagrams, the finished flow records and the counters.
 */
import { fileURLToPath } from 'node:url';
import type { FlowRecord, FlowLimits } from '../../sensor/flow/flow-table.js';
import type { FlowInfo } from '../../sensor/flow/stream.js';
import { Pipeline } from '../../sensor/pipeline.js';

export interface ReplayedFlow {
  info: FlowInfo;
  /** latin1 text of each direction, gaps as `[n missing]`. */
  streams: [string, string];
  gaps: [number[], number[]];
  ended?: string;
}

export interface Replay {
  flows: ReplayedFlow[];
  records: FlowRecord[];
  datagrams: Array<{ info: FlowInfo; dir: number; payload: Buffer }>;
  pipeline: Pipeline;
  counter(name: string): number;
}

export function fixture(...parts: string[]): string {
  return fileURLToPath(new URL(`../../../test/fixtures/${parts.join('/')}`, import.meta.url));
}

export function replay(path: string, flowLimits?: FlowLimits): Replay {
  const flows: ReplayedFlow[] = [];
  const records: FlowRecord[] = [];
  const datagrams: Replay['datagrams'] = [];
  const pipeline = new Pipeline({
    flowLimits,
    streams: {
      open(info) {
        const f: ReplayedFlow = { info, streams: ['', ''], gaps: [[], []] };
        flows.push(f);
        return {
          data: (dir, bytes) => {
            f.streams[dir] += Buffer.from(bytes).toString('latin1');
          },
          gap: (dir, len) => {
            f.streams[dir] += `[${len} missing]`;
            f.gaps[dir].push(len);
          },
          end: (reason) => {
            f.ended = reason;
          },
        };
      },
    },
    datagrams: { datagram: (info, dir, payload) => datagrams.push({ info, dir, payload: Buffer.from(payload) }) },
    flowEnded: { flowEnded: (r) => records.push(r) },
  });
  const summary = pipeline.runFile(path);
  if (summary.problem) throw new Error(`${path}: ${summary.problem.message}`);
  return { flows, records, datagrams, pipeline, counter: (n) => pipeline.counters.get(n) };
}

/**
 * The flow-table options `hark run` and `hark scan` share: how many flows, and how much memory
 * their state may take, before the least recently active are evicted (closed, then DNS lookups,
 * other UDP, half-open, then established; counted in flow.memcap_evicted); and how many frames a
 * connection-grouped batch holds (workers/locality.ts).
 */
import { DEFAULT_FLOW_LIMITS, type FlowLimits } from '../flow/flow-table.js';
import { DEFAULT_LOCALITY_FRAMES } from '../workers/locality.js';
import { CliError } from './command.js';

/** Largest batch: 1M frames of index arrays is ~40 MB. */
const MAX_GROUP_FRAMES = 1 << 20;
/** Largest --flow-memcap: 1 TiB, beyond any sensor's memory (a larger figure is a typing slip). */
const MAX_FLOW_MEMCAP_MIB = 1 << 20;
/** Largest --max-flows: 2^26 flows take ~80 GB of flow state alone at ~1.2 KB each. */
const MAX_FLOWS = 1 << 26;

export const FLOW_OPTIONS = {
  'flow-memcap': { type: 'string' },
  'max-flows': { type: 'string' },
  'group-frames': { type: 'string' },
  'no-bypass': { type: 'boolean', default: false },
} as const;

export const FLOW_USAGE = `  --flow-memcap MIB      memory for flow state, reassembly and out-of-order bytes (default ${DEFAULT_FLOW_LIMITS.memcapBytes / 1048576})
  --max-flows N          flows tracked at once (default ${DEFAULT_FLOW_LIMITS.maxFlows})
  --group-frames N       frames per connection-grouped batch (hark scan: default ${DEFAULT_LOCALITY_FRAMES}, 0 for
                         strict capture order; hark run: default 0, N for each worker)
  --no-bypass            reassemble every flow to its end, also those nothing more can be learned
                         from (a protocol Hark does not know, TLS it cannot decrypt)`;

/** --group-frames as a number of frames, or undefined for the default. */
export function groupFramesFrom(v: { 'group-frames'?: string }): number | undefined {
  if (v['group-frames'] === undefined) return undefined;
  const n = Number(v['group-frames']);
  if (!Number.isInteger(n) || n < 0 || n > MAX_GROUP_FRAMES) {
    throw new CliError(`--group-frames must be a whole number of frames from 0 to ${MAX_GROUP_FRAMES}, not "${v['group-frames']}"`);
  }
  return n;
}

export function flowLimitsFrom(v: { 'flow-memcap'?: string; 'max-flows'?: string }): Partial<Pick<FlowLimits, 'maxFlows' | 'memcapBytes'>> {
  const out: { maxFlows?: number; memcapBytes?: number } = {};
  if (v['flow-memcap'] !== undefined) {
    const mib = Number(v['flow-memcap']);
    if (!Number.isFinite(mib) || mib < 1 || mib > MAX_FLOW_MEMCAP_MIB) throw new CliError(`--flow-memcap must be a number of MiB from 1 to ${MAX_FLOW_MEMCAP_MIB}, not "${v['flow-memcap']}"`);
    out.memcapBytes = Math.floor(mib * 1048576);
  }
  if (v['max-flows'] !== undefined) {
    const n = Number(v['max-flows']);
    if (!Number.isInteger(n) || n < 1 || n > MAX_FLOWS) throw new CliError(`--max-flows must be a whole number of flows from 1 to ${MAX_FLOWS}, not "${v['max-flows']}"`);
    out.maxFlows = n;
  }
  return out;
}

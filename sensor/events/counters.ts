/**
 * Counters: every stage's statistics and anomaly codes, by dotted name.
 * Input: a module registers its names once, at load (`defineCounter`), and gets a small integer id.
 * Output: a `Counters` instance (one per pipeline) increments by id on the hot path — a typed-array
 * store, no string work per packet — and snapshots to a name -> value object for reports.
 * Names follow Suricata's where one exists (`tcp.reassembly_gap`, `decoder.ipv4.trunc_pkt`).
 */

export type CounterKind = 'stat' | 'anomaly';

/** Room for every counter any module defines; exceeding it is a programming error at load. */
const MAX_COUNTERS = 1024;

const names: string[] = [];
const kinds: CounterKind[] = [];
const byName = new Map<string, number>();

/** Registers a counter name (idempotent) and returns its id. Call at module load, not per packet. */
export function defineCounter(name: string, kind: CounterKind = 'stat'): number {
  const known = byName.get(name);
  if (known !== undefined) return known;
  if (names.length >= MAX_COUNTERS) throw new Error(`Cannot define counter "${name}": more than ${MAX_COUNTERS} counters`);
  const id = names.length;
  names.push(name);
  kinds.push(kind);
  byName.set(name, id);
  return id;
}

/** Registers a dotted anomaly code such as `decoder.ipv4.hlen_too_small`. */
export function defineAnomaly(code: string): number {
  return defineCounter(code, 'anomaly');
}

export function counterName(id: number): string {
  return names[id] ?? `unknown.${id}`;
}

export function counterId(name: string): number | undefined {
  return byName.get(name);
}

export class Counters {
  readonly values = new Float64Array(MAX_COUNTERS);

  inc(id: number, n = 1): void {
    this.values[id] += n;
  }

  get(nameOrId: string | number): number {
    const id = typeof nameOrId === 'number' ? nameOrId : byName.get(nameOrId);
    return id === undefined ? 0 : this.values[id];
  }

  /** Sets a gauge (flows active, bytes buffered). */
  set(id: number, v: number): void {
    this.values[id] = v;
  }

  /** Non-zero counters of one kind (or all), sorted by name. */
  snapshot(kind?: CounterKind): Record<string, number> {
    const out: Record<string, number> = {};
    const ids: number[] = [];
    for (let i = 0; i < names.length; i++) {
      if (this.values[i] !== 0 && (kind === undefined || kinds[i] === kind)) ids.push(i);
    }
    ids.sort((a, b) => (names[a] < names[b] ? -1 : 1));
    for (const i of ids) out[names[i]] = this.values[i];
    return out;
  }

  /** Sum of all anomaly counters. */
  anomalyTotal(): number {
    let t = 0;
    for (let i = 0; i < names.length; i++) if (kinds[i] === 'anomaly') t += this.values[i];
    return t;
  }

  addFrom(other: Counters): void {
    for (let i = 0; i < names.length; i++) this.values[i] += other.values[i];
  }
}

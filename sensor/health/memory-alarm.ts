/**
 * Memory alarm (health stage): warns before the kernel's out-of-memory killer ends the sensor, and
 * with it every capture held in memory and every conversation in progress. Input: `check()` with
 * each status sample's RSS (the status file's `memory.rss_bytes`) and the machine's memory as
 * /proc/meminfo gives it. Output: one `memory.high` health event (warning, raised) when the sensor
 * uses more than RAISE_SHARE of the memory it may use (the machine's, or its cgroup's limit, read
 * again at every check: `systemctl set-property hark MemoryMax=...` changes it while the sensor
 * runs), or the machine as a whole has less than RAISE_AVAILABLE_SHARE of its memory available (the sensor
 * is not always the one using it: the home server, a backup...), and one `cleared` once both are
 * back under the lower marks (no flapping at the line). Never throws.
 */
import { readFileSync } from 'node:fs';
import { healthEvent, type HealthSink } from '../events/health.js';

export const HEALTH_MEMORY = 'memory.high';
/** The sensor's RSS over this share of the memory it may use raises the alarm... */
const RAISE_SHARE = 0.85;
/** ...which clears under this share. */
const CLEAR_SHARE = 0.75;
/** The machine's available memory under this share of its total raises the alarm... */
const RAISE_AVAILABLE_SHARE = 0.1;
/** ...which clears over this share. */
const CLEAR_AVAILABLE_SHARE = 0.15;
/** /proc/meminfo is ~1.5 KB; a longer one is not what this parser knows. */
const MAX_MEMINFO_BYTES = 16 * 1024;
const KIB = 1024;
const GIB = 1024 * 1024 * 1024;

/** The machine's memory: MemTotal and MemAvailable from /proc/meminfo, in bytes. */
export interface MachineMemory {
  readonly totalBytes: number;
  readonly availableBytes: number;
}

/** MemTotal and MemAvailable from the text of /proc/meminfo; undefined when either is missing. */
export function parseMeminfo(text: string): MachineMemory | undefined {
  if (text.length > MAX_MEMINFO_BYTES) return undefined;
  const field = (name: string): number | undefined => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text);
    return m === null ? undefined : Number(m[1]) * KIB;
  };
  const totalBytes = field('MemTotal');
  const availableBytes = field('MemAvailable');
  return totalBytes === undefined || availableBytes === undefined || totalBytes === 0 ? undefined : { totalBytes, availableBytes };
}

/** The machine's memory now, or undefined off Linux. */
export function readMachineMemory(path = '/proc/meminfo'): MachineMemory | undefined {
  try {
    return parseMeminfo(readFileSync(path, 'latin1'));
  } catch {
    return undefined;
  }
}

function gib(bytes: number): string {
  return `${(bytes / GIB).toFixed(1)} GiB`;
}

export class MemoryAlarm {
  private raised = false;

  /** `limitBytes`: the memory the sensor may use now (workers/sizing.ts usableMemoryBytes), asked at every check. */
  constructor(private readonly limitBytes: () => number, private readonly sink: HealthSink, private readonly nowMs: () => number = Date.now) {}

  /** One status sample: the sensor's RSS (undefined when unknown) and the machine's memory (undefined off Linux). */
  check(rssBytes: number | undefined, machine: MachineMemory | undefined): void {
    const limit = this.limitBytes();
    const share = rssBytes !== undefined && limit > 0 ? rssBytes / limit : undefined;
    const available = machine !== undefined ? machine.availableBytes / machine.totalBytes : undefined;
    if (!this.raised) {
      const own = share !== undefined && share > RAISE_SHARE;
      const machineShort = available !== undefined && available < RAISE_AVAILABLE_SHARE;
      if (!own && !machineShort) return;
      this.raised = true;
      const why = own
        ? `the sensor uses ${gib(rssBytes!)} of the ${gib(limit)} it may use (${Math.round(share! * 100)}%)`
        : `the machine has ${gib(machine!.availableBytes)} of its ${gib(machine!.totalBytes)} available (${Math.round(available! * 100)}%; the sensor uses ${rssBytes !== undefined ? gib(rssBytes) : 'an unknown amount'})`;
      this.sink(healthEvent(HEALTH_MEMORY, 'warning',
        `Memory is running short: ${why}. When it runs out the kernel kills the sensor, losing the conversations in progress; run fewer worker threads (--workers), lower --flow-memcap, or give the machine more memory`,
        { ...(rssBytes !== undefined ? { rss_bytes: rssBytes } : {}), limit_bytes: limit, ...(machine !== undefined ? { available_bytes: machine.availableBytes, total_bytes: machine.totalBytes } : {}) },
        'raised', this.nowMs()));
      return;
    }
    const ownOk = share === undefined || share < CLEAR_SHARE;
    const machineOk = available === undefined || available > CLEAR_AVAILABLE_SHARE;
    if (!ownOk || !machineOk) return;
    this.raised = false;
    this.sink(healthEvent(HEALTH_MEMORY, 'info', 'Memory is no longer short', undefined, 'cleared', this.nowMs()));
  }
}

/**
 * What the live sensor reports about itself, sampled every few seconds for the status file,
 * /metrics and `hark status`. Input: running per-interface packet/byte counts (and pcap kernel
 * drops when known), the pipeline's `Counters`, NIC drop counters from sysfs, and whatever else the
 * composition root knows (`extra`: CPU and memory by thread among it). Output: a plain JSON-able
 * `SensorSnapshot` with rates since the previous sample. Never throws on a missing or odd sysfs
 * file: the field is left out.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Counters } from '../events/counters.js';
import type { HealthEvent } from '../events/health.js';
import type { MemorySnapshot } from './memory.js';
import type { ThreadsCpu } from './threads.js';
import type { InterfaceWatchdog, WatchdogInterface } from './watchdog.js';

export interface InterfaceSnapshot {
  name: string;
  /** Frames received since the sensor started. */
  packets: number;
  bytes: number;
  /** Dropped by the kernel before libpcap saw them (pcap_stats ps_drop), when the source reports it. */
  kernel_drops?: number;
  /** Dropped by the NIC or its driver: sysfs rx_dropped + rx_missed_errors (Linux only). */
  interface_drops?: number;
  /** Captured but lost before inspection: the worker threads' rings were full (with --workers only). */
  handoff_drops?: number;
  /** ISO time of the first sample that saw this interface's count move (sample-interval precision). */
  last_packet_at?: string;
  /** Packets per second since the previous sample (0 on the first). */
  pps: number;
  /** Bits per second since the previous sample (0 on the first). */
  bps: number;
}

export interface SensorSnapshot {
  pid: number;
  version: string;
  started_at: string;
  updated_at: string;
  interfaces: InterfaceSnapshot[];
  /**
   * With worker threads: captured bytes waiting in the hand-off rings, and the rings' size. A
   * backlog that keeps growing means the workers are behind the link; at capacity, frames are
   * lost (handoff_drops).
   */
  handoff_backlog?: { bytes: number; capacity: number };
  /** CPU of the capture thread, each worker thread and the rest of the process (Linux only). */
  threads?: ThreadsCpu;
  /**
   * Resident memory (Linux), split so the parts add up to RSS: each thread's V8 heap and external
   * memory, the shared rings and tables, and the rest (native allocations).
   */
  memory?: MemorySnapshot;
  /** Non-zero statistic counters by dotted name (`tcp.reassembly_gap`, `capture.emitted`). */
  counters: Record<string, number>;
  flows_active: number;
  captures: number;
  /** Non-zero anomaly counters by dotted code (`decoder.ipv4.hlen_too_small`). */
  anomalies: Record<string, number>;
  upload: { queue: number; last_success_at?: string; home?: string };
  config: {
    source: string; version?: string; age_s?: number;
    /** The merge window and body limit in force, each with where it came from (command line, home, default). */
    inspection?: { dedup_window_s: number; dedup_window_from: string; body_limit_bytes: number; body_limit_from: string };
  };
  /** Raised health events not yet cleared. */
  health: HealthEvent[];
}

/** One interface as the capture layer counts it (LiveCapture.packets[i], .bytes[i]). */
export interface InterfaceCount {
  readonly name: string;
  readonly packets: number;
  readonly bytes: number;
  readonly kernelDrops?: number;
  /** Captured frames the worker threads had no room for (running total; with workers only). */
  readonly handoffDrops?: number;
}

/** Fields only the composition root knows; each one given overrides the sampler's default. */
export type SnapshotExtra = Partial<Pick<SensorSnapshot, 'flows_active' | 'captures' | 'upload' | 'config' | 'health' | 'handoff_backlog' | 'threads' | 'memory'>>;

export interface SensorSamplerOptions {
  readonly interfaces: () => readonly InterfaceCount[];
  readonly counters: Counters;
  readonly extra?: () => SnapshotExtra;
  /** Checked on every sample with the interface counts; its active events join `health`. */
  readonly watchdog?: InterfaceWatchdog;
  /** Where /sys lives (tests point it at a fake tree). Default `/sys`. */
  readonly sysfsRoot?: string;
  readonly version?: string;
  readonly startedAtMs?: number;
  readonly pid?: number;
}

/** Linux IFNAMSIZ is 16 including the NUL; a name with a slash or dots could leave statistics/. */
const MAX_IFNAME_LEN = 15;
/** sysfs counters are one decimal u64 and a newline; anything longer is not a counter. */
const MAX_SYSFS_VALUE_LEN = 32;

function readSysfsCounter(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch {
    return undefined;
  }
  const t = text.trim();
  if (t.length === 0 || t.length > MAX_SYSFS_VALUE_LEN || !/^\d+$/.test(t)) return undefined;
  return Number(t);
}

/**
 * NIC drops for one interface from `<sysfsRoot>/class/net/<name>/statistics/`: rx_dropped +
 * rx_missed_errors (either alone if only one exists), undefined when neither is readable.
 */
export function readInterfaceDrops(name: string, sysfsRoot = '/sys'): number | undefined {
  if (name.length === 0 || name.length > MAX_IFNAME_LEN || name.includes('/') || name === '.' || name === '..') return undefined;
  const dir = join(sysfsRoot, 'class', 'net', name, 'statistics');
  const dropped = readSysfsCounter(join(dir, 'rx_dropped'));
  const missed = readSysfsCounter(join(dir, 'rx_missed_errors'));
  if (dropped === undefined && missed === undefined) return undefined;
  return (dropped ?? 0) + (missed ?? 0);
}

/** The version in Hark's package.json, or "unknown" when it cannot be read. */
export function readHarkVersion(): string {
  try {
    // dist/sensor/health/ and sensor/health/ are both three levels below the checkout.
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

interface PrevInterface {
  packets: number;
  bytes: number;
  lastPacketAtMs: number | undefined;
}

/** Rates per second over `dtMs`; a count that went down (restart) or a zero interval gives 0. */
function rate(now: number, before: number, dtMs: number): number {
  return dtMs > 0 && now >= before ? ((now - before) * 1000) / dtMs : 0;
}

export class SensorSampler {
  private readonly pid: number;
  private readonly version: string;
  private readonly startedAt: string;
  private prevMs: number | undefined;
  private readonly prev = new Map<string, PrevInterface>();
  private last: SensorSnapshot | undefined;

  constructor(private readonly opts: SensorSamplerOptions) {
    this.pid = opts.pid ?? process.pid;
    this.version = opts.version ?? readHarkVersion();
    this.startedAt = new Date(opts.startedAtMs ?? Date.now()).toISOString();
  }

  /** Takes a new sample; rates are over the time since the previous call. */
  sample(nowMs: number = Date.now()): SensorSnapshot {
    const counts = this.opts.interfaces();
    const dtMs = this.prevMs === undefined ? 0 : nowMs - this.prevMs;
    const watched: WatchdogInterface[] = [];
    const interfaces: InterfaceSnapshot[] = counts.map((c) => {
      const p = this.prev.get(c.name);
      const moved = p === undefined ? c.packets > 0 : c.packets !== p.packets;
      const lastPacketAtMs = moved ? nowMs : p?.lastPacketAtMs;
      this.prev.set(c.name, { packets: c.packets, bytes: c.bytes, lastPacketAtMs });
      const out: InterfaceSnapshot = {
        name: c.name,
        packets: c.packets,
        bytes: c.bytes,
        pps: p === undefined ? 0 : rate(c.packets, p.packets, dtMs),
        bps: p === undefined ? 0 : rate(c.bytes, p.bytes, dtMs) * 8,
      };
      if (c.kernelDrops !== undefined) out.kernel_drops = c.kernelDrops;
      const nicDrops = readInterfaceDrops(c.name, this.opts.sysfsRoot);
      if (nicDrops !== undefined) out.interface_drops = nicDrops;
      if (c.handoffDrops !== undefined) out.handoff_drops = c.handoffDrops;
      watched.push({ name: c.name, packets: c.packets, kernelDrops: c.kernelDrops, interfaceDrops: nicDrops, handoffDrops: c.handoffDrops });
      if (lastPacketAtMs !== undefined) out.last_packet_at = new Date(lastPacketAtMs).toISOString();
      return out;
    });
    this.prevMs = nowMs;
    this.opts.watchdog?.check(nowMs, watched);

    const counters = this.opts.counters;
    const extra = this.opts.extra?.() ?? {};
    // The watchdog's events usually also reach `extra.health` (through the same health sink):
    // the same objects, listed once.
    const health = [...(extra.health ?? [])];
    const listed = new Set(health);
    for (const e of this.opts.watchdog?.active() ?? []) if (!listed.has(e)) health.push(e);
    this.last = {
      pid: this.pid,
      version: this.version,
      started_at: this.startedAt,
      updated_at: new Date(nowMs).toISOString(),
      interfaces,
      ...(extra.handoff_backlog !== undefined ? { handoff_backlog: extra.handoff_backlog } : {}),
      ...(extra.threads !== undefined ? { threads: extra.threads } : {}),
      ...(extra.memory !== undefined ? { memory: extra.memory } : {}),
      counters: counters.snapshot('stat'),
      flows_active: extra.flows_active ?? counters.get('flow.active'),
      captures: extra.captures ?? counters.get('capture.emitted'),
      anomalies: counters.snapshot('anomaly'),
      upload: extra.upload ?? { queue: 0 },
      config: extra.config ?? { source: 'command line' },
      health,
    };
    return this.last;
  }

  /** The most recent sample (taking one if there is none yet): what /metrics serves between samples. */
  latest(nowMs: number = Date.now()): SensorSnapshot {
    return this.last ?? this.sample(nowMs);
  }
}

/**
 * `hark status`: is the sensor running, and how is it doing? Input: DATA_DIR/status.json as the
 * live sensor writes it. Output: a human summary (or --json) and the exit codes LSB init scripts
 * use: 0 running, 1 dead (the file says running but the pid is gone, or it was not rewritten for
 * 3 intervals), 3 not running (no file, or stopped cleanly), 4 unknown (the file cannot be read).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CliError, type Command } from '../cli/command.js';
import { formatBitRate, formatBytes, formatDuration, formatMebibytes } from './format.js';
import { summarizeMemory } from './memory.js';
import { STATUS_FILE_NAME } from './status-file.js';

/** Where a checkout keeps its data when nothing else is configured (same as `hark run`). */
const CHECKOUT_DATA_DIR = fileURLToPath(new URL('../../../var', import.meta.url));
/** A sensor that missed this many rewrites of its status file is hung or gone (LSB "dead"). */
export const STATUS_STALE_INTERVALS = 3;
/** A status file is a few KB; anything far larger is not ours and is not parsed. */
const MAX_STATUS_FILE_BYTES = 4 * 1024 * 1024;

export const STATUS_EXIT = { running: 0, dead: 1, stopped: 3, unknown: 4 } as const;
export type SensorState = keyof typeof STATUS_EXIT;

export interface StatusVerdict {
  readonly state: SensorState;
  /** One line saying why, e.g. `pid 1234 is gone`. */
  readonly reason: string;
  /** The parsed file when it could be read. */
  readonly status?: Record<string, unknown>;
}

/** True when a process with this pid exists and is not a zombie. */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else (a sensor running as root).
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/PID/stat: "pid (comm) S ...": a zombie has exited and only waits for its parent.
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** Reads and judges a status file at `nowMs`. Never throws. */
export function judgeStatusFile(path: string, nowMs: number = Date.now()): StatusVerdict {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return { state: 'stopped', reason: `no status file at ${path} (the sensor has not run with this data directory)` };
    return { state: 'unknown', reason: `cannot read ${path}: ${e.code === 'EACCES' ? 'permission denied (run as root or as a member of the sensor\'s group)' : e.message}` };
  }
  if (text.length > MAX_STATUS_FILE_BYTES) return { state: 'unknown', reason: `${path} is ${text.length} bytes: not a Hark status file` };
  let status: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    status = parsed as Record<string, unknown>;
  } catch (err) {
    return { state: 'unknown', reason: `${path} is not a Hark status file: ${(err as Error).message}` };
  }
  const { pid, updated_at: updatedAt, interval_ms: intervalMs, stopped } = status;
  const updatedMs = typeof updatedAt === 'string' ? Date.parse(updatedAt) : NaN;
  if (!(Number.isSafeInteger(pid) && (pid as number) > 0) || !Number.isFinite(updatedMs) || !(typeof intervalMs === 'number' && intervalMs > 0) || typeof stopped !== 'boolean') {
    return { state: 'unknown', reason: `${path} lacks pid, updated_at, interval_ms or stopped: not a Hark status file`, status };
  }
  if (stopped) return { state: 'stopped', reason: `stopped at ${updatedAt as string}`, status };
  if (!pidAlive(pid as number)) return { state: 'dead', reason: `pid ${pid as number} is gone, but the status file says running (the sensor was killed or crashed)`, status };
  const age = nowMs - updatedMs;
  if (age > STATUS_STALE_INTERVALS * intervalMs) {
    return { state: 'dead', reason: `the status file was last updated ${formatDuration(age)} ago (expected every ${formatDuration(intervalMs)}): the sensor is hung`, status };
  }
  return { state: 'running', reason: `pid ${pid as number}`, status };
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function ago(iso: string | undefined, nowMs: number): string | undefined {
  const t = iso === undefined ? NaN : Date.parse(iso);
  return Number.isFinite(t) ? `${formatDuration(nowMs - t)} ago` : undefined;
}

/**
 * The status file's `memory` on one line, in MiB: RSS and peak, then the parts that add up to RSS
 * (each thread's V8 heap with the young generation within it, external memory, shared rings and
 * tables, other). Undefined when the file has no memory section.
 */
export function formatMemoryLine(raw: unknown): string | undefined {
  const m = summarizeMemory(raw);
  if (m === undefined) return undefined;
  const mib = (n: number | undefined): string => (n === undefined ? '?' : formatMebibytes(n));
  const workers = m.workerHeapBytes.length > 0 ? `, workers ${m.workerHeapBytes.map(mib).join(' ')}` : '';
  return `memory (MiB): RSS ${mib(m.rssBytes)}, peak ${mib(m.peakRssBytes)}; heap committed: capture ${mib(m.captureHeapBytes)}${workers} ` +
    `(young generation ${mib(m.youngBytes)} of it); external ${mib(m.externalBytes)}; shared ${mib(m.sharedBytes)}; other ${mib(m.otherBytes)}`;
}

/** The human summary of a status file (tolerates missing fields: prints what is there). */
export function formatStatus(v: StatusVerdict, nowMs: number = Date.now()): string {
  const lines: string[] = [];
  const s = v.status ?? {};
  const head: Record<SensorState, string> = { running: 'running', dead: 'dead', stopped: 'not running', unknown: 'status unknown' };
  lines.push(`hark: ${head[v.state]} (${v.reason})`);
  if (v.status === undefined || v.state === 'unknown') return `${lines.join('\n')}\n`;
  const started = str(s.started_at);
  const startedMs = started === undefined ? NaN : Date.parse(started);
  const updated = str(s.updated_at);
  const until = v.state === 'running' ? nowMs : updated !== undefined ? Date.parse(updated) : NaN;
  const upFor = Number.isFinite(startedMs) && Number.isFinite(until) ? `, up ${formatDuration(until - startedMs)}` : '';
  lines.push(`  version ${str(s.version) ?? '?'}, pid ${num(s.pid) ?? '?'}, started ${started ?? '?'}${upFor}; status updated ${ago(updated, nowMs) ?? '?'}`);
  for (const raw of arr(s.interfaces)) {
    const i = obj(raw);
    const drops: string[] = [];
    if (num(i.kernel_drops) !== undefined) drops.push(`kernel drops ${num(i.kernel_drops)}`);
    if (num(i.interface_drops) !== undefined) drops.push(`interface drops ${num(i.interface_drops)}`);
    if (num(i.handoff_drops) !== undefined) drops.push(`worker hand-off drops ${num(i.handoff_drops)}`);
    const last = ago(str(i.last_packet_at), nowMs);
    lines.push(`  interface ${str(i.name) ?? '?'}: ${num(i.packets) ?? 0} packets (${formatBytes(num(i.bytes) ?? 0)})${drops.length ? `, ${drops.join(', ')}` : ''}, ` +
      `${Math.round(num(i.pps) ?? 0)} pps, ${formatBitRate(num(i.bps) ?? 0)}${last ? `, last packet ${last}` : ', no packets yet'}`);
  }
  const backlog = num(obj(s.handoff_backlog).bytes);
  const ringBytes = num(obj(s.handoff_backlog).capacity);
  if (backlog !== undefined && ringBytes !== undefined && ringBytes > 0) {
    lines.push(`  worker hand-off backlog ${formatBytes(backlog)} of ${formatBytes(ringBytes)} (${Math.round((100 * backlog) / ringBytes)}%)`);
  }
  const threads = obj(s.threads);
  const pct = (t: unknown): string => `${Math.round(num(obj(t).cpu_pct) ?? 0)}%`;
  if (num(obj(threads.process).cpu_seconds) !== undefined) {
    const workers = arr(threads.workers);
    lines.push(`  CPU (% of one core): capture thread ${pct(threads.capture)}` +
      `${workers.length > 0 ? `, workers ${workers.map(pct).join(' ')}` : ''}, other threads ${pct(threads.other)}; process ${pct(threads.process)}`);
  }
  const memory = formatMemoryLine(s.memory);
  if (memory !== undefined) lines.push(`  ${memory}`);
  const anomalies = Object.values(obj(s.anomalies)).reduce<number>((t, x) => t + (num(x) ?? 0), 0);
  lines.push(`  flows active ${num(s.flows_active) ?? 0}; captures ${num(s.captures) ?? 0}; anomalies ${anomalies}`);
  // the status file lists a counter once it is non-zero: absent is 0
  const c = (name: string): number => num(obj(s.counters)[name]) ?? 0;
  lines.push(`  mirror-port duplicates dropped ${c('decoder.duplicates')}; reassembly gaps ${c('tcp.reassembly_gap')} (${formatBytes(c('tcp.reassembly_gap_bytes'))} lost); ` +
    `memcap hits: flows evicted ${c('flow.memcap_evicted')}, reassembly ${c('tcp.reassembly_memcap')}, fragments ${c('defrag.memcap_evicted')}`);
  const up = obj(s.upload);
  const lastUp = ago(str(up.last_success_at), nowMs);
  lines.push(`  upload queue ${num(up.queue) ?? 0}${lastUp ? `, last upload ${lastUp}` : ''}${str(up.home) ? ` to ${str(up.home)}` : ''}`);
  const cfg = obj(s.config);
  const age = num(cfg.age_s);
  lines.push(`  config from ${str(cfg.source) ?? '?'}${str(cfg.version) ? ` (version ${str(cfg.version)})` : ''}${age !== undefined ? `, fetched ${formatDuration(age * 1000)} ago` : ''}`);
  // a status file from a sensor older than the field has none
  const insp = obj(cfg.inspection);
  const windowS = num(insp.dedup_window_s);
  const bodyBytes = num(insp.body_limit_bytes);
  if (windowS !== undefined && bodyBytes !== undefined) {
    lines.push(`  inspection: merge window ${windowS} s (${str(insp.dedup_window_from) ?? '?'}), body limit ${bodyBytes} bytes (${str(insp.body_limit_from) ?? '?'})`);
  }
  const health = arr(s.health).map(obj);
  if (health.length === 0) lines.push('  health: no active problems');
  for (const e of health) lines.push(`  health ${(str(e.severity) ?? '?').toUpperCase()} ${str(e.name) ?? '?'}: ${str(e.message) ?? ''}${str(e.timestamp) ? ` (since ${str(e.timestamp)})` : ''}`);
  return `${lines.join('\n')}\n`;
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'is the live sensor running? interfaces, drops, CPU, memory, flows, captures, upload queue, health',
  usage: `Usage: hark status [--data-dir DIR] [--json]

Reads the status file the running sensor rewrites every few seconds (DATA_DIR/${STATUS_FILE_NAME}) and
summarises it: running since, per interface packets, drops and rates, CPU and memory by thread,
flows, captures, anomalies, mirror-port duplicates, reassembly gaps, memcap hits, upload queue,
configuration source and age, the inspection settings in force, and active health problems.

Options:
  --data-dir DIR   the sensor's data directory (default: $HARK_DATA_DIR, else ./var in a checkout)
  --json           print {state, reason, status_file, status} as JSON instead
  -h, --help       this help

Exit status (as LSB init scripts use it):
  0  running
  1  dead: the status file says running, but the process is gone or stopped updating it
     (not rewritten for ${STATUS_STALE_INTERVALS} intervals)
  3  not running: no status file, or the sensor stopped cleanly
  4  unknown: the status file cannot be read or is not a Hark status file
  2  bad option`,
  run(argv) {
    let values;
    try {
      ({ values } = parseArgs({
        args: argv,
        options: {
          'data-dir': { type: 'string' },
          json: { type: 'boolean', default: false },
          help: { type: 'boolean', short: 'h', default: false },
        },
      }));
    } catch (err) {
      throw new CliError((err as Error).message);
    }
    if (values.help) {
      process.stdout.write(`${this.usage}\n`);
      return 0;
    }
    const dataDir = values['data-dir'] ?? process.env.HARK_DATA_DIR ?? CHECKOUT_DATA_DIR;
    const path = join(dataDir, STATUS_FILE_NAME);
    const nowMs = Date.now();
    const verdict = judgeStatusFile(path, nowMs);
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ state: verdict.state, reason: verdict.reason, status_file: path, status: verdict.status ?? null }, null, 2)}\n`);
    } else if (verdict.state === 'unknown') {
      process.stderr.write(formatStatus(verdict, nowMs));
    } else {
      process.stdout.write(formatStatus(verdict, nowMs));
    }
    return STATUS_EXIT[verdict.state];
  },
};

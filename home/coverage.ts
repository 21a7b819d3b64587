/**
 * Coverage: what each sensor could not see, per UTC day. Input: heartbeats, whose `counters` are
 * cumulative since the sensor started (PROTOCOL.md). Output: per-day sums of the increase of the
 * counters below in `coverage_daily`, a restart (new `started_at`, or a counter going down) taking
 * the new value itself as the increase; and per-day shares with advice a school can act on.
 */

import type { HomeStore } from './store.js';

/**
 * The sensor counters coverage uses (names as defined in sensor/ with defineCounter/defineAnomaly).
 * Bytes: decoder.bytes is every byte captured; the others are the parts Hark could not read.
 */
export const COVERAGE_COUNTERS = [
  'decoder.bytes', 'decoder.pkts', 'decoder.duplicates',
  'tls.undecrypted_bytes', 'tls.decrypted_bytes', 'tls.flows', 'tls.keys_never_arrived',
  'quic.bytes_uninspectable', 'quic.flows',
  'flow.tcp', 'flow.one_sided',
  'tcp.reassembly_gap', 'tcp.reassembly_gap_bytes',
  'http.responses', 'http.body_truncated', 'http2.body_truncated', 'http.parser_invalid', 'http.message_incomplete', 'decompress.corrupt',
  'capture.kernel_packets', 'capture.kernel_drops',
] as const;

/** A counter's increase between two heartbeats of the same run; after a restart the new value. */
export function counterDelta(prev: number | undefined, cur: number, sameRun: boolean): number {
  if (prev === undefined || !sameRun || cur < prev) return cur;
  return cur - prev;
}

function counters(body: Record<string, unknown> | undefined): Record<string, number> {
  const c = body?.counters;
  const out: Record<string, number> = {};
  if (c === null || typeof c !== 'object' || Array.isArray(c)) return out;
  for (const name of COVERAGE_COUNTERS) {
    const v = (c as Record<string, unknown>)[name];
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) out[name] = Math.floor(v);
  }
  return out;
}

/** Adds the increase since `prevBody` (the sensor's previous heartbeat, if any) to day `at`. */
export function recordCoverage(store: HomeStore, sensorId: number, at: number, body: Record<string, unknown>, prevBody: Record<string, unknown> | undefined): void {
  const cur = counters(body);
  const prev = counters(prevBody);
  const sameRun = prevBody !== undefined && typeof body.started_at === 'string' && body.started_at === prevBody.started_at;
  const day = new Date(at).toISOString().slice(0, 10);
  const st = store.sql.prepare(`INSERT INTO coverage_daily (sensor_id, day, counter, value) VALUES (?, ?, ?, ?)
    ON CONFLICT(sensor_id, day, counter) DO UPDATE SET value = value + excluded.value`);
  store.transaction(() => {
    for (const [name, v] of Object.entries(cur)) {
      const d = counterDelta(prev[name], v, sameRun);
      if (d > 0) st.run(sensorId, day, name, d);
    }
  });
}

export interface CoverageDay {
  sensor_id: number; day: string; counters: Record<string, number>;
  /** Shares 0..1 (undefined when the denominator is 0). */
  tls_undecrypted?: number; quic?: number; one_sided?: number; gaps?: number; truncated?: number; undecodable?: number; drops?: number; duplicates?: number;
}

export function coverageDays(store: HomeStore, sinceDay: string): CoverageDay[] {
  const rows = store.sql.prepare('SELECT sensor_id, day, counter, value FROM coverage_daily WHERE day >= ? ORDER BY sensor_id, day')
    .all(sinceDay) as Array<{ sensor_id: number; day: string; counter: string; value: number }>;
  const byKey = new Map<string, CoverageDay>();
  for (const r of rows) {
    const k = `${r.sensor_id}/${r.day}`;
    let d = byKey.get(k);
    if (d === undefined) byKey.set(k, d = { sensor_id: r.sensor_id, day: r.day, counters: {} });
    d.counters[r.counter] = r.value;
  }
  const share = (a: number, b: number): number | undefined => (b > 0 ? Math.min(1, a / b) : undefined);
  for (const d of byKey.values()) {
    const c = (n: string): number => d.counters[n] ?? 0;
    const bytes = c('decoder.bytes');
    d.tls_undecrypted = share(c('tls.undecrypted_bytes'), bytes);
    d.quic = share(c('quic.bytes_uninspectable'), bytes);
    d.gaps = share(c('tcp.reassembly_gap_bytes'), bytes);
    d.one_sided = share(c('flow.one_sided'), c('flow.tcp'));
    d.truncated = share(c('http.body_truncated') + c('http2.body_truncated'), c('http.responses'));
    d.undecodable = share(c('http.parser_invalid') + c('http.message_incomplete') + c('decompress.corrupt'), c('http.responses'));
    d.drops = share(c('capture.kernel_drops'), c('capture.kernel_packets') + c('capture.kernel_drops'));
    d.duplicates = share(c('decoder.duplicates'), c('decoder.pkts'));
  }
  return [...byKey.values()];
}

/** Advice for a day whose blind spots pass these shares. */
const ADVICE_THRESHOLD = 0.05;

export function coverageAdvice(d: CoverageDay): string[] {
  const out: string[] = [];
  const over = (v: number | undefined): boolean => v !== undefined && v >= ADVICE_THRESHOLD;
  if (over(d.tls_undecrypted)) out.push('Much HTTPS traffic could not be decrypted: deploy TLS keys (key log from the proxy or browsers, or the server RSA keys) to this sensor.');
  if (over(d.quic)) out.push('QUIC (HTTP/3) traffic cannot be read: block UDP 443 at the firewall so browsers fall back to TCP.');
  if (over(d.one_sided)) out.push('Many connections were seen in one direction only: the mirror port copies only one direction; mirror both rx and tx (or the uplink).');
  if (over(d.gaps)) out.push('Bytes were missing in TCP streams: the mirror port or the sensor is overloaded; check the SPAN port speed and oversubscription.');
  if (over(d.drops)) out.push('The capture interface dropped packets: give the sensor more CPU or a bigger capture buffer, or filter traffic it need not see.');
  if (over(d.duplicates)) out.push('The mirror sends duplicate copies of packets: mirror one point of the path only (not both a port and its VLAN).');
  if (over(d.truncated)) out.push('Page bodies were cut at the size limit: raise the body limit if the sensor has memory to spare.');
  if (over(d.undecodable)) out.push('Some web messages could not be decoded (broken or unknown encodings): check for a proxy rewriting traffic.');
  return out;
}

/**
 * Identity, printing: an `IdentitySnapshot` -> the text `hark identity <file>` shows.
 * Input: a snapshot. Output: one block per IP (its current MAC / host / user / domain with the source
 * and first-last seen of each, then the history of values that ended), then devices known by MAC only.
 * Times are UTC ISO-8601 to the second. Pure.
 */

import type { IdentityEntry, IdentityField, IdentitySnapshot, IdentityValue } from './table.js';

const ORDER: readonly IdentityField[] = ['mac', 'hostname', 'user', 'domain'];

function time(us: number): string {
  if (!Number.isFinite(us)) return us > 0 ? 'never' : '-';
  return new Date(Math.floor(us / 1000)).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function describe(v: IdentityValue): string {
  // a static map's entries hold for any time (fed at time 0): no observation times to print
  if (v.source === 'static' && v.firstUs === 0 && v.lastUs === 0) return `${v.value}  [static map]`;
  const ends = Math.min(v.expiresUs, v.endedUs);
  const why = v.endedUs <= v.expiresUs ? 'ended' : 'expires';
  return `${v.value}  [${v.source}; seen ${time(v.firstUs)} .. ${time(v.lastUs)}; ${why} ${time(ends)}]`;
}

function block(e: IdentityEntry, out: string[]): void {
  out.push(e.key);
  const fields = ORDER.filter((f) => e.current[f] !== undefined);
  if (fields.length === 0) out.push('  (nothing valid at this time)');
  for (const f of fields) out.push(`  ${f.padEnd(8)} ${describe(e.current[f] as IdentityValue)}`);
  const shown = new Set(fields.map((f) => e.current[f] as IdentityValue).map((v) => `${v.value}|${v.firstUs}`));
  const past = e.history.filter((h) => !shown.has(`${h.value}|${h.firstUs}`));
  for (const h of past) out.push(`  was ${h.field.padEnd(8)} ${describe(h)}`);
}

export function formatIdentitySnapshot(s: IdentitySnapshot): string {
  const out: string[] = [`identity at ${time(s.atUs)}: ${s.ips.length} address(es), ${s.macs.length} device(s) by MAC`];
  for (const e of s.ips) block(e, out);
  if (s.macs.length > 0) out.push('', 'devices by MAC:');
  for (const e of s.macs) block(e, out);
  return `${out.join('\n')}\n`;
}

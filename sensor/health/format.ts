/**
 * Human wording for the health reports: durations ("5 minutes", "3h 12m"), byte counts, memory
 * sizes and bit rates. Input: plain numbers. Output: short strings for messages and `hark status`; never throws
 * (a negative or non-finite input prints as "0 seconds" / "0 B").
 */

/** "42 seconds", "5 minutes", "2 hours 3 minutes", "3 days 4 hours": two units at most. */
export function formatDuration(ms: number): string {
  const s = Number.isFinite(ms) && ms > 0 ? Math.floor(ms / 1000) : 0;
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  if (s < 60) return plural(s, 'second');
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 === 0 || m >= 10 ? plural(m, 'minute') : `${plural(m, 'minute')} ${plural(s % 60, 'second')}`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 === 0 ? plural(h, 'hour') : `${plural(h, 'hour')} ${plural(m % 60, 'minute')}`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? plural(d, 'day') : `${plural(d, 'day')} ${plural(h % 24, 'hour')}`;
}

const BYTE_UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];

/** 1536 -> "1.5 KB" (powers of 1000, as link speeds and disk sizes are quoted). */
export function formatBytes(n: number): string {
  let v = Number.isFinite(n) && n > 0 ? n : 0;
  let u = 0;
  while (v >= 1000 && u < BYTE_UNITS.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${BYTE_UNITS[u]}`;
}

const MIB = 1024 * 1024;

/** 5_767_168 -> "5.5" (MiB, as ps and /proc give memory in powers of 1024): whole MiB from 10 up. */
export function formatMebibytes(n: number): string {
  const v = Number.isFinite(n) && n > 0 ? n / MIB : 0;
  return v >= 10 ? String(Math.round(v)) : v.toFixed(1);
}

const BIT_RATE_UNITS = ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s'];

/** 8_100_000 -> "8.1 Mbit/s". */
export function formatBitRate(bps: number): string {
  let v = Number.isFinite(bps) && bps > 0 ? bps : 0;
  let u = 0;
  while (v >= 1000 && u < BIT_RATE_UNITS.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${Math.round(v)} ${BIT_RATE_UNITS[0]}` : `${v.toFixed(1)} ${BIT_RATE_UNITS[u]}`;
}

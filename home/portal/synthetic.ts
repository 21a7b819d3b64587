/**
 * Synthetic captures for the list-query plan test and bench/portal.ts: `n` rows spread over 30 days,
 * 40 categories, 5,000 users, 2,000 hosts, inserted through HomeStore.ingestCaptures in batches.
 * Input: a store and a count. Output: rows in it (deterministic for a given n).
 */

import type { CaptureInsert, HomeStore } from '../store.js';

const BATCH = 5000;
export const SYNTH_START_US = 1_795_000_000_000_000;
const SPAN_US = 30 * 86_400_000_000;

export function fillSyntheticCaptures(store: HomeStore, sensorId: number, n: number): void {
  const words = ['secret', 'meet me', 'weapon', 'self harm', 'vape', 'bully', 'password', 'address', 'alone', 'gamble'];
  for (let start = 0; start < n; start += BATCH) {
    const rows: CaptureInsert[] = [];
    for (let i = start; i < Math.min(n, start + BATCH); i++) {
      const phrase = words[i % words.length];
      const user = `pupil${(i * 7919) % 5000}`;
      const host = `site${(i * 104729) % 2000}.example`;
      const event = JSON.stringify({ id: `syn-${i}`, phrase, device: { ip: `10.1.${(i >> 8) & 255}.${i & 255}`, user } });
      rows.push({
        id: `syn-${String(i).padStart(8, '0')}`, ts_us: SYNTH_START_US + Math.floor((i / n) * SPAN_US), severity: i % 6, category: `cat${i % 40}`,
        user, host, url: `/search?q=${phrase.replace(' ', '+')}&n=${i}`, phrase, event, source: i % 3 === 0 ? 'typed' : 'viewed',
        device_ip: `10.1.${(i >> 8) & 255}.${i & 255}`, device_name: `pc-${i % 3000}`, context: `... text before ${phrase} and after ${i % 97} ...`,
      });
    }
    store.ingestCaptures(sensorId, rows);
  }
}

/** The filter combinations whose plans are checked: each filter alone, several together, search, paging. */
export function planCases(): Array<[string, Record<string, unknown>]> {
  const day = 86_400_000_000;
  return [
    ['no filter (status open by default)', { status: 'open' }],
    ['no filter at all', {}],
    ['date range', { since_us: SYNTH_START_US + 3 * day, until_us: SYNTH_START_US + 4 * day }],
    ['severity exact', { severity: 5 }],
    ['min severity', { min_severity: 4 }],
    ['category', { category: 'cat7' }],
    ['sensor', { sensor_id: 1 }],
    ['site', { site: 'Hilltop School' }],
    ['user', { user: 'pupil42' }],
    ['device', { device: '10.1.3.4' }],
    ['host', { host: 'site9.example' }],
    ['typed', { source: 'typed' }],
    ['closed', { status: 'closed' }],
    ['full text', { text: 'secret' }],
    ['full text + user + dates', { text: 'meet', user: 'pupil42', since_us: SYNTH_START_US, until_us: SYNTH_START_US + 10 * day }],
    ['category + severity + page 2', { category: 'cat3', min_severity: 2, before: { ts_us: SYNTH_START_US + 15 * day, id: 'syn-5' } }],
  ];
}

/** True when a plan line reads the captures table from end to end (an index used for order is fine). */
export function isFullScan(detail: string): boolean {
  return /^SCAN captures\b(?! USING (COVERING )?INDEX)/.test(detail);
}

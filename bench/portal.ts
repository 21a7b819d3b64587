/**
 * Portal list query at scale: 1,000,000 synthetic captures in a fresh home database, then for each
 * filter combination of home/portal/synthetic.ts planCases() the EXPLAIN QUERY PLAN and the time of
 * one 50-row page. Prints figures; fails only when a plan scans the captures table (speed is
 * reported, never asserted).   node dist-NAME/bench/portal.js [--rows N]
 */

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PortalQueries } from '../home/portal/queries.js';
import { fillSyntheticCaptures, isFullScan, planCases } from '../home/portal/synthetic.js';
import { HomeStore } from '../home/store.js';
import { BenchCommandLine } from './command-line.js';

const cli: BenchCommandLine = new BenchCommandLine('bench/portal', 'Usage: node dist/bench/portal.js [--rows N]\n');
const { values } = cli.parse({ options: { rows: { type: 'string', default: '1000000' } } });
const rows = cli.wholeNumber('--rows', values.rows, 'captures', 1);
const dir = mkdtempSync(join(tmpdir(), 'hark-portal-bench-'));
try {
  const store = new HomeStore(join(dir, 'home.db'));
  store.putDictionary('starter', 'pack', '{}', 0);
  const id = store.addSensor({ name: 'Bench', site: 'Hilltop School' });
  let t0 = performance.now();
  fillSyntheticCaptures(store, id, rows);
  store.sql.exec('ANALYZE');
  console.log(`inserted ${rows} captures in ${((performance.now() - t0) / 1000).toFixed(1)} s; database ${(statSync(join(dir, 'home.db')).size / 1048576).toFixed(0)} MiB`);
  const q = new PortalQueries(store.sql);
  let bad = 0;
  for (const [name, f] of planCases()) {
    const plan = q.explainCaptureList(f);
    t0 = performance.now();
    const page = q.captureList(f);
    const ms = performance.now() - t0;
    const scan = plan.some(isFullScan);
    if (scan) bad++;
    console.log(`${scan ? 'FULL SCAN ' : ''}${name}: ${page.rows.length} rows in ${ms.toFixed(2)} ms\n    ${plan.join('\n    ')}`);
  }
  store.close();
  if (bad > 0) { console.error(`${bad} plan(s) scan the captures table`); process.exitCode = 1; }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

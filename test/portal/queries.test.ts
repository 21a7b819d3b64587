import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ftsQuery, PortalQueries } from '../../home/portal/queries.js';
import { fillSyntheticCaptures, isFullScan, planCases, SYNTH_START_US } from '../../home/portal/synthetic.js';
import { HomeStore } from '../../home/store.js';

let dir: string;
let store: HomeStore;
let q: PortalQueries;
const N = 20_000;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'hark-portal-q-'));
  store = new HomeStore(join(dir, 'home.db'));
  store.putDictionary('starter', 'pack', '{}', 0);
  const id = store.addSensor({ name: 'S', site: 'Hilltop School' });
  fillSyntheticCaptures(store, id, N);
  store.sql.exec('ANALYZE');
  q = new PortalQueries(store.sql);
});
after(() => { store.close(); rmSync(dir, { recursive: true, force: true }); });

test('PortalQueries.explainCaptureList: no filter combination scans the captures table', () => {
  for (const [name, f] of planCases()) {
    const plan = q.explainCaptureList(f);
    assert.ok(plan.length > 0);
    const scans = plan.filter(isFullScan);
    assert.deepEqual(scans, [], `${name}: ${plan.join(' | ')}`);
  }
});

test('isFullScan tells a table scan from an index-ordered one', () => {
  assert.equal(isFullScan('SCAN captures'), true);
  assert.equal(isFullScan('SCAN captures USING INDEX captures_ts'), false);
  assert.equal(isFullScan('SEARCH captures USING INDEX captures_user_ts (user=?)'), false);
});

test('PortalQueries.captureList filters, searches and pages newest first without repeats', () => {
  const all: string[] = [];
  let before: { ts_us: number; id: string } | undefined;
  for (;;) {
    const page = q.captureList({ user: 'pupil42', ...(before ? { before } : {}) }, 3);
    all.push(...page.rows.map((r) => r.id));
    for (const r of page.rows) assert.equal(r.user, 'pupil42');
    if (!page.more) break;
    const last = page.rows[page.rows.length - 1];
    before = { ts_us: last.ts_us, id: last.id };
  }
  const expected = (store.sql.prepare("SELECT id FROM captures WHERE user = 'pupil42' ORDER BY ts_us DESC, id DESC").all() as Array<{ id: string }>).map((r) => r.id);
  assert.ok(expected.length > 3);
  assert.deepEqual(all, expected);
  const found = q.captureList({ text: 'meet', source: 'typed' }, 1000).rows;
  assert.ok(found.length > 0);
  for (const r of found) { assert.equal(r.phrase, 'meet me'); assert.equal(r.source, 'typed'); }
  const ranged = q.captureList({ since_us: SYNTH_START_US, until_us: SYNTH_START_US + 86_400_000_000, severity: 5 }, 1000).rows;
  assert.ok(ranged.length > 0 && ranged.every((r) => r.severity === 5 && r.ts_us < SYNTH_START_US + 86_400_000_000));
});

test('ftsQuery quotes every word so search text cannot use FTS5 operators', () => {
  assert.equal(ftsQuery('our "secret" OR x*'), '"our" "secret" "OR" "x*"');
  assert.equal(ftsQuery('   '), undefined);
});

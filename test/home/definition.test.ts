/**
 * home/definition.ts: the `inspection` field of a sensor definition (merge window, body limit) is
 * checked with the bounds `--dedup-window` / `--body-limit` use, refused by name otherwise (400
 * E_FIELD), shown in the operator view and always carried in the bundle's `config` (`{}` unset).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { bundleBytes, sensorFields, sensorView } from '../../home/definition.js';
import { HttpError } from '../../home/http.js';
import { HomeStore } from '../../home/store.js';
import { MAX_BODY_LIMIT_BYTES, MAX_DEDUP_WINDOW_SECS } from '../../sensor/inspect/inspection-settings.js';
import { scratchDir } from '../helpers/scratch.js';

const anyDictionary = (): boolean => true;

test('sensorFields keeps the inspection settings within the command line\'s bounds, each or both', () => {
  for (const inspection of [
    {},
    { dedup_window_seconds: 0 },
    { dedup_window_seconds: MAX_DEDUP_WINDOW_SECS },
    { body_limit_bytes: 1 },
    { body_limit_bytes: MAX_BODY_LIMIT_BYTES },
    { dedup_window_seconds: 120, body_limit_bytes: 1048576 },
  ]) {
    assert.deepEqual(sensorFields({ inspection }, false, anyDictionary), { inspection: JSON.stringify(inspection) });
  }
  assert.deepEqual(sensorFields({ inspection: { dedup_window_seconds: undefined, body_limit_bytes: 16 } }, false, anyDictionary), { inspection: '{"body_limit_bytes":16}' },
    'a key given as undefined (the portal\'s empty box) is unset');
  assert.deepEqual(sensorFields({ name: 'n' }, false, anyDictionary), { name: 'n' }, 'a definition without it leaves it as it is');
});

test('sensorFields refuses each bad inspection setting with a 400 naming the field', () => {
  const cases: Array<[unknown, string]> = [
    ['fast', '"inspection" must be an object {dedup_window_seconds, body_limit_bytes}'],
    [null, '"inspection" must be an object {dedup_window_seconds, body_limit_bytes}'],
    [[60], '"inspection" must be an object {dedup_window_seconds, body_limit_bytes}'],
    [{ dedup_window_seconds: -1 }, `"inspection.dedup_window_seconds" must be a whole number of seconds from 0 to ${MAX_DEDUP_WINDOW_SECS}`],
    [{ dedup_window_seconds: MAX_DEDUP_WINDOW_SECS + 1 }, `"inspection.dedup_window_seconds" must be a whole number of seconds from 0 to ${MAX_DEDUP_WINDOW_SECS}`],
    [{ dedup_window_seconds: 1.5 }, `"inspection.dedup_window_seconds" must be a whole number of seconds from 0 to ${MAX_DEDUP_WINDOW_SECS}`],
    [{ dedup_window_seconds: '60' }, `"inspection.dedup_window_seconds" must be a whole number of seconds from 0 to ${MAX_DEDUP_WINDOW_SECS}`],
    [{ dedup_window_seconds: null }, `"inspection.dedup_window_seconds" must be a whole number of seconds from 0 to ${MAX_DEDUP_WINDOW_SECS}`],
    [{ body_limit_bytes: 0 }, `"inspection.body_limit_bytes" must be a whole number of bytes from 1 to ${MAX_BODY_LIMIT_BYTES}`],
    [{ body_limit_bytes: MAX_BODY_LIMIT_BYTES + 1 }, `"inspection.body_limit_bytes" must be a whole number of bytes from 1 to ${MAX_BODY_LIMIT_BYTES}`],
    [{ body_limit_bytes: 'lots' }, `"inspection.body_limit_bytes" must be a whole number of bytes from 1 to ${MAX_BODY_LIMIT_BYTES}`],
    [{ dedup_window_secs: 60 }, '"inspection.dedup_window_secs" is not an inspection setting (dedup_window_seconds, body_limit_bytes)'],
  ];
  for (const [inspection, message] of cases) {
    assert.throws(() => sensorFields({ inspection }, false, anyDictionary), (e: unknown) => e instanceof HttpError && e.status === 400 && e.code === 'E_FIELD' && e.message === message,
      JSON.stringify(inspection));
  }
});

test('bundleBytes always carries config.inspection ({} unset), sensorView shows it, and setting it bumps config_version', () => {
  const store = new HomeStore(join(scratchDir('hark-definition-'), 'home.db'));
  try {
    store.putDictionary('starter', 'csv', 'phrase,category,severity\nour secret,grooming,4\n', 1);
    const id = store.addSensor({ name: 'Main building', ...sensorFields({ name: 'Main building' }, true, anyDictionary) });
    const bundle = (): { version: number; config: Record<string, unknown> } => JSON.parse(bundleBytes(store.sensor(id)!, store.dictionary('starter')!, []).toString('utf8'));
    const before = bundle();
    assert.deepEqual(before.config.inspection, {});
    assert.deepEqual(sensorView(store.sensor(id)!).inspection, {});

    store.updateSensor(id, sensorFields({ inspection: { dedup_window_seconds: 0, body_limit_bytes: 16 } }, false, anyDictionary));
    const after = bundle();
    assert.deepEqual(after.config.inspection, { dedup_window_seconds: 0, body_limit_bytes: 16 });
    assert.ok(after.version > before.version, `${after.version} > ${before.version}`);
    assert.deepEqual(sensorView(store.sensor(id)!).inspection, { dedup_window_seconds: 0, body_limit_bytes: 16 });
  } finally {
    store.close();
  }
});

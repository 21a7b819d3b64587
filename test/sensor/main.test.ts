/**
 * sensor/main.ts loadMatching: which dictionary files it takes (CSV, JSON pack, compiled .hdict)
 * and the coded error each unusable one gives (the CLI prints any E_ error as one line, exit 2).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Counters } from '../../sensor/events/counters.js';
import { loadMatching, SensorConfigError } from '../../sensor/main.js';

const dir = mkdtempSync(join(tmpdir(), 'hark-main-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: Uint8Array | string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function configError(fn: () => unknown): SensorConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SensorConfigError, `expected SensorConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a SensorConfigError');
}

test('loadMatching refuses a compiled dictionary too short to be one with E_DICTIONARY_FORMAT, naming it', () => {
  const junk = file('junk.hdict', Buffer.from('8 bytes!'));
  const err = configError(() => loadMatching(junk, 'js', new Counters()));
  assert.equal(err.code, 'E_DICTIONARY_FORMAT');
  assert.equal(err.message, `Cannot load compiled dictionary "${junk}": 8 bytes is too short`);
});

test('loadMatching refuses a compiled dictionary with a bad magic with E_DICTIONARY_FORMAT, naming it', () => {
  const foreign = file('foreign.hdict', Buffer.alloc(64, 0x41));
  const err = configError(() => loadMatching(foreign, 'js', new Counters()));
  assert.equal(err.code, 'E_DICTIONARY_FORMAT');
  assert.equal(err.message, `Cannot load compiled dictionary "${foreign}": not a Hark compiled dictionary (bad magic)`);
});

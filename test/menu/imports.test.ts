/**
 * STYLE section 2: menu/ calls the control script and reads status files; it imports nothing from
 * sensor/. Scans every import specifier under menu/ and fails on one that reaches into sensor/.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const MENU = fileURLToPath(new URL('../../../menu/', import.meta.url));

test('menu/ imports nothing from sensor/', () => {
  const files = readdirSync(MENU, { recursive: true }).map(String).filter((f) => f.endsWith('.ts'));
  assert.ok(files.includes('main.ts'));
  const bad: string[] = [];
  for (const f of files) {
    for (const m of readFileSync(join(MENU, f), 'utf8').matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)) {
      if (/(^|\/)sensor\//.test(m[1])) bad.push(`${f}: ${m[1]}`);
    }
  }
  assert.deepEqual(bad, []);
});

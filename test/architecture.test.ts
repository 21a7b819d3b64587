/**
 * Dependencies point one way (STYLE section 2): capture <- decode <- flow <- app-layer, with
 * normalize and match as leaves, and only pipeline.ts / the CLI wiring the whole chain. This scans
 * every import specifier under sensor/ and rules/ and fails on a backward edge.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** For each area, the areas it must never import. */
const FORBIDDEN: Record<string, string[]> = {
  'sensor/events': ['sensor/inspect', 'sensor/store', 'sensor/main', 'sensor/capture', 'sensor/decode', 'sensor/flow', 'sensor/app-layer', 'sensor/normalize', 'sensor/match', 'sensor/output', 'sensor/cli', 'sensor/pipeline'],
  'sensor/capture': ['sensor/decode', 'sensor/flow', 'sensor/app-layer', 'sensor/normalize', 'sensor/match', 'sensor/output', 'sensor/cli', 'sensor/pipeline'],
  'sensor/decode': ['sensor/flow', 'sensor/app-layer', 'sensor/normalize', 'sensor/match', 'sensor/output', 'sensor/cli', 'sensor/pipeline'],
  'sensor/flow': ['sensor/app-layer', 'sensor/normalize', 'sensor/match', 'sensor/output', 'sensor/cli', 'sensor/pipeline'],
  'sensor/app-layer': ['sensor/capture', 'sensor/decode', 'sensor/match', 'sensor/output', 'sensor/cli', 'sensor/pipeline'],
  'sensor/normalize': ['sensor/capture', 'sensor/decode', 'sensor/flow', 'sensor/app-layer', 'sensor/match', 'sensor/output', 'sensor/cli', 'sensor/pipeline'],
  'sensor/match': ['sensor/capture', 'sensor/decode', 'sensor/flow', 'sensor/app-layer', 'sensor/output', 'sensor/cli', 'sensor/pipeline'],
  'sensor/inspect': ['sensor/capture', 'sensor/decode', 'sensor/output', 'sensor/store', 'sensor/cli', 'sensor/pipeline', 'sensor/main'],
  'sensor/store': ['sensor/capture', 'sensor/decode', 'sensor/flow', 'sensor/app-layer', 'sensor/normalize', 'sensor/match', 'sensor/inspect', 'sensor/cli', 'sensor/pipeline', 'sensor/main'],
  'sensor/output': ['sensor/cli', 'sensor/pipeline', 'sensor/main'],
  'sensor/net': ['sensor/events', 'sensor/capture', 'sensor/decode', 'sensor/flow', 'sensor/app-layer', 'sensor/normalize', 'sensor/match', 'sensor/inspect', 'sensor/identity', 'sensor/policy', 'sensor/store', 'sensor/output', 'sensor/api', 'sensor/cli', 'sensor/pipeline', 'sensor/main'],
  'sensor/policy': ['sensor/capture', 'sensor/decode', 'sensor/flow', 'sensor/app-layer', 'sensor/normalize', 'sensor/match', 'sensor/inspect', 'sensor/identity', 'sensor/store', 'sensor/output', 'sensor/api', 'sensor/cli', 'sensor/pipeline', 'sensor/main'],
  'sensor/identity': ['sensor/capture', 'sensor/decode', 'sensor/app-layer', 'sensor/normalize', 'sensor/match', 'sensor/inspect', 'sensor/store', 'sensor/output', 'sensor/api', 'sensor/cli', 'sensor/pipeline', 'sensor/main'],
  'sensor/api': ['sensor/capture', 'sensor/decode', 'sensor/flow', 'sensor/normalize', 'sensor/match', 'sensor/inspect', 'sensor/output', 'sensor/cli', 'sensor/pipeline', 'sensor/main'],
  rules: ['sensor/inspect', 'sensor/store', 'sensor/main', 'sensor/capture', 'sensor/decode', 'sensor/flow', 'sensor/app-layer', 'sensor/output', 'sensor/cli', 'sensor/pipeline'],
};

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) {
      if (e !== 'node_modules' && e !== 'build') out.push(...tsFiles(p));
    } else if (e.endsWith('.ts')) out.push(p);
  }
  return out;
}

function areaOf(relPath: string): string | undefined {
  return Object.keys(FORBIDDEN)
    .filter((a) => relPath === `${a}.ts` || relPath.startsWith(`${a}/`))
    .sort((a, b) => b.length - a.length)[0];
}

test('no module imports a stage downstream of it', () => {
  const violations: string[] = [];
  let edges = 0;
  for (const file of [...tsFiles(join(ROOT, 'sensor')), ...tsFiles(join(ROOT, 'rules'))]) {
    const rel = relative(ROOT, file);
    const area = areaOf(rel);
    if (area === undefined) continue;
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"](\.[^'"]+)['"]/gm)) {
      edges++;
      const target = relative(ROOT, resolve(dirname(file), m[1])).replace(/\.js$/, '');
      for (const bad of FORBIDDEN[area]) {
        if (target === bad || target.startsWith(`${bad}/`)) violations.push(`${rel} imports ${m[1]} (${area} must not depend on ${bad})`);
      }
    }
  }
  assert.ok(edges > 20, `scanned the imports (${edges})`);
  assert.deepEqual(violations, []);
});

/**
 * Shared by the Hyperscan addon's tests (hyperscan.test.ts, native-fuzz.test.ts): builds the addon
 * when it is missing or older than its sources (node-gyp; nothing is skipped), loads the engine,
 * and a small seeded PRNG so every random case reproduces.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { Counters } from '../../sensor/events/counters.js';
import { HYPERSCAN_ADDON_ENV, hyperscanAddonPath, hyperscanNativeDir, loadHyperscan, type HyperscanEngine } from '../../sensor/match/hyperscan.js';

/** npm's bundled node-gyp: from `npm run` (npm_config_node_gyp) or beside this node binary. */
function findNodeGyp(): string | undefined {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return fromNpm;
  const prefix = path.dirname(path.dirname(process.execPath));
  const bundled = path.join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
  return existsSync(bundled) ? bundled : undefined;
}

/**
 * Builds the addon when it is missing or older than binding.gyp / the .cc file. A build named by
 * HARK_HYPERSCAN_ADDON (the sanitizer run's) is its builder's business: only checked to exist.
 */
export function ensureAddonBuilt(): void {
  const dir = hyperscanNativeDir();
  const addon = hyperscanAddonPath();
  if (process.env[HYPERSCAN_ADDON_ENV]) {
    assert.ok(existsSync(addon), `${HYPERSCAN_ADDON_ENV} names ${addon}, which does not exist`);
    return;
  }
  const newestSource = Math.max(
    ...['binding.gyp', 'hark_hyperscan.cc', 'hark_fold.cc', 'hark_fold.h'].map((f) => statSync(path.join(dir, f)).mtimeMs),
  );
  if (existsSync(addon) && statSync(addon).mtimeMs >= newestSource) return;
  const gyp = findNodeGyp();
  if (!gyp) assert.fail(`Cannot build the Hyperscan addon: node-gyp not found (run: node-gyp rebuild -C ${dir})`);
  // Headers come from the installed node (nodedir=/usr on Debian): never download them.
  const nodedir = process.env.npm_config_nodedir ?? path.dirname(path.dirname(process.execPath));
  const args = [gyp, 'rebuild', '-C', dir, `--nodedir=${nodedir}`];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').slice(-30).join('\n');
    assert.fail(`Cannot build the Hyperscan addon: "node ${args.join(' ')}" exited ${r.status ?? r.signal}\n${out}`);
  }
}

export function engineFor(counters = new Counters()): HyperscanEngine {
  ensureAddonBuilt();
  const load = loadHyperscan(counters);
  if (!load.engine) assert.fail(`Hyperscan engine unavailable: ${load.reason}`);
  return load.engine;
}

/** sfc32-style small PRNG: deterministic across runs. */
export function rng(seed: number): () => number {
  let a = seed | 0, b = 0x9e3779b9, c = 0x243f6a88, d = 0xb7e15162;
  return () => {
    a |= 0; b |= 0; c |= 0; d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

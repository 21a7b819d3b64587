/**
 * Benchmark: memory and lookup rate of the domain policy (sensor/policy/domain-policy.ts) on realistic
 * synthetic blocklists: 100,000 and 1,000,000 distinct domains from a deterministic generator (words from
 * /usr/share/dict/words, or made-up syllables without it, with a weighted TLD mix), loaded through the
 * plain-domain loader as a feed would be. Memory is heap + external after a full GC, before and after
 * loading (target: at most 10 MiB per 100,000 entries). Prints figures; asserts nothing about speed.
 *
 *   node dist/bench/policy.js [entries ...]     (default 100000 1000000; one child process per size, --expose-gc)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { DomainPolicyBuilder, type DomainPolicy } from '../sensor/policy/domain-policy.js';
import { loadPlainDomains } from '../sensor/policy/blocklist.js';
import { BenchCommandLine } from './command-line.js';

export interface DomainPolicyBenchResult {
  entries: number;
  /** Heap + external growth per entry, after a full GC. */
  bytesPerEntry: number;
  mibPer100k: number;
  /** `match()` calls per second of CPU time (the process's own, so other load on the machine counts
   * less) over a mix of listed names, their subdomains and unlisted names. */
  lookupsPerSec: number;
  /** The same per second of wall-clock time. */
  lookupsPerWallSec: number;
  /** The policy's own typed arrays per entry (the lower bound of the above). */
  packedBytesPerEntry: number;
  /** Loading the feed text and building the policy. */
  loadMs: number;
}

/** Mulberry32: a small seeded PRNG, so every run lists the same domains. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** TLDs weighted roughly as they appear in public malware/phishing feeds. */
const TLDS: readonly [string, number][] = [
  ['com', 40], ['net', 8], ['org', 6], ['ru', 5], ['xyz', 4], ['top', 4], ['info', 4], ['de', 3], ['co.uk', 3], ['io', 3],
  ['cn', 3], ['online', 2], ['site', 2], ['club', 2], ['com.br', 2], ['in', 2], ['fr', 2], ['nl', 2], ['pl', 2], ['biz', 1],
  ['tk', 1], ['shop', 1], ['live', 1], ['app', 1], ['us', 1], ['cc', 1], ['me', 1], ['su', 1], ['icu', 1], ['vip', 1],
];
const SUBDOMAINS = ['www', 'cdn', 'api', 'mail', 'login', 'secure', 'static', 'm', 'app', 'track', 'ads', 'img'];

function loadWords(): string[] {
  try {
    const words = readFileSync('/usr/share/dict/words', 'latin1').split('\n').filter((w) => /^[a-z]{3,12}$/.test(w));
    if (words.length > 1000) return words;
  } catch {
    // fall through to syllables
  }
  const syl = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'ze', 'pha', 'tri', 'gen', 'bor', 'dax', 'qu', 'lin'];
  const out: string[] = [];
  for (const a of syl) for (const b of syl) for (const c of syl) out.push(a + b + c);
  return out;
}

/** `count` distinct domains from `seed`; `exclude` names are skipped (to make unlisted queries). */
export function syntheticDomains(count: number, seed: number, exclude?: ReadonlySet<string>): string[] {
  const words = loadWords();
  const rnd = prng(seed);
  const tldTotal = TLDS.reduce((s, [, w]) => s + w, 0);
  const pickTld = (): string => {
    let r = rnd() * tldTotal;
    for (const [t, w] of TLDS) if ((r -= w) < 0) return t;
    return 'com';
  };
  const word = (): string => words[Math.floor(rnd() * words.length)];
  const seen = new Set<string>();
  const out: string[] = [];
  while (out.length < count) {
    const shape = rnd();
    let base: string;
    if (shape < 0.35) base = word();
    else if (shape < 0.6) base = word() + word();
    else if (shape < 0.7) base = `${word()}-${word()}`;
    else if (shape < 0.8) base = word() + Math.floor(rnd() * 10000);
    else if (shape < 0.95) base = `${SUBDOMAINS[Math.floor(rnd() * SUBDOMAINS.length)]}.${word()}${rnd() < 0.5 ? word() : ''}`;
    else {
      base = '';
      const n = 8 + Math.floor(rnd() * 9);
      for (let i = 0; i < n; i++) base += 'abcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(rnd() * 36)];
    }
    const d = `${base}.${pickTld()}`;
    if (seen.has(d) || exclude?.has(d)) continue;
    seen.add(d);
    out.push(d);
  }
  return out;
}

function getGc(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g !== undefined) return g;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function usedBytes(gc: () => void): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** Builds a policy of `entries` synthetic domains and measures it (default 100,000). */
export function benchDomainPolicy(entries = 100_000): DomainPolicyBenchResult {
  const gc = getGc();
  const domains = syntheticDomains(entries, 1);
  const text = `# synthetic feed, ${entries} domains\n${domains.join('\n')}\n`;
  // Queries: a third listed names, a third subdomains of listed names, a third unlisted names.
  const listed = new Set(domains);
  const unlisted = syntheticDomains(Math.min(entries, 100_000), 2, listed);
  const queries: string[] = [];
  const qrnd = prng(3);
  for (let i = 0; i < 300_000; i++) {
    const d = domains[Math.floor(qrnd() * domains.length)];
    const k = i % 3;
    const q = k === 0 ? d : k === 1 ? `${SUBDOMAINS[i % SUBDOMAINS.length]}.x${i % 7}.${d}` : unlisted[i % unlisted.length];
    // Flat one-byte strings, as names arrive from the parsers (latin1 decodes), not concatenations.
    queries.push(Buffer.from(q, 'latin1').toString('latin1'));
  }
  // The expected match count, from a plain Set walked suffix by suffix (an unlisted name can still sit
  // under a listed one: `www.word.com` under `word.com`).
  let expected = 0;
  for (const q of queries) {
    for (let at = 0; at >= 0; at = q.indexOf('.', at) < 0 ? -1 : q.indexOf('.', at) + 1) {
      if (listed.has(q.slice(at))) {
        expected++;
        break;
      }
    }
  }
  listed.clear();

  let policy: DomainPolicy | undefined;
  const before = usedBytes(gc);
  const t0 = process.hrtime.bigint();
  const builder = new DomainPolicyBuilder();
  const report = loadPlainDomains(builder, text, { list: 'synthetic', category: 'malware', threatLevel: 4 });
  policy = builder.build();
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const after = usedBytes(gc);
  if (report.problemCount !== 0 || policy.size !== entries) {
    throw new Error(`synthetic feed loaded ${policy.size} of ${entries} domains with ${report.problemCount} problems: ${JSON.stringify(report.problems.slice(0, 3))}`);
  }

  // Warm up, then time whole passes over the query set.
  let hits = 0;
  for (const q of queries) if (policy.match(q) !== undefined) hits++;
  const passes = 10;
  hits = 0;
  const t1 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  for (let p = 0; p < passes; p++) for (let i = 0; i < queries.length; i++) if (policy.match(queries[i]) !== undefined) hits++;
  const cpu = process.cpuUsage(cpu0);
  const seconds = Number(process.hrtime.bigint() - t1) / 1e9;
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  if (hits !== passes * expected) throw new Error(`expected ${passes * expected} matches, got ${hits}`);

  const bytesPerEntry = (after - before) / entries;
  const result: DomainPolicyBenchResult = {
    entries,
    bytesPerEntry: Math.round(bytesPerEntry * 10) / 10,
    mibPer100k: Math.round(((bytesPerEntry * 100_000) / (1 << 20)) * 100) / 100,
    lookupsPerSec: Math.round((passes * queries.length) / cpuSeconds),
    lookupsPerWallSec: Math.round((passes * queries.length) / seconds),
    packedBytesPerEntry: Math.round((policy.memoryBytes / entries) * 10) / 10,
    loadMs: Math.round(loadMs),
  };
  policy = undefined;
  return result;
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const cli: BenchCommandLine = new BenchCommandLine('bench/policy', 'Usage: node dist/bench/policy.js [entries ...]     (default 100000 1000000; one child process per size)\n');
  const { positionals } = cli.parse({ allowPositionals: true });
  const sizes = positionals.map((p) => cli.wholeNumber('entries', p, 'domains', 1));
  if ((globalThis as { gc?: unknown }).gc === undefined || sizes.length !== 1) {
    // One process per size, with --expose-gc: each heap measurement starts from a clean heap.
    for (const n of sizes.length > 0 ? sizes : [100_000, 1_000_000]) {
      const r = spawnSync(process.execPath, ['--expose-gc', process.argv[1], String(n)], { stdio: 'inherit' });
      if (r.status !== 0) process.exit(r.status ?? 1);
    }
    process.exit(0);
  }
  const r = benchDomainPolicy(sizes[0]);
  console.log(
    `domain policy, ${r.entries.toLocaleString('en-GB')} entries: ${r.mibPer100k} MiB per 100,000 (${r.bytesPerEntry} B/entry; ` +
    `packed arrays ${r.packedBytesPerEntry} B/entry), load ${r.loadMs} ms, ${(r.lookupsPerSec / 1e6).toFixed(2)} M lookups per CPU second ` +
    `(${(r.lookupsPerWallSec / 1e6).toFixed(2)} M/s wall)`,
  );
}

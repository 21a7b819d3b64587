/**
 * Seeded differential fuzz of the Hyperscan addon (sensor/match/native): the native text fold loop
 * (hark_fold.cc) against the TypeScript normaliser (same skeleton, map, display text, state and
 * counters), and Hyperscan streams against a naive indexOf. Inputs aim at what native code gets
 * wrong: every chunk boundary, split and lone surrogates, words at and past MAX_TOKEN_CHARS,
 * spelled runs past MAX_SPELLED_LETTERS, leet runs, separator runs, full slices, empty and huge
 * inputs; empty chunks, reset, close and many streams at once.
 *
 * Size: a few seconds by default (part of `npm test`). HARK_FUZZ_SECONDS sets the time per campaign
 * and HARK_FUZZ_SEED the first seed; appliance/sanitize.sh runs it long against the
 * AddressSanitizer build. A failure names the seed of its case: HARK_FUZZ_SEED=<seed>
 * HARK_FUZZ_CASES=1 replays exactly that case.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counters } from '../../sensor/events/counters.js';
import { MAX_SPELLED_LETTERS, MAX_TOKEN_CHARS, SLICE_BYTES, TextNormalizer, type NativeFolder } from '../../sensor/normalize/text.js';
import type { MatchDatabase, MatchStream } from '../../sensor/match/hyperscan.js';
import { engineFor, rng } from './hyperscan-helpers.js';

const SECONDS = Number(process.env.HARK_FUZZ_SECONDS ?? '1');
const FIRST_SEED = Number(process.env.HARK_FUZZ_SEED ?? '1');
/** Most cases per campaign (time permitting); 1 replays the case of FIRST_SEED alone. */
const MAX_CASES = Number(process.env.HARK_FUZZ_CASES ?? 'Infinity');

/** Runs `one(seed)` for seeds FIRST_SEED, FIRST_SEED + 1, ... until the time is up; returns the count. */
function campaign(name: string, one: (seed: number) => void): number {
  const end = Date.now() + SECONDS * 1000;
  let cases = 0;
  for (let seed = FIRST_SEED; cases < MAX_CASES && (cases === 0 || Date.now() < end); seed++, cases++) {
    try {
      one(seed);
    } catch (err) {
      const e = err as Error;
      e.message = `${name}: case HARK_FUZZ_SEED=${seed} HARK_FUZZ_CASES=1 failed: ${e.message}`;
      throw e;
    }
  }
  return cases;
}

type Rand = { (): number; int(n: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean };

function rand(seed: number): Rand {
  const next = rng(seed) as Rand;
  next.int = (n) => Math.floor(next() * n);
  next.pick = (xs) => xs[next.int(xs.length)];
  next.chance = (p) => next() < p;
  return next;
}

// ---------- text generation ----------

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const LEET = '0134579$@!|8';
const SEPARATORS = [' ', ' ', '  ', '    ', '     ', '\t', '\n', '\r\n', '.', '-', ',', '_', '/', '"', '=', '*', '#', '\x00', '\x7f', '\x1f'];
const FOREIGN = ['é', 'ß', 'ü', '€', 'Ж', 'ＫＩＬＬ', '\u00a0', '\u200b', '\u00ad', '\u0301', '\u0308', '\ufe0f', '\ud83d\ude00',
  '\ud835\udc00', '\ud800', '\udc00', '\udbff', '\udfff', 'ǅ', 'ﬁ', 'İ', '\u1100\u1161', '\uff76\uff9e', 'א\u05b0', '\uffff', '\u0080', '\u00ff'];
const WORDS = ['kill', 'KILL', 'die', 'diiiie', 'k1ll', 'h@te', '$uicide', 'tiger5', 'ak47', 'AK-47', 'hello', 'bookkeeper', 'aa',
  'I', 'a', 'x', 's.u.i.c.i.d.e', 'k.i.l.l m.e', 'a b c d e', '!!!!!!!!!!!!', 'iiiiiiiiiii', '-=-=-=-=-=-=-=-=-=-='];

function letters(r: Rand, n: number): string {
  let s = '';
  const rep = r.chance(0.3);
  for (let k = 0; k < n; k++) s += rep && k > 0 && r.chance(0.5) ? s[k - 1] : LETTERS[r.int(LETTERS.length)];
  return s;
}

/** One item of text: a word near a limit, a spelled run, a leet run, a separator run, ... */
function item(r: Rand, ascii: boolean): string {
  switch (r.int(ascii ? 9 : 10)) {
    case 0: return r.pick(WORDS);
    case 1: return letters(r, 1 + r.int(16));
    case 2: {
      // around MAX_TOKEN_CHARS, and whole multiples of it
      const n = r.chance(0.5) ? MAX_TOKEN_CHARS - 3 + r.int(7) : MAX_TOKEN_CHARS * (1 + r.int(4)) - 2 + r.int(5);
      let w = letters(r, n);
      if (r.chance(0.4)) w = mutateUnits(r, w, LEET, 1 + r.int(4));
      return w;
    }
    case 3: {
      // a spelled run around MAX_SPELLED_LETTERS, sometimes with another gap inside
      const n = r.chance(0.6) ? MAX_SPELLED_LETTERS - 3 + r.int(8) : 2 + r.int(6);
      const gap = r.pick(['.', ' ', '  ', '    ', '     ', '-', '. ', ',']);
      let s = '';
      for (let k = 0; k < n; k++) s += (k > 0 ? (r.chance(0.05) ? r.pick(SEPARATORS) : gap) : '') + LETTERS[r.int(LETTERS.length)];
      return s;
    }
    case 4: {
      // leet and digit runs between letters, at a word's start and end
      let s = r.chance(0.3) ? '$' : '';
      for (let k = 1 + r.int(6); k > 0; k--) {
        s += r.chance(0.5) ? letters(r, 1 + r.int(3)) : '';
        for (let d = 1 + r.int(4); d > 0; d--) s += LEET[r.int(LEET.length)];
      }
      return s;
    }
    case 5: return r.pick(SEPARATORS).repeat(1 + r.int(r.chance(0.3) ? 40 : 4));
    case 6: return (r.chance(0.5) ? LETTERS[r.int(LETTERS.length)] : LEET[r.int(LEET.length)]).repeat(1 + r.int(20));
    case 7: return String(r.int(1e9)).slice(0, 1 + r.int(9)) + (r.chance(0.2) ? '0'.repeat(MAX_TOKEN_CHARS) : '');
    case 8: return r.pick(SEPARATORS);
    default: return r.pick(FOREIGN).repeat(1 + r.int(3));
  }
}

/** Replaces `count` units of `s` by units drawn from `pool`. */
function mutateUnits(r: Rand, s: string, pool: string, count: number): string {
  const u = s.split('');
  for (let k = 0; k < count && u.length !== 0; k++) u[r.int(u.length)] = pool[r.int(pool.length)];
  return u.join('');
}

/** Random edits: any UTF-16 unit inserted, units deleted, pieces duplicated or swapped in case. */
function mutate(r: Rand, s: string): string {
  for (let k = r.int(6); k > 0 && s.length !== 0; k--) {
    const at = r.int(s.length + 1);
    switch (r.int(5)) {
      case 0: s = s.slice(0, at) + String.fromCharCode(r.chance(0.7) ? r.int(0x80) : r.int(0x10000)) + s.slice(at); break;
      case 1: s = s.slice(0, at) + s.slice(at + 1 + r.int(8)); break;
      case 2: s = s.slice(0, at) + s.slice(at, at + 1 + r.int(100)).repeat(1 + r.int(4)) + s.slice(at); break;
      case 3: s = s.slice(0, at) + s.slice(at, at + 20).toUpperCase() + s.slice(at + 20); break;
      default: s = s.slice(0, at) + r.pick(['\ud800', '\udc00', '\ud83d', '\ude00']) + s.slice(at);
    }
  }
  return s;
}

/** A text of 0 to ~70,000 units: mostly ASCII (where the native loop runs), some not. */
function genText(r: Rand): string {
  const ascii = r.chance(0.7);
  const size = r.chance(0.1) ? r.int(6) : r.chance(0.08) ? 20_000 + r.int(50_000) : 40 + r.int(3000);
  let s = '';
  while (s.length < size) {
    s += item(r, ascii);
    if (r.chance(0.6)) s += r.chance(0.8) ? ' ' : r.pick(SEPARATORS);
  }
  if (ascii && r.chance(0.8)) s = s.replace(/[^\x00-\x7f]/g, ' ');
  if (r.chance(0.4)) s = mutate(r, s);
  return s;
}

// ---------- the fold comparison ----------

type Step = { write: string } | { ascii: Uint8Array } | { end: 'stretch' | 'finish' };

/** Cuts a text into write steps: random sizes, tiny pieces, or cuts inside surrogate pairs. */
function chunkText(r: Rand, s: string): Step[] {
  const steps: Step[] = [];
  const mode = r.int(4);
  for (let at = 0; at < s.length; ) {
    let len: number;
    if (mode === 0) len = 1 + r.int(8);
    else if (mode === 1) len = 1 + r.int(r.chance(0.5) ? 64 : 5000);
    else if (mode === 2) {
      // cut right after the next high surrogate, if any is near
      let k = at;
      while (k < s.length && k < at + 200 && !(s.charCodeAt(k) >= 0xd800 && s.charCodeAt(k) <= 0xdbff)) k++;
      len = k - at + 1;
    } else len = s.length - at;
    const piece = s.slice(at, at + len);
    at += len;
    pushWrite(r, steps, piece);
    if (r.chance(0.03)) steps.push({ end: r.chance(0.5) ? 'stretch' : 'finish' });
    if (r.chance(0.02)) steps.push({ write: '' });
  }
  return steps;
}

/** A write of `piece`: as bytes through writeAscii when every unit fits in one (Latin-1), sometimes. */
function pushWrite(r: Rand, steps: Step[], piece: string): void {
  if (/^[\x00-\xff]*$/.test(piece) && r.chance(0.3)) steps.push({ ascii: new Uint8Array(Buffer.from(piece, 'latin1')) });
  else steps.push({ write: piece });
}

interface Trace {
  slices: string[];
  states: string[];
  counters: Record<string, number>;
}

/**
 * Runs the steps through a normaliser and records every slice (offsets, bytes, map, the display
 * text behind it), the state after every step and the counters. The normaliser is disposed at the
 * end, so the next one reuses its arena.
 */
function trace(steps: readonly Step[], folder: NativeFolder | undefined, batch: boolean, startPos = 0): Trace {
  const counters = new Counters();
  const slices: string[] = [];
  const n: TextNormalizer = new TextNormalizer((bytes, map, len) => {
    const from = Math.max(n.displayOldest, n.displayPos - 300);
    slices.push(`${n.sliceStart}:${n.displayPos}:${Buffer.from(bytes.subarray(0, len)).toString('latin1')}|${map.subarray(0, len).join(',')}|${n.displayText(from, n.displayPos)}`);
  }, counters, { folder, batch });
  // a long-lived stream: display positions past the map's 2^28 wrap (the context starts here)
  n.displayPos = n.displayFloor = startPos;
  const states: string[] = [];
  for (const step of steps) {
    if ('write' in step) n.write(step.write);
    else if ('ascii' in step) n.writeAscii(step.ascii);
    else {
      if (step.end === 'stretch') n.finishStretch();
      else n.finish();
      n.restart();
    }
    states.push(`${n.displayPos}:${n.skeletonPos}:${n.displayFloor}:${n.displayText(n.displayOldest, n.displayPos)}`);
  }
  n.finish();
  states.push(`${n.displayPos}:${n.skeletonPos}:${n.displayFloor}:${n.displayText(n.displayOldest, n.displayPos)}`);
  n.dispose();
  return { slices, states, counters: counters.snapshot() };
}

/**
 * The native folder as the normaliser sees it, but each call handed a copy of exactly the text
 * (t[0, n)): under AddressSanitizer a read past the text then lands in a redzone, where in the
 * normaliser's large work buffer it would read stale units unnoticed.
 */
function exactFolder(native: NativeFolder): NativeFolder {
  return {
    configureFold: (params, kind, leet) => native.configureFold(params, kind, leet),
    foldRun: (arena, t, from, n, final) => (nativeCalls++, native.foldRun(arena, t.slice(0, n), from, n, final)),
  };
}
/** foldRun calls made through exactFolder: proof that the native loop ran. */
let nativeCalls = 0;

function assertSameFold(steps: readonly Step[], folder: NativeFolder, batch: boolean, what: string, startPos = 0): void {
  const want = trace(steps, undefined, batch, startPos);
  const got = trace(steps, folder, batch, startPos);
  // compare piecewise first: a whole-trace deepEqual of a 70k-unit text prints an unreadable diff
  assert.deepEqual(got.counters, want.counters, `${what}: counters`);
  assert.equal(got.slices.length, want.slices.length, `${what}: slice count`);
  for (let k = 0; k < want.slices.length; k++) assert.equal(got.slices[k], want.slices[k], `${what}: slice ${k}`);
  for (let k = 0; k < want.states.length; k++) assert.equal(got.states[k], want.states[k], `${what}: state after step ${k}`);
}

const describeSteps = (steps: readonly Step[]): string =>
  JSON.stringify(steps.map((s) => ('write' in s ? s.write : 'ascii' in s ? { ascii: Buffer.from(s.ascii).toString('latin1') } : s)).slice(0, 40)).slice(0, 2000);

test('TextNormalizer with the native folder folds random and mutated texts exactly as without it', (t) => {
  const native = engineFor().textFolder;
  assert.ok(native !== undefined, 'the addon carries the fold loop');
  const exact = exactFolder(native);
  let units = 0;
  const cases = campaign('fold', (seed) => {
    const r = rand(seed);
    const text = genText(r);
    units += text.length;
    const steps = chunkText(r, text);
    // sometimes just before a multiple of 2^28 (map positions wrap) or of 2^31 / 2^32
    const startPos = r.chance(0.8) ? 0 : r.pick([2 ** 28, 2 ** 29, 2 ** 31, 2 ** 32, 2 ** 40]) - r.int(5000);
    assertSameFold(steps, r.chance(0.5) ? exact : native, r.chance(0.3), `text ${describeSteps(steps)} from ${startPos}`, startPos);
  });
  t.diagnostic(`${cases} cases, ${units} units, ${nativeCalls} native calls`);
  assert.ok(cases > 0 && units > 0 && nativeCalls > 0);
});

test('TextNormalizer with the native folder gives the same output for a text cut at every boundary', (t) => {
  const native = exactFolder(engineFor().textFolder!);
  const cases = campaign('fold-every-cut', (seed) => {
    const r = rand(seed);
    let text = '';
    // long enough for the native loop (it takes 32 units or more), short enough to cut everywhere
    while (text.length < 40 + r.int(120)) text += item(r, r.chance(0.8)) + (r.chance(0.6) ? ' ' : '');
    if (r.chance(0.3)) text = mutate(r, text);
    const batch = r.chance(0.3);
    for (let k = 0; k <= text.length; k++) {
      const steps: Step[] = [];
      pushWrite(r, steps, text.slice(0, k));
      pushWrite(r, steps, text.slice(k));
      assertSameFold(steps, native, batch, `cut at ${k} of ${JSON.stringify(text)}`);
    }
  });
  t.diagnostic(`${cases} texts`);
  assert.ok(cases > 0);
});

test('TextNormalizer with the native folder agrees when a slice fills in the middle of a word', () => {
  // Text that brings the slice to SLICE_BYTES - d bytes, then a word, spelled run or leet run
  // that crosses the limit, for every d near the limit.
  const native = exactFolder(engineFor().textFolder!);
  const random = rand(99);
  for (let d = -2; d < 64; d++) {
    const fill = 'ab '.repeat(Math.floor((SLICE_BYTES - 1 - d) / 3)) + 'a'.repeat((SLICE_BYTES - 1 - d) % 3);
    for (const tail of [letters(random, MAX_TOKEN_CHARS + 5), 'k.i.l.l.m.e.n.o.w.p.l.e.a.s.e', 'h3ll0 w0rld 1337 $uicide', '9'.repeat(60)]) {
      assertSameFold([{ write: ` ${fill} ${tail} end` }], native, false, `fill ${d} then ${tail}`);
    }
  }
});

// ---------- Hyperscan streams ----------

const key = (id: number, end: number): number => end * 1_000_000 + id;

/** Every occurrence of every pattern in `bytes`, ends offset by `base`, as sorted keys. */
function naive(patterns: readonly Uint8Array[], bytes: Buffer, base: number): number[] {
  const out: number[] = [];
  patterns.forEach((p, id) => {
    for (let i = bytes.indexOf(p); i >= 0; i = bytes.indexOf(p, i + 1)) out.push(key(id, base + i + p.length));
  });
  return out;
}

interface StreamModel {
  stream: MatchStream;
  /** Bytes since open or the last reset. */
  bytes: number[];
  found: number[];
  want: number[];
  closed: boolean;
}

test('HyperscanStream finds what indexOf finds under random chunking, resets, closes and many streams', (t) => {
  const engine = engineFor();
  const cases = campaign('stream', (seed) => {
    const r = rand(seed);
    const alphabet = r.chance(0.5) ? 'ab' : r.chance(0.5) ? 'abc \0\xff' : 'abcdefghij';
    const patterns: Uint8Array[] = [];
    for (let k = 1 + r.int(r.chance(0.2) ? 300 : 12); k > 0; k--) {
      let p = '';
      for (let m = 1 + r.int(r.chance(0.1) ? 40 : 5); m > 0; m--) p += alphabet[r.int(alphabet.length)];
      patterns.push(new Uint8Array(Buffer.from(p, 'latin1')));
    }
    let db: MatchDatabase = engine.compileLiterals(patterns, { portable: r.chance(0.3) });
    if (r.chance(0.2)) db = engine.deserialize(db.serialize());
    const streams: StreamModel[] = [];
    for (let k = 1 + r.int(r.chance(0.2) ? 64 : 3); k > 0; k--) streams.push({ stream: db.openStream(), bytes: [], found: [], want: [], closed: false });
    const settle = (s: StreamModel): void => {
      for (const m of naive(patterns, Buffer.from(s.bytes), 0)) s.want.push(m);
      s.bytes = [];
    };
    for (let op = r.int(200); op > 0; op--) {
      const s = r.pick(streams);
      if (s.closed) {
        if (r.chance(0.3)) assert.equal(s.stream.close().length, 0);
        else assert.throws(() => (r.chance(0.5) ? s.stream.scan(new Uint8Array(1)) : s.stream.reset()), { code: 'ERR_STREAM_CLOSED' });
        continue;
      }
      const what = r.int(100);
      if (what < 85) {
        // a chunk of exactly its length (its own allocation: a read past it is caught under ASan)
        const len = r.chance(0.15) ? 0 : r.int(r.chance(0.05) ? 20_000 : 64);
        const chunk = new Uint8Array(len);
        for (let k = 0; k < len; k++) chunk[k] = alphabet.charCodeAt(r.int(alphabet.length));
        const before = s.bytes.length;
        const pairs = s.stream.scan(chunk);
        for (let k = 0; k < pairs.length; k += 2) {
          assert.ok(pairs[k + 1] > before && pairs[k + 1] <= before + len, 'a match is reported by the call that ends it');
          s.found.push(key(pairs[k], pairs[k + 1]));
        }
        for (const b of chunk) s.bytes.push(b);
      } else if (what < 93) {
        settle(s);
        // ids in found are relative to the stream since the reset: record a separator
        s.found.push(-1);
        s.want.push(-1);
        assert.equal(s.stream.reset().length, 0);
      } else {
        settle(s);
        assert.equal(s.stream.close().length, 0);
        s.closed = true;
      }
    }
    for (const s of streams) {
      if (!s.closed) {
        settle(s);
        assert.equal(s.stream.close().length, 0);
      }
      const bySegment = (xs: number[]): string => xs.join(',').split('-1').map((g) => g.split(',').filter(Boolean).map(Number).sort((a, b) => a - b).join(',')).join('|');
      assert.equal(bySegment(s.found), bySegment(s.want), `patterns ${JSON.stringify(patterns.map((p) => Buffer.from(p).toString('latin1')))}`);
    }
  });
  t.diagnostic(`${cases} cases`);
  assert.ok(cases > 0);
});

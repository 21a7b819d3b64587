/**
 * Tests for sensor/match/hyperscan.ts: the native Hyperscan engine against a naive indexOf
 * reference over whole streams cut into random chunks, plus serialization, errors, limits, GC and
 * worker threads; and the addon's native text fold loop (hark_fold.cc) against the TypeScript
 * normaliser on random texts. Builds the addon first when it is missing or older than its sources
 * (node-gyp), and fails with the build output when that is impossible: nothing is skipped.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Worker } from 'node:worker_threads';
import { Counters, counterId } from '../../sensor/events/counters.js';
import { TextNormalizer, type NativeFolder, type NormalizerOptions } from '../../sensor/normalize/text.js';
import {
  MatchCompileError,
  MAX_MATCHES_PER_SCAN,
  NO_MATCHES,
  type MatchStream,
} from '../../sensor/match/hyperscan.js';
import { engineFor, rng } from './hyperscan-helpers.js';

const enc = new TextEncoder();

/** Sortable key of one match. */
const key = (id: number, end: number): number => end * 1_000_000 + id;

/** Every occurrence (overlapping included) of every pattern in the whole stream, as sorted keys. */
function naiveMatches(patterns: readonly Uint8Array[], stream: Buffer): number[] {
  const out: number[] = [];
  patterns.forEach((p, id) => {
    for (let i = stream.indexOf(p); i >= 0; i = stream.indexOf(p, i + 1)) out.push(key(id, i + p.length));
  });
  return out.sort((x, y) => x - y);
}

/**
 * Feeds `chunks` through one stream; returns the sorted match keys and checks that every match is
 * reported by the call that delivers its last byte.
 */
function scanChunks(stream: MatchStream, chunks: readonly Uint8Array[]): number[] {
  const out: number[] = [];
  let pos = 0;
  for (const chunk of chunks) {
    const pairs = stream.scan(chunk);
    assert.equal(pairs.length % 2, 0);
    for (let i = 0; i < pairs.length; i += 2) {
      const end = pairs[i + 1];
      const inCall = end > pos && end <= pos + chunk.length;
      assert.ok(inCall, `match end ${end} outside the call's bytes (${pos}, ${pos + chunk.length}]`);
      out.push(key(pairs[i], end));
    }
    pos += chunk.length;
  }
  const tail = stream.close();
  assert.equal(tail.length, 0, 'literal patterns have no end-of-stream matches');
  return out.sort((x, y) => x - y);
}

/** Cuts `bytes` into chunks of 0..maxLen bytes (zero-length chunks included). */
function randomChunks(bytes: Uint8Array, next: () => number, maxLen: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let pos = 0; pos < bytes.length; ) {
    const n = Math.min(bytes.length - pos, Math.floor(next() * (maxLen + 1)));
    chunks.push(bytes.subarray(pos, pos + n));
    pos += n;
  }
  return chunks;
}

/** Phrases that nest, overlap themselves, share prefixes and suffixes, and span UTF-8 sequences. */
const OVERLAPPING = ['kill', 'kill myself', ' kill ', 'myself', 'll m', 'aa', 'a', 'café', 'é', '日本', '日本語', 'ü', '\0x'];
/** Text pieces that build those phrases often, and near misses ("caf" + "e"). */
const TOKENS = ['kill', ' ', 'my', 'self', 'myself', 'i', 'want', 'to', 'a', 'aa', 'caf', 'é', 'e', '日本', '語', 'ü', '\0', 'x'];

test('HyperscanStream.scan finds what a naive indexOf finds, on random text cut into random chunks', () => {
  const engine = engineFor();
  const patterns = OVERLAPPING.map((s) => enc.encode(s));
  const db = engine.compileLiterals(patterns);
  for (let seed = 1; seed <= 30; seed++) {
    const next = rng(seed);
    const text = Array.from({ length: 400 }, () => TOKENS[Math.floor(next() * TOKENS.length)]).join('');
    const bytes = Buffer.from(text, 'utf8');
    const want = naiveMatches(patterns, bytes);
    assert.ok(want.length > 50, 'the workload must actually match');
    const got = scanChunks(db.openStream(), randomChunks(bytes, next, seed % 2 ? 7 : 300));
    assert.deepEqual(got, want, `seed ${seed}`);
  }
});

test('HyperscanStream.scan matches multi-byte UTF-8 phrases split at every byte boundary', () => {
  const engine = engineFor();
  const patterns = OVERLAPPING.map((s) => enc.encode(s));
  const db = engine.compileLiterals(patterns);
  const bytes = Buffer.from('un café, 日本語 ü: i kill myself aaa', 'utf8');
  const want = naiveMatches(patterns, bytes);
  for (let cut = 0; cut <= bytes.length; cut++) {
    assert.deepEqual(scanChunks(db.openStream(), [bytes.subarray(0, cut), bytes.subarray(cut)]), want, `cut at ${cut}`);
  }
  // One byte per call.
  const single = Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
  assert.deepEqual(scanChunks(db.openStream(), single), want);
});

test('HyperscanStream.scan reports overlapping occurrences and nested phrases with exclusive end offsets', () => {
  const engine = engineFor();
  const db = engine.compileLiterals(['kill', 'kill myself', ' kill ', 'aa'].map((s) => enc.encode(s)));
  const s = db.openStream();
  assert.deepEqual([...s.scan(enc.encode('i kil'))], []);
  const pairs = s.scan(enc.encode('l myself aaa'));
  const got = [];
  for (let i = 0; i < pairs.length; i += 2) got.push(key(pairs[i], pairs[i + 1]));
  // "i kill myself aaa": kill ends at 6, " kill " at 7, "kill myself" at 13, "aa" at 16 and 17.
  assert.deepEqual(got.sort((x, y) => x - y), [key(0, 6), key(2, 7), key(1, 13), key(3, 16), key(3, 17)]);
});

test('HyperscanStream.scan of empty input finds nothing and keeps the stream state', () => {
  const engine = engineFor();
  const db = engine.compileLiterals([enc.encode('kill')]);
  const s = db.openStream();
  assert.equal(s.scan(new Uint8Array(0)), NO_MATCHES);
  assert.equal(s.scan(enc.encode('ki')).length, 0);
  assert.equal(s.scan(new Uint8Array(0)).length, 0);
  assert.deepEqual([...s.scan(Buffer.from('ll'))], [0, 4]);
  assert.equal(s.close().length, 0);
});

test('HyperscanStream.reset forgets history and restarts offsets at 0', () => {
  const engine = engineFor();
  const db = engine.compileLiterals([enc.encode('kill')]);
  const s = db.openStream();
  s.scan(enc.encode('xxxxx ki'));
  assert.equal(s.reset().length, 0);
  assert.deepEqual([...s.scan(enc.encode('ll kill'))], [0, 7], 'no match across the reset; offsets count from it');
});

test('HyperscanStream.close is idempotent and a closed stream refuses to scan or reset', () => {
  const engine = engineFor();
  const s = engine.compileLiterals([enc.encode('kill')]).openStream();
  assert.deepEqual([...s.scan(enc.encode('kill'))], [0, 4]);
  assert.equal(s.close().length, 0);
  assert.equal(s.close(), NO_MATCHES);
  assert.throws(() => s.scan(enc.encode('kill')), { code: 'ERR_STREAM_CLOSED' });
  assert.throws(() => s.reset(), { code: 'ERR_STREAM_CLOSED' });
});

test('HyperscanStream.scan refuses anything but a Uint8Array', () => {
  const engine = engineFor();
  const s = engine.compileLiterals([enc.encode('kill')]).openStream();
  assert.throws(() => s.scan('kill' as unknown as Uint8Array), TypeError);
  assert.throws(() => s.scan(new Uint16Array(4) as unknown as Uint8Array), TypeError);
  s.close();
});

test('HyperscanDatabase.serialize and HyperscanEngine.deserialize round-trip the database', () => {
  const engine = engineFor();
  const patterns = OVERLAPPING.map((s) => enc.encode(s));
  for (const portable of [false, true]) {
    const db = engine.compileLiterals(patterns, { portable });
    const bytes = db.serialize();
    assert.ok(bytes instanceof Uint8Array && bytes.length > 0);
    const copy = engine.deserialize(bytes);
    assert.equal(copy.size, db.size);
    assert.equal(copy.streamStateSize, db.streamStateSize);
    assert.match(copy.info, /Mode: STREAM/);
    if (portable) assert.doesNotMatch(copy.info, /AVX/);
    assert.deepEqual(copy.serialize(), bytes);
    const text = Buffer.from('i kill myself at the café 日本語 aaa', 'utf8');
    const next = rng(7);
    assert.deepEqual(scanChunks(copy.openStream(), randomChunks(text, next, 5)), naiveMatches(patterns, text));
  }
});

test('HyperscanEngine.deserialize rejects bytes that are not a database, with Hyperscan\'s code', () => {
  const engine = engineFor();
  assert.throws(() => engine.deserialize(new Uint8Array(64)), {
    code: 'HS_INVALID',
    message: /Cannot load Hyperscan database \(64 bytes\)/,
  });
  const bytes = engine.compileLiterals([enc.encode('kill')]).serialize();
  assert.throws(() => engine.deserialize(bytes.subarray(0, bytes.length - 1)), /Cannot load Hyperscan database/);
});

test('HyperscanEngine.compileLiterals reports Hyperscan\'s error with the pattern index', () => {
  const engine = engineFor();
  const tooLong = new Uint8Array(16_001).fill(0x61); // Hyperscan's limit is 16,000 bytes a pattern
  assert.throws(
    () => engine.compileLiterals([enc.encode('kill'), tooLong]),
    (err: unknown) => {
      assert.ok(err instanceof MatchCompileError);
      assert.equal(err.code, 'HS_COMPILER_ERROR');
      assert.equal(err.patternIndex, 1);
      assert.match(err.message, /pattern 1 \("a{60}\.\.\.", 16001 bytes\): Pattern length exceeds limit/);
      return true;
    },
  );
  assert.throws(() => engine.compileLiterals([enc.encode('a'), new Uint8Array(0)]), {
    patternIndex: 1,
    message: /Pattern is empty/,
  });
  assert.throws(() => engine.compileLiterals([]), { patternIndex: -1, message: /Pattern list is empty/ });
  assert.throws(() => engine.compileLiterals(['kill' as unknown as Uint8Array]), TypeError);
  // A leading NUL byte is a legal literal (the lengths are passed apart from the bytes).
  const nul = engine.compileLiterals([Uint8Array.of(0, 0x61)]).openStream();
  assert.deepEqual([...nul.scan(Uint8Array.of(0x62, 0, 0x61))], [0, 3]);
});

test('HyperscanEngine.compileLiterals handles 10,000 phrases like the naive reference', () => {
  const engine = engineFor();
  const next = rng(42);
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const word = (): string => Array.from({ length: 3 + Math.floor(next() * 6) }, () => letters[Math.floor(next() * 26)]).join('');
  const phrases = new Set<string>();
  while (phrases.size < 10_000) phrases.add(next() < 0.5 ? word() : `${word()} ${word()}`);
  const list = [...phrases];
  const patterns = list.map((p) => enc.encode(p));
  const db = engine.compileLiterals(patterns);
  assert.ok(db.size > 0);
  const parts: string[] = [];
  for (let i = 0; i < 6000; i++) parts.push(next() < 0.1 ? list[Math.floor(next() * list.length)] : word());
  const bytes = Buffer.from(parts.join(' '), 'utf8');
  const want = naiveMatches(patterns, bytes);
  assert.ok(want.length > 600);
  assert.deepEqual(scanChunks(db.openStream(), randomChunks(bytes, next, 2000)), want);
});

test('HyperscanStream.scan keeps the first MAX_MATCHES_PER_SCAN matches of a call and counts the rest', () => {
  const counters = new Counters();
  const engine = engineFor(counters);
  const s = engine.compileLiterals([enc.encode('a')]).openStream();
  const extra = 1000;
  const pairs = s.scan(new Uint8Array(MAX_MATCHES_PER_SCAN + extra).fill(0x61));
  assert.equal(pairs.length, 2 * MAX_MATCHES_PER_SCAN);
  assert.deepEqual([...pairs.subarray(-2)], [0, MAX_MATCHES_PER_SCAN]);
  const id = counterId('match.hyperscan.matches_dropped');
  assert.ok(id !== undefined);
  assert.equal(counters.get(id), extra);
  assert.deepEqual([...s.scan(enc.encode('a'))], [0, MAX_MATCHES_PER_SCAN + extra + 1], 'the stream goes on');
  s.close();
});

test('HyperscanStream and HyperscanDatabase dropped without close are freed by their GC finalizers', async () => {
  const engine = engineFor();
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
  };
  await settle();
  const [dbs0, streams0] = engine.liveCounts();
  // A stream outlives its database's JS handle: the native side keeps the database for it.
  const survivor = (() => {
    const db = engine.compileLiterals([enc.encode('kill')]);
    for (let i = 0; i < 20_000; i++) db.openStream().scan(enc.encode('kil'));
    const [dbs, streams] = engine.liveCounts();
    assert.ok(dbs >= dbs0 + 1 && streams >= streams0 + 20_000, 'the objects exist before GC');
    const s = db.openStream();
    s.scan(enc.encode('ki'));
    return s;
  })();
  await settle();
  // Other tests' garbage may go too, hence <=; a leak would leave 20,000 streams behind.
  const [dbs1, streams1] = engine.liveCounts();
  assert.ok(dbs1 <= dbs0 + 1 && streams1 <= streams0 + 1, `live after GC: ${dbs1} databases, ${streams1} streams`);
  assert.deepEqual([...survivor.scan(enc.encode('ll'))], [0, 4]);
  survivor.close();
  // close() released the last hold on the database (the stream's handle lives on until GC).
  const [dbs2] = engine.liveCounts();
  assert.ok(dbs2 <= dbs0, `live after close: ${dbs2} databases`);
});

test('loadHyperscan works in a worker thread with its own scratch, from serialized bytes', async () => {
  const engine = engineFor();
  const patterns = OVERLAPPING.map((s) => enc.encode(s));
  const serialized = engine.compileLiterals(patterns).serialize();
  const text = Buffer.from('a worker says: i kill myself, café 日本語 aaaa', 'utf8');
  const moduleUrl = new URL('../../sensor/match/hyperscan.js', import.meta.url).href;
  const countersUrl = new URL('../../sensor/events/counters.js', import.meta.url).href;
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    (async () => {
      const { loadHyperscan } = await import(${JSON.stringify(moduleUrl)});
      const { Counters } = await import(${JSON.stringify(countersUrl)});
      const { engine, reason } = loadHyperscan(new Counters());
      if (!engine) throw new Error(reason);
      const s = engine.deserialize(workerData.serialized).openStream();
      const out = [];
      for (let i = 0; i < workerData.text.length; i += 3) out.push(...s.scan(workerData.text.subarray(i, i + 3)));
      s.close();
      parentPort.postMessage(out);
    })();`;
  const got = await new Promise<number[]>((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: { serialized, text } });
    let result: number[] | undefined;
    w.on('message', (m: number[]) => (result = m));
    w.on('error', reject);
    w.on('exit', (codeOut) => (codeOut === 0 && result ? resolve(result) : reject(new Error(`worker exited ${codeOut}`))));
  });
  const keys: number[] = [];
  for (let i = 0; i < got.length; i += 2) keys.push(key(got[i], got[i + 1]));
  assert.deepEqual(keys.sort((x, y) => x - y), naiveMatches(patterns, text));
  assert.ok(keys.length > 5);
});

// ---------- the native text fold loop ----------

/** Pieces of text that exercise every folding rule, ASCII and not. */
const FOLD_ATOMS = [
  'a', 'b', 'k', 'i', 'l', 'e', 's', 'A', 'K', 'L', 'I', 'kill', 'KILL', 'die', 'diiiie', 'hello', 'world', 'ss', 'x', 'y',
  'q', '1', '0', '3', '4', '5', '7', '9', '42', '$', '@', '!', '|', ' ', '  ', '    ', '\t', '\n', '.', '-', ',', ';', '/',
  '"', '=', 'k1ll', '$uicide', 'h@te', 's.u.i.c.i.d.e', 'a b c d e', 'k.i.l.l m.e', 'a.b', 'AK-47', 'ak47', 'tiger5',
  '-=-=-=-=-=-=-=-=-=-=', '!!!!!!!!!!!!', 'iiiiiiiiiii', 'a'.repeat(58), 'abcdefghijklmnopqrstuvwxyz'.repeat(2),
  '0123456789'.repeat(6), 'é', 'ß', 'ü', '€', '\u00a0', '\u200b', '\u0301', 'Ж', 'убить', '\ud83d\ude00', 'ＫＩＬＬ',
];

interface FoldRun {
  slices: string[];
  states: string[];
  counters: number[];
}

/** Feeds `chunks` to a normaliser; op 1 after a chunk = finishStretch + restart, op 2 = finish + restart. */
function foldRun(chunks: string[], ops: number[], options: NormalizerOptions): FoldRun {
  const counters = new Counters();
  const slices: string[] = [];
  const n: TextNormalizer = new TextNormalizer((bytes, map, len) => {
    slices.push(`${n.sliceStart}:${n.displayPos}:${Buffer.from(bytes.subarray(0, len)).toString('latin1')}|${map.subarray(0, len).join(',')}`);
  }, counters, options);
  const states: string[] = [];
  const state = (): void => {
    states.push(`${n.displayPos}:${n.skeletonPos}:${n.displayFloor}:${n.displayText(n.displayOldest, n.displayPos)}`);
  };
  chunks.forEach((c, k) => {
    n.write(c);
    if (ops[k] === 1) n.finishStretch();
    else if (ops[k] === 2) n.finish();
    if (ops[k] !== 0) {
      state();
      n.restart();
    } else if (options.batch !== true) state();
  });
  n.finish();
  state();
  const names = ['long_token_cut', 'spelled_run_cut', 'display_trimmed', 'combining_run_cut', 'carry_overflow'];
  return { slices, states, counters: names.map((c) => counters.get(`normalize.text.${c}`)) };
}

test('HyperscanEngine.textFolder folds random texts exactly as the TypeScript normaliser', () => {
  const native = engineFor().textFolder;
  assert.ok(native !== undefined, 'the addon carries the fold loop');
  let calls = 0;
  const counted: NativeFolder = {
    configureFold: (params, kind, leet) => native.configureFold(params, kind, leet),
    foldRun: (arena, t, from, n, final) => (calls++, native.foldRun(arena, t, from, n, final)),
  };
  const random = rng(7);
  const pick = (n: number): number => Math.floor(random() * n);
  for (let iter = 0; iter < 400; iter++) {
    const ascii = random() < 0.6;
    let text = '';
    for (let k = 1 + pick(ascii ? 300 : 100); k > 0; k--) text += FOLD_ATOMS[pick(FOLD_ATOMS.length)] + (random() < 0.5 ? ' ' : '');
    if (ascii) text = text.replace(/[^\x00-\x7f]/g, ' ');
    const chunks: string[] = [];
    for (let at = 0; at < text.length; ) {
      const len = 1 + pick(random() < 0.3 ? 5 : 200);
      chunks.push(text.slice(at, at + len));
      at += len;
    }
    const ops = chunks.map(() => (random() < 0.1 ? 1 + pick(2) : 0));
    const batch = random() < 0.5;
    assert.deepEqual(foldRun(chunks, ops, { folder: counted, batch }), foldRun(chunks, ops, { batch }), `text ${JSON.stringify(text)}`);
  }
  assert.ok(calls > 1000, `the native loop ran (${calls} calls)`);
});

test('HyperscanEngine.textFolder folds long prose exactly as the TypeScript normaliser, across slices and display-ring wraps', () => {
  // Prose is where the native loop's word-and-space fast path runs: words of 2-15 letters, most
  // followed by one space, some by other separators; long enough to fill many slices and wrap the ring.
  const native = engineFor().textFolder!;
  const random = rng(11);
  const pick = (n: number): number => Math.floor(random() * n);
  // and doubled letters anywhere in a word (one pair, several, the whole word), which the fast path
  // takes too, beside runs of three, which it leaves to the scalar loop
  const words = ['the', 'of', 'and', 'hello', 'world', 'letter', 'book', 'Kill', 'DIE', 'a', 'I', 'supercalifragilistic', 'encyclopaedia', 'ab', 'xyzzy', 'moon',
    'bookkeeper', 'Committee', 'llama', 'mess', 'AAron', 'aa', 'zZ', 'abbcddeffghhijj', 'abbcddeffghhijjk', 'ballloon', 'oops'];
  const seps = [' ', ' ', ' ', ' ', '  ', '\t', '\n', ', ', '. ', ' - ', '!!! '];
  for (let iter = 0; iter < 6; iter++) {
    let text = '';
    while (text.length < 150_000) text += words[pick(words.length)] + seps[pick(seps.length)];
    const chunks: string[] = [];
    for (let at = 0; at < text.length; ) {
      const len = 1 + pick(iter % 2 === 0 ? 20_000 : 700);
      chunks.push(text.slice(at, at + len));
      at += len;
    }
    const ops = chunks.map(() => (random() < 0.05 ? 1 + pick(2) : 0));
    const batch = iter >= 3;
    assert.deepEqual(foldRun(chunks, ops, { folder: native, batch }), foldRun(chunks, ops, { batch }), `prose ${iter}`);
  }
});

test('HyperscanEngine.textFolder refuses parameters it was not built for', () => {
  const native = engineFor().textFolder!;
  const params = new Int32Array(20).fill(0);
  params[0] = 999; // layout version
  assert.equal(native.configureFold(params, new Uint8Array(128), new Int32Array(128)), false);
  // the normaliser still folds (the refusal was for another parameter set; its own is accepted)
  const out: number[] = [];
  const n = new TextNormalizer((b, _m, len) => out.push(...b.subarray(0, len)), undefined, { folder: native });
  n.write('Hello WORLD, k1ll');
  n.finish();
  assert.equal(Buffer.from(out).toString(), ' helo world kil ');
});

test('HyperscanEngine.textFolder refuses a second, different configuration and keeps folding with the first', () => {
  // The fold tables are one per process, read by every thread's foldRun: a second parameter set
  // (here a shorter MAX_TOKEN_CHARS) used to replace them, and every normaliser already using the
  // native loop then cut words at 40 characters where the TypeScript loop cuts at 48.
  const native = engineFor().textFolder!;
  let seen: [Int32Array, Uint8Array, Int32Array] | undefined;
  const spy: NativeFolder = {
    configureFold: (params, kind, leet) => ((seen = [params.slice(), kind.slice(), leet.slice()]), native.configureFold(params, kind, leet)),
    foldRun: (arena, t, from, n, final) => native.foldRun(arena, t, from, n, final),
  };
  new TextNormalizer(() => {}, undefined, { folder: spy }).dispose();
  assert.ok(seen !== undefined, 'the normaliser configured the folder');
  const [params, kind, leet] = seen;
  assert.equal(native.configureFold(params, kind, leet), true, 'the same set again is accepted');
  const other = params.slice();
  other[1] = 40; // MAX_TOKEN_CHARS
  assert.equal(native.configureFold(other, kind, leet), false);
  const word = `${'abcdefghij'.repeat(5)} ${'k1ll'.repeat(13)} `.repeat(3);
  assert.deepEqual(foldRun([word], [0], { folder: native }), foldRun([word], [0], {}));
});

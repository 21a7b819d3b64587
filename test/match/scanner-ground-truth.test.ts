/**
 * Ground truth for sensor/match/scanner.ts: generates a small benchmark workload (the shared
 * gen-workload.mjs, 300 flows, seed 3: about 1.5 s; needs /usr/share/dict/words from wamerican),
 * compiles its 10,000 phrases as whole-word phrases and scans every decoded HTTP message in
 * 1,460-byte pieces. The number of matches must equal the generator's planted total exactly, and
 * match for match a plain word-by-word reference count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counters } from '../../sensor/events/counters.js';
import { compileDictionary } from '../../sensor/match/matcher.js';
import { PhraseScanner } from '../../sensor/match/scanner.js';
import { decodedMessages, generateWorkload, plantedTotal, workloadPhrase, workloadPhrases } from '../../bench/workload.js';

/** Occurrences of each phrase as consecutive words (runs of a-z) of each message, lower-cased. */
function referenceCounts(phrases: string[], msgs: Buffer[]): Map<string, number> {
  const byFirst = new Map<string, string[][]>();
  for (const p of phrases) {
    const words = p.split(' ');
    byFirst.set(words[0], [...(byFirst.get(words[0]) ?? []), words]);
  }
  const counts = new Map<string, number>();
  for (const m of msgs) {
    const words = m.toString('latin1').toLowerCase().match(/[a-z]+/g) ?? [];
    for (let i = 0; i < words.length; i++) {
      for (const p of byFirst.get(words[i]) ?? []) {
        if (p.every((w, k) => words[i + k] === w)) counts.set(p.join(' '), (counts.get(p.join(' ')) ?? 0) + 1);
      }
    }
  }
  return counts;
}

test('PhraseScanner finds exactly the planted phrases of a generated workload', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hark-match-truth-'));
  try {
    generateWorkload(dir, { flows: 300, concurrency: 50, seed: 3 }, true);
    const planted = plantedTotal(dir);
    const phrases = workloadPhrases(dir);
    assert.equal(phrases.length, 10_000);
    const m = compileDictionary({
      name: 'workload',
      phrases: phrases.map(workloadPhrase),
    });
    assert.equal(m.skipped.length, 0);

    const msgs = decodedMessages(readFileSync(join(dir, 'decoded.bin')));
    const counters = new Counters();
    const found = new Map<string, number>();
    for (const msg of msgs) {
      const s = new PhraseScanner(m, (h) => found.set(h.phrase.phrase, (found.get(h.phrase.phrase) ?? 0) + 1), { counters });
      for (let o = 0; o < msg.length; o += 1460) s.writeUtf8(msg.subarray(o, Math.min(msg.length, o + 1460)));
      s.end();
    }
    let total = 0;
    for (const n of found.values()) total += n;
    assert.equal(total, planted);
    assert.equal(counters.get('match.hits'), planted);
    assert.deepEqual(new Map([...found].sort()), new Map([...referenceCounts(phrases, msgs)].sort()));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

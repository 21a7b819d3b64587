/**
 * Test helpers for the normalize extractors: run an extractor over bytes cut into chunks, collect
 * its segments and counters, and check that every two-chunk cut (and a byte-by-byte feed) gives
 * exactly what one chunk gives.
 */

import assert from 'node:assert/strict';
import { Counters } from '../../sensor/events/counters.js';
import { SegmentCollector, type Extractor, type TextSink } from '../../sensor/normalize/sink.js';

export type MakeExtractor = (sink: TextSink, counters: Counters) => Extractor;

export interface RunResult {
  segments: string[];
  counters: Record<string, number>;
}

export function bytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'utf8'));
}

export function latin1Bytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

/** Feeds `chunks` in order (each copied into a scratch buffer that is then scribbled over). */
export function runChunks(make: MakeExtractor, chunks: Uint8Array[]): RunResult {
  const counters = new Counters();
  const sink = new SegmentCollector();
  const x = make(sink, counters);
  for (const chunk of chunks) {
    // Extractors must not keep views of a chunk: hand them a buffer we overwrite afterwards.
    const scratch = new Uint8Array(chunk.length);
    scratch.set(chunk);
    x.write(scratch);
    scratch.fill(0x5a);
  }
  x.end();
  return { segments: sink.segments, counters: counters.snapshot() };
}

export function run(make: MakeExtractor, input: Uint8Array | string): RunResult {
  return runChunks(make, [typeof input === 'string' ? bytes(input) : input]);
}

/** Segments only, for the common assertion. */
export function segmentsOf(make: MakeExtractor, input: Uint8Array | string): string[] {
  return run(make, input).segments;
}

/**
 * Asserts that cutting `input` into two chunks at every offset, and into single bytes, gives the
 * same segments and counters as one chunk. Returns the one-chunk result.
 */
export function assertSplitInvariant(make: MakeExtractor, input: Uint8Array | string): RunResult {
  const b = typeof input === 'string' ? bytes(input) : input;
  const whole = runChunks(make, [b]);
  for (let k = 0; k <= b.length; k++) {
    const split = runChunks(make, [b.subarray(0, k), b.subarray(k)]);
    assert.deepEqual(split, whole, `split at byte ${k} of ${b.length}`);
  }
  const single: Uint8Array[] = [];
  for (let k = 0; k < b.length; k++) single.push(b.subarray(k, k + 1));
  assert.deepEqual(runChunks(make, single), whole, 'byte by byte');
  return whole;
}

/**
 * Heap bytes an object graph keeps alive, for tests that bound what long-lived state retains (a
 * slice of a packet's text keeping the whole text). Turns on `gc` for this process the way the
 * Hyperscan finalizer test does; every test file runs in its own process.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

let gc: (() => void) | undefined;

function collect(): void {
  if (gc === undefined) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  for (let i = 0; i < 3; i++) gc();
}

/** Heap growth, in bytes, while what `build` returns is held (everything else it made is garbage). */
export function retainedBytes(build: () => unknown): { bytes: number; held: unknown } {
  collect();
  const before = process.memoryUsage().heapUsed;
  const held = build();
  collect();
  return { bytes: process.memoryUsage().heapUsed - before, held };
}

/** A fresh flat one-byte string of `length` units, different from every other call's (its first units
 * count calls), as a packet's header block would be. */
let made = 0;
export function uniqueSource(length: number, fill = 'x'): string {
  const head = `${(made++).toString(36).padStart(8, '0')}:`;
  // flat, as text decoded from a packet is (`repeat` builds a rope of shared halves)
  return Buffer.from(head + fill.repeat(length - head.length), 'latin1').toString('latin1');
}

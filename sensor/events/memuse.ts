/**
 * The flow memcap's view of inspection state. Input: what protocol parsers, decoders and phrase
 * scanners take for the flows and messages in progress (a text arena, a decompressor's window, a
 * partial frame). Output: the `app_layer.memuse` gauge in the pipeline's counters, which the flow
 * table adds to its own estimate. Guarantee: every holder gives back exactly what it charged when
 * it lets go, so once every flow has ended the gauge is 0, and a flow whose messages hold megabytes
 * is evicted like any other when the memcap is reached, instead of growing the process unseen.
 */
import { defineCounter, type Counters } from './counters.js';

/** Bytes of inspection state held for flows in progress (a gauge: exported as `hark_app_layer_memuse`). */
export const C_APP_MEMUSE = defineCounter('app_layer.memuse');

/** Adds `bytes` (negative to give back) to the pipeline's inspection memory. */
export function chargeMemory(counters: Counters, bytes: number): void {
  counters.values[C_APP_MEMUSE] += bytes;
}

/** Inspection memory held now, in bytes. */
export function memoryInUse(counters: Counters): number {
  return counters.values[C_APP_MEMUSE];
}

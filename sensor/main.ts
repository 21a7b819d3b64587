/**
 * Composition root: configuration -> stages -> outputs. Builds the phrase matcher (Hyperscan when
 * the native addon loads, else the pure-TypeScript DFA), the HTTP app layer with its content
 * inspector, the capture collector and the outputs, and hands them to the pipeline. No logic of
 * its own beyond choosing and wiring.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadDictionary } from '../rules/check.js';
import type { Dictionary } from '../rules/dictionary.js';
import { probeHttp } from './app-layer/http/index.js';
import { HttpSession } from './app-layer/http/session.js';
import { AppLayerFactory } from './app-layer/detect.js';
import type { CaptureEvent } from './events/capture.js';
import { Counters } from './events/counters.js';
import { CaptureCollector, DEFAULT_DEDUP_WINDOW_US } from './inspect/captures.js';
import type { FlowInfo } from './flow/stream.js';
import { HttpInspector } from './inspect/http-inspector.js';
import type { MatchDatabase } from './match/engine.js';
import { loadHyperscan } from './match/hyperscan.js';
import { compileDictionary, loadMatcher, matcherPatterns, type CompiledMatcher } from './match/matcher.js';
import { Pipeline } from './pipeline.js';

/** The starter dictionary shipped in rules/, used when no other is configured. */
export const DEFAULT_DICTIONARY = fileURLToPath(new URL('../../rules/starter.json', import.meta.url));
/** File name ending of a compiled dictionary (`hark dictionary compile`). */
export const COMPILED_DICTIONARY_EXT = '.hdict';

export type EngineChoice = 'auto' | 'hyperscan' | 'js';

export interface SensorOptions {
  /** A dictionary file (CSV, JSON pack, compiled .hdict) or a Dictionary already in memory. */
  readonly dictionary?: string | Dictionary;
  readonly engine?: EngineChoice;
  readonly dedupWindowUs?: number;
  readonly bodyLimitBytes?: number;
  readonly onCapture: (capture: CaptureEvent) => void;
  readonly counters?: Counters;
  /** Drop mirror-port duplicate copies of packets (default true). */
  readonly dropDuplicates?: boolean;
}

export class SensorConfigError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface Matching {
  readonly matcher: CompiledMatcher;
  readonly database?: MatchDatabase;
  /** `hyperscan` or `js`, and why not Hyperscan when it was not used. */
  readonly engine: string;
  readonly note?: string;
}

function loadMatcherFrom(source: string | Dictionary): CompiledMatcher {
  if (typeof source !== 'string') return compileDictionary(source);
  if (!existsSync(source)) throw new SensorConfigError('E_DICTIONARY_READ', `Cannot read dictionary "${source}": no such file`);
  return source.endsWith(COMPILED_DICTIONARY_EXT) ? loadMatcher(readFileSync(source)) : compileDictionary(loadDictionary(source));
}

/** Loads a dictionary (source .csv/.json, a compiled .hdict, or in memory) and the engine that will run it. */
export function loadMatching(source: string | Dictionary, engine: EngineChoice, counters: Counters): Matching {
  const matcher = loadMatcherFrom(source);
  if (engine === 'js') return { matcher, engine: 'js' };
  const hs = loadHyperscan(counters);
  if (hs.engine === undefined) {
    if (engine === 'hyperscan') throw new SensorConfigError('E_ENGINE', `Cannot use the Hyperscan engine: ${hs.reason}`);
    return { matcher, engine: 'js', note: hs.reason };
  }
  return { matcher, database: hs.engine.compileLiterals(matcherPatterns(matcher)), engine: 'hyperscan' };
}

export class Sensor {
  readonly counters: Counters;
  readonly pipeline: Pipeline;
  readonly collector: CaptureCollector;
  readonly matching: Matching;

  constructor(opts: SensorOptions) {
    this.counters = opts.counters ?? new Counters();
    const counters = this.counters;
    this.matching = loadMatching(opts.dictionary ?? DEFAULT_DICTIONARY, opts.engine ?? 'auto', counters);
    this.collector = new CaptureCollector(opts.onCapture, counters, opts.dedupWindowUs ?? DEFAULT_DEDUP_WINDOW_US);
    const ctx = { matcher: this.matching.matcher, database: this.matching.database, counters, collector: this.collector };
    const http = {
      name: 'http',
      probe: probeHttp,
      create: (flow: FlowInfo) => new HttpSession(flow, new HttpInspector(flow, ctx), counters, { bodyLimitBytes: opts.bodyLimitBytes }),
    };
    this.pipeline = new Pipeline({ counters, streams: new AppLayerFactory([http], counters), dropDuplicates: opts.dropDuplicates });
  }

  /** End of input: every flow ends, every held capture is emitted. */
  finish(): void {
    this.pipeline.finish();
    this.collector.flush();
  }
}

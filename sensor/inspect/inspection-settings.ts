/**
 * The two inspection settings an operator chooses: the merge window of repeated captures
 * (captures.ts) and the decoded body bytes inspected per message (normalize/decompress.ts). One
 * definition of their bounds for every place that accepts them: `--dedup-window` / `--body-limit`
 * (cli/inspect-options.ts), home's sensor definition (home/definition.ts) and the bundle check
 * (home-client/config.ts), so a value one accepts the others do too. Also which value is in force.
 */
import { DEFAULT_DEDUP_WINDOW_US } from './captures.js';
import { DEFAULT_DECODED_LIMIT_BYTES, MAX_DECODED_BYTES } from '../normalize/decompress.js';

/**
 * The longest merge window: a capture's final count is written when its window closes, so a longer
 * one would hold it back for more than a day (and open windows are held in memory meanwhile).
 */
export const MAX_DEDUP_WINDOW_SECS = 86_400;
/** 0: every repeat is a capture of its own. */
export const MIN_DEDUP_WINDOW_SECS = 0;
export const DEFAULT_DEDUP_WINDOW_SECS = DEFAULT_DEDUP_WINDOW_US / 1e6;
/** At least one byte: a limit of 0 would inspect no body at all (HTTP sessions would take it). */
export const MIN_BODY_LIMIT_BYTES = 1;
/** The decompression-bomb guard of the decoder chain: a larger setting would be cut to it anyway. */
export const MAX_BODY_LIMIT_BYTES = MAX_DECODED_BYTES;
export const DEFAULT_BODY_LIMIT_BYTES = DEFAULT_DECODED_LIMIT_BYTES;

/** The settings as home's definition and bundle carry them (`inspection`); a missing one is the sensor's default. */
export interface InspectionConfig {
  readonly dedup_window_seconds?: number;
  readonly body_limit_bytes?: number;
}

/**
 * Checks an `inspection` object as home's definition and the bundle carry it, naming the field in
 * `fail(field, why)` (`where` is the object's own name: "inspection", "config.inspection"). A key
 * that is no setting is refused with `unknownKeys` 'refuse' (an operator's typo at home) and left
 * out with 'ignore' (a sensor reading a newer home's bundle).
 */
export function checkInspection(v: unknown, where: string, unknownKeys: 'refuse' | 'ignore', fail: (field: string, why: string) => Error): InspectionConfig {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw fail(where, 'must be an object {dedup_window_seconds, body_limit_bytes}');
  const o = v as Record<string, unknown>;
  if (unknownKeys === 'refuse') {
    for (const k of Object.keys(o)) {
      if (k !== 'dedup_window_seconds' && k !== 'body_limit_bytes') throw fail(`${where}.${k.slice(0, 64)}`, 'is not an inspection setting (dedup_window_seconds, body_limit_bytes)');
    }
  }
  const whole = (key: keyof InspectionConfig, min: number, max: number, unit: string): { [k: string]: number } => {
    const x = o[key];
    if (x === undefined) return {};
    if (!Number.isInteger(x) || (x as number) < min || (x as number) > max) throw fail(`${where}.${key}`, `must be a whole number of ${unit} from ${min} to ${max}`);
    return { [key]: x as number };
  };
  return {
    ...whole('dedup_window_seconds', MIN_DEDUP_WINDOW_SECS, MAX_DEDUP_WINDOW_SECS, 'seconds'),
    ...whole('body_limit_bytes', MIN_BODY_LIMIT_BYTES, MAX_BODY_LIMIT_BYTES, 'bytes'),
  };
}

/** The settings as the Sensor takes them; undefined: not given (the Sensor's default). */
export interface InspectionLimits {
  readonly dedupWindowUs?: number;
  readonly bodyLimitBytes?: number;
}

/** Where a setting in force came from. */
export type InspectionOrigin = 'command line' | 'home' | 'default';

/** The settings in force, each with where it came from (status file, log). */
export interface InspectionInForce {
  readonly dedupWindowUs: number;
  readonly bodyLimitBytes: number;
  readonly dedupWindowFrom: InspectionOrigin;
  readonly bodyLimitFrom: InspectionOrigin;
}

/** A command-line option wins, then home's bundle, then the default. */
export function inspectionInForce(commandLine: InspectionLimits, fromHome: InspectionConfig | undefined): InspectionInForce {
  const homeWindow = fromHome?.dedup_window_seconds;
  const homeBody = fromHome?.body_limit_bytes;
  return {
    dedupWindowUs: commandLine.dedupWindowUs ?? (homeWindow !== undefined ? homeWindow * 1e6 : DEFAULT_DEDUP_WINDOW_US),
    dedupWindowFrom: commandLine.dedupWindowUs !== undefined ? 'command line' : homeWindow !== undefined ? 'home' : 'default',
    bodyLimitBytes: commandLine.bodyLimitBytes ?? homeBody ?? DEFAULT_BODY_LIMIT_BYTES,
    bodyLimitFrom: commandLine.bodyLimitBytes !== undefined ? 'command line' : homeBody !== undefined ? 'home' : 'default',
  };
}

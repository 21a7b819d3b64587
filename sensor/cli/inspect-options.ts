/**
 * The inspection options `hark run` and `hark scan` share: the window within which repeats of a
 * phrase by a device on a URL merge into one capture (inspect/captures.ts), and how many decoded
 * body bytes of a message are inspected (the rest is counted in http.body_truncated). Checked the
 * same way for both commands, so a value one accepts the other does too.
 */
import {
  DEFAULT_BODY_LIMIT_BYTES, DEFAULT_DEDUP_WINDOW_SECS, MAX_BODY_LIMIT_BYTES, MAX_DEDUP_WINDOW_SECS, MIN_BODY_LIMIT_BYTES, MIN_DEDUP_WINDOW_SECS, type InspectionLimits,
} from '../inspect/inspection-settings.js';
import { CliError } from './command.js';

export const INSPECT_OPTIONS = {
  'dedup-window': { type: 'string' },
  'body-limit': { type: 'string' },
} as const;

export const INSPECT_USAGE = `  --dedup-window SECS    merge repeats of a phrase by a device on a URL within this window
                         (default ${DEFAULT_DEDUP_WINDOW_SECS}, ${MIN_DEDUP_WINDOW_SECS} to ${MAX_DEDUP_WINDOW_SECS}; 0: no merging)
  --body-limit BYTES     decoded body bytes inspected per message (default ${DEFAULT_BODY_LIMIT_BYTES}, at most ${MAX_BODY_LIMIT_BYTES})`;

/** --dedup-window and --body-limit as the Sensor takes them; undefined for an option not given (the Sensor's default). */
export function inspectLimitsFrom(v: { 'dedup-window'?: string; 'body-limit'?: string }): InspectionLimits {
  const out: { dedupWindowUs?: number; bodyLimitBytes?: number } = {};
  if (v['dedup-window'] !== undefined) {
    const text = v['dedup-window'].trim();
    const secs = text === '' ? NaN : Number(text);
    if (!(secs >= MIN_DEDUP_WINDOW_SECS && secs <= MAX_DEDUP_WINDOW_SECS)) {
      throw new CliError(`--dedup-window must be a number of seconds from ${MIN_DEDUP_WINDOW_SECS} to ${MAX_DEDUP_WINDOW_SECS}, not "${v['dedup-window']}"`);
    }
    out.dedupWindowUs = secs * 1e6;
  }
  if (v['body-limit'] !== undefined) {
    const bytes = Number(v['body-limit']);
    if (!(Number.isInteger(bytes) && bytes >= MIN_BODY_LIMIT_BYTES && bytes <= MAX_BODY_LIMIT_BYTES)) {
      throw new CliError(`--body-limit must be a whole number of bytes from ${MIN_BODY_LIMIT_BYTES} to ${MAX_BODY_LIMIT_BYTES}, not "${v['body-limit']}"`);
    }
    out.bodyLimitBytes = bytes;
  }
  return out;
}

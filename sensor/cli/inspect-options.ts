/**
 * The inspection options `hark run` and `hark scan` share: the window within which repeats of a
 * phrase by a device on a URL merge into one capture (inspect/captures.ts), and how many decoded
 * body bytes of a message are inspected (the rest is counted in http.body_truncated). Checked the
 * same way for both commands, so a value one accepts the other does too.
 */
import { DEFAULT_DEDUP_WINDOW_US } from '../inspect/captures.js';
import { DEFAULT_DECODED_LIMIT_BYTES, MAX_DECODED_BYTES } from '../normalize/decompress.js';
import { CliError } from './command.js';

/**
 * The longest merge window: a capture's final count is written when its window closes, so a longer
 * one would hold it back for more than a day (and open windows are held in memory meanwhile).
 */
export const MAX_DEDUP_WINDOW_SECS = 86_400;

export const INSPECT_OPTIONS = {
  'dedup-window': { type: 'string' },
  'body-limit': { type: 'string' },
} as const;

export const INSPECT_USAGE = `  --dedup-window SECS    merge repeats of a phrase by a device on a URL within this window
                         (default ${DEFAULT_DEDUP_WINDOW_US / 1e6}, 0 to ${MAX_DEDUP_WINDOW_SECS}; 0: no merging)
  --body-limit BYTES     decoded body bytes inspected per message (default ${DEFAULT_DECODED_LIMIT_BYTES}, at most ${MAX_DECODED_BYTES})`;

/** --dedup-window and --body-limit as the Sensor takes them; undefined for an option not given (the Sensor's default). */
export function inspectLimitsFrom(v: { 'dedup-window'?: string; 'body-limit'?: string }): { dedupWindowUs?: number; bodyLimitBytes?: number } {
  const out: { dedupWindowUs?: number; bodyLimitBytes?: number } = {};
  if (v['dedup-window'] !== undefined) {
    const text = v['dedup-window'].trim();
    const secs = text === '' ? NaN : Number(text);
    if (!(secs >= 0 && secs <= MAX_DEDUP_WINDOW_SECS)) {
      throw new CliError(`--dedup-window must be a number of seconds from 0 to ${MAX_DEDUP_WINDOW_SECS}, not "${v['dedup-window']}"`);
    }
    out.dedupWindowUs = secs * 1e6;
  }
  if (v['body-limit'] !== undefined) {
    const bytes = Number(v['body-limit']);
    if (!(Number.isInteger(bytes) && bytes > 0 && bytes <= MAX_DECODED_BYTES)) {
      throw new CliError(`--body-limit must be a whole number of bytes from 1 to ${MAX_DECODED_BYTES}, not "${v['body-limit']}"`);
    }
    out.bodyLimitBytes = bytes;
  }
  return out;
}

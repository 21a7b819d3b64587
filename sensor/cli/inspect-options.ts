/**
 * The inspection options `hark run` and `hark scan` share: the window within which repeats of a
 * phrase by a device on a URL merge into one capture (inspect/captures.ts), and how many decoded
 * body bytes of a message are inspected (the rest is counted in http.body_truncated). Checked the
 * same way for both commands, so a value one accepts the other does too.
 */
import { DEFAULT_DEDUP_WINDOW_US } from '../inspect/captures.js';
import { DEFAULT_DECODED_LIMIT_BYTES, MAX_DECODED_BYTES } from '../normalize/decompress.js';
import { CliError } from './command.js';

export const INSPECT_OPTIONS = {
  'dedup-window': { type: 'string' },
  'body-limit': { type: 'string' },
} as const;

export const INSPECT_USAGE = `  --dedup-window SECS    merge repeats of a phrase by a device on a URL within this window (default ${DEFAULT_DEDUP_WINDOW_US / 1e6})
  --body-limit BYTES     decoded body bytes inspected per message (default ${DEFAULT_DECODED_LIMIT_BYTES}, at most ${MAX_DECODED_BYTES})`;

/** --dedup-window and --body-limit as the Sensor takes them; undefined for an option not given (the Sensor's default). */
export function inspectLimitsFrom(v: { 'dedup-window'?: string; 'body-limit'?: string }): { dedupWindowUs?: number; bodyLimitBytes?: number } {
  const out: { dedupWindowUs?: number; bodyLimitBytes?: number } = {};
  if (v['dedup-window'] !== undefined) {
    const secs = Number(v['dedup-window']);
    if (!Number.isFinite(secs) || secs < 0) throw new CliError(`--dedup-window must be a number of seconds, not "${v['dedup-window']}"`);
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

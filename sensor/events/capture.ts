/**
 * The capture event: one phrase found in one message of one flow direction (with how many times),
 * after deduplication. Shape fixed by events/capture.schema.json; every emitted capture is
 * validated against that schema in the tests. Field names follow Suricata's EVE where they overlap.
 */
import * as crypto from 'node:crypto';

export type CaptureSource = 'typed' | 'viewed';
/** Where in the message the text was: URL path, search terms, a request header, a body. */
export type CaptureField = 'url' | 'search' | 'request_header' | 'request_body' | 'response_body';

export interface Device {
  ip: string;
  mac?: string;
  hostname?: string;
  user?: string;
  /** Which passive source said each of mac / hostname / user (dhcp, radius, kerberos, ntlm, static, api...). */
  sources?: { mac?: string; hostname?: string; user?: string; domain?: string };
}

export interface CaptureEvent {
  event_type: 'capture';
  /** Stable for the same input: a UUIDv7 of the capture's time and a digest of flow, direction, message and phrase. */
  id: string;
  timestamp: string;
  ts_us: number;
  flow_id: number;
  src_ip: string;
  src_port: number;
  dest_ip: string;
  dest_port: number;
  vlan: number[];
  proto: 'TCP';
  app_proto: 'http' | 'http2';
  /** The message came out of a TLS connection Hark decrypted. */
  decrypted?: boolean;
  direction: 'to_server' | 'to_client';
  source: CaptureSource;
  field: CaptureField;
  host?: string;
  url?: string;
  method?: string;
  status?: number;
  phrase: string;
  category: string;
  severity: number;
  count: number;
  context: string;
  device: Device;
}

/**
 * Longest `url`, `host` and `method` a capture carries, in UTF-16 units; a longer one is cut and
 * ends in CAPTURE_TEXT_CUT. Home refuses a capture whose JSON is over 64 KiB (home/sensor-api.ts,
 * MAX_CAPTURE_JSON_BYTES), and a request line or Host header may be 16 KiB (the HTTP parsers'
 * MAX_START_LINE_BYTES / MAX_HEADER_LINE_BYTES) of bytes JSON writes as up to 6 characters each
 * (`\u0001`). At these limits the worst case is url 24 KiB + host 6 KiB + context (400 characters
 * around a phrase of at most 128) ~4 KiB + phrase and category ~2 KiB + device names and sources
 * (256 each) ~9 KiB: well under 64 KiB. Home shows and indexes the first 8192 characters of a URL;
 * the match itself is in `context`. Methods are short tokens; a long one is not a real request.
 */
export const MAX_CAPTURE_URL_CHARS = 4096;
export const MAX_CAPTURE_HOST_CHARS = 1024;
export const MAX_CAPTURE_METHOD_CHARS = 32;
/** The end of a cut `url`, `host` or `method`: an ellipsis (U+2026) and "[cut]". */
export const CAPTURE_TEXT_CUT = '\u2026[cut]';

/** `text` when it is at most `max` UTF-16 units, else its start and CAPTURE_TEXT_CUT in `max` units
 * (never half of a surrogate pair, which JSON would write as an escape). */
export function cutCaptureText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - CAPTURE_TEXT_CUT.length;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return text.slice(0, end) + CAPTURE_TEXT_CUT;
}

/** The page a viewed capture was seen in: the decoded response body (at most home's limit), kept
 * beside the capture (never inside its JSON) so home can render the page as the user received it. */
export interface Evidence {
  readonly contentType: string;
  readonly charset?: string;
  readonly body: Buffer;
  readonly truncated: boolean;
}

/** The last second isoMicros formatted (captures come in bursts within one second). */
let isoSecond = NaN;
let isoPrefix = '';

/** ISO 8601 with microseconds, as Suricata writes timestamps. */
export function isoMicros(us: number): string {
  const second = Math.floor(us / 1_000_000);
  if (second !== isoSecond) {
    // "2023-11-14T22:13:20." from "2023-11-14T22:13:20.000Z"
    isoPrefix = new Date(second * 1000).toISOString().slice(0, -4);
    isoSecond = second;
  }
  return `${isoPrefix}${String(us - second * 1_000_000).padStart(6, '0')}Z`;
}

/** SHA-256 in hex: one-shot crypto.hash where Node has it (20.12 and later; about half the cost of
 * a Hash object for short inputs), else through createHash. */
const sha256Hex: (text: string) => string = typeof crypto.hash === 'function'
  ? (text) => crypto.hash('sha256', text, 'hex')
  : (text) => crypto.createHash('sha256').update(text).digest('hex');

/** Largest millisecond time a UUIDv7 holds (48 bits). */
const MAX_UUID_MS = 2 ** 48 - 1;
const TWO_24 = 2 ** 24;
/** Two lower-case hex digits of each byte value. */
const HEX_BYTE: readonly string[] = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));
/** The UUID variant nibble (RFC 9562: binary 10xx) for each value of the two digest bits it keeps. */
const VARIANT = '89ab';

/**
 * The id of a capture: a UUIDv7 (RFC 9562 section 5.7) whose 48-bit time is the capture's, in
 * milliseconds, and whose other 74 bits come from a SHA-256 of the time and the parts, so the same
 * input always gives the same id. Ids in time order sort in time order: the stores' id indexes
 * grow at their end rather than at a random page per capture (measured with the sensor's store,
 * 145k captures: 49 us of wall time a capture with random ids, 24 with ordered ones).
 * Built by concatenation and table lookups, not `join`, `toString(16)` and `parseInt`: those took
 * 2.4 of its 3.2 us (the digest 0.8), once per capture.
 */
export function stableId(tsUs: number, ...parts: Array<string | number>): string {
  const ms = Number.isFinite(tsUs) ? Math.min(MAX_UUID_MS, Math.max(0, Math.floor(tsUs / 1000))) : 0;
  // the digest's input: the time and the parts, each after a NUL (as `join` would write them)
  let text = String(tsUs);
  for (const p of parts) text += p === undefined || p === null ? '\u0000' : `\u0000${p}`;
  const h = sha256Hex(text);
  // 12 hex digits of the time: two 24-bit halves, three bytes each
  const hi = Math.floor(ms / TWO_24);
  const lo = ms - hi * TWO_24;
  const d3 = h.charCodeAt(3);
  const variant = VARIANT[(d3 <= 0x39 ? d3 - 0x30 : d3 - 0x57) & 0x3];
  return `${HEX_BYTE[hi >>> 16]}${HEX_BYTE[(hi >>> 8) & 0xff]}${HEX_BYTE[hi & 0xff]}${HEX_BYTE[lo >>> 16]}-${HEX_BYTE[(lo >>> 8) & 0xff]}${HEX_BYTE[lo & 0xff]}-7${h.slice(0, 3)}-${variant}${h.slice(4, 7)}-${h.slice(7, 19)}`;
}

/**
 * Sensor definitions and configuration bundles. Input: an operator's JSON (untrusted) for a
 * sensor's name, site, interfaces, networks, dictionary, lists, outputs, retention, inspection; dictionary
 * uploads. Output: validated column values (or HttpError 400 naming the field), the operator view
 * of a sensor, and the exact bundle bytes PROTOCOL.md describes (the caller signs them).
 */

import { isIP } from 'node:net';
import { checkDictionarySource, formatProblems, MAX_DICTIONARY_BYTES } from '../rules/check.js';
import { checkInspection } from '../sensor/inspect/inspection-settings.js';
import { HttpError } from './http.js';
import type { DictionaryRow, SensorField, SensorRow } from './store.js';

export const MAX_NAME_CHARS = 100;
export const MAX_INTERFACES = 16;
/** Linux IFNAMSIZ is 16 including the NUL. */
const INTERFACE_NAME = /^[A-Za-z0-9_.:@-]{1,15}$/;
export const MAX_BPF_CHARS = 4096;
export const MAX_NETWORKS = 1024;
/** Allow list, identity map and each blocklist: large school lists are tens of thousands of lines. */
export const MAX_LIST_TEXT_BYTES = 8 * 1024 * 1024;
export const MAX_BLOCKLISTS = 32;
export const MAX_OUTPUTS_JSON_BYTES = 64 * 1024;
export const MAX_RETENTION_DAYS = 3650;
/** Dictionary names appear in file names on sensors: keep them plain. */
const DICTIONARY_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
export type DictionaryFormatName = 'pack' | 'csv';
/** The body limit of a dictionary upload: the largest dictionary plus JSON escaping. */
export const DICTIONARY_BODY_LIMIT_BYTES = 2 * MAX_DICTIONARY_BYTES;
/** Problems listed in a 400 answer at most (a wrong file can have a problem per line). */
export const MAX_PROBLEMS_REPORTED = 200;

const bad = (field: string, why: string): HttpError => new HttpError(400, 'E_FIELD', `"${field}" ${why}`);

function text(v: unknown, field: string, max: number): string {
  if (typeof v !== 'string') throw bad(field, 'must be a string');
  if (Buffer.byteLength(v) > max) throw bad(field, `is longer than ${max} bytes`);
  return v;
}

function network(v: unknown, field: string): string {
  if (typeof v !== 'string') throw bad(field, 'must list strings');
  const [addr, prefix, extra] = v.trim().split('/');
  const family = isIP(addr ?? '');
  const max = family === 4 ? 32 : 128;
  if (family === 0 || extra !== undefined || (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= max))) {
    throw bad(field, `has "${v.slice(0, 60)}", which is not an address or CIDR network (10.0.0.0/8, 2001:db8::/32)`);
  }
  return v.trim();
}

function list<T>(v: unknown, field: string, max: number, each: (x: unknown) => T): T[] {
  if (!Array.isArray(v)) throw bad(field, 'must be a list');
  if (v.length > max) throw bad(field, `has ${v.length} entries, more than ${max}`);
  return v.map(each);
}

function retention(v: unknown): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad('retention', 'must be an object {days, by_category}');
  const o = v as Record<string, unknown>;
  const days = (x: unknown, where: string): number => {
    if (!Number.isInteger(x) || (x as number) < 1 || (x as number) > MAX_RETENTION_DAYS) throw bad(where, `must be a whole number of days from 1 to ${MAX_RETENTION_DAYS}`);
    return x as number;
  };
  const out: Record<string, unknown> = {};
  if (o.days !== undefined) out.days = days(o.days, 'retention.days');
  if (o.by_category !== undefined) {
    if (o.by_category === null || typeof o.by_category !== 'object' || Array.isArray(o.by_category)) throw bad('retention.by_category', 'must be an object');
    const by: Record<string, number> = {};
    for (const [k, d] of Object.entries(o.by_category as Record<string, unknown>)) by[k.slice(0, 64)] = days(d, `retention.by_category.${k.slice(0, 64)}`);
    out.by_category = by;
  }
  return out;
}

/**
 * Validates the definition fields present in `body` (all optional except `name` when `creating`)
 * and returns them as column values (JSON columns serialised). `dictionaryExists` checks a name.
 */
export function sensorFields(body: Record<string, unknown>, creating: boolean, dictionaryExists: (name: string) => boolean): Partial<Record<SensorField, string>> & { name?: string } {
  const out: Partial<Record<SensorField, string>> = {};
  if (body.name !== undefined || creating) {
    const name = text(body.name, 'name', MAX_NAME_CHARS * 4).trim();
    if (name === '' || [...name].length > MAX_NAME_CHARS) throw bad('name', `must have 1 to ${MAX_NAME_CHARS} characters`);
    out.name = name;
  }
  if (body.site !== undefined) out.site = text(body.site, 'site', MAX_NAME_CHARS * 4).trim();
  if (body.interfaces !== undefined) {
    out.interfaces = JSON.stringify(list(body.interfaces, 'interfaces', MAX_INTERFACES, (x) => {
      if (typeof x !== 'string' || !INTERFACE_NAME.test(x)) throw bad('interfaces', `has ${JSON.stringify(x)?.slice(0, 40)}, which is not an interface name`);
      return x;
    }));
  }
  if (body.bpf !== undefined) out.bpf = text(body.bpf, 'bpf', MAX_BPF_CHARS);
  if (body.monitored !== undefined) out.monitored = JSON.stringify(list(body.monitored, 'monitored', MAX_NETWORKS, (x) => network(x, 'monitored')));
  if (body.ignored !== undefined) out.ignored = JSON.stringify(list(body.ignored, 'ignored', MAX_NETWORKS, (x) => network(x, 'ignored')));
  if (body.dictionary !== undefined) {
    const d = text(body.dictionary, 'dictionary', 64);
    if (!dictionaryExists(d)) throw bad('dictionary', `names "${d}", which is not a dictionary on this home (PUT /v1/dictionaries/${d} first)`);
    out.dictionary = d;
  }
  if (body.allow_list !== undefined) out.allow_list = text(body.allow_list, 'allow_list', MAX_LIST_TEXT_BYTES);
  if (body.identity_map !== undefined) out.identity_map = text(body.identity_map, 'identity_map', MAX_LIST_TEXT_BYTES);
  if (body.blocklists !== undefined) {
    out.blocklists = JSON.stringify(list(body.blocklists, 'blocklists', MAX_BLOCKLISTS, (x) => {
      if (x === null || typeof x !== 'object') throw bad('blocklists', 'must list {name, text} objects');
      const o = x as Record<string, unknown>;
      return { name: text(o.name, 'blocklists[].name', 64), text: text(o.text, 'blocklists[].text', MAX_LIST_TEXT_BYTES) };
    }));
  }
  if (body.outputs !== undefined) {
    if (body.outputs === null || typeof body.outputs !== 'object' || Array.isArray(body.outputs)) throw bad('outputs', 'must be an object {eve, syslog, email}');
    const json = JSON.stringify(body.outputs);
    if (Buffer.byteLength(json) > MAX_OUTPUTS_JSON_BYTES) throw bad('outputs', `is larger than ${MAX_OUTPUTS_JSON_BYTES} bytes`);
    out.outputs = json;
  }
  if (body.retention !== undefined) out.retention = JSON.stringify(retention(body.retention));
  // a key left out is the sensor's own default (or its command line's)
  if (body.inspection !== undefined) out.inspection = JSON.stringify(checkInspection(body.inspection, 'inspection', 'refuse', bad));
  if (body.alert_email !== undefined) {
    const e = text(body.alert_email, 'alert_email', 320).trim();
    if (e !== '' && !/^[^\s@]+@[^\s@]+$/.test(e)) throw bad('alert_email', `"${e.slice(0, 60)}" is not an e-mail address`);
    out.alert_email = e;
  }
  return out;
}

/** The definition as the operator API shows it (JSON columns parsed). */
export function sensorView(row: SensorRow): Record<string, unknown> {
  return {
    id: row.id, name: row.name, site: row.site, interfaces: JSON.parse(row.interfaces), bpf: row.bpf,
    monitored: JSON.parse(row.monitored), ignored: JSON.parse(row.ignored), dictionary: row.dictionary,
    allow_list: row.allow_list, blocklists: JSON.parse(row.blocklists), identity_map: row.identity_map,
    outputs: JSON.parse(row.outputs), retention: JSON.parse(row.retention), inspection: JSON.parse(row.inspection), alert_email: row.alert_email,
    config_version: row.config_version, uuid: row.uuid, hostname: row.hostname, enrolled: row.cert_serial !== null,
    enrolled_at: row.enrolled_at, created_at: row.created_at, updated_at: row.updated_at,
  };
}

/**
 * The bundle bytes for a sensor (PROTOCOL.md "The configuration bundle"). `alert_email`, when set
 * and the e-mail output names no recipients, becomes its `to`.
 */
export function bundleBytes(row: SensorRow, dict: DictionaryRow, homes: readonly string[], now = new Date()): Buffer {
  const outputs = JSON.parse(row.outputs) as Record<string, unknown>;
  if (row.alert_email !== '' && outputs.email !== null && typeof outputs.email === 'object' && !Array.isArray(outputs.email)) {
    const email = outputs.email as Record<string, unknown>;
    if (email.to === undefined) outputs.email = { ...email, to: [row.alert_email] };
  }
  const bundle = {
    format: 1,
    sensor_id: row.id,
    uuid: row.uuid,
    version: row.config_version,
    issued_at: now.toISOString(),
    config: {
      name: row.name, site: row.site,
      interfaces: JSON.parse(row.interfaces), bpf: row.bpf,
      monitored: JSON.parse(row.monitored), ignored: JSON.parse(row.ignored),
      dictionary: { name: dict.name, format: dict.format, text: dict.text },
      allow_list: row.allow_list,
      blocklists: JSON.parse(row.blocklists),
      identity_map: row.identity_map,
      outputs,
      retention: JSON.parse(row.retention),
      inspection: JSON.parse(row.inspection),
      homes,
    },
  };
  return Buffer.from(JSON.stringify(bundle), 'utf8');
}

/** Checks a dictionary name from a URL. */
export function dictionaryName(name: string): string {
  if (!DICTIONARY_NAME.test(name)) throw new HttpError(400, 'E_FIELD', `dictionary name "${name.slice(0, 70)}" must be 1-64 of a-z 0-9 _ . - starting with a letter or digit`);
  return name;
}

/**
 * Validates a dictionary upload with the rules/ readers. Errors -> HttpError 400 `E_DICTIONARY`
 * whose message lists `line N: reason` (first MAX_PROBLEMS_REPORTED) and whose `problems` detail
 * the caller returns. Warnings are allowed and returned.
 */
export function checkUpload(name: string, format: unknown, source: unknown): { format: DictionaryFormatName; text: string; phrases: number; warnings: string[] } {
  if (format !== 'pack' && format !== 'csv') throw bad('format', 'must be "pack" (the JSON pack format) or "csv"');
  if (typeof source !== 'string') throw bad('text', 'must be the dictionary file content as a string');
  if (Buffer.byteLength(source) > MAX_DICTIONARY_BYTES) throw new HttpError(413, 'E_TOO_LARGE', `the dictionary is over the ${MAX_DICTIONARY_BYTES}-byte limit`);
  const result = checkDictionarySource(source, format === 'pack' ? 'json' : 'csv', name);
  const lines = (level: 'error' | 'warning'): string[] =>
    result.problems.filter((p) => p.level === level).slice(0, MAX_PROBLEMS_REPORTED).map((p) => formatProblems([p], name));
  if (result.errors > 0) {
    throw new DictionaryUploadError(result.errors, lines('error'), result.problems.filter((p) => p.level === 'error').slice(0, MAX_PROBLEMS_REPORTED).map((p) => ({ line: p.line, code: p.code, reason: p.reason })));
  }
  if (result.dictionary.phrases.length === 0) throw bad('text', 'holds no phrases');
  return { format, text: source, phrases: result.dictionary.phrases.length, warnings: lines('warning') };
}

export class DictionaryUploadError extends HttpError {
  constructor(readonly errors: number, lines: string[], readonly problems: Array<{ line: number; code: string; reason: string }>) {
    super(400, 'E_DICTIONARY', `the dictionary has ${errors} error${errors === 1 ? '' : 's'}:\n${lines.join('\n')}`);
  }
}

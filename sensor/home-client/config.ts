/**
 * The configuration bundle from home (PROTOCOL.md): fetched over the link, its RS256 signature
 * verified with the pinned CA's public key, every field validated (errors name the field), checked
 * to be for this sensor, and kept as last-known-good (bundle + signature, re-verified on load).
 * Output: the validated config, and `materialise` turns it into the files the sensor reads, exactly
 * as the command line gives them. Never an empty configuration: no bundle and no good copy is E_NO_CONFIG.
 */
import { createPublicKey, verify as verifySignature, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkInspection, type InspectionConfig } from '../inspect/inspection-settings.js';
import { ensurePrivateDir } from '../store/private-dir.js';
import type { SitePolicyFiles } from '../site-policy.js';
import { writeFileAtomic } from './atomic-file.js';
import { HomeTransportError, type HomeTransport } from './transport.js';

/** Largest signed bundle accepted (decoded): the dictionary and lists dominate; home caps each list at 8 MiB. */
export const MAX_BUNDLE_BYTES = 48 * 1024 * 1024;
export const BUNDLE_FORMAT = 1;
export const LAST_GOOD_FILE = 'last-good.json';
/** Linux IFNAMSIZ is 16 including the NUL. */
const INTERFACE_NAME = /^[A-Za-z0-9_.:@-]{1,15}$/;
/** Blocklist names become `NAME=FILE` options: no '=' and no control characters. */
const BLOCKLIST_NAME = /^[^=\u0000-\u001f\u007f]{1,64}$/;
const MAX_RETENTION_DAYS = 3650;

export class ConfigError extends Error {
  /** `E_BUNDLE_SIGNATURE`, `E_BUNDLE_FIELD`, `E_BUNDLE_SENSOR`, `E_BUNDLE_FETCH`, `E_NO_CONFIG`, `E_LAST_GOOD`. */
  constructor(readonly code: string, message: string, readonly field?: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface EveOutput { readonly enabled: boolean; readonly max_bytes?: number; readonly keep?: number }
export interface SyslogOutput { readonly url: string }
export interface EmailOutput {
  readonly smtp: string;
  readonly from: string;
  readonly to: readonly string[];
  readonly min_severity?: number;
  readonly batch_seconds?: number;
}
export interface OutputsConfig {
  readonly eve?: EveOutput;
  readonly syslog: readonly SyslogOutput[];
  readonly email?: EmailOutput;
}
export interface RetentionConfig { readonly days?: number; readonly by_category: Readonly<Record<string, number>> }

export interface HomeConfig {
  readonly name: string;
  readonly site: string;
  readonly interfaces: readonly string[];
  readonly bpf: string;
  readonly monitored: readonly string[];
  readonly ignored: readonly string[];
  readonly dictionary: { readonly name: string; readonly format: 'pack' | 'csv'; readonly text: string };
  readonly allow_list: string;
  readonly blocklists: ReadonlyArray<{ readonly name: string; readonly text: string }>;
  readonly identity_map: string;
  readonly outputs: OutputsConfig;
  readonly retention: RetentionConfig;
  /** `{}` from a home older than the field: the sensor's defaults (or its command line's). */
  readonly inspection: InspectionConfig;
  readonly homes: readonly string[];
}

export interface ConfigBundle {
  readonly format: 1;
  readonly sensor_id: number;
  readonly uuid: string;
  readonly version: number;
  readonly issued_at: string;
  readonly config: HomeConfig;
}

export interface VerifiedBundle {
  readonly bundle: ConfigBundle;
  readonly config: HomeConfig;
  readonly version: number;
  /** The exact signed bytes and the signature (kept as last-known-good). */
  readonly bytes: Buffer;
  readonly signature: Buffer;
}

/** Who the bundle must be for, and the pin that signs it: `SensorCredentials` fits. */
export interface BundleOwner {
  readonly caPem: string | undefined;
  readonly sensorId: number;
  readonly uuid: string;
}

// ---- validation: each helper names the field it refuses ----

type Obj = Record<string, unknown>;

function fieldError(field: string, why: string): ConfigError {
  return new ConfigError('E_BUNDLE_FIELD', `Configuration bundle field "${field}" ${why}`, field);
}

function obj(v: unknown, field: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw fieldError(field, 'must be an object');
  return v as Obj;
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string') throw fieldError(field, 'must be a string');
  return v;
}

function optStr(v: unknown, field: string): string {
  return v === undefined || v === null ? '' : str(v, field);
}

function int(v: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) throw fieldError(field, `must be a whole number from ${min} to ${max}`);
  return v as number;
}

function strList(v: unknown, field: string, check?: (s: string, field: string) => void): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw fieldError(field, 'must be a list');
  return v.map((x, i) => {
    const s = str(x, `${field}[${i}]`);
    check?.(s, `${field}[${i}]`);
    return s;
  });
}

function url(s: string, field: string, schemes: readonly string[]): void {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw fieldError(field, `has "${s.slice(0, 80)}", which is not a URL`);
  }
  if (!schemes.includes(u.protocol)) throw fieldError(field, `has "${s.slice(0, 80)}": scheme must be ${schemes.join(' or ')}`);
}

function validateOutputs(v: unknown): OutputsConfig {
  const o = obj(v ?? {}, 'config.outputs');
  let eve: EveOutput | undefined;
  if (o.eve !== undefined && o.eve !== null) {
    const e = obj(o.eve, 'config.outputs.eve');
    eve = {
      enabled: e.enabled === undefined ? true : (typeof e.enabled === 'boolean' ? e.enabled : (() => { throw fieldError('config.outputs.eve.enabled', 'must be true or false'); })()),
      ...(e.max_bytes !== undefined ? { max_bytes: int(e.max_bytes, 'config.outputs.eve.max_bytes', 1) } : {}),
      ...(e.keep !== undefined ? { keep: int(e.keep, 'config.outputs.eve.keep', 0, 1000) } : {}),
    };
  }
  let syslog: SyslogOutput[] = [];
  if (o.syslog !== undefined && o.syslog !== null) {
    if (!Array.isArray(o.syslog)) throw fieldError('config.outputs.syslog', 'must be a list of {url}');
    syslog = o.syslog.map((x, i) => {
      const u = str(obj(x, `config.outputs.syslog[${i}]`).url, `config.outputs.syslog[${i}].url`);
      url(u, `config.outputs.syslog[${i}].url`, ['udp:', 'tcp:', 'tls:']);
      return { url: u };
    });
  }
  let email: EmailOutput | undefined;
  if (o.email !== undefined && o.email !== null) {
    const e = obj(o.email, 'config.outputs.email');
    const smtp = str(e.smtp, 'config.outputs.email.smtp');
    url(smtp, 'config.outputs.email.smtp', ['smtp:', 'smtps:']);
    email = {
      smtp,
      from: str(e.from, 'config.outputs.email.from'),
      to: strList(e.to, 'config.outputs.email.to'),
      ...(e.min_severity !== undefined ? { min_severity: int(e.min_severity, 'config.outputs.email.min_severity', 0, 10) } : {}),
      ...(e.batch_seconds !== undefined ? { batch_seconds: int(e.batch_seconds, 'config.outputs.email.batch_seconds', 0, 86400) } : {}),
    };
  }
  return { ...(eve !== undefined ? { eve } : {}), syslog, ...(email !== undefined ? { email } : {}) };
}

function validateRetention(v: unknown): RetentionConfig {
  const r = obj(v ?? {}, 'config.retention');
  const by: Record<string, number> = {};
  if (r.by_category !== undefined && r.by_category !== null) {
    for (const [k, d] of Object.entries(obj(r.by_category, 'config.retention.by_category'))) by[k] = int(d, `config.retention.by_category.${k}`, 1, MAX_RETENTION_DAYS);
  }
  return { ...(r.days !== undefined ? { days: int(r.days, 'config.retention.days', 1, MAX_RETENTION_DAYS) } : {}), by_category: by };
}

/** Absent (a home older than the field) is `{}`; unknown keys (a newer home's) are left out. */
function validateConfig(v: unknown): HomeConfig {
  const c = obj(v, 'config');
  const d = obj(c.dictionary, 'config.dictionary');
  const format = str(d.format, 'config.dictionary.format');
  if (format !== 'pack' && format !== 'csv') throw fieldError('config.dictionary.format', `is "${format.slice(0, 20)}": must be "pack" or "csv"`);
  const dictText = str(d.text, 'config.dictionary.text');
  if (dictText.trim().length === 0) throw fieldError('config.dictionary.text', 'is empty: a sensor without a dictionary captures nothing');
  let blocklists: Array<{ name: string; text: string }> = [];
  if (c.blocklists !== undefined && c.blocklists !== null) {
    if (!Array.isArray(c.blocklists)) throw fieldError('config.blocklists', 'must be a list of {name, text}');
    const names = new Set<string>();
    blocklists = c.blocklists.map((x, i) => {
      const b = obj(x, `config.blocklists[${i}]`);
      const name = str(b.name, `config.blocklists[${i}].name`);
      if (!BLOCKLIST_NAME.test(name)) throw fieldError(`config.blocklists[${i}].name`, `is "${name.slice(0, 64)}": 1 to 64 characters, no "=" and no control characters`);
      if (names.has(name)) throw fieldError(`config.blocklists[${i}].name`, `repeats "${name}"`);
      names.add(name);
      return { name, text: str(b.text, `config.blocklists[${i}].text`) };
    });
  }
  const homes = strList(c.homes, 'config.homes', (s, f) => url(s, f, ['https:', 'http:']));
  // Empty: home has no list of its addresses configured; the sensor keeps the ones it enrolled with.
  return {
    name: str(c.name, 'config.name'),
    site: optStr(c.site, 'config.site'),
    interfaces: strList(c.interfaces, 'config.interfaces', (s, f) => {
      if (!INTERFACE_NAME.test(s)) throw fieldError(f, `is "${s.slice(0, 40)}", which is not an interface name`);
    }),
    bpf: optStr(c.bpf, 'config.bpf'),
    monitored: strList(c.monitored, 'config.monitored'),
    ignored: strList(c.ignored, 'config.ignored'),
    dictionary: { name: str(d.name, 'config.dictionary.name'), format, text: dictText },
    allow_list: optStr(c.allow_list, 'config.allow_list'),
    blocklists,
    identity_map: optStr(c.identity_map, 'config.identity_map'),
    outputs: validateOutputs(c.outputs),
    retention: validateRetention(c.retention),
    inspection: checkInspection(c.inspection ?? {}, 'config.inspection', 'ignore', fieldError),
    homes,
  };
}

/** Parses and validates the bundle JSON (not the signature). */
export function parseBundle(bytes: Buffer): ConfigBundle {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new ConfigError('E_BUNDLE_FIELD', `Configuration bundle is not JSON: ${(err as Error).message}`, undefined, { cause: err });
  }
  const b = obj(v, 'bundle');
  if (b.format !== BUNDLE_FORMAT) throw fieldError('format', `is ${JSON.stringify(b.format)}: this sensor reads format ${BUNDLE_FORMAT}`);
  const issued = str(b.issued_at, 'issued_at');
  if (Number.isNaN(Date.parse(issued))) throw fieldError('issued_at', `is "${issued.slice(0, 40)}", not an ISO time`);
  return {
    format: BUNDLE_FORMAT,
    sensor_id: int(b.sensor_id, 'sensor_id', 1),
    uuid: str(b.uuid, 'uuid'),
    version: int(b.version, 'version', 0),
    issued_at: issued,
    config: validateConfig(b.config),
  };
}

/** Verifies the signature with the pinned CA, validates, and checks the bundle is for `owner`. */
export function verifyBundle(bytes: Buffer, signature: Buffer, owner: BundleOwner): VerifiedBundle {
  if (owner.caPem === undefined) throw new ConfigError('E_BUNDLE_SIGNATURE', 'Cannot verify the configuration bundle: this sensor has no pinned home CA (not enrolled)');
  if (bytes.length > MAX_BUNDLE_BYTES) throw new ConfigError('E_BUNDLE_FIELD', `Configuration bundle is ${bytes.length} bytes, more than ${MAX_BUNDLE_BYTES}`);
  const key = createPublicKey(new X509Certificate(owner.caPem).publicKey.export({ type: 'spki', format: 'pem' }));
  let ok = false;
  try {
    ok = verifySignature('sha256', bytes, key, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new ConfigError('E_BUNDLE_SIGNATURE', 'Configuration bundle refused: its signature does not verify with home\'s pinned CA (tampered, or not from our home)');
  const bundle = parseBundle(bytes);
  if (bundle.sensor_id !== owner.sensorId || bundle.uuid !== owner.uuid) {
    throw new ConfigError('E_BUNDLE_SENSOR', `Configuration bundle is for sensor ${bundle.sensor_id} (${bundle.uuid}), not this sensor ${owner.sensorId} (${owner.uuid})`, 'sensor_id');
  }
  return { bundle, config: bundle.config, version: bundle.version, bytes, signature };
}

function b64(v: unknown, field: string): Buffer {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/=\s]*$/.test(v)) throw new ConfigError('E_BUNDLE_FIELD', `Home's configuration answer field "${field}" is not base64`, field);
  return Buffer.from(v, 'base64');
}

/** The `{alg, bundle, signature}` answer, decoded (no verification). */
function decodeAnswer(body: unknown): { bytes: Buffer; signature: Buffer } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ConfigError('E_BUNDLE_FIELD', 'Home\'s configuration answer is not a JSON object');
  const a = body as Obj;
  if (a.alg !== 'RS256') throw new ConfigError('E_BUNDLE_FIELD', `Home's configuration answer has alg ${JSON.stringify(a.alg)}, not "RS256"`, 'alg');
  return { bytes: b64(a.bundle, 'bundle'), signature: b64(a.signature, 'signature') };
}

/**
 * GET /v1/sensor/config, verified; saved as last-known-good in `configDir` when given.
 * Transport failures stay HomeTransportError; an HTTP error is E_BUNDLE_FETCH.
 */
export async function fetchBundle(link: HomeTransport, owner: BundleOwner, configDir?: string): Promise<VerifiedBundle> {
  const res = await link.request('GET', '/v1/sensor/config');
  if (res.status !== 200) {
    const b = res.body as { error?: unknown; message?: unknown } | undefined;
    const detail = typeof b?.message === 'string' ? `: ${b.message}` : '';
    throw new ConfigError('E_BUNDLE_FETCH', `Home "${res.home}" answered ${res.status}${typeof b?.error === 'string' ? ` ${b.error}` : ''} to GET /v1/sensor/config${detail}`);
  }
  const { bytes, signature } = decodeAnswer(res.body);
  const verified = verifyBundle(bytes, signature, owner);
  if (configDir !== undefined) saveLastKnownGood(configDir, verified);
  return verified;
}

export function saveLastKnownGood(configDir: string, v: VerifiedBundle, nowMs = Date.now()): void {
  ensurePrivateDir(configDir);
  const record = { saved_at: new Date(nowMs).toISOString(), version: v.version, bundle: v.bytes.toString('base64'), signature: v.signature.toString('base64') };
  writeFileAtomic(join(configDir, LAST_GOOD_FILE), `${JSON.stringify(record)}\n`);
}

/** The last-known-good bundle, re-verified; undefined when there is none; E_LAST_GOOD when it no longer verifies. */
export function loadLastKnownGood(configDir: string, owner: BundleOwner): { verified: VerifiedBundle; savedAtMs: number } | undefined {
  const path = join(configDir, LAST_GOOD_FILE);
  if (!existsSync(path)) return undefined;
  let rec: Obj;
  try {
    rec = obj(JSON.parse(readFileSync(path, 'utf8')), 'last-good');
  } catch (err) {
    throw new ConfigError('E_LAST_GOOD', `Last-known-good configuration "${path}" cannot be read: ${(err as Error).message}`, undefined, { cause: err });
  }
  try {
    const verified = verifyBundle(b64(rec.bundle, 'bundle'), b64(rec.signature, 'signature'), owner);
    const saved = typeof rec.saved_at === 'string' ? Date.parse(rec.saved_at) : NaN;
    return { verified, savedAtMs: Number.isNaN(saved) ? Date.parse(verified.bundle.issued_at) : saved };
  } catch (err) {
    throw new ConfigError('E_LAST_GOOD', `Last-known-good configuration "${path}" refused: ${(err as Error).message}`, undefined, { cause: err });
  }
}

export interface StartupConfig {
  readonly config: HomeConfig;
  readonly version: number;
  readonly source: 'home' | 'last-known-good';
  /** When this configuration came from home (ms since the epoch). */
  readonly fetchedAt: number;
  readonly ageMs: number;
  /** Why home's bundle was not used (only with source 'last-known-good'). */
  readonly reason?: string;
  readonly reasonCode?: string;
}

/**
 * The configuration to start with: home's bundle, else (home unreachable, bundle refused) the
 * last-known-good copy with the reason; E_NO_CONFIG when neither exists.
 */
export async function loadStartupConfig(link: HomeTransport, owner: BundleOwner, configDir: string, nowMs = Date.now()): Promise<StartupConfig> {
  let reason: string;
  let reasonCode: string;
  try {
    const v = await fetchBundle(link, owner, configDir);
    return { config: v.config, version: v.version, source: 'home', fetchedAt: nowMs, ageMs: 0 };
  } catch (err) {
    if (!(err instanceof HomeTransportError) && !(err instanceof ConfigError)) throw err;
    reason = err.message;
    reasonCode = err.code;
  }
  let good: ReturnType<typeof loadLastKnownGood>;
  try {
    good = loadLastKnownGood(configDir, owner);
  } catch (err) {
    throw new ConfigError('E_NO_CONFIG', `No configuration to start with: ${reason}; and ${(err as Error).message}`, undefined, { cause: err });
  }
  if (good === undefined) {
    throw new ConfigError('E_NO_CONFIG', `No configuration to start with: ${reason}; and no last-known-good copy in "${configDir}"`);
  }
  return {
    config: good.verified.config,
    version: good.verified.version,
    source: 'last-known-good',
    fetchedAt: good.savedAtMs,
    ageMs: Math.max(0, nowMs - good.savedAtMs),
    reason,
    reasonCode,
  };
}

export interface MaterialisedConfig {
  /** Dictionary file (.json pack or .csv), as --dictionary takes it. */
  readonly dictionary: string;
  /** Site policy files, as --blocklist NAME=FILE, --allow-list, --identity-map, --monitored, --ignored give them. */
  readonly site: SitePolicyFiles;
  readonly interfaces: readonly string[];
  readonly bpf: string;
  readonly outputs: OutputsConfig;
  readonly retention: RetentionConfig;
  readonly inspection: InspectionConfig;
  readonly homes: readonly string[];
  readonly name: string;
  readonly site_name: string;
}

/** Writes the bundle's texts as files in `dir` (0700; files 0600) and returns the settings that point at them. */
export function materialise(config: HomeConfig, dir: string): MaterialisedConfig {
  ensurePrivateDir(dir);
  const dictionary = join(dir, config.dictionary.format === 'csv' ? 'dictionary.csv' : 'dictionary.json');
  writeFileAtomic(dictionary, config.dictionary.text);
  let allowList: string | undefined;
  if (config.allow_list.trim().length > 0) {
    allowList = join(dir, 'allow-list.txt');
    writeFileAtomic(allowList, config.allow_list);
  }
  let identityMap: string | undefined;
  if (config.identity_map.trim().length > 0) {
    identityMap = join(dir, 'identity-map.csv');
    writeFileAtomic(identityMap, config.identity_map);
  }
  // File names by position: list names are free text, the NAME= prefix keeps them.
  const blocklists = config.blocklists.map((b, i) => {
    const file = join(dir, `blocklist-${i + 1}.txt`);
    writeFileAtomic(file, b.text);
    return `${b.name}=${file}`;
  });
  const site: SitePolicyFiles = {
    ...(blocklists.length > 0 ? { blocklists } : {}),
    ...(allowList !== undefined ? { allowList } : {}),
    ...(identityMap !== undefined ? { identityMap } : {}),
    // An empty list means "the defaults", as when the option is not given.
    ...(config.monitored.length > 0 ? { monitored: [...config.monitored] } : {}),
    ...(config.ignored.length > 0 ? { ignored: [...config.ignored] } : {}),
  };
  return {
    dictionary,
    site,
    interfaces: [...config.interfaces],
    bpf: config.bpf,
    outputs: config.outputs,
    retention: config.retention,
    inspection: config.inspection,
    homes: [...config.homes],
    name: config.name,
    site_name: config.site,
  };
}

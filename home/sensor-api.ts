/**
 * The sensor side of PROTOCOL.md. Unauthenticated (server-TLS only): ping, CA, enrolment by code
 * and by operator credentials. Mutual TLS (`/v1/sensor/*`): signed configuration bundle,
 * heartbeat (answers pending actions), action acknowledgement, capture ingest (idempotent by
 * capture id, at most MAX_CAPTURES_PER_BATCH per call, each refused capture named with the reason).
 * Input: requests; output: JSON answers.
 */

import { defineCounter } from '../sensor/events/counters.js';
import { C_CAPTURES_ACCEPTED, C_CAPTURES_DUPLICATE, C_CAPTURES_REJECTED, C_CAPTURES_UPDATED, C_HEARTBEATS, ENROLMENT_TTL_MS, MAX_PENDING_ENROLMENTS, type HomeCore } from './core.js';
import { bundleBytes } from './definition.js';
import { asObject, HttpError, reqStr, type RequestContext, type Router } from './http.js';
import { newToken, sha256Hex } from './auth.js';
import { readCsr, PkiError, signBundle } from './pki.js';
import type { CaptureInsert } from './store.js';
import { recordCoverage } from './coverage.js';
import { EVIDENCE_CALL_LIMIT_BYTES, evidenceItem, MAX_EVIDENCE_PER_CALL, type EvidenceItem, type EvidenceRenderer, type EvidenceStore } from './evidence.js';

/** PROTOCOL.md: a capture batch holds at most 1000 captures. */
export const MAX_CAPTURES_PER_BATCH = 1000;
/** 1000 captures of a few kB each (context is bounded on the sensor) fit well inside this. */
export const CAPTURE_BODY_LIMIT_BYTES = 16 * 1024 * 1024;
/** One capture's JSON larger than this is rejected (context is at most a few hundred characters). */
export const MAX_CAPTURE_JSON_BYTES = 64 * 1024;
/** Heartbeats carry counters and a few health events. */
export const HEARTBEAT_BODY_LIMIT_BYTES = 512 * 1024;
/** Enrolment calls carry a CSR and a few names. */
export const ENROL_BODY_LIMIT_BYTES = 64 * 1024;

const C_ENROL_REQUESTS = defineCounter('home.enrol.requests');
const C_BUNDLES = defineCounter('home.bundles_served');

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const HOSTNAME_MAX = 253;

function enrolFields(body: Record<string, unknown>): { uuid: string; hostname: string; csr: string } {
  const uuid = reqStr(body, 'uuid', 64);
  if (!UUID.test(uuid)) throw new HttpError(400, 'E_FIELD', `"uuid" must be a UUID, not "${uuid.slice(0, 40)}"`);
  const hostname = reqStr(body, 'hostname', HOSTNAME_MAX);
  // Hostnames are shown in the console and written to home.log: no control characters.
  if (/[\x00-\x1f\x7f]/.test(hostname)) throw new HttpError(400, 'E_FIELD', '"hostname" has control characters');
  const csr = reqStr(body, 'csr', 16 * 1024);
  try {
    readCsr(csr);
  } catch (err) {
    if (err instanceof PkiError) throw new HttpError(400, err.code, err.message);
    throw err;
  }
  return { uuid: uuid.toLowerCase(), hostname, csr };
}

function sensorId(v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 1) throw new HttpError(400, 'E_FIELD', '"sensor_id" must be a positive integer');
  return v as number;
}

/** Why home will not store one capture of a batch: a stable code and a sentence quoting the value. */
export interface CaptureRefusal {
  readonly error: string;
  readonly message: string;
}

/** Turns one untrusted capture into a row, or says why it is not a capture home can index. */
export function captureRow(c: unknown): CaptureInsert | CaptureRefusal {
  const refuse = (error: string, message: string): CaptureRefusal => ({ error, message });
  if (c === null || typeof c !== 'object' || Array.isArray(c)) return refuse('E_CAPTURE_TYPE', 'A capture must be a JSON object');
  const o = c as Record<string, unknown>;
  if (typeof o.id !== 'string' || o.id.length === 0 || o.id.length > 128 || !/^[\x21-\x7e]+$/.test(o.id)) {
    return refuse('E_CAPTURE_ID', '"id" must be 1-128 printable ASCII characters');
  }
  const quoted = `Capture "${o.id}"`;
  let ts = typeof o.ts_us === 'number' && Number.isSafeInteger(o.ts_us) && o.ts_us >= 0 ? o.ts_us : undefined;
  if (ts === undefined && typeof o.timestamp === 'string') {
    const ms = Date.parse(o.timestamp);
    if (Number.isFinite(ms)) ts = ms * 1000;
  }
  if (ts === undefined) return refuse('E_CAPTURE_TIME', `${quoted} has neither a "ts_us" nor a "timestamp" home can read`);
  if (!Number.isInteger(o.severity) || (o.severity as number) < 0 || (o.severity as number) > 5) {
    return refuse('E_CAPTURE_SEVERITY', `${quoted} has severity ${JSON.stringify(o.severity)?.slice(0, 20)}: it must be a whole number from 0 to 5`);
  }
  if (typeof o.phrase !== 'string' || o.phrase.length > 512) return refuse('E_CAPTURE_PHRASE', `${quoted}: "phrase" must be text of at most 512 characters`);
  if (typeof o.category !== 'string' || o.category.length > 128) return refuse('E_CAPTURE_CATEGORY', `${quoted}: "category" must be text of at most 128 characters`);
  const device = o.device !== null && typeof o.device === 'object' ? o.device as Record<string, unknown> : {};
  const opt = (v: unknown, max: number): string | null => (typeof v === 'string' ? v.slice(0, max) : null);
  const event = JSON.stringify(o);
  const bytes = Buffer.byteLength(event);
  if (bytes > MAX_CAPTURE_JSON_BYTES) return refuse('E_CAPTURE_TOO_LARGE', `${quoted} is ${bytes} bytes of JSON, more than ${MAX_CAPTURE_JSON_BYTES}`);
  return {
    id: o.id, ts_us: ts, severity: o.severity as number, category: o.category, phrase: o.phrase,
    user: opt(device.user, 256), host: opt(o.host, 512), url: opt(o.url, 8192), event,
    source: opt(o.source, 16), device_ip: opt(device.ip, 64), device_name: opt(device.hostname, 256), context: opt(o.context, 8192),
  };
}

function isRefusal(r: CaptureInsert | CaptureRefusal): r is CaptureRefusal {
  return 'error' in r;
}

/** The part of a heartbeat kept in history: small, so 1440 per sensor stays a few MiB. */
export function heartbeatSummary(body: Record<string, unknown>): string {
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  let packets = 0;
  let drops = 0;
  if (Array.isArray(body.interfaces)) {
    for (const i of body.interfaces as Array<Record<string, unknown>>) {
      packets += num(i?.packets) ?? 0;
      drops += num(i?.drops) ?? 0;
    }
  }
  return JSON.stringify({
    config_version: num(body.config_version), config_source: typeof body.config_source === 'string' ? body.config_source.slice(0, 32) : undefined,
    queue: num(body.queue), packets, drops, health: Array.isArray(body.health) ? body.health.length : 0,
  });
}

export interface EvidenceDeps {
  evidence: EvidenceStore;
  renderer: EvidenceRenderer;
  /** False when no Chromium: evidence is stored as `unavailable` (text kept, no image). */
  rendererAvailable: boolean;
}

export function registerSensorApi(router: Router, home: HomeCore, ev?: EvidenceDeps): void {
  const { store } = home;

  router.add('GET', '/v1/ping', () => ({ status: 200, body: { ok: true, time: new Date().toISOString() } }));
  router.add('GET', '/v1/ca', () => ({ status: 200, raw: { contentType: 'application/x-pem-file', text: home.ca.certPem } }));

  // ---- enrolment by code ----
  router.add('POST', '/v1/enrol/request', async (ctx) => {
    const body = asObject(await ctx.body(ENROL_BODY_LIMIT_BYTES));
    home.checkSiteKey(body.site_key, ctx, 'enrol.request');
    home.limitEnrolRequest(ctx);
    const f = enrolFields(body);
    const now = Date.now();
    store.expireEnrolments(now);
    if (store.pendingEnrolmentCount(now) >= MAX_PENDING_ENROLMENTS) {
      throw new HttpError(503, 'E_BUSY', `${MAX_PENDING_ENROLMENTS} enrolment requests are waiting already; approve or reject some first`);
    }
    const code = home.newEnrolmentCode();
    const poll = newToken();
    store.addEnrolment({ code, poll_hash: sha256Hex(poll), ...f, peer: ctx.peer, created_at: now, expires_at: now + ENROLMENT_TTL_MS });
    home.counters.inc(C_ENROL_REQUESTS);
    home.log.write('enrol.request', { code, uuid: f.uuid, hostname: f.hostname, peer: ctx.peer });
    store.audit('sensor', 'enrol.request', code, { uuid: f.uuid, hostname: f.hostname }, ctx.peer);
    return { status: 202, body: { code, poll } };
  });

  router.add('GET', '/v1/enrol/request/:poll', (ctx) => {
    const poll = ctx.params[0];
    const row = poll.length > 100 ? undefined : store.enrolmentByPoll(sha256Hex(poll));
    if (row === undefined) throw new HttpError(404, 'E_NOT_FOUND', 'No such enrolment request');
    if (row.status === 'pending' && row.expires_at <= Date.now()) {
      store.expireEnrolments(Date.now());
      return { status: 200, body: { status: 'expired' } };
    }
    if (row.status === 'approved') {
      return { status: 200, body: { status: 'approved', sensor_id: row.sensor_id, certificate: row.certificate, ca: home.ca.certPem } };
    }
    return { status: 200, body: { status: row.status } };
  });

  // ---- enrolment by credentials ----
  const adminByCredentials = async (ctx: RequestContext, body: Record<string, unknown>, call: string) => {
    home.checkSiteKey(body.site_key, ctx, call);
    const op = await home.checkCredentials(body.user, body.password, ctx, call);
    if (op.must_change_password === 1) throw new HttpError(403, 'E_PASSWORD_CHANGE', 'This account must change its password first (POST /v1/password)');
    if (op.role !== 'admin') {
      home.log.write('security.forbidden', { peer: ctx.peer, user: op.name, role: op.role, need: 'admin', call });
      throw new HttpError(403, 'E_ROLE', `Role "${op.role}" cannot enrol sensors; it needs "admin"`);
    }
    return op;
  };

  router.add('POST', '/v1/enrol/sensors', async (ctx) => {
    const body = asObject(await ctx.body(ENROL_BODY_LIMIT_BYTES));
    await adminByCredentials(ctx, body, 'enrol.sensors');
    const sensors = store.listSensors().map((s) => ({ id: s.id, name: s.name, site: s.site, enrolled: s.cert_serial !== null }));
    return { status: 200, body: { sensors } };
  });

  router.add('POST', '/v1/enrol/credentials', async (ctx) => {
    const body = asObject(await ctx.body(ENROL_BODY_LIMIT_BYTES));
    const op = await adminByCredentials(ctx, body, 'enrol.credentials');
    const id = sensorId(body.sensor_id);
    const f = enrolFields(body);
    if (store.sensor(id) === undefined) throw new HttpError(404, 'E_NOT_FOUND', `No sensor ${id} on this home`);
    const certificate = home.enrolSensor(id, f.uuid, f.hostname, f.csr, op.name, ctx.peer);
    store.audit(op.name, 'enrol.credentials', `sensor:${id}`, { uuid: f.uuid, hostname: f.hostname }, ctx.peer);
    return { status: 200, body: { sensor_id: id, certificate, ca: home.ca.certPem } };
  });

  // ---- mutual TLS ----
  router.add('GET', '/v1/sensor/config', (ctx) => {
    const sensor = home.sensor(ctx);
    const dict = store.dictionary(sensor.dictionary);
    if (dict === undefined) throw new HttpError(500, 'E_NO_DICTIONARY', `Sensor ${sensor.id} names dictionary "${sensor.dictionary}", which is missing`);
    const homes = JSON.parse(store.getSetting('homes') ?? '[]') as string[];
    const bytes = bundleBytes(sensor, dict, homes);
    const signature = signBundle(home.ca, bytes);
    store.noteBundleServed(sensor.id, sensor.config_version);
    home.counters.inc(C_BUNDLES);
    return { status: 200, body: { alg: 'RS256', bundle: bytes.toString('base64'), signature: signature.toString('base64') } };
  });

  router.add('POST', '/v1/sensor/heartbeat', async (ctx) => {
    const sensor = home.sensor(ctx);
    const body = asObject(await ctx.body(HEARTBEAT_BODY_LIMIT_BYTES));
    const now = Date.now();
    home.seen(sensor, ctx, true, now);
    const prev = store.lastHeartbeat(sensor.id);
    let prevBody: Record<string, unknown> | undefined;
    try { prevBody = prev === undefined ? undefined : JSON.parse(prev.body) as Record<string, unknown>; } catch { prevBody = undefined; }
    recordCoverage(store, sensor.id, now, body, prevBody);
    store.addHeartbeat(sensor.id, now, ctx.peer, JSON.stringify(body), heartbeatSummary(body));
    home.counters.inc(C_HEARTBEATS);
    const pending = store.pendingActions(sensor.id);
    if (pending.length > 0) store.markDelivered(pending.map((a) => a.id));
    return { status: 200, body: { config_version: sensor.config_version, actions: pending.map((a) => ({ id: a.id, kind: a.kind })) } };
  });

  router.add('POST', '/v1/sensor/actions/:id/done', async (ctx) => {
    const sensor = home.sensor(ctx);
    const body = asObject(await ctx.body(64 * 1024));
    const id = Number(ctx.params[0]);
    const action = Number.isSafeInteger(id) ? store.action(id) : undefined;
    if (action === undefined || action.sensor_id !== sensor.id) throw new HttpError(404, 'E_NOT_FOUND', `No action ${ctx.params[0].slice(0, 20)} for this sensor`);
    const ok = body.ok === true;
    const message = typeof body.message === 'string' ? body.message.slice(0, 1000) : null;
    if (store.finishAction(id, ok, message)) {
      home.log.write(action.kind === 'reload' ? 'sensor.reloaded' : `sensor.action_done`, { sensor: sensor.id, action: id, kind: action.kind, ok, message: message ?? undefined });
    }
    return { status: 204 };
  });

  router.add('POST', '/v1/sensor/captures', async (ctx) => {
    const sensor = home.sensor(ctx);
    const body = asObject(await ctx.body(CAPTURE_BODY_LIMIT_BYTES));
    const list = body.captures;
    if (!Array.isArray(list)) throw new HttpError(400, 'E_FIELD', '"captures" must be a list');
    if (list.length > MAX_CAPTURES_PER_BATCH) throw new HttpError(413, 'E_TOO_MANY', `A batch holds at most ${MAX_CAPTURES_PER_BATCH} captures, not ${list.length}`);
    const rows: CaptureInsert[] = [];
    // Each refused entry by its place in the batch (and its id when it has one), so the sensor
    // keeps those out of its queue and marks only the others as delivered.
    const rejects: Array<{ index: number; id?: string; error: string; message: string }> = [];
    for (let index = 0; index < list.length; index++) {
      const row = captureRow(list[index]);
      if (!isRefusal(row)) {
        rows.push(row);
        continue;
      }
      const id = (list[index] as { id?: unknown } | null)?.id;
      rejects.push({ index, ...(typeof id === 'string' ? { id: id.slice(0, 128) } : {}), error: row.error, message: row.message });
    }
    const rejected = rejects.length;
    const { added: accepted, updated } = rows.length > 0 ? store.ingestCaptures(sensor.id, rows) : { added: 0, updated: 0 };
    const duplicates = rows.length - accepted - updated;
    home.counters.inc(C_CAPTURES_ACCEPTED, accepted);
    home.counters.inc(C_CAPTURES_UPDATED, updated);
    home.counters.inc(C_CAPTURES_DUPLICATE, duplicates);
    home.counters.inc(C_CAPTURES_REJECTED, rejected);
    if (rejected > 0) home.log.write('ingest.rejected', { sensor: sensor.id, rejected, first_error: rejects[0].error, first_id: rejects[0].id, peer: ctx.peer });
    // Evidence that arrived before its capture can be drawn now.
    if (accepted > 0) ev?.renderer.kick();
    return { status: 200, body: { accepted, updated, duplicates, rejected, rejects } };
  });

  router.add('POST', '/v1/sensor/evidence', async (ctx) => {
    const sensor = home.sensor(ctx);
    if (ev === undefined) throw new HttpError(404, 'E_NOT_FOUND', 'This home keeps no evidence');
    const body = asObject(await ctx.body(EVIDENCE_CALL_LIMIT_BYTES));
    const list = body.evidence;
    if (!Array.isArray(list)) throw new HttpError(400, 'E_FIELD', '"evidence" must be a list');
    if (list.length > MAX_EVIDENCE_PER_CALL) throw new HttpError(413, 'E_TOO_MANY', `A call holds at most ${MAX_EVIDENCE_PER_CALL} evidence items, not ${list.length}`);
    const items: EvidenceItem[] = [];
    for (const e of list) {
      const item = evidenceItem(e);
      if (item !== undefined) items.push(item);
    }
    const rejected = list.length - items.length;
    ev.evidence.rejected(rejected);
    const accepted = items.length > 0 ? ev.evidence.add(sensor.id, items, ev.rendererAvailable ? 'pending' : 'unavailable') : 0;
    if (!ev.rendererAvailable) ev.renderer.unavailable(accepted);
    if (rejected > 0) home.log.write('evidence.rejected', { sensor: sensor.id, rejected, peer: ctx.peer });
    if (accepted > 0) ev.renderer.kick();
    return { status: 200, body: { accepted, duplicates: items.length - accepted, rejected } };
  });
}

/**
 * The operator API (PROTOCOL.md "Operator API"): login and sessions, password change, operators,
 * sensors, dictionaries, site keys, enrolments, sensor actions and status, captures and triage,
 * audit. Roles are enforced here for every route: admin everything; lead reads, triage and
 * reload; readonly reads. Every change is written to the audit table (who, what, from where).
 */

import { randomBytes } from 'node:crypto';
import { hashPassword, MAX_SITE_KEY_CHARS, MIN_SITE_KEY_CHARS, newToken, passwordProblem, sha256Hex, siteKeyDigest } from './auth.js';
import { retireInitialPassword, SESSION_TTL_MS, type HomeCore } from './core.js';
import { checkUpload, DICTIONARY_BODY_LIMIT_BYTES, dictionaryName, DictionaryUploadError, sensorFields, sensorView } from './definition.js';
import { asObject, errorReply, HttpError, intParam, reqStr, str, type RequestContext, type Router } from './http.js';
import { ROLES, type EnrolmentRow, type Role } from './store.js';
import { applyTriage, MAX_NOTE_CHARS } from './triage.js';

const ACTION_KINDS = ['reload', 'restart', 'reset'] as const;
const USER_NAME = /^[A-Za-z0-9_.@-]{1,64}$/;
/** Heartbeats shown in a status answer's history. */
const STATUS_HISTORY = 60;
/**
 * A login is a user name (64) and a password (MAX_PASSWORD_CHARS, 1024): 16 KiB is ample. The call
 * is unauthenticated, so its body must not be the 1 MiB default every caller could make home hold.
 */
export const LOGIN_BODY_LIMIT_BYTES = 16 * 1024;

function positiveId(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new HttpError(404, 'E_NOT_FOUND', `No ${what} "${text.slice(0, 40)}"`);
  return n;
}

function role(v: unknown): Role {
  if (typeof v !== 'string' || !(ROLES as readonly string[]).includes(v)) throw new HttpError(400, 'E_FIELD', `"role" must be one of ${ROLES.join(', ')}`);
  return v as Role;
}

function enrolmentView(e: EnrolmentRow): Record<string, unknown> {
  return {
    code: e.code, uuid: e.uuid, hostname: e.hostname, status: e.status === 'pending' && e.expires_at <= Date.now() ? 'expired' : e.status,
    sensor_id: e.sensor_id, peer: e.peer, requested_at: new Date(e.created_at).toISOString(), expires_at: new Date(e.expires_at).toISOString(),
    decided_by: e.decided_by, decided_at: e.decided_at,
  };
}

export function registerOperatorApi(router: Router, home: HomeCore): void {
  const { store, log } = home;
  const audit = (who: string, action: string, target: string | null, detail: unknown, ctx: RequestContext): void => store.audit(who, action, target, detail, ctx.peer);

  // ---- sessions ----
  router.add('POST', '/v1/login', async (ctx) => {
    const body = asObject(await ctx.body(LOGIN_BODY_LIMIT_BYTES));
    const op = await home.checkCredentials(body.user, body.password, ctx, 'login');
    const token = newToken();
    const expires = Date.now() + SESSION_TTL_MS;
    store.purgeSessions(Date.now());
    store.addSession(sha256Hex(token), op.id, expires, ctx.peer);
    audit(op.name, 'login', null, undefined, ctx);
    return { status: 200, body: { token, role: op.role, must_change_password: op.must_change_password === 1, expires_at: new Date(expires).toISOString() } };
  });

  router.add('POST', '/v1/logout', (ctx) => {
    const { op, tokenHash } = home.operator(ctx, 'readonly', true);
    store.deleteSession(tokenHash);
    audit(op.name, 'logout', null, undefined, ctx);
    return { status: 204 };
  });

  router.add('POST', '/v1/password', async (ctx) => {
    const who = home.operator(ctx, 'readonly', true);
    const body = asObject(await ctx.body());
    const current = str(body, 'current_password', { max: 1024 }) as string;
    await home.changeOwnPassword(who, current, body.new_password, ctx, 'api');
    return { status: 204 };
  });

  // ---- operators (admin) ----
  router.add('GET', '/v1/operators', (ctx) => {
    home.operator(ctx, 'admin');
    return { status: 200, body: { operators: store.listOperators().map((o) => ({ name: o.name, role: o.role, must_change_password: o.must_change_password === 1, created_at: o.created_at, updated_at: o.updated_at })) } };
  });

  router.add('POST', '/v1/operators', async (ctx) => {
    const { op } = home.operator(ctx, 'admin');
    const body = asObject(await ctx.body());
    const name = reqStr(body, 'user', 64);
    if (!USER_NAME.test(name)) throw new HttpError(400, 'E_FIELD', '"user" must be 1-64 of A-Z a-z 0-9 _ . @ -');
    const r = role(body.role);
    const problem = passwordProblem(body.password);
    if (problem !== undefined) throw new HttpError(400, 'E_PASSWORD', `Cannot set the password: ${problem}`);
    if (store.operatorByName(name) !== undefined) throw new HttpError(409, 'E_EXISTS', `Operator "${name}" exists already`);
    // An operator made by another gets a password someone else knows: they must change it.
    store.addOperator(name, r, await hashPassword(body.password as string), body.must_change_password !== false);
    audit(op.name, 'operator.add', `operator:${name}`, { role: r }, ctx);
    log.write('config.operator_added', { user: name, role: r, by: op.name, peer: ctx.peer });
    return { status: 201, body: { user: name, role: r } };
  });

  router.add('PATCH', '/v1/operators/:name', async (ctx) => {
    const { op } = home.operator(ctx, 'admin');
    const target = store.operatorByName(ctx.params[0]);
    if (target === undefined) throw new HttpError(404, 'E_NOT_FOUND', `No operator "${ctx.params[0].slice(0, 64)}"`);
    const body = asObject(await ctx.body());
    const fields: { role?: Role; hash?: string; must_change_password?: boolean } = {};
    if (body.role !== undefined) {
      fields.role = role(body.role);
      if (target.role === 'admin' && fields.role !== 'admin' && store.adminCount() <= 1) throw new HttpError(409, 'E_LAST_ADMIN', 'Cannot remove the last admin');
    }
    if (body.password !== undefined) {
      const problem = passwordProblem(body.password);
      if (problem !== undefined) throw new HttpError(400, 'E_PASSWORD', `Cannot set the password: ${problem}`);
      fields.hash = await hashPassword(body.password as string);
      fields.must_change_password = true;
    }
    store.updateOperator(target.id, fields);
    if (fields.hash !== undefined || fields.role !== undefined) store.deleteSessionsOf(target.id);
    const retired = fields.hash !== undefined && (await retireInitialPassword(home.initialPasswordFile, target.hash));
    audit(op.name, 'operator.change', `operator:${target.name}`, { role: fields.role, password_reset: fields.hash !== undefined }, ctx);
    log.write('config.operator_changed', { user: target.name, by: op.name, peer: ctx.peer, initial_password_file: retired ? 'deleted' : undefined });
    return { status: 204 };
  });

  router.add('DELETE', '/v1/operators/:name', async (ctx) => {
    const { op } = home.operator(ctx, 'admin');
    const target = store.operatorByName(ctx.params[0]);
    if (target === undefined) throw new HttpError(404, 'E_NOT_FOUND', `No operator "${ctx.params[0].slice(0, 64)}"`);
    if (target.id === op.id) throw new HttpError(409, 'E_SELF', 'Cannot delete the account in use');
    if (target.role === 'admin' && store.adminCount() <= 1) throw new HttpError(409, 'E_LAST_ADMIN', 'Cannot remove the last admin');
    store.deleteOperator(target.id);
    const retired = await retireInitialPassword(home.initialPasswordFile, target.hash);
    audit(op.name, 'operator.delete', `operator:${target.name}`, undefined, ctx);
    log.write('config.operator_deleted', { user: target.name, by: op.name, peer: ctx.peer, initial_password_file: retired ? 'deleted' : undefined });
    return { status: 204 };
  });

  // ---- sensors ----
  router.add('GET', '/v1/sensors', (ctx) => {
    home.operator(ctx, 'readonly');
    const now = Date.now();
    const sensors = store.listSensors().map((s) => {
      const hb = store.lastHeartbeat(s.id);
      return { ...sensorView(s), online: hb !== undefined && now - hb.at < home.heartbeatTimeoutMs, last_heartbeat: hb === undefined ? null : new Date(hb.at).toISOString() };
    });
    return { status: 200, body: { sensors } };
  });

  router.add('POST', '/v1/sensors', async (ctx) => {
    const { op } = home.operator(ctx, 'admin');
    const body = asObject(await ctx.body(DICTIONARY_BODY_LIMIT_BYTES));
    const fields = sensorFields(body, true, (n) => store.dictionary(n) !== undefined);
    const id = store.addSensor(fields as typeof fields & { name: string });
    audit(op.name, 'sensor.add', `sensor:${id}`, { name: fields.name }, ctx);
    log.write('config.sensor_added', { sensor: id, name: fields.name, by: op.name, peer: ctx.peer });
    return { status: 201, body: sensorView(store.sensor(id)!) };
  });

  const getSensor = (text: string) => {
    const s = store.sensor(positiveId(text, 'sensor'));
    if (s === undefined) throw new HttpError(404, 'E_NOT_FOUND', `No sensor ${text.slice(0, 20)}`);
    return s;
  };

  router.add('GET', '/v1/sensors/:id', (ctx) => {
    home.operator(ctx, 'readonly');
    return { status: 200, body: sensorView(getSensor(ctx.params[0])) };
  });

  const updateSensor = async (ctx: RequestContext) => {
    const { op } = home.operator(ctx, 'admin');
    const s = getSensor(ctx.params[0]);
    const body = asObject(await ctx.body(DICTIONARY_BODY_LIMIT_BYTES));
    const fields = sensorFields(body, false, (n) => store.dictionary(n) !== undefined);
    store.updateSensor(s.id, fields);
    const after = store.sensor(s.id)!;
    audit(op.name, 'sensor.change', `sensor:${s.id}`, { fields: Object.keys(fields), config_version: after.config_version }, ctx);
    log.write('config.sensor_changed', { sensor: s.id, fields: Object.keys(fields).join(','), config_version: after.config_version, by: op.name, peer: ctx.peer });
    return { status: 200, body: sensorView(after) };
  };
  router.add('PATCH', '/v1/sensors/:id', updateSensor);
  router.add('PUT', '/v1/sensors/:id', updateSensor);

  router.add('DELETE', '/v1/sensors/:id', (ctx) => {
    const { op } = home.operator(ctx, 'admin');
    const s = getSensor(ctx.params[0]);
    store.deleteSensor(s.id);
    home.online.delete(s.id);
    audit(op.name, 'sensor.delete', `sensor:${s.id}`, { name: s.name }, ctx);
    log.write('config.sensor_deleted', { sensor: s.id, name: s.name, by: op.name, peer: ctx.peer });
    return { status: 204 };
  });

  router.add('GET', '/v1/sensors/:id/status', (ctx) => {
    home.operator(ctx, 'readonly');
    const s = getSensor(ctx.params[0]);
    const hb = store.lastHeartbeat(s.id);
    const now = Date.now();
    const last = hb === undefined ? undefined : JSON.parse(hb.body) as Record<string, unknown>;
    return {
      status: 200,
      body: {
        sensor_id: s.id, name: s.name, enrolled: s.cert_serial !== null,
        online: hb !== undefined && now - hb.at < home.heartbeatTimeoutMs,
        last_heartbeat: hb === undefined ? null : new Date(hb.at).toISOString(),
        peer: hb?.peer ?? null,
        hark_version: last?.hark_version ?? null, started_at: last?.started_at ?? null,
        config_version: s.config_version, running_config_version: last?.config_version ?? null,
        config_source: last?.config_source ?? null,
        config_served_at: s.bundle_at, config_age_s: s.bundle_at === null ? null : Math.round((now - Date.parse(s.bundle_at)) / 1000),
        counters: last?.counters ?? {}, interfaces: last?.interfaces ?? [], queue: last?.queue ?? null, health: last?.health ?? [],
        captures_stored: store.captureCount(s.id),
        history: store.heartbeatHistory(s.id, STATUS_HISTORY).map((h) => ({ at: new Date(h.at).toISOString(), ...pick(JSON.parse(h.body) as Record<string, unknown>, ['config_version', 'queue']) })),
        pending_actions: store.pendingActions(s.id).map((a) => ({ id: a.id, kind: a.kind, created_at: a.created_at, delivered_at: a.delivered_at })),
      },
    };
  });

  // ---- actions ----
  router.add('POST', '/v1/sensors/:id/actions', async (ctx) => {
    const { op } = home.operator(ctx, 'lead');
    const s = getSensor(ctx.params[0]);
    const body = asObject(await ctx.body());
    const kind = body.kind;
    if (typeof kind !== 'string' || !(ACTION_KINDS as readonly string[]).includes(kind)) throw new HttpError(400, 'E_FIELD', `"kind" must be one of ${ACTION_KINDS.join(', ')}`);
    if (kind !== 'reload' && op.role !== 'admin') {
      log.write('security.forbidden', { peer: ctx.peer, user: op.name, role: op.role, need: 'admin', call: `action ${kind}` });
      throw new HttpError(403, 'E_ROLE', `Role "${op.role}" can only reload a sensor; "${kind}" needs "admin"`);
    }
    const id = store.addAction(s.id, kind, op.name);
    audit(op.name, `sensor.${kind}`, `sensor:${s.id}`, { action: id }, ctx);
    log.write(kind === 'reload' ? 'sensor.reload_requested' : `sensor.${kind}_requested`, { sensor: s.id, action: id, by: op.name, peer: ctx.peer });
    return { status: 202, body: { id, kind, status: 'pending' } };
  });

  router.add('GET', '/v1/sensors/:id/actions', (ctx) => {
    home.operator(ctx, 'readonly');
    const s = getSensor(ctx.params[0]);
    const limit = intParam(ctx.url.searchParams.get('limit'), 'limit', 1, 1000) ?? 100;
    return { status: 200, body: { actions: store.listActions(s.id, limit).map((a) => ({ ...a, ok: a.ok === null ? null : a.ok === 1 })) } };
  });

  // ---- dictionaries ----
  router.add('GET', '/v1/dictionaries', (ctx) => {
    home.operator(ctx, 'readonly');
    return { status: 200, body: { dictionaries: store.listDictionaries() } };
  });

  router.add('GET', '/v1/dictionaries/:name', (ctx) => {
    home.operator(ctx, 'readonly');
    const d = store.dictionary(ctx.params[0]);
    if (d === undefined) throw new HttpError(404, 'E_NOT_FOUND', `No dictionary "${ctx.params[0].slice(0, 64)}"`);
    return { status: 200, body: d };
  });

  router.add('PUT', '/v1/dictionaries/:name', async (ctx) => {
    const { op } = home.operator(ctx, 'admin');
    const name = dictionaryName(ctx.params[0]);
    const body = asObject(await ctx.body(DICTIONARY_BODY_LIMIT_BYTES));
    let checked;
    try {
      checked = checkUpload(name, body.format, body.text);
    } catch (err) {
      if (err instanceof DictionaryUploadError) {
        const reply = errorReply(err);
        return { ...reply, body: { ...(reply.body as object), problems: err.problems } };
      }
      throw err;
    }
    const bumped = store.transaction(() => {
      store.putDictionary(name, checked.format, checked.text, checked.phrases);
      return store.bumpSensorsUsing(name);
    });
    audit(op.name, 'dictionary.put', `dictionary:${name}`, { format: checked.format, phrases: checked.phrases, sensors: bumped }, ctx);
    log.write('config.dictionary_changed', { dictionary: name, phrases: checked.phrases, sensors: bumped, by: op.name, peer: ctx.peer });
    return { status: 200, body: { name, format: checked.format, phrases: checked.phrases, warnings: checked.warnings, sensors_updated: bumped } };
  });

  router.add('DELETE', '/v1/dictionaries/:name', (ctx) => {
    const { op } = home.operator(ctx, 'admin');
    const d = store.listDictionaries().find((x) => x.name === ctx.params[0]);
    if (d === undefined) throw new HttpError(404, 'E_NOT_FOUND', `No dictionary "${ctx.params[0].slice(0, 64)}"`);
    if (d.sensors > 0) throw new HttpError(409, 'E_IN_USE', `Dictionary "${d.name}" is used by ${d.sensors} sensor(s)`);
    store.deleteDictionary(d.name);
    audit(op.name, 'dictionary.delete', `dictionary:${d.name}`, undefined, ctx);
    log.write('config.dictionary_deleted', { dictionary: d.name, by: op.name, peer: ctx.peer });
    return { status: 204 };
  });

  // ---- settings (homes listed in bundles) ----
  router.add('GET', '/v1/settings', (ctx) => {
    home.operator(ctx, 'readonly');
    return { status: 200, body: { homes: JSON.parse(store.getSetting('homes') ?? '[]') } };
  });

  router.add('PUT', '/v1/settings', async (ctx) => {
    const { op } = home.operator(ctx, 'admin');
    const body = asObject(await ctx.body());
    if (!Array.isArray(body.homes) || body.homes.length > 8 || !body.homes.every((h) => typeof h === 'string' && /^https:\/\/[^\s/]+(:\d+)?\/?$/.test(h))) {
      throw new HttpError(400, 'E_FIELD', '"homes" must list at most 8 https://host[:port] URLs');
    }
    store.transaction(() => {
      store.setSetting('homes', JSON.stringify(body.homes));
      store.bumpAllSensors();
    });
    audit(op.name, 'settings.change', 'homes', { homes: body.homes }, ctx);
    log.write('config.homes_changed', { homes: (body.homes as string[]).join(','), by: op.name, peer: ctx.peer });
    return { status: 204 };
  });

  // ---- site keys ----
  router.add('GET', '/v1/site-keys', (ctx) => {
    home.operator(ctx, 'admin');
    return { status: 200, body: { site_keys: store.listSiteKeys().map((k) => ({ id: k.id, label: k.label, created_at: k.created_at, created_by: k.created_by, revoked_at: k.revoked_at, active: k.revoked_at === null })) } };
  });

  router.add('POST', '/v1/site-keys', async (ctx) => {
    const { op } = home.operator(ctx, 'admin');
    const body = asObject(await ctx.body());
    const key = reqStr(body, 'key', MAX_SITE_KEY_CHARS);
    if ([...key].length < MIN_SITE_KEY_CHARS) throw new HttpError(400, 'E_FIELD', `"key" must have at least ${MIN_SITE_KEY_CHARS} characters`);
    const label = (str(body, 'label', { max: 100, optional: true }) ?? '').trim();
    const salt = randomBytes(16).toString('hex');
    const id = store.addSiteKey(label, salt, siteKeyDigest(key, salt), op.name);
    audit(op.name, 'site_key.add', `site_key:${id}`, { label }, ctx);
    log.write('config.site_key_added', { id, label, by: op.name, peer: ctx.peer });
    return { status: 201, body: { id, label } };
  });

  router.add('DELETE', '/v1/site-keys/:id', (ctx) => {
    const { op } = home.operator(ctx, 'admin');
    const id = positiveId(ctx.params[0], 'site key');
    if (!store.revokeSiteKey(id)) throw new HttpError(404, 'E_NOT_FOUND', `No active site key ${id}`);
    audit(op.name, 'site_key.revoke', `site_key:${id}`, undefined, ctx);
    log.write('config.site_key_revoked', { id, by: op.name, peer: ctx.peer });
    return { status: 204 };
  });

  // ---- enrolments ----
  router.add('GET', '/v1/enrolments', (ctx) => {
    home.operator(ctx, 'readonly');
    const status = ctx.url.searchParams.get('status') ?? undefined;
    const limit = intParam(ctx.url.searchParams.get('limit'), 'limit', 1, 1000) ?? 100;
    store.expireEnrolments(Date.now());
    return { status: 200, body: { enrolments: store.listEnrolments(status, limit).map(enrolmentView) } };
  });

  const pendingEnrolment = (code: string): EnrolmentRow => {
    const e = store.enrolmentByCode(code.toUpperCase());
    if (e === undefined) throw new HttpError(404, 'E_NOT_FOUND', `No enrolment request with code "${code.slice(0, 20)}"`);
    if (e.status !== 'pending') throw new HttpError(409, 'E_STATE', `Enrolment ${e.code} is ${e.status} already`);
    if (e.expires_at <= Date.now()) throw new HttpError(409, 'E_STATE', `Enrolment ${e.code} has expired; the sensor must ask again`);
    return e;
  };

  router.add('POST', '/v1/enrolments/:code/approve', async (ctx) => {
    const { op } = home.operator(ctx, 'admin');
    const e = pendingEnrolment(ctx.params[0]);
    const body = asObject(await ctx.body());
    const sid = body.sensor_id;
    if (!Number.isInteger(sid) || store.sensor(sid as number) === undefined) throw new HttpError(400, 'E_FIELD', `"sensor_id" must name a sensor on this home`);
    const certificate = home.enrolSensor(sid as number, e.uuid, e.hostname, e.csr, op.name, ctx.peer);
    store.decideEnrolment(e.id, 'approved', op.name, sid as number, certificate);
    audit(op.name, 'enrol.approve', `sensor:${sid}`, { code: e.code, uuid: e.uuid, hostname: e.hostname }, ctx);
    return { status: 200, body: { code: e.code, sensor_id: sid, status: 'approved' } };
  });

  router.add('POST', '/v1/enrolments/:code/reject', (ctx) => {
    const { op } = home.operator(ctx, 'admin');
    const e = pendingEnrolment(ctx.params[0]);
    store.decideEnrolment(e.id, 'rejected', op.name, null, null);
    audit(op.name, 'enrol.reject', `enrolment:${e.code}`, { uuid: e.uuid, hostname: e.hostname }, ctx);
    log.write('enrol.rejected', { code: e.code, uuid: e.uuid, by: op.name, peer: ctx.peer });
    return { status: 200, body: { code: e.code, status: 'rejected' } };
  });

  // ---- captures ----
  router.add('GET', '/v1/captures', (ctx) => {
    home.operator(ctx, 'readonly');
    const q = ctx.url.searchParams;
    const time = (name: string): number | undefined => {
      const v = q.get(name);
      if (v === null || v === '') return undefined;
      const ms = Date.parse(v);
      if (!Number.isFinite(ms)) throw new HttpError(400, 'E_QUERY', `"${name}" must be an ISO date-time, not "${v.slice(0, 40)}"`);
      return ms * 1000;
    };
    const rows = store.captures({
      since_us: time('since'), until_us: time('until'),
      sensor_id: intParam(q.get('sensor'), 'sensor', 1, Number.MAX_SAFE_INTEGER),
      min_severity: intParam(q.get('min_severity'), 'min_severity', 0, 5),
      category: q.get('category') ?? undefined,
      limit: intParam(q.get('limit'), 'limit', 1, 1000) ?? 100,
    });
    const captures = rows.map((r) => ({ ...(JSON.parse(r.event) as object), sensor_id: r.sensor_id, received_at: new Date(r.received_at).toISOString(), triage: r.triage === null ? null : JSON.parse(r.triage) }));
    return { status: 200, body: { captures } };
  });

  router.add('PATCH', '/v1/captures/:id', async (ctx) => {
    const { op } = home.operator(ctx, 'lead');
    const body = asObject(await ctx.body());
    const note = (str(body, 'note', { max: MAX_NOTE_CHARS, optional: true }) ?? '');
    return { status: 200, body: applyTriage(store, ctx.params[0], body.status, note, op.name, ctx.peer) };
  });

  // ---- audit ----
  router.add('GET', '/v1/audit', (ctx) => {
    home.operator(ctx, 'readonly');
    const q = ctx.url.searchParams;
    const rows = store.listAudit({ since: q.get('since') ?? undefined, action: q.get('action') ?? undefined, limit: intParam(q.get('limit'), 'limit', 1, 1000) ?? 100 });
    return { status: 200, body: { audit: rows.map((r) => ({ ...r, detail: r.detail === null ? null : JSON.parse(r.detail) })) } };
  });
}

function pick(o: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

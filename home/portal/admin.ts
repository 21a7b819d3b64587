/**
 * Portal pages for running sensors: the sensor list (online / offline, last heartbeat, version,
 * config source and age, packet rate, drops, upload queue) with enrol / approve, configuration edits
 * and reload / restart / reset; dictionaries (import CSV, edit the source, the phrases with how
 * often each fired in 30 days and which never did); the allow list of each sensor with the
 * second-level-domain rule checked before saving. Roles: reading for all, reload for lead, the
 * rest admin. Input: requests. Output: HTML, redirects after changes.
 */

import { checkDictionarySource } from '../../rules/check.js';
import { checkAllowListEntry } from '../../sensor/policy/allow-list.js';
import type { HomeCore } from '../core.js';
import { checkUpload, dictionaryName, DictionaryUploadError, sensorFields } from '../definition.js';
import {
  DEFAULT_BODY_LIMIT_BYTES, DEFAULT_DEDUP_WINDOW_SECS, MAX_BODY_LIMIT_BYTES, MAX_DEDUP_WINDOW_SECS, MIN_BODY_LIMIT_BYTES, MIN_DEDUP_WINDOW_SECS, type InspectionConfig,
} from '../../sensor/inspect/inspection-settings.js';
import { HttpError, type Reply, type RequestContext, type Router } from '../http.js';
import type { SensorRow } from '../store.js';
import type { PortalQueries } from './queries.js';
import { can, csrfField, html, htmlReply, page, redirect, type Html, type PortalAuth, type PortalUser } from './web.js';

export interface AdminDeps { home: HomeCore; auth: PortalAuth; queries: PortalQueries }
type Wrap = (h: (ctx: RequestContext) => Promise<Reply> | Reply) => (ctx: RequestContext) => Promise<Reply>;

const DAY_MS = 86_400_000;
/** Phrase statistics look back this far. */
export const PHRASE_STATS_DAYS = 30;

function ago(ms: number | null): string {
  if (ms === null) return 'never';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : s < 172800 ? `${Math.round(s / 3600)} h ago` : `${Math.round(s / 86400)} days ago`;
}

function sensorStatus(d: AdminDeps, s: SensorRow): Record<string, unknown> {
  const hb = d.home.store.lastHeartbeat(s.id);
  let last: Record<string, unknown> = {};
  try { last = hb === undefined ? {} : JSON.parse(hb.body) as Record<string, unknown>; } catch { last = {}; }
  const hist = d.home.store.heartbeatHistory(s.id, 2);
  let rate: number | undefined;
  if (hist.length === 2) {
    const a = JSON.parse(hist[0].body) as { packets?: number };
    const b = JSON.parse(hist[1].body) as { packets?: number };
    const dt = (hist[0].at - hist[1].at) / 1000;
    if (dt > 0 && typeof a.packets === 'number' && typeof b.packets === 'number' && a.packets >= b.packets) rate = (a.packets - b.packets) / dt;
  }
  const ifaces = Array.isArray(last.interfaces) ? last.interfaces as Array<{ drops?: number }> : [];
  return {
    online: hb !== undefined && Date.now() - hb.at < d.home.heartbeatTimeoutMs, at: hb?.at ?? null, version: last.hark_version ?? '', source: last.config_source ?? '',
    running: last.config_version ?? '', rate, drops: ifaces.reduce((a, i) => a + (typeof i.drops === 'number' ? i.drops : 0), 0), queue: last.queue ?? '',
  };
}

function sensorsPage(d: AdminDeps, u: PortalUser): Html {
  const sensors = d.home.store.listSensors();
  const enrolments = d.home.store.listEnrolments('pending', 100).filter((e) => e.expires_at > Date.now());
  const admin = can(u, 'admin');
  const action = (s: SensorRow, kind: string, need: 'lead' | 'admin') => (can(u, need) ? html`<form class="inline" method="post" action="/sensors/${s.id}/actions"${kind === 'reload' ? '' : html` data-confirm="${kind} ${s.name}?"`}>${csrfField(u)}<input type="hidden" name="kind" value="${kind}"><button type="submit" class="${kind === 'reload' ? '' : 'danger'}">${kind}</button></form> ` : '');
  return html`<h1>Sensors</h1><table id="sensors"><thead><tr><th>Sensor</th><th>State</th><th>Last heartbeat</th><th>Version</th><th>Config (source, running / current, served)</th><th>Packets/s</th><th>Drops</th><th>Upload queue</th><th></th></tr></thead><tbody>
  ${sensors.map((s) => { const st = sensorStatus(d, s); return html`<tr><td><a href="/sensors/${s.id}">${s.name}</a><br><span class="src">${s.site} · ${s.cert_serial === null ? 'not enrolled' : `enrolled ${s.enrolled_at ?? ''}`}</span></td>
    <td>${st.online ? html`<span class="good">online</span>` : html`<span class="bad">offline</span>`}</td><td>${ago(st.at as number | null)}</td><td>${st.version}</td>
    <td>${st.source} ${st.running} / ${s.config_version}, ${s.bundle_at === null ? 'never served' : ago(Date.parse(s.bundle_at))}</td><td>${st.rate === undefined ? '-' : (st.rate as number).toFixed(0)}</td><td>${st.drops}</td><td>${st.queue}</td>
    <td>${action(s, 'reload', 'lead')}${action(s, 'restart', 'admin')}${action(s, 'reset', 'admin')}</td></tr>`; })}</tbody></table>
  <h2>Enrolment requests</h2>${enrolments.length === 0 ? html`<p class="empty">None waiting. A sensor asks with <code>hark enrol --home URL</code> and shows a code.</p>` : html`<table id="enrolments"><thead><tr><th>Code</th><th>Host</th><th>From</th><th>Requested</th><th></th></tr></thead><tbody>
    ${enrolments.map((e) => html`<tr><td>${e.code}</td><td>${e.hostname}</td><td>${e.peer ?? ''}</td><td>${ago(e.created_at)}</td><td>${admin ? html`<form class="inline" method="post" action="/enrolments/${e.code}/approve">${csrfField(u)}<select name="sensor_id">${sensors.map((s) => html`<option value="${s.id}">${s.name}</option>`)}</select> <button type="submit">Approve</button></form>
      <form class="inline" method="post" action="/enrolments/${e.code}/reject">${csrfField(u)}<button type="submit" class="danger">Reject</button></form>` : ''}</td></tr>`)}</tbody></table>`}
  ${admin ? html`<h2>Add a sensor</h2><form method="post" action="/sensors" class="filters">${csrfField(u)}<label>Name <input name="name" required></label><label>Site <input name="site"></label><label>Interfaces <input name="interfaces" placeholder="eth1 eth2"></label><label>Monitored networks <input name="monitored" placeholder="10.0.0.0/8"></label><button type="submit">Add</button></form>` : ''}`;
}

function sensorPage(d: AdminDeps, u: PortalUser, s: SensorRow): Html {
  const admin = can(u, 'admin');
  const dicts = d.home.store.listDictionaries();
  const ro = admin ? '' : html` disabled`;
  const inspection = JSON.parse(s.inspection) as InspectionConfig;
  return html`<p><a href="/sensors">&larr; Sensors</a></p><h1>${s.name}</h1>
  <form method="post" action="/sensors/${s.id}" class="filters" id="sensor-form">${csrfField(u)}
    <label>Name <input name="name" value="${s.name}"${ro}></label><label>Site <input name="site" value="${s.site}"${ro}></label>
    <label>Interfaces <input name="interfaces" value="${(JSON.parse(s.interfaces) as string[]).join(' ')}"${ro}></label>
    <label>Monitored networks <input name="monitored" value="${(JSON.parse(s.monitored) as string[]).join(' ')}"${ro}></label>
    <label>Ignored networks <input name="ignored" value="${(JSON.parse(s.ignored) as string[]).join(' ')}"${ro}></label>
    <label>Capture filter (BPF) <input name="bpf" value="${s.bpf}"${ro}></label>
    <label>Dictionary <select name="dictionary"${ro}>${dicts.map((x) => html`<option${x.name === s.dictionary ? html` selected` : ''}>${x.name}</option>`)}</select></label>
    <label>Alert e-mail <input name="alert_email" value="${s.alert_email}"${ro}></label>
    <label>Merge window (seconds) <input name="dedup_window_seconds" type="number" min="${MIN_DEDUP_WINDOW_SECS}" max="${MAX_DEDUP_WINDOW_SECS}" step="1" value="${inspection.dedup_window_seconds ?? ''}" placeholder="${DEFAULT_DEDUP_WINDOW_SECS} (default)"${ro}>
      <span class="src">repeats of a phrase by a device on a URL within it are one capture; 0: every repeat is a capture; empty: the sensor's default</span></label>
    <label>Body limit (bytes) <input name="body_limit_bytes" type="number" min="${MIN_BODY_LIMIT_BYTES}" max="${MAX_BODY_LIMIT_BYTES}" step="1" value="${inspection.body_limit_bytes ?? ''}" placeholder="${DEFAULT_BODY_LIMIT_BYTES} (default)"${ro}>
      <span class="src">decoded body bytes inspected per message, at most ${MAX_BODY_LIMIT_BYTES}; the rest is counted as http.body_truncated; empty: the sensor's default. Both apply from the sensor's next start (restart)</span></label>
    ${admin ? html`<button type="submit">Save (sensors reload on their next heartbeat)</button>` : ''}</form>
  <p>Configuration version ${s.config_version}; allow list: <a href="/allow-list?sensor=${s.id}">${s.allow_list.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')).length} entries</a>.</p>`;
}

const words = (v: string | undefined): string[] => (v ?? '').split(/[\s,]+/).filter((x) => x !== '');

/** An inspection setting from the form: empty is unset (the sensor's default); digits a number; anything else as typed, for sensorFields to refuse by name. */
function formInteger(v: string | undefined): number | string | undefined {
  const t = (v ?? '').trim();
  if (t === '') return undefined;
  return /^\d{1,15}$/.test(t) ? Number(t) : t;
}

function dictionariesPage(d: AdminDeps, u: PortalUser): Html {
  const list = d.home.store.listDictionaries();
  return html`<h1>Dictionaries</h1><table id="dictionaries"><thead><tr><th>Name</th><th>Format</th><th>Phrases</th><th>Used by sensors</th><th>Updated</th></tr></thead><tbody>
  ${list.map((x) => html`<tr><td><a href="/dictionaries/${x.name}">${x.name}</a></td><td>${x.format}</td><td>${x.phrases}</td><td>${x.sensors}</td><td>${x.updated_at}</td></tr>`)}</tbody></table>
  ${can(u, 'admin') ? html`<h2>Import a CSV dictionary</h2><form method="post" action="/dictionaries" id="import-form">${csrfField(u)}
    <p><label>Name <input name="name" required pattern="[a-z0-9][a-z0-9_.-]{0,63}"></label> <label>Format <select name="format"><option>csv</option><option>pack</option></select></label>
    <input type="file" accept=".csv,.json,text/csv,application/json" data-into="import-text"></p>
    <p><textarea name="text" id="import-text" rows="10" cols="100" placeholder="phrase,category,severity,embedded,exclusions"></textarea></p><button type="submit">Import</button></form>` : ''}`;
}

function dictionaryPage(d: AdminDeps, u: PortalUser, name: string): Html {
  const row = d.home.store.dictionary(name);
  if (row === undefined) throw new HttpError(404, 'E_NOT_FOUND', `No dictionary "${name.slice(0, 64)}"`);
  const checked = checkDictionarySource(row.text, row.format === 'csv' ? 'csv' : 'json', row.name);
  const hits = d.queries.phraseHits((Date.now() - PHRASE_STATS_DAYS * DAY_MS) * 1000);
  const phrases = checked.dictionary.phrases.map((p) => ({ p, n: hits.get(p.phrase.toLowerCase()) ?? 0 }));
  const top = [...phrases].filter((x) => x.n > 0).sort((a, b) => b.n - a.n).slice(0, 20);
  const never = phrases.filter((x) => x.n === 0);
  return html`<p><a href="/dictionaries">&larr; Dictionaries</a></p><h1>Dictionary ${row.name}</h1><p>${phrases.length} phrases, ${row.format}, updated ${row.updated_at}.</p>
  <div class="cards"><div class="card"><h2>Fire most (${PHRASE_STATS_DAYS} days)</h2>${top.length === 0 ? html`<p class="empty">No captures yet.</p>` : html`<table id="fire-most"><tbody>${top.map((x) => html`<tr><td>${x.p.phrase}</td><td>${x.n}</td></tr>`)}</tbody></table>`}</div>
  <div class="card"><h2>Never fired (${never.length})</h2><p class="src">${never.slice(0, 200).map((x) => x.p.phrase).join(', ')}${never.length > 200 ? ' ...' : ''}</p></div></div>
  <h2>Phrases</h2><table id="phrases"><thead><tr><th>Phrase</th><th>Category</th><th>Severity</th><th>Embedded</th><th>Exclusions</th><th>Captures (${PHRASE_STATS_DAYS} d)</th></tr></thead><tbody>
  ${phrases.slice(0, 2000).map((x) => html`<tr><td>${x.p.phrase}</td><td>${x.p.category}</td><td>${x.p.severity}</td><td>${x.p.embedded ? 'yes' : 'no'}</td><td>${x.p.exclusions.join('; ')}</td><td>${x.n}</td></tr>`)}</tbody></table>
  ${can(u, 'admin') ? html`<h2>Edit</h2><form method="post" action="/dictionaries" id="edit-form">${csrfField(u)}<input type="hidden" name="name" value="${row.name}"><input type="hidden" name="format" value="${row.format === 'csv' ? 'csv' : 'pack'}">
    <p>The whole dictionary source (${row.format}): one phrase per row with category, severity, embedded and exclusions. It is checked before it is saved; sensors using it reload.</p>
    <textarea name="text" rows="20" cols="120">${row.text}</textarea><p><button type="submit">Save</button></p></form>` : ''}`;
}

function allowListPage(d: AdminDeps, u: PortalUser, sensorId: number | undefined, problems: string[] = [], draft?: string): Html {
  const sensors = d.home.store.listSensors();
  const s = sensors.find((x) => x.id === sensorId) ?? sensors[0];
  if (s === undefined) return html`<h1>Allow list</h1><p class="empty">No sensors yet.</p>`;
  return html`<h1>Allow list</h1>
  <p>Domains on the allow list are never captured or stored. The rule: an entry must be a registrable domain (the "second-level" name a school or company buys, such as <code>bbc.co.uk</code> or <code>example.com</code>) or a name below it; it covers every subdomain. Public suffixes (<code>com</code>, <code>co.uk</code>, <code>github.io</code>) and IP addresses are refused: they would exempt whole registries or hosting platforms.</p>
  <p>Sensor: ${sensors.map((x) => html`<a href="/allow-list?sensor=${x.id}"${x.id === s.id ? html` class="active"` : ''}>${x.name}</a> `)}</p>
  ${problems.length > 0 ? html`<div class="error" id="allow-problems">${problems.map((p) => html`<div>${p}</div>`)}</div>` : ''}
  <form method="post" action="/allow-list" id="allow-form">${csrfField(u)}<input type="hidden" name="sensor" value="${s.id}">
  <textarea name="text" rows="16" cols="80"${can(u, 'admin') ? '' : html` disabled`}>${draft ?? s.allow_list}</textarea>
  ${can(u, 'admin') ? html`<p><button type="submit">Check and save</button></p>` : ''}</form>`;
}

/** The entry problems of an allow-list text (the sensor refuses a list with any). */
export function allowListProblems(text: string): string[] {
  const out: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const entry = line.replace(/#.*/, '').trim();
    if (entry === '') return;
    const c = checkAllowListEntry(entry);
    if (c.error !== undefined) out.push(`Line ${i + 1}: ${c.error}`);
  });
  return out;
}

export function registerAdminPages(router: Router, d: AdminDeps, wrap: Wrap): void {
  const { home, auth } = d;
  const view = (title: string, active: string, body: (u: PortalUser, ctx: RequestContext) => Html) => wrap((ctx) => {
    const u = auth.page(ctx);
    if (!('op' in u)) return u;
    return htmlReply(page(title, u, body(u, ctx), active));
  });
  const sensorOf = (text: string): SensorRow => {
    const s = /^\d{1,9}$/.test(text) ? home.store.sensor(Number(text)) : undefined;
    if (s === undefined) throw new HttpError(404, 'E_NOT_FOUND', 'No such sensor');
    return s;
  };

  router.add('GET', '/sensors', view('Sensors', '/sensors', (u) => sensorsPage(d, u)));
  router.add('GET', '/sensors/:id', view('Sensor', '/sensors', (u, ctx) => sensorPage(d, u, sensorOf(ctx.params[0]))));

  router.add('POST', '/sensors', wrap(async (ctx) => {
    const { user, form } = await auth.change(ctx, 'admin');
    const f = sensorFields({ name: form.get('name'), site: form.get('site') ?? '', interfaces: words(form.get('interfaces')), monitored: words(form.get('monitored')) }, true, (n) => home.store.dictionary(n) !== undefined);
    const id = home.store.addSensor(f as typeof f & { name: string });
    home.store.audit(user.op.name, 'sensor.add', `sensor:${id}`, { name: f.name }, ctx.peer);
    home.log.write('config.sensor_added', { sensor: id, name: f.name, by: user.op.name, peer: ctx.peer });
    return redirect(`/sensors/${id}`);
  }));

  router.add('POST', '/sensors/:id', wrap(async (ctx) => {
    const { user, form } = await auth.change(ctx, 'admin');
    const s = sensorOf(ctx.params[0]);
    const f = sensorFields({
      name: form.get('name'), site: form.get('site'), interfaces: words(form.get('interfaces')), monitored: words(form.get('monitored')),
      ignored: words(form.get('ignored')), bpf: form.get('bpf'), dictionary: form.get('dictionary'), alert_email: form.get('alert_email'),
      inspection: { dedup_window_seconds: formInteger(form.get('dedup_window_seconds')), body_limit_bytes: formInteger(form.get('body_limit_bytes')) },
    }, false, (n) => home.store.dictionary(n) !== undefined);
    home.store.updateSensor(s.id, f);
    home.store.audit(user.op.name, 'sensor.change', `sensor:${s.id}`, { fields: Object.keys(f) }, ctx.peer);
    home.log.write('config.sensor_changed', { sensor: s.id, by: user.op.name, peer: ctx.peer });
    return redirect(`/sensors/${s.id}`);
  }));

  router.add('POST', '/sensors/:id/actions', wrap(async (ctx) => {
    const { user, form } = await auth.change(ctx, 'lead');
    const s = sensorOf(ctx.params[0]);
    const kind = form.get('kind') ?? '';
    if (!['reload', 'restart', 'reset'].includes(kind)) throw new HttpError(400, 'E_FIELD', 'Unknown action');
    if (kind !== 'reload') auth.requireRole(ctx, user, 'admin');
    const id = home.store.addAction(s.id, kind, user.op.name);
    home.store.audit(user.op.name, `sensor.${kind}`, `sensor:${s.id}`, { action: id }, ctx.peer);
    home.log.write(`sensor.${kind}_requested`, { sensor: s.id, action: id, by: user.op.name, peer: ctx.peer });
    return redirect('/sensors');
  }));

  for (const verdict of ['approve', 'reject'] as const) {
    router.add('POST', `/enrolments/:code/${verdict}`, wrap(async (ctx) => {
      const { user, form } = await auth.change(ctx, 'admin');
      const e = home.store.enrolmentByCode(ctx.params[0].toUpperCase());
      if (e === undefined || e.status !== 'pending' || e.expires_at <= Date.now()) throw new HttpError(409, 'E_STATE', 'This enrolment request is no longer waiting');
      if (verdict === 'approve') {
        const sid = Number(form.get('sensor_id'));
        if (!Number.isInteger(sid) || home.store.sensor(sid) === undefined) throw new HttpError(400, 'E_FIELD', 'Choose a sensor');
        const certificate = home.enrolSensor(sid, e.uuid, e.hostname, e.csr, user.op.name, ctx.peer);
        home.store.decideEnrolment(e.id, 'approved', user.op.name, sid, certificate);
        home.store.audit(user.op.name, 'enrol.approve', `sensor:${sid}`, { code: e.code, uuid: e.uuid }, ctx.peer);
      } else {
        home.store.decideEnrolment(e.id, 'rejected', user.op.name, null, null);
        home.store.audit(user.op.name, 'enrol.reject', `enrolment:${e.code}`, { uuid: e.uuid }, ctx.peer);
      }
      return redirect('/sensors');
    }));
  }

  router.add('GET', '/dictionaries', view('Dictionaries', '/dictionaries', (u) => dictionariesPage(d, u)));
  router.add('GET', '/dictionaries/:name', view('Dictionary', '/dictionaries', (u, ctx) => dictionaryPage(d, u, ctx.params[0])));
  router.add('POST', '/dictionaries', wrap(async (ctx) => {
    const { user, form } = await auth.change(ctx, 'admin');
    const name = dictionaryName(form.get('name') ?? '');
    let checked;
    try {
      checked = checkUpload(name, form.get('format'), form.get('text'));
    } catch (err) {
      if (err instanceof DictionaryUploadError) throw new HttpError(400, 'E_DICTIONARY', err.message);
      throw err;
    }
    const bumped = home.store.transaction(() => {
      home.store.putDictionary(name, checked.format, checked.text, checked.phrases);
      return home.store.bumpSensorsUsing(name);
    });
    home.store.audit(user.op.name, 'dictionary.put', `dictionary:${name}`, { format: checked.format, phrases: checked.phrases, sensors: bumped }, ctx.peer);
    home.log.write('config.dictionary_changed', { dictionary: name, phrases: checked.phrases, sensors: bumped, by: user.op.name, peer: ctx.peer });
    return redirect(`/dictionaries/${name}`);
  }));

  router.add('GET', '/allow-list', view('Allow list', '/allow-list', (u, ctx) => {
    const s = ctx.url.searchParams.get('sensor');
    return allowListPage(d, u, s !== null && /^\d{1,9}$/.test(s) ? Number(s) : undefined);
  }));
  router.add('POST', '/allow-list', wrap(async (ctx) => {
    const { user, form } = await auth.change(ctx, 'admin');
    const s = sensorOf(form.get('sensor') ?? '');
    const text = form.get('text') ?? '';
    const problems = allowListProblems(text);
    if (problems.length > 0) return htmlReply(page('Allow list', user, allowListPage(d, user, s.id, problems, text), '/allow-list'), 400);
    const f = sensorFields({ allow_list: text }, false, () => true);
    home.store.updateSensor(s.id, f);
    home.store.audit(user.op.name, 'sensor.change', `sensor:${s.id}`, { fields: ['allow_list'] }, ctx.peer);
    home.log.write('config.sensor_changed', { sensor: s.id, fields: 'allow_list', by: user.op.name, peer: ctx.peer });
    return redirect(`/allow-list?sensor=${s.id}`);
  }));
}

/**
 * Portal pages for captures: the filtered list (filters travel in POST bodies, never in URLs, so no
 * search text or user name lands in browser history, proxies or logs), the detail page (phrase
 * highlighted in context, URL, device and identity sources, neighbours by user, evidence image,
 * notes, audit trail; each view audited) and triage (lead or admin). Input: requests. Output: HTML.
 */

import type { HomeCore } from '../core.js';
import { EvidenceStore } from '../evidence.js';
import { HttpError, type Reply, type RequestContext, type Router } from '../http.js';
import type { CaptureRow, SensorRow } from '../store.js';
import { applyTriage, MAX_NOTE_CHARS, TRIAGE_LABELS, TRIAGE_STATES, triageState, type TriageState } from '../triage.js';
import { PortalQueries, type CaptureFilter } from './queries.js';
import { can, csrfField, html, htmlReply, page, type Html, type PortalAuth, type PortalUser } from './web.js';

export const SEVERITY_LABELS = ['info', 'low', 'low', 'medium', 'high', 'critical'] as const;
const DAY_US = 86_400_000_000;

interface CapturesDeps { home: HomeCore; auth: PortalAuth; queries: PortalQueries; evidence: EvidenceStore; rendererAvailable: boolean }

export function isoTime(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** The context with the phrase marked: the sensor's `[[...]]` markers, else each occurrence of the phrase. */
export function highlightContext(context: string, phrase: string): Html {
  const parts: Html[] = [];
  if (context.includes('[[')) {
    const re = /\[\[(.+?)\]\]/g;
    let last = 0;
    for (const m of context.matchAll(re)) {
      parts.push(html`${context.slice(last, m.index)}<mark>${m[1]}</mark>`);
      last = (m.index ?? 0) + m[0].length;
    }
    parts.push(html`${context.slice(last)}`);
    return html`${parts}`;
  }
  const lower = context.toLowerCase();
  const p = phrase.toLowerCase();
  let last = 0;
  if (p !== '') {
    for (let i = lower.indexOf(p); i >= 0; i = lower.indexOf(p, i + p.length)) {
      parts.push(html`${context.slice(last, i)}<mark>${context.slice(i, i + p.length)}</mark>`);
      last = i + p.length;
    }
  }
  parts.push(html`${context.slice(last)}`);
  return html`${parts}`;
}

function dayUs(v: string | undefined, endOfDay: boolean): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(v)) throw new HttpError(400, 'E_FIELD', 'Dates must be YYYY-MM-DD');
  const ms = Date.parse(`${v}T00:00:00Z`);
  if (!Number.isFinite(ms)) throw new HttpError(400, 'E_FIELD', 'Dates must be YYYY-MM-DD');
  return ms * 1000 + (endOfDay ? DAY_US : 0);
}

const text = (form: Map<string, string>, k: string, max = 256): string | undefined => {
  const v = form.get(k)?.trim();
  return v === undefined || v === '' ? undefined : v.slice(0, max);
};

/** The filter a list form describes (strings as typed; validated here). */
export function filterFromForm(form: Map<string, string>): CaptureFilter {
  const f: CaptureFilter = {};
  f.since_us = dayUs(text(form, 'from'), false);
  f.until_us = dayUs(text(form, 'to'), true);
  const sev = text(form, 'severity');
  if (sev !== undefined) {
    const m = /^(>=)?([0-5])$/.exec(sev);
    if (m === null) throw new HttpError(400, 'E_FIELD', 'Severity must be 0-5');
    if (m[1] === '>=') f.min_severity = Number(m[2]); else f.severity = Number(m[2]);
  }
  f.category = text(form, 'category', 128);
  const sensor = text(form, 'sensor');
  if (sensor !== undefined) {
    if (!/^\d{1,9}$/.test(sensor)) throw new HttpError(400, 'E_FIELD', 'Unknown sensor');
    f.sensor_id = Number(sensor);
  }
  f.site = text(form, 'site', 200);
  f.user = text(form, 'user');
  f.device = text(form, 'device');
  f.host = text(form, 'host', 512);
  const source = text(form, 'source');
  if (source !== undefined) {
    if (source !== 'typed' && source !== 'viewed') throw new HttpError(400, 'E_FIELD', 'Source must be typed or viewed');
    f.source = source;
  }
  const status = text(form, 'status') ?? 'open';
  if (status !== 'any') {
    if (status !== 'open' && status !== 'closed' && triageState(status) === undefined) throw new HttpError(400, 'E_FIELD', 'Unknown status');
    f.status = status;
  }
  f.text = text(form, 'q', 400);
  const beforeTs = text(form, 'before_ts');
  const beforeId = text(form, 'before_id', 128);
  if (beforeTs !== undefined && beforeId !== undefined && /^\d{1,17}$/.test(beforeTs)) f.before = { ts_us: Number(beforeTs), id: beforeId };
  for (const k of Object.keys(f) as Array<keyof CaptureFilter>) if (f[k] === undefined) delete f[k];
  return f;
}

function option(value: string, label: string, selected: string | undefined): Html {
  return html`<option value="${value}"${selected === value ? html` selected` : ''}>${label}</option>`;
}

function filterForm(u: PortalUser, form: Map<string, string>, sensors: SensorRow[]): Html {
  const v = (k: string): string => form.get(k) ?? '';
  const sites = [...new Set(sensors.map((s) => s.site).filter((s) => s !== ''))].sort();
  const status = form.get('status') ?? 'open';
  return html`<form class="filters" method="post" action="/captures" id="filters">${csrfField(u)}
  <label>Search <input type="search" name="q" value="${v('q')}" placeholder="phrase, context or URL"></label>
  <label>From <input type="date" name="from" value="${v('from')}"></label>
  <label>To <input type="date" name="to" value="${v('to')}"></label>
  <label>Severity <select name="severity">${option('', 'any', v('severity'))}${[5, 4, 3, 2, 1, 0].map((s) => option(`>=${s}`, `${s}+ (${SEVERITY_LABELS[s]})`, v('severity')))}${[5, 4, 3, 2, 1, 0].map((s) => option(String(s), `exactly ${s}`, v('severity')))}</select></label>
  <label>Category <input name="category" value="${v('category')}"></label>
  <label>Sensor <select name="sensor">${option('', 'any', v('sensor'))}${sensors.map((s) => option(String(s.id), s.name, v('sensor')))}</select></label>
  <label>Site <select name="site">${option('', 'any', v('site'))}${sites.map((s) => option(s, s, v('site')))}</select></label>
  <label>User <input name="user" value="${v('user')}"></label>
  <label>Device <input name="device" value="${v('device')}" placeholder="IP or host name"></label>
  <label>Website <input name="host" value="${v('host')}" placeholder="host"></label>
  <label>Typed / viewed <select name="source">${option('', 'both', v('source'))}${option('typed', 'typed', v('source'))}${option('viewed', 'viewed', v('source'))}</select></label>
  <label>Status <select name="status">${option('open', 'open (incl. escalated)', status)}${option('closed', 'closed (incl. false positive)', status)}${TRIAGE_STATES.map((s) => option(s, `only ${TRIAGE_LABELS[s].toLowerCase()}`, status))}${option('any', 'any', status)}</select></label>
  <button type="submit" id="apply-filters">Apply</button>
</form>`;
}

function severityBadge(s: number): Html {
  return html`<span class="sev sev${s}">${s} ${SEVERITY_LABELS[s] ?? ''}</span>`;
}

function statusBadge(s: string): Html {
  return html`<span class="status st-${s}">${TRIAGE_LABELS[s as TriageState] ?? s}</span>`;
}

function listPage(d: CapturesDeps, u: PortalUser, form: Map<string, string>): Reply {
  const filter = filterFromForm(form);
  const sensors = d.home.store.listSensors();
  const names = new Map(sensors.map((s) => [s.id, s.name]));
  const { rows, more } = d.queries.captureList(filter);
  const last = rows[rows.length - 1];
  const keep = [...form.entries()].filter(([k]) => k !== '_csrf' && k !== 'before_ts' && k !== 'before_id');
  const pager = html`<div class="pager">
    ${filter.before !== undefined ? html`<form method="post" action="/captures">${csrfField(u)}${keep.map(([k, val]) => html`<input type="hidden" name="${k}" value="${val}">`)}<button type="submit">Newest</button></form>` : ''}
    ${more && last !== undefined ? html`<form method="post" action="/captures">${csrfField(u)}${keep.map(([k, val]) => html`<input type="hidden" name="${k}" value="${val}">`)}<input type="hidden" name="before_ts" value="${last.ts_us}"><input type="hidden" name="before_id" value="${last.id}"><button type="submit" id="older">Older</button></form>` : ''}
  </div>`;
  const table = rows.length === 0 ? html`<p class="empty">No captures match these filters.</p>` : html`<table class="captures"><thead><tr>
    <th>Time</th><th>Severity</th><th>Category</th><th>Phrase</th><th>User</th><th>Device</th><th>Website</th><th>How</th><th>Sensor</th><th>Status</th></tr></thead><tbody>
    ${rows.map((r) => html`<tr class="capture-row" data-id="${r.id}">
      <td><a href="/captures/${encodeURIComponent(r.id)}">${isoTime(r.ts_us)}</a></td><td>${severityBadge(r.severity)}</td><td>${r.category}</td>
      <td class="phrase"><a href="/captures/${encodeURIComponent(r.id)}">${r.phrase}</a></td><td>${r.user ?? ''}</td><td>${r.device_name ?? r.device_ip ?? ''}</td>
      <td>${r.host ?? ''}</td><td>${r.source ?? ''}</td><td>${names.get(r.sensor_id) ?? r.sensor_id}</td><td>${statusBadge(r.status)}</td></tr>`)}
    </tbody></table>`;
  return htmlReply(page('Captures', u, html`<h1>Captures</h1>${filterForm(u, form, sensors)}<p class="count">${rows.length}${more ? '+' : ''} shown, newest first</p>${table}${pager}`, '/captures'));
}

function field(label: string, value: Html | string | undefined | null): Html {
  return value === undefined || value === null || value === '' ? html`` : html`<dt>${label}</dt><dd>${value}</dd>`;
}

function evidenceSection(d: CapturesDeps, c: CaptureRow): Html {
  const e = d.evidence.row(c.id);
  const src = `/captures/${encodeURIComponent(c.id)}/evidence.png`;
  let inner: Html;
  if (e === undefined) {
    inner = html`<p class="unavailable" id="evidence-status">No page was received with this capture, so there is no evidence image (the text above is what the sensor saw).</p>`;
  } else if (e.png_status === 'done') {
    inner = html`<p id="evidence-status" class="ok">The page as the user received it: the ${e.body_bytes}-byte response the sensor reassembled${e.truncated === 1 ? ' (cut short at the sensor limit)' : ''}, drawn by headless Chromium with scripts and network off; the phrase is marked ${e.marks ?? 0} time${e.marks === 1 ? '' : 's'}.</p>
      <img id="evidence-image" src="${src}" alt="Evidence: the page as received, phrase highlighted" width="640">`;
  } else if (e.png_status === 'unavailable' || !d.rendererAvailable) {
    inner = html`<p class="unavailable" id="evidence-status">Evidence image unavailable: Chromium is not installed on this home, so pages are kept as text only (${e.body_bytes} bytes received).</p>`;
  } else if (e.png_status === 'failed') {
    inner = html`<p class="unavailable" id="evidence-status">Evidence image unavailable: rendering the page failed (${e.error ?? 'unknown error'}).</p>`;
  } else {
    inner = html`<p id="evidence-status" class="pending">The evidence image is being drawn; reload in a moment.</p>`;
  }
  return html`<section class="evidence"><h2>Evidence</h2>${inner}</section>`;
}

function detailPage(d: CapturesDeps, u: PortalUser, c: CaptureRow): Reply {
  const ev = JSON.parse(c.event) as Record<string, unknown>;
  const device = (ev.device ?? {}) as Record<string, unknown>;
  const sources = (device.sources ?? {}) as Record<string, unknown>;
  const sensor = d.home.store.sensor(c.sensor_id);
  const near = d.queries.neighbours(c);
  const notes = d.queries.notes(c.id);
  const trail = d.queries.auditTrail(c.id);
  const ident = (v: unknown, src: unknown): Html | undefined => (typeof v === 'string' ? html`${v}${typeof src === 'string' ? html` <span class="src">via ${src}</span>` : ''}` : undefined);
  const url = c.url === null ? undefined : `${c.host ?? ''}${c.url}`;
  const triage = can(u, 'lead') ? html`<form method="post" action="/captures/${encodeURIComponent(c.id)}/triage" class="triage" id="triage-form">${csrfField(u)}
      <label>Status <select name="status" id="triage-status">${TRIAGE_STATES.map((s) => option(s, TRIAGE_LABELS[s], c.status))}</select></label>
      <label>Note <textarea name="note" maxlength="${MAX_NOTE_CHARS}" rows="3" id="triage-note"></textarea></label>
      <button type="submit" id="triage-save">Save</button></form>` : html`<p class="readonly-note">Your role (${u.op.role}) can read captures but not change them.</p>`;
  const body = html`<p><a href="/captures">&larr; Captures</a></p>
  <h1>${severityBadge(c.severity)} <span class="phrase-title">${c.phrase}</span> ${statusBadge(c.status)}</h1>
  <blockquote class="context" id="context">${highlightContext(c.context ?? '', c.phrase)}</blockquote>
  <dl class="facts">
    ${field('Time', isoTime(c.ts_us))}${field('Category', c.category)}${field('How', c.source === 'typed' ? 'typed by the user' : c.source === 'viewed' ? 'viewed (in a page received)' : c.source)}
    ${field('Found in', typeof ev.field === 'string' ? ev.field : undefined)}
    ${field('URL', url === undefined ? undefined : html`<span class="url">${url}</span>`)}
    ${field('Method / status', [ev.method, ev.status].filter((x) => x !== undefined).join(' '))}
    ${field('User', ident(device.user, sources.user))}${field('Domain', ident(sources.domain, undefined))}
    ${field('Device', ident(device.hostname, sources.hostname))}${field('IP address', typeof device.ip === 'string' ? device.ip : undefined)}${field('MAC address', ident(device.mac, sources.mac))}
    ${field('Sensor', sensor === undefined ? String(c.sensor_id) : `${sensor.name}${sensor.site !== '' ? ` (${sensor.site})` : ''}`)}
    ${field('Decrypted TLS', ev.decrypted === true ? 'yes' : undefined)}${field('Times in message', typeof ev.count === 'number' ? String(ev.count) : undefined)}
    ${field('Capture id', c.id)}
  </dl>
  <nav class="neighbours">${near.previous !== undefined ? html`<a id="prev-capture" href="/captures/${encodeURIComponent(near.previous.id)}">&larr; previous of this user</a>` : ''}
    ${near.next !== undefined ? html`<a id="next-capture" href="/captures/${encodeURIComponent(near.next.id)}">next of this user &rarr;</a>` : ''}</nav>
  ${evidenceSection(d, c)}
  <section><h2>Triage</h2>${triage}
  <h3>Notes</h3>${notes.length === 0 ? html`<p class="empty">No notes yet.</p>` : html`<ol class="notes">${notes.map((n) => html`<li><span class="when">${n.at}</span> <b>${n.who}</b> set ${statusBadge(n.status)}${n.note !== '' ? html`: ${n.note}` : ''}</li>`)}</ol>`}</section>
  <section><h2>Audit trail</h2><table class="audit" id="audit-trail"><thead><tr><th>When</th><th>Who</th><th>What</th><th>From</th></tr></thead><tbody>
  ${trail.map((a) => html`<tr><td>${a.at}</td><td>${a.who}</td><td>${a.action === 'capture.view' ? 'viewed' : a.action === 'capture.triage' ? `set ${(JSON.parse(a.detail ?? '{}') as { status?: string }).status ?? ''}` : a.action}</td><td>${a.peer ?? ''}</td></tr>`)}</tbody></table></section>`;
  return htmlReply(page(`Capture ${c.id}`, u, body, '/captures'));
}

export function registerCapturePages(router: Router, d: CapturesDeps, wrap: (h: (ctx: RequestContext) => Promise<Reply> | Reply) => (ctx: RequestContext) => Promise<Reply>): void {
  router.add('GET', '/captures', wrap((ctx) => {
    const u = d.auth.page(ctx);
    if (!('op' in u)) return u;
    return listPage(d, u, new Map());
  }));

  // Filters and paging are POSTed: search text and user names stay out of URLs.
  router.add('POST', '/captures', wrap(async (ctx) => {
    const { user, form } = await d.auth.change(ctx, 'readonly');
    return listPage(d, user, form);
  }));

  router.add('GET', '/captures/:id', wrap((ctx) => {
    const u = d.auth.page(ctx);
    if (!('op' in u)) return u;
    const c = d.queries.capture(ctx.params[0]);
    if (c === undefined) throw new HttpError(404, 'E_NOT_FOUND', 'No such capture');
    d.home.store.audit(u.op.name, 'capture.view', `capture:${c.id}`, undefined, ctx.peer);
    return detailPage(d, u, c);
  }));

  router.add('POST', '/captures/:id/triage', wrap(async (ctx) => {
    const { user, form } = await d.auth.change(ctx, 'lead');
    const id = ctx.params[0];
    applyTriage(d.home.store, id, form.get('status'), (form.get('note') ?? '').trim(), user.op.name, ctx.peer);
    return { status: 303, headers: { location: `/captures/${encodeURIComponent(id)}` } };
  }));

  router.add('GET', '/captures/:id/evidence.png', wrap((ctx) => {
    const u = d.auth.page(ctx);
    if (!('op' in u)) return u;
    const png = d.evidence.png(ctx.params[0]);
    if (png === undefined) throw new HttpError(404, 'E_NOT_FOUND', 'No evidence image for this capture');
    return { status: 200, headers: { 'content-security-policy': "default-src 'none'", 'x-content-type-options': 'nosniff' }, raw: { contentType: 'image/png', text: png } };
  }));
}

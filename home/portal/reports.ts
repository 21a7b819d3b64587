/**
 * Portal reports: the last 7 days (UTC) of captures by severity (bar chart), by category per day
 * (stacked bars), top users and top sites, as a page, CSV and PDF (the page printed by Chromium;
 * without Chromium the portal says so); and coverage: per sensor and day, what it could not see,
 * with advice. Charts are inline SVG drawn here (no script, CSP-clean). Input: requests. Output: HTML,
 * text/csv, application/pdf.
 */

import { coverageAdvice, coverageDays, type CoverageDay } from '../coverage.js';
import type { HomeCore } from '../core.js';
import type { Chromium } from '../evidence.js';
import { HttpError, type Reply, type RequestContext, type Router } from '../http.js';
import { PORTAL_CSS } from './assets.js';
import { SEVERITY_LABELS } from './captures.js';
import type { PortalQueries } from './queries.js';
import { html, htmlReply, page, type Html, type PortalAuth } from './web.js';

export interface ReportDeps { home: HomeCore; auth: PortalAuth; queries: PortalQueries; chromium: Chromium }

export const REPORT_DAYS = 7;
/** Rows in the CSV export at most: a week of a large trust fits; more belongs in the API. */
export const MAX_CSV_ROWS = 200_000;
const DAY_MS = 86_400_000;
const SEVERITY_COLOURS = ['#9e9e9e', '#607d8b', '#9e9d24', '#ef6c00', '#d32f2f', '#8e0000'];
const PALETTE = ['#2f6fab', '#d32f2f', '#ef6c00', '#2e7d32', '#6a1b9a', '#00838f', '#9e9d24', '#5d4037', '#c2185b', '#455a64'];

/** The window: from the start of the UTC day six days ago to the end of today. */
export function reportWindow(nowMs = Date.now()): { since: number; until: number; days: string[] } {
  const today = Math.floor(nowMs / DAY_MS) * DAY_MS;
  const start = today - (REPORT_DAYS - 1) * DAY_MS;
  const days = Array.from({ length: REPORT_DAYS }, (_, i) => new Date(start + i * DAY_MS).toISOString().slice(0, 10));
  return { since: start * 1000, until: (today + DAY_MS) * 1000, days };
}

function severityChart(rows: Array<{ severity: number; n: number }>): Html {
  const counts = [0, 1, 2, 3, 4, 5].map((s) => rows.find((r) => r.severity === s)?.n ?? 0);
  const max = Math.max(1, ...counts);
  const w = 360;
  const bar = 26;
  return html`<svg class="chart" id="chart-severity" width="${w}" height="${6 * (bar + 6) + 10}" role="img" aria-label="Captures by severity">
    ${[5, 4, 3, 2, 1, 0].map((s, i) => {
      const len = Math.round((counts[s] / max) * (w - 150));
      const y = 5 + i * (bar + 6);
      return html`<text x="0" y="${y + 17}">${s} ${SEVERITY_LABELS[s]}</text><rect x="90" y="${y}" width="${Math.max(len, counts[s] > 0 ? 2 : 0)}" height="${bar}" fill="${SEVERITY_COLOURS[s]}"></rect><text x="${96 + len}" y="${y + 17}">${counts[s]}</text>`;
    })}</svg>`;
}

function categoryChart(rows: Array<{ day: string; category: string; n: number }>, days: string[]): Html {
  const cats = [...new Set(rows.map((r) => r.category))].sort();
  const perDay = days.map((d) => rows.filter((r) => r.day === d).reduce((a, r) => a + r.n, 0));
  const max = Math.max(1, ...perDay);
  const h = 180;
  const colW = 60;
  const bars = days.map((d, i) => {
    let y = h;
    const x = 30 + i * colW;
    const parts = cats.map((c, ci) => {
      const n = rows.find((r) => r.day === d && r.category === c)?.n ?? 0;
      const bh = Math.round((n / max) * (h - 20));
      y -= bh;
      return n === 0 ? html`` : html`<rect x="${x}" y="${y}" width="${colW - 14}" height="${bh}" fill="${PALETTE[ci % PALETTE.length]}"><title>${c}: ${n}</title></rect>`;
    });
    return html`${parts}<text x="${x}" y="${h + 14}">${d.slice(5)}</text><text x="${x}" y="${y - 4}">${perDay[i] || ''}</text>`;
  });
  const legend = cats.map((c, ci) => html`<rect x="${30 + days.length * colW + 10}" y="${10 + ci * 18}" width="12" height="12" fill="${PALETTE[ci % PALETTE.length]}"></rect><text x="${30 + days.length * colW + 28}" y="${21 + ci * 18}">${c}</text>`);
  return html`<svg class="chart" id="chart-category" width="${30 + days.length * colW + 200}" height="${Math.max(h + 24, cats.length * 18 + 20)}" role="img" aria-label="Captures by category per day">${bars}${legend}</svg>`;
}

function topTable(id: string, title: string, rows: Array<{ key: string; n: number; max_severity: number }>): Html {
  return html`<div class="card"><h2>${title}</h2>${rows.length === 0 ? html`<p class="empty">None.</p>` : html`<table id="${id}"><thead><tr><th>${title.replace('Top ', '')}</th><th>Captures</th><th>Highest severity</th></tr></thead>
    <tbody>${rows.map((r) => html`<tr><td>${r.key}</td><td>${r.n}</td><td>${r.max_severity}</td></tr>`)}</tbody></table>`}</div>`;
}

function reportBody(d: ReportDeps, nowMs: number, forPrint: boolean): Html {
  const { since, until, days } = reportWindow(nowMs);
  const q = d.queries;
  const sev = q.bySeverity(since, until);
  const total = sev.reduce((a, r) => a + r.n, 0);
  return html`<h1>Captures, ${days[0]} to ${days[days.length - 1]} (UTC)</h1>
  ${forPrint ? '' : html`<p class="no-print"><a href="/reports/captures.csv" id="csv-link">Download CSV</a> · <a href="/reports/report.pdf" id="pdf-link">Download PDF</a>${d.chromium.available ? '' : html` <span class="unavailable">(PDF unavailable: Chromium is not installed on this home)</span>`}</p>`}
  <p>${total} captures in the last ${REPORT_DAYS} days.</p>
  <div class="cards"><div class="card"><h2>By severity</h2>${severityChart(sev)}</div>
  <div class="card"><h2>By category per day</h2>${categoryChart(q.byCategoryPerDay(since, until), days)}</div></div>
  <div class="cards">${topTable('top-users', 'Top users', q.topUsers(since, until))}${topTable('top-sites', 'Top sites', q.topSites(since, until))}</div>`;
}

function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : String(v);
  // Spreadsheet formula injection guard (OWASP CSV injection): a leading = + - @ is quoted as text.
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function pct(v: number | undefined): Html {
  if (v === undefined) return html`<span class="empty">-</span>`;
  const p = v * 100;
  return html`<span class="${p >= 5 ? 'bad' : 'good'}">${p < 0.1 && p > 0 ? '<0.1' : p.toFixed(1)}%</span>`;
}

function coverageBody(d: ReportDeps, nowMs: number): Html {
  const { days } = reportWindow(nowMs);
  const rows = coverageDays(d.home.store, days[0]);
  const names = new Map(d.home.store.listSensors().map((s) => [s.id, s.name]));
  const table = (list: CoverageDay[]) => html`<table id="coverage"><thead><tr><th>Sensor</th><th>Day</th><th>Bytes seen</th><th>TLS without keys</th><th>QUIC</th><th>One-sided flows</th>
    <th>Reassembly gaps</th><th>Truncated bodies</th><th>Undecodable</th><th>Kernel drops</th><th>Duplicates</th><th>What to change</th></tr></thead><tbody>
    ${list.map((c) => { const advice = coverageAdvice(c); return html`<tr><td>${names.get(c.sensor_id) ?? c.sensor_id}</td><td>${c.day}</td><td>${c.counters['decoder.bytes'] ?? 0}</td>
      <td>${pct(c.tls_undecrypted)}</td><td>${pct(c.quic)}</td><td>${pct(c.one_sided)}</td><td>${pct(c.gaps)}</td><td>${pct(c.truncated)}</td><td>${pct(c.undecodable)}</td>
      <td>${pct(c.drops)}</td><td>${pct(c.duplicates)}</td><td>${advice.length === 0 ? html`<span class="good">nothing</span>` : advice.map((a) => html`<div class="advice">${a}</div>`)}</td></tr>`; })}</tbody></table>`;
  return html`<h1>Coverage: what the sensors could not see</h1>
  <p>Shares per sensor and UTC day, from the counters in sensor heartbeats (bytes for TLS, QUIC and gaps; flows for one-sided; responses for bodies; packets for drops and duplicates). Red is 5% or more.</p>
  ${rows.length === 0 ? html`<p class="empty">No heartbeats with counters in the last ${REPORT_DAYS} days.</p>` : table(rows)}`;
}

export function registerReportPages(router: Router, d: ReportDeps, wrap: (h: (ctx: RequestContext) => Promise<Reply> | Reply) => (ctx: RequestContext) => Promise<Reply>): void {
  router.add('GET', '/reports', wrap((ctx) => {
    const u = d.auth.page(ctx);
    if (!('op' in u)) return u;
    return htmlReply(page('Reports', u, reportBody(d, Date.now(), false), '/reports'));
  }));

  router.add('GET', '/reports/captures.csv', wrap((ctx) => {
    const u = d.auth.page(ctx);
    if (!('op' in u)) return u;
    const { since, until, days } = reportWindow();
    const names = new Map(d.home.store.listSensors().map((s) => [s.id, s]));
    const lines = ['time,severity,category,phrase,source,user,device,ip,host,url,sensor,site,status,id'];
    for (const r of d.queries.window(since, until, MAX_CSV_ROWS)) {
      const s = names.get(r.sensor_id);
      lines.push([new Date(Math.floor(r.ts_us / 1000)).toISOString(), r.severity, r.category, r.phrase, r.source, r.user, r.device_name, r.device_ip, r.host, r.url, s?.name ?? r.sensor_id, s?.site, r.status, r.id].map(csvCell).join(','));
    }
    d.home.store.audit(u.op.name, 'report.export', 'report:csv', { days: REPORT_DAYS }, ctx.peer);
    return { status: 200, headers: { 'content-disposition': `attachment; filename="hark-captures-${days[0]}-to-${days[days.length - 1]}.csv"` }, raw: { contentType: 'text/csv; charset=utf-8', text: `${lines.join('\r\n')}\r\n` } };
  }));

  router.add('GET', '/reports/report.pdf', wrap(async (ctx) => {
    const u = d.auth.page(ctx);
    if (!('op' in u)) return u;
    if (!d.chromium.available) throw new HttpError(503, 'E_NO_CHROMIUM', 'PDF export is unavailable: Chromium is not installed on this home. The CSV export works without it.');
    const now = Date.now();
    const doc = `<!DOCTYPE html><html><head><meta charset="utf-8"><style>${PORTAL_CSS}</style></head><body><main>${reportBody(d, now, true).text}</main></body></html>`;
    const pdf = await d.chromium.run(async (p) => {
      await p.setContent(doc, { waitUntil: 'load' });
      return p.pdf({ format: 'A4', landscape: true, printBackground: true, margin: { top: '12mm', bottom: '12mm', left: '10mm', right: '10mm' } });
    });
    d.home.store.audit(u.op.name, 'report.export', 'report:pdf', { days: REPORT_DAYS }, ctx.peer);
    return { status: 200, headers: { 'content-disposition': 'attachment; filename="hark-report.pdf"' }, raw: { contentType: 'application/pdf', text: pdf } };
  }));

  router.add('GET', '/coverage', wrap((ctx) => {
    const u = d.auth.page(ctx);
    if (!('op' in u)) return u;
    return htmlReply(page('Coverage', u, coverageBody(d, Date.now()), '/coverage'));
  }));
}

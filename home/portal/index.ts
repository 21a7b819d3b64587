/**
 * The web portal home serves beside its APIs: sign-in with cookie sessions, password change,
 * static assets, and the page groups (captures, reports and coverage, sensors, dictionaries, allow
 * list). Every handler runs inside `wrap`, which turns errors into HTML pages with the right status
 * (never a stack trace, never capture content in home.log). Input: the router and home's core.
 */

import { newToken, sha256Hex } from '../auth.js';
import { SESSION_TTL_MS, type HomeCore } from '../core.js';
import type { Chromium, EvidenceStore } from '../evidence.js';
import { HttpError, type Reply, type RequestContext, type Router } from '../http.js';
import { PORTAL_CSS, PORTAL_JS } from './assets.js';
import { registerCapturePages } from './captures.js';
import { registerAdminPages } from './admin.js';
import { PortalQueries } from './queries.js';
import { registerReportPages } from './reports.js';
import { cookie, csrfField, html, htmlReply, LOGIN_COOKIE, page, parseCookies, PortalAuth, redirect, SECURITY_HEADERS, SESSION_COOKIE } from './web.js';

export interface PortalDeps {
  home: HomeCore;
  evidence: EvidenceStore;
  chromium: Chromium;
}

export function registerPortal(router: Router, deps: PortalDeps): void {
  const { home } = deps;
  const auth = new PortalAuth(home);
  const queries = new PortalQueries(home.store.sql);

  const wrap = (h: (ctx: RequestContext) => Promise<Reply> | Reply) => async (ctx: RequestContext): Promise<Reply> => {
    try {
      const r = await h(ctx);
      return { ...r, headers: { ...SECURITY_HEADERS, ...(r.headers ?? {}) } };
    } catch (err) {
      const e = err instanceof HttpError ? err : undefined;
      if (e === undefined) {
        home.log.write('home.error', { call: `${ctx.req.method} ${ctx.url.pathname.replace(/^\/captures\/[^/]+/, '/captures/:id')}`, peer: ctx.peer, error: (err as Error)?.message?.split('\n')[0].slice(0, 200) ?? String(err) });
      }
      const status = e?.status ?? 500;
      const message = e?.message ?? 'The portal failed to show this page; see home.log';
      const u = auth.user(ctx);
      return htmlReply(page('Error', u, html`<h1>${status === 403 ? 'Not allowed' : status === 404 ? 'Not found' : 'Something went wrong'}</h1><p class="error" id="error">${message}</p><p><a href="/captures">Back to captures</a></p>`), status, e?.headers ?? {});
    }
  };

  router.add('GET', '/static/portal.css', () => ({ status: 200, headers: { ...SECURITY_HEADERS, 'cache-control': 'max-age=3600' }, raw: { contentType: 'text/css; charset=utf-8', text: PORTAL_CSS } }));
  router.add('GET', '/static/portal.js', () => ({ status: 200, headers: { ...SECURITY_HEADERS, 'cache-control': 'max-age=3600' }, raw: { contentType: 'text/javascript; charset=utf-8', text: PORTAL_JS } }));
  router.add('GET', '/', wrap((ctx) => redirect(auth.user(ctx) === undefined ? '/login' : '/captures')));

  const loginPage = (ctx: RequestContext, message?: string, status = 200): Reply => {
    const nonce = newToken();
    return htmlReply(page('Sign in', undefined, html`<form class="login" method="post" action="/login" id="login-form"><h1>Sign in to Hark</h1>
      ${message === undefined ? '' : html`<p class="error" id="error">${message}</p>`}
      <input type="hidden" name="_login" value="${nonce}">
      <label>User <input name="user" autocomplete="username" required id="login-user"></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required id="login-password"></label>
      <button type="submit" id="login-submit">Sign in</button></form>`), status, { 'set-cookie': cookie(LOGIN_COOKIE, nonce, 3600) });
  };

  router.add('GET', '/login', wrap((ctx) => (auth.user(ctx) !== undefined ? redirect('/captures') : loginPage(ctx))));

  router.add('POST', '/login', wrap(async (ctx) => {
    const form = await ctx.form(16 * 1024);
    auth.checkOrigin(ctx);
    const nonce = parseCookies(ctx.req.headers.cookie).get(LOGIN_COOKIE);
    if (nonce === undefined || nonce !== form.get('_login')) throw new HttpError(403, 'E_CSRF', 'The sign-in form expired; reload it and try again');
    let op;
    try {
      op = await home.checkCredentials(form.get('user'), form.get('password'), ctx, 'portal.login');
    } catch (err) {
      if (err instanceof HttpError && (err.status === 401 || err.status === 429)) return loginPage(ctx, err.message, err.status);
      throw err;
    }
    const token = newToken();
    const expires = Date.now() + SESSION_TTL_MS;
    home.store.purgeSessions(Date.now());
    home.store.addSession(sha256Hex(token), op.id, expires, ctx.peer);
    home.store.audit(op.name, 'login', null, { portal: true }, ctx.peer);
    return redirect(op.must_change_password === 1 ? '/password' : '/captures', { 'set-cookie': cookie(SESSION_COOKIE, token, Math.floor(SESSION_TTL_MS / 1000)) });
  }));

  router.add('POST', '/logout', wrap(async (ctx) => {
    const { user } = await auth.change(ctx, 'readonly', 16 * 1024);
    home.store.deleteSession(user.tokenHash);
    home.store.audit(user.op.name, 'logout', null, { portal: true }, ctx.peer);
    return redirect('/login', { 'set-cookie': cookie(SESSION_COOKIE, '', 0) });
  }));

  router.add('GET', '/password', wrap((ctx) => {
    const u = auth.page(ctx);
    if (!('op' in u)) return u;
    return htmlReply(page('Change password', u, html`<form class="login" method="post" action="/password"><h1>Change your password</h1>${csrfField(u)}
      ${u.op.must_change_password === 1 ? html`<p>This account must choose a new password before it can do anything else.</p>` : ''}
      <label>Current password <input type="password" name="current_password" required autocomplete="current-password"></label>
      <label>New password (at least 10 characters) <input type="password" name="new_password" required autocomplete="new-password"></label>
      <button type="submit">Change</button></form>`));
  }));

  router.add('POST', '/password', wrap(async (ctx) => {
    const { user, form } = await auth.change(ctx, 'readonly', 16 * 1024);
    await home.changeOwnPassword(user, form.get('current_password') ?? '', form.get('new_password') ?? '', ctx, 'portal');
    return redirect('/captures');
  }));

  const rendererAvailable = deps.chromium.available;
  registerCapturePages(router, { home, auth, queries, evidence: deps.evidence, rendererAvailable }, wrap);
  registerReportPages(router, { home, auth, queries, chromium: deps.chromium }, wrap);
  registerAdminPages(router, { home, auth, queries }, wrap);
}

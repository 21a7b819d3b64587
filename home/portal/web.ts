/**
 * The portal's web plumbing: cookie sessions over home's session table (`__Host-` cookie: Secure,
 * HttpOnly, SameSite=Strict, Path=/), CSRF tokens (HMAC of the session, checked on every POST with
 * the Origin header), a per-operator limit on changes, the security headers every page carries
 * (CSP without inline script or style), and HTML escaping plus the page frame. Input: requests.
 * Output: the signed-in operator or a redirect / HttpError; HTML replies.
 */

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { FailureWindow, sha256Hex } from '../auth.js';
import type { HomeCore } from '../core.js';
import { HttpError, type Reply, type RequestContext } from '../http.js';
import type { OperatorRow, Role } from '../store.js';

export const SESSION_COOKIE = '__Host-hark-session';
/** Before login: a random value echoed in the login form (login CSRF, double submit). */
export const LOGIN_COOKIE = '__Host-hark-login';
/** Changes (POSTs) per operator per window: a stuck script or a stolen session cannot churn the database. */
export const CHANGES_PER_WINDOW = 300;
export const CHANGES_WINDOW_MS = 5 * 60 * 1000;
/** Form bodies: a dictionary upload is the largest (rules/ MAX_DICTIONARY_BYTES, urlencoded). */
export const FORM_BODY_LIMIT_BYTES = 8 * 1024 * 1024;

/** No inline script or style anywhere: charts are inline SVG with presentation attributes. */
export const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'";

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on form posts.
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
  'strict-transport-security': 'max-age=31536000',
};

const ROLE_RANK: Record<Role, number> = { readonly: 0, lead: 1, admin: 2 };

export function escapeHtml(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c] as string));
}

/** A tagged template that escapes every interpolated value unless it is `Html` already. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string { return this.text; }
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new Html(out);
}

function render(v: unknown): string {
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v === undefined || v === null || v === false) return '';
  return escapeHtml(v);
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

export function cookie(name: string, value: string, maxAgeS?: number): string {
  return `${name}=${value}; Path=/; Secure; HttpOnly; SameSite=Strict${maxAgeS === undefined ? '' : `; Max-Age=${maxAgeS}`}`;
}

export interface PortalUser {
  readonly op: OperatorRow;
  readonly tokenHash: string;
  /** The CSRF token every form of this session carries. */
  readonly csrf: string;
}

export class PortalAuth {
  private readonly secret: Buffer;
  private readonly changes = new FailureWindow(CHANGES_PER_WINDOW, CHANGES_WINDOW_MS);

  constructor(private readonly home: HomeCore) {
    const store = home.store;
    let s = store.getSetting('portal_csrf_secret');
    if (s === undefined) {
      s = randomBytes(32).toString('hex');
      store.setSetting('portal_csrf_secret', s);
    }
    this.secret = Buffer.from(s, 'hex');
  }

  csrfFor(tokenHash: string): string {
    return createHmac('sha256', this.secret).update(`csrf\0${tokenHash}`).digest('base64url');
  }

  /** The signed-in operator, or undefined (no cookie, expired or ended session). */
  user(ctx: RequestContext): PortalUser | undefined {
    const token = parseCookies(ctx.req.headers.cookie).get(SESSION_COOKIE);
    if (token === undefined || !/^[A-Za-z0-9_-]{20,100}$/.test(token)) return undefined;
    const tokenHash = sha256Hex(token);
    const op = this.home.store.sessionOperator(tokenHash, Date.now());
    return op === undefined ? undefined : { op, tokenHash, csrf: this.csrfFor(tokenHash) };
  }

  /** For a page: the operator with at least `need`, or a redirect to the login page / 403. */
  page(ctx: RequestContext, need: Role = 'readonly'): PortalUser | Reply {
    const u = this.user(ctx);
    if (u === undefined) return redirect('/login');
    if (u.op.must_change_password === 1 && ctx.url.pathname !== '/password') return redirect('/password');
    this.requireRole(ctx, u, need);
    return u;
  }

  /**
   * For a POST: checks the session, the Origin, the password-change state and the role from the
   * headers alone, then reads the form and checks its CSRF token and the change limit. 401 / 403 /
   * 429 otherwise (logged with the peer, never with form content). Nothing of the body is read
   * before the session is known: a form may be FORM_BODY_LIMIT_BYTES (a dictionary), and a
   * request without a session must not make home buffer that much (an unauthenticated memory
   * exhaustion: thousands of connections each holding megabytes).
   */
  async change(ctx: RequestContext, need: Role, limit = FORM_BODY_LIMIT_BYTES): Promise<{ user: PortalUser; form: Map<string, string> }> {
    const u = this.user(ctx);
    if (u === undefined) throw new HttpError(401, 'E_AUTH', 'Your session has ended; sign in again');
    this.checkOrigin(ctx);
    if (u.op.must_change_password === 1 && ctx.url.pathname !== '/password' && ctx.url.pathname !== '/logout') {
      throw new HttpError(403, 'E_PASSWORD_CHANGE', 'Change your password first');
    }
    this.requireRole(ctx, u, need);
    const form = await ctx.form(limit);
    const given = Buffer.from(form.get('_csrf') ?? '');
    const want = Buffer.from(u.csrf);
    if (given.length !== want.length || !timingSafeEqual(given, want)) {
      this.home.log.write('security.csrf', { peer: ctx.peer, user: u.op.name, call: `${ctx.req.method} ${ctx.url.pathname}` });
      throw new HttpError(403, 'E_CSRF', 'This form has expired or did not come from this portal; reload the page and try again');
    }
    const wait = this.changes.retryAfter(u.op.name);
    if (wait > 0) throw new HttpError(429, 'E_RATE_LIMIT', `Too many changes; try again in ${wait} seconds`, { 'retry-after': String(wait) });
    this.changes.fail(u.op.name);
    return { user: u, form };
  }

  /** A cross-site POST carries a foreign Origin: refuse it even before the token is looked at. */
  checkOrigin(ctx: RequestContext): void {
    const origin = ctx.req.headers.origin;
    if (origin === undefined) return;
    const host = ctx.req.headers.host;
    if (host === undefined || origin !== `https://${host}`) {
      this.home.log.write('security.origin', { peer: ctx.peer, origin: origin.slice(0, 100), call: `${ctx.req.method} ${ctx.url.pathname}` });
      throw new HttpError(403, 'E_ORIGIN', 'This form was sent from another site');
    }
  }

  requireRole(ctx: RequestContext, u: PortalUser, need: Role): void {
    if (ROLE_RANK[u.op.role] >= ROLE_RANK[need]) return;
    this.home.log.write('security.forbidden', { peer: ctx.peer, user: u.op.name, role: u.op.role, need, call: `${ctx.req.method} ${ctx.url.pathname}` });
    throw new HttpError(403, 'E_ROLE', `Your role (${u.op.role}) cannot do this; it needs ${need}`);
  }
}

export function can(u: PortalUser, need: Role): boolean {
  return ROLE_RANK[u.op.role] >= ROLE_RANK[need];
}

export function redirect(location: string, headers: Record<string, string> = {}): Reply {
  return { status: 303, headers: { ...SECURITY_HEADERS, location, ...headers } };
}

export function htmlReply(body: Html, status = 200, headers: Record<string, string> = {}): Reply {
  return { status, headers: { ...SECURITY_HEADERS, ...headers }, raw: { contentType: 'text/html; charset=utf-8', text: body.text } };
}

const NAV: ReadonlyArray<[string, string]> = [
  ['/captures', 'Captures'], ['/reports', 'Reports'], ['/coverage', 'Coverage'], ['/sensors', 'Sensors'],
  ['/dictionaries', 'Dictionaries'], ['/allow-list', 'Allow list'],
];

/** The page frame: header with navigation, the signed-in operator and a logout form. */
export function page(title: string, u: PortalUser | undefined, body: Html, active = ''): Html {
  const nav = u === undefined ? html`` : html`<nav>${NAV.map(([href, label]) => html`<a href="${href}"${active === href ? html` class="active"` : ''}>${label}</a>`)}</nav>
    <form class="who" method="post" action="/logout"><input type="hidden" name="_csrf" value="${u.csrf}"><span>${u.op.name} (${u.op.role})</span> <button type="submit">Sign out</button></form>`;
  return html`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} - Hark</title><link rel="stylesheet" href="/static/portal.css"><script src="/static/portal.js" defer></script></head>
<body><header><a class="brand" href="/captures">Hark</a>${nav}</header><main>${body}</main></body></html>`;
}

export function csrfField(u: PortalUser): Html {
  return html`<input type="hidden" name="_csrf" value="${u.csrf}">`;
}

/**
 * Evidence: the response body a sensor reassembled for a capture, stored compressed, and a PNG of
 * it rendered by headless Chromium (playwright-core) with scripts off, every network request
 * aborted and a CSP meta tag forbidding external loads, the phrase wrapped in <mark> before the
 * picture is taken. Input: evidence items from sensors (untrusted). Output: rows in `evidence`;
 * one render at a time, pulled from the database (the queue is the pending rows, so it is bounded
 * by storage, never by memory). Without Chromium the rows say `unavailable` and the text stays.
 * Chromium keeps its sandbox (user namespaces, seccomp-bpf) unless home runs as root, where it
 * cannot have one: then it runs with --no-sandbox and home.log says so.
 */

import { existsSync } from 'node:fs';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { defineCounter, type Counters } from '../sensor/events/counters.js';
import type { HomeLog } from './log.js';
import type { HomeStore } from './store.js';

/** PROTOCOL.md: a body is at most 512 KiB decoded; bigger ones are refused (the sensor truncates first). */
export const MAX_EVIDENCE_BODY_BYTES = 512 * 1024;
/** Evidence items per call: 32 bodies of 512 KiB in base64 is ~22 MiB, under EVIDENCE_CALL_LIMIT_BYTES. */
export const MAX_EVIDENCE_PER_CALL = 32;
export const EVIDENCE_CALL_LIMIT_BYTES = 24 * 1024 * 1024;
/** Rendering one page may take this long before it is abandoned as failed. */
export const RENDER_TIMEOUT_MS = 15_000;
/** Viewport and the tallest picture kept: a long page is cut around the first highlight. */
export const RENDER_WIDTH_PX = 1280;
export const RENDER_MAX_HEIGHT_PX = 2400;
/** The browser is closed after this long without work (it holds ~100 MiB). */
export const BROWSER_IDLE_MS = 30_000;
export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

const C_STORED = defineCounter('home.evidence.stored');
const C_DUPLICATE = defineCounter('home.evidence.duplicates');
const C_REJECTED = defineCounter('home.evidence.rejected');
const C_RENDERED = defineCounter('home.evidence.rendered');
const C_RENDER_FAILED = defineCounter('home.evidence.render_failed');
const C_UNAVAILABLE = defineCounter('home.evidence.renderer_unavailable');
/** A render's result (image or failure) could not be written: the evidence stays pending for the next kick. */
const C_STORE_FAILED = defineCounter('home.evidence.store_failed');

export interface EvidenceItem { capture_id: string; content_type: string; charset: string | null; body: Buffer; truncated: boolean }

/** One untrusted evidence entry as an item, or undefined when it is malformed or too large. */
export function evidenceItem(v: unknown): EvidenceItem | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.capture_id !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(o.capture_id)) return undefined;
  if (typeof o.content_type !== 'string' || o.content_type.length > 200 || /[\x00-\x1f]/.test(o.content_type)) return undefined;
  if (o.charset !== undefined && o.charset !== null && (typeof o.charset !== 'string' || !/^[A-Za-z0-9_.:-]{1,40}$/.test(o.charset))) return undefined;
  if (typeof o.body_base64 !== 'string' || o.body_base64.length > Math.ceil(MAX_EVIDENCE_BODY_BYTES / 3) * 4 + 4) return undefined;
  const body = Buffer.from(o.body_base64, 'base64');
  if (body.length > MAX_EVIDENCE_BODY_BYTES) return undefined;
  return { capture_id: o.capture_id, content_type: o.content_type.toLowerCase(), charset: typeof o.charset === 'string' ? o.charset : null, body, truncated: o.truncated === true };
}

export interface EvidenceRow {
  capture_id: string; content_type: string; charset: string | null; truncated: number; body_bytes: number;
  png_status: 'pending' | 'done' | 'failed' | 'unavailable'; marks: number | null; rendered_at: number | null; error: string | null;
}

/** The charset named by the item, else by its content type, else UTF-8. */
export function evidenceText(body: Buffer, contentType: string, charset: string | null): string {
  const label = charset ?? /charset=["']?([A-Za-z0-9_.:-]+)/i.exec(contentType)?.[1] ?? 'utf-8';
  try {
    return new TextDecoder(label, { fatal: false }).decode(body);
  } catch {
    return new TextDecoder('utf-8').decode(body);
  }
}

/** No loads of any kind from the rendered document: belt to the renderer's aborted routes. */
const EVIDENCE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:";

/**
 * The document Chromium renders: HTML as received with the CSP meta before any of its markup (only
 * a leading doctype may precede it, so the page keeps its standards mode); anything else as text.
 * The meta must come first: a CSP meta only governs what follows it, and one outside the head (or
 * inside a comment, a <title> or a <textarea>) is ignored. Looking for the page's own `<head>`
 * instead would put it wherever the attacker-supplied text first says `<head` (a comment, a
 * `<header>` element), after elements that load things.
 */
export function evidenceDocument(text: string, contentType: string): string {
  const meta = `<meta http-equiv="Content-Security-Policy" content="${EVIDENCE_CSP}">`;
  if (/html|xml/.test(contentType)) {
    const doctype = /^\uFEFF?\s*<!doctype[^>]*>/i.exec(text);
    const at = doctype === null ? 0 : doctype[0].length;
    return text.slice(0, at) + meta + text.slice(at);
  }
  const esc = text.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' }[c] as string));
  return `<!DOCTYPE html><html><head>${meta}</head><body><pre style="white-space:pre-wrap;font:14px monospace">${esc}</pre></body></html>`;
}

/**
 * Runs in the page (scripts of the page itself are off): wraps each case-insensitive occurrence of
 * the phrase (any run of white space between words) in <mark>, returns how many and where the first is.
 */
function highlightScript(phrase: string): string {
  return `(() => {
    const words = ${JSON.stringify(phrase)}.trim().split(/\\s+/).map((w) => w.replace(/[.*+?^\${}()|[\\]\\\\]/g, '\\\\$&'));
    if (words.length === 0 || words[0] === '') return { marks: 0, y: 0, height: document.documentElement.scrollHeight };
    const re = new RegExp(words.join('\\\\s+'), 'gi');
    const walker = document.createTreeWalker(document.body || document.documentElement, NodeFilter.SHOW_TEXT);
    const hits = [];
    for (let n = walker.nextNode(); n !== null; n = walker.nextNode()) {
      const p = n.parentNode && n.parentNode.nodeName;
      if (p === 'SCRIPT' || p === 'STYLE' || p === 'NOSCRIPT' || p === 'TITLE') continue;
      if (re.test(n.nodeValue)) hits.push(n);
      re.lastIndex = 0;
    }
    let marks = 0;
    for (const n of hits) {
      const text = n.nodeValue;
      const frag = document.createDocumentFragment();
      let last = 0;
      for (const m of text.matchAll(re)) {
        frag.appendChild(document.createTextNode(text.slice(last, m.index)));
        const mark = document.createElement('mark');
        mark.setAttribute('style', 'background:#ffeb3b;color:#000;outline:3px solid #d32f2f;outline-offset:1px');
        mark.textContent = m[0];
        frag.appendChild(mark);
        marks++;
        last = m.index + m[0].length;
      }
      frag.appendChild(document.createTextNode(text.slice(last)));
      n.parentNode.replaceChild(frag, n);
    }
    const first = document.querySelector('mark');
    const y = first === null ? 0 : first.getBoundingClientRect().top + window.scrollY;
    return { marks, y, height: document.documentElement.scrollHeight };
  })()`;
}

interface PwBrowser { newContext(o: Record<string, unknown>): Promise<PwContext>; close(): Promise<void> }
interface PwContext {
  route(url: string, handler: (route: { abort(): Promise<void> }) => unknown): Promise<void>;
  newPage(): Promise<PwPage>;
  close(): Promise<void>;
}
interface PwPage {
  setContent(html: string, o: Record<string, unknown>): Promise<void>;
  evaluate(expr: string): Promise<unknown>;
  screenshot(o: Record<string, unknown>): Promise<Buffer>;
  pdf(o: Record<string, unknown>): Promise<Buffer>;
}

export interface RendererOptions {
  /** Chromium executable; null turns rendering off. Default $HARK_CHROMIUM, else /usr/bin/chromium. */
  chromium?: string | null;
  /** Where the warning about a browser without its sandbox goes (home.log). */
  log?: Pick<HomeLog, 'write'>;
}

/** Belt and braces beside the aborted routes: no proxy, no name resolution, no background fetches. */
const CHROMIUM_NETWORK_OFF_ARGS = ['--proxy-server=127.0.0.1:9', '--proxy-bypass-list=<-loopback>', '--host-resolver-rules=MAP * ~NOTFOUND', '--disable-background-networking', '--disable-extensions'];

/**
 * Chromium's command line. The pages it draws are attacker-influenced (whatever a pupil's browser
 * was sent), so its sandbox stays on: a renderer exploit then lands in a process with no file
 * system, no network and a seccomp filter. Chromium refuses to start as root unless the sandbox
 * is turned off (its setuid and namespace sandboxes need an unprivileged user to drop to), so only
 * a home running as root passes --no-sandbox.
 */
export function chromiumArgs(asRoot: boolean): string[] {
  return [...(asRoot ? ['--no-sandbox'] : []), ...CHROMIUM_NETWORK_OFF_ARGS];
}

/**
 * One headless Chromium, launched on demand, used by one job at a time (evidence renders and report
 * PDFs), closed when idle. `available` is false when no executable or no playwright-core.
 */
export class Chromium {
  readonly path: string | undefined;
  private browser: Promise<PwBrowser> | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private idle: NodeJS.Timeout | undefined;
  private readonly log: Pick<HomeLog, 'write'> | undefined;
  private warnedNoSandbox = false;

  constructor(opts: RendererOptions = {}) {
    const p = opts.chromium === undefined ? (process.env.HARK_CHROMIUM ?? DEFAULT_CHROMIUM) : opts.chromium;
    this.path = p !== null && p !== '' && existsSync(p) ? p : undefined;
    this.log = opts.log;
  }

  get available(): boolean {
    return this.path !== undefined;
  }

  /** Runs `job` with a fresh context (JavaScript off, every request aborted), one job at a time. */
  run<T>(job: (page: PwPage) => Promise<T>): Promise<T> {
    const next = this.chain.then(async () => {
      if (this.idle !== undefined) clearTimeout(this.idle);
      const browser = await this.launch();
      const context = await browser.newContext({ javaScriptEnabled: false, offline: true, viewport: { width: RENDER_WIDTH_PX, height: 900 }, serviceWorkers: 'block' });
      try {
        await context.route('**/*', (route) => route.abort());
        const page = await context.newPage();
        return await withTimeout(job(page), RENDER_TIMEOUT_MS);
      } finally {
        await context.close().catch(() => {});
        this.idle = setTimeout(() => { void this.close(); }, BROWSER_IDLE_MS);
        this.idle.unref();
      }
    });
    this.chain = next.catch(() => {});
    return next;
  }

  private launch(): Promise<PwBrowser> {
    if (this.path === undefined) return Promise.reject(new Error('Chromium is not installed'));
    const asRoot = process.geteuid?.() === 0;
    if (asRoot && !this.warnedNoSandbox && this.browser === undefined) {
      this.warnedNoSandbox = true;
      this.log?.write('evidence.sandbox_off', { reason: 'home runs as root, where Chromium cannot use its sandbox: run home as an unprivileged user' });
    }
    this.browser ??= import('playwright-core').then((pw) => pw.chromium.launch({
      executablePath: this.path,
      // playwright adds --no-sandbox itself unless told the sandbox is wanted
      chromiumSandbox: !asRoot,
      args: chromiumArgs(asRoot),
    }) as unknown as PwBrowser);
    this.browser.catch(() => { this.browser = undefined; });
    return this.browser;
  }

  async close(): Promise<void> {
    if (this.idle !== undefined) clearTimeout(this.idle);
    const b = this.browser;
    this.browser = undefined;
    if (b !== undefined) await b.then((x) => x.close(), () => {});
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(timer));
}

export class EvidenceStore {
  constructor(private readonly store: HomeStore, private readonly counters: Counters) {}

  /**
   * Stores items (compressed); an item for a capture that has evidence already changes nothing, nor
   * does one for a capture another sensor sent: evidence belongs to the sensor whose capture it is
   * (row, png and nextPending only ever pair a capture with its own sensor's evidence).
   */
  add(sensorId: number, items: readonly EvidenceItem[], status: 'pending' | 'unavailable', now = Date.now()): number {
    const st = this.store.sql.prepare(`INSERT INTO evidence (capture_id, sensor_id, received_at, content_type, charset, truncated, body, body_bytes, png_status)
      SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM captures WHERE id = ? AND sensor_id <> ?)
      ON CONFLICT(capture_id) DO NOTHING`);
    const n = this.store.transaction(() => {
      let added = 0;
      for (const e of items) added += st.run(e.capture_id, sensorId, now, e.content_type, e.charset, e.truncated ? 1 : 0, deflateRawSync(e.body), e.body.length, status, e.capture_id, sensorId).changes;
      return added;
    });
    this.counters.inc(C_STORED, n);
    this.counters.inc(C_DUPLICATE, items.length - n);
    return n;
  }

  rejected(n: number): void {
    this.counters.inc(C_REJECTED, n);
  }

  /** The evidence of capture `captureId` sent by the sensor that sent the capture. */
  row(captureId: string): EvidenceRow | undefined {
    return this.store.sql.prepare(`SELECT e.capture_id, e.content_type, e.charset, e.truncated, e.body_bytes, e.png_status, e.marks, e.rendered_at, e.error
      FROM evidence e JOIN captures c ON c.id = e.capture_id AND c.sensor_id = e.sensor_id WHERE e.capture_id = ?`)
      .get(captureId) as EvidenceRow | undefined;
  }

  body(captureId: string): { text: string; contentType: string } | undefined {
    const r = this.store.sql.prepare('SELECT content_type, charset, body FROM evidence WHERE capture_id = ?').get(captureId) as { content_type: string; charset: string | null; body: Buffer } | undefined;
    if (r === undefined) return undefined;
    return { text: evidenceText(inflateRawSync(r.body), r.content_type, r.charset), contentType: r.content_type };
  }

  png(captureId: string): Buffer | undefined {
    const r = this.store.sql.prepare(`SELECT e.png FROM evidence e JOIN captures c ON c.id = e.capture_id AND c.sensor_id = e.sensor_id
      WHERE e.capture_id = ? AND e.png_status = 'done'`).get(captureId) as { png: Buffer } | undefined;
    return r?.png;
  }

  /** The oldest pending evidence whose capture has arrived, with the phrase to highlight. */
  nextPending(): { capture_id: string; phrase: string } | undefined {
    return this.store.sql.prepare(`SELECT e.capture_id, c.phrase FROM evidence e JOIN captures c ON c.id = e.capture_id AND c.sensor_id = e.sensor_id
      WHERE e.png_status = 'pending' ORDER BY e.received_at LIMIT 1`).get() as { capture_id: string; phrase: string } | undefined;
  }

  finish(captureId: string, result: { png: Buffer; marks: number } | { error: string }, now = Date.now()): void {
    if ('png' in result) {
      this.store.sql.prepare("UPDATE evidence SET png_status = 'done', png = ?, marks = ?, rendered_at = ?, error = NULL WHERE capture_id = ?").run(result.png, result.marks, now, captureId);
    } else {
      this.store.sql.prepare("UPDATE evidence SET png_status = 'failed', rendered_at = ?, error = ? WHERE capture_id = ?").run(now, result.error.slice(0, 500), captureId);
    }
  }
}

/**
 * Renders pending evidence one at a time; `kick()` after new evidence or captures. A database that
 * cannot record a result (disk full, I/O error) ends the pass, counted and logged once per distinct
 * error; the evidence stays pending and the next kick tries again. Nothing here ends the process.
 */
export class EvidenceRenderer {
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** The store error last logged; cleared when a result is stored again. */
  private storeError: string | undefined;

  constructor(private readonly evidence: EvidenceStore, private readonly chromium: Chromium, private readonly counters: Counters, private readonly log: HomeLog) {}

  kick(): void {
    if (this.stopped || !this.chromium.available) return;
    if (this.running !== undefined) { this.again = true; return; }
    this.running = this.pump().catch((err: unknown) => this.storeFailed(err)).finally(() => {
      this.running = undefined;
      if (this.again) { this.again = false; this.kick(); }
    });
  }

  /** Resolves when nothing is rendering (tests). */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.idle();
  }

  /** Renders until nothing is pending; rejects (ending the pass) when the database cannot be read or written. */
  private async pump(): Promise<void> {
    for (let job = this.evidence.nextPending(); job !== undefined && !this.stopped; job = this.evidence.nextPending()) {
      const { capture_id: id, phrase } = job;
      let result: { png: Buffer; marks: number } | { error: string };
      try {
        const body = this.evidence.body(id);
        if (body === undefined) continue;
        const doc = evidenceDocument(body.text, body.contentType);
        result = await this.chromium.run(async (page) => {
          await page.setContent(doc, { waitUntil: 'load', timeout: RENDER_TIMEOUT_MS });
          const h = await page.evaluate(highlightScript(phrase)) as { marks: number; y: number; height: number };
          const height = Math.max(1, Math.min(h.height, RENDER_MAX_HEIGHT_PX));
          const top = h.y + 300 > height ? Math.max(0, Math.min(h.y - 300, h.height - height)) : 0;
          const png = await page.screenshot({ type: 'png', fullPage: true, clip: { x: 0, y: top, width: RENDER_WIDTH_PX, height } });
          return { png, marks: h.marks };
        });
      } catch (err) {
        const message = (err as Error | undefined)?.message ?? String(err);
        this.counters.inc(C_RENDER_FAILED);
        this.log.write('evidence.render_failed', { capture: id, error: message.split('\n')[0].slice(0, 200) });
        result = { error: message };
      }
      this.evidence.finish(id, result);
      this.storeError = undefined;
      if ('png' in result) this.counters.inc(C_RENDERED);
    }
  }

  private storeFailed(err: unknown): void {
    this.counters.inc(C_STORE_FAILED);
    const message = ((err as Error | undefined)?.message ?? String(err)).split('\n')[0].slice(0, 200);
    if (message === this.storeError) return;
    this.storeError = message;
    this.log.write('evidence.store_failed', { error: message, retry: 'at the next upload' });
  }

  /** Counts evidence stored while no renderer exists. */
  unavailable(n: number): void {
    this.counters.inc(C_UNAVAILABLE, n);
  }
}

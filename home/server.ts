/**
 * Home's HTTPS server. Input: options (data directory, port, listen address, extra certificate
 * names, heartbeat timeout). Output: a listening node:https server asking for (not requiring)
 * client certificates, so enrolment and operator calls work without one while /v1/sensor/* checks
 * them against home's CA; the data directory (0700) with CA, keys, database and home.log (0600);
 * on first start an `admin` operator with a random password that must be changed, kept only in
 * DATA/initial-admin-password (0600; never printed or logged).
 */

import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { checkDictionarySource } from '../rules/check.js';
import { hashPassword, randomPassword } from './auth.js';
import { C_HANDLER_ERRORS, DEFAULT_HEARTBEAT_TIMEOUT_S, HomeCore, INITIAL_PASSWORD_FILE } from './core.js';
import { ensurePrivateDir, writePrivateFile } from './files.js';
import { DEFAULT_BODY_LIMIT_BYTES, errorReply, HttpError, rateLimitKey, readFormBody, readJsonBody, Router, sendReply, type RequestContext } from './http.js';
import { HomeLog } from './log.js';
import { registerOperatorApi } from './operator-api.js';
import { ensurePki } from './pki.js';
import { registerSensorApi } from './sensor-api.js';
import { Chromium, EvidenceRenderer, EvidenceStore } from './evidence.js';
import { registerPortal } from './portal/index.js';
import { HomeStore } from './store.js';

/** Slow-loris guards: a request's headers within 20 s, the whole request within 120 s. */
const HEADERS_TIMEOUT_MS = 20_000;
const REQUEST_TIMEOUT_MS = 120_000;
/** Sensors hold a keep-alive connection between heartbeats (60 s): keep it a little longer. */
const KEEP_ALIVE_TIMEOUT_MS = 75_000;
/**
 * TLS 1.3's suites, then TLS 1.2's with forward secrecy and authenticated encryption only (Mozilla's
 * "intermediate" list): Node's default still offers CBC suites on TLS 1.2, whose MAC-then-encrypt
 * padding has been the door to every CBC oracle attack. Sensors (Node) and any browser from the
 * last ten years negotiate one of these.
 */
const HOME_TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305', 'DHE-RSA-AES128-GCM-SHA256', 'DHE-RSA-AES256-GCM-SHA384',
].join(':');

/** Simultaneous connections: a few thousand sensors and consoles; past it new ones are refused. */
const MAX_CONNECTIONS = 10_000;

export interface HomeOptions {
  /** Created 0700 when missing; holds ca.pem, ca.key, server.pem, server.key, home.db, home.log. */
  dataDir: string;
  /** 0 = ephemeral (tests). Default 443. */
  port?: number;
  /** Address to listen on; default all (IPv6 and IPv4). */
  listen?: string;
  /** Extra SANs (DNS names or addresses) for the server certificate. */
  names?: readonly string[];
  /** A sensor with no heartbeat for this long is logged as disconnected. Default 180. */
  heartbeatTimeoutSecs?: number;
  /** Receives every home.log line as written (the CLI echoes them to stderr). */
  onLog?: (line: string) => void;
  /** Where the first start is announced (the initial password's file, not the password); default process.stderr. */
  announce?: (text: string) => void;
  /** Chromium for evidence images and report PDFs; null: none (captures keep their text). Default $HARK_CHROMIUM, else /usr/bin/chromium when present. */
  chromium?: string | null;
}

export interface HomeServer {
  /** https://HOST:PORT the server answers on (127.0.0.1 when listening on all addresses). */
  readonly url: string;
  readonly port: number;
  readonly caPem: string;
  /** SHA-256 of the CA certificate DER, `AB:CD:...`. */
  readonly caFingerprint: string;
  readonly dataDir: string;
  /** Runs the disconnect check now (it also runs on a timer); `nowMs` lets tests move time. */
  checkHeartbeats(nowMs?: number): void;
  /** Counter snapshot (home.*). */
  counters(): Record<string, number>;
  /** Resolves when no evidence image is being rendered (tests). */
  evidenceIdle(): Promise<void>;
  close(): Promise<void>;
}

const STARTER_PATH = fileURLToPath(new URL('../../rules/starter.json', import.meta.url));

function starterText(): string {
  // Compiled code runs from dist-*/home/; the source tree's rules/ is two levels up from there.
  for (const p of [STARTER_PATH, fileURLToPath(new URL('../rules/starter.json', import.meta.url))]) {
    try { return readFileSync(p, 'utf8'); } catch { /* try the next */ }
  }
  throw new Error('Cannot find rules/starter.json to seed the "starter" dictionary');
}

/** Seeds the starter dictionary and, with no operators, the first admin. */
async function firstStart(store: HomeStore, dataDir: string, log: HomeLog, announce: (t: string) => void): Promise<void> {
  if (store.dictionary('starter') === undefined) {
    const text = starterText();
    const phrases = checkDictionarySource(text, 'json', 'starter').dictionary.phrases.length;
    store.putDictionary('starter', 'pack', text, phrases);
  }
  if (store.operatorCount() === 0) {
    const password = randomPassword();
    store.addOperator('admin', 'admin', await hashPassword(password), true);
    const file = join(dataDir, INITIAL_PASSWORD_FILE);
    writePrivateFile(file, `${password}\n`);
    store.audit('home', 'operator.add', 'operator:admin', { role: 'admin', initial: true }, null);
    log.write('config.initial_admin', { user: 'admin', password_file: file });
    // Only where the password is, never the password: stderr ends up in the journal (or a CI log),
    // where anyone allowed to read it could sign in first and claim the admin account.
    announce(`Hark home: first start. Operator "admin": its password is in ${file} (mode 0600); it must be changed at first login.\n`);
  }
}

export async function startHome(opts: HomeOptions): Promise<HomeServer> {
  const dataDir = opts.dataDir;
  ensurePrivateDir(dataDir);
  const log = new HomeLog(join(dataDir, 'home.log'), opts.onLog);
  const { ca, server: tls, madeCa, madeServer } = ensurePki(dataDir, opts.names ?? []);
  if (madeCa) log.write('pki.ca_created', { fingerprint: ca.fingerprint });
  if (madeServer) log.write('pki.server_certificate_issued', { sans: tls.sans.join(',') });
  const store = new HomeStore(join(dataDir, 'home.db'));
  const timeoutMs = Math.max(1, opts.heartbeatTimeoutSecs ?? DEFAULT_HEARTBEAT_TIMEOUT_S) * 1000;
  const core = new HomeCore(store, ca, log, timeoutMs, join(dataDir, INITIAL_PASSWORD_FILE));
  await firstStart(store, dataDir, log, opts.announce ?? ((t) => process.stderr.write(t)));

  const router = new Router();
  const chromium = new Chromium({ chromium: opts.chromium, log });
  const evidence = new EvidenceStore(store, core.counters);
  const renderer = new EvidenceRenderer(evidence, chromium, core.counters, log);
  registerSensorApi(router, core, { evidence, renderer, rendererAvailable: chromium.available });
  registerOperatorApi(router, core);
  registerPortal(router, { home: core, evidence, chromium });
  renderer.kick();

  const server: Server = createServer({
    key: tls.keyPem, cert: tls.certPem, ca: [ca.certPem],
    requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2', ciphers: HOME_TLS_CIPHERS, honorCipherOrder: true,
  }, (req, res) => {
    const socket = req.socket as TLSSocket;
    const peerIp = socket.remoteAddress ?? '?';
    const peer = `${peerIp.includes(':') ? `[${peerIp}]` : peerIp}:${socket.remotePort ?? 0}`;
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'https://home.invalid');
    } catch {
      sendReply(res, errorReply(new HttpError(400, 'E_URL', 'Malformed request URL')));
      return;
    }
    const found = router.match(req.method ?? 'GET', url.pathname);
    if (found === undefined || found === 'method') {
      req.resume();
      sendReply(res, errorReply(found === 'method'
        ? new HttpError(405, 'E_METHOD', `${req.method} is not allowed on ${url.pathname}`)
        : new HttpError(404, 'E_NOT_FOUND', `No such call: ${req.method} ${url.pathname.slice(0, 200)}`)));
      return;
    }
    let bodyRead = false;
    const ctx: RequestContext = {
      req, res, url, params: found.params, peer, peerKey: rateLimitKey(peerIp), socket,
      body: (limit = DEFAULT_BODY_LIMIT_BYTES) => { bodyRead = true; return readJsonBody(req, limit); },
      form: (limit = DEFAULT_BODY_LIMIT_BYTES) => { bodyRead = true; return readFormBody(req, limit); },
    };
    Promise.resolve()
      .then(() => found.handler(ctx))
      .then((reply) => {
        if (!bodyRead) req.resume();
        sendReply(res, reply);
      }, (err: unknown) => {
        if (err instanceof HttpError) {
          // After a refused or oversized body the connection is not reusable: close it.
          if (err.status === 413) res.setHeader('connection', 'close');
          if (!bodyRead) req.resume();
          sendReply(res, errorReply(err));
          return;
        }
        core.counters.inc(C_HANDLER_ERRORS);
        log.write('home.error', { call: `${req.method} ${url.pathname}`, peer, error: (err as Error)?.message ?? String(err) });
        req.resume();
        sendReply(res, errorReply(new HttpError(500, 'E_INTERNAL', 'Home failed to answer this call; see home.log')));
      });
  });
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.maxConnections = MAX_CONNECTIONS;
  server.on('tlsClientError', () => { /* handshake failures (scanners) are not worth a log line each */ });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 443, opts.listen, () => { server.off('error', reject); resolve(); });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const host = opts.listen === undefined || opts.listen === '::' || opts.listen === '0.0.0.0' ? '127.0.0.1' : opts.listen;
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.write('home.start', { port, listen: opts.listen ?? 'all', fingerprint: ca.fingerprint });

  const sweepMs = Math.min(15_000, Math.max(250, Math.floor(timeoutMs / 4)));
  const sweeper = setInterval(() => core.sweep(), sweepMs);
  sweeper.unref();

  let closed: Promise<void> | undefined;
  return {
    url, port, caPem: ca.certPem, caFingerprint: ca.fingerprint, dataDir,
    checkHeartbeats: (nowMs?: number) => core.sweep(nowMs),
    counters: () => core.counters.snapshot(),
    evidenceIdle: () => renderer.idle(),
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        clearInterval(sweeper);
        // The renderer finishes its page (it writes to the store) before the store closes.
        const rendering = renderer.stop().then(() => chromium.close());
        server.close(() => {
          void rendering.then(() => {
            log.write('home.stop', { port });
            store.close();
            resolve();
          });
        });
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

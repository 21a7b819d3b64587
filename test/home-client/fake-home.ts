/**
 * Test helpers for the home client: a throwaway PKI made with node-forge (a CA, server and client
 * certificates), small real HTTPS "homes" on loopback speaking the parts of PROTOCOL.md a test
 * needs, and a real CONNECT proxy that records where it tunnelled.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import forge from 'node-forge';

export interface Pem {
  readonly cert: string;
  readonly key: string;
}

export function newKeyPem(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

function serial(): string {
  const b = randomBytes(12);
  b[0] &= 0x7f;
  return b.toString('hex');
}

export function makeCa(name = 'Test Home CA'): Pem {
  const key = newKeyPem();
  const k = forge.pki.privateKeyFromPem(key) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(k.n, k.e);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + 365 * 86400_000);
  const subject = [{ name: 'commonName', value: name }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }]);
  cert.sign(k, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key };
}

export interface IssueOptions {
  readonly cn: string;
  readonly ou?: string;
  /** Subject alternative names for a server certificate (DNS names and IP addresses). */
  readonly sans?: readonly string[];
  /** Public key of the subject (PEM, SPKI or from a private key); a new key pair when absent. */
  readonly subjectKeyPem?: string;
  readonly notAfter?: Date;
}

export function issue(ca: Pem, o: IssueOptions): Pem {
  const key = o.subjectKeyPem ?? newKeyPem();
  const subjectKey = forge.pki.privateKeyFromPem(key) as forge.pki.rsa.PrivateKey;
  const caKey = forge.pki.privateKeyFromPem(ca.key);
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(subjectKey.n, subjectKey.e);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = o.notAfter ?? new Date(Date.now() + 365 * 86400_000);
  cert.setSubject([{ name: 'commonName', value: o.cn }, ...(o.ou !== undefined ? [{ name: 'organizationalUnitName', value: o.ou }] : [])]);
  cert.setIssuer(caCert.subject.attributes);
  const ext: object[] = [{ name: 'basicConstraints', cA: false }];
  if (o.sans !== undefined) {
    ext.push({ name: 'subjectAltName', altNames: o.sans.map((s) => (/^[\d.]+$|:/.test(s) ? { type: 7, ip: s } : { type: 2, value: s })) });
  }
  cert.setExtensions(ext);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key };
}

const serverCerts = new Map<string, Pem>();

/** Server certificate for loopback tests (one per CA: key generation is the slow part). */
export function serverCert(ca: Pem): Pem {
  let c = serverCerts.get(ca.cert);
  if (c === undefined) {
    c = issue(ca, { cn: 'localhost', sans: ['localhost', '127.0.0.1'] });
    serverCerts.set(ca.cert, c);
  }
  return c;
}

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
  /** CN of the client certificate presented, if any. */
  readonly clientCn: string | undefined;
  /** Whether the client certificate verified against the home CA. */
  readonly clientAuthorized: boolean;
}

export interface Reply {
  readonly status?: number;
  readonly body?: unknown;
  readonly contentType?: string;
  readonly delayMs?: number;
  readonly headers?: Record<string, string>;
}

export type Route = (req: SeenRequest) => Reply | Promise<Reply>;

export class FakeHome {
  readonly seen: SeenRequest[] = [];
  private readonly sockets = new Set<Socket>();
  /** When set, /v1/ping answers after this delay (latency tests). */
  pingDelayMs = 0;
  routes = new Map<string, Route>();

  private constructor(readonly server: HttpsServer, readonly url: string, private readonly caPem: string) {}

  static async start(ca: Pem, cert: Pem = serverCert(ca), port = 0): Promise<FakeHome> {
    const server = createHttpsServer({ key: cert.key, cert: cert.cert, ca: ca.cert, requestCert: true, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const home = new FakeHome(server, `https://127.0.0.1:${(server.address() as AddressInfo).port}`, ca.cert);
    server.on('connection', (s: Socket) => {
      home.sockets.add(s);
      s.on('close', () => home.sockets.delete(s));
    });
    server.on('request', (req, res) => void home.handle(req, res));
    home.routes.set('GET /v1/ping', () => ({ body: { ok: true, time: new Date().toISOString() }, delayMs: home.pingDelayMs }));
    home.routes.set('GET /v1/ca', () => ({ body: home.caPem, contentType: 'application/x-pem-file' }));
    return home;
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  count(path: string): number {
    return this.seen.filter((r) => r.path === path).length;
  }

  private async handle(req: IncomingMessage, res: import('node:http').ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    const tls = req.socket as TLSSocket;
    const peer = tls.getPeerCertificate();
    const cn = peer !== null && peer.subject !== undefined ? peer.subject.CN : undefined;
    const clientCn = Array.isArray(cn) ? cn[0] : cn;
    const path = (req.url ?? '/').split('?')[0];
    const seen: SeenRequest = { method: req.method ?? 'GET', path, body, clientCn, clientAuthorized: tls.authorized };
    this.seen.push(seen);
    if (path.startsWith('/v1/sensor/') && !tls.authorized) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'E_CLIENT_CERT', message: 'client certificate required' }));
      return;
    }
    const route = this.routes.get(`${seen.method} ${path}`) ?? [...this.routes.entries()].find(([k]) => k.endsWith('*') && `${seen.method} ${path}`.startsWith(k.slice(0, -1)))?.[1];
    if (route === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'E_NOT_FOUND', message: `no route ${seen.method} ${path}` }));
      return;
    }
    const reply = await route(seen);
    if (reply.delayMs !== undefined && reply.delayMs > 0) await new Promise((r) => setTimeout(r, reply.delayMs));
    if (res.destroyed) return;
    const status = reply.status ?? 200;
    if (reply.body === undefined) {
      res.writeHead(status).end();
      return;
    }
    const isText = typeof reply.body === 'string';
    res.writeHead(status, { 'content-type': reply.contentType ?? (isText ? 'text/plain' : 'application/json'), ...reply.headers });
    res.end(isText ? (reply.body as string) : JSON.stringify(reply.body));
  }

  /** Stops listening and cuts every open connection (a home that went down). */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A CONNECT proxy on loopback: tunnels to the requested host and records each target. */
export class ConnectProxy {
  readonly targets: string[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(readonly server: HttpServer, readonly url: string) {}

  static async start(): Promise<ConnectProxy> {
    const server = createHttpServer((_req, res) => res.writeHead(405).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const proxy = new ConnectProxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
      const target = req.url ?? '';
      proxy.targets.push(target);
      const colon = target.lastIndexOf(':');
      const upstream = netConnect(Number(target.slice(colon + 1)), target.slice(0, colon).replace(/^\[|\]$/g, ''));
      proxy.sockets.add(client);
      proxy.sockets.add(upstream);
      upstream.once('connect', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => {
        if (!client.destroyed) client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      });
      client.on('error', () => upstream.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    return proxy;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Waits until `cond` holds, polling; rejects after `limitMs` (a test that would otherwise hang). */
export async function waitFor(cond: () => boolean, limitMs = 5000, stepMs = 5): Promise<void> {
  const end = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

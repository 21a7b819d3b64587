/**
 * Test helper: makes real TLS traffic on loopback and captures it. Local HTTPS servers (node:https
 * and node:http2, one per scenario, each with a certificate made by node-forge) serve pages holding
 * dictionary phrases over TLS 1.2 and 1.3, gzip and br, HTTP/1.1 and h2; the servers' `keylog`
 * events give the NSS key log; tcpdump on `lo` writes the pcap (needs root or cap_net_raw).
 * Traffic goes only to 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { appendFileSync, existsSync, statSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import forge from 'node-forge';

export interface TlsScenario {
  /** Test-readable name, also the first label of the host name. */
  readonly name: string;
  readonly version: 'TLSv1.2' | 'TLSv1.3';
  readonly protocol: 'http/1.1' | 'h2';
  readonly encoding: 'gzip' | 'br';
  /** OpenSSL cipher list (TLS 1.2) or suite list (TLS 1.3). */
  readonly ciphers?: string;
  /** Keys come only from the RSA private key (RSA key exchange), not from the key log. */
  readonly rsaOnly?: boolean;
  /** Phrase typed (search) and shown (page). */
  readonly typed: string;
  readonly viewed: string;
}

export interface ScenarioResult extends TlsScenario {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  /** The response body as the client decoded it (proof the exchange happened). */
  readonly body: string;
}

export interface TlsCapture {
  readonly pcap: string;
  readonly keylog: string;
  readonly rsaKey: string;
  readonly results: ScenarioResult[];
}

function certificateFor(hosts: string[]): { key: string; cert: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = '01' + randomBytes(8).toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + 86400_000);
  const attrs = [{ name: 'commonName', value: hosts[0] }, { name: 'organizationName', value: 'Hark test' }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([{ name: 'subjectAltName', altNames: hosts.map((value) => ({ type: 2, value })) }]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create());
  return { key: privateKey, cert: forge.pki.certificateToPem(cert) };
}

function page(s: TlsScenario, query: string): string {
  return `<!DOCTYPE html><html><head><title>${s.name} results</title><script>var x = 1;</script></head>
<body><h1>Results for ${query}</h1><p>Pupils were reading about ${s.viewed} in this article.</p>
<p>${'Plain filler text for the page body. '.repeat(200)}</p></body></html>\n`;
}

function encode(s: TlsScenario, text: string): Buffer {
  return s.encoding === 'gzip' ? gzipSync(text) : brotliCompressSync(text);
}

function searchPath(s: TlsScenario): string {
  return `/search?q=${encodeURIComponent(s.typed).replace(/%20/g, '+')}&src=${s.name}`;
}

/** tcpdump's kernel buffer, KiB: loopback frames are up to 64 KiB, and its 2 MiB default overflowed. */
const TCPDUMP_BUFFER_KIB = 32768;
/** Times the traffic is made again when tcpdump did not write every packet it received. */
const CAPTURE_ATTEMPTS = 3;

/**
 * Starts tcpdump on `lo`; the function it returns stops it once the file has stopped growing and
 * says whether the kernel dropped none of the packets (with the 2 MiB default buffer it dropped the
 * last connection's, now and then, on a 2-core machine: the TLS end-to-end tests then failed).
 */
async function startTcpdump(pcap: string, ports: number[]): Promise<() => Promise<boolean>> {
  const filter = ports.map((p) => `tcp port ${p}`).join(' or ');
  const dump = spawn('tcpdump', ['-i', 'lo', '--immediate-mode', '-U', '-B', String(TCPDUMP_BUFFER_KIB), '-s', '0', '-w', pcap, filter], { stdio: ['ignore', 'ignore', 'pipe'] });
  let said = '';
  dump.stderr.on('data', (d: Buffer) => (said += d.toString()));
  const failed = once(dump, 'exit').then(() => {
    throw new Error(`tcpdump exited: ${said}`);
  });
  while (!said.includes('listening on')) await Promise.race([new Promise((r) => setTimeout(r, 50)), failed]);
  // tcpdump says it is listening a moment before the socket sees packets.
  await new Promise((r) => setTimeout(r, 300));
  return async () => {
    // until the file stops growing (with -U each packet is written as it is read), 5 s at most
    let size = -1;
    for (let waited = 0; waited < 5000; waited += 300) {
      await new Promise((r) => setTimeout(r, 300));
      const now = existsSync(pcap) ? statSync(pcap).size : 0;
      if (now === size) break;
      size = now;
    }
    dump.kill('SIGINT');
    await once(dump, 'exit').catch(() => undefined);
    const counted = /(\d+) packets? captured/.exec(said);
    if (!counted || counted[1] === '0') throw new Error(`tcpdump captured nothing: ${said}`);
    // ("received by filter" counts each loopback packet twice, so only the drops tell)
    const dropped = /(\d+) packets? dropped by kernel/.exec(said);
    return dropped === null || dropped[1] === '0';
  };
}

interface Running {
  port: number;
  close(): Promise<void>;
  request(): Promise<string>;
}

async function startScenario(s: TlsScenario, creds: { key: string; cert: string }, host: string, onKeylog: (line: Buffer) => void): Promise<Running> {
  const path = searchPath(s);
  const tlsOptions = {
    key: creds.key,
    cert: creds.cert,
    minVersion: s.version,
    maxVersion: s.version,
    ...(s.ciphers !== undefined && s.version === 'TLSv1.2' ? { ciphers: s.ciphers } : {}),
    ...(s.ciphers !== undefined && s.version === 'TLSv1.3' ? { ciphersuites: s.ciphers } : {}),
  };
  const respond = (reqPath: string, send: (headers: Record<string, string>, body: Buffer) => void): void => {
    const q = new URL(reqPath, 'https://x').searchParams.get('q') ?? '';
    send({ 'content-type': 'text/html; charset=utf-8', 'content-encoding': s.encoding }, encode(s, page(s, q)));
  };
  if (s.protocol === 'h2') {
    const server = http2.createSecureServer({ ...tlsOptions, allowHTTP1: false });
    server.on('keylog', (line: Buffer) => onKeylog(line));
    server.on('stream', (stream, headers) => {
      respond(String(headers[':path']), (h, body) => {
        stream.respond({ ':status': 200, ...h });
        stream.end(body);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    return {
      port,
      close: () => new Promise((r) => server.close(() => r())),
      request: () =>
        new Promise((resolve, reject) => {
          const client = http2.connect(`https://127.0.0.1:${port}`, { ca: creds.cert, servername: host, minVersion: s.version, maxVersion: s.version });
          client.on('error', reject);
          const req = client.request({ ':path': path, ':authority': host, 'accept-encoding': 'gzip, br', 'user-agent': 'hark-test' });
          const chunks: Buffer[] = [];
          let enc = '';
          req.on('response', (h) => (enc = String(h['content-encoding'] ?? '')));
          req.on('data', (c: Buffer) => chunks.push(c));
          req.on('end', () => {
            client.close();
            resolve(decodeBody(enc, Buffer.concat(chunks)));
          });
          req.on('error', reject);
          req.end();
        }),
    };
  }
  const server = https.createServer(tlsOptions, (req, res) => {
    respond(req.url ?? '/', (h, body) => {
      // No Content-Length: the body goes chunked, split so chunks cut the compressed data.
      res.writeHead(200, h);
      const step = Math.ceil(body.length / 3);
      for (let i = 0; i < body.length; i += step) res.write(body.subarray(i, i + step));
      res.end();
    });
  });
  server.on('keylog', (line: Buffer) => onKeylog(line));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () => new Promise((r) => server.close(() => r())),
    request: () =>
      new Promise((resolve, reject) => {
        const req = https.get(
          {
            host: '127.0.0.1', port, path, servername: host, ca: creds.cert, agent: false,
            minVersion: s.version, maxVersion: s.version,
            ...(s.ciphers !== undefined && s.version === 'TLSv1.2' ? { ciphers: s.ciphers } : {}),
            headers: { host, 'accept-encoding': 'gzip, br', 'user-agent': 'hark-test' },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve(decodeBody(String(res.headers['content-encoding'] ?? ''), Buffer.concat(chunks))));
          },
        );
        req.on('socket', (sock: TLSSocket) => sock.on('keylog', () => undefined));
        req.on('error', reject);
      }),
  };
}

async function decodeBody(encoding: string, body: Buffer): Promise<string> {
  const zlib = await import('node:zlib');
  if (encoding === 'gzip') return zlib.gunzipSync(body).toString();
  if (encoding === 'br') return zlib.brotliDecompressSync(body).toString();
  return body.toString();
}

/**
 * Runs every scenario (one server each, one request each) while tcpdump captures loopback. Writes
 * `traffic.pcap`, `keys.log` (key log lines of every scenario that is not `rsaOnly`) and
 * `server.key` (the RSA private key all servers share) into `dir`.
 */
export async function makeTlsTraffic(dir: string, scenarios: readonly TlsScenario[]): Promise<TlsCapture> {
  const hosts = scenarios.map((s) => `${s.name}.hark.test`);
  const creds = certificateFor(hosts);
  const pcap = join(dir, 'traffic.pcap');
  const keylog = join(dir, 'keys.log');
  const rsaKey = join(dir, 'server.key');
  writeFileSync(keylog, '', { mode: 0o600 });
  writeFileSync(rsaKey, creds.key, { mode: 0o600 });
  const running: Running[] = [];
  try {
    for (let i = 0; i < scenarios.length; i++) {
      const s = scenarios[i];
      running.push(await startScenario(s, creds, hosts[i], (line) => {
        if (!s.rsaOnly) appendFileSync(keylog, line);
      }));
    }
    for (let attempt = 1; ; attempt++) {
      const stop = await startTcpdump(pcap, running.map((r) => r.port));
      const results: ScenarioResult[] = [];
      let whole = false;
      try {
        for (let i = 0; i < scenarios.length; i++) {
          const body = await running[i].request();
          results.push({ ...scenarios[i], host: hosts[i], port: running[i].port, path: searchPath(scenarios[i]), body });
        }
      } finally {
        whole = await stop();
      }
      // a capture that lost packets is made again (the key log keeps the earlier sessions' lines too)
      if (whole || attempt === CAPTURE_ATTEMPTS) return { pcap, keylog, rsaKey, results };
    }
  } finally {
    await Promise.all(running.map((r) => r.close()));
  }
}

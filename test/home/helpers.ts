/**
 * Test support for home: a real server on 127.0.0.1 port 0 in a temporary data directory, sensor
 * keys and PKCS#10 requests made with node-forge, and undici clients (server pinned to home's CA,
 * optionally presenting a client certificate). Also used by bench/home-soak.ts.
 */

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { Agent, request } from 'undici';
import { startHome, type HomeOptions, type HomeServer } from '../../home/main.js';

export interface TestHome {
  home: HomeServer;
  dir: string;
  /** Logged-in admin token (the initial password already changed). */
  adminToken: string;
  adminPassword: string;
  close(): Promise<void>;
}

export interface SensorIdentity {
  uuid: string;
  keyPem: string;
  csrPem: string;
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** An RSA 2048 key and a CSR for it (subject CN = uuid, as the sensor makes it). */
export function makeSensorIdentity(uuid: string = randomUUID(), keyPem?: string): SensorIdentity {
  const pem = keyPem ?? generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
  const key = forge.pki.privateKeyFromPem(pem);
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.setSubject([{ name: 'commonName', value: uuid }]);
  csr.sign(key, forge.md.sha256.create());
  return { uuid, keyPem: pem, csrPem: forge.pki.certificationRequestToPem(csr) };
}

const agents: Agent[] = [];

/** An undici Agent trusting only home's CA, presenting `cert`/`key` when given. */
export function agentFor(caPem: string, client?: { cert: string; key: string }): Agent {
  const agent = new Agent({ connect: { ca: caPem, ...(client ?? {}) } });
  agents.push(agent);
  return agent;
}

export async function closeAgents(): Promise<void> {
  await Promise.all(agents.splice(0).map((a) => a.close()));
}

/** One call; JSON in and out (text when the answer is not JSON). */
export async function call(home: HomeServer, agent: Agent, method: string, path: string, body?: unknown, token?: string): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await request(`${home.url}${path}`, {
    dispatcher: agent, method: method as 'GET', headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  let parsed: unknown = text === '' ? undefined : text;
  if (String(res.headers['content-type'] ?? '').startsWith('application/json')) parsed = JSON.parse(text);
  return { status: res.statusCode, headers: res.headers, body: parsed };
}

export function readLog(home: HomeServer): string {
  return readFileSync(join(home.dataDir, 'home.log'), 'utf8');
}

/** Starts home in a new temporary directory, changes the initial admin password and logs in. */
export async function startTestHome(opts: Partial<HomeOptions> = {}): Promise<TestHome> {
  const dir = mkdtempSync(join(tmpdir(), 'hark-home-'));
  const home = await startHome({ dataDir: join(dir, 'data'), port: 0, listen: '127.0.0.1', announce: () => {}, ...opts });
  const agent = agentFor(home.caPem);
  const initial = readFileSync(join(home.dataDir, 'initial-admin-password'), 'utf8').trim();
  const first = await call(home, agent, 'POST', '/v1/login', { user: 'admin', password: initial });
  const adminPassword = 'correct horse battery staple';
  const changed = await call(home, agent, 'POST', '/v1/password', { current_password: initial, new_password: adminPassword }, (first.body as { token: string }).token);
  if (changed.status !== 204) throw new Error(`password change failed: ${JSON.stringify(changed.body)}`);
  const login = await call(home, agent, 'POST', '/v1/login', { user: 'admin', password: adminPassword });
  return {
    home, dir, adminToken: (login.body as { token: string }).token, adminPassword,
    close: async () => {
      await home.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Creates a sensor definition (admin) and returns its id. */
export async function addSensor(t: TestHome, name = 'Main building', extra: Record<string, unknown> = {}): Promise<number> {
  const r = await call(t.home, agentFor(t.home.caPem), 'POST', '/v1/sensors', { name, site: 'Hilltop School', interfaces: ['eth1'], monitored: ['10.0.0.0/8'], ...extra }, t.adminToken);
  if (r.status !== 201) throw new Error(`add sensor failed: ${JSON.stringify(r.body)}`);
  return (r.body as { id: number }).id;
}

/** Enrols a new identity for `sensorId` by credentials; returns the identity and its certificate. */
export async function enrolByCredentials(t: TestHome, sensorId: number, identity = makeSensorIdentity(), siteKey?: string): Promise<SensorIdentity & { cert: string; answer: Answer }> {
  const answer = await call(t.home, agentFor(t.home.caPem), 'POST', '/v1/enrol/credentials', {
    user: 'admin', password: t.adminPassword, sensor_id: sensorId, uuid: identity.uuid, hostname: 'sensor-host', csr: identity.csrPem,
    ...(siteKey !== undefined ? { site_key: siteKey } : {}),
  });
  return { ...identity, cert: (answer.body as { certificate?: string })?.certificate ?? '', answer };
}

/**
 * Whole-system test helpers: a real home server (`hark home` as a child process, so a test can
 * kill and restart it), an operator session on its API, sensors enrolled with `hark enrol`, live
 * sensors (`hark run`) on veth pairs fed by tcpreplay. Everything listens on 127.0.0.1 and every
 * interface a test makes is removed by `removeVeth`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';

export const HARK = fileURLToPath(new URL('../../../bin/hark', import.meta.url));

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` every 100 ms until it is true; throws naming `what` after `timeoutMs`. */
export async function waitFor(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A TCP port free on 127.0.0.1 right now (so a restarted home can listen on the same one). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

/** A child process with its stderr (and stdout) collected. */
export class Proc {
  out = '';
  err = '';
  readonly exited: Promise<number | null>;
  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d) => (this.out += d));
    child.stderr?.on('data', (d) => (this.err += d));
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.alive) this.child.kill(signal);
    return this.exited;
  }
}

export function hark(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  return new Proc(spawn(HARK, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }));
}

/** Waits until a `hark run` says it listens (its dictionary compiled, its capture open); throws
 * with its stderr if it exits first. */
export async function sensorListening(sensor: Proc, timeoutMs = 60_000): Promise<void> {
  await waitFor('the sensor to listen', timeoutMs, () => {
    if (!sensor.alive) throw new Error(`hark run exited: ${sensor.err}`);
    return sensor.err.includes('listening on');
  });
}

export interface HomeProcess {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly proc: Proc;
  readonly caPem: string;
  readonly fingerprint: string;
}

/** `hark home` on 127.0.0.1:port (a free one when 0), resolved once it listens. */
export async function startHomeProcess(dataDir: string, port = 0): Promise<HomeProcess> {
  const proc = hark(['home', '--data-dir', dataDir, '--port', String(port), '--listen', '127.0.0.1', '--heartbeat-timeout', '30'], { HARK_HOME_READY_FD: '1' });
  await waitFor('home to listen', 60_000, () => {
    if (!proc.alive) throw new Error(`hark home exited: ${proc.err}`);
    return proc.out.includes('"port"');
  });
  const ready = JSON.parse(proc.out.split('\n').find((l) => l.includes('"port"'))!) as { port: number; fingerprint: string };
  return { url: `https://127.0.0.1:${ready.port}`, port: ready.port, dataDir, proc, caPem: readFileSync(join(dataDir, 'ca.pem'), 'utf8'), fingerprint: ready.fingerprint };
}

/** An operator's session on home's API (admin unless logged in as another). */
export class Operator {
  private readonly agent: Agent;
  constructor(private readonly url: string, caPem: string, private token = '') {
    this.agent = new Agent({ connect: { ca: caPem } });
  }

  async call(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await request(`${this.url}${path}`, {
      method,
      dispatcher: this.agent,
      headers: { 'content-type': 'application/json', ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    let parsed: unknown = text;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.statusCode, body: parsed };
  }

  async ok(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<any> {
    const r = await this.call(method, path, body);
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  /** Logs in as the first admin (its one-time password), sets a real password. */
  static async firstAdmin(home: HomeProcess, password = 'correct horse battery staple'): Promise<Operator> {
    const initial = readFileSync(join(home.dataDir, 'initial-admin-password'), 'utf8').trim();
    const op = new Operator(home.url, home.caPem);
    const login = await op.ok('POST', '/v1/login', { user: 'admin', password: initial });
    op.token = login.token;
    await op.ok('POST', '/v1/password', { current_password: initial, new_password: password });
    const again = await op.ok('POST', '/v1/login', { user: 'admin', password });
    op.token = again.token;
    return op;
  }

  static async login(home: { url: string; caPem: string }, user: string, password: string): Promise<Operator> {
    const op = new Operator(home.url, home.caPem);
    op.token = (await op.ok('POST', '/v1/login', { user, password })).token;
    return op;
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

/** `hark enrol` with an operator's account; resolves with the process once it exited. */
export async function enrolByCredentials(homes: readonly string[], fingerprint: string, dataDir: string, sensorId: number, password: string, extra: string[] = []): Promise<Proc> {
  const p = hark(['enrol', ...homes.flatMap((h) => ['--home', h]), '--ca-fingerprint', fingerprint, '--user', 'admin', '--sensor', String(sensorId), '--data-dir', dataDir, ...extra], { HARK_PASSWORD: password });
  await p.exited;
  return p;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A veth pair standing in for a mirror port: tcpreplay into `send`, the sensor listens on `recv`. */
export function makeVeth(tag: string): { send: string; recv: string } {
  const base = `hk${tag}${process.pid % 1000}`;
  const send = `${base}a`;
  const recv = `${base}b`;
  ip('link', 'add', send, 'type', 'veth', 'peer', 'name', recv);
  ip('link', 'set', send, 'up');
  ip('link', 'set', recv, 'up');
  return { send, recv };
}

export function removeVeth(v: { send: string }): void {
  try {
    ip('link', 'del', v.send);
  } catch {
    // already gone with its peer
  }
}

export function replay(iface: string, pcap: string, pps?: number): void {
  execFileSync('tcpreplay', ['-i', iface, ...(pps !== undefined ? ['--pps', String(pps)] : ['--topspeed']), pcap], { stdio: 'ignore' });
}

/** Reads the sensor's status file (undefined until it exists). */
export function status(dataDir: string): any {
  try {
    return JSON.parse(readFileSync(join(dataDir, 'status.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

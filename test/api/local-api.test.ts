/**
 * The local API: bearer-token authentication (token file made 0600 on first start), routes,
 * body size limit, the Unix socket's mode, loopback-only TCP, and the key route feeding a KeyStore;
 * a client hanging up mid-body ends its request only.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { API_MAX_BODY_BYTES, LocalApi, loadOrCreateToken, parseLoopbackAddress } from '../../sensor/api/local-api.js';
import { sensorApiRoutes } from '../../sensor/api/routes.js';
import { KeyStore } from '../../sensor/app-layer/tls/keylog.js';
import { Counters } from '../../sensor/events/counters.js';
import { IdentityTable } from '../../sensor/identity/table.js';
import { MAX_API_MAPPINGS_PER_REQUEST } from '../../sensor/identity/mapping.js';

let dir: string;
let api: LocalApi;
let token: string;
const counters = new Counters();
const store = new KeyStore(counters);
const identity = new IdentityTable(counters);

function call(opts: { socket?: boolean; method: string; path: string; token?: string; body?: string | Buffer }): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const target = opts.socket === false ? { host: '127.0.0.1', port: api.tcpPort() } : { socketPath: join(dir, 'run', 'api.sock') };
    const headers: Record<string, string> = opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {};
    const req = request({ ...target, method: opts.method, path: opts.path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hark-api-'));
  api = await LocalApi.start({
    socketPath: join(dir, 'run', 'api.sock'),
    listen: '127.0.0.1:0',
    tokenFile: join(dir, 'state', 'api.token'),
    routes: sensorApiRoutes(store, counters, () => [{ name: 'eth1', packets: 7 }], identity),
  });
  token = readFileSync(join(dir, 'state', 'api.token'), 'utf8').trim();
});

after(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

test('LocalApi makes a private random token and a private socket', () => {
  assert.match(token, /^[0-9a-f]{64}$/);
  assert.equal(statSync(join(dir, 'state', 'api.token')).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'run', 'api.sock')).mode & 0o077, 0);
  assert.equal(statSync(join(dir, 'run')).mode & 0o077, 0);
  assert.equal(loadOrCreateToken(join(dir, 'state', 'api.token')), token, 'the token survives a restart');
});

test('LocalApi refuses requests without the right bearer token', async () => {
  assert.equal((await call({ method: 'GET', path: '/v1/status' })).status, 401);
  assert.equal((await call({ method: 'GET', path: '/v1/status', token: token.replace(/.$/, (c) => (c === '0' ? '1' : '0')) })).status, 401);
  assert.equal((await call({ method: 'GET', path: '/v1/status', token: token.slice(1) })).status, 401);
  assert.equal((await call({ socket: false, method: 'GET', path: '/v1/status' })).status, 401);
});

test('LocalApi answers status on the socket and on loopback TCP, 404 for unknown routes', async () => {
  const r = await call({ method: 'GET', path: '/v1/status', token });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.interfaces, [{ name: 'eth1', packets: 7 }]);
  assert.equal(typeof r.body.counters, 'object');
  assert.equal((await call({ socket: false, method: 'GET', path: '/v1/status', token })).status, 200);
  assert.equal((await call({ method: 'GET', path: '/v1/nothing', token })).status, 404);
  assert.equal((await call({ method: 'GET', path: '/v1/tls-keys', token })).status, 404, 'method is part of the route');
});

test('POST /v1/tls-keys adds key log lines to the key store and reports bad lines by number only', async () => {
  const random = 'ab'.repeat(32);
  const secret = 'cd'.repeat(48);
  const body = `# comment\nCLIENT_RANDOM ${random} ${secret}\nCLIENT_RANDOM nothex ${secret}\nEXPORTER_SECRET ${random} ${'ef'.repeat(32)}\n`;
  const r = await call({ method: 'POST', path: '/v1/tls-keys', token, body });
  assert.equal(r.status, 200);
  assert.equal(r.body.accepted, 1);
  assert.equal(r.body.ignored, 1);
  assert.equal(r.body.bad.length, 1);
  assert.equal(r.body.bad[0].line, 3);
  assert.ok(!JSON.stringify(r.body).includes(secret), 'secrets are never echoed');
  assert.equal(store.get(random)?.masterSecret?.toString('hex'), secret);
  const bad = await call({ method: 'POST', path: '/v1/tls-keys', token, body: 'garbage line\n' });
  assert.equal(bad.status, 400);
});

test('LocalApi refuses bodies over the limit', async () => {
  const r = await call({ method: 'POST', path: '/v1/tls-keys', token, body: Buffer.alloc(API_MAX_BODY_BYTES + 1, 0x41) });
  assert.equal(r.status, 413);
  assert.deepEqual(r.body, { error: `body larger than ${API_MAX_BODY_BYTES} bytes` });
});

test('LocalApi: a client that resets its connection in the middle of a body ends its request, not the sensor', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown): void => { unhandled.push(err); };
  process.on('unhandledRejection', onUnhandled);
  try {
    await new Promise<void>((resolve, reject) => {
      const s = connect(api.tcpPort()!, '127.0.0.1', () => {
        s.write(`POST /v1/tls-keys HTTP/1.1\r\nHost: hark\r\nAuthorization: Bearer ${token}\r\nContent-Length: 1000\r\n\r\nCLIENT_RANDOM `);
        setTimeout(() => s.resetAndDestroy(), 50);
      });
      s.on('error', () => undefined);
      s.on('close', () => resolve());
      s.on('timeout', () => reject(new Error('no close')));
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(unhandled, [], 'the aborted body reaches no one');
    assert.equal((await call({ method: 'GET', path: '/v1/status', token })).status, 200, 'the API still answers');
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('parseLoopbackAddress accepts loopback only and says why not', () => {
  assert.deepEqual(parseLoopbackAddress('127.0.0.1:8439'), { host: '127.0.0.1', port: 8439 });
  assert.deepEqual(parseLoopbackAddress('[::1]:8439'), { host: '::1', port: 8439 });
  assert.throws(() => parseLoopbackAddress('10.0.0.5:8439'), /not a loopback address/);
  assert.throws(() => parseLoopbackAddress('0.0.0.0:8439'), /not a loopback address/);
  assert.throws(() => parseLoopbackAddress('localhost'), /not HOST:PORT/);
  assert.throws(() => parseLoopbackAddress('127.0.0.1:70000'), /not HOST:PORT/);
});

test('loadOrCreateToken refuses a file without a usable token', () => {
  const f = join(dir, 'short.token');
  writeFileSync(f, 'abc\n', { mode: 0o600 });
  assert.throws(() => loadOrCreateToken(f), /no usable token/);
});

test('POST /v1/identity takes JSON mappings and CSV, observed as source api', async () => {
  const r = await call({ method: 'POST', path: '/v1/identity', token, body: JSON.stringify([{ ip: '10.1.2.3', user: 'jsmith', hostname: 'LAPTOP-7F3' }, { ip: 'nope', user: 'x' }]) });
  assert.equal(r.status, 200);
  assert.equal(r.body.accepted, 1);
  assert.deepEqual(r.body.bad.map((b: { index: number }) => b.index), [1]);
  const now = Date.now() * 1000;
  const who = identity.lookup('10.1.2.3', now + 1000);
  assert.equal(who?.user, 'jsmith');
  assert.equal(who?.sources.user, 'api');
  const csv = await call({ method: 'POST', path: '/v1/identity', token, body: 'ip or mac,hostname,user\n10.1.2.4,PC-9,asmith\n' });
  assert.equal(csv.status, 200);
  assert.equal(identity.lookup('10.1.2.4', Date.now() * 1000 + 1000)?.user, 'asmith');
  assert.equal((await call({ method: 'POST', path: '/v1/identity', token: 'x'.repeat(64), body: '[]' })).status, 401);
});

test('POST /v1/identity: {mappings} form, MAC forms, ttl, every rejected mapping named, bounds', async () => {
  const table = new IdentityTable(new Counters());
  const own = await LocalApi.start({ socketPath: join(dir, 'id', 'api.sock'), tokenFile: join(dir, 'state', 'api.token'), routes: sensorApiRoutes(store, counters, () => [], table) });
  const post = (body: string, t = token): Promise<{ status: number; body: any }> =>
    new Promise((resolve, reject) => {
      const req = request({ socketPath: join(dir, 'id', 'api.sock'), method: 'POST', path: '/v1/identity', headers: { authorization: `Bearer ${t}` } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
      });
      req.on('error', reject);
      req.end(body);
    });
  try {
    const before = Date.now() * 1000;
    const r = await post(JSON.stringify({ mappings: [
      { ip: '10.4.7.23', user: 'jsmith', hostname: 'LAPTOP-7F3', ttlSeconds: 600 },
      { mac: 'AA-BB-CC-DD-EE-FF', user: 'alice' },
      { ip: 'nope', user: 'x' },
      { ip: '10.0.0.1' },
    ] }));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { accepted: 2, bad: [
      { index: 2, reason: '"ip" "nope" is not an IPv4 or IPv6 address' },
      { index: 3, reason: 'needs "hostname", "user" or "domain"' },
    ] });
    const now = Date.now() * 1000;
    assert.deepEqual(table.lookup('10.4.7.23', now), { ip: '10.4.7.23', hostname: 'LAPTOP-7F3', user: 'jsmith', sources: { hostname: 'api', user: 'api' } });
    assert.equal(table.lookup('10.4.7.23', before + 601_000_000), undefined, 'ttlSeconds respected');
    assert.equal((await post('[]', `${token}x`)).status, 401);
    assert.equal((await post('{not json')).status, 400);
    assert.equal((await post('{"x":1}')).status, 400);
    assert.equal((await post(`[${'"x",'.repeat(MAX_API_MAPPINGS_PER_REQUEST)}"x"]`)).status, 413, 'one mapping over the bound');
    assert.equal(table.size.ips, 1);
    assert.equal(table.size.macs, 1);
  } finally {
    await own.close();
  }
});

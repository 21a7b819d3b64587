import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchCa, HomeLink, LinkConfigError } from '../../sensor/home-client/link.js';
import { fingerprint } from '../../sensor/home-client/credentials.js';
import { HomeTransportError } from '../../sensor/home-client/transport.js';
import { ConnectProxy, FakeHome, issue, makeCa, serverCert, waitFor, type Pem } from './fake-home.js';

let ca: Pem;
let otherCa: Pem;
let client: Pem;

before(() => {
  ca = makeCa('Hark Home CA');
  otherCa = makeCa('Someone Else CA');
  client = issue(ca, { cn: '3f2a7c1e-0000-4000-8000-000000000001', ou: 'sensor' });
});

async function rejection(p: Promise<unknown>): Promise<HomeTransportError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof HomeTransportError, `expected HomeTransportError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

describe('HomeLink trust', () => {
  it('HomeLink talks to a home whose certificate is signed by the pinned CA', async () => {
    const home = await FakeHome.start(ca);
    const link = new HomeLink({ homes: [home.url], ca: ca.cert });
    try {
      const res = await link.request('GET', '/v1/ping');
      assert.equal(res.status, 200);
      assert.equal((res.body as { ok: boolean }).ok, true);
      assert.equal(res.home, home.url);
    } finally {
      await link.close();
      await home.close();
    }
  });

  it('HomeLink passes home\'s answer headers on (the uploader honours retry-after)', async () => {
    const home = await FakeHome.start(ca);
    home.routes.set('POST /v1/enrol/request', () => ({ status: 429, body: { error: 'E_RATE_LIMIT', message: 'slow down' }, headers: { 'retry-after': '7' } }));
    const link = new HomeLink({ homes: [home.url], ca: ca.cert });
    try {
      const res = await link.request('POST', '/v1/enrol/request', { uuid: 'x' });
      assert.equal(res.status, 429);
      assert.equal(res.headers?.['retry-after'], '7');
    } finally {
      await link.close();
      await home.close();
    }
  });

  it('HomeLink refuses a server certificate from another CA with E_HOME_TLS', async () => {
    const home = await FakeHome.start(ca, serverCert(otherCa));
    const link = new HomeLink({ homes: [home.url], ca: ca.cert });
    try {
      const err = await rejection(link.request('GET', '/v1/ping'));
      assert.equal(err.code, 'E_HOME_TLS');
      assert.equal(home.seen.length, 0, 'no request may reach a home that failed the pin');
    } finally {
      await link.close();
      await home.close();
    }
  });

  it('HomeLink presents the client certificate for mutual TLS', async () => {
    const home = await FakeHome.start(ca);
    home.routes.set('POST /v1/sensor/heartbeat', (r) => ({ body: { config_version: 1, actions: [], echo: r.body } }));
    const withCert = new HomeLink({ homes: [home.url], ca: ca.cert, cert: client.cert, key: client.key });
    const without = new HomeLink({ homes: [home.url], ca: ca.cert });
    try {
      const ok = await withCert.request('POST', '/v1/sensor/heartbeat', { queue: 3 });
      assert.equal(ok.status, 200);
      assert.deepEqual((ok.body as { echo: unknown }).echo, { queue: 3 });
      const last = home.seen.at(-1)!;
      assert.equal(last.clientCn, '3f2a7c1e-0000-4000-8000-000000000001');
      assert.equal(last.clientAuthorized, true);
      const refused = await without.request('POST', '/v1/sensor/heartbeat', {});
      assert.equal(refused.status, 401);
      assert.equal(home.seen.at(-1)!.clientAuthorized, false);
    } finally {
      await withCert.close();
      await without.close();
      await home.close();
    }
  });

  it('HomeLink refuses plain http:// unless allowPlaintext', async () => {
    assert.throws(() => new HomeLink({ homes: ['http://127.0.0.1:1'], ca: ca.cert }), (e: unknown) => e instanceof LinkConfigError && e.code === 'E_HOME_PLAINTEXT' && /https/.test(e.message));
    const server: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const link = new HomeLink({ homes: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`], ca: ca.cert, allowPlaintext: true });
    try {
      const res = await link.request('GET', '/v1/ping');
      assert.deepEqual(res.body, { ok: true });
    } finally {
      await link.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('HomeLink reports a home that does not answer in time as E_HOME_TIMEOUT', async () => {
    const home = await FakeHome.start(ca);
    home.pingDelayMs = 2000;
    const link = new HomeLink({ homes: [home.url], ca: ca.cert });
    try {
      const err = await rejection(link.request('GET', '/v1/ping', undefined, { timeoutMs: 100 }));
      assert.equal(err.code, 'E_HOME_TIMEOUT');
    } finally {
      await link.close();
      await home.close();
    }
  });
});

describe('HomeLink proxy', () => {
  it('HomeLink reaches home through a CONNECT proxy with the pin and the client certificate', async () => {
    const home = await FakeHome.start(ca);
    home.routes.set('GET /v1/sensor/config', () => ({ body: { alg: 'RS256', bundle: '', signature: '' } }));
    const proxy = await ConnectProxy.start();
    const link = new HomeLink({ homes: [home.url], ca: ca.cert, cert: client.cert, key: client.key, proxy: proxy.url });
    try {
      const res = await link.request('GET', '/v1/sensor/config');
      assert.equal(res.status, 200);
      assert.deepEqual(proxy.targets, [`127.0.0.1:${home.port}`]);
      assert.equal(home.seen.at(-1)!.clientAuthorized, true);
    } finally {
      await link.close();
      await proxy.close();
      await home.close();
    }
  });

  it('HomeLink keeps the pin through the proxy (foreign certificate is E_HOME_TLS)', async () => {
    const home = await FakeHome.start(ca, serverCert(otherCa));
    const proxy = await ConnectProxy.start();
    const link = new HomeLink({ homes: [home.url], ca: ca.cert, proxy: proxy.url });
    try {
      const err = await rejection(link.request('GET', '/v1/ping'));
      assert.equal(err.code, 'E_HOME_TLS');
      assert.equal(proxy.targets.length, 1);
    } finally {
      await link.close();
      await proxy.close();
      await home.close();
    }
  });

  it('HomeLink names the proxy when the proxy cannot be reached', async () => {
    const proxy = await ConnectProxy.start();
    const url = proxy.url;
    await proxy.close();
    const link = new HomeLink({ homes: ['https://127.0.0.1:9'], ca: ca.cert, proxy: url });
    try {
      const err = await rejection(link.request('GET', '/v1/ping'));
      assert.equal(err.code, 'E_HOME_PROXY');
      assert.match(err.message, new RegExp(url.replace(/[./]/g, '\\$&')));
    } finally {
      await link.close();
    }
  });
});

describe('HomeLink several homes', () => {
  it('HomeLink.start chooses the home with the lowest ping latency, not the first', async () => {
    const slow = await FakeHome.start(ca);
    const fast = await FakeHome.start(ca);
    slow.pingDelayMs = 300;
    const link = new HomeLink({ homes: [slow.url, fast.url], ca: ca.cert });
    try {
      const results = await link.start();
      assert.equal(results.length, 2);
      assert.ok(results.every((r) => r.latencyMs !== undefined));
      assert.equal(link.preferredHome, fast.url);
      assert.equal(link.current, fast.url);
      const res = await link.request('GET', '/v1/ping');
      assert.equal(res.home, fast.url);
    } finally {
      await link.close();
      await slow.close();
      await fast.close();
    }
  });

  it('HomeLink.start skips a home that does not answer', async () => {
    const down = await FakeHome.start(ca);
    const up = await FakeHome.start(ca);
    await down.close();
    const link = new HomeLink({ homes: [down.url, up.url], ca: ca.cert });
    try {
      const results = await link.start();
      assert.equal(results[0].latencyMs, undefined);
      assert.equal(link.current, up.url);
    } finally {
      await link.close();
      await up.close();
    }
  });

  it('HomeLink fails over to the next home when the current one goes down, retrying the request once', async () => {
    const a = await FakeHome.start(ca);
    const b = await FakeHome.start(ca);
    a.routes.set('POST /v1/x', () => ({ body: { from: 'a' } }));
    b.routes.set('POST /v1/x', () => ({ body: { from: 'b' } }));
    const switches: Array<[string, string, string]> = [];
    const link = new HomeLink({ homes: [a.url, b.url], ca: ca.cert, recheckMs: 60_000, onSwitch: (f, t, r) => switches.push([f, t, r]) });
    try {
      assert.equal(link.current, a.url);
      assert.equal((await link.request('POST', '/v1/x', { n: 1 })).home, a.url);
      await a.close();
      const res = await link.request('POST', '/v1/x', { n: 2 });
      assert.equal(res.home, b.url);
      assert.deepEqual(res.body, { from: 'b' });
      assert.deepEqual(b.seen.filter((r) => r.path === '/v1/x').map((r) => r.body), [{ n: 2 }]);
      assert.equal(link.current, b.url);
      assert.equal(switches.length, 1);
      assert.equal(switches[0][0], a.url);
      assert.equal(switches[0][1], b.url);
      assert.match(switches[0][2], /E_HOME_UNREACHABLE/);
    } finally {
      await link.close();
      await b.close();
    }
  });

  it('HomeLink fails over on a TLS failure but never retries without the pin', async () => {
    const bad = await FakeHome.start(ca, serverCert(otherCa));
    const good = await FakeHome.start(ca);
    const link = new HomeLink({ homes: [bad.url, good.url], ca: ca.cert });
    try {
      const res = await link.request('GET', '/v1/ping');
      assert.equal(res.home, good.url);
      assert.equal(bad.seen.length, 0);
    } finally {
      await link.close();
      await bad.close();
      await good.close();
    }
  });

  it('HomeLink rejects with the transport error when every home is down', async () => {
    const a = await FakeHome.start(ca);
    const b = await FakeHome.start(ca);
    await a.close();
    await b.close();
    const link = new HomeLink({ homes: [a.url, b.url], ca: ca.cert });
    try {
      const err = await rejection(link.request('GET', '/v1/ping'));
      assert.equal(err.code, 'E_HOME_UNREACHABLE');
    } finally {
      await link.close();
    }
  });

  it('HomeLink switches back to the preferred home only after 3 answered probes spanning the hold-down', async () => {
    const a = await FakeHome.start(ca);
    const b = await FakeHome.start(ca);
    const port = a.port;
    const switches: Array<[string, string, string]> = [];
    const link = new HomeLink({ homes: [a.url, b.url], ca: ca.cert, recheckMs: 20, holdDownMs: 150, onSwitch: (f, t, r) => switches.push([f, t, r]) });
    let a2: FakeHome | undefined;
    try {
      assert.equal(link.preferredHome, a.url);
      await a.close();
      await link.request('GET', '/v1/ping');
      assert.equal(link.current, b.url);
      a2 = await FakeHome.start(ca, serverCert(ca), port);
      await waitFor(() => switches.length === 2);
      assert.equal(switches[1][0], b.url);
      assert.equal(switches[1][1], a.url);
      const m = /answered (\d+) consecutive probes over (\d+) ms/.exec(switches[1][2]);
      assert.ok(m !== null, switches[1][2]);
      assert.ok(Number(m[1]) >= 3);
      assert.ok(Number(m[2]) >= 150);
      assert.ok(a2.count('/v1/ping') >= 3, 'the preferred home must have answered at least 3 probes');
      assert.equal(link.current, a.url);
    } finally {
      await link.close();
      await a2?.close();
      await b.close();
    }
  });

  it('HomeLink does not switch back to a flapping preferred home', async () => {
    const a = await FakeHome.start(ca);
    const b = await FakeHome.start(ca);
    const port = a.port;
    const switches: string[] = [];
    const link = new HomeLink({ homes: [a.url, b.url], ca: ca.cert, recheckMs: 15, holdDownMs: 100, onSwitch: (_f, t) => switches.push(t) });
    let flappy: FakeHome | undefined;
    try {
      await a.close();
      await link.request('GET', '/v1/ping');
      assert.equal(link.current, b.url);
      // Back at the same address, but only two probes in three answer: never three in a row.
      flappy = await FakeHome.start(ca, serverCert(ca), port);
      let n = 0;
      flappy.routes.set('GET /v1/ping', () => (++n % 3 === 0 ? { status: 503, body: { error: 'E_DOWN', message: 'flap' } } : { body: { ok: true } }));
      await waitFor(() => n >= 30);
      assert.equal(link.current, b.url);
      assert.deepEqual(switches, [b.url]);
    } finally {
      await link.close();
      await flappy?.close();
      await b.close();
    }
  });
});

describe('fetchCa', () => {
  it('fetchCa returns the CA and its fingerprint, checked against the expected one', async () => {
    const home = await FakeHome.start(ca);
    try {
      const got = await fetchCa(home.url, { expectFingerprint: fingerprint(ca.cert).toLowerCase().replace(/:/g, '') });
      assert.equal(got.fingerprint, fingerprint(ca.cert));
      assert.equal(fingerprint(got.pem), fingerprint(ca.cert));
    } finally {
      await home.close();
    }
  });

  it('fetchCa refuses a CA whose fingerprint differs from the expected one', async () => {
    const home = await FakeHome.start(ca);
    try {
      await assert.rejects(fetchCa(home.url, { expectFingerprint: fingerprint(otherCa.cert) }), (e: Error & { code?: string }) => e.code === 'E_HOME_CA_FINGERPRINT');
    } finally {
      await home.close();
    }
  });

  it('fetchCa refuses a CA that the server certificate does not chain to', async () => {
    const home = await FakeHome.start(ca, serverCert(otherCa));
    try {
      await assert.rejects(fetchCa(home.url), (e: Error & { code?: string }) => e.code === 'E_HOME_TLS');
    } finally {
      await home.close();
    }
  });

  it('fetchCa goes through the proxy when given one', async () => {
    const home = await FakeHome.start(ca);
    const proxy = await ConnectProxy.start();
    try {
      const got = await fetchCa(home.url, { proxy: proxy.url });
      assert.equal(got.fingerprint, fingerprint(ca.cert));
      assert.ok(proxy.targets.length >= 2, 'both the unverified fetch and the pinned check go through the proxy');
      assert.ok(proxy.targets.every((t) => t === `127.0.0.1:${home.port}`));
    } finally {
      await proxy.close();
      await home.close();
    }
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { HealthEvent } from '../../sensor/events/health.js';
import { Heartbeat, HEARTBEAT_FAILURES_TO_RAISE, type HomeAction } from '../../sensor/home-client/heartbeat.js';
import { HomeTransportError, type HomeResponse, type HomeTransport } from '../../sensor/home-client/transport.js';
import { waitFor } from './fake-home.js';

interface Call { method: string; path: string; body: unknown }

/** Answers heartbeats from a queue of replies ('down' = transport failure); records every call. */
function fakeHome(replies: Array<HomeResponse['body'] | 'down' | number>): HomeTransport & { calls: Call[] } {
  const t = {
    calls: [] as Call[],
    async request(method: string, path: string, body?: unknown): Promise<HomeResponse> {
      t.calls.push({ method, path, body });
      if (path.startsWith('/v1/sensor/actions/')) return { status: 204, body: undefined, home: 'h' };
      const r = replies.length > 1 ? replies.shift() : replies[0];
      if (r === 'down') throw new HomeTransportError('E_HOME_UNREACHABLE', 'Cannot reach home "h": ECONNREFUSED', 'h');
      if (typeof r === 'number') return { status: r, body: { error: 'E_CERT', message: 'revoked' }, home: 'h' };
      return { status: 200, body: r, home: 'h' };
    },
  };
  return t;
}

describe('Heartbeat', () => {
  it('Heartbeat posts what collect gives and runs and acknowledges each action', async () => {
    const link = fakeHome([{ config_version: 3, actions: [{ id: 'a1', kind: 'reload' }, { id: 'a2', kind: 'explode' }] }]);
    const ran: HomeAction[] = [];
    const hb = new Heartbeat({
      link,
      collect: () => ({ hark_version: '0.1.0', config_version: 3, queue: 2 }),
      onAction: async (a) => {
        ran.push(a);
        return a.kind === 'reload' ? { ok: true } : { ok: false, message: `unknown action "${a.kind}"` };
      },
    });
    assert.equal(await hb.beatNow(), true);
    assert.deepEqual(link.calls[0], { method: 'POST', path: '/v1/sensor/heartbeat', body: { hark_version: '0.1.0', config_version: 3, queue: 2 } });
    assert.deepEqual(ran, [{ id: 'a1', kind: 'reload' }, { id: 'a2', kind: 'explode' }]);
    assert.deepEqual(link.calls.slice(1), [
      { method: 'POST', path: '/v1/sensor/actions/a1/done', body: { ok: true } },
      { method: 'POST', path: '/v1/sensor/actions/a2/done', body: { ok: false, message: 'unknown action "explode"' } },
    ]);
  });

  it('Heartbeat acknowledges a redelivered action without running it again', async () => {
    const link = fakeHome([{ config_version: 1, actions: [{ id: 9, kind: 'restart' }] }]);
    let runs = 0;
    const hb = new Heartbeat({ link, collect: () => ({ config_version: 1 }), onAction: async () => { runs++; return { ok: true }; } });
    await hb.beatNow();
    await hb.beatNow();
    assert.equal(runs, 1);
    assert.equal(link.calls.filter((c) => c.path === '/v1/sensor/actions/9/done').length, 2);
  });

  it('Heartbeat reports an action handler that throws as not ok', async () => {
    const link = fakeHome([{ config_version: 1, actions: [{ id: 'x', kind: 'reload' }] }]);
    const hb = new Heartbeat({ link, collect: () => ({}), onAction: async () => { throw new Error('dictionary broken'); } });
    await hb.beatNow();
    assert.deepEqual(link.calls.at(-1)?.body, { ok: false, message: 'dictionary broken' });
  });

  it('Heartbeat calls onConfigVersion only when home has a newer version', async () => {
    const seen: number[] = [];
    const link = fakeHome([{ config_version: 4, actions: [] }, { config_version: 5, actions: [] }]);
    const hb = new Heartbeat({ link, collect: () => ({ config_version: 4 }), onAction: async () => ({ ok: true }), onConfigVersion: (v) => seen.push(v) });
    await hb.beatNow();
    assert.deepEqual(seen, []);
    await hb.beatNow();
    assert.deepEqual(seen, [5]);
  });

  it('Heartbeat raises home.unreachable after 3 failures in a row and clears it on success', async () => {
    const events: HealthEvent[] = [];
    const link = fakeHome(['down', 'down', 401, { config_version: 1, actions: [] }]);
    const hb = new Heartbeat({ link, collect: () => ({ config_version: 1 }), onAction: async () => ({ ok: true }), onHealth: (e) => events.push(e) });
    for (let i = 0; i < HEARTBEAT_FAILURES_TO_RAISE - 1; i++) assert.equal(await hb.beatNow(), false);
    assert.equal(events.length, 0);
    assert.equal(await hb.beatNow(), false);
    assert.equal(events.length, 1);
    assert.equal(events[0].name, 'home.unreachable');
    assert.equal(events[0].state, 'raised');
    assert.match(events[0].message, /401 E_CERT/);
    assert.equal(await hb.beatNow(), true);
    assert.equal(events.length, 2);
    assert.equal(events[1].name, 'home.unreachable');
    assert.equal(events[1].state, 'cleared');
    assert.equal(hb.consecutiveFailures, 0);
  });

  it('Heartbeat.start beats every interval until stop', async () => {
    const link = fakeHome([{ config_version: 1, actions: [] }]);
    const hb = new Heartbeat({ link, intervalMs: 10, collect: () => ({}), onAction: async () => ({ ok: true }) });
    hb.start();
    await waitFor(() => link.calls.length >= 3);
    hb.stop();
    const n = link.calls.length;
    await new Promise((r) => setTimeout(r, 40));
    assert.ok(link.calls.length <= n + 1, 'at most the beat in flight completes after stop');
  });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counters } from '../../sensor/events/counters.js';
import { IdentityTable } from '../../sensor/identity/table.js';
import { IDENTITY_API_PATH, createIdentityApiHandler, mappingToObservation, startIdentityApi } from '../../sensor/identity/push-api.js';

const TOKEN = 'test-token-0123456789abcdef';
const NOW = 1_700_000_000_000_000;

test('identity push API: authenticated mappings land in the table as source api', async () => {
  const table = new IdentityTable(new Counters());
  const api = await startIdentityApi({ sink: table, token: TOKEN, nowUs: () => NOW });
  try {
    const url = `http://127.0.0.1:${api.port}${IDENTITY_API_PATH}`;
    const post = (body: string, auth = `Bearer ${TOKEN}`): Promise<Response> =>
      fetch(url, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body });
    const r = await post(JSON.stringify({ mappings: [
      { ip: '10.4.7.23', user: 'jsmith', hostname: 'LAPTOP-7F3', ttlSeconds: 600 },
      { mac: 'AA-BB-CC-DD-EE-FF', user: 'alice' },
      { ip: 'nope', user: 'x' },
      { ip: '10.0.0.1' },
    ] }));
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { accepted: 2, rejected: [
      { index: 2, error: '"ip" "nope" is not an IPv4 or IPv6 address' },
      { index: 3, error: 'needs "hostname", "user" or "domain"' },
    ] });
    assert.deepEqual(table.lookup('10.4.7.23', NOW), { ip: '10.4.7.23', hostname: 'LAPTOP-7F3', user: 'jsmith', sources: { hostname: 'api', user: 'api' } });
    assert.equal(table.lookup('10.4.7.23', NOW + 600_000_000), undefined, 'ttlSeconds respected');
    assert.equal((await post('[]', `Bearer ${TOKEN}x`)).status, 401);
    assert.equal((await post('[]', '')).status, 401);
    assert.equal((await post('{not json')).status, 400);
    assert.equal((await post('{"x":1}')).status, 400);
    assert.equal((await fetch(url)).status, 405);
    assert.equal((await fetch(`http://127.0.0.1:${api.port}/other`, { method: 'POST' })).status, 404);
    assert.equal((await post(`[${'"x",'.repeat(300_000)}"x"]`)).status, 413);
    assert.equal(table.size.ips, 1);
  } finally {
    await api.close();
  }
});

test('createIdentityApiHandler refuses a short token at start', () => {
  assert.throws(() => createIdentityApiHandler({ sink: { observe() {} }, token: 'short' }), /at least 16 are needed/);
});

test('mappingToObservation checks types, addresses and ttl', () => {
  assert.deepEqual(mappingToObservation({ ip: '2001:DB8::1', release: true }, 5), { ip: '2001:db8::1', source: 'api', tsUs: 5, release: true });
  assert.equal(mappingToObservation([], 5), 'not an object');
  assert.equal(mappingToObservation({ ip: '10.0.0.1', user: 7 }, 5), '"user" must be a string of at most 256 characters');
  assert.equal(mappingToObservation({ ip: '10.0.0.1', user: 'u', ttlSeconds: -1 }, 5), '"ttlSeconds" must be a positive number');
  assert.equal(mappingToObservation({ user: 'u' }, 5), 'needs "ip" or "mac"');
});

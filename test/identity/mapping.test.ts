import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mappingToObservation } from '../../sensor/identity/mapping.js';

test('mappingToObservation checks types, addresses and ttl', () => {
  assert.deepEqual(mappingToObservation({ ip: '2001:DB8::1', release: true }, 5), { ip: '2001:db8::1', source: 'api', tsUs: 5, release: true });
  assert.equal(mappingToObservation([], 5), 'not an object');
  assert.equal(mappingToObservation({ ip: '10.0.0.1', user: 7 }, 5), '"user" must be a string of at most 256 characters');
  assert.equal(mappingToObservation({ ip: '10.0.0.1', user: 'u', ttlSeconds: -1 }, 5), '"ttlSeconds" must be a positive number');
  assert.equal(mappingToObservation({ user: 'u' }, 5), 'needs "ip" or "mac"');
});

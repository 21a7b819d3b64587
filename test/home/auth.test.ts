/**
 * The login rate limiter (home/auth.ts): attempts are counted before their password is checked, a
 * success stops counting its own attempt and forgets the user's failures, and attempts still
 * being checked keep their places.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FailureWindow, LOGIN_FAILURES_PER_PEER, LOGIN_FAILURES_PER_USER, LOGIN_WINDOW_MS, LoginLimiter, type LoginAttempt } from '../../home/auth.js';
import { rateLimitKey } from '../../home/http.js';

const T0 = 1_700_000_000_000;

function begun(limiter: LoginLimiter, user: string, peer: string, now = T0): LoginAttempt {
  const a = limiter.begin(user, peer, now);
  assert.notEqual(typeof a, 'number', `attempt for ${user} from ${peer} was refused`);
  return a as LoginAttempt;
}

test('LoginLimiter.begin counts attempts still being checked: the one after the per-user limit waits', () => {
  const limiter = new LoginLimiter();
  const running = Array.from({ length: LOGIN_FAILURES_PER_USER }, () => begun(limiter, 'admin', '10.0.0.1'));
  const refused = limiter.begin('Admin', '10.0.0.2', T0);
  assert.equal(refused, 1, 'full only with attempts in flight: wait a second, not the whole window');
  for (const a of running) a.failed();
  assert.equal(limiter.begin('admin', '10.0.0.3', T0 + 1000), LOGIN_WINDOW_MS / 1000 - 1, 'settled failures hold the window');
  assert.notEqual(typeof limiter.begin('admin', '10.0.0.3', T0 + LOGIN_WINDOW_MS), 'number', 'allowed again once they age out');
});

test('LoginLimiter.begin counts attempts per address across users', () => {
  const limiter = new LoginLimiter();
  for (let i = 0; i < LOGIN_FAILURES_PER_PEER; i++) begun(limiter, `user${i}`, '10.0.0.9');
  assert.equal(typeof limiter.begin('someone-else', '10.0.0.9', T0), 'number');
  assert.notEqual(typeof limiter.begin('someone-else', '10.0.0.10', T0), 'number', 'another address is not limited');
});

test('rateLimitKey: an IPv6 peer counts per /64 (it can pick any address in it), IPv4 per address, mapped IPv4 as IPv4', () => {
  for (const [address, key] of [
    ['192.0.2.1', '192.0.2.1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:198.51.100.7', '198.51.100.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::9', '2001:db8:1:2::/64'],
    ['2001:DB8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
    ['2001:db8:1:3::9', '2001:db8:1:3::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['', '?'],
    [undefined, '?'],
  ] as const) {
    assert.equal(rateLimitKey(address), key, String(address));
  }
});

test('LoginLimiter with rateLimitKey: addresses rotated within one IPv6 /64 share its window; another /64 does not', () => {
  const limiter = new LoginLimiter();
  for (let i = 0; i < LOGIN_FAILURES_PER_PEER; i++) begun(limiter, `user${i}`, rateLimitKey(`2001:db8:5:6::${(i + 1).toString(16)}`)).failed();
  assert.equal(typeof limiter.begin('someone-else', rateLimitKey('2001:db8:5:6:dead:beef:0:1'), T0), 'number', 'a fresh address in the same /64 is limited');
  assert.notEqual(typeof limiter.begin('someone-else', rateLimitKey('2001:db8:5:7::1'), T0), 'number', 'the next /64 is not');
});

test('LoginLimiter attempt.succeeded releases its places and forgets the user\'s failures, not others\' attempts in flight', () => {
  const limiter = new LoginLimiter();
  for (let i = 0; i < LOGIN_FAILURES_PER_USER - 2; i++) begun(limiter, 'lead', '10.0.0.1').failed();
  const inFlight = begun(limiter, 'lead', '10.0.0.2');
  const right = begun(limiter, 'lead', '10.0.0.1');
  right.succeeded();
  right.failed();
  // Left: the attempt still in flight, so LOGIN_FAILURES_PER_USER - 1 more may start.
  for (let i = 0; i < LOGIN_FAILURES_PER_USER - 1; i++) begun(limiter, 'lead', '10.0.0.3');
  assert.equal(typeof limiter.begin('lead', '10.0.0.3', T0), 'number');
  inFlight.failed();
});

test('FailureWindow.release of a mark dropped by the window is a no-op', () => {
  const w = new FailureWindow(2, 1000);
  const m = w.reserve('k', T0);
  assert.equal(w.retryAfter('k', T0 + 2000), 0);
  w.release('k', m);
  w.settle(m);
  assert.equal(w.retryAfter('k', T0 + 2000), 0);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DomainPolicy, DomainPolicyBuilder, MAX_POLICY_LISTS } from '../../sensor/policy/domain-policy.js';

test('DomainPolicy.match gives the listed domain, category, threat level and list of the most specific entry', () => {
  const b = new DomainPolicyBuilder();
  assert.equal(b.add('example.com', 'gambling', 2, 'feed-a'), undefined);
  assert.equal(b.add('evil.example.com', 'malware', 5, 'feed-b'), undefined);
  const p = b.build();
  assert.deepEqual(p.match('www.example.com'), { domain: 'example.com', category: 'gambling', threatLevel: 2, list: 'feed-a' });
  assert.deepEqual(p.match('x.evil.example.com'), { domain: 'evil.example.com', category: 'malware', threatLevel: 5, list: 'feed-b' });
  assert.deepEqual(p.match('EVIL.Example.COM.'), { domain: 'evil.example.com', category: 'malware', threatLevel: 5, list: 'feed-b' });
  assert.equal(p.match('notexample.com'), undefined);
  assert.equal(p.covers('a.example.com'), true);
  assert.equal(p.covers('example.org'), false);
  assert.deepEqual(p.listNames(), ['feed-a', 'feed-b']);
  assert.equal(p.size, 2);
});

test('DomainPolicy keeps the highest threat level when two lists name the same domain', () => {
  const b = new DomainPolicyBuilder();
  b.add('dup.example', 'ads', 1, 'low');
  b.add('dup.example', 'malware', 4, 'high');
  b.add('dup.example', 'phishing', 4, 'later-tie');
  const p = b.build();
  assert.deepEqual(p.match('dup.example'), { domain: 'dup.example', category: 'malware', threatLevel: 4, list: 'high' });
  assert.equal(p.size, 1);
  assert.equal(p.duplicates, 2);
});

test('DomainPolicyBuilder.add refuses a threat level outside 1-5', () => {
  const b = new DomainPolicyBuilder();
  assert.match(b.add('a.example', 'x', 0, 'l') ?? '', /threat level 0 is not a whole number from 1 to 5/);
  assert.match(b.add('a.example', 'x', 6, 'l') ?? '', /threat level 6/);
  assert.match(b.add('a.example', 'x', 2.5, 'l') ?? '', /threat level 2.5/);
  assert.equal(b.size, 0);
});

test(`DomainPolicyBuilder.add refuses more than MAX_POLICY_LISTS (${MAX_POLICY_LISTS}) lists`, () => {
  const b = new DomainPolicyBuilder();
  for (let i = 0; i < MAX_POLICY_LISTS; i++) assert.equal(b.add(`d${i}.example`, 'c', 1, `list-${i}`), undefined);
  assert.match(b.add('more.example', 'c', 1, 'one-too-many') ?? '', /more than 256 lists/);
  const p = b.build();
  assert.equal(p.match('d255.example')?.list, 'list-255');
});

test('DomainPolicy keeps many categories apart', () => {
  const b = new DomainPolicyBuilder();
  for (let i = 0; i < 5000; i++) b.add(`d${i}.example`, `category-${i}`, 1 + (i % 5), 'l');
  const p = b.build();
  assert.deepEqual(p.match('www.d4321.example'), { domain: 'd4321.example', category: 'category-4321', threatLevel: 2, list: 'l' });
});

test('DomainPolicy.empty matches nothing', () => {
  assert.equal(DomainPolicy.empty().match('example.com'), undefined);
  assert.ok(DomainPolicy.empty().memoryBytes >= 0);
});

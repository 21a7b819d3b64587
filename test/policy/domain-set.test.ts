import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DomainSet, DomainSetBuilder, MAX_DOMAIN_LEN, normalizeDomain } from '../../sensor/policy/domain-set.js';

function setOf(...domains: string[]): DomainSet {
  const b = new DomainSetBuilder();
  domains.forEach((d, i) => assert.equal(b.add(d, i + 1), true));
  return b.build();
}

/** The entry covering `name`, by value, or undefined. */
function hit(set: DomainSet, name: string): string | undefined {
  const i = set.lookup(name);
  return i < 0 ? undefined : set.domain(i);
}

test('normalizeDomain lower-cases, drops a trailing dot and a leading "*." and converts IDN to punycode', () => {
  assert.deepEqual(normalizeDomain('  Ads.Example.COM. '), { domain: 'ads.example.com' });
  assert.deepEqual(normalizeDomain('*.tracker.example'), { domain: 'tracker.example' });
  assert.deepEqual(normalizeDomain('BÜCHER.de'), { domain: 'xn--bcher-kva.de' });
  assert.deepEqual(normalizeDomain('_dmarc.example.com'), { domain: '_dmarc.example.com' });
  assert.deepEqual(normalizeDomain('xn--bcher-kva.de'), { domain: 'xn--bcher-kva.de' });
});

test('normalizeDomain refuses empty names, empty and over-long labels, bad characters and IP addresses, saying why', () => {
  assert.equal(normalizeDomain('').reason, 'empty domain');
  assert.equal(normalizeDomain('.').reason, 'empty domain');
  assert.match(normalizeDomain('a..example').reason ?? '', /empty label/);
  assert.match(normalizeDomain('.example').reason ?? '', /empty label/);
  assert.match(normalizeDomain(`${'a'.repeat(64)}.example`).reason ?? '', /label "a{64}" is longer than 63/);
  assert.match(normalizeDomain(`${'abcdefg.'.repeat(32)}com`).reason ?? '', /longer than 253/);
  assert.equal(normalizeDomain('exa mple.com').reason, 'character " " is not allowed in a domain name');
  assert.equal(normalizeDomain('http://example.com').reason, 'character ":" is not allowed in a domain name');
  assert.equal(normalizeDomain('192.168.1.1').reason, 'an IP address, not a domain');
  assert.equal(normalizeDomain('2001:db8::1').reason, 'an IP address, not a domain');
  assert.equal(normalizeDomain('[::1]').reason, 'an IP address, not a domain');
  assert.equal(normalizeDomain('xn--ä.example').reason, 'not a valid internationalised domain name');
  assert.equal(normalizeDomain('bücher.de/path').reason, 'character "/" is not allowed in a domain name');
  assert.equal(normalizeDomain('bad\u0000.example').reason, 'character "\\u0000" is not allowed in a domain name');
  // 253 characters is the limit, inclusive.
  const longest = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
  assert.equal(longest.length, MAX_DOMAIN_LEN);
  assert.equal(normalizeDomain(longest).domain, longest);
});

test('DomainSet.lookup matches an entry and every subdomain of it, at label boundaries only', () => {
  const s = setOf('example.com');
  assert.equal(hit(s, 'example.com'), 'example.com');
  assert.equal(hit(s, 'a.b.example.com'), 'example.com');
  assert.equal(hit(s, 'badexample.com'), undefined);
  assert.equal(hit(s, 'example.com.evil.net'), undefined);
  assert.equal(hit(s, 'com'), undefined);
  assert.equal(hit(s, 'xample.com'), undefined);
  assert.equal(hit(s, ''), undefined);
});

test('DomainSet.lookup returns the most specific entry and tells where it starts in the name', () => {
  const s = setOf('example.com', 'b.example.com', 'c.b.example.com', 'net');
  assert.equal(hit(s, 'x.c.b.example.com'), 'c.b.example.com');
  assert.equal(hit(s, 'x.b.example.com'), 'b.example.com');
  assert.equal(hit(s, 'x.a.example.com'), 'example.com');
  assert.equal(hit(s, 'anything.net'), 'net');
  const name = 'WWW.B.Example.Com.';
  assert.equal(hit(s, name), 'b.example.com');
  assert.equal(name.slice(s.lastStart, s.lastEnd), 'B.Example.Com');
});

test('DomainSet.lookup ignores case and one trailing dot, and allocates no match for stray dots', () => {
  const s = setOf('example.com');
  assert.equal(hit(s, 'WWW.EXAMPLE.COM.'), 'example.com');
  assert.equal(hit(s, 'www..example.com'), 'example.com');
  assert.equal(hit(s, 'example.com..'), undefined);
  assert.equal(hit(s, '.'), undefined);
  assert.equal(hit(s, 'é.example.com'), 'example.com');
  assert.equal(hit(s, `${'a'.repeat(300)}.example.com`), undefined); // longer than any name
});

test('DomainSet.lookup ignores the :port of an HTTP Host header', () => {
  const s = setOf('example.com', '123');
  assert.equal(hit(s, 'www.example.com:8080'), 'example.com');
  assert.equal(hit(s, 'Example.com.:443'), 'example.com');
  assert.equal(s.lastEnd, 11);
  assert.equal(hit(s, 'example.com:'), undefined);
  assert.equal(hit(s, 'example.com:80x'), undefined);
  assert.equal(hit(s, 'host.123'), '123');
});

test('DomainSet.lookupExact matches only the name itself', () => {
  const s = setOf('example.com');
  assert.equal(s.lookupExact('Example.com.'), 0);
  assert.equal(s.lookupExact('www.example.com'), -1);
});

test('DomainSetBuilder.build merges a name added twice, by the merge function, and counts it', () => {
  const b = new DomainSetBuilder();
  b.add('a.example', 5);
  b.add('b.example', 1);
  b.add('a.example', 9);
  const first = b.build();
  assert.equal(first.size, 2);
  assert.equal(first.duplicates, 1);
  assert.equal(first.value(first.lookup('a.example')), 5);
  const b2 = new DomainSetBuilder();
  b2.add('a.example', 5);
  b2.add('a.example', 9);
  const max = b2.build((kept, incoming) => Math.max(kept, incoming));
  assert.equal(max.value(max.lookup('x.a.example')), 9);
  assert.deepEqual([...first.domains()], ['a.example', 'b.example']);
});

test('DomainSetBuilder.add refuses an empty or over-long name', () => {
  const b = new DomainSetBuilder();
  assert.equal(b.add('', 1), false);
  assert.equal(b.add('a'.repeat(MAX_DOMAIN_LEN + 1), 1), false);
  assert.equal(b.size, 0);
});

test('DomainSet of nothing matches nothing', () => {
  const s = DomainSet.empty();
  assert.equal(s.size, 0);
  assert.equal(s.lookup('example.com'), -1);
});

test('DomainSet agrees with a plain Set walked suffix by suffix on 20,000 entries and 60,000 names', () => {
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const labels = ['a', 'b', 'cdn', 'www', 'api', 'x1', 'mail', 'shop', 'eu', 'img'];
  const tlds = ['com', 'net', 'org', 'co.uk', 'de'];
  const randomName = (): string => {
    const parts: string[] = [];
    const depth = 1 + rnd(4);
    for (let i = 0; i < depth; i++) parts.push(labels[rnd(labels.length)] + (rnd(3) === 0 ? String(rnd(50)) : ''));
    return `${parts.join('.')}.${tlds[rnd(tlds.length)]}`;
  };
  const listed = new Set<string>();
  const b = new DomainSetBuilder();
  while (listed.size < 20000) {
    const d = randomName();
    b.add(d, 0);
    listed.add(d);
  }
  const s = b.build();
  assert.equal(s.size, 20000);
  let hits = 0;
  for (let i = 0; i < 60000; i++) {
    const q = `${rnd(2) === 0 ? 'q.' : ''}${randomName()}`;
    let want: string | undefined;
    for (let at = 0; at >= 0 && want === undefined; at = q.indexOf('.', at) < 0 ? -1 : q.indexOf('.', at) + 1) {
      if (listed.has(q.slice(at))) want = q.slice(at);
    }
    assert.equal(hit(s, q), want, q);
    if (want !== undefined) hits++;
  }
  assert.ok(hits > 1000 && hits < 59000, `a mix of hits and misses (${hits})`);
  assert.ok(s.memoryBytes > 20000 * 20);
});

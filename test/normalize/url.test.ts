import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Counters } from '../../sensor/events/counters.js';
import { decodeUrlComponent, extractUrlText, isSearchParam, PercentDecoder } from '../../sensor/normalize/url.js';

describe('extractUrlText path', () => {
  it('decodes path segments and reads "_" and "-" as spaces', () => {
    assert.deepEqual(extractUrlText('/wiki/Our_Secret').path, ['wiki', 'Our Secret']);
    assert.deepEqual(extractUrlText('/news/our-secret--plan/caf%C3%A9%20bar').path, ['news', 'our secret plan', 'caf\u00e9 bar']);
  });

  it('keeps "+" in the path, drops ;params, dot segments and empty segments', () => {
    assert.deepEqual(extractUrlText('//a+b/./../x;jsessionid=ABC/__/').path, ['a+b', 'x']);
  });

  it('reads absolute-form targets and ignores a fragment', () => {
    const t = extractUrlText('HTTP://example.com:8080/find/it?q=ak47#frag?q=no');
    assert.deepEqual(t, { path: ['find', 'it'], search: ['ak47'], query: [] });
    assert.deepEqual(extractUrlText('http://example.com?q=x'), { path: [], search: ['x'], query: [] });
  });

  it('gives nothing for authority-form, asterisk-form or a bare host', () => {
    const none = { path: [], search: [], query: [] };
    assert.deepEqual(extractUrlText('example.com:443'), none);
    assert.deepEqual(extractUrlText('*'), none);
    assert.deepEqual(extractUrlText('http://example.com'), none);
  });
});

describe('extractUrlText query', () => {
  it('reports search parameters apart from other query values, names case-insensitive', () => {
    const t = extractUrlText('/search?Q=our+secret&hl=en&page=2');
    assert.deepEqual(t.search, ['our secret']);
    assert.deepEqual(t.query, ['en', '2']);
    assert.deepEqual(extractUrlText('/results?search_query=how%20to&wd=%E4%BD%A0%E5%A5%BD').search, ['how to', '\u4f60\u597d']);
  });

  it('reads "+" as space but "%2B" as "+"', () => {
    assert.deepEqual(extractUrlText('/s?q=c%2B%2B+book').search, ['c++ book']);
  });

  it('takes a parameter without "=" whole and skips empty values', () => {
    assert.deepEqual(extractUrlText('/x?our+secret&a=&b').query, ['our secret', 'b']);
  });

  it('skips values of fields named like passwords, tokens and sessions, and counts them', () => {
    const counters = new Counters();
    const t = extractUrlText('/login?user=bob&Password=hunter2&csrf_token=ab12&PHPSESSID=9&q=hi', counters);
    assert.deepEqual(t, { path: ['login'], search: ['hi'], query: ['bob'] });
    assert.equal(counters.get('normalize.url.private_field_skipped'), 3);
  });

  it('accepts the target as bytes', () => {
    assert.deepEqual(extractUrlText(new Uint8Array(Buffer.from('/a?q=%C3%A9'))).search, ['\u00e9']);
  });
});

describe('decodeUrlComponent', () => {
  it('decodes UTF-8 escapes and keeps invalid ones as written', () => {
    assert.equal(decodeUrlComponent('%C3%A9%F0%9F%98%80', false), '\u00e9\ud83d\ude00');
    assert.equal(decodeUrlComponent('a%FFb%e2%82c%E2%82', false), 'a%FFb%e2%82c%E2%82');
    assert.equal(decodeUrlComponent('%C0%80%ED%A0%80', false), '%C0%80%ED%A0%80');
  });

  it('keeps a "%" that starts no escape', () => {
    assert.equal(decodeUrlComponent('100% %4 %G1 %', false), '100% %4 %G1 %');
  });

  it('decodes raw UTF-8 bytes, and reads raw invalid bytes as windows-1252', () => {
    assert.equal(decodeUrlComponent('caf\u00c3\u00a9', false), 'caf\u00e9');
    assert.equal(decodeUrlComponent('caf\u00e9 \u0093', false), 'caf\u00e9 \u201c');
  });

  it('decodes double encoding once more, counted, and never a third time', () => {
    const counters = new Counters();
    assert.equal(decodeUrlComponent('%2541%25C3%25A9', false, counters), 'A\u00e9');
    assert.equal(counters.get('normalize.url.double_encoded'), 1);
    assert.equal(decodeUrlComponent('%252541', false, counters), '%41');
    assert.equal(counters.get('normalize.url.encoding_too_deep'), 1);
  });

  it('does not decode twice when the first pass uncovered no escape', () => {
    const counters = new Counters();
    assert.equal(decodeUrlComponent('100%25+sure', true, counters), '100% sure');
    assert.equal(decodeUrlComponent('%41%2541', false, counters), 'AA');
    assert.equal(counters.get('normalize.url.double_encoded'), 1);
  });

  it('passes characters above 0xFF and already-decoded text through both passes', () => {
    assert.equal(decodeUrlComponent('\u4f60%2541', false), '\u4f60A');
    assert.equal(decodeUrlComponent('%C3%A9%2541', false), '\u00e9A');
  });
});

describe('isSearchParam', () => {
  it('knows the common search parameter names', () => {
    for (const name of ['q', 'QUERY', 'search', 's', 'p', 'k', 'text', 'term', 'keywords', 'search_query', 'wd']) {
      assert.ok(isSearchParam(name), name);
    }
    assert.equal(isSearchParam('id'), false);
  });
});

describe('PercentDecoder', () => {
  it('gives the same text for escapes cut anywhere', () => {
    const input = 'our+secret %C3%A9%F0%9F%98%80 %FF %4';
    const whole = (() => {
      const d = new PercentDecoder(true);
      for (let i = 0; i < input.length; i++) d.byte(input.charCodeAt(i));
      d.end();
      return d.take();
    })();
    assert.equal(whole, 'our secret \u00e9\ud83d\ude00 %FF %4');
    for (let k = 0; k <= input.length; k++) {
      const d = new PercentDecoder(true);
      let out = '';
      for (let i = 0; i < input.length; i++) {
        if (i === k) out += d.take();
        d.byte(input.charCodeAt(i));
      }
      d.end();
      assert.equal(out + d.take(), whole, `take at ${k}`);
    }
  });

  it('flushes long output through its unit buffer', () => {
    const d = new PercentDecoder(false);
    for (let i = 0; i < 5000; i++) d.byte(0x61 + (i % 26));
    const s = d.take();
    assert.equal(s.length, 5000);
    assert.equal(s.slice(1020, 1030), 'ghijklmnop');
  });
});

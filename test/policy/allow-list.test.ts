import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AllowList, checkAllowListEntry } from '../../sensor/policy/allow-list.js';
import { fixture } from '../helpers/replay.js';

test('checkAllowListEntry refuses a public suffix with a message naming the entry and an example', () => {
  assert.deepEqual(checkAllowListEntry('co.uk'), { error: 'Allow-list entry "co.uk" is a public suffix: name a domain under it, such as "example.co.uk"' });
  assert.deepEqual(checkAllowListEntry('com'), { error: 'Allow-list entry "com" is a public suffix: name a domain under it, such as "example.com"' });
  assert.deepEqual(checkAllowListEntry('COM.'), { error: 'Allow-list entry "COM." is a public suffix: name a domain under it, such as "example.com"' });
  // Private suffixes too: allowing github.io would allow every user's site on it.
  assert.deepEqual(checkAllowListEntry('github.io'), { error: 'Allow-list entry "github.io" is a public suffix: name a domain under it, such as "example.github.io"' });
  assert.match(checkAllowListEntry('*.co.uk').error ?? '', /"\*\.co\.uk" is a public suffix/);
});

test('checkAllowListEntry refuses single labels, IP addresses and malformed names, saying why', () => {
  assert.equal(checkAllowListEntry('localhost').error, 'Allow-list entry "localhost" is a single-label name, not a domain: name a registered domain such as "example.com"');
  assert.equal(checkAllowListEntry('10.0.0.1').error, 'Allow-list entry "10.0.0.1" is an IP address: the allow list takes domain names (leave addresses out with the ignored networks)');
  assert.equal(checkAllowListEntry('you tube.com').error, 'Allow-list entry "you tube.com" is not a valid domain name: character " " is not allowed in a domain name');
  assert.match(checkAllowListEntry('').error ?? '', /empty domain/);
});

test('checkAllowListEntry accepts and normalises registrable domains and names below them', () => {
  assert.deepEqual(checkAllowListEntry('youtube.com'), { domain: 'youtube.com' });
  assert.deepEqual(checkAllowListEntry('Example.CO.UK.'), { domain: 'example.co.uk' });
  assert.deepEqual(checkAllowListEntry('www.bbc.co.uk'), { domain: 'www.bbc.co.uk' });
  assert.deepEqual(checkAllowListEntry('bücher.de'), { domain: 'xn--bcher-kva.de' });
  assert.deepEqual(checkAllowListEntry('user.github.io'), { domain: 'user.github.io' });
  assert.deepEqual(checkAllowListEntry('printer.local'), { domain: 'printer.local' });
});

test('AllowList.parse loads a file, covering subdomains, and lists every refused line with its number', () => {
  const { allowList, problems } = AllowList.parse(readFileSync(fixture('policy', 'allow-list.txt'), 'utf8'));
  assert.deepEqual(allowList.entries(), ['youtube.com', 'www.bbc.co.uk', 'wikipedia.org', 'school.example']);
  assert.deepEqual(problems.map((p) => [p.line, p.entry]), [[5, 'com'], [6, 'co.uk'], [7, 'github.io'], [9, '10.0.0.1'], [10, 'localhost']]);
  assert.match(problems[1].error, /^Allow-list entry "co.uk" is a public suffix/);
  assert.equal(allowList.allows('youtube.com'), true);
  assert.equal(allowList.allows('m.YouTube.com.'), true);
  assert.equal(allowList.allows('notyoutube.com'), false);
  assert.equal(allowList.allows('news.bbc.co.uk'), false);
  assert.equal(allowList.allows('a.www.bbc.co.uk'), true);
  assert.equal(allowList.match('EN.wikipedia.org'), 'wikipedia.org');
  assert.equal(allowList.match('Static.School.Example'), 'school.example');
  assert.equal(allowList.match('example.com'), undefined);
  assert.equal(allowList.size, 4);
});

test('AllowList.fromEntries numbers problems by entry', () => {
  const { allowList, problems } = AllowList.fromEntries(['youtube.com', 'co.uk', 'khanacademy.org']);
  assert.equal(allowList.size, 2);
  assert.deepEqual(problems.map((p) => [p.line, p.entry]), [[2, 'co.uk']]);
  assert.equal(AllowList.empty().allows('youtube.com'), false);
});

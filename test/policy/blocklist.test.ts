import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DomainPolicyBuilder } from '../../sensor/policy/domain-policy.js';
import {
  DEFAULT_CATEGORY, DEFAULT_THREAT_LEVEL, MAX_REPORTED_PROBLEMS, detectDomainListFormat, loadDomainCsv, loadDomainList, loadHostsFile,
  loadPlainDomains, splitCsvLine,
} from '../../sensor/policy/blocklist.js';
import { fixture } from '../helpers/replay.js';

const read = (name: string): string => readFileSync(fixture('policy', name), 'utf8');
const lines = (r: { problems: readonly { line: number }[] }): number[] => r.problems.map((p) => p.line);

test('loadHostsFile adds every name after the address and reports each line it could not use', () => {
  const b = new DomainPolicyBuilder();
  const r = loadHostsFile(b, read('hosts.txt'), { list: 'sample-hosts', category: 'ads', threatLevel: 2 });
  assert.equal(r.format, 'hosts');
  assert.equal(r.lines, 18);
  assert.equal(r.entries, 7);
  assert.deepEqual(r.problems.map((p) => [p.line, p.reason]), [
    [3, '"localhost" is the machine\'s own name, not a blocked site: skipped'],
    [4, '"localhost.localdomain" is the machine\'s own name, not a blocked site: skipped'],
    [5, '"broadcasthost" is the machine\'s own name, not a blocked site: skipped'],
    [6, '"localhost" is the machine\'s own name, not a blocked site: skipped'],
    [7, '"0.0.0.0" is the machine\'s own name, not a blocked site: skipped'],
    [15, '"bad_label..example": empty label (two dots in a row, or a leading dot)'],
    [16, 'expected an IP address and host names, found "not-an-address" first'],
    [17, 'no host name after the address'],
  ]);
  assert.equal(r.problems[0].text, '127.0.0.1 localhost');
  assert.equal(r.problemCount, 8);
  const p = b.build();
  for (const name of ['ads.tracker.example', 'malware-drop.example', 'phish.example.co.uk', 'login.phish.example.co.uk', 'tab-separated.example', 'ipv6-sinkhole.example', 'xn--bcher-kva.example']) {
    assert.deepEqual(p.match(name), { domain: name, category: 'ads', threatLevel: 2, list: 'sample-hosts' }, name);
  }
  assert.equal(p.match('localhost'), undefined);
  assert.equal(p.match('x.bad.example'), undefined);
});

test('loadPlainDomains takes one domain per line with the default category and threat level', () => {
  const b = new DomainPolicyBuilder();
  const r = loadPlainDomains(b, read('domains.txt'), { list: 'sample-domains' });
  assert.equal(r.entries, 5);
  assert.deepEqual(lines(r), [8, 10, 11]);
  assert.match(r.problems[0].reason, /more than one word/);
  assert.equal(r.problems[1].reason, '"10.1.2.3": an IP address, not a domain');
  assert.match(r.problems[2].reason, /is longer than 63 characters/);
  const p = b.build();
  assert.deepEqual(p.match('www.casino.example'), { domain: 'casino.example', category: DEFAULT_CATEGORY, threatLevel: DEFAULT_THREAT_LEVEL, list: 'sample-domains' });
  assert.equal(p.match('casino.example')?.domain, 'casino.example');
  assert.equal(p.match('poker.example')?.domain, 'poker.example');
  assert.equal(p.match('slots.example')?.domain, 'slots.example');
  assert.equal(p.match('xn--bcher-spiel-thb.example')?.domain, 'xn--bcher-spiel-thb.example');
});

test('loadDomainCsv reads domain,category,threat_level rows (quotes, extra columns, CRLF) and reports bad rows', () => {
  const b = new DomainPolicyBuilder();
  const r = loadDomainCsv(b, read('feed.csv'), { list: 'sample-csv' });
  assert.equal(r.format, 'csv');
  assert.equal(r.entries, 3);
  assert.deepEqual(r.problems.map((p) => [p.line, p.reason]), [
    [6, 'threat_level "7" is not a whole number from 1 to 5'],
    [7, 'expected 3 fields (domain, category, threat_level), found 2'],
    [8, 'category "" must be 1 to 64 characters'],
    [9, 'unclosed double quote'],
  ]);
  const p = b.build();
  assert.deepEqual(p.match('evil.example'), { domain: 'evil.example', category: 'malware', threatLevel: 5, list: 'sample-csv' });
  assert.deepEqual(p.match('a.cdn.evil.example'), { domain: 'cdn.evil.example', category: 'malware, cdn', threatLevel: 2, list: 'sample-csv' });
  assert.deepEqual(p.match('phishy.example'), { domain: 'phishy.example', category: 'phishing', threatLevel: 4, list: 'sample-csv' });
  assert.equal(p.match('bad-level.example'), undefined);
});

test('loadDomainCsv refuses a file without the header and loads nothing', () => {
  const b = new DomainPolicyBuilder();
  const r = loadDomainCsv(b, 'evil.example,malware,5\nother.example,malware,5\n', { list: 'x' });
  assert.equal(r.entries, 0);
  assert.deepEqual(r.problems, [{ line: 1, text: 'evil.example,malware,5', reason: 'the first line must be the header "domain,category,threat_level": nothing loaded' }]);
  const empty = loadDomainCsv(b, '# only a comment\n', { list: 'x' });
  assert.match(empty.problems[0].reason, /no header line/);
});

test('splitCsvLine handles quotes, doubled quotes, spaces and empty fields', () => {
  assert.deepEqual(splitCsvLine('a,b,c'), ['a', 'b', 'c']);
  assert.deepEqual(splitCsvLine(' "a, b" , "say ""hi""",,x'), ['a, b', 'say "hi"', '', 'x']);
  assert.deepEqual(splitCsvLine(''), ['']);
  assert.equal(splitCsvLine('"open,b'), undefined);
  assert.equal(splitCsvLine('"a"b,c'), undefined);
});

test('detectDomainListFormat looks at the first line that is not a comment', () => {
  assert.equal(detectDomainListFormat(read('hosts.txt')), 'hosts');
  assert.equal(detectDomainListFormat(read('domains.txt')), 'domains');
  assert.equal(detectDomainListFormat(read('feed.csv')), 'csv');
  assert.equal(detectDomainListFormat('\ufeff# x\n\n:: a.example\n'), 'hosts');
  assert.equal(detectDomainListFormat(''), 'domains');
});

test('loadDomainList detects the format unless told', () => {
  const b = new DomainPolicyBuilder();
  assert.equal(loadDomainList(b, read('feed.csv'), { list: 'a' }).format, 'csv');
  assert.equal(loadDomainList(b, read('hosts.txt'), { list: 'b' }).format, 'hosts');
  const forced = loadDomainList(b, read('hosts.txt'), { list: 'c', format: 'domains' });
  assert.equal(forced.format, 'domains');
  assert.equal(forced.entries, 0);
});

test('loaders refuse a list without a name or with a bad threat level, naming the list', () => {
  const b = new DomainPolicyBuilder();
  const r = loadPlainDomains(b, 'a.example\n', { list: 'feed', threatLevel: 9 });
  assert.equal(r.entries, 0);
  assert.equal(r.problems[0].reason, 'Cannot load list "feed": threat level 9 is not a whole number from 1 to 5');
  assert.match(loadHostsFile(b, '0.0.0.0 a.example\n', { list: ' ' }).problems[0].reason, /has no name/);
  assert.match(loadDomainCsv(b, 'domain,category,threat_level\n', { list: '' }).problems[0].reason, /no name/);
  assert.equal(b.size, 0);
});

test(`loaders keep MAX_REPORTED_PROBLEMS (${MAX_REPORTED_PROBLEMS}) problems and count the rest`, () => {
  const b = new DomainPolicyBuilder();
  const text = `${'not a domain\n'.repeat(MAX_REPORTED_PROBLEMS + 50)}ok.example\n`;
  const r = loadPlainDomains(b, text, { list: 'junk' });
  assert.equal(r.problems.length, MAX_REPORTED_PROBLEMS);
  assert.equal(r.problemCount, MAX_REPORTED_PROBLEMS + 50);
  assert.equal(r.entries, 1);
  assert.equal(r.lines, MAX_REPORTED_PROBLEMS + 51);
});

test('loaders read CRLF and a byte-order mark, and cut a long bad line in the report', () => {
  const b = new DomainPolicyBuilder();
  const r = loadPlainDomains(b, `\ufeffa.example\r\nb.example\r\n${'x'.repeat(300)} y\r\n`, { list: 'crlf' });
  assert.equal(r.entries, 2);
  assert.equal(r.problems[0].line, 3);
  assert.equal(r.problems[0].text.length, 203);
  assert.equal(b.build().match('b.example')?.domain, 'b.example');
});

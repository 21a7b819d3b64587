/**
 * Golden replays of real HTTP streams (test/fixtures/http/*.json, extracted from the shared corpus; see the
 * README there). Every expected value below is quoted from the capture's MANIFEST.md row.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Direction } from '../../../sensor/flow/stream.js';
import { headerValue } from '../../../sensor/app-layer/http/session.js';
import { bytewise, run, type Step, type Summary } from '../../helpers/http-recorder.js';

const FIXTURES = new URL('../../../../test/fixtures/http/', import.meta.url);
const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

function load(name: string): Step[] {
  const json = JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8')) as { segments: [Direction, string][] };
  return json.segments.map(([dir, hex]) => [dir, Buffer.from(hex, 'hex')] as Step);
}

function replay(name: string): Summary {
  const steps = load(name);
  const { summary, counters } = run(steps);
  // Real, well-formed traffic: nothing is cut, nothing resynced, no parser gives up.
  assert.equal(counters.get('http.body_truncated'), 0, `${name}: truncated`);
  assert.deepEqual(summary.events, [], `${name}: events`);
  assert.deepEqual(run(bytewise(steps)).summary, summary, `${name}: byte-by-byte replay differs`);
  return summary;
}

function responseBody(s: Summary, index: number): string {
  const m = s.messages.find((x) => x.dir === 1 && x.index === index);
  assert.ok(m, `response ${index} ended`);
  return m.body;
}

function requestBody(s: Summary, index: number): string {
  const m = s.messages.find((x) => x.dir === 0 && x.index === index);
  assert.ok(m, `request ${index} ended`);
  return m.body;
}

test('corpus zeek-http-get-gzip: GET /gzip, 200 gzip Content-Length 165 decodes to the JSON', () => {
  const s = replay('zeek-http-get-gzip');
  assert.deepEqual(s.requests.map((r) => [r.method, r.uri, r.host]), [['GET', '/gzip', 'httpbin.org']]);
  assert.equal(s.responses[0].status, 200);
  assert.equal(headerValue(s.responses[0].headers, 'content-encoding'), 'gzip');
  assert.equal(headerValue(s.responses[0].headers, 'content-length'), '165');
  const body = responseBody(s, 0);
  assert.ok(body.includes('"gzipped": true'));
  assert.ok(body.includes('"User-Agent": "curl/7.29.0"'));
  assert.ok(body.includes('"origin": "10.224.189.238"'));
  assert.equal(s.messages.find((m) => m.dir === 1)?.info.bodyBytesWire, 165);
});

test('corpus zeek-http-missing-zlib-header: two raw-deflate responses decode to 13249 bytes each', () => {
  const s = replay('zeek-http-missing-zlib-header');
  assert.equal(s.requests.length, 2);
  for (const r of s.requests) {
    assert.deepEqual([r.method, r.uri, r.host], ['GET', '/library/dap.js', 'ads1.msn.com']);
    assert.equal(headerValue(r.headers, 'referer'), 'http://zone.msn.com/en/root/default.htm');
  }
  assert.equal(s.responses.length, 2);
  for (const [i, r] of s.responses.entries()) {
    assert.equal(r.status, 200);
    assert.equal(headerValue(r.headers, 'content-encoding'), 'deflate');
    assert.equal(headerValue(r.headers, 'content-length'), '5139');
    const body = responseBody(s, i);
    assert.ok(body.startsWith("\nvar _daprr=new Array('http://rad.msn.com/ADSAdClient31.dll?GetSAd='"), body.slice(0, 80));
    assert.equal(body.length, 13249);
  }
});

test('corpus zeek-http-pipelined-requests: 5 pipelined requests paired with 5 responses, 2 gzip bodies', () => {
  const s = replay('zeek-http-pipelined-requests');
  assert.deepEqual(s.requests.map((r) => r.uri), [
    '/style/enhanced.css', '/script/urchin.js', '/images/template/screen/bullet_utility.png',
    '/images/template/screen/key-point-top.png', '/projects/calendar/images/header-sunbird.png',
  ]);
  assert.deepEqual(s.responses.map((r) => [r.status, r.requestIndex]), [[200, 0], [200, 1], [200, 2], [200, 3], [200, 4]]);
  assert.deepEqual(s.responses.map((r) => headerValue(r.headers, 'content-length')), ['946', '6716', '94', '2349', '27579']);
  const css = responseBody(s, 0);
  assert.ok(css.startsWith('/*\n*'));
  assert.ok(css.includes('MOZILLA.ORG\nEnhanced Screen Styles'));
  assert.ok(responseBody(s, 1).startsWith('//-- Google Analytics Urchin Module'));
  assert.equal(responseBody(s, 2).length, 94); // identity PNG passes through
});

test('corpus sv-http-brotli-ce: br + chunked, br, and a 204; decoded sizes 121 and 1743', () => {
  const s = replay('sv-http-brotli-ce');
  assert.deepEqual(s.requests.map((r) => r.uri), [
    '/complete/search?client=chrome-omni&gs_ri=chrome-ext-ansg&xssi=t&q=&oit=0&oft=1&pgcl=20&gs_rn=42&sugkey=AIzaSyBOti4mM-6x9WDnZIjIeyEU21OpBXqWBgw',
    '/async/newtab_promos',
    '/gen_204?ei=1gh1Y_aSJJL5gQbM0pSgDg&cad=i&id=19031405&ogprm=up&ct=16&prid=243',
  ]);
  assert.deepEqual(s.responses.map((r) => [r.status, r.requestIndex]), [[200, 0], [200, 1], [204, 2]]);
  assert.equal(headerValue(s.responses[0].headers, 'transfer-encoding'), 'chunked');
  assert.equal(responseBody(s, 0),
    ')]}\'\n["",[],[],[],{"google:clientdata":{"bpc":false,"tlw":false},"google:suggesttype":[],"google:verbatimrelevance":851}]');
  assert.equal(responseBody(s, 0).length, 121);
  assert.ok(responseBody(s, 1).startsWith(')]}\'\n{"update":{"promos":{"id":"19031405"'));
  assert.equal(responseBody(s, 1).length, 1743);
  assert.equal(responseBody(s, 2), '');
});

test('corpus sv-http-post-data-decompression: gzip request body decodes to the form data', () => {
  const s = replay('sv-http-post-data-decompression');
  const r = s.requests[0];
  assert.deepEqual([r.method, r.uri, r.host], ['POST', '/hi.php', '192.168.235.101']);
  assert.equal(headerValue(r.headers, 'content-encoding'), 'gzip');
  assert.equal(headerValue(r.headers, 'content-length'), '45');
  assert.equal(requestBody(s, 0), 'name=john dauny mladshiy\n');
  assert.equal(s.responses[0].status, 200);
  assert.equal(responseBody(s, 0), 'Hi john dauny mladshiy\n!');
});

test('corpus sv-http-evader-000: chunked download de-chunks to the 68-byte EICAR string', () => {
  const s = replay('sv-http-evader-000');
  assert.deepEqual([s.requests[0].uri, s.requests[0].host], ['/chunked/eicar.txt/chunked', 'evader.example.com']);
  assert.equal(headerValue(s.responses[0].headers, 'transfer-encoding'), 'chunked');
  assert.equal(responseBody(s, 0), EICAR);
  assert.equal(EICAR.length, 68);
});

test('corpus sv-http-evader-104/106/117: Content-Encoding without space (gzip, raw deflate, zlib deflate)', () => {
  const cases: [string, string][] = [
    ['sv-http-evader-104', '/compressed/eicar.txt/ce%3Agzip;gzip'],
    ['sv-http-evader-106', '/compressed/eicar.txt/ce%3Adeflate;deflate'],
    ['sv-http-evader-117', '/compressed/eicar.txt/ce%3Adeflate;zlib'],
  ];
  for (const [name, uri] of cases) {
    const s = replay(name);
    assert.equal(s.requests[0].uri, uri, name);
    assert.equal(responseBody(s, 0), EICAR, name);
  }
});

test('corpus ws-http-brotli: br body of Content-Length 52 decodes exactly', () => {
  const s = replay('ws-http-brotli');
  assert.deepEqual([s.requests[0].uri, s.requests[0].host], ['/test.txt', '192.168.122.33']);
  assert.equal(s.responses[0].status, 200);
  assert.equal(headerValue(s.responses[0].headers, 'content-encoding'), 'br');
  assert.equal(headerValue(s.responses[0].headers, 'content-length'), '52');
  assert.equal(responseBody(s, 0), 'This is a test file for testing brotli decompression in Wireshark\n');
});

test('corpus ws-http-ooo: 5 requests incl. a chunked body, from the out-of-order-reassembled stream', () => {
  const s = replay('ws-http-ooo');
  assert.deepEqual(s.requests.map((r) => [r.method, r.uri]), [['PUT', '/1'], ['GET', '/2'], ['PUT', '/3'], ['PUT', '/4'], ['PUT', '/5']]);
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => requestBody(s, i)), ['1\n2\n', '', 'after\n', 'four\n', 'DATA']);
  assert.equal(headerValue(s.requests[4].headers, 'transfer-encoding'), 'chunked');
  assert.equal(headerValue(s.requests[4].headers, 'x-info'), 'based on https://bugs.wireshark.org/bugzilla/attachment.cgi?id=14236');
});

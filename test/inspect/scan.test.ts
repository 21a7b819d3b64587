/**
 * The whole sensor on capture files: reassembly, HTTP, extraction, dictionary, captures. Every
 * capture is validated against sensor/events/capture.schema.json, and every scenario runs on both
 * engines (native Hyperscan and the pure-TypeScript DFA), which must give identical captures.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CaptureEvent } from '../../sensor/events/capture.js';
import { Sensor, type EngineChoice } from '../../sensor/main.js';
import { fixture } from '../helpers/replay.js';
import { assertCapture } from '../helpers/schema.js';

function scan(file: string, engine: EngineChoice, dictionary?: string): CaptureEvent[] {
  const out: CaptureEvent[] = [];
  const sensor = new Sensor({ dictionary, engine, onCapture: (c) => out.push(c) });
  assert.equal(sensor.matching.engine, engine);
  const summary = sensor.pipeline.runFile(file);
  assert.equal(summary.problem, undefined);
  sensor.collector.flush();
  for (const c of out) assertCapture(c);
  return out;
}

const PLANTED = fixture('dictionaries', 'corpus-planted.csv');

for (const engine of ['hyperscan', 'js'] as const) {
  describe(`scan (${engine} engine)`, () => {
    test('school-search: AK47 and "our secret" are captured as typed (search) and as viewed (gzip + chunked results)', () => {
      const caps = scan(fixture('school-search', 'school-search.pcap'), engine);
      const find = (phrase: string, source: string) => caps.filter((c) => c.phrase === phrase && c.source === source);
      for (const phrase of ['AK47', 'our secret']) {
        const typed = find(phrase, 'typed');
        const viewed = find(phrase, 'viewed');
        assert.equal(typed.length, 1, `${phrase} typed`);
        assert.equal(typed[0].field, 'search');
        assert.equal(typed[0].direction, 'to_server');
        assert.equal(typed[0].method, 'GET');
        assert.match(typed[0].url ?? '', /^\/w\/index\.php\?search=/);
        assert.equal(typed[0].host, 'wiki.school.test');
        assert.equal(viewed.length, 1, `${phrase} viewed`);
        assert.equal(viewed[0].field, 'response_body');
        assert.equal(viewed[0].status, 200);
        assert.ok(viewed[0].count >= 3, `the results page repeats it (${viewed[0].count})`);
        assert.match(viewed[0].context, /\[\[(ak47|our secret)\]\]/);
        assert.equal(viewed[0].device.ip, '127.0.0.1');
      }
      assert.equal(caps.find((c) => c.phrase === 'AK47')?.category, 'weapons');
      assert.equal(caps.find((c) => c.phrase === 'our secret')?.category, 'grooming');
    });

    test('HTTP Evader: a binary (application/octet-stream) body is not inspected, its URL is', () => {
      for (const name of ['sv-http-evader-000.pcap', 'sv-http-evader-104.pcap', 'sv-http-evader-106.pcap', 'sv-http-evader-117.pcap']) {
        const caps = scan(fixture('tcp', name), engine, PLANTED);
        const eicar = caps.filter((c) => c.phrase === 'eicar');
        assert.equal(eicar.length, 1, name);
        assert.equal(eicar[0].source, 'typed');
        assert.equal(eicar[0].field, 'url');
        assert.equal(eicar[0].host, 'evader.example.com');
      }
    });

    test('a gzip-encoded POST body is typed text', () => {
      const caps = scan(fixture('tcp', 'sv-http-post-data-decompression.pcap'), engine, PLANTED);
      const typed = caps.filter((c) => c.phrase === 'john dauny mladshiy' && c.source === 'typed');
      assert.equal(typed.length, 1);
      assert.equal(typed[0].field, 'request_body');
      assert.equal(typed[0].method, 'POST');
      assert.equal(typed[0].url, '/hi.php');
      const viewed = caps.filter((c) => c.phrase === 'john dauny mladshiy' && c.source === 'viewed');
      assert.equal(viewed.length, 1, 'the response echoes it');
    });

    test('brotli text (pcapng), brotli JSON behind an anti-XSSI prefix, gzip JSON', () => {
      const br = scan(fixture('tcp', 'ws-http-brotli.pcapng'), engine, PLANTED).filter((c) => c.phrase === 'brotli decompression');
      assert.equal(br.length, 1);
      assert.equal(br[0].context, 'this is a test file for testing [[brotli decompression]] in wireshark');
      const json = scan(fixture('tcp', 'sv-http-brotli-ce.pcap'), engine, PLANTED).filter((c) => c.phrase === 'get qualified');
      assert.equal(json.length, 1);
      assert.equal(json[0].url, '/async/newtab_promos');
      const gz = scan(fixture('tcp', 'zeek-http-get-gzip.pcap'), engine, PLANTED).filter((c) => c.phrase === 'curl' && c.source === 'viewed');
      assert.equal(gz.length, 1);
      assert.equal(gz[0].host, 'httpbin.org');
    });

    test('whole-word "ass" does not match inside class, assessment or passes', () => {
      const caps = scan(fixture('tcp', 'ndpi-WebattackXSS.pcap'), engine, PLANTED);
      assert.equal(caps.filter((c) => c.phrase === 'ass').length, 0);
    });
  });
}

test('both engines give identical captures', () => {
  for (const [file, dict] of [
    [fixture('school-search', 'school-search.pcap'), undefined],
    [fixture('tcp', 'ndpi-WebattackXSS.pcap'), undefined],
    [fixture('tcp', 'sv-http-post-data-decompression.pcap'), PLANTED],
  ] as const) {
    const a = scan(file, 'hyperscan', dict);
    const b = scan(file, 'js', dict);
    assert.ok(a.length > 0, `${file}: captures to compare`);
    assert.deepEqual(b, a, file);
  }
});

test('capture ids are stable for the same input and unique within it', () => {
  const a = scan(fixture('school-search', 'school-search.pcap'), 'hyperscan');
  const b = scan(fixture('school-search', 'school-search.pcap'), 'hyperscan');
  assert.equal(a.length, 4);
  assert.deepEqual(a.map((c) => c.id), b.map((c) => c.id));
  assert.equal(new Set(a.map((c) => c.id)).size, a.length);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counters } from '../../../sensor/events/counters.js';
import { probeHttp } from '../../../sensor/app-layer/http/index.js';
import {
  CLIENT_PREFACE, createHttp2Session, http2AppLayer, Http2Session, Http2SessionFactory, probeHttp2,
} from '../../../sensor/app-layer/http2/index.js';
import { FLOW, Recorder } from '../../helpers/http-recorder.js';
import { headers, opening, requestBlock, runH2 } from './h2-helpers.js';

const get = (path: string): Buffer => headers(1, requestBlock(path), { endStream: true });

test('probeHttp2 matches the full client preface and waits for it until a byte differs', () => {
  const preface = Buffer.from(CLIENT_PREFACE);
  assert.equal(preface.toString('latin1'), 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  assert.equal(probeHttp2(0, preface), 'match');
  assert.equal(probeHttp2(0, Buffer.concat([preface, Buffer.from([0, 0, 0, 4])])), 'match');
  for (let n = 0; n < 24; n++) assert.equal(probeHttp2(0, preface.subarray(0, n)), 'need-more', `${n} bytes`);
  assert.equal(probeHttp2(0, Buffer.from('PRI * HTTP/1.1\r\n')), 'no-match');
  assert.equal(probeHttp2(0, Buffer.from('GET / HTTP/1.1\r\n')), 'no-match');
  assert.equal(probeHttp2(0, Buffer.from([0x16, 0x03, 0x01])), 'no-match');
});

test('probeHttp2 never matches the server side, not even a SETTINGS frame', () => {
  assert.equal(probeHttp2(1, Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])), 'no-match');
  assert.equal(probeHttp2(1, Buffer.from(CLIENT_PREFACE)), 'no-match');
});

test('probeHttp2 must run before probeHttp: both accept the preface', () => {
  assert.equal(probeHttp(0, Buffer.from(CLIENT_PREFACE)), 'match');
  assert.equal(probeHttp2(0, Buffer.from(CLIENT_PREFACE)), 'match');
});

test('http2AppLayer, createHttp2Session and Http2SessionFactory give working Http2Sessions', () => {
  assert.equal(http2AppLayer.name, 'http2');
  assert.equal(http2AppLayer.probe, probeHttp2);
  const rec = new Recorder();
  const counters = new Counters();
  const sessions = [
    http2AppLayer.create(FLOW, rec, counters),
    createHttp2Session(FLOW, rec, counters, { bodyLimitBytes: 10 }),
    new Http2SessionFactory(rec, counters).open(FLOW),
  ];
  for (const s of sessions) {
    assert.ok(s instanceof Http2Session);
    for (const [dir, bytes] of [...opening(), [0, get('/x')]] as [0 | 1, Buffer][]) s.data(dir, bytes, 1);
    s.end('fin', 2);
  }
  assert.deepEqual(rec.summary.requests.map((r) => r.uri), ['/x', '/x', '/x']);
  assert.equal(runH2([...opening(), [0, get('/y')]]).summary.requests[0].uri, '/y');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counters } from '../../../sensor/events/counters.js';
import { HttpSession, HttpSessionFactory, PROBE_MAX_LINE_BYTES, probeHttp } from '../../../sensor/app-layer/http/index.js';
import { FLOW, Recorder } from '../../helpers/http-recorder.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

test('probeHttp matches known methods on the client side as soon as the method and space are in', () => {
  assert.equal(probeHttp(0, b('GET / HTTP/1.1\r\n')), 'match');
  assert.equal(probeHttp(0, b('PROPFIND ')), 'match');
  assert.equal(probeHttp(0, b('POS')), 'need-more');
  assert.equal(probeHttp(0, b('GET')), 'need-more');
  assert.equal(probeHttp(0, b('')), 'need-more');
  assert.equal(probeHttp(0, b('GET/ HTTP/1.1\r\n')), 'no-match');
});

test('probeHttp accepts an unknown upper-case method only with a complete request line', () => {
  assert.equal(probeHttp(0, b('FROB /x HTTP/1.1')), 'need-more');
  assert.equal(probeHttp(0, b('FROB /x HTTP/1.1\r\n')), 'match');
  assert.equal(probeHttp(0, b('FROB /x\r\n')), 'no-match');
  assert.equal(probeHttp(0, b('FROB ' + 'a'.repeat(PROBE_MAX_LINE_BYTES))), 'no-match');
});

test('probeHttp rejects other protocols on the client side', () => {
  assert.equal(probeHttp(0, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])), 'no-match'); // TLS
  assert.equal(probeHttp(0, b('SSH-2.0-OpenSSH\r\n')), 'no-match');
  assert.equal(probeHttp(0, b('get / HTTP/1.1\r\n')), 'no-match');
  assert.equal(probeHttp(0, b('PRI * HTTP/2.0\r\n')), 'match'); // parsed, then handed off as a tunnel
});

test('probeHttp matches a status line on the server side', () => {
  assert.equal(probeHttp(1, b('HTTP/1.1 200 OK\r\n')), 'match');
  assert.equal(probeHttp(1, b('HTTP/1.0 404')), 'match');
  assert.equal(probeHttp(1, b('HTTP/1.1 2')), 'need-more');
  assert.equal(probeHttp(1, b('HTT')), 'need-more');
  assert.equal(probeHttp(1, b('HTTP/2 200')), 'no-match');
  assert.equal(probeHttp(1, b('HTTP/1.1 OK')), 'no-match');
  assert.equal(probeHttp(1, b('SSH-2.0')), 'no-match');
});

test('HttpSessionFactory opens one HttpSession per flow feeding the shared sink', () => {
  const rec = new Recorder();
  const factory = new HttpSessionFactory(rec, new Counters());
  const s = factory.open(FLOW);
  assert.ok(s instanceof HttpSession);
  s.data(0, b('GET / HTTP/1.1\r\n\r\n'), 1);
  assert.equal(rec.summary.requests.length, 1);
  assert.notEqual(factory.open(FLOW), s);
});

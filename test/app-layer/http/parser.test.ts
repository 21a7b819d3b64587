import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HEADER_ENTRY_OVERHEAD_BYTES, HttpMessageParser, MAX_CHUNK_SIZE_HEX_DIGITS, MAX_CONNECT_HOLD_BYTES, MAX_CONNECT_HOLD_RUNS, MAX_HEAD_BYTES,
  MAX_HEADER_LINE_BYTES, MAX_HEADERS, parseChunkSizeLine, parseRequestLine,
  parseStatusLine, type BodyRule, type HeaderList, type MessageParserSink, type ParsedHead, type ResyncReason,
} from '../../../sensor/app-layer/http/parser.js';
import { HOLD_RUN_OVERHEAD_BYTES } from '../../../sensor/app-layer/stream-hold.js';
import { Counters, counterName } from '../../../sensor/events/counters.js';
import { memoryInUse } from '../../../sensor/events/memuse.js';

/** Logs parser callbacks as short strings; `rule` decides every head's body rule. */
class LogSink implements MessageParserSink {
  log: string[] = [];
  heads: ParsedHead[] = [];
  private text = '';
  constructor(private readonly rule: (h: ParsedHead) => BodyRule = () => 'normal') {}
  begin(): void { this.log.push('begin'); }
  head(h: ParsedHead): BodyRule {
    this.heads.push(h);
    this.log.push(h.isRequest ? `head ${h.method} ${h.uri}` : `head ${h.status}`);
    return this.rule(h);
  }
  body(chunk: Uint8Array): void { this.text += Buffer.from(chunk).toString('latin1'); }
  bodyGap(len: number): void { this.text += `<gap ${len}>`; }
  end(complete: boolean, trailers: HeaderList | undefined): void {
    this.log.push(`end ${complete ? 'complete' : 'cut'} body=${JSON.stringify(this.text)}${trailers ? ' trailers=' + JSON.stringify(trailers) : ''}`);
    this.text = '';
  }
  anomaly(id: number): void { this.log.push(`anomaly ${counterName(id)}`); }
  resync(reason: ResyncReason): void { this.log.push(`resync ${reason}`); }
}

/** A LogSink with the counters a CONNECT hold is charged to, and what goes into the tunnel. */
class HoldSink extends LogSink {
  /** Given to the parser: where it charges what it holds. */
  readonly counters = new Counters();
  tunnelled: Array<string | number> = [];
  /** What the parser has charged to app_layer.memuse and not given back. */
  get charged(): number {
    return memoryInUse(this.counters);
  }
  tunnel(item: Uint8Array | number): void {
    this.tunnelled.push(typeof item === 'number' ? item : Buffer.from(item).toString('latin1'));
  }
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

test('parseRequestLine splits method, target and version; rejects non-tokens and missing versions', () => {
  assert.deepEqual(parseRequestLine('GET /a?b=c HTTP/1.1'), { method: 'GET', uri: '/a?b=c', version: 'HTTP/1.1' });
  assert.deepEqual(parseRequestLine('GET  /two  spaces\tHTTP/1.0'), { method: 'GET', uri: '/two  spaces', version: 'HTTP/1.0' });
  assert.deepEqual(parseRequestLine('M-SEARCH * HTTP/1.1'), { method: 'M-SEARCH', uri: '*', version: 'HTTP/1.1' });
  assert.equal(parseRequestLine('GET /'), undefined); // HTTP/0.9
  assert.equal(parseRequestLine('GET HTTP/1.1'), undefined);
  assert.equal(parseRequestLine('G(T / HTTP/1.1'), undefined);
  assert.equal(parseRequestLine(' GET / HTTP/1.1'), undefined);
  assert.equal(parseRequestLine('GET / HTTP/1.1x'), undefined);
});

test('parseStatusLine reads version, three-digit status and an optional reason', () => {
  assert.deepEqual(parseStatusLine('HTTP/1.1 200 OK'), { version: 'HTTP/1.1', status: 200, reason: 'OK' });
  assert.deepEqual(parseStatusLine('HTTP/1.0 404'), { version: 'HTTP/1.0', status: 404, reason: '' });
  assert.deepEqual(parseStatusLine('HTTP/1.1 500 Internal  Error '), { version: 'HTTP/1.1', status: 500, reason: 'Internal  Error' });
  assert.equal(parseStatusLine('HTTP/1.1 20 OK'), undefined);
  assert.equal(parseStatusLine('HTTP/1.1 2000 OK'), undefined);
  assert.equal(parseStatusLine('ICY 200 OK'), undefined);
  assert.equal(parseStatusLine('HTTP/1.1'), undefined);
});

test('parseChunkSizeLine reads hex with extensions and whitespace, rejects junk and oversize', () => {
  const p = (s: string): number => parseChunkSizeLine(b(s), 0, s.length);
  assert.equal(p('1a'), 26);
  assert.equal(p('FF;name=value'), 255);
  assert.equal(p(' 5 ; ext'), 5);
  assert.equal(p('0'), 0);
  assert.equal(p('000000000000000000001'), 1); // leading zeros are not significant
  assert.equal(p('f'.repeat(MAX_CHUNK_SIZE_HEX_DIGITS)), 16 ** MAX_CHUNK_SIZE_HEX_DIGITS - 1);
  assert.equal(p('1' + '0'.repeat(MAX_CHUNK_SIZE_HEX_DIGITS)), -1);
  assert.equal(p(''), -1);
  assert.equal(p('0x10'), -1);
  assert.equal(p('5 6'), -1);
  assert.equal(p('zz'), -1);
});

test('HttpMessageParser.push says need-more mid-message, ok at a boundary, invalid on a non-HTTP start', () => {
  const sink = new LogSink();
  const p = new HttpMessageParser(true, sink);
  assert.equal(p.push(b('GET / HT')), 'need-more');
  assert.equal(p.push(b('TP/1.1\r\nContent-Length: 2\r\n\r\nx')), 'need-more');
  assert.equal(p.push(b('y')), 'ok');
  assert.equal(p.push(b('\r\n\r\n')), 'ok'); // empty lines between messages are skipped
  const bad = new HttpMessageParser(false, new LogSink());
  assert.equal(bad.push(b('SSH-2.0-OpenSSH_9.6\r\n')), 'invalid');
  assert.equal(bad.push(b('HTTP/1.1 200 OK\r\n\r\n')), 'invalid');
});

test('HttpMessageParser emits begin, head, body and end in order', () => {
  const sink = new LogSink();
  new HttpMessageParser(false, sink).push(b('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc'));
  assert.deepEqual(sink.log, ['begin', 'head 200', 'end complete body="abc"']);
  assert.equal(sink.heads[0].contentLength, 3);
});

test('HttpMessageParser reports header anomalies: space before colon, missing colon, fold without header', () => {
  const sink = new LogSink();
  new HttpMessageParser(true, sink).push(b('GET / HTTP/1.1\r\n continued\r\nX-A : 1\r\nno colon here\r\n: empty name\r\n\r\n'));
  assert.deepEqual(sink.log, [
    'begin',
    'anomaly http.header.obsolete_folding', 'anomaly http.header.leading_whitespace',
    'anomaly http.header.space_before_colon', 'anomaly http.header.missing_colon', 'anomaly http.header.missing_colon',
    'head GET /', 'end complete body=""',
  ]);
  assert.deepEqual(sink.heads[0].headers, [['X-A', '1']]);
});

test('HttpMessageParser reads to the end after an invalid Content-Length or a non-chunked Transfer-Encoding', () => {
  const sink = new LogSink();
  const p = new HttpMessageParser(false, sink);
  p.push(b('HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\nbody HTTP/1.1 200 OK\r\n'));
  p.end(true);
  assert.deepEqual(sink.log, ['begin', 'anomaly http.content_length.invalid', 'head 200', 'end complete body="body HTTP/1.1 200 OK\\r\\n"']);
  const te = new LogSink();
  const q = new HttpMessageParser(false, te);
  q.push(b('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nabcd'));
  q.end(true);
  assert.deepEqual(te.log, [
    'begin', 'anomaly http.transfer_encoding.not_chunked_final', 'anomaly http.transfer_encoding.with_content_length',
    'head 200', 'end complete body="abcd"',
  ]);
  assert.deepEqual(te.heads[0].transferCodings, ['gzip']);
});

test('HttpMessageParser ends a message with a bad chunk size as cut and resyncs at the next start line', () => {
  const sink = new LogSink();
  const p = new HttpMessageParser(false, sink);
  p.push(b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\nmore junk\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'));
  assert.deepEqual(sink.log, [
    'begin', 'head 200', 'anomaly http.chunk.invalid_size', 'end cut body="abc"',
    'begin', 'resync bad_chunk', 'head 404', 'end complete body=""',
  ]);
});

test('HttpMessageParser tolerates a missing CRLF after chunk data and an extra empty line, with anomalies', () => {
  const sink = new LogSink();
  new HttpMessageParser(true, sink).push(b('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc4\r\nwxyz\r\n\r\n0\r\n\r\n'));
  assert.deepEqual(sink.log, [
    'begin', 'head POST /', 'anomaly http.chunk.missing_crlf', 'anomaly http.chunk.empty_line',
    'end complete body="abcwxyz"',
  ]);
});

test('HttpMessageParser.gap keeps chunk framing when the hole is inside chunk data', () => {
  const sink = new LogSink();
  const p = new HttpMessageParser(false, sink);
  p.push(b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n01'));
  p.gap(4);
  p.push(b('6789\r\n0\r\n\r\n'));
  assert.deepEqual(sink.log, ['begin', 'head 200', 'end complete body="01<gap 4>6789"']);
});

test('HttpMessageParser frames a body of over 4 GiB across gaps and parses the next message', () => {
  const sink = new LogSink();
  const p = new HttpMessageParser(true, sink);
  const size = 5_000_000_000; // beyond 32 bits: a disk image uploaded over a mirrored link
  p.push(b(`PUT /image HTTP/1.1\r\nContent-Length: ${size}\r\n\r\nab`));
  p.gap(size - 4);
  p.push(b('yzGET /next HTTP/1.1\r\n\r\n'));
  assert.equal(sink.heads[0].contentLength, size);
  assert.deepEqual(sink.log, [
    'begin', 'head PUT /image', `end complete body="ab<gap ${size - 4}>yz"`, 'begin', 'head GET /next', 'end complete body=""',
  ]);
});

test('HttpMessageParser holds bytes after a CONNECT until release(), and replays them in order with gaps', () => {
  const sink = new LogSink((h) => (h.method === 'CONNECT' ? 'connect' : 'normal'));
  const p = new HttpMessageParser(true, sink);
  p.push(b('CONNECT h:443 HTTP/1.1\r\n\r\nGET /a HTTP/1.1\r\n'));
  p.push(b('\r\nGET /b HTTP/1.1\r\n\r\n'));
  assert.deepEqual(sink.log, ['begin', 'head CONNECT h:443', 'end complete body=""']);
  p.release();
  assert.deepEqual(sink.log.slice(3), ['begin', 'head GET /a', 'end complete body=""', 'begin', 'head GET /b', 'end complete body=""']);
});

test('HttpMessageParser stop() after CONNECT drops the held bytes; overflowing the hold counts an anomaly', () => {
  const sink = new LogSink(() => 'connect');
  const p = new HttpMessageParser(true, sink);
  p.push(b('CONNECT h:443 HTTP/1.1\r\n\r\nGET /a HTTP/1.1\r\n\r\n'));
  p.stop();
  p.release();
  assert.equal(sink.log.filter((l) => l.startsWith('head')).length, 1);
  const big = new LogSink(() => 'connect');
  const q = new HttpMessageParser(true, big);
  q.push(b('CONNECT h:443 HTTP/1.1\r\n\r\n'));
  q.push(Buffer.alloc(MAX_CONNECT_HOLD_BYTES + 1));
  assert.ok(big.log.includes('anomaly http.connect.hold_overflow'));
  assert.equal(q.stopped, true);
});

test('HttpMessageParser holds 60,000 1-byte segments after a CONNECT in one run, charged about their size, replayed whole', () => {
  const n = 60_000;
  const requests = 'GET /a HTTP/1.1\r\nContent-Length: ' + String(n) + '\r\n\r\n';
  const text = (requests + 'q'.repeat(n)).slice(0, n);
  for (const ending of ['release', 'stop', 'end'] as const) {
    const sink = new HoldSink((h) => (h.method === 'CONNECT' ? 'connect' : 'normal'));
    const p = new HttpMessageParser(true, sink, sink.counters);
    p.push(b('CONNECT h:443 HTTP/1.1\r\n\r\n'));
    for (let i = 0; i < n; i++) p.push(b(text[i]));
    // one array per segment held ~16 MB and charged nothing
    assert.ok(sink.charged >= n, `${ending}: ${sink.charged} charged for ${n} bytes held`);
    assert.ok(sink.charged <= MAX_CONNECT_HOLD_BYTES + HOLD_RUN_OVERHEAD_BYTES, `${ending}: ${sink.charged} charged for ${n} bytes held`);
    if (ending === 'release') {
      p.release();
      assert.equal(sink.charged, 0);
      assert.deepEqual(sink.log.slice(3), ['begin', 'head GET /a']);
      p.end(true);
      assert.equal(sink.log[5], `end cut body=${JSON.stringify(text.slice(requests.length))}`);
    } else if (ending === 'stop') {
      p.stop();
      assert.deepEqual(sink.tunnelled, [text], 'the held run goes into the tunnel as one piece');
      p.end(true);
    } else p.end(false);
    assert.equal(sink.charged, 0, `${ending}: everything charged was given back`);
  }
});

test('HttpMessageParser CONNECT hold: gaps keep their place, count against MAX_CONNECT_HOLD_RUNS, and overflow gives back the charge', () => {
  const sink = new HoldSink(() => 'connect');
  const p = new HttpMessageParser(true, sink, sink.counters);
  p.push(b('CONNECT h:443 HTTP/1.1\r\n\r\n'));
  p.push(b('ab'));
  p.push(b('c'));
  p.gap(7);
  p.push(b('d'));
  p.stop();
  assert.deepEqual(sink.tunnelled, ['abc', 7, 'd']);
  assert.equal(sink.charged, 0);

  const many = new HoldSink(() => 'connect');
  const q = new HttpMessageParser(true, many, many.counters);
  q.push(b('CONNECT h:443 HTTP/1.1\r\n\r\n'));
  for (let i = 0; i < MAX_CONNECT_HOLD_RUNS / 2; i++) {
    q.push(b('x'));
    q.gap(1);
  }
  assert.equal(q.stopped, false);
  assert.ok(many.charged >= MAX_CONNECT_HOLD_RUNS * HOLD_RUN_OVERHEAD_BYTES);
  q.push(b('x'));
  assert.ok(many.log.includes('anomaly http.connect.hold_overflow'));
  assert.equal(q.stopped, true);
  assert.equal(many.charged, 0);

  const big = new HoldSink(() => 'connect');
  const r = new HttpMessageParser(true, big, big.counters);
  r.push(b('CONNECT h:443 HTTP/1.1\r\n\r\n'));
  r.push(Buffer.alloc(MAX_CONNECT_HOLD_BYTES - 1));
  assert.ok(big.charged >= MAX_CONNECT_HOLD_BYTES - 1);
  r.push(b('ab'));
  assert.ok(big.log.includes('anomaly http.connect.hold_overflow'));
  assert.equal(big.charged, 0);
});

test('HttpMessageParser trailers end with the flow: complete when only the final empty line is missing', () => {
  const sink = new LogSink();
  const p = new HttpMessageParser(false, sink);
  p.push(b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\nX-T: 1\r\n'));
  p.end(false);
  assert.deepEqual(sink.log.at(-1), 'end complete body="z"');
});

test('HttpMessageParser charges a head parked half-way to app_layer.memuse, and gives it back at the end, a gap or the head\'s end', () => {
  // 100 KB of head: 400 fields of 250 bytes, the last one cut in the middle
  const field = (i: number): string => `X-Field-${String(i).padStart(4, '0')}: ${'v'.repeat(234)}\r\n`;
  const head = 'GET /parked HTTP/1.1\r\n' + Array.from({ length: 400 }, (_, i) => field(i)).join('');
  for (const close of ['end', 'gap', 'complete'] as const) {
    const counters = new Counters();
    const p = new HttpMessageParser(true, new LogSink(), counters);
    for (let at = 0; at < head.length - 100; at += 1400) p.push(b(head.slice(at, Math.min(at + 1400, head.length - 100))));
    const held = memoryInUse(counters);
    assert.equal(held, p.heldBytes);
    // the fields kept up to MAX_HEAD_BYTES, with their overhead, and the partial last line
    assert.ok(held >= MAX_HEAD_BYTES && held <= MAX_HEAD_BYTES + MAX_HEADERS * HEADER_ENTRY_OVERHEAD_BYTES + 2 * MAX_HEADER_LINE_BYTES, `${close}: ${held} charged`);
    if (close === 'end') p.end(false);
    else if (close === 'gap') p.gap(10);
    else p.push(b(head.slice(head.length - 100) + '\r\n'));
    assert.ok(memoryInUse(counters) <= 512, `${close}: ${memoryInUse(counters)} still charged`);
    assert.equal(memoryInUse(counters), p.heldBytes, `${close}: only the line buffer kept for the next line`);
    p.end(true);
    assert.equal(memoryInUse(counters), 0, `${close}: all of it given back at the end`);
  }
});

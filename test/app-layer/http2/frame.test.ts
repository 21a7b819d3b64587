import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counters, counterName } from '../../../sensor/events/counters.js';
import {
  DEFAULT_MAX_FRAME_SIZE, FrameParser, FrameType, MAX_BUFFERED_FRAME_BYTES, Setting, type FrameSink, type ParseStatus,
  type PriorityInfo, type SettingsParam,
} from '../../../sensor/app-layer/http2/frame.js';
import { PARTIAL_BUFFER_MIN_BYTES } from '../../../sensor/app-layer/partial-buffer.js';
import { continuation, data, frame, goaway, headers, PREFACE, pushPromise, rstStream, settings } from './h2-helpers.js';

/** Logs every callback as one line; DATA pieces are joined per frame so splits do not show. */
class LogSink implements FrameSink {
  readonly log: string[] = [];
  readonly counters = new Counters();
  private pending = '';
  data(id: number, chunk: Uint8Array): void { this.pending += Buffer.from(chunk).toString('latin1'); }
  dataEnd(id: number, endStream: boolean): void {
    this.log.push(`data ${id} ${JSON.stringify(this.pending)}${endStream ? ' end' : ''}`);
    this.pending = '';
  }
  headers(id: number, f: Uint8Array, endStream: boolean, endHeaders: boolean, p: PriorityInfo | undefined): void {
    const pr = p ? ` prio ${p.exclusive ? 'x' : ''}${p.dependsOn}/${p.weight}` : '';
    this.log.push(`headers ${id} ${Buffer.from(f).toString('hex')}${endStream ? ' es' : ''}${endHeaders ? ' eh' : ''}${pr}`);
  }
  pushPromise(id: number, promised: number, f: Uint8Array, endHeaders: boolean): void {
    this.log.push(`push ${id} ${promised} ${Buffer.from(f).toString('hex')}${endHeaders ? ' eh' : ''}`);
  }
  continuation(id: number, f: Uint8Array, endHeaders: boolean): void {
    this.log.push(`cont ${id} ${Buffer.from(f).toString('hex')}${endHeaders ? ' eh' : ''}`);
  }
  rstStream(id: number, code: number): void { this.log.push(`rst ${id} ${code}`); }
  settings(ack: boolean, params: readonly SettingsParam[]): void {
    this.log.push(`settings${ack ? ' ack' : ''}${params.map((p) => ` ${p.id}=${p.value}`).join('')}`);
  }
  goaway(last: number, code: number): void { this.log.push(`goaway ${last} ${code}`); }
  priority(id: number, p: PriorityInfo): void { this.log.push(`priority ${id} ${p.dependsOn}/${p.weight}`); }
  ping(ack: boolean): void { this.log.push(`ping${ack ? ' ack' : ''}`); }
  windowUpdate(id: number, inc: number): void { this.log.push(`window ${id} ${inc}`); }
  anomaly(id: number): void {
    this.counters.inc(id);
    this.log.push(`! ${counterName(id)}`);
  }
}

function parse(isClient: boolean, pieces: Uint8Array[], setup?: (p: FrameParser) => void): { log: string[]; status: ParseStatus; parser: FrameParser; sink: LogSink } {
  const sink = new LogSink();
  const parser = new FrameParser(isClient, sink);
  setup?.(parser);
  let status: ParseStatus = 'ok';
  for (const piece of pieces) {
    // Views are only valid during the call: hand over a copy that is scribbled over afterwards.
    const scratch = Uint8Array.from(piece);
    status = parser.push(scratch);
    scratch.fill(0xee);
  }
  return { log: sink.log, status, parser, sink };
}

const ping = (ack = false) => frame(FrameType.PING, ack ? 1 : 0, 0, Buffer.alloc(8));
const windowUpdate = (id: number, inc: number) => { const p = Buffer.alloc(4); p.writeUInt32BE(inc); return frame(FrameType.WINDOW_UPDATE, 0, id, p); };

/** A client direction touching every frame type, padding and priority included. */
const CLIENT_BYTES = Buffer.concat([
  PREFACE,
  settings([[Setting.HEADER_TABLE_SIZE, 65536], [Setting.ENABLE_PUSH, 0], [Setting.INITIAL_WINDOW_SIZE, 6291456], [0x99, 7]]),
  windowUpdate(0, 15663105),
  headers(1, Buffer.from('abcd', 'hex'), { endStream: false, endHeaders: false, pad: 3, priority: true }),
  continuation(1, Buffer.from('ef', 'hex'), false),
  continuation(1, Buffer.from('01', 'hex'), true),
  data(1, 'hello ', {}),
  data(1, 'world', { pad: 4, endStream: true }),
  data(3, '', { endStream: true }),
  frame(0xfa, 0, 1, Buffer.from('unknown extension frame')),
  frame(FrameType.PRIORITY, 0, 3, Buffer.from([0, 0, 0, 1, 255])),
  rstStream(3, 8),
  ping(),
  settings([], true),
  goaway(0, 0),
]);

const CLIENT_LOG = [
  'settings 1=65536 2=0 4=6291456 153=7',
  'window 0 15663105',
  'headers 1 abcd prio x0/16',
  'cont 1 ef',
  'cont 1 01 eh',
  'data 1 "hello "',
  'data 1 "world" end',
  'data 3 "" end',
  '! http2.frame.unknown_type',
  'priority 3 1/256',
  'rst 3 8',
  'ping',
  'settings ack',
  'goaway 0 0',
];

test('FrameParser reads the client preface and every frame type, padding removed', () => {
  const { log, status, parser } = parse(true, [CLIENT_BYTES]);
  assert.deepEqual(log, CLIENT_LOG);
  assert.equal(status, 'ok');
  assert.equal(parser.settings.headerTableSize, 65536);
  assert.equal(parser.settings.enablePush, 0);
  assert.equal(parser.settings.initialWindowSize, 6291456);
});

test('FrameParser gives the same frames however the stream is cut', () => {
  for (let k = 1; k < CLIENT_BYTES.length; k++) {
    const { log } = parse(true, [CLIENT_BYTES.subarray(0, k), CLIENT_BYTES.subarray(k)]);
    assert.deepEqual(log, CLIENT_LOG, `cut at ${k}`);
  }
  const bytewise = Array.from({ length: CLIENT_BYTES.length }, (_, i) => CLIENT_BYTES.subarray(i, i + 1));
  assert.deepEqual(parse(true, bytewise).log, CLIENT_LOG);
});

test('FrameParser says need-more inside the preface, a header or a payload, ok on a frame boundary', () => {
  const s = settings();
  assert.equal(parse(true, [PREFACE.subarray(0, 10)]).status, 'need-more');
  assert.equal(parse(true, [PREFACE]).status, 'ok');
  assert.equal(parse(true, [PREFACE, s.subarray(0, 4)]).status, 'need-more');
  assert.equal(parse(false, [data(1, 'abc').subarray(0, 11)]).status, 'need-more');
  assert.equal(parse(false, [settings(), data(1, 'abc')]).status, 'ok');
});

test('FrameParser stops on a client preface that differs (HTTP/1 or anything else)', () => {
  const { status, parser, sink, log } = parse(true, [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]);
  assert.equal(status, 'invalid');
  assert.equal(parser.error, 'bad_preface');
  assert.equal(sink.counters.get('http2.invalid_client_magic'), 1);
  assert.deepEqual(log, ['! http2.invalid_client_magic']);
  // Nothing more is parsed afterwards.
  assert.equal(parser.push(settings()), 'invalid');
  // A wrong byte late in the preface is found as well.
  const late = Buffer.from(PREFACE);
  late[20] = 0x41;
  assert.equal(parse(true, [late]).parser.error, 'bad_preface');
});

test('FrameParser does not expect a preface on the server side, and flags a first frame other than SETTINGS', () => {
  assert.deepEqual(parse(false, [settings([[Setting.MAX_CONCURRENT_STREAMS, 100]])]).log, ['settings 3=100']);
  assert.deepEqual(parse(false, [ping()]).log, ['! http2.preface.not_settings', 'ping']);
});

test('FrameParser stops on a frame longer than the peer allows, and honours a raised SETTINGS_MAX_FRAME_SIZE', () => {
  const big = data(1, 'x'.repeat(DEFAULT_MAX_FRAME_SIZE + 1));
  const r = parse(false, [settings(), big]);
  assert.equal(r.status, 'invalid');
  assert.equal(r.parser.error, 'frame_too_large');
  assert.equal(r.sink.counters.get('http2.frame.too_large'), 1);
  const ok = parse(false, [settings(), big], (p) => { p.maxFrameSize = 1 << 20; });
  assert.equal(ok.status, 'ok');
  assert.equal(ok.log[1], `data 1 "${'x'.repeat(DEFAULT_MAX_FRAME_SIZE + 1)}"`);
  // Exactly the maximum is fine.
  assert.equal(parse(false, [settings(), data(1, 'y'.repeat(DEFAULT_MAX_FRAME_SIZE))]).status, 'ok');
});

test('FrameParser refuses to buffer a non-DATA frame above MAX_BUFFERED_FRAME_BYTES', () => {
  const hdr = Buffer.alloc(9);
  hdr.writeUIntBE(MAX_BUFFERED_FRAME_BYTES + 1, 0, 3);
  hdr[3] = FrameType.HEADERS;
  hdr.writeUInt32BE(1, 5);
  const r = parse(false, [settings(), hdr], (p) => { p.maxFrameSize = 1 << 24; });
  assert.equal(r.status, 'invalid');
  assert.equal(r.parser.error, 'frame_buffer_limit');
  assert.equal(r.sink.counters.get('http2.frame_buffer_limit'), 1);
  // A DATA frame of that size streams through without being held.
  const d = parse(false, [settings(), data(1, 'd'.repeat(MAX_BUFFERED_FRAME_BYTES + 1))], (p) => { p.maxFrameSize = 1 << 24; });
  assert.equal(d.status, 'ok');
});

test('FrameParser stops on CONTINUATION without an open header block', () => {
  const r = parse(false, [settings(), continuation(1, Buffer.from('82', 'hex'))]);
  assert.equal(r.status, 'invalid');
  assert.equal(r.parser.error, 'continuation_unexpected');
  assert.equal(r.sink.counters.get('http2.continuation.unexpected'), 1);
  // After a complete block (END_HEADERS), a CONTINUATION is just as unexpected.
  assert.equal(parse(false, [settings(), headers(1, Buffer.from('88', 'hex')), continuation(1, Buffer.from('82', 'hex'))]).parser.error,
    'continuation_unexpected');
});

test('FrameParser stops when another frame interrupts a header block', () => {
  const open = headers(1, Buffer.from('82', 'hex'), { endHeaders: false });
  const r = parse(false, [settings(), open, ping()]);
  assert.equal(r.parser.error, 'continuation_expected');
  assert.equal(r.parser.inHeaderBlock, true);
  assert.equal(parse(false, [settings(), open, continuation(3, Buffer.from('82', 'hex'))]).parser.error, 'continuation_expected');
  const push = frame(FrameType.PUSH_PROMISE, 0, 1, Buffer.from([0, 0, 0, 2, 0x82]));
  assert.equal(parse(false, [settings(), push, data(1, 'x')]).parser.error, 'continuation_expected');
});

test('FrameParser stops on HEADERS padding longer than the payload, drops DATA with such padding', () => {
  const badHeaders = frame(FrameType.HEADERS, 0x4 | 0x8, 1, Buffer.from([5, 0x82]));
  assert.equal(parse(false, [settings(), badHeaders]).parser.error, 'bad_padding');
  const badData = frame(FrameType.DATA, 0x8 | 0x1, 1, Buffer.from([3, 0x61, 0x62]));
  const r = parse(false, [settings(), badData, data(1, 'next')]);
  assert.equal(r.status, 'ok');
  assert.deepEqual(r.log, ['settings', '! http2.frame.bad_padding', 'data 1 "next"']);
  const emptyPadded = frame(FrameType.DATA, 0x8, 1);
  assert.deepEqual(parse(false, [settings(), emptyPadded, ping()]).log, ['settings', '! http2.frame.bad_padding', 'ping']);
});

test('FrameParser passes the promised stream of PUSH_PROMISE, padding removed', () => {
  const padded = frame(FrameType.PUSH_PROMISE, 0x4 | 0x8, 1, Buffer.concat([Buffer.from([2, 0, 0, 0, 4]), Buffer.from('8284', 'hex'), Buffer.alloc(2)]));
  assert.deepEqual(parse(false, [settings(), pushPromise(1, 2, Buffer.from('82', 'hex')), padded]).log,
    ['settings', 'push 1 2 82 eh', 'push 1 4 8284 eh']);
});

test('FrameParser flags malformed fixed-size frames and frames on the wrong stream, then goes on', () => {
  const r = parse(false, [
    settings(),
    frame(FrameType.PING, 0, 0, Buffer.alloc(7)),
    frame(FrameType.PING, 0, 1, Buffer.alloc(8)),
    frame(FrameType.RST_STREAM, 0, 0, Buffer.alloc(4)),
    frame(FrameType.RST_STREAM, 0, 1, Buffer.alloc(3)),
    frame(FrameType.PRIORITY, 0, 1, Buffer.alloc(4)),
    frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(5)),
    frame(FrameType.SETTINGS, 1, 0, Buffer.alloc(6)),
    frame(FrameType.SETTINGS, 0, 1, Buffer.alloc(6)),
    frame(FrameType.GOAWAY, 0, 0, Buffer.alloc(4)),
    windowUpdate(1, 0),
    frame(FrameType.DATA, 0, 0, Buffer.from('zero')),
    data(1, 'still parsed', { endStream: true }),
  ]);
  assert.equal(r.status, 'ok');
  assert.deepEqual(r.log, [
    'settings',
    '! http2.invalid_frame_length',
    '! http2.frame.stream_id_invalid',
    '! http2.frame.stream_id_invalid',
    '! http2.invalid_frame_length',
    '! http2.invalid_frame_length',
    '! http2.invalid_frame_length',
    '! http2.invalid_frame_length',
    '! http2.frame.stream_id_invalid',
    '! http2.invalid_frame_length',
    '! http2.window_update.zero',
    'window 1 0',
    '! http2.data_stream_zero',
    'data 1 "still parsed" end',
  ]);
});

test('FrameParser records SETTINGS values and ignores out-of-range ones', () => {
  const r = parse(false, [settings([
    [Setting.MAX_FRAME_SIZE, 1 << 20], [Setting.MAX_FRAME_SIZE, 100], [Setting.ENABLE_PUSH, 2],
    [Setting.MAX_HEADER_LIST_SIZE, 262144], [Setting.MAX_CONCURRENT_STREAMS, 128],
  ])]);
  assert.deepEqual(r.log, ['! http2.settings.invalid_value', '! http2.settings.invalid_value', 'settings 5=1048576 6=262144 3=128']);
  assert.equal(r.parser.settings.maxFrameSize, 1 << 20);
  assert.equal(r.parser.settings.enablePush, 1);
  assert.equal(r.parser.settings.maxHeaderListSize, 262144);
  assert.equal(r.parser.settings.maxConcurrentStreams, 128);
});

test('FrameParser stop() ends parsing at once, even inside a push', () => {
  const sink = new LogSink();
  const parser = new FrameParser(false, sink);
  const orig = sink.ping.bind(sink);
  sink.ping = (ack) => { orig(ack); parser.stop(); };
  assert.equal(parser.push(Buffer.concat([settings(), ping(), ping()])), 'invalid');
  assert.deepEqual(sink.log, ['settings', 'ping']);
  assert.equal(parser.error, 'stopped');
  assert.equal(parser.stopped, true);
});

/** A 9-byte frame header announcing `length` payload bytes (none of them follow). */
function frameHeader(length: number, type: number, streamId: number): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(length, 0, 3);
  h[3] = type;
  h.writeUInt32BE(streamId, 5);
  return h;
}

test('FrameParser holds buffer in proportion to the payload bytes received, not to the length announced', () => {
  // Many flows' worth of a peer that raised the frame size, announced the largest frame buffered and sent
  // one payload byte: each used to hold the whole 256.5 KiB at once.
  const parsers: FrameParser[] = [];
  for (let i = 0; i < 500; i++) {
    const { parser, status } = parse(false, [settings(), frameHeader(MAX_BUFFERED_FRAME_BYTES, FrameType.HEADERS, 1), Buffer.from([0])],
      (p) => { p.maxFrameSize = 1 << 24; });
    assert.equal(status, 'need-more');
    parsers.push(parser);
  }
  const held = parsers.reduce((sum, p) => sum + p.heldBytes, 0);
  assert.ok(held <= parsers.length * PARTIAL_BUFFER_MIN_BYTES, `${held} bytes held for ${parsers.length} one-byte partial frames`);
  // As the payload arrives, the buffer stays within twice what came (or the minimum).
  const p = parsers[0];
  let received = 1;
  for (const piece of [100, 1000, 5000, 40_000, 100_000]) {
    assert.equal(p.push(Buffer.alloc(piece)), 'need-more');
    received += piece;
    assert.ok(p.heldBytes <= Math.max(PARTIAL_BUFFER_MIN_BYTES, 2 * received), `${p.heldBytes} held after ${received} received`);
  }
});

test('FrameParser gives the same large frame whole or cut every few bytes, and drops the large buffer after it', () => {
  const payload = Buffer.alloc(100_000);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 8)) & 0xff;
  const bytes = Buffer.concat([
    settings(), headers(1, payload, { endHeaders: true }), frame(FrameType.PING, 0, 0, Buffer.alloc(8)), headers(3, payload.subarray(0, 3000)),
  ]);
  const raise = (p: FrameParser) => { p.maxFrameSize = 1 << 20; };
  const whole = parse(false, [bytes], raise);
  assert.equal(whole.status, 'ok');
  assert.deepEqual(whole.log.map((l) => l.length), [8, 'headers 1 '.length + 200_000 + ' eh'.length, 4, 'headers 3 '.length + 6000 + ' eh'.length]);
  for (const step of [1, 3, 7, 1448]) {
    const pieces: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; at += step) pieces.push(bytes.subarray(at, at + step));
    const cut = parse(false, pieces, raise);
    assert.equal(cut.status, 'ok', `cut every ${step}`);
    assert.deepEqual(cut.log, whole.log, `cut every ${step}`);
    // The 100 KB frame's buffer is not kept for the flow's life; the last (3 KB) frame's may be.
    assert.ok(cut.parser.heldBytes <= DEFAULT_MAX_FRAME_SIZE, `cut every ${step}: ${cut.parser.heldBytes} held`);
  }
});

/**
 * Test support for the HTTP/2 app layer (no tests here): frame and header-block builders (a minimal HPACK
 * encoder: literals with or without Huffman, optional incremental indexing), a driver that feeds steps to an
 * `Http2Session` through one reused scratch buffer, and a recorder of real node:http2 traffic (h2c server and
 * client on loopback through a TCP proxy that keeps the bytes of each direction in arrival order).
 */

import net from 'node:net';
import type { CloseReason } from '../../../sensor/flow/stream.js';
import { Counters } from '../../../sensor/events/counters.js';
import type { HttpSessionOptions } from '../../../sensor/app-layer/http/session.js';
import { Http2Session, type Http2ParserEvent } from '../../../sensor/app-layer/http2/session.js';
import type { HttpParserEvent } from '../../../sensor/app-layer/http/session.js';
import { CLIENT_PREFACE, FrameType } from '../../../sensor/app-layer/http2/frame.js';
import { huffmanCode, huffmanCodeLength } from '../../../sensor/app-layer/http2/huffman.js';
import { FLOW, Recorder, type Step, type Summary } from '../../helpers/http-recorder.js';

export const PREFACE = Buffer.from(CLIENT_PREFACE);

export function frame(type: number, flags: number, streamId: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId >>> 0, 5);
  return Buffer.concat([h, payload]);
}

export function settings(params: [number, number][] = [], ack = false): Buffer {
  const p = Buffer.alloc(params.length * 6);
  params.forEach(([id, v], i) => {
    p.writeUInt16BE(id, i * 6);
    p.writeUInt32BE(v >>> 0, i * 6 + 2);
  });
  return frame(FrameType.SETTINGS, ack ? 1 : 0, 0, p);
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1), `first` holding the pattern bits above the prefix. */
export function hpackInt(value: number, prefixBits: number, first = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

export function huffmanEncode(s: string): Buffer {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const c of Buffer.from(s, 'latin1')) {
    const code = huffmanCode(c);
    const len = huffmanCodeLength(c);
    for (let i = len - 1; i >= 0; i--) {
      acc = (acc << 1) | (Math.floor(code / 2 ** i) % 2);
      bits++;
      if (bits === 8) {
        out.push(acc);
        acc = 0;
        bits = 0;
      }
    }
  }
  if (bits > 0) out.push((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)); // EOS prefix pads
  return Buffer.from(out);
}

export function hpackString(s: string, huffman = false): Buffer {
  const raw = huffman ? huffmanEncode(s) : Buffer.from(s, 'latin1');
  return Buffer.concat([hpackInt(raw.length, 7, huffman ? 0x80 : 0), raw]);
}

export interface BlockOptions {
  huffman?: boolean;
  /** Literal with incremental indexing (adds to the dynamic table) instead of without indexing. */
  index?: boolean;
}

/** A header block of literal fields with literal names. */
export function block(fields: [string, string][], o: BlockOptions = {}): Buffer {
  const parts: Buffer[] = [];
  for (const [n, v] of fields) {
    parts.push(Buffer.from([o.index ? 0x40 : 0x00]), hpackString(n, o.huffman), hpackString(v, o.huffman));
  }
  return Buffer.concat(parts);
}

export interface HeadersOptions {
  endStream?: boolean;
  endHeaders?: boolean;
  pad?: number;
  priority?: boolean;
}

export function headers(streamId: number, fragment: Uint8Array, o: HeadersOptions = {}): Buffer {
  let flags = 0;
  if (o.endStream) flags |= 0x1;
  if (o.endHeaders !== false) flags |= 0x4;
  const parts: Buffer[] = [];
  if (o.pad !== undefined) {
    flags |= 0x8;
    parts.push(Buffer.from([o.pad]));
  }
  if (o.priority) {
    flags |= 0x20;
    parts.push(Buffer.from([0x80, 0, 0, 0, 15])); // exclusive, depends on 0, weight 16
  }
  parts.push(Buffer.from(fragment));
  if (o.pad !== undefined) parts.push(Buffer.alloc(o.pad));
  return frame(FrameType.HEADERS, flags, streamId, Buffer.concat(parts));
}

export function continuation(streamId: number, fragment: Uint8Array, endHeaders = true): Buffer {
  return frame(FrameType.CONTINUATION, endHeaders ? 0x4 : 0, streamId, fragment);
}

export function data(streamId: number, bytes: Uint8Array | string, o: { endStream?: boolean; pad?: number } = {}): Buffer {
  const body = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes);
  let flags = o.endStream ? 0x1 : 0;
  if (o.pad === undefined) return frame(FrameType.DATA, flags, streamId, body);
  flags |= 0x8;
  return frame(FrameType.DATA, flags, streamId, Buffer.concat([Buffer.from([o.pad]), body, Buffer.alloc(o.pad)]));
}

export function rstStream(streamId: number, code = 8): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FrameType.RST_STREAM, 0, streamId, p);
}

export function pushPromise(streamId: number, promised: number, fragment: Uint8Array): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(promised);
  return frame(FrameType.PUSH_PROMISE, 0x4, streamId, Buffer.concat([p, fragment]));
}

export function goaway(lastStreamId: number, code = 0): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(lastStreamId, 0);
  p.writeUInt32BE(code, 4);
  return frame(FrameType.GOAWAY, 0, 0, p);
}

export function requestBlock(path: string, extra: [string, string][] = [], method = 'GET', o: BlockOptions = {}): Buffer {
  return block([[':method', method], [':scheme', 'http'], [':authority', 'example.com'], [':path', path], ...extra], o);
}

export function responseBlock(status: number, extra: [string, string][] = [], o: BlockOptions = {}): Buffer {
  return block([[':status', String(status)], ...extra], o);
}

/** Client preface + empty SETTINGS, and the server's SETTINGS: the opening every exchange needs. */
export function opening(): Step[] {
  return [[0, Buffer.concat([PREFACE, settings()])], [1, settings()]];
}

/** The HTTP/1 test recorder, plus the `detail` of each HTTP/2 parser event. */
export class H2Recorder extends Recorder {
  readonly details: string[] = [];

  override onParserEvent(ev: HttpParserEvent): void {
    super.onParserEvent(ev);
    this.details.push((ev as Http2ParserEvent).detail);
  }
}

export interface H2RunResult {
  rec: H2Recorder;
  summary: Summary;
  counters: Counters;
  session: Http2Session;
}

/**
 * Feeds steps to a new `Http2Session`, each data step through ONE reused scratch buffer scribbled over after
 * every call (the flow stage's contract: views are valid only during the call).
 */
export function runH2(steps: readonly Step[], options: HttpSessionOptions = {}, endReason: CloseReason | null = 'fin'): H2RunResult {
  const counters = new Counters();
  const rec = new H2Recorder();
  const session = new Http2Session(FLOW, rec, counters, options);
  let scratch = new Uint8Array(4096);
  let ts = 1000;
  for (const step of steps) {
    ts += 1;
    if (step[0] === 'gap') {
      session.gap(step[1], step[2], ts);
      continue;
    }
    const [dir, bytes] = step;
    if (scratch.length < bytes.length) scratch = new Uint8Array(bytes.length * 2);
    scratch.set(bytes, 0);
    session.data(dir, scratch.subarray(0, bytes.length), ts);
    scratch.fill(0xee, 0, bytes.length);
  }
  if (endReason !== null) session.end(endReason, ts + 1);
  return { rec, summary: rec.summary, counters, session };
}

/** Steps merged so that consecutive data of the same direction form one step (the stream as one push each). */
export function coalesce(steps: readonly Step[]): Step[] {
  const out: Step[] = [];
  for (const step of steps) {
    const last = out[out.length - 1];
    if (step[0] !== 'gap' && last !== undefined && last[0] === step[0]) {
      out[out.length - 1] = [step[0], Buffer.concat([last[1] as Uint8Array, step[1]])];
    } else out.push(step);
  }
  return out;
}

/** Bytes that crossed a recording proxy: each chunk as read from its socket, in arrival order. */
export type Recording = [0 | 1, Buffer][];

/**
 * Runs `exchange(url)` against a server reachable at `url` through a TCP proxy on loopback that records both
 * directions. `listen` starts the real server (port 0) and returns its port. Resolves when both proxy legs
 * have closed.
 */
export async function recordThroughProxy(
  listen: () => Promise<{ port: number; close: () => Promise<void> }>,
  exchange: (url: string) => Promise<void>,
): Promise<Recording> {
  const server = await listen();
  const chunks: Recording = [];
  let legsClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => { legsClosed = resolve; });
  const proxy = net.createServer((client) => {
    const upstream = net.connect(server.port, '127.0.0.1');
    let open = 2;
    const done = () => { if (--open === 0) legsClosed(); };
    client.on('data', (b: Buffer) => { chunks.push([0, Buffer.from(b)]); upstream.write(b); });
    upstream.on('data', (b: Buffer) => { chunks.push([1, Buffer.from(b)]); client.write(b); });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('close', done);
    upstream.on('close', done);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const port = (proxy.address() as net.AddressInfo).port;
  try {
    await exchange(`http://127.0.0.1:${port}`);
    await closed;
  } finally {
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
    await server.close();
  }
  return chunks;
}

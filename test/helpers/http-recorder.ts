/**
 * Test support for the HTTP app layer (no tests here): a sink that records everything a session emits
 * as plain data, a driver that feeds steps through a reused scratch buffer (as the flow stage does), and
 * step splitters for the cut-at-every-offset tests.
 */

import type { CloseReason, Direction, FlowInfo } from '../../sensor/flow/stream.js';
import { Counters } from '../../sensor/events/counters.js';
import {
  HttpSession, type HttpMessage, type HttpParserEvent, type HttpRequest, type HttpResponse, type HttpSessionOptions,
  type HttpSink, type MessageEndInfo,
} from '../../sensor/app-layer/http/session.js';

export const FLOW: FlowInfo = {
  flowId: 1, proto: 6, srcIp: '10.0.0.1', srcPort: 40000, dstIp: '10.0.0.2', dstPort: 80, vlan: [], startUs: 0,
};

export type Step = [Direction, Uint8Array] | ['gap', Direction, number];

export interface MessageRecord {
  dir: Direction;
  kind: 'request' | 'response';
  index: number;
  body: string; // decoded body, latin1
  gapCalls: number;
  info: Omit<MessageEndInfo, 'trailers'> & { trailers: [string, string][] | undefined };
}

export interface Summary {
  requests: Omit<HttpRequest, 'flow' | 'tsUs'>[];
  responses: Omit<HttpResponse, 'flow' | 'tsUs'>[];
  /** In the order messages ended. */
  messages: MessageRecord[];
  events: { dir: Direction; kind: string; reason: string }[];
  /** Order of record callbacks, e.g. `req0`, `res0`, `end0:0`, to check pairing order. */
  order: string[];
}

export class Recorder implements HttpSink {
  readonly summary: Summary = { requests: [], responses: [], messages: [], events: [], order: [] };
  readonly tsOf = new Map<HttpMessage, number>();
  private readonly bodies = new Map<HttpMessage, Buffer[]>();
  private readonly gapCalls = new Map<HttpMessage, number>();

  onRequest(req: HttpRequest): void {
    const { flow: _f, tsUs, ...rest } = req;
    this.tsOf.set(req, tsUs);
    this.summary.requests.push(structuredClone(rest));
    this.summary.order.push(`req${req.index}`);
  }

  onResponse(res: HttpResponse): void {
    const { flow: _f, tsUs, ...rest } = res;
    this.tsOf.set(res, tsUs);
    this.summary.responses.push(structuredClone(rest));
    this.summary.order.push(`res${res.index}`);
  }

  onBody(msg: HttpMessage, _dir: Direction, chunk: Uint8Array): void {
    let list = this.bodies.get(msg);
    if (list === undefined) this.bodies.set(msg, (list = []));
    list.push(Buffer.from(chunk)); // copy: the view dies with the call
  }

  onBodyGap(msg: HttpMessage): void {
    this.gapCalls.set(msg, (this.gapCalls.get(msg) ?? 0) + 1);
  }

  onMessageEnd(msg: HttpMessage, dir: Direction, info: MessageEndInfo): void {
    const body = Buffer.concat(this.bodies.get(msg) ?? []);
    this.bodies.delete(msg);
    this.summary.messages.push({
      dir, kind: msg.kind, index: msg.index, body: body.toString('latin1'), gapCalls: this.gapCalls.get(msg) ?? 0,
      info: structuredClone({ ...info, encodings: [...info.encodings], anomalies: [...info.anomalies] }),
    });
    this.summary.order.push(`end${dir}:${msg.index}`);
  }

  onParserEvent(ev: HttpParserEvent): void {
    this.summary.events.push({ dir: ev.dir, kind: ev.kind, reason: ev.reason });
  }

  /** The decoded body of the nth message of a direction that ended. */
  body(dir: Direction, kind: 'request' | 'response', index: number): string | undefined {
    return this.summary.messages.find((m) => m.dir === dir && m.kind === kind && m.index === index)?.body;
  }
}

export interface RunResult {
  rec: Recorder;
  summary: Summary;
  counters: Counters;
  session: HttpSession;
}

/**
 * Feeds steps to a new session, each data step through ONE reused scratch buffer that is scribbled
 * over after every call (the flow stage's contract: views are valid only during the call).
 */
export function run(steps: readonly Step[], options: HttpSessionOptions = {}, endReason: CloseReason | null = 'fin'): RunResult {
  const counters = new Counters();
  const rec = new Recorder();
  const session = new HttpSession(FLOW, rec, counters, options);
  let scratch = new Uint8Array(2048);
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
    scratch.fill(0xee);
  }
  if (endReason !== null) session.end(endReason, ts + 1);
  return { rec, summary: rec.summary, counters, session };
}

export function latin1(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

/** Every way of cutting ONE data step in two (for each step, each inner offset). */
export function* everySplit(steps: readonly Step[]): Generator<{ label: string; steps: Step[] }> {
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    if (step[0] === 'gap') continue;
    const [dir, bytes] = step;
    for (let k = 1; k < bytes.length; k++) {
      const cut: Step[] = [...steps.slice(0, i), [dir, bytes.subarray(0, k)], [dir, bytes.subarray(k)], ...steps.slice(i + 1)];
      yield { label: `step ${i} cut at ${k}`, steps: cut };
    }
  }
}

/** Every data step delivered one byte at a time. */
export function bytewise(steps: readonly Step[]): Step[] {
  const out: Step[] = [];
  for (const step of steps) {
    if (step[0] === 'gap') {
      out.push(step);
      continue;
    }
    const [dir, bytes] = step;
    for (let i = 0; i < bytes.length; i++) out.push([dir, bytes.subarray(i, i + 1)]);
  }
  return out;
}

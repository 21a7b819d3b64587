/**
 * Tests for sensor/inspect/http-inspector.ts: the per-message bound on (phrase, field) aggregates,
 * for a message in progress and for early responses, with records handed in directly (no parser).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HttpRequest, HttpResponse, MessageEndInfo } from '../../sensor/app-layer/http/index.js';
import { Counters } from '../../sensor/events/counters.js';
import { cutCaptureText, MAX_CAPTURE_URL_CHARS, type CaptureEvent } from '../../sensor/events/capture.js';
import { CaptureCollector, type CaptureCandidate } from '../../sensor/inspect/captures.js';
import { HttpInspector, MAX_HIT_AGGREGATES_PER_MESSAGE, type InspectContext } from '../../sensor/inspect/http-inspector.js';
import { compileDictionary } from '../../sensor/match/matcher.js';
import { retainedBytes, uniqueSource } from '../helpers/heap.js';
import { FLOW } from '../helpers/http-recorder.js';

/** Distinct letter-only words (whole-word phrases): "zqa", "zqb", ... */
function words(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`zq${String.fromCharCode(97 + Math.floor(i / 26))}${String.fromCharCode(97 + (i % 26))}`);
  return out;
}

function context(phrases: readonly string[]): { ctx: InspectContext; counters: Counters; out: CaptureCandidate[] } {
  const counters = new Counters();
  const out: CaptureCandidate[] = [];
  const matcher = compileDictionary({
    name: 'test',
    phrases: phrases.map((phrase) => ({ phrase, category: 'test', severity: 3, embedded: false, exclusions: [], languages: [] })),
  });
  const collector = { add: (c: CaptureCandidate) => out.push(c) } as unknown as CaptureCollector;
  return { ctx: { matcher, counters, collector }, counters, out };
}

const END: MessageEndInfo = {
  bodyBytesWire: 0, bodyBytesDecoded: 0, truncated: false, incomplete: false, gapBytes: 0, encodings: [], decode: 'ok',
  anomalies: [], trailers: undefined,
};

function response(index: number, requestIndex: number): HttpResponse {
  return {
    kind: 'response', flow: FLOW, index, requestIndex, status: 200, reason: 'OK', version: 'HTTP/1.1',
    headers: [['content-type', 'text/plain']], tsUs: 1, interim: false, anomalies: [],
  };
}

const REQUEST: HttpRequest = {
  kind: 'request', flow: FLOW, index: 0, method: 'GET', uri: '/', version: 'HTTP/1.1', headers: [], host: 'example.com',
  tsUs: 1, uriTruncated: false, anomalies: [],
};

test('HttpInspector keeps at most MAX_HIT_AGGREGATES_PER_MESSAGE phrases of a message and counts the rest', () => {
  const phrases = words(MAX_HIT_AGGREGATES_PER_MESSAGE + 36);
  const { ctx, counters, out } = context(phrases);
  const inspector = new HttpInspector(FLOW, ctx);
  inspector.onRequest(REQUEST);
  inspector.onMessageEnd(REQUEST, 0, END, 1);
  const res = response(0, 0);
  inspector.onResponse(res);
  // Every phrase once, then every phrase again: the kept ones count their repeat.
  const text = `${phrases.join(' ')}.\n${phrases.join(' ')}.\n`;
  inspector.onBody(res, 1, Buffer.from(text));
  inspector.onMessageEnd(res, 1, END, 2);
  assert.equal(out.length, MAX_HIT_AGGREGATES_PER_MESSAGE);
  assert.deepEqual(out.map((c) => c.phrase.phrase), phrases.slice(0, MAX_HIT_AGGREGATES_PER_MESSAGE));
  assert.ok(out.every((c) => c.count === 2 && c.field === 'response_body' && c.url === '/'));
  assert.equal(counters.get('capture.hits_per_message_limit'), 2 * 36);
});

test('HttpInspector bounds the phrases an early response keeps while it waits for its request', () => {
  const phrases = words(MAX_HIT_AGGREGATES_PER_MESSAGE + 10);
  const { ctx, counters, out } = context(phrases);
  const inspector = new HttpInspector(FLOW, ctx);
  const res = response(0, -1);
  inspector.onResponse(res);
  inspector.onBody(res, 1, Buffer.from(`${phrases.join(' ')}.\n`));
  inspector.onMessageEnd(res, 1, END, 2);
  assert.equal(out.length, 0); // held for the request
  assert.equal(counters.get('capture.hits_per_message_limit'), 10);
  inspector.onRequest(REQUEST);
  assert.equal(out.length, MAX_HIT_AGGREGATES_PER_MESSAGE);
  assert.ok(out.every((c) => c.count === 1 && c.url === '/'));
});

test('HttpInspector keeps every phrase of a message below the bound', () => {
  const phrases = words(5);
  const { ctx, counters, out } = context(phrases);
  const inspector = new HttpInspector(FLOW, ctx);
  inspector.onRequest({ ...REQUEST, uri: `/search?q=${phrases[0]}` });
  const res = response(0, 0);
  inspector.onResponse(res);
  inspector.onBody(res, 1, Buffer.from(`${phrases.join(' ')}.\n`));
  inspector.onMessageEnd(res, 1, END, 2);
  assert.deepEqual(out.map((c) => c.phrase.phrase), phrases);
  assert.match(out[0].context, /\[\[zqaa\]\]/);
  assert.equal(counters.get('capture.hits_per_message_limit'), 0);
});

test('HttpInspector remembered requests keep none of the 64 KB header blocks their URL and host were sliced from', () => {
  const { ctx } = context(['zqaa']);
  const flows = 32;
  const perFlow = 63; // within the 64 remembered per flow: 2,016 requests held
  const source = 64 * 1024;
  const { bytes, held } = retainedBytes(() => {
    const inspectors: HttpInspector[] = [];
    for (let f = 0; f < flows; f++) {
      const inspector = new HttpInspector(FLOW, ctx);
      for (let i = 0; i < perFlow; i++) {
        const block = uniqueSource(source);
        const req: HttpRequest = { ...REQUEST, index: i, uri: uniqueSource(source).slice(0, 300), host: block.slice(20, 60), method: block.slice(100, 103) };
        inspector.onRequest(req);
        inspector.onMessageEnd(req, 0, END, 1);
      }
      inspectors.push(inspector);
    }
    return inspectors;
  });
  assert.equal((held as HttpInspector[]).length, flows);
  const n = flows * perFlow;
  assert.ok(bytes < 0.2 * n * source, `${Math.round(bytes / n)} bytes per remembered request`);
});

test('HttpInspector gives the collector a URL past MAX_CAPTURE_URL_CHARS that captures the same as the whole URL', () => {
  const { ctx, out } = context(['zqaa']);
  const counters = new Counters();
  const events: CaptureEvent[] = [];
  const collector = new CaptureCollector((c) => events.push(c), counters, 60_000_000);
  const inspector = new HttpInspector(FLOW, { ...ctx, collector });
  const uri = `/p?${'a'.repeat(10_000)}`;
  const req: HttpRequest = { ...REQUEST, uri };
  inspector.onRequest(req);
  inspector.onMessageEnd(req, 0, END, 1);
  const res = response(0, 0);
  inspector.onResponse(res);
  inspector.onBody(res, 1, Buffer.from('zqaa here.\n'));
  inspector.onMessageEnd(res, 1, END, 2);
  assert.equal(out.length, 0);
  assert.equal(events.length, 1);
  assert.equal(events[0].url, cutCaptureText(uri, MAX_CAPTURE_URL_CHARS));
  assert.equal(events[0].host, 'example.com');
  assert.equal(counters.get('capture.url_truncated'), 1);
  // the same URL as a whole string merges into that window
  collector.add({ flow: FLOW, dir: 1, messageIndex: 5, source: 'viewed', field: 'response_body', host: 'example.com', url: uri, method: 'GET', status: 200, phraseIndex: 0, phrase: ctx.matcher.phrases[0], count: 1, context: 'x', tsUs: 3 });
  assert.equal(counters.get('capture.merged'), 1);
});

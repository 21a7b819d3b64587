/**
 * HTTP content inspection: what a person typed (URL path and search terms, custom request
 * headers, request bodies) and read (response bodies) in one flow, through the text extractors
 * and one phrase scanner per message, into capture candidates. Input: the HTTP session's records
 * (HttpSink). Output: one candidate per (phrase, field) per message (at most
 * MAX_HIT_AGGREGATES_PER_MESSAGE), with the number of occurrences and the first occurrence's
 * context, handed to the CaptureCollector.
 */
import type { EvidenceBudget, EvidenceBuffer } from './evidence.js';
import type { HttpMessage, HttpRequest, HttpResponse, HttpSink, MessageEndInfo } from '../app-layer/http/index.js';
import { headerValue } from '../app-layer/http/index.js';
import { MAX_CAPTURE_HOST_CHARS, MAX_CAPTURE_METHOD_CHARS, MAX_CAPTURE_URL_CHARS, type CaptureField, type CaptureSource } from '../events/capture.js';
import { Counters, defineCounter } from '../events/counters.js';
import type { Direction, FlowInfo } from '../flow/stream.js';
import type { MatchDatabase } from '../match/engine.js';
import type { CompiledMatcher } from '../match/matcher.js';
import { PhraseScanner, type PhraseHit } from '../match/scanner.js';
import { createExtractor } from '../normalize/extract.js';
import type { Extractor, TextSink } from '../normalize/sink.js';
import { extractUrlText } from '../normalize/url.js';
import { holdCaptureText, type CaptureCollector, type CaptureText } from './captures.js';
import { ownedString } from '../events/owned-string.js';

/**
 * Request headers whose values are machine-made or private (credentials, cookies, negotiation,
 * caching, the previous page's URL): not scanned. Everything else (custom headers such as a
 * client's X-Note or X-Search) is text an application or a person put there.
 */
const UNSCANNED_REQUEST_HEADERS = new Set([
  'host', 'user-agent', 'accept', 'accept-language', 'accept-encoding', 'accept-charset', 'connection', 'keep-alive',
  'cookie', 'authorization', 'proxy-authorization', 'proxy-connection', 'referer', 'origin', 'content-type',
  'content-length', 'content-encoding', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'cache-control', 'pragma',
  'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since', 'if-range', 'range', 'expect', 'dnt',
  'upgrade-insecure-requests', 'x-requested-with', 'x-csrf-token', 'x-xsrf-token', 'sec-fetch-site', 'sec-fetch-mode',
  'sec-fetch-dest', 'sec-fetch-user', 'sec-ch-ua', 'sec-ch-ua-mobile', 'sec-ch-ua-platform', 'priority', 'via',
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip', 'forwarded', 'x-request-id', 'traceparent',
  'tracestate', 'content-md5', 'date', 'max-forwards', 'http2-settings', 'purpose', 'x-api-key',
]);

/** Requests remembered per flow so a response can say which URL it answered. Each keeps what its
 * captures need (`RequestInfo`), never the record's strings: those are slices of a request line
 * (16 KiB) or of an HTTP/2 header list (256 KiB), 2 MB and 12.5 MB per connection were measured. */
const MAX_REMEMBERED_REQUESTS = 64;

/**
 * Distinct (phrase, field) aggregates kept per message, each holding its first hit's context. A page
 * that holds every phrase of the dictionary kept 350-700 KB of them until its end, and HTTP/2 keeps
 * up to 256 messages open per connection (early responses 8 per flow): 119 MB per connection was
 * measured. The benchmark workload (10,000 phrases) names at most 120 in one message. Hits of
 * further phrases are counted (`capture.hits_per_message_limit`, each occurrence), while the
 * aggregates kept go on counting their repeats.
 */
export const MAX_HIT_AGGREGATES_PER_MESSAGE = 128;

const C_MESSAGES = defineCounter('inspect.http.messages');
const C_HITS_PER_MESSAGE_LIMIT = defineCounter('capture.hits_per_message_limit');
const C_NO_TEXT = defineCounter('inspect.http.body_not_text');

export interface InspectContext {
  /** Swapped as a whole on a dictionary reload: a message already being scanned keeps the matcher
   * (and database) it started with, the next message uses the new one, and no flow is dropped. */
  readonly matcher: CompiledMatcher;
  readonly database?: MatchDatabase;
  readonly counters: Counters;
  readonly collector: CaptureCollector;
  /** Keeps the pages of viewed captures (home renders them); none kept without it. */
  readonly evidence?: EvidenceBudget;
}

/** A remembered request: owned copies, a host or URL over its capture limit cut with the whole's
 * digest (`holdCaptureText`), a method two units past its limit (so the collector still sees it was cut, even where the bound
 * drops half a surrogate pair). */
interface RequestInfo {
  readonly url: CaptureText;
  readonly host?: CaptureText;
  readonly method: string;
}

interface Aggregate {
  phraseIndex: number;
  field: CaptureField;
  count: number;
  context: string;
  phrase: PhraseHit['phrase'];
}

/** Fields as scanner segment tags (PhraseHit.tag indexes this). */
const FIELDS: readonly CaptureField[] = ['url', 'search', 'request_header', 'request_body', 'response_body'];
const FIELD_TAGS = new Map(FIELDS.map((f, k) => [f, k]));
const fieldTag = (f: CaptureField): number => FIELD_TAGS.get(f)!;

/**
 * One message's scan: one phrase scanner whose segments (URL parts, headers, paragraphs) are
 * split apart and tagged with their field, hits aggregated per phrase and field.
 */
class MessageScan implements TextSink {
  readonly scanner: PhraseScanner;
  extractor: Extractor | undefined;
  evidence: EvidenceBuffer | undefined;
  bodySeen = false;
  /** By phraseIndex * FIELDS.length + field tag. */
  private readonly hits = new Map<number, Aggregate>();

  private readonly counters: Counters;

  constructor(ctx: InspectContext, field: CaptureField) {
    this.counters = ctx.counters;
    this.scanner = new PhraseScanner(ctx.matcher, (hit) => this.onHit(hit), { counters: ctx.counters, database: ctx.database, tag: fieldTag(field) });
  }

  /** Scans a complete piece of text as its own segment; what follows is `next`. */
  segment(text: string, next: CaptureField): void {
    this.scanner.write(text);
    this.scanner.split(fieldTag(next));
  }

  onText(text: string): void {
    this.scanner.write(text);
  }

  onBreak(): void {
    this.scanner.split();
  }

  private onHit(hit: PhraseHit): void {
    const key = hit.phraseIndex * FIELDS.length + hit.tag;
    const a = this.hits.get(key);
    if (a !== undefined) a.count++;
    else if (this.hits.size >= MAX_HIT_AGGREGATES_PER_MESSAGE) this.counters.inc(C_HITS_PER_MESSAGE_LIMIT);
    else this.hits.set(key, { phraseIndex: hit.phraseIndex, field: FIELDS[hit.tag], count: 1, context: hit.context, phrase: hit.phrase });
  }

  finish(): Aggregate[] {
    this.extractor?.end();
    this.scanner.end();
    return [...this.hits.values()];
  }
}

/** How the HTTP messages reached the inspector, when not as cleartext HTTP/1.x. */
export interface HttpCarrier {
  /** `http2` for HTTP/2 sessions. */
  readonly appProto?: 'http' | 'http2';
  /** The messages came out of a TLS connection Hark decrypted. */
  readonly decrypted?: boolean;
  /** The TLS server name: the capture's host when the request names none. */
  readonly sni?: string;
}

/**
 * Captures of responses that ended before any request arrived, waiting for it: a TAP delivers each
 * direction on its own port, and one port's packets can be processed milliseconds before the
 * other's, so a page can be complete before the request that asked for it. Bounded per flow; past
 * the bound, or at the end of the flow, they are emitted without the request's URL.
 */
const MAX_EARLY_RESPONSES = 8;
const C_EARLY_RESPONSE = defineCounter('http.response_before_request');

export class HttpInspector implements HttpSink {
  private readonly requests = new Map<number, RequestInfo>();
  private readonly scans = new Map<HttpMessage, MessageScan>();
  /** Emitters of early responses' captures, oldest first; each takes the request when it comes. */
  private readonly early: Array<(req: RequestInfo | undefined) => void> = [];

  constructor(private readonly flow: FlowInfo, private readonly ctx: InspectContext, private readonly carrier: HttpCarrier = {}) {}

  onRequest(req: HttpRequest): void {
    this.ctx.counters.inc(C_MESSAGES);
    const host = req.host ?? this.carrier.sni;
    const info: RequestInfo = {
      url: holdCaptureText(req.uri, MAX_CAPTURE_URL_CHARS),
      host: host === undefined ? undefined : holdCaptureText(host, MAX_CAPTURE_HOST_CHARS),
      method: ownedString(req.method, MAX_CAPTURE_METHOD_CHARS + 2),
    };
    this.requests.set(req.index, info);
    this.early.shift()?.(info);
    if (this.requests.size > MAX_REMEMBERED_REQUESTS) this.requests.delete(this.requests.keys().next().value as number);
    const fields: CaptureField[] = [];
    const texts: string[] = [];
    const url = extractUrlText(req.uri, this.ctx.counters);
    for (const s of url.path) fields.push('url'), texts.push(s);
    for (const s of url.query) fields.push('url'), texts.push(s);
    for (const s of url.search) fields.push('search'), texts.push(s);
    for (const [name, value] of req.headers) {
      if (!UNSCANNED_REQUEST_HEADERS.has(name.toLowerCase())) fields.push('request_header'), texts.push(value);
    }
    const scan = new MessageScan(this.ctx, fields.length > 0 ? fields[0] : 'request_body');
    this.scans.set(req, scan);
    for (let k = 0; k < texts.length; k++) scan.segment(texts[k], k + 1 < fields.length ? fields[k + 1] : 'request_body');
  }

  onResponse(res: HttpResponse): void {
    this.ctx.counters.inc(C_MESSAGES);
    if (res.interim) return;
    this.scans.set(res, new MessageScan(this.ctx, 'response_body'));
  }

  onBody(msg: HttpMessage, dir: Direction, chunk: Uint8Array): void {
    const scan = this.scans.get(msg);
    if (scan === undefined) return;
    if (!scan.bodySeen) {
      scan.bodySeen = true;
      const type = headerValue(msg.headers, 'content-type');
      scan.extractor = createExtractor(type, dir === 0 ? 'request' : 'response', scan, this.ctx.counters);
      if (scan.extractor === undefined) this.ctx.counters.inc(C_NO_TEXT);
      else if (dir === 1) scan.evidence = this.ctx.evidence?.open(type);
    }
    scan.extractor?.write(chunk);
    scan.evidence?.write(chunk);
  }

  onBodyGap(msg: HttpMessage): void {
    this.scans.get(msg)?.scanner.split();
  }

  onMessageEnd(msg: HttpMessage, dir: Direction, _info: MessageEndInfo, tsUs: number): void {
    const scan = this.scans.get(msg);
    if (scan === undefined) return;
    this.scans.delete(msg);
    const hits = scan.finish();
    if (hits.length === 0) {
      scan.evidence?.release();
      return;
    }
    const isRequest = msg.kind === 'request';
    const evidence = scan.evidence?.take();
    const emit = (req: RequestInfo | undefined): void => {
      const source: CaptureSource = isRequest ? 'typed' : 'viewed';
      for (const a of hits) {
        this.ctx.collector.add({
          flow: this.flow,
          dir,
          messageIndex: msg.index,
          source,
          field: a.field,
          host: req?.host,
          url: req?.url,
          method: req?.method,
          status: isRequest ? undefined : msg.status,
          phraseIndex: a.phraseIndex,
          phrase: a.phrase,
          count: a.count,
          context: a.context,
          tsUs: msg.tsUs > 0 ? msg.tsUs : tsUs,
          appProto: this.carrier.appProto,
          decrypted: this.carrier.decrypted,
          ...(evidence !== undefined && a.field === 'response_body' ? { evidence } : {}),
        });
      }
    };
    if (isRequest) return emit(this.requests.get(msg.index));
    if (msg.requestIndex >= 0) return emit(this.requests.get(msg.requestIndex));
    // no request yet: wait for the next one (the first page then goes with the first request)
    this.ctx.counters.inc(C_EARLY_RESPONSE);
    if (this.early.length >= MAX_EARLY_RESPONSES) this.early.shift()?.(undefined);
    this.early.push(emit);
  }

  /** The flow ended: early responses whose request never came are emitted as they are. */
  onClose(): void {
    for (const emit of this.early.splice(0)) emit(undefined);
  }
}

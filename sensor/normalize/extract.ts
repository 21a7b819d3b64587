/**
 * Normalize stage, extractor selection: Content-Type (or, when absent, the first body bytes) ->
 * the streaming extractor that turns that body into text. Input: the Content-Type header value
 * and the body's direction. Output: an `Extractor` writing to the given sink, or undefined for a
 * body that holds no human text (images, video, fonts, octet-stream, scripts, style sheets).
 * The caller labels the text: request bodies are typed text, response bodies viewed text.
 */

import { TextDecoder } from 'node:util';
import { defineCounter, Counters } from '../events/counters.js';
import { parseMediaType, sniffBom, TextDecodeStage, type MediaType } from './charset.js';
import { MultipartExtractor, UrlencodedExtractor } from './form.js';
import { HtmlExtractor } from './html.js';
import { JsonExtractor } from './json.js';
import type { Extractor, ExtractFormat, TextConsumer, TextSink } from './sink.js';

const C_SKIPPED_SCRIPT = defineCounter('normalize.extract.skipped_script');
const C_SKIPPED_BINARY = defineCounter('normalize.extract.skipped_binary');
const C_SNIFFED = {
  html: defineCounter('normalize.extract.sniffed_html'),
  xml: defineCounter('normalize.extract.sniffed_xml'),
  json: defineCounter('normalize.extract.sniffed_json'),
  form: defineCounter('normalize.extract.sniffed_form'),
  text: defineCounter('normalize.extract.sniffed_text'),
  binary: defineCounter('normalize.extract.sniffed_binary'),
} as const;

/**
 * Bytes read before choosing an extractor for a body without Content-Type. WHATWG MIME Sniffing
 * reads up to 1445; 512 is enough to see a doctype or tag, a JSON opener or binary bytes.
 */
export const SNIFF_BYTES = 512;

export type BodyDirection = 'request' | 'response';

type Kind = 'html' | 'xml' | 'json' | 'form' | 'multipart' | 'text' | 'script' | 'binary';

/** Code and style: text, but not text a person reads. */
const SCRIPT_TYPES = new Set([
  'application/javascript', 'application/x-javascript', 'application/ecmascript', 'application/x-ecmascript',
  'text/javascript', 'text/x-javascript', 'text/ecmascript', 'text/jscript', 'text/css', 'application/x-typescript',
]);
const JSON_TYPES = new Set([
  'application/json', 'text/json', 'application/x-json', 'application/x-ndjson', 'application/ndjson',
  'application/jsonl', 'application/json-seq', 'application/csp-report',
]);

function classify(essence: string): Kind {
  if (essence === 'text/html' || essence === 'application/xhtml+xml') return 'html';
  if (essence === 'application/x-www-form-urlencoded') return 'form';
  if (essence === 'multipart/form-data') return 'multipart';
  if (SCRIPT_TYPES.has(essence)) return 'script';
  if (JSON_TYPES.has(essence) || essence.endsWith('+json')) return 'json';
  if (essence === 'text/xml' || essence === 'application/xml' || essence.endsWith('+xml')) return 'xml';
  if (essence.startsWith('text/')) return 'text';
  return 'binary';
}

/** Plain text: the decoded characters as they are, then a break. */
class PassThrough implements TextConsumer {
  constructor(private readonly sink: TextSink) {}
  push(text: string): void {
    this.sink.onText(text);
  }
  finish(): void {
    this.sink.onBreak();
  }
}

/** text/plain, text/csv and other text: charset-decoded passthrough (BOM, charset, UTF-8). */
export class TextExtractor implements Extractor {
  readonly format = 'text';
  private readonly stage: TextDecodeStage;
  constructor(sink: TextSink, counters: Counters, charset?: string) {
    this.stage = new TextDecodeStage(new PassThrough(sink), counters, charset, 'none');
  }
  write(chunk: Uint8Array): void {
    this.stage.write(chunk);
  }
  end(): void {
    this.stage.end();
  }
}

function build(
  kind: Kind,
  media: MediaType | undefined,
  sink: TextSink,
  counters: Counters,
  nested: boolean,
): Extractor | undefined {
  const charset = media?.params.get('charset');
  switch (kind) {
    case 'html':
      return new HtmlExtractor(sink, counters, charset);
    case 'xml':
      return new HtmlExtractor(sink, counters, charset, { xml: true });
    case 'json':
      return new JsonExtractor(sink, counters, charset);
    case 'form':
      return new UrlencodedExtractor(sink, counters);
    case 'multipart':
      if (nested) return undefined;
      return new MultipartExtractor(media?.params.get('boundary'), sink, counters, createPartExtractor);
    case 'text':
      return new TextExtractor(sink, counters, charset);
    case 'script':
      counters.inc(C_SKIPPED_SCRIPT);
      return undefined;
    default:
      counters.inc(C_SKIPPED_BINARY);
      return undefined;
  }
}

/**
 * The extractor for a body, or undefined when it holds no human text. A missing or unparsable
 * Content-Type sniffs the first SNIFF_BYTES bytes (html, xml, json, form for requests, text,
 * or binary which is then discarded). The sink receives text as described in sink.ts.
 */
export function createExtractor(
  contentType: string | undefined,
  direction: BodyDirection,
  sink: TextSink,
  counters: Counters,
): Extractor | undefined {
  const media = contentType === undefined ? undefined : parseMediaType(contentType);
  if (media === undefined) return new SniffingExtractor(direction, sink, counters);
  return build(classify(media.essence), media, sink, counters, false);
}

/** Extractor for one multipart/form-data part (never another multipart: parts do not nest). */
export function createPartExtractor(contentType: string | undefined, sink: TextSink, counters: Counters): Extractor | undefined {
  const media = contentType === undefined ? undefined : parseMediaType(contentType);
  if (media === undefined) return new TextExtractor(sink, counters);
  return build(classify(media.essence), media, sink, counters, true);
}

// ---------------------------------------------------------------------------------------------
// Sniffing

/** Signatures of binary formats (WHATWG MIME Sniffing 6.1-6.3 and common others), at offset 0. */
const BINARY_MAGIC: readonly (readonly number[])[] = [
  [0x47, 0x49, 0x46, 0x38], // GIF8
  [0x89, 0x50, 0x4e, 0x47], // PNG
  [0xff, 0xd8, 0xff], // JPEG
  [0x52, 0x49, 0x46, 0x46], // RIFF (WebP, WAV, AVI)
  [0x25, 0x50, 0x44, 0x46, 0x2d], // %PDF-
  [0x50, 0x4b, 0x03, 0x04], // ZIP, docx, jar
  [0x1f, 0x8b, 0x08], // gzip
  [0x4f, 0x67, 0x67, 0x53], // OggS
  [0x1a, 0x45, 0xdf, 0xa3], // WebM / Matroska
  [0x77, 0x4f, 0x46, 0x46], // wOFF
  [0x77, 0x4f, 0x46, 0x32], // wOF2
  [0x4f, 0x54, 0x54, 0x4f], // OTTO
  [0x00, 0x61, 0x73, 0x6d], // wasm
];

/** Openers that mean HTML (WHATWG MIME Sniffing 7.1 "HTML" rows), matched case-insensitively. */
const HTML_OPENERS = [
  '<!doctype html', '<html', '<head', '<script', '<iframe', '<h1', '<div', '<font', '<table', '<a', '<style',
  '<title', '<b', '<body', '<br', '<p', '<!--',
];
/** `name=value&...` with no whitespace (one quantifier after the '=': no backtracking blow-up). */
const FORM_RE = /^[\w.*%+[\]-]+=\S*$/;

function isBinaryByte(b: number): boolean {
  // WHATWG MIME Sniffing "binary data byte": controls other than TAB LF FF CR ESC.
  return b <= 0x08 || b === 0x0b || (b >= 0x0e && b <= 0x1a) || (b >= 0x1c && b <= 0x1f);
}

/** What a body without Content-Type looks like, from its first bytes. */
export function sniffFormat(head: Uint8Array, direction: BodyDirection): 'html' | 'xml' | 'json' | 'form' | 'text' | 'binary' {
  const bom = sniffBom(head);
  let text: string;
  if (bom !== undefined) {
    text = new TextDecoder(bom.charset).decode(head.subarray(bom.length));
  } else {
    for (const magic of BINARY_MAGIC) {
      if (head.length >= magic.length && magic.every((b, k) => head[k] === b)) return 'binary';
    }
    // ISO media (MP4, MOV, HEIC): a box size, then "ftyp".
    if (head.length >= 12 && head[4] === 0x66 && head[5] === 0x74 && head[6] === 0x79 && head[7] === 0x70) return 'binary';
    for (let i = 0; i < head.length; i++) if (isBinaryByte(head[i])) return 'binary';
    text = Buffer.from(head.buffer, head.byteOffset, head.byteLength).toString('latin1');
  }
  const t = text.trimStart();
  const lower = t.slice(0, 16).toLowerCase();
  if (lower.startsWith('<?xml')) return /<html[\s>]/i.test(t) ? 'html' : 'xml';
  for (const opener of HTML_OPENERS) {
    if (lower.startsWith(opener)) {
      const next = lower.charCodeAt(opener.length);
      // The opener must end there: a space or '>' (WHATWG's "tag-terminating byte").
      if (Number.isNaN(next) || next === 62 || next === 32 || (next >= 9 && next <= 13)) return 'html';
    }
  }
  const c = t.charCodeAt(0);
  if (c === 123 || c === 91) return 'json';
  const lf = t.indexOf('\n');
  if (direction === 'request' && FORM_RE.test((lf < 0 ? t : t.slice(0, lf)).trimEnd())) return 'form';
  if (c === 60 && /^<[a-z!]/i.test(t)) return 'html';
  return 'text';
}

/** Holds the first SNIFF_BYTES bytes, chooses, then replays them into the chosen extractor. */
class SniffingExtractor implements Extractor {
  private inner: Extractor | undefined;
  private binary = false;
  private readonly head = new Uint8Array(SNIFF_BYTES);
  private headLen = 0;

  constructor(
    private readonly direction: BodyDirection,
    private readonly sink: TextSink,
    private readonly counters: Counters,
  ) {}

  get format(): ExtractFormat {
    return this.inner !== undefined ? this.inner.format : this.binary ? 'binary' : 'sniffing';
  }

  write(chunk: Uint8Array): void {
    if (this.inner !== undefined) return this.inner.write(chunk);
    if (this.binary) return;
    const take = Math.min(chunk.length, SNIFF_BYTES - this.headLen);
    this.head.set(chunk.subarray(0, take), this.headLen);
    this.headLen += take;
    if (this.headLen < SNIFF_BYTES) return;
    this.decide();
    if (take < chunk.length) this.write(chunk.subarray(take));
  }

  end(): void {
    if (this.inner === undefined && !this.binary && this.headLen > 0) this.decide();
    if (this.inner !== undefined) this.inner.end();
    else this.sink.onBreak();
  }

  private decide(): void {
    const head = this.head.subarray(0, this.headLen);
    const format = sniffFormat(head, this.direction);
    this.counters.inc(C_SNIFFED[format]);
    if (format === 'binary') {
      this.binary = true;
      return;
    }
    this.inner = build(format, undefined, this.sink, this.counters, false);
    if (this.inner !== undefined && head.length > 0) this.inner.write(head);
  }
}

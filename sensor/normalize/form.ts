/**
 * Normalize stage, forms: request bodies -> the text a person typed into a form, streaming.
 * Input: application/x-www-form-urlencoded or multipart/form-data body bytes, cut anywhere.
 * Output: each field value as its own segment (onBreak between fields); field names are dropped,
 * and values of fields named like passwords or tokens are skipped (url.ts PRIVATE_FIELD_RE).
 * State: one percent escape and one UTF-8 sequence (urlencoded), one part header block of at most
 * MAX_PART_HEADER_BYTES and a delimiter-sized carry (multipart). Never the whole body.
 */

import { defineAnomaly, defineCounter, Counters } from '../events/counters.js';
import { decodeUtf8Fallback, parseHeaderParams } from './charset.js';
import { JsonExtractor } from './json.js';
import type { Extractor, TextSink } from './sink.js';
import { decodeUrlComponent, PercentDecoder, PRIVATE_FIELD_RE } from './url.js';

const C_PRIVATE = defineCounter('normalize.form.private_field_skipped');
const C_NAME_CUT = defineCounter('normalize.form.name_truncated');
const C_JSON_BODY = defineCounter('normalize.form.json_body');
const C_NO_BOUNDARY = defineAnomaly('normalize.multipart.no_boundary');
const C_HEADER_TOO_LONG = defineAnomaly('normalize.multipart.header_too_long');
const C_FILE_SKIPPED = defineCounter('normalize.multipart.file_skipped');
const C_PART_SKIPPED = defineCounter('normalize.multipart.part_skipped');
const C_NO_DELIMITER = defineAnomaly('normalize.multipart.no_delimiter');
const C_TRUNCATED = defineAnomaly('normalize.multipart.truncated');
const C_BAD_DELIMITER = defineAnomaly('normalize.multipart.bad_delimiter');

/**
 * A field name is read up to this many bytes: names are identifiers. A field without '=' is taken
 * as text, so this also bounds such a field's text (counted when it bites).
 */
const MAX_FORM_NAME_BYTES = 256;

/**
 * Part headers of a browser's form part are ~100-300 bytes (Content-Disposition with a long file
 * name, Content-Type). A longer block is not a form part: its part is skipped.
 */
export const MAX_PART_HEADER_BYTES = 8192;
/** RFC 2046 5.1.1 allows 70; some clients go a little beyond. Longer is refused. */
const MAX_BOUNDARY_LEN = 200;
/** Bytes of transport padding allowed after a delimiter before its CRLF (RFC 2046 5.1.1). */
const MAX_DELIMITER_PADDING = 256;

// ---------------------------------------------------------------------------------------------
// application/x-www-form-urlencoded

/**
 * `a=1&b=our+secret` -> "1" | "our secret". A body that starts with '{' or '[' is JSON sent with
 * the form type (common with script clients) and is handed to the JSON extractor instead.
 */
export class UrlencodedExtractor implements Extractor {
  readonly format = 'form';
  private readonly dec: PercentDecoder;
  private started = false;
  private json: JsonExtractor | undefined;
  private inValue = false;
  private skip = false;
  private nameBytes = 0;

  constructor(
    private readonly sink: TextSink,
    private readonly counters: Counters,
  ) {
    this.dec = new PercentDecoder(true, counters);
  }

  write(chunk: Uint8Array): void {
    if (this.json !== undefined) return this.json.write(chunk);
    let i = 0;
    const n = chunk.length;
    if (!this.started) {
      while (i < n && (chunk[i] === 32 || chunk[i] === 9 || chunk[i] === 10 || chunk[i] === 13)) i++;
      if (i === n) return;
      this.started = true;
      if (chunk[i] === 123 || chunk[i] === 91) {
        this.counters.inc(C_JSON_BODY);
        this.json = new JsonExtractor(this.sink, this.counters);
        return this.json.write(chunk.subarray(i));
      }
    }
    const dec = this.dec;
    for (; i < n; i++) {
      const c = chunk[i];
      if (c === 38) {
        this.endField();
      } else if (this.inValue) {
        if (!this.skip) dec.byte(c);
      } else if (c === 61) {
        dec.end();
        this.inValue = true;
        this.skip = PRIVATE_FIELD_RE.test(dec.take());
        if (this.skip) this.counters.inc(C_PRIVATE);
      } else if (this.nameBytes < MAX_FORM_NAME_BYTES) {
        this.nameBytes++;
        dec.byte(c);
      } else if (this.nameBytes++ === MAX_FORM_NAME_BYTES) {
        this.counters.inc(C_NAME_CUT);
      }
    }
    if (this.inValue && !this.skip) {
      const text = dec.take();
      if (text.length > 0) this.sink.onText(text);
    }
  }

  end(): void {
    if (this.json !== undefined) return this.json.end();
    this.endField();
  }

  private endField(): void {
    // A field without '=' has only a name: take it as the text (`?our+secret` style).
    if (!this.skip) {
      this.dec.end();
      const text = this.dec.take();
      if (text.length > 0) this.sink.onText(text);
    }
    this.sink.onBreak();
    this.inValue = false;
    this.skip = false;
    this.nameBytes = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// multipart/form-data

/**
 * Chooses the extractor for one part from its Content-Type (undefined: skip the part). Given by
 * extract.ts, which must not return a multipart extractor (parts do not nest here).
 */
export type PartExtractorFactory = (
  contentType: string | undefined,
  sink: TextSink,
  counters: Counters,
) => Extractor | undefined;

const M_PREAMBLE = 0;
const M_AFTER_DELIM = 1;
const M_DELIM_LINE = 2;
const M_HEADERS = 3;
const M_BODY = 4;
const M_EPILOGUE = 5;

const CRLF = Uint8Array.of(13, 10);

/**
 * RFC 7578 form data. Parts without a filename are text (by their Content-Type, default
 * text/plain UTF-8); a file part is read only when its type is textual (text/*, JSON, XML), and
 * its file name is emitted as a segment of its own either way. Other files are skipped (counted).
 * Parts with a base64 or quoted-printable Content-Transfer-Encoding are skipped (RFC 7578 4.7
 * deprecates it; browsers never send it).
 */
export class MultipartExtractor implements Extractor {
  readonly format = 'multipart';
  private readonly delim: Buffer | undefined;
  private state = M_PREAMBLE;
  private readonly carry: Uint8Array;
  private carryLen = 0;
  private readonly header = new Uint8Array(MAX_PART_HEADER_BYTES);
  private headerLen = 0;
  private lineLen = 0;
  private dashes = 0;
  private padding = 0;
  private part: Extractor | undefined;
  private sawDelimiter = false;

  /** `boundary`: the Content-Type boundary parameter (undefined or invalid: nothing is read). */
  constructor(
    boundary: string | undefined,
    private readonly sink: TextSink,
    private readonly counters: Counters,
    private readonly partFactory: PartExtractorFactory,
  ) {
    if (boundary === undefined || boundary.length === 0 || boundary.length > MAX_BOUNDARY_LEN) {
      counters.inc(C_NO_BOUNDARY);
      this.carry = new Uint8Array(0);
      this.state = M_EPILOGUE;
      return;
    }
    this.delim = Buffer.from('\r\n--' + boundary, 'latin1');
    this.carry = new Uint8Array(this.delim.length);
    // The first delimiter may open the body without a CRLF before it.
    this.carry.set(CRLF);
    this.carryLen = 2;
  }

  write(chunk: Uint8Array): void {
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const n = buf.length;
    let i = 0;
    while (i < n) {
      switch (this.state) {
        case M_PREAMBLE:
        case M_BODY: {
          const next = this.scan(buf, i);
          if (next < 0) return;
          this.onDelimiter();
          i = next;
          break;
        }
        case M_AFTER_DELIM: {
          const c = buf[i];
          if (c === 45 && this.dashes === 0) {
            this.dashes = 1;
            i++;
            break;
          }
          if (this.dashes === 1 && c === 45) {
            this.state = M_EPILOGUE;
            return;
          }
          this.dashes = 0;
          this.padding = 0;
          this.state = M_DELIM_LINE;
          break;
        }
        case M_DELIM_LINE: {
          const lf = buf.indexOf(10, i);
          const end = lf < 0 ? n : lf;
          this.padding += end - i;
          if (this.padding > MAX_DELIMITER_PADDING) {
            // Not a delimiter line: the boundary text went on. Skip to the next delimiter.
            this.counters.inc(C_BAD_DELIMITER);
            this.beginBody(undefined);
            break;
          }
          if (lf < 0) return;
          this.headerLen = 0;
          this.lineLen = 0;
          this.state = M_HEADERS;
          i = lf + 1;
          break;
        }
        case M_HEADERS:
          i = this.headers(buf, i);
          break;
        default: // M_EPILOGUE
          return;
      }
    }
  }

  end(): void {
    if (this.state === M_BODY || this.state === M_HEADERS || this.state === M_DELIM_LINE || this.state === M_AFTER_DELIM) {
      this.counters.inc(C_TRUNCATED);
      if (this.state === M_BODY && this.carryLen > 0) this.emitBody(this.carry.subarray(0, this.carryLen));
      this.endPart();
    } else if (this.state === M_PREAMBLE && this.delim !== undefined && !this.sawDelimiter) {
      this.counters.inc(C_NO_DELIMITER);
    }
    this.state = M_EPILOGUE;
    this.sink.onBreak();
  }

  /**
   * PREAMBLE / BODY: passes bytes before the next delimiter to the part, keeping the last
   * delimiter-length-1 bytes in `carry` while a delimiter could still start there. Returns the
   * index after the delimiter, or -1 when `buf` is used up.
   */
  private scan(buf: Buffer, pos: number): number {
    const d = this.delim!;
    const keep = d.length - 1;
    if (this.carryLen > 0) {
      const take = Math.min(keep, buf.length - pos);
      const win = Buffer.allocUnsafe(this.carryLen + take);
      win.set(this.carry.subarray(0, this.carryLen));
      win.set(buf.subarray(pos, pos + take), this.carryLen);
      const at = win.indexOf(d);
      if (at >= 0) {
        // A delimiter is longer than `take`, so it starts inside the carry.
        this.emitBody(win.subarray(0, at));
        const next = pos + at + d.length - this.carryLen;
        this.carryLen = 0;
        return next;
      }
      if (take < keep) {
        // The chunk is too short to rule out a delimiter: keep the window's tail.
        const cut = Math.max(0, win.length - keep);
        if (cut > 0) this.emitBody(win.subarray(0, cut));
        this.carry.set(win.subarray(cut));
        this.carryLen = win.length - cut;
        return -1;
      }
      this.emitBody(this.carry.subarray(0, this.carryLen));
      this.carryLen = 0;
    }
    const at = buf.indexOf(d, pos);
    if (at >= 0) {
      if (at > pos) this.emitBody(buf.subarray(pos, at));
      return at + d.length;
    }
    const cut = Math.max(pos, buf.length - keep);
    if (cut > pos) this.emitBody(buf.subarray(pos, cut));
    this.carry.set(buf.subarray(cut));
    this.carryLen = buf.length - cut;
    return -1;
  }

  private emitBody(bytes: Uint8Array): void {
    if (this.state === M_BODY && this.part !== undefined && bytes.length > 0) this.part.write(bytes);
  }

  private onDelimiter(): void {
    this.sawDelimiter = true;
    if (this.state === M_BODY) this.endPart();
    this.state = M_AFTER_DELIM;
    this.dashes = 0;
  }

  private endPart(): void {
    if (this.part !== undefined) this.part.end();
    else this.sink.onBreak();
    this.part = undefined;
  }

  /** Reads header bytes up to the empty line (CRLF or bare LF line ends). */
  private headers(buf: Buffer, pos: number): number {
    const n = buf.length;
    for (let i = pos; i < n; i++) {
      const c = buf[i];
      if (c === 10) {
        if (this.lineLen === 0) {
          this.beginBody(this.header.subarray(0, this.headerLen));
          return i + 1;
        }
        this.lineLen = 0;
      } else if (c !== 13) {
        this.lineLen++;
      }
      if (this.headerLen === MAX_PART_HEADER_BYTES) {
        this.counters.inc(C_HEADER_TOO_LONG);
        this.beginBody(undefined);
        return i;
      }
      this.header[this.headerLen++] = c;
    }
    return n;
  }

  /** Chooses the part's extractor from its header block (undefined: skip the part). */
  private beginBody(header: Uint8Array | undefined): void {
    this.state = M_BODY;
    this.carryLen = 0;
    this.part = header === undefined ? undefined : this.partFor(decodeUtf8Fallback(header, this.counters));
  }

  private partFor(headerText: string): Extractor | undefined {
    let disposition = '';
    let contentType: string | undefined;
    let encoding = '';
    for (const line of headerText.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-disposition') disposition = value;
      else if (name === 'content-type') contentType = value;
      else if (name === 'content-transfer-encoding') encoding = value.toLowerCase();
    }
    const semi = disposition.indexOf(';');
    const params = semi < 0 ? new Map<string, string>() : parseHeaderParams(disposition, semi, false);
    const fieldName = params.get('name') ?? '';
    if (PRIVATE_FIELD_RE.test(fieldName)) {
      this.counters.inc(C_PRIVATE);
      return undefined;
    }
    const filename = fileNameOf(params, this.counters);
    if (filename !== undefined && filename.length > 0) {
      this.sink.onBreak();
      this.sink.onText(filename);
      this.sink.onBreak();
    }
    if (encoding !== '' && encoding !== '7bit' && encoding !== '8bit' && encoding !== 'binary') {
      this.counters.inc(C_PART_SKIPPED);
      return undefined;
    }
    if (filename !== undefined && contentType === undefined) {
      this.counters.inc(C_FILE_SKIPPED);
      return undefined;
    }
    const part = this.partFactory(contentType ?? 'text/plain', this.sink, this.counters);
    if (part === undefined) this.counters.inc(filename !== undefined ? C_FILE_SKIPPED : C_PART_SKIPPED);
    return part;
  }
}

/** `filename*=UTF-8''our%20secret.txt` (RFC 5987) over `filename="..."`; path dropped. */
function fileNameOf(params: Map<string, string>, counters: Counters): string | undefined {
  let name = params.get('filename');
  const ext = params.get('filename*');
  if (ext !== undefined) {
    const q = ext.indexOf("''");
    name = decodeUrlComponent(q < 0 ? ext : ext.slice(q + 2), false, counters);
  }
  if (name === undefined) return undefined;
  // Old IE sends the full client path.
  const slash = Math.max(name.lastIndexOf('\\'), name.lastIndexOf('/'));
  return (slash >= 0 ? name.slice(slash + 1) : name).trim();
}

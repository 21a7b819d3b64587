/**
 * Normalize stage contracts: what every content extractor (html, json, form, multipart, text)
 * implements and what it calls. Input: decoded body bytes through `Extractor.write`, in order, cut
 * anywhere. Output: text through `TextSink.onText`, with `onBreak` between segments that a phrase
 * must not span (two form fields, two JSON strings, an alt text and the paragraph around it).
 */

/**
 * Where extracted text goes. Call order: any number of `onText` and `onBreak` in stream order, and
 * `Extractor.end` always finishes with one `onBreak`. Guarantees:
 * - Concatenating the `onText` strings between two breaks gives one segment's text; how a segment
 *   is cut into `onText` calls depends on chunking and carries no meaning.
 * - Consecutive breaks (and a break at the very start) mean the same as one break: a sink must
 *   treat empty segments as absent.
 * - Whitespace is passed as found (HTML text included, see html.ts): a sink or matcher treats any
 *   run of whitespace as one word separator. Markup that separates words visually gives at least
 *   one U+0020; markup that does not (inline tags) gives nothing.
 * - Text has no lone surrogates: byte decoders never make one, HTML maps `&#xD800;` to U+FFFD and
 *   JSON pairs `\uD83D\uDE00` or maps an unpaired half to U+FFFD.
 */
export interface TextSink {
  onText(text: string): void;
  onBreak(): void;
}

/** A streaming extractor. `write` never keeps a reference to `chunk` after it returns. */
export interface Extractor {
  /** What the extractor was chosen for (a sniffing extractor reports what it found). */
  readonly format: ExtractFormat;
  write(chunk: Uint8Array): void;
  /** Flushes held bytes, then calls `onBreak` once. No `write` follows. */
  end(): void;
}

export type ExtractFormat = 'html' | 'xml' | 'text' | 'json' | 'form' | 'multipart' | 'sniffing' | 'binary';

/** Second stage of the text extractors: receives decoded text, cut anywhere. */
export interface TextConsumer {
  push(text: string): void;
  /** End of input: resolve held characters, then `onBreak`. */
  finish(): void;
}

/**
 * Bound on what a `SegmentCollector` keeps: enough for a test or one capture's context, not a
 * buffer for a whole body. Text beyond it is dropped and `truncated` is set.
 */
export const MAX_COLLECTED_CHARS = 1 << 20;

/** A sink that keeps the segments as strings (tests, and captures that want the text itself). */
export class SegmentCollector implements TextSink {
  readonly segments: string[] = [];
  truncated = false;
  private current = '';
  private total = 0;

  onText(text: string): void {
    if (this.total + text.length > MAX_COLLECTED_CHARS) {
      this.truncated = true;
      text = text.slice(0, MAX_COLLECTED_CHARS - this.total);
    }
    this.total += text.length;
    this.current += text;
  }

  onBreak(): void {
    if (this.current.length > 0) this.segments.push(this.current);
    this.current = '';
  }

  /** Segments so far, including an unfinished last one. */
  all(): string[] {
    return this.current.length > 0 ? [...this.segments, this.current] : [...this.segments];
  }
}

/**
 * An HttpSink that shows every request to an observer (NTLM identity, the domain policy on the
 * Host header) before handing everything on, unchanged, to the sink behind it (the inspector).
 */
import type { Direction } from '../../flow/stream.js';
import type { HttpMessage, HttpParserEvent, HttpRequest, HttpResponse, HttpSink, MessageEndInfo } from './session.js';

export class ObservedHttpSink implements HttpSink {
  constructor(private readonly inner: HttpSink, private readonly observe: (req: HttpRequest) => void) {}

  onRequest(req: HttpRequest): void {
    this.observe(req);
    this.inner.onRequest(req);
  }

  onResponse(res: HttpResponse): void {
    this.inner.onResponse(res);
  }

  onBody(msg: HttpMessage, dir: Direction, chunk: Uint8Array, tsUs: number): void {
    this.inner.onBody(msg, dir, chunk, tsUs);
  }

  onBodyGap(msg: HttpMessage, dir: Direction, len: number, tsUs: number): void {
    this.inner.onBodyGap?.(msg, dir, len, tsUs);
  }

  onMessageEnd(msg: HttpMessage, dir: Direction, info: MessageEndInfo, tsUs: number): void {
    this.inner.onMessageEnd(msg, dir, info, tsUs);
  }

  onClose(): void {
    this.inner.onClose?.();
  }

  onParserEvent(event: HttpParserEvent): void {
    this.inner.onParserEvent?.(event);
  }
}

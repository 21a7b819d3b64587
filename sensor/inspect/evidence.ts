/**
 * Evidence: the decoded response body (an HTML or text page, after de-chunking and decompression)
 * of a message that produced a capture, so home can show the page as the user received it rather
 * than re-fetch the URL. Input: body chunks of responses being scanned. Output: an `Evidence` on
 * the capture candidates of that message. Bounded twice: per message (home's limit, the rest is
 * cut and flagged) and in total across every message in flight (the budget; a message over it
 * keeps no evidence, counted).
 */
import type { Evidence } from '../events/capture.js';
import { defineCounter, type Counters } from '../events/counters.js';

/** Home refuses bodies over 512 KiB (home/PROTOCOL.md): keep no more. */
export const EVIDENCE_MAX_BYTES = 512 * 1024;
/** Evidence held for all messages in flight at once: 128 pages at the per-message maximum. */
export const EVIDENCE_BUDGET_BYTES = 64 << 20;

const C_KEPT = defineCounter('capture.evidence_kept');
const C_TRUNCATED = defineCounter('capture.evidence_truncated');
const C_OVER_BUDGET = defineCounter('capture.evidence_over_budget');

/** Content types worth a picture: what a browser renders as a page. */
const PAGE_TYPES = /^\s*(text\/html|application\/xhtml\+xml|text\/plain)\s*(;|$)/i;

export type { Evidence };

/** Bytes of evidence held by every message in flight. */
export class EvidenceBudget {
  held = 0;
  constructor(readonly limitBytes: number = EVIDENCE_BUDGET_BYTES, readonly counters?: Counters) {}

  /** A collector for one response with this content type, or undefined when it is not a page. */
  open(contentType: string | undefined): EvidenceBuffer | undefined {
    if (contentType === undefined || !PAGE_TYPES.test(contentType)) return undefined;
    return new EvidenceBuffer(this, contentType);
  }
}

export class EvidenceBuffer {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private truncated = false;
  private dropped = false;

  constructor(private readonly budget: EvidenceBudget, private readonly contentType: string) {}

  write(chunk: Uint8Array): void {
    if (this.dropped) return;
    const room = EVIDENCE_MAX_BYTES - this.bytes;
    if (room <= 0) {
      this.truncated = true;
      return;
    }
    const take = chunk.length <= room ? chunk.length : room;
    if (this.budget.held + take > this.budget.limitBytes) {
      this.budget.counters?.inc(C_OVER_BUDGET);
      this.release();
      this.dropped = true;
      return;
    }
    // copy: the chunk is a view into a buffer the HTTP session reuses
    this.chunks.push(Buffer.from(chunk.subarray(0, take)));
    this.bytes += take;
    this.budget.held += take;
    if (take < chunk.length) this.truncated = true;
  }

  /** The evidence (and its bytes leave the budget), or undefined when there is none. */
  take(): Evidence | undefined {
    if (this.dropped || this.bytes === 0) {
      this.release();
      return undefined;
    }
    const body = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.bytes);
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(this.contentType)?.[1];
    const out: Evidence = { contentType: this.contentType.split(';')[0].trim().toLowerCase(), ...(charset !== undefined ? { charset } : {}), body, truncated: this.truncated };
    this.budget.counters?.inc(C_KEPT);
    if (this.truncated) this.budget.counters?.inc(C_TRUNCATED);
    this.release();
    return out;
  }

  /** Gives the bytes back without making evidence (the message had no capture). */
  release(): void {
    this.budget.held -= this.bytes;
    this.bytes = 0;
    this.chunks = [];
  }
}

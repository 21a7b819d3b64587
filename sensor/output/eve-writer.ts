/**
 * EVE-style JSON lines file: one event object per line (flows, captures, and later tls / dns /
 * health), field names compatible with Suricata's EVE where they overlap so Filebeat, Logstash and
 * Splunk pipelines ingest it. Buffered; `flush()` writes, `close()` flushes and closes. The file
 * is created mode 0600: events carry personal data.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

/** Bytes buffered before a write(2): large enough to batch, small enough to lose little on a crash. */
const FLUSH_BYTES = 64 * 1024;

export interface EventSink {
  write(event: object): void;
  flush(): void;
  close(): void;
}

export class JsonLinesWriter implements EventSink {
  private fd: number;
  private parts: string[] = [];
  private size = 0;
  written = 0;

  /** `path` '-' writes to standard output. */
  constructor(readonly path: string) {
    this.fd = path === '-' ? 1 : openSync(path, 'a', 0o600);
  }

  write(event: object): void {
    const line = `${JSON.stringify(event)}\n`;
    this.parts.push(line);
    this.size += line.length;
    this.written++;
    if (this.size >= FLUSH_BYTES) this.flush();
  }

  flush(): void {
    if (this.parts.length === 0) return;
    const data = this.parts.join('');
    this.parts = [];
    this.size = 0;
    writeSync(this.fd, data);
  }

  close(): void {
    this.flush();
    if (this.fd > 2) closeSync(this.fd);
    this.fd = -1;
  }
}

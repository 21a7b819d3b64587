/**
 * Writes each TCP direction's reassembled bytes to its own file, as tcpflow does, for `hark flows
 * --dump DIR`. Names follow tcpflow's (`SRCIP.SRCPORT-DSTIP.DSTPORT`, IPv4 octets and ports zero
 * padded) so the two can be compared; a later flow on the same addresses and ports gets
 * `c<flow id>` appended. Holes (reassembly gaps) are left as sparse zero ranges at their offsets,
 * like tcpflow. Bytes are buffered per direction and written with positional writes; files are
 * opened only to flush, so thousands of concurrent flows do not exhaust file descriptors.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from '../store/private-dir.js';
import type { CloseReason, Direction, FlowInfo, StreamConsumer, StreamFactory } from '../flow/stream.js';

/** Bytes buffered per direction before a write. */
const FLUSH_BYTES = 256 * 1024;

function pad(ip: string): string {
  if (ip.includes(':')) return ip; // IPv6 as printed
  return ip.split('.').map((o) => o.padStart(3, '0')).join('.');
}

export function tcpflowName(srcIp: string, srcPort: number, dstIp: string, dstPort: number): string {
  return `${pad(srcIp)}.${String(srcPort).padStart(5, '0')}-${pad(dstIp)}.${String(dstPort).padStart(5, '0')}`;
}

class DirectionFile {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private position = 0; // file offset of the first buffered byte
  private created = false;

  constructor(readonly path: string) {}

  data(bytes: Uint8Array): void {
    this.chunks.push(Uint8Array.prototype.slice.call(bytes));
    this.buffered += bytes.length;
    if (this.buffered >= FLUSH_BYTES) this.flush();
  }

  gap(len: number): void {
    this.flush();
    this.position += len;
  }

  flush(): void {
    if (this.buffered === 0 && this.created) return;
    const fd = openSync(this.path, this.created ? 'r+' : 'w', 0o600);
    this.created = true;
    try {
      for (const c of this.chunks) {
        writeSync(fd, c, 0, c.length, this.position);
        this.position += c.length;
      }
    } finally {
      closeSync(fd);
    }
    this.chunks = [];
    this.buffered = 0;
  }

  get hasData(): boolean {
    return this.created || this.buffered > 0;
  }
}

export class StreamDump implements StreamFactory {
  private readonly used = new Set<string>();
  filesWritten = 0;

  constructor(private readonly dir: string) {
    ensurePrivateDir(dir);
  }

  open(flow: FlowInfo): StreamConsumer {
    const names = [tcpflowName(flow.srcIp, flow.srcPort, flow.dstIp, flow.dstPort), tcpflowName(flow.dstIp, flow.dstPort, flow.srcIp, flow.srcPort)];
    const files = names.map((n) => {
      const name = this.used.has(n) ? `${n}c${flow.flowId}` : n;
      this.used.add(name);
      return new DirectionFile(join(this.dir, name));
    });
    return {
      data: (dir: Direction, bytes: Uint8Array) => files[dir].data(bytes),
      gap: (dir: Direction, len: number) => files[dir].gap(len),
      end: (_reason: CloseReason) => {
        for (const f of files) {
          if (f.hasData) {
            f.flush();
            this.filesWritten++;
          }
        }
      },
    };
  }
}

/**
 * The one place that hands stage N's output to stage N+1: capture -> decode -> flow -> consumers.
 * Input: frames from any packet source (`packet` has the file reader's `PacketHandler` shape).
 * Output: whatever the caller plugged in: a `StreamFactory` for TCP bytes, a `DatagramSink` for
 * UDP, a `FlowEndSink` for finished flows. A bug that throws on some packet is caught here, counted
 * (`pipeline.exception`) and logged at a limited rate; the next packet goes on.
 */
import { readCaptureFile, type ReadOptions, type ReadSummary } from './capture/file-reader.js';
import { Decoder } from './decode/decoder.js';
import { DuplicateFilter } from './decode/duplicates.js';
import { Counters, defineCounter } from './events/counters.js';
import { DEFAULT_FLOW_LIMITS, FlowTable, type CaptureBypassSink, type FlowEndSink, type FlowLimits } from './flow/flow-table.js';
import type { DatagramSink, StreamFactory } from './flow/stream.js';
import { LocalityBatcher } from './workers/locality.js';

const C_EXCEPTION = defineCounter('pipeline.exception');
/**
 * Read buffer for capture files. The file is still read 512 KiB at a time; the bigger buffer keeps
 * each packet in place for this many bytes of capture, so reassembly can retain the bytes it
 * delivered by reference and copy only the few still needed when the buffer comes round again.
 */
const FILE_WINDOW_BYTES = 16 << 20;
/** Exceptions printed in full before only counting them. */
const MAX_EXCEPTION_LOGS = 5;

export interface PipelineOptions {
  readonly streams?: StreamFactory;
  readonly datagrams?: DatagramSink;
  readonly flowEnded?: FlowEndSink;
  readonly flowLimits?: FlowLimits;
  readonly counters?: Counters;
  /** Drop mirror-port duplicate copies (default true; false for captures known to be clean). */
  readonly dropDuplicates?: boolean;
  /**
   * Frames per connection-grouped batch (workers/locality.ts) for capture files and
   * `localityBatcher`; default 0: every frame in file order. Grouping pays where each packet
   * touches much per-connection state (app layers, matching: Sensor turns it on); for bare
   * reassembly it costs more than it saves (the frames are then read out of order).
   */
  readonly localityFrames?: number;
  /** Flows whose consumer asks for it stop being reassembled (default true; see BYPASS in flow/stream.ts). */
  readonly bypass?: boolean;
  /** Told of each TCP flow bypassed, with the frame that made it, so a capture thread drops the flow's later frames (workers/bypass-table.ts). */
  readonly captureBypass?: CaptureBypassSink;
}

export class Pipeline {
  readonly counters: Counters;
  readonly decoder: Decoder;
  readonly flows: FlowTable;
  private readonly duplicates: DuplicateFilter | undefined;
  private readonly localityFrames: number;
  private readonly captureBypass: CaptureBypassSink | undefined;
  private exceptionsLogged = 0;

  constructor(opts: PipelineOptions = {}) {
    this.counters = opts.counters ?? new Counters();
    this.decoder = new Decoder(this.counters);
    const bypass = opts.bypass !== false;
    this.captureBypass = bypass ? opts.captureBypass : undefined;
    this.flows = new FlowTable(this.counters, opts.streams, opts.datagrams, opts.flowEnded, opts.flowLimits ?? DEFAULT_FLOW_LIMITS, bypass, this.captureBypass);
    this.duplicates = opts.dropDuplicates === false ? undefined : new DuplicateFilter(this.counters);
    this.localityFrames = opts.localityFrames ?? 0;
  }

  /** A batcher that hands this pipeline connection-grouped batches (the caller flushes it). */
  localityBatcher(frames = this.localityFrames): LocalityBatcher | undefined {
    return frames > 0 ? new LocalityBatcher(this.packet, this.flows, frames) : undefined;
  }

  /** One captured frame. Same signature as the file reader's handler, so it can be passed directly. */
  readonly packet = (linkType: number, buf: Uint8Array, off: number, capLen: number, origLen: number, tsUs: number, ifIndex: number): void => {
    try {
      if (this.decoder.decodeFrame(linkType, buf, off, capLen, tsUs, ifIndex, origLen)) {
        const p = this.decoder.packet;
        if (this.duplicates === undefined || !this.duplicates.isDuplicate(p)) {
          const flows = this.flows;
          flows.packet(p);
          if (flows.bypassedNow >= 0) {
            const fd = flows.bypassedNow;
            flows.bypassedNow = -1;
            this.captureBypass!.bypassed(fd >> 1, fd & 1, linkType, buf, off, capLen, tsUs);
          }
        }
      }
    } catch (err) {
      this.counters.inc(C_EXCEPTION);
      if (this.exceptionsLogged++ < MAX_EXCEPTION_LOGS) {
        process.emitWarning(`hark: packet processing failed (counted as pipeline.exception): ${(err as Error)?.stack ?? String(err)}`);
      }
    }
  };

  /** End of input: flushes every flow. */
  finish(): void {
    this.flows.flush();
  }

  /** Reads a capture file through the pipeline and flushes it. */
  runFile(path: string, opts: ReadOptions = {}): ReadSummary {
    const flows = this.flows;
    const theirs = opts.onOverwrite;
    const batcher = this.localityBatcher();
    const onOverwrite = (buf: Uint8Array, from: number, to: number): void => {
      // frames still waiting in the batch are handed over while their bytes are intact
      batcher?.overwrite(buf, from, to);
      flows.sourceOverwrite(buf, from, to);
      theirs?.(buf, from, to);
    };
    try {
      let summary: ReadSummary;
      try {
        summary = readCaptureFile(path, batcher?.add ?? this.packet, { ...opts, windowBytes: opts.windowBytes ?? FILE_WINDOW_BYTES, onOverwrite });
      } finally {
        // a file that ends in an error still has everything before the error processed
        batcher?.flush();
      }
      this.finish();
      return summary;
    } finally {
      flows.sourceOverwrite(undefined, 0, 0);
    }
  }
}

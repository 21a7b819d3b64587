/**
 * Protocol detection: which app-layer parser gets a TCP flow. Input: the first bytes of each
 * direction. Output: the chosen protocol's `StreamConsumer`, fed everything seen so far (in
 * arrival order) and then everything after. Each protocol's probe says match / no-match /
 * need-more; bytes are held until one matches or all refuse (bounded: PROBE_MAX_BYTES per
 * direction), so a flow is never given to a parser on a guess. A flow no protocol takes is
 * bypassed (see BYPASS), and so is one whose protocol asks for it.
 */
import { Counters, defineCounter } from '../events/counters.js';
import { BYPASS, type BypassedBytes, type CloseReason, type Direction, type FlowInfo, type StreamConsumer, type StreamFactory } from '../flow/stream.js';

export type ProbeResult = 'match' | 'no-match' | 'need-more';

export interface AppLayerProtocol {
  readonly name: string;
  probe(dir: Direction, bytes: Uint8Array): ProbeResult;
  create(flow: FlowInfo): StreamConsumer;
}

/** Bytes held per direction while probing; a protocol that needs more is not recognised. */
export const PROBE_MAX_BYTES = 4096;
/** Bytes held in all while waiting (e.g. for the other direction's first bytes) before giving up. */
const MAX_HELD_BYTES = 4 * PROBE_MAX_BYTES;

const C_UNKNOWN = defineCounter('app_layer.unknown');
const C_GAP_BEFORE_DETECT = defineCounter('app_layer.gap_before_detection');
/** Where bytes are counted: what the wire carries, or what came out of TLS decryption. */
export type ByteCounting = 'app_layer.bytes' | 'app_layer.decrypted_bytes';
const protocolCounters = new Map<string, number>();
const protocolByteCounters = new Map<string, number>();

function byteCounter(counting: ByteCounting, name: string): number {
  const full = `${counting}.${name}`;
  let id = protocolByteCounters.get(full);
  if (id === undefined) {
    id = defineCounter(full);
    protocolByteCounters.set(full, id);
  }
  return id;
}
// defined now (not at a flow's first bytes), so their ids are the same in every thread
byteCounter('app_layer.bytes', 'unknown');
byteCounter('app_layer.decrypted_bytes', 'unknown');

interface Held {
  dir: Direction;
  bytes: Uint8Array | undefined; // undefined: a gap of `len`
  len: number;
  ts: number;
}

/** The starting prefix of both directions: shared, never written (a prefix grows into a new array). */
const EMPTY = new Uint8Array(0);

class ProbingConsumer implements StreamConsumer {
  private chosen: StreamConsumer | undefined;
  private chosenName: string | undefined;
  /** Counter of the bytes given to the chosen protocol (or of unrecognised bytes). */
  private bytesCounter = -1;
  private refused = false;
  /** Returned from data and gap: refused, or the chosen protocol asked for bypass while held bytes were replayed to it. */
  private bypass: true | undefined = undefined;
  private readonly held: Held[] = [];
  private heldBytes = 0;
  private readonly prefix: [Uint8Array, Uint8Array] = [EMPTY, EMPTY];
  private readonly done: [boolean, boolean] = [false, false];

  /** Counter of the bytes no protocol took. */
  private readonly unknownBytes: number;

  constructor(
    private readonly flow: FlowInfo,
    private readonly protocols: readonly AppLayerProtocol[],
    private readonly counters: Counters,
    private readonly counting: ByteCounting,
  ) {
    this.unknownBytes = byteCounter(counting, 'unknown');
  }

  /** The protocol chosen for this flow, once one matched. */
  get protocol(): string | undefined {
    return this.chosenName;
  }

  data(dir: Direction, bytes: Uint8Array, tsUs: number): boolean | void {
    if (this.chosen !== undefined) {
      if (!tunnelling(this.chosen)) this.counters.inc(this.bytesCounter, bytes.length);
      return this.chosen.data(dir, bytes, tsUs);
    }
    if (this.refused) {
      this.counters.inc(this.unknownBytes, bytes.length);
      return BYPASS;
    }
    if (this.heldBytes + bytes.length > MAX_HELD_BYTES) {
      this.refuse();
      this.counters.inc(this.unknownBytes, bytes.length);
      return BYPASS;
    }
    this.held.push({ dir, bytes: bytes.slice(), len: bytes.length, ts: tsUs });
    this.heldBytes += bytes.length;
    if (this.done[dir]) return;
    const old = this.prefix[dir];
    const take = Math.min(bytes.length, PROBE_MAX_BYTES - old.length);
    const next = new Uint8Array(old.length + take);
    next.set(old);
    next.set(bytes.subarray(0, take), old.length);
    this.prefix[dir] = next;
    this.decide(dir);
    return this.bypass;
  }

  gap(dir: Direction, len: number, tsUs: number): boolean | void {
    if (this.chosen !== undefined) return this.chosen.gap(dir, len, tsUs);
    if (this.refused) return BYPASS;
    this.counters.inc(C_GAP_BEFORE_DETECT);
    this.held.push({ dir, bytes: undefined, len, ts: tsUs });
    // Bytes after a hole cannot be probed as a stream start.
    this.done[dir] = true;
    this.giveUpIfBothDone();
    return this.bypass;
  }

  end(reason: CloseReason, tsUs: number, bypassed?: BypassedBytes): void {
    if (bypassed !== undefined && (this.chosen === undefined || !tunnelling(this.chosen))) {
      this.counters.inc(this.chosen !== undefined ? this.bytesCounter : this.unknownBytes, bypassed[0] + bypassed[1]);
    }
    this.chosen?.end(reason, tsUs, bypassed);
    if (this.chosen === undefined && !this.refused && this.held.length > 0) this.refuse();
  }

  private decide(dir: Direction): void {
    const bytes = this.prefix[dir];
    let waiting = false;
    for (const p of this.protocols) {
      const r = p.probe(dir, bytes);
      if (r === 'match') {
        this.choose(p);
        return;
      }
      if (r === 'need-more') waiting = true;
    }
    if (!waiting || bytes.length >= PROBE_MAX_BYTES) {
      this.done[dir] = true;
      this.giveUpIfBothDone();
    }
  }

  private giveUpIfBothDone(): void {
    if (this.done[0] && this.done[1]) this.refuse();
  }

  private refuse(): void {
    this.refused = true;
    this.bypass = BYPASS;
    this.counters.inc(this.unknownBytes, this.heldBytes);
    this.held.length = 0;
    this.heldBytes = 0;
    this.counters.inc(C_UNKNOWN);
  }

  private choose(p: AppLayerProtocol): void {
    let id = protocolCounters.get(p.name);
    if (id === undefined) {
      id = defineCounter(`app_layer.flow.${p.name}`);
      protocolCounters.set(p.name, id);
    }
    this.counters.inc(id);
    const consumer = p.create(this.flow);
    this.chosen = consumer;
    this.chosenName = p.name;
    this.bytesCounter = byteCounter(this.counting, p.name);
    this.counters.inc(this.bytesCounter, this.heldBytes);
    for (const h of this.held.splice(0)) {
      const wants = h.bytes === undefined ? consumer.gap(h.dir, h.len, h.ts) : consumer.data(h.dir, h.bytes, h.ts);
      if (wants === BYPASS) this.bypass = BYPASS;
    }
  }
}

/**
 * The chosen protocol now hands its bytes to a consumer of their own (an HTTP CONNECT tunnel to the
 * protocol detection again), which counts them: they are not this protocol's.
 */
function tunnelling(c: StreamConsumer): boolean {
  return (c as { tunnelling?: boolean }).tunnelling === true;
}

export class AppLayerFactory implements StreamFactory {
  /** `counting`: `app_layer.decrypted_bytes` for what a TLS session decrypted, so it is not counted as cleartext. */
  constructor(private readonly protocols: readonly AppLayerProtocol[], private readonly counters: Counters, private readonly counting: ByteCounting = 'app_layer.bytes') {}

  open(flow: FlowInfo): StreamConsumer {
    return new ProbingConsumer(flow, this.protocols, this.counters, this.counting);
  }
}

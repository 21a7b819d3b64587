/**
 * Packet hand-off between threads: a single-producer single-consumer ring of variable-length frame
 * records on a SharedArrayBuffer. Input (producer, the capture thread): `write()` one frame, then
 * `publish()` once per capture batch. Output (consumer, one worker): `consume()` calls a handler
 * per record with a view into the ring, valid only during the call. A full ring never blocks the
 * producer unless asked to (`writeWaiting`, file replay): the frame is refused and the caller counts it.
 */

/**
 * Control words (Int32 indices). Head and tail sit on separate 64-byte cache lines so the two
 * threads do not share a line on every update.
 *  - head: bytes published by the producer (a uint32 position that wraps; offset = pos & mask)
 *  - tail: bytes released by the consumer
 *  - published / consumed: record counts (uint32, wrapping): what a reset throws away
 *  - consumerWaiting / producerWaiting: 1 while that side sleeps in Atomics.wait(Async)
 */
const I_HEAD = 0;
const I_PUBLISHED = 1;
const I_PRODUCER_WAITING = 2;
const I_TAIL = 16;
const I_CONSUMED = 17;
const I_CONSUMER_WAITING = 18;
/** Control block size: two 64-byte cache lines. */
const CONTROL_BYTES = 128;

// Record layout (8-byte aligned): total(u32) linkType(u16) ifIndex(u16) tsUs(f64) capLen(u32) origLen(u32),
// 0-7 bytes of padding, frame. `total` is a multiple of 8; its low 3 bits hold the padding.
// The padding puts the frame at the same address modulo 8 as where it came from: V8 copies into a
// SharedArrayBuffer with relaxed atomic stores, a word at a time when source and destination are
// aligned alike and a byte at a time when not (measured: 250 ns against 75 ns for 650 bytes), and a
// TPACKET_V3 frame starts 2 bytes past an 8-byte boundary (the IP header after Ethernet's 14 is
// 16-aligned).
const R_TOTAL = 0;
const R_LINK = 4;
const R_IFINDEX = 6;
const R_TS = 8;
const R_CAPLEN = 16;
const R_ORIGLEN = 20;
export const RECORD_HEADER_BYTES = 24;
/** Records start on 8-byte boundaries so the timestamp is an aligned float64. */
const RECORD_ALIGN = 8;
/** The low bits of `total`: the padding before the frame. */
const PAD_MASK = RECORD_ALIGN - 1;
/** A `total` of 0 says: the rest of the buffer is unused, the next record is at offset 0. */
const WRAP_MARKER = 0;

/** Smallest data area: one page. */
export const MIN_RING_BYTES = 4096;
/** Largest data area: 1 GiB (positions are uint32; the mask needs one spare bit). */
export const MAX_RING_BYTES = 1 << 30;
/** Link types and interface indices are stored as uint16. */
const MAX_U16 = 0xffff;

export interface RingRecordHandler {
  (linkType: number, buf: Uint8Array, off: number, capLen: number, origLen: number, tsUs: number, ifIndex: number): void;
}

function align(n: number): number {
  return (n + RECORD_ALIGN - 1) & ~(RECORD_ALIGN - 1);
}

/** The SharedArrayBuffer for a ring with `dataBytes` of records (a power of two, MIN..MAX_RING_BYTES). */
export function createRingBuffer(dataBytes: number): SharedArrayBuffer {
  if (!Number.isInteger(dataBytes) || dataBytes < MIN_RING_BYTES || dataBytes > MAX_RING_BYTES || (dataBytes & (dataBytes - 1)) !== 0) {
    throw new RangeError(`Cannot make a packet ring of ${dataBytes} bytes: it must be a power of two from ${MIN_RING_BYTES} to ${MAX_RING_BYTES}`);
  }
  return new SharedArrayBuffer(CONTROL_BYTES + dataBytes);
}

/** Largest frame a ring of `dataBytes` takes: a quarter of it (with header and padding), so one big
 * frame never starves the rest. */
export function maxFrameBytes(dataBytes: number): number {
  return (dataBytes >>> 2) - RECORD_HEADER_BYTES - PAD_MASK;
}

type WaitAsync = (a: Int32Array, index: number, value: number, timeoutMs?: number) => { async: boolean; value: Promise<string> | string };
/** Atomics.waitAsync is in Node 16+ but not in the ES2023 type library. */
const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;

/** Views shared by both ends. */
class RingViews {
  readonly ctrl: Int32Array;
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly f64: Float64Array;
  readonly size: number;
  readonly mask: number;

  constructor(readonly sab: SharedArrayBuffer) {
    const size = sab.byteLength - CONTROL_BYTES;
    if (size < MIN_RING_BYTES || (size & (size - 1)) !== 0) throw new RangeError(`Not a packet ring: ${sab.byteLength} bytes`);
    this.ctrl = new Int32Array(sab, 0, CONTROL_BYTES >>> 2);
    this.u8 = new Uint8Array(sab, CONTROL_BYTES, size);
    this.u16 = new Uint16Array(sab, CONTROL_BYTES, size >>> 1);
    this.u32 = new Uint32Array(sab, CONTROL_BYTES, size >>> 2);
    this.f64 = new Float64Array(sab, CONTROL_BYTES, size >>> 3);
    this.size = size;
    this.mask = size - 1;
  }
}

/** The capture thread's end. Not thread-safe: one producer per ring. */
export class RingProducer {
  private readonly v: RingViews;
  /** Where the next record goes (ahead of the published head until `publish()`). */
  private writePos: number;
  private published: number;
  /** The head as last published (the producer is its only writer). */
  private headPos: number;
  private unpublishedRecords = 0;
  readonly maxFrame: number;

  constructor(sab: SharedArrayBuffer) {
    this.v = new RingViews(sab);
    this.writePos = Atomics.load(this.v.ctrl, I_HEAD) >>> 0;
    this.headPos = this.writePos;
    this.published = Atomics.load(this.v.ctrl, I_PUBLISHED) >>> 0;
    this.maxFrame = maxFrameBytes(this.v.size);
  }

  /** Bytes written but not yet published. */
  get pendingBytes(): number {
    return (this.writePos - this.headPos) >>> 0;
  }

  /** Bytes in use (published or pending) as the producer sees them. */
  get usedBytes(): number {
    return (this.writePos - (Atomics.load(this.v.ctrl, I_TAIL) >>> 0)) >>> 0;
  }

  get capacity(): number {
    return this.v.size;
  }

  /**
   * Copies one frame in; false when it does not fit now (ring full) or ever (longer than
   * `maxFrame`, or a link type / interface index beyond 16 bits). Nothing is visible to the
   * consumer until `publish()`.
   */
  write(linkType: number, buf: Uint8Array, off: number, capLen: number, origLen: number, tsUs: number, ifIndex: number): boolean {
    if (capLen > this.maxFrame || capLen < 0 || linkType > MAX_U16 || ifIndex > MAX_U16) return false;
    const v = this.v;
    // records start 8-aligned in a ring that is itself 8-aligned: the padding does not depend on where
    const pad = (buf.byteOffset + off - v.u8.byteOffset - RECORD_HEADER_BYTES) & PAD_MASK;
    const need = align(RECORD_HEADER_BYTES + pad + capLen);
    let pos = this.writePos;
    let at = pos & v.mask;
    const toEnd = v.size - at;
    const free = v.size - ((pos - (Atomics.load(v.ctrl, I_TAIL) >>> 0)) >>> 0);
    if (toEnd < need) {
      // Does not fit before the end: a wrap marker fills the rest and the record starts at 0.
      if (toEnd + need > free) return false;
      v.u32[at >>> 2] = WRAP_MARKER;
      pos = (pos + toEnd) >>> 0;
      at = 0;
    } else if (need > free) {
      return false;
    }
    v.u32[(at + R_TOTAL) >>> 2] = need | pad;
    v.u16[(at + R_LINK) >>> 1] = linkType;
    v.u16[(at + R_IFINDEX) >>> 1] = ifIndex;
    v.f64[(at + R_TS) >>> 3] = tsUs;
    v.u32[(at + R_CAPLEN) >>> 2] = capLen;
    v.u32[(at + R_ORIGLEN) >>> 2] = origLen;
    v.u8.set(buf.subarray(off, off + capLen), at + RECORD_HEADER_BYTES + pad);
    this.writePos = (pos + need) >>> 0;
    this.unpublishedRecords++;
    return true;
  }

  /**
   * Like `write`, but when the ring is full it publishes and sleeps until the consumer frees room,
   * up to `timeoutMs` in all (file replay: nothing may be dropped). False on timeout or a frame
   * that can never fit. Blocks the calling thread: never use it on a live capture.
   */
  writeWaiting(linkType: number, buf: Uint8Array, off: number, capLen: number, origLen: number, tsUs: number, ifIndex: number, timeoutMs: number): boolean {
    if (this.write(linkType, buf, off, capLen, origLen, tsUs, ifIndex)) return true;
    if (capLen > this.maxFrame || capLen < 0 || linkType > MAX_U16 || ifIndex > MAX_U16) return false;
    const ctrl = this.v.ctrl;
    const deadline = Date.now() + timeoutMs;
    this.publish();
    for (;;) {
      const tail = Atomics.load(ctrl, I_TAIL);
      Atomics.store(ctrl, I_PRODUCER_WAITING, 1);
      if (this.write(linkType, buf, off, capLen, origLen, tsUs, ifIndex)) {
        Atomics.store(ctrl, I_PRODUCER_WAITING, 0);
        return true;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        Atomics.store(ctrl, I_PRODUCER_WAITING, 0);
        return false;
      }
      Atomics.wait(ctrl, I_TAIL, tail, Math.min(left, 100));
    }
  }

  /** Makes every written record visible and wakes the consumer if it sleeps: once per capture batch. */
  publish(): void {
    if (this.unpublishedRecords === 0) return;
    const ctrl = this.v.ctrl;
    this.published = (this.published + this.unpublishedRecords) >>> 0;
    this.unpublishedRecords = 0;
    Atomics.store(ctrl, I_PUBLISHED, this.published | 0);
    Atomics.store(ctrl, I_HEAD, this.writePos | 0);
    this.headPos = this.writePos;
    if (Atomics.load(ctrl, I_CONSUMER_WAITING) !== 0) Atomics.notify(ctrl, I_HEAD, 1);
  }

  /**
   * Throws away every record not yet consumed (the consumer must be gone: a crashed worker) and
   * returns how many there were. Unpublished records go too.
   */
  discardUnconsumed(): number {
    const ctrl = this.v.ctrl;
    this.published = (this.published + this.unpublishedRecords) >>> 0;
    this.unpublishedRecords = 0;
    const lost = (this.published - (Atomics.load(ctrl, I_CONSUMED) >>> 0)) >>> 0;
    Atomics.store(ctrl, I_PUBLISHED, this.published | 0);
    Atomics.store(ctrl, I_HEAD, this.writePos | 0);
    this.headPos = this.writePos;
    Atomics.store(ctrl, I_TAIL, this.writePos | 0);
    Atomics.store(ctrl, I_CONSUMED, this.published | 0);
    Atomics.store(ctrl, I_CONSUMER_WAITING, 0);
    return lost;
  }
}

/** A worker's end. Not thread-safe: one consumer per ring. */
export class RingConsumer {
  private readonly v: RingViews;
  private readPos: number;
  private consumed: number;

  constructor(sab: SharedArrayBuffer) {
    this.v = new RingViews(sab);
    this.readPos = Atomics.load(this.v.ctrl, I_TAIL) >>> 0;
    this.consumed = Atomics.load(this.v.ctrl, I_CONSUMED) >>> 0;
  }

  /** Published records not yet consumed. */
  get backlog(): number {
    return ((Atomics.load(this.v.ctrl, I_PUBLISHED) >>> 0) - this.consumed) >>> 0;
  }

  /** Bytes of record space (the most one `consume` can hold before releasing). */
  get capacity(): number {
    return this.v.size;
  }

  /**
   * Hands up to `maxRecords` published records (and about `maxBytes` of record space: the record
   * that crosses it is the last) to `handler`, in order; then calls `beforeRelease` (the records
   * are still valid in it, for a handler that kept views of them) and releases their space (and
   * wakes a producer waiting for room). Returns how many were handed over. A throwing handler
   * still releases the records before the exception propagates: that record is not seen again.
   */
  consume(handler: RingRecordHandler, maxRecords: number, maxBytes = Infinity, beforeRelease?: () => void): number {
    const v = this.v;
    const ctrl = v.ctrl;
    const head = Atomics.load(ctrl, I_HEAD) >>> 0;
    const start = this.readPos;
    let pos = start;
    let n = 0;
    try {
      while (pos !== head && n < maxRecords && ((pos - start) >>> 0) < maxBytes) {
        let at = pos & v.mask;
        let total = v.u32[(at + R_TOTAL) >>> 2];
        if (total === WRAP_MARKER) {
          pos = (pos + (v.size - at)) >>> 0;
          at = 0;
          total = v.u32[R_TOTAL >>> 2];
        }
        const pad = total & PAD_MASK;
        total -= pad;
        const capLen = v.u32[(at + R_CAPLEN) >>> 2];
        const linkType = v.u16[(at + R_LINK) >>> 1];
        const ifIndex = v.u16[(at + R_IFINDEX) >>> 1];
        const tsUs = v.f64[(at + R_TS) >>> 3];
        const origLen = v.u32[(at + R_ORIGLEN) >>> 2];
        pos = (pos + total) >>> 0;
        n++;
        handler(linkType, v.u8, at + RECORD_HEADER_BYTES + pad, capLen, origLen, tsUs, ifIndex);
      }
    } finally {
      try {
        if (n > 0) beforeRelease?.();
      } finally {
        this.release(n, pos);
      }
    }
    return n;
  }

  /** Gives the space of `n` consumed records, up to `pos`, back to the producer. */
  private release(n: number, pos: number): void {
    if (n === 0) return;
    const ctrl = this.v.ctrl;
    this.readPos = pos;
    this.consumed = (this.consumed + n) >>> 0;
    Atomics.store(ctrl, I_CONSUMED, this.consumed | 0);
    Atomics.store(ctrl, I_TAIL, pos | 0);
    if (Atomics.load(ctrl, I_PRODUCER_WAITING) !== 0) Atomics.notify(ctrl, I_TAIL, 1);
  }

  /** True when a published record is waiting. */
  hasData(): boolean {
    return (Atomics.load(this.v.ctrl, I_HEAD) >>> 0) !== this.readPos;
  }

  /**
   * Resolves when records are published (at once if some are), or after `timeoutMs` (a guard:
   * the caller looks again). The worker's event loop stays free meanwhile (Atomics.waitAsync).
   */
  waitForData(timeoutMs: number): Promise<void> {
    const ctrl = this.v.ctrl;
    Atomics.store(ctrl, I_CONSUMER_WAITING, 1);
    const head = Atomics.load(ctrl, I_HEAD);
    if ((head >>> 0) !== this.readPos) {
      Atomics.store(ctrl, I_CONSUMER_WAITING, 0);
      return Promise.resolve();
    }
    const done = (): void => {
      Atomics.store(ctrl, I_CONSUMER_WAITING, 0);
    };
    if (waitAsync === undefined) {
      return new Promise((resolve) => setTimeout(() => {
        done();
        resolve();
      }, Math.min(timeoutMs, 1)));
    }
    const r = waitAsync(ctrl, I_HEAD, head, timeoutMs);
    if (!r.async) {
      done();
      return Promise.resolve();
    }
    return (r.value as Promise<string>).then(done);
  }

  /** Blocking wait (a thread with nothing else to do: tests, benchmarks). */
  waitForDataSync(timeoutMs: number): void {
    const ctrl = this.v.ctrl;
    Atomics.store(ctrl, I_CONSUMER_WAITING, 1);
    const head = Atomics.load(ctrl, I_HEAD);
    if ((head >>> 0) === this.readPos) Atomics.wait(ctrl, I_HEAD, head, timeoutMs);
    Atomics.store(ctrl, I_CONSUMER_WAITING, 0);
  }
}

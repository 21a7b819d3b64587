/**
 * Live packet source on Hark's own AF_PACKET addon (./native): one TPACKET_V3 ring per interface,
 * promiscuous, optional BPF filter and hash fanout. Input: interface names. Output: one
 * `PacketHandler` call per frame, in ring order per interface, with a view into the ring (valid only
 * during the call) and the kernel's receive timestamp in microseconds. The addon calls JS once per
 * retired block; this module walks the block and returns it to the kernel when the walk ends.
 * `stats()` reads the kernel's packet and drop counters. Same shape as LiveCapture (live.ts).
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Counters, defineCounter } from '../events/counters.js';
import type { PacketHandler } from './file-reader.js';
import { CaptureInterfaceError } from './live.js';

/**
 * Default ring per interface: 64 blocks of 1 MiB. A block holds ~700 full-size frames, so the ring
 * absorbs ~45k frames (about 0.5 s of 1 Gbit/s) while JS is busy elsewhere.
 */
export const DEFAULT_BLOCK_BYTES = 1 << 20;
export const DEFAULT_BLOCKS = 64;
/** A block that is not full is handed over after this long: batches keep flowing at low rates. */
export const DEFAULT_FRAME_TIMEOUT_MS = 10;
/** Smallest block: one page (the kernel needs page-aligned blocks). Frames longer than a block are cut. */
const MIN_BLOCK_BYTES = 4096;
/** Largest block: 256 MiB (kernel allocations of one block beyond that fail or fragment memory). */
const MAX_BLOCK_BYTES = 1 << 28;
/** Two blocks at least: the kernel fills one while JS walks the other. */
const MIN_BLOCKS = 2;
/** Memory guard: at most 1 GiB of locked ring memory per interface. */
const MAX_RING_BYTES = 1 << 30;
/** The retire timeout is a 32-bit millisecond count in the kernel; a minute is already absurd. */
const MAX_FRAME_TIMEOUT_MS = 60_000;
/** PACKET_FANOUT group ids are 16 bits. */
const MAX_FANOUT_GROUP = 0xffff;

const LINKTYPE_ETHERNET = 1;
const VLAN_TAG_BYTES = 4;
/** Ethernet destination + source addresses: what moves when a VLAN tag is put back. */
const ETHER_ADDRS_BYTES = 12;
const ETHERTYPE_VLAN = 0x8100;

// Kernel structure offsets (linux/if_packet.h: tpacket_block_desc, tpacket3_hdr); checked against
// the addon's offsetof() values when it loads.
const BLOCK_NUM_PKTS = 12;
const BLOCK_FIRST_PKT = 16;
const PKT_NEXT_OFFSET = 0;
const PKT_SEC = 4;
const PKT_NSEC = 8;
const PKT_SNAPLEN = 12;
const PKT_LEN = 16;
const PKT_STATUS = 20;
const PKT_MAC = 24;
const PKT_VLAN_TCI = 32;
const PKT_VLAN_TPID = 36;
/** TPACKET3_HDRLEN: the frame header plus the sockaddr_ll after it; frame bytes start beyond it. */
const PKT_HEADER_BYTES = 68;
const TP_STATUS_VLAN_VALID = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID = 1 << 6;

const EXPECTED_LAYOUT: Readonly<Record<string, number>> = {
  blockNumPkts: BLOCK_NUM_PKTS,
  blockFirstPkt: BLOCK_FIRST_PKT,
  pktNextOffset: PKT_NEXT_OFFSET,
  pktSec: PKT_SEC,
  pktNsec: PKT_NSEC,
  pktSnaplen: PKT_SNAPLEN,
  pktLen: PKT_LEN,
  pktStatus: PKT_STATUS,
  pktMac: PKT_MAC,
  pktVlanTci: PKT_VLAN_TCI,
  pktVlanTpid: PKT_VLAN_TPID,
  pktHeaderBytes: PKT_HEADER_BYTES,
  statusVlanValid: TP_STATUS_VLAN_VALID,
  statusVlanTpidValid: TP_STATUS_VLAN_TPID_VALID,
};

/** Must equal ABI_VERSION in native/hark_ring.cc. */
const ADDON_ABI_VERSION = 2;
const ADDON_FILE = 'build/Release/hark_ring.node';

const C_KERNEL_PACKETS = defineCounter('capture.kernel_packets');
const C_KERNEL_DROPS = defineCounter('capture.kernel_drops');
/** Times the kernel found every block still held by JS (tp_freeze_q_cnt). */
const C_RING_FREEZES = defineCounter('capture.ring.freezes');
/** A frame header pointing outside its block: never seen; the rest of that block is skipped. */
const C_BAD_FRAME = defineCounter('capture.ring.bad_frame');
/** A kernel-stripped VLAN tag with no room before the frame to put it back (frame goes untagged). */
const C_VLAN_NOT_RESTORED = defineCounter('capture.ring.vlan_not_restored');
/** Exceptions thrown by the packet handler (the first of a block is rethrown after the block). */
const C_HANDLER_ERRORS = defineCounter('capture.ring.handler_errors');
/** The interface went down or away while capturing (reported through `onError`). */
const C_INTERFACE_ERRORS = defineCounter('capture.ring.interface_errors');

interface NativeRing {
  readonly handle: object;
  readonly ring: ArrayBuffer;
  readonly linkType: number;
  readonly ifindex: number;
}

export interface RingBinding {
  readonly ABI_VERSION: number;
  readonly layout: Readonly<Record<string, number>>;
  readonly pcapVersion: string;
  open(
    name: string,
    blockBytes: number,
    blocks: number,
    frameTimeoutMs: number,
    filter: string,
    fanoutGroup: number,
    onBlock: (blockOffset: number) => void,
    onError: (code: string, message: string) => void,
  ): NativeRing;
  close(handle: object): void;
  stats(handle: object): [number, number, number];
  /** [GRO, LRO] of an interface: 1 on, 0 off, -errno when the driver cannot say. */
  getOffloads(name: string): [number, number];
  /** Turns GRO (0) or LRO (1) on or off: 0, or the errno (EPERM without CAP_NET_ADMIN). */
  setOffload(name: string, which: 0 | 1, on: boolean): number;
}

/** The addon's source folder, found from this module whether it runs compiled (dist-x/sensor/capture/) or from source. */
export function ringNativeDir(): string {
  const candidates = [
    fileURLToPath(new URL('../../../sensor/capture/native/', import.meta.url)),
    fileURLToPath(new URL('./native/', import.meta.url)),
  ];
  return candidates.find((d) => existsSync(d + 'binding.gyp')) ?? candidates[0];
}

/**
 * Names another build of the addon to load instead of the one in build/Release: the sanitizer
 * run (appliance/sanitize.sh) points it at its AddressSanitizer + UBSan build. Unset in production.
 */
export const RING_ADDON_ENV = 'HARK_RING_ADDON';

/** Path of the addon to load (it may not exist yet): $HARK_RING_ADDON when set, else the normal build. */
export function ringAddonPath(): string {
  const override = process.env[RING_ADDON_ENV];
  return override !== undefined && override !== '' ? override : ringNativeDir() + ADDON_FILE;
}

let binding: RingBinding | undefined;

type BindingLoad = { binding: RingBinding; reason?: undefined } | { binding?: undefined; reason: string };

/** The addon (also for offloads.ts), or why it cannot be loaded here. */
export function loadRingBinding(): BindingLoad {
  if (binding) return { binding };
  if (process.platform !== 'linux') return { reason: `the ring capture needs Linux AF_PACKET (this is ${process.platform})` };
  const file = ringAddonPath();
  if (!existsSync(file)) return { reason: `ring capture addon not built: ${file} is missing (build it: node-gyp rebuild -C ${ringNativeDir()})` };
  let b: RingBinding;
  try {
    b = createRequire(import.meta.url)(file) as RingBinding;
  } catch (err) {
    return { reason: `Cannot load ring capture addon "${file}": ${(err as Error).message}` };
  }
  if (b.ABI_VERSION !== ADDON_ABI_VERSION) return { reason: `ring capture addon "${file}" is stale (ABI ${b.ABI_VERSION}, want ${ADDON_ABI_VERSION}): rebuild it` };
  for (const [key, want] of Object.entries(EXPECTED_LAYOUT)) {
    if (b.layout[key] !== want) return { reason: `ring capture addon "${file}": kernel layout ${key} is ${b.layout[key]}, this module expects ${want}` };
  }
  binding = b;
  return { binding };
}

/**
 * Whether RingCapture can run here: Linux, addon built, current and matching the kernel header
 * layout. Never throws; a failed check is not remembered, so building the addon and asking again works.
 * (Privileges are checked by start(), which names cap_net_raw when they are missing.)
 */
export function ringAvailable(): { ok: boolean; reason?: string } {
  const loaded = loadRingBinding();
  return loaded.binding ? { ok: true } : { ok: false, reason: loaded.reason };
}

export interface RingCaptureOptions {
  readonly interfaces: readonly string[];
  /** tcpdump syntax, compiled by libpcap for Ethernet. VLAN tags are outside the frame when the
   *  filter runs (the kernel strips the outer one), so `vlan` primitives do not match; IP and port
   *  primitives match tagged and untagged frames alike. */
  readonly filter?: string;
  /** Power of two, 4 KiB to 256 MiB; default 1 MiB. Frames longer than a block are truncated. */
  readonly blockBytes?: number;
  /** At least 2; default 64. Ring memory = blockBytes x blocks, at most 1 GiB per interface. */
  readonly blocks?: number;
  /** A partly filled block is handed over after this many milliseconds; default 10. */
  readonly frameTimeoutMs?: number;
  /**
   * PACKET_FANOUT hash group: every socket with the same group on an interface gets a share of its
   * flows (both directions of a flow to the same socket). Interface k of the list uses group
   * `fanoutGroup + k` (the kernel wants one group per device). IP fragments are hashed on addresses
   * only, so they may reach a different socket than the unfragmented packets of their flow.
   */
  readonly fanoutGroup?: number;
  /** The interface went down (capture resumes when it is up again) or was removed. */
  readonly onError?: (err: CaptureInterfaceError, ifIndex: number) => void;
}

export interface RingInterfaceStats {
  readonly name: string;
  /** Frames delivered to the handler since start(). */
  readonly packets: number;
  /** Frames that passed the filter in the kernel, dropped ones included (tp_packets). */
  readonly kernelPackets: number;
  /** Frames the kernel dropped because no block was free (tp_drops). */
  readonly kernelDrops: number;
  /** Times the ring was found full (tp_freeze_q_cnt). */
  readonly freezes: number;
}

interface OpenRing {
  readonly name: string;
  readonly index: number;
  readonly native: NativeRing;
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly blockBytes: number;
  open: boolean;
  /** Kernel totals at the last stats() read: counters get the difference. */
  seenPackets: number;
  seenDrops: number;
  seenFreezes: number;
}

function checkGeometry(name: string, blockBytes: number, blocks: number, timeoutMs: number, fanout: number | undefined): void {
  const bad = (what: string): never => {
    throw new CaptureInterfaceError(`Cannot open capture interface "${name}": ${what}`);
  };
  if (!Number.isInteger(blockBytes) || blockBytes < MIN_BLOCK_BYTES || blockBytes > MAX_BLOCK_BYTES || (blockBytes & (blockBytes - 1)) !== 0) {
    bad(`block size ${blockBytes} must be a power of two from ${MIN_BLOCK_BYTES} to ${MAX_BLOCK_BYTES} bytes`);
  }
  if (!Number.isInteger(blocks) || blocks < MIN_BLOCKS || blockBytes * blocks > MAX_RING_BYTES) {
    bad(`ring of ${blocks} blocks of ${blockBytes} bytes: needs at least ${MIN_BLOCKS} blocks and at most ${MAX_RING_BYTES} bytes`);
  }
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_FRAME_TIMEOUT_MS) bad(`frame timeout ${timeoutMs} ms must be 1 to ${MAX_FRAME_TIMEOUT_MS}`);
  if (fanout !== undefined && (!Number.isInteger(fanout) || fanout < 0 || fanout > MAX_FANOUT_GROUP)) bad(`fanout group ${fanout} must be 0 to ${MAX_FANOUT_GROUP}`);
}

function availableInterfaces(): string {
  try {
    return readdirSync('/sys/class/net').join(', ');
  } catch {
    return 'unknown';
  }
}

/** The error for an interface that is not there, naming those that are. */
function noSuchInterface(name: string, available: string, cause?: unknown): CaptureInterfaceError {
  return new CaptureInterfaceError(`Cannot open capture interface "${name}": no such interface (available: ${available})`, cause === undefined ? undefined : { cause });
}

/**
 * The error opening `names` would end in because one of them does not exist, found before anything
 * is opened (the sensor checks before it starts its workers and warms them up, seconds of work a
 * mistyped name would otherwise cost); undefined when all exist or /sys/class/net cannot be read
 * (opening then tells).
 */
export function missingInterfaceError(names: readonly string[]): CaptureInterfaceError | undefined {
  let present: Set<string>;
  try {
    present = new Set(readdirSync('/sys/class/net'));
  } catch {
    return undefined;
  }
  const missing = names.find((n) => !present.has(n));
  return missing === undefined ? undefined : noSuchInterface(missing, [...present].join(', '));
}

/** The native error of open() as the message a user can act on. */
function openError(err: unknown, name: string, filter: string): CaptureInterfaceError {
  const e = err as Error & { code?: string };
  switch (e.code) {
    case 'ENODEV':
    case 'ENXIO':
      return noSuchInterface(name, availableInterfaces(), err);
    case 'ENETDOWN':
      return new CaptureInterfaceError(`Cannot open capture interface "${name}": the interface is down (ip link set ${name} up)`, { cause: err });
    case 'EPERM':
    case 'EACCES':
      return new CaptureInterfaceError(
        `Cannot open capture interface "${name}": permission denied (capturing needs CAP_NET_RAW: start it as root, adding --user NAME to drop to that user once capture is open, or under the hark.service unit, which grants the capability to the sensor alone)`,
        { cause: err },
      );
    case 'E_FILTER':
      return new CaptureInterfaceError(`Cannot apply capture filter "${filter}" on "${name}": ${e.message}`, { cause: err });
    case 'E_LINK_TYPE':
      return new CaptureInterfaceError(`Cannot capture on "${name}": unsupported link type (${e.message})`, { cause: err });
    default:
      return new CaptureInterfaceError(`Cannot open capture interface "${name}": ${e.message}`, { cause: err });
  }
}

export class RingCapture {
  private rings: OpenRing[] = [];
  readonly packets: number[];
  readonly bytes: number[];
  readonly linkTypes: string[] = [];

  constructor(
    private readonly opts: RingCaptureOptions,
    private readonly onPacket: PacketHandler,
    private readonly counters: Counters = new Counters(),
  ) {
    this.packets = opts.interfaces.map(() => 0);
    this.bytes = opts.interfaces.map(() => 0);
  }

  /** Opens every interface or none: the first failure closes what was opened and throws CaptureInterfaceError. */
  start(): void {
    if (this.rings.some((r) => r.open)) throw new Error('RingCapture.start: already started');
    const loaded = loadRingBinding();
    if (!loaded.binding) throw new CaptureInterfaceError(`Cannot start ring capture: ${loaded.reason}`);
    const b = loaded.binding;
    const blockBytes = this.opts.blockBytes ?? DEFAULT_BLOCK_BYTES;
    const blocks = this.opts.blocks ?? DEFAULT_BLOCKS;
    const timeoutMs = this.opts.frameTimeoutMs ?? DEFAULT_FRAME_TIMEOUT_MS;
    const filter = this.opts.filter?.trim() ?? '';
    const fanout = this.opts.fanoutGroup;
    this.rings = [];
    this.linkTypes.length = 0;
    this.packets.fill(0);
    this.bytes.fill(0);
    for (const name of this.opts.interfaces) checkGeometry(name, blockBytes, blocks, timeoutMs, fanout);
    this.opts.interfaces.forEach((name, index) => {
      let ring: OpenRing | undefined;
      const onBlock = (blockOffset: number): void => {
        if (ring !== undefined) this.walkBlock(ring, blockOffset);
      };
      const onError = (code: string, message: string): void => this.interfaceError(name, index, code, message);
      let native: NativeRing;
      try {
        native = b.open(name, blockBytes, blocks, timeoutMs, filter, fanout === undefined ? -1 : (fanout + index) & MAX_FANOUT_GROUP, onBlock, onError);
      } catch (err) {
        this.stop();
        throw openError(err, name, filter);
      }
      const buf = native.ring;
      ring = {
        name,
        index,
        native,
        u8: new Uint8Array(buf),
        u16: new Uint16Array(buf),
        u32: new Uint32Array(buf),
        blockBytes,
        open: true,
        seenPackets: 0,
        seenDrops: 0,
        seenFreezes: 0,
      };
      this.rings.push(ring);
      this.linkTypes.push('ETHERNET');
    });
  }

  /** Closes every ring (promiscuous mode goes with its socket). Frames still in the rings are not delivered. Stats stay readable. */
  stop(): void {
    const b = binding;
    if (b === undefined) return;
    for (const r of this.rings) {
      if (!r.open) continue;
      r.open = false;
      try {
        b.close(r.native.handle);
      } catch {
        // closing is best effort; the handle's finalizer frees what is left
      }
    }
    this.stats();
  }

  /**
   * Bytes of the kernel rings open now (blockBytes x blocks per interface): mapped into this
   * process, so part of its RSS, and handed to JS as external ArrayBuffers (V8 counts them as
   * this thread's external memory).
   */
  ringBytes(): number {
    let n = 0;
    for (const r of this.rings) if (r.open) n += r.u8.byteLength;
    return n;
  }

  /** Kernel counters per interface since start(); call it every few seconds (kernel counts are 32-bit between reads). */
  stats(): RingInterfaceStats[] {
    const b = binding;
    return this.rings.map((r) => {
      const [kernelPackets, kernelDrops, freezes] = b !== undefined ? b.stats(r.native.handle) : [0, 0, 0];
      this.counters.inc(C_KERNEL_PACKETS, kernelPackets - r.seenPackets);
      this.counters.inc(C_KERNEL_DROPS, kernelDrops - r.seenDrops);
      this.counters.inc(C_RING_FREEZES, freezes - r.seenFreezes);
      r.seenPackets = kernelPackets;
      r.seenDrops = kernelDrops;
      r.seenFreezes = freezes;
      return { name: r.name, packets: this.packets[r.index], kernelPackets, kernelDrops, freezes };
    });
  }

  /**
   * One retired block: every frame in it, in order. The addon returns the block to the kernel
   * afterwards. A handler that throws still gets the rest of the block; the first error is rethrown
   * at the end (it reaches process 'uncaughtException', as with LiveCapture) and every one is counted.
   */
  private walkBlock(r: OpenRing, blockOff: number): void {
    const { u8, u16, u32, index } = r;
    const onPacket = this.onPacket;
    const blockEnd = blockOff + r.blockBytes;
    let n = u32[(blockOff + BLOCK_NUM_PKTS) >>> 2];
    let p = blockOff + u32[(blockOff + BLOCK_FIRST_PKT) >>> 2];
    let failed = false;
    let failure: unknown;
    while (n-- > 0) {
      if (p + PKT_HEADER_BYTES > blockEnd) {
        this.counters.inc(C_BAD_FRAME);
        break;
      }
      const h = p >>> 2;
      const next = u32[h + (PKT_NEXT_OFFSET >>> 2)];
      const status = u32[h + (PKT_STATUS >>> 2)];
      let capLen = u32[h + (PKT_SNAPLEN >>> 2)];
      let origLen = u32[h + (PKT_LEN >>> 2)];
      let mac = p + u16[(p + PKT_MAC) >>> 1];
      if (mac < p + PKT_HEADER_BYTES || mac + capLen > blockEnd) {
        this.counters.inc(C_BAD_FRAME);
        break;
      }
      if ((status & TP_STATUS_VLAN_VALID) !== 0) {
        // The kernel moved the outer VLAN tag out of the frame into the header; libpcap puts it
        // back, and so do we: the handler sees the frame as it was on the wire.
        if (mac - VLAN_TAG_BYTES >= p + PKT_HEADER_BYTES && capLen >= ETHER_ADDRS_BYTES) {
          const tci = u32[h + (PKT_VLAN_TCI >>> 2)] & 0xffff;
          const tpid = (status & TP_STATUS_VLAN_TPID_VALID) !== 0 ? u16[(p + PKT_VLAN_TPID) >>> 1] : ETHERTYPE_VLAN;
          mac -= VLAN_TAG_BYTES;
          u8.copyWithin(mac, mac + VLAN_TAG_BYTES, mac + VLAN_TAG_BYTES + ETHER_ADDRS_BYTES);
          u8[mac + 12] = tpid >>> 8;
          u8[mac + 13] = tpid & 0xff;
          u8[mac + 14] = tci >>> 8;
          u8[mac + 15] = tci & 0xff;
          capLen += VLAN_TAG_BYTES;
          origLen += VLAN_TAG_BYTES;
        } else {
          this.counters.inc(C_VLAN_NOT_RESTORED);
        }
      }
      const tsUs = u32[h + (PKT_SEC >>> 2)] * 1e6 + Math.floor(u32[h + (PKT_NSEC >>> 2)] / 1000);
      this.packets[index]++;
      this.bytes[index] += capLen;
      try {
        onPacket(LINKTYPE_ETHERNET, u8, mac, capLen, origLen, tsUs, index);
      } catch (err) {
        this.counters.inc(C_HANDLER_ERRORS);
        if (!failed) {
          failed = true;
          failure = err;
        }
      }
      // The handler may have stopped the capture: the ring memory is gone (its views read empty).
      if (!r.open || next === 0) break;
      p += next;
    }
    if (failed) throw failure;
  }

  private interfaceError(name: string, index: number, code: string, message: string): void {
    this.counters.inc(C_INTERFACE_ERRORS);
    const what =
      code === 'ENETDOWN'
        ? `Capture interface "${name}" went down (capture resumes when it is up again)`
        : code === 'ENODEV' || code === 'ENXIO'
          ? `Capture interface "${name}" was removed`
          : `Capture interface "${name}" failed: ${message}`;
    this.opts.onError?.(new CaptureInterfaceError(what), index);
  }
}

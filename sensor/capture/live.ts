/**
 * Live packet source: libpcap through `cap`, promiscuous, one handle per interface, all feeding
 * one `PacketHandler` (so a TAP that sends each direction to its own port, or several SPAN
 * sessions, meet in one flow table). Input: interface names and an optional BPF filter. Output:
 * one handler call per frame with the interface's index. `cap` reports no kernel timestamps, so
 * frames are stamped on arrival with a microsecond wall clock.
 */
import { createRequire } from 'node:module';
import type { PacketHandler } from './file-reader.js';

const require = createRequire(import.meta.url);

/** libpcap kernel buffer per interface: a 10 MB buffer drops at 1 Gbit/s (shared/bench/README.md). */
export const DEFAULT_CAPTURE_BUFFER_BYTES = 256 << 20;
/** cap's snap length is fixed at 65535: whole frames (also with GRO/TSO super-frames up to 64 KiB). */
const FRAME_BUFFER_BYTES = 65535;

// cap's link type names -> DLT numbers (pcap-linktype(7)).
const LINK_TYPES: Record<string, number> = {
  ETHERNET: 1,
  NULL: 0,
  LINKTYPE_NULL: 0,
  LINKTYPE_LINUX_SLL: 113,
  LINUX_SLL: 113,
  RAW: 101,
  IPV4: 228,
  IPV6: 229,
  LOOP: 108,
};

export class CaptureInterfaceError extends Error {
  readonly code = 'E_CAPTURE_INTERFACE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

interface CapHandle {
  open(device: string, filter: string, bufSize: number, buffer: Buffer): string;
  on(event: 'packet', fn: (nbytes: number, trunc: boolean) => void): void;
  setMinBytes?(n: number): void;
  close(): void;
}

interface CapModule {
  Cap: { new (): CapHandle; deviceList(): Array<{ name: string; flags?: string; addresses: unknown[] }> };
}

function loadCap(): CapModule {
  try {
    return require('cap') as CapModule;
  } catch (err) {
    throw new CaptureInterfaceError('Cannot load the packet capture module "cap": run appliance/dev-setup.sh (it builds it against libpcap-dev)', { cause: err });
  }
}

export function listInterfaces(): string[] {
  return loadCap().Cap.deviceList().map((d) => d.name);
}

/** The first interface that is up, not loopback and not a pseudo-device: a sensible default for a lab. */
export function defaultInterface(): string {
  const devices = loadCap().Cap.deviceList();
  const real = devices.find((d) => !/LOOPBACK/.test(d.flags ?? '') && !['any', 'nflog', 'nfqueue', 'dbus-system', 'dbus-session', 'bluetooth-monitor'].includes(d.name) && !d.name.startsWith('usbmon'));
  return real?.name ?? 'any';
}

function nowUs(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

export interface LiveCaptureOptions {
  readonly interfaces: readonly string[];
  readonly filter?: string;
  readonly bufferBytes?: number;
}

export class LiveCapture {
  private readonly handles: CapHandle[] = [];
  readonly packets: number[];
  readonly bytes: number[];
  readonly linkTypes: string[] = [];

  constructor(private readonly opts: LiveCaptureOptions, private readonly onPacket: PacketHandler) {
    this.packets = opts.interfaces.map(() => 0);
    this.bytes = opts.interfaces.map(() => 0);
  }

  /** Opens every interface or none: the first failure closes what was opened and throws. */
  start(): void {
    const { Cap } = loadCap();
    const known = new Set(Cap.deviceList().map((d) => d.name));
    this.opts.interfaces.forEach((name, index) => {
      if (!known.has(name)) {
        this.stop();
        throw new CaptureInterfaceError(`Cannot open capture interface "${name}": no such interface (available: ${[...known].join(', ')})`);
      }
      const cap = new Cap();
      const frame = Buffer.alloc(FRAME_BUFFER_BYTES);
      const view = new Uint8Array(frame.buffer, frame.byteOffset, frame.length);
      let linkName: string;
      try {
        linkName = cap.open(name, this.opts.filter ?? '', this.opts.bufferBytes ?? DEFAULT_CAPTURE_BUFFER_BYTES, frame);
      } catch (err) {
        this.stop();
        const msg = (err as Error).message;
        if (/permission|not permitted|EPERM|socket: Operation/i.test(msg)) {
          throw new CaptureInterfaceError(`Cannot open capture interface "${name}": permission denied (capturing needs CAP_NET_RAW: start it as root, adding --user NAME to drop to that user once capture is open, or under the hark.service unit, which grants the capability to the sensor alone)`, { cause: err });
        }
        if (/filter|syntax/i.test(msg)) throw new CaptureInterfaceError(`Cannot apply capture filter "${this.opts.filter}" on "${name}": ${msg}`, { cause: err });
        if (/down|not up/i.test(msg)) throw new CaptureInterfaceError(`Cannot open capture interface "${name}": the interface is down (ip link set ${name} up)`, { cause: err });
        throw new CaptureInterfaceError(`Cannot open capture interface "${name}": ${msg}`, { cause: err });
      }
      const linkType = LINK_TYPES[linkName];
      if (linkType === undefined) {
        cap.close();
        this.stop();
        throw new CaptureInterfaceError(`Cannot capture on "${name}": unsupported link type ${linkName}`);
      }
      cap.setMinBytes?.(0);
      this.linkTypes.push(linkName);
      cap.on('packet', (nbytes: number) => {
        this.packets[index]++;
        this.bytes[index] += nbytes;
        this.onPacket(linkType, view, 0, nbytes, nbytes, nowUs(), index);
      });
      this.handles.push(cap);
    });
  }

  stop(): void {
    for (const h of this.handles.splice(0)) {
      try {
        h.close();
      } catch {
        // closing a handle that failed half-way is best effort
      }
    }
  }
}

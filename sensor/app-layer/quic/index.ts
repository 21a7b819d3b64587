/**
 * App layer, QUIC: recognition, coverage counting and the client's hello, per UDP flow.
 * Input: UDP datagrams (`DatagramSink` shape). Output: every datagram of a QUIC flow counted as
 * `quic.bytes_uninspectable` / `quic.packets_uninspectable`, and at most one `QuicHelloInfo` per flow:
 * the TLS ClientHello from the client's Initial packets (v1, v2, draft-29), or a Google QUIC CHLO.
 * State is per flow, bounded (MAX_TRACKED_FLOWS, CRYPTO bytes per flow and in all) and dropped by `end`;
 * a flow's Initial keys and CRYPTO buffer, held until its hello is read or given up, are charged to the
 * flow memcap's inspection memory (`app_layer.memuse`) while they are held.
 */
import { Counters, defineAnomaly, defineCounter } from '../../events/counters.js';
import { chargeMemory } from '../../events/memuse.js';
import type { Direction, FlowInfo } from '../../flow/stream.js';
import { parseClientHello, type ClientHello } from '../tls/handshake.js';
import { findGquicClientHello } from './gquic.js';
import {
  CryptoBudget, CryptoStream, initialKeys, isDecryptableVersion, parseInitialFrames, unprotectLongPacket,
  type CryptoAddResult, type FrameError, type PacketKeys, type UnprotectError, type UnprotectedPacket,
} from './initial.js';
import {
  gquicConnectionId, gquicPublicHeaderVersion, lookupVersion, parseLongHeader, probeQuic, QUIC_VERSION_NEGOTIATION, readU32,
  type HeaderError, type LongHeader, type QuicFamily, type QuicVersionInfo,
} from './packet.js';

export { probeQuic, lookupVersion, parseLongHeader, parseVersionNegotiation, decodePacketNumber, MAX_CID_LEN, QUIC_V1, QUIC_V2, QUIC_DRAFT_29 } from './packet.js';
export type { QuicVersionInfo, LongHeader, HeaderError, PacketType, QuicFamily } from './packet.js';
export { MAX_CRYPTO_STREAM_BYTES } from './initial.js';

/**
 * QUIC flows tracked at once. After its hello a flow costs ~100 bytes, so this is a few MB; the flow
 * table's `end` normally frees entries long before, and past the cap the least recently seen is evicted.
 */
export const MAX_TRACKED_FLOWS = 65536;
/** CRYPTO bytes buffered across all flows still waiting for a complete ClientHello (memory bound). */
export const MAX_CRYPTO_BUFFERED_BYTES = 16 * 1024 * 1024;
/** Client Initial packets decrypted per flow before giving up (a hello takes 1-3; bounds AES work a peer can cause). */
export const MAX_INITIAL_PACKETS_PER_FLOW = 16;
/**
 * What one flow's Initial keys (key, iv, hp and the AES-ECB header-protection cipher) cost, charged to
 * `app_layer.memuse` while they are held: 2.5 KB of RSS a set on Node 20 x64, measured by keeping 100,000
 * sets derived with `initialKeys` (1 KB of it V8 heap, the rest OpenSSL's cipher context).
 */
export const QUIC_INITIAL_KEYS_BYTES = 2560;
/** Client datagrams searched for a Google QUIC CHLO (it is in the first one). */
export const MAX_GQUIC_CHLO_PACKETS = 4;
/** A flow is moved to the young end of the eviction order when this many insertions/moves happened since its last move. */
const TOUCH_INTERVAL = MAX_TRACKED_FLOWS >>> 2;
/** Bytes up to the end of a long header's version field. */
const LH_VERSION_END = 5;
/** gQUIC versions from Q050 (and every T0xx) protect their Initial packets: no plaintext CHLO. */
const GQUIC_FIRST_ENCRYPTED = 50;

const C_PACKETS = defineCounter('quic.packets_uninspectable');
const C_BYTES = defineCounter('quic.bytes_uninspectable');
const C_FLOWS = defineCounter('quic.flows');
const C_FLOWS_GQUIC = defineCounter('quic.flows_gquic');
const C_TRACKED = defineCounter('quic.flows_tracked');
const C_EVICTED = defineCounter('quic.flows_evicted');
const C_HELLO = defineCounter('quic.client_hello');
const C_HELLO_SNI = defineCounter('quic.client_hello_sni');
const C_VN = defineCounter('quic.version_negotiation');
const C_UNDECRYPTABLE = defineCounter('quic.undecryptable_version');
const C_INITIAL_LIMIT = defineCounter('quic.initial_limit');
const C_CRYPTO_LIMIT = defineCounter('quic.crypto_beyond_limit');
const C_CRYPTO_FRAGMENTED = defineCounter('quic.crypto_too_fragmented');
const C_CRYPTO_MEMCAP = defineCounter('quic.crypto_memcap');
const C_HELLO_INCOMPLETE = defineCounter('quic.client_hello_incomplete');
const C_GQUIC_NO_CHLO = defineCounter('quic.gquic_no_chlo');
/** The hello did not parse as a ClientHello (the TLS parser counts why, as its own anomaly). */
const C_HELLO_UNPARSED = defineCounter('quic.client_hello_unparsed');
const C_NOT_CLIENT_HELLO = defineAnomaly('quic.initial.not_client_hello');

const HEADER_ANOMALY: Record<HeaderError, number> = {
  truncated: defineAnomaly('quic.header.truncated'),
  cid_too_long: defineAnomaly('quic.header.cid_too_long'),
  token_beyond_datagram: defineAnomaly('quic.header.token_beyond_datagram'),
  length_beyond_datagram: defineAnomaly('quic.header.length_beyond_datagram'),
  unknown_version: defineAnomaly('quic.header.unknown_version'),
  not_long_header: defineAnomaly('quic.header.not_long_header'),
};
const UNPROTECT_ANOMALY: Record<UnprotectError, number> = {
  too_short: defineAnomaly('quic.initial.too_short'),
  decrypt_failed: defineAnomaly('quic.initial.decrypt_failed'),
  reserved_bits: defineAnomaly('quic.initial.reserved_bits'),
};
const FRAME_ANOMALY: Record<FrameError, number> = {
  frame_truncated: defineAnomaly('quic.initial.frame_truncated'),
  frame_not_allowed: defineAnomaly('quic.initial.frame_not_allowed'),
};
const CRYPTO_COUNTER: Record<Exclude<CryptoAddResult, 'ok'>, number> = {
  beyond_limit: C_CRYPTO_LIMIT,
  too_fragmented: C_CRYPTO_FRAGMENTED,
  memcap: C_CRYPTO_MEMCAP,
};

export interface QuicHelloInfo {
  readonly flow: FlowInfo;
  /** Timestamp of the datagram that completed the hello. */
  readonly tsUs: number;
  /** `name` (v1, v2, draft-29, Q025...) and `number` (the 32-bit version field). */
  readonly version: QuicVersionInfo;
  /** `tls`: a TLS ClientHello from IETF QUIC Initial packets; `gquic-chlo`: a Google QUIC CHLO. */
  readonly handshake: 'tls' | 'gquic-chlo';
  /** Hex of the connection id the Initial keys derive from (gQUIC: the client's connection id). */
  readonly dcid: string;
  /** The ClientHello handshake message body (after the 4-byte header); empty for gQUIC. A copy. */
  readonly clientHelloBody: Uint8Array;
  /** `parseClientHello(clientHelloBody)`, when it parses. */
  readonly clientHello?: ClientHello;
  readonly sni?: string;
  /** gQUIC CHLO UAID tag (the client's user agent). */
  readonly userAgent?: string;
}

interface QuicFlow {
  family: QuicFamily;
  version: QuicVersionInfo | undefined;
  /** The client's side: sender of the first Initial that opened with client keys (gQUIC: of the first versioned packet); -1 until known. */
  clientDir: Direction | -1;
  /** Hello reported or given up: only counting remains. */
  done: boolean;
  touched: number;
  /** The DCID the Initial keys derive from (RFC 9001 §5.2), and those keys. */
  odcid: Uint8Array | undefined;
  keys: PacketKeys | undefined;
  keysVersion: number;
  largestPn: number;
  initials: number;
  crypto: CryptoStream | undefined;
  gquicTries: number;
  /** Bytes charged to app_layer.memuse for `keys` and `crypto`. */
  charged: number;
}

const EMPTY = new Uint8Array(0);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function hexOf(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}

/**
 * Per-flow QUIC state machine; feed it every UDP datagram (or those of port 443) as the flow stage
 * does, and call `end` when a flow ends. `onHello` is called at most once per flow, from `datagram`.
 */
export class QuicTracker {
  private readonly flows = new Map<number, QuicFlow>();
  private readonly budget = new CryptoBudget(MAX_CRYPTO_BUFFERED_BYTES);
  private seq = 0;

  constructor(
    private readonly counters: Counters,
    private readonly onHello: (info: QuicHelloInfo) => void,
  ) {}

  /** Flows currently tracked. */
  get size(): number {
    return this.flows.size;
  }

  /** CRYPTO bytes buffered now across flows. */
  get bufferedCryptoBytes(): number {
    return this.budget.used;
  }

  /** Has this flow been recognised as QUIC (and not ended or evicted)? */
  isQuic(flowId: number): boolean {
    return this.flows.has(flowId);
  }

  /** One UDP datagram. Returns true when it was counted as QUIC. */
  datagram(flow: FlowInfo, dir: Direction, payload: Uint8Array, tsUs: number): boolean {
    let st = this.flows.get(flow.flowId);
    if (st === undefined) {
      if (!probeQuic(payload)) return false;
      st = this.track(flow.flowId, dir, payload);
    } else if (this.seq - st.touched > TOUCH_INTERVAL) {
      this.flows.delete(flow.flowId);
      this.flows.set(flow.flowId, st);
      st.touched = ++this.seq;
    }
    this.counters.inc(C_PACKETS);
    this.counters.inc(C_BYTES, payload.length);
    if (payload.length >= LH_VERSION_END && (payload[0] & 0x80) !== 0 && readU32(payload, 1) === QUIC_VERSION_NEGOTIATION) {
      this.counters.inc(C_VN);
      return true;
    }
    if (st.done || payload.length === 0) return true;
    if (st.family === 'gquic') this.gquicDatagram(flow, st, dir, payload, tsUs);
    else if ((payload[0] & 0x80) !== 0) this.longHeaders(flow, st, dir, payload, tsUs);
    this.charge(st);
    return true;
  }

  /** The flow ended: drop its state. */
  end(flowId: number): void {
    const st = this.flows.get(flowId);
    if (st === undefined) return;
    if (!st.done && st.crypto !== undefined && st.crypto.allocated > 0) this.counters.inc(C_HELLO_INCOMPLETE);
    this.release(st);
    this.flows.delete(flowId);
    this.counters.set(C_TRACKED, this.flows.size);
  }

  private track(flowId: number, dir: Direction, payload: Uint8Array): QuicFlow {
    if (this.flows.size >= MAX_TRACKED_FLOWS) {
      const oldest = this.flows.keys().next();
      if (oldest.done !== true) {
        const victim = this.flows.get(oldest.value);
        if (victim !== undefined) this.release(victim);
        this.flows.delete(oldest.value);
        this.counters.inc(C_EVICTED);
      }
    }
    let version: QuicVersionInfo | undefined;
    if ((payload[0] & 0x80) !== 0) {
      const v = readU32(payload, 1);
      version = v === QUIC_VERSION_NEGOTIATION ? undefined : lookupVersion(v);
    } else {
      version = gquicPublicHeaderVersion(payload);
    }
    const family: QuicFamily = version?.family ?? 'ietf';
    const st: QuicFlow = {
      family, version, clientDir: family === 'gquic' ? dir : -1, done: false, touched: ++this.seq,
      odcid: undefined, keys: undefined, keysVersion: -1, largestPn: -1, initials: 0, crypto: undefined, gquicTries: 0, charged: 0,
    };
    this.flows.set(flowId, st);
    this.counters.inc(family === 'gquic' ? C_FLOWS_GQUIC : C_FLOWS);
    this.counters.set(C_TRACKED, this.flows.size);
    return st;
  }

  private release(st: QuicFlow): void {
    st.crypto?.release();
    st.crypto = undefined;
    st.keys = undefined;
    this.charge(st);
  }

  /** Brings the flow's charge to app_layer.memuse in line with what it holds now: its keys and CRYPTO buffer. */
  private charge(st: QuicFlow): void {
    const held = (st.keys !== undefined ? QUIC_INITIAL_KEYS_BYTES : 0) + (st.crypto?.allocated ?? 0);
    if (held === st.charged) return;
    chargeMemory(this.counters, held - st.charged);
    st.charged = held;
  }

  private giveUp(st: QuicFlow): void {
    st.done = true;
    this.release(st);
  }

  /** IETF QUIC: walk the coalesced long-header packets (RFC 9000 §12.2) of one datagram. */
  private longHeaders(flow: FlowInfo, st: QuicFlow, dir: Direction, payload: Uint8Array, tsUs: number): void {
    let off = 0;
    // A short-header packet (or padding) takes the rest of the datagram.
    while (off < payload.length && (payload[off] & 0x80) !== 0) {
      const hdr = parseLongHeader(payload, off);
      if (typeof hdr === 'string') {
        this.counters.inc(HEADER_ANOMALY[hdr]);
        return;
      }
      st.version = hdr.version;
      if (hdr.type === 'initial') {
        if (st.clientDir === -1 || dir === st.clientDir) {
          this.clientInitial(flow, st, dir, payload, hdr, tsUs);
          if (st.done) return;
        }
      } else if (hdr.type === 'retry') {
        return;
      }
      off = hdr.end;
    }
  }

  /**
   * One Initial packet from the client's side. Which side is the client is learnt from the first Initial
   * that opens with client keys: the flow's originator is usually the client, but a capture can start
   * with the server's Initial, so both sides are tried until then (a failure on the responder's side
   * is then no anomaly: it is most likely the server's packet).
   */
  private clientInitial(flow: FlowInfo, st: QuicFlow, dir: Direction, payload: Uint8Array, hdr: LongHeader, tsUs: number): void {
    const v = hdr.version.number;
    if (!isDecryptableVersion(v)) {
      this.counters.inc(C_UNDECRYPTABLE);
      this.giveUp(st);
      return;
    }
    if (st.initials >= MAX_INITIAL_PACKETS_PER_FLOW) {
      this.counters.inc(C_INITIAL_LIMIT);
      this.giveUp(st);
      return;
    }
    st.initials++;
    const dcid = payload.subarray(hdr.dcidOff, hdr.dcidOff + hdr.dcidLen);
    let pkt: UnprotectedPacket | UnprotectError = 'decrypt_failed';
    if (st.odcid !== undefined) {
      // Later client Initials keep the first DCID's keys even after switching to the server's id.
      if (st.keys === undefined || st.keysVersion !== v) {
        st.keys = initialKeys(v, st.odcid);
        st.keysVersion = v;
      }
      if (st.keys !== undefined) pkt = unprotectLongPacket(payload, hdr, st.keys, st.largestPn);
    }
    if (pkt === 'decrypt_failed' && (st.odcid === undefined || !sameBytes(dcid, st.odcid))) {
      // First Initial, or a new attempt (after Retry, RFC 9000 §17.2.5.2): keys from this packet's DCID.
      const keys = initialKeys(v, dcid);
      const fresh = keys === undefined ? 'decrypt_failed' : unprotectLongPacket(payload, hdr, keys, -1);
      if (typeof fresh !== 'string') {
        if (st.odcid !== undefined) {
          st.crypto?.release(); // a new attempt resends its ClientHello from offset 0
          st.crypto = undefined;
        }
        st.odcid = dcid.slice();
        st.keys = keys;
        st.keysVersion = v;
        st.largestPn = -1;
        pkt = fresh;
      } else if (st.odcid === undefined) {
        pkt = fresh;
      }
    }
    if (typeof pkt === 'string') {
      if (st.clientDir !== -1 || dir === 0) this.counters.inc(UNPROTECT_ANOMALY[pkt]);
      return;
    }
    st.clientDir = dir;
    if (pkt.pn > st.largestPn) st.largestPn = pkt.pn;
    const frames = parseInitialFrames(pkt.payload);
    if (typeof frames === 'string') {
      this.counters.inc(FRAME_ANOMALY[frames]);
      return;
    }
    if (frames.crypto.length === 0) return;
    const crypto = (st.crypto ??= new CryptoStream(this.budget));
    for (const f of frames.crypto) {
      const r = crypto.add(f.offset, f.data);
      if (r !== 'ok') {
        this.counters.inc(CRYPTO_COUNTER[r]);
        this.giveUp(st);
        return;
      }
    }
    const body = crypto.clientHelloBody();
    if (body === undefined) return;
    if (typeof body === 'string') {
      this.counters.inc(body === 'beyond_limit' ? C_CRYPTO_LIMIT : C_NOT_CLIENT_HELLO);
      this.giveUp(st);
      return;
    }
    const copy = body.slice();
    const dcidHex = hexOf(st.odcid ?? EMPTY);
    this.giveUp(st);
    const clientHello = parseClientHello(copy, this.counters);
    if (clientHello === undefined) this.counters.inc(C_HELLO_UNPARSED);
    const info: { -readonly [K in keyof QuicHelloInfo]: QuicHelloInfo[K] } = {
      flow, tsUs, version: hdr.version, handshake: 'tls', dcid: dcidHex, clientHelloBody: copy,
    };
    if (clientHello !== undefined) {
      info.clientHello = clientHello;
      if (clientHello.sni !== undefined) info.sni = clientHello.sni;
    }
    this.report(info);
  }

  /** Google QUIC: the first client packets carry a plaintext CHLO up to Q046. */
  private gquicDatagram(flow: FlowInfo, st: QuicFlow, dir: Direction, payload: Uint8Array, tsUs: number): void {
    if (dir !== st.clientDir) return;
    const version = st.version;
    if (version === undefined) return;
    const minor = version.name.charCodeAt(0) === 0x51 ? Number(version.name.slice(1)) : GQUIC_FIRST_ENCRYPTED;
    if (minor >= GQUIC_FIRST_ENCRYPTED) {
      this.counters.inc(C_UNDECRYPTABLE);
      this.giveUp(st);
      return;
    }
    const hello = findGquicClientHello(payload);
    if (hello === undefined) {
      if (++st.gquicTries >= MAX_GQUIC_CHLO_PACKETS) {
        this.counters.inc(C_GQUIC_NO_CHLO);
        this.giveUp(st);
      }
      return;
    }
    const [cidOff, cidLen] = gquicConnectionId(payload, version);
    this.giveUp(st);
    const info: { -readonly [K in keyof QuicHelloInfo]: QuicHelloInfo[K] } = {
      flow, tsUs, version, handshake: 'gquic-chlo', dcid: hexOf(payload.subarray(cidOff, cidOff + cidLen)), clientHelloBody: EMPTY,
    };
    if (hello.sni !== undefined) info.sni = hello.sni;
    if (hello.userAgent !== undefined) info.userAgent = hello.userAgent;
    this.report(info);
  }

  private report(info: QuicHelloInfo): void {
    this.counters.inc(C_HELLO);
    if (info.sni !== undefined) this.counters.inc(C_HELLO_SNI);
    this.onHello(info);
  }
}

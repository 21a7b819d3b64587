/**
 * Test helper: a minimal, test-side TLS record and hello reader for the decryption tests (not the sensor's
 * parser). Input: one direction's reassembled stream bytes. Output: records split by their 5-byte headers,
 * the cleartext handshake messages before ChangeCipherSpec, and from the hellos the randoms, the suite,
 * the version (supported_versions for TLS 1.3) and the extended_master_secret / encrypt_then_mac flags;
 * plus drivers that decrypt a whole conversation with the sensor's key schedule and record decryptor.
 */
import type { Replay } from './replay.js';
import { suiteById } from '../../sensor/app-layer/tls/suites.js';
import { keyBlock, tls13NextTrafficSecret } from '../../sensor/app-layer/tls/key-schedule.js';
import { tls12Decryptors, tls13Decryptor, type DecryptResult, type RecordDecryptor } from '../../sensor/app-layer/tls/record-cipher.js';

export interface TlsRecord {
  type: number;
  version: number;
  header: Buffer;
  fragment: Buffer;
}

export interface HandshakeMessage {
  type: number;
  /** Whole message incl. its 4-byte header (what transcript hashes cover). */
  bytes: Buffer;
  body: Buffer;
}

export interface Hello {
  legacyVersion: number;
  random: Buffer;
  sessionId: Buffer;
  /** ServerHello only. */
  cipherSuite?: number;
  extensions: Map<number, Buffer>;
}

export interface TlsConversation {
  clientRecords: TlsRecord[];
  serverRecords: TlsRecord[];
  clientHandshake: HandshakeMessage[];
  serverHandshake: HandshakeMessage[];
  clientHello: Hello;
  serverHello: Hello;
  version: number;
  suiteId: number;
  extendedMasterSecret: boolean;
  encryptThenMac: boolean;
}

export const CT_CHANGE_CIPHER_SPEC = 20;
export const CT_ALERT = 21;
export const CT_HANDSHAKE = 22;
export const CT_APPLICATION_DATA = 23;

export const HS_CLIENT_HELLO = 1;
export const HS_SERVER_HELLO = 2;
export const HS_CERTIFICATE = 11;
export const HS_SERVER_HELLO_DONE = 14;
export const HS_CLIENT_KEY_EXCHANGE = 16;
export const HS_FINISHED = 20;

const EXT_ENCRYPT_THEN_MAC = 0x0016;
const EXT_EXTENDED_MASTER_SECRET = 0x0017;
const EXT_SUPPORTED_VERSIONS = 0x002b;

export function hex(s: string): Buffer {
  return Buffer.from(s.replace(/[^0-9a-fA-F]/g, ''), 'hex');
}

/** Splits a stream into records; a trailing incomplete record is dropped. */
export function splitRecords(stream: Uint8Array): TlsRecord[] {
  const buf = Buffer.from(stream.buffer, stream.byteOffset, stream.byteLength);
  const out: TlsRecord[] = [];
  let off = 0;
  while (off + 5 <= buf.length) {
    const len = buf.readUInt16BE(off + 3);
    if (off + 5 + len > buf.length) break;
    out.push({ type: buf[off], version: buf.readUInt16BE(off + 1), header: buf.subarray(off, off + 5), fragment: buf.subarray(off + 5, off + 5 + len) });
    off += 5 + len;
  }
  return out;
}

/** Handshake messages carried in cleartext handshake records before the first ChangeCipherSpec / encrypted record. */
export function cleartextHandshake(records: readonly TlsRecord[]): HandshakeMessage[] {
  const parts: Buffer[] = [];
  for (const r of records) {
    if (r.type !== CT_HANDSHAKE) break;
    parts.push(r.fragment);
  }
  return splitHandshake(Buffer.concat(parts));
}

export function splitHandshake(bytes: Buffer): HandshakeMessage[] {
  const out: HandshakeMessage[] = [];
  let off = 0;
  while (off + 4 <= bytes.length) {
    const len = bytes.readUIntBE(off + 1, 3);
    if (off + 4 + len > bytes.length) break;
    out.push({ type: bytes[off], bytes: bytes.subarray(off, off + 4 + len), body: bytes.subarray(off + 4, off + 4 + len) });
    off += 4 + len;
  }
  return out;
}

export function parseHello(msg: HandshakeMessage): Hello {
  const b = msg.body;
  let off = 0;
  const legacyVersion = b.readUInt16BE(off);
  off += 2;
  const random = b.subarray(off, off + 32);
  off += 32;
  const sidLen = b[off++];
  const sessionId = b.subarray(off, off + sidLen);
  off += sidLen;
  let cipherSuite: number | undefined;
  if (msg.type === HS_CLIENT_HELLO) {
    off += 2 + b.readUInt16BE(off);
    off += 1 + b[off];
  } else {
    cipherSuite = b.readUInt16BE(off);
    off += 3;
  }
  const extensions = new Map<number, Buffer>();
  if (off + 2 <= b.length) {
    const end = off + 2 + b.readUInt16BE(off);
    off += 2;
    while (off + 4 <= end) {
      const t = b.readUInt16BE(off);
      const l = b.readUInt16BE(off + 2);
      extensions.set(t, b.subarray(off + 4, off + 4 + l));
      off += 4 + l;
    }
  }
  return { legacyVersion, random, sessionId, cipherSuite, extensions };
}

/**
 * An SSL 2.0-compatible ClientHello (RFC 6101 Appendix E; RFC 5246 Appendix E.2): 2-byte header with the top
 * bit set, msg_type 1, version, cipher_spec/session_id/challenge lengths, then the three fields. The client
 * random is the challenge right-aligned in 32 bytes.
 */
function sslv2ClientHello(buf: Buffer): { hello: Hello; message: HandshakeMessage; length: number } | undefined {
  if (buf.length < 11 || (buf[0] & 0x80) === 0 || buf[2] !== HS_CLIENT_HELLO) return undefined;
  const len = ((buf[0] & 0x7f) << 8) | buf[1];
  const body = buf.subarray(2, 2 + len);
  const specLen = body.readUInt16BE(3);
  const sidLen = body.readUInt16BE(5);
  const chalLen = body.readUInt16BE(7);
  const challenge = body.subarray(9 + specLen + sidLen, 9 + specLen + sidLen + chalLen);
  const random = Buffer.alloc(32);
  challenge.copy(random, 32 - Math.min(32, challenge.length));
  const hello: Hello = { legacyVersion: body.readUInt16BE(1), random, sessionId: body.subarray(9 + specLen, 9 + specLen + sidLen), extensions: new Map() };
  return { hello, message: { type: HS_CLIENT_HELLO, bytes: body, body: body.subarray(1) }, length: 2 + len };
}

/** Reads one TLS connection from its two directions. */
export function readConversation(client: Uint8Array, server: Uint8Array): TlsConversation {
  const clientBuf = Buffer.from(client.buffer, client.byteOffset, client.byteLength);
  const v2 = sslv2ClientHello(clientBuf);
  const clientRecords = splitRecords(v2 ? clientBuf.subarray(v2.length) : clientBuf);
  const serverRecords = splitRecords(server);
  const clientHandshake = v2 ? [v2.message, ...cleartextHandshake(clientRecords)] : cleartextHandshake(clientRecords);
  const serverHandshake = cleartextHandshake(serverRecords);
  const ch = clientHandshake.find((m) => m.type === HS_CLIENT_HELLO);
  const sh = serverHandshake.find((m) => m.type === HS_SERVER_HELLO);
  if (!ch || !sh) throw new Error('no ClientHello / ServerHello in the streams');
  const clientHello = v2 ? v2.hello : parseHello(ch);
  const serverHello = parseHello(sh);
  const sv = serverHello.extensions.get(EXT_SUPPORTED_VERSIONS);
  const version = sv && sv.length === 2 ? sv.readUInt16BE(0) : serverHello.legacyVersion;
  return {
    clientRecords, serverRecords, clientHandshake, serverHandshake, clientHello, serverHello, version,
    suiteId: serverHello.cipherSuite as number,
    extendedMasterSecret: serverHello.extensions.has(EXT_EXTENDED_MASTER_SECRET),
    encryptThenMac: serverHello.extensions.has(EXT_ENCRYPT_THEN_MAC),
  };
}

/** Records after the first ChangeCipherSpec (TLS <= 1.2: the protected ones). */
export function afterChangeCipherSpec(records: readonly TlsRecord[]): TlsRecord[] {
  const i = records.findIndex((r) => r.type === CT_CHANGE_CIPHER_SPEC);
  return i < 0 ? [] : records.slice(i + 1);
}

/** Every TCP conversation of a replayed capture whose streams are whole (no gaps), as bytes. */
export function conversations(rep: Replay): Array<{ client: Buffer; server: Buffer; dstPort: number }> {
  return rep.flows
    .filter((f) => f.info.proto === 6 && f.streams[0].length > 0 && f.gaps[0].length === 0 && f.gaps[1].length === 0)
    .map((f) => ({ client: Buffer.from(f.streams[0], 'latin1'), server: Buffer.from(f.streams[1], 'latin1'), dstPort: f.info.dstPort }));
}

/** What one direction of a decrypted conversation carried. */
export interface DecryptedDirection {
  /** Application data plaintext, concatenated. */
  app: Buffer;
  /** Handshake plaintext (encrypted handshake records), concatenated. */
  handshake: Buffer;
  /** Inner content types in record order. */
  types: number[];
  /** Failure reasons, one per failed record. */
  failures: string[];
}

function emptyDirection(): DecryptedDirection {
  return { app: Buffer.alloc(0), handshake: Buffer.alloc(0), types: [], failures: [] };
}

function take(d: DecryptedDirection, r: DecryptResult): void {
  if (!r.ok) {
    d.failures.push(r.reason);
    return;
  }
  d.types.push(r.type);
  if (r.type === CT_APPLICATION_DATA) d.app = Buffer.concat([d.app, r.plaintext]);
  if (r.type === CT_HANDSHAKE) d.handshake = Buffer.concat([d.handshake, r.plaintext]);
}

/** The hellos and key exchange of a renegotiation, read from decrypted handshake records. */
export interface Renegotiation {
  clientHello: Hello;
  serverHello: Hello;
  clientHandshake: HandshakeMessage[];
  serverHandshake: HandshakeMessage[];
}

/**
 * Decrypts every protected record of a TLS <= 1.2 conversation from its master secret. A renegotiation (new
 * hellos inside the protected stream, then a protected ChangeCipherSpec) switches each direction to keys from
 * `renegotiatedMaster`, called with the new handshake; without it the records after it fail.
 */
export function decryptTls12(
  conv: TlsConversation, master: Uint8Array, renegotiatedMaster?: (r: Renegotiation) => Uint8Array | undefined,
): { client: DecryptedDirection; server: DecryptedDirection } {
  const client = emptyDirection();
  const server = emptyDirection();
  const clientRecords = afterChangeCipherSpec(conv.clientRecords);
  const serverRecords = afterChangeCipherSpec(conv.serverRecords);
  let pc = 0;
  let ps = 0;
  let epoch = { suiteId: conv.suiteId, master: Buffer.from(master), cr: conv.clientHello.random, sr: conv.serverHello.random };
  for (;;) {
    const suite = suiteById(epoch.suiteId);
    if (!suite) throw new Error(`suite 0x${epoch.suiteId.toString(16)} not decryptable`);
    const keys = keyBlock(conv.version, suite, epoch.master, epoch.cr, epoch.sr);
    const dec = tls12Decryptors(suite, conv.version, keys, conv.encryptThenMac);
    const hsStart = [client.handshake.length, server.handshake.length];
    const run = (records: TlsRecord[], from: number, d: DecryptedDirection, rd: RecordDecryptor): number => {
      let i = from;
      for (; i < records.length; i++) {
        const r = rd.decrypt(records[i].type, records[i].header, records[i].fragment);
        take(d, r);
        if (r.ok && r.type === CT_CHANGE_CIPHER_SPEC) return i + 1;
      }
      return -1;
    };
    const nc = run(clientRecords, pc, client, dec.client);
    const ns = run(serverRecords, ps, server, dec.server);
    if (nc < 0 && ns < 0) break;
    const ch = splitHandshake(client.handshake.subarray(hsStart[0]));
    const sh = splitHandshake(server.handshake.subarray(hsStart[1]));
    const newCh = ch.find((m) => m.type === HS_CLIENT_HELLO);
    const newSh = sh.find((m) => m.type === HS_SERVER_HELLO);
    if (!newCh || !newSh || !renegotiatedMaster) break;
    const reneg = { clientHello: parseHello(newCh), serverHello: parseHello(newSh), clientHandshake: ch, serverHandshake: sh };
    const next = renegotiatedMaster(reneg);
    if (!next) break;
    epoch = { suiteId: reneg.serverHello.cipherSuite as number, master: Buffer.from(next), cr: reneg.clientHello.random, sr: reneg.serverHello.random };
    pc = nc < 0 ? clientRecords.length : nc;
    ps = ns < 0 ? serverRecords.length : ns;
  }
  return { client, server };
}

export interface Tls13Secrets {
  clientEarlyTrafficSecret?: Uint8Array;
  clientHandshakeTrafficSecret?: Uint8Array;
  serverHandshakeTrafficSecret?: Uint8Array;
  clientTrafficSecret0?: Uint8Array;
  serverTrafficSecret0?: Uint8Array;
}

const HS_END_OF_EARLY_DATA = 5;
const HS_KEY_UPDATE = 24;

/**
 * Decrypts a TLS 1.3 conversation the way the protocol orders keys: early data until EndOfEarlyData (when an
 * early secret is given), handshake keys until the sender's Finished, then application keys, moving to the
 * next generation after each KeyUpdate. ChangeCipherSpec records (compatibility mode) are skipped.
 */
export function decryptTls13(conv: TlsConversation, s: Tls13Secrets): { client: DecryptedDirection; server: DecryptedDirection } {
  const suite = suiteById(conv.suiteId);
  if (!suite || !s.clientHandshakeTrafficSecret || !s.serverHandshakeTrafficSecret || !s.clientTrafficSecret0 || !s.serverTrafficSecret0) {
    throw new Error('TLS 1.3 suite or secrets missing');
  }
  const run = (records: TlsRecord[], early: Uint8Array | undefined, hs: Uint8Array, app0: Uint8Array): DecryptedDirection => {
    const out = emptyDirection();
    let phase: 'early' | 'hs' | 'app' = early ? 'early' : 'hs';
    let appSecret: Buffer = Buffer.from(app0);
    let dec = tls13Decryptor(suite, early ?? hs);
    for (const r of records) {
      if (r.type !== CT_APPLICATION_DATA) continue;
      const res = dec.decrypt(r.type, r.header, r.fragment);
      take(out, res);
      if (!res.ok || res.type !== CT_HANDSHAKE) continue;
      const msgs = splitHandshake(Buffer.from(res.plaintext));
      if (phase === 'early' && msgs.some((m) => m.type === HS_END_OF_EARLY_DATA)) {
        phase = 'hs';
        dec = tls13Decryptor(suite, hs);
      } else if (phase === 'hs' && msgs.some((m) => m.type === HS_FINISHED)) {
        phase = 'app';
        dec = tls13Decryptor(suite, appSecret);
      } else if (phase === 'app' && msgs.some((m) => m.type === HS_KEY_UPDATE)) {
        appSecret = tls13NextTrafficSecret(suite.prfHash, appSecret);
        dec = tls13Decryptor(suite, appSecret);
      }
    }
    return out;
  };
  return {
    client: run(conv.clientRecords, s.clientEarlyTrafficSecret, s.clientHandshakeTrafficSecret, s.clientTrafficSecret0),
    server: run(conv.serverRecords, undefined, s.serverHandshakeTrafficSecret, s.serverTrafficSecret0),
  };
}

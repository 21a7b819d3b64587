/**
 * Benchmark: TLS record decryption (sensor/app-layer/tls/record-cipher.ts) per suite family. Records of
 * 16 KiB (the TLS maximum, what bulk transfers carry) are sealed here with node:crypto, then opened in
 * order by one `RecordDecryptor`; every plaintext length is checked. MB/s is 10^6 plaintext bytes per
 * second of CPU time on one core (the decryptor is synchronous and single-threaded). Prints figures; asserts
 * nothing about speed.
 *
 *   node dist/bench/tls.js [MB per suite, default 64]
 */
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { RecordDecryptor } from '../sensor/app-layer/tls/record-cipher.js';
import { suiteById, type CipherSuite } from '../sensor/app-layer/tls/suites.js';
import { BenchCommandLine } from './command-line.js';

/** TLS plaintext fragment limit (RFC 8446 §5.1, RFC 5246 §6.2.1). */
const RECORD_BYTES = 16 * 1024;
const TLS12 = 0x0303;
const TLS13 = 0x0304;
const CT_APPLICATION_DATA = 23;

interface Sealed {
  header: Buffer;
  fragment: Buffer;
}

interface Family {
  label: string;
  suiteId: number;
  version: number;
  encryptThenMac?: boolean;
}

const FAMILIES: Family[] = [
  { label: 'AES-128-GCM (TLS 1.2, 0xc02f)', suiteId: 0xc02f, version: TLS12 },
  { label: 'AES-256-GCM (TLS 1.3, 0x1302)', suiteId: 0x1302, version: TLS13 },
  { label: 'ChaCha20-Poly1305 (TLS 1.3, 0x1303)', suiteId: 0x1303, version: TLS13 },
  { label: 'AES-128-CBC-SHA (TLS 1.2, 0xc013)', suiteId: 0xc013, version: TLS12 },
  { label: 'AES-256-CBC-SHA384 EtM (TLS 1.2, 0xc028)', suiteId: 0xc028, version: TLS12, encryptThenMac: true },
];

function header(type: number, version: number, length: number): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt16BE(version, 1);
  h.writeUInt16BE(length, 3);
  return h;
}

function seqBytes(seq: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(Math.floor(seq / 0x100000000), 0);
  b.writeUInt32BE(seq >>> 0, 4);
  return b;
}

/** Seals `count` records of `plain` the way a TLS peer would, for the decryptor to open. */
function seal(suite: CipherSuite, f: Family, key: Buffer, iv: Buffer, macKey: Buffer, plain: Buffer, count: number): Sealed[] {
  const out: Sealed[] = [];
  for (let seq = 0; seq < count; seq++) {
    if (f.version === TLS13 || suite.cipher === 'chacha20-poly1305') {
      const nonce = Buffer.from(iv);
      const s = seqBytes(seq);
      for (let i = 0; i < 8; i++) nonce[4 + i] ^= s[i];
      const inner = f.version === TLS13 ? Buffer.concat([plain, Buffer.from([CT_APPLICATION_DATA])]) : plain;
      const h = header(CT_APPLICATION_DATA, TLS12, inner.length + 16);
      const c = createCipheriv(suite.nodeCipher as 'aes-128-gcm', key, nonce, { authTagLength: 16 });
      c.setAAD(f.version === TLS13 ? h : Buffer.concat([s, h.subarray(0, 3), u16(plain.length)]));
      out.push({ header: h, fragment: Buffer.concat([c.update(inner), c.final(), c.getAuthTag()]) });
    } else if (suite.kind === 'aead') {
      const explicit = seqBytes(seq);
      const c = createCipheriv(suite.nodeCipher as 'aes-128-gcm', key, Buffer.concat([iv, explicit]), { authTagLength: 16 });
      const h = header(CT_APPLICATION_DATA, TLS12, 8 + plain.length + 16);
      c.setAAD(Buffer.concat([seqBytes(seq), h.subarray(0, 3), u16(plain.length)]));
      out.push({ header: h, fragment: Buffer.concat([explicit, c.update(plain), c.final(), c.getAuthTag()]) });
    } else {
      const bl = suite.blockLen;
      const recIv = randomBytes(bl);
      const macHeader = (len: number) => Buffer.concat([seqBytes(seq), Buffer.from([CT_APPLICATION_DATA, TLS12 >> 8, TLS12 & 0xff]), u16(len)]);
      const body = f.encryptThenMac ? plain : Buffer.concat([plain, createHmac(suite.mac as string, macKey).update(macHeader(plain.length)).update(plain).digest()]);
      const padLen = (bl - ((body.length + 1) % bl)) % bl;
      const padded = Buffer.concat([body, Buffer.alloc(padLen + 1, padLen)]);
      const c = createCipheriv(suite.nodeCipher, key, recIv);
      c.setAutoPadding(false);
      const ct = Buffer.concat([recIv, c.update(padded), c.final()]);
      const fragment = f.encryptThenMac ? Buffer.concat([ct, createHmac(suite.mac as string, macKey).update(macHeader(ct.length)).update(ct).digest()]) : ct;
      out.push({ header: header(CT_APPLICATION_DATA, TLS12, fragment.length), fragment });
    }
  }
  return out;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n, 0);
  return b;
}

/** Decrypts `megabytes` of 16 KiB records per suite family; returns plaintext MB per CPU second. */
export function benchTlsDecrypt(megabytes = 64): Array<{ suite: string; mbPerSec: number }> {
  const count = Math.max(1, Math.round((megabytes * 1e6) / RECORD_BYTES));
  const plain = randomBytes(RECORD_BYTES);
  const results: Array<{ suite: string; mbPerSec: number }> = [];
  for (const f of FAMILIES) {
    const suite = suiteById(f.suiteId);
    if (!suite) throw new Error(`suite 0x${f.suiteId.toString(16)} missing`);
    const key = randomBytes(suite.keyLen);
    const iv = f.version === TLS13 ? randomBytes(12) : randomBytes(suite.kind === 'aead' ? suite.ivLen : 0);
    const macKey = randomBytes(suite.macLen);
    // A short warm-up set first (JIT, OpenSSL tables), then the measured run on fresh records.
    const warm = seal(suite, f, key, iv, macKey, plain, Math.min(64, count));
    const wd = new RecordDecryptor({ suite, version: f.version, key, iv, macKey, encryptThenMac: f.encryptThenMac });
    for (const r of warm) wd.decrypt(CT_APPLICATION_DATA, r.header, r.fragment);
    const records = seal(suite, f, key, iv, macKey, plain, count);
    const d = new RecordDecryptor({ suite, version: f.version, key, iv, macKey, encryptThenMac: f.encryptThenMac });
    let bytes = 0;
    const cpu0 = process.cpuUsage();
    for (const r of records) {
      const res = d.decrypt(CT_APPLICATION_DATA, r.header, r.fragment);
      if (!res.ok || res.plaintext.length !== RECORD_BYTES) throw new Error(`${f.label}: record did not open (${res.ok ? res.plaintext.length : res.reason})`);
      bytes += res.plaintext.length;
    }
    const cpu = process.cpuUsage(cpu0);
    const seconds = (cpu.user + cpu.system) / 1e6;
    results.push({ suite: f.label, mbPerSec: Math.round(bytes / 1e6 / seconds) });
  }
  return results;
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const cli: BenchCommandLine = new BenchCommandLine('bench/tls', 'Usage: node dist/bench/tls.js [MB per suite, default 64]\n');
  const { positionals } = cli.parse({ allowPositionals: true });
  if (positionals.length > 1) cli.fail('one size in MB, please');
  const mb = cli.positiveNumber('MB per suite', positionals[0] ?? '64', 'megabytes');
  console.log(`TLS record decryption, ${mb} MB of ${RECORD_BYTES}-byte records per suite, one core (MB/s of CPU time):`);
  for (const r of benchTlsDecrypt(mb)) console.log(`  ${r.suite.padEnd(42)} ${String(r.mbPerSec).padStart(6)} MB/s`);
}

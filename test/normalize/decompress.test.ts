import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { Counters } from '../../sensor/events/counters.js';
import { memoryInUse } from '../../sensor/events/memuse.js';
import {
  brotliRingBytes, DecoderChain, DEFAULT_DECODED_LIMIT_BYTES, isZlibHeader, MAX_CONTENT_ENCODINGS, MAX_DECODED_BYTES, MAX_DECOMPRESSION_RATIO,
  parseContentEncoding, RATIO_CHECK_MIN_BYTES, STREAMING_DECODE_AVAILABLE, type Coding, type DecoderChainOptions,
} from '../../sensor/normalize/decompress.js';

const TEXT = Buffer.from(
  'Hark decodes bodies as they arrive. '.repeat(40) + 'The quick brown fox jumps over the lazy dog 0123456789\n'.repeat(30),
  'latin1',
);

function brotli(data: Buffer, quality = 5): Buffer {
  return zlib.brotliCompressSync(data, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: quality } });
}

const ENCODED: Record<string, { codings: Coding[]; wire: Buffer }> = {
  gzip: { codings: ['gzip'], wire: zlib.gzipSync(TEXT) },
  'deflate-zlib': { codings: ['deflate'], wire: zlib.deflateSync(TEXT) },
  'deflate-raw': { codings: ['deflate'], wire: zlib.deflateRawSync(TEXT) },
  br: { codings: ['br'], wire: brotli(TEXT) },
  // "gzip, br": gzip applied first, then br; decoding runs br then gzip.
  'gzip,br': { codings: ['gzip', 'br'], wire: brotli(zlib.gzipSync(TEXT)) },
};

interface Run {
  out: Buffer;
  chain: DecoderChain;
  counters: Counters;
  /** Decoded bytes seen by the time each write() returned. */
  afterWrite: number[];
}

function decode(codings: Coding[], pieces: Uint8Array[], options: DecoderChainOptions = {}): Run {
  const counters = new Counters();
  const parts: Buffer[] = [];
  let total = 0;
  const chain = new DecoderChain(codings, (chunk) => {
    parts.push(Buffer.from(chunk)); // the view is only valid during the call
    total += chunk.length;
  }, counters, options);
  const afterWrite: number[] = [];
  for (const p of pieces) {
    chain.write(p);
    afterWrite.push(total);
  }
  chain.end();
  return { out: Buffer.concat(parts), chain, counters, afterWrite };
}

function bytewise(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i++) out.push(b.subarray(i, i + 1));
  return out;
}

/** gzip of `mib` MiB of zeros built from one flushed deflate block repeated: ~1 KB per MiB, built in ms. */
function zeroGzipBomb(mib: number): Buffer {
  const block = zlib.deflateRawSync(Buffer.alloc(1 << 20), { level: 9, finishFlush: zlib.constants.Z_FULL_FLUSH });
  let crc = 0;
  const zeros = Buffer.alloc(1 << 20);
  for (let i = 0; i < mib; i++) crc = zlib.crc32(zeros, crc);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE((mib * (1 << 20)) >>> 0, 4);
  const header = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
  return Buffer.concat([header, ...Array<Buffer>(mib).fill(block), Buffer.from([3, 0]), trailer]);
}

/** `head` then `repeat` times `unit`, brotli-compressed as a stream (the plain text is never held whole). */
async function brotliOfRepeats(head: Buffer, unit: Buffer, repeat: number): Promise<Buffer> {
  const enc = zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5, [zlib.constants.BROTLI_PARAM_LGWIN]: 24 } });
  const parts: Buffer[] = [];
  enc.on('data', (d: Buffer) => parts.push(d));
  const done = new Promise((resolve) => enc.on('end', resolve));
  enc.write(head);
  for (let i = 0; i < repeat; i++) enc.write(unit);
  enc.end();
  await done;
  return Buffer.concat(parts);
}

/**
 * `Content-Encoding: gzip, br` bodies whose br layer expands to 64 MiB that never reach the final output:
 * `trailing`, a 25-byte gzip member of "hello" then zeros (skipped as data after the member's end);
 * `stored`, a gzip header then empty non-final stored blocks (00 00 00 ff ff: consumed, nothing out).
 */
const STACKED_BOMB_MIB = 64;
const stackedBombs = (async () => {
  const zeros = Buffer.alloc(1 << 20);
  const emptyStored = Buffer.alloc(5 * 209_715);
  for (let i = 0; i < emptyStored.length; i += 5) emptyStored.set([0, 0, 0, 0xff, 0xff], i);
  const gzipHeader = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
  return {
    trailing: await brotliOfRepeats(zlib.gzipSync(Buffer.from('hello')), zeros, STACKED_BOMB_MIB),
    stored: await brotliOfRepeats(gzipHeader, emptyStored, STACKED_BOMB_MIB),
  };
})();

function packets(b: Buffer, size = 1460): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

/** Incompressible bytes (xorshift32, seeded): compressed, they grow a little. */
function noise(length: number, seed = 1): Buffer {
  const b = Buffer.alloc(length);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    b[i] = s >>> 24;
  }
  return b;
}

test('STREAMING_DECODE_AVAILABLE holds on this Node (the fast path is the one under test)', () => {
  assert.equal(STREAMING_DECODE_AVAILABLE, true);
});

test('parseContentEncoding keeps header order, maps x-gzip, drops identity, reports unknown tokens', () => {
  assert.deepEqual(parseContentEncoding(['gzip, br']), { codings: ['gzip', 'br'], unknown: [] });
  assert.deepEqual(parseContentEncoding(['X-GZIP', ' Deflate ']), { codings: ['gzip', 'deflate'], unknown: [] });
  assert.deepEqual(parseContentEncoding(['identity', '', 'br,identity']), { codings: ['br'], unknown: [] });
  assert.deepEqual(parseContentEncoding(['utf-8', 'compress']), { codings: [], unknown: ['utf-8', 'compress'] });
});

test('isZlibHeader tells zlib-wrapped deflate from raw deflate by the first two bytes', () => {
  assert.equal(isZlibHeader(0x78, 0x9c), true); // default compression
  assert.equal(isZlibHeader(0x78, 0x01), true);
  assert.equal(isZlibHeader(0x78, 0xda), true);
  assert.equal(isZlibHeader(0x8b, 0x30), false); // http-evader-106 raw body
  assert.equal(isZlibHeader(0x78, 0x9d), false); // FCHECK wrong
  assert.equal(isZlibHeader(0x1f, 0x8b), false); // gzip magic
});

for (const [name, { codings, wire }] of Object.entries(ENCODED)) {
  test(`DecoderChain decodes ${name} identically in one piece and byte by byte`, () => {
    const whole = decode(codings, [wire]);
    assert.equal(whole.chain.status, 'ok');
    assert.ok(whole.out.equals(TEXT));
    const bytes = decode(codings, bytewise(wire));
    assert.equal(bytes.chain.status, 'ok');
    assert.ok(bytes.out.equals(TEXT));
    assert.equal(bytes.chain.wireBytes, wire.length);
    assert.equal(bytes.chain.decodedBytes, TEXT.length);
  });

  test(`DecoderChain decodes ${name} cut at every byte offset`, () => {
    for (let k = 0; k <= wire.length; k++) {
      const r = decode(codings, [wire.subarray(0, k), wire.subarray(k)]);
      assert.equal(r.chain.status, 'ok', `cut at ${k}`);
      assert.ok(r.out.equals(TEXT), `cut at ${k}`);
    }
  });
}

test('DecoderChain delivers synchronously: output is out before write() returns, none held for end()', () => {
  const big = Buffer.alloc(600_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251; // poorly compressible
  const wire = zlib.gzipSync(big);
  const half = wire.length >> 1;
  const r = decode(['gzip'], [wire.subarray(0, half), wire.subarray(half)]);
  assert.ok(r.afterWrite[0] > 250_000, `only ${r.afterWrite[0]} bytes out after the first half`);
  assert.equal(r.afterWrite[1], big.length);
  assert.ok(r.out.equals(big));
});

test('DecoderChain decodes gzip, br stacked: br first, then gzip', () => {
  const r = decode(['gzip', 'br'], [ENCODED['gzip,br'].wire]);
  assert.ok(r.out.equals(TEXT));
  // The same bytes read the other way round are corrupt.
  const wrong = decode(['br', 'gzip'], [ENCODED['gzip,br'].wire]);
  assert.equal(wrong.chain.status, 'corrupt');
  assert.equal(wrong.counters.get('decompress.corrupt'), 1);
});

test('DecoderChain refuses more than MAX_CONTENT_ENCODINGS layers, counted, nothing decoded', () => {
  const codings: Coding[] = Array<Coding>(MAX_CONTENT_ENCODINGS + 1).fill('gzip');
  let wire = TEXT;
  for (let i = 0; i < codings.length; i++) wire = zlib.gzipSync(wire);
  const r = decode(codings, [wire]);
  assert.equal(r.chain.status, 'layers_exceeded');
  assert.equal(r.out.length, 0);
  assert.equal(r.counters.get('decompress.layers_exceeded'), 1);
  const ok = decode(codings.slice(1), [zlib.gunzipSync(wire)]);
  assert.ok(ok.out.equals(TEXT)); // MAX_CONTENT_ENCODINGS layers themselves are fine
});

test('DecoderChain stops at corrupt data with an anomaly, does not throw, and emits no async error', async () => {
  const wire = Buffer.concat([zlib.gzipSync(TEXT).subarray(0, 10), Buffer.from('this is not deflate data at all')]);
  const r = decode(['gzip'], [wire, Buffer.from('more')]);
  assert.equal(r.chain.status, 'corrupt');
  assert.notEqual(r.chain.error, '');
  assert.equal(r.counters.get('decompress.corrupt'), 1);
  const br = decode(['br'], [Buffer.from('plain text labelled br')]);
  assert.equal(br.chain.status, 'corrupt');
  // node:zlib would emit 'error' on a later tick if its handler were still installed.
  await new Promise((resolve) => setTimeout(resolve, 20));
});

test('DecoderChain stops a 100 MiB gzip bomb at the output limit, counted, without inflating the rest', () => {
  const bomb = zeroGzipBomb(100);
  assert.ok(bomb.length < 120_000, `bomb is ${bomb.length} bytes`);
  // The construction yields a valid gzip (CRC and size checked by node:zlib), shown on a small one.
  assert.ok(zlib.gunzipSync(zeroGzipBomb(3)).equals(Buffer.alloc(3 << 20)));

  const pieces: Buffer[] = [];
  for (let i = 0; i < bomb.length; i += 1460) pieces.push(bomb.subarray(i, i + 1460));
  const r = decode(['gzip'], pieces);
  assert.equal(r.chain.status, 'output_limit');
  assert.equal(r.out.length, DEFAULT_DECODED_LIMIT_BYTES);
  assert.equal(r.counters.get('decompress.output_limit'), 1);
  assert.ok(r.chain.wireBytes < bomb.length / 4, `read ${r.chain.wireBytes} of ${bomb.length} wire bytes`);
});

test('DecoderChain trips the ratio guard on brotli of zeros once past RATIO_CHECK_MIN_BYTES', () => {
  const wire = brotli(Buffer.alloc(8 * 1024 * 1024), 5);
  assert.ok(wire.length < 100, `${wire.length} wire bytes`);
  const r = decode(['br'], [wire], { maxOutputBytes: 64 * 1024 * 1024 });
  assert.equal(r.chain.status, 'ratio_limit');
  assert.equal(r.counters.get('decompress.ratio_limit'), 1);
  // Stops at the first output piece (16 KiB) past the threshold.
  assert.ok(r.out.length > RATIO_CHECK_MIN_BYTES && r.out.length <= RATIO_CHECK_MIN_BYTES + 16384, `${r.out.length}`);
  // Ordinary text is far below the ratio.
  assert.equal(decode(['br'], [brotli(TEXT)], { maxOutputBytes: 64 * 1024 * 1024 }).chain.status, 'ok');
});

test('DecoderChain maxOutputBytes: a body exactly at the limit is not truncated, one byte more is', () => {
  const exact = decode(['gzip'], [zlib.gzipSync(TEXT)], { maxOutputBytes: TEXT.length });
  assert.equal(exact.chain.status, 'ok');
  assert.equal(exact.out.length, TEXT.length);
  const less = decode(['gzip'], [zlib.gzipSync(TEXT)], { maxOutputBytes: TEXT.length - 1 });
  assert.equal(less.chain.status, 'output_limit');
  assert.ok(less.out.equals(TEXT.subarray(0, TEXT.length - 1)));
  const identity = decode([], [TEXT.subarray(0, 10), TEXT.subarray(10)], { maxOutputBytes: 15 });
  assert.equal(identity.chain.status, 'output_limit');
  assert.ok(identity.out.equals(TEXT.subarray(0, 15)));
});

test('DecoderChain decodes multi-member gzip and counts bytes after the end of a deflate stream', () => {
  const two = decode(['gzip'], [Buffer.concat([zlib.gzipSync(TEXT), zlib.gzipSync(TEXT)])]);
  assert.equal(two.out.length, TEXT.length * 2);
  const trailing = decode(['deflate'], [Buffer.concat([zlib.deflateSync(TEXT), Buffer.from('junk')])]);
  assert.ok(trailing.out.equals(TEXT));
  assert.equal(trailing.counters.get('decompress.trailing_data'), 1);
});

test('DecoderChain abort releases the decoders and emits nothing more', () => {
  const wire = zlib.gzipSync(TEXT);
  const counters = new Counters();
  let n = 0;
  const chain = new DecoderChain(['gzip'], (c) => { n += c.length; }, counters);
  chain.write(wire.subarray(0, 40));
  chain.abort();
  const before = n;
  chain.write(wire.subarray(40));
  chain.end();
  assert.equal(n, before);
  assert.equal(chain.status, 'aborted');
});

test('DecoderChain buffered fallback gives the same output at end(), bounded and counted', () => {
  for (const [name, { codings, wire }] of Object.entries(ENCODED)) {
    const r = decode(codings, bytewise(wire), { forceBuffered: true });
    assert.ok(r.out.equals(TEXT), name);
    assert.equal(r.afterWrite[r.afterWrite.length - 1], 0, `${name}: nothing before end()`);
    assert.equal(r.counters.get('decompress.buffered_fallback'), 1);
  }
  const bomb = decode(['gzip'], [zeroGzipBomb(20)], { forceBuffered: true, maxOutputBytes: 1 << 20 });
  assert.equal(bomb.chain.status, 'output_limit');
  const corrupt = decode(['gzip'], [Buffer.from('nope')], { forceBuffered: true });
  assert.equal(corrupt.chain.status, 'corrupt');
});

test('DecoderChain reuses decoders across messages: each message decodes alone after a cut-off, a corrupt and an interleaved one', () => {
  const other = Buffer.from('A second page, another text entirely. '.repeat(50), 'latin1');
  const corrupt: Record<string, Buffer> = {
    gzip: Buffer.concat([zlib.gzipSync(TEXT).subarray(0, 10), Buffer.from('this is not deflate data at all')]),
    br: Buffer.from('plain text labelled br'),
    deflate: Buffer.from([0xff, 0xff, 0xff, 0xff]), // a final block of the reserved type 3
  };
  for (const [codings, pack] of [[['gzip'], zlib.gzipSync], [['br'], (b: Buffer) => brotli(b)], [['deflate'], zlib.deflateRawSync]] as [Coding[], (b: Buffer) => Buffer][]) {
    const what = codings.join(',');
    // cut off mid-stream by the output limit (the decoder goes back to the pool mid-stream)...
    const cut = decode(codings, [pack(TEXT)], { maxOutputBytes: 100 });
    assert.equal(cut.chain.status, 'output_limit', what);
    // ...corrupt (that decoder is closed, never reused)...
    const bad = decode(codings, [corrupt[what]]);
    assert.equal(bad.chain.status, 'corrupt', what);
    // ...then whole messages, sequential and interleaved, each equal to its own text.
    for (let i = 0; i < 3; i++) assert.deepEqual(decode(codings, [pack(i % 2 ? other : TEXT)]).out, i % 2 ? other : TEXT, `${what} #${i}`);
    const outA: Buffer[] = [];
    const outB: Buffer[] = [];
    const a = new DecoderChain(codings, (c) => outA.push(Buffer.from(c)), new Counters());
    const b = new DecoderChain(codings, (c) => outB.push(Buffer.from(c)), new Counters());
    const wa = pack(TEXT);
    const wb = pack(other);
    for (let k = 0; k < Math.max(wa.length, wb.length); k += 97) {
      a.write(wa.subarray(k, k + 97));
      b.write(wb.subarray(k, k + 97));
    }
    a.end();
    b.end();
    assert.deepEqual(Buffer.concat(outA), TEXT, `${what}: interleaved A`);
    assert.deepEqual(Buffer.concat(outB), other, `${what}: interleaved B`);
  }
});

test('DecoderChain counts the br output of a gzip, br bomb that the ended gzip layer skips as trailing data: ratio_limit, bounded work', async () => {
  const { trailing: wire } = await stackedBombs;
  assert.ok(wire.length < 1000, `${wire.length} wire bytes`);
  // The most work the ratio allows one layer: past the threshold, one 16 KiB output piece at most.
  const bound = Math.max(RATIO_CHECK_MIN_BYTES, wire.length * MAX_DECOMPRESSION_RATIO) + 16384;
  for (const maxOutputBytes of [DEFAULT_DECODED_LIMIT_BYTES, MAX_DECODED_BYTES]) {
    const r = decode(['gzip', 'br'], packets(wire), { maxOutputBytes });
    assert.equal(r.chain.status, 'ratio_limit');
    assert.equal(r.counters.get('decompress.ratio_limit'), 1);
    assert.equal(r.counters.get('decompress.trailing_data'), 1);
    assert.equal(r.counters.get('decompress.output_limit'), 0);
    assert.equal(r.out.toString(), 'hello');
    assert.equal(r.chain.decodedBytes, 5);
    // The br layer's 64 MiB were not produced: work stopped where its output passed the ratio.
    assert.ok(r.chain.workBytes > RATIO_CHECK_MIN_BYTES, `${r.chain.workBytes}`);
    assert.ok(r.chain.workBytes <= bound + 5, `${r.chain.workBytes} bytes of work, bound ${bound}`);
  }
});

test('DecoderChain counts the br output of a gzip, br bomb that the gzip layer consumes without output (empty stored blocks)', async () => {
  const { stored: wire } = await stackedBombs;
  assert.ok(wire.length < 1000, `${wire.length} wire bytes`);
  const r = decode(['gzip', 'br'], packets(wire));
  assert.equal(r.chain.status, 'ratio_limit');
  assert.equal(r.counters.get('decompress.ratio_limit'), 1);
  assert.equal(r.counters.get('decompress.trailing_data'), 0);
  assert.equal(r.out.length, 0);
  const bound = Math.max(RATIO_CHECK_MIN_BYTES, wire.length * MAX_DECOMPRESSION_RATIO) + 16384;
  assert.ok(r.chain.workBytes > RATIO_CHECK_MIN_BYTES && r.chain.workBytes <= bound, `${r.chain.workBytes}`);
});

test('DecoderChain holds an intermediate layer to the output limit plus its margin when the ratio allows more', async () => {
  const { trailing: wire } = await stackedBombs;
  // Below the ratio threshold: the byte cap of the br layer is what bites.
  const r = decode(['gzip', 'br'], packets(wire), { maxOutputBytes: 256 * 1024 });
  assert.ok(r.chain.maxLayerBytes < RATIO_CHECK_MIN_BYTES);
  assert.equal(r.chain.status, 'output_limit');
  assert.equal(r.counters.get('decompress.output_limit'), 1);
  assert.equal(r.counters.get('decompress.ratio_limit'), 0);
  assert.equal(r.out.toString(), 'hello');
  assert.equal(r.chain.workBytes, r.chain.maxLayerBytes + 5);
});

test('DecoderChain decodes three honest stacked layers exactly and counts each layer\'s output as work', () => {
  const text = Buffer.concat([TEXT, noise(200_000), Buffer.alloc(300_000, 'a'), TEXT]);
  const deflated = zlib.deflateSync(text);
  const gzipped = zlib.gzipSync(deflated);
  const wire = brotli(gzipped);
  // "deflate, gzip, br": applied in that order, decoded br -> gzip -> deflate.
  for (const pieces of [[wire], packets(wire), packets(wire, 7)]) {
    const r = decode(['deflate', 'gzip', 'br'], pieces);
    assert.equal(r.chain.status, 'ok');
    assert.ok(r.out.equals(text));
    assert.equal(r.chain.decodedBytes, text.length);
    assert.equal(r.chain.workBytes, gzipped.length + deflated.length + text.length);
    assert.equal(r.counters.get('decompress.trailing_data'), 0);
  }
});

test('DecoderChain cuts an incompressible stacked body where its final output reaches the limit, as a single layer', () => {
  const text = noise(300_000, 7);
  const gzipped = zlib.gzipSync(text);
  const brotlied = brotli(text);
  for (const [codings, inner, wire] of [
    [['gzip', 'br'], gzipped, brotli(gzipped)],
    [['br', 'gzip'], brotlied, zlib.gzipSync(brotlied)],
  ] as [Coding[], Buffer, Buffer][]) {
    const what = codings.join(', ');
    // The intermediate layer's output (compressed data) is a little larger than the final output.
    assert.ok(inner.length > text.length, what);
    const exact = decode(codings, packets(wire), { maxOutputBytes: text.length });
    assert.equal(exact.chain.status, 'ok', what);
    assert.ok(exact.out.equals(text), what);
    assert.equal(exact.chain.workBytes, inner.length + text.length, what);
    const less = decode(codings, packets(wire), { maxOutputBytes: text.length - 1 });
    assert.equal(less.chain.status, 'output_limit', what);
    assert.ok(less.out.equals(text.subarray(0, text.length - 1)), what);
    assert.equal(less.counters.get('decompress.output_limit'), 1, what);
  }
});

test('DecoderChain buffered fallback caps the intermediate layer of a gzip, br bomb too', async () => {
  const { trailing: wire } = await stackedBombs;
  const r = decode(['gzip', 'br'], [wire], { forceBuffered: true });
  assert.equal(r.chain.status, 'output_limit');
  assert.equal(r.counters.get('decompress.output_limit'), 1);
  assert.equal(r.out.length, 0);
});

test('DecoderChain charges what its open decoders hold to the flow memcap and gives it all back', async () => {
  const counters = new Counters();
  // gzip: a fixed charge (state, 32 KiB window, output buffer) while the message is open
  const gz = new DecoderChain(['gzip'], () => {}, counters);
  const gzWire = zlib.gzipSync(TEXT);
  gz.write(gzWire.subarray(0, 100));
  const gzHeld = memoryInUse(counters);
  assert.ok(gzHeld >= 32 * 1024 && gzHeld < 128 * 1024, `gzip decoder charged ${gzHeld}`);
  gz.write(gzWire.subarray(100));
  gz.end();
  assert.equal(memoryInUse(counters), 0);

  // br: charged the ring buffer its header says the decoder may fill, before any output
  // 6 MiB of a 64 KiB block of pseudo-random letters, repeated: the copies reach back across the window
  const block = Buffer.alloc(64 * 1024);
  for (let i = 0, x = 12345; i < block.length; i++) block[i] = 97 + ((x = (x * 1103515245 + 12345) >>> 0) >>> 24) % 26;
  const big = Buffer.alloc(6 << 20);
  for (let o = 0; o < big.length; o += block.length) block.copy(big, o);
  const brWire = zlib.brotliCompressSync(big, { params: { [zlib.constants.BROTLI_PARAM_LGWIN]: 24, [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } });
  // one meta-block of 6 MiB: an 8 MiB ring, charged from the fifth byte on (the header arrives byte by byte)
  const br = new DecoderChain(['br'], () => {}, counters);
  for (let i = 0; i < 5; i++) br.write(brWire.subarray(i, i + 1));
  assert.equal(brotliRingBytes(brWire), 8 << 20);
  const brHeld = memoryInUse(counters);
  assert.ok(brHeld >= 8 << 20 && brHeld < (8 << 20) + (128 << 10), `br decoder charged ${brHeld}`);
  br.write(brWire.subarray(5, 60_000));
  assert.equal(memoryInUse(counters), brHeld, 'the charge does not move with output');
  br.abort();
  assert.equal(memoryInUse(counters), 0, 'abort gives back the decoder and its ring');
  // streamed in flushed blocks: the whole window (4 MiB, Node's default) from the start
  const enc = zlib.createBrotliCompress();
  const parts: Buffer[] = [];
  enc.on('data', (d: Buffer) => parts.push(d));
  enc.write(TEXT);
  await new Promise<void>((resolve) => enc.flush(zlib.constants.BROTLI_OPERATION_FLUSH, () => resolve()));
  assert.equal(brotliRingBytes(Buffer.concat(parts)), 4 << 20);
  assert.equal(brotliRingBytes(ENCODED.br.wire), 4096, 'a 3 KB page in one block: a 4 KiB ring');
  assert.equal(brotliRingBytes(zlib.brotliCompressSync(Buffer.alloc(0))), 0, 'an empty stream holds nothing');
  assert.equal(brotliRingBytes(ENCODED.br.wire.subarray(0, 2)), -1, 'two bytes do not say');

  // stacked layers and the buffered fallback charge and release as well
  for (const options of [{}, { forceBuffered: true }]) {
    const chain = new DecoderChain(['gzip', 'br'], () => {}, counters, options);
    chain.write(ENCODED['gzip,br'].wire.subarray(0, 200));
    assert.ok(memoryInUse(counters) > 0, `nothing charged for an open stacked chain (${JSON.stringify(options)})`);
    chain.end();
    assert.equal(memoryInUse(counters), 0);
  }
});

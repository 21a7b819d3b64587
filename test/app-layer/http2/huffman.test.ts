import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HUFFMAN_EOS, HUFFMAN_TABLE, huffmanCode, huffmanCodeLength, huffmanDecode, huffmanMaxDecodedLength,
} from '../../../sensor/app-layer/http2/huffman.js';
import { huffmanEncode } from './h2-helpers.js';

function decode(bytes: Uint8Array): string | undefined {
  const out = new Uint8Array(huffmanMaxDecodedLength(bytes.length));
  const n = huffmanDecode(bytes, 0, bytes.length, out, 0);
  return n < 0 ? undefined : Buffer.from(out.subarray(0, n)).toString('latin1');
}

test('HUFFMAN_TABLE holds 257 codes that form a complete canonical prefix code', () => {
  assert.equal(HUFFMAN_TABLE.length, 257 * 2);
  // Canonical: sorted by (length, symbol), each code is the previous one plus one, shifted to its length.
  // Any typo in a transcribed code or length breaks this; ending at 2^30 means the code is complete.
  const order = Array.from({ length: 257 }, (_, s) => s).sort((a, b) => huffmanCodeLength(a) - huffmanCodeLength(b) || a - b);
  let code = 0;
  let len = huffmanCodeLength(order[0]);
  for (const sym of order) {
    code *= 2 ** (huffmanCodeLength(sym) - len);
    len = huffmanCodeLength(sym);
    assert.equal(huffmanCode(sym), code, `symbol ${sym}`);
    code++;
  }
  assert.equal(code, 2 ** 30);
});

test('HUFFMAN_TABLE matches rows of RFC 7541 Appendix B', () => {
  const rows: [number, number, number][] = [
    [0, 0x1ff8, 13], [10, 0x3ffffffc, 30], [32, 0x14, 6], [47, 0x18, 6], [48, 0x0, 5], [92, 0x7fff0, 19],
    [127, 0xffffffc, 28], [195, 0x7fff1, 19], [255, 0x3ffffee, 26], [HUFFMAN_EOS, 0x3fffffff, 30],
  ];
  for (const [sym, code, len] of rows) assert.deepEqual([huffmanCode(sym), huffmanCodeLength(sym)], [code, len], `symbol ${sym}`);
});

test('huffmanDecode decodes the string literals of RFC 7541 C.4 and C.6', () => {
  const cases: [string, string][] = [
    ['f1e3c2e5f23a6ba0ab90f4ff', 'www.example.com'],
    ['a8eb10649cbf', 'no-cache'],
    ['25a849e95ba97d7f', 'custom-key'],
    ['25a849e95bb8e8b4bf', 'custom-value'],
    ['6402', '302'],
    ['aec3771a4b', 'private'],
    ['d07abe941054d444a8200595040b8166e082a62d1bff', 'Mon, 21 Oct 2013 20:13:21 GMT'],
    ['9d29ad171863c78f0b97c8e9ae82ae43d3', 'https://www.example.com'],
    ['9bd9ab', 'gzip'],
    ['94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007',
      'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'],
  ];
  for (const [hex, text] of cases) assert.equal(decode(Buffer.from(hex, 'hex')), text, text);
});

test('huffmanDecode round-trips every byte value, long codes included', () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1');
  for (const s of [all, all.split('').reverse().join(''), '\u00ff\u0000\u00fe', '', 'a']) {
    assert.equal(decode(huffmanEncode(s)), s);
  }
});

test('huffmanDecode writes at the offset it is given and returns the length', () => {
  const src = huffmanEncode('hello');
  const out = new Uint8Array(20).fill(0x2a);
  assert.equal(huffmanDecode(src, 0, src.length, out, 3), 5);
  assert.equal(Buffer.from(out.subarray(0, 9)).toString('latin1'), '***hello*');
});

test('huffmanDecode rejects padding longer than 7 bits (RFC 7541 §5.2)', () => {
  // 'a' is 00011 (5 bits) + 3 one-bits of padding = 0x1f; a whole extra 0xff byte is 11 bits of padding.
  assert.equal(decode(Buffer.from([0x1f])), 'a');
  assert.equal(decode(Buffer.from([0x1f, 0xff])), undefined);
  assert.equal(decode(Buffer.from([0xff])), undefined);
});

test('huffmanDecode rejects padding that is not a prefix of EOS', () => {
  // 'a' (00011) followed by 000 instead of 111.
  assert.equal(decode(Buffer.from([0x18])), undefined);
  // 'a' then 110.
  assert.equal(decode(Buffer.from([0x1e])), undefined);
});

test('huffmanDecode rejects the EOS symbol inside a string', () => {
  // EOS (30 one-bits), then 'a' (00011) and 5 bits of valid padding: fine but for the EOS.
  assert.equal(decode(Buffer.from([0xff, 0xff, 0xff, 0xfc, 0x7f])), undefined);
  // The same tail without EOS decodes.
  assert.equal(decode(Buffer.from([0x1f])), 'a');
});

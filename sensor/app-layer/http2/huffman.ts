/**
 * App layer, HTTP/2: the static Huffman code of HPACK (RFC 7541 §5.2, Appendix B) and its decoder.
 * Input: Huffman-coded string literal bytes. Output: the decoded octets written into a caller's buffer, or
 * -1 when the coding is invalid (EOS inside the string, padding longer than 7 bits or not all ones).
 * Decoding is a table-driven state machine over 4-bit nibbles (one lookup per nibble, at most one symbol
 * out per nibble since the shortest code is 5 bits), built once at module load from the code table below.
 */

/**
 * RFC 7541 Appendix B, as printed: for each symbol 0..255 and EOS (256), its code (LSB-aligned) then its
 * length in bits. The code is canonical: a test re-derives every code from the lengths alone.
 */
export const HUFFMAN_TABLE: readonly number[] = [
  /*   0 */ 0x1ff8, 13, 0x7fffd8, 23, 0xfffffe2, 28, 0xfffffe3, 28, 0xfffffe4, 28, 0xfffffe5, 28, 0xfffffe6, 28, 0xfffffe7, 28,
  /*   8 */ 0xfffffe8, 28, 0xffffea, 24, 0x3ffffffc, 30, 0xfffffe9, 28, 0xfffffea, 28, 0x3ffffffd, 30, 0xfffffeb, 28, 0xfffffec, 28,
  /*  16 */ 0xfffffed, 28, 0xfffffee, 28, 0xfffffef, 28, 0xffffff0, 28, 0xffffff1, 28, 0xffffff2, 28, 0x3ffffffe, 30, 0xffffff3, 28,
  /*  24 */ 0xffffff4, 28, 0xffffff5, 28, 0xffffff6, 28, 0xffffff7, 28, 0xffffff8, 28, 0xffffff9, 28, 0xffffffa, 28, 0xffffffb, 28,
  /*  32 */ 0x14, 6, 0x3f8, 10, 0x3f9, 10, 0xffa, 12, 0x1ff9, 13, 0x15, 6, 0xf8, 8, 0x7fa, 11,
  /*  40 */ 0x3fa, 10, 0x3fb, 10, 0xf9, 8, 0x7fb, 11, 0xfa, 8, 0x16, 6, 0x17, 6, 0x18, 6,
  /*  48 */ 0x0, 5, 0x1, 5, 0x2, 5, 0x19, 6, 0x1a, 6, 0x1b, 6, 0x1c, 6, 0x1d, 6,
  /*  56 */ 0x1e, 6, 0x1f, 6, 0x5c, 7, 0xfb, 8, 0x7ffc, 15, 0x20, 6, 0xffb, 12, 0x3fc, 10,
  /*  64 */ 0x1ffa, 13, 0x21, 6, 0x5d, 7, 0x5e, 7, 0x5f, 7, 0x60, 7, 0x61, 7, 0x62, 7,
  /*  72 */ 0x63, 7, 0x64, 7, 0x65, 7, 0x66, 7, 0x67, 7, 0x68, 7, 0x69, 7, 0x6a, 7,
  /*  80 */ 0x6b, 7, 0x6c, 7, 0x6d, 7, 0x6e, 7, 0x6f, 7, 0x70, 7, 0x71, 7, 0x72, 7,
  /*  88 */ 0xfc, 8, 0x73, 7, 0xfd, 8, 0x1ffb, 13, 0x7fff0, 19, 0x1ffc, 13, 0x3ffc, 14, 0x22, 6,
  /*  96 */ 0x7ffd, 15, 0x3, 5, 0x23, 6, 0x4, 5, 0x24, 6, 0x5, 5, 0x25, 6, 0x26, 6,
  /* 104 */ 0x27, 6, 0x6, 5, 0x74, 7, 0x75, 7, 0x28, 6, 0x29, 6, 0x2a, 6, 0x7, 5,
  /* 112 */ 0x2b, 6, 0x76, 7, 0x2c, 6, 0x8, 5, 0x9, 5, 0x2d, 6, 0x77, 7, 0x78, 7,
  /* 120 */ 0x79, 7, 0x7a, 7, 0x7b, 7, 0x7ffe, 15, 0x7fc, 11, 0x3ffd, 14, 0x1ffd, 13, 0xffffffc, 28,
  /* 128 */ 0xfffe6, 20, 0x3fffd2, 22, 0xfffe7, 20, 0xfffe8, 20, 0x3fffd3, 22, 0x3fffd4, 22, 0x3fffd5, 22, 0x7fffd9, 23,
  /* 136 */ 0x3fffd6, 22, 0x7fffda, 23, 0x7fffdb, 23, 0x7fffdc, 23, 0x7fffdd, 23, 0x7fffde, 23, 0xffffeb, 24, 0x7fffdf, 23,
  /* 144 */ 0xffffec, 24, 0xffffed, 24, 0x3fffd7, 22, 0x7fffe0, 23, 0xffffee, 24, 0x7fffe1, 23, 0x7fffe2, 23, 0x7fffe3, 23,
  /* 152 */ 0x7fffe4, 23, 0x1fffdc, 21, 0x3fffd8, 22, 0x7fffe5, 23, 0x3fffd9, 22, 0x7fffe6, 23, 0x7fffe7, 23, 0xffffef, 24,
  /* 160 */ 0x3fffda, 22, 0x1fffdd, 21, 0xfffe9, 20, 0x3fffdb, 22, 0x3fffdc, 22, 0x7fffe8, 23, 0x7fffe9, 23, 0x1fffde, 21,
  /* 168 */ 0x7fffea, 23, 0x3fffdd, 22, 0x3fffde, 22, 0xfffff0, 24, 0x1fffdf, 21, 0x3fffdf, 22, 0x7fffeb, 23, 0x7fffec, 23,
  /* 176 */ 0x1fffe0, 21, 0x1fffe1, 21, 0x3fffe0, 22, 0x1fffe2, 21, 0x7fffed, 23, 0x3fffe1, 22, 0x7fffee, 23, 0x7fffef, 23,
  /* 184 */ 0xfffea, 20, 0x3fffe2, 22, 0x3fffe3, 22, 0x3fffe4, 22, 0x7ffff0, 23, 0x3fffe5, 22, 0x3fffe6, 22, 0x7ffff1, 23,
  /* 192 */ 0x3ffffe0, 26, 0x3ffffe1, 26, 0xfffeb, 20, 0x7fff1, 19, 0x3fffe7, 22, 0x7ffff2, 23, 0x3fffe8, 22, 0x1ffffec, 25,
  /* 200 */ 0x3ffffe2, 26, 0x3ffffe3, 26, 0x3ffffe4, 26, 0x7ffffde, 27, 0x7ffffdf, 27, 0x3ffffe5, 26, 0xfffff1, 24, 0x1ffffed, 25,
  /* 208 */ 0x7fff2, 19, 0x1fffe3, 21, 0x3ffffe6, 26, 0x7ffffe0, 27, 0x7ffffe1, 27, 0x3ffffe7, 26, 0x7ffffe2, 27, 0xfffff2, 24,
  /* 216 */ 0x1fffe4, 21, 0x1fffe5, 21, 0x3ffffe8, 26, 0x3ffffe9, 26, 0xffffffd, 28, 0x7ffffe3, 27, 0x7ffffe4, 27, 0x7ffffe5, 27,
  /* 224 */ 0xfffec, 20, 0xfffff3, 24, 0xfffed, 20, 0x1fffe6, 21, 0x3fffe9, 22, 0x1fffe7, 21, 0x1fffe8, 21, 0x7ffff3, 23,
  /* 232 */ 0x3fffea, 22, 0x3fffeb, 22, 0x1ffffee, 25, 0x1ffffef, 25, 0xfffff4, 24, 0xfffff5, 24, 0x3ffffea, 26, 0x7ffff4, 23,
  /* 240 */ 0x3ffffeb, 26, 0x7ffffe6, 27, 0x3ffffec, 26, 0x3ffffed, 26, 0x7ffffe7, 27, 0x7ffffe8, 27, 0x7ffffe9, 27, 0x7ffffea, 27,
  /* 248 */ 0x7ffffeb, 27, 0xffffffe, 28, 0x7ffffec, 27, 0x7ffffed, 27, 0x7ffffee, 27, 0x7ffffef, 27, 0x7fffff0, 27, 0x3ffffee, 26,
  /* EOS */ 0x3fffffff, 30,
];

/** The end-of-string symbol (RFC 7541 §5.2): its code prefix pads the last byte; inside a string it is an error. */
export const HUFFMAN_EOS = 256;

/** Code of symbol `sym` (0..256), LSB-aligned. */
export function huffmanCode(sym: number): number {
  return HUFFMAN_TABLE[sym * 2];
}

/** Length in bits of the code of symbol `sym` (0..256). */
export function huffmanCodeLength(sym: number): number {
  return HUFFMAN_TABLE[sym * 2 + 1];
}

/** Most bytes `codedBytes` Huffman-coded bytes can decode to: the shortest code is 5 bits. */
export function huffmanMaxDecodedLength(codedBytes: number): number {
  return Math.ceil((codedBytes * 8) / 5);
}

// Transition entry layout: bits 0-7 next state, bits 8-15 emitted symbol, then flags.
const F_EMIT = 1 << 16;
const F_FAIL = 1 << 17;
/** The state reached is a valid place to stop: only ones (a prefix of EOS) since the last symbol, at most 7. */
const F_ACCEPT = 1 << 18;

/** Internal nodes of the code tree are the states (256 for 257 leaves); 16 nibble values each. */
const DECODE_TABLE: Uint32Array = buildDecodeTable();

function buildDecodeTable(): Uint32Array {
  // Code tree: child arrays indexed by node; a value >= 0 is an internal node, < 0 is leaf ~symbol.
  const zero: number[] = [0];
  const one: number[] = [0];
  let nodes = 1;
  for (let sym = 0; sym <= HUFFMAN_EOS; sym++) {
    const code = huffmanCode(sym);
    const len = huffmanCodeLength(sym);
    let node = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = Math.floor(code / 2 ** i) % 2;
      const children = bit === 0 ? zero : one;
      if (i === 0) {
        children[node] = ~sym;
        break;
      }
      if (children[node] === 0) {
        zero.push(0);
        one.push(0);
        children[node] = nodes++;
      }
      node = children[node];
    }
  }
  // Accepting states: reached from the root by at most 7 one-bits.
  const accept = new Uint8Array(nodes);
  accept[0] = 1;
  for (let node = 0, depth = 0; depth < 7; depth++) {
    node = one[node];
    if (node <= 0) break;
    accept[node] = 1;
  }
  const table = new Uint32Array(nodes * 16);
  for (let state = 0; state < nodes; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let b = 3; b >= 0; b--) {
        const next = ((nibble >> b) & 1) === 0 ? zero[node] : one[node];
        if (next < 0) {
          const sym = ~next;
          if (sym === HUFFMAN_EOS) {
            entry = F_FAIL;
            break;
          }
          entry = F_EMIT | (sym << 8);
          node = 0;
        } else {
          node = next;
        }
      }
      if ((entry & F_FAIL) === 0) {
        entry |= node;
        if (accept[node] === 1) entry |= F_ACCEPT;
      }
      table[state * 16 + nibble] = entry;
    }
  }
  return table;
}

/**
 * Decodes `src[start, end)` into `dst` from `dstStart`; returns the number of bytes written, or -1 when the
 * coding is invalid. `dst` must have room for `huffmanMaxDecodedLength(end - start)` bytes.
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, dst: Uint8Array, dstStart: number): number {
  const table = DECODE_TABLE;
  let state = 0;
  let accepting = true;
  let o = dstStart;
  for (let i = start; i < end; i++) {
    const b = src[i];
    let e = table[(state << 4) | (b >> 4)];
    if ((e & F_FAIL) !== 0) return -1;
    if ((e & F_EMIT) !== 0) dst[o++] = (e >> 8) & 0xff;
    state = e & 0xff;
    e = table[(state << 4) | (b & 0x0f)];
    if ((e & F_FAIL) !== 0) return -1;
    if ((e & F_EMIT) !== 0) dst[o++] = (e >> 8) & 0xff;
    state = e & 0xff;
    accepting = (e & F_ACCEPT) !== 0;
  }
  return accepting ? o - dstStart : -1;
}

/**
 * App layer: the buffer a length-prefixed framing (HTTP/2 frames, DNS and Kerberos over TCP, TLS records)
 * holds for a message that spans pushes. Input: the buffer so far, the bytes it holds, the bytes it must
 * hold next, and the length the peer announced. Output: a buffer that fits them, grown geometrically from
 * the bytes received, never past the announced length. Guarantee: what a partial message holds is at most
 * twice what arrived of it (or PARTIAL_BUFFER_MIN_BYTES), whatever length its header claims.
 */

/** Smallest buffer made for a partial message: a 1-byte piece does not cost an allocation per byte that follows. */
export const PARTIAL_BUFFER_MIN_BYTES = 256;

/**
 * `buf` with room for `need` bytes (at most `announced`), its first `have` bytes kept: `buf` itself when it
 * is large enough, else a new buffer of twice `need` (at least PARTIAL_BUFFER_MIN_BYTES, at most
 * `announced`). A length field is only a claim: allocating it up front let 9 bytes of header hold 256 KiB.
 */
export function growPartialBuffer(buf: Uint8Array, have: number, need: number, announced: number): Uint8Array {
  if (need <= buf.length) return buf;
  const size = Math.max(need, Math.min(announced, Math.max(PARTIAL_BUFFER_MIN_BYTES, 2 * need)));
  const grown = new Uint8Array(size);
  if (have > 0) grown.set(buf.subarray(0, have));
  return grown;
}

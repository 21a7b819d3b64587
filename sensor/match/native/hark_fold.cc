// Normalize stage, native half: the ASCII part of the text normaliser's fold loop
// (TextNormalizer.process in sensor/normalize/text.ts), statement for statement, for speed.
// Input: UTF-16 units of already rule-1-folded text and the normaliser's arena (state, display
// ring, slice buffers). Output: the same skeleton bytes, map entries, display text and state as the
// TypeScript loop. It stops, returning the position, where the TypeScript side must act: the slice
// is full (flush), the last item may continue in the next chunk (carry), or an item needs a
// character that is not ASCII (the TypeScript loop folds that item and calls back).

#include <node_api.h>

#include <stdint.h>
#include <string.h>

#include <atomic>
#include <mutex>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "hark_fold.h"

namespace {

// Parameters handed over by configureFold (text.ts passes its own constants, so the two cannot
// drift); indexes into its Int32Array.
enum Param {
  P_LAYOUT_VERSION,
  P_MAX_TOKEN_CHARS,
  P_MAX_SPELLED_LETTERS,
  P_MAX_SPELLED_GAP,
  P_SLICE_DISPLAY_UNITS,
  P_DISPLAY_RING_UNITS,
  P_MAX_DISPLAY_REPEAT,
  P_MAX_DISPLAY_SEPARATOR_RUN,
  P_MAP_POS_MASK,
  P_LEADING_LEET,
  P_RING_OFFSET,
  P_OUT_BYTES_OFFSET,
  P_OUT_MAP_OFFSET,
  P_OUT_CAPACITY,
  P_ARENA_BYTES,
  P_K_SPACE,
  P_K_SEP,
  P_K_LETTER,
  P_K_DIGIT,
  P_K_LEET,
  P_COUNT
};

// The arena starts with these float64 slots (text.ts names them S_*).
enum Slot {
  S_DISPLAY_POS,
  S_OUT_LEN,
  S_OUT_LIMIT,
  S_SLICE_DISPLAY,
  S_LAST_DISP,
  S_DISP_REPEAT,
  S_SEP_DISPLAY,
  S_LAST_SKEL_SPACE,
  S_BAIL,
  S_STATUS,
  S_TOKEN_CUT,
  S_SPELLED_CUT,
  S_DISPLAY_TRIMMED,
  S_COUNT
};

// Why a run stopped (text.ts FOLD_*).
constexpr int STATUS_DONE = 0;
constexpr int STATUS_FLUSH = 1;
constexpr int STATUS_CARRY = 2;
constexpr int STATUS_FOREIGN = 3;

constexpr int LAYOUT_VERSION = 1;
// Scratch sizes: configureFold refuses larger limits.
constexpr int MAX_TOKEN_CAP = 256;
constexpr int MAX_SPELLED_CAP = 256;

// token() results besides a position: -1 carry (may continue past the text), -2 not handled by the
// fast word path, -3 a character that is not ASCII is involved.
constexpr int64_t R_CARRY = -1;
constexpr int64_t R_NOT_PLAIN = -2;
constexpr int64_t R_FOREIGN = -3;

#if defined(__SSE2__)
// kLaneMask[n]: the first n of 16 uint16 lanes all ones (to write exactly n display units).
struct LaneMasks {
  alignas(16) uint16_t m[17][16];
  LaneMasks() {
    for (int n = 0; n <= 16; n++)
      for (int k = 0; k < 16; k++) m[n][k] = k < n ? 0xffff : 0;
  }
};
const LaneMasks kLaneMask;
#endif

struct Config {
  int32_t p[P_COUNT];
  uint8_t kind[128];
  int32_t leet[128];
};
// One configuration per process, shared by every thread's foldRun (each worker's normaliser calls
// configureFold on its own copy of the addon's exports): the first accepted one is written once,
// under the mutex, and only read after g_cfg_ready says so. A different one is refused (that
// folder then folds in TypeScript): rewriting the tables would race with another thread's foldRun
// and change the output of every normaliser already using them.
Config g_cfg;
std::mutex g_cfg_mutex;
std::atomic<bool> g_cfg_ready{false};

struct Folder {
  // configuration
  int maxToken, maxSpelled, maxGap, sliceDisplayUnits, ringMask, maxRepeat, maxSepRun, leadingLeet;
  int kSpace, kSep, kLetter, kDigit, kLeet;
  int64_t mapMask;
  int32_t outCap;
  const uint8_t* kind;
  const int32_t* leetOf;
  // buffers
  const uint16_t* t;
  /** Units readable at t (the whole array, past the text end): wide loads stay inside it. */
  int64_t tLen;
  uint16_t* ring;
  uint8_t* outBytes;
  int32_t* outMap;
  // state (the TypeScript fields of the same names)
  int64_t displayPos;
  int32_t outLen;
  int32_t outLimit;
  int64_t sliceDisplay;
  int32_t lastDisp;
  int32_t dispRepeat;
  int32_t sepDisplay;
  bool lastSkelSpace;
  int64_t bailAt = -1;
  int32_t pendLetter = -1;
  int64_t pendDisp = 0;
  int32_t pendRun = 0;
  int32_t tkLast = 0;
  bool tkPrevLetter = false;
  int32_t segLen = 0;
  int64_t cTokenCut = 0, cSpelledCut = 0, cTrimmed = 0;
  int32_t segCp[MAX_TOKEN_CAP];
  int64_t segDisp[MAX_TOKEN_CAP];
  int32_t segLeet[MAX_TOKEN_CAP];
  int64_t spelledStart[MAX_SPELLED_CAP];

  int32_t mapEntry(int64_t d, int run) const {
    return static_cast<int32_t>((static_cast<uint32_t>(d & mapMask) << 2) | static_cast<uint32_t>(run > 3 ? 3 : run));
  }

  // foldOf for an ASCII letter, digit or leet symbol
  int32_t foldOf(int32_t cp) const {
    if (cp >= 0x41 && cp <= 0x5a) return cp | 0x20;
    int k = kind[cp];
    if (k == kLeet || k == kDigit) return leetOf[cp];
    return cp;
  }

  // ---------- skeleton output ----------

  void emit(int32_t b, int64_t d, int run) {
    int32_t o = outLen++;
    // a JS typed array ignores writes past its end: so does this
    if (o >= 0 && o < outCap) {
      outBytes[o] = static_cast<uint8_t>(b);
      outMap[o] = mapEntry(d, run);
    }
  }

  void flushLetter() {
    int32_t cp = pendLetter;
    if (cp < 0) return;
    pendLetter = -1;
    int64_t d = pendDisp;
    int run = pendRun;
    if (cp < 0x80) {
      emit(cp, d, run);
    } else if (cp < 0x800) {
      emit(0xc0 | (cp >> 6), d, run);
      emit(0x80 | (cp & 0x3f), d, run);
    } else if (cp < 0x10000) {
      emit(0xe0 | (cp >> 12), d, run);
      emit(0x80 | ((cp >> 6) & 0x3f), d, run);
      emit(0x80 | (cp & 0x3f), d, run);
    } else {
      emit(0xf0 | (cp >> 18), d, run);
      emit(0x80 | ((cp >> 12) & 0x3f), d, run);
      emit(0x80 | ((cp >> 6) & 0x3f), d, run);
      emit(0x80 | (cp & 0x3f), d, run);
    }
    lastSkelSpace = false;
  }

  void letter(int32_t cp, int64_t d) {
    if (cp == pendLetter) {
      pendRun++;
      return;
    }
    flushLetter();
    pendLetter = cp;
    pendDisp = d;
    pendRun = 1;
  }

  void emitSpace(int64_t d) {
    if (lastSkelSpace) return;
    emit(0x20, d, 1);
    lastSkelSpace = true;
  }

  void boundary(int64_t d) {
    flushLetter();
    emitSpace(d);
  }

  // ---------- display ring ----------

  void putUnit(int32_t u) {
    ring[displayPos & ringMask] = static_cast<uint16_t>(u);
    displayPos++;
    sliceDisplay++;
  }

  void putDisplay(int32_t u) {
    if (u == lastDisp) {
      int k = ++dispRepeat;
      if (k > maxRepeat) {
        if (k == maxRepeat + 1) cTrimmed++;
        return;
      }
    } else {
      lastDisp = u;
      dispRepeat = 1;
    }
    putUnit(u);
  }

  void separatorDisplay(int32_t u) {
    int k = ++sepDisplay;
    if (k <= maxSepRun) {
      putDisplay(u);
    } else if (k == maxSepRun + 1) {
      cTrimmed++;
    }
  }

  // ---------- the loop ----------

  // process(): returns where it stopped and why (STATUS_*); bailAt is left as the loop's `bail`.
  int64_t run(int64_t i, int64_t n, bool final, int64_t bail, int* status) {
    *status = loop(i, n, final, bail);
    bailAt = bail;
    return i;
  }

  int loop(int64_t& i, int64_t n, bool final, int64_t& bail) {
    while (i < n) {
      if (outLen >= outLimit || sliceDisplay >= sliceDisplayUnits) return STATUS_FLUSH;
      int32_t u = t[i];
      if (u >= 0x80) return STATUS_FOREIGN;
      if (i != bail) {
        i = asciiRun(i, n);
        bail = bailAt;
        continue;
      }
      int k = kind[u];
      if (k == kSpace) {
        emitSpace(displayPos);
        if (lastDisp != 0x20) separatorDisplay(0x20);
        i += 1;
      } else if (k == kSep) {
        emitSpace(displayPos);
        separatorDisplay(u);
        i += 1;
      } else {
        int64_t next = token(i, n, final);
        if (next == R_FOREIGN) return STATUS_FOREIGN;
        if (next < 0) return STATUS_CARRY;
        i = next;
      }
    }
    return STATUS_DONE;
  }

  // asciiRun(): spaces, separators, words of 2+ letters and numbers, each ended by a space or
  // separator, with the state in locals. Sets bailAt.
  int64_t asciiRun(int64_t i, int64_t n) {
    // everything in locals and restrict pointers: the byte stores below would otherwise make the
    // compiler reload every member after each one (a char store may alias anything)
    const uint16_t* __restrict const t = this->t;
    const uint8_t* __restrict const kind = this->kind;
    uint16_t* __restrict const rg = ring;
    uint8_t* __restrict const ob = outBytes;
    int32_t* __restrict const om = outMap;
    const int64_t ringMask = this->ringMask;
    const int64_t mapMask = this->mapMask;
    const int maxRepeat = this->maxRepeat;
    const int maxSepRun = this->maxSepRun;
    const int maxToken = this->maxToken;
    const int kSpace = this->kSpace, kSep = this->kSep, kLetter = this->kLetter, kDigit = this->kDigit;
    int64_t trimmedCount = 0;
    const int32_t limit = outLimit;
    const int64_t dp0 = displayPos;
    const int64_t dispEnd = dp0 + sliceDisplayUnits - sliceDisplay;
    const int32_t cap = outCap;
    int64_t dp = dp0;
    int32_t o = outLen;
    int32_t last = lastDisp;
    int32_t rep = dispRepeat;
    int32_t sep = sepDisplay;
    bool sk = lastSkelSpace;
    int64_t bail = -1;
#define ENTRY(d, run) \
  static_cast<int32_t>((static_cast<uint32_t>((d) & mapMask) << 2) | static_cast<uint32_t>((run) > 3 ? 3 : (run)))
#define HARK_OUT(b, entry)          \
  do {                              \
    if (o >= 0 && o < cap) {        \
      ob[o] = static_cast<uint8_t>(b); \
      om[o] = (entry);              \
    }                               \
    o++;                            \
  } while (0)
    while (i < n) {
      if (o >= limit || dp >= dispEnd) break;
      const int32_t u = t[i];
      if (u >= 0x80) break;
      const int k = kind[u];
      if (k == kSpace || k == kSep) {
        if (!sk) {
          HARK_OUT(0x20, ENTRY(dp, 1));
          sk = true;
        }
        if (k == kSep || last != 0x20) {
          const int sk2 = ++sep;
          if (sk2 <= maxSepRun) {
            if (u == last) {
              const int r = ++rep;
              if (r <= maxRepeat) rg[dp++ & ringMask] = static_cast<uint16_t>(u);
              else if (r == maxRepeat + 1) trimmedCount++;
            } else {
              last = k == kSpace ? 0x20 : u;
              rep = 1;
              rg[dp++ & ringMask] = static_cast<uint16_t>(last);
            }
          } else if (sk2 == maxSepRun + 1) {
            trimmedCount++;
          }
        }
        i++;
        continue;
      }
      if (!sk || (k != kLetter && k != kDigit)) {
        bail = i;
        break;
      }
#if defined(__SSE2__)
      // The commonest item, 2-15 letters with no two neighbours alike after a shown separator, found
      // and copied 16 units at a time: the same result as the scalar loops below, without a
      // mispredicted branch per character.
      if (k == kLetter && i + 16 <= tLen && (dp & ringMask) + 16 <= ringMask + 1 && o >= 0 && o + 16 <= cap &&
          (dp & mapMask) + 16 <= mapMask + 1 && !(sep > maxSepRun && last != 0x20)) {
        const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(t + i));
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(t + i + 8));
        // units above 0xff saturate to 0xff (or 0 from 0x8000 up): never a letter
        const __m128i lower = _mm_or_si128(_mm_packus_epi16(a, b), _mm_set1_epi8(0x20));
        const __m128i x = _mm_sub_epi8(lower, _mm_set1_epi8(0x61));
        const __m128i isLetter = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(25)), x);
        const uint32_t letters = static_cast<uint32_t>(_mm_movemask_epi8(isLetter));
        const int len = __builtin_ctz(~letters);
        if (len >= 2 && len < 16 && i + len < n) {
          // bit q: letters q and q + 1 are the same (folded); only pairs inside the word count
          const uint32_t same = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(lower, _mm_srli_si128(lower, 1)))) &
                                ((1u << (len - 1)) - 1);
          const int32_t after = t[i + len];
          const int32_t first = t[i] | 0x20;
          // doubled letters ("fellow") are taken too, runs of three or more are not: a run of two is
          // one skeleton byte whose map entry says 2, and both letters are shown (maxRepeat >= 2)
          if ((same & (same >> 1)) == 0 && (same == 0 || maxRepeat >= 2) && after < 0x80 &&
              (kind[after] == kSpace || kind[after] == kSep) && first != last) {
            // skeleton bytes of the word: len without the second letter of each pair
            int skel = len;
            if (same == 0) {
              _mm_storeu_si128(reinterpret_cast<__m128i*>(ob + o), lower);
              __m128i e = _mm_add_epi32(_mm_set1_epi32(static_cast<int32_t>((static_cast<uint32_t>(dp & mapMask) << 2) | 1)),
                                        _mm_set_epi32(12, 8, 4, 0));
              const __m128i sixteen = _mm_set1_epi32(16);
              for (int q = 0; q < 16; q += 4) {
                _mm_storeu_si128(reinterpret_cast<__m128i*>(om + o + q), e);
                e = _mm_add_epi32(e, sixteen);
              }
            } else {
              // what the scalar loop below does for runs of one and two, without a branch per
              // letter: every letter is written, the output advances past the first of a pair only
              alignas(16) uint8_t lb[16];
              _mm_store_si128(reinterpret_cast<__m128i*>(lb), lower);
              const uint32_t d0 = static_cast<uint32_t>(dp & mapMask);
              const uint32_t skip = same << 1;  // bit q: letter q repeats the one before it
              int32_t w = o;
              for (int q = 0; q < len; q++) {
                ob[w] = lb[q];
                om[w] = static_cast<int32_t>(((d0 + q) << 2) | (1 + ((same >> q) & 1)));
                w += 1 - static_cast<int32_t>((skip >> q) & 1);
              }
              skel = w - o;
              // the space after the word is written below at o + skel; its entry is made here
              om[w] = static_cast<int32_t>(((d0 + len) << 2) | 1);
            }
            uint16_t* rp = rg + (dp & ringMask);
            const __m128i zero = _mm_setzero_si128();
            const __m128i m0 = _mm_load_si128(reinterpret_cast<const __m128i*>(kLaneMask.m[len]));
            const __m128i m1 = _mm_load_si128(reinterpret_cast<const __m128i*>(kLaneMask.m[len] + 8));
            const __m128i old0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rp));
            const __m128i old1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rp + 8));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(rp),
                             _mm_or_si128(_mm_and_si128(m0, _mm_unpacklo_epi8(lower, zero)), _mm_andnot_si128(m0, old0)));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(rp + 8),
                             _mm_or_si128(_mm_and_si128(m1, _mm_unpackhi_epi8(lower, zero)), _mm_andnot_si128(m1, old1)));
            if (kind[after] == kSpace && maxSepRun >= 1 && o + skel < limit && dp + len < dispEnd) {
              // and the space after it, as the separator branch above would take it next: one
              // skeleton space (its map entry is lane `len` of the stores above, or made above) and
              // one shown space
              ob[o + skel] = 0x20;
              rp[len] = 0x20;
              last = 0x20;
              rep = 1;
              dp += len + 1;
              o += skel + 1;
              sep = 1;
              sk = true;
              i += len + 1;
              continue;
            }
            last = t[i + len - 1] | 0x20;
            // the last letter of a word ending in a pair is shown for the second time in a row
            rep = 1 + static_cast<int32_t>((same >> (len - 2)) & 1);
            dp += len;
            o += skel;
            sep = 0;
            sk = false;
            i += len;
            continue;
          }
        }
      }
#endif
      int64_t j = i + 1;
      const int64_t lim = n < i + maxToken ? n : i + maxToken;
      // while finding the end, note whether two neighbours are the same (folded) character: without
      // that, every character is its own run and its own display unit (see the fast copies below)
      uint32_t prevc = t[i] | 0x20;
      uint32_t repeats = 0;
      if (k == kLetter) {
        while (j < lim) {
          const uint32_t c = t[j] | 0x20u;
          if (c - 0x61u > 25u) break;
          repeats |= c == prevc;
          prevc = c;
          j++;
        }
      } else {
        while (j < lim) {
          const uint32_t c = t[j];
          if (c - 0x30u > 9u) break;
          repeats |= c == prevc;
          prevc = c;
          j++;
        }
      }
      if (j >= lim || (k == kLetter && j - i < 2)) {
        bail = i;
        break;
      }
      const int32_t after = t[j];
      if (after >= 0x80 || (kind[after] != kSpace && kind[after] != kSep)) {
        bail = i;
        break;
      }
      if (sep > maxSepRun && last != 0x20) {
        last = 0x20;
        rep = 1;
        rg[dp++ & ringMask] = 0x20;
      }
      const int64_t len = j - i;
      if (repeats == 0 && static_cast<int32_t>(k == kLetter ? t[i] | 0x20 : t[i]) != last && o >= 0 && o + len <= cap) {
        // no run longer than one and no repeated display unit: each character is shown and is one
        // skeleton byte at its own display position (what the loops below do in that case)
        const uint32_t fold = k == kLetter ? 0x20 : 0;
        for (int64_t x = 0; x < len; x++) {
          const uint32_t c = t[i + x] | fold;
          rg[(dp + x) & ringMask] = static_cast<uint16_t>(c);
          ob[o + x] = static_cast<uint8_t>(c);
          om[o + x] = ENTRY(dp + x, 1);
        }
        last = static_cast<int32_t>(t[j - 1] | fold);
        rep = 1;
        dp += len;
        o += static_cast<int32_t>(len);
      } else if (k == kLetter) {
        int32_t prev = -1;
        int run = 0;
        int64_t pdisp = 0;
        bool trimmed = false;
        for (int64_t x = i; x < j; x++) {
          const int32_t c = t[x] | 0x20;
          const int64_t d = dp;
          if (c != last) {
            last = c;
            rep = 1;
            rg[dp++ & ringMask] = static_cast<uint16_t>(c);
          } else if (++rep <= maxRepeat) {
            rg[dp++ & ringMask] = static_cast<uint16_t>(c);
          } else {
            trimmed = true;
          }
          if (c == prev) {
            run++;
          } else {
            if (prev >= 0) HARK_OUT(prev, ENTRY(pdisp, run));
            prev = c;
            run = 1;
            pdisp = d;
          }
        }
        HARK_OUT(prev, ENTRY(pdisp, run));
        if (trimmed) trimmedCount++;
      } else {
        for (int64_t x = i; x < j; x++) {
          const int32_t c = t[x];
          HARK_OUT(c, ENTRY(dp, 1));
          if (c != last) {
            last = c;
            rep = 1;
            rg[dp++ & ringMask] = static_cast<uint16_t>(c);
          } else {
            const int r = ++rep;
            if (r <= maxRepeat) rg[dp++ & ringMask] = static_cast<uint16_t>(c);
            else if (r == maxRepeat + 1) trimmedCount++;
          }
        }
      }
      sep = 0;
      sk = false;
      i = j;
    }
#undef HARK_OUT
#undef ENTRY
    cTrimmed += trimmedCount;
    outLen = o;
    displayPos = dp;
    sliceDisplay += dp - dp0;
    lastDisp = last;
    dispRepeat = rep;
    sepDisplay = sep;
    lastSkelSpace = sk;
    bailAt = bail;
    return i;
  }

  // token(): the word starting at i; its end, R_CARRY, or R_FOREIGN.
  int64_t token(int64_t i, int64_t n, bool final) {
    if (sepDisplay > maxSepRun && lastDisp != 0x20) putDisplay(0x20);
    int64_t fast = plainWord(i, n, final);
    if (fast != R_NOT_PLAIN) return fast;
    int64_t j = i;
    int chars = 0;
    bool simple = true;
    while (j < n && chars < maxToken) {
      const int32_t u = t[j];
      if (u >= 0x80) return R_FOREIGN;
      const int k = kind[u];
      if (k == kLetter) {
        j++;
        chars++;
        continue;
      }
      if (k == kDigit || k == kLeet) {
        simple = false;
        j++;
        chars++;
        continue;
      }
      break;
    }
    const bool full = chars >= maxToken;
    if (j >= n && !final && !full) return R_CARRY;
    if (full) cTokenCut++;
    sepDisplay = 0;
    emitSpace(displayPos);
    if (chars == 1 && !full && kind[t[i]] == kLetter) {
      int64_t r = spelled(i, j, n, final);
      if (r != 0) return r;
    }
    if (simple) simpleToken(i, j);
    else mixedToken(i, j);
    return j;
  }

  int64_t plainWord(int64_t i, int64_t n, bool final) {
    if (!lastSkelSpace) return R_NOT_PLAIN;
    const int64_t dp0 = displayPos;
    int64_t dp = dp0;
    int32_t last = lastDisp;
    int32_t rep = dispRepeat;
    int32_t o = outLen;
    int32_t prev = -1;
    int run = 0;
    int64_t pdisp = 0;
    int trimmed = 0;
    const int64_t lim = n < i + maxToken ? n : i + maxToken;
    // skeleton bytes are written only when the word is taken (outLen moves then); the ring
    // is written ahead, past displayPos, as the TypeScript does
    int64_t j = i;
    for (; j < lim; j++) {
      const int32_t raw = t[j];
      if (raw >= 0x80 || kind[raw] != kLetter) break;
      const int32_t u = raw | 0x20;
      const int64_t d = dp;
      if (u != last) {
        last = u;
        rep = 1;
        ring[dp & ringMask] = static_cast<uint16_t>(u);
        dp++;
      } else if (++rep <= maxRepeat) {
        ring[dp & ringMask] = static_cast<uint16_t>(u);
        dp++;
      } else {
        trimmed++;
      }
      if (u == prev) {
        run++;
      } else {
        if (prev >= 0) {
          if (o >= 0 && o < outCap) {
            outBytes[o] = static_cast<uint8_t>(prev);
            outMap[o] = mapEntry(pdisp, run);
          }
          o++;
        }
        prev = u;
        run = 1;
        pdisp = d;
      }
    }
    const bool full = j - i == maxToken;
    if (!full) {
      if (j - i < 2) return R_NOT_PLAIN;
      if (j < n) {
        const int32_t raw = t[j];
        if (raw >= 0x80 || (kind[raw] != kSpace && kind[raw] != kSep)) return R_NOT_PLAIN;
      } else if (!final) {
        return R_CARRY;
      }
    } else {
      cTokenCut++;
    }
    if (trimmed != 0) cTrimmed++;
    if (o >= 0 && o < outCap) {
      outBytes[o] = static_cast<uint8_t>(prev);
      outMap[o] = mapEntry(pdisp, run);
    }
    o++;
    outLen = o;
    displayPos = dp;
    sliceDisplay += dp - dp0;
    lastDisp = last;
    dispRepeat = rep;
    sepDisplay = 0;
    lastSkelSpace = false;
    return j;
  }

  void simpleToken(int64_t i, int64_t j) {
    const int64_t dp0 = displayPos;
    int64_t dp = dp0;
    int32_t last = lastDisp;
    int32_t rep = dispRepeat;
    int32_t o = outLen;
    int32_t prev = -1;
    int run = 0;
    int64_t pdisp = 0;
    for (int64_t k = i; k < j; k++) {
      const int32_t u = t[k] | 0x20;
      const int64_t d = dp;
      if (u != last) {
        last = u;
        rep = 1;
        ring[dp & ringMask] = static_cast<uint16_t>(u);
        dp++;
      } else if (++rep <= maxRepeat) {
        ring[dp & ringMask] = static_cast<uint16_t>(u);
        dp++;
      } else if (rep == maxRepeat + 1) {
        cTrimmed++;
      }
      if (u == prev) {
        run++;
      } else {
        if (prev >= 0) {
          if (o >= 0 && o < outCap) {
            outBytes[o] = static_cast<uint8_t>(prev);
            outMap[o] = mapEntry(pdisp, run);
          }
          o++;
        }
        prev = u;
        run = 1;
        pdisp = d;
      }
    }
    if (o >= 0 && o < outCap) {
      outBytes[o] = static_cast<uint8_t>(prev);
      outMap[o] = mapEntry(pdisp, run);
    }
    o++;
    outLen = o;
    displayPos = dp;
    sliceDisplay += dp - dp0;
    lastDisp = last;
    dispRepeat = rep;
    lastSkelSpace = false;
  }

  void mixedToken(int64_t i, int64_t j) {
    tkLast = 0;
    tkPrevLetter = false;
    segLen = 0;
    for (int64_t k = i; k < j; k++) {
      const int32_t u = t[k];
      const int kd = kind[u];
      const int64_t d = displayPos;
      putDisplay(kd == kLetter ? (u | 0x20) : u);
      if (kd == kLetter) {
        if (segLen != 0) resolveSegment(true);
        if (tkLast == 2) boundary(d);
        const int32_t f = foldOf(u);
        if (f >= 0) letter(f, d);
        tkLast = 1;
        tkPrevLetter = true;
      } else if (kd == kDigit || kd == kLeet) {
        const int s = segLen++;
        if (s < MAX_TOKEN_CAP) {
          segCp[s] = u;
          segDisp[s] = d;
          segLeet[s] = leetOf[u];
        }
      }
    }
    if (segLen != 0) resolveSegment(false);
    flushLetter();
  }

  void resolveSegment(bool followedByLetter) {
    const int len = segLen < MAX_TOKEN_CAP ? segLen : MAX_TOKEN_CAP;
    segLen = 0;
    bool leet = followedByLetter && (tkPrevLetter || (tkLast == 0 && len == 1 && segCp[0] == leadingLeet));
    for (int s = 0; leet && s < len; s++) {
      if (segLeet[s] < 0) leet = false;
    }
    if (leet) {
      for (int s = 0; s < len; s++) letter(segLeet[s], segDisp[s]);
      tkLast = 1;
      tkPrevLetter = true;
      return;
    }
    for (int s = 0; s < len; s++) {
      const int32_t cp = segCp[s];
      const int64_t d = segDisp[s];
      if (cp >= 0x30 && cp <= 0x39) {
        if (tkLast == 1) boundary(d);
        flushLetter();
        emit(cp, d, 1);
        lastSkelSpace = false;
        tkLast = 2;
      } else {
        boundary(d);
        tkLast = 0;
      }
    }
  }

  // spelled(): t[i, j) is a one-letter word. The end of the joined run, 0, R_CARRY or R_FOREIGN.
  int64_t spelled(int64_t i, int64_t j, int64_t n, bool final) {
    int64_t* st = spelledStart;
    st[0] = i;
    int m = 1;
    int64_t k = j;
    int64_t gap0 = 0;
    int64_t gap0Len = 0;
    for (;;) {
      if (m == maxSpelled) {
        cSpelledCut++;
        break;
      }
      int64_t p = k;
      int seps = 0;
      int gap = 0;
      bool ok = true;
      while (p < n) {
        const int32_t u = t[p];
        if (u >= 0x80) return R_FOREIGN;
        const int kd = kind[u];
        if (kd == kSep) seps++;
        else if (kd != kSpace) break;
        p += 1;
        if (++gap > maxGap || seps > 1 || (seps == 1 && gap > 1)) {
          ok = false;
          break;
        }
      }
      if (!ok || p == k) break;
      if (p >= n) {
        if (final) break;
        return R_CARRY;
      }
      if (m == 1) {
        gap0 = k;
        gap0Len = p - k;
      } else {
        if (p - k != gap0Len) break;
        bool same = true;
        for (int64_t x = 0; x < gap0Len && same; x++) same = t[k + x] == t[gap0 + x];
        if (!same) break;
      }
      const int32_t up = t[p];
      if (up >= 0x80) return R_FOREIGN;
      if (kind[up] != kLetter) break;
      const int64_t q = p + 1;
      if (q >= n) {
        if (!final) return R_CARRY;
      } else {
        const int32_t uq = t[q];
        if (uq >= 0x80) return R_FOREIGN;
        const int kq = kind[uq];
        if (kq == kLetter || kq == kDigit || kq == kLeet) break;
      }
      st[m++] = p;
      k = q;
    }
    if (m < 3) return 0;
    for (int x = 0; x < m; x++) {
      const int64_t p = st[x];
      if (x > 0) {
        int64_t s = st[x - 1] + 1;
        while (s < p) {
          const int32_t u = t[s];
          const int kd = kind[u];
          if (kd == kSpace) {
            if (lastDisp != 0x20) putDisplay(0x20);
          } else if (kd == kSep) {
            putDisplay(u);
          }
          s += 1;
        }
      }
      const int32_t u = t[p];
      const int64_t d = displayPos;
      putDisplay(u | 0x20);
      const int32_t f = foldOf(u);
      if (f >= 0) letter(f, d);
    }
    flushLetter();
    sepDisplay = 0;
    return k;
  }
};

bool ArgTypedArray(napi_env env, napi_value v, napi_typedarray_type want, void** data, size_t* len) {
  napi_typedarray_type type;
  size_t n = 0;
  void* p = nullptr;
  size_t offset = 0;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &n, &p, &ab, &offset) != napi_ok || type != want) return false;
  *data = p;
  *len = n;
  return true;
}

napi_value Throw(napi_env env, const char* msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return nullptr;
}

// configureFold(params: Int32Array, kind: Uint8Array(128), leet: Int32Array(128)): boolean.
// False when this build cannot honour the parameters, or another set is already in force in this
// process (the caller then folds in TypeScript).
napi_value ConfigureFold(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  void* pp;
  void* kp;
  void* lp;
  size_t pn, kn, ln;
  if (argc < 3 || !ArgTypedArray(env, argv[0], napi_int32_array, &pp, &pn) ||
      !ArgTypedArray(env, argv[1], napi_uint8_array, &kp, &kn) ||
      !ArgTypedArray(env, argv[2], napi_int32_array, &lp, &ln)) {
    return Throw(env, "configureFold(params: Int32Array, kind: Uint8Array, leet: Int32Array)");
  }
  napi_value out;
  const int32_t* p = static_cast<const int32_t*>(pp);
  bool ok = pn >= P_COUNT && kn >= 128 && ln >= 128 && p[P_LAYOUT_VERSION] == LAYOUT_VERSION &&
            p[P_MAX_TOKEN_CHARS] > 0 && p[P_MAX_TOKEN_CHARS] <= MAX_TOKEN_CAP &&
            p[P_MAX_SPELLED_LETTERS] > 0 && p[P_MAX_SPELLED_LETTERS] <= MAX_SPELLED_CAP &&
            p[P_DISPLAY_RING_UNITS] > 0 && (p[P_DISPLAY_RING_UNITS] & (p[P_DISPLAY_RING_UNITS] - 1)) == 0 &&
            p[P_RING_OFFSET] >= S_COUNT * 8 && p[P_RING_OFFSET] % 2 == 0 && p[P_OUT_MAP_OFFSET] % 4 == 0 &&
            p[P_RING_OFFSET] + 2 * p[P_DISPLAY_RING_UNITS] <= p[P_ARENA_BYTES] &&
            p[P_OUT_BYTES_OFFSET] + p[P_OUT_CAPACITY] <= p[P_ARENA_BYTES] &&
            p[P_OUT_MAP_OFFSET] + 4 * p[P_OUT_CAPACITY] <= p[P_ARENA_BYTES] && p[P_OUT_CAPACITY] > 0 &&
            p[P_OUT_BYTES_OFFSET] >= 0 && p[P_OUT_MAP_OFFSET] >= 0;
  if (ok) {
    std::lock_guard<std::mutex> lock(g_cfg_mutex);
    if (!g_cfg_ready.load(std::memory_order_relaxed)) {
      memcpy(g_cfg.p, p, sizeof(g_cfg.p));
      memcpy(g_cfg.kind, kp, 128);
      memcpy(g_cfg.leet, lp, 128 * sizeof(int32_t));
      g_cfg_ready.store(true, std::memory_order_release);
    } else {
      ok = memcmp(g_cfg.p, p, sizeof(g_cfg.p)) == 0 && memcmp(g_cfg.kind, kp, 128) == 0 &&
           memcmp(g_cfg.leet, lp, 128 * sizeof(int32_t)) == 0;
    }
  }
  napi_get_boolean(env, ok, &out);
  return out;
}

// foldRun(arena: Uint8Array, t: Uint16Array, from: number, n: number, final: number): number.
// Runs the fold loop over t[from, n) with the state in the arena; returns where it stopped, with
// the reason in the arena's status slot.
napi_value FoldRun(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (!g_cfg_ready.load(std::memory_order_acquire)) return Throw(env, "foldRun before configureFold");
  void* ap;
  void* tp;
  size_t an, tn;
  if (argc < 5 || !ArgTypedArray(env, argv[0], napi_uint8_array, &ap, &an) ||
      !ArgTypedArray(env, argv[1], napi_uint16_array, &tp, &tn)) {
    return Throw(env, "foldRun(arena: Uint8Array, t: Uint16Array, from, n, final)");
  }
  int64_t from = 0, n = 0;
  int32_t fin = 0;
  napi_get_value_int64(env, argv[2], &from);
  napi_get_value_int64(env, argv[3], &n);
  napi_get_value_int32(env, argv[4], &fin);
  const int32_t* P = g_cfg.p;
  if (an < static_cast<size_t>(P[P_ARENA_BYTES]) || (reinterpret_cast<uintptr_t>(ap) & 7) != 0) {
    return Throw(env, "foldRun: arena too small or misaligned");
  }
  if (from < 0 || n < from || static_cast<size_t>(n) > tn) return Throw(env, "foldRun: range outside the text");
  uint8_t* arena = static_cast<uint8_t*>(ap);
  double* S = reinterpret_cast<double*>(arena);
  Folder f;
  f.maxToken = P[P_MAX_TOKEN_CHARS];
  f.maxSpelled = P[P_MAX_SPELLED_LETTERS];
  f.maxGap = P[P_MAX_SPELLED_GAP];
  f.sliceDisplayUnits = P[P_SLICE_DISPLAY_UNITS];
  f.ringMask = P[P_DISPLAY_RING_UNITS] - 1;
  f.maxRepeat = P[P_MAX_DISPLAY_REPEAT];
  f.maxSepRun = P[P_MAX_DISPLAY_SEPARATOR_RUN];
  f.mapMask = P[P_MAP_POS_MASK];
  f.leadingLeet = P[P_LEADING_LEET];
  f.kSpace = P[P_K_SPACE];
  f.kSep = P[P_K_SEP];
  f.kLetter = P[P_K_LETTER];
  f.kDigit = P[P_K_DIGIT];
  f.kLeet = P[P_K_LEET];
  f.outCap = P[P_OUT_CAPACITY];
  f.kind = g_cfg.kind;
  f.leetOf = g_cfg.leet;
  f.t = static_cast<const uint16_t*>(tp);
  f.tLen = static_cast<int64_t>(tn);
  f.ring = reinterpret_cast<uint16_t*>(arena + P[P_RING_OFFSET]);
  f.outBytes = arena + P[P_OUT_BYTES_OFFSET];
  f.outMap = reinterpret_cast<int32_t*>(arena + P[P_OUT_MAP_OFFSET]);
  f.displayPos = static_cast<int64_t>(S[S_DISPLAY_POS]);
  f.outLen = static_cast<int32_t>(S[S_OUT_LEN]);
  f.outLimit = static_cast<int32_t>(S[S_OUT_LIMIT]);
  f.sliceDisplay = static_cast<int64_t>(S[S_SLICE_DISPLAY]);
  f.lastDisp = static_cast<int32_t>(S[S_LAST_DISP]);
  f.dispRepeat = static_cast<int32_t>(S[S_DISP_REPEAT]);
  f.sepDisplay = static_cast<int32_t>(S[S_SEP_DISPLAY]);
  f.lastSkelSpace = S[S_LAST_SKEL_SPACE] != 0;
  int status = STATUS_DONE;
  int64_t at = f.run(from, n, fin != 0, static_cast<int64_t>(S[S_BAIL]), &status);
  S[S_DISPLAY_POS] = static_cast<double>(f.displayPos);
  S[S_OUT_LEN] = f.outLen;
  S[S_SLICE_DISPLAY] = static_cast<double>(f.sliceDisplay);
  S[S_LAST_DISP] = f.lastDisp;
  S[S_DISP_REPEAT] = f.dispRepeat;
  S[S_SEP_DISPLAY] = f.sepDisplay;
  S[S_LAST_SKEL_SPACE] = f.lastSkelSpace ? 1 : 0;
  S[S_BAIL] = static_cast<double>(f.bailAt);
  S[S_STATUS] = status;
  S[S_TOKEN_CUT] += static_cast<double>(f.cTokenCut);
  S[S_SPELLED_CUT] += static_cast<double>(f.cSpelledCut);
  S[S_DISPLAY_TRIMMED] += static_cast<double>(f.cTrimmed);
  napi_value out;
  napi_create_int64(env, at, &out);
  return out;
}

}  // namespace

void HarkRegisterFold(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"configureFold", nullptr, ConfigureFold, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"foldRun", nullptr, FoldRun, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
}

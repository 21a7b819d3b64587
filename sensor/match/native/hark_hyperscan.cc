// Match stage, native half: a plain Node-API binding over Hyperscan's streaming literal matcher.
// Input: literal byte patterns (compiled once, at load) and stream bytes (untrusted packet content).
// Output: per scan call, the number of matches found, their (pattern id, end offset) pairs copied
// into the caller's Uint32Array (takeMatches() copies them again when it was too small). Never
// throws on scanned bytes; databases and streams are freed by close or their GC finalizer, the
// scratch and match buffer at env teardown.
// Only sensor/match/hyperscan.ts calls this; its header documents the contract. The same addon also
// carries the text normaliser's native fold loop (hark_fold.cc).

#include <hs/hs.h>
#include <node_api.h>

#include "hark_fold.h"

#include <atomic>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

namespace {

// A phrase dictionary ends at most a handful of phrases at any one byte, so real scan calls yield
// far fewer. Past this, matches are counted (found > kept) but not stored: the buffer stays bounded
// (8 bytes a match, 8 MiB) whatever the traffic. Equal to MAX_MATCHES_PER_SCAN in hyperscan.ts, which
// relies on kept == min(found, MAX_MATCHES_PER_SCAN).
constexpr size_t MAX_MATCHES_PER_SCAN = size_t{1} << 20;
// First size of the per-thread match buffer; it doubles on demand up to the limit above.
constexpr size_t INITIAL_MATCH_CAPACITY = 1024;
// hs_scan_stream() takes an unsigned int length: longer inputs are fed in pieces of this size.
constexpr size_t MAX_SCAN_PIECE_BYTES = size_t{1} << 30;

// Tags at the start of each native struct: a cheap guard against passing the wrong handle.
constexpr uint32_t DATABASE_MAGIC = 0x48534442;  // "HSDB"
constexpr uint32_t STREAM_MAGIC = 0x48535354;    // "HSST"

// Live native objects in the whole process: lets tests prove that finalizers free what GC drops.
std::atomic<int64_t> g_live_databases{0};
std::atomic<int64_t> g_live_streams{0};

// One per Node environment (main thread or worker): Hyperscan scratch must not be shared between
// threads, and every database of this environment is scanned with this one scratch (grown by
// hs_alloc_scratch to fit each database as it is loaded).
struct EnvState {
  hs_scratch_t* scratch;
  uint32_t* pairs;  // [id, end, id, end, ...] of the last scan / reset / close call
  size_t capacity;  // in matches (pairs)
  size_t kept;      // matches stored in pairs: min(found, MAX_MATCHES_PER_SCAN)
  uint64_t found;   // matches Hyperscan reported
};

struct Database {
  uint32_t magic;
  uint32_t refs;  // the JS handle, plus one per open stream (a stream points into its database)
  hs_database_t* db;
  size_t size;         // hs_database_size
  size_t stream_size;  // hs_stream_size: state bytes of each open stream
};

struct Stream {
  uint32_t magic;
  hs_stream_t* hs;  // NULL once closed
  Database* database;
};

const char* HsErrorName(hs_error_t e) {
  switch (e) {
    case HS_SUCCESS: return "HS_SUCCESS";
    case HS_INVALID: return "HS_INVALID";
    case HS_NOMEM: return "HS_NOMEM";
    case HS_SCAN_TERMINATED: return "HS_SCAN_TERMINATED";
    case HS_COMPILER_ERROR: return "HS_COMPILER_ERROR";
    case HS_DB_VERSION_ERROR: return "HS_DB_VERSION_ERROR";
    case HS_DB_PLATFORM_ERROR: return "HS_DB_PLATFORM_ERROR";
    case HS_DB_MODE_ERROR: return "HS_DB_MODE_ERROR";
    case HS_BAD_ALIGN: return "HS_BAD_ALIGN";
    case HS_BAD_ALLOC: return "HS_BAD_ALLOC";
    case HS_SCRATCH_IN_USE: return "HS_SCRATCH_IN_USE";
    case HS_ARCH_ERROR: return "HS_ARCH_ERROR";
    case HS_INSUFFICIENT_SPACE: return "HS_INSUFFICIENT_SPACE";
    case HS_UNKNOWN_ERROR: return "HS_UNKNOWN_ERROR";
    default: return "HS_UNKNOWN_ERROR";
  }
}

// Throws an Error whose `code` is the Hyperscan error name; returns NULL for the caller to return.
napi_value ThrowHs(napi_env env, const char* action, hs_error_t e) {
  std::string msg = std::string(action) + ": Hyperscan error " + HsErrorName(e) + " (" +
                    std::to_string(e) + ")";
  napi_throw_error(env, HsErrorName(e), msg.c_str());
  return nullptr;
}

napi_value ThrowType(napi_env env, const char* msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return nullptr;
}

napi_value MakeNumber(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

// Reads a Uint8Array (or Buffer) argument. Returns false (with a TypeError thrown) otherwise.
bool GetBytes(napi_env env, napi_value v, const char** data, size_t* len, const char* what) {
  napi_typedarray_type type;
  void* p = nullptr;
  size_t n = 0;
  if (napi_get_typedarray_info(env, v, &type, &n, &p, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array) {
    std::string msg = std::string(what) + " must be a Uint8Array";
    ThrowType(env, msg.c_str());
    return false;
  }
  // A zero-length (or detached) array may have no backing store: give Hyperscan a real address.
  *data = p != nullptr ? static_cast<const char*>(p) : "";
  *len = n;
  return true;
}

Database* GetDatabase(napi_env env, napi_value v) {
  void* p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == nullptr ||
      static_cast<Database*>(p)->magic != DATABASE_MAGIC) {
    ThrowType(env, "expected a Hyperscan database handle");
    return nullptr;
  }
  return static_cast<Database*>(p);
}

Stream* GetStream(napi_env env, napi_value v) {
  void* p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == nullptr ||
      static_cast<Stream*>(p)->magic != STREAM_MAGIC) {
    ThrowType(env, "expected a Hyperscan stream handle");
    return nullptr;
  }
  return static_cast<Stream*>(p);
}

// Hyperscan match callback: appends (id, end offset) to the per-thread buffer. Offsets are absolute
// in the stream since open / reset, truncated to 32 bits (see hyperscan.ts). Never stops the scan.
int OnMatch(unsigned int id, unsigned long long /*from*/, unsigned long long to,
            unsigned int /*flags*/, void* ctx) {
  EnvState* st = static_cast<EnvState*>(ctx);
  st->found++;
  if (st->kept == st->capacity) {
    if (st->capacity >= MAX_MATCHES_PER_SCAN) return 0;
    size_t cap = st->capacity != 0 ? st->capacity * 2 : INITIAL_MATCH_CAPACITY;
    if (cap > MAX_MATCHES_PER_SCAN) cap = MAX_MATCHES_PER_SCAN;
    void* grown = realloc(st->pairs, cap * 2 * sizeof(uint32_t));
    // Out of memory for at most 8 MiB: the process is beyond saving (V8 aborts likewise), and
    // going on would break kept == min(found, limit), which the TS side relies on.
    if (grown == nullptr) {
      napi_fatal_error("hark_hyperscan", NAPI_AUTO_LENGTH,
                       "out of memory growing the match buffer", NAPI_AUTO_LENGTH);
    }
    st->pairs = static_cast<uint32_t*>(grown);
    st->capacity = cap;
  }
  st->pairs[2 * st->kept] = id;
  st->pairs[2 * st->kept + 1] = static_cast<uint32_t>(to);
  st->kept++;
  return 0;
}

void BeginCollect(EnvState* st) {
  st->kept = 0;
  st->found = 0;
}

// Copies the pairs of the last call into `out` (a Uint32Array), as many as fit. Returns false with
// a TypeError thrown when `out` is not a Uint32Array.
bool CopyOut(napi_env env, EnvState* st, napi_value out) {
  napi_typedarray_type type;
  void* p = nullptr;
  size_t n = 0;
  if (napi_get_typedarray_info(env, out, &type, &n, &p, nullptr, nullptr) != napi_ok ||
      type != napi_uint32_array) {
    ThrowType(env, "out must be a Uint32Array");
    return false;
  }
  size_t pairs = st->kept < n / 2 ? st->kept : n / 2;
  if (pairs > 0) memcpy(p, st->pairs, pairs * 2 * sizeof(uint32_t));
  return true;
}

// Ends a scan / reset / close call: copies its pairs to `out` and returns the number found.
napi_value FinishCollect(napi_env env, EnvState* st, napi_value out) {
  if (st->found > 0 && !CopyOut(env, st, out)) return nullptr;
  return MakeNumber(env, static_cast<double>(st->found));
}

void ReleaseDatabase(napi_env env, Database* d) {
  if (--d->refs != 0) return;
  int64_t freed = static_cast<int64_t>(d->size + sizeof(Database));
  hs_free_database(d->db);
  d->magic = 0;
  free(d);
  g_live_databases--;
  int64_t ignored;
  napi_adjust_external_memory(env, -freed, &ignored);
}

void FinalizeDatabase(napi_env env, void* data, void* /*hint*/) {
  ReleaseDatabase(env, static_cast<Database*>(data));
}

void FinalizeStream(napi_env env, void* data, void* /*hint*/) {
  Stream* s = static_cast<Stream*>(data);
  if (s->hs != nullptr) {
    // Garbage-collected without close(): free the state; no scratch is needed without a callback.
    hs_close_stream(s->hs, nullptr, nullptr, nullptr);
    s->hs = nullptr;
    int64_t ignored;
    napi_adjust_external_memory(env, -static_cast<int64_t>(s->database->stream_size), &ignored);
    ReleaseDatabase(env, s->database);
  }
  s->magic = 0;
  free(s);
  g_live_streams--;
}

void FinalizeEnv(napi_env /*env*/, void* data, void* /*hint*/) {
  EnvState* st = static_cast<EnvState*>(data);
  if (st->scratch != nullptr) hs_free_scratch(st->scratch);
  free(st->pairs);
  free(st);
}

// Wraps a loaded hs_database_t (taking ownership): sizes it, fits this thread's scratch to it (so
// platform or mode errors surface at load, never on the packet path) and returns the JS handle.
napi_value WrapDatabase(napi_env env, EnvState* st, hs_database_t* db) {
  size_t size = 0, stream_size = 0;
  hs_error_t e = hs_database_size(db, &size);
  if (e == HS_SUCCESS) e = hs_stream_size(db, &stream_size);
  if (e != HS_SUCCESS) {
    hs_free_database(db);
    return ThrowHs(env, "Cannot use Hyperscan database (not a streaming database?)", e);
  }
  e = hs_alloc_scratch(db, &st->scratch);
  if (e != HS_SUCCESS) {
    hs_free_database(db);
    return ThrowHs(env, "Cannot allocate Hyperscan scratch for database", e);
  }
  Database* d = static_cast<Database*>(malloc(sizeof(Database)));
  if (d == nullptr) {
    hs_free_database(db);
    return ThrowHs(env, "Cannot allocate Hyperscan database handle", HS_NOMEM);
  }
  d->magic = DATABASE_MAGIC;
  d->refs = 1;
  d->db = db;
  d->size = size;
  d->stream_size = stream_size;
  napi_value out;
  if (napi_create_external(env, d, FinalizeDatabase, nullptr, &out) != napi_ok) {
    hs_free_database(db);
    free(d);
    return nullptr;
  }
  g_live_databases++;
  int64_t ignored;
  napi_adjust_external_memory(env, static_cast<int64_t>(size + sizeof(Database)), &ignored);
  return out;
}

// Throws an Error with code HS_COMPILER_ERROR and patternIndex (-1 when no one pattern is at fault).
napi_value ThrowCompileError(napi_env env, const std::string& msg, int index) {
  napi_value code, text, error, idx;
  napi_create_string_utf8(env, "HS_COMPILER_ERROR", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg.c_str(), NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_create_int32(env, index, &idx);
  napi_set_named_property(env, error, "patternIndex", idx);
  napi_throw(env, error);
  return nullptr;
}

EnvState* GetArgs(napi_env env, napi_callback_info info, size_t want, napi_value* argv) {
  size_t argc = want;
  void* data = nullptr;
  napi_get_cb_info(env, info, &argc, argv, nullptr, &data);
  for (size_t i = argc; i < want; i++) napi_get_undefined(env, &argv[i]);
  return static_cast<EnvState*>(data);
}

// compileLiterals(patterns: Uint8Array[], portable: boolean): DatabaseHandle
// Pattern id = array index; exact bytes (no HS_FLAG_CASELESS); every occurrence reported (no
// HS_FLAG_SINGLEMATCH). portable: generic tuning and no AVX2/AVX-512, so the serialized bytes run
// on any x86-64 with SSSE3; otherwise tuned for this host.
napi_value CompileLiterals(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  EnvState* st = GetArgs(env, info, 2, argv);
  bool is_array = false;
  napi_is_array(env, argv[0], &is_array);
  if (!is_array) return ThrowType(env, "patterns must be an array of Uint8Array");
  bool portable = false;
  napi_get_value_bool(env, argv[1], &portable);

  uint32_t n = 0;
  napi_get_array_length(env, argv[0], &n);
  // Hyperscan itself answers an empty list with "expressions is NULL": say what is wrong instead.
  if (n == 0) return ThrowCompileError(env, "Pattern list is empty", -1);
  std::vector<const char*> exprs(n);
  std::vector<size_t> lens(n);
  std::vector<unsigned> ids(n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    if (napi_get_element(env, argv[0], i, &el) != napi_ok) return nullptr;
    std::string what = "pattern " + std::to_string(i);
    if (!GetBytes(env, el, &exprs[i], &lens[i], what.c_str())) return nullptr;
    // Hyperscan 5.4.0 has no check for a zero-length literal: beside other patterns it crashed
    // the compiler here (SIGSEGV), alone it matched at the end of every scan call. Refuse it.
    if (lens[i] == 0) return ThrowCompileError(env, "Pattern is empty", static_cast<int>(i));
    ids[i] = i;
  }

  hs_platform_info_t platform;
  memset(&platform, 0, sizeof(platform));
  platform.tune = HS_TUNE_FAMILY_GENERIC;
  platform.cpu_features = 0;
  hs_database_t* db = nullptr;
  hs_compile_error_t* err = nullptr;
  hs_error_t e = hs_compile_lit_multi(exprs.data(), nullptr, ids.data(), lens.data(), n,
                                      HS_MODE_STREAM, portable ? &platform : nullptr, &db, &err);
  if (e != HS_SUCCESS) {
    std::string msg = err != nullptr && err->message != nullptr ? err->message : HsErrorName(e);
    int index = err != nullptr ? err->expression : -1;
    hs_free_compile_error(err);
    return ThrowCompileError(env, msg, index);
  }
  return WrapDatabase(env, st, db);
}

// serialize(db): Uint8Array
napi_value Serialize(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  GetArgs(env, info, 1, argv);
  Database* d = GetDatabase(env, argv[0]);
  if (d == nullptr) return nullptr;
  char* bytes = nullptr;
  size_t len = 0;
  hs_error_t e = hs_serialize_database(d->db, &bytes, &len);
  if (e != HS_SUCCESS) return ThrowHs(env, "Cannot serialize Hyperscan database", e);
  void* data = nullptr;
  napi_value ab, out;
  if (napi_create_arraybuffer(env, len, &data, &ab) != napi_ok) {
    free(bytes);
    return nullptr;
  }
  memcpy(data, bytes, len);
  free(bytes);  // allocated by Hyperscan's misc allocator: malloc by default
  napi_create_typedarray(env, napi_uint8_array, len, ab, 0, &out);
  return out;
}

// deserialize(bytes: Uint8Array): DatabaseHandle
napi_value Deserialize(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  EnvState* st = GetArgs(env, info, 1, argv);
  const char* bytes;
  size_t len;
  if (!GetBytes(env, argv[0], &bytes, &len, "serialized database")) return nullptr;
  hs_database_t* db = nullptr;
  hs_error_t e = hs_deserialize_database(bytes, len, &db);
  if (e != HS_SUCCESS) return ThrowHs(env, "Cannot deserialize Hyperscan database", e);
  return WrapDatabase(env, st, db);
}

// databaseSizes(db): [databaseBytes, streamStateBytes]
napi_value DatabaseSizes(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  GetArgs(env, info, 1, argv);
  Database* d = GetDatabase(env, argv[0]);
  if (d == nullptr) return nullptr;
  napi_value out;
  napi_create_array_with_length(env, 2, &out);
  napi_set_element(env, out, 0, MakeNumber(env, static_cast<double>(d->size)));
  napi_set_element(env, out, 1, MakeNumber(env, static_cast<double>(d->stream_size)));
  return out;
}

// databaseInfo(db): string such as "Version: 5.4.0 Features: AVX2 Mode: STREAM"
napi_value DatabaseInfo(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  GetArgs(env, info, 1, argv);
  Database* d = GetDatabase(env, argv[0]);
  if (d == nullptr) return nullptr;
  char* text = nullptr;
  hs_error_t e = hs_database_info(d->db, &text);
  if (e != HS_SUCCESS) return ThrowHs(env, "Cannot describe Hyperscan database", e);
  napi_value out;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &out);
  free(text);
  return out;
}

// openStream(db): StreamHandle
napi_value OpenStream(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  GetArgs(env, info, 1, argv);
  Database* d = GetDatabase(env, argv[0]);
  if (d == nullptr) return nullptr;
  Stream* s = static_cast<Stream*>(malloc(sizeof(Stream)));
  if (s == nullptr) return ThrowHs(env, "Cannot open Hyperscan stream", HS_NOMEM);
  hs_stream_t* hs = nullptr;
  hs_error_t e = hs_open_stream(d->db, 0, &hs);
  if (e != HS_SUCCESS) {
    free(s);
    return ThrowHs(env, "Cannot open Hyperscan stream", e);
  }
  s->magic = STREAM_MAGIC;
  s->hs = hs;
  s->database = d;
  napi_value out;
  if (napi_create_external(env, s, FinalizeStream, nullptr, &out) != napi_ok) {
    hs_close_stream(hs, nullptr, nullptr, nullptr);
    free(s);
    return nullptr;
  }
  d->refs++;
  g_live_streams++;
  int64_t ignored;
  napi_adjust_external_memory(env, static_cast<int64_t>(d->stream_size), &ignored);
  return out;
}

// scan(stream, bytes: Uint8Array, out: Uint32Array): number of matches found; the first
// min(found, MAX_MATCHES_PER_SCAN) pairs are copied into `out` as far as it holds them.
napi_value Scan(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  EnvState* st = GetArgs(env, info, 3, argv);
  Stream* s = GetStream(env, argv[0]);
  if (s == nullptr) return nullptr;
  if (s->hs == nullptr) {
    napi_throw_error(env, "ERR_STREAM_CLOSED", "Cannot scan a closed Hyperscan stream");
    return nullptr;
  }
  const char* data;
  size_t len;
  if (!GetBytes(env, argv[1], &data, &len, "bytes")) return nullptr;
  BeginCollect(st);
  while (len > 0) {
    size_t piece = len < MAX_SCAN_PIECE_BYTES ? len : MAX_SCAN_PIECE_BYTES;
    hs_error_t e = hs_scan_stream(s->hs, data, static_cast<unsigned int>(piece), 0, st->scratch,
                                  OnMatch, st);
    if (e != HS_SUCCESS) return ThrowHs(env, "Cannot scan Hyperscan stream", e);
    data += piece;
    len -= piece;
  }
  return FinishCollect(env, st, argv[2]);
}

// reset(stream, out): end-of-stream matches, as scan (none for literals). Offsets restart at 0.
napi_value Reset(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  EnvState* st = GetArgs(env, info, 2, argv);
  Stream* s = GetStream(env, argv[0]);
  if (s == nullptr) return nullptr;
  if (s->hs == nullptr) {
    napi_throw_error(env, "ERR_STREAM_CLOSED", "Cannot reset a closed Hyperscan stream");
    return nullptr;
  }
  BeginCollect(st);
  hs_error_t e = hs_reset_stream(s->hs, 0, st->scratch, OnMatch, st);
  if (e != HS_SUCCESS) return ThrowHs(env, "Cannot reset Hyperscan stream", e);
  return FinishCollect(env, st, argv[1]);
}

// close(stream, out): end-of-stream matches, as scan. Closing twice finds nothing.
napi_value Close(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  EnvState* st = GetArgs(env, info, 2, argv);
  Stream* s = GetStream(env, argv[0]);
  if (s == nullptr) return nullptr;
  BeginCollect(st);
  if (s->hs == nullptr) return MakeNumber(env, 0);
  hs_error_t e = hs_close_stream(s->hs, st->scratch, OnMatch, st);
  // hs_close_stream frees the state even when it reports an error: the stream is gone either way.
  s->hs = nullptr;
  int64_t ignored;
  napi_adjust_external_memory(env, -static_cast<int64_t>(s->database->stream_size), &ignored);
  ReleaseDatabase(env, s->database);
  if (e != HS_SUCCESS) return ThrowHs(env, "Cannot close Hyperscan stream", e);
  return FinishCollect(env, st, argv[1]);
}

// takeMatches(out: Uint32Array): copies the pairs of this thread's last scan / reset / close again
// (for when its `out` was too small); returns how many pairs that call kept.
napi_value TakeMatches(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  EnvState* st = GetArgs(env, info, 1, argv);
  if (!CopyOut(env, st, argv[0])) return nullptr;
  return MakeNumber(env, static_cast<double>(st->kept));
}

// validPlatform(): whether this CPU can run Hyperscan (it needs SSSE3).
napi_value ValidPlatform(napi_env env, napi_callback_info info) {
  napi_value out;
  napi_get_boolean(env, hs_valid_platform() == HS_SUCCESS, &out);
  return out;
}

// version(): Hyperscan's version string.
napi_value Version(napi_env env, napi_callback_info info) {
  napi_value out;
  napi_create_string_utf8(env, hs_version(), NAPI_AUTO_LENGTH, &out);
  return out;
}

// liveCounts(): [databases, streams] not yet freed, process-wide (for leak tests).
napi_value LiveCounts(napi_env env, napi_callback_info info) {
  napi_value out;
  napi_create_array_with_length(env, 2, &out);
  napi_set_element(env, out, 0, MakeNumber(env, static_cast<double>(g_live_databases.load())));
  napi_set_element(env, out, 1, MakeNumber(env, static_cast<double>(g_live_streams.load())));
  return out;
}

}  // namespace

NAPI_MODULE_INIT() {
  EnvState* st = static_cast<EnvState*>(calloc(1, sizeof(EnvState)));
  if (st == nullptr) {
    napi_throw_error(env, "HS_NOMEM", "Cannot allocate Hyperscan binding state");
    return nullptr;
  }
  st->pairs = static_cast<uint32_t*>(malloc(INITIAL_MATCH_CAPACITY * 2 * sizeof(uint32_t)));
  st->capacity = st->pairs != nullptr ? INITIAL_MATCH_CAPACITY : 0;
  if (napi_set_instance_data(env, st, FinalizeEnv, nullptr) != napi_ok) {
    free(st->pairs);
    free(st);
    return nullptr;
  }
  napi_value max_matches = MakeNumber(env, static_cast<double>(MAX_MATCHES_PER_SCAN));
#define HARK_FN(name, fn) \
  { name, nullptr, fn, nullptr, nullptr, nullptr, napi_enumerable, st }
  napi_property_descriptor props[] = {
      HARK_FN("compileLiterals", CompileLiterals),
      HARK_FN("serialize", Serialize),
      HARK_FN("deserialize", Deserialize),
      HARK_FN("databaseSizes", DatabaseSizes),
      HARK_FN("databaseInfo", DatabaseInfo),
      HARK_FN("openStream", OpenStream),
      HARK_FN("scan", Scan),
      HARK_FN("reset", Reset),
      HARK_FN("close", Close),
      HARK_FN("takeMatches", TakeMatches),
      HARK_FN("validPlatform", ValidPlatform),
      HARK_FN("version", Version),
      HARK_FN("liveCounts", LiveCounts),
      {"MAX_MATCHES_PER_SCAN", nullptr, nullptr, nullptr, nullptr, max_matches, napi_enumerable,
       nullptr},
  };
#undef HARK_FN
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) {
    return nullptr;
  }
  HarkRegisterFold(env, exports);
  return exports;
}

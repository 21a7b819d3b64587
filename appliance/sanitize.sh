#!/usr/bin/env bash
# Runs Hark's native addons under AddressSanitizer + UndefinedBehaviorSanitizer: builds sanitized
# copies of the match addon (Hyperscan + text fold loop) and, as root, the ring-capture addon, into
# var/sanitize/ (the normal builds in sensor/*/native/build are never touched), loads them into
# plain node with libasan preloaded (HARK_HYPERSCAN_ADDON / HARK_RING_ADDON name them), and runs the
# match and normalize tests, the differential fuzz (test/match/native-fuzz.test.ts) for SECONDS per
# campaign, `hark scan` of every capture under test/fixtures, and the live capture tests. Exits
# non-zero on a failed test or any sanitizer report.
#
# Usage: appliance/sanitize.sh [SECONDS=60] [SEED=1]      (npm run sanitize -- 600 7)
# Env: SANITIZE_CAPTURE=0 skips the capture addon (it needs root: veth pairs).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
seed="${2:-1}"
out="$PWD/var/sanitize"
started=$(date +%s)

gyp="$(npm prefix -g 2>/dev/null)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
nodedir="${npm_config_nodedir:-$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")}"
libasan="$(g++ -print-file-name=libasan.so)"
[ -f "$libasan" ] || { echo "sanitize: libasan not found (apt-get install g++)" >&2; exit 1; }
flags="-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1"

# Builds a copy of one addon's sources with the sanitizers. $1: source dir, $2: copy dir.
build() {
  rm -rf "$2"
  mkdir -p "$2"
  cp "$1"/binding.gyp "$1"/*.cc "$2"/
  cp "$1"/*.h "$2"/ 2>/dev/null || true
  # gyp's Makefile appends CXXFLAGS after binding.gyp's cflags_cc: -O1 wins over its -O2
  (cd "$2" && CXXFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" \
    node "$gyp" rebuild --nodedir="$nodedir" --loglevel=warn >build.log 2>&1) \
    || { tail -30 "$2/build.log" >&2; echo "sanitize: cannot build $1 with sanitizers" >&2; exit 1; }
}

capture=0
if [ "${SANITIZE_CAPTURE:-1}" != 0 ] && [ "$(id -u)" -eq 0 ]; then capture=1; fi
echo "sanitize: building sanitized addons in $out" >&2
build sensor/match/native "$out/match"
[ "$capture" = 1 ] && build sensor/capture/native "$out/capture"
npx tsc -p tsconfig.json

rm -rf "$out/logs"
mkdir -p "$out/logs"
export LD_PRELOAD="$libasan"
# node itself is not instrumented: its own allocations would all read as leaks
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:log_path=$out/logs/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$out/logs/ubsan"
export HARK_HYPERSCAN_ADDON="$out/match/build/Release/hark_hyperscan.node"
export HARK_RING_ADDON="$out/capture/build/Release/hark_ring.node"
export HARK_FUZZ_SEED="$seed"

failed=0
run() {
  local name="$1"
  shift
  local t0=$(date +%s)
  if "$@" >"$out/$name.out" 2>&1; then
    echo "sanitize: $name passed ($(($(date +%s) - t0)) s)" >&2
  else
    failed=1
    grep -E '^not ok|HARK_FUZZ_SEED=|error:' "$out/$name.out" | head -20 >&2 || true
    echo "sanitize: $name FAILED ($(($(date +%s) - t0)) s): $out/$name.out" >&2
  fi
}

run native-tests node --test dist/test/match/ dist/test/normalize/
HARK_FUZZ_SECONDS="$seconds" run fuzz node --test dist/test/match/native-fuzz.test.js
grep -E '^# [0-9]+ (cases|texts)' "$out/fuzz.out" | sed 's/^# /sanitize: fuzz: /' >&2 || true
# Every capture the tests use, through the whole pipeline (HTTP, HTTP/2, TLS with its key logs,
# QUIC, DNS...) with the sanitized matcher and fold loop: real traffic's text, not the fuzz's.
scan_fixtures() {
  local f keylog n=0
  while IFS= read -r -d '' f; do
    keylog=()
    [ -f "${f%.*}.keylog" ] && keylog=(--keylog "${f%.*}.keylog")
    node dist/sensor/cli/hark.js scan "$f" --engine hyperscan --out /dev/null "${keylog[@]}" >/dev/null \
      || { echo "hark scan $f failed" >&2; return 1; }
    n=$((n + 1))
  done < <(find test/fixtures -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) -print0 | sort -z)
  echo "# $n captures scanned"
}
run fixture-scans scan_fixtures
grep -E '^# [0-9]+ captures' "$out/fixture-scans.out" | sed 's/^# /sanitize: /' >&2 || true
if [ "$capture" = 1 ]; then
  run capture-tests node --test dist/test/capture/ring.test.js dist/test/capture/offloads.test.js
else
  echo "sanitize: capture addon skipped (needs root; SANITIZE_CAPTURE=${SANITIZE_CAPTURE:-1})" >&2
fi

reports=$(find "$out/logs" -type f | sort)
if [ -n "$reports" ]; then
  failed=1
  for f in $reports; do
    echo "sanitize: report $f" >&2
    head -40 "$f" >&2
  done
fi
echo "sanitize: $([ "$failed" = 0 ] && echo clean || echo FAILED) in $(($(date +%s) - started)) s (seed $seed, $seconds s per fuzz campaign)" >&2
exit "$failed"

#!/usr/bin/env bash
# Development / CI setup, run by `npm start`, `npm test` and `npm run bench` before they do anything.
# Installs the Debian packages Hark needs (when missing), the node modules (when package-lock.json
# changed) and compiles the TypeScript. Idempotent and quiet when there is nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."

# libpcap-dev + build tools: the `cap` and `better-sqlite3` native modules are compiled here.
# tcpflow, ngrep: the reassembly cross-check test and the benchmark compare against them.
# tcpreplay, tcpdump, iproute2: live-capture tests replay pcaps onto veth pairs.
# ethtool: the offload tests check with it what Hark did to GRO on a stacked interface.
# wamerican: the benchmark workload generator draws its words from it.
# libhyperscan-dev: the native phrase matcher (sensor/match/native) is built against it.
# tmux: the console-menu tests drive the real menu in a terminal. openssl: certificate cross-checks.
# chromium: home renders evidence images with it (headless, network off) and the portal tests drive it.
# zip: the VMware bundle tests cross-check Hark's zip reader against zip(1).
PACKAGES=(build-essential python3 libpcap-dev libhyperscan-dev tcpflow ngrep tcpreplay tcpdump iproute2 ethtool wamerican tmux openssl chromium zip)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "hark setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  elif command -v sudo >/dev/null 2>&1; then
    echo "hark setup: installing ${missing[*]} (sudo)" >&2
    sudo apt-get update -qq >&2
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    echo "hark setup: missing Debian packages: ${missing[*]}" >&2
    echo "hark setup: run as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

# Node modules: install when absent or when the lock file is newer than the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "hark setup: installing node modules" >&2
  npm ci --no-fund --no-audit >&2
fi

# Hyperscan phrase-matcher addon (sensor/match/native): rebuild when missing or older than its
# sources. Headers come from the installed node (nodedir), never from the network. Hyperscan
# needs an x86-64 CPU with SSSE3; elsewhere Hark uses its pure-TypeScript matcher.
nodedir="${npm_config_nodedir:-$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")}"
gyp=(node-gyp)
command -v node-gyp >/dev/null 2>&1 \
  || gyp=(node "$(npm prefix -g)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js")
HS_ADDON=sensor/match/native/build/Release/hark_hyperscan.node
if [ "$(uname -m)" = x86_64 ] && { [ ! -f "$HS_ADDON" ] || [ sensor/match/native/hark_hyperscan.cc -nt "$HS_ADDON" ] \
   || [ sensor/match/native/hark_fold.cc -nt "$HS_ADDON" ] || [ sensor/match/native/hark_fold.h -nt "$HS_ADDON" ] \
   || [ sensor/match/native/binding.gyp -nt "$HS_ADDON" ]; }; then
  echo "hark setup: building the Hyperscan addon" >&2
  "${gyp[@]}" rebuild -C sensor/match/native --nodedir="$nodedir" --loglevel=warn >&2
fi
# The ring capture addon (sensor/capture/native): TPACKET_V3 capture with kernel drop counters,
# linked against libpcap for BPF compilation. Linux only; the sensor falls back to `cap` without it.
RING_ADDON=sensor/capture/native/build/Release/hark_ring.node
if [ "$(uname -s)" = Linux ] && { [ ! -f "$RING_ADDON" ] || [ sensor/capture/native/hark_ring.cc -nt "$RING_ADDON" ] \
   || [ sensor/capture/native/binding.gyp -nt "$RING_ADDON" ]; }; then
  echo "hark setup: building the ring capture addon" >&2
  "${gyp[@]}" rebuild -C sensor/capture/native --nodedir="$nodedir" --loglevel=warn >&2
fi

# Compile (incremental: fast when nothing changed).
./node_modules/.bin/tsc -p tsconfig.json

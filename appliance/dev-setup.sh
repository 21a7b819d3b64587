#!/usr/bin/env bash
# Development / CI setup, run by `npm start`, `npm test` and `npm run bench` before they do anything.
# Installs the Debian packages Hark needs (when missing), the node modules (when package-lock.json
# changed) and compiles the TypeScript. Idempotent and quiet when there is nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."

# libpcap-dev + build tools: the `cap` and `better-sqlite3` native modules are compiled here.
# tcpflow: the reassembly cross-check test and the benchmark compare against it.
# tcpreplay, tcpdump, iproute2: live-capture tests replay pcaps onto veth pairs.
# wamerican: the benchmark workload generator draws its words from it.
PACKAGES=(build-essential python3 libpcap-dev tcpflow tcpreplay tcpdump iproute2 wamerican)

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

# Compile (incremental: fast when nothing changed).
./node_modules/.bin/tsc -p tsconfig.json

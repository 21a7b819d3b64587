#!/usr/bin/env bash
# Installs Hark on a fresh Debian 12 machine, idempotently, saying what it did: Debian packages,
# Hark's own Node >= 20 (without file capabilities), the hark system user, /opt/hark (the
# project, built), /var/lib/hark, /etc/hark with a default hark.env, and the systemd units.
# With --with-home also the home server: the hark-home user, /var/lib/hark-home, /etc/hark/home.env
# and hark-home.service enabled (its unit is always installed, never enabled without the option).
# Everything goes under --root / $HARK_ROOT (default /), so tests can install into a temporary tree.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: setup.sh [--root DIR] [--skip-packages] [--dist DIR] [--node PATH] [--with-home]

  --root DIR        install under DIR instead of / (default: $HARK_ROOT, else /)
  --skip-packages   do not install Debian packages nor run npm ci (tests, offline machines)
  --dist DIR        use this already compiled output instead of compiling (default: compile)
  --node PATH       the Node.js (20 or newer) to copy into /opt/hark/node (default: $HARK_NODE,
                    else the node on PATH). Debian 12's own node is 18: too old.
  --with-home       also set up Hark's home server on this machine: the hark-home user,
                    /var/lib/hark-home, /etc/hark/home.env, and hark-home.service enabled (started
                    at once when systemd runs here). Without it a sensor runs no home.
EOF
}

ROOT_ARG="${HARK_ROOT:-/}"
SKIP_PACKAGES=0
DIST=""
NODE_SRC="${HARK_NODE:-}"
WITH_HOME=0
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT_ARG="$2"; shift 2 ;;
    --skip-packages) SKIP_PACKAGES=1; shift ;;
    --dist) DIST="$2"; shift 2 ;;
    --node) NODE_SRC="$2"; shift 2 ;;
    --with-home) WITH_HOME=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup.sh: unknown option \"$1\"" >&2; usage >&2; exit 2 ;;
  esac
done

ROOT="${ROOT_ARG%/}"
SRC="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
OPT="$ROOT/opt/hark"
MIN_NODE_MAJOR=20
# Runtime: capture library and tools (ethtool: what the capture.offloads warning tells the operator to run); build: the native modules (cap, better-sqlite3) compile here.
PACKAGES=(libpcap0.8 libpcap-dev tcpdump iproute2 ethtool iputils-ping tmux ca-certificates build-essential python3 systemd)

say() { printf 'hark setup: %s\n' "$*"; }
die() { printf 'hark setup: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run setup.sh as root (it creates a user, /opt/hark and /etc/hark)"
[ -f "$SRC/package.json" ] || die "cannot find the Hark project beside this script (looked in \"$SRC\")"
mkdir -p "$ROOT/" 2>/dev/null || die "cannot create the install root \"$ROOT_ARG\""

# ---- 1. Debian packages --------------------------------------------------------------------------
if [ "$SKIP_PACKAGES" -eq 1 ]; then
  say "Debian packages: skipped (--skip-packages)"
else
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "Debian packages: all present"
  else
    say "Debian packages: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

# ---- 2. Node.js >= 20, Hark's own copy -----------------------------------------------------------
if [ -z "$NODE_SRC" ]; then NODE_SRC="$(command -v node || true)"; fi
[ -n "$NODE_SRC" ] && [ -x "$NODE_SRC" ] || die "no Node.js found: install Node.js $MIN_NODE_MAJOR or newer and run: HARK_NODE=/path/to/node $0"
NODE_VERSION="$("$NODE_SRC" -p process.versions.node 2>/dev/null || echo unknown)"
NODE_MAJOR="${NODE_VERSION%%.*}"
if ! [[ "$NODE_MAJOR" =~ ^[0-9]+$ ]] || [ "$NODE_MAJOR" -lt "$MIN_NODE_MAJOR" ]; then
  die "Hark needs Node.js $MIN_NODE_MAJOR or newer; \"$NODE_SRC\" is version $NODE_VERSION (Debian 12 ships 18). Install a newer Node.js and run: HARK_NODE=/path/to/node $0"
fi
NODE_DST="$OPT/node/bin/node"
mkdir -p "$OPT/node/bin"
if [ -f "$NODE_DST" ] && cmp -s "$(readlink -f "$NODE_SRC")" "$NODE_DST"; then
  say "Node.js: $NODE_DST is already $NODE_VERSION"
else
  install -m 0755 "$(readlink -f "$NODE_SRC")" "$NODE_DST"
  say "Node.js: copied $NODE_VERSION from $NODE_SRC to $NODE_DST"
fi
# No file capabilities on this node: it is world-executable (the menu and operators run it), so
# cap_net_raw,cap_net_admin on it would let every local user sniff and reconfigure the network.
# hark.service grants them to the sensor alone (AmbientCapabilities); hark.sh without systemd runs
# the sensor as root, which drops to HARK_USER once capture is open. Older setups set them: remove.
if command -v getcap >/dev/null 2>&1 && [ -n "$(getcap "$NODE_DST" 2>/dev/null)" ]; then
  setcap -r "$NODE_DST" || die "cannot remove the file capabilities of \"$NODE_DST\" (setcap -r failed)"
  say "capabilities: removed the file capabilities an older setup gave $NODE_DST (hark.service grants capture rights)"
else
  say "capabilities: none on $NODE_DST (hark.service grants capture rights to the sensor alone)"
fi

# ---- 3. the hark system user ---------------------------------------------------------------------
prefix=()
if [ -n "$ROOT" ]; then mkdir -p "$ROOT/etc"; prefix=(--prefix "$ROOT"); fi
passwd_file="$ROOT/etc/passwd"
# Creates a system user with its own group, no login, home in its data directory, unless it exists.
ensure_user() {
  local name="$1" comment="$2"
  if grep -q "^$name:" "$passwd_file" 2>/dev/null; then
    say "user: $name already exists"
  else
    useradd "${prefix[@]}" --system --user-group --home-dir "/var/lib/$name" --no-create-home --shell /usr/sbin/nologin --comment "$comment" "$name"
    say "user: created system user $name (no login)"
  fi
}
ensure_user hark "Hark sensor"
HARK_UID="$(awk -F: '$1 == "hark" { print $3 }' "$passwd_file")"
HARK_GID="$(awk -F: '$1 == "hark" { print $4 }' "$passwd_file")"

# Creates or corrects a directory's owner and mode, saying which.
ensure_dir() {
  local path="$1" mode="$2" owner="$3"
  if [ -d "$path" ] && [ "$(stat -c '%a %u:%g' "$path")" = "${mode#0} $owner" ]; then
    say "directory: ${path#"$ROOT"} already ${mode} $4"
  else
    mkdir -p "$path"; chmod "$mode" "$path"; chown "$owner" "$path"
    say "directory: ${path#"$ROOT"} set to ${mode} $4"
  fi
}

# Writes a settings file (FILE, shown as NAME) from standard input unless it exists, since a second run
# keeps what an operator changed; either way it is 0640 with OWNER (root and the group that reads it).
settings_file() {
  local file="$1" name="$2" owner="$3" what="$4"
  if [ -f "$file" ]; then
    say "settings: $name kept as it is"
  else
    cat > "$file"
    say "settings: wrote a default $name ($what)"
  fi
  chown "$owner" "$file"; chmod 0640 "$file"
}

# ---- 4. /opt/hark: the project, built ------------------------------------------------------------
if [ -z "$DIST" ] && [ -x "$SRC/node_modules/.bin/tsc" ]; then
  say "build: compiling the project (tsc)"
  rm -rf "$OPT/dist.new"
  PATH="$OPT/node/bin:$PATH" "$SRC/node_modules/.bin/tsc" -p "$SRC/tsconfig.json" --outDir "$OPT/dist.new" --tsBuildInfoFile "$OPT/dist.new/.tsbuildinfo" >&2 || true
  [ -f "$OPT/dist.new/sensor/cli/hark.js" ] || die "the build produced no sensor/cli/hark.js"
  rm -rf "$OPT/dist"; mv "$OPT/dist.new" "$OPT/dist"
elif [ -n "$DIST" ]; then
  [ -f "$DIST/sensor/cli/hark.js" ] || die "--dist \"$DIST\" has no sensor/cli/hark.js"
  rm -rf "$OPT/dist"; mkdir -p "$OPT/dist"; cp -a "$DIST/." "$OPT/dist/"
  rm -rf "$OPT/dist/test" "$OPT/dist/bench"
  say "build: copied the compiled output from $DIST"
else
  die "cannot build: no TypeScript compiler in $SRC/node_modules (run npm ci there) and no --dist given"
fi
for part in package.json package-lock.json bin appliance rules README.md; do
  [ -e "$SRC/$part" ] || continue
  rm -rf "${OPT:?}/$part"; cp -a "$SRC/$part" "$OPT/$part"
done
say "project: copied package files, bin, appliance and rules from $SRC to ${OPT#"$ROOT"}"
if [ "$SKIP_PACKAGES" -eq 1 ]; then
  say "node modules: skipped (--skip-packages)"
elif [ -f "$OPT/node_modules/.package-lock.json" ] && cmp -s "$OPT/package-lock.json" "$OPT/.installed-lock.json"; then
  say "node modules: already installed for this package-lock.json"
else
  say "node modules: npm ci --omit=dev"
  (cd "$OPT" && PATH="$OPT/node/bin:$PATH" npm ci --omit=dev --no-fund --no-audit)
  cp "$OPT/package-lock.json" "$OPT/.installed-lock.json"
fi
chown -R 0:0 "$OPT"
chmod 0755 "$OPT" "$OPT/node" "$OPT/node/bin"

# Operators' commands: hark (on Hark's node) and the control script.
mkdir -p "$ROOT/usr/local/bin" "$ROOT/usr/local/sbin"
printf '#!/bin/sh\n# Hark, on its own Node.js (installed by setup.sh).\nPATH=/opt/hark/node/bin:$PATH exec /opt/hark/bin/hark "$@"\n' > "$ROOT/usr/local/bin/hark"
chmod 0755 "$ROOT/usr/local/bin/hark"
ln -sfn /opt/hark/appliance/hark.sh "$ROOT/usr/local/sbin/hark.sh"
say "commands: /usr/local/bin/hark and /usr/local/sbin/hark.sh"

# ---- 5. data, settings, logs ---------------------------------------------------------------------
ensure_dir "$ROOT/var/lib/hark" 0700 "$HARK_UID:$HARK_GID" "hark:hark"
ensure_dir "$ROOT/etc/hark" 0750 "0:$HARK_GID" "root:hark"
ensure_dir "$ROOT/var/log/hark" 0750 "0:$HARK_GID" "root:hark"

settings_file "$ROOT/etc/hark/hark.env" /etc/hark/hark.env "0:$HARK_GID" "unconfigured: run hark menu" <<'EOF'
# Hark sensor settings, read by hark.service (EnvironmentFile=) and /opt/hark/appliance/hark.sh.
# The console menu (hark menu) writes them in its first-boot wizard.
HARK_MODE=home
HARK_INTERFACE=
HARK_DATA_DIR=/var/lib/hark
HARK_ALLOW_LIST=/etc/hark/allow-list.txt
# HARK_PROXY=http://proxy:3128
HARK_RUN_ARGS=
EOF
ALLOW="$ROOT/etc/hark/allow-list.txt"
if [ -f "$ALLOW" ]; then
  say "allow list: /etc/hark/allow-list.txt kept as it is"
else
  printf '# Hark local allow list: one domain per line; a domain allows its subdomains too.\n' > "$ALLOW"
  say "allow list: created an empty /etc/hark/allow-list.txt"
fi
chown "0:$HARK_GID" "$ALLOW"; chmod 0640 "$ALLOW"

# ---- 5b. the home server (--with-home) -----------------------------------------------------------
# Home runs as hark-home, not root and not hark: as root Chromium (the evidence renderer) has no
# sandbox, and the sensor's user has no business reading home's CA key and database.
if [ "$WITH_HOME" -eq 1 ]; then
  ensure_user hark-home "Hark home server"
  HOME_UID="$(awk -F: '$1 == "hark-home" { print $3 }' "$passwd_file")"
  HOME_GID="$(awk -F: '$1 == "hark-home" { print $4 }' "$passwd_file")"
  ensure_dir "$ROOT/var/lib/hark-home" 0700 "$HOME_UID:$HOME_GID" "hark-home:hark-home"
  settings_file "$ROOT/etc/hark/home.env" /etc/hark/home.env "0:$HOME_GID" "port 443, every address" <<'EOF'
# Hark home server settings, read by hark-home.service (EnvironmentFile=). After a change:
# systemctl restart hark-home. The first admin password: /var/lib/hark-home/initial-admin-password.
HARK_HOME_PORT=443
# One address to listen on; empty: every IPv4 and IPv6 address.
HARK_HOME_LISTEN=
# Another directory also needs ReadWritePaths= in a drop-in (systemctl edit hark-home).
HARK_HOME_DIR=/var/lib/hark-home
# Names sensors use to reach home, for its certificate: --name home.school.example (repeatable).
HARK_HOME_ARGS=
EOF
fi

# ---- 6. systemd units ----------------------------------------------------------------------------
UNIT_DIR="$ROOT/etc/systemd/system"
mkdir -p "$UNIT_DIR"
changed=0
for u in "$SRC"/appliance/systemd/*.service; do
  dst="$UNIT_DIR/$(basename "$u")"
  if ! cmp -s "$u" "$dst"; then install -m 0644 "$u" "$dst"; changed=1; fi
done
if [ "$changed" -eq 1 ]; then say "units: installed hark.service, hark-home.service, hark-mirror@.service, hark-menu.service"; else say "units: already up to date"; fi
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable hark.service hark-menu.service >/dev/null 2>&1
  say "units: enabled hark.service and hark-menu.service (the sensor starts once configured)"
  if [ "$WITH_HOME" -eq 1 ]; then
    systemctl enable --now hark-home.service >/dev/null 2>&1 || die "cannot start hark-home.service: see journalctl -u hark-home"
    say "units: enabled and started hark-home.service (its first admin password: /var/lib/hark-home/initial-admin-password)"
  fi
else
  say "units: systemd is not running here (or --root is set): installed, not enabled"
  # Enabling only makes links under /etc, which systemctl does offline: the image boots with home on.
  if [ "$WITH_HOME" -eq 1 ] && [ -L "$UNIT_DIR/multi-user.target.wants/hark-home.service" ]; then
    say "units: hark-home.service already enabled"
  elif [ "$WITH_HOME" -eq 1 ]; then
    systemctl --root "${ROOT:-/}" enable hark-home.service >/dev/null 2>&1 || die "cannot enable hark-home.service under \"${ROOT:-/}\" (systemctl --root ... enable failed)"
    say "units: enabled hark-home.service (it starts at the next boot)"
  fi
fi
say "done. Configure the sensor with: hark menu   (or /opt/hark/node/bin/node /opt/hark/dist/menu/main.js)"

#!/usr/bin/env bash
# Hark's control script (the appliance's mss.sh): hark.sh start|stop|restart|reload|status [--json].
# Input: $HARK_ROOT (default /; every path lives under it), $HARK_BIN (default /opt/hark/bin/hark),
# the settings file $HARK_ROOT/etc/hark/hark.env. Under systemd (PID 1 and HARK_ROOT=/) it drives
# hark.service; elsewhere it runs the sensor under its own supervisor (hidden mode "__supervise")
# that restarts it when it dies, like Restart=always. status exits with the sensor's LSB codes 0/1/3/4,
# and also reports the home server where /etc/hark/home.env says setup.sh --with-home set it up.
set -uo pipefail

HARK_ROOT="${HARK_ROOT:-/}"
ROOT="${HARK_ROOT%/}"                       # "" for /, so "$ROOT/etc" is always a clean path
HARK_BIN="${HARK_BIN:-/opt/hark/bin/hark}"
ENV_FILE="$ROOT/etc/hark/hark.env"
RUN_DIR="$ROOT/run/hark"
LOG_DIR="$ROOT/var/log/hark"
SUPERVISOR_PID_FILE="$RUN_DIR/supervisor.pid"
SENSOR_PID_FILE="$RUN_DIR/hark.pid"
STARTED_FILE="$RUN_DIR/started_at"
STOP_FILE="$RUN_DIR/stopping"
UNIT=hark.service
# The home server, when `setup.sh --with-home` set it up: it writes home.env (the unit is always
# installed, so it says nothing). Without systemd hark.sh does not run home; status only looks at it.
HOME_ENV_FILE="$ROOT/etc/hark/home.env"
HOME_UNIT=hark-home.service

# Seconds between the sensor dying and its restart: the appliance promises to be back within 10 s.
RESTART_DELAY_S="${HARK_RESTART_DELAY_S:-2}"
# Seconds the sensor gets to flush flows and captures after SIGTERM before it is killed.
STOP_TIMEOUT_S="${HARK_STOP_TIMEOUT_S:-30}"
# Seconds start waits for the sensor to open its interfaces before reporting it as failed.
START_WAIT_S="${HARK_START_WAIT_S:-10}"
# Milliseconds status waits for home's /v1/ping: an idle home answers in a few; 3 s is a hung one.
HOME_PING_TIMEOUT_MS="${HARK_HOME_PING_TIMEOUT_MS:-3000}"

# Hark's own node (setup.sh installs it: Node >= 20, Debian 12's is 18) comes before the system one.
# It has no file capabilities: capture works here because the sensor starts as root.
export PATH="/opt/hark/node/bin:$PATH"

EXIT_RUNNING=0 EXIT_DEAD=1 EXIT_NOT_RUNNING=3 EXIT_UNKNOWN=4

say() { printf '%s\n' "$*"; }
fail() { printf 'hark.sh: %s\n' "$*" >&2; exit 1; }

usage() {
  cat <<'EOF'
Usage: hark.sh start|stop|restart|reload|status [--json]

  start     start the sensor (it phones home and builds its configuration)
  stop      stop the sensor; it flushes every flow and capture first
  restart   stop, then start: the whole configuration is rebuilt from home
  reload    re-fetch the configuration and swap dictionary and policy without a restart
  status    running or not, since when, interfaces, packets, drops, captures, upload queue
            and, where setup.sh --with-home set it up, the home server: running or not, its
            address and whether it answers (exit status 0 running, 1 dead with a stale pid file,
            3 not running, 4 unknown: the sensor's alone)
EOF
}

use_systemd() {
  [ -z "$ROOT" ] && [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]
}

# Prints a settings file (systemd EnvironmentFile syntax: KEY=VALUE, # comments, optional quotes)
# as KEY=VALUE lines, unquoted, without executing it.
read_settings() {
  local line key value
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line#"${line%%[![:space:]]*}"}"
    case "$line" in ''|'#'*|';'*) continue ;; esac
    [[ "$line" =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key="${BASH_REMATCH[1]}" value="${BASH_REMATCH[2]}"
    if [[ "$value" =~ ^\"(.*)\"$ ]] || [[ "$value" =~ ^\'(.*)\'$ ]]; then value="${BASH_REMATCH[1]}"; fi
    printf '%s=%s\n' "$key" "$value"
  done < "$1"
}

# Reads hark.env into the environment. Paths in it are appliance paths: they are moved under HARK_ROOT.
load_env() {
  [ -f "$ENV_FILE" ] || return 0
  local kv
  while IFS= read -r kv; do export "$kv"; done < <(read_settings "$ENV_FILE")
  export HARK_DATA_DIR="$ROOT${HARK_DATA_DIR:-/var/lib/hark}"
  if [ -n "${HARK_ALLOW_LIST:-}" ]; then export HARK_ALLOW_LIST="$ROOT$HARK_ALLOW_LIST"; fi
}

data_dir() { printf '%s' "${HARK_DATA_DIR:-$ROOT/var/lib/hark}"; }

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
read_pid() { [ -f "$1" ] && tr -dc '0-9' < "$1"; }

# ---- supervisor (hidden mode): one sensor at a time, restarted when it dies -----------------------
supervise() {
  local child="" stopping=0 code
  mkdir -p "$RUN_DIR"
  echo $$ > "$SUPERVISOR_PID_FILE"
  rm -f "$STOP_FILE"
  on_term() {
    stopping=1
    if alive "$child"; then kill -TERM "$child" 2>/dev/null; fi
  }
  trap on_term TERM INT
  trap '' HUP
  local -a extra=()
  read -r -a extra <<< "${HARK_RUN_ARGS:-}"
  local -a user=()
  if [ -n "${HARK_USER:-}" ]; then user=(--user "$HARK_USER"); fi
  while [ "$stopping" -eq 0 ]; do
    "$HARK_BIN" run "${user[@]}" "${extra[@]}" </dev/null &
    child=$!
    echo "$child" > "$SENSOR_PID_FILE"
    date -u +%Y-%m-%dT%H:%M:%SZ > "$STARTED_FILE"
    say "$(date -u +%FT%TZ) hark.sh: sensor started (pid $child)"
    # `wait` returns early when a trapped signal arrives; keep waiting until the sensor is gone.
    code=0
    while alive "$child"; do wait "$child"; code=$?; done
    wait "$child" 2>/dev/null; local reaped=$?
    [ "$reaped" -ne 127 ] && code=$reaped
    if [ "$stopping" -eq 1 ] || [ -f "$STOP_FILE" ]; then
      say "$(date -u +%FT%TZ) hark.sh: sensor stopped (status $code)"
      break
    fi
    say "$(date -u +%FT%TZ) hark.sh: sensor exited with status $code; restarting in ${RESTART_DELAY_S} s"
    sleep "$RESTART_DELAY_S" & wait $! 2>/dev/null
  done
  rm -f "$SENSOR_PID_FILE" "$SUPERVISOR_PID_FILE" "$STARTED_FILE" "$STOP_FILE"
  exit 0
}

# ---- commands without systemd --------------------------------------------------------------------
local_start() {
  local sup pid i
  sup="$(read_pid "$SUPERVISOR_PID_FILE")"
  if alive "$sup"; then say "Hark sensor is already running (pid $(read_pid "$SENSOR_PID_FILE"))."; return 0; fi
  [ -x "$HARK_BIN" ] || fail "Cannot start the sensor: \"$HARK_BIN\" is not an executable file (set HARK_BIN or run setup.sh)"
  [ -f "$ENV_FILE" ] || fail "Cannot start the sensor: \"$ENV_FILE\" is missing; configure the sensor first (hark menu)"
  # As hark.service's UMask=0077: the data directory (captures of children's traffic), the log and
  # every file the supervised sensor makes are their owner's alone, never 0755 from umask 022.
  umask 077
  mkdir -p "$RUN_DIR" "$LOG_DIR" "$(data_dir)" || fail "Cannot create \"$RUN_DIR\", \"$LOG_DIR\" or \"$(data_dir)\""
  rm -f "$SUPERVISOR_PID_FILE" "$SENSOR_PID_FILE" "$STOP_FILE"
  setsid "$BASH" "$0" __supervise </dev/null >>"$LOG_DIR/hark.log" 2>&1 &
  for ((i = 0; i < START_WAIT_S * 10; i++)); do
    pid="$(read_pid "$SENSOR_PID_FILE")"
    if alive "$pid"; then break; fi
    sleep 0.1
  done
  # The sensor opens its capture handles in its first second; one that dies at once says why in the log.
  sleep 1
  pid="$(read_pid "$SENSOR_PID_FILE")"
  if alive "$pid"; then
    say "Starting Hark sensor: ok (pid $pid; log $LOG_DIR/hark.log)"
    return 0
  fi
  say "Starting Hark sensor: FAILED; the last lines of $LOG_DIR/hark.log:" >&2
  tail -n 5 "$LOG_DIR/hark.log" >&2
  local_stop >/dev/null
  return 1
}

local_stop() {
  local sup pid i
  sup="$(read_pid "$SUPERVISOR_PID_FILE")"
  pid="$(read_pid "$SENSOR_PID_FILE")"
  if ! alive "$sup" && ! alive "$pid"; then
    rm -f "$SUPERVISOR_PID_FILE" "$SENSOR_PID_FILE" "$STARTED_FILE" "$STOP_FILE"
    say "Hark sensor is not running."
    return 0
  fi
  mkdir -p "$RUN_DIR"; : > "$STOP_FILE"
  # One SIGTERM only: the supervisor forwards it; a second one would cut the sensor's flush short.
  if alive "$sup"; then kill -TERM "$sup" 2>/dev/null
  elif alive "$pid"; then kill -TERM "$pid" 2>/dev/null; fi
  for ((i = 0; i < STOP_TIMEOUT_S * 10; i++)); do
    if ! alive "$sup" && ! alive "$pid"; then break; fi
    sleep 0.1
  done
  if alive "$pid" || alive "$sup"; then
    say "Hark sensor did not stop within ${STOP_TIMEOUT_S} s; killing it." >&2
    kill -KILL "$pid" "$sup" 2>/dev/null
  fi
  rm -f "$SUPERVISOR_PID_FILE" "$SENSOR_PID_FILE" "$STARTED_FILE" "$STOP_FILE"
  say "Stopping Hark sensor: ok"
}

local_reload() {
  local pid
  pid="$(read_pid "$SENSOR_PID_FILE")"
  alive "$pid" || fail "Cannot reload: the sensor is not running"
  kill -USR2 "$pid" || fail "Cannot reload: signalling pid $pid failed"
  say "Reloading Hark sensor configuration: ok (pid $pid)"
}

# Prints "state pid since" for the local supervisor and returns the LSB code.
local_state() {
  local sup pid since
  sup="$(read_pid "$SUPERVISOR_PID_FILE")"
  pid="$(read_pid "$SENSOR_PID_FILE")"
  since="$(cat "$STARTED_FILE" 2>/dev/null)"
  if alive "$pid"; then echo "running ${pid} ${since:--}"; return $EXIT_RUNNING; fi
  if alive "$sup"; then echo "restarting - -"; return $EXIT_DEAD; fi
  if [ -f "$SUPERVISOR_PID_FILE" ] || [ -f "$SENSOR_PID_FILE" ]; then echo "dead - -"; return $EXIT_DEAD; fi
  echo "stopped - -"; return $EXIT_NOT_RUNNING
}

# ---- commands with systemd -----------------------------------------------------------------------
# Prints "state pid since" for a unit (default hark.service) and returns the LSB code.
systemd_state() {
  local unit="${1:-$UNIT}" pid since
  if systemctl is-active --quiet "$unit"; then
    pid="$(systemctl show -p MainPID --value "$unit")"
    since="$(systemctl show -p ActiveEnterTimestamp --value "$unit" | tr ' ' '_')"
    echo "running ${pid:--} ${since:--}"; return $EXIT_RUNNING
  fi
  case "$(systemctl show -p ActiveState --value "$unit" 2>/dev/null)" in
    failed) echo "dead - -"; return $EXIT_DEAD ;;
    activating|deactivating) echo "restarting - -"; return $EXIT_DEAD ;;
    inactive) echo "stopped - -"; return $EXIT_NOT_RUNNING ;;
    *) echo "unknown - -"; return $EXIT_UNKNOWN ;;
  esac
}

# ---- status --------------------------------------------------------------------------------------
# The sensor's own view (`hark status --json`) when it answers, else its status file.
sensor_json() {
  local out
  if out="$("$HARK_BIN" status --json --data-dir "$(data_dir)" 2>/dev/null)" && [ "${out:0:1}" = "{" ]; then
    printf '%s' "$out"; return 0
  fi
  # `hark status` exits 1 or 3 for a sensor that is not running but still prints its JSON.
  if [ "${out:0:1}" = "{" ]; then printf '%s' "$out"; return 0; fi
  if [ -f "$(data_dir)/status.json" ]; then cat "$(data_dir)/status.json"; return 0; fi
  printf 'null'
}

# Home's view as JSON, or null when home is not set up here: its state (systemd's under systemd;
# otherwise what its port says: it answers = running, refused = stopped, else unknown), listen address
# from home.env, and whether GET /v1/ping answers. That route is unauthenticated by design
# (PROTOCOL.md: a latency probe) and says only {ok, time}. Home's certificate is not checked: the
# probe asks whether home answers on this machine, not who it is, and it sends nothing.
home_json() {
  [ -f "$HOME_ENV_FILE" ] || { printf 'null'; return 0; }
  local port=443 listen="" readable=1 line="" kv
  if [ -r "$HOME_ENV_FILE" ]; then
    while IFS= read -r kv; do
      case "$kv" in HARK_HOME_PORT=*) port="${kv#*=}" ;; HARK_HOME_LISTEN=*) listen="${kv#*=}" ;; esac
    done < <(read_settings "$HOME_ENV_FILE")
  else
    readable=0
  fi
  if use_systemd; then line="$(systemd_state "$HOME_UNIT")"; fi
  UNIT_STATE="$line" PORT="$port" LISTEN="$listen" READABLE="$readable" TIMEOUT_MS="$HOME_PING_TIMEOUT_MS" \
    ENV_NAME="${HOME_ENV_FILE#"$ROOT"}" node -e '
    const e = process.env;
    const [unitState, unitPid, unitSince] = e.UNIT_STATE ? e.UNIT_STATE.split(" ") : [];
    const finish = (listen, ping) => {
      let state = unitState;
      if (!state) state = ping.answers ? "running" : ping.error === "ECONNREFUSED" ? "stopped" : "unknown";
      const pid = unitPid && unitPid !== "-" && unitPid !== "0" ? Number(unitPid) : null;
      const since = unitSince && unitSince !== "-" ? unitSince.replace(/_/g, " ") : null;
      process.stdout.write(JSON.stringify({ state, pid, since, managed_by: unitState ? "systemd" : null, listen, ping }));
    };
    if (e.READABLE !== "1") {
      finish(null, { url: null, answers: false, error: `cannot read ${e.ENV_NAME} (run status as root)` });
    } else {
      const port = Number(e.PORT);
      // Empty, 0.0.0.0 or :: = every address: loopback reaches it.
      const address = ["", "0.0.0.0", "::", "[::]"].includes(e.LISTEN) ? null : e.LISTEN.replace(/^\[(.*)\]$/, "$1");
      const host = address ?? "127.0.0.1";
      const url = `https://${host.includes(":") ? `[${host}]` : host}:${e.PORT}/v1/ping`;
      const listen = { address, port: Number.isInteger(port) ? port : null };
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        finish(listen, { url: null, answers: false, error: `HARK_HOME_PORT "${e.PORT}" in ${e.ENV_NAME} is not a port number` });
      } else {
        const timeout = Number(e.TIMEOUT_MS);
        const req = require("node:https").get({ host, port, path: "/v1/ping", rejectUnauthorized: false, timeout }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c) => { if (body.length < 4096) body += c; });
          res.on("end", () => {
            let ok = false;
            try { ok = res.statusCode === 200 && JSON.parse(body).ok === true; } catch {}
            finish(listen, { url, answers: ok, error: ok ? null : `HTTP ${res.statusCode}, not home\x27s ping answer` });
          });
        });
        req.on("timeout", () => req.destroy(Object.assign(new Error(`no answer within ${timeout} ms`), { code: "ETIMEDOUT" })));
        req.on("error", (err) => finish(listen, { url, answers: false, error: err.code ?? err.message }));
      }
    }
  ' 2>/dev/null || printf 'null'
}

status() {
  local json=0 line state pid since code
  [ "${1:-}" = "--json" ] && json=1
  if use_systemd; then line="$(systemd_state)"; code=$?; else line="$(local_state)"; code=$?; fi
  read -r state pid since <<< "$line"
  [ "$since" = "-" ] && since=""
  [ "$pid" = "-" ] && pid=""
  since="${since//_/ }"
  STATE="$state" PID="$pid" SINCE="$since" CODE="$code" JSON="$json" SENSOR="$(sensor_json)" HOME_STATUS="$(home_json)" node -e '
    const e = process.env;
    let s = null;
    try { s = JSON.parse(e.SENSOR); } catch { s = null; }
    let home = null;
    try { home = JSON.parse(e.HOME_STATUS); } catch { home = null; }
    // `hark status --json` wraps the status file as {state, reason, status_file, status}.
    if (s && typeof s === "object" && "state" in s && "status" in s) s = s.status;
    const out = { state: e.STATE, pid: e.PID ? Number(e.PID) : null, since: e.SINCE || null, exit_code: Number(e.CODE), sensor: s };
    if (home) out.home = home;
    if (e.JSON === "1") { process.stdout.write(JSON.stringify(out, null, 2) + "\n"); process.exit(0); }
    const words = { unknown: "state unknown", running: "running", restarting: "restarting after a failure", dead: "dead (stale pid file)", stopped: "not running" };
    const lines = [`Hark sensor: ${words[out.state] ?? out.state}${out.pid ? ` (pid ${out.pid})` : ""}${out.since ? ` since ${out.since}` : ""}`];
    const n = (v) => (typeof v === "number" ? v.toLocaleString("en-GB") : "-");
    if (s && typeof s === "object") {
      for (const i of Array.isArray(s.interfaces) ? s.interfaces : []) {
        lines.push(`  interface ${i.name}: ${n(i.packets)} packets, ${n(i.kernel_drops)} kernel drops, ${n(i.interface_drops)} interface drops`);
      }
      if (s.captures !== undefined) lines.push(`  captures: ${n(s.captures)}`);
      const mib = (v) => (typeof v === "number" ? Math.round(v / 1048576).toLocaleString("en-GB") : "-");
      if (s.memory && typeof s.memory.rss_bytes === "number") lines.push(`  memory: RSS ${mib(s.memory.rss_bytes)} MiB (peak ${mib(s.memory.peak_rss_bytes)} MiB; hark status shows where it goes)`);
      if (s.upload && s.upload.queue !== undefined) lines.push(`  upload queue: ${n(s.upload.queue)}`);
      if (s.config) lines.push(`  configuration: ${s.config.source ?? "-"}${typeof s.config.age_s === "number" ? `, ${s.config.age_s} s old` : ""}`);
      for (const h of Array.isArray(s.health) ? s.health : []) lines.push(`  health: ${typeof h === "string" ? h : [h.name ?? h.code ?? h.id, h.message ?? h.reason].filter(Boolean).join(": ") || JSON.stringify(h)}`);
    } else if (out.state === "running") {
      lines.push("  (the sensor has not written its status yet)");
    }
    if (home) {
      lines.push(`Hark home: ${words[home.state] ?? home.state}${home.pid ? ` (pid ${home.pid})` : ""}${home.since ? ` since ${home.since}` : ""}`);
      if (home.listen) lines.push(`  listen: ${home.listen.address ?? "every address"}, port ${home.listen.port ?? "-"}`);
      const p = home.ping;
      lines.push(`  health: ${p.url ? `${p.url} ${p.answers ? "answers" : `does not answer (${p.error})`}` : p.error}`);
    }
    process.stdout.write(lines.join("\n") + "\n");
  ' || say "Hark sensor: $state${pid:+ (pid $pid)}"
  return "$code"
}

main() {
  local cmd="${1:-}"
  [ $# -gt 0 ] && shift
  case "$cmd" in
    __supervise) load_env; supervise ;;
    start)
      if use_systemd; then systemctl start "$UNIT" && say "Starting Hark sensor: ok"; return; fi
      load_env; local_start ;;
    stop)
      if use_systemd; then systemctl stop "$UNIT" && say "Stopping Hark sensor: ok"; return; fi
      load_env; local_stop ;;
    restart)
      if use_systemd; then systemctl restart "$UNIT" && say "Restarting Hark sensor: ok"; return; fi
      load_env; local_stop && local_start ;;
    reload)
      if use_systemd; then systemctl reload "$UNIT" && say "Reloading Hark sensor configuration: ok"; return; fi
      load_env; local_reload ;;
    status) load_env; status "$@" ;;
    -h|--help|help) usage ;;
    *) usage >&2; return 2 ;;
  esac
}

main "$@"

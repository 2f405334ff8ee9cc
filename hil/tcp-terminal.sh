#!/usr/bin/env bash
# Scenario: a print-release terminal authenticates against the real pinwarden binary.
# Usage: hil/tcp-terminal.sh [path/to/pinwarden]
set -euo pipefail
BIN=${1:-./target/release/pinwarden}
LISTEN=${PW_LISTEN:-127.0.0.1:7499}
TERMINAL=${PW_TERMINAL:-127.0.0.1}
WORK=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
HOST=${LISTEN%:*}; PORT=${LISTEN##*:}
[ "$HOST" = 0.0.0.0 ] && HOST=127.0.0.1

cat > "$WORK/pw.toml" <<TOML
state_dir = "$WORK/var"
[lockout]
free_failures = 3
initial_backoff = "10m"
[[device]]
id = "hil-printer"
kind = "printer"
allow_groups = ["staff"]
[[tcp]]
listen = "$LISTEN"
[[tcp.terminal]]
address = "$TERMINAL"
device = "hil-printer"
TOML

step() { printf '%-60s' "$1"; }
pass() { echo PASS; }
fail() { echo "FAIL: $*"; exit 1; }
start() {
    "$BIN" run -c "$WORK/pw.toml" >>"$WORK/daemon.log" 2>&1 & PID=$!
    for _ in $(seq 100); do "$BIN" -c "$WORK/pw.toml" status >/dev/null 2>&1 && return; sleep 0.1; done
    fail "daemon not ready: $(tail -5 "$WORK/daemon.log")"
}
ask() {  # one request on a fresh connection, print the reply line
    exec 3<>"/dev/tcp/$HOST/$PORT"; printf '%s\r\n' "$1" >&3
    local reply; IFS= read -r -t 10 reply <&3 || true; exec 3>&-; printf '%s' "${reply%$'\r'}"
}

step "daemon starts"; start; pass
step "enrol hil-user with a generated PIN (stdin/stdout only)"
PIN=$("$BIN" -c "$WORK/pw.toml" user add hil-user --group staff --generate 2>/dev/null); pass
step "PING answers PONG"; [ "$(ask PING)" = PONG ] && pass || fail "no PONG"
step "the PIN is granted"; r=$(ask "PIN $PIN"); [ "$r" = "OK hil-user 0" ] && pass || fail "$r"
step "a wrong PIN is denied"; r=$(ask "PIN 000000"); [ "$r" = DENY ] && pass || fail "$r"
step "the PIN never appears in the state directory or the log"
! grep -rqa -- "$PIN" "$WORK/var" "$WORK/daemon.log" && pass || fail "PIN bytes found"
step "lockout engages after the failure budget"
for p in 111293 220394 330495; do ask "PIN $p" >/dev/null; done
r=$(ask "PIN $PIN"); [ "$r" = DENY ] && pass || fail "$r"
step "SIGTERM stops the daemon cleanly"; kill -TERM "$PID"; wait "$PID" && pass || fail "exit $?"
step "after a restart the lockout still holds"; start; r=$(ask "PIN $PIN"); [ "$r" = DENY ] && pass || fail "$r"
echo "all steps passed"

#!/usr/bin/env bash
# Scenario: a serial keypad and a USB relay board on a door, against the real binary.
#   hil/door-keypad.sh [path/to/pinwarden]
# Real hardware: set PW_KEYPAD=/dev/serial/by-id/…keypad… and PW_RELAY=/dev/serial/by-id/…relay…
# (and PW_FRAMING, PW_RELAY_ON/PW_RELAY_OFF as TOML byte arrays); the script then asks you
# to type on the keypad and watch the door. Without them it builds two pty pairs with socat
# and plays the keypad and the relay itself.
set -euo pipefail
BIN=${1:-./target/release/pinwarden}
WORK=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
step() { printf '%-64s' "$1"; }
pass() { echo PASS; }
fail() { echo "FAIL: $*"; tail -20 "$WORK/daemon.log" >&2 || true; exit 1; }
pw() { "$BIN" -c "$WORK/pw.toml" "$@"; }

if [ -z "${PW_KEYPAD:-}" ]; then
    command -v socat >/dev/null || fail "socat is missing: apt-get install socat"
    for end in keypad relay; do
        socat pty,raw,echo=0,link="$WORK/$end" pty,raw,echo=0,link="$WORK/$end-far" 2>/dev/null & PIDS+=($!)
    done
    for _ in $(seq 50); do [ -e "$WORK/keypad-far" ] && [ -e "$WORK/relay-far" ] && break; sleep 0.1; done
    PW_KEYPAD=$WORK/keypad PW_RELAY=$WORK/relay SIMULATED=1
fi
cat > "$WORK/pw.toml" <<TOML
state_dir = "$WORK/var"
[[device]]
id = "hil-door"
kind = "door"
allow_groups = ["staff"]
[[keypad]]
port = "$PW_KEYPAD"
device = "hil-door"
framing = "${PW_FRAMING:-keys}"
feedback = { granted = [71], denied = [68] }
[[door]]
device = "hil-door"
actuator = "serial"
port = "$PW_RELAY"
on = ${PW_RELAY_ON:-[160, 1, 1, 162]}
off = ${PW_RELAY_OFF:-[160, 1, 0, 161]}
pulse = "1s"
TOML

step "daemon starts"
"$BIN" run -c "$WORK/pw.toml" >"$WORK/daemon.log" 2>&1 & PID=$!; PIDS+=($PID)
for _ in $(seq 100); do pw status >/dev/null 2>&1 && break; sleep 0.1; done
pw status >/dev/null 2>&1 && pass || fail "not ready"
step "keypad opened"
for _ in $(seq 100); do pw audit --json | grep -q '"action":"connected"' && break; sleep 0.1; done
pw audit --json | grep -q '"action":"connected"' && pass || fail "keypad not opened"
step "enrol hil-user (generated PIN)"
PIN=$(pw user add hil-user --group staff --generate 2>/dev/null); pass

if [ -n "${SIMULATED:-}" ]; then
    exec 5<>"$WORK/keypad-far" 6<>"$WORK/relay-far"
    step "the door relocks at start (off bytes first)"
    relay=$(timeout 3 head -c 4 <&6 | od -An -tu1 | tr -s ' ' | sed 's/^ //')
    [ "$relay" = "160 1 0 161" ] && pass || fail "relay bytes: $relay"
    press() { for ((i = 0; i < ${#1}; i++)); do printf '%s' "${1:i:1}" >&5; sleep 0.05; done; }
    step "the PIN typed key by key gives the granted byte"
    press "$PIN#"; IFS= read -r -t 5 -N 1 fb <&5 || true; [ "${fb:-}" = G ] && pass || fail "feedback '${fb:-}'"
    step "the relay receives on, then off after the pulse"
    relay=$(timeout 3 head -c 8 <&6 | od -An -tu1 | tr -s ' ' | sed 's/^ //')
    [ "$relay" = "160 1 1 162 160 1 0 161" ] && pass || fail "relay bytes: $relay"
    step "a wrong PIN gives the denied byte and no pulse"
    press "000000#"; IFS= read -r -t 5 -N 1 fb <&5 || true; [ "${fb:-}" = D ] || fail "feedback '${fb:-}'"
    ! timeout 1.5 head -c 1 <&6 >/dev/null && pass || fail "relay moved on a denial"
else
    echo "Type $PIN then # on the keypad now; the door should click open for 1 s."
    step "an unlock is audited within 60 s"
    for _ in $(seq 600); do pw audit --json | grep -q '"action":"unlock"' && break; sleep 0.1; done
    pw audit --json | grep -q '"action":"unlock"' && pass || fail "no unlock"
fi
step "SIGTERM stops the daemon cleanly (the door is relocked)"
kill -TERM "$PID"; wait "$PID" && pass || fail "exit $?"
echo "all steps passed"

#!/usr/bin/env bash
# Scenario: print release end to end: held jobs in CUPS, a PIN and a card at the terminal,
# the locked-down policy, printer trouble. Runs the built binary against a private cupsd and
# ippeveprinter on loopback (default), or against the site's CUPS and a real printer queue:
#   PW_CUPS=/run/cups/cups.sock PW_QUEUE=lobby PW_CERT=/run/cups/certs/0 hil/print-release.sh
# (as root; the queue must use the pinwarden policy, see README "Secure hold queue"). CUPS is
# administered over its domain socket: cupsd refuses its local certificate over TCP. Jobs
# are submitted with ipptool (`lp -U NAME` for a name with no passwd entry crashes cupsd);
# the desk check runs as the real account `daemon`.
# Usage: hil/print-release.sh [path/to/pinwarden]
set -euo pipefail
BIN=${1:-./target/release/pinwarden}
WORK=$(mktemp -d)
chmod 0755 "$WORK"   # CUPS backends run as lp and must reach the spool
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$WORK"' EXIT
HERE=$(cd "$(dirname "$0")/.." && pwd)
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
step() { printf '%-64s' "$1"; }
pass() { echo PASS; }
fail() { echo "FAIL: $*"; exit 1; }
need() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || fail "$1 missing: apt-get install $2"; }

if [ -z "${PW_CUPS:-}" ]; then
    for b in cupsd:cups-daemon lpadmin:cups-client ippeveprinter:cups-ipp-utils ipptool:cups-ipp-utils dbus-daemon:dbus; do need "${b%%:*}" "${b##*:}"; done
    step "private cupsd + ippeveprinter with the pinwarden policy"
    C=$WORK/cups; mkdir -p "$C"/{root,spool,tmp,cache,state,log,printer}
    # ippeveprinter's Avahi client needs a bus even with -r off; give it a private one rather
    # than trusting the machine's (absent, or a stale socket of a bus that died).
    dbus-daemon --session --nofork --nopidfile --address="unix:path=$C/bus" >"$C/log/dbus" 2>&1 & PIDS+=($!)
    for _ in $(seq 100); do [ -S "$C/bus" ] && break; sleep 0.1; done
    export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$C/bus"
    CPORT=$(free_port); EPORT=$(free_port)
    printf 'ServerRoot %s/root\nRequestRoot %s/spool\nTempDir %s/tmp\nCacheDir %s/cache\nStateDir %s/state\nErrorLog %s/log/error_log\nSystemGroup root\nSandboxing relaxed\n' \
        "$C" "$C" "$C" "$C" "$C" "$C" > "$C/cups-files.conf"
    { printf 'Listen 127.0.0.1:%s\nListen %s/cups.sock\nBrowsing Off\nWebInterface No\nDirtyCleanInterval 0\n<Location />\n  Order allow,deny\n  Allow from 127.0.0.1\n  Allow from @LOCAL\n</Location>\n' "$CPORT" "$C"
      cat "$HERE/config/cups/pinwarden-policy.conf"; } > "$C/cupsd.conf"
    /usr/sbin/ippeveprinter -r off -k -f application/pdf -p "$EPORT" -d "$C/printer" hil-printer >"$C/log/eve" 2>&1 & PIDS+=($!)
    /usr/sbin/cupsd -f -c "$C/cupsd.conf" -s "$C/cups-files.conf" >"$C/log/out" 2>&1 & PIDS+=($!)
    export CUPS_STATEDIR=$C/state
    PW_CUPS=$C/cups.sock; PW_QUEUE=lobby; PW_CERT=$C/state/certs/0
    for _ in $(seq 100); do lpstat -h "$PW_CUPS" -r >/dev/null 2>&1 && break; sleep 0.1; done
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$EPORT") 2>/dev/null && break; sleep 0.1; done
    /usr/sbin/lpadmin -h "$PW_CUPS" -p lobby -E -v "ipp://localhost:$EPORT/ipp/print" -m everywhere \
        -o job-hold-until-default=indefinite -o printer-op-policy=pinwarden
    pass
fi
PORT=$(free_port); RPORT=$(free_port)
cat > "$WORK/pw.toml" <<TOML
state_dir = "$WORK/var"
[cups]
server = "$PW_CUPS"
auth = "local-certificate"
cert_file = "$PW_CERT"
[[device]]
id = "hil-printer"
kind = "printer"
allow_groups = ["staff"]
queue = "$PW_QUEUE"
[[tcp]]
listen = "127.0.0.1:$PORT"
[[tcp.terminal]]
address = "127.0.0.1"
device = "hil-printer"
[[tcp]]
mode = "card"
listen = "127.0.0.1:$RPORT"
[tcp.card]
input = "hex"
output = "decimal"
[[tcp.terminal]]
address = "127.0.0.1"
device = "hil-printer"
TOML
ask() {
    exec 3<>"/dev/tcp/127.0.0.1/$PORT"; printf '%s\r\n' "$1" >&3
    local reply; IFS= read -r -t 30 reply <&3 || true; exec 3>&-; printf '%s' "${reply%$'\r'}"
}
cat > "$WORK/print-job.test" <<'IPP'
{
 NAME "Print-Job"
 OPERATION Print-Job
 GROUP operation-attributes-tag
 ATTR charset attributes-charset utf-8
 ATTR language attributes-natural-language en
 ATTR uri printer-uri $uri
 ATTR name requesting-user-name $owner
 ATTR name job-name $title
 ATTR mimeMediaType document-format application/vnd.cups-raw
 FILE $filename
 STATUS successful-ok
 EXPECT job-id OF-TYPE integer
 DISPLAY job-id
}
IPP
QUEUE_URI="ipp://${PW_CUPS//\//%2F}/printers/$PW_QUEUE"
submit() { printf '%%PDF-1.4\n%%%%EOF\n' > "$WORK/$2.pdf"; ipptool -V 2.0 -d "owner=$1" -d "title=$2" -f "$WORK/$2.pdf" "$QUEUE_URI" "$WORK/print-job.test" | tail -n 1 | tr -d ' '; }
held() { lpstat -h "$PW_CUPS" -l -o "$PW_QUEUE" | grep -c job-hold-until || true; }

step "daemon starts"
"$BIN" run -c "$WORK/pw.toml" >>"$WORK/daemon.log" 2>&1 & PIDS+=($!); PID=$!
for _ in $(seq 100); do "$BIN" -c "$WORK/pw.toml" status >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN" -c "$WORK/pw.toml" status >/dev/null || fail "$(tail -5 "$WORK/daemon.log")"; pass
step "enrol hil-user (card 482115) and other-user"
PIN=$("$BIN" -c "$WORK/pw.toml" user add hil-user --group staff --card 482115 --generate 2>/dev/null)
"$BIN" -c "$WORK/pw.toml" user add other-user --group staff --generate >/dev/null 2>&1; pass
step "two held jobs for hil-user, one for other-user"
J1=$(submit hil-user hil-1); submit hil-user hil-2 >/dev/null; submit other-user other-1 >/dev/null
[ "$(held)" -ge 3 ] && pass || fail "held: $(held)"
step "the owner (account daemon) cannot release from the desk (lp -H resume)"
command -v setpriv >/dev/null || fail "setpriv missing: apt-get install util-linux"
JD=$(submit daemon desk-1); [ -n "$JD" ] || fail "no job id for the desk job"
if out=$(CUPS_STATEDIR=$WORK/none setpriv --reuid=daemon --regid=daemon --clear-groups lp -h "$PW_CUPS" -i "$JD" -H resume </dev/null 2>&1); then
    fail "desk release worked"
fi
# Refused by CUPS's policy, not by anything else (no socket, no such job):
echo "$out" | grep -qiE 'forbidden|not authorized|unauthorized' && pass || fail "the desk attempt failed otherwise: $out"
step "the PIN releases exactly hil-user's jobs"
r=$(ask "PIN $PIN"); [ "$r" = "OK hil-user 2" ] && pass || fail "$r"
step "other-user's and daemon's jobs are still held"; [ "$(held)" -ge 2 ] && pass || fail "held: $(held)"
step "a card read (hex 075B43) logs hil-user in at the reader"
submit hil-user hil-3 >/dev/null
exec 4<>"/dev/tcp/127.0.0.1/$RPORT"; printf 'PROBE\r\n075B43\r\n' >&4
for _ in $(seq 100); do "$BIN" -c "$WORK/pw.toml" audit --last 5 | grep -q 'print device=hil-printer user=hil-user action=released released=1' && break; sleep 0.1; done
"$BIN" -c "$WORK/pw.toml" audit --last 8 | grep -q 'action=released released=1' && pass || fail "no release audited: $("$BIN" -c "$WORK/pw.toml" audit --last 8)"
exec 4>&-
step "a stopped queue keeps jobs held and says why"
cupsdisable -h "$PW_CUPS" "$PW_QUEUE"; submit hil-user hil-4 >/dev/null
r=$(ask "PIN $PIN"); cupsenable -h "$PW_CUPS" "$PW_QUEUE"
[ "$r" = "OK hil-user 0 printer-unavailable" ] && pass || fail "$r"
step "the PIN never appears in the state directory or the log"
! grep -rqa -- "$PIN" "$WORK/var" "$WORK/daemon.log" && pass || fail "PIN bytes found"
step "SIGTERM stops the daemon cleanly"; kill -TERM "$PID"; wait "$PID" && pass || fail "exit $?"
echo "all steps passed"

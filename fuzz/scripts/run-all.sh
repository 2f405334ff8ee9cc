#!/bin/sh
# Runs every fuzz target in turn, one process at a time at the lowest priority, each for
# SECONDS or 10 million executions, whichever comes first; new inputs go into
# fuzz/corpus/<target>/, crashes into fuzz/artifacts/<target>/. Each target's libFuzzer
# log is kept in fuzz/logs/<target>.log; its last line is the summary the README's table
# gives (#runs, exec/s, cov).
#   usage: fuzz/scripts/run-all.sh SECONDS [TARGET...]
set -eu
[ $# -ge 1 ] || { echo "usage: $0 SECONDS [TARGET...]" >&2; exit 2; }
seconds=$1
shift
cd "$(dirname "$0")/.."
targets=${*:-$(cargo +nightly fuzz list)}
mkdir -p logs
nice -n 19 cargo +nightly fuzz build -O --sanitizer none
status=0
for t in $targets; do
    echo "== $t (${seconds}s or 10M runs)"
    if ! nice -n 19 cargo +nightly fuzz run -O --sanitizer none "$t" -- \
        -max_total_time="$seconds" -runs=10000000 -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 >"logs/$t.log" 2>&1; then
        echo "   $t FAILED: see fuzz/logs/$t.log and fuzz/artifacts/$t/" >&2
        status=1
    fi
    grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "logs/$t.log" | tail -n 1
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "logs/$t.log" || true
done
exit $status

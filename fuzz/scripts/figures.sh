#!/bin/sh
# Prints a Markdown table row per target from the logs run-all.sh left in fuzz/logs/:
# executions, average exec/s, final cov, and whether the run ended on a crash.
cd "$(dirname "$0")/.."
for log in logs/*.log; do
    t=$(basename "$log" .log)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
    crash=$(grep -q 'panicked at' "$log" && echo crash || echo none)
    echo "| $t | $runs | $rate | $cov | $crash |"
done

#!/usr/bin/env bash
# Runs benchmarks for several agent launchers alternately (a, b, a, b, ...), so a shared machine's
# noise hits every variant alike. Each run writes bench/results/BENCH-TAG-VARIANT-rROUND.json
# (PVB_RESULT_SUFFIX) and the load average before and after it to bench/results/TAG-runs.txt.
#   bash bench/alternate.sh TAG ROUNDS "bench ..." "variant=launcher ..."
# e.g. bash bench/alternate.sh flags 2 "reaction bring-up" "a=.scratch/launch-a b=.scratch/launch-b"
# A launcher is what PVB_CLI takes: the bundle, or a script from packaging/make-launcher.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
tag=$1 rounds=$2 benches=($3) variants=($4)
runlog=bench/results/$tag-runs.txt # not .log: *.log is git-ignored
mkdir -p bench/results/tmp/alternate
for ((r = 1; r <= rounds; r++)); do
  for bench in "${benches[@]}"; do
    for v in "${variants[@]}"; do
      name=${v%%=*} cli=${v#*=}
      echo "$(date -u +%FT%TZ) round $r $bench $name load $(cut -d' ' -f1-3 /proc/loadavg) podman-clients $(pgrep -c -x podman || true) start" >>"$runlog"
      PVB_CLI=$(realpath "$cli") PVB_RESULT_SUFFIX="-$tag-$name-r$r" node "bench/$bench.mjs" >>"bench/results/tmp/alternate/$tag-$bench-$name-r$r.out" 2>&1 \
        || echo "$(date -u +%FT%TZ) round $r $bench $name FAILED" >>"$runlog"
      echo "$(date -u +%FT%TZ) round $r $bench $name load $(cut -d' ' -f1-3 /proc/loadavg) end" >>"$runlog"
    done
  done
done

#!/usr/bin/env bash
# Runs podvisor's benchmarks and appends a dated section to bench/RESULTS.md.
#   bash bench/run.sh            build, set up the host, run all five, write the report
#   bash bench/run.sh NAME...    only these benchmarks (bring-up reaction idle supervision-restart supervision-probes)
# Env: PVB_NO_BUILD=1 skips the build; PVB_QUIET=1 drops the "provisional" note (quiet machine).
# Each benchmark uses its own node name (pvb-*) and removes its pods at the end. About 10 minutes
# (+ build): bring-up, reaction, idle ~5.5; supervision-restart ~1; supervision-probes ~3.5.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${PVB_NO_BUILD:-0}" != 1 ]; then
  npm run --silent build || { echo "run.sh: build failed; not benchmarking a stale dist/" >&2; exit 1; }
fi
bash scripts/setup-host.sh || exit 1

# Benchmark a copy of this build: other sessions may rebuild dist/ while the benchmarks run.
snapshot=bench/results/tmp/build
rm -rf "$snapshot" && mkdir -p "$snapshot" && cp -r dist package.json "$snapshot/" || exit 1
export PVB_CLI="$PWD/$snapshot/dist/podvisor.mjs"
export PVB_COMMIT="$(git rev-parse --short HEAD)$(git status --porcelain -- src | grep -q . && echo '+uncommitted src changes')"

mkdir -p bench/results
benches=("$@")
[ "${#benches[@]}" -gt 0 ] || benches=(bring-up reaction idle supervision-restart supervision-probes)
for bench in "${benches[@]}"; do rm -f "bench/results/$bench.json"; done
status=0
started=$(date +%s)
for bench in "${benches[@]}"; do
  echo "run.sh: $bench" >&2
  node "bench/$bench.mjs" || { echo "run.sh: $bench failed" >&2; status=1; }
done
node bench/report.mjs "${benches[@]}" || status=1
echo "run.sh: done in $(( $(date +%s) - started )) s; see bench/RESULTS.md" >&2
exit $status

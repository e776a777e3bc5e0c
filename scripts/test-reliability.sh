#!/usr/bin/env bash
# The full reliability runs of issue 11 (test/reliability/): `npm test` runs a short share of
# each; this runs them at length. Set-up as for `npm test`, then 50 SIGKILL rounds, 10 rounds
# of truncated state files, 10 minutes of podman faults, 10 minutes of bad publishing endpoints,
# 60 s of API load, 200 manifests in bursts and 200 rewrites of a manifest being read, unless the
# environment asks for others. A run prints its seed;
# PODVISOR_RELIABILITY_SEED=<seed> replays it. Extra arguments go to tap.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
export PODVISOR_SIGKILL_ROUNDS="${PODVISOR_SIGKILL_ROUNDS:-50}"
export PODVISOR_TRUNCATE_ROUNDS="${PODVISOR_TRUNCATE_ROUNDS:-10}"
export PODVISOR_FAULT_MINUTES="${PODVISOR_FAULT_MINUTES:-10}"
export PODVISOR_API_LOAD_SECONDS="${PODVISOR_API_LOAD_SECONDS:-60}"
export PODVISOR_MANY_PODS="${PODVISOR_MANY_PODS:-200}"
export PODVISOR_PUBLISHER_MINUTES="${PODVISOR_PUBLISHER_MINUTES:-10}"
export PODVISOR_DIRECTORY_REWRITES="${PODVISOR_DIRECTORY_REWRITES:-200}"
export PODVISOR_DIRECTORY_ROUNDS="${PODVISOR_DIRECTORY_ROUNDS:-20}"
echo "test:reliability: ${PODVISOR_SIGKILL_ROUNDS} SIGKILL rounds, ${PODVISOR_TRUNCATE_ROUNDS} truncation rounds" >&2
# One file at a time: each run is a load on podman of its own, and its figures should be its own.
exec npx tap --jobs 1 --timeout 7200 "${@:-test/reliability}"

#!/usr/bin/env bash
# Runs the agent in the foreground on this repository's example manifests (manifests.d/), after
# the same set-up the tests use. Extra arguments are passed to `podvisor run`, e.g.
# `npm start -- --log-level debug`. Stop it with Ctrl-C: its pods keep running.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
# Through its shebang, so the node flags the installed command runs with apply here too.
exec dist/podvisor.mjs run --manifest-dir manifests.d --state-dir "${PODVISOR_STATE_DIR:-/var/lib/podvisor}" "$@"

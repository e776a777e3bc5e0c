#!/usr/bin/env bash
# Runs the agent in the foreground on this repository's example manifests (manifests.d/), after
# the same set-up the tests use. Extra arguments are passed to `podvisor run`, e.g.
# `npm start -- --log-level debug`. Stop it with Ctrl-C: its pods keep running.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
# The agent refuses manifests that are not root's alone (policy.check-ownership). Under `sudo npm
# start` in another user's clone, or one checked out with umask 002, the examples are not: for
# this development command only, ownership goes unchecked, and it says so. A flag given wins.
ownership=()
if [ -n "$(find manifests.d -maxdepth 1 \( ! -user root -o -perm /022 \) -print -quit)" ]; then
  echo "npm start: manifests.d/ is not root's alone (another user's checkout, or umask 002): running with --policy-check-ownership false; on a device keep the manifest directory root's (chown root, chmod go-w)" >&2
  ownership=(--policy-check-ownership false)
fi
# Through its shebang, so the node flags the installed command runs with apply here too.
exec dist/podvisor.mjs run --manifest-dir manifests.d --state-dir "${PODVISOR_STATE_DIR:-/var/lib/podvisor}" "${ownership[@]}" "$@"

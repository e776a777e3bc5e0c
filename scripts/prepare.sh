#!/usr/bin/env bash
# Shared set-up for `npm start` and `npm test`: dependencies, build, podman and the local image.
# Idempotent and quick when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

# Dependencies: install when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "prepare: installing dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "prepare: building (tsc, then the single-file bundle dist/podvisor.mjs)" >&2
npm run --silent build

bash scripts/setup-host.sh

#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up (dependencies, build, podman, local image),
# a type-check of sources and tests, then every test with tap. Extra arguments go to tap
# (e.g. `npm test -- test/manifest`).
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests' manifest directories and files are made with the umask, and the agent refuses any
# that are writable by group or others (policy.check-ownership): under a umask of 002 every test
# pod would be refused. Root's usual umask, whatever the caller's.
umask 022
bash scripts/prepare.sh
# The etcd image of test/e2e/etcd.test.ts (kubeadm's etcd static pod), from Debian's packages;
# cached. A failure here is not the end of the run: that test fails with the reason, the others run.
bash scripts/build-etcd-image.sh >/dev/null || echo "test: the etcd image could not be built; test/e2e/etcd.test.ts will fail" >&2
# Real clients to check against: kubectl and promtool (unpacked into .cache/tools when missing).
PATH="$(bash scripts/test-tools.sh):$PATH"
export PATH
echo "test: type-checking sources and tests" >&2
npx tsc -p tsconfig.test.json
if [ "$#" -gt 0 ]; then
  exec npx tap "$@"
fi
exec npx tap

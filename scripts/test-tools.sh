#!/usr/bin/env bash
# The clients the tests check podvisor against, real ones: kubectl (the machine's own if it has
# one, else Debian's kubernetes-client) and promtool (Debian's prometheus package, for
# `promtool check metrics`). Debian packages are unpacked into .cache/tools, never installed, so
# nothing on the machine changes. Prints the directory to put first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$PWD/.cache/tools"
mkdir -p "$tools/bin"

unpack() { # package, path inside it, name in .cache/tools/bin
  local package="$1" inside="$2" name="$3" work
  [ -x "$tools/bin/$name" ] && return 0
  work="$(mktemp -d)"
  (cd "$work" && apt-get download -qq "$package" >/dev/null 2>&1) || {
    apt-get update -qq >/dev/null 2>&1 || true
    (cd "$work" && apt-get download -qq "$package" >/dev/null)
  }
  dpkg-deb -x "$work"/*.deb "$work/root"
  cp "$work/root/$inside" "$tools/bin/$name"
  rm -rf "$work"
  echo "test-tools: $name from Debian's $package" >&2
}

if ! command -v kubectl >/dev/null 2>&1 || ! kubectl version --client >/dev/null 2>&1; then
  unpack kubernetes-client usr/bin/kubectl kubectl
fi
if ! command -v promtool >/dev/null 2>&1; then
  unpack prometheus usr/bin/promtool promtool
fi
echo "$tools/bin"

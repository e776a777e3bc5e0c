#!/usr/bin/env bash
# Installs podvisor on this machine from this checkout (first version: a later release adds
# packages for download). Run as root.
#   ./install.sh               install to /opt/podvisor, link /usr/local/bin/podvisor, add the
#                              systemd unit and enable it when systemd runs, create /etc/pods.d
#   ./install.sh --no-start    install but do not enable or start the service
# Needs Node.js >= 20.19 and npm; installs podman from Debian's packages if missing.
set -euo pipefail
cd "$(dirname "$0")"

prefix=/opt/podvisor
start=1
for arg in "$@"; do
  case "$arg" in
    --no-start) start=0 ;;
    --prefix=*) prefix=${arg#--prefix=} ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

fail() { echo "install.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root"
command -v node >/dev/null || fail "Node.js >= 20.19 is required"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
  fail "Node.js >= 20.19 is required (found $(node --version))"

bash scripts/prepare.sh
mkdir -p "$prefix"
rm -rf "$prefix/dist"
cp -r dist package.json package-lock.json "$prefix/"
(cd "$prefix" && npm ci --omit=dev --no-audit --no-fund --loglevel=error --ignore-scripts)
chmod +x "$prefix/dist/podvisor.mjs"
ln -sf "$prefix/dist/podvisor.mjs" /usr/local/bin/podvisor
mkdir -p /etc/pods.d /var/lib/podvisor /etc/podvisor
# The operator's settings are theirs: an existing config file is never overwritten.
[ -e /etc/podvisor/config.yaml ] || cp packaging/config.yaml /etc/podvisor/config.yaml
mkdir -p /etc/systemd/system
cp packaging/podvisor.service /etc/systemd/system/podvisor.service
echo "install.sh: installed podvisor $(podvisor version | cut -d' ' -f2) to $prefix"

if [ "$start" = 1 ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now podvisor.service
  echo "install.sh: podvisor.service enabled and started; drop Pod manifests into /etc/pods.d"
else
  echo "install.sh: systemd is not running here (or --no-start): start it with"
  echo "  podvisor run --config /etc/podvisor/config.yaml"
fi

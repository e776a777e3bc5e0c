#!/usr/bin/env bash
# Builds a Debian package of podvisor (architecture-independent: it needs Node.js >= 20.19 and
# podman from the distribution). Output: packaging/out/podvisor_<version>_all.deb
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(node -p 'require("./package.json").version')
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

npm ci --no-audit --no-fund --loglevel=error
# A clean build: files of modules since removed must not ship.
rm -rf dist
npm run --silent build
app="$root/usr/lib/podvisor"
mkdir -p "$app" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/pods.d" "$root/etc/podvisor" "$root/DEBIAN" "$root/usr/share/doc/podvisor/examples"
cp -r dist package.json package-lock.json "$app/"
(cd "$app" && npm ci --omit=dev --no-audit --no-fund --loglevel=error --ignore-scripts)
rm -f "$app/package-lock.json"
chmod 0755 "$app/dist/podvisor.mjs"
ln -s ../lib/podvisor/dist/podvisor.mjs "$root/usr/bin/podvisor"
sed 's#/usr/local/bin/podvisor#/usr/bin/podvisor#' packaging/podvisor.service >"$root/lib/systemd/system/podvisor.service"
cp manifests.d/*.yaml "$root/usr/share/doc/podvisor/examples/"
cp packaging/config.yaml "$root/etc/podvisor/config.yaml"
# The operator's edits to the config file survive upgrades (dpkg asks before replacing it).
echo /etc/podvisor/config.yaml >"$root/DEBIAN/conffiles"
cp README.md "$root/usr/share/doc/podvisor/"
cat >"$root/DEBIAN/control" <<CONTROL
Package: podvisor
Version: $version
Architecture: all
Maintainer: podvisor developers <podvisor@localhost>
Depends: nodejs (>= 20.19), podman (>= 4.3), iptables, busybox-static | busybox
Section: admin
Priority: optional
Description: Kubernetes static pods on podman
 podvisor watches /etc/pods.d for Kubernetes Pod manifests and runs them as
 podman pods, supervised as the kubelet supervises static pods.
CONTROL
cat >"$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
  systemctl enable podvisor.service >/dev/null 2>&1 || true
fi
POSTINST
chmod 0755 "$root/DEBIAN/postinst"
mkdir -p packaging/out
dpkg-deb --root-owner-group --build "$root" "packaging/out/podvisor_${version}_all.deb"

#!/usr/bin/env bash
# Builds the local etcd image that runs kubeadm's etcd static pod here (examples/control-plane and
# test/e2e/etcd.test.ts): no container registry is reachable, so etcd comes from Debian 12's own
# packages, as localhost/busybox:podvisor comes from busybox-static (scripts/setup-host.sh).
#
# The root holds only what the pod runs: etcd and etcdctl (etcd-server, etcd-client), the C
# library and dynamic loader they are linked against (libc6), an empty /tmp and the data
# directory. No shell: the probes are httpGet, which podvisor itself makes. The .debs are kept in
# .cache/etcd-image, so a rebuild (after `podman rmi`) downloads nothing.
#
# Idempotent: does nothing when the image exists. PODVISOR_ETCD_IMAGE names another tag. Prints
# the image's name on success; exits non-zero with the reason otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${PODVISOR_ETCD_IMAGE:-localhost/etcd:3.4-podvisor}"
PACKAGES=(etcd-server etcd-client libc6)
log() { printf 'build-etcd-image: %s\n' "$*" >&2; }

if podman image exists "$IMAGE"; then
  echo "$IMAGE"
  exit 0
fi

cache="$PWD/.cache/etcd-image"
mkdir -p "$cache"
# apt-get download fetches the candidate version: a stale or missing package list is refreshed once.
download() {
  (cd "$cache" && apt-get download -qq "$@" >/dev/null 2>&1) && return 0
  log "refreshing the package lists (apt-get update)"
  apt-get update -qq >/dev/null 2>&1 || true
  (cd "$cache" && apt-get download -qq "$@" >/dev/null)
}
missing=()
for package in "${PACKAGES[@]}"; do
  compgen -G "$cache/${package}_*.deb" >/dev/null || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "downloading ${missing[*]} from Debian's mirror"
  download "${missing[@]}" || { log "apt-get download ${missing[*]} failed: is a Debian mirror reachable?"; exit 1; }
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unpacked="$work/unpacked"
root="$work/root"
for package in "${PACKAGES[@]}"; do
  # The newest cached version, should several have been downloaded over time.
  deb=$(ls -1 "$cache/${package}"_*.deb | sort -V | tail -n 1)
  dpkg-deb -x "$deb" "$unpacked"
done

mkdir -p "$root/usr/bin" "$root/tmp" "$root/var/lib/etcd" "$root/etc" "$root/proc" "$root/sys" "$root/dev"
chmod 1777 "$root/tmp"
# etcd keeps its data private (it checks the directory is 0700 and warns otherwise).
chmod 700 "$root/var/lib/etcd"
cp "$unpacked/usr/bin/etcd" "$unpacked/usr/bin/etcdctl" "$root/usr/bin/"
ln -s usr/bin "$root/bin"
# The C library and the loader, under the multiarch directory, and the loader's fixed path
# (/lib64/ld-linux-x86-64.so.2 on amd64, /lib/ld-linux-aarch64.so.1 on arm64), which is what
# the binaries name as their interpreter.
for lib in "$unpacked"/lib/*-linux-gnu*/libc.so.6 "$unpacked"/lib/*-linux-gnu*/ld-linux*.so.*; do
  relative=${lib#"$unpacked"/}
  mkdir -p "$root/$(dirname "$relative")"
  cp "$lib" "$root/$relative"
done
for link in "$unpacked"/lib64/ld-linux*.so.* "$unpacked"/lib/ld-linux*.so.*; do
  [ -L "$link" ] || continue
  relative=${link#"$unpacked"/}
  mkdir -p "$root/$(dirname "$relative")"
  cp -P "$link" "$root/$relative"
done
printf 'root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$root/etc/group"

version=$(dpkg-deb -f "$(ls -1 "$cache"/etcd-server_*.deb | sort -V | tail -n 1)" Version)
log "building $IMAGE from Debian's etcd-server $version"
tar -C "$root" -cf "$work/root.tar" .
podman import --quiet \
  --change 'ENV=PATH=/usr/bin' \
  --change 'CMD=["etcd"]' \
  --change "LABEL=io.podvisor.etcd-package-version=$version" \
  "$work/root.tar" "$IMAGE" >/dev/null

# Proof that etcd runs in it, so a broken image is named now and not by a test later.
if ! out=$(podman run --rm --network none "$IMAGE" etcd --version 2>&1); then
  podman rmi "$IMAGE" >/dev/null 2>&1 || true
  log "etcd does not run in the new image: $out"
  exit 1
fi
log "ready: $IMAGE ($(printf '%s' "$out" | head -n 1))"
echo "$IMAGE"

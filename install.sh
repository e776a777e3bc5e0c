#!/usr/bin/env bash
# Installs, upgrades or removes podvisor on this machine, offline, from the directory this script
# is in: an unpacked release tarball (podvisor-VERSION-linux-ARCH/, which brings its own Node.js)
# or a checkout of the repository after `npm run build` (run with this machine's Node.js).
# It writes podvisor's own files and nothing else: no packages, no podman or cgroup settings, no
# images. An upgrade is one rename of /opt/podvisor/current, done only once the new release is
# complete on disk, so a failure part way leaves the previous installation as it was.
# Started as `sh install.sh`: bash from here on.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
# Modes are set on every file written; this is for the parent directories mkdir -p makes.
umask 022

usage() {
  cat <<'USAGE'
Usage: install.sh [--no-start] [--root DIR]
       install.sh --uninstall | --purge [--root DIR]

Installs podvisor from the directory this script is in: an unpacked release tarball
(podvisor-VERSION-linux-ARCH/, with its own Node.js) or a checkout of the repository after
`npm run build` (runs on this machine's Node.js, >= 20.19). Needs no network. Run as root.

  /opt/podvisor/releases/VERSION/        the bundle, its Node.js runtime and its launcher
  /opt/podvisor/current                  -> releases/VERSION, switched in one rename; the
                                         previous release is kept for a roll back, older go
  /usr/local/bin/podvisor                -> /opt/podvisor/current/podvisor
  /etc/systemd/system/podvisor.service
  /etc/podvisor/config.yaml              only when absent: the operator's settings stay
  /etc/pods.d, /var/lib/podvisor         manifests and state (created when missing)
  /usr/local/share/man/man1/podvisor.1   when the release has a man page

Under systemd, a first install enables and starts podvisor.service; an upgrade restarts it when
it runs (the agent adopts the pods it finds: they keep running). Installing the same release
again changes nothing.

Podman >= 4.3 is needed to run pods, not to install podvisor: when it is missing or older,
install.sh says so and installs anyway. Nothing breaks meanwhile (the agent reports the missing
podman and systemd restarts it until podman is there), and a device image can then be prepared
in either order; install.sh itself never installs packages.

Options:
  --no-start    do not enable, start or restart the service
  --uninstall   stop and disable the service; remove the unit, the launcher, the man page and
                /opt/podvisor; keep /etc/podvisor, /etc/pods.d and /var/lib/podvisor. The pods
                podvisor ran keep running (it prints how to remove them).
  --purge       as --uninstall, and remove /etc/podvisor and /var/lib/podvisor, and /etc/pods.d
                if it is empty (manifests are the operator's files: kept). Refused while pods
                that podvisor ran exist: their emptyDir volumes live in /var/lib/podvisor.
  --root DIR    install into (or remove from) DIR instead of /, as `dpkg --root`: the files
                name their paths as seen from DIR, and systemctl is never called
  -h, --help    print this help

Exit status: 0 done or nothing to do, 1 failed (the previous installation is left as it was),
2 wrong usage.
USAGE
}

say() { printf 'install.sh: %s\n' "$*"; }
warn() { printf 'install.sh: %s\n' "$*" >&2; }
fail() { warn "$@"; exit 1; }
usage_error() { warn "$* (see install.sh --help)"; exit 2; }

# Where things go, as seen from the installed system (--root DIR prefixes them with DIR).
OPT=/opt/podvisor
RELEASES=$OPT/releases
CURRENT=$OPT/current
LAUNCHER=/usr/local/bin/podvisor
UNIT=/etc/systemd/system/podvisor.service
UNIT_WANTS=/etc/systemd/system/multi-user.target.wants/podvisor.service
CONFIG_DIR=/etc/podvisor
MANIFEST_DIR=/etc/pods.d
STATE_DIR=/var/lib/podvisor
MAN_PAGE=/usr/local/share/man/man1/podvisor.1
# The label on every pod podvisor creates (src/runtime/labels.ts, LABEL.MANAGED).
POD_FILTER=label=io.podvisor.managed=true

action=install start=1 root='' root_given=0
while [ "$#" -gt 0 ]; do
  case $1 in
    --no-start) start=0 ;;
    --uninstall) [ "$action" = purge ] || action=uninstall ;;
    --purge) action=purge ;;
    --root)
      [ "$#" -ge 2 ] || usage_error "--root needs a directory"
      root=$2 root_given=1
      shift ;;
    --root=*) root=${1#--root=} root_given=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done

if [ "$root_given" = 1 ]; then
  [ -n "$root" ] || usage_error "--root needs a directory"
  [ -d "$root" ] || fail "--root $root: no such directory"
  root=$(cd "$root" && pwd -P)
  [ "$root" != / ] || root=
elif [ "$EUID" != 0 ]; then
  fail "must run as root: it writes /opt, /usr/local, /etc and /var/lib and runs systemctl (use sudo, or --root DIR to install into a directory)"
fi
R=$root

# systemctl is called only on the machine itself, and only when systemd is what runs it.
systemd=0
if [ "$root_given" = 0 ] && [ -d /run/systemd/system ]; then systemd=1; fi

shopt -s nullglob
# Temporary paths of this run, removed however it ends; the renames that publish them come last.
temporaries=()
cleanup() {
  local status=$? path
  for path in "${temporaries[@]}"; do rm -rf -- "$path"; done
  if [ "$status" != 0 ] && [ "${writing:-0}" = 1 ] && [ "${switched:-0}" = 0 ]; then
    warn "failed: nothing was switched, the previous installation (if any) is as it was"
  fi
  return "$status"
}
trap cleanup EXIT

# Holds $OPT/.lock for the rest of the run, so that two runs never interleave.
lock() {
  exec 9>>"$R$OPT/.lock"
  flock -n 9 || fail "another install.sh is running (it holds $R$OPT/.lock)"
}

# The version of Node.js RUNTIME (vMAJOR.MINOR.PATCH), or a failure when it does not run here.
node_version() { "$1" --version 2>/dev/null; }

# Whether VERSION (vMAJOR.MINOR.PATCH) is at least 20.19, the oldest Node.js podvisor supports.
node_supported() {
  [[ $1 =~ ^v([0-9]+)\.([0-9]+)\. ]] || return 1
  local major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
  ((major > 20 || (major == 20 && minor >= 19)))
}

# Says so when this machine's podman is missing or older than 4.3; installing goes on (--help).
check_podman() {
  local found major minor
  if ! found=$(podman --version 2>/dev/null); then
    warn "note: podman is not installed on this machine; podvisor needs podman >= 4.3 to run pods (Debian, Ubuntu: apt-get install podman). Installing anyway."
  elif [[ $found =~ ([0-9]+)\.([0-9]+) ]]; then
    major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
    if ((major < 4 || (major == 4 && minor < 3))); then
      warn "note: $found is older than 4.3, which podvisor needs (apt-get install podman from a newer release). Installing anyway."
    fi
  fi
}

# Finds what to install next to this script: sets kind, version, bundle, node_src (the runtime
# to copy, release only), runtime (the runtime as installed), launcher_tool, unit_src,
# config_src, man_src.
find_source() {
  local here missing=() file found
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
  script=$here/$(basename "${BASH_SOURCE[0]}")
  if [ -f "$here/VERSION" ] && [ -f "$here/podvisor.mjs" ]; then
    kind=release
    for file in node make-launcher.sh podvisor.service config.yaml; do
      [ -f "$here/$file" ] || missing+=("$file")
    done
    [ "${#missing[@]}" = 0 ] || fail "$here is not a complete release: ${missing[*]} missing (unpack the tarball again)"
    version=$(tr -d ' \t\r\n' <"$here/VERSION")
    bundle=$here/podvisor.mjs node_src=$here/node launcher_tool=$here/make-launcher.sh
    unit_src=$here/podvisor.service config_src=$here/config.yaml man_src=$here/podvisor.1
    found=$(node_version "$node_src") ||
      fail "$node_src does not run on this machine ($(uname -m)): is this the tarball of another architecture?"
    node_supported "$found" || fail "$node_src is Node.js $found; podvisor needs >= 20.19"
    runtime=$RELEASES/$version/node
  elif [ -f "$here/package.json" ] && [ -f "$here/packaging/make-launcher.sh" ]; then
    kind=checkout
    bundle=$here/dist/podvisor.mjs node_src='' launcher_tool=$here/packaging/make-launcher.sh
    unit_src=$here/packaging/podvisor.service config_src=$here/packaging/config.yaml
    man_src=$here/dist/podvisor.1
    [ -f "$man_src" ] || man_src=$here/packaging/podvisor.1
    [ -f "$bundle" ] ||
      fail "$bundle is missing: run 'npm run build' in $here first (install.sh does not build; on a device, install from the release tarball or the .deb)"
    runtime=$(command -v node) ||
      fail "a checkout runs on this machine's Node.js >= 20.19 and there is no 'node' here: install from the release tarball podvisor-VERSION-linux-ARCH.tar.gz (it brings its own Node.js) or the .deb"
    case $runtime in /*) ;; *) runtime=$PWD/$runtime ;; esac
    found=$(node_version "$runtime") || fail "$runtime does not run"
    node_supported "$found" ||
      fail "this machine's Node.js is $found, podvisor needs >= 20.19: install from the release tarball podvisor-VERSION-linux-ARCH.tar.gz (it brings its own Node.js) or the .deb"
    version=$("$runtime" -p 'require(process.argv[1]).version' "$here/package.json")
  else
    fail "$here is neither an unpacked release (VERSION, podvisor.mjs) nor a checkout of podvisor (package.json, packaging/)"
  fi
  if ! [[ $version =~ ^[0-9A-Za-z][0-9A-Za-z.+~_-]*$ ]] || [ "$version" = undefined ]; then
    fail "'$version' is not a version"
  fi
  [ -f "$man_src" ] || man_src=
  unit_command=$(sed -n 's/^ExecStart=[-@:+!]*\([^ ]*\).*/\1/p' "$unit_src" | head -n 1)
  [ "${unit_command##*/}" = podvisor ] || fail "$unit_src: ExecStart runs '$unit_command', not podvisor"
}

# The files of releases/VERSION, as "PATH MODE" lines; what each holds is release_file's.
release_files() {
  printf '%s\n' 'VERSION 644' 'podvisor 755' 'install.sh 755' 'lib/podvisor.mjs 755'
  if [ -f "$bundle.map" ]; then printf '%s\n' 'lib/podvisor.mjs.map 644'; fi
  if [ "$kind" = release ]; then printf '%s\n' 'node 755'; fi
}

# Writes the content of release file NAME to stdout.
release_file() {
  case $1 in
    VERSION) printf '%s\n' "$version" ;;
    # The launcher runs its own release's runtime and bundle: one rename of `current` swaps the
    # launcher, its flags, the runtime and the bundle together, and a command started during
    # an upgrade never mixes two releases.
    podvisor) sh "$launcher_tool" "$runtime" "$bundle" "$RELEASES/$version/lib/podvisor.mjs" ;;
    install.sh) cat "$script" ;;
    lib/podvisor.mjs) cat "$bundle" ;;
    lib/podvisor.mjs.map) cat "$bundle.map" ;;
    node) cat "$node_src" ;;
  esac
}

# Whether DIR holds exactly this release: the same files, contents and modes.
release_matches() {
  local dir=$1 name mode
  [ -d "$dir" ] || return 1
  [ "$(cd "$dir" && find . -mindepth 1 \( -type f -o -type l \) | sed 's#^\./##' | sort)" = "$(release_files | cut -d' ' -f1 | sort)" ] || return 1
  while read -r name mode; do
    if [ -L "$dir/$name" ] || [ "$(stat -c %a "$dir/$name")" != "$mode" ]; then return 1; fi
    cmp -s <(release_file "$name") "$dir/$name" || return 1
  done < <(release_files)
}

# Puts the complete release in releases/VERSION: written under a temporary name, flushed to
# disk, then renamed into place. A release of the same version with other files is replaced.
put_release() {
  local target=$R$RELEASES/$version stage name mode old
  if release_matches "$target"; then return 0; fi
  # Checked first: a launcher that cannot be made must fail before anything is written.
  release_file podvisor >/dev/null
  stage=$(mktemp -d "$R$RELEASES/.staging-$version.XXXXXX")
  temporaries+=("$stage")
  mkdir "$stage/lib"
  while read -r name mode; do
    release_file "$name" >"$stage/$name"
    chmod "$mode" "$stage/$name"
  done < <(release_files)
  chmod 755 "$stage" "$stage/lib"
  # The rename below must not reach the disk before the files do (a device may lose power).
  sync -- "$stage" "$stage/lib" "$stage"/* "$stage"/lib/*
  if [ -e "$target" ] || [ -L "$target" ]; then
    say "replacing release $version (same version, other files)"
    old=$R$RELEASES/.replaced-$version.$$
    temporaries+=("$old")
    mv -T "$target" "$old"
    mv -T "$stage" "$target" || { mv -T "$old" "$target"; fail "could not put release $version in place"; }
  else
    mv -T "$stage" "$target"
  fi
  sync -- "$R$RELEASES"
  changed=1
  say "added $RELEASES/$version"
}

# Creates directory DIR (with MODE, owned by root when run as root) unless it exists.
put_dir() {
  local dir=$R$1 mode=$2
  [ ! -d "$dir" ] || return 0
  mkdir -p -- "$dir"
  chmod "$mode" "$dir"
  if [ "$EUID" = 0 ]; then chown 0:0 "$dir"; fi
  changed=1
}

# Puts the output of COMMAND... at DEST with MODE in one rename, unless DEST already holds it.
put_content() {
  local dest=$R$1 mode=$2 tmp
  shift 2
  if [ -f "$dest" ] && [ ! -L "$dest" ] && [ "$(stat -c %a "$dest")" = "$mode" ] && cmp -s <("$@") "$dest"; then
    return 0
  fi
  tmp=$(dirname "$dest")/.$(basename "$dest").install-$$
  temporaries+=("$tmp")
  "$@" >"$tmp"
  chmod "$mode" "$tmp"
  mv -fT "$tmp" "$dest"
  changed=1
  say "installed ${dest#"$R"}"
}

# Points symlink LINK at TARGET in one rename, unless it already does.
put_link() {
  local target=$1 link=$R$2 tmp
  [ "$(readlink "$link" 2>/dev/null)" != "$target" ] || return 0
  tmp=$(dirname "$link")/.$(basename "$link").install-$$
  temporaries+=("$tmp")
  rm -f "$tmp"
  ln -s "$target" "$tmp"
  mv -fT "$tmp" "$link"
  changed=1
}

# The unit file with its ExecStart command, whatever path the unit names (unit_command), as
# LAUNCHER.
unit_text() {
  local line
  while IFS= read -r line || [ -n "$line" ]; do
    printf '%s\n' "${line//"$unit_command"/"$LAUNCHER"}"
  done <"$unit_src"
}

# The release `current` points at (its version), or nothing.
current_version() {
  local target
  target=$(readlink "$R$CURRENT" 2>/dev/null) || return 0
  printf '%s\n' "${target##*/}"
}

install() {
  local previous first_install=0 name
  find_source
  check_podman
  say "installing podvisor $version from this $kind ($(dirname "$script"))${R:+ into $R}"
  changed=0 switched=0 writing=1
  [ -e "$R$UNIT" ] || first_install=1

  put_dir "$OPT" 755
  lock
  put_dir "$RELEASES" 755
  # Left by a run that was cut short (a power loss): never published, never in use.
  for name in "$R$RELEASES"/.staging-* "$R$RELEASES"/.replaced-* "$R$OPT"/.current.new; do
    rm -rf -- "$name"
  done
  put_dir /usr/local/bin 755
  put_dir /etc/systemd/system 755
  put_dir "$CONFIG_DIR" 755
  put_dir "$MANIFEST_DIR" 755
  put_dir "$STATE_DIR" 755

  put_release

  put_content "$UNIT" 644 unit_text
  if [ -n "$man_src" ]; then
    put_dir "${MAN_PAGE%/*}" 755
    put_content "$MAN_PAGE" 644 cat "$man_src"
  fi
  if [ -e "$R$CONFIG_DIR/config.yaml" ] || [ -L "$R$CONFIG_DIR/config.yaml" ]; then
    say "kept $CONFIG_DIR/config.yaml (the operator's settings)"
  else
    put_content "$CONFIG_DIR/config.yaml" 644 cat "$config_src"
  fi
  put_link "$CURRENT/podvisor" "$LAUNCHER"

  # The switch: one rename, after everything the new release needs is in place.
  previous=$(current_version)
  if [ "$previous" != "$version" ]; then
    put_link "releases/$version" "$CURRENT"
    sync -- "$R$OPT"
    say "switched $CURRENT to releases/$version${previous:+ (was $previous)}"
  fi
  switched=1

  # Keep the release switched from, for a roll back, and delete older ones. Without a switch,
  # the release kept for a roll back is the one already kept.
  if [ "$previous" != "$version" ]; then
    for name in "$R$RELEASES"/*; do
      case ${name##*/} in "$version" | "$previous") continue ;; esac
      rm -rf -- "$name"
      changed=1
      say "deleted the older release ${name##*/}"
    done
  fi
  # The first install.sh copied the checkout's dist/ and node_modules/ straight into $OPT.
  for name in dist node_modules package.json package-lock.json; do
    if [ -e "$R$OPT/$name" ]; then rm -rf -- "$R$OPT/${name:?}"; changed=1; fi
  done

  if [ "$changed" = 0 ]; then
    say "podvisor $version is already installed: nothing changed"
    return 0
  fi
  say "installed podvisor $version: $LAUNCHER -> $CURRENT/podvisor${previous:+; the previous release, $previous, stays in $RELEASES for a roll back}"

  if [ "$root_given" = 1 ]; then
    say "--root: systemctl not called"
  elif [ "$systemd" = 0 ]; then
    say "systemd is not running here: start the agent with '$LAUNCHER run --config $CONFIG_DIR/config.yaml'"
  elif [ "$start" = 0 ]; then
    systemctl daemon-reload
    say "--no-start: the service is not started; start it with 'systemctl enable --now podvisor' (or 'systemctl restart podvisor' to run $version)"
  elif [ "$first_install" = 1 ]; then
    systemctl daemon-reload
    systemctl enable --now podvisor.service
    say "podvisor.service is enabled and started; drop Pod manifests into $MANIFEST_DIR"
  else
    systemctl daemon-reload
    # Restarts the agent only when it runs; it adopts its pods, which keep running.
    systemctl try-restart podvisor.service
    say "podvisor.service restarted if it was running; its pods kept running"
  fi
}

# Counts the entries of directory DIR.
count_entries() {
  local entries=("$1"/* "$1"/.[!.]* "$1"/..?*)
  printf '%s\n' "${#entries[@]}"
}

uninstall() {
  local installed=0 pods target kept
  if [ -e "$R$OPT" ] || [ -e "$R$UNIT" ] || [ -L "$R$LAUNCHER" ]; then installed=1; fi
  # Purging while podvisor's pods exist would delete their emptyDir volumes under them.
  if [ "$action" = purge ] && [ "$root_given" = 0 ] && command -v podman >/dev/null; then
    if pods=$(podman pod ls -q --filter "$POD_FILTER" 2>/dev/null); then
      [ -z "$pods" ] || fail "--purge refused: $(wc -l <<<"$pods") pod(s) that podvisor ran still exist, and their emptyDir volumes are in $STATE_DIR. Remove them first: podman pod ls -q --filter $POD_FILTER | xargs -r podman pod rm -f (or use --uninstall, which keeps $STATE_DIR)"
    else
      warn "note: could not list podman's pods; if pods that podvisor ran remain, their emptyDir volumes in $STATE_DIR are gone"
    fi
  fi
  if [ -e "$R$OPT" ]; then lock; fi

  if [ "$installed" = 1 ]; then
    if [ "$systemd" = 1 ] && [ -e "$UNIT" ]; then
      systemctl disable --now podvisor.service || warn "note: systemctl could not stop or disable podvisor.service"
    fi
    rm -f -- "$R$UNIT"
    if [ -L "$R$UNIT_WANTS" ]; then rm -f -- "$R$UNIT_WANTS"; fi
    target=$(readlink "$R$LAUNCHER" 2>/dev/null || true)
    case $target in
      "$OPT"/*) rm -f -- "$R$LAUNCHER" ;;
      *) if [ -e "$R$LAUNCHER" ]; then warn "note: kept $LAUNCHER: it is not podvisor's launcher"; fi ;;
    esac
    rm -f -- "$R$MAN_PAGE"
    rm -rf -- "$R$OPT"
    if [ "$systemd" = 1 ]; then systemctl daemon-reload; fi
    say "removed podvisor: the service, $LAUNCHER and $OPT"
    say "the pods podvisor ran keep running. List them:  podman pod ls --filter $POD_FILTER"
    say "remove them all:  podman pod ls -q --filter $POD_FILTER | xargs -r podman pod rm -f"
  else
    say "podvisor is not installed${R:+ in $R}: nothing to remove"
  fi

  if [ "$action" = uninstall ]; then
    say "kept $CONFIG_DIR, $MANIFEST_DIR and $STATE_DIR (--purge removes them)"
    return 0
  fi
  for target in "$CONFIG_DIR" "$STATE_DIR"; do
    if [ -e "$R$target" ]; then rm -rf -- "$R$target"; say "removed $target"; fi
  done
  if [ -d "$R$MANIFEST_DIR" ]; then
    kept=$(count_entries "$R$MANIFEST_DIR")
    if [ "$kept" = 0 ]; then
      rmdir -- "$R$MANIFEST_DIR"
      say "removed $MANIFEST_DIR (empty)"
    else
      say "kept $MANIFEST_DIR: it holds $kept file(s), and manifests are the operator's files"
    fi
  fi
}

case $action in
  install) install ;;
  uninstall | purge) uninstall ;;
esac

#!/usr/bin/env bash
# A FAKE podman for the reliability tests: it stands in front of the real one (through
# PODVISOR_PODMAN) and, as its fault plan says at the moment of each call, fails the call the way
# podman fails, hangs, prints broken JSON, or ends `podman events` mid-stream; otherwise it execs
# the real podman untouched. The test rewrites the plan whenever it likes (temporary file and
# rename), so faults start and stop while the agent runs.
#
# Environment:
#   FAULTY_PODMAN_PLAN  the fault plan: `key=value` lines, integers only (no plan: no faults)
#                         seed=N        makes the choices repeatable (with the call's number)
#                         fail=P        P % of calls exit 125 with one of podman's own messages
#                         hang=P        P % of calls (not `events`) hang, ignoring SIGTERM
#                         malformed=P   P % of `--format json` listings print broken JSON
#                         events_cut=S  a `podman events` running (or started) while S > 0 is
#                                       ended 1..S seconds later (0: never)
#                         hang_seconds=S  how long a hang lasts (3600)
#                         only=WORDS    faults only for these commands, comma-separated: a first
#                                       word (`ps`, `pod`, `run`) or the first two joined by a
#                                       dash (`pod-ps`, `container-inspect`); empty: all
#                         hang_only=WORDS  hangs only for these commands (the same words)
#                       <plan>.script, when there: one fault a line (fail, hang, malformed), each
#                       given to the next call it fits, whatever the roll (so a short run has them all)
#   FAULTY_PODMAN_LOG   one line per call: `<epoch s.us>\t<pid>\t<fault>\t<args>` (the test's figures)
#   FAULTY_PODMAN_REAL  the real podman (`podman` on PATH)
set -u

real=${FAULTY_PODMAN_REAL:-podman}
plan=${FAULTY_PODMAN_PLAN:-}
log=${FAULTY_PODMAN_LOG:-/dev/null}

seed=0 fail=0 hang=0 malformed=0 events_cut=0 hang_seconds=3600 only= hang_only=
# Reads the plan (again: a running `podman events` follows it).
read_plan() {
  seed=0 fail=0 hang=0 malformed=0 events_cut=0 hang_seconds=3600 only= hang_only=
  [ -n "$plan" ] && [ -r "$plan" ] || return 0
  local key value
  while IFS='=' read -r key value; do
    case "$key" in
      seed | fail | hang | malformed | events_cut | hang_seconds)
        [[ "$value" =~ ^[0-9]+$ ]] && printf -v "$key" '%d' "$value" ;;
      only | hang_only) [[ "$value" =~ ^[a-z,-]*$ ]] && printf -v "$key" '%s' "$value" ;;
    esac
  done < "$plan"
}
read_plan

json_listing=0
case " $* " in *" --format json "*) [ "${1:-}" != events ] && json_listing=1 ;; esac

# Whether the command is named in a comma-separated list (empty: every command is).
named_in() {
  [ -z "$1" ] && return 0
  local word
  IFS=',' read -ra words <<< "$1"
  for word in "${words[@]}"; do
    [ "$word" = "$command" ] || [ "$word" = "$command_pair" ] && return 0
  done
  return 1
}
command=${1:-}
command_pair="${1:-}-${2:-}"
targeted=0 hang_targeted=0
named_in "$only" && targeted=1
named_in "$hang_only" && hang_targeted=1

# The call's number, counted under a lock so that concurrent calls each get their own: with the
# seed it picks this call's fault (repeatable for a given order of calls).
number=0 forced=
if [ -n "$plan" ]; then
  counter="$plan.calls"
  exec 9>> "$counter.lock"
  flock 9
  number=$(( $(cat "$counter" 2> /dev/null || echo 0) + 1 ))
  echo "$number" > "$counter"
  # Faults the test wants for sure: the first line of <plan>.script is taken by the first call it fits.
  script="$plan.script"
  if [ -s "$script" ]; then
    next=$(head -n 1 "$script")
    fits=0
    case "$next" in
      fail) [ "$targeted" = 1 ] && [ "$command" != events ] && fits=1 ;;
      hang) [ "$hang_targeted" = 1 ] && [ "$command" != events ] && fits=1 ;;
      malformed) [ "$targeted" = 1 ] && [ "$json_listing" = 1 ] && fits=1 ;;
    esac
    if [ "$fits" = 1 ]; then
      forced=$next
      tail -n +2 "$script" > "$script.tmp" && mv "$script.tmp" "$script"
    fi
  fi
  exec 9>&-
fi
RANDOM=$(( (seed * 7919 + number * 104729) % 32768 ))
roll=$(( (RANDOM * 32768 + RANDOM) % 100 ))
pick=$(( RANDOM % 3 ))
cut=$(( RANDOM ))

fault=none
if [ -n "$forced" ]; then
  fault=$forced
elif [ "$targeted" = 1 ]; then
  if [ "$roll" -lt "$fail" ]; then
    fault=fail
  elif [ "$command" != events ] && [ "$hang_targeted" = 1 ] && [ "$roll" -lt $(( fail + hang )) ]; then
    fault=hang
  elif [ "$json_listing" = 1 ] && [ "$roll" -lt $(( fail + hang + malformed )) ]; then
    fault=malformed
  fi
fi

args="$*"
# One line per call (and one when a stream is cut), in one write.
log_line() {
  printf '%s\t%s\t%s\t%s\n' "$EPOCHREALTIME" "$$" "$1" "${args:0:300}" >> "$log"
}
log_line "$fault"

# Runs the real podman as a child that a SIGTERM to this script also ends (execa's timeout and
# cancel signal the script, not its children).
run_child() {
  "$@" &
  child=$!
  trap 'kill -TERM "$child" 2> /dev/null; wait "$child"; exit 143' TERM INT
  { wait "$child"; } 2> /dev/null
  local status=$?
  trap - TERM INT
  return "$status"
}

if [ "$fault" = none ] && [ "$command" = events ] && [ -n "$plan" ]; then
  # Followed while it runs, so that a stream begun before the faults is cut too: once the plan
  # has events_cut=S, the stream ends within 1..S seconds, its last line cut in half, as when
  # podman is killed mid-write.
  "$real" "$@" &
  child=$!
  trap 'kill -TERM "$child" 2> /dev/null; exit 143' TERM INT
  cut_at=0
  while kill -0 "$child" 2> /dev/null; do
    sleep 1 &
    wait $!
    read_plan
    if [ "$events_cut" -gt 0 ] && [ "$targeted" = 1 ]; then
      [ "$cut_at" = 0 ] && cut_at=$(( EPOCHSECONDS + cut % events_cut + 1 ))
      if [ "$EPOCHSECONDS" -ge "$cut_at" ]; then
        log_line events-cut
        kill -KILL "$child" 2> /dev/null
        { wait "$child"; } 2> /dev/null
        printf '{"ID":"4f1d2c0a9b","Image":"localhost/busybox:podvisor","Name":"default_cut_c","Status":"di'
        echo 'Error: reading events: unexpected EOF' >&2
        exit 125
      fi
    else
      cut_at=0
    fi
  done
  wait "$child"
  exit $?
fi

case "$fault" in
  none) exec "$real" "$@" ;;
  fail)
    # podman's own words, as its sqlite state reports a busy database (podman issues 17859,
    # 18356, 25886); exit 125, podman's "the podman command itself failed".
    case "$pick" in
      0) echo 'Error: beginning transaction: database is locked' >&2 ;;
      1) echo 'Error: switching journal to WAL mode: database is locked' >&2 ;;
      *) case "$command" in
           run | create) echo 'Error: beginning container create transaction: database is locked' >&2 ;;
           *) echo 'Error: adding container id to database: database is locked' >&2 ;;
         esac ;;
    esac
    exit 125 ;;
  hang)
    # A podman stuck on a lock: silent, deaf to SIGTERM, until SIGKILL.
    trap '' TERM
    exec sleep "$hang_seconds" ;;
  malformed)
    out=$(mktemp)
    run_child "$real" "$@" > "$out"
    status=$?
    size=$(stat -c %s "$out")
    case "$pick" in
      0) head -c "$(( size > 2 ? cut % (size - 1) + 1 : 0 ))" "$out" ;;  # cut short
      1) printf '' ;;  # nothing at all, exit 0
      *) printf '{"cause":"internal libpod error","message":"unexpected end of JSON input","response":500}\n' ;;  # an object, not a list
    esac
    rm -f "$out"
    exit "$status" ;;
esac

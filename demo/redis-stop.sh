#!/usr/bin/env bash
# Shell form versus exec form, with real redis: who is PID 1 decides whether
# data survives a `docker stop`.
#
# For each scenario this starts redis-server in its own pidlab sandbox with
# ordinary save points (`--save "3600 1"`: nothing is saved by luck during
# the run), writes a key over a unix socket, stops the sandbox exactly as
# `docker stop` does (SIGTERM to PID 1, a grace period, then SIGKILL), and
# then loads dump.rdb into a throw-away redis to see whether the key is there.
#
# Usage: demo/redis-stop.sh [--grace SECS] [--format table|json]
#   --grace   seconds between SIGTERM and SIGKILL (default 10, as docker stop)
#   --format  json: one JSON object per scenario on stdout, progress on stderr
# PIDLAB=/path/to/pidlab uses that binary instead of building one.
set -euo pipefail

grace=10
format=table
while [ $# -gt 0 ]; do
  case "$1" in
    --grace) grace=${2:?--grace needs seconds}; shift 2 ;;
    --format) format=${2:?--format needs table or json}; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

# --- set up what the demonstration needs --------------------------------
case "$format" in table|json) ;; *) echo "--format must be table or json" >&2; exit 2 ;; esac
if [ "$format" = json ]; then exec 3>&1 1>&2; fi   # progress to stderr, rows to fd 3
# need PROGRAM PACKAGE: install it (as root) or say how (rootfs-scripts/need.sh).
. "$here/../rootfs-scripts/need.sh"
need redis-server redis-server
need redis-cli redis-tools
need busybox busybox-static
need tini tini
pidlab=${PIDLAB:-}
if [ -z "$pidlab" ]; then
  # cargo may be in the invoking user's ~/.cargo/bin, which sudo leaves off the PATH.
  cargo=$(command -v cargo || true)
  for candidate in "$HOME/.cargo/bin/cargo" "$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)/.cargo/bin/cargo"; do
    [ -z "$cargo" ] && [ -x "$candidate" ] && cargo=$candidate
  done
  if [ -z "$cargo" ]; then
    echo "building pidlab needs Rust's cargo (rustup.rs); or set PIDLAB=/path/to/pidlab" >&2
    exit 1
  fi
  echo "== building pidlab"
  (cd "$repo" && "$cargo" build --release --quiet)
  pidlab="$repo/target/x86_64-unknown-linux-gnu/release/pidlab"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pidlab-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT

# As root, every run is traced: the kernel's record says whether SIGTERM
# reached redis-server's handler.
trace=
how_known="redis log"
if [ "$(id -u)" = 0 ]; then trace=--trace; how_known="kernel trace"; fi

redis_opts='--port 0 --unixsocket /data/redis.sock --unixsocketperm 700 --dir /data --save "3600 1" --logfile ""'

# name | pidlab arguments (eval'd)
scenarios=(
  "exec form|-f $here/Dockerfile.exec-form"
  "shell form, dash|-f $here/Dockerfile.shell-form"
  "shell form, busybox sh|-f $here/Dockerfile.shell-form --shell '/bin/busybox sh'"
  "shell form, 'exec' in string|--cmd 'exec redis-server $redis_opts'"
  "shell form + tini (--init)|-f $here/Dockerfile.shell-form --init=/usr/bin/tini"
  "shell form + pidlab --init=drain|-f $here/Dockerfile.shell-form --init=drain"
)

rows=()
for entry in "${scenarios[@]}"; do
  name=${entry%%|*}
  args=${entry#*|}
  dir="$work/$(echo "$name" | tr -c 'a-z0-9' '-')"
  mkdir -p "$dir"
  echo "== $name"
  # The stop signal comes 1.5 s after the start; the key is written well
  # before that (the socket answers within a few milliseconds).
  ( code=0
    eval "\"$pidlab\" run $trace -v \"$dir:/data\" --stop-after 1.5 --stop-timeout $grace $args" \
      >"$dir/out.log" 2>&1 || code=$?
    echo "$code" >"$dir/rc" ) &
  runner=$!
  for _ in $(seq 100); do
    redis-cli -s "$dir/redis.sock" ping >/dev/null 2>&1 && break
    sleep 0.01
  done
  redis-cli -s "$dir/redis.sock" set lesson "written before the stop" >/dev/null
  start=$(date +%s.%N)
  while kill -0 "$runner" 2>/dev/null; do
    t=$(echo "$(date +%s.%N) - $start" | bc)
    printf '\r   %4.1f s: SIGTERM at 1.5 s, SIGKILL at %s s if still running ' "$t" "$(echo "1.5 + $grace" | bc)"
    sleep 0.25
  done
  wait "$runner" || true
  rc=$(cat "$dir/rc")
  printf '\r%60s\r' ''

  # What happened, from pidlab's and redis's own words.
  took=$(grep -oE 'exited [0-9.]+ s after|within [0-9.]+ s of' "$dir/out.log" | grep -oE '[0-9.]+' || true)
  if grep -q 'sending SIGKILL' "$dir/out.log"; then how="SIGKILL after ${took} s"; else how="${took} s"; fi
  if grep -q 'pid=1, just started' "$dir/out.log"; then pid1=redis-server; else
    pid1=$(eval "\"$pidlab\" run --dry-run $args" 2>/dev/null | sed -n 's/^argv: \["\([^"]*\)".*/\1/p'); fi
  # Did SIGTERM reach redis? As root, from the kernel's record (pidlab
  # run --trace); otherwise from redis's own log.
  if [ -n "$trace" ]; then
    if grep -q 'SIGTERM at redis-server .*delivered to its handler' "$dir/out.log"; then got=yes; else got=no; fi
  else
    if grep -q 'Received SIGTERM' "$dir/out.log"; then got=yes; else got=no; fi
  fi
  # Redis's own words about its shutdown, if it had any.
  grep -oE '(Received SIGTERM|User requested shutdown|Saving the final RDB snapshot|DB saved on disk|ready to exit)[^"]*' \
    "$dir/out.log" | sed 's/^/     redis: /' || true
  saved=no
  if [ -s "$dir/dump.rdb" ]; then
    redis-server --port 0 --unixsocket "$dir/check.sock" --dir "$dir" --dbfilename dump.rdb \
      --save '' --logfile "$dir/check.log" --daemonize yes --pidfile "$dir/check.pid"
    for _ in $(seq 100); do redis-cli -s "$dir/check.sock" ping >/dev/null 2>&1 && break; sleep 0.01; done
    [ "$(redis-cli -s "$dir/check.sock" get lesson)" = "written before the stop" ] && saved=yes
    redis-cli -s "$dir/check.sock" shutdown nosave >/dev/null 2>&1 || true
  fi
  echo "   PID 1: $pid1; stop took: $how; SIGTERM reached redis ($how_known): $got; key in dump.rdb: $saved (exit $rc)"
  rows+=("$name|$pid1|$how|$got|$saved")
  if [ "$format" = json ]; then
    seconds=${took:-null}
    # No stop time means the stop never happened as planned: say what the
    # sandbox printed last, so the reason is in the row.
    tail_log=
    [ -z "$took" ] && tail_log=$(tail -n 5 "$dir/out.log" | tr -d '"\\' | tr '\n\t\r' '   ')
    killed=false; grep -q 'sending SIGKILL' "$dir/out.log" && killed=true
    printf '{"scenario":"%s","pid1":"%s","stop_seconds":%s,"sigkill":%s,"redis_got_sigterm":%s,"known_from":"%s","saved":%s,"exit":%s,"log_tail":"%s"}\n' \
      "$name" "$pid1" "$seconds" "$killed" "$([ $got = yes ] && echo true || echo false)" "$how_known" \
      "$([ $saved = yes ] && echo true || echo false)" "$rc" "$tail_log" >&3
  fi
done
[ "$format" = json ] && exit 0

echo
printf '%-32s %-14s %-22s %-16s %s\n' "scenario" "PID 1" "stop took" "redis got TERM" "data saved"
for row in "${rows[@]}"; do
  IFS='|' read -r a b c d e <<<"$row"
  printf '%-32s %-14s %-22s %-16s %s\n' "$a" "$b" "$c" "$d" "$e"
done
echo
echo "When redis-server is PID 1 (exec form, or a shell that execs it) SIGTERM runs its handler and it saves at once."
echo "When dash stays PID 1 the kernel drops SIGTERM (PID 1 without a handler), redis is SIGKILLed after the grace"
echo "period and the write is lost; tini in front of the shell stops fast but kills redis before it can save."
echo "pidlab's drain init sends SIGTERM to every process and waits for all of them, so even shell form saves."

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
# Usage: demo/redis-stop.sh [--grace SECS] [--format table|json] [--html FILE]
#   --grace   seconds between SIGTERM and SIGKILL (default 10, as docker stop)
#   --format  json: one JSON object per scenario on stdout, progress on stderr
#   --html    also write FILE: one self-contained page (the summary table, and
#             per scenario the kernel's trace drawn by `pidlab run --trace --svg`
#             and redis's own log lines), the slide to show afterwards (root)
# PIDLAB=/path/to/pidlab uses that binary instead of building one.
set -euo pipefail

grace=10
format=table
html=
while [ $# -gt 0 ]; do
  case "$1" in
    --grace) grace=${2:?--grace needs seconds}; shift 2 ;;
    --format) format=${2:?--format needs table or json}; shift 2 ;;
    --html) html=${2:?--html needs a file}; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

# --- set up what the demonstration needs --------------------------------
case "$format" in table|json) ;; *) echo "--format must be table or json" >&2; exit 2 ;; esac
if [ -n "$html" ]; then
  # Refused now, not after a minute of redis: the pictures are the kernel's
  # record, and the file must be writable.
  if [ "$(id -u)" != 0 ]; then
    echo "--html draws each scenario's kernel trace, and tracing needs root: run as root, or leave out --html" >&2
    exit 2
  fi
  if ! { : >"$html"; } 2>/dev/null; then
    echo "--html $html: cannot write the file; give a path in a directory you can write to" >&2
    exit 2
  fi
  html=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
fi
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
dirs=()
for entry in "${scenarios[@]}"; do
  name=${entry%%|*}
  args=${entry#*|}
  dir="$work/$(echo "$name" | tr -c 'a-z0-9' '-')"
  mkdir -p "$dir"
  dirs+=("$dir")
  svg=
  [ -n "$html" ] && svg="--svg \"$dir/trace.svg\""
  echo "== $name"
  # The stop signal comes 1.5 s after the start; the key is written well
  # before that (the socket answers within a few milliseconds).
  # The stop's length is measured here, by the clock, not read from what
  # pidlab says: from pidlab's start to its end, less the 1.5 s before the
  # stop signal.
  ( code=0
    begun=$(date +%s.%N)
    eval "\"$pidlab\" run $trace $svg -v \"$dir:/data\" --stop-after 1.5 --stop-timeout $grace $args" \
      >"$dir/out.log" 2>&1 || code=$?
    printf '%.2f\n' "$(echo "$(date +%s.%N) - $begun - 1.5" | bc)" >"$dir/took"
    echo "$code" >"$dir/rc" ) &
  runner=$!
  for _ in $(seq 100); do
    redis-cli -s "$dir/redis.sock" ping >/dev/null 2>&1 && break
    sleep 0.01
  done
  redis-cli -s "$dir/redis.sock" set lesson "written before the stop" >/dev/null
  start=$(date +%s.%N)
  # A live clock on a terminal only: in a log, one line per scenario.
  if [ -t 1 ]; then
    while kill -0 "$runner" 2>/dev/null; do
      t=$(echo "$(date +%s.%N) - $start" | bc)
      printf '\r   %4.1f s: SIGTERM at 1.5 s, SIGKILL at %s s if still running ' "$t" "$(echo "1.5 + $grace" | bc)"
      sleep 0.25
    done
  fi
  wait "$runner" || true
  rc=$(cat "$dir/rc")
  if [ -t 1 ]; then printf '\r%60s\r' ''; fi

  # What happened, from pidlab's and redis's own words.
  took=
  # Only a stop that happened as planned has a length.
  grep -qE 'exited [0-9.]+ s after|within [0-9.]+ s of' "$dir/out.log" && took=$(cat "$dir/took")
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
    "$dir/out.log" >"$dir/redis-lines" || true
  sed 's/^/     redis: /' "$dir/redis-lines"
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

# --- the page -------------------------------------------------------------
escape() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g'; }
cell() { if [ "$1" = yes ]; then echo "<td class=\"yes\">yes</td>"; else echo "<td class=\"no\">$1</td>"; fi; }
write_html() {
  cat <<'HEAD'
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>pidlab: who is PID 1 decides whether redis saves on docker stop</title>
<style>
body { font-family: "DejaVu Sans", Verdana, Arial, sans-serif; margin: 24px; color: #111; }
table { border-collapse: collapse; font-size: 20px; }
th, td { border: 1px solid #888; padding: 6px 14px; text-align: left; }
th { background: #eef3fb; }
td.yes { color: #1a7f37; font-weight: bold; } td.no { color: #c5221f; font-weight: bold; }
section { margin-top: 48px; }
section svg { max-width: 100%; height: auto; border: 1px solid #ccc; }
pre { background: #f4f4f4; padding: 8px; font-size: 16px; }
</style></head><body>
<h1>docker stop with real redis: who is PID 1 decides whether the data is saved</h1>
HEAD
  echo "<p>SIGTERM 1.5 s after the start, SIGKILL $grace s later if still running. Each picture is the kernel's own record (<code>pidlab run --trace --svg</code>).</p>"
  echo '<table id="summary"><tr><th>scenario</th><th>PID 1</th><th>stop took</th><th>redis got SIGTERM</th><th>data saved</th></tr>'
  for row in "${rows[@]}"; do
    IFS='|' read -r a b c d e <<<"$row"
    echo "<tr><td><a href=\"#s$((++n))\">$(echo "$a" | escape)</a></td><td>$(echo "$b" | escape)</td><td>$(echo "$c" | escape)</td>$(cell "$d")$(cell "$e")</tr>"
  done
  echo '</table>'
  n=0
  for i in "${!rows[@]}"; do
    IFS='|' read -r a _ <<<"${rows[$i]}"
    echo "<section class=\"scenario\" id=\"s$((++n))\"><h2>$(echo "$a" | escape)</h2>"
    if [ -s "${dirs[$i]}/trace.svg" ]; then cat "${dirs[$i]}/trace.svg"; else echo '<p class="missing">No picture: the trace did not finish.</p>'; fi
    echo "<h3>redis's own log</h3><pre>"
    if [ -s "${dirs[$i]}/redis-lines" ]; then escape <"${dirs[$i]}/redis-lines"; else echo "(nothing: redis never heard of the stop)"; fi
    echo "</pre></section>"
  done
  echo '</body></html>'
}
if [ -n "$html" ]; then
  n=0
  write_html >"$html"
  echo "== the page: $html"
fi
[ "$format" = json ] && exit 0

echo
# Each column as wide as its widest cell, two spaces apart.
table=("scenario|PID 1|stop took|redis got TERM|data saved" "${rows[@]}")
widths=(0 0 0 0)
for row in "${table[@]}"; do
  IFS='|' read -r -a cells <<<"$row"
  for i in 0 1 2 3; do
    [ "${#cells[$i]}" -gt "${widths[$i]}" ] && widths[$i]=${#cells[$i]}
  done
done
for row in "${table[@]}"; do
  IFS='|' read -r a b c d e <<<"$row"
  printf "%-${widths[0]}s  %-${widths[1]}s  %-${widths[2]}s  %-${widths[3]}s  %s\n" "$a" "$b" "$c" "$d" "$e"
done
echo
echo "When redis-server is PID 1 (exec form, or a shell that execs it) SIGTERM runs its handler and it saves at once."
echo "When dash stays PID 1 the kernel drops SIGTERM (PID 1 without a handler), redis is SIGKILLed after the grace"
echo "period and the write is lost; tini in front of the shell stops fast but kills redis before it can save."
echo "pidlab's drain init sends SIGTERM to every process and waits for all of them, so even shell form saves."

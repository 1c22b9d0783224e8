#!/usr/bin/env bash
# What `pidlab stop` adds beyond the workload's own exit.
#
# For each of RUNS iterations: start `pidlab run -d -- pidlab probe
# --on-term-save ...` (an exec-form probe that exits at once on SIGTERM),
# then time `pidlab stop` from the outside (wall clock around the command).
# `pidlab stop` itself reports how long PID 1 took to exit after the signal
# (the workload's own exit); the difference is pidlab's overhead: starting
# the pidlab process, reading the state, the pidfd, waiting for the shim to
# record the exit. Prints medians in milliseconds.
#
# Then the kernel's share: a probe that ignores SIGTERM leaves N processes
# (N = 100 to 10,000) in its namespace; `pidlab stop -t 1` waits the
# 1 s grace period, sends SIGKILL, and returns once PID 1 has exited, that
# is once the kernel has killed and released every process in the
# namespace. Prints the time beyond the grace period.
#
# Usage (as root): benches/stop.sh [RUNS]     default 100
set -euo pipefail
runs=${1:-100}
here=$(cd "$(dirname "$0")/.." && pwd)
(cd "$here" && cargo build --release --quiet)
pidlab="$here/target/x86_64-unknown-linux-gnu/release/pidlab"
work=$(mktemp -d)
export PIDLAB_STATE_DIR="$work/state"
trap 'for d in "$PIDLAB_STATE_DIR"/*; do [ -d "$d" ] && "$pidlab" rm -f "$(basename "$d")" >/dev/null; done; rm -rf "$work"' EXIT

walls=() ; exits=() ; overheads=()
for i in $(seq "$runs"); do
  "$pidlab" run -d --name "b$i" -- pidlab probe --on-term-save /tmp/state >/dev/null
  t0=$EPOCHREALTIME   # bash's clock, read without starting a process
  out=$("$pidlab" stop "b$i")
  t1=$EPOCHREALTIME
  exit_s=$(echo "$out" | sed -n 's/.*exited \([0-9.]*\) s after.*/\1/p')
  wall=$(echo "($t1 - $t0) * 1000" | bc -l)
  exit_ms=$(echo "$exit_s * 1000" | bc -l)
  walls+=("$wall"); exits+=("$exit_ms"); overheads+=("$(echo "$wall - $exit_ms" | bc -l)")
  "$pidlab" rm "b$i" >/dev/null
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
printf 'runs: %s (pidlab stop prints the exit time in whole milliseconds)\n' "$runs"
printf 'pidlab stop, wall clock:            %7.3f ms (median)\n' "$(median "${walls[@]}")"
printf 'workload exit after SIGTERM:        %7.3f ms (median, as pidlab stop measured it)\n' "$(median "${exits[@]}")"
printf 'added by pidlab stop:               %7.3f ms (median of the per-run differences)\n' "$(median "${overheads[@]}")"

echo "stop -t 1 of a sandbox that ignores SIGTERM, time beyond the 1 s grace period:"
for n in 100 1000 2000 4000 10000; do
  "$pidlab" run -d --name "many$n" -- pidlab probe --ignore TERM --orphans "$n" --orphan-life 1000 >/dev/null
  # Wait until the orphans exist: N children of the sandbox's PID 1 (its
  # host PID is the first one `inspect` lists, as HOST/1).
  pid1=$("$pidlab" inspect "many$n" | awk 'NR == 2 { split($1, p, "/"); print p[1] }')
  for _ in $(seq 600); do
    [ "$(wc -w <"/proc/$pid1/task/$pid1/children")" -ge "$n" ] && break
    sleep 0.1
  done
  t0=$EPOCHREALTIME
  "$pidlab" stop -t 1 "many$n" >/dev/null
  t1=$EPOCHREALTIME
  printf '  N=%-6s %7.1f ms\n' "$n" "$(echo "($t1 - $t0 - 1) * 1000" | bc -l)"
  "$pidlab" rm "many$n" >/dev/null
done

#!/usr/bin/env bash
# Start-up cost of a PID-namespace sandbox, pidlab against named baselines,
# all in one run on one machine (hyperfine, median of many runs):
#
#   pidlab   pidlab run --rootfs R -- /bin/true
#   unshare  unshare --pid --fork --mount-proc --root R /bin/true   (util-linux)
#   bwrap    bwrap --unshare-pid --bind R / --proc /proc --dev /dev /bin/true
#
# R is a busybox root (rootfs-scripts/busybox-root.sh). Then the default
# root (no --rootfs), and how start time grows with --nest 1..32.
# Writes the numbers to stdout; BENCHMARKS.md records a run.
#
# Usage (as root): benches/startup.sh [RUNS]      default 300 runs each
set -euo pipefail
runs=${1:-300}
here=$(cd "$(dirname "$0")/.." && pwd)
for tool in hyperfine bwrap unshare jq; do
  command -v $tool >/dev/null || { echo "needs $tool: apt-get install hyperfine bubblewrap util-linux jq" >&2; exit 1; }
done
(cd "$here" && cargo build --release --quiet)
pidlab="$here/target/x86_64-unknown-linux-gnu/release/pidlab"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
bash "$here/rootfs-scripts/busybox-root.sh" "$root" >/dev/null

median() { # name command...
  local name=$1; shift
  hyperfine -N --warmup 20 --runs "$runs" --export-json "$work/$name.json" "$*" >/dev/null 2>&1
  jq -r '.results[0].median * 1000' "$work/$name.json"
}

p=$(median pidlab "$pidlab run --rootfs $root -- /bin/true")
u=$(median unshare "unshare --pid --fork --mount-proc --root $root /bin/true")
b=$(median bwrap "bwrap --unshare-pid --bind $root / --proc /proc --dev /dev /bin/true")
d=$(median default "$pidlab run -- /bin/true")
printf 'runs per command: %s (hyperfine -N, 20 warm-up runs)\n' "$runs"
printf '%-40s %8.3f ms\n' "pidlab run --rootfs busybox" "$p" "unshare --pid --fork --mount-proc --root" "$u" \
  "bwrap --unshare-pid --proc --dev" "$b" "pidlab run (default root)" "$d"
printf 'ratio pidlab/unshare: %.2f   pidlab/bwrap: %.2f\n' "$(echo "$p / $u" | bc -l)" "$(echo "$p / $b" | bc -l)"
echo "pidlab --nest N (busybox root), median ms:"
for n in 1 2 4 8 16 32; do
  printf '  N=%-3s %8.3f\n' "$n" "$(median "nest$n" "$pidlab run --nest $n --rootfs $root -- /bin/true")"
done

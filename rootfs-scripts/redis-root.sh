#!/usr/bin/env bash
# Build a root filesystem for redis in DIR, offline, from the host's own
# Debian packages: redis-server, redis-cli, the shared libraries they link
# (found with ldd), the dynamic loader, and a /bin/sh of your choice — so
# you can see that *which* shell a shell-form CMD meets decides who is PID 1:
#
#   --shell dash     Debian's /bin/sh: forks for `sh -c CMD`, stays PID 1
#   --shell bash     execs the last simple command: redis-server is PID 1
#   --shell busybox  Alpine's /bin/sh (ash): execs it too
#
# Usage: rootfs-scripts/redis-root.sh [--shell dash|bash|busybox] DIR
#        pidlab run --rootfs DIR -v /tmp/data:/data --cmd 'redis-server --dir /data ...'
# Idempotent: files already in place and identical are left alone.
set -euo pipefail

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
shell=dash
dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --shell) shell=${2:?--shell needs dash, bash or busybox}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
    *) dir=$1; shift ;;
  esac
done
[ -n "$dir" ] || { usage >&2; exit 2; }

case "$shell" in
  dash) shell_bin=/usr/bin/dash; pkg=dash ;;
  bash) shell_bin=/usr/bin/bash; pkg=bash ;;
  busybox) shell_bin=/bin/busybox; pkg=busybox-static ;;
  *) echo "--shell must be dash, bash or busybox" >&2; exit 2 ;;
esac

# need PROGRAM PACKAGE: install it (as root) or say how.
. "$(dirname "$0")/need.sh"
need redis-server redis-server
need redis-cli redis-tools
need "$shell_bin" "$pkg"

# Build in a temporary directory next to DIR and move it into place only
# when complete, so a failure never leaves half a root.
parent=$(dirname "$dir")
mkdir -p "$parent"
build=$(mktemp -d "$parent/.redis-root.XXXXXX")
trap 'rm -rf "$build"' EXIT
if [ -d "$dir" ]; then cp -a "$dir/." "$build/"; fi

# copy FILE to the same path under the new root (following symlinks)
put() {
  local src=$1 dst="$build$1"
  mkdir -p "$(dirname "$dst")"
  cmp -s "$src" "$dst" 2>/dev/null || cp -L "$src" "$dst"
}

# The merged-/usr layout of Debian 12: /bin, /lib, /lib64 point into /usr.
mkdir -p "$build/usr/bin" "$build/usr/lib" "$build/usr/lib64" "$build/etc" "$build/data" "$build/tmp"
chmod 1777 "$build/tmp"
# Empty mount points for /proc, /dev and pidlab itself, as an image carries
# (see busybox-root.sh).
mkdir -p "$build/proc" "$build/dev" "$build/.pidlab"
[ -f "$build/.pidlab/pidlab" ] || : >"$build/.pidlab/pidlab"
for link in bin lib lib64; do
  [ -L "$build/$link" ] || ln -s "usr/$link" "$build/$link"
done

for program in "$(command -v redis-server)" "$(command -v redis-cli)"; do
  put "$(readlink -f "$program")"
  name=$(basename "$program")
  [ "$(readlink -f "$program")" = "/usr/bin/$name" ] || ln -sfn "$(readlink -f "$program")" "$build/usr/bin/$name"
  # Every library ldd names, and the loader (the line without "=>").
  for lib in $(ldd "$program" | awk '/=>/ {print $3} !/=>/ && $1 ~ /^\// {print $1}'); do
    put "$lib"
    # Also under the non-/usr path the binary may ask for.
    case "$lib" in
      /lib/*|/lib64/*) put "$lib" ;;
    esac
  done
done
# Redis reads no config here; give it the files a process expects.
[ -f "$build/etc/passwd" ] || echo 'root:x:0:0:root:/root:/bin/sh' >"$build/etc/passwd"
[ -f "$build/etc/group" ] || echo 'root:x:0:' >"$build/etc/group"

# /bin/sh: the chosen shell, and its libraries.
put "$shell_bin"
if [ "$shell" != busybox ]; then
  for lib in $(ldd "$shell_bin" | awk '/=>/ {print $3} !/=>/ && $1 ~ /^\// {print $1}'); do put "$lib"; done
fi
ln -sfn "$shell_bin" "$build/usr/bin/sh"
echo "$shell" >"$build/etc/pidlab-shell"

rm -rf "$dir"
mv "$build" "$dir"
trap - EXIT
echo "redis root ready in $dir (/bin/sh is $shell: $shell_bin)"

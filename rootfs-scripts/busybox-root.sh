#!/usr/bin/env bash
# Build a busybox root filesystem in DIR, offline, from Debian's
# busybox-static package already on this host.
#
# What you get: DIR/bin/busybox (one statically linked program that is a
# whole userland) and DIR/bin/<applet> -> busybox for each of its applets
# (sh, ps, ls, kill, ...), plus empty /tmp and /data, and the empty mount
# points /proc, /dev and /.pidlab/pidlab. Nothing else: no C library, no
# /etc. pidlab mounts /proc, /dev and itself over those when it runs it:
#
#   pidlab run --rootfs DIR -- /bin/sh -c 'echo $$; ps'
#
# Usage: rootfs-scripts/busybox-root.sh DIR
# Idempotent: running it again only refreshes what changed.
set -euo pipefail

case "${1:-}" in
  -h|--help|"") sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit $? ;;
esac
dir=$1

busybox=/bin/busybox
if ! [ -x "$busybox" ] || ! "$busybox" --list >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing busybox-static"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
  else
    echo "busybox is missing: run  sudo apt-get install busybox-static" >&2
    exit 1
  fi
fi
if ldd "$busybox" >/dev/null 2>&1; then
  echo "$busybox is dynamically linked; install busybox-static (not busybox)" >&2
  exit 1
fi

# proc, dev and .pidlab/pidlab: empty mount points, as an image carries.
# A root that has them is bound whole (one mount); pidlab never creates
# them in DIR itself (src/rootfs.rs).
mkdir -p "$dir/bin" "$dir/tmp" "$dir/data" "$dir/proc" "$dir/dev" "$dir/.pidlab"
[ -f "$dir/.pidlab/pidlab" ] || : >"$dir/.pidlab/pidlab"
chmod 1777 "$dir/tmp"
cmp -s "$busybox" "$dir/bin/busybox" || install -m 0755 "$busybox" "$dir/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] && continue
  [ "$(readlink "$dir/bin/$applet" 2>/dev/null)" = busybox ] || ln -sfn busybox "$dir/bin/$applet"
done
echo "busybox root ready in $dir ($("$busybox" --list | wc -l) applets)"

#!/usr/bin/env bash
# Build one tarball with everything a workshop needs on a machine with no
# network: the static pidlab binary, every lesson with its starter files
# (written by the binary itself, `pidlab lesson export`), and ready-made
# root filesystems built from this host's Debian packages:
#
#   roots/busybox         busybox-static: a whole userland, no C library
#   roots/redis-dash      redis-server and redis-cli, /bin/sh = dash
#   roots/redis-bash      the same, /bin/sh = bash
#   roots/redis-busybox   the same, /bin/sh = busybox sh
#
# An instructor builds it once (here, with the network or the packages
# already installed) and copies it to each attendee's machine, which needs
# neither Rust, nor the repository, nor apt:
#
#   tar -xzf pidlab-workshop.tar.gz && cd pidlab-workshop && ./install.sh
#
# Usage: rootfs-scripts/offline-bundle.sh [--binary PATH] OUT.tar.gz
#   --binary PATH   put this pidlab binary in the bundle instead of building
#                   one (`cargo build --release`); it must be static.
set -euo pipefail

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
binary=""
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=${2:?--binary needs the path of a pidlab binary}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
    *) out=$1; shift ;;
  esac
done
[ -n "$out" ] || { usage >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

# The binary: built here unless given. .cargo/config.toml links it
# statically, which is what lets it run on another machine (and inside a
# root without a C library).
if [ -z "$binary" ]; then
  echo "== building the release binary (cargo build --release)"
  (cd "$repo" && cargo build --release --quiet)
  binary="$repo/target/x86_64-unknown-linux-gnu/release/pidlab"
fi
[ -x "$binary" ] || { echo "$binary is not an executable file" >&2; exit 1; }
if ldd "$binary" >/dev/null 2>&1; then
  echo "$binary is dynamically linked: build it with the repository's .cargo/config.toml (static)" >&2
  exit 1
fi

# Everything is put together in a temporary directory, and the tarball
# written under a temporary name and renamed: a failure leaves no half
# bundle behind.
work=$(mktemp -d "${TMPDIR:-/tmp}/pidlab-bundle.XXXXXX")
trap 'rm -rf "$work" "$out.partial"' EXIT
top="$work/pidlab-workshop"
mkdir -p "$top/bin" "$top/roots"
install -m 0755 "$binary" "$top/bin/pidlab"

echo "== lessons (pidlab lesson export)"
"$top/bin/pidlab" lesson export "$top" >/dev/null

echo "== roots, from this host's packages"
bash "$here/busybox-root.sh" "$top/roots/busybox" >/dev/null
for shell in dash bash busybox; do
  bash "$here/redis-root.sh" --shell "$shell" "$top/roots/redis-$shell" >/dev/null
done

cat >"$top/install.sh" <<'EOF'
#!/bin/sh
# Put pidlab on the PATH: /usr/local/bin as root (so that `sudo pidlab`
# finds it too), ~/.local/bin otherwise.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" = 0 ]; then to=/usr/local/bin; else to="$HOME/.local/bin"; fi
mkdir -p "$to"
install -m 0755 "$here/bin/pidlab" "$to/pidlab"
echo "installed $to/pidlab"
case ":$PATH:" in *":$to:"*) ;; *) echo "add $to to your PATH" ;; esac
echo "then: cd $here && pidlab doctor && pidlab lesson show 0"
EOF
chmod 0755 "$top/install.sh"

cat >"$top/README.txt" <<'EOF'
pidlab workshop, offline bundle

  ./install.sh               put pidlab on your PATH
  pidlab doctor              is this machine ready? (lesson 00)
  pidlab lesson list         the lessons; `pidlab lesson show N` prints one
  pidlab lesson check N FILE checks an exercise; run it from this directory,
                             where lessons/NN-slug/ holds the starter files
  pidlab lesson status       which checks you passed

roots/ holds root filesystems for `pidlab run --rootfs DIR`:
  pidlab run --rootfs roots/busybox -- /bin/sh -c 'echo $$; ps'
  pidlab run --rootfs roots/redis-dash -- redis-server --version
  roots/redis-dash, -bash, -busybox differ only in /bin/sh: a shell-form
  CMD meets a different shell in each (lesson 05).
EOF

mkdir -p "$(dirname "$out")"
tar -C "$work" -czf "$out.partial" pidlab-workshop
mv "$out.partial" "$out"
echo "bundle ready: $out ($(du -h "$out" | cut -f1)); on each machine: tar -xzf $(basename "$out") && pidlab-workshop/install.sh"

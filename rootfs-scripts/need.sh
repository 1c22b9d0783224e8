# Sourced by the scripts here: `need PROGRAM PACKAGE` makes sure PROGRAM
# exists, installing Debian's PACKAGE when we are root (running apt-get
# update first if the package lists are empty), or saying which command to
# run when we are not.
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ]; then
    echo "installing $2 (for $1)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }
  else
    echo "$1 is missing: run  sudo apt-get install $2" >&2
    exit 1
  fi
}

#!/bin/sh
# at-a-terminal.sh NAME 'pidlab run -it --name NAME ...'
#
# Run the command on a terminal of its own, as if you had typed it, and
# press Ctrl-C once two `sleep`s run in sandbox NAME. script(1) makes the
# terminal (a pseudo-terminal pair): what this script writes to script's
# input is what you would type, and the terminal's line discipline turns
# the Ctrl-C byte (0x03) into SIGINT for the terminal's foreground process
# group. Prints what the terminal showed, then the command's exit code.
name=$1
command=$2
out=$(mktemp)
{
  # inspect lists each process as "  HOST/.../NS STATE COMM COMMAND LINE".
  timeout 20 sh -c "until [ \"\$(pidlab inspect $name 2>/dev/null | grep -cE '^ +[0-9/]+ [A-Z] sleep ')\" = 2 ]; do sleep 0.05; done"
  printf '\003'
} | script -qec "$command" /dev/null >"$out"
code=$?
tr -d '\r' <"$out" | awk 1
echo "exit code $code"
rm -f "$out"

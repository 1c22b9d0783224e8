#!/bin/sh
# Prepare, then *become* the command: exec replaces the shell, so the
# command is PID 1 and receives the stop signal itself.
echo "entrypoint: preparing"
exec "$@"

#!/bin/sh
# Prepare, then run the command this script is given (the image's CMD).
echo "entrypoint: preparing"
"$@"

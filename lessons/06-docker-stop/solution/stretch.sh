# The shell (PID 1) installs a SIGTERM handler, so SIGTERM from the host is
# delivered; the handler passes it on to the probe. A trap runs only between
# commands, so the probe runs in the background and the shell waits for it:
# the first `wait` returns when the trap fires, the second waits for the
# probe to finish saving. Then the last line runs.
pidlab run -d --name st06 --cmd 'trap "kill -TERM \$child" TERM; pidlab probe --on-term-save /tmp/state & child=$!; wait $child; wait $child; echo cleaned up'

# PID 1 with no SIGTERM handler: the kernel drops SIGTERM from the host.
# (--catch TERM or --ignore TERM survive it too.) SIGKILL still gets through.
pidlab run -d --name ex04 -- pidlab probe

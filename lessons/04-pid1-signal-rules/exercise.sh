# Start a sandbox named ex04 whose PID 1 survives SIGTERM from the host,
# but not SIGKILL. This version exits on SIGTERM: fix it.
pidlab run -d --name ex04 -- pidlab probe --on-term-save /tmp/state

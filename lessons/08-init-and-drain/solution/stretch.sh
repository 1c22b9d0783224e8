# --init forwards SIGTERM to its one child, the shell, which dies of it; the
# init then exits and the kernel SIGKILLs both probes. --init=drain sends the
# stop signal to every process in the namespace and waits for all of them.
pidlab run -d --name st08 --init=drain --cmd 'pidlab probe --on-term-save /tmp/a & pidlab probe --on-term-save /tmp/b & wait'

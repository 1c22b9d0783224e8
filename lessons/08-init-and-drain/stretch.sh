# Stretch: two services in one sandbox, started by a shell that waits for
# both. `pidlab stop st08` must let BOTH probes save their state. Change
# only the flags before --cmd.
pidlab run -d --name st08 --init --cmd 'pidlab probe --on-term-save /tmp/a & pidlab probe --on-term-save /tmp/b & wait'

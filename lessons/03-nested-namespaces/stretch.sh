# Stretch: start a sandbox named st03 in which the probe is three PID
# namespaces below the host (its NSpid line has four numbers, host first)
# and is NOT PID 1 of its own namespace: it has PID 2 there, under an init.
pidlab run -d --name st03 -- pidlab probe

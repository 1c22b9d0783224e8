# Stretch: the shell must still run its last line after the service stopped
# (the echo stands for a clean-up). Make `pidlab stop st06` save the probe's
# state AND print "cleaned up", without an init (no --init): the shell stays
# PID 1.
pidlab run -d --name st06 --cmd 'pidlab probe --on-term-save /tmp/state; echo cleaned up'

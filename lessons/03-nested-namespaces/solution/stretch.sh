# Three levels (--nest 3), and an init in front of the probe in the innermost
# one (--init): the init is PID 1 there, the probe its child, PID 2.
pidlab run -d --name st03 --nest 3 --init -- pidlab probe

# Orphans stay zombies here. Change only what runs as PID 1 so that they are reaped.
pidlab run -d --name ex07 -- pidlab probe --orphans 5 --orphan-life 0

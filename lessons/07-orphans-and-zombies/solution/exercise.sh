# An init as PID 1 reaps every orphan (like docker run --init).
pidlab run -d --name ex07 --init -- pidlab probe --orphans 5 --orphan-life 0

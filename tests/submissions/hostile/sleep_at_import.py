# Hostile: sleeps forever while being imported.
# expect: timeout
import time

while True:
    time.sleep(3600)

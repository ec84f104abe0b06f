# Hostile: starts a detached daemon (double fork, new session) that would outlive the grading
# and keep working, then returns nonsense.
# expect: graded
import os
import time


def graphdef_vs_state(seed, x, features, hidden):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            for fd in range(0, 256):
                try:
                    os.close(fd)
                except OSError:
                    pass
            while True:
                time.sleep(1)
        os._exit(0)
    time.sleep(0.2)
    return [0.0, 0.0, 0.0]

# Hostile: a fork bomb.
# expect: timeout
import os


def graphdef_vs_state(seed, x, features, hidden):
    while True:
        try:
            os.fork()
        except OSError:
            pass

# Hostile: writes 2 GB to stdout and to stderr.
# expect: graded
import os

CHUNK = b"x" * (1024 * 1024)


def graphdef_vs_state(seed, x, features, hidden):
    for fd in (1, 2):
        for _ in range(1024):
            os.write(fd, CHUNK)
    return [0.0, 0.0, 0.0]

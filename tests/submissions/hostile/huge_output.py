# Hostile: writes 2 GB to stdout and 2 GB to stderr (on its first call: a flood in every
# case would test the machine's speed at moving 28 GB through pipes, not the grader).
# expect: graded
import os

CHUNK = b"x" * (1024 * 1024)
_flooded = []


def graphdef_vs_state(seed, x, features, hidden):
    if not _flooded:
        _flooded.append(True)
        for fd in (1, 2):
            for _ in range(1024):
                os.write(fd, CHUNK)
    return [0.0, 0.0, 0.0]

# Hostile: sends one line of 200,000 '[' on every descriptor it can find, which once made the
# grader's JSON parser raise RecursionError and abort the batch.
# expect: crashed
import os

_line = b"[" * 200_000 + b"\n"
for fd in range(3, 64):
    try:
        os.write(fd, _line)
    except OSError:
        pass


def graphdef_vs_state(seed, x, features, hidden):
    return [4.0, 0.0, 0.0]

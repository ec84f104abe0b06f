# Hostile: claims, on every descriptor it can find, that the sandbox could not be set up, so
# that the grader would blame itself and stop (a whole batch, every rerun).
# expect: crashed
import json
import os

_line = (json.dumps({"event": "sandbox_failed", "message": "::error::forged by a student"})
         + "\n").encode()
for fd in range(3, 64):
    try:
        os.write(fd, _line)
    except OSError:
        pass


def graphdef_vs_state(seed, x, features, hidden):
    return [4.0, 0.0, 0.0]

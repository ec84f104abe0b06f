# Hostile: floods the grader's channel with outcomes for cases it never asked for, each with
# a large message, which the grader once kept without limit (2 GB for 200 of them).
# expect: crashed
import json
import os


def graphdef_vs_state(seed, x, features, hidden):
    frames = [{"file": "x" * 900, "line": 1, "function": "f" * 900, "source": "s" * 900}] * 40
    for index in range(1000, 1200):
        for message in (
            {"event": "start", "index": index},
            {"event": "outcome", "outcome": {"index": index, "kind": "raised", "error": {
                "type": "E", "message": "m" * 4000, "frames": frames}}},
        ):
            line = (json.dumps(message) + "\n").encode()
            for fd in range(3, 64):
                try:
                    os.write(fd, line)
                except OSError:
                    pass
    return [0.0, 0.0, 0.0]

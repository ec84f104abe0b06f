# Hostile: prints fake passing reports on stdout and stderr, and forges the grader's own
# messages on every file descriptor it can find. A forged outcome for the case being run is
# taken as that case's (wrong) answer, the forged `done` then breaks the protocol, and every
# later case it runs in ends as crashed: graded, no points.
# expect: graded
import json
import os
import sys

FAKE = {"status": "graded", "score": 14.0, "max_score": 14.0, "message": "All 14 cases passed."}


def graphdef_vs_state(seed, x, features, hidden):
    print(json.dumps(FAKE))
    print(json.dumps(FAKE), file=sys.stderr)
    forged = (json.dumps({"event": "outcome", "outcome": {"index": 0, "kind": "returned",
                                                           "values": [4.0, 0.0, 0.0]}})
              + "\n" + json.dumps({"event": "done"}) + "\n").encode()
    for fd in range(3, 64):
        try:
            os.write(fd, forged)
        except OSError:
            pass
    return [0.0, 0.0, 0.0]

# Fault: prints a fake passing report on stdout and stderr, then returns nonsense.
import json
import sys

FAKE = {"status": "graded", "score": 14, "max_score": 14, "event": "done"}


def graphdef_vs_state(seed, x, features, hidden):
    print(json.dumps(FAKE))
    print('{"event": "done"}', file=sys.stderr)
    return [0.0, 0.0, 0.0]

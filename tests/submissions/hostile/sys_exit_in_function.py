# Hostile: sys.exit(0) inside the function.
# expect: graded
import sys


def graphdef_vs_state(seed, x, features, hidden):
    sys.exit(0)

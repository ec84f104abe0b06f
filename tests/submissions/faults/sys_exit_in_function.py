# Fault: calls sys.exit() inside the function.
import sys


def graphdef_vs_state(seed, x, features, hidden):
    sys.exit(0)

# Hostile: os._exit(0) inside the function.
# expect: crashed
import os


def graphdef_vs_state(seed, x, features, hidden):
    os._exit(0)

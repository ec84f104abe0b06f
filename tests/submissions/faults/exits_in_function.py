# Fault: ends its own process from inside the function.
import os


def graphdef_vs_state(seed, x, features, hidden):
    os._exit(3)

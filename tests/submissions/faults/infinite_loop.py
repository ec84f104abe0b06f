# Fault: never returns.
def graphdef_vs_state(seed, x, features, hidden):
    while True:
        pass

# Fault: the function takes 3 parameters instead of 4.
def graphdef_vs_state(seed, x, hidden):
    return [4, 0.0, 0.0]

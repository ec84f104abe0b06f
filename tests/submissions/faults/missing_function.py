# Fault: the function has a typo in its name.
def graphdef_vs_stat(seed, x, features, hidden):
    return [4, 0.0, 0.0]

# Fault: saved in Latin-1, not UTF-8: café
def graphdef_vs_state(seed, x, features, hidden):
    return [4, 0.0, 0.0]

# Fault: raises inside a helper the function calls; the traceback must show lines 4 and 8.
def helper(hidden):
    widths = [1, 2, 3]
    return widths[int(hidden) + 100]


def graphdef_vs_state(seed, x, features, hidden):
    return [4, float(helper(hidden)), 0.0]

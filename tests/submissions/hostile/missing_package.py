# Hostile: imports a package that is not installed.
# expect: import_error
import torch_but_not_really


def graphdef_vs_state(seed, x, features, hidden):
    return torch_but_not_really.solve()

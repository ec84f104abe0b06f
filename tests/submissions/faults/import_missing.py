# Fault: imports a package that is not installed.
import definitely_not_installed_pkg


def graphdef_vs_state(seed, x, features, hidden):
    return definitely_not_installed_pkg.solve(seed, x, hidden)

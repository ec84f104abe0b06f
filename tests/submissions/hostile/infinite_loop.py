# Hostile: loops forever inside the function.
# expect: timeout
def graphdef_vs_state(seed, x, features, hidden):
    while True:
        pass

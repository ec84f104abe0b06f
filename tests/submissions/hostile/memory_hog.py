# Hostile: allocates memory until it is stopped.
# expect: memory_exceeded
def graphdef_vs_state(seed, x, features, hidden):
    hoard = []
    while True:
        hoard.append(bytearray(50 * 1024 * 1024))

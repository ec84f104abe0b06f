# Hostile: four processes, each under the per-process memory limit, together far over it.
# expect: memory_exceeded
import os
import time


def graphdef_vs_state(seed, x, features, hidden):
    children = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            hoard = bytearray(1400 * 1024 * 1024)  # zero-filled: every page is touched
            time.sleep(60)
            os._exit(len(hoard) and 0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    return [0.0, 0.0, 0.0]

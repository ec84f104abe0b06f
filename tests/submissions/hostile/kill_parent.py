# Hostile: kills its parent process, its process group, and every process it may signal.
# In its PID namespace it is init (pid 1), whose parent is invisible (0) and which ignores
# even its own SIGKILL; no other process is visible to kill, so os.kill(-1) raises.
# expect: graded
import os
import signal


def graphdef_vs_state(seed, x, features, hidden):
    for target in (os.getppid(), 1):
        try:
            os.kill(target, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    except OSError:
        pass
    os.kill(-1, signal.SIGKILL)

# Hostile: opts out of every way a worker used to be stopped: clears its parent-death signal,
# leaves its session, replaces os._exit so that the worker never ends, and starts busy loops
# and sleepers in sessions of their own that would slow every later student.
# expect: graded
import ctypes
import os
import time

_libc = ctypes.CDLL(None)
_libc.prctl(1, 0, 0, 0, 0)  # PR_SET_PDEATHSIG: none
try:
    os.setsid()
except OSError:
    pass
os._exit = lambda code: time.sleep(10**6)


def _spawn(busy):
    if os.fork() == 0:
        _libc.prctl(1, 0, 0, 0, 0)
        try:
            os.setsid()
        except OSError:
            pass
        while True:
            if not busy:
                time.sleep(1)


for _ in range(2):
    _spawn(busy=True)
for _ in range(20):
    _spawn(busy=False)


def graphdef_vs_state(seed, x, features, hidden):
    return [0.0, 0.0, 0.0]

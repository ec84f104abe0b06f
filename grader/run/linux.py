"""Linux constants and libc calls the run machinery needs (namespaces, mounts, prctl).

Imported by the trusted side and by the worker before any student code runs; it holds no
state beyond the libc handle.
"""

from __future__ import annotations

import ctypes
import os
import signal

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

libc = ctypes.CDLL(None, use_errno=True)


def errno_text() -> str:
    """The message of the errno the last libc call left."""
    import os

    return os.strerror(ctypes.get_errno())


def prctl(option: int, value: int) -> int:
    return int(libc.prctl(option, value, 0, 0, 0))


def reap_until(child: int) -> int:
    """As a subreaper: reap every process handed to this one until `child` ends; its wait
    status (0 if it was never seen). Orphans reaped on the way add their CPU time to this
    process's cutime/cstime, where the grader's meter reads it.

    A stopped `child` is seen only by its tracer (the submission made this process its tracer
    with PTRACE_TRACEME, were ptrace not refused): it is killed, which ends the run."""
    while True:
        try:
            ended, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return 0  # nothing left to wait for
        if ended != child:
            continue
        if os.WIFSTOPPED(status):
            os.kill(child, signal.SIGKILL)
            continue
        return status

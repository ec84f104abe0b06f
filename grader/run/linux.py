"""Linux constants and libc calls the run machinery needs (namespaces, mounts, prctl).

Imported by the trusted side and by the worker before any student code runs; it holds no
state beyond the libc handle.
"""

from __future__ import annotations

import ctypes

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

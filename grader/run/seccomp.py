"""A seccomp filter the worker installs on itself before any student code runs.

It refuses the kernel keyring calls (`add_key`, `request_key`, `keyctl`): keys are kept per
uid by the kernel, outside every namespace, so keys a run adds would outlive it (kernel memory
that the next holder of the uid could also read). On x86_64 it also refuses the 32-bit and x32
system call ABIs, through which those calls have other numbers. Anything else is allowed: the
namespaces, the uid and the limits do the rest. On an architecture not listed here no filter
is installed (docs/sandbox.md says so).
"""

from __future__ import annotations

import ctypes
import errno
import platform

from grader.run.linux import PR_SET_NO_NEW_PRIVS, libc

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000

BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_RET_K = 0x06

# (audit arch, keyring system call numbers, first number of another ABI or None)
ARCHES = {
    "x86_64": (0xC000003E, (248, 249, 250), 0x40000000),
    "aarch64": (0xC00000B7, (217, 218, 219), None),
}


class _Filter(ctypes.Structure):
    _fields_ = (
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint),
    )


class _Program(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Filter)))


def program(machine: str | None = None) -> list[tuple[int, int, int, int]] | None:
    """The filter as (code, jt, jf, k) instructions, or None for an unknown architecture."""
    entry = ARCHES.get(machine or platform.machine())
    if entry is None:
        return None
    arch, calls, other_abi = entry
    refuse = SECCOMP_RET_ERRNO | errno.EPERM
    body: list[tuple[int, int, int, int]] = [(BPF_LD_W_ABS, 0, 0, 0)]  # the call's number
    checks = [(BPF_JGE_K, other_abi)] if other_abi is not None else []
    checks += [(BPF_JEQ_K, number) for number in calls]
    for position, (code, value) in enumerate(checks):
        to_refuse = len(checks) - position  # over the remaining checks and the allow
        body.append((code, to_refuse, 0, value))
    body += [(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW), (BPF_RET_K, 0, 0, refuse)]
    head = [
        (BPF_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (BPF_JEQ_K, 1, 0, arch),
        (BPF_RET_K, 0, 0, refuse),  # another architecture's calls: none allowed
    ]
    return head + body


def install() -> bool:
    """Install the filter on this process and its future children; False if none applies."""
    instructions = program()
    if instructions is None:
        return False
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "cannot set no_new_privs")
    filters = (_Filter * len(instructions))(*(_Filter(*i) for i in instructions))
    prog = _Program(len(instructions), filters)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "cannot install the seccomp filter")
    return True

"""A seccomp filter the worker installs on itself before any student code runs.

It refuses the kernel keyring calls (`add_key`, `request_key`, `keyctl`): keys are kept per
uid by the kernel, outside every namespace, so keys a run adds would outlive it (kernel memory
that the next holder of the uid could also read). It refuses `ptrace` and
`process_vm_readv/writev`: without namespaces, a run's process could otherwise trace the
grader's helpers that run as its uid (stopping `kill -9 -1` so the grader's wait never ends) or
trace itself (`PTRACE_TRACEME`) to confuse the trusted per-run child that reaps it. On x86_64
it also refuses the 32-bit and x32 system call ABIs, through which those calls have other
numbers. Where the run has no cgroup to account for its CPU time, it also refuses changes to
SIGCHLD's action (see `program`). Anything else is allowed: the namespaces, the uid and the
limits do the rest. On an architecture not listed here no filter is installed (docs/sandbox.md
says so).
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

# (audit arch, refused system call numbers: the keyring's, then ptrace, process_vm_readv and
# process_vm_writev; first number of another ABI or None; rt_sigaction)
ARCHES = {
    "x86_64": (0xC000003E, (248, 249, 250, 101, 310, 311), 0x40000000, 13),
    "aarch64": (0xC00000B7, (217, 218, 219, 117, 270, 271), None, 134),
}
SIGCHLD = 17  # on both
# Offsets in struct seccomp_data: nr, arch, instruction pointer, then six 64-bit arguments
# (little-endian on both architectures: the low half first).
_NR, _ARCH, _ARG0_LOW, _ARG1_LOW, _ARG1_HIGH = 0, 4, 16, 24, 28


class _Filter(ctypes.Structure):
    _fields_ = (
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint),
    )


class _Program(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Filter)))


Instruction = tuple[int, int | str, int | str, int]  # jumps: a label or 0 (the next one)


def _assemble(lines: list[Instruction | str]) -> list[tuple[int, int, int, int]]:
    """Resolve label jumps (forward only, as BPF's) into offsets; a str line is a label."""
    positions: dict[str, int] = {}
    count = 0
    for line in lines:
        if isinstance(line, str):
            positions[line] = count
        else:
            count += 1
    out: list[tuple[int, int, int, int]] = []
    for line in lines:
        if isinstance(line, str):
            continue
        code, jt, jf, k = line
        here = len(out) + 1
        out.append(
            (
                code,
                positions[jt] - here if isinstance(jt, str) else jt,
                positions[jf] - here if isinstance(jf, str) else jf,
                k,
            )
        )
    return out


def program(
    machine: str | None = None, *, refuse_sigchld_changes: bool = False
) -> list[tuple[int, int, int, int]] | None:
    """The filter as (code, jt, jf, k) instructions, or None for an unknown architecture.

    `refuse_sigchld_changes`: rt_sigaction(SIGCHLD, new action) fails with EPERM (reading the
    action stays allowed). Without a cgroup that accounts for CPU, a process that ignores
    SIGCHLD (or sets SA_NOCLDWAIT) has its children reaped by the kernel, whose CPU time is
    then added to no one's (grader/run/cputime.py): refusing the change keeps every child's
    time in its parent's cutime/cstime.
    """
    entry = ARCHES.get(machine or platform.machine())
    if entry is None:
        return None
    arch, calls, other_abi, rt_sigaction = entry
    refuse = SECCOMP_RET_ERRNO | errno.EPERM
    lines: list[Instruction | str] = [
        (BPF_LD_W_ABS, 0, 0, _ARCH),
        (BPF_JEQ_K, 0, "refuse", arch),  # another architecture's calls: none allowed
        (BPF_LD_W_ABS, 0, 0, _NR),
    ]
    if other_abi is not None:
        lines.append((BPF_JGE_K, "refuse", 0, other_abi))
    lines += [(BPF_JEQ_K, "refuse", 0, number) for number in calls]
    if refuse_sigchld_changes:
        lines += [
            (BPF_JEQ_K, 0, "allow", rt_sigaction),
            (BPF_LD_W_ABS, 0, 0, _ARG0_LOW),
            (BPF_JEQ_K, 0, "allow", SIGCHLD),
            (BPF_LD_W_ABS, 0, 0, _ARG1_LOW),  # the new action's pointer: NULL only reads
            (BPF_JEQ_K, 0, "refuse", 0),
            (BPF_LD_W_ABS, 0, 0, _ARG1_HIGH),
            (BPF_JEQ_K, 0, "refuse", 0),
        ]
    lines += [
        "allow",
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        "refuse",
        (BPF_RET_K, 0, 0, refuse),
    ]
    return _assemble(lines)


def install(*, refuse_sigchld_changes: bool = False) -> bool:
    """Install the filter on this process and its future children; False if none applies."""
    instructions = program(refuse_sigchld_changes=refuse_sigchld_changes)
    if instructions is None:
        return False
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "cannot set no_new_privs")
    filters = (_Filter * len(instructions))(*(_Filter(*i) for i in instructions))
    prog = _Program(len(instructions), filters)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "cannot install the seccomp filter")
    return True

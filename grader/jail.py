"""Confine the worker process before any student code runs in it.

Called by the worker first thing, with the `Confinement` the trusted side asked for:

- resource limits (address space, CPU seconds, processes, file size, open files, no core
  dumps), always;
- when the sandbox is `full` (the grader is root and started the worker with `unshare` in new
  PID, network, mount, IPC and UTS namespaces): empty tmpfs mounts over the folders the
  submission must not see (the reference, the problem specs, other submissions, output
  folders, /tmp, the grader's home), the few folders it needs (the Python installation and its
  packages) mounted back read-only, the submission copied into a private working folder,
  then the switch to an unprivileged uid with no way back (no supplementary groups,
  no_new_privs).

Nothing here trusts the submission: it has not been loaded yet.
"""

from __future__ import annotations

import ctypes
import os
import resource
from pathlib import Path

from grader.models import Confinement

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_NO_NEW_PRIVS = 38

WORK_DIR = "/tmp/work"  # inside the private tmpfs mounted on /tmp

_libc = ctypes.CDLL(None, use_errno=True)


class JailError(RuntimeError):
    """The confinement asked for could not be set up."""


def confine(confinement: Confinement, submission: str) -> str:
    """Apply the confinement; return the path the submission should now be loaded from."""
    if confinement.isolation == "full":
        submission = _enter_full(confinement, submission)
    _set_limits(confinement)
    return submission


def _set_limits(confinement: Confinement) -> None:
    limits = {
        resource.RLIMIT_AS: confinement.memory_bytes,
        resource.RLIMIT_CPU: confinement.cpu_seconds,
        resource.RLIMIT_FSIZE: confinement.file_bytes,
        resource.RLIMIT_NOFILE: confinement.open_files,
        resource.RLIMIT_CORE: 0,
    }
    if confinement.isolation == "full":
        # Counted per uid, so only meaningful once the submission has a uid of its own.
        limits[resource.RLIMIT_NPROC] = confinement.processes
    for kind, value in limits.items():
        _soft, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(kind, (value, value))


def _enter_full(confinement: Confinement, submission: str) -> str:
    if os.getpid() != 1 or os.geteuid() != 0:
        raise JailError("full isolation needs a fresh PID namespace entered as root")
    source = Path(submission).read_bytes()
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    hide = [path for path in {*confinement.hide, "/tmp"} if Path(path).is_dir()]
    expose = [path for path in confinement.expose if Path(path).is_dir()]
    # Open what must stay visible before covering anything; it is bound back through the fd.
    keep = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in expose}

    def cover(path: str) -> None:
        options = (
            f"mode=1777,size={confinement.tmp_bytes}" if path == "/tmp" else ("mode=0755,size=64k")
        )
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, options)

    covered: list[str] = []
    for path in sorted(hide, key=_depth):
        if not any(_under(path, outer) for outer in covered):  # else it is gone already
            cover(path)
            covered.append(path)
    for path in sorted(expose, key=_depth):
        if any(_under(path, hidden) for hidden in hide):
            Path(path).mkdir(parents=True, exist_ok=True)
            _mount(f"/proc/self/fd/{keep[path]}", path, None, MS_BIND | MS_REC)
            _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)
    for fd in keep.values():
        os.close(fd)
    for path in sorted(hide, key=_depth):  # a hidden folder inside one exposed again
        if any(_under(path, exposed) for exposed in expose):
            cover(path)
    work = Path(WORK_DIR)
    work.mkdir(mode=0o700)
    target = work / Path(submission).name
    target.write_bytes(source)
    os.chown(work, confinement.uid, confinement.gid)
    os.chown(target, confinement.uid, confinement.gid)
    os.chdir(work)
    os.setgroups([])
    os.setgid(confinement.gid)
    os.setuid(confinement.uid)
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise JailError("cannot set no_new_privs")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise JailError("privileges could be regained after dropping them")
    return str(target)


def _mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    result = _libc.mount(
        source.encode() if source else None,
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    if result != 0:
        errno = ctypes.get_errno()
        raise JailError(f"mount {source} on {target} failed: {os.strerror(errno)}")


def _depth(path: str) -> int:
    return len(Path(path).parts)


def _under(path: str, folder: str) -> bool:
    return Path(path) != Path(folder) and Path(path).is_relative_to(folder)

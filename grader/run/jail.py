"""Confine the worker process before any student code runs in it.

Called by the worker first thing, with the `Confinement` the trusted side asked for:

- resource limits (address space, CPU seconds, processes, file size, open files, no core
  dumps), always;
- when the sandbox is `basic` but the grader is root: an unprivileged uid of its own, a private
  copy of the file in the run's folder, nothing else (no namespaces to be had);
- when the sandbox is `full` (the grader is root and started the worker with `unshare` in new
  PID, network, mount, IPC and UTS namespaces): a new root on a tmpfs holding only the system
  folders, the Python installation and its packages, the grader package and the compilation
  cache, all read-only, a private /tmp with a copy of the submission; then chroot into it and
  switch to an unprivileged uid with no way back (no supplementary groups, no_new_privs).

Nothing here trusts the submission: it has not been loaded yet.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from pathlib import Path

from grader.models import Confinement
from grader.run import seccomp
from grader.run.linux import (
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    PR_SET_NO_NEW_PRIVS,
    PR_SET_PDEATHSIG,
)
from grader.run.linux import libc as _libc

WORK_DIR = "/tmp/work"  # inside the private tmpfs mounted on /tmp


class JailError(RuntimeError):
    """The confinement asked for could not be set up."""


def confine(confinement: Confinement, submission: str) -> str:
    """Apply the confinement; return the path the submission should now be loaded from."""
    if confinement.isolation == "full":
        submission = _enter_full(confinement, submission)
    elif confinement.own_uid:
        submission = _enter_own_uid(confinement, submission)
    _set_limits(confinement)
    seccomp.install(refuse_sigchld_changes=confinement.refuse_sigchld_changes)
    return submission


def _set_limits(confinement: Confinement) -> None:
    limits = {
        resource.RLIMIT_AS: confinement.memory_bytes,
        resource.RLIMIT_CPU: confinement.cpu_seconds,
        resource.RLIMIT_FSIZE: confinement.file_bytes,
        resource.RLIMIT_NOFILE: confinement.open_files,
        resource.RLIMIT_CORE: 0,
    }
    if confinement.isolation == "full" or confinement.own_uid:
        # Counted per uid, so only meaningful once the submission has a uid of its own.
        limits[resource.RLIMIT_NPROC] = confinement.processes
    for kind, value in limits.items():
        _soft, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(kind, (value, value))


# What the submission's root holds besides the folders exposed for Python and the grader.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")


def _enter_full(confinement: Confinement, submission: str) -> str:
    """Build a new root holding only what Python needs, read-only, and enter it as nobody.

    Deny by default: folders not listed simply do not exist in the submission's view, so a
    reference or a report anywhere else on the machine cannot be found, whatever its path.
    """
    if os.getpid() != 1 or os.geteuid() != 0:
        raise JailError("full isolation needs a fresh PID namespace entered as root")
    source = Path(submission).read_bytes()
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    root = confinement.root
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    for path in SYSTEM_PATHS:
        _graft(path, root, recursive=path == "/sys")
    _graft("/dev", root, recursive=False, read_only=False)  # device nodes, not /dev/shm
    # Other runs' cgroups (their memory use, the machine's pids) are none of its business.
    if Path(f"{root}/sys/fs/cgroup").is_dir():
        _mount("tmpfs", f"{root}/sys/fs/cgroup", "tmpfs", MS_NOSUID | MS_NODEV, "size=4k,mode=0555")
    Path(f"{root}/proc").mkdir()  # a fresh procfs: only this PID namespace's processes
    _mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    tmp = f"{root}/tmp"
    Path(tmp).mkdir()
    _mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={confinement.tmp_bytes}")
    for path in sorted(confinement.expose, key=_depth):
        if not any(Path(path).is_relative_to(system) for system in SYSTEM_PATHS):
            _graft(path, root, recursive=True)
    visible = (*SYSTEM_PATHS, *confinement.expose)
    for path in confinement.hide:  # private folders that lie inside a visible one
        inside = f"{root}{path}"
        if any(Path(path).is_relative_to(v) for v in visible) and Path(inside).is_dir():
            _mount("tmpfs", inside, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k")
    work = Path(f"{tmp}/work")
    work.mkdir(mode=0o700)
    target = work / Path(submission).name
    target.write_bytes(source)
    os.chown(work, confinement.uid, confinement.gid)
    os.chown(target, confinement.uid, confinement.gid)
    os.chroot(root)
    os.chdir(WORK_DIR)
    _drop_to(confinement)
    return f"{WORK_DIR}/{target.name}"


def _enter_own_uid(confinement: Confinement, submission: str) -> str:
    """Basic isolation as root: the same file system, but as an unprivileged uid of its own.

    The submission gets a private copy of its file in the run's folder (made its own), and
    can then neither read the grader's private (0700) folders, nor signal or trace the
    grader's processes, nor write what the grader writes; the trusted side kills every process
    of that uid when the run ends (grader/run/launch.py, kill_uid).
    """
    if os.geteuid() != 0:
        raise JailError("running the submission as another user needs root")
    source = Path(submission).read_bytes()
    work = Path(confinement.root)
    target = work / Path(submission).name
    target.write_bytes(source)
    os.chown(work, confinement.uid, confinement.gid)
    os.chown(target, confinement.uid, confinement.gid)
    os.chdir(work)
    _drop_to(confinement)
    return str(target)


def _drop_to(confinement: Confinement) -> None:
    """Become the run's uid and gid for good: no groups, no way back, no new privileges."""
    os.setgroups([])
    os.setresgid(confinement.gid, confinement.gid, confinement.gid)
    os.setresuid(confinement.uid, confinement.uid, confinement.uid)
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise JailError("cannot set no_new_privs")
    # Changing uid clears the parent-death signal: set it again, so that this process (with
    # full isolation the init of its PID namespace, and so everything in it) dies when its
    # parent is killed.
    if _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise JailError("cannot set the parent-death signal")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise JailError("privileges could be regained after dropping them")


def _graft(path: str, root: str, *, recursive: bool, read_only: bool = True) -> None:
    """Make `path` appear at the same place under `root` (a symlink stays a symlink)."""
    source = Path(path)
    target = Path(f"{root}{path}")
    if source.is_symlink():
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() and not target.is_symlink():
            target.symlink_to(source.readlink())
        return
    if not source.is_dir():
        return
    target.mkdir(parents=True, exist_ok=True)
    _mount(path, str(target), None, MS_BIND | (MS_REC if recursive else 0))
    if read_only:
        _mount(None, str(target), None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)


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

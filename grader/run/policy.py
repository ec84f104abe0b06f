"""What a run may see and use: isolation probe, visible and hidden folders, environment, uids.

Trusted side only. Nothing here reads anything a submission wrote.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import random
import re
import shutil
import subprocess
import sys
import sysconfig
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grader.models import RunRequest
from grader.paths import REPO_ROOT

UNSHARE_FLAGS = (
    "--pid",
    "--net",
    "--mount",
    "--ipc",
    "--uts",
    "--fork",
    "--kill-child",
    "--mount-proc",
)


@dataclass(frozen=True)
class SandboxPolicy:
    """How strongly to isolate submissions."""

    isolation: Literal["auto", "full", "basic"] = "auto"  # auto: full when available
    require_full: bool = False  # refuse to grade without full isolation
    uid: int | None = None  # None: a fresh unprivileged uid per run (see UidPool)
    protect: tuple[Path, ...] = ()  # more folders the submission must not see (outputs)


@functools.cache
def full_isolation_problem() -> str | None:
    """Why full isolation is unavailable on this machine, or None when it is available."""
    if os.geteuid() != 0:
        return (
            "the grader is not running as root, so it can neither run the submission as "
            "another user nor give it namespaces of its own"
        )
    unshare = shutil.which("unshare")
    if unshare is None:
        return "util-linux's `unshare` command is not installed"
    try:
        probe = subprocess.run(
            [unshare, *UNSHARE_FLAGS, "true"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`unshare` could not be run: {exc}"
    if probe.returncode != 0:
        return f"new namespaces cannot be created here: {probe.stderr.strip()}"
    return None


CAP_SETGID = 6
CAP_SETUID = 7
_CAP_LINE = re.compile(r"^CapEff:\s+([0-9a-f]+)$", re.MULTILINE)


@functools.cache
def run_uid_problem() -> str | None:
    """Why a submission cannot run under an unprivileged uid of its own, or None if it can.

    Full isolation always gives it one. Without namespaces (Gradescope's container, Docker's
    default: root, but no `unshare`), a root grader with CAP_SETUID and CAP_SETGID still can:
    the submission then cannot signal the grader, write its results, or read its private
    folders (made 0700), and every process of that uid is killed when the run ends. The
    Python installation must be readable by other users for that uid to run it.
    """
    if os.geteuid() != 0:
        return "the grader is not running as root, so the submission runs as the grader's user"
    try:
        match = _CAP_LINE.search(Path("/proc/self/status").read_text())
    except OSError as exc:
        return f"the grader's capabilities cannot be read: {exc}"
    effective = int(match.group(1), 16) if match else 0
    if not effective & (1 << CAP_SETUID) or not effective & (1 << CAP_SETGID):
        return "the grader lacks CAP_SETUID or CAP_SETGID, so it cannot switch to another user"
    for path in visible_paths():
        if not _reachable_by_others(Path(path)):
            return (
                f"the Python installation ({path}) cannot be read by other users, so the "
                f"submission could not run as one"
            )
    return None


def run_uid_available() -> bool:
    """Whether submissions run under a uid of their own (see run_uid_problem)."""
    return run_uid_problem() is None


def _reachable_by_others(path: Path) -> bool:
    """Whether a user with no group in common can list the folder and every folder above it."""
    try:
        if not path.stat().st_mode & 0o004:
            return False
        return all(parent.stat().st_mode & 0o001 for parent in (path, *path.parents))
    except OSError:
        return True  # a folder that does not exist is not needed


def visible_paths() -> tuple[str, ...]:
    """Folders the worker needs to run: the Python installation, its packages, the grader."""
    paths = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sysconfig.get_path("stdlib"),
        sysconfig.get_path("purelib"),
        sysconfig.get_path("platlib"),
        str(Path(__file__).resolve().parent.parent),
        # Package folders added by .pth files or the environment (not the working folder,
        # which `python -m` puts first and may be a course repository).
        *(p for p in sys.path if Path(p).name in {"site-packages", "dist-packages"}),
    }
    return tuple(sorted({str(Path(p).resolve()) for p in paths} | paths))


def hidden_paths(request: RunRequest, policy: SandboxPolicy) -> tuple[str, ...]:
    """Private folders, covered should one lie inside a folder the worker needs.

    The submission's root holds only system and Python folders (see jail.py), so these are
    normally absent from it anyway; this is the second line of defence. A folder that is, or
    holds, one the worker needs is never covered: after `pip install .` the grader package sits
    in site-packages, and covering its parent would hide jax itself.
    """
    needed = [Path(p) for p in visible_paths()]
    candidates = {
        str(Path.home()),
        str(REPO_ROOT),
        str(Path(request.path).resolve().parent),
        *request.private_paths,
        *(str(p) for p in policy.protect),
    }
    hidden = set()
    for candidate in candidates:
        path = Path(candidate).resolve()
        if any(need == path or need.is_relative_to(path) for need in needed):
            continue
        hidden.add(str(path))
    return tuple(sorted(hidden))


def worker_environment(
    compilation_cache: Path | None = None, *, writes_cache: bool = False
) -> dict[str, str]:
    """A minimal environment: nothing of the grader's own (tokens, keys) reaches the worker.

    `writes_cache`: the run fills JAX's compilation cache (the reference); any other run only
    reads it (a fully isolated submission sees it read-only, as another user)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "JAX_PLATFORMS": "cpu",
        # Reference and student run under identical JAX settings; no XLA flag that changes
        # numerics is set (see ../shared/JAX-EXECUTION-NOTES.md, "Numerics").
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    if compilation_cache is not None:
        env |= {
            "JAX_COMPILATION_CACHE_DIR": str(compilation_cache),
            # The reference caches every program: most here compile in well under the 1 s
            # default minimum. A reader is told never to write (jax/_src/compiler.py's
            # _cache_write returns before writing when a program compiled faster than this;
            # reads do not look at it, nor does the cache key), rather than have JAX warn
            # "Error writing persistent compilation cache entry ... Read-only file system:
            # <the grader's cache folder>" into the student's stderr for every program the
            # reference did not compile.
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0" if writes_cache else "1e9",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
            # Without this, keys include a path inside the cache folder, so a moved or copied
            # cache never hits (../shared/JAX-EXECUTION-NOTES.md, "Traps").
            "JAX_PERSISTENT_CACHE_ENABLE_XLA_CACHES": "none",
        }
    return env


# Run uids come from this range, which no account uses. Each run holds its uid for its whole
# life, so limits counted per uid (RLIMIT_NPROC) are its own, and no two runs can signal or
# read each other's processes.
RUN_UID_BASE = 2_000_000_000
RUN_UID_SPAN = 100_000_000
UID_LOCKS = Path("/run/grader-uids")  # root-owned: only full isolation (root) uses the pool


class UidPool:
    """Hands out run uids that no live run holds and under which nothing runs.

    A uid is held through a lock file (flock), so two graders on one machine never share one,
    and it is handed out only after checking that no process runs under it: a uid is reused
    only once nothing of an earlier run is left.
    """

    def __init__(self, locks: Path = UID_LOCKS) -> None:
        self.locks = locks
        self._held: dict[int, int] = {}  # uid -> lock fd
        self._mutex = threading.Lock()

    def acquire(self) -> int:
        self.locks.mkdir(mode=0o700, parents=True, exist_ok=True)
        for _ in range(1000):
            uid = RUN_UID_BASE + random.randrange(RUN_UID_SPAN)  # noqa: S311  (not a secret)
            with self._mutex:
                if uid in self._held:
                    continue
                lock = self.locks / str(uid)
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)  # another grader holds it
                    continue
                if uid_in_use(uid):
                    lock.unlink(missing_ok=True)
                    os.close(fd)
                    continue
                self._held[uid] = fd
                return uid
        raise RuntimeError("no free run uid could be found")

    def release(self, uid: int) -> None:
        with self._mutex:
            fd = self._held.pop(uid, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                (self.locks / str(uid)).unlink()
            os.close(fd)


_UID_LINE = re.compile(rb"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)", re.MULTILINE)


_STATE_LINE = re.compile(rb"^State:\s+([A-Za-z])", re.MULTILINE)
_THREADS_LINE = re.compile(rb"^Threads:\s+(\d+)", re.MULTILINE)


def uid_pids(uid: int, *, live: bool = False) -> list[int]:
    """Processes with this uid (real, effective or saved), as /proc lists them now.

    `live`: without zombies (ended, waiting for their parent to reap them; they run nothing).
    A zombie thread-group leader whose other threads still run (it ended its main thread
    alone) is live: /proc shows the leader's state, `Threads:` shows the rest.
    """
    found = []
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/status", "rb") as stream:  # noqa: PTH123
                    status = stream.read()
            except OSError:
                continue
            match = _UID_LINE.search(status)
            if not match or uid not in {int(value) for value in match.groups()}:
                continue
            state = _STATE_LINE.search(status)
            threads = _THREADS_LINE.search(status)
            alone = threads is None or int(threads.group(1)) <= 1
            if live and state is not None and state.group(1) in {b"Z", b"X"} and alone:
                continue
            found.append(int(entry.name))
    return found


def uid_in_use(uid: int) -> bool:
    """Whether any process on the machine has this uid (real, effective or saved)."""
    return bool(uid_pids(uid))


uid_pool = UidPool()

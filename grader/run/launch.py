"""Starting a worker process: forked from the preloaded zygote, or a fresh interpreter.

Trusted side. A `Launcher` turns a prepared run (environment, folder, pipes, cgroup) into a
`WorkerProcess`, whose `kill()` ends every process the run created: for full isolation by
killing the init of the run's PID namespace (the kernel then kills everything in it, and
nothing can leave a PID namespace), and in any case every process left in the run's cgroup.
A container launcher would be one more class here.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from grader.run.cgroup import RunCgroup
from grader.run.policy import UNSHARE_FLAGS, uid_pids

STATUS_WAIT = 30.0  # seconds for a forked child to report its worker's pid
REAP_WAIT = 5.0  # seconds for a worker's parent to reap it once it was killed

# Joins the cgroups given as the first arguments, then becomes the worker command.
_JOIN_CGROUPS = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 72; shift; n=$((n-1)); done; '
    'exec "$@"'
)


class LaunchError(RuntimeError):
    """The worker could not be started (the grader's set-up, not the submission)."""


class WorkerProcess(Protocol):
    """A running worker, however it was started."""

    pid: int
    returncode: int | None
    stdout_fd: int
    stderr_fd: int

    def wait(self, timeout: float | None = None) -> int | None:
        """Its exit code once it ended (negative: killed by that signal); None on timeout."""
        ...

    def kill(self) -> None:
        """Kill it and everything it started, and reap it."""
        ...

    def close(self) -> None:
        """Release the grader's ends of its pipes."""
        ...


class Launcher(Protocol):
    """Starts workers."""

    def start(
        self,
        environment: dict[str, str],
        workdir: str,
        *,
        full: bool,
        request_fd: int,
        result_fd: int,
        cgroup: RunCgroup | None,
    ) -> WorkerProcess:
        """A running worker reading its request from request_fd, answering on result_fd."""
        ...

    def close(self) -> None:
        """Release what the launcher holds (a zygote)."""
        ...


KILL_UID_WAIT = 10.0  # seconds to end every process of a run's uid

# Run as the run's uid: kill(-1, SIGKILL) signals every process that uid may signal (its own)
# but the caller, at once for the processes that exist at that moment. procps' and
# util-linux's kill do it with `-9 -1`; Python where neither is installed.
_KILL_AS_UID = "import os, signal\nfor _ in range(3):\n    os.kill(-1, signal.SIGKILL)\n"
_KILL_BINARIES = ("/bin/kill", "/usr/bin/kill")


def kill_uid(uid: int, python: str, timeout: float = KILL_UID_WAIT) -> bool:
    """SIGKILL every process of a run's uid until none is left running; True when none is.

    A submission without a PID namespace of its own can leave its process group and session
    (setsid, a double fork): nothing but its uid still ties such a process to its run. First
    `kill(-1, SIGKILL)` from a child switched to that uid (what the kernel does for every one
    of its processes at once, so a fork racing a scan cannot slip through), then, for what is
    left, a /proc scan killing each process found, repeated until the scan finds none (zombies
    aside: they run nothing, and their parents reap them).
    """
    if uid == 0 or os.geteuid() != 0:
        return False
    end = time.monotonic() + timeout
    # Always, even when no process of the uid looks alive: a zombie thread-group leader whose
    # other threads still run reads as a zombie in /proc.
    binary = next((path for path in _KILL_BINARIES if os.access(path, os.X_OK)), None)
    command = [binary, "-9", "-1"] if binary else [python, "-I", "-S", "-c", _KILL_AS_UID]
    helper = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        helper = subprocess.Popen(
            command,
            user=uid,
            group=uid,
            extra_groups=[],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            env={},
        )
    # Never an unbounded wait on the helper: it runs as the uid, so a process of the uid
    # could trace and stop it (the seccomp filter refuses ptrace; this is the second line).
    if helper is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            helper.wait(timeout=max(0.0, end - time.monotonic()))
    while pids := uid_pids(uid, live=True):
        for pid in pids:
            _kill_pid(pid)
        if time.monotonic() > end:
            break
        time.sleep(0.01)
    if helper is not None and helper.poll() is None:
        _kill_pid(helper.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            helper.wait(timeout=1)
    return not uid_pids(uid, live=True)


def _kill_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


class _PopenWorker:
    """A worker started as a new interpreter (through `unshare` for full isolation)."""

    def __init__(self, process: subprocess.Popen[bytes], *, namespaced: bool) -> None:
        assert process.stdout is not None and process.stderr is not None
        self.process = process
        self.namespaced = namespaced
        self.pid = process.pid
        self.returncode: int | None = None
        self.stdout_fd = process.stdout.fileno()
        self.stderr_fd = process.stderr.fileno()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            self.returncode = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def kill(self) -> None:
        if self.namespaced and self.process.poll() is None:
            # unshare's only child is the init of the run's PID namespace: killing it kills
            # the namespace, whatever the worker did to its own parent-death signal. unshare
            # then reaps it and exits (killed first, it would leave a zombie to PID 1).
            for child in _children(self.pid):
                _kill_pid(child)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=REAP_WAIT)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.returncode = self.process.wait()

    def close(self) -> None:
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


class InterpreterLauncher:
    """A fresh `python -m grader.run.worker` per run; `unshare` gives it its namespaces."""

    def __init__(self, python: str) -> None:
        self.python = python

    def start(
        self,
        environment: dict[str, str],
        workdir: str,
        *,
        full: bool,
        request_fd: int,
        result_fd: int,
        cgroup: RunCgroup | None,
    ) -> WorkerProcess:
        command = [self.python, "-I", "-u", "-m", "grader.run.worker"]
        if full:
            command = [shutil.which("unshare") or "unshare", *UNSHARE_FLAGS, "--", *command]
        if cgroup is not None:
            files = cgroup.procs_files
            command = ["/bin/sh", "-c", _JOIN_CGROUPS, "sh", str(len(files)), *files, *command]
        process = subprocess.Popen(
            [*command, str(request_fd), str(result_fd)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(request_fd, result_fd),
            cwd=workdir,
            env=environment,
            start_new_session=True,
        )
        return _PopenWorker(process, namespaced=full)

    def close(self) -> None:
        pass


class _ForkedWorker:
    """A worker forked from the zygote: the grader holds pidfds and a status pipe.

    The status pipe carries `pid N` (the worker, init of its PID namespace for full
    isolation) as soon as it is forked, and `exit C` when it ended; `error ...` if the child
    could not set the run up.
    """

    def __init__(self, pid: int, stdout_fd: int, stderr_fd: int, status_fd: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdout_fd = stdout_fd
        self.stderr_fd = stderr_fd
        self.status_fd = status_fd
        self._status = b""
        self._status_closed = False
        self.setup_error: str | None = None
        self.pidfd = _pidfd(pid)
        self.worker_pidfd: int | None = None
        self._read_status(until=lambda: self.worker_pidfd is not None, timeout=STATUS_WAIT)

    def _read_status(self, until: Callable[[], bool], timeout: float | None) -> None:
        """Read status lines until `until()` holds, the pipe closes, or the time runs out."""
        end = None if timeout is None else time.monotonic() + timeout
        while not until() and not self._status_closed:
            left = None if end is None else max(0.0, end - time.monotonic())
            ready, _, _ = select.select([self.status_fd], [], [], left)
            if not ready:
                return
            chunk = os.read(self.status_fd, 256)
            if not chunk:
                self._status_closed = True
            self._status += chunk
            while b"\n" in self._status:
                line, _, rest = self._status.partition(b"\n")
                self._status = rest
                self._apply(line.decode(errors="replace").split(maxsplit=1))

    def _apply(self, words: list[str]) -> None:
        if len(words) == 2 and words[0] == "pid" and words[1].isdigit():
            self.worker_pidfd = _pidfd(int(words[1]))
        elif len(words) == 2 and words[0] == "exit":
            with contextlib.suppress(ValueError):
                self.returncode = int(words[1])
        elif words and words[0] == "error":
            self.setup_error = words[1] if len(words) == 2 else "unknown"

    def wait(self, timeout: float | None = None) -> int | None:
        if self.returncode is None and not self._status_closed:
            self._read_status(until=lambda: self.returncode is not None, timeout=timeout)
        if self.returncode is None and self._status_closed:
            # Its parent was killed before it could tell, or it could not start.
            self.returncode = -signal.SIGKILL
        return self.returncode

    def kill(self) -> None:
        # The init of the run's PID namespace: the kernel then kills every process in that
        # namespace. The child that forked it reaps it and reports its exit; only if it does
        # not is the child killed too (a worker whose parent is killed first becomes a zombie
        # of PID 1, which may never reap it).
        if self.worker_pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.worker_pidfd, signal.SIGKILL)
            if self.wait(timeout=REAP_WAIT) is not None:
                return  # reaped by its parent, which then exits
        if self.pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.wait()

    def close(self) -> None:
        for fd in (self.stdout_fd, self.stderr_fd, self.status_fd):
            os.close(fd)
        for pidfd in (self.pidfd, self.worker_pidfd):
            if pidfd is not None:
                os.close(pidfd)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


class ZygoteError(RuntimeError):
    """The zygote could not start or stopped answering."""


class _Zygote:
    """The client side of grader/run/zygote.py: hand it pipes, get a forked child's pid."""

    def __init__(self, python: str, environment: dict[str, str]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.process = subprocess.Popen(
                [python, "-I", "-u", "-m", "grader.run.zygote", str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                cwd="/",
                env=environment,
                start_new_session=True,
            )
        finally:
            theirs.close()
        self.socket = ours
        self.socket.settimeout(120)
        self.lock = threading.Lock()
        if self._reply() != "ready":
            self.close()
            raise ZygoteError("the zygote did not start")

    def _reply(self) -> str:
        data = b""
        while not data.endswith(b"\n"):
            try:
                chunk = self.socket.recv(64)
            except OSError as exc:
                raise ZygoteError(f"the zygote stopped answering: {exc}") from exc
            if not chunk:
                raise ZygoteError("the zygote exited")
            data += chunk
        return data.decode().strip()

    def spawn(self, fds: list[int], *, full: bool, cwd: str, cgroups: tuple[str, ...]) -> int:
        header = json.dumps({"full": full, "cwd": cwd, "cgroups": list(cgroups)}).encode()
        with self.lock:
            try:
                socket.send_fds(self.socket, [header], fds)
            except OSError as exc:
                raise ZygoteError(f"the zygote stopped answering: {exc}") from exc
            reply = self._reply()
        if not reply.isdigit():
            raise ZygoteError(f"the zygote refused a run: {reply}")
        return int(reply)

    def close(self) -> None:
        self.socket.close()  # the zygote exits when its socket closes
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class ZygoteLauncher:
    """Forks workers from a zygote that has jax and flax imported; a fresh interpreter when
    the zygote cannot start or stops answering."""

    def __init__(self, python: str) -> None:
        self.python = python
        self.fallback = InterpreterLauncher(python)
        self._zygote: _Zygote | None = None
        self._failed = False
        self._lock = threading.Lock()

    def _zygote_for(self, environment: dict[str, str]) -> _Zygote | None:
        with self._lock:
            if self._zygote is None and not self._failed:
                try:
                    self._zygote = _Zygote(self.python, environment)
                except (OSError, ZygoteError):
                    self._failed = True  # fall back to a fresh interpreter per run
            return self._zygote

    def start(
        self,
        environment: dict[str, str],
        workdir: str,
        *,
        full: bool,
        request_fd: int,
        result_fd: int,
        cgroup: RunCgroup | None,
    ) -> WorkerProcess:
        zygote = self._zygote_for(environment)
        if zygote is not None:
            pipes = [os.pipe() for _ in range(3)]  # stdout, stderr, status
            try:
                pid = zygote.spawn(
                    [pipes[0][1], pipes[1][1], request_fd, result_fd, pipes[2][1]],
                    full=full,
                    cwd=workdir,
                    cgroups=cgroup.procs_files if cgroup is not None else (),
                )
            except ZygoteError:
                for read, write in pipes:
                    os.close(read)
                    os.close(write)
                with self._lock:
                    self._failed = True
                    self._zygote = None
                zygote.close()
            else:
                for _, write in pipes:
                    os.close(write)
                worker = _ForkedWorker(pid, pipes[0][0], pipes[1][0], pipes[2][0])
                if worker.setup_error is not None:
                    worker.kill()
                    worker.close()
                    raise LaunchError(f"the run could not be set up: {worker.setup_error}")
                return worker
        return self.fallback.start(
            environment,
            workdir,
            full=full,
            request_fd=request_fd,
            result_fd=result_fd,
            cgroup=cgroup,
        )

    def close(self) -> None:
        with self._lock:
            zygote, self._zygote = self._zygote, None
        if zygote is not None:
            zygote.close()

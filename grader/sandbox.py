"""The trusted side of the boundary: start a worker, enforce limits, collect what it says.

A `Runner` takes a `RunRequest` (file, function, cases) and returns a `RunResult`: either why
the file could not be loaded, or an outcome for every case. The only runner today starts a
fresh `python -m grader.worker` per run; a stronger sandbox or a faster execution model can
replace it behind the same interface.

The worker talks over a pipe of its own (not stdout), one JSON object per line, each checked
against the models. Its stdout and stderr are read at the same time in one selector loop, and
only a bounded tail of each is kept, so a flood of output neither fills memory nor blocks it.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import select
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from pydantic import TypeAdapter, ValidationError

from grader.cache import compilation_cache_dir
from grader.errors import SandboxUnavailable
from grader.models import (
    Case,
    CaseOutcome,
    CaseReason,
    Confinement,
    DoneMessage,
    ErrorInfo,
    Isolation,
    Limits,
    LoadedMessage,
    LoadFailedMessage,
    OutcomeMessage,
    RunRequest,
    SandboxFailedMessage,
    StartMessage,
    Status,
    WorkerMessage,
)
from grader.problems import REPO_ROOT

# Each run gets a uid (and gid) of its own from this range, which no account uses: limits
# counted per uid (processes) cannot be exhausted by another submission graded at the same
# time, and no two submissions can signal or read each other's processes.
RUN_UID_BASE = 2_000_000_000
_run_counter = itertools.count()
MEMORY_MARKERS = (
    "MemoryError",
    "bad_alloc",
    "RESOURCE_EXHAUSTED",
    "Cannot allocate memory",
    "out of memory",
)
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
OUTPUT_TAIL_BYTES = 64 * 1024  # of stdout and of stderr, each
MESSAGE_BYTES = 1024 * 1024  # longest line accepted on the result channel
READ_CHUNK = 64 * 1024

_messages: TypeAdapter[WorkerMessage] = TypeAdapter(WorkerMessage)


@dataclass(frozen=True)
class LoadFailure:
    """Why no case could run."""

    status: Status
    message: str
    error: ErrorInfo | None = None


@dataclass(frozen=True)
class CaseFailure:
    """A case that produced no outcome: it timed out, killed its process, or never ran."""

    index: int
    reason: CaseReason
    message: str


@dataclass
class RunResult:
    """Everything a run produced, already checked against the protocol."""

    load_failure: LoadFailure | None = None
    outcomes: dict[int, CaseOutcome | CaseFailure] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    total_timeout: bool = False
    isolation: Isolation = "none"
    peak_rss_kib: int | None = None


class Runner(Protocol):
    """Runs a request's cases in a process other than the grader's."""

    def isolation(self) -> Isolation:
        """The isolation runs get; raises SandboxUnavailable if what is required cannot be had."""
        ...

    def run(self, request: RunRequest, limits: Limits) -> RunResult:
        """Load the file, run every case, and say what happened."""
        ...


class Tail:
    """The last `limit` bytes written to a stream, and how many bytes were dropped."""

    def __init__(self, limit: int = OUTPUT_TAIL_BYTES) -> None:
        self.limit = limit
        self.buffer = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        self.buffer += data
        excess = len(self.buffer) - self.limit
        if excess > 0:
            del self.buffer[:excess]
            self.dropped += excess

    def text(self) -> str:
        body = self.buffer.decode("utf-8", errors="replace")
        if self.dropped:
            return f"[... {self.dropped} earlier bytes not kept ...]\n{body}"
        return body


@dataclass
class _Attempt:
    """One worker process's life: what it said before it finished or was stopped."""

    loaded: bool = False
    done: bool = False
    load_failure: LoadFailure | None = None
    outcomes: dict[int, CaseOutcome] = field(default_factory=dict)
    current: int | None = None  # case started and not finished
    stopped: CaseReason | None = None  # why the attempt ended early, if it did
    peak_rss_kib: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class SandboxPolicy:
    """How strongly to isolate submissions."""

    isolation: Literal["auto", "full", "basic"] = "auto"  # auto: full when available
    require_full: bool = False  # refuse to grade without full isolation
    uid: int | None = None  # None: a fresh unprivileged uid per run
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


def visible_paths() -> tuple[str, ...]:
    """Folders the worker needs to run: the Python installation, its packages, the grader."""
    paths = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sysconfig.get_path("stdlib"),
        sysconfig.get_path("purelib"),
        sysconfig.get_path("platlib"),
        str(Path(__file__).resolve().parent),
    }
    return tuple(sorted({str(Path(p).resolve()) for p in paths} | paths))


def hidden_paths(request: RunRequest, policy: SandboxPolicy) -> tuple[str, ...]:
    """Private folders, covered even should one lie inside a folder the worker needs.

    The submission's root holds only system and Python folders (see jail.py), so these are
    normally absent from it anyway; this is the second line of defence.
    """
    paths = {
        str(Path.home()),
        str(REPO_ROOT),
        str(Path(request.path).resolve().parent),
        *request.private_paths,
        *(str(p) for p in policy.protect),
    }
    return tuple(sorted(str(Path(p).resolve()) for p in paths))


def worker_environment(compilation_cache: Path | None = None) -> dict[str, str]:
    """A minimal environment: nothing of the grader's own (tokens, keys) reaches the worker."""
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
            # Cache every program: most here compile in well under the 1 s default minimum.
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
            # Without this, keys include a path inside the cache folder, so a moved or copied
            # cache never hits (../shared/JAX-EXECUTION-NOTES.md, "Traps").
            "JAX_PERSISTENT_CACHE_ENABLE_XLA_CACHES": "none",
        }
    return env


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


class _PopenWorker:
    """A worker started as a new interpreter (through `unshare` for full isolation)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None and process.stderr is not None
        self.process = process
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
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.returncode = self.process.wait()

    def close(self) -> None:
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


class _ForkedWorker:
    """A worker forked from the zygote: the grader holds a pidfd and a status pipe."""

    def __init__(self, pid: int, stdout_fd: int, stderr_fd: int, status_fd: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdout_fd = stdout_fd
        self.stderr_fd = stderr_fd
        self.status_fd = status_fd
        try:
            self.pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:
            self.pidfd = None  # already gone: its status pipe says how

    def wait(self, timeout: float | None = None) -> int | None:
        if self.returncode is not None:
            return self.returncode
        ready, _, _ = select.select([self.status_fd], [], [], timeout)
        if not ready:
            return None
        data = b""
        while chunk := os.read(self.status_fd, 64):
            data += chunk
        try:
            self.returncode = int(data.split()[0])
        except (ValueError, IndexError):
            self.returncode = -signal.SIGKILL  # its parent was killed before it could tell
        return self.returncode

    def kill(self) -> None:
        # The forked parent dies; the worker (PID 1 of its namespace, PR_SET_PDEATHSIG) and
        # everything in that namespace die with it.
        if self.pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        # Its session (it called setsid) holds the worker too, whatever the worker's state.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.wait()

    def close(self) -> None:
        for fd in (self.stdout_fd, self.stderr_fd, self.status_fd):
            os.close(fd)
        if self.pidfd is not None:
            os.close(self.pidfd)


class ZygoteError(RuntimeError):
    """The zygote could not start or stopped answering."""


class _Zygote:
    """The client side of grader/zygote.py: hand it pipes, get a forked worker's pid."""

    def __init__(self, python: str, environment: dict[str, str]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.process = subprocess.Popen(
                [python, "-I", "-u", "-m", "grader.zygote", str(theirs.fileno())],
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

    def spawn(self, fds: list[int], *, full: bool, cwd: str) -> int:
        header = json.dumps({"full": full, "cwd": cwd}).encode()
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


class SubprocessRunner:
    """A fresh Python process per run, in its own session, confined as the policy says.

    `trusted=True` is for the reference: the same worker and JAX settings, no confinement.
    """

    def __init__(
        self,
        python: str | None = None,
        *,
        policy: SandboxPolicy | None = None,
        trusted: bool = False,
        compilation_cache: bool = True,
        preload: bool | None = None,
    ) -> None:
        self.python = python or sys.executable
        self.policy = policy or SandboxPolicy()
        self.trusted = trusted
        self.compilation_cache = compilation_cache
        # Submissions are forked from a zygote that has jax and flax imported already;
        # the reference (trusted, once per case set) starts a plain interpreter.
        self.preload = (not trusted) if preload is None else preload
        self._zygote: _Zygote | None = None
        self._zygote_failed = False
        self._zygote_lock = threading.Lock()

    def _zygote_for(self, environment: dict[str, str]) -> _Zygote | None:
        if not self.preload:
            return None
        with self._zygote_lock:
            if self._zygote is None and not self._zygote_failed:
                try:
                    self._zygote = _Zygote(self.python, environment)
                    weakref.finalize(self, self._zygote.close)
                except (OSError, ZygoteError):
                    self._zygote_failed = True  # fall back to a fresh interpreter per run
            return self._zygote

    def compilation_cache_for(self, isolation: Isolation) -> Path | None:
        """JAX's compilation cache, for the reference (which fills it) and for submissions
        that run as another user (who can only read it). A submission running as the
        grader's own user ('basic') could plant programs in it, so it gets none."""
        if not self.compilation_cache or isolation == "basic":
            return None
        return compilation_cache_dir()

    def isolation(self) -> Isolation:
        """The isolation this runner gives, or SandboxUnavailable if the policy cannot be met."""
        if self.trusted:
            return "none"
        if self.policy.isolation == "basic" and not self.policy.require_full:
            return "basic"
        problem = full_isolation_problem()
        if problem is None:
            return "full"
        if self.policy.require_full or self.policy.isolation == "full":
            raise SandboxUnavailable(
                f"full isolation was required but is not available: {problem}. Run the grader "
                f"as root on Linux (as CI runners and course servers do), or drop "
                f"--require-sandbox to grade with resource limits only."
            )
        return "basic"

    def confinement(
        self,
        request: RunRequest,
        limits: Limits,
        isolation: Isolation,
        extra_visible: tuple[str, ...] = (),
    ) -> Confinement | None:
        """The limits and isolation the worker applies to itself before loading the file."""
        if isolation == "none":
            return None
        uid = self.policy.uid
        if uid is None:
            uid = RUN_UID_BASE + (os.getpid() % 1_000_000) * 100 + next(_run_counter) % 100
        return Confinement(
            isolation=isolation,
            uid=uid,
            gid=uid,
            root="",  # set for each attempt: a fresh empty folder
            hide=hidden_paths(request, self.policy) if isolation == "full" else (),
            expose=(*visible_paths(), *extra_visible) if isolation == "full" else (),
            memory_bytes=limits.memory_mb * 1024 * 1024,
            # A backstop: wall-clock limits stop a run first, but XLA compiles on every core.
            cpu_seconds=int(2 * limits.total_seconds) + 10,
            file_bytes=16 * 1024 * 1024,
            open_files=1024,
            processes=512,
            tmp_bytes=64 * 1024 * 1024,
        )

    def run(self, request: RunRequest, limits: Limits) -> RunResult:
        started = time.monotonic()
        deadline = started + limits.total_seconds
        isolation = self.isolation()
        cache = self.compilation_cache_for(isolation)
        visible = (str(cache),) if cache else ()
        request = request.model_copy(
            update={"confinement": self.confinement(request, limits, isolation, visible)}
        )
        environment = worker_environment(cache)
        result = RunResult(isolation=isolation)
        stdout, stderr = Tail(), Tail()
        remaining = list(request.cases)
        restarts = 0
        while remaining:
            attempt = self._attempt(
                request.model_copy(update={"cases": tuple(remaining)}),
                environment,
                limits,
                deadline,
                stdout,
                stderr,
            )
            result.outcomes.update(attempt.outcomes)
            if attempt.load_failure is not None:
                result.load_failure = attempt.load_failure
                break
            if attempt.done:
                result.peak_rss_kib = attempt.peak_rss_kib
                break
            if attempt.current is None:
                # The process ended or ran out of time before it ran a case.
                status = {
                    CaseReason.TIMEOUT: Status.TIMEOUT,
                    CaseReason.MEMORY_EXCEEDED: Status.MEMORY_EXCEEDED,
                }.get(attempt.stopped or CaseReason.CRASHED, Status.CRASHED)
                result.load_failure = LoadFailure(status, attempt.detail)
                result.total_timeout = status is Status.TIMEOUT
                break
            reason = attempt.stopped or CaseReason.CRASHED
            result.outcomes[attempt.current] = CaseFailure(attempt.current, reason, attempt.detail)
            remaining = [case for case in remaining if case.index not in result.outcomes]
            if time.monotonic() >= deadline:
                result.total_timeout = True
                self._not_run(result, remaining, "the total time limit ran out first")
                break
            restarts += 1
            if remaining and restarts > limits.max_restarts:
                why = f"the process had to be restarted {limits.max_restarts} times already"
                self._not_run(result, remaining, why)
                break
        result.stdout, result.stderr = stdout.text(), stderr.text()
        result.seconds = time.monotonic() - started
        return result

    @staticmethod
    def _not_run(result: RunResult, cases: list[Case], why: str) -> None:
        for case in cases:
            result.outcomes[case.index] = CaseFailure(
                case.index, CaseReason.NOT_RUN, f"Not run: {why}."
            )

    def _attempt(
        self,
        request: RunRequest,
        environment: dict[str, str],
        limits: Limits,
        deadline: float,
        stdout: Tail,
        stderr: Tail,
    ) -> _Attempt:
        attempt = _Attempt()
        workdir = tempfile.mkdtemp(prefix="grader-run-")
        if request.confinement is not None:
            confinement = request.confinement.model_copy(update={"root": workdir})
            request = request.model_copy(update={"confinement": confinement})
        request_read, request_write = os.pipe()
        result_read, result_write = os.pipe()
        full = request.confinement is not None and request.confinement.isolation == "full"
        try:
            process = self._start(environment, workdir, full, request_read, result_write)
        except BaseException:
            for fd in (request_read, request_write, result_read, result_write):
                os.close(fd)
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        os.close(request_read)
        os.close(result_write)
        try:
            with os.fdopen(request_write, "wb") as pipe, contextlib.suppress(BrokenPipeError):
                pipe.write(request.model_dump_json().encode())
            self._watch(process, result_read, limits, deadline, stdout, stderr, attempt)
        finally:
            process.kill()
            os.close(result_read)
            process.close()
            shutil.rmtree(workdir, ignore_errors=True)
        if not attempt.done and attempt.load_failure is None and attempt.stopped is None:
            attempt.stopped, attempt.detail = _classify_exit(
                process.returncode, attempt, stderr.text()[-4096:], limits
            )
        return attempt

    def _start(
        self,
        environment: dict[str, str],
        workdir: str,
        full: bool,
        request_fd: int,
        result_fd: int,
    ) -> WorkerProcess:
        """Fork the worker from the zygote, or start a new interpreter if there is none."""
        zygote = self._zygote_for(environment)
        if zygote is not None:
            pipes = [os.pipe() for _ in range(3)]  # stdout, stderr, status
            try:
                pid = zygote.spawn(
                    [pipes[0][1], pipes[1][1], request_fd, result_fd, pipes[2][1]],
                    full=full,
                    cwd=workdir,
                )
            except ZygoteError:
                for read, write in pipes:
                    os.close(read)
                    os.close(write)
                with self._zygote_lock:
                    self._zygote_failed = True
                    self._zygote = None
                zygote.close()
            else:
                for _, write in pipes:
                    os.close(write)
                return _ForkedWorker(pid, pipes[0][0], pipes[1][0], pipes[2][0])
        prefix = [shutil.which("unshare") or "unshare", *UNSHARE_FLAGS, "--"] if full else []
        command = [*prefix, self.python, "-I", "-u", "-m", "grader.worker"]
        return _PopenWorker(
            subprocess.Popen(
                [*command, str(request_fd), str(result_fd)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(request_fd, result_fd),
                cwd=workdir,
                env=environment,
                start_new_session=True,
            )
        )

    def _watch(
        self,
        process: WorkerProcess,
        result_fd: int,
        limits: Limits,
        deadline: float,
        stdout: Tail,
        stderr: Tail,
        attempt: _Attempt,
    ) -> None:
        """Read all three pipes until the worker is done, dies, or runs out of time."""
        selector = selectors.DefaultSelector()
        tails = {process.stdout_fd: stdout, process.stderr_fd: stderr}
        for fd in tails:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        os.set_blocking(result_fd, False)
        selector.register(result_fd, selectors.EVENT_READ)
        pending = bytearray()
        case_deadline: float | None = None
        try:
            while not attempt.done and attempt.load_failure is None:
                now = time.monotonic()
                limit = min(deadline, case_deadline) if case_deadline else deadline
                if now >= limit:
                    self._time_out(
                        attempt, limits, case_deadline is not None and limit == case_deadline
                    )
                    return
                events = selector.select(timeout=limit - now)
                for key, _ in events:
                    fd = int(key.fd)
                    try:
                        data = os.read(fd, READ_CHUNK)
                    except BlockingIOError:
                        continue
                    if fd in tails:
                        if data:
                            tails[fd].add(data)
                        else:
                            selector.unregister(fd)
                        continue
                    if not data:
                        # The worker closed its channel: it is ending. Let it, so that its
                        # exit code is its own and not our SIGKILL.
                        process.wait(timeout=2)
                        return
                    pending += data
                    while b"\n" in pending:
                        line, _, rest = pending.partition(b"\n")
                        pending = bytearray(rest)
                        if not self._receive(bytes(line), attempt, limits):
                            return
                        if attempt.current is not None:
                            case_deadline = time.monotonic() + limits.case_seconds
                        else:
                            case_deadline = None
                    if len(pending) > MESSAGE_BYTES:
                        self._protocol_error(attempt, "an over-long message")
                        return
        finally:
            process.kill()
            _drain(selector, tails)
            selector.close()

    @staticmethod
    def _receive(line: bytes, attempt: _Attempt, limits: Limits) -> bool:
        """Apply one message; False if it breaks the protocol."""
        try:
            message = _messages.validate_python(json.loads(line))
        except (ValueError, ValidationError):
            SubprocessRunner._protocol_error(attempt, "a malformed message")
            return False
        if isinstance(message, LoadedMessage):
            attempt.loaded = True
        elif isinstance(message, LoadFailedMessage):
            attempt.load_failure = LoadFailure(
                Status(message.status), message.message, message.error
            )
        elif isinstance(message, StartMessage):
            if not attempt.loaded:
                SubprocessRunner._protocol_error(attempt, "a case before loading finished")
                return False
            attempt.current = message.index
        elif isinstance(message, OutcomeMessage):
            if message.outcome.index != attempt.current:
                SubprocessRunner._protocol_error(attempt, "an outcome for a case not started")
                return False
            attempt.outcomes[message.outcome.index] = message.outcome
            attempt.current = None
        elif isinstance(message, DoneMessage):
            attempt.done = True
            attempt.peak_rss_kib = message.peak_rss_kib
        elif isinstance(message, SandboxFailedMessage):
            raise SandboxUnavailable(f"the sandbox could not be set up: {message.message}")
        return True

    @staticmethod
    def _protocol_error(attempt: _Attempt, what: str) -> None:
        attempt.stopped = CaseReason.CRASHED
        attempt.detail = (
            f"The grader received {what} from the process running your code. Something in it "
            f"wrote to the grader's private channel; grading of this case stopped."
        )

    @staticmethod
    def _time_out(attempt: _Attempt, limits: Limits, case_limit: bool) -> None:
        attempt.stopped = CaseReason.TIMEOUT
        if case_limit:
            attempt.detail = (
                f"This case took longer than {limits.case_seconds:g} s and was stopped. "
                f"Look for an endless loop or a very slow step."
            )
        elif attempt.loaded:
            attempt.detail = (
                f"Grading stopped after {limits.total_seconds:g} s, the limit for all cases "
                f"together."
            )
        else:
            attempt.detail = (
                f"Your file did not finish loading within {limits.total_seconds:g} s. "
                f"Code at the top level runs when the file is imported: look for a loop, a "
                f"sleep or heavy work outside your function."
            )


def _drain(selector: selectors.BaseSelector, tails: dict[int, Tail], grace: float = 0.5) -> None:
    """Keep what is still buffered in stdout/stderr, without waiting on stray holders."""
    end = time.monotonic() + grace
    while selector.get_map() and (left := end - time.monotonic()) > 0:
        fds = [fd for fd in tails if fd in selector.get_map()]
        if not fds:
            return
        for key, _ in selector.select(timeout=left):
            fd = int(key.fd)
            if fd not in tails:
                selector.unregister(fd)
                continue
            try:
                data = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                continue
            if data:
                tails[fd].add(data)
            else:
                selector.unregister(fd)


def _classify_exit(
    returncode: int | None, attempt: _Attempt, stderr_tail: str, limits: Limits
) -> tuple[CaseReason, str]:
    """Why the worker ended without finishing, and a sentence a student can act on."""
    where = "during this case" if attempt.current is not None else "while loading your file"
    if returncode == -signal.SIGXCPU:
        return CaseReason.TIMEOUT, (
            f"Your code used up its CPU time {where} and was stopped. Look for an endless "
            f"loop or a very slow step."
        )
    if any(marker in stderr_tail for marker in MEMORY_MARKERS):
        return CaseReason.MEMORY_EXCEEDED, (
            f"Your code ran out of memory {where} (the limit is {limits.memory_mb} MiB). "
            f"Look for an array or a list that grows without bound."
        )
    if returncode is None:
        return CaseReason.CRASHED, f"The process running your code stopped {where}."
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return CaseReason.CRASHED, f"The process running your code was killed by {name} {where}."
    return CaseReason.CRASHED, (
        f"The process running your code exited with code {returncode} {where}, before "
        f"returning a result. Do not call exit() or os._exit() in a submission."
    )

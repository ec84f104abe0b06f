"""Running a submission: attempts and restarts, the selector loop, exit classification.

A `SubprocessRunner` takes a `RunRequest` (file, function, cases) and returns a `RunResult`:
either why the file could not be loaded, or an outcome for every case. Each run gets, from the
trusted side: a uid no other live run holds (full isolation), a cgroup bounding the memory and
processes of all its processes together (where one can be made), and a worker started by a
`Launcher`. When the run ends, for any reason, every process it created is killed before the
result is returned.

The worker talks over a pipe of its own (not stdout), one JSON object per line, checked by
`protocol.Receiver`. Its stdout and stderr are read at the same time in one selector loop, and
only a bounded tail of each is kept, so a flood of output neither fills memory nor blocks it.
Statuses come from facts the trusted side observes (signals, the cgroup's OOM counter, the
protocol's state), never from what the submission prints.
"""

from __future__ import annotations

import contextlib
import functools
import os
import selectors
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from grader.cache import compilation_cache_dir
from grader.errors import SandboxUnavailable
from grader.models import (
    Case,
    CaseOutcome,
    CaseReason,
    Confinement,
    Isolation,
    Limits,
    RunRequest,
    Status,
)
from grader.models.status import headline_status
from grader.run import cgroup as cgroups
from grader.run.cputime import CpuMeter, tree_pids
from grader.run.launch import (
    KILL_UID_WAIT,
    InterpreterLauncher,
    Launcher,
    LaunchError,
    WorkerProcess,
    ZygoteLauncher,
    kill_uid,
)
from grader.run.linux import PR_SET_DUMPABLE, prctl
from grader.run.policy import (
    SandboxPolicy,
    full_isolation_problem,
    hidden_paths,
    run_uid_available,
    uid_pool,
    visible_paths,
    worker_environment,
)
from grader.run.protocol import (
    MESSAGE_BYTES,
    LoadFailure,
    ProtocolViolation,
    Receiver,
    SandboxSetupFailed,
)

OUTPUT_TAIL_BYTES = 64 * 1024  # of stdout and of stderr, each
READ_CHUNK = 64 * 1024
OOM_POLL = 0.2  # seconds between looks at the cgroup's OOM counter
CPU_POLL = 0.1  # seconds between readings of the run's CPU time
PROCESSES = 512  # of a run, all together (pids.max), and RLIMIT_NPROC of its uid

RunLimits = Literal["cgroup", "per_process", "none"]


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
    run_limits: RunLimits = "none"
    peak_rss_kib: int | None = None
    x64_enabled: bool | None = None  # the submission's claim, for a hint only
    cpu_seconds: float | None = None  # of all its processes, as /proc says; None: unknown
    own_uid: bool = False  # it ran under an unprivileged uid of its own


class Runner(Protocol):
    """Runs a request's cases in a process other than the grader's."""

    def isolation(self) -> Isolation:
        """The isolation runs get; raises SandboxUnavailable if what is required cannot be had."""
        ...

    def run(self, request: RunRequest, limits: Limits) -> RunResult:
        """Load the file, run every case, and say what happened."""
        ...

    def cancel(self) -> None:
        """Stop every run in progress and refuse new ones (they raise Cancelled)."""
        ...


class Cancelled(Exception):
    """The run was stopped because staff interrupted the grading (Ctrl-C): no verdict."""


CANCEL_POLL = 0.25  # seconds between looks at the cancel flag while a run waits


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


class _Clock:
    """What a run's time limits count, across its attempts: CPU time measured from /proc
    (grader/run/cputime.py), with a wall-clock backstop `wall_factor` times larger; wall-clock
    time alone where CPU time cannot be read."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.started = time.monotonic()
        self.cpu_before = 0.0  # of the attempts that ended
        self.meter: CpuMeter | None = None

    def attempt_cpu(self) -> float | None:
        return self.meter.read() if self.meter is not None else None

    def end_attempt(self) -> None:
        used = self.meter.read(fresh=True) if self.meter is not None else None
        if used is not None:
            self.cpu_before += used
        self.meter = None

    def used(self) -> float:
        """Seconds counted against the total limit so far."""
        cpu = self.attempt_cpu()
        if cpu is None and self.cpu_before == 0.0:
            return time.monotonic() - self.started
        return self.cpu_before + (cpu or 0.0)

    def total_over(self) -> str | None:
        """'cpu' or 'wall' when the total limit is reached, else None."""
        if time.monotonic() - self.started >= self.limits.wall_factor * self.limits.total_seconds:
            return "wall"
        return "cpu" if self.used() >= self.limits.total_seconds else None


class _CaseFeed:
    """Writes a worker its cases one at a time: the first once the file has loaded, the next
    only after the last one's outcome, then the end of the stream. Whatever the submission
    says about a case (its outcome, an exception's message) is thus written before it could
    hold the inputs of any later case; with the visible cases first (`grading.request_for`),
    a visible case's text cannot carry a hidden case's inputs.

    Writes never block the grader: a submission that stops reading leaves the rest queued
    here until its time runs out."""

    def __init__(self, fd: int, cases: Sequence[Case], receiver: Receiver) -> None:
        self.fd = fd
        self.cases = list(cases)
        self.receiver = receiver
        self.queued = bytearray()
        self.sent = 0
        os.set_blocking(fd, False)

    def pump(self) -> None:
        """Queue what the worker may have now, write what the pipe takes."""
        receiver = self.receiver
        if self.fd < 0:
            return
        if receiver.loaded and not receiver.finished and receiver.current is None:
            while self.sent < len(self.cases) and self.sent <= len(receiver.outcomes):
                case = self.cases[self.sent]
                receiver.sent.add(case.index)
                self.queued += case.model_dump_json().encode() + b"\n"
                self.sent += 1
        try:
            while self.queued:
                written = os.write(self.fd, self.queued)
                del self.queued[:written]
        except BlockingIOError:
            return
        except OSError:  # the worker is gone or closed its end: nothing more to say
            self.close()
            return
        if self.sent == len(self.cases) and receiver.loaded:
            self.close()  # the end of the stream: the worker sends `done`

    @property
    def open_case(self) -> int | None:
        """The case written last, while its outcome has not come back: the case the worker
        runs, whatever it says (its `start` is its own to send late, or never)."""
        if not self.sent:
            return None
        index = self.cases[self.sent - 1].index
        return None if index in self.receiver.outcomes else index

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclass
class _Attempt:
    """One worker process's life: what it said, and why it ended early if it did."""

    receiver: Receiver
    feed: _CaseFeed | None = None
    group: cgroups.RunCgroup | None = None
    oom_before: int = 0  # the cgroup's OOM kills before this attempt
    stopped: CaseReason | None = None
    detail: str = ""

    def oom_killed(self) -> bool:
        return self.group is not None and self.group.oom_kills() > self.oom_before


class SubprocessRunner:
    """A worker process per run, confined as the policy says.

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
        launcher: Launcher | None = None,
    ) -> None:
        self.python = python or sys.executable
        self.policy = policy or SandboxPolicy()
        self.trusted = trusted
        self.compilation_cache = compilation_cache
        # Submissions are forked from a zygote that has jax and flax imported already;
        # the reference (trusted, once per case set) starts a plain interpreter.
        preload = (not trusted) if preload is None else preload
        if launcher is None:
            launcher = ZygoteLauncher(self.python) if preload else InterpreterLauncher(self.python)
        self.launcher = launcher
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    def close(self) -> None:
        self.launcher.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

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
        *,
        uid: int,
        run_limits: RunLimits,
        extra_visible: tuple[str, ...] = (),
        own_uid: bool | None = None,
        cpu_accounted: bool = False,
    ) -> Confinement | None:
        """The limits and isolation the worker applies to itself before loading the file."""
        if isolation == "none":
            return None
        memory = limits.memory_mb * 1024 * 1024
        return Confinement(
            isolation=isolation,
            own_uid=isolation == "full" if own_uid is None else own_uid,
            uid=uid,
            gid=uid,
            root="",  # set for each attempt: a fresh empty folder
            hide=hidden_paths(request, self.policy) if isolation == "full" else (),
            expose=(*visible_paths(), *extra_visible) if isolation == "full" else (),
            # With a cgroup, it bounds the run's real memory and the address-space limit is
            # only a backstop (JAX reserves far more address space than it uses); without
            # one, the address space of each process is all that can be bounded.
            memory_bytes=2 * memory if run_limits == "cgroup" else memory,
            # A backstop: wall-clock limits stop a run first, but XLA compiles on every core.
            cpu_seconds=int(2 * limits.total_seconds) + 10,
            file_bytes=16 * 1024 * 1024,
            open_files=1024,
            processes=PROCESSES,
            tmp_bytes=64 * 1024 * 1024,
            refuse_sigchld_changes=not cpu_accounted,
        )

    def run(self, request: RunRequest, limits: Limits) -> RunResult:
        if self._cancelled.is_set():
            raise Cancelled("grading was interrupted")
        started = time.monotonic()
        isolation = self.isolation()
        if isolation == "basic":
            _hide_own_process()
        group = None
        if isolation != "none" and cgroups.unavailable() is None:
            try:
                group = cgroups.RunCgroup.create(limits.memory_mb * 1024 * 1024, PROCESSES)
            except OSError:
                group = None
        run_limits: RunLimits = (
            "none" if isolation == "none" else ("cgroup" if group is not None else "per_process")
        )
        # Full isolation always switches to an unprivileged uid; basic isolation does too
        # where the grader is root (Gradescope's and Docker's containers have no namespaces).
        own_uid = isolation == "full" or (isolation == "basic" and run_uid_available())
        uid = self.policy.uid if own_uid else None
        pooled = own_uid and uid is None
        if pooled:
            try:
                uid = uid_pool.acquire()
            except (OSError, RuntimeError):
                if isolation == "full":
                    raise
                # Basic isolation is no worse than before without one: the grader's own uid
                # (the report says so).
                own_uid = pooled = False
        ended = False
        try:
            result = self._run(
                request, limits, isolation, uid or 0, group, run_limits, own_uid=own_uid
            )
        finally:
            if group is not None:
                group.kill()
                group.remove()
            # Whatever left the run's process group and session (setsid, a double fork) and
            # has no cgroup or PID namespace to be found by is found by its uid.
            # (Only a uid of the pool or of basic isolation: a uid staff chose for full
            # isolation may be shared with other programs, and nothing leaves a namespace.)
            killable = own_uid and (pooled or isolation == "basic")
            ended = uid is None or not killable or kill_uid(uid, self.python)
            if pooled and uid is not None and ended:
                uid_pool.release(uid)  # an unkillable process keeps its uid out of the pool
        if not ended:
            raise SandboxUnavailable(
                f"processes of the submission's uid {uid} could not be killed within "
                f"{KILL_UID_WAIT:g} s; its verdict is not written while they may still run."
            )
        result.own_uid = own_uid
        result.seconds = time.monotonic() - started
        return result

    def _run(
        self,
        request: RunRequest,
        limits: Limits,
        isolation: Isolation,
        uid: int,
        group: cgroups.RunCgroup | None,
        run_limits: RunLimits,
        *,
        own_uid: bool,
    ) -> RunResult:
        clock = _Clock(limits)
        cache = self.compilation_cache_for(isolation)
        visible = (str(cache),) if cache else ()
        confinement = self.confinement(
            request,
            limits,
            isolation,
            uid=uid,
            run_limits=run_limits,
            extra_visible=visible,
            own_uid=own_uid,
            cpu_accounted=group is not None and group.cpu_seconds() is not None,
        )
        request = request.model_copy(update={"confinement": confinement})
        environment = worker_environment(cache, writes_cache=self.trusted)
        result = RunResult(isolation=isolation, run_limits=run_limits)
        stdout, stderr = Tail(), Tail()
        remaining = list(request.cases)
        restarts = 0
        while remaining:
            attempt = self._attempt(
                request.model_copy(update={"cases": tuple(remaining)}),
                environment,
                limits,
                clock,
                stdout,
                stderr,
                group,
            )
            receiver = attempt.receiver
            result.outcomes.update(receiver.outcomes)
            if receiver.load_failure is not None:
                result.load_failure = receiver.load_failure
                break
            if receiver.done:
                result.peak_rss_kib = receiver.peak_rss_kib
                result.x64_enabled = receiver.x64_enabled
                break
            current = receiver.current
            if current is None and attempt.feed is not None:
                current = attempt.feed.open_case
            if current is None:
                # The process ended or ran out of time before it ran a case.
                status = headline_status([attempt.stopped or CaseReason.CRASHED])
                result.load_failure = LoadFailure(status, attempt.detail)
                result.total_timeout = status is Status.TIMEOUT
                break
            reason = attempt.stopped or CaseReason.CRASHED
            result.outcomes[current] = CaseFailure(current, reason, attempt.detail)
            remaining = [case for case in remaining if case.index not in result.outcomes]
            if clock.total_over() is not None:
                result.total_timeout = True
                self._not_run(result, remaining, "the total time limit ran out first")
                break
            restarts += 1
            if own_uid and isolation == "basic":
                # A process the last attempt left behind (setsid, a double fork) would work for
                # the next one outside its process tree, its CPU time counted nowhere.
                kill_uid(uid, self.python)
            if remaining and restarts > limits.max_restarts:
                why = f"the process had to be restarted {limits.max_restarts} times already"
                self._not_run(result, remaining, why)
                break
        result.stdout, result.stderr = stdout.text(), stderr.text()
        result.cpu_seconds = clock.cpu_before if clock.cpu_before > 0 else None
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
        clock: _Clock,
        stdout: Tail,
        stderr: Tail,
        group: cgroups.RunCgroup | None,
    ) -> _Attempt:
        attempt = _Attempt(
            Receiver.for_cases((case.index for case in request.cases), trusted=self.trusted),
            group=group,
            oom_before=group.oom_kills() if group is not None else 0,
        )
        workdir = tempfile.mkdtemp(prefix="grader-run-")
        if request.confinement is not None:
            confinement = request.confinement.model_copy(update={"root": workdir})
            request = request.model_copy(update={"confinement": confinement})
        request_read, request_write = os.pipe()
        result_read, result_write = os.pipe()
        full = request.confinement is not None and request.confinement.isolation == "full"
        # The cgroup's CPU usage is cumulative over the run's attempts: this attempt's is what
        # it adds from here (None: the cgroup does not account for CPU, /proc is read).
        usage_before = group.cpu_seconds() if group is not None else None
        try:
            process = self.launcher.start(
                environment,
                workdir,
                full=full,
                request_fd=request_read,
                result_fd=result_write,
                cgroup=group,
            )
        except BaseException as exc:
            for fd in (request_read, request_write, result_read, result_write):
                os.close(fd)
            shutil.rmtree(workdir, ignore_errors=True)
            if isinstance(exc, LaunchError):
                raise SandboxUnavailable(str(exc)) from exc
            raise
        os.close(request_read)
        os.close(result_write)
        accounted = None
        if group is not None and usage_before is not None:
            accounted = functools.partial(_cgroup_cpu, group, usage_before)
        clock.meter = CpuMeter(
            functools.partial(_run_pids, process.pid, group), accounted=accounted
        )
        header = request.model_copy(update={"cases": ()}).model_dump_json().encode() + b"\n"
        try:
            with contextlib.suppress(BrokenPipeError):
                # Blocking, as the worker reads it first of all (a notebook's cell table can
                # be larger than the pipe holds).
                while header:
                    header = header[os.write(request_write, header) :]
            attempt.feed = _CaseFeed(request_write, request.cases, attempt.receiver)
            self._watch(process, result_read, limits, clock, stdout, stderr, attempt)
        finally:
            if attempt.feed is not None:
                attempt.feed.close()
            else:
                os.close(request_write)
            clock.end_attempt()  # read before the kill: a killed process leaves /proc
            process.kill()
            if group is not None:
                group.kill()  # whatever escaped the namespace's end, if anything could
            os.close(result_read)
            process.close()
            shutil.rmtree(workdir, ignore_errors=True)
        receiver = attempt.receiver
        if attempt.oom_killed() and not receiver.finished:
            attempt.stopped, attempt.detail = _out_of_memory(receiver, limits)
        elif not receiver.finished and attempt.stopped is None:
            attempt.stopped, attempt.detail = _classify_exit(process.returncode, receiver, limits)
        return attempt

    def _watch(
        self,
        process: WorkerProcess,
        result_fd: int,
        limits: Limits,
        clock: _Clock,
        stdout: Tail,
        stderr: Tail,
        attempt: _Attempt,
    ) -> None:
        """Read all three pipes until the worker is done, dies, or runs out of time (CPU time
        of the case or of the run, or the wall-clock backstop of either)."""
        receiver = attempt.receiver
        selector = selectors.DefaultSelector()
        tails = {process.stdout_fd: stdout, process.stderr_fd: stderr}
        for fd in tails:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        os.set_blocking(result_fd, False)
        selector.register(result_fd, selectors.EVENT_READ)
        pending = bytearray()
        # The open case's index, and wall and CPU time when it was written to the worker.
        case_started: tuple[int, float, float | None] | None = None
        next_oom_check = 0.0
        try:
            while not receiver.finished:
                now = time.monotonic()
                over = clock.total_over()
                if over is not None:
                    self._time_out(attempt, limits, case_limit=False, wall=over == "wall")
                    return
                if case_started is not None:
                    _, wall_start, cpu_start = case_started
                    cpu = clock.attempt_cpu()
                    if now - wall_start >= limits.wall_factor * limits.case_seconds:
                        self._time_out(attempt, limits, case_limit=True, wall=True)
                        return
                    used = now - wall_start if cpu is None else cpu - (cpu_start or 0.0)
                    if used >= limits.case_seconds:
                        self._time_out(attempt, limits, case_limit=True, wall=False)
                        return
                if now >= next_oom_check:
                    if attempt.oom_killed():
                        return  # the kernel killed one of its processes: the run is over
                    next_oom_check = now + OOM_POLL
                if self._cancelled.is_set():
                    raise Cancelled("grading was interrupted")  # the finally kills the run
                case_started = self._pump(attempt, clock, case_started)
                events = selector.select(timeout=CPU_POLL)
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
                    while b"\n" in pending and not receiver.finished:
                        line, _, rest = pending.partition(b"\n")
                        pending = bytearray(rest)
                        if not self._receive(bytes(line), attempt):
                            return
                        case_started = self._pump(attempt, clock, case_started)
                    if len(pending) > MESSAGE_BYTES:
                        self._protocol_error(attempt, "an over-long message")
                        return
        finally:
            process.kill()
            _drain(selector, tails)
            selector.close()

    @staticmethod
    def _pump(
        attempt: _Attempt, clock: _Clock, started: tuple[int, float, float | None] | None
    ) -> tuple[int, float, float | None] | None:
        """Write the worker what it may have; a case's time runs from when it was written
        (not from the worker's `start`, which the submission could hold back) to its
        outcome."""
        if attempt.feed is None:
            return started
        attempt.feed.pump()
        case = attempt.feed.open_case
        if case is None:
            return None
        if started is not None and started[0] == case:
            return started
        return (case, time.monotonic(), clock.attempt_cpu())

    @staticmethod
    def _receive(line: bytes, attempt: _Attempt) -> bool:
        """Apply one message; False if it breaks the protocol (the run then ends)."""
        try:
            attempt.receiver.feed(line)
        except SandboxSetupFailed as exc:
            # Sent before `confined`, when no student code had run: the grader's set-up.
            raise SandboxUnavailable(f"the sandbox could not be set up: {exc}") from None
        except ProtocolViolation as exc:
            SubprocessRunner._protocol_error(attempt, str(exc))
            return False
        except Exception:  # nothing a submission sends may stop the grader
            SubprocessRunner._protocol_error(attempt, "a message that could not be read")
            return False
        return True

    @staticmethod
    def _protocol_error(attempt: _Attempt, what: str) -> None:
        attempt.stopped = CaseReason.CRASHED
        attempt.detail = (
            f"The grader received {what} from the process running your code. Something in it "
            f"wrote to the grader's private channel; grading of this case stopped."
        )

    @staticmethod
    def _time_out(attempt: _Attempt, limits: Limits, *, case_limit: bool, wall: bool) -> None:
        attempt.stopped = CaseReason.TIMEOUT
        seconds = limits.case_seconds if case_limit else limits.total_seconds
        if wall:
            # Waiting, not computing: the CPU limit was never reached.
            spent = (
                f"{limits.wall_factor * seconds:g} s of waiting (wall-clock time, while using "
                f"less than {seconds:g} s of CPU time)"
            )
            look = "Look for a sleep, an input() or a wait that never ends."
        else:
            spent = f"{seconds:g} s of CPU time"
            look = "Look for an endless loop or a very slow step."
        if case_limit:
            attempt.detail = f"This case was stopped after {spent}. {look}"
        elif attempt.receiver.loaded:
            attempt.detail = (
                f"Grading stopped after {spent}, the limit for loading your file and running "
                f"all cases together. {look}"
            )
        else:
            attempt.detail = (
                f"Your file did not finish loading within {spent}. Code at the top level runs "
                f"when the file is imported: look for a loop, a sleep or heavy work outside "
                f"your function."
            )


def _run_pids(worker: int, group: cgroups.RunCgroup | None) -> set[int]:
    """Every process of a run: its cgroup's (if any) and the worker's tree."""
    found = set(tree_pids(worker))
    if group is not None:
        found.update(group.pids())
    return found


def _cgroup_cpu(group: cgroups.RunCgroup, before: float) -> float | None:
    """CPU seconds the run's cgroup accounted since `before` (every process, reaped or not)."""
    usage = group.cpu_seconds()
    return None if usage is None else max(0.0, usage - before)


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


def _hide_own_process() -> None:
    """Make the grader's /proc entries (environ, memory) unreadable to its own user's other
    processes, which is what a submission is under basic isolation. Ancestors (the shell that
    started the grader) stay readable: docs/sandbox.md says so."""
    prctl(PR_SET_DUMPABLE, 0)


def _where(receiver: Receiver) -> str:
    running = receiver.current is not None or bool(receiver.sent - set(receiver.outcomes))
    return "during this case" if running else "while loading your file"


def _out_of_memory(receiver: Receiver, limits: Limits) -> tuple[CaseReason, str]:
    return CaseReason.MEMORY_EXCEEDED, (
        f"Your code ran out of memory {_where(receiver)} (the limit is {limits.memory_mb} MiB "
        f"for all its processes together) and was stopped. Look for an array or a list that "
        f"grows without bound."
    )


def _classify_exit(
    returncode: int | None, receiver: Receiver, limits: Limits
) -> tuple[CaseReason, str]:
    """Why the worker ended without finishing, from its exit status alone."""
    where = _where(receiver)
    if returncode == -signal.SIGXCPU:
        return CaseReason.TIMEOUT, (
            f"Your code used up its CPU time {where} and was stopped. Look for an endless "
            f"loop or a very slow step."
        )
    if returncode is None:
        return CaseReason.CRASHED, f"The process running your code stopped {where}."
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        text = f"The process running your code was killed by {name} {where}."
        if returncode == -signal.SIGABRT:
            # What a C++ allocation failure under the address-space limit looks like.
            text += (
                f" Libraries abort like this when memory runs out (the limit is "
                f"{limits.memory_mb} MiB): look for an array that grows without bound."
            )
        return CaseReason.CRASHED, text
    return CaseReason.CRASHED, (
        f"The process running your code exited with code {returncode} {where}, before "
        f"returning a result. Do not call exit() or os._exit() in a submission."
    )

"""Time limits count the CPU time a run used, so a busy machine times out no correct student;
a wall-clock backstop several times larger still stops a run that only waits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SUBMISSIONS, TOY
from fakes import reference, sandboxed

from grader.grading import grade
from grader.models import CaseReason, Limits, Report, Status
from grader.problems import Problem
from grader.run import SubprocessRunner
from grader.run import cgroup as cgroups
from grader.run.cputime import CpuMeter, tree_pids
from grader.run.policy import SandboxPolicy

GRADER = [sys.executable, "-m", "grader"]


def test_cpu_meter_counts_computing_not_waiting() -> None:
    spin = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass"
    busy = subprocess.Popen([sys.executable, "-c", spin])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.8)"])
    busy_meter = CpuMeter(lambda: tree_pids(busy.pid), interval=0)
    idle_meter = CpuMeter(lambda: tree_pids(idle.pid), interval=0)
    readings: list[tuple[float | None, float | None]] = []
    while busy.poll() is None or idle.poll() is None:
        readings.append((busy_meter.read(), idle_meter.read()))
        time.sleep(0.02)
    busy_cpu = max(r[0] or 0.0 for r in readings)
    idle_cpu = max(r[1] or 0.0 for r in readings)
    assert busy_cpu >= 0.4
    assert idle_cpu < 0.2
    assert [r[0] for r in readings if r[0] is not None] == sorted(
        r[0] for r in readings if r[0] is not None
    )


def toy_submission(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "submission.py"
    path.write_text(body + (TOY / "submissions" / "correct.py").read_text())
    return path


def test_a_submission_that_waits_is_stopped_by_the_wall_clock_backstop(
    tmp_path: Path, toy: Problem
) -> None:
    path = toy_submission(tmp_path, "import time\ntime.sleep(30)\n")
    limits = Limits(case_seconds=1, total_seconds=2, wall_factor=3, max_restarts=0)
    started = time.monotonic()
    report = sandboxed(path, toy, seed=1, limits=limits)
    assert report.status is Status.TIMEOUT
    assert "within 6 s of waiting (wall-clock time" in report.message
    assert "sleep" in report.message
    assert time.monotonic() - started < 6 + 10


def test_a_slow_case_is_judged_by_cpu_time_not_by_waiting(tmp_path: Path, toy: Problem) -> None:
    # Each call waits 1.2 s, more than the 1 s limit, but computes almost nothing: it passes.
    # The same limit stops a call that computes for longer, in CPU seconds.
    waits = tmp_path / "waits.py"
    waits.write_text(
        "import time\n\n\ndef vector_stats(x, k):\n"
        "    time.sleep(1.2)\n"
        "    return [len(x), sum(v * k for v in x), max(abs(v) for v in x)]\n"
    )
    limits = Limits(case_seconds=1, total_seconds=10, wall_factor=3, max_restarts=0)
    report = sandboxed(waits, toy, seed=1, limits=limits)
    assert report.status is Status.GRADED, report.message
    assert report.full_marks

    spins = tmp_path / "spins.py"
    spins.write_text(
        "import time\n\n\ndef vector_stats(x, k):\n"
        "    end = time.process_time() + 3\n"
        "    while time.process_time() < end:\n        pass\n"
        "    return [0, 0, 0]\n"
    )
    report = sandboxed(spins, toy, seed=1, limits=limits)
    first = report.cases[0]
    assert first.reason is CaseReason.TIMEOUT
    assert "stopped after 1 s of CPU time" in first.message


# Children that burn CPU one after another, each gone before the next starts, so that the live
# processes never add up to the limit: only accounting that counts ended processes sees them.
BURN = """
import os, signal, time


def _burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

"""
IGNORES_SIGCHLD = """
def vector_stats(x, k):
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    for _ in range(30):
        if os.fork() == 0:
            _burn(0.1)
            os._exit(0)
        try:
            os.wait()  # with SIGCHLD ignored: returns (ECHILD) once the child is gone
        except ChildProcessError:
            pass
    return [len(x), sum(v * k for v in x), max(abs(v) for v in x)]
"""
ORPHANS = """
def vector_stats(x, k):
    for _ in range(30):
        reader, writer = os.pipe()
        if os.fork() == 0:
            if os.fork() == 0:  # the grandchild, orphaned at once
                _burn(0.1)
                os._exit(0)
            os._exit(0)
        os.close(writer)
        os.wait()
        os.read(reader, 1)  # returns at the grandchild's end (it held the pipe's other end)
        os.close(reader)
    return [len(x), sum(v * k for v in x), max(abs(v) for v in x)]
"""
# 3 CPU-s in all, past a 1 s case limit; the wall-clock backstop (8 s) far beyond.
BURN_LIMITS = Limits(case_seconds=1, total_seconds=20, wall_factor=8, max_restarts=0)


def _assert_stopped_by_cpu(report: Report) -> None:
    first = report.cases[0]
    assert first.reason is CaseReason.TIMEOUT, (report.status, first.message)
    assert "stopped after 1 s of CPU time" in first.message


@pytest.fixture
def no_cgroups(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Runs without a cgroup, as where /sys/fs/cgroup cannot be written (Gradescope)."""
    cgroups._layout.cache_clear()
    monkeypatch.setattr(cgroups, "ROOT", tmp_path / "no-cgroups")
    assert cgroups.unavailable() is not None
    yield
    cgroups._layout.cache_clear()


def test_children_reaped_by_the_kernel_count_against_the_cpu_limit(
    tmp_path: Path, toy: Problem
) -> None:
    if (why := cgroups.unavailable()) is not None:
        pytest.skip(f"no cgroups here: {why}")
    path = tmp_path / "ignores_sigchld.py"
    path.write_text(BURN + IGNORES_SIGCHLD)
    report = sandboxed(path, toy, seed=1, limits=BURN_LIMITS)
    assert report.run_limits == "cgroup"
    _assert_stopped_by_cpu(report)


@pytest.mark.parametrize("preload", [True, False], ids=["zygote", "fresh_interpreter"])
def test_orphans_count_against_the_cpu_limit_without_a_cgroup(
    tmp_path: Path, toy: Problem, no_cgroups: None, preload: bool
) -> None:
    path = tmp_path / "orphans.py"
    path.write_text(BURN + ORPHANS)
    runner = SubprocessRunner(policy=SandboxPolicy(isolation="basic"), preload=preload)
    expected = reference(toy, 1)
    try:
        report = grade(
            path, problem=toy, seed=1, expected=expected, runner=runner, limits=BURN_LIMITS
        )
    finally:
        runner.close()
    assert report.run_limits == "per_process"
    _assert_stopped_by_cpu(report)


def test_without_a_cgroup_sigchld_cannot_be_ignored_so_no_child_escapes_the_count(
    tmp_path: Path, toy: Problem, no_cgroups: None
) -> None:
    # The kernel adds a child it reaps for a SIGCHLD-ignoring parent to no one's CPU time, and
    # only a cgroup would have counted it: without one, the change is refused.
    path = tmp_path / "ignores_sigchld.py"
    path.write_text(BURN + IGNORES_SIGCHLD)
    runner = SubprocessRunner(policy=SandboxPolicy(isolation="basic"))
    expected = reference(toy, 1)
    try:
        report = grade(
            path, problem=toy, seed=1, expected=expected, runner=runner, limits=BURN_LIMITS
        )
    finally:
        runner.close()
    assert report.run_limits == "per_process"
    first = report.cases[0]
    assert first.reason is CaseReason.EXCEPTION, (report.status, first.message)
    assert first.error is not None
    assert first.error.type == "PermissionError"
    assert first.seconds < 1  # refused at once, before any child ran


def test_the_sigchld_filter_refuses_only_changes_to_sigchld() -> None:
    probe = (
        "import signal, subprocess\n"
        "from grader.run import seccomp\n"
        "assert seccomp.install(refuse_sigchld_changes=True)\n"
        "seen = [signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL]\n"
        "signal.signal(signal.SIGUSR1, signal.SIG_IGN)\n"
        "for action in (signal.SIG_IGN, lambda *a: None):\n"
        "    try:\n"
        "        signal.signal(signal.SIGCHLD, action)\n"
        "        seen.append('changed')\n"
        "    except PermissionError:\n"
        "        seen.append('refused')\n"
        "seen.append(subprocess.run(['true']).returncode)\n"
        "print(seen)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[True, 'refused', 'refused', 0]"


@pytest.mark.slow
def test_the_slowest_correct_style_gets_full_marks_in_a_two_worker_batch(
    tmp_path: Path,
) -> None:
    # A solution that jits its whole computation afresh for every case: ~20 s of compiling
    # alone, and two of them at once on this 2-core machine (beside the other tests' load).
    folder = tmp_path / "class"
    folder.mkdir()
    slow = SUBMISSIONS / "slow" / "jit_whole_computation.py"
    for student in ("ann", "ben"):
        shutil.copyfile(slow, folder / f"{student}.py")
    out = tmp_path / "out"
    result = subprocess.run(
        [*GRADER, "batch", str(folder), "--out", str(out), "--seed", "5", "--workers", "2"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    for student in ("ann", "ben"):
        report = Report.model_validate_json((out / f"{student}.json").read_text())
        assert report.status is Status.GRADED, report.message
        assert report.full_marks, [c.message for c in report.cases if not c.passed]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["full_marks"] == 2


# A submission that holds back its `start` message until its outcome is ready (it runs in the
# worker and can patch anything there), so that no case ever looks open to a meter that starts
# a case's time at `start`.
HOLDS_BACK_START = """
import grader.run.worker as _worker

_held = []
_send = _worker.Channel.send


def _late(self, message):
    if message.get("event") == "start":
        _held.append(message)
        return
    while _held and message.get("event") == "outcome":
        _send(self, _held.pop(0))
    _send(self, message)


_worker.Channel.send = _late


def vector_stats(x, k):
    _burn(3.0)
    return [len(x), sum(v * k for v in x), max(abs(v) for v in x)]
"""
# A child forked from a thread other than the main one is listed under that thread's task in
# /proc only, and is never reaped (its CPU time reaches no one's cutime either).
FORKS_FROM_A_THREAD = """
import threading


def vector_stats(x, k):
    reader, writer = os.pipe()

    def thread():
        if os.fork() == 0:
            _burn(3.0)
            os.write(writer, b"x")
            os._exit(0)
        time.sleep(3600)  # the child's parent stays alive and never reaps it

    threading.Thread(target=thread, daemon=True).start()
    os.read(reader, 1)
    return [len(x), sum(v * k for v in x), max(abs(v) for v in x)]
"""


@pytest.mark.parametrize(
    "body", [HOLDS_BACK_START, FORKS_FROM_A_THREAD], ids=["holds_back_start", "thread_fork"]
)
def test_a_case_cannot_hide_its_cpu_time_from_the_meter(
    body: str, tmp_path: Path, toy: Problem, no_cgroups: None
) -> None:
    """Red team, round 3: each passed with 8/8 after 4 CPU-s per case against a 1 s limit."""
    path = tmp_path / "hides.py"
    path.write_text(BURN + body)
    runner = SubprocessRunner(policy=SandboxPolicy(isolation="basic"))
    try:
        report = grade(
            path,
            problem=toy,
            seed=1,
            expected=reference(toy, 1),
            runner=runner,
            limits=BURN_LIMITS,
        )
    finally:
        runner.close()
    assert report.run_limits == "per_process"
    _assert_stopped_by_cpu(report)


def test_the_worker_cannot_ptrace(tmp_path: Path, toy: Problem) -> None:
    """ptrace is refused (the seccomp filter): a run's process could otherwise stop the
    grader's `kill -9 -1` helper, which runs as its uid, and the grader's wait never ended."""
    path = tmp_path / "traces.py"
    path.write_text(
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "answer = libc.ptrace(0, 0, None, None)  # PTRACE_TRACEME\n"
        "error = ctypes.get_errno()\n"
        "def vector_stats(x, k):\n"
        "    raise RuntimeError(f'ptrace gave {answer}, errno {error}')\n"
    )
    report = sandboxed(path, toy, seed=1)
    assert report.cases[0].error is not None
    assert report.cases[0].error.message == "ptrace gave -1, errno 1"

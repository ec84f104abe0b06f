"""CPU time a run really used, measured by the trusted side: what its time limits count.

A correct solution must not time out because the machine is busy: wall-clock time grows with
the load of other graders and other users, CPU time hardly does. So the limits count the CPU
time of every process of the run (all its threads, XLA's compile threads included, and any
child processes), measured by the trusted side, never taken from what the worker says:

- where the run has a cgroup, from the cgroup's own accounting (`cpuacct.usage` on v1,
  `cpu.stat` on v2), which counts every process that ever ran in it, however it ended and
  whoever reaped it;
- otherwise from /proc: utime+stime+cutime+cstime of the worker's tree (walked through the
  children lists). A process reaped by its parent is counted in that parent's cutime/cstime;
  an orphan is re-parented to the run's subreaper (the zygote's per-run child, or a fresh
  interpreter's trusted parent: grader/run/zygote.py, worker.py), which reaps it, so it is
  counted there (with full isolation, the namespace's init holds it, a zombie until
  reaped). A child of a process that ignores SIGCHLD is reaped by the kernel and counted
  nowhere once it ended, so without a cgroup the worker's seccomp filter refuses changes to
  SIGCHLD's action (grader/run/seccomp.py).

A wall-clock backstop several times larger (Limits.wall_factor) still stops a run that waits
instead of computing (a sleep, a blocked read). Where /proc cannot be read at all, the limits
fall back to wall-clock time.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
MAX_PROCESSES = 4096  # walked per reading: a fork bomb is stopped by pids.max, not by us


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime + cutime + cstime of one process, or None if it cannot be read."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ')': skip past it.
    fields = text[text.rfind(")") + 2 :].split()
    try:
        # Fields 14-17 of stat(5), counted from the state (field 3) at index 0 here.
        return sum(int(value) for value in fields[11:15]) / _TICKS
    except (ValueError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    """Children of every thread of the process: a child forked from a thread other than the
    main one is listed under that thread's task only."""
    found: list[int] = []
    try:
        tasks = sorted(Path(f"/proc/{pid}/task").iterdir())[:MAX_PROCESSES]
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def tree_pids(root: int) -> list[int]:
    """The process and its descendants, as /proc lists them now."""
    found: list[int] = []
    queue = [root]
    while queue and len(found) < MAX_PROCESSES:
        pid = queue.pop()
        found.append(pid)
        queue.extend(_children(pid))
    return found


def cpu_seconds(pids: Iterable[int]) -> float | None:
    """Total CPU seconds of these processes, None when none of them could be read."""
    readings = [process_cpu_seconds(pid) for pid in pids]
    known = [r for r in readings if r is not None]
    return sum(known) if known else None


class CpuMeter:
    """The CPU time of one worker process's run so far, never decreasing.

    `accounted`, when given and answering, is what counts (the run's cgroup's usage since the
    attempt started); otherwise `pids` lists the run's processes (its cgroup's, or the
    worker's tree): a process that ended unreaped drops out of the sum, so the highest reading
    is kept.
    """

    def __init__(
        self,
        pids: Callable[[], Iterable[int]],
        *,
        interval: float = 0.05,
        accounted: Callable[[], float | None] | None = None,
    ) -> None:
        self._pids = pids
        self._accounted = accounted
        self.highest: float | None = None
        self._interval = interval  # at most one reading of /proc in this many seconds
        self._last = -math.inf

    def read(self, *, fresh: bool = False) -> float | None:
        """CPU seconds used so far, or None if /proc could never be read."""
        now = time.monotonic()
        if not fresh and now - self._last < self._interval:
            return self.highest
        self._last = now
        reading = self._accounted() if self._accounted is not None else None
        if reading is None:
            reading = cpu_seconds(self._pids())
        if reading is not None:
            self.highest = reading if self.highest is None else max(self.highest, reading)
        return self.highest

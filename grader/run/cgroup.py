"""One cgroup per run: memory and processes bounded for all of a run's processes together.

Trusted side only. cgroup v2 (GitHub's runners, current distributions) and v1 (older hosts,
this development machine) are both supported:

- v2: a folder under `/sys/fs/cgroup/grader-runs/` with `memory.max`, `memory.swap.max`,
  `pids.max`; `memory.events` counts OOM kills; `cgroup.kill` ends every process in it;
  `cpu.stat`'s `usage_usec` is the CPU time of all its processes, reaped or not.
- v1: a folder of the same name in the `memory` and `pids` hierarchies, under the grader's own
  cgroup there; `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes` where swap
  accounting exists), `pids.max`; `memory.oom_control` counts OOM kills. Where the `cpuacct`
  controller is mounted, a folder there too: `cpuacct.usage` is the run's CPU time.

Where none can be made (not root, no controllers, a read-only /sys), `available()` says why and
runs keep their per-process limits only; the report records which one applied.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PARENT = "grader-runs"
_counter = itertools.count()


@dataclass(frozen=True)
class _Layout:
    version: int
    parents: tuple[Path, ...]  # v2: one folder; v1: (memory, pids) and cpuacct if mounted


def _own_v1_path(controller: str) -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path.lstrip("/")
    raise OSError(f"no {controller} cgroup for this process")


@functools.cache
def _layout() -> _Layout | str:
    """Where run cgroups go, or why there are none."""
    if os.geteuid() != 0:
        return "the grader is not root"
    try:
        if (ROOT / "cgroup.controllers").exists():  # v2 mounted at the usual place
            parent = ROOT / PARENT
            parent.mkdir(exist_ok=True)
            wanted = {"memory", "pids"}
            available = set((ROOT / "cgroup.controllers").read_text().split())
            if not wanted <= available:
                return f"cgroup v2 lacks the {', '.join(sorted(wanted - available))} controller"
            for folder in (ROOT, parent):
                enabled = set((folder / "cgroup.subtree_control").read_text().split())
                for name in sorted(wanted - enabled):
                    (folder / "cgroup.subtree_control").write_text(f"+{name}")
            _clean_stale(parent)
            return _Layout(2, (parent,))
        parents = []
        for controller in ("memory", "pids"):
            mount = ROOT / controller
            if not (mount / "cgroup.procs").exists():
                return f"the cgroup v1 {controller} controller is not mounted at {mount}"
            parent = mount / _own_v1_path(controller) / PARENT
            parent.mkdir(exist_ok=True)
            _clean_stale(parent)
            parents.append(parent)
        cpuacct = ROOT / "cpuacct"  # often a link to cpu,cpuacct
        if (cpuacct / "cpuacct.usage").exists():
            try:
                parent = cpuacct / _own_v1_path("cpuacct") / PARENT
                parent.mkdir(exist_ok=True)
                _clean_stale(parent)
                parents.append(parent)
            except OSError:
                pass  # CPU time is then read from /proc (grader/run/cputime.py)
        return _Layout(1, tuple(parents))
    except OSError as exc:
        return f"cgroups cannot be created here: {exc}"


def _clean_stale(parent: Path) -> None:
    """Remove the run cgroups of graders that died (SIGKILL) without removing them."""
    for folder in parent.glob("run-*-*"):
        owner = folder.name.split("-")[1]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            stale = RunCgroup(2 if parent.parent == ROOT else 1, (folder,))
            stale.kill(timeout=2)
            stale.remove()


def unavailable() -> str | None:
    """Why run cgroups cannot be made here, or None when they can."""
    layout = _layout()
    return layout if isinstance(layout, str) else None


class RunCgroup:
    """The cgroup(s) of one run. Create, let the run join, then kill and remove."""

    def __init__(self, version: int, folders: tuple[Path, ...]) -> None:
        self.version = version
        self.folders = folders  # v2: one; v1: memory, pids, and cpuacct if mounted

    @classmethod
    def create(cls, memory_bytes: int, processes: int) -> RunCgroup:
        """A new run cgroup with these limits; OSError if it cannot be made."""
        layout = _layout()
        if isinstance(layout, str):
            raise OSError(layout)
        name = f"run-{os.getpid()}-{next(_counter)}"
        self = cls(layout.version, tuple(parent / name for parent in layout.parents))
        created: list[Path] = []
        try:
            for folder in self.folders:
                folder.mkdir()
                created.append(folder)
            if self.version == 2:
                folder = self.folders[0]
                _write(folder / "memory.max", memory_bytes)
                with contextlib.suppress(FileNotFoundError):
                    _write(folder / "memory.swap.max", 0)
                _write(folder / "pids.max", processes)
            else:
                memory, pids = self.folders[:2]
                _write(memory / "memory.limit_in_bytes", memory_bytes)
                with contextlib.suppress(FileNotFoundError, PermissionError):
                    _write(memory / "memory.memsw.limit_in_bytes", memory_bytes)
                _write(pids / "pids.max", processes)
        except OSError:
            for folder in reversed(created):
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
        return self

    @property
    def procs_files(self) -> tuple[str, ...]:
        """Files a process writes its pid to, to join (children join with it)."""
        return tuple(str(folder / "cgroup.procs") for folder in self.folders)

    def pids(self) -> list[int]:
        found: set[int] = set()
        for procs in self.procs_files:
            with contextlib.suppress(OSError):
                found |= {int(p) for p in Path(procs).read_text().split()}
        return sorted(found)

    def cpu_seconds(self) -> float | None:
        """CPU time of every process that ran in it, ended and reaped or not; None if this
        cgroup does not account for CPU (v1 without cpuacct)."""
        try:
            if self.version == 2:
                for line in (self.folders[0] / "cpu.stat").read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "usage_usec":
                        return int(value) / 1e6
                return None
            for folder in self.folders:
                usage = folder / "cpuacct.usage"
                if usage.exists():
                    return int(usage.read_text()) / 1e9
        except (OSError, ValueError):
            pass
        return None

    def oom_kills(self) -> int:
        """How many of its processes the kernel killed for exceeding the memory limit."""
        folder = self.folders[0]
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            text = (folder / name).read_text()
        except OSError:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def kill(self, timeout: float = 10.0) -> bool:
        """SIGKILL every process in it until none is left; True when it is empty."""
        kill_file = self.folders[0] / "cgroup.kill"
        if self.version == 2 and kill_file.exists():
            with contextlib.suppress(OSError):
                kill_file.write_text("1")
        end = time.monotonic() + timeout
        while pids := self.pids():
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > end:
                return False
            time.sleep(0.01)
        return True

    def remove(self) -> None:
        for folder in self.folders:
            for _ in range(100):  # rmdir fails while the last exiting tasks are still counted
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


def _write(path: Path, value: int) -> None:
    path.write_text(str(value))

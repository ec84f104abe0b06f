"""Running untrusted code: what grading sees of the process boundary.

`Runner` runs a `RunRequest` and returns a `RunResult` (a `LoadFailure`, or per case a
`CaseOutcome` or a `CaseFailure`). `SubprocessRunner` is the real one (runner.py: attempts,
selector loop, exit classification; launch.py: zygote and interpreter launchers; policy.py:
isolation, paths, environment, run uids; cgroup.py: a memory and process budget per run;
protocol.py: the bounded worker protocol; worker.py, jail.py and zygote.py run on the other
side). `FakeRunner` answers in-process from a Python function, so grading, feedback and
reports can be tested in milliseconds.
"""

from __future__ import annotations

from grader.run.fake import FakeRunner
from grader.run.policy import SandboxPolicy, full_isolation_problem
from grader.run.protocol import LoadFailure
from grader.run.runner import Cancelled, CaseFailure, Runner, RunResult, SubprocessRunner

__all__ = [
    "Cancelled",
    "CaseFailure",
    "FakeRunner",
    "LoadFailure",
    "RunResult",
    "Runner",
    "SandboxPolicy",
    "SubprocessRunner",
    "full_isolation_problem",
]
